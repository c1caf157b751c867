/**
 * bench/state: warm-restart snapshots (docs/adr/0006-warm-restart.md) for
 * 1,000 and 10,000 symbols, the default actor options, every actor warmed
 * with full windows. In process; Redis when QILIN_REDIS_URL is set.
 *
 * ```
 *  subject:  StateKeeper round: encode (kernel/actor-state.ts walk) ─► deflate ─► store.put
 *            restore: store.get ─► inflate ─► header check ─► each symbol: intern + readState
 *  baseline: v8.serialize / v8.deserialize of the same actors (structured clone, the naive
 *            way to persist an object graph), in the same run
 * ```
 * Figures per symbol count: median of `--runs` of snapshot ms, restore ms,
 * bytes (raw and deflated), and the baseline's serialize/deserialize ms and
 * bytes, with the ratios. Usage:
 * `node dist/bench/state/snapshot-bench.js [--symbols 1000,10000] [--runs 5]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import { inflateSync } from 'node:zlib';
import { Redis } from 'ioredis';
import { createActorFactory, createOutputEncoder } from '../../actors/symbol-actor-module.js';
import { RedisSnapshotStore } from '../../adapters/redis/redis-snapshot-store.js';
import { FrameRing } from '../../kernel/frame-ring.js';
import { createLogger } from '../../kernel/logger.js';
import { MarketKind, Side, newMarketEvent } from '../../kernel/market-record.js';
import { ShardHost } from '../../kernel/shard-host.js';
import { FileSnapshotStore, type SnapshotStore } from '../../kernel/snapshot-store.js';
import { StateKeeper, stateFingerprint } from '../../kernel/state-keeper.js';
import { WORKER_COUNTER_WORDS, WorkerCounter } from '../../kernel/worker-protocol.js';

const UNIT = 'bench/unit';

function host(store: SnapshotStore): { host: ShardHost; keeper: StateKeeper; c: Float64Array } {
  const ctx = { shard: 0, shards: 1, options: {} };
  const c = new Float64Array(new SharedArrayBuffer(WORKER_COUNTER_WORDS * 8));
  const h = new ShardHost({
    shard: 0,
    shards: 1,
    out: FrameRing.create(1 << 22),
    store: FrameRing.create(1 << 22),
    counters: c,
    factory: createActorFactory(ctx),
    encoder: createOutputEncoder(ctx),
    outFullWaitMs: 0,
  });
  const keeper = new StateKeeper({
    host: h,
    store,
    fingerprint: stateFingerprint({}, createActorFactory(ctx)(0, 'probe'))!,
    intervalMs: 0,
    counters: c,
    log: createLogger('bench', 'silent'),
  });
  h.restorer = (n) => keeper.restore(n);
  return { host: h, keeper, c };
}

/** Every symbol's windows filled (300 trades and quotes each), straight into the actors. */
async function warmed(symbols: number, store: SnapshotStore): Promise<ReturnType<typeof host>> {
  const x = host(store);
  const unit = (await x.host.restore(UNIT)).unit;
  const ev = newMarketEvent();
  let seq = 0;
  for (let s = 0; s < symbols; s++) {
    const sym = `S${s}`;
    ev.symId = x.host.intern(sym);
    for (let i = 0; i < 300; i++) {
      seq++;
      ev.unit = unit;
      ev.streamSeq = seq;
      ev.seq = i + 1;
      ev.ts = 1_700_000_000_000_000 + i * 100_000;
      ev.recv = ev.ts + 100;
      const px = 100 + Math.sin(i / 7 + s);
      if (i % 2 === 0) {
        ev.kind = MarketKind.TRADE;
        ev.px = px;
        ev.qty = 1 + (i % 3);
        ev.side = Side.BUY;
      } else {
        ev.kind = MarketKind.QUOTE;
        ev.bid = px - 0.01;
        ev.ask = px + 0.01;
        ev.bidQty = 1;
        ev.askQty = 2;
      }
      x.host.replay(ev, 'v');
    }
  }
  return x;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

interface Row {
  symbols: number;
  store: string;
  snapshotMs: number;
  /** Of the snapshot: the synchronous encode (the worker takes no tick meanwhile). */
  blockMs: number;
  restoreMs: number;
  rawBytes: number;
  bytes: number;
  baselineSerializeMs: number;
  baselineDeserializeMs: number;
  baselineBytes: number;
}

async function measure(
  symbols: number,
  runs: number,
  store: SnapshotStore,
  name: string,
): Promise<Row> {
  const snap: number[] = [];
  const block: number[] = [];
  const rest: number[] = [];
  const ser: number[] = [];
  const des: number[] = [];
  let bytes = 0;
  let raw = 0;
  let baseBytes = 0;
  const x = await warmed(symbols, store);
  for (let r = 0; r < runs; r++) {
    x.host.markDirty(1);
    let t0 = performance.now();
    await x.keeper.snapshot();
    snap.push(performance.now() - t0);
    block.push(x.c[WorkerCounter.SNAPSHOT_BLOCK_MS]!);
    bytes = x.c[WorkerCounter.SNAPSHOT_BYTES]!;
    const stored = (await store.get(UNIT))!;
    raw = inflateSync(stored).length;
    const y = host(store);
    t0 = performance.now();
    const got = await y.host.restore(UNIT);
    rest.push(performance.now() - t0);
    if (got.symbols !== symbols) throw new Error(`restored ${got.symbols} of ${symbols}`);
    // Baseline: the actors as an object graph through v8's structured clone.
    const actors = x.host.symbolsOfUnit(1).map((s) => s.actor);
    t0 = performance.now();
    const b = v8.serialize(actors);
    ser.push(performance.now() - t0);
    baseBytes = b.length;
    t0 = performance.now();
    v8.deserialize(b);
    des.push(performance.now() - t0);
  }
  return {
    symbols,
    store: name,
    snapshotMs: median(snap),
    blockMs: median(block),
    restoreMs: median(rest),
    rawBytes: raw,
    bytes,
    baselineSerializeMs: median(ser),
    baselineDeserializeMs: median(des),
    baselineBytes: baseBytes,
  };
}

async function main(): Promise<void> {
  const arg = (k: string, d: string): string => {
    const i = process.argv.indexOf(k);
    return i > 0 ? process.argv[i + 1]! : d;
  };
  const counts = arg('--symbols', '1000,10000').split(',').map(Number);
  const runs = Number(arg('--runs', '5'));
  const dir = mkdtempSync(join(tmpdir(), 'qilin-snapshot-bench-'));
  const rows: Row[] = [];
  try {
    for (const n of counts) {
      rows.push(await measure(n, runs, new FileSnapshotStore(join(dir, String(n))), 'file'));
      const url = process.env['QILIN_REDIS_URL'];
      if (url !== undefined) {
        // A prefix of this run's own: never restore an earlier run's unit.
        const prefix = `qilin:bench:snapshot:${process.pid}:${n}:`;
        const redis = new RedisSnapshotStore({ url, prefix });
        await redis.ready();
        try {
          rows.push(await measure(n, runs, redis, 'redis'));
        } finally {
          await redis.close();
          const r = new Redis(url);
          await r.del(`${prefix}${UNIT}`);
          await r.quit();
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const r of rows) {
    console.log(
      `${String(r.symbols).padStart(6)} symbols  ${r.store.padEnd(5)}  snapshot ${r.snapshotMs.toFixed(1)} ms (encode, blocking: ${r.blockMs.toFixed(1)} ms)  restore ${r.restoreMs.toFixed(1)} ms  ` +
        `${(r.rawBytes / 1e6).toFixed(1)} MB raw → ${(r.bytes / 1e6).toFixed(1)} MB deflated (${(r.bytes / r.symbols / 1024).toFixed(1)} KiB/symbol)  | ` +
        `baseline v8.serialize ${r.baselineSerializeMs.toFixed(1)} ms / deserialize ${r.baselineDeserializeMs.toFixed(1)} ms, ${(r.baselineBytes / 1e6).toFixed(1)} MB  ` +
        `ratio snapshot/serialize ${(r.snapshotMs / r.baselineSerializeMs).toFixed(2)}×, restore/deserialize ${(r.restoreMs / r.baselineDeserializeMs).toFixed(2)}×`,
    );
  }
  console.log(JSON.stringify({ scenario: 'snapshot', runs, rows }));
}

await main();
