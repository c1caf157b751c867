/**
 * Several kernels against one NATS and Redis (the real local services):
 * they divide the market partitions with kernelPartitions and claim them in
 * Redis. An overlapping kernel is refused naming the first one and leaves
 * nothing running; a disjoint one starts and each kernel's actors see only
 * the symbols of its partitions; a restart with the same kernelId takes its
 * claims over; a claim taken by another kernel while running is reported;
 * claims are gone after close. All claims live under a prefix of this run.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { type NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import t from 'tap';
import { KernelApp } from '../../cli/kernel-app.js';
import type { QilinConfig } from '../../config/config.js';
import type { SignalMessage } from '../../kernel/messages.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { MarketFeed } from '../helpers/market-feed.js';
import { ensureServices, connectAs } from '../helpers/services.js';
import { SIGNAL_EVERY_TRADE, testKernelConfig } from '../helpers/test-kernel.js';
import { until } from '../helpers/wait.js';

const run = randomBytes(3).toString('hex');
const prefix = `qilin:test:claims:${run}:`;
const venue = `pc${run}`;

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '0.0.0.0', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** Symbols whose signals arrive, per strategy. */
function signalsBy(nc: NatsConnection, strategies: string[]): Map<string, Set<string>> {
  const by = new Map(strategies.map((s) => [s, new Set<string>()]));
  for (const s of strategies) {
    nc.subscribe(`sig.${s}.>`, {
      callback: (err, msg) => {
        if (err === null) by.get(s)!.add(msg.json<SignalMessage>().sym);
      },
    });
  }
  return by;
}

void t.test('kernels divide the partitions and claim them', async (t) => {
  const urls = await ensureServices();
  const redis = new Redis(urls.redisUrl, { maxRetriesPerRequest: 2 });
  const nc = await connectAs('admin', { name: 'partition-claims-test' });
  const apps: KernelApp[] = [];
  const dbs: string[] = [];
  const silent = pino({ level: 'silent' });
  const kernel = async (
    name: string,
    overrides: Partial<Record<keyof QilinConfig, unknown>>,
  ): Promise<{ app: KernelApp; config: QilinConfig; strategy: string }> => {
    const db = `qilin_pc${name}_${run}`;
    dbs.push(db);
    const config = await testKernelConfig(urls, db, `pc-read-${run}`, {
      ...SIGNAL_EVERY_TRADE,
      claimPrefix: prefix,
      ...overrides,
    });
    const strategy = `pc${name}${run}`;
    const app = new KernelApp({ config, log: silent, strategy, account: `acct${name}${run}` });
    apps.push(app);
    return { app, config, strategy };
  };
  t.teardown(async () => {
    for (const app of apps) await app.close();
    await nc.drain();
    const left = await redis.keys(`${prefix}*`);
    if (left.length > 0) await redis.del(...left);
    redis.disconnect();
    for (const db of dbs) await dropDatabase(urls.clickhouseUrl, db);
  });
  const owner = async (p: number): Promise<Record<string, unknown> | null> => {
    const v = await redis.get(`${prefix}${p}`);
    return v === null ? null : (JSON.parse(v) as Record<string, unknown>);
  };

  const a = await kernel('a', {
    kernelPartitions: '0-7',
    kernelId: `a-${run}`,
    partitionLeaseMs: 3000,
  });
  await a.app.start();

  await t.test('the first kernel holds its partitions, naming itself', async (t) => {
    for (let p = 0; p < 8; p++) {
      t.match(await owner(p), { id: `a-${run}`, pid: process.pid, port: a.config.httpPort });
    }
    for (let p = 8; p < 16; p++) t.equal(await owner(p), null, `partition ${p} unclaimed`);
    t.same(a.app.partitions, [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  await t.test('an overlapping kernel is refused and leaves nothing running', async (t) => {
    const b = await kernel('x', { kernelPartitions: '4-11', kernelId: `x-${run}` });
    await t.rejects(b.app.start(), {
      code: 'QLN_PARTITION_CLAIMED',
      message: new RegExp(
        `partitions 4,5,6,7 are claimed by kernel a-${run} \\(host [^,]+, pid ${process.pid}, port ${a.config.httpPort}, since [0-9T:.-]+Z\\).*kernelPartitions.*or stop the other kernel`,
      ),
      details: { partitions: [4, 5, 6, 7] },
    });
    t.ok(await portFree(b.config.httpPort), 'its HTTP port is free again');
    for (let p = 8; p < 12; p++) t.equal(await owner(p), null, `its claim on ${p} was released`);
    for (let p = 4; p < 8; p++)
      t.match(await owner(p), { id: `a-${run}` }, `${p} still the first's`);
    await b.app.close();
  });

  const b = await kernel('b', { kernelPartitions: '8-15', kernelId: `b-${run}` });
  await b.app.start();

  await t.test(
    'a disjoint kernel starts; each sees only the symbols of its partitions',
    async (t) => {
      const partitionOf = new Map<string, number>();
      nc.subscribe(`md.${venue}.*.*`, {
        callback: (err, msg) => {
          if (err === null)
            partitionOf.set(msg.subject.split('.')[2]!, Number(msg.subject.split('.')[3]));
        },
      });
      const by = signalsBy(nc, [a.strategy, b.strategy]);
      await nc.flush();
      const feed = new MarketFeed(nc, venue);
      const syms = Array.from({ length: 24 }, (_, i) => `S${i}X${run}`);
      for (const s of syms) feed.trend(s, 12, 1);
      await nc.flush();
      const seen = (): Set<string> => new Set([...by.get(a.strategy)!, ...by.get(b.strategy)!]);
      await until(
        'a signal for every symbol from one of the kernels',
        () => seen().size === syms.length,
      );
      const inA = by.get(a.strategy)!;
      const inB = by.get(b.strategy)!;
      t.same([...seen()].sort(), [...syms].sort(), 'the union is every symbol');
      t.same(
        [...inA].filter((s) => inB.has(s)),
        [],
        'no symbol in both kernels',
      );
      t.ok(inA.size > 0 && inB.size > 0, `both kernels have symbols (${inA.size} + ${inB.size})`);
      for (const s of syms) {
        const p = partitionOf.get(s);
        t.ok(p !== undefined, `${s}'s partition seen`);
        t.equal(
          inA.has(s),
          p! < 8,
          `${s} (partition ${p}) is the ${p! < 8 ? 'first' : 'second'} kernel's`,
        );
      }
    },
  );

  await t.test('the leases are refreshed while the kernel runs', async (t) => {
    await new Promise((r) => setTimeout(r, 4000)); // longer than a's 3 s lease
    t.match(await owner(0), { id: `a-${run}` }, 'still held after the lease time');
    const ttl = await redis.pttl(`${prefix}0`);
    t.ok(ttl > 0 && ttl <= 3000, `lease ${ttl} ms`);
  });

  await t.test(
    'a claim taken by another kernel while running is reported, not fatal',
    async (t) => {
      const thief = { id: `t-${run}`, host: 'elsewhere', pid: 1, port: 1, since: Date.now() };
      await redis.set(`${prefix}3`, JSON.stringify(thief), 'PX', 60_000);
      await until('the loss in the health reasons', () =>
        a.app.episodes.reasons().some((r) => r.includes(`claimed by kernel t-${run}`)),
      );
      t.ok(a.app.episodes.reasons().some((r) => /partitions 3 of this kernel/.test(r)));
      t.match(await owner(3), { id: `t-${run}` }, 'the thief keeps it (compare-and-extend)');
      await redis.del(`${prefix}3`);
    },
  );

  await t.test('claims are released on close', async (t) => {
    await b.app.close();
    for (let p = 8; p < 16; p++) t.equal(await owner(p), null, `partition ${p} released`);
  });

  await t.test('a restart with the same kernelId takes its claims over', async (t) => {
    // A crashed earlier run of b: its claims are still leased.
    const crashed = { id: `b-${run}`, host: 'h', pid: 999_999, port: 1, since: Date.now() - 1000 };
    for (let p = 8; p < 16; p++) {
      await redis.set(`${prefix}${p}`, JSON.stringify(crashed), 'PX', 60_000);
    }
    const b2 = await kernel('b2', { kernelPartitions: '8-15', kernelId: `b-${run}` });
    await b2.app.start();
    for (let p = 8; p < 16; p++) {
      t.match(await owner(p), { id: `b-${run}`, pid: process.pid, port: b2.config.httpPort });
    }
    await b2.app.close();
    for (let p = 8; p < 16; p++) t.equal(await owner(p), null, `partition ${p} released`);
  });

  await t.test('the first kernel releases on close too', async (t) => {
    await a.app.close();
    t.same(await redis.keys(`${prefix}*`), [], 'no claim left');
  });
});
