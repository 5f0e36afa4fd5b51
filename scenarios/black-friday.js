// black-friday: warm up at BASE_RATE, ramp to 5x, hold, ramp back down.
// DURATION (default 30m; e.g. 3m in CI, 20s for the smoke run) scales every
// stage: 20% warm-up, 20% ramp up, 40% hold at 5x, 20% ramp down.
import { cfg, fmt, iteration, options as build, perUnit, rate, seconds, setup } from './lib/harness.js';

const total = seconds('DURATION', __ENV.DURATION || '30m');
const base = rate(cfg.baseRate);
const peak = cfg.baseRate * 5;
const at = (perSecond) => perUnit(perSecond, base.timeUnit);

export const options = build('black_friday', {
  executor: 'ramping-arrival-rate',
  startRate: base.rate,
  timeUnit: base.timeUnit,
  stages: [
    { duration: fmt(total * 0.2), target: at(cfg.baseRate) },
    { duration: fmt(total * 0.2), target: at(peak) },
    { duration: fmt(total * 0.4), target: at(peak) },
    { duration: fmt(total * 0.2), target: at(cfg.baseRate) },
  ],
}, peak);

export { setup };
export default iteration;
