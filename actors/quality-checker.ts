import { resolvedOnce } from './resolved-options.js';
import { invalidArgument } from '../kernel/errors.js';
import { OutputLayout, QualityIssue } from './output-layout.js';

/** Parameters of the per-symbol data quality checks. */
export interface QualityOptions {
  /** Ticks per quality window; a QUALITY record is emitted at each window end. Default 100. */
  qualityWindowTicks: number;
  /** A tick whose receive time is more than this after its exchange time is stale, µs. Default 5 s. */
  staleUs: number;
  /** A trade whose |log return| exceeds spikeK × vol is a spike (after warm-up). Default 8. */
  spikeK: number;
  /**
   * At most one immediate QUALITY record (raised by a change of the symbol's
   * quality state, see QualityChecker.immediateDue) per this much exchange
   * time, µs. Default 100 ms.
   */
  qualityImmediateIntervalUs: number;
}

export const DEFAULT_QUALITY_OPTIONS: Readonly<QualityOptions> = {
  qualityWindowTicks: 100,
  staleUs: 5_000_000,
  spikeK: 8,
  qualityImmediateIntervalUs: 100_000,
};

/**
 * How bad one tick is, per issue; a tick with several issues counts with the
 * largest weight. Structural errors (the data is wrong) weigh 1; timeliness
 * and plausibility (the data may be right but suspicious) weigh 0.5.
 * SEQ_GAP weighs 0 on the tick that reveals it: the missing ticks are counted
 * instead, as fully bad ticks.
 */
const WEIGHT_STRUCTURAL = 1;
const WEIGHT_SUSPICIOUS = 0.5;

/**
 * Per-symbol quality checks, per tick and per window, allocation-free.
 *
 * Per tick (trades and quotes share `seq`, as the venue does):
 * - completeness: `seq > last + 1` → `gaps += seq − last − 1` (SEQ_GAP)
 * - order: `seq ≤ last` (duplicate or reordered) or `ts <` the newest exchange
 *   time seen → OUT_OF_ORDER (counted once per tick)
 * - consistency: a quote with `bid ≥ ask` → CROSSED_QUOTE; a price or size
 *   that is ≤ 0 or not finite → BAD_VALUE (should be rejected upstream)
 * - timeliness: `recv − ts > staleUs` → STALE
 * - accuracy (trades, after warm-up, vol > 0): `|ln(px / prevPx)| > spikeK·vol` → SPIKE
 *
 * Window score, in [0, 1]:
 * ```
 *   score = 1 − (Σ_ticks weight(tick) + gaps) / (ticks + gaps)
 *   weight(tick) = max over its issues of {1: out-of-order, crossed, bad value;
 *                                          0.5: stale, spike}, 0 if clean
 * ```
 * i.e. one minus the weighted fraction of bad ticks, the missing ticks of a
 * gap counting as fully bad. An empty window scores 1.
 *
 * When to emit a QUALITY record (the SymbolActor asks `immediateDue(bits)`,
 * then `windowDue`, once per tick):
 * - window end: every `qualityWindowTicks` ticks, unconditionally;
 * - immediately, on a change of state. The symbol's quality state is the
 *   issue bits of its latest tick (0 = clean). A record is due when the
 *   state differs from the state last reported (by either kind of record),
 *   recovery to clean included, at most once per
 *   `qualityImmediateIntervalUs` of exchange time. A change held back by that
 *   limit is reported on the first later tick past the interval whose state
 *   still differs from the last reported one.
 * ```
 *   tick bits   0  G  G  G  G … G  0  0 …      (G = seq gap on every tick)
 *   immediate      ▲               ▲           one on the change, one on recovery:
 *   window end              ▲                  a persistent issue is not re-reported per tick
 * ```
 */
export class QualityChecker {
  readonly options: Readonly<QualityOptions>;
  // current window
  ticks = 0;
  gaps = 0;
  crossed = 0;
  outOfOrder = 0;
  stale = 0;
  spikes = 0;
  badValues = 0;
  /** OR of the issue bits seen in the window. */
  issueBits = 0;
  /** Σ weight(tick) over the window. */
  private badWeight = 0;
  // stream state (survives windows)
  private lastSeq = NaN;
  private maxTs = -Infinity;
  private lastImmediateTs = -Infinity;
  /** The quality state: issue bits of the latest tick (0 = clean). */
  private stateBits = 0;
  /** The state the last QUALITY record (immediate or window end) reported. */
  private reportedBits = 0;

  constructor(options: Partial<QualityOptions> = {}) {
    this.options = resolvedOnce(RESOLVED, options, resolveQualityOptions);
  }

  /**
   * Check one trade. `prevPx` is the last good trade price (0 if none), `vol`
   * the realized volatility before this trade, `warm` whether enough trades
   * were seen for `vol` to mean something. Returns the tick's issue bits.
   */
  checkTrade(
    seq: number,
    ts: number,
    recv: number,
    px: number,
    qty: number,
    prevPx: number,
    vol: number,
    warm: boolean,
  ): number {
    let bits = this.checkCommon(seq, ts, recv);
    if (!(px > 0) || !(qty > 0) || !Number.isFinite(px) || !Number.isFinite(qty)) {
      bits |= QualityIssue.BAD_VALUE;
    } else if (warm && prevPx > 0 && vol > 0) {
      if (Math.abs(Math.log(px / prevPx)) > this.options.spikeK * vol) bits |= QualityIssue.SPIKE;
    }
    return this.account(bits);
  }

  /** Check one top-of-book quote. Returns the tick's issue bits. */
  checkQuote(
    seq: number,
    ts: number,
    recv: number,
    bid: number,
    bidQty: number,
    ask: number,
    askQty: number,
  ): number {
    let bits = this.checkCommon(seq, ts, recv);
    if (
      !(bid > 0) ||
      !(ask > 0) ||
      !(bidQty > 0) ||
      !(askQty > 0) ||
      !Number.isFinite(bid + ask + bidQty + askQty)
    ) {
      bits |= QualityIssue.BAD_VALUE;
    }
    if (bid >= ask) bits |= QualityIssue.CROSSED_QUOTE;
    return this.account(bits);
  }

  /** Window score so far (see the class comment); 1 for an empty window. */
  get score(): number {
    const denom = this.ticks + this.gaps;
    if (denom === 0) return 1;
    const s = 1 - (this.badWeight + this.gaps) / denom;
    return s < 0 ? 0 : s;
  }

  /** True once the window holds `qualityWindowTicks` ticks: emit it, then `resetWindow()`. */
  get windowDue(): boolean {
    return this.ticks >= this.options.qualityWindowTicks;
  }

  /**
   * Whether the tick just checked, with issue bits `bits` (its result from
   * checkTrade/checkQuote: the new quality state), raises an immediate QUALITY
   * record: true when `bits` differs from the last reported state and the
   * last immediate record is at least `qualityImmediateIntervalUs` of
   * exchange time ago. Rate-limited on the newest exchange time seen, so it
   * stays bounded even when timestamps jump backwards. Getting true records
   * `bits` as reported and consumes the interval: emit the record.
   */
  immediateDue(bits: number): boolean {
    if (bits === this.reportedBits) return false;
    if (this.maxTs - this.lastImmediateTs < this.options.qualityImmediateIntervalUs) return false;
    this.lastImmediateTs = this.maxTs;
    this.reportedBits = bits;
    return true;
  }

  /** Write the QUALITY payload (see OutputLayout.quality) of the current window. */
  writePayload(payload: Float64Array): void {
    const q = OutputLayout.quality;
    payload.fill(0);
    payload[q.SCORE] = this.score;
    payload[q.TICKS] = this.ticks;
    payload[q.GAPS] = this.gaps;
    payload[q.CROSSED] = this.crossed;
    payload[q.OUT_OF_ORDER] = this.outOfOrder;
    payload[q.STALE] = this.stale;
    payload[q.SPIKES] = this.spikes;
    payload[q.ISSUE_BITS] = this.issueBits;
    payload[q.BAD_VALUES] = this.badValues;
  }

  /**
   * Start a new window (stream state such as the last seq is kept). Call it
   * right after emitting the window-end record: that record reported the
   * current state, so it becomes the last reported state (a change it
   * carried is not raised again as an immediate record).
   */
  resetWindow(): void {
    this.reportedBits = this.stateBits;
    this.ticks = this.gaps = this.crossed = this.outOfOrder = 0;
    this.stale = this.spikes = this.badValues = this.issueBits = 0;
    this.badWeight = 0;
  }

  private checkCommon(seq: number, ts: number, recv: number): number {
    let bits = 0;
    const last = this.lastSeq;
    if (last === last) {
      // not NaN: we have a previous tick
      if (seq > last + 1) {
        bits |= QualityIssue.SEQ_GAP;
        this.gaps += seq - last - 1;
      } else if (seq <= last) {
        bits |= QualityIssue.OUT_OF_ORDER;
      }
    }
    if (!(seq <= last)) this.lastSeq = seq;
    if (ts < this.maxTs) bits |= QualityIssue.OUT_OF_ORDER;
    else this.maxTs = ts;
    if (recv - ts > this.options.staleUs) bits |= QualityIssue.STALE;
    return bits;
  }

  private account(bits: number): number {
    this.ticks++;
    this.stateBits = bits;
    if (bits === 0) return 0;
    this.issueBits |= bits;
    let w = 0;
    if ((bits & QualityIssue.OUT_OF_ORDER) !== 0) {
      this.outOfOrder++;
      w = WEIGHT_STRUCTURAL;
    }
    if ((bits & QualityIssue.CROSSED_QUOTE) !== 0) {
      this.crossed++;
      w = WEIGHT_STRUCTURAL;
    }
    if ((bits & QualityIssue.BAD_VALUE) !== 0) {
      this.badValues++;
      w = WEIGHT_STRUCTURAL;
    }
    if ((bits & QualityIssue.STALE) !== 0) {
      this.stale++;
      if (w < WEIGHT_SUSPICIOUS) w = WEIGHT_SUSPICIOUS;
    }
    if ((bits & QualityIssue.SPIKE) !== 0) {
      this.spikes++;
      if (w < WEIGHT_SUSPICIOUS) w = WEIGHT_SUSPICIOUS;
    }
    this.badWeight += w;
    return bits;
  }
}

const RESOLVED = new WeakMap<Partial<QualityOptions>, QualityOptions>();

function resolveQualityOptions(options: Partial<QualityOptions>): QualityOptions {
  const o = { ...DEFAULT_QUALITY_OPTIONS, ...options };
  if (!Number.isInteger(o.qualityWindowTicks) || o.qualityWindowTicks < 1) {
    invalidArgument('qualityWindowTicks', o.qualityWindowTicks, 'an integer ≥ 1');
  }
  if (!(o.staleUs > 0) || !Number.isFinite(o.staleUs)) {
    invalidArgument('staleUs', o.staleUs, 'a finite number > 0');
  }
  if (!(o.spikeK > 0) || !Number.isFinite(o.spikeK)) {
    invalidArgument('spikeK', o.spikeK, 'a finite number > 0');
  }
  if (!(o.qualityImmediateIntervalUs >= 0) || !Number.isFinite(o.qualityImmediateIntervalUs)) {
    invalidArgument(
      'qualityImmediateIntervalUs',
      o.qualityImmediateIntervalUs,
      'a finite number ≥ 0',
    );
  }
  return o;
}
