import fc from 'fast-check';
import t from 'tap';
import {
  Bollinger,
  RollingMean,
  RollingStats,
  RollingStdDev,
  RollingVariance,
  ZScore,
} from '../../../actors/indicators/index.js';
import { ErrorCodes } from '../../../kernel/errors.js';
import { naiveBollinger, naiveStats } from '../../../bench/features/naive.js';
import { checkScalar, EPS, makeSeries, expectNear, expectTrue, maxAbs, RUNS } from './helpers.js';

const period = fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 200 }));

/*
 * Tolerances. The mean is compared at 1e-9 relative to the window's largest
 * |x|. The variance is a sum of squared deviations from the mean: in float64
 * each deviation x − mean carries a rounding error of about ε·M (M = largest
 * |x| in the window), whatever the algorithm, and the naive two-pass
 * reference has it too. So two correct computations of σ² can differ by
 * ~ε·M·σ, which is far above 1e-9·σ² when σ ≪ M (e.g. values ~1e12 with a
 * dispersion of ~1e6: σ² ~ 1e12 but ε·M·σ ~ 2e2·…). The allowance is
 * K·ε·M·(σ + ε·M) (an update adds one such error, the exact
 * re-sum bounds them to one window; measured constants reach ~20 at n = 2, hence
 * K = 64 + 8·n); 1e-9 relative still applies when σ is
 * not small against M. σ and the z-score (a quotient by σ) follow from it;
 * the z-score and %b are not compared where σ is at rounding level (≤ 1e3·ε·M),
 * where they are noise in the reference too, but must stay finite.
 */
function varianceAbs(xs: Float64Array, end: number, n: number, sd: number): number {
  // Errors accumulate from the last exact re-sum, at most n updates back: they
  // scale with the dispersion of the last 2n values, not only the current window's.
  const m = maxAbs(xs, end - 2 * n, end);
  const sd2 = naiveStats(xs, end, Math.min(end, 2 * n)).stddev;
  return (64 + 8 * n) * EPS * m * (Math.max(sd, sd2) + EPS * m);
}

function checkStats(s: RollingStats, xs: Float64Array, end: number, n: number): void {
  const want = naiveStats(xs, end, n);
  if (end < n) {
    expectTrue(
      'NaN while warming up',
      end,
      [s.mean, s.variance, s.stddev, s.zscore].every(Number.isNaN),
    );
    return;
  }
  const m = maxAbs(xs, end - n, end);
  expectNear('mean', end, s.mean, want.mean, m);
  const va = varianceAbs(xs, end, n, want.stddev);
  expectNear('variance', end, s.variance, want.variance, 0, va);
  // |√a − √b| = |a − b| / (√a + √b)
  expectNear('stddev', end, s.stddev, want.stddev, 0, Math.sqrt(va));
  if (want.stddev > 1e3 * EPS * m) {
    // z = d / σ: the error of d (as the mean's) over σ, plus |z| × half σ²'s relative allowance
    const zAbs =
      ((64 + 8 * n) * EPS * m) / want.stddev + (Math.abs(want.zscore) * va) / want.variance;
    expectNear('zscore', end, s.zscore, want.zscore, 1, zAbs);
  } else {
    expectTrue('zscore finite and |z| ≤ √n', end, Math.abs(s.zscore) <= Math.sqrt(n));
  }
}

void t.test('rolling mean, variance, stddev, z-score equal the two-pass window stats', (t) => {
  const common = {
    param: period,
    maxLength: 3000,
    warm: (p: number) => p,
    extra: (ind: RollingStats, xs: Float64Array, end: number, p: number) =>
      checkStats(ind, xs, end, p),
  };
  const mean = checkScalar({
    ...common,
    make: (p) => new RollingMean(p),
    naive: (xs, end, p) => naiveStats(xs, end, p).mean,
    tol: (xs, end, p) => ({ scale: maxAbs(xs, end - p, end) }),
  });
  const variance = checkScalar({
    ...common,
    make: (p) => new RollingVariance(p),
    naive: (xs, end, p) => naiveStats(xs, end, p).variance,
    tol: (xs, end, p, v) => ({ abs: end < p ? 0 : varianceAbs(xs, end, p, Math.sqrt(v)) }),
  });
  const sd = checkScalar({
    ...common,
    make: (p) => new RollingStdDev(p),
    naive: (xs, end, p) => naiveStats(xs, end, p).stddev,
    tol: (xs, end, p, s) => ({ abs: end < p ? 0 : Math.sqrt(varianceAbs(xs, end, p, s)) }),
  });
  // z-score: `value` checked through `extra` (checkStats) with its σ-dependent rule.
  const z = checkScalar({
    ...common,
    make: (p) => new ZScore(p),
    naive: () => Number.NaN,
    tol: () => ({}),
    numRuns: 0,
  });
  t.equal(z.runs, 0);
  for (const r of [mean, variance, sd]) {
    t.equal(r.runs, RUNS.numRuns);
    t.ok(r.steps > 10_000, `${r.steps} steps compared`);
  }
  t.end();
});

void t.test('z-score `value` follows the zscore field; constant windows give 0', (t) => {
  const z = new ZScore(4);
  for (const x of [5, 5, 5]) z.update(x);
  t.ok(Number.isNaN(z.value));
  t.notOk(z.ready);
  z.update(5);
  t.equal(z.value, 0);
  t.equal(z.stddev, 0);
  t.ok(z.ready);
  z.update(9); // window 5 5 5 9: mean 6, σ² = (1+1+1+9)/4 = 3
  t.equal(z.mean, 6);
  t.ok(Math.abs(z.variance - 3) < 1e-12);
  t.ok(Math.abs(z.value - 3 / Math.sqrt(3)) < 1e-12);
  const v = new RollingVariance(2);
  const sd = new RollingStdDev(2);
  for (const x of [1, 3]) {
    v.update(x);
    sd.update(x);
  }
  t.equal(v.value, 1);
  t.equal(sd.value, 1);
  t.end();
});

void t.test('Bollinger bands and %b equal the naive window computation', (t) => {
  let runs = 0;
  let steps = 0;
  const r = checkScalar({
    param: period,
    maxLength: 2000,
    make: (p) => new Bollinger(p, 2),
    warm: (p) => p,
    naive: (xs, end, p) => naiveBollinger(xs, end, p, 2).middle,
    tol: (xs, end, p) => ({ scale: maxAbs(xs, end - p, end) }),
  });
  t.equal(r.runs, RUNS.numRuns);
  fc.assert(
    fc.property(
      fc.record({
        seed: fc.integer({ min: 0, max: 1e9 }),
        length: fc.integer({ min: 1, max: 2000 }),
        level: fc.constantFrom(1e-8, 1, 1e12),
        kind: fc.constantFrom('walk' as const, 'constant' as const, 'flat-noise' as const),
      }),
      period,
      // k = 0 or a sensible multiple (a denormal k makes the band width underflow)
      fc.oneof(fc.constant(0), fc.double({ min: 0.1, max: 4, noNaN: true })),
      (sp, p, k) => {
        runs++;
        const xs = makeSeriesLocal(sp);
        const b = new Bollinger(p, k);
        for (let i = 0; i < xs.length; i++) {
          b.update(xs[i]!);
          const end = i + 1;
          const want = naiveBollinger(xs, end, p, k);
          expectTrue('ready', end, b.ready === end >= p);
          if (end < p) {
            expectTrue('NaN', end, [b.upper, b.middle, b.lower, b.pctb].every(Number.isNaN));
            continue;
          }
          const m = maxAbs(xs, end - p, end);
          const sd = (want.upper - want.middle) / (k || 1);
          // the bands carry k × the σ allowance (see the variance note above)
          const bandAbs = k * Math.sqrt(varianceAbs(xs, end, p, Math.abs(sd)));
          expectNear('upper', end, b.upper, want.upper, m, bandAbs);
          expectNear('middle', end, b.middle, want.middle, m);
          expectNear('lower', end, b.lower, want.lower, m, bandAbs);
          if (k * Math.abs(sd) > 1e3 * EPS * m * Math.max(1, k)) {
            const w = want.upper - want.lower;
            expectNear(
              'pctb',
              end,
              b.pctb,
              want.pctb,
              1,
              (2 * ((64 + 8 * p) * EPS * m + bandAbs)) / w,
            );
          } else {
            expectTrue('pctb finite', end, Number.isFinite(b.pctb));
          }
          steps++;
        }
        return true;
      },
    ),
    RUNS,
  );
  t.equal(runs, RUNS.numRuns);
  t.ok(steps > 5000, `${steps} steps compared`);
  t.end();
});

void t.test('Bollinger by hand: σ = 0 gives %b 0.5; value is the middle band', (t) => {
  const b = new Bollinger(3, 2);
  b.update(10);
  b.update(10);
  t.notOk(b.ready);
  b.update(10);
  t.ok(b.ready);
  t.same([b.upper, b.middle, b.lower, b.pctb, b.value], [10, 10, 10, 0.5, 10]);
  b.update(13); // window 10 10 13: mean 11, σ = √2
  t.ok(Math.abs(b.upper - (11 + 2 * Math.SQRT2)) < 1e-12);
  t.ok(Math.abs(b.pctb - (13 - (11 - 2 * Math.SQRT2)) / (4 * Math.SQRT2)) < 1e-12);
  b.reset();
  t.notOk(b.ready);
  t.ok(Number.isNaN(b.upper) && Number.isNaN(b.pctb));
  t.end();
});

void t.test('bad parameters throw QLN_INVALID_ARGUMENT', (t) => {
  const makers = [
    (p: number) => new RollingStats(p),
    (p: number) => new RollingMean(p),
    (p: number) => new RollingVariance(p),
    (p: number) => new RollingStdDev(p),
    (p: number) => new ZScore(p),
    (p: number) => new Bollinger(p),
  ];
  let n = 0;
  for (const make of makers) {
    for (const bad of [0, -3, 1.5, Number.NaN, 2e6]) {
      t.throws(() => make(bad), { code: ErrorCodes.INVALID_ARGUMENT, message: /period/ });
      n++;
    }
  }
  for (const k of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.throws(() => new Bollinger(20, k), { code: ErrorCodes.INVALID_ARGUMENT, message: /\bk\b/ });
    n++;
  }
  t.equal(n, 33);
  t.end();
});

function makeSeriesLocal(sp: {
  seed: number;
  length: number;
  level: number;
  kind: 'walk' | 'constant' | 'flat-noise';
}): Float64Array {
  return makeSeries(sp);
}
