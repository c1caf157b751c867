/**
 * bench/features: the per-symbol FeatureSet (actors/indicators) on a stream
 * of trades, quotes and bars, against the naive reference (recompute every
 * indicator from scratch per tick, naive-feature-set.ts), in the same run.
 *
 * ```
 *  stream:  precomputed block of 2^20 ticks over S symbols, cycled: random-walk
 *           trades (px, qty), quotes around the last trade, and a '1s' bar per
 *           symbol every `barEvery` of its trades (high/low/close of those trades)
 *  subject: FeatureSet(FULL_FEATURE_SPECS: every kind, 23 values) per symbol; on* per tick
 *  naive:   NaiveFeatureSet per symbol on the ticks of the first `naiveSymbols`
 *           symbols (it is ~100× slower), warmed up until its histories are full
 * ```
 *
 * Figures: ns per tick (wall time of the whole timed loop / ticks), HDR
 * percentiles of 1,024-tick batch means (one timer read per batch: a timer
 * read per tick would cost as much as the tick), the naive ns per tick and
 * the ratio, and the heap growth over the timed ticks (GC forced before and
 * after, the sets and the stream built before the first reading).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { FULL_FEATURE_SPECS, FeatureSet } from '../../actors/indicators/feature-set.js';
import { invalidArgument } from '../../kernel/errors.js';
import { formatSummary, LatencyRecorder, type LatencySummary } from '../hdr-report.js';
import { NaiveFeatureSet } from './naive-feature-set.js';
import {
  DEFAULT_FEATURES_BENCH_OPTIONS,
  type FeaturesBenchOptions,
} from './features-bench-options.js';

export {
  DEFAULT_FEATURES_BENCH_OPTIONS,
  type FeaturesBenchOptions,
} from './features-bench-options.js';

export interface FeaturesBenchReport {
  scenario: 'features';
  date: string;
  options: FeaturesBenchOptions;
  host: { node: string; platform: string; arch: string; cpus: number; cpuModel: string };
  setup: { features: number; outputs: number; names: readonly string[]; streamBlock: number };
  subject: {
    ticks: number;
    seconds: number;
    nsPerTick: number;
    ticksPerSec: number;
    /** Percentiles of 1,024-tick batch means, ns per tick. */
    batchNsPerTick: LatencySummary;
    /** Microseconds to build one symbol's FeatureSet (mean over all symbols). */
    constructUsPerSymbol: number;
  };
  naive: { ticks: number; symbols: number; seconds: number; nsPerTick: number };
  /** naive ns per tick / subject ns per tick. */
  ratio: number;
  heap: { beforeMB: number; afterMB: number; growthMB: number; ticks: number; gcForced: boolean };
  targets: { nsPerTickUnder1us: boolean; heapGrowthUnder1MB: boolean };
}

const BLOCK = 1 << 20;
const BATCH = 1024;

/** The stream: one preallocated block of ticks, cycled. */
interface Stream {
  sym: Int32Array;
  /** 0 trade (a = px, b = qty), 1 quote (a bid, b bidQty, c ask, d askQty), 2 bar (a high, b low, c close). */
  type: Uint8Array;
  a: Float64Array;
  b: Float64Array;
  c: Float64Array;
  d: Float64Array;
}

function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeStream(symbols: number, barEvery: number, seed: number): Stream {
  const r = mulberry32(seed);
  const s: Stream = {
    sym: new Int32Array(BLOCK),
    type: new Uint8Array(BLOCK),
    a: new Float64Array(BLOCK),
    b: new Float64Array(BLOCK),
    c: new Float64Array(BLOCK),
    d: new Float64Array(BLOCK),
  };
  const px = new Float64Array(symbols);
  const hi = new Float64Array(symbols);
  const lo = new Float64Array(symbols);
  const trades = new Int32Array(symbols);
  for (let k = 0; k < symbols; k++) {
    px[k] = 10 + 990 * r();
    hi[k] = lo[k] = px[k]!;
  }
  for (let i = 0; i < BLOCK; i++) {
    const k = Math.floor(r() * symbols);
    s.sym[i] = k;
    const p = px[k]!;
    if (trades[k]! > 0 && trades[k]! % barEvery === 0 && hi[k]! > 0) {
      s.type[i] = 2;
      s.a[i] = hi[k]!;
      s.b[i] = lo[k]!;
      s.c[i] = p;
      hi[k] = 0;
      lo[k] = Number.POSITIVE_INFINITY;
      trades[k] = trades[k]! + 1; // one bar per barEvery trades
      continue;
    }
    if (r() < 0.5) {
      const np = p * Math.exp(0.001 * (2 * r() - 1));
      px[k] = np;
      hi[k] = Math.max(hi[k]!, np);
      lo[k] = Math.min(lo[k]!, np);
      s.type[i] = 0;
      s.a[i] = np;
      s.b[i] = 1 + Math.floor(r() * 500);
      trades[k] = trades[k]! + 1;
    } else {
      const half = p * 0.0005 * (0.2 + r());
      s.type[i] = 1;
      s.a[i] = p - half;
      s.b[i] = 1 + Math.floor(r() * 1000);
      s.c[i] = p + half;
      s.d[i] = 1 + Math.floor(r() * 1000);
    }
  }
  return s;
}

interface Fed {
  onTrade(px: number, qty: number): void;
  onQuote(bid: number, bidQty: number, ask: number, askQty: number): void;
  onBar(series: number, high: number, low: number, close: number): void;
}

/** Feed ticks [from, from + n) of the cycled stream; returns the next position. */
function feed(sets: readonly FeatureSet[], s: Stream, from: number, n: number): number {
  const { sym, type, a, b, c, d } = s;
  let k = from;
  for (let i = 0; i < n; i++) {
    const set = sets[sym[k]!]!;
    const t = type[k]!;
    if (t === 0) set.onTrade(a[k]!, b[k]!);
    else if (t === 1) set.onQuote(a[k]!, b[k]!, c[k]!, d[k]!);
    else set.onBar(0, a[k]!, b[k]!, c[k]!);
    k = (k + 1) & (BLOCK - 1);
  }
  return k;
}

/** Feed the ticks of symbols < `symbols` only, until n of them were fed; returns the next position. */
function feedSome(
  sets: readonly Fed[],
  s: Stream,
  from: number,
  n: number,
  symbols: number,
): number {
  let k = from;
  for (let i = 0; i < n;) {
    const sym = s.sym[k]!;
    if (sym < symbols) {
      const set = sets[sym]!;
      const t = s.type[k]!;
      if (t === 0) set.onTrade(s.a[k]!, s.b[k]!);
      else if (t === 1) set.onQuote(s.a[k]!, s.b[k]!, s.c[k]!, s.d[k]!);
      else set.onBar(0, s.a[k]!, s.b[k]!, s.c[k]!);
      i++;
    }
    k = (k + 1) & (BLOCK - 1);
  }
  return k;
}

/** `global.gc`, enabled at run time when node was not started with --expose-gc. */
function gcFunction(): (() => void) | undefined {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  try {
    v8.setFlagsFromString('--expose-gc');
    const f: unknown = runInNewContext('gc');
    return typeof f === 'function' ? (f as () => void) : undefined;
  } catch {
    return undefined;
  }
}

function heapUsedAfterGc(gc: (() => void) | undefined): number {
  if (gc !== undefined) for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

function checkOptions(o: FeaturesBenchOptions): void {
  const int = (name: string, v: number, min: number): void => {
    if (!Number.isInteger(v) || v < min) invalidArgument(name, v, `an integer ≥ ${min}`);
  };
  int('symbols', o.symbols, 1);
  int('ticks', o.ticks, BATCH);
  int('warmupTicks', o.warmupTicks, 0);
  int('naiveTicks', o.naiveTicks, 1);
  int('naiveSymbols', o.naiveSymbols, 1);
  int('barEvery', o.barEvery, 1);
  int('seed', o.seed, 0);
  if (o.naiveSymbols > o.symbols) {
    invalidArgument('naiveSymbols', o.naiveSymbols, `at most symbols (${o.symbols})`);
  }
}

/** Run the bench (synchronous, CPU-bound; seconds at the defaults). */
export function runFeaturesBench(
  options: Partial<FeaturesBenchOptions> = {},
  say: (line: string) => void = () => undefined,
): FeaturesBenchReport {
  const o: FeaturesBenchOptions = { ...DEFAULT_FEATURES_BENCH_OPTIONS, ...options };
  checkOptions(o);
  const date = new Date().toISOString();
  const gc = gcFunction();
  say(`stream: ${BLOCK.toLocaleString('en-US')} ticks over ${o.symbols} symbols …`);
  const stream = makeStream(o.symbols, o.barEvery, o.seed);

  const c0 = performance.now();
  const sets: FeatureSet[] = [];
  for (let i = 0; i < o.symbols; i++) sets.push(new FeatureSet(FULL_FEATURE_SPECS));
  const constructUs = ((performance.now() - c0) * 1000) / o.symbols;

  say(`warm-up: ${o.warmupTicks.toLocaleString('en-US')} ticks …`);
  let pos = feed(sets, stream, 0, o.warmupTicks);

  // Timed run; the heap growth is over exactly these ticks.
  const rec = new LatencyRecorder({ scale: 1000 });
  const batches = Math.floor(o.ticks / BATCH);
  const before = heapUsedAfterGc(gc);
  say(`subject: ${(batches * BATCH).toLocaleString('en-US')} ticks …`);
  const t0 = performance.now();
  for (let i = 0; i < batches; i++) {
    const b0 = performance.now();
    pos = feed(sets, stream, pos, BATCH);
    // µs per tick in the recorder (ns resolution)
    rec.record(((performance.now() - b0) * 1000) / BATCH);
  }
  const seconds = (performance.now() - t0) / 1000;
  const after = heapUsedAfterGc(gc);
  const ticks = batches * BATCH;
  const us = rec.summary();
  const ns = (x: number): number => x * 1000;

  // Naive reference on the first naiveSymbols symbols, histories filled first.
  const naive: NaiveFeatureSet[] = [];
  for (let i = 0; i < o.naiveSymbols; i++) naive.push(new NaiveFeatureSet(FULL_FEATURE_SPECS));
  say(`naive: warm-up, then ${o.naiveTicks.toLocaleString('en-US')} ticks …`);
  // ~1,100 ticks per symbol: over 512 trades and 512 quotes each, histories full
  const npos = feedSome(naive, stream, 0, o.naiveSymbols * 1100, o.naiveSymbols);
  const n0 = performance.now();
  feedSome(naive, stream, npos, o.naiveTicks, o.naiveSymbols);
  const naiveSeconds = (performance.now() - n0) / 1000;
  const naiveNs = (naiveSeconds * 1e9) / o.naiveTicks;

  const nsPerTick = (seconds * 1e9) / ticks;
  const mb = (b: number): number => b / (1024 * 1024);
  return {
    scenario: 'features',
    date,
    options: o,
    host: {
      node: process.version,
      platform: process.platform,
      arch: process.arch,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
    },
    setup: {
      features: FULL_FEATURE_SPECS.length,
      outputs: sets[0]!.names.length,
      names: sets[0]!.names,
      streamBlock: BLOCK,
    },
    subject: {
      ticks,
      seconds,
      nsPerTick,
      ticksPerSec: ticks / seconds,
      batchNsPerTick: {
        count: us.count,
        min: ns(us.min),
        mean: ns(us.mean),
        p50: ns(us.p50),
        p90: ns(us.p90),
        p99: ns(us.p99),
        p999: ns(us.p999),
        max: ns(us.max),
      },
      constructUsPerSymbol: constructUs,
    },
    naive: {
      ticks: o.naiveTicks,
      symbols: o.naiveSymbols,
      seconds: naiveSeconds,
      nsPerTick: naiveNs,
    },
    ratio: naiveNs / nsPerTick,
    heap: {
      beforeMB: mb(before),
      afterMB: mb(after),
      growthMB: mb(after - before),
      ticks,
      gcForced: gc !== undefined,
    },
    targets: {
      nsPerTickUnder1us: nsPerTick < 1000,
      heapGrowthUnder1MB: mb(after - before) < 1,
    },
  };
}

/** The human report: a table, the batch percentiles, the targets. */
export function formatFeaturesReport(r: FeaturesBenchReport): string {
  const n = (x: number, d = 0): string =>
    x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
  const rows: [string, string, string, string][] = [
    ['', 'ticks', 'ns/tick', 'ticks/s'],
    [
      `FeatureSet (${r.options.symbols} symbols)`,
      n(r.subject.ticks),
      n(r.subject.nsPerTick, 1),
      n(r.subject.ticksPerSec),
    ],
    [
      `naive (${r.naive.symbols} symbols)`,
      n(r.naive.ticks),
      n(r.naive.nsPerTick, 1),
      n(r.naive.ticks / r.naive.seconds),
    ],
  ];
  const w = [0, 1, 2, 3].map((c) => Math.max(...rows.map((row) => row[c]!.length)));
  const line = (row: string[]): string =>
    row.map((cell, c) => (c === 0 ? cell.padEnd(w[0]!) : cell.padStart(w[c]!))).join('   ');
  const b = r.subject.batchNsPerTick;
  const pass = (ok: boolean): string => (ok ? 'PASS' : 'FAIL');
  return [
    `features bench: ${r.setup.features} default features (${r.setup.outputs} outputs) per symbol, ${r.host.cpus} × ${r.host.cpuModel}, node ${r.host.node}`,
    '',
    line(rows[0]!),
    line(rows[1]!),
    line(rows[2]!),
    '',
    `naive / FeatureSet: ${n(r.ratio, 1)}×`,
    // formatSummary prints µs; the values here are ns per tick of 1,024-tick batches
    formatSummary('batch means', b).replace(/ µs$/, ' ns/tick'),
    `heap growth over ${n(r.heap.ticks)} ticks: ${r.heap.growthMB.toFixed(3)} MB (${r.heap.beforeMB.toFixed(1)} → ${r.heap.afterMB.toFixed(1)} MB${r.heap.gcForced ? ', GC forced' : ', GC not available: indicative'})`,
    `construction: ${r.subject.constructUsPerSymbol.toFixed(1)} µs per symbol`,
    '',
    `targets: full set < 1 µs/tick per symbol: ${pass(r.targets.nsPerTickUnder1us)} (${n(r.subject.nsPerTick, 1)} ns); heap growth < 1 MB: ${pass(r.targets.heapGrowthUnder1MB)} (${r.heap.growthMB.toFixed(3)} MB)`,
    '',
  ].join('\n');
}

/** Write `<dir>/features-<UTC time>Z.json`; returns the path. */
export function writeFeaturesReport(r: FeaturesBenchReport, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `features-${r.date.slice(0, 19).replace(/:/g, '-')}Z.json`);
  writeFileSync(file, `${JSON.stringify(r, null, 2)}\n`);
  return file;
}
