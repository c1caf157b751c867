import fc from 'fast-check';
import t from 'tap';
import { MACD, RSI } from '../../../actors/indicators/index.js';
import { ErrorCodes } from '../../../kernel/errors.js';
import { naiveMacd, naiveRsi } from '../../../bench/features/naive.js';
import {
  checkScalar,
  expectNear,
  expectTrue,
  makeSeries,
  maxAbs,
  RUNS,
  seriesParams,
} from './helpers.js';

const period = fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 100 }));

void t.test('RSI equals Wilder’s recursion rerun from the first value at every step', (t) => {
  // RSI lives on a 0–100 scale: compared within 1e-9 relative or 1e-9 absolute.
  const r = checkScalar({
    param: period,
    maxLength: 1500,
    make: (p) => new RSI(p),
    warm: (p) => p + 1,
    naive: naiveRsi,
    tol: () => ({ scale: 1 }),
  });
  t.equal(r.runs, RUNS.numRuns);
  t.ok(r.steps > 5000, `${r.steps} steps compared`);
  t.end();
});

void t.test('RSI by hand: 100 with only gains, 50 when flat, 0 with only losses', (t) => {
  const up = new RSI(2);
  const flat = new RSI(2);
  const down = new RSI(2);
  for (const [i, x] of [1, 2, 3].entries()) {
    up.update(x);
    flat.update(7);
    down.update(10 - x);
    t.equal(up.ready, i === 2, `ready after ${i + 1} values: ${up.ready}`);
  }
  t.equal(up.value, 100);
  t.equal(flat.value, 50);
  t.equal(down.value, 0);
  // one loss of 2 after gains of 1, 1: avgGain = (1·1 + 0)/2 = 0.5, avgLoss = (0 + 2)/2 = 1
  up.update(1);
  t.equal(up.avgGain, 0.5);
  t.equal(up.avgLoss, 1);
  t.ok(Math.abs(up.value - 100 / 3) < 1e-12);
  t.end();
});

const macdParams = fc
  .tuple(
    fc.integer({ min: 1, max: 30 }),
    fc.integer({ min: 1, max: 40 }),
    fc.integer({ min: 1, max: 20 }),
  )
  .map(([fast, extra, signal]) => ({ fast, slow: fast + extra, signal }));

void t.test('MACD line, signal and histogram equal the from-scratch EMAs at every step', (t) => {
  let runs = 0;
  let steps = 0;
  fc.assert(
    fc.property(seriesParams(700), macdParams, (sp, { fast, slow, signal }) => {
      runs++;
      const xs = makeSeries(sp);
      const m = new MACD(fast, slow, signal);
      const first: number[] = [];
      for (let i = 0; i < xs.length; i++) {
        m.update(xs[i]!);
        const end = i + 1;
        const want = naiveMacd(xs, end, fast, slow, signal);
        expectTrue('line NaN until slow values', end, Number.isNaN(m.line) === end < slow);
        expectTrue('ready at slow + signal − 1', end, m.ready === end >= slow + signal - 1);
        expectTrue('signal NaN until ready', end, Number.isNaN(m.signal) === !m.ready);
        // Differences of EMAs of prices: compared on the scale of the prices.
        const scale = maxAbs(xs, 0, end);
        expectNear('line', end, m.line, want.line, scale);
        expectNear('value = line', end, m.value, want.line, scale);
        expectNear('signal', end, m.signal, want.signal, scale);
        expectNear('hist', end, m.hist, want.hist, scale);
        first.push(m.hist);
        steps++;
      }
      m.reset();
      expectTrue('reset', 0, !m.ready && Number.isNaN(m.line) && Number.isNaN(m.hist));
      for (let i = 0; i < xs.length; i++) {
        m.update(xs[i]!);
        expectTrue('replay after reset', i + 1, Object.is(m.hist, first[i]));
      }
      return true;
    }),
    RUNS,
  );
  t.equal(runs, RUNS.numRuns);
  t.ok(steps > 2000, `${steps} steps compared`);
  t.end();
});

void t.test('bad parameters throw QLN_INVALID_ARGUMENT', (t) => {
  let n = 0;
  for (const bad of [0, -1, 1.5, Number.NaN, 1e9]) {
    t.throws(() => new RSI(bad), { code: ErrorCodes.INVALID_ARGUMENT, message: /period/ });
    t.throws(() => new MACD(bad, 26, 9), { code: ErrorCodes.INVALID_ARGUMENT, message: /fast/ });
    t.throws(() => new MACD(12, bad, 9), { code: ErrorCodes.INVALID_ARGUMENT, message: /slow/ });
    t.throws(() => new MACD(12, 26, bad), { code: ErrorCodes.INVALID_ARGUMENT, message: /signal/ });
    n += 4;
  }
  t.throws(() => new MACD(26, 12, 9), { code: ErrorCodes.INVALID_ARGUMENT, message: /slow/ });
  t.throws(() => new MACD(12, 12, 9), { code: ErrorCodes.INVALID_ARGUMENT, message: /slow/ });
  t.equal(n, 20);
  const d = new MACD();
  t.same([d.fast, d.slow, d.signalPeriod], [12, 26, 9]);
  t.end();
});
