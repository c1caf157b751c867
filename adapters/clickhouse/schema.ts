import { invalidArgument } from '../../kernel/errors.js';
import { backtestMigration } from '../../backtest/clickhouse-ddl.js';

/**
 * The history schema as numbered, append-only migrations, shared by the
 * ClickHouse and the chdb store.
 *
 * Portability (the same text runs on ClickHouse 18.16, on current ClickHouse
 * and in chdb): no DateTime64 (timestamps are Int64 µs plus derived DateTime /
 * Date columns the writer fills), no LowCardinality, no Nullable, no JSON
 * type (features are a JSON String), MergeTree with
 * `PARTITION BY … ORDER BY …`. Every step can run twice, so a migration that
 * died halfway can simply run again: CREATE statements are `IF NOT EXISTS`;
 * new columns are {@link AddColumn} steps, which the runner skips when
 * `system.columns` already lists the column (ClickHouse 18.16 has no
 * `ADD COLUMN IF NOT EXISTS`: it is a syntax error there).
 *
 * Rules for adding one: append a new version, never edit an applied one; add
 * columns with {@link addColumn} and always with a DEFAULT, so old rows (read
 * as the DEFAULT) and old writers keep working. Beware: on 18.16 a
 * JSONEachRow insert *without a column list* that omits a column stores the
 * type's zero ('' / 0), not the DEFAULT (`input_format_defaults_for_omitted_fields`
 * came in 19.x); an INSERT with a column list, and current ClickHouse / chdb,
 * apply the DEFAULT. Queries must accept both (see `kind` below).
 */

/** A column added to an existing table; skipped when the table already has it. */
export interface AddColumn {
  addColumn: {
    /** Table in `{db}`. */
    table: string;
    /** Column name (an identifier). */
    column: string;
    /** Type and DEFAULT, e.g. `UInt32 DEFAULT 0`. */
    definition: string;
  };
}

/**
 * A table rebuilt under a new engine / sorting key, rows kept: create
 * `<table>_new`, copy every row, swap the two with one `RENAME TABLE`
 * (18.16 has no `EXCHANGE TABLES`), drop the old one. Skipped when
 * `system.tables` already shows `engine` for the table; a run that died
 * halfway is picked up where it stopped (a half-copied `_new` is dropped and
 * copied again; a `_new` left alone after the rename is renamed into place).
 * The copy is `INSERT … SELECT`: minutes for a big table, and rows a second
 * writer inserts into the old table meanwhile are lost: migrate with the
 * kernels stopped (`qilin migrate`).
 */
export interface RebuildTable {
  rebuildTable: {
    /** Table in `{db}`. */
    table: string;
    /** Engine name `system.tables` shows once rebuilt, e.g. `ReplacingMergeTree`. */
    engine: string;
    /** Column list and engine clause, as after `CREATE TABLE … ` (no name). */
    definition: string;
  };
}

/** One step of a migration: a statement (`{db}` is the database), a new column, a rebuilt table. */
export type MigrationStep = string | AddColumn | RebuildTable;

/** One schema version: steps run in order. */
export interface Migration {
  version: number;
  description: string;
  statements: readonly MigrationStep[];
}

/** An {@link AddColumn} step. */
export function addColumn(table: string, column: string, definition: string): AddColumn {
  return { addColumn: { table, column, definition } };
}

const MERGE_TREE_BY_SYM = 'ENGINE = MergeTree PARTITION BY toYYYYMM(date) ORDER BY (sym, ts_us)';

/**
 * What identifies one tick (docs/adr/0005-exactly-once-ticks.md): the venue's
 * sequence number is per symbol and shared by its trades and quotes, so
 * (sym, venue, seq, type); `ts_us` keeps ticks apart across a venue's
 * sequence reset. Led by (sym, ts_us), the order queries filter on.
 */
export const TICK_KEY = ['sym', 'ts_us', 'venue', 'seq', 'type'] as const;

/** The rows of `bars_1m_agg` from trades of `from` (migration 4: view and backfill). */
function BARS_SELECT(from: string): string {
  return `SELECT
  sym,
  toStartOfMinute(ts) AS minute,
  date,
  argMinState(px, ts_us) AS open,
  maxState(px) AS high,
  minState(px) AS low,
  argMaxState(px, ts_us) AS close,
  sumState(qty) AS volume,
  countState() AS trades,
  sumState(px * qty) AS px_qty
FROM ${from}
WHERE type = 'trade'
GROUP BY sym, minute, date`;
}

/** The rows of `quality_daily_agg` from window rows of `from` (migration 4). */
function QUALITY_SELECT(from: string): string {
  return `SELECT
  date,
  sym,
  countState() AS windows,
  sumState(score) AS score_sum,
  minState(score) AS min_score,
  sumState(ticks) AS ticks,
  sumState(gaps) AS gaps,
  sumState(crossed) AS crossed,
  sumState(out_of_order) AS out_of_order,
  sumState(stale) AS stale,
  sumState(spikes) AS spikes,
  sumState(bad_values) AS bad_values,
  sumState(locked) AS locked,
  sumState(outside_band) AS outside_band,
  sumState(time_gaps) AS time_gaps,
  sumState(skew) AS skew,
  sumState(duplicates) AS duplicates,
  sumState(resets) AS resets,
  sumState(quarantined) AS quarantined,
  sumState(nonfinite) AS nonfinite
FROM ${from}
WHERE kind IN ('window', '')
GROUP BY date, sym`;
}

/** The columns of `ticks` (migration 1 creates them, migration 3 keeps them when it rebuilds the table). */
const TICK_COLUMNS = `(
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
)`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'ticks, predictions, signals, quality_events, metrics',
    statements: [
      `CREATE TABLE IF NOT EXISTS {db}.ticks ${TICK_COLUMNS} ${MERGE_TREE_BY_SYM}`,
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
  {
    version: 2,
    description: 'quality_events: event kind, session, and the extended per-check counters',
    statements: [
      // 'window' (window end), 'change' (quality state changed), 'quarantine'
      // (a tick held out of the window), 'reset' (venue sequence reset: new
      // session). '' is a window row written by an old writer on 18.16.
      addColumn('quality_events', 'kind', "String DEFAULT 'window'"),
      // Per-symbol session number, +1 at each sequence reset.
      addColumn('quality_events', 'session', 'UInt32 DEFAULT 0'),
      addColumn('quality_events', 'bad_values', 'UInt32 DEFAULT 0'),
      // Locked quotes (bid == ask).
      addColumn('quality_events', 'locked', 'UInt32 DEFAULT 0'),
      // Trades outside the last quote's [bid, ask] band.
      addColumn('quality_events', 'outside_band', 'UInt32 DEFAULT 0'),
      // Gaps in exchange time far beyond the symbol's observed rate.
      addColumn('quality_events', 'time_gaps', 'UInt32 DEFAULT 0'),
      // Exchange-to-receive skew out of bounds (negative or too large).
      addColumn('quality_events', 'skew', 'UInt32 DEFAULT 0'),
      addColumn('quality_events', 'duplicates', 'UInt32 DEFAULT 0'),
      addColumn('quality_events', 'resets', 'UInt32 DEFAULT 0'),
      addColumn('quality_events', 'quarantined', 'UInt32 DEFAULT 0'),
      // User formula results that were NaN / Infinity.
      addColumn('quality_events', 'nonfinite', 'UInt32 DEFAULT 0'),
      // For kind 'quarantine': the offending tick as JSON.
      addColumn('quality_events', 'raw', "String DEFAULT ''"),
    ],
  },
  {
    version: 3,
    description:
      'ticks: ReplacingMergeTree keyed by the tick (a redelivered tick stored twice reads once under FINAL)',
    statements: [
      {
        rebuildTable: {
          table: 'ticks',
          engine: 'ReplacingMergeTree',
          definition: `${TICK_COLUMNS} ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(date) ORDER BY (${TICK_KEY.join(', ')})`,
        },
      },
    ],
  },
  {
    version: 4,
    description:
      'materialized views: 1-minute trade bars (bars_1m_agg) and daily quality per symbol (quality_daily_agg)',
    statements: [
      // AggregatingMergeTree of -State columns (merged by the engine in the
      // background, read with -Merge + GROUP BY: docs/sql.md). Fed by a
      // materialized view on every insert into ticks / quality_events: a tick
      // inserted twice (a replayed batch) is counted twice here, while
      // `ticks FINAL` reads it once; the exact bars query stays the one over
      // `ticks FINAL`.
      `CREATE TABLE IF NOT EXISTS {db}.bars_1m_agg (
  sym String,
  minute DateTime,
  date Date,
  open AggregateFunction(argMin, Float64, Int64),
  high AggregateFunction(max, Float64),
  low AggregateFunction(min, Float64),
  close AggregateFunction(argMax, Float64, Int64),
  volume AggregateFunction(sum, Float64),
  trades AggregateFunction(count),
  px_qty AggregateFunction(sum, Float64)
) ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(date) ORDER BY (sym, minute)`,
      `CREATE TABLE IF NOT EXISTS {db}.quality_daily_agg (
  date Date,
  sym String,
  windows AggregateFunction(count),
  score_sum AggregateFunction(sum, Float64),
  min_score AggregateFunction(min, Float64),
  ticks AggregateFunction(sum, UInt32),
  gaps AggregateFunction(sum, UInt32),
  crossed AggregateFunction(sum, UInt32),
  out_of_order AggregateFunction(sum, UInt32),
  stale AggregateFunction(sum, UInt32),
  spikes AggregateFunction(sum, UInt32),
  bad_values AggregateFunction(sum, UInt32),
  locked AggregateFunction(sum, UInt32),
  outside_band AggregateFunction(sum, UInt32),
  time_gaps AggregateFunction(sum, UInt32),
  skew AggregateFunction(sum, UInt32),
  duplicates AggregateFunction(sum, UInt32),
  resets AggregateFunction(sum, UInt32),
  quarantined AggregateFunction(sum, UInt32),
  nonfinite AggregateFunction(sum, UInt32)
) ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(date) ORDER BY (sym, date)`,
      // Backfill from the rows already stored, once: only while the target is
      // empty, and before the view exists (migrate with the kernels stopped,
      // as for migration 3). Re-running after a crash skips a filled target.
      `INSERT INTO {db}.bars_1m_agg ${BARS_SELECT('{db}.ticks FINAL')} HAVING (SELECT count() FROM {db}.bars_1m_agg) = 0`,
      `INSERT INTO {db}.quality_daily_agg ${QUALITY_SELECT('{db}.quality_events')} HAVING (SELECT count() FROM {db}.quality_daily_agg) = 0`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.bars_1m_mv TO {db}.bars_1m_agg AS ${BARS_SELECT('{db}.ticks')}`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.quality_daily_mv TO {db}.quality_daily_agg AS ${QUALITY_SELECT('{db}.quality_events')}`,
    ],
  },
  {
    version: 5,
    description:
      'audit: who did what, why, when and from where (kernel/audit-event.ts; docs/security.md)',
    statements: [
      // ReplacingMergeTree keyed by (ts_us, id): an event written twice (a
      // JetStream redelivery, a replayed spill file) reads once under FINAL.
      // Ordered by time, the order `qilin audit` reads it in.
      `CREATE TABLE IF NOT EXISTS {db}.audit (
  id String,
  ts_us Int64,
  ts DateTime,
  date Date,
  actor String,
  action String,
  target String,
  outcome String,
  reason String,
  source String,
  detail String
) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(date) ORDER BY (ts_us, id)`,
    ],
  },
  {
    version: 6,
    description:
      "predictions: the model's role (live, or shadow: compared, never trading) and prediction interval (docs/models.md)",
    statements: [
      addColumn('predictions', 'model_role', "String DEFAULT 'live'"),
      // On the score's scale; NULL when the model outputs no interval.
      addColumn('predictions', 'lower', 'Nullable(Float64)'),
      addColumn('predictions', 'upper', 'Nullable(Float64)'),
    ],
  },
  // Backtest results (`qilin backtest --save`): `backtests` and
  // `backtest_trades`, DDL and row builders in backtest/clickhouse-ddl.ts.
  backtestMigration(7),
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

/** A table name a store may interpolate into a statement (same rule as the database's). */
export function checkTableName(table: string): string {
  if (!DB_NAME.test(table)) invalidArgument('table', table, 'an identifier [A-Za-z_][A-Za-z0-9_]*');
  return table;
}

/**
 * Bring database `db` to the newest schema: create it and
 * `schema_migrations(version, applied_at)`, then run every migration whose
 * version is not recorded yet, in order, recording each after its statements
 * succeeded. Idempotent. Returns the versions it applied.
 *
 * Two processes migrating at once may both record a version; every step can
 * run twice, and versions are read with DISTINCT, so that is mostly harmless
 * (two ADD COLUMNs racing past the same check: the loser fails, a re-run
 * then skips it).
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
    for (const step of m.statements) await runStep(exec, db, step);
    await exec.command(
      `INSERT INTO ${db}.schema_migrations (version, applied_at) VALUES (${m.version}, ${Math.floor(Date.now() / 1000)})`,
    );
    applied.push(m.version);
  }
  return applied;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

async function runStep(exec: SchemaExecutor, db: string, step: MigrationStep): Promise<void> {
  if (typeof step === 'string') {
    await exec.command(step.replaceAll('{db}', db));
    return;
  }
  if ('rebuildTable' in step) {
    await rebuildTable(exec, db, step.rebuildTable);
    return;
  }
  const { table, column, definition } = step.addColumn;
  if (!IDENT.test(table)) invalidArgument('addColumn.table', table, 'an identifier');
  if (!IDENT.test(column)) invalidArgument('addColumn.column', column, 'an identifier');
  const have = await exec.select(
    `SELECT name FROM system.columns WHERE database = '${db}' AND table = '${table}' AND name = '${column}'`,
  );
  if (have.length > 0) return;
  await exec.command(`ALTER TABLE ${db}.${table} ADD COLUMN ${column} ${definition}`);
}

async function tableEngine(
  exec: SchemaExecutor,
  db: string,
  table: string,
): Promise<string | undefined> {
  const rows = await exec.select(
    `SELECT engine FROM system.tables WHERE database = '${db}' AND name = '${table}'`,
  );
  return rows.length === 0 ? undefined : String(rows[0]!['engine']);
}

async function rebuildTable(
  exec: SchemaExecutor,
  db: string,
  step: RebuildTable['rebuildTable'],
): Promise<void> {
  const { table, engine, definition } = step;
  if (!IDENT.test(table)) invalidArgument('rebuildTable.table', table, 'an identifier');
  const fresh = `${table}_new`;
  const old = `${table}_old`;
  let current = await tableEngine(exec, db, table);
  if (current === undefined && (await tableEngine(exec, db, fresh)) === engine) {
    // Died between the two renames of a previous run.
    await exec.command(`RENAME TABLE ${db}.${fresh} TO ${db}.${table}`);
    current = engine;
  }
  if (current !== engine) {
    await exec.command(`DROP TABLE IF EXISTS ${db}.${fresh}`);
    await exec.command(`CREATE TABLE ${db}.${fresh} ${definition}`);
    if (current !== undefined) {
      const cols = (
        await exec.select(
          `SELECT name FROM system.columns WHERE database = '${db}' AND table = '${fresh}'`,
        )
      ).map((r) => String(r['name']));
      const list = cols.join(', ');
      await exec.command(`INSERT INTO ${db}.${fresh} (${list}) SELECT ${list} FROM ${db}.${table}`);
      await exec.command(`DROP TABLE IF EXISTS ${db}.${old}`);
      await exec.command(
        `RENAME TABLE ${db}.${table} TO ${db}.${old}, ${db}.${fresh} TO ${db}.${table}`,
      );
    } else {
      await exec.command(`RENAME TABLE ${db}.${fresh} TO ${db}.${table}`);
    }
  }
  await exec.command(`DROP TABLE IF EXISTS ${db}.${old}`);
}

/** ClickHouse release that brought table TTL clauses (`TTL date + INTERVAL n DAY`). */
export const TTL_SINCE: readonly [number, number] = [19, 6];

/** Tables a TTL may be set on (each has a `date` column). */
export const TTL_TABLES = [
  'ticks',
  'predictions',
  'signals',
  'quality_events',
  'metrics',
  'audit',
  'bars_1m_agg',
  'quality_daily_agg',
] as const;
export type TtlTable = (typeof TTL_TABLES)[number];

/** Days of history kept per table; a table not named keeps everything. */
export type TtlDays = Partial<Record<TtlTable, number>>;

/** `version()` (`major.minor…`) at or past {@link TTL_SINCE}: chdb yes, Debian's 18.16 no. */
export function ttlSupported(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map((x) => Number.parseInt(x, 10));
  return major > TTL_SINCE[0] || (major === TTL_SINCE[0] && minor >= TTL_SINCE[1]);
}

/** Check a TTL map: known tables, whole days from 1 to 36 500 (QLN_INVALID_ARGUMENT). */
export function checkTtlDays(raw: unknown): TtlDays {
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    invalidArgument(
      'storeTtlDays',
      raw,
      `an object {table: days}, tables ${TTL_TABLES.join(', ')}`,
    );
  const out: TtlDays = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!(TTL_TABLES as readonly string[]).includes(k))
      invalidArgument(k, k, `a table of ${TTL_TABLES.join(', ')}`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 36_500)
      invalidArgument(k, v, 'whole days from 1 to 36500');
    out[k as TtlTable] = v;
  }
  return out;
}

/** What {@link applyTtl} did. */
export interface TtlResult {
  version: string;
  supported: boolean;
  /** Tables given a TTL now (empty when unsupported or none configured). */
  applied: TtlTable[];
}

/**
 * Set `TTL date + INTERVAL n DAY` on each configured table of `db`, only when
 * the server supports TTL clauses (≥ 19.6); on older servers nothing is run
 * and `supported` is false (the caller says so). Idempotent (`MODIFY TTL`
 * replaces the clause); a table removed from the map keeps its old TTL.
 */
export async function applyTtl(
  exec: SchemaExecutor,
  db: string,
  days: TtlDays,
): Promise<TtlResult> {
  checkDatabaseName(db);
  const rows = await exec.select('SELECT version() AS v');
  const v = rows[0]?.['v'];
  const version = typeof v === 'string' ? v : '';
  const supported = ttlSupported(version);
  const applied: TtlTable[] = [];
  if (!supported) return { version, supported, applied };
  for (const table of TTL_TABLES) {
    const n = days[table];
    if (n === undefined) continue;
    await exec.command(`ALTER TABLE ${db}.${table} MODIFY TTL date + INTERVAL ${n} DAY`);
    applied.push(table);
  }
  return { version, supported, applied };
}
