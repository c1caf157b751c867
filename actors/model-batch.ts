import CircuitBreaker from 'opossum';
import { invalidArgument } from '../kernel/errors.js';

/**
 * What the batch drives: a model session with its own input rows, scored
 * synchronously (adapters/onnx/onnx-scorer.ts OnnxScorer, or a test double).
 */
export interface SyncScorer {
  /** At least `maxBatch × features` floats; row r at `r × features`. */
  readonly input: Float32Array;
  readonly features: number;
  readonly outputs: number;
  readonly maxBatch: number;
  /** Score the first `n` rows; `n × outputs` scores (row r at `r × outputs`). Throws on failure. */
  runSync(n: number): Float32Array;
  release(): Promise<void>;
}

/** A model version ready to score: its session and how its rows and outputs map to the actor's. */
export interface BatchModel {
  /** Id in the kernel's ModelRefTable (actors/model-refs.ts): what its records carry. */
  readonly id: number;
  /** `name@version`, for logs and errors. */
  readonly label: string;
  readonly scorer: SyncScorer;
  /** For each model input column, the index of the actor feature (featureValues) that fills it. */
  readonly index: Int32Array;
  /** Output columns of the score and of the interval bounds (−1: none). */
  readonly scoreCol: number;
  readonly lowerCol: number;
  readonly upperCol: number;
  /** The manifest's thresholds: `buy` maps to +threshold, `sell` to −threshold (see mapScore). */
  readonly buy: number;
  readonly sell: number;
  /**
   * Drift reference: the inner quantile edges of the raw score on the
   * training data (manifest `reference.scoreQuantiles` without min and max);
   * k edges make k + 1 bins of equal expected share. Absent: no drift check.
   */
  readonly edges?: Float64Array;
}

/** An actor whose trade waits for its score (SymbolActor). */
export interface BatchMember {
  /** Write the row: `dst[at + j] = featureValues[index[j]]`. False when a value is not finite (cold). */
  fillRow(dst: Float32Array, at: number, index: Int32Array): boolean;
  /**
   * Phase 2 of the trade: the score (−1…1; NaN: no score, so no prediction
   * and no signal for this trade), its interval (NaN: none) and the id of
   * the model that made it.
   */
  complete(score: number, lower: number, upper: number, model: number): void;
  /**
   * The shadow version's answer for the same trade, right after `complete`
   * (never traded: a prediction with the shadow's id, when the live one made
   * a prediction for this trade). Only called when a shadow scored the row.
   */
  shadow(score: number, lower: number, upper: number, model: number): void;
  /** The rule-based score on the actor's features (the fallback after the previous version). */
  ruleScore(): number;
}

/** Which step of the fallback chain scores rows now (the `state` gauge). */
export const ModelStep = { NONE: 0, LIVE: 1, PREVIOUS: 2, RULE: 3, NO_SIGNAL: 4 } as const;
export type ModelStep = (typeof ModelStep)[keyof typeof ModelStep];
export const MODEL_STEP_NAMES = ['none', 'live', 'previous', 'rule', 'no_signal'] as const;

/** Why a batch counted as a failure for the breaker. */
export const ModelFault = { ERROR: 1, NON_FINITE: 2, SLOW: 3, DRIFT: 4 } as const;

/** Counters of a ModelBatch (plain numbers; the worker copies them into its shared counters). */
export interface ModelBatchStats {
  /** Model runs (batches). */
  batches: number;
  /** Rows scored by a model (live or previous). */
  rows: number;
  /** Rows whose inputs were not all finite yet (warming up): score 0, no run. */
  coldRows: number;
  /** Batches that failed (error, non-finite output, over the latency budget). */
  failedBatches: number;
  errors: number;
  nonFinite: number;
  slow: number;
  /** Rows scored by the previous version, the rule, or given no signal (breaker open). */
  previousRows: number;
  ruleRows: number;
  noSignalRows: number;
  /** Breaker openings. */
  opened: number;
  /** Longest run of the last second window, µs (gauge, reset by the reader). */
  maxRunUs: number;
  /** Rows the shadow version scored; of them, those whose side (sign beyond the threshold) agreed with the live answer. */
  shadowRows: number;
  shadowAgree: number;
  /** Shadow runs that failed (error or non-finite): their rows get no shadow answer. */
  shadowFailed: number;
  /** Drift windows whose PSI exceeded the limit; the last window's PSI (−1: none yet). */
  driftWindows: number;
  lastPsi: number;
}

export interface ModelBatchOptions {
  /** The strategy's threshold: a score of `buy` (manifest) maps to +threshold. */
  threshold: number;
  /** A run longer than this counts as a failure (its scores are still used), µs. Default 5,000. */
  budgetUs?: number;
  /** After the breaker opens, the time before a trial batch (half-open), ms. Default 5,000. */
  resetMs?: number;
  /** Failed share of batches (%) in the rolling 10 s window that opens the breaker. Default 50. */
  errorPercent?: number;
  /** Batches in the window before the breaker may open. Default 5. */
  volumeThreshold?: number;
  /** After the previous version and the rule: `rule` (default) scores rows by the rule; `none` gives no signal. */
  lastResort?: 'rule' | 'none';
  /** Live rows per drift window: the PSI of their raw scores against the reference. Default 5,000. */
  driftRows?: number;
  /** A window's PSI above this marks the live version drifted (its batches fail). Default 0.25. */
  driftPsi?: number;
  /** Monotonic clock, µs (tests). */
  nowUs?: () => number;
  /** The breaker opened or closed (logs, status). */
  onStep?: (step: ModelStep, reason: string) => void;
}

/**
 * Model inference for the actors of one shard worker: the rows of the
 * symbols that traded in one drain are scored in one synchronous run at the
 * end of the drain (`flush`), then each actor finishes its trade (strategy,
 * gate, emits) in the order the rows were staged.
 *
 * ```
 *  SymbolActor.onTrade ─► stage(actor): row ← featureValues[index] ──┐ (a full batch runs at once)
 *  ShardHost end of drain ─► flush(): scorer.runSync(n) ──► mapScore ─► actor.complete(score, lo, hi, id)
 *                                        │ error / NaN / slow: rows get the rule's score; breaker counts
 *  breaker open: previous version ─► rule on features ─► no signal (lastResort)
 * ```
 * An actor with a staged row is completed before it handles its next tick
 * (SymbolActor flushes first), so outputs are exactly those of scoring each
 * trade on its own, whatever the batch boundaries: replay is deterministic.
 *
 * The breaker is opossum's, fed once per batch (`fire(ok)`: one promise per
 * batch, never per row); its state is read synchronously when a batch starts.
 * A new version is installed between two batches (`setLive`): no batch mixes
 * versions. Nothing is allocated per row.
 */
export class ModelBatch {
  readonly stats: ModelBatchStats = {
    batches: 0,
    rows: 0,
    coldRows: 0,
    failedBatches: 0,
    errors: 0,
    nonFinite: 0,
    slow: 0,
    previousRows: 0,
    ruleRows: 0,
    noSignalRows: 0,
    opened: 0,
    maxRunUs: 0,
    shadowRows: 0,
    shadowAgree: 0,
    shadowFailed: 0,
    driftWindows: 0,
    lastPsi: -1,
  };
  /** The last failure, for status and logs. */
  lastFault = '';
  private live: BatchModel | undefined;
  private previous: BatchModel | undefined;
  /** A candidate scored on the same rows as the live model, never trading. */
  private shadowModel: BatchModel | undefined;
  /** Per staged row: 1 when the shadow's inputs were all finite (it scores the row). */
  private shadowOk = new Uint8Array(0);
  /** Per staged row: the live answer's score, kept for the agreement count. */
  private liveScores = new Float64Array(0);
  /** The model of the batch being staged (fixed at its first row). */
  private batchModel: BatchModel | undefined;
  private members: Array<BatchMember | undefined> = [];
  private n = 0;
  private readonly threshold: number;
  private budgetUs = 5000;
  private lastResort: 'rule' | 'none' = 'rule';
  private readonly nowUs: () => number;
  private driftRows = 5000;
  private driftPsi = 0.25;
  /** Live raw scores per reference bin in the current window. */
  private driftCounts = new Float64Array(0);
  private driftN = 0;
  /** The last full window's PSI was over the limit: the live version's batches fail until a fresh window. */
  private drifted = false;
  private breaker!: CircuitBreaker<[ok: boolean, why: string], void>;
  private step: ModelStep = ModelStep.NONE;

  constructor(private readonly o: ModelBatchOptions) {
    if (!(o.threshold >= 0 && o.threshold < 1)) {
      invalidArgument('threshold', o.threshold, 'a number in [0, 1)');
    }
    this.threshold = o.threshold;
    this.nowUs = o.nowUs ?? (() => performance.now() * 1000);
    this.configure(o);
  }

  /**
   * Set the budget, the breaker's settings and the last resort (a new
   * breaker, closed). Between batches only; unset fields take the defaults.
   */
  configure(
    o: Pick<
      ModelBatchOptions,
      | 'budgetUs'
      | 'resetMs'
      | 'errorPercent'
      | 'volumeThreshold'
      | 'lastResort'
      | 'driftRows'
      | 'driftPsi'
    >,
  ): void {
    this.budgetUs = o.budgetUs ?? 5000;
    this.lastResort = o.lastResort ?? 'rule';
    this.driftRows = o.driftRows ?? this.driftRows;
    this.driftPsi = o.driftPsi ?? this.driftPsi;
    this.breaker?.shutdown();
    const breaker = new CircuitBreaker(
      (ok: boolean, why: string) => (ok ? Promise.resolve() : Promise.reject(new Error(why))),
      {
        timeout: false,
        // Percentiles keep every fire's latency and re-sort them on each fire:
        // measured at ~25 % of a worker's CPU with a model at 1,000 symbols
        // (bench/onnx/model-throughput-bench.ts). Only failure counts matter.
        rollingPercentilesEnabled: false,
        enableSnapshots: false,
        resetTimeout: o.resetMs ?? 5000,
        errorThresholdPercentage: o.errorPercent ?? 50,
        volumeThreshold: o.volumeThreshold ?? 5,
        rollingCountTimeout: 10_000,
        rollingCountBuckets: 10,
      },
    );
    breaker.on('open', () => {
      this.stats.opened++;
      this.setStep(this.fallbackStep(), `breaker open: ${this.lastFault}`);
    });
    breaker.on('halfOpen', () => {
      // A trial starts a fresh drift window: the live version is judged again on new rows.
      this.resetDrift();
      this.setStep(this.fallbackStep(), 'breaker half-open: trial');
    });
    breaker.on('close', () => {
      if (this.live !== undefined) this.setStep(ModelStep.LIVE, 'breaker closed');
    });
    this.breaker = breaker;
  }

  /** True when a model is loaded: trades go through `stage`. */
  get active(): boolean {
    return this.live !== undefined;
  }

  /** The live model's id (0: none). */
  get liveId(): number {
    return this.live?.id ?? 0;
  }

  get previousId(): number {
    return this.previous?.id ?? 0;
  }

  get shadowId(): number {
    return this.shadowModel?.id ?? 0;
  }

  /**
   * Run `model` as the shadow (undefined: none), between two batches. Returns
   * the shadow it replaces, for the caller to release.
   */
  setShadow(model: BatchModel | undefined): BatchModel | undefined {
    this.flush();
    if (model !== undefined) this.ensureRows(model.scorer.maxBatch);
    const old = this.shadowModel;
    this.shadowModel = model;
    return old;
  }

  private ensureRows(n: number): void {
    if (n > this.members.length) {
      this.members = new Array<BatchMember | undefined>(n).fill(undefined);
    }
    if (n > this.shadowOk.length) {
      this.shadowOk = new Uint8Array(n);
      this.liveScores = new Float64Array(n);
    }
  }

  /** The step of the fallback chain rows take now. */
  get currentStep(): ModelStep {
    return this.step;
  }

  /** Rows staged, not completed. */
  get staged(): number {
    return this.n;
  }

  /**
   * Install `model` as the live version, between two batches (staged rows
   * are completed first, by the version they were staged for). The old
   * live version becomes the previous one (the first fallback); the one
   * before is returned for the caller to release. `undefined`: models off
   * (trades scored by the actor's own model again).
   */
  setLive(model: BatchModel | undefined): BatchModel | undefined {
    this.flush();
    if (model !== undefined) this.ensureRows(model.scorer.maxBatch);
    const dropped = this.previous;
    if (model === undefined) {
      const live = this.live;
      this.live = undefined;
      this.previous = undefined;
      this.setStep(ModelStep.NONE, 'no model');
      return live ?? dropped;
    }
    this.previous = this.live;
    this.live = model;
    this.resetDrift();
    this.breaker.close();
    this.setStep(ModelStep.LIVE, `live ${model.label}`);
    return dropped;
  }

  /**
   * Make the previous version live again (rollback): returns the version it
   * replaced, for the caller to release; undefined when there is none.
   */
  restorePrevious(): BatchModel | undefined {
    if (this.previous === undefined) return undefined;
    this.flush();
    const out = this.live;
    this.live = this.previous;
    this.previous = undefined;
    this.breaker.close();
    this.setStep(ModelStep.LIVE, `live ${this.live.label} (rolled back)`);
    return out;
  }

  /**
   * Stage `m`'s trade: its row is copied into the batch's model input, or,
   * when no model scores now (breaker open, nothing to fall back to), `m`
   * is completed at once by the rule or with no signal. A full batch runs
   * at once. Returns false when no model is loaded (the caller scores itself).
   */
  stage(m: BatchMember): boolean {
    const live = this.live;
    if (live === undefined) return false;
    if (this.n === 0) this.batchModel = this.breaker.opened ? this.previous : live;
    const model = this.batchModel;
    if (model === undefined) {
      this.completeWithoutModel(m);
      return true;
    }
    const s = model.scorer;
    if (!m.fillRow(s.input, this.n * s.features, model.index)) {
      // Warming up: no score yet (the gate does not trade before warm-up either).
      this.stats.coldRows++;
      m.complete(Number.NaN, Number.NaN, Number.NaN, model.id);
      return true;
    }
    const sh = this.shadowModel;
    if (sh !== undefined) {
      // The shadow's batch is the live one's: a row each, same index (a full one runs both).
      const ss = sh.scorer;
      this.shadowOk[this.n] =
        this.n < ss.maxBatch && m.fillRow(ss.input, this.n * ss.features, sh.index) ? 1 : 0;
    }
    this.members[this.n++] = m;
    if (this.n >= s.maxBatch) this.flush();
    return true;
  }

  /** Score the staged rows and complete their actors, in staging order. */
  flush(): void {
    const n = this.n;
    if (n === 0) return;
    const model = this.batchModel!;
    const s = model.scorer;
    const t0 = this.nowUs();
    let out: Float32Array | undefined;
    let fault = 0;
    try {
      out = s.runSync(n);
    } catch (err) {
      fault = ModelFault.ERROR;
      this.stats.errors++;
      this.lastFault = `${model.label}: ${(err as Error).message}`;
    }
    const took = this.nowUs() - t0;
    if (took > this.stats.maxRunUs) this.stats.maxRunUs = took;
    this.stats.batches++;
    if (out !== undefined) {
      const k = s.outputs;
      for (let r = 0; r < n; r++) {
        const v = out[r * k + model.scoreCol]!;
        if (v - v !== 0) {
          fault = ModelFault.NON_FINITE;
          this.stats.nonFinite++;
          this.lastFault = `${model.label}: non-finite score (${v}) in a batch of ${n}`;
          break;
        }
      }
      if (fault === 0 && model === this.live && model.edges !== undefined) {
        this.observeDrift(out, n, s.outputs, model);
        if (this.drifted) fault = ModelFault.DRIFT;
      }
      if (fault === 0 && took > this.budgetUs) {
        fault = ModelFault.SLOW;
        this.stats.slow++;
        this.lastFault = `${model.label}: a batch of ${n} took ${Math.round(took)} µs (budget ${this.budgetUs} µs)`;
      }
    }
    const members = this.members;
    this.n = 0;
    const shadowOut = this.runShadow(n);
    if (out === undefined || fault === ModelFault.NON_FINITE) {
      // The batch's rows still get an answer, in order: the rule's (or none).
      for (let r = 0; r < n; r++) {
        const m = members[r]!;
        members[r] = undefined;
        this.completeWithoutModel(m);
      }
    } else {
      const k = s.outputs;
      const byPrevious = model !== this.live;
      if (byPrevious) this.stats.previousRows += n;
      this.stats.rows += n;
      for (let r = 0; r < n; r++) {
        const m = members[r]!;
        members[r] = undefined;
        const at = r * k;
        const score = this.mapScore(out[at + model.scoreCol]!, model);
        m.complete(
          score,
          model.lowerCol < 0 ? Number.NaN : this.mapScore(out[at + model.lowerCol]!, model),
          model.upperCol < 0 ? Number.NaN : this.mapScore(out[at + model.upperCol]!, model),
          model.id,
        );
        if (shadowOut !== undefined && this.shadowOk[r] === 1)
          this.answerShadow(m, r, score, shadowOut);
      }
    }
    if (fault !== 0) this.stats.failedBatches++;
    // Only the live version's health moves the breaker (the previous one is the fallback).
    if (model === this.live) {
      this.breaker.fire(fault === 0, this.lastFault).catch(() => undefined);
    }
  }

  /** Count a batch's raw scores into the drift window; at its end, its PSI against the reference. */
  private observeDrift(out: Float32Array, n: number, k: number, m: BatchModel): void {
    const edges = m.edges!;
    if (this.driftCounts.length !== edges.length + 1) {
      this.driftCounts = new Float64Array(edges.length + 1);
      this.driftN = 0;
    }
    const c = this.driftCounts;
    for (let r = 0; r < n; r++) {
      const v = out[r * k + m.scoreCol]!;
      let b = 0;
      while (b < edges.length && v > edges[b]!) b++;
      c[b]!++;
    }
    this.driftN += n;
    if (this.driftN < this.driftRows) return;
    const psi = populationStability(c, this.driftN);
    this.stats.lastPsi = psi;
    this.drifted = psi > this.driftPsi;
    if (this.drifted) {
      this.stats.driftWindows++;
      this.lastFault = `${m.label}: drift, PSI ${psi.toFixed(3)} over ${this.driftN} rows (limit ${this.driftPsi})`;
    }
    c.fill(0);
    this.driftN = 0;
  }

  private resetDrift(): void {
    this.drifted = false;
    this.driftN = 0;
    this.driftCounts.fill(0);
  }

  /** Run the shadow on the batch's rows; undefined when there is none, or it failed (counted). */
  private runShadow(n: number): Float32Array | undefined {
    const sh = this.shadowModel;
    if (sh === undefined) return undefined;
    const rows = Math.min(n, sh.scorer.maxBatch);
    let out: Float32Array;
    try {
      out = sh.scorer.runSync(rows);
    } catch {
      this.stats.shadowFailed++;
      return undefined;
    }
    const k = sh.scorer.outputs;
    for (let r = 0; r < rows; r++) {
      const v = out[r * k + sh.scoreCol]!;
      if (v - v !== 0 && this.shadowOk[r] === 1) {
        this.stats.shadowFailed++;
        return undefined;
      }
    }
    return out;
  }

  private answerShadow(m: BatchMember, r: number, live: number, out: Float32Array): void {
    const sh = this.shadowModel!;
    const at = r * sh.scorer.outputs;
    const score = this.mapScore(out[at + sh.scoreCol]!, sh);
    this.stats.shadowRows++;
    if (this.sideOf(score) === this.sideOf(live)) this.stats.shadowAgree++;
    m.shadow(
      score,
      sh.lowerCol < 0 ? Number.NaN : this.mapScore(out[at + sh.lowerCol]!, sh),
      sh.upperCol < 0 ? Number.NaN : this.mapScore(out[at + sh.upperCol]!, sh),
      sh.id,
    );
  }

  /** The side a score stands for at the strategy's threshold: 1, −1 or 0. */
  private sideOf(s: number): number {
    return s > this.threshold ? 1 : s < -this.threshold ? -1 : 0;
  }

  /**
   * A model score on the strategy's scale: the manifest's `buy` threshold
   * maps to +threshold and `sell` to −threshold, their midpoint to 0,
   * linearly on each side, clamped to [−1, 1]. So the strategy trades a
   * model exactly when its score crosses the manifest's thresholds.
   */
  mapScore(raw: number, m: Pick<BatchModel, 'buy' | 'sell'>): number {
    if (raw - raw !== 0) return Number.NaN;
    const mid = (m.buy + m.sell) / 2;
    let s: number;
    if (m.buy === m.sell) s = raw > m.buy ? 1 : raw < m.sell ? -1 : 0;
    else if (raw >= mid) s = (this.threshold * (raw - mid)) / (m.buy - mid);
    else s = (this.threshold * (raw - mid)) / (mid - m.sell);
    return s > 1 ? 1 : s < -1 ? -1 : s;
  }

  /** Release the sessions (the kernel stops). */
  async close(): Promise<void> {
    this.breaker.shutdown();
    const live = this.live;
    const prev = this.previous;
    const sh = this.shadowModel;
    this.live = this.previous = this.shadowModel = undefined;
    await live?.scorer.release();
    await prev?.scorer.release();
    await sh?.scorer.release();
  }

  private completeWithoutModel(m: BatchMember): void {
    if (this.lastResort === 'rule') {
      this.stats.ruleRows++;
      m.complete(m.ruleScore(), Number.NaN, Number.NaN, 0);
    } else {
      this.stats.noSignalRows++;
      m.complete(Number.NaN, Number.NaN, Number.NaN, this.live?.id ?? 0);
    }
  }

  private fallbackStep(): ModelStep {
    if (this.previous !== undefined) return ModelStep.PREVIOUS;
    return this.lastResort === 'rule' ? ModelStep.RULE : ModelStep.NO_SIGNAL;
  }

  private setStep(step: ModelStep, reason: string): void {
    if (step === this.step) return;
    this.step = step;
    this.o.onStep?.(step, reason);
  }
}

/**
 * Population stability index of `counts` (n rows in all) against bins of
 * equal expected share: Σ (a − e) · ln(a / e), a and e the actual and
 * expected shares, a floored at 1e-4 so an empty bin counts instead of
 * dividing by zero. Under 0.1: stable; over 0.25: shifted (the usual reading).
 */
export function populationStability(counts: ArrayLike<number>, n: number): number {
  const e = 1 / counts.length;
  let psi = 0;
  for (let i = 0; i < counts.length; i++) {
    const a = Math.max(counts[i]! / n, 1e-4);
    psi += (a - e) * Math.log(a / e);
  }
  return psi;
}
