import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ChdbStore } from '../../../adapters/chdb/chdb-store.js';
import { storeSchemaStatus } from '../../../cli/store-status.js';
import { storeContract, upgradeContract } from '../clickhouse/store-contract.js';
import { MIGRATIONS } from '../../../adapters/clickhouse/schema.js';

// chdb binds one data directory per process: every test here uses the same one.
const dir = mkdtempSync(join(tmpdir(), 'qilin-chdb-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

void t.test('ChdbStore: migration 3 keeps the rows of a version-2 ticks table', async (t) => {
  const old = new ChdbStore({ path: join(dir, 'data'), database: 'qilin_up' });
  t.teardown(() => old.close());
  await upgradeContract(t, old);
});

void t.test('ChdbStore: storeTtlDays become TTL clauses (chdb supports them)', async (t) => {
  const store = new ChdbStore({
    path: join(dir, 'data'),
    database: 'qilin_ttl',
    ttlDays: { ticks: 30, metrics: 7 },
  });
  t.teardown(() => store.close());
  await store.migrate();
  t.match(store.lastTtl, { supported: true, applied: ['ticks', 'metrics'] });
  await store.migrate();
  const s = await storeSchemaStatus(store, 'qilin_ttl');
  const ttl = new Map(s.tables.map((x) => [x.name, x.ttl]));
  t.match(ttl.get('ticks'), /^date \+ toIntervalDay\(30\)$/, 'ticks: 30 days');
  t.match(ttl.get('metrics'), /^date \+ toIntervalDay\(7\)$/, 'metrics: 7 days');
  t.equal(ttl.get('signals'), '', 'signals: none');
  t.equal(s.migrationVersion, MIGRATIONS.at(-1)!.version);
});

void t.test('ChdbStore (embedded ClickHouse)', async (t) => {
  const store = new ChdbStore({ path: join(dir, 'data'), database: 'qilin' });
  await storeContract(t, store);

  await t.test('a write statement is refused by query()', async (t) => {
    await t.rejects(store.query("INSERT INTO metrics (name) VALUES ('x')"), {
      code: 'QLN_STORE_FAILED',
      message: /only read statements/,
    });
    await t.rejects(store.query('DROP TABLE ticks'), { code: 'QLN_STORE_FAILED' });
    t.same(
      await store.query('SELECT count() AS n FROM ticks FINAL'),
      [{ n: 6 }],
      'ticks still there',
    );
  });

  await t.test('a read-only store on the same directory reads and refuses writes', async (t) => {
    await store.close();
    await store.close();
    t.equal(await store.ping(), false, 'closed store does not answer');
    const ro = new ChdbStore({ path: join(dir, 'data'), database: 'qilin', readonly: true });
    t.teardown(() => ro.close());
    t.same(await ro.query('SELECT count() AS n FROM ticks FINAL'), [{ n: 6 }]);
    await t.rejects(ro.query("INSERT INTO metrics (name) VALUES ('x')"), {
      code: 'QLN_STORE_FAILED',
      message: /readonly/i,
    });
  });
});
