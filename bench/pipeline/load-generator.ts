import type { NatsConnection } from '@nats-io/transport-node';
import { nowUs } from '../../kernel/clock.js';
import { invalidArgument } from '../../kernel/errors.js';
import type { LatencyRecorder } from '../hdr-report.js';

/**
 * The pipeline bench's market: N symbols (`B0000` … `B0999`), JSON trades on
 * `<prefix>.<sym>`, published at an offered rate in small paced batches, plus
 * the table that matches each arrival (a signal on the WebSocket, or the raw
 * message on a plain NATS subscriber) back to the send time of its trade.
 *
 * ```
 *  send table: one row of `slots` entries per symbol, entry = seq & (slots − 1)
 *
 *          slot 0     slot 1     slot 2          slot slots−1
 *  B0000 [ seq|sent ][ seq|sent ][ seq|sent ] … [ seq|sent ]
 *  B0001 [ seq|sent ][    …     ]
 *    …
 *  sent > 0   recorded trade, not yet arrived (send time in µs, nowUs())
 *  sent < 0   warm-up trade, not yet arrived (−send time): arrival not recorded
 *  sent = 0   arrived (a second arrival is a duplicate)
 *  seq ≠ the arriving seq: the slot was reused (a trade over `slots` trades
 *             behind) or the arrival is not ours: counted as unknown
 * ```
 * Send and arrival times both come from this process's `nowUs()`, so no
 * cross-process clock enters the end-to-end figure. Typed arrays are
 * allocated once; publishing allocates only the JSON string and the subject
 * lookup is a prebuilt array.
 */

/** Options of a {@link LoadGenerator}. */
export interface LoadGeneratorOptions {
  /** Symbols, named `B0000` upwards (at most 10,000). Default 1000. */
  symbols?: number;
  /** Send-table entries per symbol, a power of two. Default 4096. */
  slots?: number;
  /** PRNG seed of the random walks (xorshift32, non-zero). Default 0x9e3779b9. */
  seed?: number;
}

/** What one paced step published. */
export interface PublishStats {
  /** Trades published in the whole step (warm-up included). */
  published: number;
  /** Trades published after the warm-up: the ones whose arrival is recorded. */
  recorded: number;
  /** Trades per second actually offered over the whole step. */
  achievedRate: number;
  /** Largest gap between two publishing batches, ms (the pacing timer's jitter). */
  maxBatchGapMs: number;
}

/** Per-step arrival counters (reset by `resetCounters`). */
export interface ArrivalCounters {
  /** Recorded trades that arrived (their latency is in the recorder). */
  arrived: number;
  /** Warm-up trades that arrived (not recorded). */
  warmupArrived: number;
  /** Second arrival of the same trade. */
  duplicates: number;
  /** Arrivals that match no trade in the table. */
  unknown: number;
}

const MAX_SYMBOLS = 10_000;
const RADIX = 48; // '0'

/** The bench market: symbols, per-symbol seq and price walk, send table, pacing. */
export class LoadGenerator {
  readonly symbols: number;
  readonly names: readonly string[];
  readonly counters: ArrivalCounters = { arrived: 0, warmupArrived: 0, duplicates: 0, unknown: 0 };
  /** Where arrivals of recorded trades are recorded; set per step. */
  recorder: LatencyRecorder | undefined;
  private readonly slots: number;
  private readonly mask: number;
  private readonly seqAt: Float64Array;
  private readonly sentAt: Float64Array;
  private readonly nextSeq: Float64Array;
  private readonly px: Float64Array;
  /** Per-symbol drift: +1 rising, −1 falling; flips now and then. */
  private readonly drift: Int8Array;
  private rng: number;
  /** Next symbol of the round robin. */
  private cursor = 0;
  private readonly subjectCache = new Map<string, readonly string[]>();

  constructor(opts: LoadGeneratorOptions = {}) {
    const symbols = opts.symbols ?? 1000;
    if (!Number.isInteger(symbols) || symbols < 1 || symbols > MAX_SYMBOLS) {
      invalidArgument('symbols', opts.symbols, `an integer from 1 to ${MAX_SYMBOLS}`);
    }
    const slots = opts.slots ?? 4096;
    if (!Number.isInteger(slots) || slots < 2 || slots > 1 << 20 || (slots & (slots - 1)) !== 0) {
      invalidArgument('slots', opts.slots, 'a power of two from 2 to 2^20');
    }
    const seed = opts.seed ?? 0x9e3779b9;
    if (!Number.isInteger(seed) || (seed | 0) === 0) {
      invalidArgument('seed', opts.seed, 'a non-zero 32-bit integer');
    }
    this.symbols = symbols;
    this.slots = slots;
    this.mask = slots - 1;
    this.names = Array.from({ length: symbols }, (_, i) => `B${String(i).padStart(4, '0')}`);
    this.seqAt = new Float64Array(symbols * slots).fill(-1);
    this.sentAt = new Float64Array(symbols * slots);
    this.nextSeq = new Float64Array(symbols).fill(1);
    this.px = new Float64Array(symbols);
    this.drift = new Int8Array(symbols);
    this.rng = seed | 0;
    for (let i = 0; i < symbols; i++) {
      this.px[i] = 50 + 150 * this.random();
      this.drift[i] = this.random() < 0.5 ? 1 : -1;
    }
  }

  /** Subjects `<prefix>.<sym>` for every symbol (built once per prefix). */
  subjects(prefix: string): readonly string[] {
    let s = this.subjectCache.get(prefix);
    if (s === undefined) {
      s = this.names.map((n) => `${prefix}.${n}`);
      this.subjectCache.set(prefix, s);
    }
    return s;
  }

  /** xorshift32 in [0, 1): reproducible walks, no allocation. */
  private random(): number {
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x;
    return (x >>> 0) / 4294967296;
  }

  /**
   * Publish `n` trades, round robin over the symbols, each stamped in the
   * send table right before `nc.publish`. `record` false marks them warm-up.
   */
  publishBatch(nc: NatsConnection, subjects: readonly string[], n: number, record: boolean): void {
    const names = this.names;
    for (let k = 0; k < n; k++) {
      const i = this.cursor;
      this.cursor = i + 1 === this.symbols ? 0 : i + 1;
      const seq = this.nextSeq[i]!;
      this.nextSeq[i] = seq + 1;
      // Random walk with a drift that flips about every 200 trades, so the
      // momentum strategy sees both rising and falling stretches.
      if (this.random() < 0.005) this.drift[i] = -this.drift[i]!;
      const d = this.drift[i]!;
      const px = this.px[i]! * (1 + d * 0.0004 + (this.random() - 0.5) * 0.0008);
      this.px[i] = px;
      const qty = 1 + Math.floor(this.random() * 10);
      const slot = i * this.slots + (seq & this.mask);
      const sent = nowUs();
      this.seqAt[slot] = seq;
      this.sentAt[slot] = record ? sent : -sent;
      nc.publish(
        subjects[i]!,
        `{"type":"trade","sym":"${names[i]!}","ts":${Math.floor(sent)},"px":${Math.round(px * 1e4) / 1e4},"qty":${qty},"side":"${d > 0 ? 'buy' : 'sell'}","seq":${seq}}`,
      );
    }
  }

  /**
   * One arrival of trade (`sym` index, `seq`) at `recvUs` (this process's
   * nowUs()). Records `recvUs − sent` when the trade was a recorded one and
   * returns its send time; returns 0 for a warm-up, duplicate or unknown one.
   */
  arrive(sym: number, seq: number, recvUs: number): number {
    if (sym < 0 || sym >= this.symbols || seq < 0) {
      this.counters.unknown++;
      return 0;
    }
    const slot = sym * this.slots + (seq & this.mask);
    if (this.seqAt[slot] !== seq) {
      this.counters.unknown++;
      return 0;
    }
    const sent = this.sentAt[slot]!;
    if (sent === 0) {
      this.counters.duplicates++;
      return 0;
    }
    this.sentAt[slot] = 0;
    if (sent < 0) {
      this.counters.warmupArrived++;
      return 0;
    }
    this.counters.arrived++;
    this.recorder?.record(recvUs - sent);
    return sent;
  }

  resetCounters(): void {
    const c = this.counters;
    c.arrived = 0;
    c.warmupArrived = 0;
    c.duplicates = 0;
    c.unknown = 0;
  }

  /**
   * Offer `rate` trades/s on `<prefix>.<sym>` for `seconds`, the first
   * `warmupSeconds` unrecorded. Every ~1 ms timer turn publishes the trades
   * that are due by then (so timer jitter changes batch sizes, not the rate)
   * and yields, letting the subscribers of this process run between batches:
   * no busy loop. `nc.flush()` every 250 ms and at the end keeps the client's
   * outbound buffer from hiding a server that does not keep up.
   */
  run(
    nc: NatsConnection,
    prefix: string,
    rate: number,
    seconds: number,
    warmupSeconds: number,
  ): Promise<PublishStats> {
    if (!(rate > 0) || !Number.isFinite(rate)) invalidArgument('rate', rate, 'trades/s > 0');
    if (!(seconds > warmupSeconds) || !(warmupSeconds >= 0)) {
      invalidArgument('seconds', seconds, `more than the warm-up (${warmupSeconds} s)`);
    }
    const subjects = this.subjects(prefix);
    const total = Math.round(rate * seconds);
    const warmupCount = Math.round(rate * warmupSeconds);
    return new Promise<PublishStats>((resolve, reject) => {
      const start = nowUs();
      let sent = 0;
      let last = start;
      let maxGap = 0;
      let lastFlush = start;
      const turn = (): void => {
        try {
          const now = nowUs();
          if (now - last > maxGap) maxGap = now - last;
          last = now;
          const due = Math.min(total, Math.floor(((now - start) * rate) / 1e6) + 1);
          if (sent < warmupCount && due > sent) {
            const n = Math.min(due, warmupCount) - sent;
            this.publishBatch(nc, subjects, n, false);
            sent += n;
          }
          if (due > sent) {
            this.publishBatch(nc, subjects, due - sent, true);
            sent = due;
          }
          if (sent >= total) {
            const elapsed = nowUs() - start;
            nc.flush().then(
              () =>
                resolve({
                  published: total,
                  recorded: total - warmupCount,
                  achievedRate: total / (Math.max(elapsed, seconds * 1e6) / 1e6),
                  maxBatchGapMs: maxGap / 1000,
                }),
              reject,
            );
            return;
          }
          if (now - lastFlush > 250_000) {
            lastFlush = now;
            nc.flush().catch(reject);
          }
          setTimeout(turn, 1);
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      };
      turn();
    });
  }
}

/**
 * Parse an unsigned decimal integer from `buf` at `at` (no allocation);
 * -1 when there is no digit there.
 */
export function readUint(buf: Uint8Array, at: number): number {
  let v = 0;
  let i = at;
  for (; i < buf.length; i++) {
    const c = buf[i]! - RADIX;
    if (c < 0 || c > 9) break;
    v = v * 10 + c;
  }
  return i === at ? -1 : v;
}
