// spike: baseline, then 10x BASE_RATE for 60 s (reached in 5 s), then
// baseline again. DURATION (default 4m) is the whole run; the baseline
// before and after the spike share what the spike leaves (at least 10 s each).
import { cfg, fmt, iteration, options as build, perUnit, rate, seconds, setup } from './lib/harness.js';

const total = seconds('DURATION', __ENV.DURATION || '4m');
const base = rate(cfg.baseRate);
const peak = cfg.baseRate * 10;
const at = (perSecond) => perUnit(perSecond, base.timeUnit);
const calm = Math.max(10, (total - 70) / 2);

export const options = build('spike', {
  executor: 'ramping-arrival-rate',
  startRate: base.rate,
  timeUnit: base.timeUnit,
  stages: [
    { duration: fmt(calm), target: at(cfg.baseRate) },
    { duration: '5s', target: at(peak) },
    { duration: '60s', target: at(peak) },
    { duration: '5s', target: at(cfg.baseRate) },
    { duration: fmt(calm), target: at(cfg.baseRate) },
  ],
}, peak);

export { setup };
export default iteration;
