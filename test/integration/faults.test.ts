/**
 * Faults of the services the kernel depends on (issue 9): NATS restarted,
 * Redis stopped, ClickHouse SIGKILLed — each survived. Clients reconnect,
 * JetStream consumers resume, `/health/ready` turns degraded naming the
 * service while it is down and ok once it is back, `qilin_outages_total`
 * counts the outage, and nothing is lost: every published tick is stored
 * exactly once under `FROM ticks FINAL`; signals keep flowing without Redis.
 *
 * The shared services on the project ports are never touched: the file runs
 * its own private stack (`servicesUp` on free ports under a temp root) and
 * kills and restarts those processes (pids from `<root>/run/<svc>.pid`).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { KernelApp } from '../../cli/kernel-app.js';
import type { QilinConfig } from '../../config/config.js';
import { createLogger } from '../../kernel/logger.js';
import { freeServicePorts } from '../../ops/test-services.js';
import {
  natsAuthDir,
  servicesDown,
  servicesUp,
  type ServiceName,
  type ServicesOptions,
} from '../../ops/services/service-manager.js';
import { countRows } from '../helpers/clickhouse-count.js';
import { MarketFeed } from '../helpers/market-feed.js';
import { connectAs, type ServiceUrls } from '../helpers/services.js';
import { SIGNAL_EVERY_TRADE, testKernelConfig } from '../helpers/test-kernel.js';
import { until } from '../helpers/wait.js';

const log = createLogger('faults-test', process.env['QILIN_LOG_LEVEL'] ?? 'warn');
const run = randomBytes(3).toString('hex');
/** How long an outage stays listed in /health/ready after it ended (the kernel's default is 10 s). */
const EPISODE_HOLD_MS = 300;
/** The server redelivers a tick the kernel did not ack after this (the kernel creates the durables). */
const ACK_WAIT_MS = 5000;

interface Ready {
  http: number;
  status: string;
  reasons: string[];
}

async function ready(port: number): Promise<Ready> {
  const res = await fetch(`http://127.0.0.1:${port}/health/ready`);
  const body = (await res.json()) as { status: string; reasons: string[] };
  return { http: res.status, status: body.status, reasons: body.reasons };
}

/** `qilin_outages_total{service="<service>"}` as the kernel's /metrics reports it. */
async function outages(port: number, service: ServiceName): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^qilin_outages_total\\{service="${service}"\\} (\\d+)$`, 'm').exec(text);
  return m === null ? 0 : Number(m[1]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The private stack: its services, killed and restarted by the tests. */
class Stack {
  constructor(readonly opts: ServicesOptions) {}

  get urls(): ServiceUrls {
    const p = this.opts.ports;
    return {
      natsUrl: `nats://127.0.0.1:${p.nats}`,
      redisUrl: `redis://127.0.0.1:${p.redis}`,
      clickhouseUrl: `http://127.0.0.1:${p.clickhouseHttp}`,
      natsAuthDir: natsAuthDir(this.opts.root),
    };
  }

  async pid(svc: ServiceName): Promise<number> {
    return Number((await readFile(join(this.opts.root, 'run', `${svc}.pid`), 'utf8')).trim());
  }

  /** Send `sig` to the service's process and wait until it is gone. */
  async kill(svc: ServiceName, sig: NodeJS.Signals): Promise<void> {
    const pid = await this.pid(svc);
    process.kill(pid, sig);
    await until(`${svc} (pid ${pid}) gone after ${sig}`, () => !alive(pid), 30_000, 20);
  }

  /** Start what is not running (the killed service) and wait until it answers. */
  async restart(): Promise<void> {
    await servicesUp(this.opts);
  }
}

let stack: Stack | undefined;

t.before(async () => {
  const root = await mkdtemp(join(tmpdir(), 'qilin-faults-'));
  const opts: ServicesOptions = {
    root,
    ports: await freeServicePorts(),
    log,
    install: false,
    startTimeoutMs: 60_000,
  };
  stack = new Stack(opts);
  await servicesUp(opts);
});

t.teardown(async () => {
  if (stack === undefined) return;
  await servicesDown(stack.opts);
  await rm(stack.opts.root, { recursive: true, force: true });
});

interface Harness {
  app: KernelApp;
  config: QilinConfig;
  nc: NatsConnection;
  js: JetStreamClient;
  ch: ClickHouseClient;
  port: number;
}

/** A kernel on the private stack, a NATS client that reconnects forever, a ClickHouse client. */
async function harness(
  t: Test,
  name: string,
  overrides: Parameters<typeof testKernelConfig>[3],
  kernel: Partial<ConstructorParameters<typeof KernelApp>[0]>,
  beforeStart?: (js: JetStreamClient) => Promise<void>,
): Promise<Harness> {
  const urls = stack!.urls;
  const db = `qilin_fault_${name}_${run}`;
  const config = await testKernelConfig(urls, db, `${name}-read-${run}`, {
    logLevel: process.env['QILIN_LOG_LEVEL'] ?? 'error',
    ...overrides,
  });
  const app = new KernelApp({
    config,
    log: pino({ level: process.env['QILIN_LOG_LEVEL'] ?? 'silent' }),
    account: `${name}${run}`,
    episodeHoldMs: EPISODE_HOLD_MS,
    ...kernel,
  });
  const nc = await connectAs(
    'admin',
    { name: `faults-test-${name}`, maxReconnectAttempts: -1, reconnectTimeWait: 250 },
    urls,
  );
  const ch = createClient({ url: urls.clickhouseUrl, database: db });
  const stream = kernel.jetstream?.stream;
  t.teardown(async () => {
    await app.close();
    if (stream !== undefined) await (await jetstreamManager(nc)).streams.delete(stream);
    await nc.drain();
    await ch.close();
  });
  if (stream !== undefined) {
    // The market stream, before the kernel (which would otherwise create it).
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [config.marketSubject] });
  }
  await beforeStart?.(jetstream(nc));
  await app.start();
  const port = app.port;
  t.same(await ready(port), { http: 200, status: 'ok', reasons: [] }, 'ready before the fault');
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  t.same(
    (['nats', 'redis', 'clickhouse'] as const).map((svc) =>
      new RegExp(`^qilin_outages_total\\{service="${svc}"\\} 0$`, 'm').test(metrics),
    ),
    [true, true, true],
    'qilin_outages_total is 0 for nats, redis and clickhouse before the fault',
  );
  return { app, config, nc, js: jetstream(nc), ch, port };
}

/** Publish `PER_SYMBOL` ticks for each of `symbols` into JetStream, seq-major, each publish acked. */
async function publishTicks(
  js: JetStreamClient,
  venue: string,
  symbols: number,
  fromSeq: number,
  toSeq: number,
  ts0: number,
  paceMs = 0,
  stats = { retries: 0 },
): Promise<number> {
  let n = 0;
  const batch = (seq: number): Array<Promise<unknown>> =>
    Array.from({ length: symbols }, (_, s) =>
      js.publish(
        `md.${venue}.F${s}`,
        JSON.stringify({
          type: 'trade',
          sym: `F${s}`,
          ts: ts0 + seq,
          px: 100 + (seq % 7),
          qty: 1,
          seq,
        }),
        // The stream drops a retried message it already holds (duplicate window).
        { msgID: `F${s}:${seq}` },
      ),
    );
  for (let seq = fromSeq; seq <= toSeq; seq++) {
    // A publisher riding out a NATS restart: a batch not acked by the stream is sent again.
    for (let attempt = 1; ; attempt++) {
      try {
        await Promise.all(batch(seq));
        break;
      } catch (err) {
        if (attempt >= 100) throw err;
        stats.retries++;
        await new Promise((r) => setTimeout(r, 100)); // back-off before a retry
      }
    }
    n += symbols;
    // Pacing the load (not synchronisation).
    if (paceMs > 0) await new Promise((r) => setTimeout(r, paceMs));
  }
  return n;
}

/** count and uniqExact(sym, seq) under FINAL for `venue`. */
async function finalCounts(ch: ClickHouseClient, venue: string): Promise<[number, number]> {
  const rows = await (
    await ch.query({
      query: `SELECT count() AS n, uniqExact(sym, seq) AS u FROM ticks FINAL WHERE venue = '${venue}'`,
      format: 'JSONEachRow',
    })
  ).json<{ n: number | string; u: number | string }>();
  return [Number(rows[0]?.n ?? 0), Number(rows[0]?.u ?? 0)];
}

// The heaviest files of the suite (~2–4 min on a loaded 2-core machine): more than
// .taprc's 300 s per file, so a slow CI machine is not reported as a failure.
t.setTimeout(540_000);

void t.test(
  'NATS restarted under a JetStream market stream: ingestion resumes, nothing skipped',
  async (t) => {
    const venue = `fn${run}`;
    const stream = `QILIN_FN_${run}`;
    const SYMBOLS = 100;
    const PER_SYMBOL = 300;
    const TOTAL = SYMBOLS * PER_SYMBOL;
    /** Seqs per symbol in the stream before the kernel starts (a backlog); the rest stream in live. */
    const BACKLOG = 100;
    const ts0 = Date.now() * 1000;
    let backlog = 0;
    const h = await harness(
      t,
      'nats',
      { marketSubject: `md.${venue}.>`, jetstreamAckWaitMs: ACK_WAIT_MS },
      { jetstream: { stream, durable: `k${run}` } },
      async (js) => {
        backlog = await publishTicks(js, venue, SYMBOLS, 1, BACKLOG, ts0);
      },
    );
    t.equal(backlog, SYMBOLS * BACKLOG, 'backlog in the stream before the kernel started');
    const stored = (): Promise<number> =>
      countRows(h.ch, `SELECT count() AS n FROM ticks WHERE venue = '${venue}'`);
    const received = (): number => h.app.pool.stats().reduce((n, s) => n + s.accepted, 0);

    // The rest streams in at ~2k ticks/s while NATS is stopped and started again.
    const pub = { retries: 0 };
    const live = publishTicks(h.js, venue, SYMBOLS, BACKLOG + 1, PER_SYMBOL, ts0, 50, pub);
    live.catch(() => undefined); // awaited below
    const mid = backlog + 2000;
    await until(`${mid} ticks received before the restart`, () => received() >= mid, 30_000, 5);
    const before = received();
    const t0 = Date.now();
    await stack!.kill('nats', 'SIGTERM');
    let seen: Ready = { http: 0, status: '', reasons: [] };
    await until(
      '/health/ready degraded naming NATS while it is down',
      async () => {
        seen = await ready(h.port);
        return seen.status === 'degraded' && seen.reasons.some((x) => /NATS/.test(x));
      },
      15_000,
      50,
    );
    const tDegraded = Date.now() - t0;
    t.equal(seen.http, 503, 'ready answers 503 while NATS is down');
    t.ok(
      seen.reasons.some((x) => x.startsWith('NATS disconnected')),
      `the reason names the outage: ${JSON.stringify(seen.reasons)}`,
    );
    t.comment(`NATS stopped after ${before} ticks received (backlog ${backlog}), mid-stream`);
    await stack!.restart();
    const tBack = Date.now() - t0;
    await until(
      '/health/ready ok after NATS is back',
      async () => (await ready(h.port)).http === 200,
      30_000,
      100,
    );
    t.equal(await live, TOTAL - backlog, 'the live stream published across the restart');
    t.comment(`publisher batches retried across the outage: ${pub.retries}`);
    await until(
      `all ${TOTAL} ticks stored (FINAL)`,
      async () => (await finalCounts(h.ch, venue))[0] >= TOTAL,
      60_000,
      250,
    ).catch(async (err: unknown) => {
      t.comment(
        `stored FINAL ${(await finalCounts(h.ch, venue)).join('/')}, raw ${await stored()}, received ${received()}`,
      );
      throw err;
    });
    t.same(
      await finalCounts(h.ch, venue),
      [TOTAL, TOTAL],
      `FINAL: ${TOTAL} rows, ${TOTAL} distinct (sym, seq)`,
    );
    t.comment(
      `degraded seen ${tDegraded} ms after the stop; NATS back ${tBack} ms after it; raw rows ${await stored()}`,
    );
    // The durables resumed and caught up: nothing left pending or unacked on them.
    const jsm = await jetstreamManager(h.nc);
    await until(
      'every durable caught up and acked',
      async () => {
        let pending = 0;
        for (const c of await jsm.consumers.list(stream).next()) {
          pending += c.num_pending + c.num_ack_pending;
        }
        return pending === 0;
      },
      30_000,
      100,
    );
    t.pass('the durables hold nothing pending or unacked');
    t.equal(
      await outages(h.port, 'nats'),
      1,
      'qilin_outages_total{service="nats"} counted the outage once',
    );
    t.same(await ready(h.port), { http: 200, status: 'ok', reasons: [] }, 'ready again');
  },
);

void t.test(
  'Redis stopped: the kernel keeps producing signals, degraded naming Redis, ok once it is back',
  async (t) => {
    const venue = `fr${run}`;
    const strategy = `fr${run}`;
    const h = await harness(
      t,
      'redis',
      { ...SIGNAL_EVERY_TRADE, marketSubject: `md.${venue}.>` },
      { strategy },
    );
    let signals = 0;
    const sub = h.nc.subscribe(`sig.${strategy}.>`, {
      callback: () => {
        signals++;
      },
    });
    t.teardown(() => sub.unsubscribe());
    await h.nc.flush();
    const feed = new MarketFeed(h.nc, venue);
    const syms = ['RA', 'RB', 'RC', 'RD'];

    for (const s of syms) feed.trend(s, 20, 1);
    await until('signals before the fault', () => signals >= 20, 30_000);
    const before = signals;

    const t0 = Date.now();
    await stack!.kill('redis', 'SIGTERM');
    let seen: Ready | undefined;
    await until(
      '/health/ready degraded naming Redis',
      async () => {
        seen = await ready(h.port);
        return seen.status === 'degraded' && seen.reasons.some((x) => /Redis/.test(x));
      },
      15_000,
      50,
    );
    t.equal(seen!.http, 503, 'ready answers 503 while Redis is down');
    t.ok(
      seen!.reasons.every((x) => /Redis/.test(x)),
      `degraded for Redis only: ${JSON.stringify(seen!.reasons)}`,
    );

    // Trading goes on: more trades, more signals, while Redis is still down.
    for (const s of syms) feed.trend(s, 20, -1, 120);
    await until('signals while Redis is down', () => signals >= before + 20, 30_000);
    const during = signals - before;
    t.ok(during >= 20, `${during} signals published while Redis was down`);
    t.equal((await ready(h.port)).status, 'degraded', 'still degraded while Redis is down');

    // The kill switch without Redis: it works on its in-memory state (the save fails, logged).
    t.doesNotThrow(() => h.app.riskControl('kill', 'faults-test', 'drill while Redis is down'));
    t.equal(h.app.risk.killed, true, 'killed in memory while Redis is down');
    t.doesNotThrow(() => h.app.riskControl('resume', 'faults-test', 'drill over'));
    t.equal(h.app.risk.killed, false, 'resumed in memory while Redis is down');

    await stack!.restart();
    await until(
      '/health/ready ok after Redis is back',
      async () => (await ready(h.port)).http === 200,
      30_000,
      100,
    );
    t.comment(`ready ok again ${Date.now() - t0} ms after Redis was stopped`);
    t.same(await ready(h.port), { http: 200, status: 'ok', reasons: [] }, 'ready again');
    t.equal(
      await outages(h.port, 'redis'),
      1,
      'qilin_outages_total{service="redis"} counted the outage once',
    );
    const after = signals;
    for (const s of syms) feed.trend(s, 10, 1, 90);
    await until('signals after Redis is back', () => signals >= after + 10, 30_000);
  },
);

void t.test(
  'ClickHouse SIGKILLed mid-stream and restarted: every tick stored exactly once (FINAL)',
  async (t) => {
    const venue = `fc${run}`;
    const stream = `QILIN_FC_${run}`;
    const SYMBOLS = 50;
    const PER_SYMBOL = 200;
    const TOTAL = SYMBOLS * PER_SYMBOL;
    const h = await harness(
      t,
      'ch',
      { marketSubject: `md.${venue}.>`, jetstreamAckWaitMs: ACK_WAIT_MS },
      { jetstream: { stream, durable: `k${run}` } },
    );
    const stored = (): Promise<number> =>
      countRows(h.ch, `SELECT count() AS n FROM ticks WHERE venue = '${venue}'`);

    // ~1k ticks/s for 10 s: the kill lands mid-stream.
    const ts0 = Date.now() * 1000;
    const publishing = publishTicks(h.js, venue, SYMBOLS, 1, PER_SYMBOL, ts0, 50);
    await until(
      '2000 rows stored before the kill',
      async () => (await stored()) >= 2000,
      30_000,
      50,
    );
    const t0 = Date.now();
    await stack!.kill('clickhouse', 'SIGKILL');
    let seen: Ready | undefined;
    await until(
      '/health/ready degraded naming ClickHouse',
      async () => {
        seen = await ready(h.port);
        return seen.status === 'degraded' && seen.reasons.some((x) => /ClickHouse/.test(x));
      },
      15_000,
      50,
    );
    t.equal(seen!.http, 503, 'ready answers 503 while ClickHouse is down');
    const tDegraded = Date.now() - t0;
    t.comment(`while down: ${JSON.stringify(seen!.reasons)}`);
    await stack!.restart();
    t.comment(
      `degraded seen ${tDegraded} ms after the SIGKILL; ClickHouse back ${Date.now() - t0} ms after it`,
    );
    t.equal(await publishing, TOTAL, `${TOTAL} ticks published`);
    await until(
      `all ${TOTAL} ticks stored (FINAL)`,
      async () => (await finalCounts(h.ch, venue))[0] >= TOTAL,
      60_000,
      250,
    ).catch(async (err: unknown) => {
      t.comment(
        `stored FINAL ${(await finalCounts(h.ch, venue)).join('/')}, raw ${await stored()}`,
      );
      throw err;
    });
    t.same(
      await finalCounts(h.ch, venue),
      [TOTAL, TOTAL],
      `FINAL: ${TOTAL} rows, ${TOTAL} distinct (sym, seq): exactly once`,
    );
    const raw = await stored();
    t.ok(
      raw >= TOTAL,
      `raw rows ${raw} (copies of redelivered or replayed ticks until merged: ${raw - TOTAL})`,
    );
    await until(
      '/health/ready ok after ClickHouse is back',
      async () => (await ready(h.port)).http === 200,
      30_000,
      100,
    );
    t.equal(
      await outages(h.port, 'clickhouse'),
      1,
      'qilin_outages_total{service="clickhouse"} counted the outage once',
    );
  },
);
