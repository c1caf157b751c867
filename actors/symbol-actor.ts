import type { MarketActor, OutputSink } from '../kernel/actor.js';
import { stampUs } from '../kernel/clock.js';
import { MarketKind, type MarketEvent } from '../kernel/market-record.js';
import { OutputKind, newOutputEvent, type OutputEvent } from '../kernel/output-record.js';
import {
  BaselineModel,
  DEFAULT_BASELINE_MODEL_OPTIONS,
  type BaselineModelOptions,
  type Model,
} from './baseline-model.js';
import { DEFAULT_FEATURE_OPTIONS, Features, type FeatureOptions } from './features.js';
import {
  DEFAULT_MOMENTUM_OPTIONS,
  MomentumStrategy,
  type MomentumOptions,
} from './momentum-strategy.js';
import { OutputLayout, QualityIssue } from './output-layout.js';
import { DEFAULT_QUALITY_OPTIONS, QualityChecker, type QualityOptions } from './quality-checker.js';
import {
  QUOTE_COLUMNS,
  RollingWindow,
  TRADE_COLUMNS,
  type QuoteColumn,
  type TradeColumn,
} from './rolling-window.js';

/**
 * Options of a SymbolActor: one flat, structured-clone-able object (it crosses
 * the worker boundary as `ShardContext.options`). Every field has a default;
 * `resolveSymbolActorOptions` (symbol-actor-module.ts) validates them.
 */
export interface SymbolActorOptions
  extends FeatureOptions, QualityOptions, BaselineModelOptions, MomentumOptions {
  /**
   * Rows of the trade and of the quote window; a power of two. Default 256.
   * Preallocated per symbol: 2 windows × 5 Float64 columns × 8 B × rows,
   * 20 KiB at 256 (80 KiB at 1024). Features are incremental and do not read
   * the window; it is the tick history exposed as an Arrow RecordBatch.
   */
  windowCapacity: number;
  /** At most one PREDICTION record per this much exchange time per symbol, µs. Default 100 ms. */
  predictionIntervalUs: number;
}

export const DEFAULT_SYMBOL_ACTOR_OPTIONS: Readonly<SymbolActorOptions> = {
  ...DEFAULT_FEATURE_OPTIONS,
  ...DEFAULT_QUALITY_OPTIONS,
  ...DEFAULT_BASELINE_MODEL_OPTIONS,
  ...DEFAULT_MOMENTUM_OPTIONS,
  windowCapacity: 256,
  predictionIntervalUs: 100_000,
};

/** A tick with any of these is counted by quality but not folded into window or features. */
const SKIP_TRADE = QualityIssue.BAD_VALUE | QualityIssue.OUT_OF_ORDER;
const SKIP_QUOTE = SKIP_TRADE | QualityIssue.CROSSED_QUOTE;

/**
 * The per-symbol actor of a worker shard.
 *
 * ```
 *  MarketEvent (reused) ──► quality.check ─┬─ bad value / out of order: counted only
 *                                          ▼
 *   trade: window ◄─ features ─ feat ─► model ─ infer ─► strategy
 *   quote: quote window, spread/mid          │                │
 *                                            ▼                ▼
 *                  out.emit: PREDICTION (≤ 1 per predictionIntervalUs; a signal carries its own score)
 *                            SIGNAL     (per MomentumStrategy)
 *                            QUALITY    (window end, or a change of issue state: ≤ 1 per 100 ms)
 * ```
 * Ticks that are bad values or out of order are not folded in: a duplicate
 * would count twice and a non-positive price would poison every EMA with NaN.
 * Everything is preallocated; `onMarket` allocates nothing. All "per time"
 * limits run on exchange time so replay behaves like live.
 */
export class SymbolActor implements MarketActor {
  readonly symId: number;
  readonly options: Readonly<SymbolActorOptions>;
  readonly trades: RollingWindow<TradeColumn>;
  readonly quotes: RollingWindow<QuoteColumn>;
  readonly features: Features;
  readonly quality: QualityChecker;
  readonly model: Model;
  readonly strategy: MomentumStrategy;
  private readonly out: OutputEvent = newOutputEvent();
  private lastPredictionTs = -Infinity;

  /**
   * `options` must be complete (use resolveSymbolActorOptions); `model`
   * defaults to the BaselineModel with the options' weights.
   */
  constructor(symId: number, options: Readonly<SymbolActorOptions>, model?: Model) {
    this.symId = symId;
    this.options = options;
    this.trades = new RollingWindow(TRADE_COLUMNS, options.windowCapacity);
    this.quotes = new RollingWindow(QUOTE_COLUMNS, options.windowCapacity);
    this.features = new Features(options);
    this.quality = new QualityChecker(options);
    this.model = model ?? new BaselineModel(options);
    this.strategy = new MomentumStrategy(options);
    this.out.symId = symId;
  }

  onMarket(ev: MarketEvent, sink: OutputSink): void {
    if (ev.kind === MarketKind.TRADE) this.onTrade(ev, sink);
    else this.onQuote(ev, sink);
  }

  private onTrade(ev: MarketEvent, sink: OutputSink): void {
    const f = this.features;
    const q = this.quality;
    const bits = q.checkTrade(
      ev.seq,
      ev.ts,
      ev.recv,
      ev.px,
      ev.qty,
      f.lastPx,
      f.vol,
      f.trades >= this.options.warmup,
    );
    if ((bits & SKIP_TRADE) === 0) {
      const s = this.trades.slot();
      const c = this.trades.columns;
      c.ts[s] = ev.ts;
      c.seq[s] = ev.seq;
      c.px[s] = ev.px;
      c.qty[s] = ev.qty;
      c.side[s] = ev.side;
      f.onTrade(ev.px);
      const feat = stampUs();
      const score = this.model.predict(f);
      const infer = stampUs();
      const qs = q.score;
      const signal = this.strategy.evaluate(score, ev.ts, f.trades, qs);
      if (ev.ts - this.lastPredictionTs >= this.options.predictionIntervalUs) {
        this.lastPredictionTs = ev.ts;
        this.emitPrediction(ev, feat, infer, score, qs, sink);
      }
      if (signal) this.emitSignal(ev, feat, infer, score, qs, sink);
    }
    this.maybeEmitQuality(ev, bits, sink);
  }

  private onQuote(ev: MarketEvent, sink: OutputSink): void {
    const bits = this.quality.checkQuote(
      ev.seq,
      ev.ts,
      ev.recv,
      ev.bid,
      ev.bidQty,
      ev.ask,
      ev.askQty,
    );
    if ((bits & SKIP_QUOTE) === 0) {
      const s = this.quotes.slot();
      const c = this.quotes.columns;
      c.ts[s] = ev.ts;
      c.bid[s] = ev.bid;
      c.bidQty[s] = ev.bidQty;
      c.ask[s] = ev.ask;
      c.askQty[s] = ev.askQty;
      this.features.onQuote(ev.bid, ev.ask);
    }
    this.maybeEmitQuality(ev, bits, sink);
  }

  private head(
    ev: MarketEvent,
    kind: OutputEvent['kind'],
    feat: number,
    infer: number,
  ): OutputEvent {
    const o = this.out;
    o.kind = kind;
    o.srcSeq = ev.seq;
    o.srcTs = ev.ts;
    o.recv = ev.recv;
    o.feat = feat;
    o.infer = infer;
    o.emit = 0;
    return o;
  }

  private emitPrediction(
    ev: MarketEvent,
    feat: number,
    infer: number,
    score: number,
    qualityScore: number,
    sink: OutputSink,
  ): void {
    const o = this.head(ev, OutputKind.PREDICTION, feat, infer);
    const p = o.payload;
    const L = OutputLayout.prediction;
    const f = this.features;
    p[L.SCORE] = score;
    p[L.EMA_FAST] = f.emaFast;
    p[L.EMA_SLOW] = f.emaSlow;
    p[L.RET] = f.ret;
    p[L.VOL] = f.vol;
    p[L.SPREAD] = f.spread;
    p[L.ZSCORE] = f.zscore;
    p[L.MID] = f.mid;
    p[L.QUALITY] = qualityScore;
    sink.emit(o);
  }

  private emitSignal(
    ev: MarketEvent,
    feat: number,
    infer: number,
    score: number,
    qualityScore: number,
    sink: OutputSink,
  ): void {
    const o = this.head(ev, OutputKind.SIGNAL, feat, infer);
    const p = o.payload;
    const L = OutputLayout.signal;
    const st = this.strategy;
    p.fill(0);
    p[L.SIDE] = st.side;
    p[L.STRENGTH] = st.strength;
    p[L.REF_PX] = ev.px;
    p[L.QTY] = st.qty;
    p[L.PRED_SCORE] = score;
    p[L.QUALITY] = qualityScore;
    sink.emit(o);
  }

  private maybeEmitQuality(ev: MarketEvent, bits: number, sink: OutputSink): void {
    const q = this.quality;
    const immediate = q.immediateDue(bits);
    const windowEnd = q.windowDue;
    if (!immediate && !windowEnd) return;
    const t = stampUs();
    const o = this.head(ev, OutputKind.QUALITY, t, t);
    q.writePayload(o.payload);
    sink.emit(o);
    if (windowEnd) q.resetWindow();
  }
}
