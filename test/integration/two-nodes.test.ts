/**
 * Two kernel nodes on one market (issue 12; docs/operations.md "Several
 * kernels"): node A takes partitions 0-7, node B 8-15 of one JetStream
 * stream (shared durables, database and snapshots), both with failover and
 * cluster fan-out on. A WebSocket subscriber on A sees the signals of every
 * symbol, B's included. B is SIGKILLed mid-stream: A adopts its partitions
 * within the documented bound, restores B's actors from their snapshots and
 * resumes B's durables; every tick is stored exactly once and no tick makes
 * two predictions.
 *
 * Real NATS (JetStream, partition mapping), Redis and ClickHouse; kernels are
 * child processes.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createClient } from '@clickhouse/client';
import t from 'tap';
import WebSocket from 'ws';
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
import { until, within } from '../helpers/wait.js';

const run = randomBytes(3).toString('hex');
const venue = `tn${run}`;
const stream = `QILIN_TN_${run}`;
const db = `qilin_tn_${run}`;
const READ_KEY = `tn-read-${run}`;
const SYMBOLS = 40;
const PER_SYMBOL = 200;
const TOTAL = SYMBOLS * PER_SYMBOL;
const LEASE_MS = 2000;
/** Documented failover bound: lease to expire, a third to see it free, a lease free, a third to act. */
const FAILOVER_BOUND_MS = Math.ceil((2 + 2 / 3) * LEASE_MS);

function node(
  urls: ServiceUrls,
  name: 'A' | 'B',
  partitions: string,
  stateDir: string,
  httpPort: number,
): KernelProcess {
  return startKernelProcess({
    urls,
    db,
    subject: `md.${venue}.>`,
    stateDir,
    logFile: join(stateDir, `kernel-${name}.log`),
    httpPort,
    args: ['--jetstream', `${stream}:k${run}`, '--duration', '0', '--account', venue],
    env: {
      QILIN_KERNEL_ID: `${name}-${run}`,
      QILIN_KERNEL_PARTITIONS: partitions,
      QILIN_PARTITION_TAKEOVER: 'true',
      QILIN_CLUSTER_FANOUT: 'true',
      QILIN_PARTITION_LEASE_MS: String(LEASE_MS),
      QILIN_SNAPSHOT_INTERVAL_MS: '1000',
      QILIN_JETSTREAM_ACK_WAIT_MS: '5000',
      QILIN_API_KEYS: `${READ_KEY}:read`,
      QILIN_ACTOR: JSON.stringify({ warmup: 5, emitEveryTick: true, predictionIntervalUs: 0 }),
      QILIN_RISK: JSON.stringify({
        maxSignalsPerSec: 100000,
        maxPosition: 1000000,
        maxNotional: 1e12,
      }),
    },
  });
}

void t.test('two nodes share a market; one dies and the other takes its partitions', async (t) => {
  const urls = await ensureServices();
  const stateDir = mkdtempSync(join(tmpdir(), `${db}-`));
  const nc = await connectAs('admin', { name: 'two-nodes-test' });
  const ch = createClient({ url: urls.clickhouseUrl, database: db });
  const nodes: KernelProcess[] = [];
  t.teardown(async () => {
    for (const k of nodes) await stopKernelProcess(k);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(stream).catch(() => false);
    await nc.drain();
    await ch.close();
    await dropDatabase(urls.clickhouseUrl, db);
    rmSync(stateDir, { recursive: true, force: true });
  });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [`md.${venue}.>`] });
  const js = jetstream(nc);

  const b = node(urls, 'B', '8-15', stateDir, await freePort());
  nodes.push(b);
  await kernelReady(b);
  const a = node(urls, 'A', '0-7', stateDir, await freePort());
  nodes.push(a);
  await kernelReady(a);

  // A subscriber on node A: signals of every symbol, wherever processed.
  const ws = new WebSocket(`ws://127.0.0.1:${a.httpPort}/ws?key=${READ_KEY}`);
  t.teardown(() => ws.close());
  await within(
    'the WebSocket on node A open',
    new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    }),
    5000,
  );
  const seenOnA = new Set<string>();
  ws.on('message', (raw: Buffer) => {
    const m = JSON.parse(raw.toString('utf8')) as { topic?: string };
    if (m.topic?.startsWith('signal/') === true) seenOnA.add(m.topic.slice(7));
  });
  ws.send(JSON.stringify({ op: 'subscribe', topics: ['signal/*'] }));

  const ts0 = Date.now() * 1000;
  let published = 0;
  const publishing = (async () => {
    for (let seq = 1; seq <= PER_SYMBOL; seq++) {
      const pending: Array<Promise<unknown>> = [];
      for (let s = 0; s < SYMBOLS; s++) {
        const sym = `N${s}`;
        const px = 100 + 3 * Math.sin(seq / 9 + s);
        pending.push(
          js.publish(
            `md.${venue}.${sym}`,
            JSON.stringify({
              type: 'trade',
              sym,
              ts: ts0 + seq * 20_000,
              seq,
              px,
              qty: 1,
              side: 'buy',
            }),
          ),
        );
      }
      await Promise.all(pending);
      published += SYMBOLS;
      // Pacing (~2k ticks/s), not synchronisation.
      if (seq % 5 === 0) await new Promise((r) => setTimeout(r, 100));
    }
  })();

  const stored = (): Promise<number> =>
    countRows(ch, `SELECT count() AS n FROM ticks WHERE venue = '${venue}'`);
  await until('2,000 ticks stored before B dies', async () => (await stored()) >= 2000, 60_000, 50);
  const actorsOnB = await kernelMetric(b, 'qilin_symbols');
  t.ok(actorsOnB > 0, `node B processes some of the symbols (${actorsOnB} actors)`);
  await until(
    'node A has seen signals of symbols processed by B (fan-out)',
    () => seenOnA.size === SYMBOLS,
    30_000,
  ).catch((err: unknown) => {
    t.comment(`signals on A for ${seenOnA.size} symbols`);
    throw err;
  });
  t.equal(seenOnA.size, SYMBOLS, `a subscriber on A sees all ${SYMBOLS} symbols`);

  const killedAt = Date.now();
  await stopKernelProcess(b, 'SIGKILL');
  await until(
    `node A adopts B's 8 partitions (bound ${FAILOVER_BOUND_MS} ms)`,
    async () => (await kernelMetric(a, 'qilin_partitions_adopted_total')) >= 8,
    FAILOVER_BOUND_MS + 5000,
    100,
  ).catch((err: unknown) => {
    t.comment(readFileSync(join(stateDir, 'kernel-A.log'), 'utf8').slice(-3000));
    throw err;
  });
  const failoverMs = Date.now() - killedAt;
  t.ok(
    failoverMs <= FAILOVER_BOUND_MS + 1500,
    `failover in ${failoverMs} ms (documented bound ${FAILOVER_BOUND_MS} ms at a ${LEASE_MS} ms lease)`,
  );
  t.equal(await kernelMetric(a, 'qilin_partitions_adopted_total'), 8, "exactly B's partitions");
  t.ok(
    (await kernelMetric(a, 'qilin_snapshot_restored_symbols_total')) > 0,
    "B's actors restored on A from their snapshots",
  );

  await publishing;
  t.equal(published, TOTAL);
  await until(
    `all ${TOTAL} ticks stored (FINAL)`,
    async () =>
      (await countRows(ch, `SELECT count() AS n FROM ticks FINAL WHERE venue = '${venue}'`)) >=
      TOTAL,
    90_000,
    250,
  ).catch((err: unknown) => {
    t.comment(readFileSync(join(stateDir, 'kernel-A.log'), 'utf8').slice(-3000));
    throw err;
  });
  const rows = await (
    await ch.query({
      query: `SELECT count() AS n, uniqExact(sym, seq) AS u FROM ticks FINAL WHERE venue = '${venue}'`,
      format: 'JSONEachRow',
    })
  ).json<{ n: string | number; u: string | number }>();
  t.same(
    rows.map((r) => [Number(r.n), Number(r.u)]),
    [[TOTAL, TOTAL]],
    'every tick stored exactly once across the failover',
  );
  const preds = await (
    await ch.query({
      query: `SELECT count() AS n, uniqExact(sym, src_seq) AS u FROM predictions`,
      format: 'JSONEachRow',
    })
  ).json<{ n: string | number; u: string | number }>();
  const [n, u] = [Number(preds[0]!.n), Number(preds[0]!.u)];
  t.ok(u > TOTAL / 2, `predictions for most ticks (${u} of ${TOTAL})`);
  t.equal(n, u, 'no tick processed twice: one prediction per (symbol, seq)');
});
