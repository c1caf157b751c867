import { resolveStrategyConfig, STRATEGY_KINDS, type StrategyKind } from '../actors/strategies.js';
import { ErrorCodes, QilinError } from '../kernel/errors.js';

/**
 * The parameter grid of a sweep (`qilin backtest --sweep k=a..b:step`,
 * repeatable) and how a strategy's parameters reach the actor.
 *
 * The grid is the cartesian product of the axes, in a fixed order: point
 * `i` is `i` written in mixed radix over the axes' value counts, the LAST
 * axis varying fastest (like nested loops written in the order the options
 * were given). Every point is a function of its index alone, so a worker can
 * be handed any index and the grid never has to be materialised.
 *
 * ```
 *  --sweep a=1..2:1 --sweep b=0..0.2:0.1     a: [1, 2]   b: [0, 0.1, 0.2]
 *  index  0      1        2        3      4        5
 *         a=1    a=1      a=1      a=2    a=2      a=2
 *         b=0    b=0.1    b=0.2    b=0    b=0.1    b=0.2
 * ```
 *
 * Values are `from + i·step` for i = 0, 1, … while ≤ `to` (a tolerance of
 * 1e-9 steps, so `0..1:0.1` ends at 1 despite binary fractions), each rounded
 * to 15 significant digits (0.30000000000000004 is 0.3). `to` itself is a
 * value only when the step lands on it.
 */

/** Most points a sweep may have (each is a whole backtest). */
export const MAX_GRID_POINTS = 10_000;

/** One `--sweep` axis: a key and its values. */
export interface SweepAxis {
  key: string;
  from: number;
  to: number;
  step: number;
  values: number[];
}

/** A point of the grid: its index and its value per key. */
export interface GridPoint {
  index: number;
  params: Record<string, number>;
}

function usage(option: string, value: string, allowed: string): never {
  throw new QilinError(
    ErrorCodes.CLI_USAGE,
    `invalid ${option}: ${JSON.stringify(value)} (allowed: ${allowed})`,
    { details: { option, value, allowed } },
  );
}

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SWEEP_FORM =
  'key=from..to:step with numbers, from ≤ to, step > 0, e.g. threshold=0.1..0.5:0.1';

/** Parse one `--sweep key=from..to:step`; throws QLN_CLI_USAGE naming what is wrong. */
export function parseSweep(text: string): SweepAxis {
  const eq = text.indexOf('=');
  const colon = text.lastIndexOf(':');
  const dots = text.indexOf('..', eq + 1);
  if (eq <= 0 || dots < 0 || colon < dots) usage('--sweep', text, SWEEP_FORM);
  const key = text.slice(0, eq);
  if (!KEY.test(key)) usage('--sweep', text, SWEEP_FORM);
  const a = text.slice(eq + 1, dots);
  const b = text.slice(dots + 2, colon);
  const s = text.slice(colon + 1);
  const num = (v: string): number => (v.trim() === '' ? NaN : Number(v));
  const from = num(a);
  const to = num(b);
  const step = num(s);
  if (!Number.isFinite(from) || !Number.isFinite(to) || !Number.isFinite(step)) {
    usage('--sweep', text, SWEEP_FORM);
  }
  if (!(step > 0)) usage('--sweep', text, `a step > 0 (got ${step})`);
  if (from > to) usage('--sweep', text, `from ≤ to (got ${from} > ${to})`);
  const count = Math.floor((to - from) / step + 1e-9) + 1;
  if (count > MAX_GRID_POINTS) {
    usage('--sweep', text, `at most ${MAX_GRID_POINTS} values per axis (this one has ${count})`);
  }
  const values: number[] = [];
  for (let i = 0; i < count; i++) {
    const v = Number((from + i * step).toPrecision(15));
    values.push(v > to ? to : v < from ? from : v);
  }
  return { key, from, to, step, values };
}

/** Number of points of the grid: the product of the axes' value counts (1 with no axis). */
export function gridSize(axes: readonly SweepAxis[]): number {
  let n = 1;
  for (const a of axes) n *= a.values.length;
  return n;
}

/**
 * Check a grid before running it: distinct keys, none also fixed by
 * `--param`, at most `max` points. Throws QLN_CLI_USAGE.
 */
export function checkGrid(
  axes: readonly SweepAxis[],
  fixed: Readonly<Record<string, unknown>> = {},
  max = MAX_GRID_POINTS,
): void {
  const seen = new Set<string>();
  for (const a of axes) {
    if (seen.has(a.key)) usage('--sweep', a.key, 'each key swept once');
    if (Object.hasOwn(fixed, a.key)) {
      usage('--sweep', a.key, 'a key not also set by --param');
    }
    seen.add(a.key);
  }
  const n = gridSize(axes);
  if (n > max) {
    usage(
      '--sweep',
      axes.map((a) => `${a.key}:${a.values.length}`).join(' × '),
      `a grid of at most ${max} points (this one has ${n})`,
    );
  }
}

/** Point `index` of the grid (last axis fastest). */
export function gridPoint(axes: readonly SweepAxis[], index: number): GridPoint {
  const params: Record<string, number> = {};
  let rest = index;
  for (let i = axes.length - 1; i >= 0; i--) {
    const a = axes[i]!;
    const n = a.values.length;
    params[a.key] = a.values[rest % n]!;
    rest = Math.floor(rest / n);
  }
  // Keys in the axes' order, whatever the loop's order.
  const ordered: Record<string, number> = {};
  for (const a of axes) ordered[a.key] = params[a.key]!;
  return { index, params: ordered };
}

/** Every point, index order. */
export function gridPoints(axes: readonly SweepAxis[]): GridPoint[] {
  const n = gridSize(axes);
  const out: GridPoint[] = [];
  for (let i = 0; i < n; i++) out.push(gridPoint(axes, i));
  return out;
}

/** `--strategy`: a kind of the strategy registry (actors/strategies.ts); QLN_CLI_USAGE otherwise. */
export function checkStrategy(name: string): StrategyKind {
  if (!(STRATEGY_KINDS as readonly string[]).includes(name)) {
    usage('--strategy', name, STRATEGY_KINDS.join(', '));
  }
  return name as StrategyKind;
}

/** The parameters of a strategy kind (its rule's keys, e.g. `threshold`, `saturation` of momentum). */
export function strategyParamNames(kind: StrategyKind): string[] {
  return Object.keys(resolveStrategyConfig({ kind })).filter((k) => k !== 'kind');
}

/**
 * The SymbolActor options of one run: `base` (the config's `actor`) with
 * the rule set to `kind`; each param that is a parameter of the strategy
 * goes into the rule (`actor.rule.<k>`), every other one is an actor option
 * (`actor.<k>`, e.g. `minIntervalUs`). The model strategy's `threshold` is
 * also the actor's flat `threshold`, which the model batch reads.
 * Validation is the actor module's (resolveSymbolActorOptions).
 */
export function strategyActorOptions(
  base: Readonly<Record<string, unknown>>,
  kind: StrategyKind,
  params: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const names = new Set(strategyParamNames(kind));
  const baseRule = base['rule'];
  const rule: Record<string, unknown> =
    typeof baseRule === 'object' &&
    baseRule !== null &&
    (baseRule as { kind?: unknown }).kind === kind
      ? { ...(baseRule as Record<string, unknown>) }
      : { kind };
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(params)) {
    if (names.has(k)) {
      rule[k] = v;
      if (kind === 'model' && k === 'threshold') out['threshold'] = v;
    } else {
      out[k] = v;
    }
  }
  out['rule'] = rule;
  return out;
}
