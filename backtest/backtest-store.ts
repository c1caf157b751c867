/**
 * Backtest results to the configured store (`qilin backtest --save`):
 * ClickHouse when `clickhouseUrl` is set, else the embedded chdb store
 * (cli/store-factory.ts), migrated first (migration 7 creates `backtests`
 * and `backtest_trades`, backtest/clickhouse-ddl.ts).
 *
 * Per run, the trades are inserted before the `backtests` row: a run whose
 * row is there has all its trades, and a save that died halfway leaves
 * trades without a run (invisible to queries that start from `backtests`)
 * rather than a run with missing trades. Saving the same run again (same id)
 * adds its rows again; both tables are ReplacingMergeTrees keyed by the run
 * (and the fill), so each reads once under FINAL.
 *
 * The embedded store is held by one process at a time: while a kernel runs
 * on it, opening fails with QLN_STORE_FAILED saying so (stop the kernel, or
 * point `clickhouseUrl` at a ClickHouse server). The store is opened and
 * migrated before a run starts, so that error comes first, not after it.
 */
import type { QilinConfig } from '../config/config.js';
import { ErrorCodes, QilinError, hasCode } from '../kernel/errors.js';
import type { EventStore } from '../kernel/event-store.js';
import type { JsonRow } from '../adapters/clickhouse/row-format.js';
import { chdbPath, createStore, storeKind } from '../cli/store-factory.js';
import { backtestRow, backtestTradeRows } from './clickhouse-ddl.js';
import type { Execution } from './portfolio.js';
import type { BacktestReport } from './report.js';

/** A store that takes rows of any table (both store adapters provide `insertRows`). */
export interface BacktestStore extends EventStore {
  insertRows(table: string, rows: readonly JsonRow[]): Promise<void>;
}

/** One run to save. */
export interface SavedRun {
  report: BacktestReport;
  executions: readonly Execution[];
  /** The sweep the run is a point of; '' or absent for a single run. */
  sweepId?: string;
}

/** Rows per insert: a sweep's reports carry their equity curves. */
const RUNS_PER_INSERT = 200;
const TRADES_PER_INSERT = 50_000;

/** The configured store, opened (writable) and migrated. */
export async function openBacktestStore(config: QilinConfig): Promise<BacktestStore> {
  const store = await createStore(config);
  if (typeof (store as Partial<BacktestStore>).insertRows !== 'function') {
    await store.close();
    throw new QilinError(
      ErrorCodes.STORE_FAILED,
      'the configured store cannot take backtest rows (no insertRows)',
    );
  }
  try {
    await store.migrate();
  } catch (err) {
    await store.close();
    // chdb does not always say why it cannot open (its lock message goes to
    // stderr only): name the usual reason.
    if (
      storeKind(config) === 'chdb' &&
      hasCode(err, ErrorCodes.STORE_FAILED) &&
      !/in use by another process/.test((err as Error).message)
    ) {
      throw new QilinError(
        ErrorCodes.STORE_FAILED,
        `${(err as Error).message} (the embedded store at ${chdbPath(config)} is held by one process at a time: if a kernel or another qilin command runs on it, stop it, or set clickhouseUrl to save to a ClickHouse server)`,
        { cause: err, details: { store: 'chdb', path: chdbPath(config) } },
      );
    }
    throw err;
  }
  return store as BacktestStore;
}

/**
 * Insert the runs: all trades first (in chunks), then the `backtests` rows
 * (see the file comment). `finishedUs`: wall time, µs, stored as `ts_us`.
 * Returns the rows written.
 */
export async function saveBacktests(
  store: Pick<BacktestStore, 'insertRows'>,
  runs: readonly SavedRun[],
  finishedUs: number,
): Promise<{ runs: number; trades: number }> {
  let trades = 0;
  for (const r of runs) {
    const rows = backtestTradeRows(r.report.meta.id, r.executions);
    for (let i = 0; i < rows.length; i += TRADES_PER_INSERT) {
      await store.insertRows('backtest_trades', rows.slice(i, i + TRADES_PER_INSERT));
    }
    trades += rows.length;
  }
  for (let i = 0; i < runs.length; i += RUNS_PER_INSERT) {
    await store.insertRows(
      'backtests',
      runs
        .slice(i, i + RUNS_PER_INSERT)
        .map((r) => backtestRow(r.report, finishedUs, r.sweepId ?? '')),
    );
  }
  return { runs: runs.length, trades };
}
