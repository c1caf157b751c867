import {
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { decodeAuditEvent, encodeAuditEvent, type AuditEvent } from '../../kernel/audit-event.js';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';
import type { Logger } from '../../kernel/logger.js';
import { connectNats, drainNats } from './nats-connection.js';
import { ensureAuditStream, publishAuditEvent, type AuditStreamOptions } from './audit-stream.js';

/** Options of {@link AuditClient.open}. */
export interface AuditClientOptions {
  natsUrl: string;
  /** nkey seed file of the connection (`natsSeedFileFor(config, 'operator')`); none: no credentials. */
  seedFile?: string | undefined;
  log: Logger;
  /** Folder of events made but not yet acknowledged by the stream (`<stateDir>/audit-outbox`). */
  outboxDir: string;
  /** NATS client name (default qilin-audit-cli). */
  name?: string;
  stream?: AuditStreamOptions;
  /** How long a publish waits for the stream's ack, ms (default 5000). */
  timeoutMs?: number;
}

/**
 * Audit events made outside a kernel (`qilin keys`): published on
 * `audit.<action>` (JetStream AUDIT, where the kernels' shared consumer
 * stores them).
 *
 * The rule, so that no change goes unaudited:
 * 1. `open()` before the change: connects and checks the AUDIT stream; when
 *    either fails it throws QLN_AUDIT_UNAVAILABLE and the command makes no
 *    change at all. It also re-sends what an earlier run left in the outbox.
 * 2. `emit()` after the change: publish and wait for the ack. Should that
 *    fail now (NATS went away between 1 and 2), the event is written to the
 *    outbox folder first (fsync'd by the rename) and re-sent by the next
 *    command that opens a client; the event id makes a re-send harmless.
 */
export class AuditClient {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly o: AuditClientOptions,
  ) {}

  static async open(opts: AuditClientOptions): Promise<AuditClient> {
    let nc: NatsConnection;
    try {
      nc = await connectNats({
        servers: opts.natsUrl,
        name: opts.name ?? 'qilin-audit-cli',
        log: opts.log,
        timeoutMs: opts.timeoutMs ?? 5000,
        seedFile: opts.seedFile,
      });
    } catch (cause) {
      throw new QilinError(
        ErrorCodes.AUDIT_UNAVAILABLE,
        `cannot reach NATS at ${opts.natsUrl} to audit the change, so it was not made: ${(cause as Error).message}`,
        { cause },
      );
    }
    try {
      await ensureAuditStream(nc, opts.stream);
    } catch (err) {
      await drainNats(nc).catch(() => undefined);
      const e = err as QilinError;
      throw new QilinError(ErrorCodes.AUDIT_UNAVAILABLE, `${e.message}; the change was not made`, {
        cause: err,
      });
    }
    const client = new AuditClient(nc, opts);
    await client.resendOutbox();
    return client;
  }

  /** Publish one event; when not acknowledged, keep it in the outbox (see the class comment). */
  async emit(ev: AuditEvent): Promise<'published' | 'queued'> {
    try {
      await publishAuditEvent(this.nc, ev, this.o.timeoutMs);
      return 'published';
    } catch (err) {
      mkdirSync(this.o.outboxDir, { recursive: true });
      const path = join(this.o.outboxDir, `${ev.id}.json`);
      writeFileSync(`${path}.tmp`, encodeAuditEvent(ev));
      renameSync(`${path}.tmp`, path);
      this.o.log.warn(
        { err, id: ev.id, outbox: this.o.outboxDir },
        'audit event not acknowledged: kept in the outbox, re-sent by the next qilin keys command',
      );
      return 'queued';
    }
  }

  /** Events in the outbox re-sent and removed (oldest first); a bad file is left with a warning. */
  async resendOutbox(): Promise<number> {
    let names: string[];
    try {
      names = readdirSync(this.o.outboxDir)
        .filter((n) => n.endsWith('.json'))
        .sort();
    } catch {
      return 0;
    }
    let sent = 0;
    for (const name of names) {
      const path = join(this.o.outboxDir, name);
      const ev = decodeAuditEvent(readFileSync(path));
      if (typeof ev === 'string') {
        this.o.log.warn({ file: path, detail: ev }, 'audit outbox file is not an event: left');
        continue;
      }
      await publishAuditEvent(this.nc, ev, this.o.timeoutMs);
      unlinkSync(path);
      sent++;
    }
    if (sent > 0) this.o.log.info({ sent }, 'audit outbox re-sent');
    return sent;
  }

  async close(): Promise<void> {
    await drainNats(this.nc);
  }
}
