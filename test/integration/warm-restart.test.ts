/**
 * Warm restart (docs/adr/0006-warm-restart.md): two kernels consume the same
 * JetStream market stream, each with its own durables, database and
 * snapshots. One runs uninterrupted; the other is SIGKILLed twice
 * mid-stream and started again, restoring its actors from their last Redis
 * snapshot and replaying the stream from the snapshot's position. At the
 * end both stop gracefully (a last snapshot each) and every symbol's
 * indicators, windows and bars, read back from the snapshots, are equal.
 *
 * Real NATS (JetStream), Redis and ClickHouse; kernels are child processes.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createClient } from '@clickhouse/client';
import { Redis } from 'ioredis';
import t from 'tap';
import { resolveSymbolActorOptions } from '../../actors/symbol-actor-module.js';
import { SymbolActor } from '../../actors/symbol-actor.js';
import { StateReader } from '../../kernel/actor-state.js';
import { parseUnitSnapshot, type UnitSnapshotEntry } from '../../kernel/unit-snapshot.js';
import { countRows } from '../helpers/clickhouse-count.js';
import { dropDatabase } from '../helpers/drop-database.js';
import {
  kernelMetric,
  kernelReady,
  startKernelProcess,
  stopKernelProcess,
  type KernelProcess,
} from '../helpers/kernel-process.js';
import { ensureServices, type ServiceUrls, connectAs } from '../helpers/services.js';
import { freePort } from '../helpers/test-kernel.js';
import { until } from '../helpers/wait.js';

const run = randomBytes(3).toString('hex');
const venue = `wr${run}`;
const stream = `QILIN_WR_${run}`;
const SYMBOLS = 60;
const PER_SYMBOL = 300;
const TOTAL = SYMBOLS * PER_SYMBOL;
const KILLS = 2;
const ROWS_BEFORE_KILL = 3_000;
const PER_STEP = 200;
const ACK_WAIT_MS = 6000;

interface Side {
  name: 'straight' | 'killed';
  db: string;
  durable: string;
  stateDir: string;
  logFile: string;
  httpPort: number;
  kernel?: KernelProcess;
}

function start(urls: ServiceUrls, s: Side): KernelProcess {
  s.kernel = startKernelProcess({
    urls,
    db: s.db,
    subject: `md.${venue}.>`,
    stateDir: s.stateDir,
    logFile: s.logFile,
    httpPort: s.httpPort,
    args: ['--jetstream', `${stream}:${s.durable}`, '--duration', '0', '--account', venue],
    env: {
      QILIN_JETSTREAM_ACK_WAIT_MS: String(ACK_WAIT_MS),
      QILIN_SNAPSHOT_INTERVAL_MS: '1000',
    },
  });
  return s.kernel;
}

/** Every unit snapshot of a kernel (its database names the prefix), symbol → entry. */
async function snapshotsOf(redis: Redis, db: string): Promise<Map<string, UnitSnapshotEntry>> {
  const prefix = `qilin:snapshot:${db}:`;
  const keys = await redis.keys(`${prefix}*`);
  const out = new Map<string, UnitSnapshotEntry>();
  for (const key of keys) {
    const bytes = await redis.getBuffer(key);
    if (bytes === null) continue;
    for (const e of parseUnitSnapshot(inflateSync(bytes)).entries) out.set(e.name, e);
  }
  return out;
}

void t.test(
  'kernel SIGKILLed and restarted from its snapshots: indicators equal an uninterrupted run',
  async (t) => {
    const urls = await ensureServices();
    const sides: Side[] = await Promise.all(
      (['straight', 'killed'] as const).map(async (name) => {
        const db = `qilin_wr_${name}_${run}`;
        const stateDir = mkdtempSync(join(tmpdir(), `${db}-`));
        return {
          name,
          db,
          durable: `${name}${run}`,
          stateDir,
          logFile: join(stateDir, 'kernel.log'),
          httpPort: await freePort(),
        };
      }),
    );
    const [straight, killed] = sides as [Side, Side];
    const nc = await connectAs('admin', { name: 'warm-restart-test' });
    const redis = new Redis(urls.redisUrl, { lazyConnect: true });
    await redis.connect();
    const ch = createClient({ url: urls.clickhouseUrl, database: killed.db });
    t.teardown(async () => {
      for (const s of sides) await stopKernelProcess(s.kernel);
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(stream).catch(() => false);
      await nc.drain();
      await ch.close();
      for (const s of sides) {
        const keys = await redis.keys(`qilin:snapshot:${s.db}:*`);
        if (keys.length > 0) await redis.del(...keys);
        await dropDatabase(urls.clickhouseUrl, s.db);
        rmSync(s.stateDir, { recursive: true, force: true });
      }
      await redis.quit();
    });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`md.${venue}.>`] });
    const js = jetstream(nc);

    for (const s of sides) start(urls, s);
    for (const s of sides) await kernelReady(s.kernel!);

    // Seq-major, every symbol once per seq, ~2k ticks/s; prices wander so the indicators move.
    const ts0 = Date.now() * 1000;
    let published = 0;
    const publishing = (async () => {
      for (let seq = 1; seq <= PER_SYMBOL; seq++) {
        const pending: Array<Promise<unknown>> = [];
        for (let s = 0; s < SYMBOLS; s++) {
          const sym = `W${s}`;
          const mid = 100 + 5 * Math.sin(seq / 17 + s) + (seq % 11) * 0.01;
          pending.push(
            js.publish(
              `md.${venue}.${sym}`,
              JSON.stringify(
                seq % 3 === 0
                  ? {
                      type: 'quote',
                      sym,
                      ts: ts0 + seq * 50_000,
                      seq,
                      bid: mid - 0.02,
                      bidQty: 1 + (seq % 5),
                      ask: mid + 0.02,
                      askQty: 2,
                    }
                  : {
                      type: 'trade',
                      sym,
                      ts: ts0 + seq * 50_000,
                      seq,
                      px: mid,
                      qty: 1 + (seq % 4),
                      side: seq % 2 ? 'buy' : 'sell',
                    },
              ),
            ),
          );
        }
        await Promise.all(pending);
        published += SYMBOLS;
        // Pacing the load (not synchronisation).
        if (published % PER_STEP < SYMBOLS) await new Promise((r) => setTimeout(r, 100));
      }
    })();

    const stored = (): Promise<number> =>
      countRows(ch, `SELECT count() AS n FROM ticks WHERE venue = '${venue}'`);
    let restored = 0;
    let replayed = 0;
    let from = 0;
    for (let i = 0; i < KILLS; i++) {
      const k = killed.kernel!;
      const at = from + ROWS_BEFORE_KILL;
      await until(
        `${at} rows stored before kill ${i + 1} (kernel log ${killed.logFile})`,
        async () => k.child.exitCode === null && (await stored()) >= at,
        60_000,
        50,
      ).catch((err: unknown) => {
        t.comment(readFileSync(killed.logFile, 'utf8').slice(-4000));
        throw err;
      });
      await stopKernelProcess(k, 'SIGKILL');
      from = await stored();
      const next = start(urls, killed);
      await kernelReady(next);
      // Restored and replayed before it reported ready.
      restored += await kernelMetric(next, 'qilin_snapshot_restored_symbols_total');
      replayed += await kernelMetric(next, 'qilin_replayed_total');
    }
    await publishing;
    t.equal(published, TOTAL, `${TOTAL} ticks published`);
    t.ok(restored >= KILLS, `restarts restored actors from snapshots (${restored} symbols)`);
    t.ok(replayed > 0, `restarts replayed the stream after the snapshots (${replayed} messages)`);

    // Both kernels have processed everything (stored FINAL), then stop gracefully: a last snapshot each.
    for (const s of sides) {
      const c = createClient({ url: urls.clickhouseUrl, database: s.db });
      await until(
        `${s.name}: all ${TOTAL} ticks stored (FINAL)`,
        async () =>
          (await countRows(c, `SELECT count() AS n FROM ticks FINAL WHERE venue = '${venue}'`)) >=
          TOTAL,
        90_000,
        250,
      )
        .catch(async (err: unknown) => {
          const q = `SELECT count() AS n FROM ticks FINAL WHERE venue = '${venue}'`;
          t.comment(`${s.name}: stored FINAL ${await countRows(c, q)}`);
          const gaps = await (
            await c.query({
              query: `SELECT sym, count() AS n, groupArray(seq) AS seqs FROM (SELECT DISTINCT sym, seq FROM ticks WHERE venue = '${venue}') GROUP BY sym ORDER BY sym LIMIT 3`,
              format: 'JSONEachRow',
            })
          ).json<{ sym: string; n: number; seqs: number[] }>();
          for (const g of gaps) {
            const have = new Set(g.seqs.map(Number));
            const miss: number[] = [];
            for (let q2 = 1; q2 <= PER_SYMBOL; q2++) if (!have.has(q2)) miss.push(q2);
            t.comment(`${g.sym}: ${g.n} stored, missing ${miss.join(',')}`);
          }
          t.comment(
            await (await fetch(`http://127.0.0.1:${s.httpPort}/metrics`)).text().then((x) =>
              x
                .split('\n')
                .filter((l) => /^qilin_(jetstream|ticks|replayed|already|snapshot|store)/.test(l))
                .join('\n'),
            ),
          );
          t.comment(readFileSync(s.logFile, 'utf8').slice(-6000));
          throw err;
        })
        .finally(() => c.close());
    }
    for (const s of sides) await stopKernelProcess(s.kernel, 'SIGTERM');

    const a = await snapshotsOf(redis, straight.db);
    const b = await snapshotsOf(redis, killed.db);
    t.equal(a.size, SYMBOLS, `uninterrupted run: ${SYMBOLS} symbols in its snapshots`);
    t.equal(b.size, SYMBOLS, `killed run: ${SYMBOLS} symbols in its snapshots`);
    const options = resolveSymbolActorOptions(undefined);
    let compared = 0;
    for (const [sym, ea] of a) {
      const eb = b.get(sym);
      if (eb === undefined) continue;
      const x = new SymbolActor(0, options);
      const y = new SymbolActor(0, options);
      x.readState(new StateReader(ea.state));
      y.readState(new StateReader(eb.state));
      const view = (s: SymbolActor): unknown => ({
        trades: s.features.trades,
        lastSeq: ea.streamSeq === eb.streamSeq,
        indicators: Array.from(s.featureSet.values),
        features: Array.from(s.featureValues),
        ema: [s.features.emaFast, s.features.emaSlow, s.features.vol, s.features.mid],
        tradeWindow: Object.values(s.trades.columns).map((c) => Array.from(c)),
        quoteWindow: Object.values(s.quotes.columns).map((c) => Array.from(c)),
        bars: s.bars.map((w) => Object.values(w.columns).map((c) => Array.from(c))),
      });
      t.strictSame(view(y), view(x), `${sym}: same indicators, windows and bars`);
      compared++;
    }
    t.equal(compared, SYMBOLS, 'every symbol compared');
    const trades = [...a.values()].map((e) => {
      const x = new SymbolActor(0, options);
      x.readState(new StateReader(e.state));
      return x.features.trades;
    });
    t.equal(
      trades.reduce((n, k) => n + k, 0),
      SYMBOLS * (PER_SYMBOL - PER_SYMBOL / 3),
      'the uninterrupted run folded in every trade',
    );
  },
);
