import type { LatencySummary } from '../hdr-report.js';

/**
 * Statistics across runs: each run is measured on its own, and the report
 * gives the median of every figure across runs (robust to one noisy run on
 * a shared machine), with the per-run figures kept beside it.
 */

/** Median of the finite values of `xs`; NaN when there is none. */
export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const SUMMARY_FIELDS = ['count', 'min', 'mean', 'p50', 'p90', 'p99', 'p999', 'max'] as const;

/**
 * Field-by-field median of latency summaries (the median p99 is the median
 * of the runs' p99s, not a p99 of merged samples). Empty input gives NaNs.
 */
export function medianSummary(summaries: readonly LatencySummary[]): LatencySummary {
  const out = {} as LatencySummary;
  for (const f of SUMMARY_FIELDS) out[f] = median(summaries.map((s) => s[f]));
  return out;
}

/** Least-squares slope of y over x; NaN with fewer than two distinct x. */
export function slope(points: readonly (readonly [number, number])[]): number {
  const pts = points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const n = pts.length;
  if (n < 2) return Number.NaN;
  let sx = 0;
  let sy = 0;
  for (const [x, y] of pts) {
    sx += x;
    sy += y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of pts) {
    num += (x - mx) * (y - my);
    den += (x - mx) * (x - mx);
  }
  return den === 0 ? Number.NaN : num / den;
}

/** `a / b`, NaN unless both are finite and `b` is not 0. */
export function ratio(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : Number.NaN;
}
