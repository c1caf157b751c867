import type { Migration } from '../adapters/clickhouse/schema.js';
import { dateOf, secondsOf, type JsonRow } from '../adapters/clickhouse/row-format.js';
import type { Execution } from './portfolio.js';
import type { BacktestMetrics, BacktestReport } from './report.js';

/**
 * ClickHouse tables of backtest results: `backtests` (one row per run, with
 * the config and code version that made it) and `backtest_trades` (one row per
 * simulated fill). Exported as DDL strings with the `{db}` placeholder the
 * migrations of adapters/clickhouse/schema.ts use: {@link backtestMigration}
 * builds the step, migration 7 of the store's MIGRATIONS. The points of one
 * sweep share `sweep_id` ('' for a single run).
 *
 * Portable like the rest of the schema (ClickHouse 18.16, current releases,
 * chdb): no DateTime64 (times are Int64 µs plus `ts` DateTime and `date` Date
 * that the writer fills, see row-format.ts), no Nullable, no LowCardinality,
 * no JSON type. A metric the report leaves `null` (a Sharpe with no variance,
 * a profit factor with no loss) is stored as 0 in its column; the full report,
 * nulls included, is the `report` column (JSON), so nothing is lost.
 *
 * Both are ReplacingMergeTrees: storing a run twice (a retried job, the same
 * config saved again: ids are content hashes) reads once under FINAL —
 * `backtests` keyed by `id`, `backtest_trades` by (backtest_id, sym, ts_us,
 * seq), a fill's identity and the order a run's trades are read in.
 */

export const BACKTESTS_DDL = `CREATE TABLE IF NOT EXISTS {db}.backtests (
  id String,
  name String,
  sweep_id String,
  ts_us Int64,
  ts DateTime,
  date Date,
  start_us Int64,
  end_us Int64,
  code_version String,
  config String,
  initial_cash Float64,
  sample_interval_us Int64,
  pnl Float64,
  total_return Float64,
  annualised_return Float64,
  volatility Float64,
  sharpe Float64,
  sortino Float64,
  max_drawdown Float64,
  max_drawdown_duration_us Int64,
  calmar Float64,
  trades UInt64,
  hit_rate Float64,
  profit_factor Float64,
  expectancy Float64,
  turnover Float64,
  exposure Float64,
  fees Float64,
  fills UInt64,
  report String
) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(date) ORDER BY id`;

export const BACKTEST_TRADES_DDL = `CREATE TABLE IF NOT EXISTS {db}.backtest_trades (
  backtest_id String,
  seq UInt64,
  sym String,
  ts_us Int64,
  ts DateTime,
  date Date,
  account String,
  strategy String,
  signal_id String,
  side String,
  qty Float64,
  px Float64,
  fee Float64,
  realised Float64,
  position Float64
) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(date) ORDER BY (backtest_id, sym, ts_us, seq)`;

/** The migration step that creates both tables, numbered by the caller (the next free version). */
export function backtestMigration(version: number): Migration {
  return {
    version,
    description: 'backtests and backtest_trades (backtest/clickhouse-ddl.ts)',
    statements: [BACKTESTS_DDL, BACKTEST_TRADES_DDL],
  };
}

const n = (v: number | null): number => (v !== null && Number.isFinite(v) ? v : 0);
const int = (v: number): number => (Number.isFinite(v) ? Math.round(v) : 0);

/**
 * The `backtests` row of a report; `finishedUs` is when the run ended (wall
 * clock, µs); `sweepId` the sweep the run is a point of ('' for a single run).
 */
export function backtestRow(report: BacktestReport, finishedUs: number, sweepId = ''): JsonRow {
  const m: BacktestMetrics = report.total;
  return {
    id: report.meta.id,
    name: report.meta.name,
    sweep_id: sweepId,
    ts_us: int(finishedUs),
    ts: secondsOf(finishedUs),
    date: dateOf(finishedUs),
    start_us: int(report.startTs),
    end_us: int(report.endTs),
    code_version: report.meta.codeVersion,
    config: JSON.stringify(report.meta.config),
    initial_cash: n(report.initialCash),
    sample_interval_us: int(report.sampleIntervalUs),
    pnl: n(m.pnl),
    total_return: n(m.totalReturn),
    annualised_return: n(m.annualisedReturn),
    volatility: n(m.volatility),
    sharpe: n(m.sharpe),
    sortino: n(m.sortino),
    max_drawdown: n(m.maxDrawdown),
    max_drawdown_duration_us: int(m.maxDrawdownDurationUs),
    calmar: n(m.calmar),
    trades: m.trades,
    hit_rate: n(m.hitRate),
    profit_factor: n(m.profitFactor),
    expectancy: n(m.expectancy),
    turnover: n(m.turnover),
    exposure: n(m.exposure),
    fees: n(m.fees),
    fills: m.fills,
    report: JSON.stringify(report),
  };
}

/** The `backtest_trades` rows of a run's executions. */
export function backtestTradeRows(backtestId: string, executions: readonly Execution[]): JsonRow[] {
  return executions.map((e) => ({
    backtest_id: backtestId,
    seq: e.seq,
    sym: e.sym,
    ts_us: int(e.ts),
    ts: secondsOf(e.ts),
    date: dateOf(e.ts),
    account: e.account,
    strategy: e.strategy,
    signal_id: e.signalId,
    side: e.side,
    qty: n(e.qty),
    px: n(e.px),
    fee: n(e.fee),
    realised: n(e.realised),
    position: n(e.position),
  }));
}
