/**
 * A growable column of float64 values: a Float64Array that doubles when full,
 * so appending costs amortised O(1) and allocates only log2(n) times over a
 * run (samples are appended per interval or per trade, never per tick).
 */
export class Float64Series {
  private buf: Float64Array;
  private n = 0;

  constructor(initialCapacity = 256) {
    this.buf = new Float64Array(Math.max(1, initialCapacity));
  }

  get length(): number {
    return this.n;
  }

  push(v: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = v;
  }

  /** The value at `i` (0 ≤ i < length). */
  at(i: number): number {
    return this.buf[i]!;
  }

  /** The last value, or `fallback` when empty. */
  last(fallback: number): number {
    return this.n === 0 ? fallback : this.buf[this.n - 1]!;
  }

  /** A copy of the values, exactly `length` long. */
  toArray(): Float64Array {
    return this.buf.slice(0, this.n);
  }
}
