/**
 * Unit and property tests of the send table: (symbol, seq) ↔ tick index,
 * every arrival counted once as delivered, duplicate, stale or unknown,
 * fan-out deliveries, warm-up and cold-start recording, and the
 * coordinated-omission correction: a sender that stalls shows the stall as
 * latency of the ticks it held back, while the uncorrected figure hides it.
 */
import fc from 'fast-check';
import t from 'tap';
import { PacingSchedule } from '../../../bench/harness/pacing-schedule.js';
import { SendTable, advanceSeq } from '../../../bench/harness/send-table.js';

/** Send every tick of a table at its intended time. */
function sendAll(table: SendTable): void {
  for (let k = 0; k < table.schedule.total; k++) table.markSent(k, table.schedule.intendedUs(k));
}

void t.test('tick k is symbol k mod N with seq continuing from seqStart', (t) => {
  const table = new SendTable({
    schedule: new PacingSchedule(1000, 7, 0),
    symbols: 3,
    seqStart: Float64Array.from([10, 20, 30]),
  });
  t.same(
    Array.from({ length: 7 }, (_, k) => [table.symbolOf(k), table.seqOf(k)]),
    [
      [0, 10],
      [1, 20],
      [2, 30],
      [0, 11],
      [1, 21],
      [2, 31],
      [0, 12],
    ],
  );
  t.end();
});

void t.test('arrivals: delivered once, then duplicate; stale, unknown and unsent counted', (t) => {
  const table = new SendTable({
    schedule: new PacingSchedule(1000, 4, 0),
    symbols: 2,
    seqStart: Float64Array.from([5, 5]),
  });
  table.markSent(0, 0);
  table.markSent(1, 1000);
  t.ok(table.arrive(0, 5, 300), 'B0000 seq 5 is tick 0');
  t.notOk(table.arrive(0, 5, 400), 'again: duplicate');
  t.notOk(table.arrive(1, 4, 400), 'seq below seqStart: stale (an earlier step)');
  t.notOk(table.arrive(0, 6, 400), 'tick 2 not sent yet: unknown');
  t.notOk(table.arrive(7, 5, 400), 'symbol out of range: unknown');
  t.notOk(table.arrive(1, -1, 400), 'no seq parsed: unknown');
  t.ok(table.arrive(1, 5, 1600), 'tick 1');
  t.same(table.counts, {
    delivered: 2,
    measured: 2,
    ticksMatched: 2,
    duplicates: 1,
    stale: 1,
    unknown: 3,
  });
  t.equal(table.outstanding(), 0, 'both sent ticks arrived');
  const c = table.corrected.summary();
  t.equal(c.count, 2);
  t.equal(c.min, 300);
  t.equal(c.max, 600);
  t.end();
});

void t.test('a reused ring slot does not match an old tick', (t) => {
  const table = new SendTable({
    schedule: new PacingSchedule(1000, 10, 0),
    symbols: 1,
    capacity: 4,
  });
  for (let k = 0; k < 6; k++) table.markSent(k, k * 1000);
  t.notOk(table.arriveTick(1, 9000), 'tick 1 was overwritten by tick 5');
  t.ok(table.arriveTick(5, 9000));
  t.equal(table.counts.unknown, 1);
  t.end();
});

void t.test('fan-out: each tick expected once per subscriber', (t) => {
  const table = new SendTable({ schedule: new PacingSchedule(100, 2, 0), symbols: 1, expected: 3 });
  sendAll(table);
  for (let i = 0; i < 3; i++) t.ok(table.arriveTick(0, 100));
  t.notOk(table.arriveTick(0, 100), 'a fourth delivery is a duplicate');
  t.ok(table.arriveTick(1, 10_100));
  t.same(
    { ...table.counts },
    { delivered: 4, measured: 4, ticksMatched: 2, duplicates: 1, stale: 0, unknown: 0 },
  );
  t.equal(table.outstanding(), 2, 'tick 1 still expected by two subscribers');
  t.end();
});

void t.test('warm-up ticks are matched, not recorded; cold ticks go to the cold recorder', (t) => {
  const s = new PacingSchedule(1000, 2000, 0); // 2 s
  const table = new SendTable({ schedule: s, symbols: 10, warmupCount: 500, coldEndUs: 1e6 });
  sendAll(table);
  for (let k = 0; k < 2000; k++) table.arriveTick(k, s.intendedUs(k) + 100);
  t.equal(table.counts.delivered, 2000);
  t.equal(table.counts.measured, 1500, 'ticks 500 … 1999');
  t.equal(table.corrected.summary().count, 1500);
  t.equal(table.uncorrected.summary().count, 1500);
  t.equal(table.cold.summary().count, 1000, 'the first second, warm-up included');
  t.equal(table.interval.summary().count, 1500);
  t.end();
});

void t.test('coordinated omission: a 1 s stall in a 10 s run shows as latency', (t) => {
  // 1k ticks/s for 10 s; the sender's ~1 ms timer stalls from 4 s to 5 s, then
  // publishes the backlog at once. The system under test answers instantly.
  const rate = 1000;
  const s = new PacingSchedule(rate, 10_000, 0);
  const table = new SendTable({ schedule: s, symbols: 100 });
  let now = 0;
  while (table.sent < s.total) {
    const due = s.dueBy(now);
    for (let k = table.sent; k < due; k++) {
      table.markSent(k, now);
      table.arriveTick(k, now); // arrival = actual send: zero service time
    }
    now = now >= 4_000_000 && now < 5_000_000 ? 5_000_000 : now + 1000;
  }
  const c = table.corrected.summary();
  const u = table.uncorrected.summary();
  t.equal(c.count, 10_000, 'no sample lost: every held-back tick is a sample');
  t.equal(u.max, 0, 'uncorrected: the stall is invisible');
  // Ticks intended in (4 s, 5 s) left at 5 s: latency uniform from ~1 s down
  // to 0, 10 % of all ticks. So p99 ≈ 900 ms, p99.9 ≈ 990 ms, max ≈ 999 ms.
  t.ok(Math.abs(c.p99 - 900_000) < 0.01 * 900_000, `p99 ${c.p99} ≈ 900 ms`);
  t.ok(Math.abs(c.p999 - 990_000) < 0.01 * 990_000, `p99.9 ${c.p999} ≈ 990 ms`);
  t.ok(c.max >= 998_000 && c.max <= 1_000_000, `max ${c.max} ≈ 999 ms`);
  t.ok(c.p50 <= 1000, `p50 ${c.p50} µs: the rest waited at most one timer turn`);
  t.end();
});

void t.test('property: every tick sent arrives exactly once, in any order', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 50 }),
      fc.integer({ min: 1, max: 500 }),
      fc.integer({ min: 1, max: 5 }),
      fc.integer(),
      (symbols, total, expected, seed) => {
        const table = new SendTable({
          schedule: new PacingSchedule(1000, total, 0),
          symbols,
          expected,
          seqStart: Float64Array.from({ length: symbols }, (_, i) => 1 + ((seed >>> i) & 7)),
        });
        sendAll(table);
        const ids = Array.from({ length: total }, (_, k) => [table.symbolOf(k), table.seqOf(k)]);
        // Shuffle deterministically by the seed.
        ids.sort((a, b) => ((a[0]! * 31 + a[1]! * 17) ^ seed) - ((b[0]! * 31 + b[1]! * 17) ^ seed));
        for (let r = 0; r < expected + 1; r++)
          for (const [sym, seq] of ids) table.arrive(sym!, seq!, 1);
        return (
          table.counts.delivered === total * expected &&
          table.counts.ticksMatched === total &&
          table.counts.duplicates === total &&
          table.counts.unknown === 0 &&
          table.outstanding() === 0
        );
      },
    ),
  );
  t.end();
});

void t.test('advanceSeq continues each symbol after a round-robin step', (t) => {
  t.same(Array.from(advanceSeq(Float64Array.from([1, 1, 1]), 7)), [4, 3, 3]);
  t.same(Array.from(advanceSeq(Float64Array.from([5, 9]), 0)), [5, 9]);
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 100 }),
      fc.integer({ min: 0, max: 10_000 }),
      (n, sent) => {
        const start = new Float64Array(n).fill(1);
        const table = new SendTable({
          schedule: new PacingSchedule(1, sent + 1, 0),
          symbols: n,
          seqStart: start,
        });
        const next = advanceSeq(start, sent);
        // The seq after the last tick of each symbol is what the next step starts with.
        const last = new Float64Array(n).fill(0);
        for (let k = 0; k < sent; k++) last[table.symbolOf(k)] = table.seqOf(k);
        return next.every((v, i) => v === (last[i] === 0 ? 1 : last[i]! + 1));
      },
    ),
  );
  t.end();
});

void t.test('bad options are QLN_INVALID_ARGUMENT', (t) => {
  const schedule = new PacingSchedule(10, 10, 0);
  t.throws(() => new SendTable({ schedule, symbols: 0 }), { code: 'QLN_INVALID_ARGUMENT' });
  t.throws(() => new SendTable({ schedule, symbols: 2, seqStart: new Float64Array(3) }), {
    code: 'QLN_INVALID_ARGUMENT',
  });
  t.throws(() => new SendTable({ schedule, symbols: 1, expected: 0 }), {
    code: 'QLN_INVALID_ARGUMENT',
  });
  t.throws(() => new SendTable({ schedule, symbols: 1, capacity: 12 }), {
    code: 'QLN_INVALID_ARGUMENT',
  });
  t.equal(new SendTable({ schedule, symbols: 1 }).capacity, 1024, 'at least 1,024 slots');
  t.end();
});
