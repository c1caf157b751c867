import fc from 'fast-check';
import t from 'tap';
import { Features } from '../../actors/features.js';
import { ErrorCodes } from '../../kernel/errors.js';

/** Random walk prices: start in [1, 1e5], log steps in ±5 %. */
const prices = fc
  .tuple(
    fc.double({ min: 1, max: 1e5, noNaN: true }),
    fc.array(fc.double({ min: -0.05, max: 0.05, noNaN: true }), { minLength: 1, maxLength: 200 }),
  )
  .map(([p0, steps]) => {
    const out = [p0];
    for (const s of steps) out.push(out[out.length - 1]! * Math.exp(s));
    return out;
  });

function close(a: number, b: number, rel = 1e-9): boolean {
  return Math.abs(a - b) <= rel * Math.max(1, Math.abs(a), Math.abs(b));
}

/** EMA from scratch as an explicit weighted sum (seeded with the first price). */
function naiveEma(xs: number[], period: number): number {
  const a = 2 / (period + 1);
  const n = xs.length - 1;
  let s = Math.pow(1 - a, n) * xs[0]!;
  for (let i = 1; i <= n; i++) s += a * Math.pow(1 - a, n - i) * xs[i]!;
  return s;
}

/** Weights of the same EW average: w0 = (1-a)^n, wi = a(1-a)^(n-i). */
function weights(n: number, a: number): number[] {
  return Array.from({ length: n + 1 }, (_, i) =>
    i === 0 ? Math.pow(1 - a, n) : a * Math.pow(1 - a, n - i),
  );
}

void t.test('EMAs equal the from-scratch weighted sums within 1e-9 relative', (t) => {
  fc.assert(
    fc.property(
      prices,
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 1, max: 40 }),
      (xs, pf, ps) => {
        const f = new Features({ emaFastPeriod: pf, emaSlowPeriod: ps });
        for (const x of xs) f.onTrade(x);
        return (
          close(f.emaFast, naiveEma(xs, pf)) &&
          close(f.emaSlow, naiveEma(xs, ps)) &&
          f.trades === xs.length
        );
      },
    ),
  );
  t.pass();
  t.end();
});

void t.test('return, realized vol and z-score equal naive references', (t) => {
  fc.assert(
    fc.property(prices, fc.double({ min: 0.5, max: 0.99, noNaN: true }), (xs, lambda) => {
      const f = new Features({ volLambda: lambda });
      for (const x of xs) f.onTrade(x);
      const n = xs.length - 1;
      const rets = xs.slice(1).map((x, i) => Math.log(x / xs[i]!));
      // ret
      const ret = n === 0 ? 0 : rets[n - 1]!;
      if (!close(f.ret, ret)) return false;
      // vol: first r² seeds, then EWMA — as a weighted sum
      let v = 0;
      if (n > 0) {
        v = Math.pow(lambda, n - 1) * rets[0]! ** 2;
        for (let i = 1; i < n; i++) v += (1 - lambda) * Math.pow(lambda, n - 1 - i) * rets[i]! ** 2;
      }
      if (!close(f.vol, Math.sqrt(v))) return false;
      // z-score: weighted mean and variance with the slow EMA's weights
      const a = 2 / (26 + 1);
      const w = weights(n, a);
      const mean = w.reduce((s, wi, i) => s + wi * xs[i]!, 0);
      const variance = w.reduce((s, wi, i) => s + wi * (xs[i]! - mean) ** 2, 0);
      if (!close(f.emaSlow, mean)) return false;
      // the variance is a difference of nearly equal numbers: compare it on the
      // scale of price², and the z-score only where σ is well above rounding noise
      if (Math.abs(f.priceVar - variance) > 1e-9 * mean * mean) return false;
      if (variance <= 1e-12 * mean * mean) return true;
      const z = (xs[n]! - mean) / Math.sqrt(variance);
      return Math.abs(f.zscore - z) <= 1e-6 * Math.max(1, Math.abs(z));
    }),
  );
  t.pass();
  t.end();
});

void t.test('spread, relative spread and mid from quotes', (t) => {
  fc.assert(
    fc.property(
      fc.double({ min: 1, max: 1e5, noNaN: true }),
      fc.double({ min: 0, max: 100, noNaN: true }),
      (bid, s) => {
        const f = new Features();
        t.equal(f.mid, 0);
        f.onQuote(bid, bid + s);
        return (
          close(f.spread, s) && close(f.mid, bid + s / 2) && close(f.relSpread, s / (bid + s / 2))
        );
      },
    ),
  );
  const f = new Features();
  f.onTrade(10);
  f.onQuote(9, 11);
  f.reset();
  t.equal(f.trades, 0);
  t.equal(f.spread, 0);
  t.end();
});

void t.test('bad parameters are rejected naming the key', (t) => {
  t.throws(() => new Features({ emaFastPeriod: 0 }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /emaFastPeriod/,
  });
  t.throws(() => new Features({ emaSlowPeriod: 2.5 }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /emaSlowPeriod/,
  });
  t.throws(() => new Features({ volLambda: 1 }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /volLambda/,
  });
  t.end();
});
