// Shared by every scenario: environment, thresholds, VU sizing, the fault
// window tag and the iteration (generate -> place -> sometimes waitFor).
// Every environment variable is read here and a bad value is an error that
// names it, before the test starts.
import { check } from 'k6';
import exec from 'k6/execution';
import http from 'k6/http';
import orders from 'k6/x/orders';

function env(name) {
  const v = __ENV[name];
  return v === undefined || v === '' ? undefined : v;
}

function num(name, def, { min = 0, integer = false, allowZero = false } = {}) {
  const v = env(name);
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || (!allowZero && n === 0) || (integer && !Number.isInteger(n))) {
    throw new Error(`${name}: want a ${integer ? 'whole ' : ''}number${allowZero ? '' : ' above 0'}, got "${v}"`);
  }
  return n;
}

// seconds reads "90", "90s", "3m", "1h30m", "500ms" as seconds.
export function seconds(name, text) {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let used = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]];
    used += m[0].length;
  }
  if (used !== text.length || used === 0) {
    throw new Error(`${name}: want a duration like "30m", "20s" or "1h30m", got "${text}"`);
  }
  return total;
}

function dur(name, def, { allowZero = false } = {}) {
  const v = env(name);
  if (v === undefined) return seconds(name, def);
  const s = seconds(name, v);
  if (s < 0 || (!allowZero && s === 0)) throw new Error(`${name}: must be positive, got "${v}"`);
  return s;
}

// parseWindows reads FAULT_WINDOWS="30-90,300-330": seconds from the
// scenario's start during which faults are injected on purpose.
export function parseWindows(text) {
  if (!text) return [];
  return text.split(',').map((part) => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*$/.exec(part);
    if (!m || Number(m[2]) < Number(m[1])) {
      throw new Error(`FAULT_WINDOWS: want "start-end,..." in seconds from the start, got "${part}"`);
    }
    return [Number(m[1]), Number(m[2])];
  });
}

const DEFAULT_MIX = 'declined=0.05,out_of_stock=0.02,undeliverable=0.01';

// cfg is the run's configuration; the README lists every variable.
export const cfg = {
  baseUrl: (env('ORDERS_URL') || 'http://127.0.0.1:8080').replace(/\/+$/, ''),
  baseRate: num('BASE_RATE', 4),
  seed: num('SEED', 1, { min: -(2 ** 53), integer: true, allowZero: true }),
  mix: env('MIX') ?? DEFAULT_MIX,
  users: num('USERS', 10000, { integer: true }),
  ledger: env('LEDGER') || 'results/ledger.jsonl',
  timeout: dur('TIMEOUT', '10s'),
  confirmSample: num('CONFIRM_SAMPLE', 0.1, { allowZero: true }),
  waitTimeout: dur('WAIT_TIMEOUT', '60s'),
  faultWindows: parseWindows(env('FAULT_WINDOWS')),
  faultGrace: dur('FAULT_GRACE', '10s', { allowZero: true }),
  acceptP99: num('ACCEPT_P99_MS', 1000),
  confirmP99: env('CONFIRM_P99_MS') === undefined ? undefined : num('CONFIRM_P99_MS', 0),
  preVUs: env('PRE_VUS') === undefined ? undefined : num('PRE_VUS', 0, { integer: true }),
  maxVUs: env('MAX_VUS') === undefined ? undefined : num('MAX_VUS', 0, { integer: true }),
};
if (cfg.confirmSample > 1) throw new Error(`CONFIRM_SAMPLE: want a share between 0 and 1, got ${cfg.confirmSample}`);
orders.parseMix(cfg.mix); // throws, naming the bad part, before any VU starts

// rate turns orders/s into an arrival-rate {rate, timeUnit}, per minute
// when fractional (k6 rates are whole numbers per time unit).
export function rate(perSecond) {
  if (Number.isInteger(perSecond)) return { rate: perSecond, timeUnit: '1s' };
  return { rate: Math.max(1, Math.round(perSecond * 60)), timeUnit: '1m' };
}

// perUnit scales a stage target to the time unit rate() chose for base.
export function perUnit(perSecond, unit) {
  return unit === '1s' ? Math.round(perSecond) : Math.round(perSecond * 60);
}

// vus sizes the VU pool for a peak rate: an iteration holds its VU for the
// placement, and for a sampled order until its outcome (up to WAIT_TIMEOUT).
// Every VU a sampled wait may hold is allocated before the start: after an
// outage the waits grow to tens of seconds, and a VU allocated mid-run takes
// the time its JavaScript runtime needs to start, during which arrivals drop.
export function vus(peak) {
  const pre = cfg.preVUs ?? Math.ceil(peak * (1 + cfg.confirmSample * cfg.waitTimeout)) + 5;
  const max = cfg.maxVUs ?? Math.max(pre, Math.ceil(peak * (2 + cfg.confirmSample * cfg.waitTimeout)) + 10);
  return { preAllocatedVUs: pre, maxVUs: max };
}

export function fmt(secs) {
  return `${Math.max(1, Math.round(secs))}s`;
}

// thresholds fail the run when the rate was not delivered, requests failed
// or checks failed outside the declared fault windows, or acceptance was slow.
export function thresholds() {
  const t = {
    dropped_iterations: ['count==0'],
    'http_req_failed{fault:no}': ['rate<0.001'],
    'checks{fault:no}': ['rate==1'],
    'order_accept_duration{fault:no}': [`p(99)<${cfg.acceptP99}`],
    orders_placed: ['count>0'], // a run that placed nothing proves nothing
  };
  if (cfg.confirmP99 !== undefined) {
    t['order_confirm_duration{expect:complete,fault:no}'] = [`p(99)<${cfg.confirmP99}`];
  }
  return t;
}

// options assembles a scenario's options around its executor.
export function options(name, executor, peak) {
  return {
    scenarios: {
      [name]: {
        ...executor,
        ...vus(peak),
        // let sampled orders finish waiting rather than interrupt them
        gracefulStop: fmt(cfg.waitTimeout + cfg.timeout + 5),
      },
    },
    thresholds: thresholds(),
    summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  };
}

// Orders are placed anonymously; following a sampled order (waitFor) reads
// it, which takes a token: ORDERS_TOKEN_FILE (the harness passes the stack's
// service token file) or ORDERS_TOKEN.
export const client = new orders.Client({
  baseUrl: cfg.baseUrl,
  ledger: cfg.ledger,
  timeout: cfg.timeout * 1000,
  tokenFile: env('ORDERS_TOKEN_FILE'),
  token: env('ORDERS_TOKEN'),
});

// setup checks the API answers and fixes the run id that makes this run's
// idempotency keys its own (RUN_ID replays a run's keys on purpose).
export function setup() {
  const res = http.get(`${cfg.baseUrl}/healthz`, { timeout: '5s' });
  if (res.status !== 200) {
    throw new Error(`Orders API at ${cfg.baseUrl} is not answering /healthz (status ${res.status} ${res.error})`);
  }
  return { run: env('RUN_ID') || `r${Date.now().toString(36)}` };
}

// inFaultWindow says whether an iteration starting t seconds into the
// scenario may meet a declared fault: its placement (two attempts of up to
// TIMEOUT each) may still be in flight when a window opens, and the
// platform gets FAULT_GRACE to recover after it closes.
function inFaultWindow(t) {
  const before = 2 * cfg.timeout + 1;
  return cfg.faultWindows.some(([start, end]) => t >= start - before && t <= end + cfg.faultGrace);
}

// Outcome targets: waitFor settles on the first of these (or a terminal status).
const SETTLED = ['failed', 'cancelled', 'delivered'];
const TARGETS = {
  complete: ['creating_shipment', 'shipped', 'in_transit', ...SETTLED],
  declined: ['shipped', 'in_transit', ...SETTLED],
  out_of_stock: ['creating_shipment', 'shipped', 'in_transit', ...SETTLED],
  undeliverable: ['shipped', 'in_transit', ...SETTLED],
};

// matches says whether an order's history shows its expected outcome.
export function matches(expect, h) {
  const seen = (s) => h.history.some((e) => e.status === s);
  switch (expect) {
    case 'complete':
      return seen('creating_shipment') && h.status !== 'failed' && h.status !== 'cancelled';
    case 'declined':
    case 'out_of_stock':
      return h.status === 'failed' && !seen('creating_shipment');
    case 'undeliverable':
      return h.status === 'failed' && seen('creating_shipment');
    default:
      return false;
  }
}

// sampled picks a deterministic, evenly spread share of iterations.
function sampled(iteration) {
  return ((iteration * 0.6180339887498949) % 1) < cfg.confirmSample;
}

// iteration is the body of every scenario.
export async function iteration(data) {
  const t = (Date.now() - exec.scenario.startTime) / 1000;
  exec.vu.metrics.tags.fault = inFaultWindow(t) ? 'yes' : 'no';

  const order = orders.generate({ seed: cfg.seed, mix: cfg.mix, users: cfg.users, run: data.run });
  const res = client.place(order);
  check(res, { 'order acknowledged': (r) => r.outcome === 'acked' });
  if (res.outcome !== 'acked' || !sampled(order.iteration)) return;

  let h = null;
  try {
    h = await client.waitFor(res, TARGETS[order.expect], cfg.waitTimeout * 1000);
  } catch (e) {
    console.warn(`order ${res.orderId} (${order.expect}): ${e}`);
  }
  if (h !== null && !matches(order.expect, h)) {
    // Say what was seen: a failed check with no line is a mystery later.
    console.warn(`order ${res.orderId} (${order.expect}): outcome not as expected: status ${h.status}, history ${h.history.map((e) => e.status).join(' > ')}`);
  }
  check(h, { 'order reached its expected outcome': (x) => x !== null && matches(order.expect, x) });
}
