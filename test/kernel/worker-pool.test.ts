import t from 'tap';
import { pino } from 'pino';
import { MarketKind, Side, newMarketEvent } from '../../kernel/market-record.js';
import { ShardRouter } from '../../kernel/shard-router.js';
import { WorkerPool } from '../../kernel/worker-pool.js';

const actorModule = new URL('./fixtures/echo-actor-module.js', import.meta.url).href;
const log = pino({ level: process.env['TEST_LOG'] ?? 'silent' });

interface Seen {
  sym: string;
  seq: number;
  shard: number;
  frame: string;
}

function makePool(
  actorOptions: unknown,
  seen: Seen[],
  onSeen?: () => void,
  workers = 2,
  // Nothing drains the store rings here: room for every OUTPUT row (512 B)
  // of a test, or a restarted worker could not announce its symbols.
  ringBytes = 1 << 20,
): WorkerPool {
  return new WorkerPool({
    workers,
    ringBytes,
    actorModule,
    actorOptions,
    log,
    onOutput: (o, shard) => {
      seen.push({
        sym: o.symbol,
        seq: o.event.srcSeq,
        shard,
        frame: o.ring.buf.toString('latin1', o.view.frameStart, o.view.frameEnd),
      });
      onSeen?.();
    },
  });
}

/** Resolves when `cond()` holds, checked on every output; rejects after `ms`. */
function until(
  cond: () => boolean,
  register: (fn: () => void) => void,
  ms = 20_000,
): Promise<void> {
  return new Promise((resolve, reject) => {
    if (cond()) return resolve();
    const timer = setTimeout(() => reject(new Error('condition not reached in time')), ms);
    register(() => {
      if (cond()) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

function feed(pool: WorkerPool, symbols: string[], from: number, to: number): number {
  const ev = newMarketEvent();
  let dropped = 0;
  for (let seq = from; seq < to; seq++) {
    for (const s of symbols) {
      ev.kind = MarketKind.TRADE;
      ev.seq = seq;
      ev.ts = 1_700_000_000_000_000 + seq;
      ev.px = 100 + seq;
      ev.qty = 1;
      ev.side = Side.BUY;
      if (!pool.submit(ev, s, 'test')) dropped++;
    }
  }
  return dropped;
}

const router2 = new ShardRouter(2);

void t.test('routes each symbol to one shard and delivers every record in order', async (t) => {
  const seen: Seen[] = [];
  let notify = (): void => undefined;
  const pool = makePool({}, seen, () => notify());
  await pool.start();
  t.teardown(() => pool.destroy());
  const symbols = ['BTC-USD', 'ETH-USD', 'SOL-USD', 'XRP-USD', 'ADA-USD', 'DOGE-USD'];
  t.equal(feed(pool, symbols, 0, 150), 0, 'nothing dropped');
  await until(
    () => seen.length === 900,
    (fn) => (notify = fn),
  );
  for (const s of symbols) {
    const mine = seen.filter((x) => x.sym === s);
    t.same(
      mine.map((x) => x.seq),
      Array.from({ length: 150 }, (_, i) => i),
      `${s}: every seq once, in order`,
    );
    t.equal(new Set(mine.map((x) => x.shard)).size, 1, `${s}: one shard`);
    t.equal(mine[0]!.shard, router2.shardOf(s), `${s}: the router's shard`);
    t.same(
      JSON.parse(mine[7]!.frame),
      { topic: `prediction/${s}`, data: { sym: s, seq: 7, px: 107 } },
      `${s}: the frame the worker encoded arrives as is`,
    );
  }
  const stats = pool.stats();
  t.equal(
    stats.reduce((n, x) => n + x.accepted, 0),
    900,
    'workers counted every accepted tick',
  );
  t.equal(
    stats.reduce((n, x) => n + x.actors, 0),
    6,
    'one actor per symbol',
  );
  await pool.close();
  await pool.close();
  t.notOk(pool.healthy(), 'closed pool is not healthy');
});

void t.test(
  'a worker killed mid-stream is restarted on the same rings and processing resumes',
  async (t) => {
    const seen: Seen[] = [];
    let notify = (): void => undefined;
    const pool = makePool({}, seen, () => notify());
    await pool.start();
    t.teardown(() => pool.destroy());
    const symbols = ['AAA', 'BBB', 'CCC', 'DDD'];
    feed(pool, symbols, 0, 100);
    await until(
      () => seen.length >= 400,
      (fn) => (notify = fn),
    );
    const victim = router2.shardOf('AAA');
    // Queue records, then kill the worker while they are in flight.
    feed(pool, symbols, 100, 300);
    await pool.killWorker(victim);
    feed(pool, symbols, 300, 400);
    const complete = (): boolean =>
      symbols.every((s) => new Set(seen.filter((x) => x.sym === s).map((x) => x.seq)).size === 400);
    await until(complete, (fn) => (notify = fn));
    await pool.whenReady(victim);
    const stats = pool.stats()[victim]!;
    t.equal(stats.restarts, 1, 'restart counted');
    t.ok(stats.alive, 'worker alive again');
    t.ok(pool.healthy(), 'pool healthy again');
    t.ok(stats.actors >= 1, 'actors recreated on the new worker');
    for (const s of symbols) {
      const seqs = seen.filter((x) => x.sym === s).map((x) => x.seq);
      t.equal(new Set(seqs).size, 400, `symbol ${s}: no record lost`);
      t.ok(seqs.length - 400 <= 1, `symbol ${s}: at most the in-flight record repeated`);
    }
  },
);

void t.test(
  'a record that kills its worker twice is quarantined; the shard moves on',
  async (t) => {
    const seen: Seen[] = [];
    let notify = (): void => undefined;
    const pool = makePool({ exitOnSeq: 5 }, seen, () => notify());
    await pool.start();
    t.teardown(() => pool.destroy());
    feed(pool, ['POISON'], 0, 20);
    await until(
      () => seen.filter((x) => x.sym === 'POISON').length === 19,
      (fn) => (notify = fn),
    );
    const stats = pool.stats()[router2.shardOf('POISON')]!;
    t.equal(stats.restarts, 2, 'died twice');
    t.equal(stats.quarantined, 1, 'one record quarantined');
    t.same(
      seen.filter((x) => x.sym === 'POISON').map((x) => x.seq),
      [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19],
      'everything but the poison record, in order',
    );
  },
);

void t.test('an actor that throws skips the record, counts it and keeps running', async (t) => {
  const seen: Seen[] = [];
  let notify = (): void => undefined;
  const pool = makePool({ throwOnSeq: 3 }, seen, () => notify());
  await pool.start();
  t.teardown(() => pool.destroy());
  feed(pool, ['THROWS'], 0, 10);
  await until(
    () => seen.length === 9,
    (fn) => (notify = fn),
  );
  const s = pool.stats()[router2.shardOf('THROWS')]!;
  t.equal(s.actorErrors, 1);
  t.equal(s.restarts, 0, 'no restart for an actor exception');
});

void t.test('a full in-ring refuses, never blocks', async (t) => {
  const seen: Seen[] = [];
  const pool = makePool({}, seen, undefined, 1, 1 << 16);
  await pool.start();
  t.teardown(() => pool.destroy());
  // 10 000 ticks in one synchronous burst: nothing is flushed to the worker
  // before this task ends, so a 64 KiB ring (80-byte tick frames) fills up.
  const dropped = feed(pool, ['BURST'], 0, 10_000);
  t.ok(dropped > 9000, `refused ${dropped}`);
  t.ok(pool.stats()[0]!.in.highWater <= 1 << 16, 'occupancy bounded by capacity');
});

void t.test('bad options fail fast with a code', (t) => {
  for (const bad of [
    { workers: 0, ringBytes: 1 << 16 },
    { workers: 1, ringBytes: 1000 },
    { workers: 1, ringBytes: 1 << 14 },
  ]) {
    t.throws(() => new WorkerPool({ ...bad, actorModule, log, onOutput: () => undefined }), {
      code: 'QLN_INVALID_ARGUMENT',
    });
  }
  t.end();
});

void t.test('a worker whose source fails to start fails pool.start with its code', async (t) => {
  const pool = new WorkerPool({
    workers: 1,
    ringBytes: 1 << 16,
    actorModule,
    sourceModule: new URL('./fixtures/failing-source-module.js', import.meta.url).href,
    log,
    onOutput: () => undefined,
  });
  await t.rejects(pool.start(), { code: 'QLN_BUS_UNAVAILABLE', message: /no bus here/ });
  t.notOk(pool.healthy());
});
