import { invalidArgument } from '../../kernel/errors.js';

/** Largest window any indicator accepts (a ring of 8 MB). */
export const MAX_PERIOD = 1_000_000;

/** `value` as an integer period in [min, MAX_PERIOD], or QLN_INVALID_ARGUMENT naming `name`. */
export function checkPeriod(name: string, value: unknown, min = 1): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_PERIOD) {
    invalidArgument(name, value, `an integer from ${min} to ${MAX_PERIOD}`);
  }
  return value;
}

/** `value` as a finite number ≥ 0, or QLN_INVALID_ARGUMENT naming `name`. */
export function checkNonNegative(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    invalidArgument(name, value, 'a finite number ≥ 0');
  }
  return value;
}

/**
 * Neumaier-compensated running sum: `add(x)` folds in x (negative to remove a
 * value that leaves a window), `value` is sum + compensation. The error stays
 * about ε·|sum| instead of growing with the number of terms, which matters
 * for sliding windows, where values are added and removed forever.
 */
export class CompensatedSum {
  private s = 0;
  private c = 0;

  add(x: number): void {
    const s = this.s;
    const t = s + x;
    if (Math.abs(s) >= Math.abs(x)) this.c += s - t + x;
    else this.c += x - t + s;
    this.s = t;
  }

  get value(): number {
    return this.s + this.c;
  }

  /**
   * Recompute the sum from scratch over `ring[0..n)` (the periodic exact
   * re-sum of a window): sum and compensation both rebuilt, so the low-order
   * part of a big value that is still in the window is not lost.
   */
  resum(ring: Float64Array, n: number): void {
    let s = 0;
    let c = 0;
    for (let i = 0; i < n; i++) {
      const x = ring[i]!;
      const t = s + x;
      if (Math.abs(s) >= Math.abs(x)) c += s - t + x;
      else c += x - t + s;
      s = t;
    }
    this.s = s;
    this.c = c;
  }

  reset(): void {
    this.s = 0;
    this.c = 0;
  }
}
