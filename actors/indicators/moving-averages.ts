import { checkPeriod, CompensatedSum } from './common.js';

/**
 * Simple moving average of the last `period` values:
 * `SMA_t = (x_{t−n+1} + … + x_t) / n`.
 *
 * O(1) per update: a Neumaier-compensated running sum over a preallocated
 * ring; every `period` updates the sum is recomputed exactly from the ring
 * (amortised O(1)), so float drift stays bounded forever.
 *
 * Warm-up: `value` is NaN and `ready` false until `period` values were seen.
 */
export class SMA {
  readonly period: number;
  value = Number.NaN;
  ready = false;
  private readonly ring: Float64Array;
  private readonly sum = new CompensatedSum();
  private pos = 0;
  private count = 0;

  constructor(period: number) {
    this.period = checkPeriod('period', period);
    this.ring = new Float64Array(this.period);
  }

  update(x: number): void {
    const n = this.period;
    if (this.count < n) {
      this.ring[this.count++] = x;
      this.sum.add(x);
      if (this.count === n) {
        this.ready = true;
        this.value = this.sum.value / n;
      }
      return;
    }
    const pos = this.pos;
    const old = this.ring[pos]!;
    this.ring[pos] = x;
    if (pos + 1 === n) {
      this.pos = 0;
      this.sum.resum(this.ring, n);
    } else {
      this.pos = pos + 1;
      this.sum.add(x);
      this.sum.add(-old);
    }
    this.value = this.sum.value / n;
  }

  reset(): void {
    this.value = Number.NaN;
    this.ready = false;
    this.sum.reset();
    this.pos = 0;
    this.count = 0;
  }
}

/**
 * Exponential moving average, α = 2 / (period + 1):
 * `EMA_t = EMA_{t−1} + α·(x_t − EMA_{t−1})`.
 *
 * Warm-up: seeded with the SMA of the first `period` values (the usual
 * charting convention); `value` is NaN and `ready` false until then, so
 * `EMA_{n−1} = mean(x_0 … x_{n−1})` and from there on the recursion.
 * Equivalently `EMA_t = (1−α)^{t−n+1}·SMA_n + Σ_{i=n}^{t} α(1−α)^{t−i}·x_i`.
 */
export class EMA {
  readonly period: number;
  readonly alpha: number;
  value = Number.NaN;
  ready = false;
  private count = 0;
  private seed = 0;

  constructor(period: number) {
    this.period = checkPeriod('period', period);
    this.alpha = 2 / (this.period + 1);
  }

  update(x: number): void {
    if (this.ready) {
      this.value += this.alpha * (x - this.value);
      return;
    }
    this.seed += x;
    if (++this.count === this.period) {
      this.value = this.seed / this.period;
      this.ready = true;
    }
  }

  reset(): void {
    this.value = Number.NaN;
    this.ready = false;
    this.count = 0;
    this.seed = 0;
  }
}

/**
 * Linearly weighted moving average of the last `period` values, weights
 * 1 … n from the oldest to the newest:
 * `WMA_t = Σ_{i=1}^{n} i·x_{t−n+i} / (n(n+1)/2)`.
 *
 * O(1) per update with a running sum S and weighted sum W: when x enters and
 * the oldest value leaves, `W ← W − S + n·x` (every weight drops by one, the
 * oldest to 0) and `S ← S − x_old + x`. Both are recomputed exactly from the
 * ring every `period` updates to bound drift (amortised O(1)).
 *
 * Warm-up: `value` is NaN and `ready` false until `period` values were seen.
 */
export class WMA {
  readonly period: number;
  value = Number.NaN;
  ready = false;
  private readonly ring: Float64Array;
  private readonly denom: number;
  private sum = 0;
  private wsum = 0;
  private pos = 0;
  private count = 0;

  constructor(period: number) {
    this.period = checkPeriod('period', period);
    this.ring = new Float64Array(this.period);
    this.denom = (this.period * (this.period + 1)) / 2;
  }

  update(x: number): void {
    const n = this.period;
    if (this.count < n) {
      this.ring[this.count++] = x;
      this.sum += x;
      this.wsum += this.count * x;
      if (this.count === n) {
        this.ready = true;
        this.value = this.wsum / this.denom;
      }
      return;
    }
    const pos = this.pos;
    const old = this.ring[pos]!;
    this.ring[pos] = x;
    if (pos + 1 === n) {
      // The ring is in order again (oldest at 0): exact re-sum.
      this.pos = 0;
      const ring = this.ring;
      let s = 0;
      let w = 0;
      for (let i = 0; i < n; i++) {
        const v = ring[i]!;
        s += v;
        w += (i + 1) * v;
      }
      this.sum = s;
      this.wsum = w;
    } else {
      this.pos = pos + 1;
      this.wsum += n * x - this.sum;
      this.sum += x - old;
    }
    this.value = this.wsum / this.denom;
  }

  reset(): void {
    this.value = Number.NaN;
    this.ready = false;
    this.sum = 0;
    this.wsum = 0;
    this.pos = 0;
    this.count = 0;
  }
}
