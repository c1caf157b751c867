import { build, type Histogram } from 'hdr-histogram-js';
import { invalidArgument } from '../kernel/errors.js';

/**
 * Latency statistics shared by every bench: an HDR histogram for the
 * percentiles plus exact count / min / mean / max kept beside it.
 *
 * HDR histograms record integers, and hand-off latencies in this project are
 * a few microseconds, so values are stored in units of `1 / scale` µs
 * (default scale 1000: nanoseconds) with 3 significant digits: sub-µs
 * resolution without changing the caller's unit. Percentiles come back in µs.
 * Negative inputs (two threads' clocks a hair apart) are clamped to 0 in the
 * histogram but kept as they are in `min`, so a clock problem stays visible.
 *
 * `record()` allocates nothing (the histogram auto-resizes only when a value
 * exceeds everything seen so far), so it is safe on a per-record path.
 */

/** Summary of a latency distribution, all values in microseconds. */
export interface LatencySummary {
  /** Values recorded. */
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  /** 99.9th percentile. */
  p999: number;
  max: number;
}

/** Options of a `LatencyRecorder`. */
export interface LatencyRecorderOptions {
  /** Histogram units per µs (1000 → ns resolution). An integer from 1 to 1e6. */
  scale?: number;
  /** Significant decimal digits the histogram keeps (1 to 5, default 3). */
  significantDigits?: 1 | 2 | 3 | 4 | 5;
}

/** Records µs values into an HDR histogram and summarises them. */
export class LatencyRecorder {
  private readonly histogram: Histogram;
  private readonly scale: number;
  private count = 0;
  private sum = 0;
  private min = Number.POSITIVE_INFINITY;
  private max = Number.NEGATIVE_INFINITY;

  constructor(options: LatencyRecorderOptions = {}) {
    const scale = options.scale ?? 1000;
    if (!Number.isInteger(scale) || scale < 1 || scale > 1e6) {
      invalidArgument('scale', scale, 'an integer from 1 to 1000000');
    }
    const digits = options.significantDigits ?? 3;
    if (!Number.isInteger(digits) || digits < 1 || digits > 5) {
      invalidArgument('significantDigits', digits, 'an integer from 1 to 5');
    }
    this.scale = scale;
    this.histogram = build({
      bitBucketSize: 32,
      autoResize: true,
      lowestDiscernibleValue: 1,
      numberOfSignificantValueDigits: digits,
    });
  }

  /** Record one latency in microseconds. */
  record(us: number): void {
    this.count++;
    this.sum += us;
    if (us < this.min) this.min = us;
    if (us > this.max) this.max = us;
    this.histogram.recordValue(us > 0 ? Math.round(us * this.scale) : 0);
  }

  /** Count, exact min/mean/max and histogram percentiles, in µs. */
  summary(): LatencySummary {
    if (this.count === 0) {
      return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
    }
    const h = this.histogram;
    return {
      count: this.count,
      min: this.min,
      mean: this.sum / this.count,
      p50: h.getValueAtPercentile(50) / this.scale,
      p90: h.getValueAtPercentile(90) / this.scale,
      p99: h.getValueAtPercentile(99) / this.scale,
      p999: h.getValueAtPercentile(99.9) / this.scale,
      max: this.max,
    };
  }

  /** Forget every value (reuse the recorder for the next run). */
  reset(): void {
    this.histogram.reset();
    this.count = 0;
    this.sum = 0;
    this.min = Number.POSITIVE_INFINITY;
    this.max = Number.NEGATIVE_INFINITY;
  }
}

/** A µs figure with precision that suits its size: 0.412, 4.12, 41.2, 412. */
function fmtUs(us: number): string {
  const a = Math.abs(us);
  if (a >= 100) return us.toFixed(0);
  if (a >= 10) return us.toFixed(1);
  if (a >= 1) return us.toFixed(2);
  return us.toFixed(3);
}

/**
 * One report line, e.g.
 * `ring 100k/s  n=100000 min=1.20 mean=4.31 p50=3.90 p90=6.10 p99=14.2 p99.9=38.0 max=212 µs`.
 */
export function formatSummary(name: string, summary: LatencySummary): string {
  const s = summary;
  return (
    `${name}  n=${s.count} min=${fmtUs(s.min)} mean=${fmtUs(s.mean)} p50=${fmtUs(s.p50)}` +
    ` p90=${fmtUs(s.p90)} p99=${fmtUs(s.p99)} p99.9=${fmtUs(s.p999)} max=${fmtUs(s.max)} µs`
  );
}
