/**
 * Unit and property tests of the pipeline bench's load generator: the JSON
 * it publishes is a valid PROTOCOL trade, and the send table matches every
 * arrival to its trade exactly once (recorded, warm-up, duplicate, unknown).
 * No NATS: a recording stand-in takes the publishes.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import fc from 'fast-check';
import t from 'tap';
import { LoadGenerator, readUint } from '../../../bench/pipeline/load-generator.js';
import { LatencyRecorder } from '../../../bench/hdr-report.js';
import type { TickMessage } from '../../../kernel/messages.js';

interface Published {
  subject: string;
  body: string;
}

/** Just enough of a NatsConnection for publishBatch: it records what is published. */
function fakeNats(): { nc: NatsConnection; sent: Published[] } {
  const sent: Published[] = [];
  const nc = {
    publish: (subject: string, body: string) => {
      sent.push({ subject, body });
    },
    flush: () => Promise.resolve(),
  } as unknown as NatsConnection;
  return { nc, sent };
}

void t.test('publishes valid trades round robin with per-symbol seq', (t) => {
  const gen = new LoadGenerator({ symbols: 3 });
  const { nc, sent } = fakeNats();
  gen.publishBatch(nc, gen.subjects('md.bench'), 7, true);
  t.equal(sent.length, 7);
  t.same(
    sent.map((s) => s.subject),
    [
      'md.bench.B0000',
      'md.bench.B0001',
      'md.bench.B0002',
      'md.bench.B0000',
      'md.bench.B0001',
      'md.bench.B0002',
      'md.bench.B0000',
    ],
  );
  const ticks = sent.map((s) => JSON.parse(s.body) as TickMessage);
  t.same(
    ticks.map((m) => [m.sym, m.seq]),
    [
      ['B0000', 1],
      ['B0001', 1],
      ['B0002', 1],
      ['B0000', 2],
      ['B0001', 2],
      ['B0002', 2],
      ['B0000', 3],
    ],
  );
  for (const m of ticks) {
    t.equal(m.type, 'trade');
    if (m.type !== 'trade') continue;
    t.ok(Number.isInteger(m.ts) && m.ts > 1.7e15, 'ts is integer µs since the epoch');
    t.ok(m.px > 0 && Number.isFinite(m.px), 'positive price');
    t.ok(m.qty >= 1 && m.qty <= 10, 'qty 1..10');
    t.ok(m.side === 'buy' || m.side === 'sell');
  }
  t.end();
});

void t.test(
  'arrivals: recorded once, warm-up not recorded, duplicates and strangers counted',
  (t) => {
    const gen = new LoadGenerator({ symbols: 2, slots: 4 });
    const { nc } = fakeNats();
    const rec = new LatencyRecorder();
    gen.recorder = rec;
    gen.publishBatch(nc, gen.subjects('x'), 2, false); // B0000#1, B0001#1 warm-up
    gen.publishBatch(nc, gen.subjects('x'), 2, true); // B0000#2, B0001#2 recorded
    const now = Number.MAX_SAFE_INTEGER / 2 ** 20;
    t.equal(gen.arrive(0, 1, now), 0, 'warm-up arrival returns 0');
    t.ok(gen.arrive(0, 2, now) > 0, 'recorded arrival returns its send time');
    t.equal(gen.arrive(0, 2, now), 0, 'second arrival is a duplicate');
    t.equal(gen.arrive(1, 9, now), 0, 'a seq never published is unknown');
    t.equal(gen.arrive(5, 1, now), 0, 'a symbol out of range is unknown');
    t.equal(gen.arrive(0, -1, now), 0, 'an unparsed seq is unknown');
    t.same(gen.counters, { arrived: 1, warmupArrived: 1, duplicates: 1, unknown: 3 });
    t.equal(rec.summary().count, 1, 'only the recorded arrival is in the histogram');
    gen.resetCounters();
    t.same(gen.counters, { arrived: 0, warmupArrived: 0, duplicates: 0, unknown: 0 });
    t.end();
  },
);

void t.test('a reused slot (more than `slots` trades behind) does not match', (t) => {
  const gen = new LoadGenerator({ symbols: 1, slots: 2 });
  const { nc } = fakeNats();
  gen.publishBatch(nc, gen.subjects('x'), 3, true); // seq 1, 2, 3: seq 3 reuses seq 1's slot
  t.equal(gen.arrive(0, 1, 0), 0, 'seq 1 was overwritten: unknown');
  t.ok(gen.arrive(0, 3, 0) > 0, 'seq 3 matches');
  t.same(gen.counters, { arrived: 1, warmupArrived: 0, duplicates: 0, unknown: 1 });
  t.end();
});

void t.test('property: every published trade arrives exactly once, in any order', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 20 }),
      fc.integer({ min: 1, max: 200 }),
      fc.integer({ min: 1, max: 0x7fffffff }),
      (symbols, n, seed) => {
        const gen = new LoadGenerator({ symbols, slots: 256, seed });
        const { nc, sent } = fakeNats();
        gen.publishBatch(nc, gen.subjects('p'), n, true);
        const arrivals = sent.map((s) => {
          const m = JSON.parse(s.body) as { sym: string; seq: number };
          return [Number(m.sym.slice(1)), m.seq] as const;
        });
        // Reverse order: matching must not depend on arrival order.
        for (const [sym, seq] of arrivals.reverse()) gen.arrive(sym, seq, 0);
        for (const [sym, seq] of arrivals) gen.arrive(sym, seq, 0);
        return (
          gen.counters.arrived === n && gen.counters.duplicates === n && gen.counters.unknown === 0
        );
      },
    ),
  );
  t.pass('matched exactly once');
  t.end();
});

void t.test('readUint parses digits in place and says -1 for none', (t) => {
  const b = Buffer.from('{"seq":1042}');
  t.equal(readUint(b, 7), 1042);
  t.equal(readUint(b, 0), -1);
  t.equal(readUint(b, b.length), -1);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (v) => {
      return readUint(Buffer.from(`:${v},`), 1) === v;
    }),
  );
  t.end();
});

void t.test('bad options fail with QLN_INVALID_ARGUMENT naming the value', (t) => {
  t.throws(() => new LoadGenerator({ symbols: 0 }), { code: 'QLN_INVALID_ARGUMENT' });
  t.throws(() => new LoadGenerator({ slots: 3 }), { code: 'QLN_INVALID_ARGUMENT' });
  t.throws(() => new LoadGenerator({ seed: 0 }), { code: 'QLN_INVALID_ARGUMENT' });
  const gen = new LoadGenerator({ symbols: 1 });
  const { nc } = fakeNats();
  t.throws(() => gen.run(nc, 'x', 0, 2, 1), { code: 'QLN_INVALID_ARGUMENT' });
  t.throws(() => gen.run(nc, 'x', 100, 1, 1), { code: 'QLN_INVALID_ARGUMENT' });
  t.end();
});

void t.test('run() offers the rate in paced batches and resolves with its stats', async (t) => {
  const gen = new LoadGenerator({ symbols: 10 });
  const { nc, sent } = fakeNats();
  const stats = await gen.run(nc, 'r', 2000, 0.5, 0.1);
  t.equal(stats.published, 1000);
  t.equal(stats.recorded, 800);
  t.equal(sent.length, 1000);
  t.ok(stats.achievedRate > 1500 && stats.achievedRate <= 2000, `rate ${stats.achievedRate}`);
});
