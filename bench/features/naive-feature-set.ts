import {
  outputNames,
  resolveFeatureSpecs,
  type FeatureSpec,
} from '../../actors/indicators/feature-set.js';
import {
  naiveAtr,
  naiveBollinger,
  naiveEma,
  naiveImbalance,
  naiveLogReturn,
  naiveMacd,
  naiveObv,
  naiveRealizedVol,
  naiveRelSpread,
  naiveRsi,
  naiveSma,
  naiveSpread,
  naiveStats,
  naiveVwap,
  naiveWma,
} from './naive.js';

/** Values of history the naive set keeps per input (recursive indicators rerun over it). */
export const NAIVE_HISTORY = 512;

/** A growing series that keeps its last NAIVE_HISTORY … 2·NAIVE_HISTORY values. */
class History {
  xs: number[] = [];
  push(x: number): void {
    if (this.xs.length >= 2 * NAIVE_HISTORY) this.xs.splice(0, NAIVE_HISTORY);
    this.xs.push(x);
  }
}

/**
 * The FeatureSet computed the naive way (the bench's baseline): every tick
 * appends to plain history arrays and recomputes every indicator fed by that
 * tick from scratch with the functions of naive.ts: windowed ones over their
 * window, recursive ones (EMA, RSI, MACD, ATR, OBV, session VWAP) over the
 * retained history (the last 512 to 1,024 values). Same names and `values`
 * layout as FeatureSet.
 */
export class NaiveFeatureSet {
  readonly names: string[] = [];
  readonly values: Float64Array;
  readonly barSeries: string[] = [];
  private readonly specs: FeatureSpec[];
  private readonly offsets: number[] = [];
  private readonly px = new History();
  private readonly qty = new History();
  private readonly mid = new History();
  private readonly bars: { h: History; l: History; c: History }[] = [];
  private bid = 0;
  private ask = 0;
  private bidQty = 0;
  private askQty = 0;

  constructor(specs: readonly FeatureSpec[]) {
    this.specs = resolveFeatureSpecs(specs);
    for (const s of this.specs) {
      this.offsets.push(this.names.length);
      this.names.push(...outputNames(s));
      if (s.kind === 'atr' && !this.barSeries.includes(s.bars!)) {
        this.barSeries.push(s.bars!);
        this.bars.push({ h: new History(), l: new History(), c: new History() });
      }
    }
    this.values = new Float64Array(this.names.length).fill(Number.NaN);
  }

  onTrade(px: number, qty: number): void {
    this.px.push(px);
    this.qty.push(qty);
    this.compute('trade', -1);
  }

  onQuote(bid: number, bidQty: number, ask: number, askQty: number): void {
    this.bid = bid;
    this.ask = ask;
    this.bidQty = bidQty;
    this.askQty = askQty;
    this.mid.push((bid + ask) / 2);
    this.compute('quote', -1);
  }

  onBar(series: number, high: number, low: number, close: number): void {
    const b = this.bars[series];
    if (b === undefined) return;
    b.h.push(high);
    b.l.push(low);
    b.c.push(close);
    this.compute('bar', series);
  }

  private compute(feed: 'trade' | 'quote' | 'bar', series: number): void {
    const v = this.values;
    this.specs.forEach((s, i) => {
      const o = this.offsets[i]!;
      const k = s.kind;
      if (k === 'atr') {
        if (feed !== 'bar' || this.barSeries.indexOf(s.bars!) !== series) return;
        const b = this.bars[series]!;
        v[o] = naiveAtr(b.h.xs, b.l.xs, b.c.xs, b.c.xs.length, s.period!);
        return;
      }
      if (k === 'vwap' || k === 'obv') {
        if (feed !== 'trade') return;
        const px = this.px.xs;
        const q = this.qty.xs;
        v[o] = k === 'obv' ? naiveObv(px, q, px.length) : naiveVwap(px, q, px.length, s.period!);
        return;
      }
      if (k === 'imbalance' || k === 'spread' || k === 'relSpread') {
        if (feed !== 'quote') return;
        v[o] =
          k === 'imbalance'
            ? naiveImbalance(this.bidQty, this.askQty)
            : k === 'spread'
              ? naiveSpread(this.bid, this.ask)
              : naiveRelSpread(this.bid, this.ask);
        return;
      }
      if (feed !== (s.input === 'mid' ? 'quote' : 'trade')) return;
      const xs = s.input === 'mid' ? this.mid.xs : this.px.xs;
      const end = xs.length;
      const p = s.period!;
      switch (k) {
        case 'sma':
          v[o] = naiveSma(xs, end, p);
          break;
        case 'ema':
          v[o] = naiveEma(xs, end, p);
          break;
        case 'wma':
          v[o] = naiveWma(xs, end, p);
          break;
        case 'rsi':
          v[o] = naiveRsi(xs, end, p);
          break;
        case 'mean':
          v[o] = naiveStats(xs, end, p).mean;
          break;
        case 'variance':
          v[o] = naiveStats(xs, end, p).variance;
          break;
        case 'stddev':
          v[o] = naiveStats(xs, end, p).stddev;
          break;
        case 'zscore':
          v[o] = naiveStats(xs, end, p).zscore;
          break;
        case 'realizedVol':
          v[o] = naiveRealizedVol(xs, end, p);
          break;
        case 'logReturn':
          v[o] = naiveLogReturn(xs, end);
          break;
        case 'macd': {
          const m = naiveMacd(xs, end, s.fast!, s.slow!, s.signal!);
          v[o] = m.line;
          v[o + 1] = m.signal;
          v[o + 2] = m.hist;
          break;
        }
        case 'bollinger': {
          const b = naiveBollinger(xs, end, p, s.k!);
          v[o] = b.upper;
          v[o + 1] = b.middle;
          v[o + 2] = b.lower;
          v[o + 3] = b.pctb;
          break;
        }
      }
    });
  }
}
