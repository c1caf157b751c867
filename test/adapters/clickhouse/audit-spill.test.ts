/**
 * Audit rows take the path ticks take (StoreWriter → spill while the store
 * is down → replay): a store outage loses none, and a replayed batch reads
 * once under `audit FINAL`. Same harness as clickhouse-spill.test.ts: the
 * outage is a closed port, the recovery the real ClickHouse.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import { pino } from 'pino';
import t from 'tap';
import { StoreWriter } from '../../../actors/store-writer.js';
import { ClickHouseStore } from '../../../adapters/clickhouse/clickhouse-store.js';
import { makeAuditEvent, type AuditEvent } from '../../../kernel/audit-event.js';
import { ensureServices } from '../../helpers/services.js';
import { T0, trade } from './store-contract.js';

const log = pino({ level: 'silent' });

function events(n: number): AuditEvent[] {
  return Array.from({ length: n }, (_, i) =>
    makeAuditEvent({
      action: i % 2 === 0 ? 'auth.failure' : 'risk.kill',
      actor: i % 2 === 0 ? 'anonymous' : `ops-${i}`,
      target: i % 2 === 0 ? '/ws' : 'risk',
      outcome: i % 2 === 0 ? 'refused' : 'ok',
      reason: `event ${i}`,
      source: '127.0.0.1',
      ts_us: T0 + i,
      detail: { i },
    }),
  );
}

void t.test('store down → audit rows spilled; store back → all replayed, each once', async (t) => {
  const { clickhouseUrl } = await ensureServices();
  const database = `qilin_test_${randomBytes(4).toString('hex')}`;
  const spillDir = mkdtempSync(join(tmpdir(), 'qilin-audit-spill-'));
  const admin = createClient({ url: clickhouseUrl });
  t.teardown(async () => {
    rmSync(spillDir, { recursive: true, force: true });
    await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await admin.close();
  });

  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));

  const evs = events(300);
  const down = new ClickHouseStore({
    url: `http://127.0.0.1:${port}`,
    database,
    requestTimeoutMs: 2000,
  });
  const a = new StoreWriter({ store: down, log, spillDir, maxBatchRows: 100 });
  await a.start();
  // Interleaved with ticks, as in a kernel: one path for both.
  for (let i = 0; i < 300; i++) {
    a.addTick(trade(i, T0 + i, 100));
    a.addAudit([evs[i]!]);
  }
  await a.flush();
  t.equal(a.stats().storeUp, false);
  t.equal(a.stats().spilledRows, 600, 'ticks and audit rows on disk');
  t.equal(a.durableMark(), 600, 'every audit row counts as durable once spilled');
  // The same rows once more (a JetStream redelivery): still one row each under FINAL.
  a.addAudit(evs.slice(0, 50));
  await a.flush();
  await a.close();
  await down.close();

  const up = new ClickHouseStore({ url: clickhouseUrl, database });
  await up.migrate();
  const b = new StoreWriter({ store: up, log, spillDir });
  await b.start();
  await b.flush();
  t.equal(b.stats().inserted.audit, 350, 'every spilled audit row inserted (50 twice)');
  t.same(readdirSync(spillDir), [], 'spill files deleted');
  t.same(
    await up.query('SELECT count() AS n FROM audit FINAL'),
    [{ n: 300 }],
    'none lost, each once',
  );
  const ids = (await up.query('SELECT id FROM audit FINAL ORDER BY ts_us')).map((r) => r['id']);
  t.same(
    ids,
    evs.map((e) => e.id),
    'the same events, in time order',
  );
  const [row] = await up.query("SELECT * FROM audit FINAL WHERE reason = 'event 1'");
  t.match(row, {
    id: evs[1]!.id,
    ts_us: T0 + 1,
    actor: 'ops-1',
    action: 'risk.kill',
    target: 'risk',
    outcome: 'ok',
    source: '127.0.0.1',
    detail: '{"i":1}',
  });
  await b.close();
  await up.close();
});
