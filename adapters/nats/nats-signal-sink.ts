import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstreamManager,
} from '@nats-io/jetstream';
import {
  createInbox,
  headers,
  nanos,
  type Msg,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node';
import { ErrorCodes, QilinError, invalidArgument } from '../../kernel/errors.js';
import type { Logger } from '../../kernel/logger.js';
import type { RiskRejection, SignalMessage } from '../../kernel/messages.js';
import type { SignalSink } from '../../kernel/signal-sink.js';
import { isToken } from './tick-json-decoder.js';

/**
 * Error code of a failed or timed-out signal publish. QLN_PUBLISH_FAILED is
 * requested for the catalogue; until it exists this placeholder is the one
 * place to change.
 */
const PUBLISH_FAILED_CODE = ErrorCodes.PUBLISH_FAILED;

/** Options of {@link NatsSignalSink}. */
export interface NatsSignalSinkOptions {
  /** A connected client (see connectNats); the sink never closes it. */
  nc: NatsConnection;
  /** JetStream stream holding `sig.>` (default QILIN_SIGNALS). */
  stream?: string;
  /** How long publishSignal waits for the JetStream ack, ms (default 2000). */
  ackTimeoutMs?: number;
  /** Dedup window of the stream when the sink creates it, ms (default 120000). */
  duplicateWindowMs?: number;
  /** Retention of the stream when the sink creates it, ms (default 7 days). */
  maxAgeMs?: number;
  log: Logger;
}

const text = new TextEncoder();
const textOut = new TextDecoder();

/** A signal waiting for its JetStream ack. */
interface PendingAck {
  id: string;
  subject: string;
  deadline: number;
  resolve: () => void;
  reject: (err: QilinError) => void;
}

/**
 * Approved signals out to executors on `sig.<strategy>.<symbol>` (JetStream,
 * `Nats-Msg-Id` = signal id, so a retried publish is stored once), risk
 * rejections on `risk.rejected.<symbol>` (core, fire and forget).
 */
export class NatsSignalSink implements SignalSink {
  private readonly nc: NatsConnection;
  /** Acks come back on `<inbox>.<n>`: one subscription for all of them. */
  private readonly ackPrefix = createInbox('_INBOX.qilin_sig');
  private ackSub: Subscription | undefined;
  private readonly pending = new Map<number, PendingAck>();
  private nextAck = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly stream: string;
  private readonly ackTimeoutMs: number;
  private readonly duplicateWindowMs: number;
  private readonly maxAgeMs: number;
  private readonly log: Logger;
  private closing: Promise<void> | undefined;

  constructor(opts: NatsSignalSinkOptions) {
    this.nc = opts.nc;
    this.stream = opts.stream ?? 'QILIN_SIGNALS';
    if (!isToken(this.stream)) {
      invalidArgument('stream', opts.stream, 'a stream name [A-Za-z0-9_-]+');
    }
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 2000;
    if (!(this.ackTimeoutMs > 0)) invalidArgument('ackTimeoutMs', opts.ackTimeoutMs, 'ms > 0');
    this.duplicateWindowMs = opts.duplicateWindowMs ?? 120_000;
    if (!(this.duplicateWindowMs > 0)) {
      invalidArgument('duplicateWindowMs', opts.duplicateWindowMs, 'ms > 0');
    }
    this.maxAgeMs = opts.maxAgeMs ?? 7 * 86_400_000;
    this.log = opts.log.child({ sink: 'nats-signal', stream: this.stream });
  }

  /**
   * Why not `js.publish()`: it is a request per signal, and nats.js builds a
   * RequestError and a TimeoutError (two stack captures) plus a timer for
   * every one — the largest single cost of the kernel's main thread in the
   * pipeline bench. The JetStream protocol needs none of that: a publish with
   * a reply subject is acked on that subject. So every signal is published
   * with `reply = <inbox>.<n>`, one wildcard subscription takes all acks, and
   * one sweeper timer fails the ones past their deadline.
   */
  private ensureAckSubscription(): void {
    if (this.ackSub !== undefined) return;
    this.ackSub = this.nc.subscribe(`${this.ackPrefix}.*`, {
      callback: (err, msg) => {
        if (err === null) this.onAck(msg);
      },
    });
    this.sweeper = setInterval(() => this.sweep(), Math.min(250, this.ackTimeoutMs));
    this.sweeper.unref();
  }

  private onAck(msg: Msg): void {
    const n = Number(msg.subject.slice(this.ackPrefix.length + 1));
    const p = this.pending.get(n);
    if (p === undefined) return; // already timed out
    this.pending.delete(n);
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      return p.reject(
        this.failed(
          p,
          `no JetStream stream answered (503 no responders; is ${this.stream} there?)`,
        ),
      );
    }
    let ack: { error?: { description?: string; code?: number }; duplicate?: boolean; seq?: number };
    try {
      ack = JSON.parse(textOut.decode(msg.data)) as typeof ack;
    } catch {
      return p.reject(
        this.failed(p, `unreadable ack ${JSON.stringify(textOut.decode(msg.data).slice(0, 80))}`),
      );
    }
    if (ack.error !== undefined) {
      return p.reject(
        this.failed(
          p,
          `JetStream refused it: ${ack.error.description ?? 'error'} (${ack.error.code ?? '?'})`,
        ),
      );
    }
    if (ack.duplicate === true)
      this.log.debug({ id: p.id, seq: ack.seq }, 'duplicate signal publish');
    p.resolve();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [n, p] of this.pending) {
      if (p.deadline > now) continue;
      this.pending.delete(n);
      p.reject(this.failed(p, `no JetStream ack within ${this.ackTimeoutMs} ms`));
    }
  }

  private failed(p: PendingAck, why: string): QilinError {
    return new QilinError(
      PUBLISH_FAILED_CODE,
      `publishing signal ${p.id} on ${p.subject} failed: ${why}`,
      {
        details: { id: p.id, subject: p.subject, stream: this.stream },
      },
    );
  }

  /**
   * Create the signal stream for `sig.>` when it is missing. An existing
   * stream is left as it is (another kernel or an operator may own its
   * limits); a warning is logged when it does not capture `sig.>`.
   */
  async ensureStream(): Promise<void> {
    const jsm = await jetstreamManager(this.nc);
    try {
      const info = await jsm.streams.info(this.stream);
      if (!info.config.subjects?.includes('sig.>')) {
        this.log.warn(
          { subjects: info.config.subjects },
          'signal stream exists but does not capture sig.>; signals may not be stored',
        );
      }
      return;
    } catch (err) {
      if (!isApiCode(err, JetStreamApiCodes.StreamNotFound)) throw err;
    }
    try {
      await jsm.streams.add({
        name: this.stream,
        subjects: ['sig.>'],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        duplicate_window: nanos(this.duplicateWindowMs),
        max_age: nanos(this.maxAgeMs),
      });
      this.log.info('created signal stream');
    } catch (err) {
      // Another process created it between our info and add: that is fine.
      await jsm.streams.info(this.stream).catch(() => {
        throw err;
      });
    }
  }

  /** Publish and wait for the JetStream ack; a duplicate ack (same id) counts as stored. */
  async publishSignal(signal: SignalMessage, payload?: Uint8Array): Promise<void> {
    if (!isToken(signal.strategy) || !isToken(signal.sym)) {
      invalidArgument(
        'signal strategy/sym',
        `${signal.strategy}/${signal.sym}`,
        'NATS tokens [A-Za-z0-9_-]+',
      );
    }
    if (typeof signal.id !== 'string' || signal.id === '') {
      invalidArgument('signal.id', signal.id, 'a non-empty string');
    }
    if (this.closing !== undefined) {
      throw new QilinError(
        PUBLISH_FAILED_CODE,
        `signal sink closed; signal ${signal.id} not published`,
        {
          details: { id: signal.id },
        },
      );
    }
    const subject = `sig.${signal.strategy}.${signal.sym}`;
    const n = ++this.nextAck;
    const h = headers();
    h.set('Nats-Msg-Id', signal.id);
    try {
      this.ensureAckSubscription();
      this.nc.publish(subject, payload ?? text.encode(JSON.stringify(signal)), {
        reply: `${this.ackPrefix}.${n}`,
        headers: h,
      });
    } catch (cause) {
      throw new QilinError(
        PUBLISH_FAILED_CODE,
        `publishing signal ${signal.id} on ${subject} failed: ${(cause as Error).message}`,
        { cause, details: { id: signal.id, subject, stream: this.stream } },
      );
    }
    return await new Promise<void>((resolve, reject) => {
      this.pending.set(n, {
        id: signal.id,
        subject,
        deadline: Date.now() + this.ackTimeoutMs,
        resolve,
        reject,
      });
    });
  }

  /** Core publish on `risk.rejected.<symbol>`; never throws (a bad symbol is logged). */
  publishRejection(rejection: RiskRejection): void {
    const sym = rejection.signal.sym;
    if (!isToken(sym)) {
      this.log.warn({ sym, id: rejection.signal.id }, 'rejection not published: bad symbol token');
      return;
    }
    try {
      this.nc.publish(`risk.rejected.${sym}`, JSON.stringify(rejection));
    } catch (err) {
      this.log.warn({ err, id: rejection.signal.id }, 'rejection publish failed');
    }
  }

  publishQuality(sym: string, payload: Uint8Array): void {
    if (!isToken(sym)) return;
    try {
      // A copy: the client keeps the buffer until its next write.
      this.nc.publish(`quality.${sym}`, payload.slice());
    } catch (err) {
      this.log.warn({ err, sym }, 'quality event publish failed');
    }
  }

  /** Refuse new signals and flush what was published. Does not close the connection. Safe twice. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.pending.size > 0) {
      this.log.info({ inFlight: this.pending.size }, 'closing with acks pending');
    }
    if (!this.nc.isClosed() && !this.nc.isDraining()) {
      try {
        await this.nc.flush();
      } catch (err) {
        this.log.debug({ err }, 'flush on close failed');
      }
    }
    // Give acks in flight their deadline, then fail what is left.
    const deadline = Date.now() + this.ackTimeoutMs;
    while (this.pending.size > 0 && Date.now() < deadline && !this.nc.isClosed()) {
      await new Promise((r) => setTimeout(r, 10));
    }
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    for (const [n, p] of this.pending) {
      this.pending.delete(n);
      p.reject(this.failed(p, 'signal sink closed before the ack'));
    }
    this.ackSub?.unsubscribe();
  }
}

function isApiCode(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}
