import fc from 'fast-check';
import { all, create } from 'mathjs';
import t from 'tap';
import {
  compileFormulas,
  formulaMathInstance,
  resolveFormulaSpecs,
  type FormulaBackend,
  type FormulaSpec,
} from '../../actors/formula.js';
import { ErrorCodes, type QilinError } from '../../kernel/errors.js';

const BACKENDS: readonly FormulaBackend[] = ['generated', 'closures'];

// ---------------------------------------------------------------------------
// The oracle: a separate, unrestricted mathjs instance with number config.
// `predictable: true` keeps results real (sqrt(-1), log(-1) are NaN, not
// complex), which is formula.ts's real-valued semantics. The documented
// deviations of formula.ts (exact comparisons, floor/ceil/round/% and
// min/max tie-breaking without mathjs's relTol 1e-12 / absTol 1e-15, NaN for
// a negative base with a finite non-integer exponent) are overridden here so
// the property checks everything else: parsing, precedence and
// associativity, implicit multiplication, percent, mod's sign rule, pow's
// infinity rules, log's base, n-ary min/max arity, hyperbolics, constants,
// conditionals and their NaN truthiness, chained comparisons, and/or/not.
// `clamp` is not a mathjs function: it is defined as min(max(x, lo), hi).
// The deviations themselves are pinned against plain mathjs further down.

if (all === undefined) throw new Error('mathjs all missing');
const plain = create(all, { number: 'number', predictable: true });
const oracle = create(all, { number: 'number', predictable: true });
const mathPow = oracle.pow.bind(oracle) as (x: number, y: number) => number;
oracle.import(
  {
    equal: (a: number, b: number) => +a === +b,
    unequal: (a: number, b: number) => +a !== +b,
    smaller: (a: number, b: number) => +a < +b,
    smallerEq: (a: number, b: number) => +a <= +b,
    larger: (a: number, b: number) => +a > +b,
    largerEq: (a: number, b: number) => +a >= +b,
    floor: (x: number) => Math.floor(+x),
    ceil: (x: number) => Math.ceil(+x),
    round: (x: number) => (+x < 0 ? -Math.round(-x) : Math.round(+x)),
    mod: (x: number, y: number) => (+y === 0 ? +x : x - y * Math.floor(x / y)),
    pow: (x: number, y: number) =>
      +x < 0 && Number.isFinite(+y) && !Number.isInteger(+y) ? NaN : mathPow(+x, +y),
    min: (...a: number[]) => Math.min(...a.map(Number)),
    max: (...a: number[]) => Math.max(...a.map(Number)),
    clamp: (x: number, lo: number, hi: number) => Math.min(Math.max(+x, +lo), +hi),
  },
  { override: true },
);

function oracleEval(expr: string, scope: Record<string, number>): number {
  const v: unknown = oracle.evaluate(expr, { ...scope });
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  throw new Error(`oracle gave a ${typeof v} for ${expr}: ${String(v)}`);
}

/** Exact (−0 equals 0, NaN equals NaN) or within 1e-12 relative. */
function same(a: number, b: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  if (a === b) return true;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
  return Math.abs(a - b) <= 1e-12 * Math.max(Math.abs(a), Math.abs(b));
}

function evalOne(
  expr: string,
  names: readonly string[],
  values: readonly number[],
  backend: FormulaBackend,
): number {
  const c = compileFormulas([{ name: 'out0', expr }], names, { backend });
  const out = new Float64Array(1);
  c.evaluate(Float64Array.from(values), out);
  return out[0] as number;
}

const value = fc.oneof(
  { weight: 4, arbitrary: fc.double() },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      0,
      -0,
      1,
      -1,
      2,
      0.5,
      -0.5,
      3,
      1e-300,
      -1e-300,
      1e300,
      -1e300,
      5e-324,
      1e-12,
    ),
  },
  { weight: 2, arbitrary: fc.double({ min: -10, max: 10, noNaN: true }) },
  { weight: 1, arbitrary: fc.integer({ min: -20, max: 20 }) },
);

// ---------------------------------------------------------------------------

const INPUTS = ['ema12', 'ema26', 'atr14', 'close', 'vol'] as const;

const REPRESENTATIVE = [
  '(ema12 - ema26) / atr14',
  'ema12 - ema26 - atr14',
  'ema12 / ema26 / atr14',
  '-2^2',
  '2^3^2',
  '-ema12^2',
  'ema12 ^ -ema26',
  '2 ema12 + 1',
  '2 (ema12 - 1)',
  '50%',
  'ema12 % ema26',
  '-7 % 3',
  '7 % -3',
  'ema12 % 0',
  'ema12 < ema26 < atr14',
  'ema12 <= ema26 and not (close > vol) or ema12 == ema26',
  'ema12 != ema26',
  'ema12 > 0 ? log(ema12) : -log(-ema12)',
  'ema12 ? ema26 : atr14',
  'log(ema12, 2) + log(ema12) + log10(ema26) + log2(atr14)',
  'sqrt(ema12) + cbrt(ema26) + exp(atr14 / 1e3)',
  'max(ema12, ema26, atr14, 0) - min(ema12, close, vol)',
  'max(ema12)',
  'abs(ema12) * sign(ema26)',
  'pow(ema12, ema26) + pow(-2, 3) + pow(0.5, 1/0)',
  'tanh(ema12) + sinh(ema26 / 100) - cosh(atr14 / 100)',
  'atan(ema12) + atan2(ema12, ema26)',
  'floor(ema12) + ceil(ema26) + round(atr14)',
  'round(-2.5) + round(2.5) + round(ema12)',
  'clamp((close - ema26) / max(atr14, 1e-9), -3, 3)',
  'pi * e + ema12',
  '+ema12 - -ema26',
  '0x10 + 1e-3 + 1.5e300 * close',
  'ema12 / 0',
  'NaN + Infinity * ema12',
] as const;

void t.test('representative expressions equal mathjs evaluate (property)', (t) => {
  for (const backend of BACKENDS) {
    for (const expr of REPRESENTATIVE) {
      fc.assert(
        fc.property(
          fc.array(value, { minLength: INPUTS.length, maxLength: INPUTS.length }),
          (vals) => {
            const scope = Object.fromEntries(INPUTS.map((n, i) => [n, vals[i] as number]));
            const want = oracleEval(expr, scope);
            const got = evalOne(expr, INPUTS, vals, backend);
            if (!same(got, want))
              throw new Error(
                `${backend} ${expr} ${JSON.stringify(vals)}: got ${got}, mathjs ${want}`,
              );
          },
        ),
        { numRuns: 150 },
      );
    }
  }
  t.pass(`${REPRESENTATIVE.length} expressions × ${BACKENDS.length} back ends`);
  t.end();
});

// Random expression trees over the allowed grammar, as strings.
const LEAF_INPUTS = ['a', 'b', 'c', 'd'] as const;
const FN1 = [
  'abs',
  'sqrt',
  'cbrt',
  'exp',
  'log',
  'log10',
  'log2',
  'sign',
  'tanh',
  'sinh',
  'cosh',
  'atan',
  'floor',
  'ceil',
  'round',
];
const FN2 = ['log', 'pow', 'atan2', 'min', 'max'];
const BINOPS = ['+', '-', '*', '/', '^', '%', '<', '<=', '>', '>=', '==', '!=', 'and', 'or'];

function exprArb(symbols: readonly string[]): fc.Arbitrary<string> {
  const wrap = (s: string, paren: boolean) => (paren ? `(${s})` : s);
  const { node } = fc.letrec<{ node: string; leaf: string }>((tie) => ({
    leaf: fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom(...symbols) },
      {
        weight: 2,
        arbitrary: fc.constantFrom(
          '0',
          '1',
          '2',
          '3',
          '0.5',
          '2.5',
          '1e-300',
          '1e300',
          '100',
          '0.1',
        ),
      },
      { weight: 1, arbitrary: fc.constantFrom('pi', 'e') },
    ),
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      tie('leaf'),
      fc
        .tuple(fc.constantFrom('-', '+', 'not '), tie('node'), fc.boolean())
        .map(([op, a, p]) => `${op}${wrap(a, p)}`),
      fc
        .tuple(tie('node'), fc.constantFrom(...BINOPS), tie('node'), fc.boolean(), fc.boolean())
        .map(([a, op, b, pa, pb]) => `${wrap(a, pa)} ${op} ${wrap(b, pb)}`),
      fc
        .tuple(tie('node'), tie('node'), tie('node'))
        .map(([c, a, b]) => `(${c}) ? (${a}) : (${b})`),
      fc.tuple(fc.constantFrom(...FN1), tie('node')).map(([f, a]) => `${f}(${a})`),
      fc
        .tuple(fc.constantFrom(...FN2), tie('node'), tie('node'))
        .map(([f, a, b]) => `${f}(${a}, ${b})`),
      fc
        .tuple(fc.constantFrom('min', 'max', 'clamp'), tie('node'), tie('node'), tie('node'))
        .map(([f, a, b, c]) => `${f}(${a}, ${b}, ${c})`),
    ),
  }));
  return node;
}

void t.test('random expression trees equal mathjs evaluate (property)', (t) => {
  let compared = 0;
  let syntaxErrors = 0;
  const formulas = fc
    .tuple(
      exprArb(LEAF_INPUTS),
      exprArb([...LEAF_INPUTS, 'f0']),
      exprArb([...LEAF_INPUTS, 'f0', 'f1']),
    )
    .map(([e0, e1, e2]): FormulaSpec[] => [
      { name: 'f0', expr: e0 },
      { name: 'f1', expr: e1 },
      { name: 'f2', expr: e2 },
    ]);
  for (const backend of BACKENDS) {
    fc.assert(
      fc.property(formulas, fc.array(value, { minLength: 4, maxLength: 4 }), (specs, vals) => {
        let c;
        try {
          c = compileFormulas(specs, LEAF_INPUTS, { backend });
        } catch (err) {
          // Unparenthesised random strings are sometimes not valid mathjs
          // (e.g. "a ? b : c" as an operand); then mathjs must refuse them too.
          if (
            (err as QilinError).code !== ErrorCodes.FORMULA_INVALID ||
            !/syntax error/.test((err as Error).message)
          ) {
            throw err;
          }
          const bad = specs.find((s) => {
            try {
              plain.parse(s.expr);
              return false;
            } catch {
              return true;
            }
          });
          if (bad === undefined) throw err;
          syntaxErrors++;
          return;
        }
        const out = new Float64Array(3);
        const bad = c.evaluate(Float64Array.from(vals), out);
        const scope: Record<string, number> = Object.fromEntries(
          LEAF_INPUTS.map((n, i) => [n, vals[i] as number]),
        );
        let nonFinite = 0;
        specs.forEach((s, i) => {
          const want = oracleEval(s.expr, scope);
          const got = out[i] as number;
          if (!same(got, want)) {
            throw new Error(
              `${backend} ${s.name} = ${s.expr} with ${JSON.stringify(scope)}: got ${got}, mathjs ${want}`,
            );
          }
          scope[s.name] = got;
          if (!Number.isFinite(got)) nonFinite++;
        });
        if (bad !== nonFinite) throw new Error(`non-finite count ${bad}, expected ${nonFinite}`);
        compared++;
      }),
      { numRuns: 1000 },
    );
  }
  t.ok(
    compared > 500,
    `compared ${compared} random formula triples (${syntaxErrors} were syntax errors in both)`,
  );
  t.end();
});

void t.test('documented deviations from plain mathjs (tolerances, odd roots)', (t) => {
  const cases: [string, number, unknown][] = [
    // expr, formula.ts, plain mathjs
    ['0.1 + 0.2 == 0.3', 0, true],
    ['0.1 + 0.2 > 0.3', 1, false],
    ['floor(0.9999999999999999)', 0, 1],
    ['ceil(1.0000000000000002)', 2, 1],
    ['0.3 % 0.1', 0.09999999999999998, -5.551115123125783e-17],
    ['(-8)^(1/3)', NaN, -2],
    ['max(-1e-300, 0)', 0, -1e-300],
    ['min(1e-300, 0)', 0, 1e-300],
  ];
  for (const [expr, ours, theirs] of cases) {
    t.same(plain.evaluate(expr), theirs, `mathjs: ${expr}`);
    for (const backend of BACKENDS) {
      t.ok(Object.is(evalOne(expr, [], [], backend), ours), `${backend}: ${expr} = ${ours}`);
    }
  }
  t.end();
});

void t.test('concrete values, formula chaining and the non-finite count', (t) => {
  for (const backend of BACKENDS) {
    const c = compileFormulas(
      [
        { name: 'macdNorm', expr: '(ema12 - ema26) / atr14' },
        { name: 'twice', expr: '2 * macdNorm' },
        { name: 'sig', expr: 'twice > 1 ? 1 : -1' },
        { name: 'div0', expr: 'ema12 / 0' },
        { name: 'logNeg', expr: 'log(-1)' },
        { name: 'zz', expr: '0 / 0 + twice' },
        { name: 'negInf', expr: '-exp(1000)' },
      ],
      ['ema12', 'ema26', 'atr14'],
      { backend },
    );
    t.equal(c.backend, backend);
    t.same(c.names, ['macdNorm', 'twice', 'sig', 'div0', 'logNeg', 'zz', 'negInf']);
    const out = new Float64Array(7).fill(42);
    t.equal(
      c.evaluate(Float64Array.of(103, 100, 2), out),
      4,
      `${backend}: four non-finite results`,
    );
    t.same([...out.subarray(0, 3)], [1.5, 3, 1]);
    t.equal(out[3], Infinity);
    t.ok(Number.isNaN(out[4]) && Number.isNaN(out[5]), 'log(-1) and 0/0 stay NaN');
    t.equal(out[6], -Infinity);
    // Same compiled object, new inputs: all finite -> 0.
    const ok = compileFormulas(
      c.names.slice(0, 3).map((name, i) => ({
        name,
        expr: ['(ema12 - ema26) / atr14', '2 * macdNorm', 'twice > 1 ? 1 : -1'][i] as string,
      })),
      ['ema12', 'ema26', 'atr14'],
      { backend },
    );
    const out2 = new Float64Array(3);
    t.equal(ok.evaluate(Float64Array.of(100, 101, 4), out2), 0, 'finite -> 0');
    t.same([...out2], [-0.25, -0.5, -1]);
    t.equal(
      compileFormulas([{ name: 'z', expr: 'x / 0' }], ['x'], { backend }).evaluate(
        Float64Array.of(0),
        out2,
      ),
      1,
    );
  }
  t.equal(
    compileFormulas([{ name: 'a', expr: '1' }], []).backend,
    'generated',
    'generated code by default',
  );
  t.throws(
    () =>
      compileFormulas([{ name: 'a', expr: 'x' }], ['x']).evaluate(
        new Float64Array(0),
        new Float64Array(1),
      ),
    { code: ErrorCodes.INVALID_ARGUMENT },
    'inputs too short',
  );
  t.end();
});

function refusal(specs: FormulaSpec[], inputs: readonly string[] = INPUTS): QilinError {
  try {
    compileFormulas(specs, inputs);
  } catch (err) {
    return err as QilinError;
  }
  throw new Error(`not refused: ${JSON.stringify(specs)}`);
}

void t.test('exact error messages', (t) => {
  t.equal(
    refusal([{ name: 'x', expr: '2 * ema13' }]).message,
    'feature "x": unknown input "ema13" at position 5 in "2 * ema13" (known: ema12, ema26, atr14, close, vol, pi, e)',
  );
  t.equal(
    refusal([{ name: 'y', expr: 'import(ema12)' }]).message,
    'feature "y": function "import" is not allowed at position 1 in "import(ema12)" (allowed: abs, sqrt, cbrt, exp, log, log10, log2, min, max, pow, sign, tanh, sinh, cosh, atan, atan2, floor, ceil, round, clamp)',
  );
  t.equal(
    refusal([{ name: 'z', expr: '(ema12 +' }]).message,
    'feature "z": syntax error at position 9: Unexpected end of expression in "(ema12 +"',
  );
  t.equal(
    refusal([{ name: 'w', expr: 'ema12.constructor' }]).message,
    'feature "w": property access and indexing are not allowed at position 6 in "ema12.constructor"',
  );
  const e = refusal([{ name: 'x', expr: '2 * ema13' }]);
  t.equal(e.code, ErrorCodes.FORMULA_INVALID);
  t.match(e.details, { feature: 'x', position: 5, symbol: 'ema13', expr: '2 * ema13' });
  t.end();
});

void t.test(
  'every refused construct gives QLN_FORMULA_INVALID naming the feature, position and reason',
  (t) => {
    const cases: [string, RegExp][] = [
      ['a = 1', /assignments are not allowed at position 3/],
      ['ema12 = 1', /assignments are not allowed at position 7/],
      ['f(x) = x', /function definitions are not allowed at position 6/],
      ['ema12.constructor', /property access and indexing are not allowed at position 6/],
      ['ema12["constructor"]', /property access and indexing are not allowed at position 6/],
      ['ema12[1]', /property access and indexing are not allowed at position 6/],
      ['[1, 2]', /matrices and arrays are not allowed at position 1/],
      ['{a: 1}', /objects are not allowed at position 1/],
      ['"abc"', /strings are not allowed at position 1/],
      ["'abc'", /strings are not allowed at position 1/],
      ['5 cm', /unknown input "cm" at position 3/],
      ['ema12 to cm', /operator "to" \(to\) is not allowed at position 7/],
      ['1:3', /ranges are not allowed at position 2/],
      ['ema12; ema26', /several statements are not allowed at position 6/],
      ['import(ema12)', /function "import" is not allowed at position 1/],
      ['createUnit("x")', /function "createUnit" is not allowed at position 1/],
      ['evaluate("1+1")', /function "evaluate" is not allowed at position 1/],
      ['1 + parse("1")', /function "parse" is not allowed at position 5/],
      ['simplify(ema12)', /function "simplify" is not allowed at position 1/],
      ['derivative(ema12, ema26)', /function "derivative" is not allowed at position 1/],
      ['compile(ema12)', /function "compile" is not allowed at position 1/],
      ['resolve(ema12)', /function "resolve" is not allowed at position 1/],
      ['reviver(ema12)', /function "reviver" is not allowed at position 1/],
      ['cos(ema12)', /function "cos" is not allowed at position 1/],
      ['ema12(1)', /function "ema12" is not allowed at position 1/],
      ['sqrt(ema12, 2)', /function "sqrt" takes 1 argument, got 2 at position 1/],
      ['log(1, 2, 3)', /function "log" takes 1 or 2 arguments, got 3/],
      ['max()', /function "max" takes at least 1 arguments, got 0/],
      ['ema12 xor ema26', /operator "xor" \(xor\) is not allowed at position 7/],
      ['ema12 & 1', /operator "&" \(bitAnd\) is not allowed at position 7/],
      ['ema12!', /operator "!" \(factorial\) is not allowed at position 6/],
      ["ema12'", /operator "'" \(ctranspose\) is not allowed at position 6/],
      ['ema12 ?? 1', /operator "\?\?" \(nullish\) is not allowed at position 7/],
      ['true + 1', /constant true is not allowed \(only numbers\) at position 1/],
      ['null', /constant null is not allowed/],
      ['', /empty expression/],
      ['   ', /empty expression/],
      ['ema12 +', /syntax error at position 8: Unexpected end of expression/],
      ['(ema12', /syntax error at position 7: Parenthesis \) expected/],
      ['x'.repeat(2001), /expression is 2001 characters long/],
    ];
    for (const [expr, re] of cases) {
      const e = refusal([{ name: 'feat', expr }]);
      t.equal(e.code, ErrorCodes.FORMULA_INVALID, expr);
      t.ok(e.message.startsWith('feature "feat": '), `names the feature: ${e.message}`);
      t.match(e.message, re, expr);
    }
    // Cycles: a formula may use only earlier ones.
    t.match(
      refusal([{ name: 'a', expr: 'a + 1' }]).message,
      /feature "a": formula "a" refers to itself at position 1/,
    );
    t.match(
      refusal([
        { name: 'a', expr: '2 * b' },
        { name: 'b', expr: 'a' },
      ]).message,
      /feature "a": formula "b" is defined later \(a formula may use only earlier ones\) at position 5/,
    );
    t.match(
      refusal([{ name: 'ema12', expr: '1' }]).message,
      /feature "ema12": name collides with input "ema12"/,
    );
    t.match(
      refusal([
        { name: 'a', expr: '1' },
        { name: 'a', expr: '2' },
      ]).message,
      /feature "a": name is used by an earlier formula/,
    );
    t.match(
      refusal([{ name: 'a', expr: '('.repeat(300) + '1' + ')'.repeat(300) }]).message,
      /nested/,
    );
    t.end();
  },
);

void t.test('the parsing mathjs instance is locked down', (t) => {
  const m = formulaMathInstance() as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const name of [
    'import',
    'createUnit',
    'evaluate',
    'parse',
    'simplify',
    'derivative',
    'resolve',
    'compile',
  ]) {
    t.throws(() => m[name]?.('1'), new RegExp(`function ${name} is disabled`), name);
  }
  t.end();
});

void t.test('resolveFormulaSpecs validates the config value', (t) => {
  t.same(resolveFormulaSpecs(undefined), []);
  t.same(resolveFormulaSpecs([{ name: 'macdNorm', expr: '(ema12 - ema26) / atr14' }]), [
    { name: 'macdNorm', expr: '(ema12 - ema26) / atr14' },
  ]);
  const bad: [unknown, RegExp][] = [
    [{}, /^formulas = \{\} is invalid: expected an array/],
    [[1], /^formulas\[0\] = 1 is invalid/],
    [
      [
        { name: 'a', expr: '1' },
        { name: 'b', expr: '1' },
        { name: '2x', expr: '1' },
      ],
      /^formulas\[2\]\.name = "2x" is invalid: expected an identifier/,
    ],
    [[{ name: 'a-b', expr: '1' }], /^formulas\[0\]\.name = "a-b"/],
    [[{ expr: '1' }], /^formulas\[0\]\.name = undefined/],
    [
      [
        { name: 'a', expr: '1' },
        { name: 'a', expr: '2' },
      ],
      /^formulas\[1\]\.name = "a" is invalid: expected a name not used by an earlier formula/,
    ],
    [[{ name: 'and', expr: '1' }], /^formulas\[0\]\.name = "and" is invalid/],
    [[{ name: 'a', expr: '' }], /^formulas\[0\]\.expr = "" is invalid/],
    [[{ name: 'a', expr: 3 }], /^formulas\[0\]\.expr = 3 is invalid/],
    [[{ name: 'a', expr: '1', extra: 1 }], /^formulas\[0\]\.extra = 1 is invalid/],
  ];
  for (const [raw, re] of bad) {
    t.throws(
      () => resolveFormulaSpecs(raw),
      { code: ErrorCodes.FORMULA_INVALID, message: re },
      JSON.stringify(raw),
    );
  }
  t.end();
});
