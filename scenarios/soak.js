// soak: BASE_RATE orders/s (default 4) held for DURATION (default 1h), to
// find what only time reveals: leaks, growing lag, slow drift.
import { cfg, fmt, iteration, options as build, rate, seconds, setup } from './lib/harness.js';

const duration = seconds('DURATION', __ENV.DURATION || '1h');

export const options = build('soak', {
  executor: 'constant-arrival-rate',
  ...rate(cfg.baseRate),
  duration: fmt(duration),
}, cfg.baseRate);

export { setup };
export default iteration;
