import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { firstLine, storeFailed } from './store-failure.js';
import type { EventStore, StoreBatch } from '../../kernel/event-store.js';
import { invalidArgument } from '../../kernel/errors.js';
import { formatBatch, type JsonRow } from './row-format.js';
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
} from './schema.js';

/** Options of {@link ClickHouseStore}. */
export interface ClickHouseStoreOptions {
  /** ClickHouse HTTP URL, e.g. `http://127.0.0.1:18123`. */
  url: string;
  /** Database holding the tables (created by `migrate()`). */
  database: string;
  /**
   * Days of history per table (`TTL date + INTERVAL n DAY`), set by
   * `migrate()` when the server supports TTL clauses (ClickHouse 19.6+,
   * chdb); ignored on older servers (see `lastTtl`). Default: none.
   */
  ttlDays?: TtlDays;
  /** Per-request timeout; an insert that times out is retried (at-least-once). Default 30 000. */
  requestTimeoutMs?: number;
}

/**
 * EventStore over ClickHouse's HTTP interface (`@clickhouse/client`).
 *
 * Works against ClickHouse 18.16 (Debian) and current releases. Two clients:
 * `admin` has no default database (migrations create it; inserts use
 * `db.table`), `reader` has `database` set so quants' queries can name tables
 * unqualified. Queries run with `readonly=1`, which 18.16 accepts per request:
 * a `qilin sql "DROP …"` is refused by the server itself.
 *
 * 64-bit integers come back as JSON numbers
 * (`output_format_json_quote_64bit_integers=0`), the same as chdb; every
 * stored value (µs timestamps, sequence numbers) is below 2^53.
 */
export class ClickHouseStore implements EventStore {
  readonly database: string;
  readonly ttlDays: TtlDays;
  /** What the last `migrate()` did about TTL (undefined: none configured). */
  lastTtl: TtlResult | undefined;
  private readonly admin: ClickHouseClient;
  private readonly reader: ClickHouseClient;
  private closed = false;

  constructor(opts: ClickHouseStoreOptions) {
    try {
      const u = new URL(opts.url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
    } catch {
      invalidArgument('url', opts.url, 'an http:// or https:// ClickHouse URL');
    }
    this.database = checkDatabaseName(opts.database);
    this.ttlDays = checkTtlDays(opts.ttlDays);
    const timeout = opts.requestTimeoutMs ?? 30_000;
    if (!Number.isInteger(timeout) || timeout < 1)
      invalidArgument('requestTimeoutMs', timeout, 'a positive integer');
    const common = {
      url: opts.url,
      request_timeout: timeout,
      application: 'qilin',
      // Failures surface as QLN_STORE_FAILED to the caller, which logs them
      // with context; the client's own console logging would only duplicate.
      log: { level: ClickHouseLogLevel.OFF },
      clickhouse_settings: { output_format_json_quote_64bit_integers: 0 as const },
    };
    this.admin = createClient(common);
    this.reader = createClient({ ...common, database: this.database });
  }

  /** Bring the schema up to date (`migrations`: a prefix of MIGRATIONS, for tests of an upgrade). */
  async migrate(migrations: readonly Migration[] = MIGRATIONS): Promise<void> {
    const exec: SchemaExecutor = {
      command: async (sql) => {
        try {
          await this.admin.command({ query: sql });
        } catch (cause) {
          throw storeFailed('clickhouse', `migration statement failed: ${firstLine(sql)}`, cause);
        }
      },
      select: (sql) => this.run(this.admin, sql, false),
    };
    await migrateSchema(exec, this.database, migrations);
    if (Object.keys(this.ttlDays).length > 0)
      this.lastTtl = await applyTtl(exec, this.database, this.ttlDays);
  }

  async insert(batch: StoreBatch): Promise<void> {
    for (const { table, rows } of formatBatch(batch)) {
      try {
        await this.admin.insert({
          table: `${this.database}.${table}`,
          values: rows,
          format: 'JSONEachRow',
        });
      } catch (cause) {
        throw storeFailed(
          'clickhouse',
          `insert of ${rows.length} rows into ${this.database}.${table} failed`,
          cause,
          {
            table,
            rows: rows.length,
          },
        );
      }
    }
  }

  query(sql: string): Promise<Array<Record<string, unknown>>> {
    return this.run(this.reader, sql, true);
  }

  // ---- rows of tables outside StoreBatch (backtest results: backtest/backtest-store.ts) ----

  /** Insert JSONEachRow objects into `table` of this database; rejects QLN_STORE_FAILED. */
  async insertRows(table: string, rows: readonly JsonRow[]): Promise<void> {
    checkTableName(table);
    if (rows.length === 0) return;
    try {
      await this.admin.insert({
        table: `${this.database}.${table}`,
        values: rows,
        format: 'JSONEachRow',
      });
    } catch (cause) {
      throw storeFailed(
        'clickhouse',
        `insert of ${rows.length} rows into ${this.database}.${table} failed`,
        cause,
        { table, rows: rows.length },
      );
    }
  }
  // ---- end of rows outside StoreBatch ----

  async ping(): Promise<boolean> {
    if (this.closed) return false;
    const r = await this.admin.ping();
    return r.success;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.admin.close(), this.reader.close()]);
  }

  private async run(
    client: ClickHouseClient,
    sql: string,
    readonly: boolean,
  ): Promise<Array<Record<string, unknown>>> {
    try {
      const rs = await client.query({
        query: sql,
        format: 'JSONEachRow',
        ...(readonly ? { clickhouse_settings: { readonly: '1' as const } } : {}),
      });
      return await rs.json<Record<string, unknown>>();
    } catch (cause) {
      throw storeFailed('clickhouse', `query failed: ${firstLine(sql)}`, cause);
    }
  }
}
