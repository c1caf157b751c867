/** Percentiles of the recent latencies, as the `status` frame carries them. */
export interface LatencySummary {
  /** Observations in the window. */
  n: number;
  /** Whole microseconds; null when `n` is 0. */
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

/**
 * The last `capacity` latencies with the wall time they were seen, for exact
 * percentiles over a sliding window (`status.latencyUs`, the dashboard).
 *
 * The Prometheus histogram (`qilin_stage_latency_seconds`) answers "how is
 * it since start" in coarse buckets; operators watching a live page want "how
 * is it now", exactly. `record()` is two stores into preallocated rings (no
 * allocation per signal); `summary()` copies the window into a preallocated
 * scratch array and sorts it, once a second, off the per-tick path. Beyond
 * `capacity` observations within the window, the oldest are forgotten: the
 * percentiles are then those of the latest `capacity` signals.
 */
export class LatencyWindow {
  private readonly atMs: Float64Array;
  private readonly us: Float64Array;
  private readonly scratch: Float64Array;
  private readonly mask: number;
  /** Observations ever recorded; the next slot is `written & mask`. */
  private written = 0;

  /** @param capacity rounded up to a power of two (default 8192). */
  constructor(capacity = 8192) {
    let cap = 1;
    while (cap < capacity) cap <<= 1;
    this.atMs = new Float64Array(cap);
    this.us = new Float64Array(cap);
    this.scratch = new Float64Array(cap);
    this.mask = cap - 1;
  }

  /** Record one latency in microseconds seen at `nowMs`; NaN and negatives are ignored. */
  record(latencyUs: number, nowMs: number): void {
    if (!(latencyUs >= 0)) return;
    const i = this.written & this.mask;
    this.atMs[i] = nowMs;
    this.us[i] = latencyUs;
    this.written++;
  }

  /** Exact percentiles (nearest rank) of the observations seen in the last `windowMs`. */
  summary(nowMs: number, windowMs: number): LatencySummary {
    const from = nowMs - windowMs;
    const held = Math.min(this.written, this.mask + 1);
    let n = 0;
    // Newest first; stop at the first one older than the window (they are in time order).
    for (let k = 1; k <= held; k++) {
      const i = (this.written - k) & this.mask;
      if (this.atMs[i]! < from) break;
      this.scratch[n++] = this.us[i]!;
    }
    if (n === 0) return { n: 0, p50: null, p90: null, p99: null };
    const sorted = this.scratch.subarray(0, n).sort();
    const rank = (q: number): number => sorted[Math.min(n - 1, Math.ceil(q * n) - 1)]!;
    return {
      n,
      p50: Math.round(rank(0.5)),
      p90: Math.round(rank(0.9)),
      p99: Math.round(rank(0.99)),
    };
  }
}
