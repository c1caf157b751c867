/**
 * Warm restart, main thread (docs/adr/0006-warm-restart.md): the risk
 * actor's positions and the WebSocket last values live in Redis. A kernel
 * closed and started again with the same database has the positions its
 * fills made, and a subscriber gets the last prediction of a symbol before
 * any new tick. Real NATS, Redis and ClickHouse; kernels in process.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import t from 'tap';
import WebSocket from 'ws';
import { KernelApp } from '../../cli/kernel-app.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { ensureServices, connectAs } from '../helpers/services.js';
import { SIGNAL_EVERY_TRADE, testKernelConfig } from '../helpers/test-kernel.js';
import { until, within } from '../helpers/wait.js';

const run = randomBytes(3).toString('hex');
const account = `ms${run}`;
const venue = `ms${run}`;
const READ_KEY = `ms-read-${run}`;
const SYM = `MS${run}`;

void t.test('positions and last values survive a restart', async (t) => {
  const urls = await ensureServices();
  const db = `qilin_ms_${run}`;
  const config = await testKernelConfig(urls, db, READ_KEY, {
    ...SIGNAL_EVERY_TRADE,
    actor: { ...SIGNAL_EVERY_TRADE.actor, predictionIntervalUs: 0 },
    snapshotIntervalMs: 1000,
  });
  const start = async (): Promise<KernelApp> => {
    const app = new KernelApp({
      config,
      log: pino({ level: 'silent' }),
      strategy: `ms${run}`,
      account,
    });
    await app.start();
    return app;
  };
  const nc = await connectAs('admin', { name: 'main-state-test' });
  const redis = new Redis(urls.redisUrl, { lazyConnect: true });
  await redis.connect();
  let app = await start();
  t.teardown(async () => {
    await app.close();
    await nc.drain();
    const keys = await redis.keys(`qilin:state:${db}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await app.store.close();
    await dropDatabase(urls.clickhouseUrl, db);
  });

  for (const [side, qty] of [
    ['buy', 5],
    ['sell', 2],
    ['buy', 0.5],
  ] as const) {
    nc.publish(
      `fill.${account}`,
      JSON.stringify({ signalId: `f${qty}`, sym: SYM, side, qty, px: 100, ts: Date.now() * 1000 }),
    );
  }
  for (let seq = 1; seq <= 20; seq++) {
    nc.publish(
      `md.${venue}.${SYM}`,
      JSON.stringify({
        type: 'trade',
        sym: SYM,
        ts: Date.now() * 1000 + seq,
        px: 100 + seq / 10,
        qty: 1,
        seq,
      }),
    );
  }
  await nc.flush();
  await until('the fills applied', () => app.risk.positions().get(SYM) === 3.5, 10_000);
  const key = `qilin:state:${db}:`;
  await until(
    'positions and the prediction of the last tick saved in Redis',
    async () =>
      (await redis.hget(`${key}positions:${account}`, SYM)) === '3.5' &&
      ((await redis.hget(`${key}lvc`, `prediction/${SYM}`)) ?? '').includes('"seq":20'),
    10_000,
    50,
  );

  await app.close();
  await app.store.close();
  app = await start();
  t.equal(app.risk.positions().get(SYM), 3.5, 'the position its fills made, restored');

  // A subscriber gets the last prediction before any new tick (the snapshot).
  const ws = new WebSocket(`ws://127.0.0.1:${app.port}/ws?key=${READ_KEY}`);
  t.teardown(() => ws.close());
  await within(
    'the WebSocket open',
    new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    }),
    5000,
  );
  const snapshot = within(
    'the prediction snapshot',
    new Promise<Record<string, unknown>>((resolve) => {
      ws.on('message', (raw: Buffer) => {
        const m = JSON.parse(raw.toString('utf8')) as {
          topic?: string;
          data?: Record<string, unknown>;
        };
        if (m.topic === `prediction/${SYM}` && m.data !== undefined) resolve(m.data);
      });
    }),
    5000,
  );
  ws.send(JSON.stringify({ op: 'subscribe', topics: [`prediction/${SYM}`] }));
  const data = await snapshot;
  t.match(data, { sym: SYM, src: { seq: 20 } }, 'the last prediction from before the restart');
});
