import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { createClient } from '@clickhouse/client';
import t from 'tap';
import { ClickHouseStore } from '../../../adapters/clickhouse/clickhouse-store.js';
import { ttlSupported } from '../../../adapters/clickhouse/schema.js';
import { storeSchemaStatus } from '../../../cli/store-status.js';
import { ensureServices } from '../../helpers/services.js';
import { fixtureBatch, storeContract, upgradeContract } from './store-contract.js';

/** A TCP port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

void t.test('ClickHouseStore against the local ClickHouse', async (t) => {
  const { clickhouseUrl } = await ensureServices();
  const database = `qilin_test_${randomBytes(4).toString('hex')}`;
  const store = new ClickHouseStore({ url: clickhouseUrl, database });
  const admin = createClient({ url: clickhouseUrl });
  t.teardown(async () => {
    await store.close();
    await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await admin.close();
  });

  await storeContract(t, store);

  await t.test('queries are read-only (readonly=1)', async (t) => {
    await t.rejects(store.query("INSERT INTO metrics (name) VALUES ('x')"), {
      code: 'QLN_STORE_FAILED',
      message: /readonly/i,
    });
  });

  await t.test('migration 3 keeps the rows of a version-2 ticks table', async (t) => {
    const db = `${database}_up`;
    const old = new ClickHouseStore({ url: clickhouseUrl, database: db });
    t.teardown(async () => {
      await old.close();
      await admin.command({ query: `DROP DATABASE IF EXISTS ${db}` });
    });
    await upgradeContract(t, old);
  });

  await t.test('storeTtlDays: TTL only where the server supports it', async (t) => {
    const db = `${database}_ttl`;
    const s = new ClickHouseStore({ url: clickhouseUrl, database: db, ttlDays: { ticks: 30 } });
    t.teardown(async () => {
      await s.close();
      await admin.command({ query: `DROP DATABASE IF EXISTS ${db}` });
    });
    await s.migrate();
    const [v] = await s.query('SELECT version() AS v');
    const supported = ttlSupported(String(v?.['v']));
    t.match(s.lastTtl, { supported, applied: supported ? ['ticks'] : [] });
    const status = await storeSchemaStatus(s, db);
    const ticks = status.tables.find((x) => x.name === 'ticks');
    t.equal(ticks?.ttl !== '', supported, `ticks TTL "${ticks?.ttl}" (server ${String(v?.['v'])})`);
  });

  await t.test('close is safe twice and ping is then false', async (t) => {
    const s = new ClickHouseStore({ url: clickhouseUrl, database });
    await s.close();
    await s.close();
    t.equal(await s.ping(), false);
  });
});

void t.test(
  'ClickHouseStore on a closed port: ping false, insert and migrate fail with QLN_STORE_FAILED',
  async (t) => {
    const port = await closedPort();
    const store = new ClickHouseStore({
      url: `http://127.0.0.1:${port}`,
      database: 'qilin',
      requestTimeoutMs: 2000,
    });
    t.teardown(() => store.close());
    t.equal(await store.ping(), false);
    await t.rejects(store.insert(fixtureBatch()), {
      code: 'QLN_STORE_FAILED',
      details: { table: 'ticks' },
    });
    await t.rejects(store.migrate(), { code: 'QLN_STORE_FAILED' });
  },
);

void t.test('options are checked', (t) => {
  t.throws(() => new ClickHouseStore({ url: 'nats://x:1', database: 'qilin' }), {
    code: 'QLN_INVALID_ARGUMENT',
    message: /nats:\/\/x:1/,
  });
  t.throws(() => new ClickHouseStore({ url: 'http://x:1', database: 'a;b' }), {
    code: 'QLN_INVALID_ARGUMENT',
    message: /a;b/,
  });
  t.throws(
    () =>
      new ClickHouseStore({
        url: 'http://x:1',
        database: 'q',
        ttlDays: { nope: 3 } as unknown as { ticks: number },
      }),
    { code: 'QLN_INVALID_ARGUMENT', message: /nope/ },
  );
  t.throws(() => new ClickHouseStore({ url: 'http://x:1', database: 'q', ttlDays: { ticks: 0 } }), {
    code: 'QLN_INVALID_ARGUMENT',
    message: /ticks: 0 \(allowed: whole days/,
  });
  t.end();
});
