import fc from 'fast-check';
import t from 'tap';
import { EMA, SMA, WMA } from '../../../actors/indicators/index.js';
import { ErrorCodes } from '../../../kernel/errors.js';
import { naiveEma, naiveSma, naiveWma } from '../../../bench/features/naive.js';
import { checkScalar, RUNS } from './helpers.js';

const period = fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 200 }));

void t.test(
  'SMA equals the window mean at every step (random walks, constant, 1e-8 … 1e12)',
  (t) => {
    const r = checkScalar({
      param: period,
      maxLength: 3000,
      make: (p) => new SMA(p),
      warm: (p) => p,
      naive: naiveSma,
    });
    t.equal(r.runs, RUNS.numRuns);
    t.ok(r.steps > 10_000, `${r.steps} steps compared`);
    t.end();
  },
);

void t.test('EMA equals the SMA-seeded weighted sum at every step', (t) => {
  // The reference is O(history) per step: shorter series.
  const r = checkScalar({
    param: period,
    maxLength: 800,
    make: (p) => new EMA(p),
    warm: (p) => p,
    naive: naiveEma,
  });
  t.equal(r.runs, RUNS.numRuns);
  t.ok(r.steps > 2000, `${r.steps} steps compared`);
  t.end();
});

void t.test('WMA equals the linearly weighted window sum at every step', (t) => {
  const r = checkScalar({
    param: period,
    maxLength: 3000,
    make: (p) => new WMA(p),
    warm: (p) => p,
    naive: naiveWma,
  });
  t.equal(r.runs, RUNS.numRuns);
  t.ok(r.steps > 10_000, `${r.steps} steps compared`);
  t.end();
});

void t.test('warm-up by hand: SMA(3), EMA(3), WMA(3) on 1, 2, 3, 4', (t) => {
  const sma = new SMA(3);
  const ema = new EMA(3);
  const wma = new WMA(3);
  for (const x of [1, 2]) {
    sma.update(x);
    ema.update(x);
    wma.update(x);
  }
  t.ok(Number.isNaN(sma.value) && Number.isNaN(ema.value) && Number.isNaN(wma.value));
  t.notOk(sma.ready || ema.ready || wma.ready);
  sma.update(3);
  ema.update(3);
  wma.update(3);
  t.equal(sma.value, 2);
  t.equal(ema.value, 2); // seeded with the SMA
  t.equal(wma.value, (1 + 4 + 9) / 6);
  t.ok(sma.ready && ema.ready && wma.ready);
  sma.update(4);
  ema.update(4);
  wma.update(4);
  t.equal(sma.value, 3);
  t.equal(ema.value, 2 + 0.5 * (4 - 2));
  t.equal(wma.value, (2 + 6 + 12) / 6);
  t.end();
});

void t.test('bad periods throw QLN_INVALID_ARGUMENT', (t) => {
  let n = 0;
  for (const make of [
    (p: number) => new SMA(p),
    (p: number) => new EMA(p),
    (p: number) => new WMA(p),
  ]) {
    for (const bad of [
      0,
      -1,
      2.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      1e7,
      '5' as unknown as number,
    ]) {
      t.throws(() => make(bad), { code: ErrorCodes.INVALID_ARGUMENT, message: /period/ });
      n++;
    }
  }
  t.equal(n, 21);
  t.end();
});
