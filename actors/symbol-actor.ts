import type { MarketActor, OutputSink } from '../kernel/actor.js';
import { stampUs } from '../kernel/clock.js';
import { MarketKind, newMarketEvent, type MarketEvent } from '../kernel/market-record.js';
import { OutputKind, newOutputEvent, type OutputEvent } from '../kernel/output-record.js';
import {
  BaselineModel,
  DEFAULT_BASELINE_MODEL_OPTIONS,
  type BaselineModelOptions,
  type Model,
} from './baseline-model.js';
import { DEFAULT_FEATURE_OPTIONS, Features, type FeatureOptions } from './features.js';
import type { BatchMember, ModelBatch } from './model-batch.js';
import type { DecisionView } from '../kernel/decision-board.js';
import {
  MAX_CONFIGURED_FEATURES,
  OutputLayout,
  QualityEventKind,
  QualityIssue,
} from './output-layout.js';
import { DEFAULT_SIGNAL_OPTIONS, SignalGate, type SignalOptions } from './signal-gate.js';
import { ModelThreshold, type Strategy, type StrategyConfig } from './strategies.js';
import { BarWindow, DEFAULT_BAR_SPECS, type BarSpec } from './bar-window.js';
import { compileFormulas, type CompiledFormulas, type FormulaSpec } from './formula.js';
import { DEFAULT_FEATURE_SPECS, FeatureSet, type FeatureSpec } from './indicators/feature-set.js';
import { BUILTIN_FEATURES } from './output-decoder.js';
import { invalidArgument } from '../kernel/errors.js';
import {
  readState,
  shapeOf,
  writeState,
  type StateReader,
  type StateWriter,
} from '../kernel/actor-state.js';
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
  extends FeatureOptions, QualityOptions, BaselineModelOptions, SignalOptions {
  /**
   * Rows of the trade and of the quote window; a power of two. Default 256.
   * Preallocated per symbol: 2 windows × 5 Float64 columns × 8 B × rows,
   * 20 KiB at 256 (80 KiB at 1024). Features are incremental and do not read
   * the window; it is the tick history exposed as an Arrow RecordBatch.
   */
  windowCapacity: number;
  /** At most one PREDICTION record per this much exchange time per symbol, µs. Default 100 ms. */
  predictionIntervalUs: number;
  /** The strategy (actors/strategies.ts); default `{kind: 'model'}` on `threshold`. */
  rule: StrategyConfig;
  /** Named incremental indicators (actors/indicators/feature-set.ts); default DEFAULT_FEATURE_SPECS. */
  features: readonly FeatureSpec[];
  /** Derived features as formulas over the indicators and FORMULA_COLUMNS (actors/formula.ts). Default none. */
  formulas: readonly FormulaSpec[];
  /** Time bars kept per symbol (actors/bar-window.ts); default 1 s and 1 min. */
  bars: readonly BarSpec[];
}

/**
 * The last tick's values formulas may use beside the indicators: the last
 * trade (px, qty) and the last quote (bid, ask, bidQty, askQty, mid).
 */
/** Longest configured feature name (an indicator output or a formula). */
export const MAX_FEATURE_NAME = 32;

export const FORMULA_COLUMNS = ['px', 'qty', 'bid', 'ask', 'bidQty', 'askQty', 'mid'] as const;

export const DEFAULT_SYMBOL_ACTOR_OPTIONS: Readonly<SymbolActorOptions> = {
  ...DEFAULT_FEATURE_OPTIONS,
  ...DEFAULT_QUALITY_OPTIONS,
  ...DEFAULT_BASELINE_MODEL_OPTIONS,
  ...DEFAULT_SIGNAL_OPTIONS,
  windowCapacity: 256,
  predictionIntervalUs: 100_000,
  rule: { kind: 'model', threshold: DEFAULT_SIGNAL_OPTIONS.threshold },
  features: DEFAULT_FEATURE_SPECS,
  formulas: [],
  bars: DEFAULT_BAR_SPECS,
};

/**
 * Everything an actor's features need that is the same for every symbol:
 * built once per shard (factory) from the options, shared by its actors.
 */
export interface FeaturePlan {
  /** Names of the configured features in value order: indicator outputs, then formulas. */
  readonly names: readonly string[];
  readonly indicators: number;
  readonly formulas: CompiledFormulas | undefined;
}

/**
 * Validate the feature configuration as a whole and compile the formulas
 * (QLN_FORMULA_INVALID naming the feature, position and reason). Throws
 * QLN_INVALID_ARGUMENT when names collide or there are too many.
 */
export function featurePlan(options: Readonly<SymbolActorOptions>): FeaturePlan {
  const fs = new FeatureSet(options.features);
  for (const n of fs.names) {
    if (
      (FORMULA_COLUMNS as readonly string[]).includes(n) ||
      (BUILTIN_FEATURES as readonly string[]).includes(n)
    ) {
      invalidArgument(
        'features',
        n,
        `names other than the window columns (${FORMULA_COLUMNS.join(', ')}) and the built-in features (${BUILTIN_FEATURES.join(', ')})`,
      );
    }
  }
  const bars = new Set(options.bars.map((b) => b.name));
  for (const b of fs.barSeries) {
    if (!bars.has(b))
      invalidArgument('features', b, `bars of a configured series (${[...bars].join(', ')})`);
  }
  const formulas =
    options.formulas.length === 0
      ? undefined
      : compileFormulas(options.formulas, [...fs.names, ...FORMULA_COLUMNS]);
  const names = [...fs.names, ...(formulas?.names ?? [])];
  // Bounded so the largest prediction frame fits MAX_OUTPUT_FRAME_BYTES.
  const long = names.find((n) => n.length > MAX_FEATURE_NAME);
  if (long !== undefined) {
    invalidArgument('features', long, `names of at most ${MAX_FEATURE_NAME} characters`);
  }
  if (names.length > MAX_CONFIGURED_FEATURES) {
    invalidArgument(
      'features',
      names.length,
      `at most ${MAX_CONFIGURED_FEATURES} features and formulas in all`,
    );
  }
  for (const n of formulas?.names ?? []) {
    if ((BUILTIN_FEATURES as readonly string[]).includes(n)) {
      invalidArgument(
        'formulas',
        n,
        `names other than the built-in features (${BUILTIN_FEATURES.join(', ')})`,
      );
    }
  }
  return { names, indicators: fs.names.length, formulas };
}

/**
 * Fields of a SymbolActor that are not its state: the configuration and
 * feature plan (shared, checked by the snapshot fingerprint), the shard's
 * DecisionBoard view and slot and the symbol id (this process's numbering:
 * a restarted kernel numbers symbols in arrival order), and the scratch
 * output record; the feature set's name index (a shared, computed-once Map).
 */
const NOT_STATE: ReadonlySet<string> = new Set([
  'options',
  'plan',
  'decisions',
  'slot',
  'symId',
  'out',
  'index',
  'batch',
  'pending',
  'pendingSink',
  'pendingFeat',
  'pendingQuality',
  'pendingSpread',
  'pendingMid',
  'shadowSink',
  'predicted',
]);

/**
 * What else an actor is built with (all optional): the model (default the
 * BaselineModel), the strategy (default `model` on the options' threshold),
 * and where the main thread posts what executors were last told.
 */
export interface SymbolActorParts {
  /** The shard's feature plan (featurePlan(options)); built here when absent. */
  plan?: FeaturePlan;
  model?: Model;
  strategy?: Strategy;
  /** The shard's DecisionBoard view and this symbol's local index in it. */
  decisions?: DecisionView;
  decisionSlot?: number;
  /**
   * The shard's model batch (actors/model-batch.ts): while a model is
   * loaded, trades are scored in batches at the end of a drain instead of by
   * `model` (which stays the rule the fallback chain uses).
   */
  batch?: ModelBatch;
}

/**
 * The per-symbol actor of a worker shard.
 *
 * ```
 *  MarketEvent (reused) ──► quality.check ─┬─ quarantined (bad value, crossed, out of order,
 *                                          │  duplicate, …): counted, `quarantine` record
 *                                          ▼
 *   trade: window ◄─ features ─ feat ─► model ─ infer ─► strategy.target ─► gate ◄─ approved side
 *   quote: quote window, spread/mid          │                                 │     (DecisionBoard)
 *                                            ▼                                 ▼
 *                  out.emit: PREDICTION (≤ 1 per predictionIntervalUs; a signal carries its own score)
 *                            SIGNAL     (a proposal: the target differs from what was approved)
 *                            QUALITY    (window end; a change of state, a quarantined tick: ≤ 1 per
 *                                        100 ms each; a sequence reset)
 * ```
 * Quarantined ticks are not folded in: a duplicate would count twice and a
 * non-positive price would poison every average with NaN.
 * Everything is preallocated; `onMarket` allocates nothing. All "per time"
 * limits run on exchange time so replay behaves like live.
 */
export class SymbolActor implements MarketActor, BatchMember {
  readonly symId: number;
  readonly options: Readonly<SymbolActorOptions>;
  readonly trades: RollingWindow<TradeColumn>;
  readonly quotes: RollingWindow<QuoteColumn>;
  readonly features: Features;
  readonly quality: QualityChecker;
  readonly model: Model;
  readonly strategy: Strategy;
  readonly gate: SignalGate;
  /** The configured indicators. */
  readonly featureSet: FeatureSet;
  /** Time bars, one window per BarSpec. */
  readonly bars: readonly BarWindow[];
  /** Values of the configured features (plan.names order): what strategies read and predictions carry. */
  readonly featureValues: Float64Array;
  private readonly plan: FeaturePlan;
  /** For each bar window, its series in featureSet.barSeries (−1: no indicator uses it). */
  private readonly barSeries: Int32Array;
  /** Formula inputs: indicator values, then FORMULA_COLUMNS. */
  private readonly formulaIn: Float64Array;
  private readonly formulaOut: Float64Array;
  private readonly out: OutputEvent = newOutputEvent();
  private readonly decisions: DecisionView | undefined;
  private readonly slot: number;
  /** Without a DecisionBoard (unit tests): the last unsuppressed proposal counts as approved. */
  private selfApproved = 0;
  private lastPredictionTs = -Infinity;
  private readonly batch: ModelBatch | undefined;
  /** The trade waiting for its batch's score (a copy: the source reuses its event). */
  private readonly pending: MarketEvent;
  /** Where the waiting trade's outputs go; undefined: none waiting. */
  private pendingSink: OutputSink | undefined;
  private pendingFeat = 0;
  /**
   * What a quote may change before the waiting trade completes, as it was
   * at the trade: the quality score the gate and emits use, and the spread
   * and mid the prediction carries. (Everything else phase 2 reads changes
   * only on a trade, and a trade completes the waiting one first.)
   */
  private pendingQuality = 0;
  private pendingSpread = 0;
  private pendingMid = 0;
  /** The completed trade's sink, for the shadow's answer right after (BatchMember.shadow). */
  private shadowSink: OutputSink | undefined;
  /** Whether the last trade decided made a (live) prediction: the shadow's is paired with it. */
  private predicted = false;

  /** `options` must be complete (use resolveSymbolActorOptions). */
  constructor(symId: number, options: Readonly<SymbolActorOptions>, parts: SymbolActorParts = {}) {
    this.symId = symId;
    this.options = options;
    this.trades = new RollingWindow(TRADE_COLUMNS, options.windowCapacity);
    this.quotes = new RollingWindow(QUOTE_COLUMNS, options.windowCapacity);
    this.features = new Features(options);
    this.quality = new QualityChecker(options);
    this.model = parts.model ?? new BaselineModel(options);
    this.strategy = parts.strategy ?? new ModelThreshold(options.threshold);
    this.gate = new SignalGate(options);
    const plan = parts.plan ?? featurePlan(options);
    this.plan = plan;
    this.featureSet = new FeatureSet(options.features);
    this.bars = options.bars.map((b) => new BarWindow(b));
    this.barSeries = Int32Array.from(this.bars, (b) =>
      this.featureSet.barSeries.indexOf(b.spec.name),
    );
    this.featureValues = new Float64Array(plan.names.length).fill(NaN);
    const nf = plan.formulas?.names.length ?? 0;
    this.formulaIn = new Float64Array(plan.indicators + FORMULA_COLUMNS.length).fill(NaN);
    this.formulaOut = new Float64Array(nf);
    this.decisions = parts.decisions;
    this.slot = parts.decisionSlot ?? 0;
    this.out.symId = symId;
    this.batch = parts.batch;
    this.pending = newMarketEvent();
  }

  /** Windows, bars, indicators, quality, model, strategy and gate state (kernel/actor-state.ts). */
  writeState(w: StateWriter): void {
    writeState(this, w, NOT_STATE);
  }

  readState(r: StateReader): void {
    readState(this, r, NOT_STATE);
  }

  stateShape(): string {
    return shapeOf(this, NOT_STATE);
  }

  resumeLive(): void {
    this.quality.resumeSequence();
  }

  onMarket(ev: MarketEvent, sink: OutputSink): void {
    // A trade still waiting for its score is finished before the next trade:
    // what phase 2 reads is then what it was when the trade was staged (a
    // quote changes only the quality score, spread and mid, kept aside).
    // Quotes in between do not flush: a trade followed by a quote of the
    // same symbol, the common case, keeps the batch filling.
    if (this.pendingSink !== undefined && ev.kind === MarketKind.TRADE) this.batch!.flush();
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
    let after = bits;
    if (q.quarantine(bits)) {
      this.onQuarantine(ev, sink);
    } else {
      const s = this.trades.slot();
      const c = this.trades.columns;
      c.ts[s] = ev.ts;
      c.seq[s] = ev.seq;
      c.px[s] = ev.px;
      c.qty[s] = ev.qty;
      c.side[s] = ev.side;
      f.onTrade(ev.px);
      const nonfinite = this.updateFeatures(ev);
      if (nonfinite !== 0) after = q.countNonFinite(nonfinite);
      const feat = stampUs();
      const b = this.batch;
      if (b !== undefined && b.active) {
        const p = this.pending;
        p.kind = ev.kind;
        p.symId = ev.symId;
        p.seq = ev.seq;
        p.ts = ev.ts;
        p.recv = ev.recv;
        p.px = ev.px;
        p.qty = ev.qty;
        p.side = ev.side;
        this.pendingSink = sink;
        this.pendingFeat = feat;
        this.pendingQuality = q.recentScore;
        this.pendingSpread = f.spread;
        this.pendingMid = f.mid;
        // Completed by the batch (now or at the end of the drain): complete().
        // The trade's quality records go out now, with the quality state they describe.
        if (b.stage(this)) {
          this.afterCheck(ev, after, sink);
          return;
        }
        this.pendingSink = undefined;
      }
      const score = this.model.predict(f);
      this.decide(ev, feat, score, Number.NaN, Number.NaN, 0, q.recentScore, f.spread, f.mid, sink);
    }
    this.afterCheck(ev, after, sink);
  }

  /** Phase 2 of a trade: strategy, gate, prediction and signal on its score. */
  private decide(
    ev: MarketEvent,
    feat: number,
    score: number,
    lower: number,
    upper: number,
    model: number,
    qs: number,
    spread: number,
    mid: number,
    sink: OutputSink,
  ): void {
    this.predicted = false;
    if (score !== score) return; // no score (warming up, or the model chain gives none)
    const f = this.features;
    const infer = stampUs();
    const st = this.strategy;
    const target = st.target(score, ev.px, this.featureValues);
    const d = this.decisions;
    const gate = this.gate;
    const signal = gate.decide(
      target,
      st.strength,
      ev.ts,
      f.trades,
      qs,
      d === undefined ? this.selfApproved : d.approved(this.slot),
      d === undefined ? 0 : d.epoch,
    );
    if (ev.ts - this.lastPredictionTs >= this.options.predictionIntervalUs) {
      this.lastPredictionTs = ev.ts;
      this.predicted = true;
      this.emitPrediction(ev, feat, infer, score, lower, upper, model, qs, spread, mid, sink);
    }
    if (signal) {
      if (gate.suppressed === 0) this.selfApproved = gate.side;
      this.emitSignal(ev, feat, infer, score, lower, upper, model, qs, sink);
    }
  }

  // ─────────────────────────────── BatchMember ───────────────────────────────

  fillRow(dst: Float32Array, at: number, index: Int32Array): boolean {
    const v = this.featureValues;
    let ok = true;
    for (let j = 0; j < index.length; j++) {
      const x = v[index[j]!]!;
      if (x - x !== 0) ok = false;
      dst[at + j] = x;
    }
    return ok;
  }

  complete(score: number, lower: number, upper: number, model: number): void {
    const sink = this.pendingSink;
    if (sink === undefined) return;
    this.pendingSink = undefined;
    this.shadowSink = sink;
    const ev = this.pending;
    this.decide(
      ev,
      this.pendingFeat,
      score,
      lower,
      upper,
      model,
      this.pendingQuality,
      this.pendingSpread,
      this.pendingMid,
      sink,
    );
  }

  shadow(score: number, lower: number, upper: number, model: number): void {
    const sink = this.shadowSink;
    this.shadowSink = undefined;
    if (sink === undefined || !this.predicted || score !== score) return;
    const t = stampUs();
    this.emitPrediction(
      this.pending,
      this.pendingFeat,
      t,
      score,
      lower,
      upper,
      model,
      this.pendingQuality,
      this.pendingSpread,
      this.pendingMid,
      sink,
    );
  }

  ruleScore(): number {
    return this.model.predict(this.features);
  }

  /**
   * Fold one good trade into the bars and indicators, evaluate the formulas,
   * and refresh featureValues. Returns how many formula values are not finite.
   */
  private updateFeatures(ev: MarketEvent): number {
    const fs = this.featureSet;
    const bars = this.bars;
    for (let i = 0; i < bars.length; i++) {
      const b = bars[i]!;
      if (b.onTrade(ev.ts, ev.px, ev.qty)) {
        const series = this.barSeries[i]!;
        if (series >= 0) fs.onBar(series, b.last('high'), b.last('low'), b.last('close'));
      }
    }
    fs.onTrade(ev.px, ev.qty);
    const out = this.featureValues;
    out.set(fs.values);
    const formulas = this.plan.formulas;
    if (formulas === undefined) return 0;
    const inp = this.formulaIn;
    const n = this.plan.indicators;
    inp.set(fs.values);
    inp[n] = ev.px;
    inp[n + 1] = ev.qty;
    const bad = formulas.evaluate(inp, this.formulaOut);
    out.set(this.formulaOut, n);
    if (bad === 0) return 0;
    // While an indicator warms up (NaN) a formula over it is NaN by design,
    // not a data problem: count only what is not finite from finite inputs.
    const v = fs.values;
    for (let i = 0; i < v.length; i++) if (v[i] !== v[i]) return 0;
    return bad;
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
    if (this.quality.quarantine(bits)) {
      this.onQuarantine(ev, sink);
    } else {
      const s = this.quotes.slot();
      const c = this.quotes.columns;
      c.ts[s] = ev.ts;
      c.bid[s] = ev.bid;
      c.bidQty[s] = ev.bidQty;
      c.ask[s] = ev.ask;
      c.askQty[s] = ev.askQty;
      this.features.onQuote(ev.bid, ev.ask);
      this.featureSet.onQuote(ev.bid, ev.bidQty, ev.ask, ev.askQty);
      const inp = this.formulaIn;
      const n = this.plan.indicators;
      inp[n + 2] = ev.bid;
      inp[n + 3] = ev.ask;
      inp[n + 4] = ev.bidQty;
      inp[n + 5] = ev.askQty;
      inp[n + 6] = (ev.bid + ev.ask) / 2;
    }
    this.afterCheck(ev, bits, sink);
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
    lower: number,
    upper: number,
    model: number,
    qualityScore: number,
    spread: number,
    mid: number,
    sink: OutputSink,
  ): void {
    const o = this.head(ev, OutputKind.PREDICTION, feat, infer);
    const p = o.payload;
    const L = OutputLayout.prediction;
    const f = this.features;
    p[L.SCORE] = score;
    p[L.MODEL] = model;
    p[L.LOWER] = lower;
    p[L.UPPER] = upper;
    p[L.EMA_FAST] = f.emaFast;
    p[L.EMA_SLOW] = f.emaSlow;
    p[L.RET] = f.ret;
    p[L.VOL] = f.vol;
    p[L.SPREAD] = spread;
    p[L.ZSCORE] = f.zscore;
    p[L.MID] = mid;
    p[L.QUALITY] = qualityScore;
    p.set(this.featureValues, L.FEATURES);
    sink.emit(o);
  }

  private emitSignal(
    ev: MarketEvent,
    feat: number,
    infer: number,
    score: number,
    lower: number,
    upper: number,
    model: number,
    qualityScore: number,
    sink: OutputSink,
  ): void {
    const o = this.head(ev, OutputKind.SIGNAL, feat, infer);
    const p = o.payload;
    const L = OutputLayout.signal;
    const g = this.gate;
    p.fill(0);
    p[L.SIDE] = g.side;
    p[L.STRENGTH] = g.strength;
    p[L.REF_PX] = ev.px;
    p[L.QTY] = g.qty;
    p[L.PRED_SCORE] = score;
    p[L.QUALITY] = qualityScore;
    p[L.SUPPRESSED] = g.suppressed;
    p[L.MODEL] = model;
    p[L.LOWER] = lower;
    p[L.UPPER] = upper;
    sink.emit(o);
  }

  /** A quarantined tick: its own record (rate-limited), with the tick as it came. */
  private onQuarantine(ev: MarketEvent, sink: OutputSink): void {
    const q = this.quality;
    if (!q.quarantineDue()) return;
    const o = this.qualityRecord(ev, QualityEventKind.QUARANTINE);
    const p = o.payload;
    const L = OutputLayout.quality;
    const trade = ev.kind === MarketKind.TRADE;
    p[L.RAW_TYPE] = trade ? 1 : 2;
    p[L.RAW_SEQ] = ev.seq;
    p[L.RAW_TS] = ev.ts;
    p[L.RAW_RECV] = ev.recv;
    if (trade) {
      p[L.RAW_PX] = ev.px;
      p[L.RAW_QTY] = ev.qty;
      p[L.RAW_SIDE] = ev.side;
    } else {
      p[L.RAW_BID] = ev.bid;
      p[L.RAW_BID_QTY] = ev.bidQty;
      p[L.RAW_ASK] = ev.ask;
      p[L.RAW_ASK_QTY] = ev.askQty;
    }
    sink.emit(o);
  }

  /** Quality records due after a tick: a reset, a change of state, the window end. */
  private afterCheck(ev: MarketEvent, bits: number, sink: OutputSink): void {
    const q = this.quality;
    if ((bits & QualityIssue.SEQ_RESET) !== 0) {
      sink.emit(this.qualityRecord(ev, QualityEventKind.RESET));
    }
    if (q.immediateDue(bits)) sink.emit(this.qualityRecord(ev, QualityEventKind.CHANGE));
    if (q.windowDue) {
      sink.emit(this.qualityRecord(ev, QualityEventKind.WINDOW));
      q.resetWindow();
    }
  }

  private qualityRecord(ev: MarketEvent, kind: number): OutputEvent {
    const t = stampUs();
    const o = this.head(ev, OutputKind.QUALITY, t, t);
    this.quality.writePayload(o.payload, kind);
    return o;
  }
}
