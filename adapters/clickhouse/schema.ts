import { invalidArgument } from '../../kernel/errors.js';

/**
 * The history schema as numbered, append-only migrations, shared by the
 * ClickHouse and the chdb store.
 *
 * Portability (the same text runs on ClickHouse 18.16, on current ClickHouse
 * and in chdb): no DateTime64 (timestamps are Int64 µs plus derived DateTime /
 * Date columns the writer fills), no LowCardinality, no Nullable, no JSON
 * type (features are a JSON String), MergeTree with
 * `PARTITION BY … ORDER BY …`. Every statement is `IF NOT EXISTS` so a
 * migration that died halfway can simply run again.
 *
 * Rules for adding one: append a new version, never edit an applied one; use
 * `ALTER TABLE … ADD COLUMN IF NOT EXISTS` (18.16 has it) for new columns.
 */

/** One schema version: statements run in order; `{db}` is the database. */
export interface Migration {
  version: number;
  description: string;
  statements: readonly string[];
}

const MERGE_TREE_BY_SYM = 'ENGINE = MergeTree PARTITION BY toYYYYMM(date) ORDER BY (sym, ts_us)';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'ticks, predictions, signals, quality_events, metrics',
    statements: [
      `CREATE TABLE IF NOT EXISTS {db}.ticks (
  type String,
  sym String,
  venue String,
  seq UInt64,
  ts_us Int64,
  recv_us Int64,
  ts DateTime,
  date Date,
  px Float64,
  qty Float64,
  side Int8,
  bid Float64,
  bid_qty Float64,
  ask Float64,
  ask_qty Float64
) ${MERGE_TREE_BY_SYM}`,
      `CREATE TABLE IF NOT EXISTS {db}.predictions (
  sym String,
  ts_us Int64,
  ts DateTime,
  date Date,
  model String,
  model_version String,
  score Float64,
  features String,
  src_seq UInt64,
  src_ts_us Int64,
  lat_recv_us Int64,
  lat_feat_us Int64,
  lat_infer_us Int64
) ${MERGE_TREE_BY_SYM}`,
      `CREATE TABLE IF NOT EXISTS {db}.signals (
  id String,
  strategy String,
  sym String,
  ts_us Int64,
  ts DateTime,
  date Date,
  side String,
  strength Float64,
  ref_px Float64,
  qty Float64,
  account String,
  model String,
  model_version String,
  pred_score Float64,
  quality_score Float64,
  status String,
  reason String,
  src_seq UInt64,
  src_ts_us Int64,
  lat_recv_us Int64,
  lat_feat_us Int64,
  lat_infer_us Int64,
  lat_risk_us Int64,
  lat_pub_us Int64
) ${MERGE_TREE_BY_SYM}`,
      `CREATE TABLE IF NOT EXISTS {db}.quality_events (
  sym String,
  ts_us Int64,
  ts DateTime,
  date Date,
  score Float64,
  issues Array(String),
  ticks UInt32,
  gaps UInt32,
  crossed UInt32,
  out_of_order UInt32,
  stale UInt32,
  spikes UInt32,
  src_seq UInt64,
  src_ts_us Int64,
  lat_recv_us Int64
) ${MERGE_TREE_BY_SYM}`,
      `CREATE TABLE IF NOT EXISTS {db}.metrics (
  ts_us Int64,
  ts DateTime,
  date Date,
  name String,
  labels String,
  value Float64
) ENGINE = MergeTree PARTITION BY toYYYYMM(date) ORDER BY (name, ts_us)`,
    ],
  },
];

/** How a store runs schema statements (both stores provide it). */
export interface SchemaExecutor {
  /** Run a statement that returns nothing (DDL, INSERT … VALUES). */
  command(sql: string): Promise<void>;
  /** Run a SELECT, rows as JSON objects. */
  select(sql: string): Promise<Array<Record<string, unknown>>>;
}

const DB_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Reject a database name that is not a plain identifier (it is spliced into SQL). */
export function checkDatabaseName(db: string): string {
  if (!DB_NAME.test(db)) invalidArgument('database', db, 'an identifier [A-Za-z_][A-Za-z0-9_]*');
  return db;
}

/**
 * Bring database `db` to the newest schema: create it and
 * `schema_migrations(version, applied_at)`, then run every migration whose
 * version is not recorded yet, in order, recording each after its statements
 * succeeded. Idempotent. Returns the versions it applied.
 *
 * Two processes migrating at once may both record a version; every statement
 * is IF NOT EXISTS, and versions are read with DISTINCT, so that is harmless.
 */
export async function migrateSchema(
  exec: SchemaExecutor,
  db: string,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number[]> {
  checkDatabaseName(db);
  await exec.command(`CREATE DATABASE IF NOT EXISTS ${db}`);
  await exec.command(
    `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (version UInt32, applied_at DateTime) ENGINE = MergeTree ORDER BY version`,
  );
  const rows = await exec.select(`SELECT DISTINCT version FROM ${db}.schema_migrations`);
  const done = new Set(rows.map((r) => Number(r['version'])));
  const applied: number[] = [];
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (done.has(m.version)) continue;
    for (const stmt of m.statements) await exec.command(stmt.replaceAll('{db}', db));
    await exec.command(
      `INSERT INTO ${db}.schema_migrations (version, applied_at) VALUES (${m.version}, ${Math.floor(Date.now() / 1000)})`,
    );
    applied.push(m.version);
  }
  return applied;
}
