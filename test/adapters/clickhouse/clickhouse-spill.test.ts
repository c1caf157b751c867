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
import { ensureServices } from '../../helpers/services.js';
import { docQueries, T0, trade } from './store-contract.js';

const log = pino({ level: 'silent' });

void t.test(
  'store down (closed port) → spill; real ClickHouse → replay: exactly once',
  async (t) => {
    const { clickhouseUrl } = await ensureServices();
    const database = `qilin_test_${randomBytes(4).toString('hex')}`;
    const spillDir = mkdtempSync(join(tmpdir(), 'qilin-ch-spill-'));
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

    const down = new ClickHouseStore({
      url: `http://127.0.0.1:${port}`,
      database,
      requestTimeoutMs: 2000,
    });
    const a = new StoreWriter({ store: down, log, spillDir, maxBatchRows: 1000 });
    await a.start();
    for (let i = 0; i < 2500; i++) a.addTick(trade(i, T0 + i, 100 + (i % 3)));
    await a.flush();
    const s = a.stats();
    t.equal(s.storeUp, false);
    t.equal(s.spilledRows, 2500, 'all rows on disk');
    await a.close();
    await down.close();
    t.ok(readdirSync(spillDir).length >= 1);

    const up = new ClickHouseStore({ url: clickhouseUrl, database });
    await up.migrate();
    const b = new StoreWriter({ store: up, log, spillDir });
    await b.start();
    await b.flush();
    t.same(await up.query('SELECT count() AS n FROM ticks'), [{ n: 2500 }]);
    t.same(await up.query(docQueries().get('tick_duplicates')!), [], 'no duplicates');
    t.same(readdirSync(spillDir), [], 'spill files deleted');
    t.equal(b.stats().inserted.ticks, 2500);
    await b.close();
    await up.close();
  },
);
