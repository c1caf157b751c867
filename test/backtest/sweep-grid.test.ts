/**
 * The sweep grid (backtest/sweep-grid.ts): `--sweep k=a..b:step` parsing and
 * its errors, the cartesian product (fast-check: Π counts points, each
 * inside its ranges, all distinct, last axis fastest), the size limit, and
 * how `--strategy` and `--param` reach the actor's options. Unit tier, no
 * services.
 */
import fc from 'fast-check';
import t from 'tap';
import { resolveSymbolActorOptions } from '../../actors/symbol-actor-module.js';
import {
  MAX_GRID_POINTS,
  checkGrid,
  checkStrategy,
  gridPoint,
  gridPoints,
  gridSize,
  parseSweep,
  strategyActorOptions,
  strategyParamNames,
  type SweepAxis,
} from '../../backtest/sweep-grid.js';

void t.test('parseSweep: values from a to b by step, binary fractions rounded', (t) => {
  t.same(parseSweep('threshold=0.1..0.5:0.1'), {
    key: 'threshold',
    from: 0.1,
    to: 0.5,
    step: 0.1,
    values: [0.1, 0.2, 0.3, 0.4, 0.5],
  });
  t.same(parseSweep('n=1..10:4').values, [1, 5, 9], 'b is a value only when a step lands on it');
  t.same(parseSweep('x=-1..1:1').values, [-1, 0, 1], 'negative bounds');
  t.same(parseSweep('x=2..2:1').values, [2], 'a = b: one value');
  t.same(parseSweep('x=1e-3..3e-3:1e-3').values, [0.001, 0.002, 0.003], 'exponents');
  t.same(parseSweep('x=0..1:0.1').values.length, 11, '0..1:0.1 ends at 1');
  t.end();
});

void t.test('parseSweep: a clear usage error for each bad form', (t) => {
  const bad: Array<[string, RegExp]> = [
    ['threshold', /invalid --sweep: "threshold" \(allowed: key=from\.\.to:step/],
    ['threshold=0.1..0.5', /allowed: key=from\.\.to:step/],
    ['=0..1:1', /allowed: key=from\.\.to:step/],
    ['1x=0..1:1', /allowed: key=from\.\.to:step/],
    ['x=a..1:1', /allowed: key=from\.\.to:step/],
    ['x=0..1:', /allowed: key=from\.\.to:step/],
    ['x=0..1:0', /a step > 0 \(got 0\)/],
    ['x=0..1:-0.5', /a step > 0 \(got -0\.5\)/],
    ['x=2..1:1', /from ≤ to \(got 2 > 1\)/],
    ['x=0..1e9:1', /at most 10000 values per axis/],
  ];
  for (const [text, message] of bad) {
    t.throws(() => parseSweep(text), { code: 'QLN_CLI_USAGE', message }, text);
  }
  t.end();
});

const axisArb = fc
  .record({
    from: fc.integer({ min: -1000, max: 1000 }),
    stepMilli: fc.integer({ min: 1, max: 5000 }),
    count: fc.integer({ min: 1, max: 6 }),
    extraMilli: fc.integer({ min: 0, max: 999 }),
  })
  .map(({ from, stepMilli, count, extraMilli }) => {
    const step = stepMilli / 1000;
    // `to` past the last value by less than one step: still `count` values.
    const to = from + (count - 1) * step + (extraMilli / 1000) * step * 0.999;
    return { from, step, to: Number(to.toPrecision(12)), count };
  });

void t.test('property: the grid has Π counts points, each inside its ranges, all distinct', (t) => {
  let runs = 0;
  fc.assert(
    fc.property(fc.array(axisArb, { minLength: 1, maxLength: 4 }), (specs) => {
      runs++;
      const axes: SweepAxis[] = specs.map((s, i) =>
        parseSweep(`k${i}=${s.from}..${s.to}:${s.step}`),
      );
      axes.forEach((a, i) => {
        if (a.values.length !== specs[i]!.count) {
          throw new Error(`axis ${i}: ${a.values.length} values, want ${specs[i]!.count}`);
        }
      });
      const n = specs.reduce((p, s) => p * s.count, 1);
      const points = gridPoints(axes);
      if (gridSize(axes) !== n || points.length !== n) return false;
      const seen = new Set<string>();
      for (const p of points) {
        for (const a of axes) {
          const v = p.params[a.key]!;
          if (!(v >= a.from && v <= a.to)) return false;
          if (!a.values.includes(v)) return false;
        }
        seen.add(JSON.stringify(p.params));
      }
      if (seen.size !== n) return false;
      // Last axis fastest: consecutive indexes differ in the last axis first.
      if (n > 1 && axes.at(-1)!.values.length > 1) {
        const k = axes.at(-1)!.key;
        if (points[0]!.params[k] === points[1]!.params[k]) return false;
      }
      return true;
    }),
    { numRuns: 200 },
  );
  t.equal(runs, 200, '200 grids checked');
  t.end();
});

void t.test('gridPoint: mixed radix, keys in the axes order', (t) => {
  const axes = [parseSweep('a=1..2:1'), parseSweep('b=0..0.2:0.1')];
  t.same(
    gridPoints(axes).map((p) => [p.index, p.params]),
    [
      [0, { a: 1, b: 0 }],
      [1, { a: 1, b: 0.1 }],
      [2, { a: 1, b: 0.2 }],
      [3, { a: 2, b: 0 }],
      [4, { a: 2, b: 0.1 }],
      [5, { a: 2, b: 0.2 }],
    ],
  );
  t.same(Object.keys(gridPoint(axes, 4).params), ['a', 'b']);
  t.equal(gridSize([]), 1, 'no axis: one point (a single run)');
  t.end();
});

void t.test('checkGrid: at most MAX_GRID_POINTS points, keys once, not also fixed', (t) => {
  t.equal(MAX_GRID_POINTS, 10_000);
  const a = parseSweep('a=1..100:1');
  const b = parseSweep('b=1..100:1');
  const c = parseSweep('c=1..2:1');
  t.doesNotThrow(() => checkGrid([a, b]), '100 × 100 = 10,000 points');
  t.throws(() => checkGrid([a, b, c]), {
    code: 'QLN_CLI_USAGE',
    message: /a grid of at most 10000 points \(this one has 20000\)/,
  });
  t.throws(() => checkGrid([c, c]), { code: 'QLN_CLI_USAGE', message: /each key swept once/ });
  t.throws(() => checkGrid([c], { c: 1 }), {
    code: 'QLN_CLI_USAGE',
    message: /a key not also set by --param/,
  });
  t.end();
});

void t.test('--strategy selects a strategy of the registry; params reach rule or actor', (t) => {
  t.equal(checkStrategy('momentum'), 'momentum');
  t.throws(() => checkStrategy('momo'), {
    code: 'QLN_CLI_USAGE',
    message: /invalid --strategy: "momo" \(allowed: model, maCross, rsi, macd, momentum\)/,
  });
  t.same(strategyParamNames('momentum'), ['ref', 'threshold', 'saturation']);
  const o = strategyActorOptions({ minIntervalUs: 1 }, 'momentum', {
    threshold: 0.002,
    minIntervalUs: 5000,
  });
  t.same(o, {
    minIntervalUs: 5000,
    rule: { kind: 'momentum', threshold: 0.002 },
  });
  const resolved = resolveSymbolActorOptions(o);
  t.match(resolved.rule, { kind: 'momentum', threshold: 0.002, ref: 'ema26' });
  // The config's rule of the same kind is the base; of another kind it is replaced.
  t.same(strategyActorOptions({ rule: { kind: 'rsi', lower: 20 } }, 'rsi', { upper: 80 }).rule, {
    kind: 'rsi',
    lower: 20,
    upper: 80,
  });
  t.same(strategyActorOptions({ rule: { kind: 'rsi', lower: 20 } }, 'macd', {}).rule, {
    kind: 'macd',
  });
  const m = strategyActorOptions({}, 'model', { threshold: 0.4 });
  t.equal(m['threshold'], 0.4, "model: the actor's flat threshold too");
  t.same(m['rule'], { kind: 'model', threshold: 0.4 });
  t.end();
});
