/**
 * StoreTickSource against the real ClickHouse server (18.16 in CI: keyset
 * pagination without tuple comparison), through the project's store, and
 * `openTickSource('store:…')` from a config; an unreachable server is a
 * QLN_REPLAY_SOURCE_FAILED.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { ClickHouseStore } from '../../../adapters/clickhouse/clickhouse-store.js';
import { openTickSource } from '../../../backtest/sources/open-source.js';
import { StoreTickSource } from '../../../backtest/sources/store-source.js';
import { newTickChunk } from '../../../backtest/tick-chunk.js';
import { ErrorCodes } from '../../../kernel/errors.js';
import { dropDatabase } from '../../helpers/drop-database.js';
import { ensureServices } from '../../helpers/services.js';
import { freePort, testKernelConfig } from '../../helpers/test-kernel.js';
import { arrivalOrder, loadFixture, storeSourceContract } from './store-source-contract.js';
import { noVenue, readAll } from './source-fixtures.js';

void t.test('StoreTickSource on ClickHouse', async (t) => {
  const { clickhouseUrl } = await ensureServices();
  const database = `qilin_test_src_${randomBytes(4).toString('hex')}`;
  const store = new ClickHouseStore({ url: clickhouseUrl, database });
  t.teardown(async () => {
    await store.close();
    await dropDatabase(clickhouseUrl, database);
  });
  const rows = await loadFixture(store);
  const [v] = await store.query('SELECT version() AS v');
  t.comment(`ClickHouse ${String(v?.['v'])}`);

  await storeSourceContract(t, store, rows, `${database}.ticks`);

  await t.test("openTickSource('store:…') opens the configured store and closes it", async (t) => {
    const urls = await ensureServices();
    const config = await testKernelConfig(urls, database, randomBytes(16).toString('hex'));
    const src = await openTickSource('store:symbols=BBB,pageRows=3', { config });
    t.match(src.description, /clickhouse .*\.ticks \(symbols BBB\)/);
    t.equal(src.total, 20);
    const got = await readAll(src, 4);
    t.same(got.ticks, noVenue(arrivalOrder(rows).filter((r) => r.sym === 'BBB')));
    await src.close();
    t.equal(await src.next(newTickChunk(2)), 0, 'closed: nothing more');
  });

  await t.test('a table that does not exist is QLN_REPLAY_SOURCE_FAILED', async (t) => {
    const src = new StoreTickSource({ store, table: `${database}.nope` });
    await t.rejects(src.open(), {
      code: ErrorCodes.REPLAY_SOURCE_FAILED,
      message: /cannot read the ticks/,
    });
  });
});

void t.test('an unreachable ClickHouse is QLN_REPLAY_SOURCE_FAILED, not a crash', async (t) => {
  const port = await freePort(); // bound, then released: nothing listens there
  const config = await testKernelConfig(
    await ensureServices(),
    'qilin',
    randomBytes(16).toString('hex'),
    {
      clickhouseUrl: `http://127.0.0.1:${port}`,
    },
  );
  await t.rejects(openTickSource('store', { config }), {
    code: ErrorCodes.REPLAY_SOURCE_FAILED,
    message: new RegExp(
      `store clickhouse qilin\\.ticks: cannot read the ticks: .*(ECONNREFUSED|connect)`,
    ),
  });
});
