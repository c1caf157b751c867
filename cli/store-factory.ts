import { join, resolve } from 'node:path';
import type { QilinConfig } from '../config/config.js';
import type { EventStore } from '../kernel/event-store.js';

/** Which store a configuration selects. */
export type StoreKind = 'clickhouse' | 'chdb';

/** Options of {@link createStore}. */
export interface CreateStoreOptions {
  /** Open read-only (for `qilin sql`): chdb opens with `--readonly=1`. */
  readonly?: boolean;
}

/** ClickHouse when `clickhouseUrl` is set, else the embedded chdb store. */
export function storeKind(config: QilinConfig): StoreKind {
  return config.clickhouseUrl !== undefined && config.clickhouseUrl !== '' ? 'clickhouse' : 'chdb';
}

/** Data directory of the embedded store: `<stateDir>/chdb`. */
export function chdbPath(config: QilinConfig): string {
  return resolve(join(config.stateDir, 'chdb'));
}

/** Spill folder of the store writer: `<stateDir>/spill/store`. */
export function spillDir(config: QilinConfig): string {
  return resolve(join(config.stateDir, 'spill', 'store'));
}

/**
 * Config → EventStore (not migrated, not opened: the first call does).
 * Adapters are imported lazily so a ClickHouse deployment never loads the
 * chdb native library, and the reverse.
 */
export async function createStore(
  config: QilinConfig,
  opts: CreateStoreOptions = {},
): Promise<EventStore> {
  if (storeKind(config) === 'clickhouse') {
    const { ClickHouseStore } = await import('../adapters/clickhouse/clickhouse-store.js');
    return new ClickHouseStore({
      url: config.clickhouseUrl!,
      database: config.clickhouseDb,
      ttlDays: config.storeTtlDays,
    });
  }
  const { ChdbStore } = await import('../adapters/chdb/chdb-store.js');
  return new ChdbStore({
    path: chdbPath(config),
    database: config.clickhouseDb,
    readonly: opts.readonly === true,
    ttlDays: config.storeTtlDays,
  });
}

/**
 * `qilin sql`: run one read query against the configured store, rows as JSON
 * objects, and close it. ClickHouse runs it with `readonly=1`; the embedded
 * store is opened read-only (and cannot be opened while a kernel holds it:
 * QLN_STORE_FAILED says so).
 */
export async function runSql(
  config: QilinConfig,
  sql: string,
): Promise<Array<Record<string, unknown>>> {
  const store = await createStore(config, { readonly: true });
  try {
    return await store.query(sql);
  } finally {
    await store.close();
  }
}
