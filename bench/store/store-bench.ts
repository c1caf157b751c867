/**
 * bench/store: StoreWriter → ClickHouse vs a raw `@clickhouse/client` insert
 * of the same rows, in the same run (README.md: purpose, method, how to run).
 *
 * ```
 *  baseline:  rows ─► JSONEachRow objects ─► client.insert({format: JSONEachRow})   (batches of B)
 *  subject:   rows ─► StoreWriter.addTick ─► batch ─► ClickHouseStore.insert ─► same client call
 * ```
 * Both write the same N tick rows into fresh tables of a throw-away database;
 * the subject's batch latency is timed by wrapping the store's insert.
 *
 * Then the spill path of the same writer, same rows:
 * ```
 *  spill write:   rows ─► StoreWriter.addTick (store down) ─► every B rows one spill file (write, fsync, rename, fsync dir)
 *  replay → null: spill files ─► StoreWriter.start() ─► read + parse ─► a store that keeps nothing
 *  replay → CH:   spill files ─► StoreWriter.start() ─► read + parse ─► ClickHouseStore.insert (second database)
 * ```
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createClient } from '@clickhouse/client';
import { Command } from 'commander';
import * as hdr from 'hdr-histogram-js';
import { pino } from 'pino';
import { StoreWriter } from '../../actors/store-writer.js';
import { ClickHouseStore } from '../../adapters/clickhouse/clickhouse-store.js';
import { tickRow } from '../../adapters/clickhouse/row-format.js';
import type { EventStore, StoreBatch, TickRow } from '../../kernel/event-store.js';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';

interface Result {
  name: string;
  rows: number;
  seconds: number;
  rowsPerSec: number;
  batches: number;
  hist: hdr.Histogram;
  /** Bytes moved (spill files), for MB/s; undefined for the inserts. */
  bytes?: number;
}

function makeRows(n: number): TickRow[] {
  const t0 = 1_732_300_020_000_000;
  const out: TickRow[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      type: i % 2 === 0 ? 'trade' : 'quote',
      sym: `SYM${i % 50}`,
      venue: 'sim',
      seq: i,
      tsUs: t0 + i * 100,
      recvUs: t0 + i * 100 + 20,
      px: i % 2 === 0 ? 100 + (i % 13) * 0.5 : 0,
      qty: i % 2 === 0 ? 1 : 0,
      side: i % 2 === 0 ? 1 : 0,
      bid: i % 2 === 0 ? 0 : 99.5,
      bidQty: i % 2 === 0 ? 0 : 2,
      ask: i % 2 === 0 ? 0 : 100.5,
      askQty: i % 2 === 0 ? 0 : 3,
    });
  }
  return out;
}

function histogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

function fmt(r: Result): string {
  const h = r.hist;
  const ms = (us: number): string => (us / 1000).toFixed(2);
  return [
    r.name.padEnd(22),
    `${Math.round(r.rowsPerSec).toLocaleString('en-US').padStart(12)} rows/s`,
    r.bytes === undefined
      ? ''.padStart(10)
      : `${(r.bytes / 1e6 / r.seconds).toFixed(1).padStart(7)} MB/s`,
    `batches ${String(r.batches).padStart(5)}`,
    `batch ms min ${ms(h.minNonZeroValue)} mean ${ms(h.mean)} p50 ${ms(h.getValueAtPercentile(50))} p90 ${ms(h.getValueAtPercentile(90))} p99 ${ms(h.getValueAtPercentile(99))}`,
  ].join('  ');
}

async function main(): Promise<void> {
  const opts = new Command('store-bench')
    .description('StoreWriter → ClickHouse vs raw @clickhouse/client insert, same rows, same run')
    .option(
      '--url <url>',
      'ClickHouse HTTP URL',
      process.env['QILIN_CLICKHOUSE_URL'] ?? 'http://127.0.0.1:18123',
    )
    .option('--rows <n>', 'rows per contender', (v) => Number.parseInt(v, 10), 200_000)
    .option('--batch <n>', 'rows per insert (both contenders)', (v) => Number.parseInt(v, 10), 5000)
    .parse()
    .opts<{ url: string; rows: number; batch: number }>();

  const database = `qilin_bench_${randomBytes(4).toString('hex')}`;
  const admin = createClient({ url: opts.url });
  const store = new ClickHouseStore({ url: opts.url, database });
  const spillDir = mkdtempSync(join(tmpdir(), 'qilin-store-bench-'));
  const rows = makeRows(opts.rows);
  try {
    await store.migrate();
    await admin.command({ query: `CREATE TABLE ${database}.ticks_raw AS ${database}.ticks` });

    // Baseline: raw client, pre-built JSONEachRow objects built inside the timing (the writer builds them too).
    const baseHist = histogram();
    let t = performance.now();
    let batches = 0;
    for (let i = 0; i < rows.length; i += opts.batch) {
      const b0 = performance.now();
      await admin.insert({
        table: `${database}.ticks_raw`,
        values: rows.slice(i, i + opts.batch).map(tickRow),
        format: 'JSONEachRow',
      });
      baseHist.recordValue(Math.max(1, Math.round((performance.now() - b0) * 1000)));
      batches++;
    }
    let secs = (performance.now() - t) / 1000;
    const base: Result = {
      name: 'raw client insert',
      rows: rows.length,
      seconds: secs,
      rowsPerSec: rows.length / secs,
      batches,
      hist: baseHist,
    };

    // Subject: StoreWriter over ClickHouseStore, insert timed per batch.
    const subjHist = histogram();
    let subjBatches = 0;
    const timed = {
      migrate: () => store.migrate(),
      query: (sql: string) => store.query(sql),
      ping: () => store.ping(),
      close: () => Promise.resolve(),
      insert: async (batch: StoreBatch) => {
        const b0 = performance.now();
        await store.insert(batch);
        subjHist.recordValue(Math.max(1, Math.round((performance.now() - b0) * 1000)));
        subjBatches++;
      },
    };
    const writer = new StoreWriter({
      store: timed,
      log: pino({ level: 'warn' }),
      spillDir,
      maxBatchRows: opts.batch,
      maxBufferedRows: Math.max(opts.batch * 20, 100_000),
    });
    await writer.start();
    t = performance.now();
    for (let i = 0; i < rows.length; i++) {
      writer.addTick(rows[i]!);
      // Yield per batch so the insert can run while rows keep coming, as in the worker.
      if (i % opts.batch === opts.batch - 1) await new Promise<void>((r) => setImmediate(r));
    }
    await writer.flush();
    secs = (performance.now() - t) / 1000;
    const stats = writer.stats();
    await writer.close();
    const subj: Result = {
      name: 'StoreWriter',
      rows: rows.length,
      seconds: secs,
      rowsPerSec: rows.length / secs,
      batches: subjBatches,
      hist: subjHist,
    };

    const spill = await spillBench(rows, opts.batch, opts.url, `${database}_replay`);

    const [[raw], [written]] = await Promise.all([
      store.query(`SELECT count() AS n FROM ${database}.ticks_raw`),
      store.query(`SELECT count() AS n FROM ${database}.ticks`),
    ]);
    console.log(
      `store bench: ${rows.length} tick rows per contender, batch ${opts.batch}, ${opts.url}`,
    );
    console.log(fmt(base));
    console.log(fmt(subj));
    console.log(fmt(spill.write));
    console.log(fmt(spill.replayNull));
    console.log(fmt(spill.replayStore));
    const ratio = (r: Result): string => (r.rowsPerSec / base.rowsPerSec).toFixed(3);
    console.log(`ratio StoreWriter / raw: ${ratio(subj)}`);
    console.log(
      `ratio to raw: spill write ${ratio(spill.write)}, replay → null ${ratio(spill.replayNull)}, replay → ClickHouse ${ratio(spill.replayStore)}; spill files ${spill.files}, ${(spill.write.bytes! / 1e6).toFixed(1)} MB (${(spill.write.bytes! / rows.length).toFixed(0)} B/row)`,
    );
    if (spill.replayedRows !== rows.length) {
      process.exitCode = 1;
      console.error(`replay stored ${spill.replayedRows} rows, expected ${rows.length}`);
    }
    console.log(
      `rows stored: raw ${String(raw?.['n'])}, writer ${String(written?.['n'])}; writer failures ${stats.failures}, spilled ${stats.spilledRows}`,
    );
    if (Number(written?.['n']) !== rows.length || Number(raw?.['n']) !== rows.length) {
      process.exitCode = 1;
      console.error('row count mismatch');
    }
  } finally {
    await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => undefined);
    await admin.close();
    await store.close();
    rmSync(spillDir, { recursive: true, force: true });
  }
}

/** A store that is down: every insert fails, pings say no (the spill-write contender). */
const DOWN: EventStore = {
  migrate: () => Promise.resolve(),
  insert: () => Promise.reject(new QilinError(ErrorCodes.STORE_FAILED, 'bench: store down')),
  query: () => Promise.resolve([]),
  ping: () => Promise.resolve(false),
  close: () => Promise.resolve(),
};

/**
 * A store recording, per insert, the time since the previous one ended (or
 * since `count.since`): for a replay, one spill file's whole cycle (read,
 * parse, insert, unlink).
 */
function timedStore(
  insert: (b: StoreBatch) => Promise<void>,
  hist: hdr.Histogram,
  count: { batches: number; rows: number; since: number },
): EventStore {
  return {
    migrate: () => Promise.resolve(),
    query: () => Promise.resolve([]),
    ping: () => Promise.resolve(true),
    close: () => Promise.resolve(),
    insert: async (b: StoreBatch) => {
      await insert(b);
      const now = performance.now();
      hist.recordValue(Math.max(1, Math.round((now - count.since) * 1000)));
      count.since = now;
      count.batches++;
      count.rows += b.ticks.length;
    },
  };
}

function spillBytes(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const n of readdirSync(dir)) {
    if (!n.endsWith('.ndjson')) continue;
    files++;
    bytes += statSync(join(dir, n)).size;
  }
  return { files, bytes };
}

/** Replay every spill file of `dir` through a fresh writer into `store`; seconds from start() to flush(). */
async function replay(dir: string, store: EventStore, count: { since: number }): Promise<number> {
  const w = new StoreWriter({ store, log: pino({ level: 'warn' }), spillDir: dir });
  const t = performance.now();
  count.since = t;
  await w.start();
  await w.flush();
  const secs = (performance.now() - t) / 1000;
  const left = w.stats().spilledFiles;
  await w.close();
  if (left !== 0) throw new Error(`${left} spill files not replayed`);
  return secs;
}

/**
 * Spill write (store down: every B rows one fsync'd spill file, written
 * synchronously inside the addTick that fills the buffer, so that call is the
 * per-file latency), then replay of the files into a null store (read + parse
 * only) and into ClickHouse (database `replayDb`, dropped at the end).
 */
async function spillBench(
  rows: readonly TickRow[],
  batch: number,
  url: string,
  replayDb: string,
): Promise<{
  write: Result;
  replayNull: Result;
  replayStore: Result;
  files: number;
  replayedRows: number;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'qilin-spill-bench-'));
  const copy = `${dir}-copy`;
  const store = new ClickHouseStore({ url, database: replayDb });
  try {
    const wHist = histogram();
    const writer = new StoreWriter({
      store: DOWN,
      log: pino({ level: 'error' }),
      spillDir: dir,
      maxBatchRows: batch,
      maxBufferedRows: batch,
      flushIntervalMs: 3_600_000,
      retryMinMs: 3_600_000,
      retryMaxMs: 3_600_000,
    });
    await writer.start();
    const t = performance.now();
    for (let i = 0; i < rows.length; i++) {
      if (i % batch === batch - 1) {
        const b0 = performance.now();
        writer.addTick(rows[i]!);
        wHist.recordValue(Math.max(1, Math.round((performance.now() - b0) * 1000)));
      } else writer.addTick(rows[i]!);
    }
    await writer.flush();
    let secs = (performance.now() - t) / 1000;
    await writer.close();
    const { files, bytes } = spillBytes(dir);
    const write: Result = {
      name: 'spill write',
      rows: rows.length,
      seconds: secs,
      rowsPerSec: rows.length / secs,
      batches: files,
      hist: wHist,
      bytes,
    };
    cpSync(dir, copy, { recursive: true });

    const nHist = histogram();
    const nCount = { batches: 0, rows: 0, since: 0 };
    secs = await replay(
      dir,
      timedStore(() => Promise.resolve(), nHist, nCount),
      nCount,
    );
    const replayNull: Result = {
      name: 'spill replay → null',
      rows: nCount.rows,
      seconds: secs,
      rowsPerSec: nCount.rows / secs,
      batches: nCount.batches,
      hist: nHist,
      bytes,
    };

    await store.migrate();
    const sHist = histogram();
    const sCount = { batches: 0, rows: 0, since: 0 };
    secs = await replay(
      copy,
      timedStore((b) => store.insert(b), sHist, sCount),
      sCount,
    );
    const replayStore: Result = {
      name: 'spill replay → CH',
      rows: sCount.rows,
      seconds: secs,
      rowsPerSec: sCount.rows / secs,
      batches: sCount.batches,
      hist: sHist,
      bytes,
    };
    const [stored] = await store.query(`SELECT count() AS n FROM ${replayDb}.ticks`);
    return { write, replayNull, replayStore, files, replayedRows: Number(stored?.['n']) };
  } finally {
    const admin = createClient({ url });
    await admin.command({ query: `DROP DATABASE IF EXISTS ${replayDb}` }).catch(() => undefined);
    await admin.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(copy, { recursive: true, force: true });
  }
}

await main();
