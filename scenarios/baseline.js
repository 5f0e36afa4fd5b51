// baseline: a steady BASE_RATE orders/s (default 4) for DURATION (default 5m).
import { cfg, fmt, iteration, options as build, rate, seconds, setup } from './lib/harness.js';

const duration = seconds('DURATION', __ENV.DURATION || '5m');

export const options = build('baseline', {
  executor: 'constant-arrival-rate',
  ...rate(cfg.baseRate),
  duration: fmt(duration),
}, cfg.baseRate);

export { setup };
export default iteration;
