import fc from 'fast-check';
import t from 'tap';
import { ATR, Imbalance, RelSpread, Spread } from '../../../actors/indicators/index.js';
import { ErrorCodes } from '../../../kernel/errors.js';
import {
  naiveAtr,
  naiveImbalance,
  naiveRelSpread,
  naiveSpread,
} from '../../../bench/features/naive.js';
import { expectNear, expectTrue, makeSeries, prng, RUNS, seriesParams } from './helpers.js';

/** Bars from a close series: high/low stick out of open/close by up to 1 % (0 on constant series). */
function bars(closes: Float64Array, seed: number): { h: Float64Array; l: Float64Array } {
  const r = prng(seed ^ 0x1234567);
  const h = new Float64Array(closes.length);
  const l = new Float64Array(closes.length);
  for (let i = 0; i < closes.length; i++) {
    const o = i === 0 ? closes[0]! : closes[i - 1]!;
    const c = closes[i]!;
    const flat = closes[0] === closes[closes.length - 1] && o === c;
    h[i] = Math.max(o, c) * (flat ? 1 : 1 + 0.01 * r());
    l[i] = Math.min(o, c) * (flat ? 1 : 1 - 0.01 * r());
  }
  return { h, l };
}

void t.test('ATR equals Wilder’s recursion over true ranges rerun from the first bar', (t) => {
  let runs = 0;
  let steps = 0;
  fc.assert(
    fc.property(
      seriesParams(1500),
      fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 100 })),
      (sp, p) => {
        runs++;
        const c = makeSeries(sp);
        const { h, l } = bars(c, sp.seed);
        const a = new ATR(p);
        const first: number[] = [];
        for (let i = 0; i < c.length; i++) {
          a.update(h[i]!, l[i]!, c[i]!);
          const end = i + 1;
          expectTrue('ready after period bars', end, a.ready === end >= p);
          expectTrue('NaN until ready', end, Number.isNaN(a.value) === !a.ready);
          // TRs are differences of prices: compared on the scale of the prices.
          expectNear('atr', end, a.value, naiveAtr(h, l, c, end, p), 1e-6 * c[i]!);
          first.push(a.value);
          steps++;
        }
        a.reset();
        for (let i = 0; i < c.length; i++) {
          a.update(h[i]!, l[i]!, c[i]!);
          expectTrue('replay after reset', i + 1, Object.is(a.value, first[i]));
        }
        return true;
      },
    ),
    RUNS,
  );
  t.equal(runs, RUNS.numRuns);
  t.ok(steps > 5000, `${steps} steps compared`);
  const a = new ATR(2);
  a.update(11, 9, 10); // TR 2 (first bar: h − l)
  t.notOk(a.ready);
  a.update(14, 12, 13); // TR max(2, |14 − 10|, |12 − 10|) = 4
  t.equal(a.value, 3);
  a.update(13, 12, 12); // TR max(1, 0, 1) = 1 → (3·1 + 1)/2
  t.equal(a.value, 2);
  t.equal(a.tr, 1);
  t.throws(() => new ATR(0), { code: ErrorCodes.INVALID_ARGUMENT, message: /period/ });
  t.throws(() => new ATR(2.5), { code: ErrorCodes.INVALID_ARGUMENT, message: /period/ });
  t.end();
});

const level = fc
  .tuple(fc.constantFrom(1e-8, 1, 1e12), fc.double({ min: 1, max: 10, noNaN: true }))
  .map(([a, b]) => a * b);

void t.test('imbalance, spread, relative spread equal their formulas on every quote', (t) => {
  let runs = 0;
  fc.assert(
    fc.property(
      level,
      fc.double({ min: 0, max: 0.05, noNaN: true }),
      fc.double({ min: 0, max: 1e6, noNaN: true }),
      fc.double({ min: 0, max: 1e6, noNaN: true }),
      (bid, rel, bq, aq) => {
        runs++;
        const ask = bid * (1 + rel);
        const i = new Imbalance();
        const s = new Spread();
        const r = new RelSpread();
        expectTrue(
          'NaN before the first quote',
          0,
          [i, s, r].every((x) => !x.ready && Number.isNaN(x.value)),
        );
        i.update(bq, aq);
        s.update(bid, ask);
        r.update(bid, ask);
        expectTrue('ready', 1, i.ready && s.ready && r.ready);
        expectNear('imbalance', 1, i.value, naiveImbalance(bq, aq));
        expectNear('spread', 1, s.value, naiveSpread(bid, ask));
        expectNear('relSpread', 1, r.value, naiveRelSpread(bid, ask));
        expectTrue('imbalance in [−1, 1]', 1, bq + aq === 0 || Math.abs(i.value) <= 1);
        i.reset();
        s.reset();
        r.reset();
        expectTrue(
          'reset',
          2,
          [i, s, r].every((x) => !x.ready && Number.isNaN(x.value)),
        );
        return true;
      },
    ),
    { numRuns: 500 },
  );
  t.equal(runs, 500);
  const i = new Imbalance();
  i.update(0, 0);
  t.ok(Number.isNaN(i.value), 'no quantity: NaN');
  i.update(3, 1);
  t.equal(i.value, 0.5);
  const r = new RelSpread();
  r.update(99, 101);
  t.equal(r.value, 0.02);
  r.update(0, 0);
  t.ok(Number.isNaN(r.value), 'mid 0: NaN');
  t.end();
});
