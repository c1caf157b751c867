/**
 * Exactly once from JetStream to the store (docs/adr/0005-exactly-once-ticks.md):
 * a tick is acked only once its row is durable, and rows are keyed by the
 * tick, so a kernel SIGKILLed at any moment and started again leaves every
 * published tick in the store exactly once under `FROM ticks FINAL`.
 *
 * Real NATS (JetStream), real ClickHouse; the kernel is a child process
 * (`node bin/qilin.js start --jetstream …`) killed with SIGKILL while ticks
 * stream in at ~2k/s, at moments chosen by what the store holds.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { createClient } from '@clickhouse/client';
import t from 'tap';
import { countRows } from '../helpers/clickhouse-count.js';
import { dropDatabase } from '../helpers/drop-database.js';
import {
  kernelReady,
  startKernelProcess,
  stopKernelProcess,
  type KernelProcess,
} from '../helpers/kernel-process.js';
import { ensureServices, type ServiceUrls, connectAs } from '../helpers/services.js';
import { freePort } from '../helpers/test-kernel.js';
import { until } from '../helpers/wait.js';

const run = randomBytes(3).toString('hex');
const venue = `eo${run}`;
const stream = `QILIN_EO_${run}`;
const db = `qilin_eo_${run}`;
const SYMBOLS = 100;
const PER_SYMBOL = 300;
const TOTAL = SYMBOLS * PER_SYMBOL;
/** Kills; each when the kernel has stored this many rows more since it started. */
const KILLS = 3;
const ROWS_BEFORE_KILL = 2_000;
/** Ticks published per 100 ms: ~2k ticks/s. */
const PER_STEP = 200;
/** The server redelivers an unacked tick after this (the kernel creates the durables). */
const ACK_WAIT_MS = 6000;

function startKernel(
  urls: ServiceUrls,
  stateDir: string,
  logFile: string,
  httpPort: number,
): KernelProcess {
  return startKernelProcess({
    urls,
    db,
    subject: `md.${venue}.>`,
    stateDir,
    logFile,
    httpPort,
    args: ['--jetstream', `${stream}:k${run}`, '--duration', '0', '--account', `eo${run}`],
    env: { QILIN_JETSTREAM_ACK_WAIT_MS: String(ACK_WAIT_MS) },
  });
}

// The heaviest files of the suite (~2–4 min on a loaded 2-core machine): more than
// .taprc's 300 s per file, so a slow CI machine is not reported as a failure.
t.setTimeout(540_000);

void t.test(
  'kernel SIGKILLed mid-stream and restarted: every tick stored exactly once (FINAL)',
  async (t) => {
    const urls = await ensureServices();
    const stateDir = mkdtempSync(join(tmpdir(), `${db}-`));
    const logFile = join(stateDir, 'kernel.log');
    const nc = await connectAs('admin', { name: 'exactly-once-test' });
    const ch = createClient({ url: urls.clickhouseUrl, database: db });
    let kernel: KernelProcess | undefined;
    t.teardown(async () => {
      await stopKernelProcess(kernel);
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(stream).catch(() => false);
      await nc.drain();
      await ch.close();
      await dropDatabase(urls.clickhouseUrl, db);
      rmSync(stateDir, { recursive: true, force: true });
    });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`md.${venue}.>`] });
    const js: JetStreamClient = jetstream(nc);

    const stored = (): Promise<number> =>
      countRows(ch, `SELECT count() AS n FROM ticks WHERE venue = '${venue}'`);
    const storedFinal = (): Promise<number> =>
      countRows(ch, `SELECT count() AS n FROM ticks FINAL WHERE venue = '${venue}'`);

    const httpPort = await freePort();
    kernel = startKernel(urls, stateDir, logFile, httpPort);
    await kernelReady(kernel);

    // Publisher: seq-major, every symbol once per seq, ~2k ticks/s, each publish acked by the stream.
    const ts0 = Date.now() * 1000;
    let published = 0;
    const publishing = (async () => {
      for (let seq = 1; seq <= PER_SYMBOL; seq++) {
        const pending: Array<Promise<unknown>> = [];
        for (let s = 0; s < SYMBOLS; s++) {
          const sym = `E${s}`;
          pending.push(
            js.publish(
              `md.${venue}.${sym}`,
              JSON.stringify({
                type: seq % 3 === 0 ? 'quote' : 'trade',
                sym,
                ts: ts0 + seq,
                seq,
                ...(seq % 3 === 0
                  ? { bid: 99, bidQty: 1, ask: 101, askQty: 1 }
                  : { px: 100 + (seq % 7), qty: 1 }),
              }),
            ),
          );
        }
        await Promise.all(pending);
        published += SYMBOLS;
        // Pacing the load (not synchronisation): PER_STEP ticks per 100 ms.
        if (published % PER_STEP === 0) await new Promise((r) => setTimeout(r, 100));
      }
    })();

    const kills: string[] = [];
    let from = 0;
    for (let i = 0; i < KILLS; i++) {
      const k = kernel;
      const at = from + ROWS_BEFORE_KILL;
      await until(
        `${at} rows stored before kill ${kills.length + 1} (kernel log ${logFile})`,
        async () => k.child.exitCode === null && (await stored()) >= at,
        60_000,
        50,
      ).catch((err: unknown) => {
        t.comment(readFileSync(logFile, 'utf8').slice(-4000));
        throw err;
      });
      k.child.kill('SIGKILL');
      await k.exited;
      from = await stored();
      kills.push(`at ${from} rows stored, ${published} published`);
      kernel = startKernel(urls, stateDir, logFile, httpPort);
    }
    await publishing;
    t.equal(published, TOTAL, `${TOTAL} ticks published`);
    t.comment(`SIGKILLs: ${kills.join('; ')}`);
    t.equal(kills.length, KILLS, `${KILLS} kills mid-stream`);

    await until(
      `all ${TOTAL} ticks stored (FINAL)`,
      async () => (await storedFinal()) >= TOTAL,
      90_000,
      250,
    ).catch(async (err: unknown) => {
      t.comment(`stored FINAL ${await storedFinal()}, raw ${await stored()}`);
      t.comment(readFileSync(logFile, 'utf8').slice(-4000));
      throw err;
    });
    const rows = await (
      await ch.query({
        query: `SELECT count() AS n, uniqExact(sym, seq) AS u FROM ticks FINAL WHERE venue = '${venue}'`,
        format: 'JSONEachRow',
      })
    ).json<{ n: number | string; u: number | string }>();
    t.same(
      rows.map((r) => [Number(r.n), Number(r.u)]),
      [[TOTAL, TOTAL]],
      `FINAL: ${TOTAL} rows, ${TOTAL} distinct (sym, seq): exactly once`,
    );
    // The published set, per symbol: seqs 1..PER_SYMBOL each once (count, distinct, min, max, sum).
    const per = await (
      await ch.query({
        query: `SELECT sym, count() AS n, uniqExact(seq) AS u, min(seq) AS lo, max(seq) AS hi, sum(seq) AS total
FROM ticks FINAL WHERE venue = '${venue}' GROUP BY sym ORDER BY sym`,
        format: 'JSONEachRow',
      })
    ).json<Record<string, string | number>>();
    const want = Array.from({ length: SYMBOLS }, (_, s) => `E${s}`)
      .sort()
      .map((sym) => ({
        sym,
        n: PER_SYMBOL,
        u: PER_SYMBOL,
        lo: 1,
        hi: PER_SYMBOL,
        total: (PER_SYMBOL * (PER_SYMBOL + 1)) / 2,
      }));
    t.same(
      per.map((r) => ({
        sym: r['sym'],
        n: Number(r['n']),
        u: Number(r['u']),
        lo: Number(r['lo']),
        hi: Number(r['hi']),
        total: Number(r['total']),
      })),
      want,
      'every published (sym, seq) is stored, and nothing else',
    );
    const raw = await stored();
    t.ok(
      raw >= TOTAL,
      `raw rows ${raw} (copies of redelivered ticks until merged: ${raw - TOTAL})`,
    );

    // A graceful stop acks what is durable: nothing is left pending on the durables.
    kernel.child.kill('SIGTERM');
    await kernel.exited;
    const consumers = await jsm.consumers.list(stream).next();
    let pending = 0;
    for (const c of consumers) pending += c.num_ack_pending + c.num_pending;
    t.equal(pending, 0, 'after a graceful stop every message is acknowledged');
  },
);
