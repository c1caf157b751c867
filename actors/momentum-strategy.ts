import { resolvedOnce } from './resolved-options.js';
import { invalidArgument } from '../kernel/errors.js';
import { SignalSideCode } from './output-layout.js';

/** Parameters of the momentum strategy. */
export interface MomentumOptions {
  /** |score| above this is a buy (positive) or sell (negative); else flat. Default 0.2. */
  threshold: number;
  /** Quantity at strength 1; the proposed qty is baseQty × strength. Default 1. */
  baseQty: number;
  /** A signal with the same side is re-emitted only if strength moved more than this. Default 0.1. */
  minStrengthChange: number;
  /** At most one signal per this much exchange time per symbol, µs. Default 250 ms. */
  minIntervalUs: number;
  /** Emit a signal on every trade (benchmarks), ignoring change and interval. Default false. */
  emitEveryTick: boolean;
  /** No signal while the current quality window scores below this. Default 0.5. */
  minQuality: number;
  /** No signal before this many trades have been seen. Default 30. */
  warmup: number;
}

export const DEFAULT_MOMENTUM_OPTIONS: Readonly<MomentumOptions> = {
  threshold: 0.2,
  baseQty: 1,
  minStrengthChange: 0.1,
  minIntervalUs: 250_000,
  emitEveryTick: false,
  minQuality: 0.5,
  warmup: 30,
};

/**
 * Prediction → candidate signal, with the per-symbol throttling that keeps the
 * signal stream meaningful (a change of mind, not a heartbeat):
 *
 * ```
 *  gate      trades ≥ warmup  and  quality ≥ minQuality         (else: nothing)
 *  side      score > +threshold → buy, < −threshold → sell, else flat
 *  strength  min(|score|, 1);  qty = baseQty · strength
 *  emit if   emitEveryTick
 *        or  (side ≠ last emitted side  or |strength − last strength| > minStrengthChange)
 *            and ts − last emit ts ≥ minIntervalUs     (exchange time)
 * ```
 * Before anything is emitted the "last" signal is flat with strength 0, so a
 * weak flat opinion is not announced. After `evaluate` returns true the
 * candidate is in `side`, `strength`, `qty`. No allocation.
 */
export class MomentumStrategy {
  readonly options: Readonly<MomentumOptions>;
  /** Candidate side: 1 buy, −1 sell, 0 flat (SignalSideCode). */
  side = 0;
  strength = 0;
  qty = 0;
  private lastSide = 0;
  private lastStrength = 0;
  private lastEmitTs = -Infinity;

  constructor(options: Partial<MomentumOptions> = {}) {
    this.options = resolvedOnce(RESOLVED, options, resolveMomentumOptions);
  }

  /**
   * Decide on one trade. `score` is the model output, `ts` the trade's exchange
   * time, `trades` the trades seen so far, `quality` the current window score.
   * Returns true when a signal should be emitted (the candidate is in
   * `side` / `strength` / `qty`, and becomes the "last emitted" one).
   */
  evaluate(score: number, ts: number, trades: number, quality: number): boolean {
    const o = this.options;
    if (trades < o.warmup || !(quality >= o.minQuality) || score !== score) return false;
    const side =
      score > o.threshold
        ? SignalSideCode.BUY
        : score < -o.threshold
          ? SignalSideCode.SELL
          : SignalSideCode.FLAT;
    const a = score < 0 ? -score : score;
    const strength = a > 1 ? 1 : a;
    this.side = side;
    this.strength = strength;
    this.qty = o.baseQty * strength;
    if (!o.emitEveryTick) {
      const changed =
        side !== this.lastSide || Math.abs(strength - this.lastStrength) > o.minStrengthChange;
      if (!changed || ts - this.lastEmitTs < o.minIntervalUs) return false;
    }
    this.lastSide = side;
    this.lastStrength = strength;
    this.lastEmitTs = ts;
    return true;
  }
}

const RESOLVED = new WeakMap<Partial<MomentumOptions>, MomentumOptions>();

function resolveMomentumOptions(options: Partial<MomentumOptions>): MomentumOptions {
  const o = { ...DEFAULT_MOMENTUM_OPTIONS, ...options };
  if (!(o.threshold >= 0 && o.threshold < 1)) {
    invalidArgument('threshold', o.threshold, 'a number in [0, 1)');
  }
  if (!(o.baseQty > 0) || !Number.isFinite(o.baseQty)) {
    invalidArgument('baseQty', o.baseQty, 'a finite number > 0');
  }
  if (!(o.minStrengthChange >= 0 && o.minStrengthChange <= 1)) {
    invalidArgument('minStrengthChange', o.minStrengthChange, 'a number in [0, 1]');
  }
  if (!(o.minIntervalUs >= 0) || !Number.isFinite(o.minIntervalUs)) {
    invalidArgument('minIntervalUs', o.minIntervalUs, 'a finite number ≥ 0');
  }
  if (typeof o.emitEveryTick !== 'boolean') {
    invalidArgument('emitEveryTick', o.emitEveryTick, 'true or false');
  }
  if (!(o.minQuality >= 0 && o.minQuality <= 1)) {
    invalidArgument('minQuality', o.minQuality, 'a number in [0, 1]');
  }
  if (!Number.isInteger(o.warmup) || o.warmup < 0) {
    invalidArgument('warmup', o.warmup, 'an integer ≥ 0');
  }
  return o;
}
