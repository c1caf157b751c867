import { checkNonNegative, checkPeriod } from './common.js';

/**
 * Mean, population variance, standard deviation and z-score of the last
 * `period` values:
 *
 * - `mean = Σx / n`
 * - `variance = Σ(x − mean)² / n` (population: divided by n, as Bollinger bands use)
 * - `stddev = √variance`
 * - `zscore = (x_t − mean) / stddev` of the latest value; 0 when stddev is 0
 *   (a constant window: the latest value is the mean).
 *
 * O(1) per update with the sliding-window form of Welford's recurrence: when
 * x replaces x_old, `mean' = mean + (x − x_old)/n` and
 * `M2' = M2 + (x − x_old)·(x − mean' + x_old − mean)` (no Σx² − n·mean², which
 * loses every digit at large magnitudes). Every `period` updates mean and M2
 * are recomputed exactly from the ring (corrected two-pass), so rounding
 * errors never accumulate beyond one window (amortised O(1)).
 *
 * Warm-up: every output is NaN and `ready` false until `period` values were
 * seen. `value` is the output the subclass names (RollingStats: the mean).
 */
export class RollingStats {
  readonly period: number;
  ready = false;
  mean = Number.NaN;
  variance = Number.NaN;
  stddev = Number.NaN;
  zscore = Number.NaN;
  /** Latest value folded in. */
  last = Number.NaN;
  protected readonly ring: Float64Array;
  private m = 0;
  private m2 = 0;
  private pos = 0;
  private count = 0;

  constructor(period: number) {
    this.period = checkPeriod('period', period);
    this.ring = new Float64Array(this.period);
  }

  get value(): number {
    return this.mean;
  }

  update(x: number): void {
    const n = this.period;
    this.last = x;
    if (this.count < n) {
      this.ring[this.count++] = x;
      const d = x - this.m;
      this.m += d / this.count;
      this.m2 += d * (x - this.m);
      if (this.count < n) return;
      this.ready = true;
    } else {
      const pos = this.pos;
      const old = this.ring[pos]!;
      this.ring[pos] = x;
      if (pos + 1 === n) {
        this.pos = 0;
        this.resum();
      } else {
        this.pos = pos + 1;
        const m = this.m;
        const nm = m + (x - old) / n;
        this.m2 += (x - old) * (x - nm + old - m);
        if (this.m2 < 0) this.m2 = 0;
        this.m = nm;
      }
    }
    this.publish(x);
  }

  private resum(): void {
    const ring = this.ring;
    const n = this.period;
    let s = 0;
    for (let i = 0; i < n; i++) s += ring[i]!;
    const m = s / n;
    let ss = 0;
    let c = 0;
    for (let i = 0; i < n; i++) {
      const d = ring[i]! - m;
      ss += d * d;
      c += d;
    }
    // Corrected two-pass: removes the first-order error of m.
    this.m = m + c / n;
    this.m2 = Math.max(0, ss - (c * c) / n);
  }

  private publish(x: number): void {
    const v = this.m2 / this.period;
    const sd = Math.sqrt(v);
    this.mean = this.m;
    this.variance = v;
    this.stddev = sd;
    this.zscore = sd > 0 ? (x - this.m) / sd : 0;
  }

  reset(): void {
    this.ready = false;
    this.mean = this.variance = this.stddev = this.zscore = this.last = Number.NaN;
    this.m = this.m2 = 0;
    this.pos = 0;
    this.count = 0;
  }
}

/** Rolling mean of the last `period` values (RollingStats with `value` = mean). */
export class RollingMean extends RollingStats {}

/** Rolling population variance of the last `period` values (`value` = variance). */
export class RollingVariance extends RollingStats {
  override get value(): number {
    return this.variance;
  }
}

/** Rolling population standard deviation of the last `period` values (`value` = stddev). */
export class RollingStdDev extends RollingStats {
  override get value(): number {
    return this.stddev;
  }
}

/** Z-score of the latest value against the last `period` values, itself included (`value` = zscore). */
export class ZScore extends RollingStats {
  override get value(): number {
    return this.zscore;
  }
}

/**
 * Bollinger bands over the last `period` values, k standard deviations:
 *
 * - `middle = SMA` (the rolling mean), σ the population standard deviation
 * - `upper = middle + k·σ`, `lower = middle − k·σ`
 * - `pctb = (x_t − lower) / (upper − lower)`; 0.5 when the bands are one line
 *   (σ = 0 or k = 0: the latest value is the middle).
 *
 * `value` is the middle band. Warm-up as RollingStats: NaN until `period` values.
 */
export class Bollinger {
  readonly period: number;
  readonly k: number;
  ready = false;
  upper = Number.NaN;
  middle = Number.NaN;
  lower = Number.NaN;
  pctb = Number.NaN;
  private readonly stats: RollingStats;

  constructor(period: number, k = 2) {
    this.period = checkPeriod('period', period);
    this.k = checkNonNegative('k', k);
    this.stats = new RollingStats(this.period);
  }

  get value(): number {
    return this.middle;
  }

  update(x: number): void {
    const s = this.stats;
    s.update(x);
    if (!s.ready) return;
    this.ready = true;
    const m = s.mean;
    const w = this.k * s.stddev;
    this.middle = m;
    this.upper = m + w;
    this.lower = m - w;
    this.pctb = w > 0 ? (x - this.lower) / (2 * w) : 0.5;
  }

  reset(): void {
    this.stats.reset();
    this.ready = false;
    this.upper = this.middle = this.lower = this.pctb = Number.NaN;
  }
}
