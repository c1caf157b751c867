/**
 * Unit and property tests of the hop relay's two ends (bench/harness/hop-frames.ts)
 * in one thread, on real FrameRings: subject → symbol, the partitions each
 * worker subscribes, the frame bytes (the relay's frame, without a parse),
 * flushing once per task and every 16 frames with the doorbell, ids per
 * ring, wrap-around, full and oversize frames dropped and counted, the
 * unpartitioned filter, and the drain loop parked on the doorbell waking
 * for every flush. No services.
 */
import fc from 'fast-check';
import t from 'tap';
import { lastSeq, predictionSymbol } from '../../../bench/harness/frame-fields.js';
import {
  HOP_FLUSH_EVERY,
  HopDrain,
  HopWriter,
  framePrefix,
  hopSubjects,
  symbolOfSubject,
} from '../../../bench/harness/hop-frames.js';
import { TickWriter } from '../../../bench/harness/tick-writer.js';
import { FrameRing } from '../../../kernel/frame-ring.js';
import { DOORBELL_BYTES } from '../../../kernel/ring-control.js';
import { ShardRouter } from '../../../kernel/shard-router.js';

interface Got {
  topic: string;
  frame: string;
}

/** Rings, a doorbell, a writer per ring, and a drain that collects what it publishes. */
function rig(rings = 1, capacity = 1 << 16, keep?: (ring: number, sym: string) => boolean) {
  const bell = new SharedArrayBuffer(DOORBELL_BYTES);
  const rs = Array.from({ length: rings }, () => FrameRing.create(capacity));
  const woken = { count: 0 };
  const consumer: { drain?: HopDrain } = {};
  const writers = rs.map((r, i) => {
    const producer = FrameRing.attach(r.buffer);
    // In the relay a worker posts {type:'wake'}; here the same thread calls wake() directly.
    producer.useDoorbell(bell, () => {
      woken.count++;
      consumer.drain?.wake();
    });
    return new HopWriter(producer, keep === undefined ? undefined : (s) => keep(i, s), 0);
  });
  const got: Got[] = [];
  const d = new HopDrain(rs, bell, (topic, frame) => {
    got.push({ topic: topic.toString('utf8'), frame: Buffer.from(frame).toString('utf8') });
  });
  consumer.drain = d;
  const drainAll = (): number => rs.reduce((n, _, i) => n + d.drain(i, Infinity), 0);
  return { bell: new Int32Array(bell), rings: rs, writers, got, drain: d, drainAll, woken };
}

const nextTask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));

/** What the relay sends for the same tick (relay-server.ts), for comparison. */
function relayFrame(tick: string): string {
  const parsed = JSON.parse(tick) as { sym: string };
  return JSON.stringify({ topic: `prediction/${parsed.sym}`, data: parsed });
}

void t.test('symbol from the subject: md.<venue>.<sym>[.<partition>] only', (t) => {
  t.equal(symbolOfSubject('md.bench.B0042.5'), 'B0042', 'partitioned');
  t.equal(symbolOfSubject('md.bench.B0042'), 'B0042', 'unpartitioned');
  t.equal(symbolOfSubject('md.nyse.BTC-USD.15'), 'BTC-USD');
  for (const bad of ['md.bench', 'md.a.b.c.d', 'md.a.b.x', 'md..b', 'nats.a.b', 'md.a.b c', '']) {
    t.equal(symbolOfSubject(bad), undefined, `not a market subject: ${JSON.stringify(bad)}`);
  }
  t.equal(framePrefix('B0001').toString(), '{"topic":"prediction/B0001","data":');
  t.end();
});

void t.test('partition subjects: p ≡ worker (mod workers), every partition exactly once', (t) => {
  t.same(
    hopSubjects(0, 2, 16),
    [0, 2, 4, 6, 8, 10, 12, 14].map((p) => `md.*.*.${p}`),
  );
  t.same(
    hopSubjects(1, 2, 16),
    [1, 3, 5, 7, 9, 11, 13, 15].map((p) => `md.*.*.${p}`),
  );
  for (const workers of [1, 2, 3, 5, 16, 20]) {
    const all = Array.from({ length: workers }, (_, k) => hopSubjects(k, workers, 16)).flat();
    t.same(
      [...all].sort(),
      Array.from({ length: 16 }, (_, p) => `md.*.*.${p}`).sort(),
      `${workers} workers cover the 16 partitions once`,
    );
  }
  t.same(hopSubjects(1, 2, 0), ['md.>'], 'no partitions: md.>, filtered by symbol');
  t.end();
});

void t.test('frames: the relay frame, bytes copied, topic per symbol', async (t) => {
  const r = rig();
  const gen = new TickWriter(3);
  const ticks: { sym: string; tick: string }[] = [];
  for (let seq = 1; seq <= 4; seq++) {
    for (let i = 0; i < 3; i++) {
      const tick = gen.trade(i, seq, 1_700_000_000_000_000 + seq);
      ticks.push({ sym: `B000${i}`, tick });
      t.ok(r.writers[0]!.write(`md.bench.B000${i}.${i * 5}`, bytes(tick)));
    }
  }
  await nextTask();
  t.equal(r.drainAll(), 3 + 12, 'three NAME frames and twelve frames');
  t.equal(r.got.length, 12);
  r.got.forEach((g, k) => {
    const { sym, tick } = ticks[k]!;
    t.equal(g.topic, `prediction/${sym}`);
    t.equal(g.frame, `{"topic":"prediction/${sym}","data":${tick}}`, 'tick bytes verbatim');
    t.same(JSON.parse(g.frame), JSON.parse(relayFrame(tick)), 'the relay frame, as JSON');
    const f = Buffer.from(g.frame);
    t.equal(predictionSymbol(f), Number(sym.slice(1)), 'the receivers find the symbol');
    t.equal(lastSeq(f), Math.floor(k / 3) + 1, 'and the tick seq');
  });
  t.same(r.writers[0]!.stats, { frames: 12, symbols: 3, skipped: 0, refused: 0, dropped: 0 });
  t.equal(r.drain.published, 12);
  t.end();
});

void t.test(
  'flush: at the end of the task, or every 16 frames; each wakes a parked consumer',
  async (t) => {
    const r = rig();
    const w = r.writers[0]!;
    const park = (): void => {
      Atomics.store(r.bell, 0, 1); // as parkOnDoorbell does when there is no data
    };
    const tick = bytes('{"type":"trade","sym":"B0001","seq":1}');
    park();
    w.write('md.bench.B0001.3', tick);
    w.write('md.bench.B0001.3', tick);
    t.equal(r.drainAll(), 0, 'nothing visible within the task');
    t.equal(r.woken.count, 0, 'no wake yet');
    await nextTask();
    t.equal(r.drainAll(), 3, 'visible after the task: NAME + 2');
    t.equal(r.woken.count, 1, 'one wake for the task');
    t.equal(Atomics.load(r.bell, 0), 0, 'the parked flag is cleared by the waking producer');
    park();
    for (let i = 0; i < HOP_FLUSH_EVERY; i++) w.write('md.bench.B0001.3', tick);
    t.equal(r.drainAll(), HOP_FLUSH_EVERY, 'the 16th frame flushes within the task');
    t.equal(r.woken.count, 2);
    w.write('md.bench.B0001.3', tick);
    t.equal(r.drainAll(), 0, 'the 17th waits for the end of the task');
    await nextTask();
    t.equal(r.drainAll(), 1);
    t.equal(r.woken.count, 2, 'no wake while the consumer is not parked');
    t.end();
  },
);

void t.test('ids are per ring: the same symbol on two rings, different names by id', async (t) => {
  const r = rig(2);
  r.writers[0]!.write('md.v.AAA.0', bytes('{"a":1}'));
  r.writers[1]!.write('md.v.BBB.1', bytes('{"b":1}'));
  r.writers[1]!.write('md.v.AAA.0', bytes('{"a":2}'));
  await nextTask();
  r.drainAll();
  t.same(
    r.got,
    [
      { topic: 'prediction/AAA', frame: '{"topic":"prediction/AAA","data":{"a":1}}' },
      { topic: 'prediction/BBB', frame: '{"topic":"prediction/BBB","data":{"b":1}}' },
      { topic: 'prediction/AAA', frame: '{"topic":"prediction/AAA","data":{"a":2}}' },
    ],
    'ring 1 id 0 is BBB, ring 0 id 0 is AAA',
  );
  t.end();
});

void t.test('dropped and counted: too large a frame, or a full ring', async (t) => {
  const r = rig(1, 1024); // payloads up to 248 bytes
  const w = r.writers[0]!;
  t.notOk(w.write('md.v.S.0', bytes(`{"x":"${'y'.repeat(300)}"}`)), 'oversize');
  t.equal(w.stats.dropped, 1);
  let ok = 0;
  while (w.write('md.v.S.0', bytes(`{"x":"${'y'.repeat(100)}"}`))) ok++;
  t.ok(ok >= 5 && ok <= 8, `the ring took ${ok} frames of ~140 bytes`);
  t.equal(w.stats.dropped, 2, 'the frame that did not fit (no wait: fullWaitMs 0)');
  t.equal(r.rings[0]!.stats().dropped, 2, 'and the ring counts them');
  await nextTask();
  t.equal(r.drainAll(), ok + 1, 'every frame that went in comes out (+ NAME)');
  t.end();
});

void t.test('not a market subject: refused; another worker’s symbol: skipped', (t) => {
  const router = new ShardRouter(2);
  const r = rig(2, 1 << 16, (ring, sym) => router.shardOf(sym) === ring);
  const syms = Array.from({ length: 40 }, (_, i) => `S${i}`);
  for (let pass = 0; pass < 2; pass++) {
    for (const s of syms) for (const w of r.writers) w.write(`md.v.${s}`, bytes('{}'));
  }
  const [a, b] = r.writers.map((w) => w.stats);
  t.equal(a!.symbols + b!.symbols, 40, 'each symbol announced by one worker');
  t.equal(a!.frames + b!.frames, 80);
  t.equal(a!.skipped + b!.skipped, 80, 'the other worker skips each message');
  t.ok(a!.symbols > 5 && b!.symbols > 5, 'both workers have symbols');
  r.writers[0]!.write('md.v', bytes('{}'));
  r.writers[0]!.write('md.v', bytes('{}'));
  r.writers[0]!.write(`md.v.${'X'.repeat(65)}.1`, bytes('{}'));
  t.equal(r.writers[0]!.stats.refused, 3, 'counted per message');
  t.end();
});

void t.test(
  'property: any frames through a small ring, wrapping, come out intact in order',
  (t) => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            sym: fc.integer({ min: 0, max: 9 }),
            len: fc.integer({ min: 0, max: 200 }),
            drainAfter: fc.boolean(),
          }),
          { minLength: 1, maxLength: 300 },
        ),
        (ops) => {
          const r = rig(1, 1024);
          const w = r.writers[0]!;
          const want: Got[] = [];
          for (const [k, op] of ops.entries()) {
            const tick = `{"k":${k},"p":"${'z'.repeat(op.len)}"}`;
            const sym = `Q${op.sym}`;
            if (w.write(`md.x.${sym}.${op.sym}`, bytes(tick))) {
              want.push({
                topic: `prediction/${sym}`,
                frame: `{"topic":"prediction/${sym}","data":${tick}}`,
              });
            }
            if (op.drainAfter) {
              w.flush();
              r.drainAll();
            }
          }
          w.flush();
          r.drainAll();
          return (
            w.stats.dropped + want.length === ops.length &&
            JSON.stringify(r.got) === JSON.stringify(want)
          );
        },
      ),
      { numRuns: 200 },
    );
    t.end();
  },
);

void t.test('run(): parked on the doorbell with no timeout, woken by every flush', async (t) => {
  const r = rig(2);
  const loop = r.drain.run();
  const until = async (n: number): Promise<boolean> => {
    for (let i = 0; i < 1000 && r.got.length < n; i++) await nextTask();
    return r.got.length >= n;
  };
  let expected = 0;
  for (let task = 0; task < 50; task++) {
    const w = r.writers[task % 2]!;
    const n = 1 + (task % 20);
    for (let i = 0; i < n; i++) w.write(`md.v.T${task % 7}.${task % 2}`, bytes(`{"i":${i}}`));
    expected += n;
    t.ok(await until(expected), `task ${task}: all ${expected} frames published`);
  }
  r.drain.close();
  await loop;
  t.equal(r.drain.published, expected, 'nothing more, nothing less');
  t.end();
});
