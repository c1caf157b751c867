import type { Logger } from './logger.js';

/**
 * Overload and outage episodes: a condition that loses data or threatens to
 * (a NATS disconnect or slow-consumer cut, ring drops, a worker falling
 * behind) is an episode. Its first occurrence is logged once at error level
 * with its code and `/health/ready` turns degraded with its reason; repeats
 * only extend it; when it has not recurred for `holdMs` it ends with one
 * info line. Every occurrence is counted per kind.
 *
 * ```
 *  raise(key) ──first──► log.error once, reason listed ──┐
 *  raise(key) ──again──► extends (counted, not logged)    │ no raise for holdMs (or end(key)
 *                                                          ▼  then holdMs)
 *                                           log.info "recovered", reason removed
 * ```
 */
export interface EpisodeOptions {
  log: Logger;
  /** How long an episode outlives its last occurrence, ms. Default 10 000. */
  holdMs?: number;
  /** Clock, ms (tests). */
  now?: () => number;
}

interface Episode {
  kind: string;
  code: string;
  reason: string;
  startedAt: number;
  lastAt: number;
  /** Still going (e.g. disconnected): does not expire until `end()`. */
  open: boolean;
  occurrences: number;
}

export class Episodes {
  /** Occurrences by kind since start (for a counter). */
  readonly counts = new Map<string, number>();
  private readonly live = new Map<string, Episode>();
  private readonly log: Logger;
  private readonly holdMs: number;
  private readonly now: () => number;

  constructor(opts: EpisodeOptions) {
    this.log = opts.log;
    this.holdMs = opts.holdMs ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /**
   * One occurrence of `kind` on `key` (e.g. kind `nats_disconnect`, key
   * `nats_disconnect:shard1`). `open`: the condition lasts until `end(key)`.
   */
  raise(kind: string, key: string, code: string, reason: string, open = false): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    const now = this.now();
    const e = this.live.get(key);
    if (e !== undefined) {
      e.lastAt = now;
      e.occurrences++;
      e.open ||= open;
      e.reason = reason;
      return;
    }
    this.live.set(key, { kind, code, reason, startedAt: now, lastAt: now, open, occurrences: 1 });
    this.log.error({ code, kind, key }, reason);
  }

  /** The condition behind an open episode is over; it ends after holdMs more. */
  end(key: string): void {
    const e = this.live.get(key);
    if (e === undefined) return;
    e.open = false;
    e.lastAt = this.now();
  }

  /** Expire episodes quiet for holdMs; call periodically (and before reading reasons). */
  sweep(): void {
    const now = this.now();
    for (const [key, e] of this.live) {
      if (e.open || now - e.lastAt < this.holdMs) continue;
      this.live.delete(key);
      this.log.info(
        { kind: e.kind, key, occurrences: e.occurrences, durationMs: now - e.startedAt },
        `recovered: ${e.reason}`,
      );
    }
  }

  /** Reasons of the live episodes, for `/health/ready`. */
  reasons(): string[] {
    this.sweep();
    return [...this.live.values()].map((e) => e.reason);
  }
}
