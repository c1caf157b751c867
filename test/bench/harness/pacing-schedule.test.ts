/**
 * Unit and property tests of the open-loop pacing schedule: how many ticks
 * are due at any time, that the due count never drifts from rate × elapsed,
 * and that a publisher driven by a jittery ~1 ms timer (simulated clock, no
 * real timers) still offers the rate.
 */
import fc from 'fast-check';
import t from 'tap';
import { PacingSchedule } from '../../../bench/harness/pacing-schedule.js';

void t.test('due counts over time at 1k ticks/s', (t) => {
  const s = new PacingSchedule(1000, 5000, 1_000_000);
  t.equal(s.dueBy(999_999), 0, 'nothing before the start');
  t.equal(s.dueBy(1_000_000), 1, 'tick 0 is due at the start');
  t.equal(s.dueBy(1_000_999), 1, 'tick 1 not before 1 ms');
  t.equal(s.dueBy(1_001_000), 2, 'tick 1 at 1 ms');
  t.equal(s.dueBy(1_500_000), 501, 'half a second: 501 ticks (0 … 500)');
  t.equal(s.dueBy(1e12), 5000, 'never more than the total');
  t.equal(s.intendedUs(0), 1_000_000);
  t.equal(s.intendedUs(250), 1_250_000);
  t.equal(s.endUs, 1_000_000 + 4999 * 1000);
  t.end();
});

void t.test('countBefore gives the warm-up tick count', (t) => {
  const s = PacingSchedule.forDuration(2000, 10, 0);
  t.equal(s.total, 20_000);
  t.equal(s.countBefore(3), 6000, '3 s at 2k/s');
  t.equal(s.countBefore(0), 0);
  t.equal(s.countBefore(100), 20_000, 'capped at the total');
  t.equal(new PacingSchedule(3, 10, 0).countBefore(1), 3, 'ticks at 0, 1/3 and 2/3 s');
  t.end();
});

void t.test('property: due(t) is exactly the ticks intended at or before t (no drift)', (t) => {
  fc.assert(
    fc.property(
      fc.double({ min: 1, max: 500_000, noNaN: true }),
      fc.integer({ min: 1, max: 1_000_000 }),
      fc.double({ min: 0, max: 3.6e9, noNaN: true }),
      (rate, total, elapsedUs) => {
        const s = new PacingSchedule(rate, total, 1.7e15);
        const now = 1.7e15 + elapsedUs;
        const due = s.dueBy(now);
        // Within one tick of rate × elapsed (+1: tick 0 is due at the start).
        const ideal = Math.min(total, (elapsedUs * rate) / 1e6 + 1);
        if (Math.abs(due - ideal) > 1 + 1e-6) return false;
        // Every due tick is intended at or before now; the next one after it
        // (tolerance: one µs-double ulp at 1.7e15).
        if (due > 0 && s.intendedUs(due - 1) > now + 1) return false;
        if (due < total && s.intendedUs(due) < now - 1) return false;
        return true;
      },
    ),
  );
  t.end();
});

void t.test('property: due counts never go backwards', (t) => {
  fc.assert(
    fc.property(
      fc.double({ min: 1, max: 200_000, noNaN: true }),
      fc.array(fc.double({ min: 0, max: 1e7, noNaN: true }), { minLength: 2, maxLength: 50 }),
      (rate, times) => {
        const s = new PacingSchedule(rate, 1_000_000, 0);
        const sorted = [...times].sort((a, b) => a - b);
        for (let i = 1; i < sorted.length; i++) {
          if (s.dueBy(sorted[i]!) < s.dueBy(sorted[i - 1]!)) return false;
        }
        return true;
      },
    ),
  );
  t.end();
});

void t.test('property: a jittery 1 ms timer still offers the rate (simulated clock)', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 100, max: 100_000 }),
      fc.array(fc.integer({ min: 1000, max: 3000 }), { minLength: 1, maxLength: 64 }),
      (rate, jitters) => {
        const seconds = 2;
        const s = PacingSchedule.forDuration(rate, seconds, 0);
        let now = 0;
        let sent = 0;
        let turn = 0;
        while (sent < s.total) {
          sent = s.dueBy(now); // publish everything due
          now += jitters[turn++ % jitters.length]!; // the timer fires 1-3 ms later
        }
        // Achieved rate over the schedule: every tick went out, and the last
        // publish was at most one timer turn after the last intended time.
        const lastPublish = now - jitters[(turn - 1) % jitters.length]!;
        const achieved = sent / Math.max(seconds, lastPublish / 1e6);
        return sent === s.total && achieved > rate * 0.99 && lastPublish - s.endUs <= 3000;
      },
    ),
  );
  t.end();
});

void t.test('bad arguments are QLN_INVALID_ARGUMENT', (t) => {
  t.throws(() => new PacingSchedule(0, 10, 0), { code: 'QLN_INVALID_ARGUMENT' });
  t.throws(() => new PacingSchedule(Number.NaN, 10, 0), { code: 'QLN_INVALID_ARGUMENT' });
  t.throws(() => new PacingSchedule(10, 1.5, 0), { code: 'QLN_INVALID_ARGUMENT' });
  t.throws(() => new PacingSchedule(10, 10, Number.POSITIVE_INFINITY), {
    code: 'QLN_INVALID_ARGUMENT',
  });
  t.throws(() => PacingSchedule.forDuration(10, 0, 0), { code: 'QLN_INVALID_ARGUMENT' });
  t.end();
});
