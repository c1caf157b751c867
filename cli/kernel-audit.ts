import type { NatsConnection } from '@nats-io/transport-node';
import { Counter, type Registry } from 'prom-client';
import {
  AuditConsumer,
  ensureAuditStream,
  publishAuditEvent,
  type AuditStreamOptions,
} from '../adapters/nats/audit-stream.js';
import type { SecurityEvent } from '../adapters/ws/uws-server.js';
import type { Scope } from '../adapters/ws/api-keys.js';
import type { AuditEvent } from '../kernel/audit-event.js';
import { AuditLog } from '../kernel/audit-log.js';
import type { AuditRateLimiterOptions } from '../kernel/audit-rate-limiter.js';
import { ErrorCodes, QilinError } from '../kernel/errors.js';
import type { Logger } from '../kernel/logger.js';

/** Options of {@link KernelAudit}. */
export interface KernelAuditOptions {
  log: Logger;
  /** Store a batch; resolves once inserted or spilled (StoreClient.writeAudit). */
  store: (events: AuditEvent[]) => Promise<void>;
  /** Where the audit metrics go (the kernel's registry). */
  registry: Registry;
  stream?: AuditStreamOptions;
  /** Durable of the audit consumer (default qilin-audit, shared by every kernel). */
  durable?: string;
  limiter?: AuditRateLimiterOptions;
}

/**
 * The kernel's audit wiring (docs/security.md "Audit"): makes the events of
 * this kernel (kill / resume, refusals at the WebSocket and HTTP doors),
 * publishes them on `audit.<action>` (JetStream AUDIT), and stores every
 * event of the stream that its share of the shared durable delivers: its
 * own and those of `qilin keys`. Metrics `qilin_audit_events_total{action,outcome}`
 * (made here), `qilin_audit_suppressed_total{action}` (held back by the
 * rate limit), `qilin_audit_stored_total`, `qilin_audit_invalid_total`.
 *
 * Events made before NATS is connected (a refused WebSocket during start-up)
 * wait for `start()`; `close()` settles what is in flight.
 */
export class KernelAudit {
  readonly audit: AuditLog;
  private readonly o: KernelAuditOptions;
  private nc: NatsConnection | undefined;
  private consumer: AuditConsumer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly ready: Promise<NatsConnection>;
  private setReady: (nc: NatsConnection) => void = () => undefined;
  private failReady: (err: Error) => void = () => undefined;
  private readonly made: Counter;
  private readonly suppressed: Counter;
  private readonly stored: Counter;
  private readonly invalid: Counter;

  constructor(opts: KernelAuditOptions) {
    this.o = opts;
    this.ready = new Promise<NatsConnection>((resolve, reject) => {
      this.setReady = resolve;
      this.failReady = reject;
    });
    // Rejected only by close() before start(): the events waiting go to the store fallback.
    this.ready.catch(() => undefined);
    const registers = [opts.registry];
    this.made = new Counter({
      name: 'qilin_audit_events_total',
      help: 'Audit events made by this kernel, by action and outcome (before the rate limit: only those let through)',
      labelNames: ['action', 'outcome'],
      registers,
    });
    this.suppressed = new Counter({
      name: 'qilin_audit_suppressed_total',
      help: 'Refusal events (auth.failure, permission.denied) held back by the per-source rate limit; summarised once a second',
      labelNames: ['action'],
      registers,
    });
    this.stored = new Counter({
      name: 'qilin_audit_stored_total',
      help: 'Audit events from the AUDIT stream this kernel stored and acknowledged',
      registers,
    });
    this.invalid = new Counter({
      name: 'qilin_audit_invalid_total',
      help: 'Messages on audit.> that were not valid audit events (refused, not stored)',
      registers,
    });
    for (const outcome of ['ok', 'refused', 'error'])
      for (const action of ['risk.kill', 'risk.resume', 'auth.failure', 'permission.denied'])
        this.made.inc({ action, outcome }, 0);
    this.audit = new AuditLog({
      log: opts.log,
      publish: async (ev) => publishAuditEvent(await this.ready, ev),
      store: opts.store,
      ...(opts.limiter === undefined ? {} : { limiter: opts.limiter }),
      onEvent: (ev) => this.made.inc({ action: ev.action, outcome: ev.outcome }),
      onSuppressed: (action, n) => this.suppressed.inc({ action }, n),
    });
  }

  /** Ensure the AUDIT stream, start the shared consumer, release the events waiting. */
  async start(nc: NatsConnection): Promise<void> {
    await ensureAuditStream(nc, this.o.stream);
    this.nc = nc;
    this.consumer = new AuditConsumer({
      nc,
      log: this.o.log,
      store: this.o.store,
      onStored: (ev) => {
        this.stored.inc();
        this.audit.remember(ev);
      },
      onBad: () => this.invalid.inc(),
      ...(this.o.stream?.stream === undefined ? {} : { stream: this.o.stream.stream }),
      ...(this.o.durable === undefined ? {} : { durable: this.o.durable }),
    });
    await this.consumer.start();
    this.setReady(nc);
    this.timer = setInterval(() => this.audit.sweep(), 1000);
    this.timer.unref();
  }

  /** uWS hook: a refusal at the WebSocket or HTTP door (rate-limited per source). */
  readonly onSecurityEvent = (ev: SecurityEvent): void => {
    this.audit.refusal({
      action: ev.kind,
      actor: actorOf(ev.scope),
      target: ev.target,
      outcome: 'refused',
      reason: ev.reason,
      source: ev.remote === '' ? 'unknown' : ev.remote,
      detail: ev.scope === undefined ? {} : { keyId: ev.scope.keyId, role: ev.scope.role },
    });
  };

  /** A kill or resume (applied: `ok`; the handler threw: `error`). */
  riskControl(
    op: 'kill' | 'resume',
    by: string,
    reason: string,
    source: string,
    outcome: 'ok' | 'error',
    detail: Record<string, unknown> = {},
  ): void {
    this.audit.record({
      action: op === 'kill' ? 'risk.kill' : 'risk.resume',
      actor: by,
      target: 'risk',
      outcome,
      reason,
      source,
      detail,
    });
  }

  /**
   * The NATS server refused the kernel's own user a publish or subscription
   * (its role lacks the subject): rate-limited like the other refusals.
   */
  natsPermission(
    operation: 'publish' | 'subscription',
    subject: string,
    server: string,
  ): AuditEvent | undefined {
    return this.audit.refusal({
      action: 'permission.denied',
      actor: 'nats:kernel',
      target: `nats:${subject}`,
      outcome: 'refused',
      reason: `the kernel's NATS user may not ${operation === 'publish' ? 'publish to' : 'subscribe to'} ${subject}`,
      source: server === '' ? 'nats' : `nats:${server}`,
    });
  }

  /** A control request refused before it was applied (bad body): rate-limited like a refusal. */
  badControl(subject: string, detail: string): void {
    if (subject !== 'ctl.risk.kill' && subject !== 'ctl.risk.resume') return;
    this.audit.refusal({
      action: subject === 'ctl.risk.kill' ? 'risk.kill' : 'risk.resume',
      actor: 'unknown',
      target: 'risk',
      outcome: 'refused',
      reason: detail,
      source: `nats:${subject}`,
    });
  }

  /** Settle the events in flight, stop the consumer (storing and acking what it holds). Safe twice. */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.nc === undefined)
      this.failReady(new QilinError(ErrorCodes.AUDIT_UNAVAILABLE, 'kernel closed before NATS'));
    this.audit.sweep();
    await this.audit.settle();
    await this.consumer?.close();
  }
}

/** `key:<id> (<label>)` for a key, `anonymous` without one. */
export function actorOf(scope: Scope | undefined): string {
  if (scope === undefined) return 'anonymous';
  return scope.label === '' ? `key:${scope.keyId}` : `key:${scope.keyId} (${scope.label})`;
}
