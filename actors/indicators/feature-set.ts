import { invalidArgument } from '../../kernel/errors.js';
import { resolvedOnce } from '../resolved-options.js';
import { ATR } from './bar-indicators.js';
import { Imbalance, RelSpread, Spread } from './book-indicators.js';
import { checkNonNegative, checkPeriod } from './common.js';
import { EMA, SMA, WMA } from './moving-averages.js';
import { MACD, RSI } from './oscillators.js';
import { Bollinger, RollingStats } from './rolling-stats.js';
import { LogReturn, OBV, RealizedVol, VWAP } from './trade-indicators.js';

export type FeatureKind =
  | 'sma'
  | 'ema'
  | 'wma'
  | 'rsi'
  | 'mean'
  | 'variance'
  | 'stddev'
  | 'zscore'
  | 'realizedVol'
  | 'logReturn'
  | 'macd'
  | 'bollinger'
  | 'vwap'
  | 'atr'
  | 'obv'
  | 'imbalance'
  | 'spread'
  | 'relSpread';

/**
 * One named indicator of a FeatureSet (config key `features`, an array of these).
 *
 * | kind                                               | keys (besides name, kind)                      |
 * | -------------------------------------------------- | ---------------------------------------------- |
 * | sma ema wma rsi mean variance stddev zscore realizedVol | `period` (required), `input`              |
 * | logReturn                                          | `input`                                        |
 * | macd                                               | `fast` 12, `slow` 26, `signal` 9, `input`      |
 * | bollinger                                          | `period` (required), `k` 2, `input`            |
 * | vwap                                               | `period` (required; 0 = session VWAP)          |
 * | atr                                                | `period` (required), `bars` '1s'               |
 * | obv imbalance spread relSpread                     | none                                           |
 *
 * `input`: 'px' (trade prices, the default) or 'mid' (quote mid prices).
 * vwap and obv take trades (price and quantity); atr takes the bars of the
 * series `bars`; imbalance, spread and relSpread take quotes.
 */
export interface FeatureSpec {
  name: string;
  kind: FeatureKind;
  period?: number;
  input?: 'px' | 'mid';
  fast?: number;
  slow?: number;
  signal?: number;
  k?: number;
  bars?: string;
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

const KEYS_OF: Readonly<Record<FeatureKind, readonly string[]>> = {
  sma: ['period', 'input'],
  ema: ['period', 'input'],
  wma: ['period', 'input'],
  rsi: ['period', 'input'],
  mean: ['period', 'input'],
  variance: ['period', 'input'],
  stddev: ['period', 'input'],
  zscore: ['period', 'input'],
  realizedVol: ['period', 'input'],
  logReturn: ['input'],
  macd: ['fast', 'slow', 'signal', 'input'],
  bollinger: ['period', 'k', 'input'],
  vwap: ['period'],
  atr: ['period', 'bars'],
  obv: [],
  imbalance: [],
  spread: [],
  relSpread: [],
};

const KINDS = Object.keys(KEYS_OF) as FeatureKind[];
const ALL_KEYS = ['name', 'kind', 'period', 'input', 'fast', 'slow', 'signal', 'k', 'bars'];

/** Output names of one spec: `name`, or the expansion of a multi-output indicator. */
export function outputNames(spec: Pick<FeatureSpec, 'name' | 'kind'>): string[] {
  const n = spec.name;
  if (spec.kind === 'macd') return [`${n}_line`, `${n}_signal`, `${n}_hist`];
  if (spec.kind === 'bollinger') return [`${n}_upper`, `${n}_middle`, `${n}_lower`, `${n}_pctb`];
  return [n];
}

/**
 * Validate a `features` config value (an array of FeatureSpec) and return it
 * with the defaults filled in. A bad entry throws QLN_INVALID_ARGUMENT naming
 * the key, e.g. `features[3].period`; unknown keys and keys the kind does not
 * use are errors too (a typo must not silently fall back to a default).
 * Names must match /^[A-Za-z_][A-Za-z0-9_]*$/ and be unique across every
 * output name (MACD and Bollinger expand, see FeatureSet.names).
 */
export function resolveFeatureSpecs(raw: unknown): FeatureSpec[] {
  if (!Array.isArray(raw)) invalidArgument('features', raw, 'an array of feature specs');
  const out: FeatureSpec[] = [];
  const seen = new Set<string>();
  (raw as unknown[]).forEach((item, i) => {
    const at = `features[${i}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      invalidArgument(at, item, 'an object { name, kind, … }');
    }
    const o = item as Record<string, unknown>;
    for (const key of Object.keys(o)) {
      if (!ALL_KEYS.includes(key)) {
        invalidArgument(`${at}.${key}`, o[key], `no such key (keys: ${ALL_KEYS.join(', ')})`);
      }
    }
    if (typeof o['name'] !== 'string' || !NAME_RE.test(o['name'])) {
      invalidArgument(`${at}.name`, o['name'], 'a name matching /^[A-Za-z_][A-Za-z0-9_]*$/');
    }
    const name = o['name'];
    const kind = o['kind'];
    if (typeof kind !== 'string' || !(KINDS as string[]).includes(kind)) {
      invalidArgument(`${at}.kind`, kind, KINDS.join(', '));
    }
    const k = kind as FeatureKind;
    const allowed = KEYS_OF[k];
    for (const key of Object.keys(o)) {
      if (key !== 'name' && key !== 'kind' && !allowed.includes(key) && o[key] !== undefined) {
        invalidArgument(
          `${at}.${key}`,
          o[key],
          `not used by kind ${k} (keys: name, kind${allowed.map((a) => `, ${a}`).join('')})`,
        );
      }
    }
    const spec: FeatureSpec = { name, kind: k };
    if (allowed.includes('input')) {
      const input = o['input'] ?? 'px';
      if (input !== 'px' && input !== 'mid') invalidArgument(`${at}.input`, input, "'px' or 'mid'");
      spec.input = input;
    }
    if (allowed.includes('period')) {
      spec.period = checkPeriod(`${at}.period`, o['period'], k === 'vwap' ? 0 : 1);
    }
    if (k === 'macd') {
      spec.fast = checkPeriod(`${at}.fast`, o['fast'] ?? 12);
      spec.slow = checkPeriod(`${at}.slow`, o['slow'] ?? 26);
      if (spec.slow <= spec.fast) {
        invalidArgument(`${at}.slow`, spec.slow, `an integer > fast (${spec.fast})`);
      }
      spec.signal = checkPeriod(`${at}.signal`, o['signal'] ?? 9);
    }
    if (k === 'bollinger') spec.k = checkNonNegative(`${at}.k`, o['k'] ?? 2);
    if (k === 'atr') {
      const bars = o['bars'] ?? '1s';
      if (typeof bars !== 'string' || !/^[A-Za-z0-9_.-]{1,32}$/.test(bars)) {
        invalidArgument(
          `${at}.bars`,
          bars,
          'a bar series name like 1s or 1m (1 to 32 of A-Z a-z 0-9 _ . -)',
        );
      }
      spec.bars = bars;
    }
    for (const n of outputNames(spec)) {
      if (seen.has(n)) {
        invalidArgument(`${at}.name`, name, `a name whose outputs (${n}) no other feature has`);
      }
      seen.add(n);
    }
    out.push(spec);
  });
  return out;
}

/** The default per-symbol set (config `features` when not given). */
/**
 * The kernel's default feature set: one or two of each family (trend,
 * momentum, oscillator, dispersion, volume, volatility, book), 11 values.
 * Every configured value is formatted into each prediction and stored with
 * it, about 0.4 µs per value per prediction in the worker plus the store's
 * share (docs/performance.md), so the default stays small; the whole
 * catalogue is a config away (FULL_FEATURE_SPECS, docs/features-and-quality.md).
 */
export const DEFAULT_FEATURE_SPECS: readonly FeatureSpec[] = Object.freeze(
  [
    { name: 'ema12', kind: 'ema', period: 12 },
    { name: 'ema26', kind: 'ema', period: 26 },
    { name: 'rsi14', kind: 'rsi', period: 14 },
    { name: 'macd', kind: 'macd', fast: 12, slow: 26, signal: 9 },
    { name: 'zscore50', kind: 'zscore', period: 50 },
    { name: 'vwap', kind: 'vwap', period: 100 },
    { name: 'atr14', kind: 'atr', period: 14, bars: '1s' },
    { name: 'imbalance', kind: 'imbalance' },
    { name: 'relSpread', kind: 'relSpread' },
  ].map((s) => Object.freeze(s as FeatureSpec)),
);

/** Every indicator kind once, 23 values: the features bench's set, and an example config. */
export const FULL_FEATURE_SPECS: readonly FeatureSpec[] = Object.freeze(
  [
    { name: 'ema12', kind: 'ema', period: 12 },
    { name: 'ema26', kind: 'ema', period: 26 },
    { name: 'sma20', kind: 'sma', period: 20 },
    { name: 'wma20', kind: 'wma', period: 20 },
    { name: 'rsi14', kind: 'rsi', period: 14 },
    { name: 'macd', kind: 'macd', fast: 12, slow: 26, signal: 9 },
    { name: 'bb', kind: 'bollinger', period: 20, k: 2 },
    { name: 'mean50', kind: 'mean', period: 50 },
    { name: 'stddev50', kind: 'stddev', period: 50 },
    { name: 'zscore50', kind: 'zscore', period: 50 },
    { name: 'vwap', kind: 'vwap', period: 100 },
    { name: 'rv50', kind: 'realizedVol', period: 50 },
    { name: 'logret', kind: 'logReturn' },
    { name: 'atr14', kind: 'atr', period: 14, bars: '1s' },
    { name: 'obv', kind: 'obv' },
    { name: 'imbalance', kind: 'imbalance' },
    { name: 'quoteSpread', kind: 'spread' },
    { name: 'relSpread', kind: 'relSpread' },
  ].map((s) => Object.freeze(s as FeatureSpec)),
);

/** A validated spec list laid out once (shared by every FeatureSet built from the same array). */
interface Plan {
  specs: FeatureSpec[];
  names: string[];
  /** First output index of each spec. */
  offsets: number[];
  barSeries: string[];
}

const PLANS = new WeakMap<readonly FeatureSpec[], Plan>();

function plan(specs: readonly FeatureSpec[]): Plan {
  const resolved = resolveFeatureSpecs(specs);
  const names: string[] = [];
  const offsets: number[] = [];
  const barSeries: string[] = [];
  for (const s of resolved) {
    offsets.push(names.length);
    names.push(...outputNames(s));
    if (s.kind === 'atr' && !barSeries.includes(s.bars!)) barSeries.push(s.bars!);
  }
  return { specs: resolved, names, offsets, barSeries };
}

/**
 * The price-fed indicators of one input ('px' or 'mid'), one array per class
 * so every update loop calls one class only (monomorphic), with the index in
 * `values` each output goes to.
 */
class PriceGroup {
  readonly sma: SMA[] = [];
  readonly smaOut: number[] = [];
  readonly ema: EMA[] = [];
  readonly emaOut: number[] = [];
  readonly wma: WMA[] = [];
  readonly wmaOut: number[] = [];
  readonly rsi: RSI[] = [];
  readonly rsiOut: number[] = [];
  /** One RollingStats per distinct period, shared by mean / variance / stddev / zscore. */
  readonly stats: RollingStats[] = [];
  /** Per stats entry: output index of mean, variance, stddev, zscore (−1: not asked). */
  readonly statsOut: number[] = [];
  readonly rv: RealizedVol[] = [];
  readonly rvOut: number[] = [];
  readonly ret: LogReturn[] = [];
  readonly retOut: number[] = [];
  /** MACD outputs at out, out+1, out+2 (line, signal, hist). */
  readonly macd: MACD[] = [];
  readonly macdOut: number[] = [];
  /** Bollinger outputs at out … out+3 (upper, middle, lower, pctb). */
  readonly bb: Bollinger[] = [];
  readonly bbOut: number[] = [];
  empty = true;

  /** A stats entry of `period` whose output `slot` is still free (two `mean 3` get two). */
  statsFor(period: number, slot: number): number {
    for (let i = 0; i < this.stats.length; i++) {
      if (this.stats[i]!.period === period && this.statsOut[4 * i + slot] === -1) return i;
    }
    this.stats.push(new RollingStats(period));
    this.statsOut.push(-1, -1, -1, -1);
    return this.stats.length - 1;
  }

  update(x: number, v: Float64Array): void {
    const sma = this.sma;
    for (let i = 0; i < sma.length; i++) {
      const ind = sma[i]!;
      ind.update(x);
      v[this.smaOut[i]!] = ind.value;
    }
    const ema = this.ema;
    for (let i = 0; i < ema.length; i++) {
      const ind = ema[i]!;
      ind.update(x);
      v[this.emaOut[i]!] = ind.value;
    }
    const wma = this.wma;
    for (let i = 0; i < wma.length; i++) {
      const ind = wma[i]!;
      ind.update(x);
      v[this.wmaOut[i]!] = ind.value;
    }
    const rsi = this.rsi;
    for (let i = 0; i < rsi.length; i++) {
      const ind = rsi[i]!;
      ind.update(x);
      v[this.rsiOut[i]!] = ind.value;
    }
    const stats = this.stats;
    const so = this.statsOut;
    for (let i = 0; i < stats.length; i++) {
      const ind = stats[i]!;
      ind.update(x);
      const b = 4 * i;
      let o = so[b]!;
      if (o >= 0) v[o] = ind.mean;
      o = so[b + 1]!;
      if (o >= 0) v[o] = ind.variance;
      o = so[b + 2]!;
      if (o >= 0) v[o] = ind.stddev;
      o = so[b + 3]!;
      if (o >= 0) v[o] = ind.zscore;
    }
    const rv = this.rv;
    for (let i = 0; i < rv.length; i++) {
      const ind = rv[i]!;
      ind.update(x);
      v[this.rvOut[i]!] = ind.value;
    }
    const ret = this.ret;
    for (let i = 0; i < ret.length; i++) {
      const ind = ret[i]!;
      ind.update(x);
      v[this.retOut[i]!] = ind.value;
    }
    const macd = this.macd;
    for (let i = 0; i < macd.length; i++) {
      const ind = macd[i]!;
      ind.update(x);
      const o = this.macdOut[i]!;
      v[o] = ind.line;
      v[o + 1] = ind.signal;
      v[o + 2] = ind.hist;
    }
    const bb = this.bb;
    for (let i = 0; i < bb.length; i++) {
      const ind = bb[i]!;
      ind.update(x);
      const o = this.bbOut[i]!;
      v[o] = ind.upper;
      v[o + 1] = ind.middle;
      v[o + 2] = ind.lower;
      v[o + 3] = ind.pctb;
    }
  }

  reset(): void {
    for (const a of [this.sma, this.ema, this.wma, this.rsi, this.stats, this.rv, this.ret]) {
      for (const ind of a) ind.reset();
    }
    for (const ind of this.macd) ind.reset();
    for (const ind of this.bb) ind.reset();
  }
}

const STAT_SLOT: Partial<Record<FeatureKind, number>> = {
  mean: 0,
  variance: 1,
  stddev: 2,
  zscore: 3,
};

/**
 * The per-symbol set of named indicators built from FeatureSpecs.
 *
 * `names` lists every output in spec order; MACD expands to `${name}_line`,
 * `${name}_signal`, `${name}_hist` and Bollinger to `${name}_upper`,
 * `${name}_middle`, `${name}_lower`, `${name}_pctb`. `values[i]` is the
 * current value of `names[i]` (NaN while that indicator warms up), refreshed
 * by the on* call that feeds it:
 *
 * - `onTrade(px, qty)`: the indicators with input 'px', vwap, obv
 * - `onQuote(bid, bidQty, ask, askQty)`: those with input 'mid' (mid = (bid + ask)/2),
 *   imbalance, spread, relSpread
 * - `onBar(series, high, low, close)`: atr of `barSeries[series]`
 *
 * Per tick: allocation-free, one monomorphic loop per indicator class. mean,
 * variance, stddev and zscore of the same input and period share one
 * RollingStats. Validation and layout run once per specs array (cached), so
 * building the set for a new symbol only creates the indicator objects.
 */
export class FeatureSet {
  readonly names: readonly string[];
  readonly values: Float64Array;
  readonly barSeries: readonly string[];
  private readonly px = new PriceGroup();
  private readonly mid = new PriceGroup();
  private readonly vwap: VWAP[] = [];
  private readonly vwapOut: number[] = [];
  private readonly obv: OBV[] = [];
  private readonly obvOut: number[] = [];
  private readonly imb: Imbalance[] = [];
  private readonly imbOut: number[] = [];
  private readonly spread: Spread[] = [];
  private readonly spreadOut: number[] = [];
  private readonly rel: RelSpread[] = [];
  private readonly relOut: number[] = [];
  private readonly atr: ATR[] = [];
  private readonly atrOut: number[] = [];
  private readonly atrSeries: number[] = [];
  private readonly index: ReadonlyMap<string, number>;

  constructor(specs: readonly FeatureSpec[] = DEFAULT_FEATURE_SPECS) {
    const p = resolvedOnce(PLANS, specs, plan);
    this.names = p.names;
    this.barSeries = p.barSeries;
    this.values = new Float64Array(p.names.length).fill(Number.NaN);
    this.index = indexOfNames(p);
    p.specs.forEach((s, i) => this.add(s, p.offsets[i]!, p.barSeries));
  }

  private add(s: FeatureSpec, out: number, barSeries: readonly string[]): void {
    const g = s.input === 'mid' ? this.mid : this.px;
    switch (s.kind) {
      case 'sma':
        g.sma.push(new SMA(s.period!));
        g.smaOut.push(out);
        break;
      case 'ema':
        g.ema.push(new EMA(s.period!));
        g.emaOut.push(out);
        break;
      case 'wma':
        g.wma.push(new WMA(s.period!));
        g.wmaOut.push(out);
        break;
      case 'rsi':
        g.rsi.push(new RSI(s.period!));
        g.rsiOut.push(out);
        break;
      case 'mean':
      case 'variance':
      case 'stddev':
      case 'zscore':
        g.statsOut[4 * g.statsFor(s.period!, STAT_SLOT[s.kind]!) + STAT_SLOT[s.kind]!] = out;
        break;
      case 'realizedVol':
        g.rv.push(new RealizedVol(s.period!));
        g.rvOut.push(out);
        break;
      case 'logReturn':
        g.ret.push(new LogReturn());
        g.retOut.push(out);
        break;
      case 'macd':
        g.macd.push(new MACD(s.fast, s.slow, s.signal));
        g.macdOut.push(out);
        break;
      case 'bollinger':
        g.bb.push(new Bollinger(s.period!, s.k));
        g.bbOut.push(out);
        break;
      case 'vwap':
        this.vwap.push(new VWAP(s.period!));
        this.vwapOut.push(out);
        return;
      case 'obv':
        this.obv.push(new OBV());
        this.obvOut.push(out);
        return;
      case 'imbalance':
        this.imb.push(new Imbalance());
        this.imbOut.push(out);
        return;
      case 'spread':
        this.spread.push(new Spread());
        this.spreadOut.push(out);
        return;
      case 'relSpread':
        this.rel.push(new RelSpread());
        this.relOut.push(out);
        return;
      case 'atr':
        this.atr.push(new ATR(s.period!));
        this.atrOut.push(out);
        this.atrSeries.push(barSeries.indexOf(s.bars!));
        return;
    }
    g.empty = false;
  }

  /** Index of an output name in `names` / `values`, −1 if unknown. */
  indexOf(name: string): number {
    return this.index.get(name) ?? -1;
  }

  /** One trade: the 'px' indicators, vwap, obv. */
  onTrade(px: number, qty: number): void {
    const v = this.values;
    if (!this.px.empty) this.px.update(px, v);
    const vwap = this.vwap;
    for (let i = 0; i < vwap.length; i++) {
      const ind = vwap[i]!;
      ind.update(px, qty);
      v[this.vwapOut[i]!] = ind.value;
    }
    const obv = this.obv;
    for (let i = 0; i < obv.length; i++) {
      const ind = obv[i]!;
      ind.update(px, qty);
      v[this.obvOut[i]!] = ind.value;
    }
  }

  /** One top-of-book quote: the 'mid' indicators, imbalance, spread, relSpread. */
  onQuote(bid: number, bidQty: number, ask: number, askQty: number): void {
    const v = this.values;
    if (!this.mid.empty) this.mid.update((bid + ask) / 2, v);
    const imb = this.imb;
    for (let i = 0; i < imb.length; i++) {
      const ind = imb[i]!;
      ind.update(bidQty, askQty);
      v[this.imbOut[i]!] = ind.value;
    }
    const spread = this.spread;
    for (let i = 0; i < spread.length; i++) {
      const ind = spread[i]!;
      ind.update(bid, ask);
      v[this.spreadOut[i]!] = ind.value;
    }
    const rel = this.rel;
    for (let i = 0; i < rel.length; i++) {
      const ind = rel[i]!;
      ind.update(bid, ask);
      v[this.relOut[i]!] = ind.value;
    }
  }

  /** One closed bar of `barSeries[series]`: the atr indicators of that series. */
  onBar(series: number, high: number, low: number, close: number): void {
    const atr = this.atr;
    for (let i = 0; i < atr.length; i++) {
      if (this.atrSeries[i] !== series) continue;
      const ind = atr[i]!;
      ind.update(high, low, close);
      this.values[this.atrOut[i]!] = ind.value;
    }
  }

  /** Back to the state before the first tick (every value NaN). */
  reset(): void {
    this.px.reset();
    this.mid.reset();
    for (const a of [this.vwap, this.obv, this.imb, this.spread, this.rel, this.atr]) {
      for (const ind of a) ind.reset();
    }
    this.values.fill(Number.NaN);
  }
}

const INDEXES = new WeakMap<Plan, ReadonlyMap<string, number>>();

function indexOfNames(p: Plan): ReadonlyMap<string, number> {
  return resolvedOnce(INDEXES, p, (q) => new Map(q.names.map((n, i) => [n, i])));
}
