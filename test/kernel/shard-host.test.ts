/**
 * ShardHost in one thread: the per-tick path of a shard worker (ingest →
 * store ring → actor → out ring) with real FrameRings and the echo actor.
 */
import t from 'tap';
import { FrameRing } from '../../kernel/frame-ring.js';
import { MarketKind, Side, newMarketEvent, type MarketEvent } from '../../kernel/market-record.js';
import { newOutputEvent } from '../../kernel/output-record.js';
import {
  FrameType,
  nameFrameId,
  nameFrameText,
  newOutputFrameView,
  readOutputFrame,
  readOutputRecord,
  readTickFrame,
} from '../../kernel/shard-frames.js';
import { ShardHost, type ShardHostOptions } from '../../kernel/shard-host.js';
import { WORKER_COUNTER_WORDS, WorkerCounter } from '../../kernel/worker-protocol.js';
import { createActorFactory, createOutputEncoder } from './fixtures/echo-actor-module.js';

const ctx = { shard: 1, shards: 3, options: {} };

function host(over: Partial<ShardHostOptions> = {}): {
  h: ShardHost;
  out: FrameRing;
  store: FrameRing;
  c: Float64Array;
} {
  const out = over.out ?? FrameRing.create(1 << 15);
  const store = over.store ?? FrameRing.create(1 << 15);
  const c = new Float64Array(WORKER_COUNTER_WORDS);
  const h = new ShardHost({
    shard: 1,
    shards: 3,
    out,
    store,
    counters: c,
    factory: createActorFactory(ctx),
    encoder: createOutputEncoder(ctx),
    outFullWaitMs: 5,
    ...over,
  });
  return { h, out, store, c };
}

function trade(h: ShardHost, sym: string, seq: number): MarketEvent {
  const ev = newMarketEvent();
  ev.kind = MarketKind.TRADE;
  ev.symId = h.intern(sym);
  ev.seq = seq;
  ev.ts = 1_700_000_000_000_000 + seq;
  ev.px = 100 + seq;
  ev.qty = 1;
  ev.side = Side.SELL;
  return ev;
}

/** Every frame of a ring as [type, text] (names, tick seqs, output seqs). */
function frames(ring: FrameRing): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  const ev = newMarketEvent();
  const oe = newOutputEvent();
  const view = newOutputFrameView();
  let at: number;
  while ((at = ring.peek()) !== -1) {
    const type = ring.type();
    if (type === FrameType.SYMBOL || type === FrameType.VENUE) {
      out.push([type, `${nameFrameId(ring, at)}=${nameFrameText(ring, at)}`]);
    } else if (type === FrameType.TICK) {
      const venue = readTickFrame(ring, at, ev);
      out.push([type, `${ev.symId}/${venue}/${ev.seq}`]);
    } else if (type === FrameType.OUTPUT) {
      readOutputRecord(ring, at, oe, false);
      out.push([type, `${oe.symId}#${oe.srcSeq}`]);
    } else {
      readOutputFrame(ring, at, view);
      readOutputRecord(ring, at, oe, true);
      out.push([type, ring.buf.toString('latin1', view.frameStart, view.frameEnd)]);
    }
    ring.release();
  }
  return out;
}

void t.test('ids are process-wide (shard + n × shards); names precede their first use', (t) => {
  const { h, out, store, c } = host();
  t.equal(h.intern('AAA'), 1);
  t.equal(h.intern('BBB'), 4);
  t.equal(h.intern('AAA'), 1, 'interned once');
  t.ok(h.accept(trade(h, 'AAA', 7), 'sim'));
  t.ok(h.accept(trade(h, 'BBB', 8), 'other'));
  h.flush();
  t.same(frames(store), [
    [FrameType.SYMBOL, '1=AAA'],
    [FrameType.SYMBOL, '4=BBB'],
    [FrameType.VENUE, '0=sim'],
    [FrameType.TICK, '1/0/7'],
    [FrameType.OUTPUT, '1#7'],
    [FrameType.VENUE, '1=other'],
    [FrameType.TICK, '4/1/8'],
    [FrameType.OUTPUT, '4#8'],
  ]);
  const o = frames(out);
  t.same(
    o.map(([type]) => type),
    [FrameType.SYMBOL, FrameType.SYMBOL, FrameType.PREDICTION, FrameType.PREDICTION],
  );
  t.same(JSON.parse(o[2]![1]), {
    topic: 'prediction/AAA',
    data: { sym: 'AAA', seq: 7, px: 107 },
  });
  t.equal(c[WorkerCounter.ACCEPTED], 2);
  t.equal(c[WorkerCounter.PROCESSED], 2);
  t.equal(c[WorkerCounter.ACTORS], 2);
  t.end();
});

void t.test('nothing is visible before the flush at the end of the task', async (t) => {
  const { h, out, store } = host();
  h.accept(trade(h, 'AAA', 1), 'sim');
  t.equal(out.peek(), -1, 'out ring: not yet');
  t.equal(store.peek(), -1, 'store ring: not yet');
  await Promise.resolve();
  t.not(out.peek(), -1, 'flushed by the queued microtask');
  t.not(store.peek(), -1);
});

void t.test(
  'full store ring, core source: the row is dropped and counted, the actor still runs',
  (t) => {
    const { h, out, store, c } = host({ store: FrameRing.create(1024) });
    let accepted = 0;
    for (let i = 0; i < 40; i++) if (h.accept(trade(h, 'AAA', i), 'sim')) accepted++;
    h.flush();
    t.equal(accepted, 40, 'every tick accepted');
    t.ok(
      c[WorkerCounter.STORE_DROPPED]! > 0,
      `${c[WorkerCounter.STORE_DROPPED]} store rows dropped`,
    );
    t.equal(store.stats().dropped, c[WorkerCounter.STORE_DROPPED], 'ring counter agrees');
    const predictions = frames(out).filter(([type]) => type === FrameType.PREDICTION);
    t.equal(predictions.length, 40, 'the live path saw every tick');
    t.end();
  },
);

void t.test(
  'full store ring, redelivering source: the tick is refused before the actor sees it',
  (t) => {
    const { h, out, c } = host({ store: FrameRing.create(16384) });
    h.redelivers = true;
    let accepted = 0;
    for (let i = 0; i < 40; i++) if (h.accept(trade(h, 'AAA', i), 'sim')) accepted++;
    h.flush();
    t.ok(accepted < 40, `${40 - accepted} refused`);
    t.equal(c[WorkerCounter.REFUSED], 40 - accepted, 'refusals counted');
    t.equal(c[WorkerCounter.STORE_DROPPED], 0, 'nothing dropped');
    const predictions = frames(out).filter(([type]) => type === FrameType.PREDICTION);
    t.equal(predictions.length, accepted, 'only accepted ticks reached the actor');
    t.end();
  },
);

void t.test('full out ring: waits outFullWaitMs, then drops and counts the output', (t) => {
  const { h, c } = host({ out: FrameRing.create(1 << 15) });
  // Nobody drains the out ring (32 KiB; ~200 bytes per output).
  const t0 = Date.now();
  for (let i = 0; i < 400; i++) h.accept(trade(h, 'AAA', i), 'sim');
  h.flush();
  const dropped = c[WorkerCounter.OUT_DROPPED]!;
  t.ok(dropped > 0, `${dropped} outputs dropped`);
  t.ok(Date.now() - t0 >= 5, 'it waited before dropping');
  t.equal(c[WorkerCounter.ACCEPTED], 400, 'ticks still accepted');
  t.end();
});

void t.test('rejects are counted by reason; samples are rate-limited', (t) => {
  const samples: string[] = [];
  const { h, c } = host({ onRejectSample: (reason) => samples.push(reason) });
  for (let i = 0; i < 100; i++) h.reject('malformed_json', 'md.x.y', 'bad', new Uint8Array(3));
  h.reject('bad_seq', 'md.x.y', 'bad', new Uint8Array(3));
  t.equal(c[WorkerCounter.REJECTED_BASE + 1], 100, 'malformed_json counted 100×');
  t.ok(samples.length <= 20, `${samples.length} samples`);
  t.ok(samples.length >= 1);
  t.end();
});

void t.test('an actor that throws is counted and reported at most once a second', (t) => {
  const errors: number[] = [];
  const c2 = { ...ctx, options: { throwOnSeq: 3 } };
  const { h, c } = host({
    factory: createActorFactory(c2),
    onActorError: (symId) => errors.push(symId),
  });
  for (let i = 0; i < 10; i++) h.accept(trade(h, `S${i % 2}`, 3), 'sim');
  t.equal(c[WorkerCounter.ACTOR_ERRORS], 10);
  t.equal(errors.length, 1, 'one report');
  t.end();
});

void t.test('the symbol bound refuses new symbols with QLN_SYMBOL_TABLE_FULL', (t) => {
  const { h } = host({ maxSymbols: 2 });
  h.intern('A');
  h.intern('B');
  t.throws(() => h.intern('C'), { code: 'QLN_SYMBOL_TABLE_FULL' });
  t.equal(h.intern('A'), 1, 'known symbols still resolve');
  t.end();
});

void t.test('an out ring too small for a frame is refused at construction', (t) => {
  t.throws(() => host({ out: FrameRing.create(1 << 14) }), { code: 'QLN_INVALID_ARGUMENT' });
  t.end();
});

void t.test("gaps in a symbol's seq are counted as missing ticks, repeats are not", (t) => {
  const { h, c } = host();
  for (const seq of [1, 2, 5, 6, 6, 4, 10]) h.accept(trade(h, 'AAA', seq), 'sim');
  for (const seq of [100, 103]) h.accept(trade(h, 'BBB', seq), 'sim');
  t.equal(c[WorkerCounter.MISSING], 2 + 3 + 2, '3-4, 7-9 of AAA; 101-102 of BBB');
  t.end();
});
