import { resolvedOnce } from './resolved-options.js';
import { invalidArgument } from '../kernel/errors.js';

/** When a strategy's target becomes a proposed signal (every strategy kind). */
export interface SignalOptions {
  /** |score| above this is a buy / sell for the `model` strategy. Default 0.2. */
  threshold: number;
  /** Quantity at strength 1; the proposed qty is baseQty × strength. Default 1. */
  baseQty: number;
  /** With the target already approved, re-propose when strength moved more than this. Default 0.1. */
  minStrengthChange: number;
  /** At most one proposal per this much exchange time per symbol, µs. Default 250 ms. */
  minIntervalUs: number;
  /**
   * A proposal not approved (rejected, suppressed, or its decision not seen)
   * is retried after minIntervalUs, then after twice as long each time, up
   * to this, µs. Default 5 s.
   */
  retryMaxUs: number;
  /** Propose on every trade (benchmarks), ignoring approvals, change and interval. Default false. */
  emitEveryTick: boolean;
  /** Below this quality score (current and previous window, QualityChecker.recentScore) a proposal is suppressed (`low_quality`). Default 0.5. */
  minQuality: number;
  /** No proposal before this many trades have been seen. Default 30. */
  warmup: number;
}

export const DEFAULT_SIGNAL_OPTIONS: Readonly<SignalOptions> = {
  threshold: 0.2,
  baseQty: 1,
  minStrengthChange: 0.1,
  minIntervalUs: 250_000,
  retryMaxUs: 5_000_000,
  emitEveryTick: false,
  minQuality: 0.5,
  warmup: 30,
};

/**
 * The first retry waits at least this, µs, even with minIntervalUs 0 (a
 * doubling from 0 would retry a refused target on every trade).
 */
export const RETRY_FLOOR_US = 10_000;

/** The wait before the first retry: minIntervalUs, at least RETRY_FLOOR_US, at most retryMaxUs. */
function firstWait(o: Readonly<SignalOptions>): number {
  const w = o.minIntervalUs > RETRY_FLOOR_US ? o.minIntervalUs : RETRY_FLOOR_US;
  return w < o.retryMaxUs ? w : o.retryMaxUs;
}

/** Why a proposal is emitted suppressed (SIGNAL payload slot SUPPRESSED). */
export const Suppressed = { NONE: 0, LOW_QUALITY: 1 } as const;

/**
 * Target side → proposed signal, per symbol. The strategy says what it
 * wants (`target`); the gate compares it with what executors were last told
 * (the side *approved*, read from the DecisionBoard), never with what was
 * merely proposed:
 *
 * ```
 *  nothing      trades < warmup, or target NaN (no opinion)
 *  propose      target ≠ approved, and ts − last proposal ≥ wait
 *                 wait = minIntervalUs for a new target; for the same target again
 *                 (it was rejected or suppressed) minIntervalUs · 2^k up to retryMaxUs
 *  refresh      target = approved ≠ flat and |strength − last proposed| > minStrengthChange,
 *               ts − last proposal ≥ minIntervalUs
 *  suppressed   a proposal while quality < minQuality: emitted with reason low_quality
 *               (stored, published on risk.rejected, never sent to risk or executors)
 * ```
 * While the kill switch is thrown proposals are rejected (`kill_switch`), each
 * retry waiting twice as long; `ctl.risk.resume`, the breaker closing and a
 * worker restart bump the board's epoch: the backoff is forgotten and the
 * current view is proposed on the next tick. So after a resume a symbol whose
 * trend kept its direction signals again, and a rejection never makes the
 * strategy believe it was obeyed.
 * All times are exchange µs (replay behaves like live). No allocation.
 */
export class SignalGate {
  readonly options: Readonly<SignalOptions>;
  /** The proposal, valid after `decide` returned true. */
  side = 0;
  strength = 0;
  qty = 0;
  /** Suppressed code of the proposal (Suppressed.NONE: a real proposal). */
  suppressed = 0;
  private lastSide = NaN;
  private lastStrength = 0;
  private lastTs = -Infinity;
  private wait: number;
  private epoch = 0;
  /** A proposal of lastSide awaits approval (retries back off while it does). */
  private pending = false;

  constructor(options: Partial<SignalOptions> = {}) {
    this.options = resolvedOnce(RESOLVED, options, resolveSignalOptions);
    this.wait = this.options.minIntervalUs;
  }

  /**
   * Decide on one trade. `target`/`strength` from the strategy, `approved`
   * the side last approved (1, −1, 0; NaN unknown) and `epoch` from the
   * DecisionBoard. True: emit the proposal in side/strength/qty/suppressed.
   */
  decide(
    target: number,
    strength: number,
    ts: number,
    trades: number,
    quality: number,
    approved: number,
    epoch: number,
  ): boolean {
    const o = this.options;
    if (trades < o.warmup || target !== target) return false;
    if (o.emitEveryTick) return this.propose(target, strength, ts, quality);
    if (epoch !== this.epoch) {
      this.epoch = epoch;
      this.pending = false;
      this.lastTs = -Infinity;
    }
    const since = ts - this.lastTs;
    if (target === approved) {
      this.pending = false;
      if (
        target !== 0 &&
        this.lastSide === target &&
        Math.abs(strength - this.lastStrength) > o.minStrengthChange &&
        since >= o.minIntervalUs
      ) {
        // A refresh that is then lost (publish failed) is retried like any proposal.
        this.pending = true;
        this.wait = firstWait(o);
        return this.propose(target, strength, ts, quality);
      }
      return false;
    }
    if (this.pending && target === this.lastSide) {
      // Proposed before and not (yet) approved: retry, each wait twice the last.
      if (since < this.wait) return false;
      const next = this.wait * 2;
      this.wait = next > o.retryMaxUs ? o.retryMaxUs : next;
    } else {
      // A new target (minIntervalUs after the last proposal), or the same one
      // again after it was approved or resynced (the first retry's wait).
      if (since < (target === this.lastSide ? firstWait(o) : o.minIntervalUs)) return false;
      this.pending = true;
      this.wait = firstWait(o);
    }
    return this.propose(target, strength, ts, quality);
  }

  private propose(target: number, strength: number, ts: number, quality: number): boolean {
    this.side = target;
    this.strength = strength;
    this.qty = this.options.baseQty * strength;
    this.suppressed = quality >= this.options.minQuality ? Suppressed.NONE : Suppressed.LOW_QUALITY;
    this.lastSide = target;
    this.lastStrength = strength;
    this.lastTs = ts;
    return true;
  }

  /** Forget proposals (new session after a venue sequence reset). */
  reset(): void {
    this.pending = false;
    this.lastSide = NaN;
    this.lastStrength = 0;
    this.lastTs = -Infinity;
    this.wait = this.options.minIntervalUs;
  }
}

const RESOLVED = new WeakMap<Partial<SignalOptions>, SignalOptions>();

function resolveSignalOptions(options: Partial<SignalOptions>): SignalOptions {
  const o = { ...DEFAULT_SIGNAL_OPTIONS, ...options };
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
  if (!(o.retryMaxUs >= o.minIntervalUs) || !Number.isFinite(o.retryMaxUs)) {
    invalidArgument('retryMaxUs', o.retryMaxUs, 'a finite number ≥ minIntervalUs');
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
