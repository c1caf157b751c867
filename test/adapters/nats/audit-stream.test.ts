/**
 * The AUDIT stream on the real NATS: two kernels' consumers sharing one
 * durable store each event once between them; a store that fails naks, and
 * the event comes back; a retried publish (same id) is stored once.
 */
import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { pino } from 'pino';
import t from 'tap';
import {
  AUDIT_STREAM,
  AuditConsumer,
  ensureAuditStream,
  publishAuditEvent,
} from '../../../adapters/nats/audit-stream.js';
import { makeAuditEvent, type AuditEvent } from '../../../kernel/audit-event.js';
import { connectAs } from '../../helpers/services.js';
import { until } from '../../helpers/wait.js';

const log = pino({ level: 'silent' });
const run = randomBytes(3).toString('hex');

void t.test(
  'a shared durable: each event stored once; a failed store is redelivered',
  async (t) => {
    const nc = await connectAs('admin');
    const durable = `qilin-audit-test-${run}`;
    const actor = `stream-test-${run}`;
    t.teardown(async () => {
      const jsm = await jetstreamManager(nc);
      await jsm.consumers.delete(AUDIT_STREAM, durable).catch(() => undefined);
      await nc.close();
    });
    await ensureAuditStream(nc);
    await ensureAuditStream(nc); // idempotent

    const stored: Array<[string, AuditEvent]> = [];
    let failuresLeft = 1;
    const consumer = (name: string, failFirst: boolean): AuditConsumer =>
      new AuditConsumer({
        nc,
        log,
        durable,
        ackWaitMs: 5000,
        batch: 10,
        store: (events) => {
          if (failFirst && failuresLeft > 0 && events.some((e) => e.actor === actor)) {
            failuresLeft--;
            return Promise.reject(new Error('store down'));
          }
          for (const e of events) if (e.actor === actor) stored.push([name, e]);
          return Promise.resolve();
        },
      });
    const a = consumer('a', true);
    const b = consumer('b', false);
    await a.start();
    await b.start();
    t.teardown(async () => {
      await a.close();
      await b.close();
    });

    const evs = Array.from({ length: 100 }, (_, i) =>
      makeAuditEvent({
        action: 'risk.kill',
        actor,
        target: 'risk',
        outcome: 'ok',
        reason: `n${i}`,
        source: 'test',
      }),
    );
    for (const e of evs) await publishAuditEvent(nc, e);
    // A publish retried after a lost ack: the same id, dropped by the stream.
    await publishAuditEvent(nc, evs[0]!);

    await until('every event stored', () => new Set(stored.map(([, e]) => e.id)).size === 100);
    t.equal(failuresLeft, 0, 'one store failed (its batch was nak-ed)');
    t.equal(stored.length, 100, 'each event stored once between the two consumers');
    t.same(
      new Set(stored.map(([, e]) => e.id)),
      new Set(evs.map((e) => e.id)),
      'the events published, the retry not twice',
    );
    const jsm = await jetstreamManager(nc);
    // Also what the stream held before (other runs, an invalid body terminated, not redelivered).
    await until('nothing pending', async () => {
      const ci = await jsm.consumers.info(AUDIT_STREAM, durable);
      return ci.num_ack_pending === 0 && ci.num_pending === 0;
    });
    t.equal(a.counters.storeFailures, 1);
  },
);
