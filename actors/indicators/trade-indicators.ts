import { checkPeriod, CompensatedSum } from './common.js';

/**
 * Volume-weighted average price `Σ px·qty / Σ qty`.
 *
 * - `period ≥ 1`: over the last `period` trades (two preallocated rings,
 *   Neumaier-compensated running sums, exact re-sum from the rings every
 *   `period` updates). Warm-up: NaN and not ready until `period` trades.
 * - `period = 0`: session VWAP over every trade since construction / reset().
 *   Ready after the first trade.
 *
 * `value` is NaN while the total quantity is 0 (no volume: no average price).
 */
export class VWAP {
  readonly period: number;
  value = Number.NaN;
  ready = false;
  private readonly pvRing: Float64Array;
  private readonly qRing: Float64Array;
  private readonly pv = new CompensatedSum();
  private readonly q = new CompensatedSum();
  private pos = 0;
  private count = 0;
  /** Trades in the window with qty ≠ 0 (exact: a window without volume gives NaN, not a residue). */
  private nonZero = 0;

  constructor(period: number) {
    this.period = checkPeriod('period', period, 0);
    this.pvRing = new Float64Array(this.period);
    this.qRing = new Float64Array(this.period);
  }

  update(px: number, qty: number): void {
    const n = this.period;
    const pv = px * qty;
    if (qty !== 0) this.nonZero++;
    if (n === 0) {
      this.pv.add(pv);
      this.q.add(qty);
      this.ready = true;
    } else if (this.count < n) {
      this.pvRing[this.count] = pv;
      this.qRing[this.count++] = qty;
      this.pv.add(pv);
      this.q.add(qty);
      if (this.count < n) return;
      this.ready = true;
    } else {
      const pos = this.pos;
      const oldPv = this.pvRing[pos]!;
      const oldQ = this.qRing[pos]!;
      this.pvRing[pos] = pv;
      this.qRing[pos] = qty;
      if (oldQ !== 0) this.nonZero--;
      if (pos + 1 === n) {
        this.pos = 0;
        this.pv.resum(this.pvRing, n);
        this.q.resum(this.qRing, n);
      } else {
        this.pos = pos + 1;
        this.pv.add(pv);
        this.pv.add(-oldPv);
        this.q.add(qty);
        this.q.add(-oldQ);
      }
    }
    const q = this.q.value;
    this.value = this.nonZero > 0 && q !== 0 ? this.pv.value / q : Number.NaN;
  }

  reset(): void {
    this.value = Number.NaN;
    this.ready = false;
    this.pv.reset();
    this.q.reset();
    this.pos = 0;
    this.count = 0;
    this.nonZero = 0;
  }
}

/**
 * Realized volatility over the last `period` returns:
 * `RV = √(Σ r_i²)`, r_i = ln(x_i / x_{i−1}) (not annualised, not divided by n).
 *
 * O(1): a ring of r², Neumaier-compensated running sum, exact re-sum every
 * `period` updates. Warm-up: NaN and not ready until `period` returns, i.e.
 * `period + 1` values.
 */
export class RealizedVol {
  readonly period: number;
  value = Number.NaN;
  ready = false;
  private readonly ring: Float64Array;
  private readonly sum = new CompensatedSum();
  private prev = 0;
  private seen = 0;
  private pos = 0;
  /** Non-zero returns in the window (none: exactly 0, not a rounding residue). */
  private nonZero = 0;

  constructor(period: number) {
    this.period = checkPeriod('period', period);
    this.ring = new Float64Array(this.period);
  }

  update(x: number): void {
    if (this.seen === 0) {
      this.prev = x;
      this.seen = 1;
      return;
    }
    const r = Math.log(x / this.prev);
    this.prev = x;
    const r2 = r * r;
    if (r2 !== 0) this.nonZero++;
    const n = this.period;
    if (this.seen <= n) {
      this.ring[this.seen - 1] = r2;
      this.sum.add(r2);
      if (this.seen++ < n) return;
      this.ready = true;
    } else {
      const pos = this.pos;
      const old = this.ring[pos]!;
      this.ring[pos] = r2;
      if (old !== 0) this.nonZero--;
      if (pos + 1 === n) {
        this.pos = 0;
        this.sum.resum(this.ring, n);
      } else {
        this.pos = pos + 1;
        this.sum.add(r2);
        this.sum.add(-old);
      }
    }
    const s = this.sum.value;
    this.value = this.nonZero > 0 && s > 0 ? Math.sqrt(s) : 0;
  }

  reset(): void {
    this.value = Number.NaN;
    this.ready = false;
    this.sum.reset();
    this.prev = 0;
    this.seen = 0;
    this.pos = 0;
    this.nonZero = 0;
  }
}

/**
 * Log return from the previous value to this one: `ln(x_t / x_{t−1})`.
 * Warm-up: NaN and not ready until the second value.
 */
export class LogReturn {
  value = Number.NaN;
  ready = false;
  private prev = Number.NaN;

  update(x: number): void {
    if (this.prev === this.prev) {
      this.value = Math.log(x / this.prev);
      this.ready = true;
    }
    this.prev = x;
  }

  reset(): void {
    this.value = this.prev = Number.NaN;
    this.ready = false;
  }
}

/**
 * On-balance volume over trades: starts at 0 on the first trade, then
 * `+ qty` when the price is above the previous trade's, `− qty` when below,
 * unchanged when equal (a Neumaier-compensated cumulative sum).
 * Warm-up: NaN and not ready until the first trade.
 */
export class OBV {
  value = Number.NaN;
  ready = false;
  private readonly sum = new CompensatedSum();
  private prev = 0;

  update(px: number, qty: number): void {
    if (!this.ready) {
      this.ready = true;
    } else if (px > this.prev) {
      this.sum.add(qty);
    } else if (px < this.prev) {
      this.sum.add(-qty);
    }
    this.prev = px;
    this.value = this.sum.value;
  }

  reset(): void {
    this.value = Number.NaN;
    this.ready = false;
    this.sum.reset();
    this.prev = 0;
  }
}
