/**
 * Naive references of the incremental indicators (actors/indicators): each
 * recomputes its value from scratch over `xs[0 .. end)`, over the window for
 * windowed indicators and over the whole history for recursive ones, with
 * the textbook formula and no running state. O(window) or O(history) per
 * call. Used by the property tests (agreement within 1e-9) and by the
 * features bench (the baseline the incremental set is compared against).
 *
 * Every function returns NaN where the indicator is still warming up, with
 * the same warm-up rule as the incremental class.
 */

type Xs = ArrayLike<number>;

export function naiveSma(xs: Xs, end: number, n: number): number {
  if (end < n) return Number.NaN;
  let s = 0;
  for (let i = end - n; i < end; i++) s += xs[i]!;
  return s / n;
}

/** SMA-seeded EMA as an explicit weighted sum: (1−α)^{t−n+1}·SMA_n + Σ α(1−α)^{t−i}·x_i. */
export function naiveEma(xs: Xs, end: number, n: number): number {
  if (end < n) return Number.NaN;
  const a = 2 / (n + 1);
  let seed = 0;
  for (let i = 0; i < n; i++) seed += xs[i]!;
  seed /= n;
  let s = Math.pow(1 - a, end - n) * seed;
  for (let i = n; i < end; i++) s += a * Math.pow(1 - a, end - 1 - i) * xs[i]!;
  return s;
}

/** The SMA-seeded EMA at every step of xs[0 .. end) by the recursion (NaN during warm-up). */
function emaSeries(xs: Xs, start: number, end: number, n: number): Float64Array {
  const out = new Float64Array(end - start).fill(Number.NaN);
  const a = 2 / (n + 1);
  let seed = 0;
  let v = Number.NaN;
  for (let i = start; i < end; i++) {
    const k = i - start;
    if (k < n) {
      seed += xs[i]!;
      if (k === n - 1) v = seed / n;
    } else {
      v += a * (xs[i]! - v);
    }
    out[k] = v;
  }
  return out;
}

export function naiveWma(xs: Xs, end: number, n: number): number {
  if (end < n) return Number.NaN;
  let s = 0;
  for (let i = 1; i <= n; i++) s += i * xs[end - n + i - 1]!;
  return s / ((n * (n + 1)) / 2);
}

/** Wilder RSI, the recursion run from the first value. */
export function naiveRsi(xs: Xs, end: number, n: number): number {
  if (end < n + 1) return Number.NaN;
  let ag = 0;
  let al = 0;
  for (let i = 1; i <= n; i++) {
    const d = xs[i]! - xs[i - 1]!;
    if (d > 0) ag += d;
    else al -= d;
  }
  ag /= n;
  al /= n;
  for (let i = n + 1; i < end; i++) {
    const d = xs[i]! - xs[i - 1]!;
    ag = (ag * (n - 1) + Math.max(d, 0)) / n;
    al = (al * (n - 1) + Math.max(-d, 0)) / n;
  }
  if (al === 0) return ag === 0 ? 50 : 100;
  return 100 - 100 / (1 + ag / al);
}

export interface MacdValue {
  line: number;
  signal: number;
  hist: number;
}

/** MACD: both EMAs over the whole history, signal as the weighted-sum EMA of the line series. */
export function naiveMacd(
  xs: Xs,
  end: number,
  fast: number,
  slow: number,
  signal: number,
): MacdValue {
  if (end < slow) return { line: Number.NaN, signal: Number.NaN, hist: Number.NaN };
  const f = emaSeries(xs, 0, end, fast);
  const s = emaSeries(xs, 0, end, slow);
  const lines: number[] = [];
  for (let i = slow - 1; i < end; i++) lines.push(f[i]! - s[i]!);
  const line = lines[lines.length - 1]!;
  const sig = naiveEma(lines, lines.length, signal);
  return { line, signal: sig, hist: line - sig };
}

export interface StatsValue {
  mean: number;
  variance: number;
  stddev: number;
  zscore: number;
}

/** Two-pass mean and population variance of the window; z-score of the last value (0 when σ = 0). */
export function naiveStats(xs: Xs, end: number, n: number): StatsValue {
  if (end < n) {
    return { mean: Number.NaN, variance: Number.NaN, stddev: Number.NaN, zscore: Number.NaN };
  }
  let s = 0;
  for (let i = end - n; i < end; i++) s += xs[i]!;
  const mean = s / n;
  let ss = 0;
  for (let i = end - n; i < end; i++) ss += (xs[i]! - mean) ** 2;
  const variance = ss / n;
  const stddev = Math.sqrt(variance);
  return { mean, variance, stddev, zscore: stddev > 0 ? (xs[end - 1]! - mean) / stddev : 0 };
}

export interface BollingerValue {
  upper: number;
  middle: number;
  lower: number;
  pctb: number;
}

export function naiveBollinger(xs: Xs, end: number, n: number, k: number): BollingerValue {
  const st = naiveStats(xs, end, n);
  const upper = st.mean + k * st.stddev;
  const lower = st.mean - k * st.stddev;
  const pctb =
    end < n ? Number.NaN : upper > lower ? (xs[end - 1]! - lower) / (upper - lower) : 0.5;
  return { upper, middle: st.mean, lower, pctb };
}

/** Rolling VWAP over the last n trades, or over all of them when n = 0. */
export function naiveVwap(px: Xs, qty: Xs, end: number, n: number): number {
  if (end < Math.max(n, 1)) return Number.NaN;
  let pv = 0;
  let q = 0;
  for (let i = n === 0 ? 0 : end - n; i < end; i++) {
    pv += px[i]! * qty[i]!;
    q += qty[i]!;
  }
  return q !== 0 ? pv / q : Number.NaN;
}

/** √(Σ r²) over the last n log returns. */
export function naiveRealizedVol(xs: Xs, end: number, n: number): number {
  if (end < n + 1) return Number.NaN;
  let s = 0;
  for (let i = end - n; i < end; i++) s += Math.log(xs[i]! / xs[i - 1]!) ** 2;
  return Math.sqrt(s);
}

export function naiveLogReturn(xs: Xs, end: number): number {
  return end < 2 ? Number.NaN : Math.log(xs[end - 1]! / xs[end - 2]!);
}

/** Wilder ATR over bars, the recursion run from the first bar. */
export function naiveAtr(h: Xs, l: Xs, c: Xs, end: number, n: number): number {
  if (end < n) return Number.NaN;
  const tr = (i: number): number =>
    i === 0
      ? h[0]! - l[0]!
      : Math.max(h[i]! - l[i]!, Math.abs(h[i]! - c[i - 1]!), Math.abs(l[i]! - c[i - 1]!));
  let atr = 0;
  for (let i = 0; i < n; i++) atr += tr(i);
  atr /= n;
  for (let i = n; i < end; i++) atr = (atr * (n - 1) + tr(i)) / n;
  return atr;
}

export function naiveObv(px: Xs, qty: Xs, end: number): number {
  if (end < 1) return Number.NaN;
  let s = 0;
  for (let i = 1; i < end; i++) {
    if (px[i]! > px[i - 1]!) s += qty[i]!;
    else if (px[i]! < px[i - 1]!) s -= qty[i]!;
  }
  return s;
}

export function naiveImbalance(bidQty: number, askQty: number): number {
  return bidQty + askQty !== 0 ? (bidQty - askQty) / (bidQty + askQty) : Number.NaN;
}

export function naiveSpread(bid: number, ask: number): number {
  return ask - bid;
}

export function naiveRelSpread(bid: number, ask: number): number {
  const mid = (bid + ask) / 2;
  return mid !== 0 ? (ask - bid) / mid : Number.NaN;
}
