import { ErrorCodes, QilinError } from '../../kernel/errors.js';
import type { Scenario, Subject } from './bench-report.js';

/**
 * Options of `qilin bench <scenario>`: defaults per scenario, the `--smoke`
 * preset (seconds-long, tiny rates, one run: for CI), and validation of the
 * raw command-line strings. A bad value is a QLN_CLI_USAGE error naming the
 * option, the value and what is allowed (the CLI exits 2).
 */

/** Everything a scenario run needs, resolved. */
export interface BenchOptions {
  scenario: Scenario;
  smoke: boolean;
  /** Runs of every subject, interleaved; medians reported. */
  runs: number;
  /** Seconds of load per step (soak: the whole soak), warm-up included. */
  seconds: number;
  /** First seconds of a step not recorded (except the cold-start second). */
  warmupSeconds: number;
  /** Longest wait for in-flight arrivals after a step's last publish, s. */
  drainSeconds: number;
  /** Drain ends early after this long with no arrival, ms. */
  quietMs: number;
  symbols: number;
  /** Offered rates, ticks/s (latency, throughput). */
  rates: number[];
  /** Offered rate, ticks/s (symbols, fanout, soak). */
  rate: number;
  /** Symbol counts (symbols scenario). */
  symbolCounts: number[];
  /** WebSocket subscriber counts (fanout). */
  subscribers: number[];
  /** Throughput: a step whose p99 passes this fails, ms. */
  sloP99Ms: number;
  /** Cold start: seconds after the first tick recorded apart. */
  coldSeconds: number;
  /** Soak: seconds per reported interval. */
  intervalSeconds: number;
  /** Subjects measured beside the kernel. */
  baselines: Subject[];
  store: 'chdb' | 'clickhouse';
  /**
   * Kernel processes of the kernel subject: 1, or 2 (halves of the
   * partitions, cluster fan-out on; the load's subscribers are on the first,
   * so half of what they receive crosses from the second through NATS).
   */
  nodes: 1 | 2;
  seed: number;
  json: boolean;
  progress: boolean;
  /** Where results go (default `<repo>/bench/results`). */
  resultsDir: string | undefined;
  /** Write the JSON and SVG files (default true). */
  write: boolean;
  readyTimeoutSeconds: number;
  /** Longest wait for the subject and nats-server to go idle before a step, s. */
  settleSeconds: number;
}

/** The raw strings (and flags) commander hands over; absent = default. */
export type RawBenchOptions = Partial<Record<string, string | boolean | undefined>>;

type Defaults = Omit<
  BenchOptions,
  'scenario' | 'smoke' | 'json' | 'progress' | 'resultsDir' | 'write'
>;

const COMMON: Omit<Defaults, 'rates' | 'rate' | 'symbols' | 'baselines'> = {
  runs: 3,
  seconds: 10,
  warmupSeconds: 3,
  drainSeconds: 10,
  quietMs: 1000,
  symbolCounts: [1, 100, 1000, 10_000],
  subscribers: [100, 1000],
  sloP99Ms: 10,
  coldSeconds: 1,
  intervalSeconds: 10,
  store: 'chdb',
  nodes: 1,
  seed: 0x9e3779b9,
  readyTimeoutSeconds: 120,
  settleSeconds: 20,
};

/** Defaults per scenario (see bench/README.md for why these values). */
export const SCENARIO_DEFAULTS: Readonly<Record<Scenario, Defaults>> = {
  latency: {
    ...COMMON,
    rates: [1000, 2000, 5000, 10_000],
    rate: 0,
    symbols: 1000,
    baselines: ['relay', 'hop', 'raw'],
  },
  throughput: {
    ...COMMON,
    rates: [5000, 10_000, 20_000, 30_000, 40_000, 50_000, 75_000, 100_000, 150_000, 200_000],
    rate: 0,
    symbols: 1000,
    baselines: ['relay', 'hop', 'raw'],
  },
  symbols: { ...COMMON, rates: [], rate: 5000, symbols: 0, baselines: ['relay'] },
  fanout: { ...COMMON, rates: [], rate: 100, symbols: 100, baselines: ['ws'] },
  soak: {
    ...COMMON,
    runs: 1,
    seconds: 300,
    warmupSeconds: 10,
    rates: [],
    rate: 10_000,
    symbols: 1000,
    baselines: ['relay'],
  },
};

/** `--smoke`: every scenario seconds-long, tiny rates, one run; still end to end. */
export const SMOKE_OVERRIDES: Readonly<Record<Scenario, Partial<Defaults>>> = {
  latency: { rates: [500], symbols: 100 },
  throughput: { rates: [500, 1000], symbols: 100 },
  symbols: { symbolCounts: [10, 100], rate: 500 },
  fanout: { subscribers: [5, 20], rate: 50, symbols: 20 },
  soak: { seconds: 3, warmupSeconds: 1, intervalSeconds: 1, rate: 500, symbols: 100 },
};

const SMOKE_COMMON: Partial<Defaults> = {
  runs: 1,
  seconds: 1.5,
  warmupSeconds: 0.5,
  drainSeconds: 3,
  quietMs: 300,
  settleSeconds: 2,
  readyTimeoutSeconds: 60,
};

/** The subjects that make sense beside the kernel in each scenario. */
export const ALLOWED_BASELINES: Readonly<Record<Scenario, readonly Subject[]>> = {
  latency: ['relay', 'hop', 'raw'],
  throughput: ['relay', 'hop', 'raw'],
  symbols: ['relay', 'hop', 'raw'],
  fanout: ['ws', 'relay', 'hop'],
  soak: ['relay', 'hop', 'raw'],
};

function usage(option: string, value: unknown, allowed: string): never {
  throw new QilinError(
    ErrorCodes.CLI_USAGE,
    `invalid ${option}: ${JSON.stringify(value)} (allowed: ${allowed})`,
    { details: { option, value, allowed } },
  );
}

/** "5000", "5k", "1.5k", "2M", "10_000" → number; NaN when it is none of these. */
export function parseQuantity(raw: string): number {
  const m = /^([0-9][0-9_]*(?:\.[0-9]+)?)([kKmM]?)$/.exec(raw.trim());
  if (m === null) return Number.NaN;
  const base = Number(m[1]!.replace(/_/g, ''));
  const mult = m[2] === 'k' || m[2] === 'K' ? 1e3 : m[2] === 'm' || m[2] === 'M' ? 1e6 : 1;
  return base * mult;
}

function int(option: string, raw: string, min: number, max: number): number {
  const v = parseQuantity(raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    usage(option, raw, `an integer from ${min} to ${max} (k and M suffixes allowed)`);
  }
  return v;
}

function num(option: string, raw: string, min: number, max: number): number {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v < min || v > max) {
    usage(option, raw, `a number from ${min} to ${max}`);
  }
  return v;
}

function intList(option: string, raw: string, min: number, max: number, rising: boolean): number[] {
  const parts = raw.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => p === '')) {
    usage(option, raw, 'a comma-separated list, e.g. 1k,2k,5k');
  }
  const out = parts.map((p) => {
    const v = parseQuantity(p);
    if (!Number.isInteger(v) || v < min || v > max) {
      usage(option, raw, `integers from ${min} to ${max}, comma-separated (k suffix allowed)`);
    }
    return v;
  });
  if (rising) {
    for (let i = 1; i < out.length; i++) {
      if (out[i]! <= out[i - 1]!) usage(option, raw, 'rising values, e.g. 1k,2k,5k');
    }
  }
  return out;
}

function str(raw: RawBenchOptions, key: string): string | undefined {
  const v = raw[key];
  return typeof v === 'string' ? v : undefined;
}

/** Resolve a scenario's options from the raw command-line values. */
export function resolveBenchOptions(scenario: Scenario, raw: RawBenchOptions): BenchOptions {
  const smoke = raw['smoke'] === true;
  const d: Defaults = {
    ...SCENARIO_DEFAULTS[scenario],
    ...(smoke ? { ...SMOKE_COMMON, ...SMOKE_OVERRIDES[scenario] } : {}),
  };
  const o: BenchOptions = {
    ...d,
    scenario,
    smoke,
    json: raw['json'] === true,
    progress: raw['progress'] !== false,
    resultsDir: str(raw, 'resultsDir'),
    write: raw['write'] !== false,
  };
  const v = (key: string): string | undefined => str(raw, key);
  if (v('runs') !== undefined) o.runs = int('--runs', v('runs')!, 1, 50);
  if (v('seconds') !== undefined) o.seconds = num('--seconds', v('seconds')!, 0.5, 86_400);
  if (v('warmupSeconds') !== undefined) {
    o.warmupSeconds = num('--warmup-seconds', v('warmupSeconds')!, 0, 3600);
  }
  if (o.warmupSeconds >= o.seconds) {
    usage('--warmup-seconds', o.warmupSeconds, `less than --seconds (${o.seconds})`);
  }
  if (v('drainSeconds') !== undefined) {
    o.drainSeconds = num('--drain-seconds', v('drainSeconds')!, 0.1, 600);
  }
  if (v('symbols') !== undefined) o.symbols = int('--symbols', v('symbols')!, 1, 10_000);
  if (v('rates') !== undefined) o.rates = intList('--rates', v('rates')!, 1, 10_000_000, true);
  if (v('rate') !== undefined) o.rate = int('--rate', v('rate')!, 1, 10_000_000);
  if (v('symbolCounts') !== undefined) {
    o.symbolCounts = intList('--symbol-counts', v('symbolCounts')!, 1, 10_000, true);
  }
  if (v('subscribers') !== undefined) {
    o.subscribers = intList('--subscribers', v('subscribers')!, 1, 10_000, true);
  }
  if (v('sloP99Ms') !== undefined) o.sloP99Ms = num('--slo-p99-ms', v('sloP99Ms')!, 0.01, 60_000);
  if (v('coldSeconds') !== undefined) {
    o.coldSeconds = num('--cold-seconds', v('coldSeconds')!, 0, 60);
  }
  if (v('intervalSeconds') !== undefined) {
    o.intervalSeconds = num('--interval-seconds', v('intervalSeconds')!, 0.5, 3600);
  }
  if (v('readyTimeoutSeconds') !== undefined) {
    o.readyTimeoutSeconds = num('--ready-timeout-seconds', v('readyTimeoutSeconds')!, 1, 600);
  }
  if (v('settleSeconds') !== undefined) {
    o.settleSeconds = num('--settle-seconds', v('settleSeconds')!, 0, 600);
  }
  if (v('seed') !== undefined) {
    o.seed = int('--seed', v('seed')!, 1, 0x7fffffff);
  }
  const store = v('store');
  if (store !== undefined) {
    if (store !== 'chdb' && store !== 'clickhouse') usage('--store', store, 'chdb or clickhouse');
    o.store = store;
  }
  const nodes = v('nodes');
  if (nodes !== undefined) {
    if (nodes !== '1' && nodes !== '2') usage('--nodes', nodes, '1 or 2');
    o.nodes = nodes === '2' ? 2 : 1;
  }
  const baselines = v('baselines');
  if (baselines !== undefined) {
    const allowed = ALLOWED_BASELINES[scenario];
    const list =
      baselines === 'none' || baselines === '' ? [] : baselines.split(',').map((b) => b.trim());
    for (const b of list) {
      if (!(allowed as readonly string[]).includes(b)) {
        usage('--baselines', baselines, `none, or a comma-separated list of ${allowed.join(', ')}`);
      }
    }
    o.baselines = [...new Set(list)] as Subject[];
  }
  if (scenario === 'soak' && o.intervalSeconds > o.seconds) {
    usage('--interval-seconds', o.intervalSeconds, `at most --seconds (${o.seconds})`);
  }
  return o;
}
