import fc from 'fast-check';
import t from 'tap';
import { LatencyWindow } from '../../cli/latency-window.js';

/** Nearest-rank percentile of a plain array: the reference. */
function naive(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
}

void t.test('empty window: n 0, percentiles null', (t) => {
  const w = new LatencyWindow(16);
  t.same(w.summary(1000, 10_000), { n: 0, p50: null, p90: null, p99: null });
  w.record(500, 0);
  t.same(w.summary(20_000, 10_000), { n: 0, p50: null, p90: null, p99: null }, 'too old');
  t.end();
});

void t.test('NaN and negative latencies are not observations', (t) => {
  const w = new LatencyWindow(16);
  w.record(NaN, 1);
  w.record(-3, 1);
  w.record(7, 1);
  t.same(w.summary(1, 10), { n: 1, p50: 7, p90: 7, p99: 7 });
  t.end();
});

void t.test('percentiles equal a sort of the observations inside the window', (t) => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          gapMs: fc.integer({ min: 0, max: 400 }),
          us: fc.integer({ min: 0, max: 5_000_000 }),
        }),
        { minLength: 1, maxLength: 300 },
      ),
      fc.integer({ min: 1, max: 20_000 }),
      fc.constantFrom(8, 64, 512),
      (obs, windowMs, capacity) => {
        const w = new LatencyWindow(capacity);
        let at = 1_000;
        const seen: Array<{ at: number; us: number }> = [];
        for (const o of obs) {
          at += o.gapMs;
          w.record(o.us, at);
          seen.push({ at, us: o.us });
        }
        // The window holds the newest `capacity` observations seen in the last windowMs.
        const inWindow = seen
          .slice(-capacity)
          .filter((s) => s.at >= at - windowMs)
          .map((s) => s.us);
        const got = w.summary(at, windowMs);
        if (inWindow.length === 0) return got.n === 0 && got.p50 === null;
        return (
          got.n === inWindow.length &&
          got.p50 === naive(inWindow, 0.5) &&
          got.p90 === naive(inWindow, 0.9) &&
          got.p99 === naive(inWindow, 0.99)
        );
      },
    ),
    { numRuns: 300 },
  );
  t.end();
});
