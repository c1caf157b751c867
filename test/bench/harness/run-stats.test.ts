/**
 * Unit and property tests of the statistics across runs: the median (odd,
 * even, non-finite values ignored), the field-by-field median of latency
 * summaries, the least-squares slope used for soak drift, and ratios.
 */
import fc from 'fast-check';
import t from 'tap';
import type { LatencySummary } from '../../../bench/hdr-report.js';
import { median, medianSummary, ratio, slope } from '../../../bench/harness/run-stats.js';

void t.test('median', (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.equal(median([5]), 5);
  t.ok(Number.isNaN(median([])));
  t.equal(median([Number.NaN, 7, Number.POSITIVE_INFINITY, 1]), 4, 'non-finite values ignored');
  t.end();
});

void t.test('property: the median has as many values at or below as at or above it', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: -1e9, max: 1e9, noNaN: true }), { minLength: 1, maxLength: 51 }),
      (xs) => {
        const m = median(xs);
        const below = xs.filter((x) => x <= m).length;
        const above = xs.filter((x) => x >= m).length;
        return below >= xs.length / 2 && above >= xs.length / 2;
      },
    ),
  );
  t.end();
});

const summary = (p99: number, count = 10): LatencySummary => ({
  count,
  min: 1,
  mean: p99 / 2,
  p50: p99 / 4,
  p90: p99 / 2,
  p99,
  p999: p99 * 2,
  max: p99 * 3,
});

void t.test('medianSummary takes each percentile across runs', (t) => {
  const m = medianSummary([summary(100), summary(900, 30), summary(300, 20)]);
  t.equal(m.p99, 300, 'median of the p99s, not the p99 of the medians');
  t.equal(m.p50, 75);
  t.equal(m.count, 20);
  t.equal(m.max, 900);
  t.ok(Number.isNaN(medianSummary([]).p99));
  t.end();
});

void t.test('slope', (t) => {
  t.equal(
    slope([
      [0, 1],
      [1, 3],
      [2, 5],
    ]),
    2,
  );
  t.equal(
    slope([
      [0, 5],
      [10, 5],
    ]),
    0,
  );
  t.ok(Number.isNaN(slope([[1, 1]])));
  t.ok(
    Number.isNaN(
      slope([
        [1, 1],
        [1, 2],
      ]),
    ),
    'no spread in x',
  );
  t.equal(
    slope([
      [0, 0],
      [1, Number.NaN],
      [2, 2],
    ]),
    1,
    'non-finite points skipped',
  );
  fc.assert(
    fc.property(
      fc.double({ min: -100, max: 100, noNaN: true }),
      fc.double({ min: -100, max: 100, noNaN: true }),
      (a, b) => {
        const pts = [0, 1, 2, 3, 7].map((x) => [x, a * x + b] as const);
        return Math.abs(slope(pts) - a) < 1e-6 * (1 + Math.abs(a));
      },
    ),
  );
  t.end();
});

void t.test('ratio', (t) => {
  t.equal(ratio(6, 3), 2);
  t.ok(Number.isNaN(ratio(1, 0)));
  t.ok(Number.isNaN(ratio(Number.NaN, 1)));
  t.end();
});
