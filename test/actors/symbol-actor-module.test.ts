import t from 'tap';
import { createActorFactory, resolveSymbolActorOptions } from '../../actors/symbol-actor-module.js';
import { DEFAULT_SYMBOL_ACTOR_OPTIONS, SymbolActor } from '../../actors/symbol-actor.js';
import { OutputDecoder } from '../../actors/output-decoder.js';
import { ErrorCodes } from '../../kernel/errors.js';
import { createLogger } from '../../kernel/logger.js';
import { MarketKind, newMarketEvent } from '../../kernel/market-record.js';
import { OutputKind } from '../../kernel/output-record.js';
import { WorkerPool } from '../../kernel/worker-pool.js';

void t.test('defaults, overrides and a factory of SymbolActors', (t) => {
  t.same(resolveSymbolActorOptions(undefined), DEFAULT_SYMBOL_ACTOR_OPTIONS);
  t.same(resolveSymbolActorOptions({}), DEFAULT_SYMBOL_ACTOR_OPTIONS);
  const o = resolveSymbolActorOptions({ threshold: 0.3, emitEveryTick: true });
  t.equal(o.threshold, 0.3);
  t.equal(o.emitEveryTick, true);
  t.equal(o.warmup, 30);
  const factory = createActorFactory({ shard: 0, shards: 1, options: { windowCapacity: 64 } });
  const a = factory(5, 'BTC-USD');
  t.ok(a instanceof SymbolActor);
  t.equal((a as SymbolActor).symId, 5);
  t.equal((a as SymbolActor).trades.capacity, 64);
  t.equal(
    structuredClone(DEFAULT_SYMBOL_ACTOR_OPTIONS).warmup,
    30,
    'options are structured-clonable',
  );
  t.end();
});

void t.test('a bad or unknown option is rejected naming the key', (t) => {
  const bad: Array<[string, unknown]> = [
    ['windowCapacity', 1000],
    ['emaFastPeriod', 0],
    ['volLambda', 1],
    ['threshold', -0.1],
    ['emitEveryTick', 'yes'],
    ['predictionIntervalUs', -1],
    ['staleUs', NaN],
    ['warmup', 1.5],
    ['noSuchOption', 1],
  ];
  for (const [key, value] of bad) {
    t.throws(
      () => createActorFactory({ shard: 0, shards: 1, options: { [key]: value } }),
      { code: ErrorCodes.INVALID_ARGUMENT, message: new RegExp(`invalid ${key}`) },
      `${key}=${String(value)}`,
    );
  }
  t.throws(() => resolveSymbolActorOptions(42), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /options/,
  });
  t.end();
});

void t.test(
  'runs in a real worker pool: every trade yields a signal (emitEveryTick)',
  async (t) => {
    const signals = new Map<string, number>();
    const decoder = new OutputDecoder({
      strategy: 'mom',
      account: 'acc',
      model: { name: 'baseline', version: '1' },
    });
    let want = 0;
    let seen = 0;
    let done: () => void = () => {};
    const allSeen = new Promise<void>((resolve) => (done = resolve));
    const pool = new WorkerPool({
      workers: 2,
      ringBytes: 1 << 16,
      actorModule: new URL('../../actors/symbol-actor-module.js', import.meta.url).href,
      actorOptions: { emitEveryTick: true, warmup: 0, strategy: 'mom', account: 'acc' },
      log: createLogger('test', 'silent'),
      onOutput: (o) => {
        const ev = o.event;
        if (ev.kind !== OutputKind.SIGNAL) return;
        const msg = decoder.toSignal(ev, o.symbol);
        if (msg.id !== `mom:${msg.sym}:${ev.srcSeq}`) t.fail(`bad id ${msg.id}`);
        const frame = JSON.parse(
          o.ring.buf.toString('utf8', o.view.frameStart, o.view.frameEnd),
        ) as {
          topic: string;
          data: { id: string };
        };
        if (frame.topic !== `signal/${o.symbol}` || frame.data.id !== msg.id)
          t.fail(`frame ${JSON.stringify(frame)} does not match ${msg.id}`);
        signals.set(o.symbol, (signals.get(o.symbol) ?? 0) + 1);
        if (++seen === want) done();
      },
    });
    await pool.start();
    t.teardown(() => pool.destroy());
    const ev = newMarketEvent();
    const syms = ['AAA', 'BBB', 'CCC', 'DDD'];
    for (let i = 1; i <= 100; i++) {
      for (const sym of syms) {
        ev.kind = MarketKind.TRADE;
        ev.seq = i;
        ev.ts = 1_700_000_000_000_000 + i * 1000;
        ev.recv = ev.ts + 100;
        ev.px = 100 + Math.sin(i);
        ev.qty = 1;
        if (pool.submit(ev, sym, 'sim')) want++;
      }
    }
    t.equal(want, 400, 'all submitted');
    const deadline = setTimeout(() => done(), 10_000);
    await allSeen;
    clearTimeout(deadline);
    t.equal(seen, 400, 'one signal per trade came back through the output rings');
    t.same([...signals.values()], [100, 100, 100, 100]);
    await pool.close();
  },
);
