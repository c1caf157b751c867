import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { loadConfig } from '../../config/config.js';
import { OutputLayout, QualityIssue } from '../../actors/output-layout.js';
import { FrameRing } from '../../kernel/frame-ring.js';
import { MarketKind, Side, newMarketEvent } from '../../kernel/market-record.js';
import { OutputKind, newOutputEvent } from '../../kernel/output-record.js';
import {
  FrameType,
  writeNameFrame,
  writeOutputRecordFrame,
  writeTickFrame,
} from '../../kernel/shard-frames.js';
import { StoreClient } from '../../cli/store-client.js';
import { runSql } from '../../cli/store-factory.js';
import { ensureServices } from '../helpers/services.js';

const log = pino({ level: 'silent' });
const T0 = 1_732_300_020_000_000;

function config(overrides: Record<string, unknown>, t: Test): ReturnType<typeof loadConfig> {
  const stateDir = mkdtempSync(join(tmpdir(), 'qilin-store-client-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  return loadConfig({ env: {}, overrides: { stateDir, logLevel: 'warn', ...overrides } });
}

/**
 * A shard's store ring as the ShardHost fills it: SYMBOL and VENUE frames
 * first, then n TICK frames over 3 symbols and 2 venues, trades and quotes
 * alternating. Flushed in chunks (the ring holds ~3,000 tick frames).
 */
async function writeTicks(ring: FrameRing, n: number): Promise<number> {
  names.forEach((name, id) => writeNameFrame(ring, FrameType.SYMBOL, id, name));
  writeNameFrame(ring, FrameType.VENUE, 0, 'sim');
  writeNameFrame(ring, FrameType.VENUE, 1, 'venue-b');
  const ev = newMarketEvent();
  let ok = 0;
  for (let i = 0; i < n; i++) {
    ev.symId = i % 3;
    ev.seq = i;
    ev.ts = T0 + i * 1000;
    ev.recv = ev.ts + 10;
    if (i % 2 === 0) {
      ev.kind = MarketKind.TRADE;
      ev.px = 100 + (i % 7);
      ev.qty = 1;
      ev.side = i % 4 === 0 ? Side.BUY : Side.SELL;
    } else {
      ev.kind = MarketKind.QUOTE;
      ev.bid = 99;
      ev.bidQty = 1;
      ev.ask = 101;
      ev.askQty = 2;
    }
    while (!writeTickFrame(ring, ev, i % 5 === 0 ? 1 : 0)) {
      ring.flush();
      await new Promise((r) => setTimeout(r, 1));
    }
    ok++;
  }
  ring.flush();
  return ok;
}

const decoder = { strategy: 'mom', account: 'acc', model: { name: 'baseline', version: '1' } };

const names = ['AAA', 'BBB', 'CCC'];

void t.test(
  'StoreClient → worker → ClickHouse: 10 000 ticks + other rows, exactly once',
  async (t) => {
    const { clickhouseUrl } = await ensureServices();
    const db = `qilin_test_${randomBytes(4).toString('hex')}`;
    const admin = createClient({ url: clickhouseUrl });
    t.teardown(async () => {
      await admin.command({ query: `DROP DATABASE IF EXISTS ${db}` });
      await admin.close();
    });
    const cfg = config({ clickhouseUrl, clickhouseDb: db }, t);
    const ring = FrameRing.create(1 << 18);
    const client = new StoreClient({ config: cfg, log, feeds: [ring.buffer], decoder });
    await client.start();
    t.equal(await writeTicks(ring, 10_000), 10_000, 'ring took every tick');
    client.writeMetrics([{ tsUs: T0, name: 'qilin_ticks_total', labels: '', value: 10_000 }]);
    const q = newOutputEvent();
    q.kind = OutputKind.QUALITY;
    q.symId = 0;
    q.srcSeq = 1;
    q.srcTs = T0;
    q.payload[OutputLayout.quality.SCORE] = 0.9;
    q.payload[OutputLayout.quality.TICKS] = 5;
    q.payload[OutputLayout.quality.STALE] = 1;
    q.payload[OutputLayout.quality.ISSUE_BITS] = QualityIssue.STALE;
    t.ok(writeOutputRecordFrame(ring, q));
    ring.flush();
    await client.flush();

    const rows = await runSql(
      cfg,
      'SELECT count() AS n, uniqExact(sym, seq, type) AS u FROM ticks',
    );
    t.same(rows, [{ n: 10_000, u: 10_000 }], 'exactly 10 000 distinct rows');
    const bySym = await runSql(
      cfg,
      'SELECT sym, venue, count() AS n FROM ticks GROUP BY sym, venue ORDER BY sym, venue',
    );
    t.equal(bySym.length, 6, '3 symbols × 2 venues');
    t.same(
      bySym.map((r) => r['sym']),
      ['AAA', 'AAA', 'BBB', 'BBB', 'CCC', 'CCC'],
    );
    const side = await runSql(
      cfg,
      "SELECT side, count() AS n FROM ticks WHERE type = 'trade' GROUP BY side ORDER BY side",
    );
    t.same(side, [
      { side: -1, n: 2500 },
      { side: 1, n: 2500 },
    ]);
    t.same(await runSql(cfg, 'SELECT count() AS n FROM metrics'), [{ n: 1 }]);
    t.same(await runSql(cfg, 'SELECT issues FROM quality_events'), [{ issues: ['stale'] }]);

    t.equal(await client.count('ticks'), 10_000, 'count() through the worker');
    t.same(await client.query('SELECT count() AS n FROM signals'), [{ n: 0 }]);
    await t.rejects(client.query('SELECT nope'), { code: 'QLN_STORE_FAILED' });
    const s = client.stats();
    t.equal(s.inserted.ticks, 10_000);
    t.equal(s.inserted.quality, 1);
    t.equal(s.feedBytes, 0, 'the feed is drained');
    t.equal(s.workerUp, true);
    await client.close();
    await client.close();
    t.equal(client.stats().workerUp, false);
    await t.rejects(
      client.query('SELECT 1'),
      { code: 'QLN_STORE_FAILED' },
      'closed client refuses',
    );
  },
);

void t.test('start rejects with QLN_STORE_FAILED when the store cannot migrate', async (t) => {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  const cfg = config({ clickhouseUrl: `http://127.0.0.1:${port}` }, t);
  const client = new StoreClient({ config: cfg, log, feeds: [], decoder });
  await t.rejects(client.start(), { code: 'QLN_STORE_FAILED', message: /migration/ });
  await client.close();
});

void t.test('embedded chdb store through the worker, then qilin sql on it', async (t) => {
  const cfg = config({}, t);
  const ring = FrameRing.create(1 << 16);
  const client = new StoreClient({ config: cfg, log, feeds: [ring.buffer], decoder });
  await client.start();
  t.equal(await writeTicks(ring, 3000), 3000);
  await client.flush();
  t.equal(client.stats().inserted.ticks, 3000);
  t.equal(await client.count('ticks'), 3000, 'chdb queried in the worker');
  await client.close();
  t.same(await runSql(cfg, 'SELECT count() AS n FROM ticks'), [{ n: 3000 }]);
});
