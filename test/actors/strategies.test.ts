import fc from 'fast-check';
import t from 'tap';
import {
  MacdHistogram,
  MaCross,
  ModelThreshold,
  Momentum,
  RsiBands,
  STRATEGY_KINDS,
  resolveStrategyConfig,
  strategyFactory,
  strategyFeatures,
  type Strategy,
  type StrategyConfig,
} from '../../actors/strategies.js';
import { ErrorCodes } from '../../kernel/errors.js';

const f64 = (...xs: number[]): Float64Array => Float64Array.from(xs);

/** Values that reach a strategy: ordinary numbers, and the odd ones a warming feature gives. */
const valueArb = fc.oneof(
  { weight: 8, arbitrary: fc.double({ min: -3, max: 3, noNaN: true }) },
  { weight: 1, arbitrary: fc.constantFrom(NaN, 0, Infinity, -Infinity) },
);

/** Whether two target/strength traces are the same (NaN equal to NaN, −0 to 0). */
const sameTrace = (a: number[], b: number[]): boolean =>
  a.length === b.length && a.every((x, i) => (Number.isNaN(x) ? Number.isNaN(b[i]) : x === b[i]));

void t.test('model: threshold on the score, strength |score| capped at 1', (t) => {
  fc.assert(
    fc.property(
      fc.double({ min: 0, max: 0.99, noNaN: true }),
      fc.array(valueArb, { maxLength: 50 }),
      (threshold, scores) => {
        const s = new ModelThreshold(threshold);
        let strength = 0;
        return scores.every((x) => {
          const got = s.target(x);
          if (Number.isNaN(x)) return Number.isNaN(got) && s.strength === strength;
          strength = Math.min(Math.abs(x), 1);
          const want = x > threshold ? 1 : x < -threshold ? -1 : 0;
          return got === want && s.strength === strength;
        });
      },
    ),
  );
  const s = new ModelThreshold(0.25);
  t.equal(s.kind, 'model');
  t.equal(s.target(0.25), 0, 'score = threshold is flat');
  t.equal(s.strength, 0.25);
  t.equal(s.target(0.2500001), 1);
  t.equal(s.target(-0.25), 0);
  t.equal(s.target(-0.3), -1);
  t.equal(s.strength, 0.3);
  t.equal(s.target(-4), -1);
  t.equal(s.strength, 1, 'capped');
  t.equal(s.target(0.1), 0, 'no hysteresis: back inside is flat');
  t.ok(Number.isNaN(s.target(NaN)), 'NaN score: no opinion');
  t.equal(s.strength, 0.1, 'strength of the last target kept');
  t.end();
});

/** maCross / macd as documented: x > band buy, < −band sell, else keep; x not finite: NaN. */
function bandModel(xs: number[], band: number, saturation: number): number[] {
  let side = 0;
  let strength = 0;
  const out: number[] = [];
  for (const x of xs) {
    if (!Number.isFinite(x)) {
      out.push(NaN, strength);
      continue;
    }
    if (x > band) side = 1;
    else if (x < -band) side = -1;
    strength = Math.min(Math.abs(x) / saturation, 1);
    out.push(side, strength);
  }
  return out;
}

void t.test('maCross: d = fast/slow − 1 against a band, with hysteresis (property)', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(valueArb, valueArb), { maxLength: 60 }),
      fc.constantFrom(0, 0.0005, 0.01, 0.5),
      fc.constantFrom(0.001, 0.01, 1),
      (pairs, band, saturation) => {
        // the factory resolves the names: fast is value 2, slow value 0
        const c: StrategyConfig = { kind: 'maCross', fast: 'f', slow: 's', band, saturation };
        const s = strategyFactory(c, ['s', 'other', 'f'])();
        const got: number[] = [];
        for (const [fast, slow] of pairs)
          got.push(s.target(0.9, 100, f64(slow, 7, fast)), s.strength);
        const want = bandModel(
          pairs.map(([fast, slow]) => fast / slow - 1),
          band,
          saturation,
        );
        return sameTrace(got, want);
      },
    ),
  );
  const s = new MaCross(0, 1, 0.5, 1);
  const d = (x: number): number => s.target(0, 0, f64(1 + x, 1));
  t.equal(s.kind, 'maCross');
  t.equal(d(0.25), 0, 'inside the band at first: flat');
  t.equal(s.strength, 0.25);
  t.equal(d(0.5), 0, 'd = band is still inside');
  t.equal(d(0.75), 1, 'above: buy');
  t.equal(s.strength, 0.75);
  t.equal(d(0.25), 1, 'back inside: buy kept');
  t.equal(d(-0.5), 1, 'd = −band: buy kept');
  t.equal(s.strength, 0.5);
  t.equal(d(-0.625), -1, 'below: sell');
  t.equal(d(0), -1, 'equal averages: sell kept');
  t.equal(s.strength, 0);
  t.ok(Number.isNaN(s.target(0, 0, f64(NaN, 1))), 'fast NaN: NaN');
  t.ok(Number.isNaN(s.target(0, 0, f64(1, 0))), 'slow 0: NaN');
  t.ok(Number.isNaN(s.target(0, 0, f64(1, NaN))), 'slow NaN: NaN');
  t.equal(d(0.25), -1, 'the side survives the NaN ticks');
  t.equal(d(3), 1);
  t.equal(s.strength, 1, 'capped at 1');
  t.end();
});

void t.test('macd: h = hist/px against a band, with hysteresis (property)', (t) => {
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(valueArb, fc.oneof(fc.double({ min: 1, max: 1e4, noNaN: true }), valueArb)),
        {
          maxLength: 60,
        },
      ),
      fc.constantFrom(0, 0.0001, 0.01),
      fc.constantFrom(0.002, 0.1),
      (ticks, band, saturation) => {
        const c: StrategyConfig = { kind: 'macd', feature: 'macd_hist', band, saturation };
        const s = strategyFactory(c, ['rsi14', 'macd_hist'])();
        const got: number[] = [];
        for (const [hist, px] of ticks) got.push(s.target(0, px, f64(50, hist)), s.strength);
        const want = bandModel(
          ticks.map(([hist, px]) => hist / px),
          band,
          saturation,
        );
        return sameTrace(got, want);
      },
    ),
  );
  const s = new MacdHistogram(0, 0.0001, 0.002);
  t.equal(s.kind, 'macd');
  t.equal(s.target(0, 100, f64(0.02)), 1, 'h = 0.0002 > 0.0001: buy');
  t.equal(s.strength, 0.1, '0.0002 / 0.002');
  t.equal(s.target(0, 100, f64(0.005)), 1, 'h = 0.00005 inside: buy kept');
  t.equal(s.target(0, 100, f64(-0.005)), 1, 'h = −0.00005 inside: buy kept');
  t.equal(s.target(0, 100, f64(-0.03)), -1, 'h = −0.0003: sell');
  t.ok(Number.isNaN(s.target(0, 0, f64(0.02))), 'px 0: NaN');
  t.ok(Number.isNaN(s.target(0, 100, f64(NaN))), 'hist NaN: NaN');
  t.equal(s.target(0, 100, f64(0)), -1, 'sell kept through the NaN ticks');
  t.equal(s.target(0, 100, f64(1)), 1);
  t.equal(s.strength, 1, 'h = 0.01 saturates');
  t.end();
});

/** rsi as documented: < lower buy, > upper sell, in [exitLower, exitUpper] flat, else keep. */
function rsiModel(
  rs: number[],
  lower: number,
  upper: number,
  exitLower: number,
  exitUpper: number,
) {
  let side = 0;
  let strength = 0;
  const out: number[] = [];
  for (const r of rs) {
    if (Number.isNaN(r)) {
      out.push(NaN, strength);
      continue;
    }
    if (r < lower) {
      side = 1;
      strength = Math.min((lower - r) / lower, 1);
    } else if (r > upper) {
      side = -1;
      strength = Math.min((r - upper) / (100 - upper), 1);
    } else if (r >= exitLower && r <= exitUpper) {
      side = 0;
      strength = 0;
    }
    out.push(side, strength);
  }
  return out;
}

void t.test('rsi: bands with a flat zone in the middle (property)', (t) => {
  const rsiArb = fc.oneof(
    { weight: 10, arbitrary: fc.double({ min: 0, max: 100, noNaN: true }) },
    { weight: 1, arbitrary: fc.constantFrom(NaN, 20, 30, 45, 55, 70, 80) },
  );
  fc.assert(
    fc.property(
      fc.array(rsiArb, { maxLength: 80 }),
      fc
        .tuple(
          fc.integer({ min: 1, max: 49 }),
          fc.integer({ min: 1, max: 49 }),
          fc.integer({ min: 51, max: 99 }),
          fc.integer({ min: 51, max: 99 }),
        )
        .map(([a, b, c, d]): [number, number, number, number] => [
          Math.min(a, b),
          Math.max(a, b),
          Math.min(c, d),
          Math.max(c, d),
        ]),
      (rs, [lower, exitLower, exitUpper, upper]) => {
        const c = resolveStrategyConfig({
          kind: 'rsi',
          feature: 'r',
          lower,
          upper,
          exitLower,
          exitUpper,
        });
        const s = strategyFactory(c, ['r'])();
        const got: number[] = [];
        for (const r of rs) got.push(s.target(0, 100, f64(r)), s.strength);
        return sameTrace(got, rsiModel(rs, lower, upper, exitLower, exitUpper));
      },
    ),
  );
  const s = new RsiBands(0, 30, 70, 45, 55);
  const r = (x: number): number => s.target(0, 100, f64(x));
  t.equal(s.kind, 'rsi');
  t.equal(r(50), 0, 'middle: flat');
  t.equal(r(30), 0, 'rsi = lower: not yet a buy, flat kept');
  t.equal(r(20), 1, 'below 30: buy');
  t.equal(s.strength, 1 / 3, '(30 − 20) / 30');
  t.equal(r(0), 1);
  t.equal(s.strength, 1);
  t.equal(r(40), 1, 'between 30 and 45: buy kept');
  t.equal(s.strength, 1, 'with its strength');
  t.equal(r(44.999), 1);
  t.equal(r(45), 0, 'exitLower: flat');
  t.equal(s.strength, 0);
  t.equal(r(65), 0, 'between 55 and 70: flat kept');
  t.equal(r(70), 0, 'rsi = upper: flat kept');
  t.equal(r(80), -1, 'above 70: sell');
  t.equal(s.strength, 1 / 3, '(80 − 70) / 30');
  t.equal(r(60), -1, 'sell kept down to 55');
  t.equal(r(55.0001), -1);
  t.equal(r(55), 0, 'exitUpper: flat');
  t.equal(r(80), -1);
  t.ok(Number.isNaN(r(NaN)), 'NaN: no opinion');
  t.equal(r(50), 0, 'then the middle: flat');
  t.end();
});

void t.test('momentum: m = ln(px/ref) against a threshold, no hysteresis (property)', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.double({ min: 0.5, max: 2, noNaN: true }), valueArb), { maxLength: 60 }),
      fc.constantFrom(0, 0.001, 0.1),
      fc.constantFrom(0.01, 1),
      (ticks, threshold, saturation) => {
        const c: StrategyConfig = { kind: 'momentum', ref: 'sma20', threshold, saturation };
        const s = strategyFactory(c, ['sma20'])();
        let strength = 0;
        return ticks.every(([px, ref]) => {
          const got = s.target(0, px, f64(ref));
          const m = Math.log(px / ref);
          if (!Number.isFinite(m)) return Number.isNaN(got) && s.strength === strength;
          strength = Math.min(Math.abs(m) / saturation, 1);
          const want = m > threshold ? 1 : m < -threshold ? -1 : 0;
          return got === want && s.strength === strength;
        });
      },
    ),
  );
  const s = new Momentum(0, 0.01, 0.05);
  t.equal(s.kind, 'momentum');
  t.equal(s.target(0, Math.exp(0.02), f64(1)), 1, 'm = 0.02: buy');
  t.ok(Math.abs(s.strength - 0.4) < 1e-12, '0.02 / 0.05');
  t.equal(s.target(0, Math.exp(0.005), f64(1)), 0, 'inside: flat at once (no keep)');
  t.equal(s.target(0, 1, f64(Math.exp(0.02))), -1, 'below the reference: sell');
  t.ok(Number.isNaN(s.target(0, 100, f64(0))), 'ref 0: NaN');
  t.ok(Number.isNaN(s.target(0, 100, f64(-5))), 'negative ref: NaN');
  t.ok(Number.isNaN(s.target(0, 100, f64(NaN))), 'ref NaN: NaN');
  t.ok(Number.isNaN(s.target(0, NaN, f64(100))), 'px NaN: NaN');
  t.end();
});

void t.test('resolveStrategyConfig: defaults', (t) => {
  t.same(resolveStrategyConfig(undefined), { kind: 'model', threshold: 0.2 });
  t.same(resolveStrategyConfig(null, 0.35), { kind: 'model', threshold: 0.35 }, 'flat threshold');
  t.same(
    resolveStrategyConfig({}, 0.35),
    { kind: 'model', threshold: 0.35 },
    'kind defaults to model',
  );
  t.same(resolveStrategyConfig({ kind: 'model', threshold: 0.4 }, 0.35), {
    kind: 'model',
    threshold: 0.4,
  });
  t.same(resolveStrategyConfig({ kind: 'maCross' }), {
    kind: 'maCross',
    fast: 'ema12',
    slow: 'ema26',
    band: 0.0005,
    saturation: 0.01,
  });
  t.same(resolveStrategyConfig({ kind: 'rsi' }), {
    kind: 'rsi',
    feature: 'rsi14',
    lower: 30,
    upper: 70,
    exitLower: 45,
    exitUpper: 55,
  });
  t.same(resolveStrategyConfig({ kind: 'macd' }), {
    kind: 'macd',
    feature: 'macd_hist',
    band: 0.0001,
    saturation: 0.002,
  });
  t.same(resolveStrategyConfig({ kind: 'momentum' }), {
    kind: 'momentum',
    ref: 'ema26',
    threshold: 0.001,
    saturation: 0.01,
  });
  t.same(
    resolveStrategyConfig({ kind: 'maCross', fast: 'sma5', band: 0 }),
    { kind: 'maCross', fast: 'sma5', slow: 'ema26', band: 0, saturation: 0.01 },
    'given parameters override',
  );
  t.throws(() => resolveStrategyConfig({ kind: 'maCross', name: 'x-over' }), {
    message: /invalid rule\.name/,
  });
  t.same(
    resolveStrategyConfig({ kind: 'rsi', lower: 45, exitLower: 45, exitUpper: 45, upper: 45 }),
    { kind: 'rsi', feature: 'rsi14', lower: 45, upper: 45, exitLower: 45, exitUpper: 45 },
    'equal bounds are in order',
  );
  t.same([...STRATEGY_KINDS], ['model', 'maCross', 'rsi', 'macd', 'momentum']);
  t.end();
});

void t.test('resolveStrategyConfig: errors name strategy.<key>', (t) => {
  const bad: Array<[unknown, RegExp]> = [
    ['rsi', /invalid rule: "rsi"/],
    [5, /invalid rule: 5/],
    [['rsi'], /invalid rule: \["rsi"\]/],
    [{ kind: 'ema' }, /invalid rule\.kind: "ema" \(allowed: model, maCross, rsi, macd, momentum\)/],
    [{ kind: 3 }, /invalid rule\.kind: 3/],
    [{ kind: 'rsi', band: 1 }, /invalid rule\.band: 1 \(allowed: a parameter of "rsi"/],
    [{ kind: 'model', fast: 'ema12' }, /invalid rule\.fast: "ema12"/],
    [{ kind: 'maCross', fast: '' }, /invalid rule\.fast: "" \(allowed: a feature name\)/],
    [{ kind: 'maCross', slow: 26 }, /invalid rule\.slow: 26/],
    [{ kind: 'macd', band: -1 }, /invalid rule\.band: -1 \(allowed: a finite number ≥ 0\)/],
    [{ kind: 'macd', band: NaN }, /invalid rule\.band/],
    [{ kind: 'macd', band: Infinity }, /invalid rule\.band/],
    [{ kind: 'momentum', threshold: '0.1' }, /invalid rule\.threshold: "0.1"/],
    [
      { kind: 'model', threshold: 1 },
      /invalid rule\.threshold: 1 \(allowed: a number in \[0, 1\)\)/,
    ],
    [{ kind: 'maCross', saturation: 0 }, /invalid rule\.saturation: 0/],
    [{ kind: 'macd', saturation: 0 }, /invalid rule\.saturation: 0/],
    [{ kind: 'momentum', saturation: 0 }, /invalid rule\.saturation: 0/],
    [{ kind: 'rsi', lower: 50 }, /invalid rule: "50\/45\/55\/70" \(allowed: lower ≤ exitLower/],
    [{ kind: 'rsi', exitLower: 60 }, /invalid rule: "30\/60\/55\/70"/],
    [{ kind: 'rsi', upper: 50 }, /invalid rule: "30\/45\/55\/50"/],
    [{ kind: 'rsi', upper: 101 }, /invalid rule\.upper: 101/],
  ];
  for (const [raw, message] of bad) {
    t.throws(
      () => resolveStrategyConfig(raw),
      { code: ErrorCodes.INVALID_ARGUMENT, message },
      JSON.stringify(raw) ?? String(raw),
    );
  }
  t.throws(() => resolveStrategyConfig({}, 1), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /invalid rule\.threshold: 1/,
  });
  t.end();
});

void t.test('resolveStrategyConfig: an Object.prototype name is an unknown parameter too', (t) => {
  for (const key of ['constructor', 'toString', 'valueOf', 'hasOwnProperty']) {
    t.throws(
      () => resolveStrategyConfig(JSON.parse(`{"kind": "maCross", "${key}": 1}`)),
      { code: ErrorCodes.INVALID_ARGUMENT, message: new RegExp(`invalid rule\\.${key}: 1`) },
      key,
    );
  }
  t.end();
});

void t.test('strategyFeatures and strategyFactory', (t) => {
  const cfg = (raw: Record<string, unknown>): StrategyConfig => resolveStrategyConfig(raw);
  t.same(strategyFeatures(cfg({ kind: 'model' })), []);
  t.same(strategyFeatures(cfg({ kind: 'maCross', fast: 'a', slow: 'b' })), ['a', 'b']);
  t.same(strategyFeatures(cfg({ kind: 'rsi', feature: 'r7' })), ['r7']);
  t.same(strategyFeatures(cfg({ kind: 'macd' })), ['macd_hist']);
  t.same(strategyFeatures(cfg({ kind: 'momentum', ref: 'ema50' })), ['ema50']);

  const names = ['ema12', 'rsi14', 'macd_hist'];
  const missing: Array<[Record<string, unknown>, RegExp]> = [
    [
      { kind: 'maCross' },
      /invalid rule\.slow: "ema26" \(allowed: a configured feature \(ema12, rsi14, macd_hist\)\)/,
    ],
    [{ kind: 'maCross', fast: 'sma5', slow: 'ema12' }, /invalid rule\.fast: "sma5"/],
    [{ kind: 'rsi', feature: 'rsi7' }, /invalid rule\.feature: "rsi7"/],
    [{ kind: 'macd', feature: 'hist' }, /invalid rule\.feature: "hist"/],
    [{ kind: 'momentum' }, /invalid rule\.ref: "ema26"/],
  ];
  for (const [raw, message] of missing) {
    t.throws(() => strategyFactory(cfg(raw), names), {
      code: ErrorCodes.INVALID_ARGUMENT,
      message,
    });
  }
  t.throws(() => strategyFactory(cfg({ kind: 'rsi' }), []), {
    message: /rule\.feature: "rsi14"/,
  });

  const kinds: Array<[Record<string, unknown>, Strategy['kind']]> = [
    [{ kind: 'model' }, 'model'],
    [{ kind: 'maCross', slow: 'ema12', fast: 'ema12' }, 'maCross'],
    [{ kind: 'rsi' }, 'rsi'],
    [{ kind: 'macd' }, 'macd'],
    [{ kind: 'momentum', ref: 'ema12' }, 'momentum'],
  ];
  for (const [raw, kind] of kinds) {
    const make = strategyFactory(cfg(raw), names);
    const a = make();
    const b = make();
    t.equal(a.kind, kind);
    t.not(a, b, `${kind}: a new instance per symbol`);
  }
  t.equal(strategyFactory(cfg({ kind: 'model' }), [])().target(0.5, 1, f64()), 1);
  t.end();
});

void t.test('per-symbol instances keep their own side', (t) => {
  const names = ['ema12', 'ema26', 'rsi14', 'macd_hist'];
  // maCross: A crosses up, B stays inside the band
  const ma = strategyFactory(resolveStrategyConfig({ kind: 'maCross', band: 0.01 }), names);
  const a = ma();
  const b = ma();
  t.equal(a.target(0, 100, f64(102, 100, 50, 0)), 1, 'A: +2 %: buy');
  t.equal(b.target(0, 100, f64(100.5, 100, 50, 0)), 0, 'B: +0.5 %: inside, flat');
  t.equal(a.target(0, 100, f64(100.5, 100, 50, 0)), 1, 'A: inside: keeps buy');
  t.ok(Math.abs(a.strength - 0.5) < 1e-9, `A: 0.005 / 0.01 (${a.strength})`);
  t.ok(Math.abs(b.strength - 0.5) < 1e-9, `B: the same (${b.strength})`);
  t.equal(b.target(0, 100, f64(97, 100, 50, 0)), -1, 'B: sells');
  t.equal(a.target(0, 100, f64(100, 100, 50, 0)), 1, 'A: still buy');
  // rsi
  const rsi = strategyFactory(resolveStrategyConfig({ kind: 'rsi' }), names);
  const c = rsi();
  const d = rsi();
  t.equal(c.target(0, 100, f64(0, 0, 10, 0)), 1);
  t.equal(d.target(0, 100, f64(0, 0, 90, 0)), -1);
  t.equal(c.target(0, 100, f64(0, 0, 60, 0)), 1, 'C keeps buy');
  t.equal(d.target(0, 100, f64(0, 0, 40, 0)), -1, 'D keeps sell');
  t.ok(Math.abs(c.strength - 2 / 3) < 1e-12, 'C: (30 − 10) / 30');
  t.ok(Math.abs(d.strength - 2 / 3) < 1e-12, 'D: (90 − 70) / 30');
  // macd
  const macd = strategyFactory(resolveStrategyConfig({ kind: 'macd' }), names);
  const e = macd();
  const g = macd();
  t.equal(e.target(0, 100, f64(0, 0, 0, -1)), -1);
  t.equal(g.target(0, 100, f64(0, 0, 0, 0)), 0, 'G has not seen E’s sell');
  t.end();
});
