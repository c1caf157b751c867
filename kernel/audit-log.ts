import {
  AUDIT_ACTIONS,
  makeAuditEvent,
  type AuditAction,
  type AuditEvent,
  type AuditEventInit,
} from './audit-event.js';
import { AuditRateLimiter, type AuditRateLimiterOptions } from './audit-rate-limiter.js';
import type { Logger } from './logger.js';

/** Options of {@link AuditLog}. */
export interface AuditLogOptions {
  log: Logger;
  /**
   * The audit bus: publish one event and resolve once it is durably taken
   * (JetStream ack on `audit.<action>`). The kernel's audit consumer then
   * stores it.
   */
  publish: (ev: AuditEvent) => Promise<void>;
  /**
   * The fallback when `publish` fails (NATS down): store directly (the
   * store's own spill path keeps it through a store outage). The event then
   * misses the bus but not the table; a publish that did reach the stream
   * before failing stores it twice, read once under FINAL (same id, ts).
   */
  store: (events: AuditEvent[]) => Promise<void>;
  /** Rate limits of refusals (auth.failure, permission.denied). */
  limiter?: AuditRateLimiterOptions;
  /** Recent events kept for `/audit?view=events`. Default 1000. */
  recent?: number;
  /** Each event made (metrics: `qilin_audit_events_total{action,outcome}`). */
  onEvent?: (ev: AuditEvent) => void;
  /** Refusal events held back by the limiter (metrics). */
  onSuppressed?: (action: AuditAction, n: number) => void;
  /** Clock, ms (tests). */
  nowMs?: () => number;
}

/**
 * The kernel's audit recorder (main thread). `record` for operations
 * (kill, resume: every one), `refusal` for what a flood can cause
 * (authentication failures, refused permissions: rate-limited per source,
 * the rest counted and summarised once a second by `sweep` as one event
 * with `detail.suppressed`).
 *
 * Never throws into its caller: an event that cannot be built is logged; an
 * event that cannot be published is stored directly; one that can be
 * neither is logged at error with its id (the only loss, and a loud one).
 */
export class AuditLog {
  private readonly o: AuditLogOptions;
  private readonly limiter: AuditRateLimiter;
  private readonly ring: Array<AuditEvent | undefined>;
  private readonly ids = new Set<string>();
  private count = 0;
  private readonly inflight = new Set<Promise<void>>();
  private readonly now: () => number;
  /** Last action seen per limiter key, for the summary event. */
  private readonly keyInfo = new Map<string, Omit<AuditEventInit, 'outcome'>>();

  constructor(opts: AuditLogOptions) {
    this.o = opts;
    this.limiter = new AuditRateLimiter(opts.limiter);
    this.ring = new Array<AuditEvent | undefined>(opts.recent ?? 1000).fill(undefined);
    this.now = opts.nowMs ?? Date.now;
  }

  /** Events held back by the limiter since start. */
  get suppressed(): number {
    return this.limiter.suppressedTotal;
  }

  /** Record an operation (never rate-limited). Returns the event, or undefined when invalid. */
  record(init: AuditEventInit): AuditEvent | undefined {
    let ev: AuditEvent;
    try {
      ev = makeAuditEvent(init);
    } catch (err) {
      this.o.log.error({ err, action: init.action }, 'audit event not recorded: invalid');
      return undefined;
    }
    this.o.onEvent?.(ev);
    this.remember(ev);
    const p = this.send(ev).finally(() => this.inflight.delete(p));
    this.inflight.add(p);
    return ev;
  }

  /**
   * Record a refusal (auth.failure, permission.denied), at most the
   * limiter's share per source per second. Returns the event, or undefined
   * when held back (counted; summarised by the next `sweep`).
   */
  refusal(init: AuditEventInit): AuditEvent | undefined {
    const key = `${init.action}|${init.source}`;
    if (!this.limiter.allow(key, this.now())) {
      this.o.onSuppressed?.(init.action, 1);
      if (!this.keyInfo.has(key) && this.keyInfo.size < 4096) {
        const { outcome: _o, ...rest } = init;
        this.keyInfo.set(key, rest);
      }
      return undefined;
    }
    return this.record(init);
  }

  /**
   * One summary event per (action, source) whose refusals were held back in a
   * window that has ended: `detail.suppressed` says how many. Call about once a
   * second (the kernel's timer); at most one event per source per second.
   */
  sweep(): void {
    for (const { source: key, suppressed } of this.limiter.drain(this.now())) {
      const info = this.keyInfo.get(key);
      this.keyInfo.delete(key);
      const [action, source] = splitKey(key);
      this.record({
        action:
          info?.action ??
          ((AUDIT_ACTIONS as readonly string[]).includes(action)
            ? (action as AuditAction)
            : 'auth.failure'),
        actor: info?.actor ?? 'anonymous',
        target: info?.target ?? '*',
        source: info?.source ?? (source === '' ? '*' : source),
        outcome: 'refused',
        reason: `${suppressed} more like this within a second (rate-limited: not stored one by one)`,
        detail: { suppressed },
      });
    }
  }

  /** Recent events made or stored by this kernel, oldest first (each id once). */
  recent(): AuditEvent[] {
    const cap = this.ring.length;
    const n = Math.min(this.count, cap);
    const out: AuditEvent[] = [];
    for (let i = this.count - n; i < this.count; i++) out.push(this.ring[i % cap]!);
    return out;
  }

  /** An event this kernel stored from the bus (another process made it, or this one). */
  remember(ev: AuditEvent): void {
    if (this.ids.has(ev.id)) return;
    const cap = this.ring.length;
    const old = this.ring[this.count % cap];
    if (old !== undefined) this.ids.delete(old.id);
    this.ring[this.count % cap] = ev;
    this.ids.add(ev.id);
    this.count++;
  }

  /** Wait for the events in flight (published or stored). */
  async settle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  private async send(ev: AuditEvent): Promise<void> {
    try {
      await this.o.publish(ev);
      return;
    } catch (err) {
      this.o.log.warn(
        { err, id: ev.id, action: ev.action },
        'audit event not published (NATS): storing it directly',
      );
    }
    try {
      await this.o.store([ev]);
    } catch (err) {
      this.o.log.error(
        { err, id: ev.id, action: ev.action, actor: ev.actor, target: ev.target },
        'audit event LOST: neither published nor stored',
      );
    }
  }
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('|');
  return i < 0 ? [key, ''] : [key.slice(0, i), key.slice(i + 1)];
}
