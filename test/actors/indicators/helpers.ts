/**
 * Shared generators and tolerances of the indicator property tests.
 *
 * Series are generated from a fast-check record (seed, length, level, kind)
 * with a local PRNG, so series of thousands of values stay cheap to generate
 * and a failure still reproduces from fast-check's seed and counterexample.
 */
import fc from 'fast-check';

export const EPS = Number.EPSILON;

/** Deterministic PRNG (mulberry32) in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type SeriesKind = 'walk' | 'constant' | 'flat-noise' | 'steps';

export interface SeriesParams {
  seed: number;
  length: number;
  /** Price level: 1e-8, 1, 1e12 (tiny, ordinary, huge) times a factor in [1, 10). */
  level: number;
  kind: SeriesKind;
}

/**
 * Series kinds:
 * - walk: geometric random walk, log steps uniform in ±vol (vol up to 5 %)
 * - constant: one value repeated
 * - flat-noise: level + noise of 1e-6 of the level (tiny dispersion on a big
 *   mean: the hard case of variance and z-score)
 * - steps: a walk that stays flat for runs of ticks (zero changes: RSI, OBV ties)
 */
export function makeSeries(p: SeriesParams): Float64Array {
  const r = prng(p.seed);
  const xs = new Float64Array(p.length);
  const vol = 0.05 * r();
  let x = p.level;
  for (let i = 0; i < p.length; i++) {
    if (p.kind === 'walk') x *= Math.exp(vol * (2 * r() - 1));
    else if (p.kind === 'flat-noise') x = p.level * (1 + 1e-6 * (2 * r() - 1));
    else if (p.kind === 'steps' && r() < 0.3) x *= Math.exp(vol * (2 * r() - 1));
    xs[i] = x;
  }
  return xs;
}

export const LEVELS = [1e-8, 1, 100, 1e12] as const;

/** Series parameters: lengths up to maxLength, every kind and level. */
export function seriesParams(maxLength: number): fc.Arbitrary<SeriesParams> {
  return fc.record({
    seed: fc.integer({ min: 0, max: 0x7fffffff }),
    length: fc.oneof(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: maxLength })),
    level: fc
      .tuple(fc.constantFrom(...LEVELS), fc.double({ min: 1, max: 10, noNaN: true }))
      .map(([l, f]) => l * f),
    kind: fc.constantFrom<SeriesKind>('walk', 'walk', 'constant', 'flat-noise', 'steps'),
  });
}

/** Quantities: positive, some zero, magnitudes from 1e-3 to 1e6. */
export function makeQty(seed: number, n: number): Float64Array {
  const r = prng(seed ^ 0x5bd1e995);
  const q = new Float64Array(n);
  for (let i = 0; i < n; i++) q[i] = r() < 0.1 ? 0 : Math.exp(Math.log(1e-3) + r() * Math.log(1e9));
  return q;
}

/**
 * a ≈ b: both NaN, or |a − b| ≤ 1e-9·max(|a|, |b|, scale) + abs. `scale` is the
 * magnitude the result is computed from (e.g. the price level for a
 * difference of prices), `abs` an extra absolute allowance where float64
 * itself cannot do better (each use explains why).
 */
export function near(a: number, b: number, scale = 0, abs = 0): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  return Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b), scale) + abs;
}

/** Largest |x| of xs[from .. to). */
export function maxAbs(xs: ArrayLike<number>, from: number, to: number): number {
  let m = 0;
  for (let i = Math.max(0, from); i < to; i++) m = Math.max(m, Math.abs(xs[i]!));
  return m;
}

/** A failed comparison as a message (the property returns it to fail with context). */
export class Mismatch extends Error {}

export function expectNear(
  what: string,
  step: number,
  got: number,
  want: number,
  scale = 0,
  abs = 0,
): void {
  if (!near(got, want, scale, abs)) {
    throw new Mismatch(
      `${what} at step ${step}: got ${got}, naive ${want} (scale ${scale}, abs ${abs})`,
    );
  }
}

export function expectTrue(what: string, step: number, ok: boolean): void {
  if (!ok) throw new Mismatch(`${what} at step ${step}`);
}

/** fast-check settings of the long-series properties. */
export const RUNS = { numRuns: 60 };

/** What every single-input indicator has. */
export interface Scalar {
  update(x: number): void;
  readonly value: number;
  readonly ready: boolean;
  reset(): void;
}

export interface ScalarCase<I extends Scalar> {
  /** Parameter of the indicator (period), drawn per run. */
  param: fc.Arbitrary<number>;
  maxLength: number;
  make: (p: number) => I;
  /** Values needed before `ready` (the documented warm-up rule). */
  warm: (p: number) => number;
  naive: (xs: Float64Array, end: number, p: number) => number;
  /** scale / abs of `near` for step `end` (default: relative only). */
  tol?: (
    xs: Float64Array,
    end: number,
    p: number,
    naive: number,
  ) => { scale?: number; abs?: number };
  /** Extra checks per step (multi-output indicators). */
  extra?: (ind: I, xs: Float64Array, end: number, p: number) => void;
  numRuns?: number;
}

/**
 * Property: at every step of random series, `value` equals the naive
 * recomputation within tolerance, `ready` turns true exactly at the warm-up
 * count with `value` NaN before; after reset() the same series replays to
 * bit-identical values. Returns the number of steps compared (> 0 asserted by callers).
 */
export function checkScalar<I extends Scalar>(c: ScalarCase<I>): { runs: number; steps: number } {
  let runs = 0;
  let steps = 0;
  fc.assert(
    fc.property(seriesParams(c.maxLength), c.param, (sp, p) => {
      runs++;
      const xs = makeSeries(sp);
      const ind = c.make(p);
      const w = c.warm(p);
      const first = new Float64Array(xs.length);
      for (let i = 0; i < xs.length; i++) {
        ind.update(xs[i]!);
        const end = i + 1;
        expectTrue(`ready === (${end} >= ${w})`, end, ind.ready === end >= w);
        expectTrue(
          'value NaN exactly while warming up',
          end,
          Number.isNaN(ind.value) === !ind.ready,
        );
        const want = c.naive(xs, end, p);
        const tol = c.tol?.(xs, end, p, want) ?? {};
        expectNear('value', end, ind.value, want, tol.scale, tol.abs);
        c.extra?.(ind, xs, end, p);
        first[i] = ind.value;
        steps++;
      }
      ind.reset();
      expectTrue('reset: not ready', 0, !ind.ready && Number.isNaN(ind.value));
      for (let i = 0; i < xs.length; i++) {
        ind.update(xs[i]!);
        expectTrue('replay after reset is identical', i + 1, Object.is(ind.value, first[i]));
      }
      return true;
    }),
    { numRuns: c.numRuns ?? RUNS.numRuns },
  );
  return { runs, steps };
}
