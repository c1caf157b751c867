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
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
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
import type { StoreBatch, TickRow } from '../../kernel/event-store.js';

interface Result {
  name: string;
  rows: number;
  seconds: number;
  rowsPerSec: number;
  batches: number;
  hist: hdr.Histogram;
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

    const [[raw], [written]] = await Promise.all([
      store.query(`SELECT count() AS n FROM ${database}.ticks_raw`),
      store.query(`SELECT count() AS n FROM ${database}.ticks`),
    ]);
    console.log(
      `store bench: ${rows.length} tick rows per contender, batch ${opts.batch}, ${opts.url}`,
    );
    console.log(fmt(base));
    console.log(fmt(subj));
    console.log(`ratio StoreWriter / raw: ${(subj.rowsPerSec / base.rowsPerSec).toFixed(3)}`);
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

await main();
