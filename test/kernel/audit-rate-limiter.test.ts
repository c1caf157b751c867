import fc from 'fast-check';
import t from 'tap';
import { AuditRateLimiter, OVERFLOW_SOURCE } from '../../kernel/audit-rate-limiter.js';

void t.test('per source per second, then the suppressed count at the window end', (t) => {
  const l = new AuditRateLimiter({ perSourcePerSec: 3, totalPerSec: 100 });
  const passed = Array.from({ length: 10 }, (_, i) => l.allow('a', 1000 + i));
  t.same(passed, [true, true, true, false, false, false, false, false, false, false]);
  t.ok(l.allow('b', 1010), 'another source has its own share');
  t.same(l.drain(1500), [], 'nothing reported before the window ends');
  t.same(l.drain(2000), [{ source: 'a', suppressed: 7 }]);
  t.same(l.drain(3000), [], 'reported once');
  t.equal(l.suppressedTotal, 7);
  t.ok(l.allow('a', 3001), 'a new window lets it through again');
  t.end();
});

void t.test('total cap over all sources', (t) => {
  const l = new AuditRateLimiter({ perSourcePerSec: 5, totalPerSec: 8 });
  let n = 0;
  for (let s = 0; s < 10; s++) if (l.allow(`s${s}`, 0)) n++;
  t.equal(n, 8);
  t.equal(l.suppressedTotal, 2);
  t.end();
});

void t.test('sources beyond maxSources share the overflow bucket', (t) => {
  const l = new AuditRateLimiter({ perSourcePerSec: 1, totalPerSec: 1000, maxSources: 4 });
  for (let s = 0; s < 20; s++) l.allow(`s${s}`, 0);
  const r = l.drain(1000);
  t.same(r, [{ source: OVERFLOW_SOURCE, suppressed: 15 }], '4 own, 1 overflow let through');
  t.end();
});

void t.test(
  'property: passed + suppressed = offered; passed per window and source bounded',
  (t) => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 50 })), {
          maxLength: 400,
        }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 30 }),
        (steps, per, total) => {
          const l = new AuditRateLimiter({ perSourcePerSec: per, totalPerSec: total });
          let now = 0;
          let passed = 0;
          const perWindow = new Map<string, number>();
          let windowStart = -Infinity;
          let windowTotal = 0;
          for (const [src, dt] of steps) {
            now += dt;
            if (now - windowStart >= 1000) {
              windowStart = now;
              perWindow.clear();
              windowTotal = 0;
            }
            if (l.allow(`s${src}`, now)) {
              passed++;
              windowTotal++;
              const k = `s${src}`;
              perWindow.set(k, (perWindow.get(k) ?? 0) + 1);
              if (perWindow.get(k)! > per || windowTotal > total) return false;
            }
          }
          let reported = 0;
          for (const s of l.drain(now + 1000)) reported += s.suppressed;
          return passed + l.suppressedTotal === steps.length && reported === l.suppressedTotal;
        },
      ),
      { numRuns: 300 },
    );
    t.end();
  },
);
