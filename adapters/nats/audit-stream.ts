import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JsMsg,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import {
  auditSubject,
  decodeAuditEvent,
  encodeAuditEvent,
  type AuditEvent,
} from '../../kernel/audit-event.js';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';
import type { Logger } from '../../kernel/logger.js';

/**
 * The audit log on NATS (docs/security.md "Audit"):
 *
 * ```
 *  kernel (risk.kill, auth.failure, …) ─┐
 *  qilin keys (key.create, …) ──────────┼─► audit.<action>   JetStream stream AUDIT (audit.>),
 *                                       │                    Nats-Msg-Id = event id (dedup)
 *                                       ▼
 *          durable `qilin-audit`, shared by every kernel (each event goes to one of them)
 *                                       ▼
 *          AuditConsumer ─► store(events) (StoreClient.writeAudit: inserted or spilled) ─► ack
 * ```
 * An event is acknowledged only once the store holds it (a spill file on
 * disk counts): a kernel that dies before that leaves it to the stream,
 * which redelivers it to another kernel (or to this one after a restart).
 * Written twice (a redelivery after the row was stored) it reads once in
 * `audit FINAL` (ReplacingMergeTree keyed by ts_us, id).
 */

/** Stream name, subjects and durable of the audit log. */
export const AUDIT_STREAM = 'AUDIT';
export const AUDIT_SUBJECTS = 'audit.>';
export const AUDIT_DURABLE = 'qilin-audit';

/** Options of {@link ensureAuditStream}. */
export interface AuditStreamOptions {
  /** Stream name (default AUDIT; tests use their own). */
  stream?: string;
  /** Retention when the stream is created here, ms (default 30 days). */
  maxAgeMs?: number;
  /** Dedup window (Nats-Msg-Id) when created here, ms (default 10 minutes). */
  duplicateWindowMs?: number;
}

/**
 * Create the stream capturing `audit.>` when missing (an existing one is left
 * as it is: an operator may own its limits). Throws QLN_AUDIT_UNAVAILABLE
 * when JetStream does not answer.
 */
export async function ensureAuditStream(
  nc: NatsConnection,
  opts: AuditStreamOptions = {},
): Promise<void> {
  const name = opts.stream ?? AUDIT_STREAM;
  try {
    const jsm = await jetstreamManager(nc);
    try {
      await jsm.streams.info(name);
      return;
    } catch (err) {
      if (!isApiCode(err, JetStreamApiCodes.StreamNotFound)) throw err;
    }
    try {
      await jsm.streams.add({
        name,
        subjects: [AUDIT_SUBJECTS],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        duplicate_window: nanos(opts.duplicateWindowMs ?? 600_000),
        max_age: nanos(opts.maxAgeMs ?? 30 * 86_400_000),
      });
    } catch (err) {
      // Another process created it between info and add.
      await jsm.streams.info(name).catch(() => {
        throw err;
      });
    }
  } catch (cause) {
    throw new QilinError(
      ErrorCodes.AUDIT_UNAVAILABLE,
      `the audit stream ${name} (${AUDIT_SUBJECTS}) is not available: ${(cause as Error).message}`,
      { cause, details: { stream: name } },
    );
  }
}

/**
 * Publish one event on `audit.<action>` and wait for the stream's ack
 * (`Nats-Msg-Id` = event id: a retried publish is stored once). Throws
 * QLN_AUDIT_UNAVAILABLE when it is not acknowledged within `timeoutMs`.
 */
export async function publishAuditEvent(
  nc: NatsConnection,
  ev: AuditEvent,
  timeoutMs = 5000,
): Promise<void> {
  const subject = auditSubject(ev.action);
  try {
    await jetstream(nc).publish(subject, encodeAuditEvent(ev), {
      msgID: ev.id,
      timeout: timeoutMs,
    });
  } catch (cause) {
    throw new QilinError(
      ErrorCodes.AUDIT_UNAVAILABLE,
      `audit event ${ev.id} (${ev.action}) not acknowledged on ${subject}: ${(cause as Error).message}`,
      { cause, details: { id: ev.id, subject } },
    );
  }
}

/** Options of {@link AuditConsumer}. */
export interface AuditConsumerOptions {
  nc: NatsConnection;
  log: Logger;
  /** Store a batch; resolves once the store holds it (inserted or spilled). */
  store: (events: AuditEvent[]) => Promise<void>;
  /** Called for each event once stored (the kernel's recent list). */
  onStored?: (ev: AuditEvent) => void;
  /** A message that is not a valid event (terminated, never stored). */
  onBad?: (subject: string, detail: string) => void;
  stream?: string;
  /** Durable name (default qilin-audit; every kernel shares it). */
  durable?: string;
  /** Redelivery after this long without an ack, ms (default 30 000). */
  ackWaitMs?: number;
  /** Events stored together at most (default 500). */
  batch?: number;
  /**
   * The server deletes the durable after this long without a kernel pulling,
   * ms (default 2 days): a database no kernel serves any more leaves no
   * consumer behind. A fleet down for longer gets a new durable that reads
   * the stream from its start: events already stored are stored again, and
   * read once under `audit FINAL`.
   */
  inactiveMs?: number;
}

/**
 * The kernel's side of the audit stream: one shared durable pull consumer;
 * events collected for a moment (up to `batch`), stored, then acked. A
 * failed store naks them (redelivered later); an invalid message is
 * terminated and reported (`onBad`), never stored, never a crash.
 */
export class AuditConsumer {
  private readonly o: AuditConsumerOptions;
  private messages: ConsumerMessages | undefined;
  private pending: Array<{ m: JsMsg; ev: AuditEvent }> = [];
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  /** Events stored and acked, and messages refused, since start. */
  readonly counters = { stored: 0, bad: 0, storeFailures: 0 };

  constructor(opts: AuditConsumerOptions) {
    this.o = opts;
  }

  async start(): Promise<void> {
    const stream = this.o.stream ?? AUDIT_STREAM;
    const durable = this.o.durable ?? AUDIT_DURABLE;
    const jsm = await jetstreamManager(this.o.nc);
    try {
      await jsm.consumers.info(stream, durable);
    } catch (err) {
      if (!isApiCode(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
      try {
        await jsm.consumers.add(stream, {
          durable_name: durable,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          filter_subject: AUDIT_SUBJECTS,
          ack_wait: nanos(this.o.ackWaitMs ?? 30_000),
          max_ack_pending: 10_000,
          inactive_threshold: nanos(this.o.inactiveMs ?? 2 * 86_400_000),
        });
      } catch (err2) {
        // Another kernel created it meanwhile.
        await jsm.consumers.info(stream, durable).catch(() => {
          throw err2;
        });
      }
    }
    const consumer = await jetstream(this.o.nc).consumers.get(stream, durable);
    this.messages = await consumer.consume({
      max_messages: this.o.batch ?? 500,
      callback: (m) => this.onMessage(m),
    });
    void this.messages.closed().then((err) => {
      if (err) this.o.log.error({ err, durable }, 'audit consumer stopped with an error');
    });
    this.o.log.info({ stream, durable }, 'audit consumer started');
  }

  private onMessage(m: JsMsg): void {
    const ev = decodeAuditEvent(m.data);
    if (typeof ev === 'string') {
      this.counters.bad++;
      // No reason text: `+TERM <reason>` needs nats-server 2.10; Debian's 2.9
      // would take it for an unknown ack and redeliver the message forever.
      m.term();
      this.o.log.warn({ subject: m.subject, detail: ev }, 'invalid audit event refused');
      this.o.onBad?.(m.subject, ev);
      return;
    }
    this.pending.push({ m, ev });
    if (this.pending.length >= (this.o.batch ?? 500)) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), 20);
  }

  private kick(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.flushing !== undefined || this.pending.length === 0) return;
    this.flushing = this.flush().finally(() => {
      this.flushing = undefined;
      if (this.pending.length > 0) this.kick();
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    try {
      await this.o.store(batch.map((p) => p.ev));
    } catch (err) {
      this.counters.storeFailures++;
      this.o.log.warn({ err, events: batch.length }, 'audit events not stored: redelivered later');
      for (const { m } of batch) m.nak(1000);
      return;
    }
    for (const { m, ev } of batch) {
      m.ack();
      this.counters.stored++;
      this.o.onStored?.(ev);
    }
  }

  /** Stop pulling; store and ack what arrived. Safe twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.messages?.close();
      } catch (err) {
        this.o.log.debug({ err }, 'audit consumer close failed (connection closing)');
      }
      this.kick();
      await this.flushing;
    })();
    return this.closing;
  }
}

function isApiCode(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}
