import fc from 'fast-check';
import t from 'tap';
import { LogReturn, OBV, RealizedVol, VWAP } from '../../../actors/indicators/index.js';
import { ErrorCodes } from '../../../kernel/errors.js';
import {
  naiveLogReturn,
  naiveObv,
  naiveRealizedVol,
  naiveVwap,
} from '../../../bench/features/naive.js';
import {
  checkScalar,
  EPS,
  expectNear,
  expectTrue,
  makeQty,
  makeSeries,
  RUNS,
  seriesParams,
} from './helpers.js';

const period = fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 200 }));

void t.test('realized volatility equals √Σr² over the window at every step', (t) => {
  const r = checkScalar({
    param: period,
    maxLength: 3000,
    make: (p) => new RealizedVol(p),
    warm: (p) => p + 1,
    naive: naiveRealizedVol,
    // A window whose big returns just left keeps a Neumaier residue of
    // ~ε·(the sum before they left): allow 16ε × the RV over the last 2n returns.
    tol: (xs, end, p) => ({
      abs: end <= p ? 0 : 16 * EPS * naiveRealizedVol(xs, end, Math.min(end - 1, 2 * p)),
    }),
  });
  t.equal(r.runs, RUNS.numRuns);
  t.ok(r.steps > 10_000, `${r.steps} steps compared`);
  t.end();
});

void t.test('log return equals ln(x_t / x_{t−1}) at every step', (t) => {
  const r = checkScalar({
    param: fc.constant(0),
    maxLength: 500,
    make: () => new LogReturn(),
    warm: () => 2,
    naive: (xs, end) => naiveLogReturn(xs, end),
  });
  t.equal(r.runs, RUNS.numRuns);
  t.ok(r.steps > 1000, `${r.steps} steps compared`);
  t.end();
});

void t.test('VWAP (rolling and session) equals Σpx·qty / Σqty at every step', (t) => {
  let runs = 0;
  let steps = 0;
  fc.assert(
    fc.property(seriesParams(3000), fc.oneof(fc.constant(0), period), (sp, p) => {
      runs++;
      const px = makeSeries(sp);
      const qty = makeQty(sp.seed, px.length);
      const v = new VWAP(p);
      const first: number[] = [];
      for (let i = 0; i < px.length; i++) {
        v.update(px[i]!, qty[i]!);
        const end = i + 1;
        expectTrue('ready', end, v.ready === end >= Math.max(p, 1));
        const want = naiveVwap(px, qty, end, p);
        expectNear('vwap', end, v.value, want);
        first.push(v.value);
        steps++;
      }
      v.reset();
      for (let i = 0; i < px.length; i++) {
        v.update(px[i]!, qty[i]!);
        expectTrue('replay after reset', i + 1, Object.is(v.value, first[i]));
      }
      return true;
    }),
    RUNS,
  );
  t.equal(runs, RUNS.numRuns);
  t.ok(steps > 10_000, `${steps} steps compared`);
  const z = new VWAP(2);
  z.update(10, 0);
  z.update(11, 0);
  t.ok(z.ready);
  t.ok(Number.isNaN(z.value), 'no volume in the window: NaN');
  z.update(12, 2);
  t.equal(z.value, 12);
  t.end();
});

void t.test('OBV equals the signed volume summed from the first trade at every step', (t) => {
  let runs = 0;
  let steps = 0;
  fc.assert(
    fc.property(seriesParams(3000), (sp) => {
      runs++;
      const px = makeSeries(sp);
      const qty = makeQty(sp.seed, px.length);
      const o = new OBV();
      let absSum = 0;
      for (let i = 0; i < px.length; i++) {
        o.update(px[i]!, qty[i]!);
        absSum += qty[i]!;
        const end = i + 1;
        expectTrue('ready after the first trade', end, o.ready);
        // A running signed sum: its rounding scales with Σ|qty|, not with the (cancelling) result.
        expectNear('obv', end, o.value, naiveObv(px, qty, end), absSum);
        steps++;
      }
      return true;
    }),
    RUNS,
  );
  t.equal(runs, RUNS.numRuns);
  t.ok(steps > 10_000, `${steps} steps compared`);
  const o = new OBV();
  t.ok(Number.isNaN(o.value) && !o.ready);
  o.update(10, 5);
  t.equal(o.value, 0);
  o.update(11, 3);
  o.update(11, 100);
  o.update(9, 1);
  t.equal(o.value, 2);
  o.reset();
  t.ok(Number.isNaN(o.value) && !o.ready);
  t.end();
});

void t.test('bad parameters throw QLN_INVALID_ARGUMENT', (t) => {
  let n = 0;
  for (const bad of [-1, 1.5, Number.NaN, 1e9]) {
    t.throws(() => new VWAP(bad), { code: ErrorCodes.INVALID_ARGUMENT, message: /period/ });
    t.throws(() => new RealizedVol(bad), { code: ErrorCodes.INVALID_ARGUMENT, message: /period/ });
    n += 2;
  }
  t.throws(() => new RealizedVol(0), { code: ErrorCodes.INVALID_ARGUMENT, message: /period/ });
  t.doesNotThrow(() => new VWAP(0), 'period 0 is the session VWAP');
  t.equal(n, 8);
  t.end();
});
