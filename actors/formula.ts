/**
 * User feature formulas: derived features declared in config as mathjs
 * expressions over named inputs (indicator values, window columns), compiled
 * once at load into allocation-free JavaScript.
 *
 * Example config:
 *
 * ```json
 * "formulas": [
 *   { "name": "macdNorm", "expr": "(ema12 - ema26) / atr14" },
 *   { "name": "zClamped", "expr": "clamp((close - sma20) / max(stdev20, 1e-9), -3, 3)" },
 *   { "name": "regime",   "expr": "macdNorm > 0 and zClamped > 1 ? 1 : (macdNorm < 0 ? -1 : 0)" }
 * ]
 * ```
 *
 * Grammar (mathjs syntax; anything else is refused with QLN_FORMULA_INVALID):
 * - number literals (`2`, `1.5e-3`, `0x10`, `NaN`, `Infinity`), `50%` (= 0.5, as in mathjs);
 * - symbols: an input name, the name of an EARLIER formula (formulas are evaluated
 *   in order; a formula cannot use itself or a later one, so there are no cycles),
 *   and the constants `pi` and `e` (an input or formula of that name shadows them);
 * - `+ - * / ^ %` (`%` is mathjs's mod: `x - y * floor(x / y)`, `x % 0 = x`;
 *   `^` is right-associative, `-2^2 = -4`), implicit multiplication (`2 x`),
 *   unary `-` and `+`, parentheses;
 * - comparisons `< <= > >= == !=` (chains such as `a < b < c` mean `a < b and b < c`),
 *   `and`, `or`, `not`, and the conditional `c ? a : b`. Truth values are numbers:
 *   a comparison gives 1 or 0, and a condition is true when it is neither 0 nor NaN;
 * - the functions (the whitelist; arity in brackets):
 *   abs(1) sqrt(1) cbrt(1) exp(1) log(1 or 2: log(x, base)) log10(1) log2(1)
 *   min(1+) max(1+) pow(2) sign(1) tanh(1) sinh(1) cosh(1) atan(1) atan2(2: y, x)
 *   floor(1) ceil(1) round(1, half away from zero) clamp(3: x, lo, hi = min(max(x, lo), hi)).
 *
 * Refused: assignments, function definitions, property access and indexing
 * (`a.constructor`, `a[1]`), matrices/arrays, objects, strings, booleans/null,
 * units (`5 cm` is an unknown input `cm`), ranges, blocks (`;`), bitwise and
 * other operators (`xor`, `&`, `!`, `'`, `to`, `??` …), any function not in the
 * whitelist (in particular `import`, `createUnit`, `evaluate`, `parse`,
 * `simplify`, `derivative`, `compile`, `resolve`, `reviver`), empty expressions,
 * expressions over 2,000 characters or nested too deeply, and a formula whose
 * name is an input name. Errors name the feature, the 1-based character
 * position in the expression (mathjs's for syntax errors; otherwise the first
 * occurrence of the offending symbol, function or token) and the reason.
 *
 * Semantics: IEEE-754 doubles, real-valued, exact — this is mathjs with
 * `{ number: 'number', predictable: true }` except that
 * (1) comparisons, `floor`, `ceil`, `round`, `%` and `min`/`max` are exact
 * (`Math.*`), where mathjs applies its relTol 1e-12 / absTol 1e-15 (mathjs
 * says `0.1 + 0.2 == 0.3`, `floor(0.9999999999999999) = 1` and
 * `max(-1e-300, 0) = -1e-300`; here they are 0, 0 and 0), and
 * (2) a negative base with a finite non-integer exponent gives NaN, where
 * mathjs may return a real odd root (`(-8)^(1/3)` is -2 in mathjs, NaN here).
 * NaN and ±Infinity results are not errors: they stay in the output and
 * `evaluate` returns how many there were (the caller counts a quality event).
 *
 * Security: mathjs is used at load only, to parse. Its instance is locked down
 * as the mathjs security guide recommends (import, createUnit, evaluate, parse,
 * simplify, derivative, resolve, compile, reviver … replaced by functions that
 * throw). The AST is then checked against the whitelist above and compiled by
 * this module: the generated JavaScript contains only numeric literals
 * (validated numbers), `inp[<integer>]`, local variables, fixed operators and
 * fixed helper functions; no name or text from the config ever reaches the
 * code. Where code generation from strings is disabled
 * (`--disallow-code-generation-from-strings`) a closure tree is used instead.
 *
 * Run time: `evaluate` allocates nothing (no objects, arrays, strings or
 * closures are created per call; numbers are unboxed doubles in registers or
 * Float64Arrays). That is a design property of the emitted code, kept by
 * review rather than a flaky heap test.
 */
import { createRequire } from 'node:module';
import type * as MathJs from 'mathjs';
import type { MathNode } from 'mathjs';
import { ErrorCodes, QilinError } from '../kernel/errors.js';

export interface FormulaSpec {
  name: string;
  expr: string;
}

export type FormulaBackend = 'generated' | 'closures';

export interface CompileFormulasOptions {
  /** 'auto' (default): generated code, or closures where `new Function` is disabled. */
  backend?: 'auto' | FormulaBackend;
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Words the mathjs parser reads as operators or constants: a formula so named could not be referenced. */
const RESERVED = new Set([
  'and',
  'or',
  'not',
  'xor',
  'mod',
  'to',
  'in',
  'true',
  'false',
  'null',
  'undefined',
  'NaN',
  'Infinity',
]);
const MAX_EXPR_CHARS = 2000;
const MAX_DEPTH = 200;

/** Validate the `formulas` config value: an array of `{ name, expr }`, names unique identifiers. */
export function resolveFormulaSpecs(raw: unknown): FormulaSpec[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    throw specError('formulas', raw, 'an array of { name, expr }');
  }
  const seen = new Set<string>();
  return raw.map((item: unknown, i): FormulaSpec => {
    const at = `formulas[${i}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      throw specError(at, item, 'an object { name, expr }');
    }
    for (const key of Object.keys(item)) {
      if (key !== 'name' && key !== 'expr') {
        throw specError(
          `${at}.${key}`,
          (item as Record<string, unknown>)[key],
          'no such key (only name, expr)',
        );
      }
    }
    const { name, expr } = item as { name?: unknown; expr?: unknown };
    if (typeof name !== 'string' || !NAME_RE.test(name)) {
      throw specError(`${at}.name`, name, `an identifier matching ${String(NAME_RE)}`);
    }
    if (RESERVED.has(name)) {
      throw specError(
        `${at}.name`,
        name,
        `an identifier that is not one of ${[...RESERVED].join(', ')}`,
      );
    }
    if (seen.has(name))
      throw specError(`${at}.name`, name, 'a name not used by an earlier formula');
    seen.add(name);
    if (typeof expr !== 'string' || expr.trim() === '') {
      throw specError(`${at}.expr`, expr, 'a non-empty mathjs expression string');
    }
    return { name, expr };
  });
}

function specError(key: string, value: unknown, expected: string): QilinError {
  return new QilinError(
    ErrorCodes.FORMULA_INVALID,
    `${key} = ${JSON.stringify(value) ?? String(value)} is invalid: expected ${expected}`,
    { details: { key, value, expected } },
  );
}

// ---------------------------------------------------------------------------
// The locked-down mathjs parser (load time only).

type ParseFn = (expr: string) => MathNode;
type MathInstance = ReturnType<typeof MathJs.create>;
let parser: ParseFn | undefined;
let lockedMath: MathInstance | undefined;

/** @internal The locked-down mathjs instance the parser belongs to (for tests). */
export function formulaMathInstance(): MathInstance {
  mathParse();
  return lockedMath as MathInstance;
}

function mathParse(): ParseFn {
  if (parser !== undefined) return parser;
  // mathjs is required here, on the first formula, not imported with the
  // module: it costs ~1 s of CPU to load, and every `qilin` command and kernel
  // start imports this file through the config check (most configs have no
  // formulas). Its CommonJS build, loaded synchronously because parse is sync.
  const { all, create } = createRequire(import.meta.url)('mathjs') as typeof MathJs;
  if (all === undefined)
    throw new QilinError(ErrorCodes.INTERNAL, 'mathjs: `all` factories missing');
  const math = create(all, { number: 'number', predictable: true });
  const parse = math.parse.bind(math) as ParseFn;
  const disabled = (name: string) => () => {
    throw new Error(`function ${name} is disabled`);
  };
  const locked: Record<string, () => never> = {};
  for (const name of [
    'import',
    'createUnit',
    'reviver',
    'evaluate',
    'parse',
    'simplify',
    'simplifyConstant',
    'simplifyCore',
    'derivative',
    'resolve',
    'compile',
    'parser',
    'rationalize',
    'symbolicEqual',
    'leafCount',
  ]) {
    locked[name] = disabled(name);
  }
  math.import(locked, { override: true });
  lockedMath = math;
  parser = parse;
  return parser;
}

// ---------------------------------------------------------------------------
// Validated intermediate tree.

type BinOp =
  | 'add'
  | 'subtract'
  | 'multiply'
  | 'divide'
  | 'pow'
  | 'mod'
  | 'smaller'
  | 'smallerEq'
  | 'larger'
  | 'largerEq'
  | 'equal'
  | 'unequal'
  | 'and'
  | 'or';
type FnName =
  | 'abs'
  | 'sqrt'
  | 'cbrt'
  | 'exp'
  | 'log'
  | 'log10'
  | 'log2'
  | 'min'
  | 'max'
  | 'pow'
  | 'sign'
  | 'tanh'
  | 'sinh'
  | 'cosh'
  | 'atan'
  | 'atan2'
  | 'floor'
  | 'ceil'
  | 'round'
  | 'clamp';

type Ir =
  | { k: 'num'; v: number }
  | { k: 'in'; i: number }
  | { k: 'f'; i: number }
  | { k: 'neg' | 'not'; a: Ir }
  | { k: 'bin'; op: BinOp; a: Ir; b: Ir }
  | { k: 'cond'; c: Ir; t: Ir; f: Ir }
  | { k: 'call'; fn: FnName; args: Ir[] };

const BIN_OPS: ReadonlySet<string> = new Set<BinOp>([
  'add',
  'subtract',
  'multiply',
  'divide',
  'pow',
  'mod',
  'smaller',
  'smallerEq',
  'larger',
  'largerEq',
  'equal',
  'unequal',
  'and',
  'or',
]);

/** The whitelist: name -> [min args, max args]. */
const FUNCTIONS: Readonly<Record<FnName, readonly [number, number]>> = {
  abs: [1, 1],
  sqrt: [1, 1],
  cbrt: [1, 1],
  exp: [1, 1],
  log: [1, 2],
  log10: [1, 1],
  log2: [1, 1],
  min: [1, Infinity],
  max: [1, Infinity],
  pow: [2, 2],
  sign: [1, 1],
  tanh: [1, 1],
  sinh: [1, 1],
  cosh: [1, 1],
  atan: [1, 1],
  atan2: [2, 2],
  floor: [1, 1],
  ceil: [1, 1],
  round: [1, 1],
  clamp: [3, 3],
};
const FUNCTION_NAMES = Object.keys(FUNCTIONS).join(', ');

function isFnName(name: string): name is FnName {
  return Object.prototype.hasOwnProperty.call(FUNCTIONS, name);
}

// ---------------------------------------------------------------------------
// Run-time helpers shared by both back ends (pure, allocation-free).

function powQ(x: number, y: number): number {
  // Real-valued: a negative base with a finite non-integer exponent has no real power.
  if (x < 0 && Number.isFinite(y) && !Number.isInteger(y)) return NaN;
  // mathjs (predictable): (-2)^Infinity and (-0.5)^-Infinity are NaN, not ±Infinity.
  if ((x < -1 && y === Infinity) || (x > -1 && x < 0 && y === -Infinity)) return NaN;
  // mathjs: x^Infinity is 0 when |x| < 1 (Math.pow agrees), x^-Infinity is 0 when |x| > 1.
  if ((x * x < 1 && y === Infinity) || (x * x > 1 && y === -Infinity)) return 0;
  return Math.pow(x, y);
}
function modQ(x: number, y: number): number {
  return y === 0 ? x : x - y * Math.floor(x / y);
}
function roundQ(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}
function log2Q(x: number, b: number): number {
  return Math.log(x) / Math.log(b);
}
function clampQ(x: number, lo: number, hi: number): number {
  return Math.min(Math.max(x, lo), hi);
}

const HELPERS = Object.freeze({
  abs: Math.abs,
  sqrt: Math.sqrt,
  cbrt: Math.cbrt,
  exp: Math.exp,
  log: Math.log,
  logb: log2Q,
  log10: Math.log10,
  log2: Math.log2,
  min: Math.min,
  max: Math.max,
  pow: powQ,
  mod: modQ,
  sign: Math.sign,
  tanh: Math.tanh,
  sinh: Math.sinh,
  cosh: Math.cosh,
  atan: Math.atan,
  atan2: Math.atan2,
  floor: Math.floor,
  ceil: Math.ceil,
  round: roundQ,
  clamp: clampQ,
});

// ---------------------------------------------------------------------------

/** Compiled formulas; see the module comment for grammar and semantics. */
export class CompiledFormulas {
  readonly names: readonly string[];
  readonly inputNames: readonly string[];
  /** Which back end runs `evaluate`. */
  readonly backend: FormulaBackend;
  private readonly run: (inp: Float64Array, out: Float64Array) => number;

  /** @internal built by compileFormulas */
  constructor(
    names: readonly string[],
    inputNames: readonly string[],
    backend: FormulaBackend,
    run: (inp: Float64Array, out: Float64Array) => number,
  ) {
    this.names = names;
    this.inputNames = inputNames;
    this.backend = backend;
    this.run = run;
  }

  /**
   * Evaluate every formula in order: `inputs` holds the values of `inputNames`
   * (same order as given to compileFormulas); results go to
   * out[0..names.length). A formula may use earlier formulas' names. Returns
   * the number of results that are NaN or ±Infinity (the caller counts them
   * as a quality event); those values stay NaN/±Infinity in `out`.
   * Allocates nothing.
   */
  evaluate(inputs: Float64Array, out: Float64Array): number {
    if (inputs.length < this.inputNames.length || out.length < this.names.length) {
      throw new QilinError(
        ErrorCodes.INVALID_ARGUMENT,
        `formulas: inputs has ${inputs.length} values (need ${this.inputNames.length}), out has ${out.length} (need ${this.names.length})`,
      );
    }
    return this.run(inputs, out);
  }
}

/** Parse, check and compile `specs` over `inputNames`; throws QLN_FORMULA_INVALID. */
export function compileFormulas(
  specs: readonly FormulaSpec[],
  inputNames: readonly string[],
  options: CompileFormulasOptions = {},
): CompiledFormulas {
  const inputIndex = new Map<string, number>();
  inputNames.forEach((n, i) => {
    if (typeof n !== 'string' || !NAME_RE.test(n) || inputIndex.has(n)) {
      throw new QilinError(
        ErrorCodes.FORMULA_INVALID,
        `formula input names must be unique identifiers matching ${String(NAME_RE)}: ${JSON.stringify(n)} at index ${i} is not`,
        { details: { inputNames } },
      );
    }
    inputIndex.set(n, i);
  });
  const formulaIndex = new Map<string, number>();
  const allNames = new Set(specs.map((s) => s.name));
  const trees: Ir[] = [];
  specs.forEach((spec, i) => {
    const ctx = new Ctx(spec, i, inputNames, inputIndex, formulaIndex, allNames);
    if (typeof spec.name !== 'string' || !NAME_RE.test(spec.name)) {
      throw ctx.fail(
        `name ${JSON.stringify(spec.name)} is not an identifier matching ${String(NAME_RE)}`,
      );
    }
    if (inputIndex.has(spec.name)) {
      throw ctx.fail(`name collides with input "${spec.name}"`);
    }
    if (formulaIndex.has(spec.name)) {
      throw ctx.fail(`name is used by an earlier formula`);
    }
    trees.push(ctx.compile());
    formulaIndex.set(spec.name, i);
  });
  const names = Object.freeze(specs.map((s) => s.name));
  const inputs = Object.freeze([...inputNames]);
  const want = options.backend ?? 'auto';
  if (want !== 'closures') {
    try {
      return new CompiledFormulas(names, inputs, 'generated', generate(trees));
    } catch (err) {
      if (want === 'generated' || !(err instanceof EvalError)) throw err;
    }
  }
  return new CompiledFormulas(names, inputs, 'closures', closures(trees));
}

class Ctx {
  constructor(
    private readonly spec: FormulaSpec,
    private readonly index: number,
    private readonly inputNames: readonly string[],
    private readonly inputIndex: ReadonlyMap<string, number>,
    private readonly formulaIndex: ReadonlyMap<string, number>,
    private readonly allNames: ReadonlySet<string>,
  ) {}

  fail(
    reason: string,
    position?: number,
    hint = '',
    details: Record<string, unknown> = {},
  ): QilinError {
    const expr = String(this.spec.expr);
    const shown = expr.length > 200 ? `${expr.slice(0, 200)}…` : expr;
    const at = position === undefined ? '' : ` at position ${position}`;
    return new QilinError(
      ErrorCodes.FORMULA_INVALID,
      `feature "${this.spec.name}": ${reason}${at} in ${JSON.stringify(shown)}${hint}`,
      {
        details: {
          feature: this.spec.name,
          index: this.index,
          expr,
          position,
          reason,
          ...details,
        },
      },
    );
  }

  compile(): Ir {
    const expr: unknown = this.spec.expr;
    if (typeof expr !== 'string' || expr.trim() === '') throw this.fail('empty expression');
    if (expr.length > MAX_EXPR_CHARS) {
      throw this.fail(`expression is ${expr.length} characters long (at most ${MAX_EXPR_CHARS})`);
    }
    let root: MathNode;
    try {
      root = mathParse()(expr);
    } catch (cause) {
      if (cause instanceof RangeError) throw this.fail('expression is nested too deeply');
      const e = cause as Error & { char?: unknown };
      const msg = String(e.message).replace(/\s*\(char \d+\)\s*$/, '');
      const pos = typeof e.char === 'number' ? e.char : undefined;
      const at = pos === undefined ? '' : ` at position ${pos}`;
      throw new QilinError(
        ErrorCodes.FORMULA_INVALID,
        `feature "${this.spec.name}": syntax error${at}: ${msg} in ${JSON.stringify(expr)}`,
        {
          cause,
          details: { feature: this.spec.name, index: this.index, expr, position: pos, reason: msg },
        },
      );
    }
    return this.node(root, 0);
  }

  /** 1-based position of the first occurrence of an identifier (whole word), or undefined. */
  private wordAt(word: string): number | undefined {
    const esc = word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const m = new RegExp(`(?<![\\w$.])${esc}(?![\\w$])`).exec(this.spec.expr);
    return m === null ? undefined : m.index + 1;
  }

  /** 1-based position of the first match of `re`, or undefined. */
  private match(re: RegExp): number | undefined {
    const m = re.exec(this.spec.expr);
    return m === null ? undefined : m.index + 1;
  }

  private tokenAt(op: string): number | undefined {
    if (/^[A-Za-z]+$/.test(op)) return this.wordAt(op);
    if (op === '!') return this.match(/!(?!=)/);
    const i = this.spec.expr.indexOf(op);
    return i < 0 ? undefined : i + 1;
  }

  private node(n: MathNode, depth: number): Ir {
    if (depth > MAX_DEPTH) throw this.fail(`expression is nested more than ${MAX_DEPTH} deep`);
    const d = depth + 1;
    switch (n.type) {
      case 'ParenthesisNode':
        return this.node((n as unknown as { content: MathNode }).content, d);
      case 'ConstantNode': {
        const v: unknown = (n as unknown as { value: unknown }).value;
        if (typeof v === 'number') return { k: 'num', v };
        if (typeof v === 'string') {
          throw this.fail('strings are not allowed', this.match(/["']/));
        }
        const word = String(v);
        throw this.fail(`constant ${word} is not allowed (only numbers)`, this.wordAt(word));
      }
      case 'SymbolNode':
        return this.symbol((n as unknown as { name: string }).name);
      case 'OperatorNode':
        return this.operator(n as unknown as { op: string; fn: string; args: MathNode[] }, d);
      case 'RelationalNode': {
        const r = n as unknown as { conditionals: string[]; params: MathNode[] };
        const params = r.params.map((p) => this.node(p, d));
        let acc: Ir | undefined;
        r.conditionals.forEach((c, i) => {
          const cmp: Ir = { k: 'bin', op: c as BinOp, a: params[i] as Ir, b: params[i + 1] as Ir };
          if (!BIN_OPS.has(c)) throw this.fail(`comparison "${c}" is not allowed`);
          acc = acc === undefined ? cmp : { k: 'bin', op: 'and', a: acc, b: cmp };
        });
        if (acc === undefined) throw this.fail('empty comparison chain');
        return acc;
      }
      case 'ConditionalNode': {
        const c = n as unknown as { condition: MathNode; trueExpr: MathNode; falseExpr: MathNode };
        return {
          k: 'cond',
          c: this.node(c.condition, d),
          t: this.node(c.trueExpr, d),
          f: this.node(c.falseExpr, d),
        };
      }
      case 'FunctionNode':
        return this.call(n as unknown as { fn: MathNode; args: MathNode[] }, d);
      case 'AccessorNode':
      case 'IndexNode':
        throw this.fail(
          'property access and indexing are not allowed',
          this.match(/\[|\.(?=\s*[A-Za-z_$])/),
        );
      case 'ArrayNode':
        throw this.fail('matrices and arrays are not allowed', this.match(/\[/));
      case 'ObjectNode':
        throw this.fail('objects are not allowed', this.match(/\{/));
      case 'RangeNode':
        throw this.fail('ranges are not allowed', this.match(/:/));
      case 'AssignmentNode':
        throw this.fail('assignments are not allowed', this.match(/(?<![=<>!])=(?!=)/));
      case 'FunctionAssignmentNode':
        throw this.fail('function definitions are not allowed', this.match(/(?<![=<>!])=(?!=)/));
      case 'BlockNode':
        throw this.fail('several statements are not allowed', this.match(/[;\n]/));
      default:
        throw this.fail(`${n.type} is not allowed`);
    }
  }

  private symbol(name: string): Ir {
    const inp = this.inputIndex.get(name);
    if (inp !== undefined) return { k: 'in', i: inp };
    const f = this.formulaIndex.get(name);
    if (f !== undefined) return { k: 'f', i: f };
    if (name === 'pi') return { k: 'num', v: Math.PI };
    if (name === 'e') return { k: 'num', v: Math.E };
    const pos = this.wordAt(name);
    if (name === this.spec.name) {
      throw this.fail(`formula "${name}" refers to itself`, pos, '', { symbol: name });
    }
    if (this.allNames.has(name)) {
      throw this.fail(
        `formula "${name}" is defined later (a formula may use only earlier ones)`,
        pos,
        '',
        { symbol: name },
      );
    }
    const known = [...this.inputNames, ...this.formulaIndex.keys(), 'pi', 'e'];
    const list = known.length > 20 ? `${known.slice(0, 20).join(', ')}, …` : known.join(', ');
    throw this.fail(`unknown input "${name}"`, pos, ` (known: ${list})`, { symbol: name });
  }

  private operator(n: { op: string; fn: string; args: MathNode[] }, d: number): Ir {
    const args = n.args;
    if (args.length === 1 && (n.fn === 'unaryMinus' || n.fn === 'unaryPlus' || n.fn === 'not')) {
      const a = this.node(args[0] as MathNode, d);
      if (n.fn === 'unaryPlus') return a;
      return { k: n.fn === 'unaryMinus' ? 'neg' : 'not', a };
    }
    if (args.length === 2 && BIN_OPS.has(n.fn)) {
      return {
        k: 'bin',
        op: n.fn as BinOp,
        a: this.node(args[0] as MathNode, d),
        b: this.node(args[1] as MathNode, d),
      };
    }
    throw this.fail(`operator "${n.op}" (${n.fn}) is not allowed`, this.tokenAt(n.op), '', {
      operator: n.op,
    });
  }

  private call(n: { fn: MathNode; args: MathNode[] }, d: number): Ir {
    if (n.fn.type !== 'SymbolNode') {
      throw this.fail(
        'calling the result of an expression (property access) is not allowed',
        this.match(/\[|\.(?=\s*[A-Za-z_$])|\(/),
      );
    }
    const name = (n.fn as unknown as { name: string }).name;
    if (!isFnName(name)) {
      throw this.fail(
        `function "${name}" is not allowed`,
        this.wordAt(name),
        ` (allowed: ${FUNCTION_NAMES})`,
        {
          function: name,
        },
      );
    }
    const [lo, hi] = FUNCTIONS[name];
    if (n.args.length < lo || n.args.length > hi) {
      const want = lo === hi ? `${lo}` : hi === Infinity ? `at least ${lo}` : `${lo} or ${hi}`;
      throw this.fail(
        `function "${name}" takes ${want} argument${want === '1' ? '' : 's'}, got ${n.args.length}`,
        this.wordAt(name),
        '',
        { function: name },
      );
    }
    return { k: 'call', fn: name, args: n.args.map((a) => this.node(a, d)) };
  }
}

// ---------------------------------------------------------------------------
// Back end 1: generated code. Only validated numbers, integer indices, fixed
// operators and fixed helper names are emitted.

function literal(v: number): string {
  if (Number.isNaN(v)) return '(0/0)';
  if (v === Infinity) return '(1/0)';
  if (v === -Infinity) return '(-1/0)';
  if (Object.is(v, -0)) return '(-0)';
  const s = String(v);
  if (!/^-?[0-9.e+-]+$/.test(s) || Number(s) !== v) {
    throw new QilinError(ErrorCodes.INTERNAL, `formula compiler: unexpected constant ${s}`);
  }
  return `(${s})`;
}

function index(i: number): string {
  if (!Number.isInteger(i) || i < 0) {
    throw new QilinError(ErrorCodes.INTERNAL, `formula compiler: bad index ${String(i)}`);
  }
  return String(i);
}

const CMP: Readonly<Partial<Record<BinOp, string>>> = {
  smaller: '<',
  smallerEq: '<=',
  larger: '>',
  largerEq: '>=',
  equal: '===',
  unequal: '!==',
};
const ARITH: Readonly<Partial<Record<BinOp, string>>> = {
  add: '+',
  subtract: '-',
  multiply: '*',
  divide: '/',
};

function emit(t: Ir): string {
  switch (t.k) {
    case 'num':
      return literal(t.v);
    case 'in':
      return `inp[${index(t.i)}]`;
    case 'f':
      return `f${index(t.i)}`;
    case 'neg':
      return `(-${emit(t.a)})`;
    case 'not':
      return `(${emit(t.a)} ? 0 : 1)`;
    case 'cond':
      return `(${emit(t.c)} ? ${emit(t.t)} : ${emit(t.f)})`;
    case 'bin': {
      const a = emit(t.a);
      const b = emit(t.b);
      const ar = ARITH[t.op];
      if (ar !== undefined) return `(${a} ${ar} ${b})`;
      const cmp = CMP[t.op];
      if (cmp !== undefined) return `(${a} ${cmp} ${b} ? 1 : 0)`;
      if (t.op === 'and') return `(${a} && ${b} ? 1 : 0)`;
      if (t.op === 'or') return `(${a} || ${b} ? 1 : 0)`;
      if (t.op === 'pow') return `H_pow(${a}, ${b})`;
      if (t.op === 'mod') return `H_mod(${a}, ${b})`;
      throw new QilinError(ErrorCodes.INTERNAL, `formula compiler: operator ${String(t.op)}`);
    }
    case 'call': {
      const args = t.args.map(emit);
      const fn = t.fn === 'log' && args.length === 2 ? 'logb' : t.fn;
      if (!Object.prototype.hasOwnProperty.call(HELPERS, fn)) {
        throw new QilinError(ErrorCodes.INTERNAL, `formula compiler: function ${fn}`);
      }
      return `H_${fn}(${args.join(', ')})`;
    }
  }
}

function generate(trees: readonly Ir[]): (inp: Float64Array, out: Float64Array) => number {
  const prologue = Object.keys(HELPERS)
    .map((k) => `const H_${k} = H.${k};`)
    .join('\n');
  const body: string[] = ['let bad = 0;'];
  trees.forEach((t, i) => {
    const f = `f${index(i)}`;
    body.push(
      `const ${f} = ${emit(t)};`,
      `out[${index(i)}] = ${f};`,
      `if (!(${f} - ${f} === 0)) bad++;`,
    );
  });
  body.push('return bad;');
  const src = `'use strict';\n${prologue}\nreturn function evaluateFormulas(inp, out) {\n${body.join('\n')}\n};`;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const factory = new Function('H', src) as (
    h: typeof HELPERS,
  ) => (inp: Float64Array, out: Float64Array) => number;
  return factory(HELPERS);
}

// ---------------------------------------------------------------------------
// Back end 2: a closure tree (no code generation from strings).

type Ev = (x: Float64Array, o: Float64Array) => number;

function closure(t: Ir): Ev {
  switch (t.k) {
    case 'num': {
      const v = t.v;
      return () => v;
    }
    case 'in': {
      const i = t.i;
      return (x) => x[i] as number;
    }
    case 'f': {
      const i = t.i;
      return (_x, o) => o[i] as number;
    }
    case 'neg': {
      const a = closure(t.a);
      return (x, o) => -a(x, o);
    }
    case 'not': {
      const a = closure(t.a);
      return (x, o) => (a(x, o) ? 0 : 1);
    }
    case 'cond': {
      const c = closure(t.c);
      const a = closure(t.t);
      const b = closure(t.f);
      return (x, o) => (c(x, o) ? a(x, o) : b(x, o));
    }
    case 'bin':
      return binClosure(t.op, closure(t.a), closure(t.b));
    case 'call':
      return callClosure(t.fn, t.args.map(closure));
  }
}

function binClosure(op: BinOp, a: Ev, b: Ev): Ev {
  switch (op) {
    case 'add':
      return (x, o) => a(x, o) + b(x, o);
    case 'subtract':
      return (x, o) => a(x, o) - b(x, o);
    case 'multiply':
      return (x, o) => a(x, o) * b(x, o);
    case 'divide':
      return (x, o) => a(x, o) / b(x, o);
    case 'pow':
      return (x, o) => powQ(a(x, o), b(x, o));
    case 'mod':
      return (x, o) => modQ(a(x, o), b(x, o));
    case 'smaller':
      return (x, o) => (a(x, o) < b(x, o) ? 1 : 0);
    case 'smallerEq':
      return (x, o) => (a(x, o) <= b(x, o) ? 1 : 0);
    case 'larger':
      return (x, o) => (a(x, o) > b(x, o) ? 1 : 0);
    case 'largerEq':
      return (x, o) => (a(x, o) >= b(x, o) ? 1 : 0);
    case 'equal':
      return (x, o) => (a(x, o) === b(x, o) ? 1 : 0);
    case 'unequal':
      return (x, o) => (a(x, o) !== b(x, o) ? 1 : 0);
    case 'and':
      return (x, o) => (a(x, o) && b(x, o) ? 1 : 0);
    case 'or':
      return (x, o) => (a(x, o) || b(x, o) ? 1 : 0);
  }
}

function callClosure(fn: FnName, args: readonly Ev[]): Ev {
  const [a = () => NaN, b = () => NaN, c = () => NaN] = args;
  switch (fn) {
    case 'log':
      return args.length === 2 ? (x, o) => log2Q(a(x, o), b(x, o)) : (x, o) => Math.log(a(x, o));
    case 'pow':
    case 'atan2': {
      const f = HELPERS[fn];
      return (x, o) => f(a(x, o), b(x, o));
    }
    case 'clamp':
      return (x, o) => clampQ(a(x, o), b(x, o), c(x, o));
    case 'min':
    case 'max': {
      const pick = fn === 'min' ? Math.min : Math.max;
      if (args.length === 1) return a;
      const rest = args.slice(1);
      // Fold without allocation: NaN propagates as in Math.min/max and mathjs.
      return (x, o) => {
        let r = a(x, o);
        for (let i = 0; i < rest.length; i++) r = pick(r, (rest[i] as Ev)(x, o));
        return r;
      };
    }
    default: {
      const f = HELPERS[fn];
      return (x, o) => f(a(x, o));
    }
  }
}

function closures(trees: readonly Ir[]): (inp: Float64Array, out: Float64Array) => number {
  const evs = trees.map(closure);
  const n = evs.length;
  return (inp, out) => {
    let bad = 0;
    for (let i = 0; i < n; i++) {
      const v = (evs[i] as Ev)(inp, out);
      out[i] = v;
      if (!(v - v === 0)) bad++;
    }
    return bad;
  };
}
