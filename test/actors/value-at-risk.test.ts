import fc from 'fast-check';
import t from 'tap';
import {
  historicalRank,
  normalQuantile,
  sampleStdev,
  selectKth,
  valueAtRisk,
} from '../../actors/value-at-risk.js';

/** Ten returns summing to 0, squares summing to 0.007 (by hand). */
const R = [0.01, -0.02, 0.03, -0.05, 0, 0.02, -0.01, 0.04, -0.03, 0.01];

/** Naive reference: sort ascending, take the ⌈n(1 − c)⌉-th smallest, negate. */
function naiveHistorical(xs: readonly number[], c: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  let k = Math.ceil(xs.length * (1 - c) - 1e-9);
  if (k < 1) k = 1;
  return Math.max(0, -sorted[k - 1]!);
}

/** Naive reference: two-pass sample stdev with reduce. */
function naiveStdev(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
}

void t.test('normal quantile: known values', (t) => {
  const known: Array<[number, number]> = [
    [0.5, 0],
    [0.9, 1.2815515655446004],
    [0.95, 1.6448536269514722],
    [0.975, 1.959963984540054],
    [0.99, 2.3263478740408408],
    [0.999, 3.090232306167813],
    [0.01, -2.3263478740408408],
  ];
  for (const [p, z] of known) t.ok(Math.abs(normalQuantile(p) - z) < 1e-8, `Φ⁻¹(${p}) ≈ ${z}`);
  t.equal(normalQuantile(0), -Infinity);
  t.equal(normalQuantile(1), Infinity);
  t.ok(Number.isNaN(normalQuantile(1.5)));
  t.end();
});

void t.test('historical VaR by hand: the ⌈n(1 − c)⌉-th worst P&L', (t) => {
  const a = Float64Array.from(R);
  t.equal(historicalRank(10, 0.9), 0, '10 × 0.1 = 1 (not 1.0000000000000009 → 2)');
  t.equal(historicalRank(100, 0.99), 0);
  t.equal(historicalRank(250, 0.99), 2, '2.5 → the 3rd worst');
  t.equal(historicalRank(10, 0.51), 4);
  t.equal(valueAtRisk(Float64Array.from(R), 10, 'historical', 0.9), 0.05, 'worst: −0.05');
  t.equal(valueAtRisk(Float64Array.from(R), 10, 'historical', 0.8), 0.03, '2nd worst: −0.03');
  t.equal(valueAtRisk(a, 10, 'historical', 0.7), 0.02, '3rd worst: −0.02');
  t.equal(valueAtRisk(Float64Array.from([0.01, 0.02, 0.03]), 3, 'historical', 0.9), 0, 'all gains');
  t.equal(valueAtRisk(Float64Array.from(R), 0, 'historical', 0.9), 0, 'no data');
  t.equal(valueAtRisk(Float64Array.from(R), 4, 'historical', 0.9), 0.05, 'first n only');
  t.equal(
    valueAtRisk(Float64Array.from(R), 3, 'historical', 0.9),
    0.02,
    'first 3: 0.01 −0.02 0.03',
  );
  t.end();
});

void t.test('parametric VaR by hand: z(c) × sample stdev', (t) => {
  // mean 0, Σr² = 0.007, n − 1 = 9
  const sigma = Math.sqrt(0.007 / 9);
  t.ok(Math.abs(sampleStdev(Float64Array.from(R), 10) - sigma) < 1e-15);
  const v = valueAtRisk(Float64Array.from(R), 10, 'parametric', 0.99);
  t.ok(Math.abs(v - 2.3263478740408408 * sigma) < 1e-9, `${v} ≈ 2.32635 × ${sigma}`);
  t.equal(valueAtRisk(Float64Array.from([0.5]), 1, 'parametric', 0.99), 0, 'one value: σ = 0');
  t.equal(sampleStdev(Float64Array.from([1, 1, 1]), 3), 0);
  t.end();
});

void t.test('property: valueAtRisk equals the naive sort / two-pass references', (t) => {
  const pnl = new Float64Array(300);
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 300 }),
      fc.double({ min: 0.5001, max: 0.9999, noNaN: true }),
      (xs, c) => {
        pnl.set(xs);
        const h = valueAtRisk(pnl, xs.length, 'historical', c);
        if (h !== naiveHistorical(xs, c)) return false;
        pnl.set(xs);
        const p = valueAtRisk(pnl, xs.length, 'parametric', c);
        const want = Math.max(0, normalQuantile(c) * naiveStdev(xs));
        return Math.abs(p - want) <= 1e-9 * Math.max(1, want);
      },
    ),
    { numRuns: 500 },
  );
  t.end();
});

void t.test('property: selectKth is the k-th of the sorted values, ties and all', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: -5, max: 5 }), { minLength: 1, maxLength: 64 }),
      fc.nat(),
      (xs, kk) => {
        const k = kk % xs.length;
        const a = Float64Array.from(xs);
        const got = selectKth(a, xs.length, k);
        const sorted = [...xs].sort((x, y) => x - y);
        return got === sorted[k] && [...a].sort((x, y) => x - y).join() === sorted.join();
      },
    ),
    { numRuns: 1000 },
  );
  t.end();
});
