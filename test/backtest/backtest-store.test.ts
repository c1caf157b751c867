/**
 * `qilin backtest --save` (backtest/backtest-store.ts) on both stores:
 * migration 7 creates `backtests` and `backtest_trades` on the real
 * ClickHouse of the test stack (Debian's 18.16 in CI) and in chdb; the rows
 * read back equal the report and its executions; a run saved twice reads
 * once under FINAL; a sweep saved from the command line has one row per
 * point with the shared sweep id; the embedded store held by this process
 * makes `--save` in another fail with a clear error, before the run.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ChdbStore } from '../../adapters/chdb/chdb-store.js';
import { ClickHouseStore } from '../../adapters/clickhouse/clickhouse-store.js';
import { runBacktest, type BacktestRunResult } from '../../backtest/backtest-run.js';
import { saveBacktests, type BacktestStore } from '../../backtest/backtest-store.js';
import { docQueries } from '../adapters/clickhouse/store-contract.js';
import { runQilin } from '../helpers/cli.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { ensureServices } from '../helpers/services.js';

let cached: BacktestRunResult | undefined;
/** A small run with fills (computed once). */
function run(): BacktestRunResult {
  cached ??= runBacktest({
    symbols: 2,
    messages: 3_000,
    seed: 5,
    stepUs: 1000,
    strategy: 'momentum',
    account: 'bt',
    actor: { minIntervalUs: 0, rule: { kind: 'momentum', threshold: 0.0002 } },
    risk: {},
    fill: { model: 'next-tick', feeBps: 2 },
    initialCash: 100_000,
    sampleIntervalUs: 250_000,
    codeVersion: 'test-1',
  });
  return cached;
}

// Later than any run the command line saves (wall clock): the docs' "latest run".
const FINISHED_US = 2_000_000_000_123_456;

/** Save one run twice; read both tables back and compare with the report. */
async function roundTrip(t: Test, store: BacktestStore): Promise<void> {
  await store.migrate();
  const versions = await store.query(
    'SELECT DISTINCT version FROM schema_migrations ORDER BY version',
  );
  t.same(versions.at(-1), { version: 7 }, 'migration 7 applied');
  const r = run();
  t.ok(r.executions.length > 2, `${r.executions.length} fills to store`);
  const report = {
    ...r.report,
    meta: { ...r.report.meta, id: `bt-rt-${randomBytes(3).toString('hex')}` },
  };
  const id = report.meta.id;
  for (let i = 0; i < 2; i++) {
    t.same(await saveBacktests(store, [{ report, executions: r.executions }], FINISHED_US), {
      runs: 1,
      trades: r.executions.length,
    });
  }
  const rows = await store.query(
    `SELECT id, name, sweep_id, ts_us, start_us, end_us, code_version, config, initial_cash, pnl, sharpe, max_drawdown, trades, fills, fees, report FROM backtests FINAL WHERE id = '${id}'`,
  );
  t.equal(rows.length, 1, 'saved twice, one row under FINAL');
  const row = rows[0]!;
  const m = report.total;
  t.match(row, {
    id,
    name: report.meta.name,
    sweep_id: '',
    ts_us: FINISHED_US,
    start_us: report.startTs,
    end_us: report.endTs,
    code_version: 'test-1',
    initial_cash: 100_000,
    trades: m.trades,
    fills: m.fills,
  });
  t.equal(row['pnl'], m.pnl, 'pnl exactly');
  t.equal(row['fees'], m.fees, 'fees exactly');
  t.equal(row['sharpe'], m.sharpe ?? 0, 'sharpe (null stored as 0)');
  t.equal(row['max_drawdown'], m.maxDrawdown);
  t.same(JSON.parse(row['config'] as string), JSON.parse(JSON.stringify(report.meta.config)));
  t.same(
    JSON.parse(row['report'] as string),
    JSON.parse(JSON.stringify(report)),
    'the whole report',
  );

  const trades = await store.query(
    `SELECT seq, sym, ts_us, account, strategy, signal_id, side, qty, px, fee, realised, position FROM backtest_trades FINAL WHERE backtest_id = '${id}' ORDER BY seq`,
  );
  t.equal(trades.length, r.executions.length, 'saved twice, each fill once under FINAL');
  t.same(
    trades,
    r.executions.map((e) => ({
      seq: e.seq,
      sym: e.sym,
      ts_us: e.ts,
      account: e.account,
      strategy: e.strategy,
      signal_id: e.signalId,
      side: e.side,
      qty: e.qty,
      px: e.px,
      fee: e.fee,
      realised: e.realised,
      position: e.position,
    })),
    'every fill as the portfolio recorded it',
  );

  await t.rejects(
    store.insertRows('backtests; DROP TABLE ticks', [{ id: 'x' }]),
    { code: 'QLN_INVALID_ARGUMENT', message: /invalid table/ },
    'a table name is an identifier, never interpolated as given',
  );

  // The documented queries (docs/sql.md), as they are.
  const qs = docQueries();
  const best = await store.query(qs.get('backtest_best_runs')!);
  t.ok(
    best.some((b) => b['id'] === id),
    'backtest_best_runs: the run is there',
  );
  const sharpe = best.map((b) => Number(b['sharpe']));
  t.same(
    sharpe,
    [...sharpe].sort((a, b) => b - a),
    'best Sharpe first',
  );
  const bySym = await store.query(qs.get('backtest_trades_by_symbol')!);
  const want = new Map<string, { fills: number; fees: number; realised: number }>();
  for (const e of r.executions) {
    const w = want.get(e.sym) ?? { fills: 0, fees: 0, realised: 0 };
    w.fills++;
    w.fees += e.fee;
    w.realised += e.realised;
    want.set(e.sym, w);
  }
  t.same(
    bySym.map((b) => b['sym']),
    [...want.keys()].sort(),
    'backtest_trades_by_symbol: the latest run, every symbol',
  );
  for (const b of bySym) {
    const w = want.get(b['sym'] as string)!;
    t.equal(Number(b['fills']), w.fills, `${String(b['sym'])}: fills`);
    t.ok(Math.abs(Number(b['fees']) - w.fees) < 1e-9 * (1 + w.fees), `${String(b['sym'])}: fees`);
    t.ok(
      Math.abs(Number(b['realised']) - w.realised) < 1e-9 * (1 + Math.abs(w.realised)),
      `${String(b['sym'])}: realised`,
    );
  }
}

void t.test('ClickHouse: migration 7 and the --save round trip', async (t) => {
  const { clickhouseUrl } = await ensureServices();
  const db = `qilin_bt_${randomBytes(4).toString('hex')}`;
  const store = new ClickHouseStore({ url: clickhouseUrl, database: db });
  t.teardown(async () => {
    await store.close();
    await dropDatabase(clickhouseUrl, db);
  });
  await roundTrip(t, store);

  // The command line, a single run, into the same database.
  const cli = await runQilin(
    [
      'backtest',
      '--messages',
      '3000',
      '--symbols',
      '2',
      '--strategy',
      'momentum',
      '--param',
      'threshold=0.0002',
      '--save',
    ],
    { QILIN_CLICKHOUSE_URL: clickhouseUrl, QILIN_CLICKHOUSE_DB: db },
  );
  t.equal(cli.code, 0, cli.err);
  const saved = /saved as (bt-momentum-1-[0-9a-f]{12}) with (\d+) trades/.exec(cli.out);
  t.ok(saved, cli.out);
  const [, id, n] = saved!;
  t.same(
    await store.query(`SELECT count() AS n FROM backtest_trades WHERE backtest_id = '${id}'`),
    [{ n: Number(n) }],
    'its trades',
  );
  t.same(
    await store.query(
      `SELECT visitParamExtractString(config, 'strategy') AS s FROM backtests FINAL WHERE id = '${id}'`,
    ),
    [{ s: 'momentum' }],
    "the docs' query on the config column",
  );
});

void t.test('chdb: a sweep saved by the command line, the round trip, a held store', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qilin-bt-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const env = { QILIN_STATE_DIR: dir, QILIN_CLICKHOUSE_URL: '', QILIN_CLICKHOUSE_DB: 'qilin' };
  const cli = await runQilin(
    [
      'backtest',
      '--messages',
      '2000',
      '--symbols',
      '2',
      '--strategy',
      'momentum',
      '--sweep',
      'threshold=0.0002..0.0004:0.0002',
      '--workers',
      '1',
      '--save',
      '--json',
    ],
    env,
  );
  t.equal(cli.code, 0, cli.err);
  const out = JSON.parse(cli.out) as { id: string; points: Array<{ id: string; index: number }> };
  t.equal(out.points.length, 2);

  // chdb holds one data directory per process: this one, from now on.
  const store = new ChdbStore({ path: join(dir, 'chdb'), database: 'qilin' });
  t.teardown(() => store.close());
  const rows = await store.query(
    `SELECT id, sweep_id FROM backtests FINAL WHERE sweep_id = '${out.id}' ORDER BY id`,
  );
  t.same(
    rows,
    out.points.map((p) => ({ id: p.id, sweep_id: out.id })).sort((a, b) => (a.id < b.id ? -1 : 1)),
    'one row per point, the shared sweep id',
  );
  const trades = await store.query(
    `SELECT count() AS n FROM backtest_trades WHERE backtest_id LIKE '${out.id}-%'`,
  );
  t.ok(Number(trades[0]!['n']) > 0, `the points' trades (${String(trades[0]!['n'])})`);

  await roundTrip(t, store);

  const held = await runQilin(['backtest', '--messages', '2000', '--save'], env);
  t.equal(held.code, 2, 'refused');
  t.match(
    held.err,
    /QLN_STORE_FAILED: .*(in use by another process|held by one process at a time: if a kernel or another qilin command runs on it, stop it)/,
  );
  t.notMatch(held.out, /TOTAL/, 'before the run, not after');
});
