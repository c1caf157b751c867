/**
 * The replay engine: the kernel's actors over history in shard workers.
 * Deterministic whatever the number of workers (property), outputs in source
 * order and tied to the tick that made them, the backtest through the engine
 * equal to the one-thread backtest, and a failing shard stops the replay with
 * a coded error instead of hanging.
 */
import { createHash } from 'node:crypto';
import t from 'tap';
import fc from 'fast-check';
import { replay, type ReplayConsumer } from '../../backtest/replay-engine.js';
import { SyntheticSource } from '../../backtest/synthetic-source.js';
import {
  runBacktest,
  runBacktestReplay,
  type BacktestRunOptions,
} from '../../backtest/backtest-run.js';
import { newOutputEvent, OutputKind } from '../../kernel/output-record.js';
import { createActorFactory, endOfDrain } from '../../actors/symbol-actor-module.js';
import {
  OutputBuffer,
  OutputOrder,
  ShardRunner,
  newSharedOutput,
} from '../../backtest/shard-runner.js';
import { newTickChunk } from '../../backtest/tick-chunk.js';
import { MarketKind } from '../../kernel/market-record.js';

const actorOptions = { strategy: 'momentum', account: 'bt' };

/** Every output (kind, symbol, source tick, payload: not the wall-clock latency stamps), hashed in order. */
class Recorder implements ReplayConsumer {
  private readonly h = createHash('sha256');
  private readonly e = newOutputEvent();
  outputs = 0;
  signals = 0;
  predictions = 0;
  ticks = 0;
  /** Outputs whose source index went backwards, or named another symbol than their tick's. */
  misordered = 0;
  misattributed = 0;
  onChunk: ReplayConsumer['onChunk'] = (c, _symbols, outs) => {
    let last = -1;
    for (let k = 0; k < outs.count; k++) {
      const src = outs.src(k);
      const e = outs.decode(k, this.e);
      if (src < last) this.misordered++;
      last = src;
      if (c.symId[src] !== e.symId) this.misattributed++;
      if (e.kind === OutputKind.SIGNAL) this.signals++;
      if (e.kind === OutputKind.PREDICTION) this.predictions++;
      this.outputs++;
      this.h.update(
        `${this.ticks + src}|${e.kind}|${e.symId}|${e.srcSeq}|${e.srcTs}|${e.recv}|${Buffer.from(e.payload.buffer).toString('base64')}\n`,
      );
    }
    this.ticks += c.length;
  };
  private hex: string | undefined;
  digest(): string {
    this.hex ??= this.h.digest('hex');
    return this.hex;
  }
}

async function run(
  workers: number,
  o: { symbols: number; ticks: number; seed: number; chunk: number },
): Promise<Recorder> {
  const rec = new Recorder();
  const stats = await replay(
    new SyntheticSource({ symbols: o.symbols, ticks: o.ticks, seed: o.seed, stepUs: 500 }),
    rec,
    { workers, chunkTicks: o.chunk, actorOptions },
  );
  if (stats.ticks !== o.ticks) throw new Error(`replayed ${stats.ticks} of ${o.ticks}`);
  return rec;
}

void t.test('outputs are in source order and name the tick that made them', async (t) => {
  const rec = await run(2, { symbols: 20, ticks: 20_000, seed: 3, chunk: 2048 });
  t.equal(rec.ticks, 20_000, 'every tick replayed');
  t.ok(rec.signals > 30, `${rec.signals} signals`);
  t.ok(rec.predictions > 300, `${rec.predictions} predictions`);
  t.equal(rec.misordered, 0, 'source index never goes backwards');
  t.equal(rec.misattributed, 0, "every output is its own tick's symbol");
});

/** The engine's sharding on this thread: `shards` ShardRunners over the same chunks, merged by OutputOrder. */
function shardedDigest(o: {
  symbols: number;
  ticks: number;
  seed: number;
  chunk: number;
  shards: number;
}): {
  digest: string;
  outputs: number;
} {
  const source = new SyntheticSource({
    symbols: o.symbols,
    ticks: o.ticks,
    seed: o.seed,
    stepUs: 500,
  });
  const runners: ShardRunner[] = [];
  const outs: OutputBuffer[] = [];
  for (let s = 0; s < o.shards; s++) {
    const factory = createActorFactory({ shard: s, shards: o.shards, options: actorOptions });
    runners.push(new ShardRunner(factory, s, o.shards, endOfDrain));
    outs.push(new OutputBuffer(newSharedOutput(8)));
  }
  const chunk = newTickChunk(o.chunk);
  const order = new OutputOrder(o.chunk);
  const rec = new Recorder();
  for (;;) {
    void source.next(chunk); // resolves at once: a synthetic source fills synchronously
    if (chunk.length === 0) break;
    for (let s = 0; s < o.shards; s++) runners[s]!.run(chunk, source.symbols, outs[s]!);
    order.sort(outs, chunk.length);
    rec.onChunk(chunk, source.symbols, order);
  }
  return { digest: rec.digest(), outputs: rec.outputs };
}

void t.test(
  'the same history gives the same outputs, bit for bit, whatever the sharding and chunking (property)',
  (t) => {
    let checked = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 4000 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: 1, max: 700 }),
        fc.integer({ min: 1, max: 5 }),
        (symbols, ticks, seed, chunk, shards) => {
          const one = shardedDigest({ symbols, ticks, seed, chunk: 4096, shards: 1 });
          const many = shardedDigest({ symbols, ticks, seed, chunk, shards });
          checked++;
          return one.outputs === many.outputs && one.digest === many.digest;
        },
      ),
      { numRuns: 40, seed: 42 },
    );
    t.equal(
      checked,
      40,
      'forty histories, each in one shard and in 1–5 shards with chunks of 1–700 ticks',
    );
    const a = shardedDigest({ symbols: 4, ticks: 4000, seed: 1, chunk: 512, shards: 1 });
    const b = shardedDigest({ symbols: 4, ticks: 4000, seed: 2, chunk: 512, shards: 1 });
    t.ok(a.outputs > 50, `${a.outputs} outputs`);
    t.not(a.digest, b.digest, 'another history, other outputs (the digest can tell them apart)');
    t.end();
  },
);

void t.test('worker threads give the same outputs as this thread', async (t) => {
  const inline = await run(0, { symbols: 9, ticks: 12_000, seed: 9, chunk: 1000 });
  for (const workers of [1, 3]) {
    const w = await run(workers, { symbols: 9, ticks: 12_000, seed: 9, chunk: 777 });
    t.equal(w.outputs, inline.outputs, `${workers} workers: ${inline.outputs} outputs`);
    t.equal(w.digest(), inline.digest(), `${workers} workers: identical outputs`);
  }
});

const base: BacktestRunOptions = {
  symbols: 4,
  messages: 30_000,
  seed: 11,
  stepUs: 1000,
  strategy: 'momentum',
  account: 'bt',
  actor: {},
  risk: {},
  fill: { model: 'next-tick', feeBps: 1, latencyUs: 1500 },
  initialCash: 1_000_000,
  sampleIntervalUs: 1_000_000,
  codeVersion: 'test',
};

void t.test(
  'a backtest through the engine equals the one-thread backtest, with 1 or 3 workers',
  async (t) => {
    const one = runBacktest(base);
    t.ok(one.fills > 10, `${one.fills} fills`);
    for (const workers of [1, 3]) {
      const r = await runBacktestReplay({ ...base, workers });
      t.equal(r.ticks, one.ticks, `${workers} workers: same ticks`);
      t.equal(r.signals, one.signals, `${workers} workers: same signals (${one.signals})`);
      t.equal(r.fills, one.fills, `${workers} workers: same fills`);
      t.equal(
        JSON.stringify(r.report),
        JSON.stringify(one.report),
        `${workers} workers: identical report`,
      );
    }
  },
);

void t.test(
  'a shard that fails stops the replay with QLN_REPLAY_FAILED, in a worker or inline',
  async (t) => {
    const actorModule = new URL('./fixtures/failing-actor-module.js', import.meta.url).href;
    const consumer: ReplayConsumer = { onChunk: () => undefined };
    const src = (): SyntheticSource =>
      new SyntheticSource({ symbols: 3, ticks: 10_000, seed: 1, stepUs: 10 });
    await t.rejects(
      replay(src(), consumer, { workers: 2, chunkTicks: 64, actorOptions, actorModule }),
      { code: 'QLN_REPLAY_FAILED', message: /replay shard \d: .*failing on purpose/ },
    );
    await t.rejects(
      replay(src(), consumer, { workers: 0, chunkTicks: 64, actorOptions, actorModule }),
      /failing on purpose/,
    );
    await t.rejects(
      replay(src(), consumer, { workers: -1, chunkTicks: 64, actorOptions }),
      /invalid workers/,
    );
  },
);

void t.test('pacing: speed k replays k seconds of history per second', async (t) => {
  // 2,000 ticks 100 µs apart = 0.2 s of history; at speed 1 that takes ≥ ~0.2 s, at speed 0 far less.
  const timed = async (speed: number): Promise<number> => {
    const t0 = performance.now();
    await replay(
      new SyntheticSource({ symbols: 2, ticks: 2000, seed: 5, stepUs: 100 }),
      { onChunk: () => undefined },
      {
        workers: 0,
        chunkTicks: 4096,
        actorOptions,
        speed,
      },
    );
    return performance.now() - t0;
  };
  const paced = await timed(1);
  t.ok(paced >= 150, `speed 1: ${paced.toFixed(0)} ms for 200 ms of history`);
  await t.rejects(timed(-1), /invalid speed/);
  const counts = { trades: 0 };
  await replay(
    new SyntheticSource({ symbols: 2, ticks: 1000, seed: 5, stepUs: 100 }),
    {
      onChunk: (c) => {
        for (let i = 0; i < c.length; i++) if (c.kind[i] === MarketKind.TRADE) counts.trades++;
      },
    },
    { workers: 0, chunkTicks: 4096, actorOptions, speed: 1000 },
  );
  t.ok(
    counts.trades > 300 && counts.trades < 700,
    `paced chunks still carry every tick (${counts.trades} trades)`,
  );
});
