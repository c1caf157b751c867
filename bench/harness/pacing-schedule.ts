import { invalidArgument } from '../../kernel/errors.js';

/**
 * The open-loop send schedule of one load step: tick `k` (0-based, all
 * symbols together) is *intended* to leave at `startUs + k / rate`. The
 * publisher wakes on a ~1 ms timer and publishes every tick that is due by
 * then (`dueBy(now)`), so timer jitter changes batch sizes, never the rate,
 * and a generator that stalls for 50 ms catches up with a burst whose ticks
 * keep their intended times.
 *
 * ```
 *  intended:  k=0   1   2   3   4   5   6   7   8        (1/rate apart)
 *             |   |   |   |   |   |   |   |   |
 *  timer:     T0 ───────── T1 ───── (stall) ───────── T2
 *  published: [0]          [1 2 3]                    [4 5 6 7 8]
 *  latency = arrival − intended(k): a stalled sender shows up as latency
 *  (coordinated omission corrected), not as fewer samples.
 * ```
 * Pure arithmetic on µs doubles: no clock, no allocation.
 */
export class PacingSchedule {
  /** Ticks per second. */
  readonly rate: number;
  /** Ticks in the whole step. */
  readonly total: number;
  /** Intended send time of tick 0, µs. */
  readonly startUs: number;
  private readonly usPerTick: number;

  constructor(rate: number, total: number, startUs: number) {
    if (!Number.isFinite(rate) || rate <= 0) invalidArgument('rate', rate, 'ticks/s > 0');
    if (!Number.isInteger(total) || total < 0) {
      invalidArgument('total', total, 'an integer >= 0');
    }
    if (!Number.isFinite(startUs)) invalidArgument('startUs', startUs, 'a finite µs time');
    this.rate = rate;
    this.total = total;
    this.startUs = startUs;
    this.usPerTick = 1e6 / rate;
  }

  /** A schedule of `seconds` at `rate` (total rounded to whole ticks). */
  static forDuration(rate: number, seconds: number, startUs: number): PacingSchedule {
    if (!Number.isFinite(seconds) || seconds <= 0) invalidArgument('seconds', seconds, '> 0');
    return new PacingSchedule(rate, Math.round(rate * seconds), startUs);
  }

  /** Intended send time of tick `k`, µs. */
  intendedUs(k: number): number {
    return this.startUs + k * this.usPerTick;
  }

  /** How many ticks (from 0) are due at `nowUs`: those whose intended time is ≤ now. */
  dueBy(nowUs: number): number {
    if (nowUs < this.startUs) return 0;
    const due = Math.floor((nowUs - this.startUs) / this.usPerTick) + 1;
    return due < this.total ? due : this.total;
  }

  /** Ticks whose intended time falls before `startUs + seconds` (e.g. a warm-up). */
  countBefore(seconds: number): number {
    const n = Math.ceil((seconds * 1e6) / this.usPerTick - 1e-9);
    return Math.max(0, Math.min(this.total, n));
  }

  /** Intended time of the last tick, µs (the schedule's end). */
  get endUs(): number {
    return this.total === 0 ? this.startUs : this.intendedUs(this.total - 1);
  }
}
