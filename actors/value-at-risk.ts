/**
 * Value-at-Risk of a P&L series: the loss not exceeded with probability
 * `confidence`, as a number ≥ 0 in the P&L's unit. Both methods read the
 * first `n` values of `pnl` (scenario P&Ls, one per observed return) and
 * allocate nothing.
 *
 * - historical: the empirical lower (1 − confidence) quantile of the P&Ls,
 *   F⁻¹(p) = inf{x : F(x) ≥ p} = the ⌈n·p⌉-th smallest (1-based), negated;
 *   e.g. n = 250, confidence 0.99: the 3rd worst P&L. (⌈·⌉ of n·p with a
 *   1e-9 tolerance, so 100 × (1 − 0.99) = 1.0000000000000009 counts as 1.)
 * - parametric (normal, mean zero): z(confidence) × the sample standard
 *   deviation (n − 1, two-pass) of the P&Ls.
 *
 * A loss quantile below zero (every scenario a gain) is reported as 0.
 */
export type VarMethod = 'historical' | 'parametric';

/** Value-at-Risk of `pnl[0..n)` (historical reorders those n values in place). */
export function valueAtRisk(
  pnl: Float64Array,
  n: number,
  method: VarMethod,
  confidence: number,
): number {
  if (n < 1) return 0;
  const v =
    method === 'historical'
      ? -selectKth(pnl, n, historicalRank(n, confidence))
      : normalQuantile(confidence) * sampleStdev(pnl, n);
  return v > 0 ? v : v === v ? 0 : v;
}

/** 0-based rank of the historical quantile: ⌈n·(1 − confidence)⌉ − 1, within [0, n). */
export function historicalRank(n: number, confidence: number): number {
  const k = Math.ceil(n * (1 - confidence) - 1e-9);
  return k < 1 ? 0 : k > n ? n - 1 : k - 1;
}

/** Sample standard deviation (n − 1; 0 for n < 2) of a[0..n), two-pass. */
export function sampleStdev(a: Float64Array, n: number): number {
  if (n < 2) return 0;
  let s = 0;
  for (let i = 0; i < n; i++) s += a[i]!;
  const mean = s / n;
  let ss = 0;
  for (let i = 0; i < n; i++) {
    const d = a[i]! - mean;
    ss += d * d;
  }
  return Math.sqrt(ss / (n - 1));
}

/**
 * The k-th smallest (0-based) of a[0..n), by quickselect (Hoare partition,
 * middle pivot); reorders a[0..n). NaN values compare false everywhere and
 * may land anywhere: callers keep them out.
 */
export function selectKth(a: Float64Array, n: number, k: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break;
  }
  return a[k]!;
}

/**
 * Φ⁻¹(p), the standard normal quantile, by Acklam's rational approximation
 * (relative error < 1.2e-9 on (0, 1)): 0.99 → 2.32635, 0.975 → 1.95996.
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) return p === 0 ? -Infinity : p === 1 ? Infinity : Number.NaN;
  const pLow = 0.02425;
  if (p < pLow) {
    const q = Math.sqrt(-2 * Math.log(p));
    return tail(q);
  }
  if (p > 1 - pLow) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return -tail(q);
  }
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((-3.969683028665376e1 * r + 2.209460984245205e2) * r - 2.759285104469687e2) * r +
      1.38357751867269e2) *
      r -
      3.066479806614716e1) *
      r +
      2.506628277459239) *
      q) /
    (((((-5.447609879822406e1 * r + 1.615858368580409e2) * r - 1.556989798598866e2) * r +
      6.680131188771972e1) *
      r -
      1.328068155288572e1) *
      r +
      1)
  );
}

function tail(q: number): number {
  return (
    (((((-7.784894002430293e-3 * q - 3.223964580411365e-1) * q - 2.400758277161838) * q -
      2.549732539343734) *
      q +
      4.374664141464968) *
      q +
      2.938163982698783) /
    ((((7.784695709041462e-3 * q + 3.224671290700398e-1) * q + 2.445134137142996) * q +
      3.754408661907416) *
      q +
      1)
  );
}
