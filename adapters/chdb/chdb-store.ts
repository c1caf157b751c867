import { mkdirSync } from 'node:fs';
import { firstLine, storeFailed } from '../clickhouse/store-failure.js';
import { Session } from 'chdb';
import type { EventStore, StoreBatch } from '../../kernel/event-store.js';
import { ErrorCodes, QilinError, invalidArgument } from '../../kernel/errors.js';
import { formatBatchText, toNdjson, type JsonRow } from '../clickhouse/row-format.js';
import {
  MIGRATIONS,
  applyTtl,
  checkDatabaseName,
  checkTableName,
  checkTtlDays,
  migrateSchema,
  type Migration,
  type SchemaExecutor,
  type TtlDays,
  type TtlResult,
} from '../clickhouse/schema.js';

/** Options of {@link ChdbStore}. */
export interface ChdbStoreOptions {
  /** Data directory of the embedded engine (created if missing). */
  path: string;
  /** Database holding the tables (created by `migrate()`). */
  database: string;
  /**
   * Days of history per table (`TTL date + INTERVAL n DAY`), set by
   * `migrate()` when the server supports TTL clauses (ClickHouse 19.6+,
   * chdb); ignored on older servers (see `lastTtl`). Default: none.
   */
  ttlDays?: TtlDays;
  /**
   * Open the engine read-only (`--readonly=1`): for `qilin sql`. A read-only
   * store cannot `migrate()` or `insert()`.
   */
  readonly?: boolean;
}

/**
 * EventStore over chdb: ClickHouse in-process, same DDL and rows as the
 * ClickHouse store (adapters/clickhouse/schema.ts, row-format.ts).
 *
 * Constraints of the engine, and what they mean here:
 * - One data directory per process, held exclusively (a `status` file lock):
 *   `qilin sql` cannot open the embedded store while a kernel holds it; the
 *   open fails with QLN_STORE_FAILED saying so.
 * - Heavy and partly synchronous: it lives in the store worker (and the
 *   `qilin sql` process), never on the kernel's main thread. Inserts and
 *   queries use the async API (`insert` raw JSONEachRow, `queryAsync`), which
 *   runs on a libuv thread.
 * - Loading the native addon in a worker thread crashes the process when that
 *   worker exits unless another thread of the process also holds the addon:
 *   StoreClient imports `chdb` on the main thread (importing only maps the
 *   library; nothing runs there) before it starts the worker.
 * - Read-only queries: a writable session cannot switch to readonly and back
 *   (readonly=1 also forbids resetting it), so `query()` on a writable store
 *   only accepts statements that start with SELECT / WITH / SHOW / DESCRIBE /
 *   EXPLAIN / EXISTS; open with `readonly: true` for a guarantee from the
 *   engine itself.
 */
export class ChdbStore implements EventStore {
  readonly database: string;
  readonly ttlDays: TtlDays;
  /** What the last `migrate()` did about TTL (undefined: none configured). */
  lastTtl: TtlResult | undefined;
  readonly path: string;
  private readonly readonly: boolean;
  private session: Session | undefined;
  private closed = false;

  constructor(opts: ChdbStoreOptions) {
    if (typeof opts.path !== 'string' || opts.path === '')
      invalidArgument('path', opts.path, 'a data directory path');
    this.database = checkDatabaseName(opts.database);
    this.ttlDays = checkTtlDays(opts.ttlDays);
    this.path = opts.path;
    this.readonly = opts.readonly === true;
  }

  /** Bring the schema up to date (`migrations`: a prefix of MIGRATIONS, for tests of an upgrade). */
  async migrate(migrations: readonly Migration[] = MIGRATIONS): Promise<void> {
    const s = this.open();
    const exec: SchemaExecutor = {
      command: async (sql) => {
        try {
          await s.queryAsync(sql, { format: 'JSONEachRow' });
        } catch (cause) {
          throw storeFailed('chdb', `migration statement failed: ${firstLine(sql)}`, cause);
        }
      },
      select: (sql) => this.run(sql),
    };
    await migrateSchema(exec, this.database, migrations);
    if (Object.keys(this.ttlDays).length > 0)
      this.lastTtl = await applyTtl(exec, this.database, this.ttlDays);
    // Unqualified table names in queries (the documented examples) resolve here.
    await this.run(`USE ${this.database}`);
  }

  async insert(batch: StoreBatch): Promise<void> {
    const s = this.open();
    for (const { table, rows, text } of formatBatchText(batch)) {
      try {
        await s.insert({
          table: `${this.database}.${table}`,
          values: text,
          format: 'JSONEachRow',
        });
      } catch (cause) {
        throw storeFailed(
          'chdb',
          `insert of ${rows} rows into ${this.database}.${table} failed`,
          cause,
          { table, rows },
        );
      }
    }
  }

  // ---- rows of tables outside StoreBatch (backtest results: backtest/backtest-store.ts) ----

  /** Insert JSONEachRow objects into `table` of this database; rejects QLN_STORE_FAILED. */
  async insertRows(table: string, rows: readonly JsonRow[]): Promise<void> {
    checkTableName(table);
    if (rows.length === 0) return;
    const s = this.open();
    try {
      await s.insert({
        table: `${this.database}.${table}`,
        values: toNdjson(rows),
        format: 'JSONEachRow',
      });
    } catch (cause) {
      throw storeFailed(
        'chdb',
        `insert of ${rows.length} rows into ${this.database}.${table} failed`,
        cause,
        { table, rows: rows.length },
      );
    }
  }
  // ---- end of rows outside StoreBatch ----

  async query(sql: string): Promise<Array<Record<string, unknown>>> {
    if (!this.readonly && !READ_STATEMENT.test(sql)) {
      throw new QilinError(
        ErrorCodes.STORE_FAILED,
        `query refused: only read statements (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS) may run, got: ${firstLine(sql)}`,
        { details: { store: 'chdb', sql: firstLine(sql) } },
      );
    }
    return this.run(sql);
  }

  ping(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return this.run('SELECT 1 AS ok').then(
      () => true,
      () => false,
    );
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.session?.close();
    this.session = undefined;
    return Promise.resolve();
  }

  private open(): Session {
    if (this.closed) {
      throw new QilinError(ErrorCodes.STORE_FAILED, `chdb store at ${this.path} is closed`, {
        details: { store: 'chdb', path: this.path },
      });
    }
    if (this.session !== undefined) return this.session;
    try {
      mkdirSync(this.path, { recursive: true });
      const s = new Session(this.path, {
        connectionArgs: [
          '--output_format_json_quote_64bit_integers=0',
          ...(this.readonly ? ['--readonly=1'] : []),
        ],
      });
      // A fresh data directory has no database yet: USE it only when it is there.
      const exists = s.query(`EXISTS DATABASE ${this.database}`, 'TSV').trim() === '1';
      if (exists) s.query(`USE ${this.database}`);
      this.session = s;
      return s;
    } catch (cause) {
      const msg = cause instanceof Error ? cause.message : String(cause);
      const inUse = /lock|another server instance/i.test(msg + String((cause as Error)?.cause));
      throw new QilinError(
        ErrorCodes.STORE_FAILED,
        inUse
          ? `embedded store at ${this.path} is in use by another process (a running kernel?); stop it or set clickhouseUrl`
          : `cannot open embedded store at ${this.path}: ${msg}`,
        { cause, details: { store: 'chdb', path: this.path } },
      );
    }
  }

  private async run(sql: string): Promise<Array<Record<string, unknown>>> {
    const s = this.open();
    let text: string;
    try {
      text = (await s.queryAsync(sql, { format: 'JSONEachRow' })).text();
    } catch (cause) {
      throw storeFailed('chdb', `query failed: ${firstLine(sql)}`, cause);
    }
    const rows: Array<Record<string, unknown>> = [];
    for (const line of text.split('\n')) {
      if (line !== '') rows.push(JSON.parse(line) as Record<string, unknown>);
    }
    return rows;
  }
}

const READ_STATEMENT = /^\s*(\(\s*)*(SELECT|WITH|SHOW|DESC|DESCRIBE|EXPLAIN|EXISTS)\b/i;
