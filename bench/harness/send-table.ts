import { invalidArgument } from '../../kernel/errors.js';
import { LatencyRecorder } from '../hdr-report.js';
import type { PacingSchedule } from './pacing-schedule.js';

/**
 * The load step's send table: matches each arrival (a prediction on the
 * WebSocket, a relayed tick, a raw NATS message) back to the tick that
 * caused it, and records its latency.
 *
 * Ticks go round robin over the symbols, starting at symbol 0, so tick `k`
 * is symbol `k mod N` with seq `seqStart[sym] + floor(k / N)`, and an
 * arrival's (symbol, seq) gives `k` back without a lookup structure. The
 * intended send time of `k` comes from the schedule; only the actual send
 * time and the delivery count are stored, in a ring indexed by `k`:
 *
 * ```
 *  slot = k & (capacity − 1)
 *            slot 0     slot 1            slot capacity−1
 *  kAt     [   k    ][   k    ]   …    [   k    ]   which tick owns the slot (−1: none)
 *  sentAt  [ actual ][ actual ]   …    [ actual ]   µs, this process's nowUs()
 *  count   [ n      ][ n      ]   …    [ n      ]   deliveries seen so far
 *
 *  arrival (sym, seq) → k = (seq − seqStart[sym])·N + sym
 *    seq < seqStart[sym]          stale: a tick of an earlier step (e.g. a snapshot on subscribe)
 *    k ≥ sent or kAt[slot] ≠ k    unknown: not ours, or so late its slot was reused
 *    count ≥ expected             duplicate
 *    otherwise                    delivered; latency recorded:
 *       corrected   = recv − intended(k)   (coordinated omission corrected: the headline)
 *       uncorrected = recv − sentAt        (what a naive closed-loop bench would report)
 *       cold        = corrected, for ticks intended in the first `coldSeconds`
 * ```
 * `expected` is the deliveries per tick (the subscriber count in the
 * fan-out scenario, else 1). Warm-up ticks are matched and counted but not
 * recorded (except in `cold`). Typed arrays are allocated once; `arrive`
 * allocates nothing.
 */

/** Options of a {@link SendTable}. */
export interface SendTableOptions {
  schedule: PacingSchedule;
  /** Symbols the ticks go round robin over. */
  symbols: number;
  /** Seq of the first tick of this step, per symbol (length `symbols`). Default all 1. */
  seqStart?: Float64Array;
  /** Ticks `k < warmupCount` are warm-up: matched, not recorded. Default 0. */
  warmupCount?: number;
  /** Ticks intended before this µs time are also recorded in `cold`. Default: none. */
  coldEndUs?: number;
  /** Deliveries expected per tick (subscribers). Default 1. */
  expected?: number;
  /** Ring slots, a power of two. Default: the next power of two ≥ 20 s of ticks (1,024 to 2^23). */
  capacity?: number;
}

/** Arrival counters (deliveries, not ticks, for fan-out). */
export interface ArrivalCounts {
  /** Deliveries matched to a tick of this step (warm-up included). */
  delivered: number;
  /** Deliveries of ticks after the warm-up: the recorded ones. */
  measured: number;
  /** Distinct ticks with at least one delivery. */
  ticksMatched: number;
  /** Deliveries beyond `expected` for one tick. */
  duplicates: number;
  /** Arrivals of a tick of an earlier step (snapshots on subscribe). */
  stale: number;
  /** Arrivals matching no tick we sent (or whose slot was already reused). */
  unknown: number;
}

const MIN_CAPACITY = 1024;
const MAX_CAPACITY = 1 << 23;
/** Seconds of ticks the default capacity covers: later arrivals read as unknown. */
const HORIZON_SECONDS = 20;

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** Matches arrivals to sent ticks and records their latency. */
export class SendTable {
  readonly schedule: PacingSchedule;
  readonly symbols: number;
  readonly warmupCount: number;
  readonly expected: number;
  readonly capacity: number;
  /** Corrected latency of measured ticks, µs. */
  readonly corrected = new LatencyRecorder();
  /** Uncorrected latency (recv − actual send) of measured ticks, µs. */
  readonly uncorrected = new LatencyRecorder();
  /** Corrected latency of ticks intended before `coldEndUs` (warm-up or not), µs. */
  readonly cold = new LatencyRecorder();
  /** Corrected latency since the last `takeInterval()`, µs (soak). */
  readonly interval = new LatencyRecorder();
  readonly counts: ArrivalCounts = {
    delivered: 0,
    measured: 0,
    ticksMatched: 0,
    duplicates: 0,
    stale: 0,
    unknown: 0,
  };
  /** Ticks sent so far. */
  sent = 0;
  private readonly seqStart: Float64Array;
  private readonly coldEndUs: number;
  private readonly mask: number;
  private readonly kAt: Float64Array;
  private readonly sentAt: Float64Array;
  private readonly count: Uint16Array;

  constructor(o: SendTableOptions) {
    const n = o.symbols;
    if (!Number.isInteger(n) || n < 1) invalidArgument('symbols', n, 'an integer >= 1');
    if (o.seqStart !== undefined && o.seqStart.length !== n) {
      invalidArgument('seqStart', o.seqStart.length, `an array of ${n} seqs`);
    }
    const expected = o.expected ?? 1;
    if (!Number.isInteger(expected) || expected < 1 || expected > 65_534) {
      invalidArgument('expected', expected, 'an integer from 1 to 65534');
    }
    const capacity =
      o.capacity ??
      Math.min(
        MAX_CAPACITY,
        Math.max(MIN_CAPACITY, nextPow2(Math.ceil(o.schedule.rate * HORIZON_SECONDS))),
      );
    if (!Number.isInteger(capacity) || capacity < 2 || (capacity & (capacity - 1)) !== 0) {
      invalidArgument('capacity', capacity, 'a power of two >= 2');
    }
    this.schedule = o.schedule;
    this.symbols = n;
    this.seqStart = o.seqStart ?? new Float64Array(n).fill(1);
    this.warmupCount = o.warmupCount ?? 0;
    this.coldEndUs = o.coldEndUs ?? Number.NEGATIVE_INFINITY;
    this.expected = expected;
    this.capacity = capacity;
    this.mask = capacity - 1;
    this.kAt = new Float64Array(capacity).fill(-1);
    this.sentAt = new Float64Array(capacity);
    this.count = new Uint16Array(capacity);
  }

  /** Symbol index of tick `k`. */
  symbolOf(k: number): number {
    return k % this.symbols;
  }

  /** Seq of tick `k` (per-symbol, continuing from `seqStart`). */
  seqOf(k: number): number {
    return this.seqStart[k % this.symbols]! + Math.floor(k / this.symbols);
  }

  /** Note that tick `k` (the next one, `k === sent`) left at `actualUs`. */
  markSent(k: number, actualUs: number): void {
    const slot = k & this.mask;
    this.kAt[slot] = k;
    this.sentAt[slot] = actualUs;
    this.count[slot] = 0;
    this.sent = k + 1;
  }

  /**
   * One arrival of (symbol index, seq) at `recvUs`. Returns true when it was
   * a valid delivery of a tick of this step.
   */
  arrive(sym: number, seq: number, recvUs: number): boolean {
    if (sym < 0 || sym >= this.symbols || seq < 0) {
      this.counts.unknown++;
      return false;
    }
    const r = seq - this.seqStart[sym]!;
    if (r < 0) {
      this.counts.stale++;
      return false;
    }
    return this.arriveTick(r * this.symbols + sym, recvUs);
  }

  /** One arrival of tick `k` at `recvUs` (see `arrive`). */
  arriveTick(k: number, recvUs: number): boolean {
    const slot = k & this.mask;
    if (k < 0 || k >= this.sent || this.kAt[slot] !== k) {
      this.counts.unknown++;
      return false;
    }
    const n = this.count[slot]!;
    if (n >= this.expected) {
      this.counts.duplicates++;
      return false;
    }
    this.count[slot] = n + 1;
    const c = this.counts;
    c.delivered++;
    if (n === 0) c.ticksMatched++;
    const intended = this.schedule.intendedUs(k);
    if (intended < this.coldEndUs) this.cold.record(recvUs - intended);
    if (k >= this.warmupCount) {
      c.measured++;
      this.corrected.record(recvUs - intended);
      this.uncorrected.record(recvUs - this.sentAt[slot]!);
      this.interval.record(recvUs - intended);
    }
    return true;
  }

  /** Deliveries still expected for the ticks sent so far (0 when all arrived). */
  outstanding(): number {
    return this.sent * this.expected - this.counts.delivered;
  }
}

/**
 * The seq each symbol starts the next step with, after a step that sent
 * `sent` ticks round robin from symbol 0 starting at `seqStart`.
 */
export function advanceSeq(seqStart: Float64Array, sent: number): Float64Array {
  const n = seqStart.length;
  const out = new Float64Array(n);
  const full = Math.floor(sent / n);
  const rest = sent - full * n;
  for (let i = 0; i < n; i++) out[i] = seqStart[i]! + full + (i < rest ? 1 : 0);
  return out;
}
