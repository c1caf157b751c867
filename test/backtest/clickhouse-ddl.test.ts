/**
 * The backtest tables on the real ClickHouse of the test stack (Debian's
 * 18.16 in CI): the DDL runs (twice: IF NOT EXISTS), the rows the helpers
 * build insert as JSONEachRow and read back, and a run stored twice reads
 * once under FINAL.
 */
import { randomBytes } from 'node:crypto';
import { createClient } from '@clickhouse/client';
import t from 'tap';
import {
  BACKTESTS_DDL,
  BACKTEST_TRADES_DDL,
  backtestMigration,
  backtestRow,
  backtestTradeRows,
} from '../../backtest/clickhouse-ddl.js';
import { Portfolio } from '../../backtest/portfolio.js';
import { buildReport } from '../../backtest/report.js';
import { ensureServices } from '../helpers/services.js';

const T0 = 1_765_000_000_000_000;

void t.test('DDL: portable column types only', (t) => {
  for (const ddl of [BACKTESTS_DDL, BACKTEST_TRADES_DDL]) {
    t.notMatch(ddl, /DateTime64|Nullable|LowCardinality|\bJSON\b/);
    t.match(ddl, /^CREATE TABLE IF NOT EXISTS \{db\}\./);
    t.match(ddl, /ts_us Int64,\n {2}ts DateTime,\n {2}date Date/);
  }
  t.same(backtestMigration(7).statements, [BACKTESTS_DDL, BACKTEST_TRADES_DDL]);
  t.end();
});

void t.test('backtests and backtest_trades on ClickHouse: create, insert, read back', async (t) => {
  const { clickhouseUrl } = await ensureServices();
  const db = `qilin_test_${randomBytes(4).toString('hex')}`;
  const ch = createClient({ url: clickhouseUrl });
  t.teardown(async () => {
    await ch.command({ query: `DROP DATABASE IF EXISTS ${db}` });
    await ch.close();
  });
  await ch.command({ query: `CREATE DATABASE ${db}` });
  for (let i = 0; i < 2; i++) {
    for (const ddl of backtestMigration(7).statements) {
      await ch.command({ query: (ddl as string).replaceAll('{db}', db) });
    }
  }

  const p = new Portfolio({ initialCash: 10_000, sampleIntervalUs: 1_000_000 });
  p.mark('A', 100, T0);
  p.onFill({ signalId: 'mom:A:1', sym: 'A', side: 'buy', qty: 3, px: 100, fee: 0.5, ts: T0 + 10 });
  p.mark('A', 104, T0 + 2_000_000);
  p.onFill({
    signalId: 'mom:A:2',
    sym: 'A',
    side: 'sell',
    qty: 3,
    px: 104,
    fee: 0.5,
    ts: T0 + 2_500_000,
  });
  p.onFill({ signalId: 'rsi:B:3', sym: 'B', side: 'sell', qty: 1.5, px: 20, ts: T0 + 3_000_000 });
  p.finish(T0 + 4_000_000);
  const res = p.result();
  const report = buildReport(res, {
    id: 'bt-ddl-1',
    name: 'ddl test',
    config: { strategy: 'mom', params: { k: 2 } },
    codeVersion: 'deadbeef',
  });
  const finished = T0 + 10_000_000;
  // Twice: a retried job stores the run again.
  for (let i = 0; i < 2; i++) {
    await ch.insert({
      table: `${db}.backtests`,
      values: [backtestRow(report, finished)],
      format: 'JSONEachRow',
    });
  }
  await ch.insert({
    table: `${db}.backtest_trades`,
    values: backtestTradeRows(report.meta.id, res.executions),
    format: 'JSONEachRow',
  });

  const runs = await (
    await ch.query({
      query: `SELECT id, name, code_version, config, start_us, end_us, pnl, trades, hit_rate, profit_factor, fills, toString(date) AS d, report FROM ${db}.backtests FINAL`,
      format: 'JSONEachRow',
    })
  ).json<Record<string, unknown>>();
  t.equal(runs.length, 1, 'stored twice, one row under FINAL');
  const run = runs[0]!;
  t.equal(run['id'], 'bt-ddl-1');
  t.equal(run['code_version'], 'deadbeef');
  t.same(JSON.parse(run['config'] as string), { strategy: 'mom', params: { k: 2 } });
  t.equal(Number(run['start_us']), T0);
  t.equal(Number(run['end_us']), T0 + 4_000_000);
  t.equal(Number(run['pnl']), 11, 'realised 12, fees 1, the short B at its own price');
  t.equal(Number(run['trades']), 1);
  t.equal(Number(run['hit_rate']), 1);
  t.equal(Number(run['profit_factor']), 0, 'null (no losing trip) stored as 0');
  t.equal(Number(run['fills']), 3);
  t.equal(run['d'], new Date(finished / 1000).toISOString().slice(0, 10));
  const stored = JSON.parse(run['report'] as string) as typeof report;
  t.equal(stored.total.profitFactor, null, 'the full report keeps the null');
  t.same(stored, JSON.parse(JSON.stringify(report)));

  const trades = await (
    await ch.query({
      query: `SELECT seq, sym, ts_us, strategy, signal_id, side, qty, px, fee, realised, position FROM ${db}.backtest_trades WHERE backtest_id = 'bt-ddl-1' ORDER BY seq`,
      format: 'JSONEachRow',
    })
  ).json<Record<string, unknown>>();
  t.same(
    trades.map((r) => [
      Number(r['seq']),
      r['sym'],
      Number(r['ts_us']) - T0,
      r['strategy'],
      r['side'],
      Number(r['qty']),
      Number(r['realised']),
      Number(r['position']),
    ]),
    [
      [0, 'A', 10, 'mom', 'buy', 3, 0, 3],
      [1, 'A', 2_500_000, 'mom', 'sell', 3, 12, 0],
      [2, 'B', 3_000_000, 'rsi', 'sell', 1.5, 0, -1.5],
    ],
  );
  t.end();
});
