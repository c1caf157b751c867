import { invalidArgument } from './errors.js';

/** Options of {@link AuditRateLimiter}. */
export interface AuditRateLimiterOptions {
  /** Events let through per source per second. Default 5. */
  perSourcePerSec?: number;
  /** Events let through per second over all sources. Default 50. */
  totalPerSec?: number;
  /** Sources tracked at once; beyond, new sources share one bucket (`*`). Default 4096. */
  maxSources?: number;
}

/** What was held back from one source in the window that just ended. */
export interface AuditSuppression {
  source: string;
  /** Events refused by the limiter. */
  suppressed: number;
}

/** Bucket name of sources beyond `maxSources`. */
export const OVERFLOW_SOURCE = '*';

/**
 * Bounds how many events of a flood (bad keys, refused subscribes) become
 * audit rows: at most `perSourcePerSec` per source and `totalPerSec` in all,
 * in fixed one-second windows. What is held back is counted (`suppressed`,
 * for the metric) and, per source, handed to the caller when its window
 * ends (`drain`), so the audit log says "N more from X" in one row instead
 * of N rows.
 *
 * Memory is bounded: at most `maxSources` sources per window (beyond that,
 * new sources count against one overflow bucket `*`); the map is cleared at
 * each window, so a source that went quiet costs nothing.
 */
export class AuditRateLimiter {
  private readonly perSource: number;
  private readonly total: number;
  private readonly maxSources: number;
  /** Window start, ms; the counts below are for this window. */
  private windowAt = -Infinity;
  private passedTotal = 0;
  private readonly passed = new Map<string, number>();
  private held = new Map<string, number>();
  /** Events held back since construction. */
  suppressedTotal = 0;

  constructor(opts: AuditRateLimiterOptions = {}) {
    this.perSource = posInt('perSourcePerSec', opts.perSourcePerSec, 5);
    this.total = posInt('totalPerSec', opts.totalPerSec, 50);
    this.maxSources = posInt('maxSources', opts.maxSources, 4096);
  }

  /**
   * May an event from `source` become a row now (`nowMs`)? False: counted
   * as suppressed, reported by the next `drain`.
   */
  allow(source: string, nowMs: number): boolean {
    if (nowMs - this.windowAt >= 1000) this.roll(nowMs);
    let key = source;
    if (!this.passed.has(key) && !this.held.has(key) && this.passed.size >= this.maxSources)
      key = OVERFLOW_SOURCE;
    const n = this.passed.get(key) ?? 0;
    if (n < this.perSource && this.passedTotal < this.total) {
      this.passed.set(key, n + 1);
      this.passedTotal++;
      return true;
    }
    if (!this.passed.has(key)) this.passed.set(key, n);
    this.held.set(key, (this.held.get(key) ?? 0) + 1);
    this.suppressedTotal++;
    return false;
  }

  /**
   * The suppressions of windows that have ended by `nowMs` (each source once,
   * then forgotten). Call about once a second; the current window's are
   * reported once it ends.
   */
  drain(nowMs: number): AuditSuppression[] {
    if (nowMs - this.windowAt >= 1000) this.roll(nowMs);
    return this.takeEnded();
  }

  /** Suppressions of ended windows not yet drained. */
  private ended: AuditSuppression[] = [];

  private roll(nowMs: number): void {
    for (const [source, suppressed] of this.held) {
      // Never drained: the list stays bounded, the overflow bucket sums the rest.
      if (this.ended.length < this.maxSources) this.ended.push({ source, suppressed });
      else {
        const last = this.ended[this.ended.length - 1]!;
        if (last.source === OVERFLOW_SOURCE) last.suppressed += suppressed;
        else
          this.ended[this.ended.length - 1] = {
            source: OVERFLOW_SOURCE,
            suppressed: last.suppressed + suppressed,
          };
      }
    }
    this.held = new Map();
    this.passed.clear();
    this.passedTotal = 0;
    this.windowAt = nowMs;
  }

  private takeEnded(): AuditSuppression[] {
    const out = this.ended;
    this.ended = [];
    return out;
  }
}

function posInt(name: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < 1) invalidArgument(name, x, 'a positive integer');
  return x;
}
