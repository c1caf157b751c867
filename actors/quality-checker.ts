import { resolvedOnce } from './resolved-options.js';
import { invalidArgument } from '../kernel/errors.js';
import {
  OutputLayout,
  QUALITY_ISSUE_NAMES,
  QualityEventKind,
  QualityIssue,
} from './output-layout.js';

/** Parameters of the per-symbol data quality checks (docs/features-and-quality.md). */
export interface QualityOptions {
  /** Ticks per quality window; a QUALITY record is emitted at each window end. Default 100. */
  qualityWindowTicks: number;
  /** Timeliness: receive time more than this after exchange time is stale, µs. Default 5 s. */
  staleUs: number;
  /** Timeliness: receive time more than this *before* exchange time is clock skew, µs. Default 250 ms. */
  maxSkewUs: number;
  /** Accuracy: a trade whose |log return| exceeds spikeK × vol is a spike (after warm-up). Default 8. */
  spikeK: number;
  /**
   * Completeness: an exchange-time gap between two ticks longer than
   * timeGapK × the symbol's mean inter-tick time (EWMA, after 20 intervals) and
   * longer than timeGapMinUs is a time gap. 0 disables. Default 50.
   */
  timeGapK: number;
  /** See timeGapK, µs. Default 1 s. */
  timeGapMinUs: number;
  /**
   * Consistency: a trade priced outside [bid − tol, ask + tol] of the last
   * quote (if that quote is at most 1 s older), tol = bandTolerance × mid.
   * Default 0.002 (20 bp).
   */
  bandTolerance: number;
  /**
   * Timeliness: a seq below the last one with an exchange time past every
   * one seen is a venue sequence reset (a new session) when the seq is at
   * most resetSeqFloor and more than resetSeqFloor below the last (the venue
   * started again from 1), or at least resetMinDrop below the last. Default 100.
   */
  resetSeqFloor: number;
  /** See resetSeqFloor. Default 10,000. */
  resetMinDrop: number;
  /**
   * At most one immediate QUALITY record (a change of the symbol's quality
   * state, or a quarantined tick) per this much exchange time, µs. Default 100 ms.
   */
  qualityImmediateIntervalUs: number;
  /**
   * Checks whose failure quarantines the tick: kept out of windows, features
   * and strategy, counted, and stored as a `quarantine` event with the tick.
   * `bad_value` always is (a non-positive price would poison every average).
   * Default bad_value, crossed_quote, out_of_order, duplicate.
   */
  qualityQuarantine: readonly string[];
  /** Checks that are off: never raised, never scored. Default none. */
  qualityDisabled: readonly string[];
}

export const DEFAULT_QUALITY_OPTIONS: Readonly<QualityOptions> = {
  qualityWindowTicks: 100,
  staleUs: 5_000_000,
  maxSkewUs: 250_000,
  spikeK: 8,
  timeGapK: 50,
  timeGapMinUs: 1_000_000,
  bandTolerance: 0.002,
  resetSeqFloor: 100,
  resetMinDrop: 10_000,
  qualityImmediateIntervalUs: 100_000,
  qualityQuarantine: ['bad_value', 'crossed_quote', 'out_of_order', 'duplicate'],
  qualityDisabled: [],
};

/** Per-tick checks that config may name (not seq_reset or nonfinite: those are not tick defects). */
export const QUALITY_CHECK_NAMES: readonly string[] = QUALITY_ISSUE_NAMES.filter(
  ([bit]) => bit !== QualityIssue.SEQ_RESET && bit !== QualityIssue.NONFINITE,
).map(([, n]) => n);

/**
 * Weight of a tick in the window score: the largest over its issues.
 * Structural errors (the data is wrong) weigh 1; suspicious data (may be
 * right) 0.5. A seq gap weighs 0 on the tick that reveals it: the missing
 * ticks count instead, each as a fully bad tick. A reset and a non-finite
 * formula value weigh 0 (counted, not data defects).
 */
const STRUCTURAL =
  QualityIssue.OUT_OF_ORDER |
  QualityIssue.DUPLICATE |
  QualityIssue.CROSSED_QUOTE |
  QualityIssue.BAD_VALUE;
const SUSPICIOUS =
  QualityIssue.STALE |
  QualityIssue.SKEW |
  QualityIssue.SPIKE |
  QualityIssue.LOCKED_QUOTE |
  QualityIssue.OUTSIDE_BAND |
  QualityIssue.TIME_GAP;
const TIME_GAP_WARMUP = 20;
const TIME_GAP_ALPHA = 0.05;
const QUOTE_MAX_AGE_US = 1_000_000;

/**
 * Per-symbol data quality, per tick and per window, allocation-free.
 *
 * Per tick (trades and quotes share `seq`, as the venue does), each check
 * one issue bit (QualityIssue):
 * ```
 *  completeness  seq_gap       seq > last + 1            gaps += seq − last − 1
 *                time_gap      Δts > timeGapK·mean Δts and > timeGapMinUs
 *  consistency   crossed_quote bid > ask                 locked_quote  bid = ask
 *                bad_value     price or size ≤ 0 or not finite
 *                outside_band  trade outside the last quote's [bid, ask] ± tol
 *  timeliness    stale         recv − ts > staleUs       skew  ts − recv > maxSkewUs
 *                out_of_order  seq < last, or ts < newest ts seen
 *                seq_reset     seq < last with ts > newest ts, and (seq ≤ resetSeqFloor <
 *                              last − seq, or last − seq ≥ resetMinDrop): a new session
 *  accuracy      spike         |ln(px/prev)| > spikeK·vol (after warm-up)
 *                duplicate     seq = last
 * ```
 * `quarantine(bits)` says whether the tick is held out (qualityQuarantine).
 *
 * Window score, in [0, 1]:
 * ```
 *   score = 1 − (Σ_ticks weight(tick) + gaps) / (ticks + gaps)
 *   weight = 1 if any of out_of_order, duplicate, crossed_quote, bad_value;
 *            else 0.5 if any of stale, skew, spike, locked_quote, outside_band, time_gap; else 0
 * ```
 * An empty window scores 1. Records (the SymbolActor asks once per tick):
 * - window end (`windowDue`): every `qualityWindowTicks` ticks;
 * - `reset`: on a sequence reset, always;
 * - `change` (`immediateDue(bits)`): the state (issue bits of the latest tick)
 *   differs from the state last reported, at most once per
 *   `qualityImmediateIntervalUs` of exchange time; recovery to clean included;
 * - `quarantine` (`quarantineDue()`): a held-out tick, with the same limit of
 *   its own (the rest are counted in `quarantined`).
 */
export class QualityChecker {
  readonly options: Readonly<QualityOptions>;
  // current window
  ticks = 0;
  gaps = 0;
  crossed = 0;
  locked = 0;
  outOfOrder = 0;
  duplicates = 0;
  stale = 0;
  skew = 0;
  spikes = 0;
  badValues = 0;
  outsideBand = 0;
  timeGaps = 0;
  resets = 0;
  quarantined = 0;
  nonfinite = 0;
  /** OR of the issue bits seen in the window. */
  issueBits = 0;
  /** Sessions started by sequence resets (0 before the first reset). */
  session = 0;
  private badWeight = 0;
  // the previous window, for recentScore
  private prevTicks = 0;
  private prevGaps = 0;
  private prevBadWeight = 0;
  // stream state (survives windows)
  private lastSeq = NaN;
  private maxTs = -Infinity;
  private lastTickTs = NaN;
  private meanDt = 0;
  private dtSeen = 0;
  private bid = NaN;
  private ask = NaN;
  private quoteTs = -Infinity;
  private lastImmediateTs = -Infinity;
  private lastQuarantineTs = -Infinity;
  private stateBits = 0;
  private reportedBits = 0;
  private readonly enabled: number;
  private readonly hard: number;

  constructor(options: Partial<QualityOptions> = {}) {
    this.options = resolvedOnce(RESOLVED, options, resolveQualityOptions);
    this.enabled = ~bitsOf(this.options.qualityDisabled);
    this.hard = bitsOf(this.options.qualityQuarantine) | QualityIssue.BAD_VALUE;
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
    } else {
      if (warm && prevPx > 0 && vol > 0) {
        if (Math.abs(Math.log(px / prevPx)) > this.options.spikeK * vol) bits |= QualityIssue.SPIKE;
      }
      if (ts - this.quoteTs <= QUOTE_MAX_AGE_US) {
        const tol = this.options.bandTolerance * 0.5 * (this.bid + this.ask);
        if (px < this.bid - tol || px > this.ask + tol) bits |= QualityIssue.OUTSIDE_BAND;
      }
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
    if (bid > ask) bits |= QualityIssue.CROSSED_QUOTE;
    else if (bid === ask) bits |= QualityIssue.LOCKED_QUOTE;
    bits = this.account(bits);
    if ((bits & this.hard) === 0) {
      this.bid = bid;
      this.ask = ask;
      this.quoteTs = ts;
    }
    return bits;
  }

  /** Whether a tick with these issue bits is held out of windows and features. */
  quarantine(bits: number): boolean {
    return (bits & this.hard) !== 0;
  }

  /**
   * Count `n` non-finite feature values (user formulas) of the last tick: an
   * issue of the window and of the state (a change raises a record).
   */
  countNonFinite(n: number): number {
    this.nonfinite += n;
    this.issueBits |= QualityIssue.NONFINITE;
    this.stateBits |= QualityIssue.NONFINITE;
    return this.stateBits;
  }

  /** Window score so far (see the class comment); 1 for an empty window. */
  get score(): number {
    const denom = this.ticks + this.gaps;
    if (denom === 0) return 1;
    const s = 1 - (this.badWeight + this.gaps) / denom;
    return s < 0 ? 0 : s;
  }

  /**
   * The score of the current and the previous window together: what signals
   * are gated on and carry. The current window alone says little on its first
   * ticks (one clean tick scores 1 after a window of garbage); with the
   * previous one the judgement always rests on at least a full window.
   */
  get recentScore(): number {
    const denom = this.ticks + this.gaps + this.prevTicks + this.prevGaps;
    if (denom === 0) return 1;
    const s = 1 - (this.badWeight + this.gaps + this.prevBadWeight + this.prevGaps) / denom;
    return s < 0 ? 0 : s;
  }

  /** True once the window holds `qualityWindowTicks` ticks: emit it, then `resetWindow()`. */
  get windowDue(): boolean {
    return this.ticks >= this.options.qualityWindowTicks;
  }

  /**
   * Whether the state `bits` (the tick just checked) raises a `change`
   * record: it differs from the last reported state and the last one was at
   * least `qualityImmediateIntervalUs` of exchange time ago (on the newest
   * exchange time seen, so it stays bounded when timestamps jump back).
   * True records `bits` as reported and consumes the interval: emit it.
   */
  immediateDue(bits: number): boolean {
    if (bits === this.reportedBits) return false;
    if (this.maxTs - this.lastImmediateTs < this.options.qualityImmediateIntervalUs) return false;
    this.lastImmediateTs = this.maxTs;
    this.reportedBits = bits;
    return true;
  }

  /** Whether a quarantined tick gets its own `quarantine` record (rate-limited as immediateDue). */
  quarantineDue(): boolean {
    if (this.maxTs - this.lastQuarantineTs < this.options.qualityImmediateIntervalUs) return false;
    this.lastQuarantineTs = this.maxTs;
    return true;
  }

  /** Write the QUALITY payload (OutputLayout.quality) of the current window, kind `kind`. */
  writePayload(payload: Float64Array, kind: number = QualityEventKind.WINDOW): void {
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
    payload[q.LOCKED] = this.locked;
    payload[q.OUTSIDE_BAND] = this.outsideBand;
    payload[q.TIME_GAPS] = this.timeGaps;
    payload[q.SKEW] = this.skew;
    payload[q.DUPLICATES] = this.duplicates;
    payload[q.RESETS] = this.resets;
    payload[q.QUARANTINED] = this.quarantined;
    payload[q.NONFINITE] = this.nonfinite;
    payload[q.SESSION] = this.session;
    payload[q.KIND] = kind;
  }

  /**
   * Start a new window (stream state such as the last seq is kept). Call it
   * right after emitting the window-end record: that record reported the
   * current state, so it becomes the last reported state.
   */
  resetWindow(): void {
    this.reportedBits = this.stateBits;
    this.prevTicks = this.ticks;
    this.prevGaps = this.gaps;
    this.prevBadWeight = this.badWeight;
    this.ticks = this.gaps = this.crossed = this.locked = this.outOfOrder = 0;
    this.duplicates = this.stale = this.skew = this.spikes = this.badValues = 0;
    this.outsideBand = this.timeGaps = this.resets = this.quarantined = this.nonfinite = 0;
    this.issueBits = 0;
    this.badWeight = 0;
  }

  /**
   * After a restore whose feed is not replayed (core input): the live feed
   * goes on from wherever it is now, maybe restarted at seq 1. Forget the
   * last seq and tick time so its first tick starts a new session instead of
   * being judged out of order against the feed before the restart.
   */
  resumeSequence(): void {
    this.lastSeq = NaN;
    this.lastTickTs = NaN;
    this.session++;
  }

  private checkCommon(seq: number, ts: number, recv: number): number {
    const o = this.options;
    let bits = 0;
    const last = this.lastSeq;
    if (last === last) {
      if (seq > last + 1) {
        bits |= QualityIssue.SEQ_GAP;
        if ((this.enabled & QualityIssue.SEQ_GAP) !== 0) this.gaps += seq - last - 1;
      } else if (seq === last) {
        bits |= QualityIssue.DUPLICATE;
      } else if (seq < last) {
        if (
          ts > this.maxTs &&
          (last - seq >= o.resetMinDrop || (seq <= o.resetSeqFloor && last - seq > o.resetSeqFloor))
        ) {
          bits |= QualityIssue.SEQ_RESET;
          this.session++;
          this.lastSeq = seq;
        } else {
          bits |= QualityIssue.OUT_OF_ORDER;
        }
      }
    }
    if (!(seq <= last)) this.lastSeq = seq;
    if (ts < this.maxTs) {
      bits |= QualityIssue.OUT_OF_ORDER;
    } else {
      this.maxTs = ts;
      const prev = this.lastTickTs;
      if (prev === prev && o.timeGapK > 0) {
        const dt = ts - prev;
        if (
          this.dtSeen >= TIME_GAP_WARMUP &&
          dt > o.timeGapMinUs &&
          dt > o.timeGapK * this.meanDt
        ) {
          bits |= QualityIssue.TIME_GAP;
        }
        // A gap would inflate the mean it is judged against: clamp its share.
        const capped =
          this.dtSeen > 0 && dt > o.timeGapK * this.meanDt ? o.timeGapK * this.meanDt : dt;
        this.meanDt =
          this.dtSeen === 0 ? dt : this.meanDt + TIME_GAP_ALPHA * (capped - this.meanDt);
        this.dtSeen++;
      }
      this.lastTickTs = ts;
    }
    const lag = recv - ts;
    if (lag > o.staleUs) bits |= QualityIssue.STALE;
    else if (lag < -o.maxSkewUs) bits |= QualityIssue.SKEW;
    return bits;
  }

  private account(raw: number): number {
    const bits = raw & this.enabled;
    this.ticks++;
    this.stateBits = bits;
    if (bits === 0) return 0;
    this.issueBits |= bits;
    if ((bits & QualityIssue.OUT_OF_ORDER) !== 0) this.outOfOrder++;
    if ((bits & QualityIssue.DUPLICATE) !== 0) this.duplicates++;
    if ((bits & QualityIssue.CROSSED_QUOTE) !== 0) this.crossed++;
    if ((bits & QualityIssue.LOCKED_QUOTE) !== 0) this.locked++;
    if ((bits & QualityIssue.BAD_VALUE) !== 0) this.badValues++;
    if ((bits & QualityIssue.STALE) !== 0) this.stale++;
    if ((bits & QualityIssue.SKEW) !== 0) this.skew++;
    if ((bits & QualityIssue.SPIKE) !== 0) this.spikes++;
    if ((bits & QualityIssue.OUTSIDE_BAND) !== 0) this.outsideBand++;
    if ((bits & QualityIssue.TIME_GAP) !== 0) this.timeGaps++;
    if ((bits & QualityIssue.SEQ_RESET) !== 0) this.resets++;
    if ((bits & this.hard) !== 0) this.quarantined++;
    this.badWeight += (bits & STRUCTURAL) !== 0 ? 1 : (bits & SUSPICIOUS) !== 0 ? 0.5 : 0;
    return bits;
  }
}

function bitsOf(names: readonly string[]): number {
  let bits = 0;
  for (const n of names) {
    const e = QUALITY_ISSUE_NAMES.find(([, name]) => name === n);
    if (e !== undefined) bits |= e[0];
  }
  return bits;
}

const RESOLVED = new WeakMap<Partial<QualityOptions>, QualityOptions>();

/** Whether `v` is a list of distinct per-tick check names. */
export function isCheckList(v: unknown): v is string[] {
  return (
    Array.isArray(v) &&
    v.every((x) => typeof x === 'string' && QUALITY_CHECK_NAMES.includes(x)) &&
    new Set(v).size === v.length
  );
}

function resolveQualityOptions(options: Partial<QualityOptions>): QualityOptions {
  const o = { ...DEFAULT_QUALITY_OPTIONS, ...options };
  const positive = (k: keyof QualityOptions, min = 0, open = true): void => {
    const v = o[k] as number;
    if (!(open ? v > min : v >= min) || !Number.isFinite(v)) {
      invalidArgument(k, v, `a finite number ${open ? '>' : '≥'} ${min}`);
    }
  };
  if (!Number.isInteger(o.qualityWindowTicks) || o.qualityWindowTicks < 1) {
    invalidArgument('qualityWindowTicks', o.qualityWindowTicks, 'an integer ≥ 1');
  }
  positive('staleUs');
  positive('maxSkewUs', 0, false);
  positive('spikeK');
  positive('timeGapK', 0, false);
  positive('timeGapMinUs', 0, false);
  positive('bandTolerance', 0, false);
  positive('resetSeqFloor', 0, false);
  positive('resetMinDrop');
  positive('qualityImmediateIntervalUs', 0, false);
  for (const k of ['qualityQuarantine', 'qualityDisabled'] as const) {
    if (!isCheckList(o[k])) {
      invalidArgument(k, o[k], `a list of distinct checks (${QUALITY_CHECK_NAMES.join(', ')})`);
    }
  }
  if (o.qualityDisabled.includes('bad_value')) {
    invalidArgument('qualityDisabled', o.qualityDisabled, 'checks other than bad_value');
  }
  return o;
}
