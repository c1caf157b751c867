import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { opsBaseUrl, type QilinConfig } from '../config/config.js';
import { MIGRATIONS, TTL_SINCE, ttlSupported } from '../adapters/clickhouse/schema.js';
import type { EventStore } from '../kernel/event-store.js';
import { chdbPath, createStore, spillDir, storeKind, type StoreKind } from './store-factory.js';

/**
 * `qilin store status`: what the configured store holds and how the store
 * path of a running kernel is doing, each part gathered on its own (a store
 * that cannot be opened still leaves the spill folder and the kernel's
 * metrics to report).
 */

export { TTL_SINCE, ttlSupported };

export interface TableStatus {
  name: string;
  engine: string;
  /** Rows in active parts (before FINAL / merges: a ReplacingMergeTree may count copies). */
  rows: number;
  /** The table's TTL clause, '' when none. */
  ttl: string;
}

export interface SpillFolderStatus {
  dir: string;
  exists: boolean;
  /** Spill files waiting for replay (`*.ndjson`). */
  files: number;
  bytes: number;
  /** Files set aside after repeated refusals (`rejected/`). */
  rejected: { files: number; bytes: number; newest: { name: string; mtime: string } | null };
}

export interface KernelStoreStatus {
  url: string;
  reachable: boolean;
  /** Why it did not answer (connection refused: no kernel running). */
  error?: string;
  storeUp?: boolean;
  lagSeconds?: number;
  spilledRows?: number;
}

export interface StoreStatus {
  kind: StoreKind;
  /** ClickHouse URL, or the chdb data directory. */
  location: string;
  database: string;
  /** Set when the store could not be read (locked by a kernel, down, no database). */
  storeError: string | null;
  serverVersion: string | null;
  /** Highest applied migration, null when the schema is missing. */
  migrationVersion: number | null;
  /** Newest migration this build knows. */
  migrationLatest: number;
  tables: TableStatus[];
  ttl: {
    /** The server accepts TTL clauses (ClickHouse ≥ 19.6; chdb yes). */
    supported: boolean | null;
    /** Tables carrying a TTL clause. */
    applied: string[];
  };
  spill: SpillFolderStatus;
  kernel: KernelStoreStatus;
  /**
   * The last store error: the kernel exposes none (its /metrics has up/down,
   * lag and spilled rows only), so this names the newest file in
   * `rejected/`, the one trace a refused batch leaves on disk.
   */
  lastError: string;
}

/** Files and bytes of the spill folder, and of its `rejected/`. */
export function spillFolderStatus(dir: string): SpillFolderStatus {
  const out: SpillFolderStatus = {
    dir,
    exists: false,
    files: 0,
    bytes: 0,
    rejected: { files: 0, bytes: 0, newest: null },
  };
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  out.exists = true;
  for (const n of names) {
    if (!n.endsWith('.ndjson')) continue;
    out.files++;
    out.bytes += statSync(join(dir, n)).size;
  }
  let rejected: string[] = [];
  try {
    rejected = readdirSync(join(dir, 'rejected'));
  } catch {
    // none set aside
  }
  let newestMs = -1;
  for (const n of rejected) {
    const st = statSync(join(dir, 'rejected', n));
    if (!st.isFile()) continue;
    out.rejected.files++;
    out.rejected.bytes += st.size;
    if (st.mtimeMs > newestMs) {
      newestMs = st.mtimeMs;
      out.rejected.newest = { name: n, mtime: st.mtime.toISOString() };
    }
  }
  return out;
}

/** The store gauges of Prometheus text (`qilin_store_up`, `…_lag_seconds`, `…_spilled_rows`). */
export function parseStoreMetrics(text: string): Omit<KernelStoreStatus, 'url' | 'reachable'> {
  const value = (name: string): number | undefined => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([^\\s]+)`, 'm').exec(text);
    return m === null ? undefined : Number(m[1]);
  };
  const up = value('qilin_store_up');
  const lag = value('qilin_store_lag_seconds');
  const spilled = value('qilin_store_spilled_rows');
  return {
    ...(up === undefined ? {} : { storeUp: up === 1 }),
    ...(lag === undefined ? {} : { lagSeconds: lag }),
    ...(spilled === undefined ? {} : { spilledRows: spilled }),
  };
}

/** GET the kernel's /metrics; unreachable is an answer, not an error. */
export async function kernelStoreStatus(url: string, timeoutMs = 1500): Promise<KernelStoreStatus> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return { url, reachable: false, error: `HTTP ${res.status}` };
    return { url, reachable: true, ...parseStoreMetrics(await res.text()) };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { url, reachable: false, error: e.cause?.code ?? e.message };
  }
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** What `store` answers about itself (version, schema, tables), or why it could not. */
export async function storeSchemaStatus(
  store: EventStore,
  db: string,
): Promise<Pick<StoreStatus, 'storeError' | 'serverVersion' | 'migrationVersion' | 'tables'>> {
  const out: Pick<StoreStatus, 'storeError' | 'serverVersion' | 'migrationVersion' | 'tables'> = {
    storeError: null,
    serverVersion: null,
    migrationVersion: null,
    tables: [],
  };
  try {
    const v = await store.query('SELECT version() AS v');
    out.serverVersion = str(v[0]?.['v']);
    const tables = await store.query(
      `SELECT name, engine, engine_full FROM system.tables WHERE database = '${db}' ORDER BY name`,
    );
    const parts = await store.query(
      `SELECT table, sum(rows) AS rows FROM system.parts WHERE database = '${db}' AND active GROUP BY table`,
    );
    const rows = new Map(parts.map((p) => [String(p['table']), Number(p['rows'])]));
    for (const t of tables) {
      const name = String(t['name']);
      const full = str(t['engine_full']);
      const ttl = / TTL (.*?)(?: SETTINGS |$)/.exec(full);
      out.tables.push({
        name,
        engine: String(t['engine']),
        rows: rows.get(name) ?? 0,
        ttl: ttl === null ? '' : ttl[1]!.trim(),
      });
    }
    if (out.tables.some((t) => t.name === 'schema_migrations')) {
      const m = await store.query(`SELECT max(version) AS v FROM ${db}.schema_migrations`);
      const n = Number(m[0]?.['v'] ?? 0);
      out.migrationVersion = n > 0 ? n : null;
    }
  } catch (err) {
    out.storeError = errorText(err);
  }
  return out;
}

/** Gather every part of the status for `config`. */
export async function storeStatus(config: QilinConfig): Promise<StoreStatus> {
  const kind = storeKind(config);
  const db = config.clickhouseDb;
  const kernelP = kernelStoreStatus(`${opsBaseUrl(config)}/metrics`);
  let schema: Pick<StoreStatus, 'storeError' | 'serverVersion' | 'migrationVersion' | 'tables'>;
  // The ClickHouse reader names the database on every query: a store never
  // migrated must still answer version(), so ask through `system`.
  let store: EventStore | undefined;
  try {
    store = await createStore(
      kind === 'clickhouse' ? { ...config, clickhouseDb: 'system' } : config,
      { readonly: true },
    );
    schema = await storeSchemaStatus(store, db);
  } catch (err) {
    schema = {
      storeError: errorText(err),
      serverVersion: null,
      migrationVersion: null,
      tables: [],
    };
  } finally {
    await store?.close().catch(() => undefined);
  }
  const spill = spillFolderStatus(spillDir(config));
  const kernel = await kernelP;
  const newest = spill.rejected.newest;
  return {
    kind,
    location: kind === 'clickhouse' ? config.clickhouseUrl! : chdbPath(config),
    database: db,
    ...schema,
    migrationLatest: Math.max(...MIGRATIONS.map((m) => m.version)),
    ttl: {
      supported: schema.serverVersion === null ? null : ttlSupported(schema.serverVersion),
      applied: schema.tables.filter((t) => t.ttl !== '').map((t) => t.name),
    },
    spill,
    kernel,
    lastError:
      newest === null
        ? 'none on record (the kernel exposes no last error; rejected/ is empty)'
        : `a batch the store refused: ${join(spill.dir, 'rejected', newest.name)} at ${newest.mtime} (its error is in the kernel log; the kernel exposes no last error)`,
  };
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(2)} MB`;
}

/** Human-readable status. */
export function formatStoreStatus(s: StoreStatus): string {
  const lines: string[] = [];
  lines.push(`store       ${s.kind} ${s.location} database ${s.database}`);
  if (s.storeError !== null) lines.push(`            unavailable: ${s.storeError}`);
  lines.push(`server      ${s.serverVersion ?? '?'}`);
  lines.push(
    `schema      ${s.migrationVersion === null ? 'not migrated' : `migration ${s.migrationVersion}`} (this build: ${s.migrationLatest})`,
  );
  const ttl =
    s.ttl.supported === null
      ? 'unknown (server not read)'
      : s.ttl.supported
        ? `supported; applied on ${s.ttl.applied.length === 0 ? 'no table' : s.ttl.applied.join(', ')}`
        : `not supported by ${s.serverVersion} (TTL clauses need ClickHouse ${TTL_SINCE.join('.')}+)`;
  lines.push(`ttl         ${ttl}`);
  if (s.tables.length > 0) {
    lines.push('tables');
    const w = Math.max(...s.tables.map((t) => t.name.length));
    const e = Math.max(...s.tables.map((t) => t.engine.length));
    for (const t of s.tables)
      lines.push(
        `  ${t.name.padEnd(w)}  ${t.engine.padEnd(e)}  ${String(t.rows).padStart(12)} rows${t.ttl === '' ? '' : `  TTL ${t.ttl}`}`,
      );
  }
  const sp = s.spill;
  lines.push(
    `spill       ${sp.dir}: ${sp.exists ? `${sp.files} files, ${mb(sp.bytes)} waiting for replay; rejected/ ${sp.rejected.files} files, ${mb(sp.rejected.bytes)}` : 'no folder (nothing ever spilled)'}`,
  );
  const k = s.kernel;
  lines.push(
    `kernel      ${k.url}: ${
      k.reachable
        ? `store ${k.storeUp === true ? 'up' : k.storeUp === false ? 'DOWN' : '?'}, lag ${k.lagSeconds ?? '?'} s, ${k.spilledRows ?? '?'} rows spilled`
        : `no kernel answers (${k.error ?? 'unreachable'})`
    }`,
  );
  lines.push(`last error  ${s.lastError}`);
  return `${lines.join('\n')}\n`;
}
