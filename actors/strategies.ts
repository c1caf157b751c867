import { invalidArgument } from '../kernel/errors.js';

/**
 * Strategies: what position a symbol should have, from the model score and
 * the named features of its FeatureSet. A strategy only states a *target
 * side* (1 buy, −1 sell, 0 flat; NaN while it has no opinion yet) and a
 * strength in [0, 1]; the SignalGate (signal-gate.ts) decides when that
 * becomes a proposed signal (warm-up, quality, throttling, and the side last
 * approved for executors). The same classes run live and in replay.
 *
 * Chosen per kernel by config (`actor.rule`), e.g.
 * ```json
 *   { "kind": "maCross", "fast": "ema12", "slow": "ema26", "band": 0.0005 }
 *   { "kind": "rsi", "feature": "rsi14", "lower": 30, "upper": 70 }
 *   { "kind": "macd", "feature": "macd_hist", "band": 0.0001 }
 *   { "kind": "momentum", "ref": "ema26", "threshold": 0.001 }
 *   { "kind": "model", "threshold": 0.2 }
 * ```
 * Features are named, not computed here: a strategy reads the values the
 * actor's FeatureSet (and formulas) already computed for this tick, and a
 * config naming a feature that does not exist fails at start.
 *
 * | kind       | target                                                            | strength                       |
 * |------------|-------------------------------------------------------------------|--------------------------------|
 * | `model`    | score > threshold: buy, < −threshold: sell, else flat              | min(|score|, 1)                |
 * | `maCross`  | d = fast/slow − 1; d > band: buy, d < −band: sell, else keep       | min(|d| / saturation, 1)       |
 * | `rsi`      | rsi < lower: buy, > upper: sell; back inside [exitLower, exitUpper]: flat; else keep | distance past the bound / lower |
 * | `macd`     | h = hist/px; h > band: buy, h < −band: sell, else keep              | min(|h| / saturation, 1)       |
 * | `momentum` | m = ln(px / ref); m > threshold: buy, < −threshold: sell, else flat | min(|m| / saturation, 1)      |
 *
 * "Keep" is hysteresis: inside the band the previous target stands, so a
 * crossover does not flip on every tick around equality. A NaN input (a
 * feature still warming up) gives NaN: no opinion, nothing proposed.
 */
export interface Strategy {
  readonly kind: StrategyKind;
  /** Strength of the last target, in [0, 1]. */
  readonly strength: number;
  /** Target side after one trade: 1, −1, 0, or NaN (no opinion yet). No allocation. */
  target(score: number, px: number, features: Float64Array): number;
}

export const STRATEGY_KINDS = ['model', 'maCross', 'rsi', 'macd', 'momentum'] as const;
export type StrategyKind = (typeof STRATEGY_KINDS)[number];

export type StrategyConfig =
  | { kind: 'model'; threshold: number }
  | { kind: 'maCross'; fast: string; slow: string; band: number; saturation: number }
  | {
      kind: 'rsi';
      feature: string;
      lower: number;
      upper: number;
      exitLower: number;
      exitUpper: number;
    }
  | { kind: 'macd'; feature: string; band: number; saturation: number }
  | { kind: 'momentum'; ref: string; threshold: number; saturation: number };

const DEFAULTS: { readonly [K in StrategyKind]: Extract<StrategyConfig, { kind: K }> } = {
  model: { kind: 'model', threshold: 0.2 },
  maCross: { kind: 'maCross', fast: 'ema12', slow: 'ema26', band: 0.0005, saturation: 0.01 },
  rsi: { kind: 'rsi', feature: 'rsi14', lower: 30, upper: 70, exitLower: 45, exitUpper: 55 },
  macd: { kind: 'macd', feature: 'macd_hist', band: 0.0001, saturation: 0.002 },
  momentum: { kind: 'momentum', ref: 'ema26', threshold: 0.001, saturation: 0.01 },
};

/**
 * Validate `raw` (an object with `kind` and that kind's parameters; absent:
 * `{kind: 'model'}` with `threshold` from the actor's flat `threshold`
 * option). Throws QLN_INVALID_ARGUMENT naming `rule.<key>`.
 */
export function resolveStrategyConfig(raw: unknown, modelThreshold = 0.2): StrategyConfig {
  if (raw === undefined || raw === null) return { kind: 'model', threshold: modelThreshold };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    invalidArgument('rule', raw, `an object with "kind" (${STRATEGY_KINDS.join(', ')})`);
  }
  const given = raw as Record<string, unknown>;
  const kind = given['kind'] ?? 'model';
  if (typeof kind !== 'string' || !(STRATEGY_KINDS as readonly string[]).includes(kind)) {
    invalidArgument('rule.kind', kind, STRATEGY_KINDS.join(', '));
  }
  const base: Record<string, unknown> = { ...DEFAULTS[kind as StrategyKind] };
  if (kind === 'model') base['threshold'] = modelThreshold;
  for (const [k, v] of Object.entries(given)) {
    if (k === 'kind') continue;
    if (!Object.hasOwn(base, k)) {
      invalidArgument(
        `rule.${k}`,
        v,
        `a parameter of "${kind}" (${Object.keys(base)
          .filter((x) => x !== 'kind')
          .join(', ')})`,
      );
    }
    const def = base[k];
    if (typeof def === 'string') {
      if (typeof v !== 'string' || v.length === 0) {
        invalidArgument(`rule.${k}`, v, 'a feature name');
      }
    } else if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      invalidArgument(`rule.${k}`, v, 'a finite number ≥ 0');
    }
    base[k] = v;
  }
  const c = base as StrategyConfig;
  if (c.kind === 'model' && !(c.threshold < 1)) {
    invalidArgument('rule.threshold', c.threshold, 'a number in [0, 1)');
  }
  if (c.kind === 'rsi') {
    if (!(c.lower <= c.exitLower && c.exitLower <= c.exitUpper && c.exitUpper <= c.upper)) {
      invalidArgument(
        'rule',
        `${c.lower}/${c.exitLower}/${c.exitUpper}/${c.upper}`,
        'lower ≤ exitLower ≤ exitUpper ≤ upper',
      );
    }
    if (c.upper > 100) invalidArgument('rule.upper', c.upper, 'a number in [0, 100]');
  }
  if ((c.kind === 'maCross' || c.kind === 'macd' || c.kind === 'momentum') && !(c.saturation > 0)) {
    invalidArgument('rule.saturation', c.saturation, 'a number > 0');
  }
  return c;
}

/** The feature names a strategy reads. */
export function strategyFeatures(c: StrategyConfig): string[] {
  switch (c.kind) {
    case 'model':
      return [];
    case 'maCross':
      return [c.fast, c.slow];
    case 'rsi':
    case 'macd':
      return [c.feature];
    case 'momentum':
      return [c.ref];
  }
}

/**
 * A factory of per-symbol strategies for `c`, with feature names resolved
 * against `names` (the actor's feature names in value order) once. Throws
 * QLN_INVALID_ARGUMENT naming a feature the strategy needs that `names`
 * lacks.
 */
export function strategyFactory(c: StrategyConfig, names: readonly string[]): () => Strategy {
  const idx = (key: string, name: string): number => {
    const i = names.indexOf(name);
    if (i < 0) {
      invalidArgument(`rule.${key}`, name, `a configured feature (${names.join(', ')})`);
    }
    return i;
  };
  switch (c.kind) {
    case 'model':
      return () => new ModelThreshold(c.threshold);
    case 'maCross': {
      const f = idx('fast', c.fast);
      const s = idx('slow', c.slow);
      return () => new MaCross(f, s, c.band, c.saturation);
    }
    case 'rsi': {
      const i = idx('feature', c.feature);
      return () => new RsiBands(i, c.lower, c.upper, c.exitLower, c.exitUpper);
    }
    case 'macd': {
      const i = idx('feature', c.feature);
      return () => new MacdHistogram(i, c.band, c.saturation);
    }
    case 'momentum': {
      const i = idx('ref', c.ref);
      return () => new Momentum(i, c.threshold, c.saturation);
    }
  }
}

const clamp1 = (x: number): number => (x > 1 ? 1 : x);

/**
 * A signed signal with a dead band: above +band buy, below −band sell,
 * inside it the previous side stands; strength |x| / saturation (≤ 1).
 * NaN or ±Infinity: no opinion (NaN).
 */
abstract class BandedSide {
  strength = 0;
  private side = 0;
  constructor(
    private readonly band: number,
    private readonly saturation: number,
  ) {}
  protected banded(x: number): number {
    if (x !== x || !Number.isFinite(x)) return NaN;
    if (x > this.band) this.side = 1;
    else if (x < -this.band) this.side = -1;
    this.strength = clamp1((x < 0 ? -x : x) / this.saturation);
    return this.side;
  }
}

/** `model`: acts on the prediction score. */
export class ModelThreshold implements Strategy {
  readonly kind = 'model';
  strength = 0;
  constructor(private readonly threshold: number) {}
  target(score: number): number {
    if (score !== score) return NaN;
    const a = score < 0 ? -score : score;
    this.strength = clamp1(a);
    return score > this.threshold ? 1 : score < -this.threshold ? -1 : 0;
  }
}

/** `maCross`: fast moving average against slow, with a relative band. */
export class MaCross extends BandedSide implements Strategy {
  readonly kind = 'maCross';
  constructor(
    private readonly fast: number,
    private readonly slow: number,
    band: number,
    saturation: number,
  ) {
    super(band, saturation);
  }
  target(_score: number, _px: number, f: Float64Array): number {
    return this.banded(f[this.fast]! / f[this.slow]! - 1);
  }
}

/** `rsi`: mean reversion on RSI bands, flat once back near the middle. */
export class RsiBands implements Strategy {
  readonly kind = 'rsi';
  strength = 0;
  private side = 0;
  constructor(
    private readonly feature: number,
    private readonly lower: number,
    private readonly upper: number,
    private readonly exitLower: number,
    private readonly exitUpper: number,
  ) {}
  target(_score: number, _px: number, f: Float64Array): number {
    const r = f[this.feature]!;
    if (r !== r) return NaN;
    if (r < this.lower) {
      this.side = 1;
      this.strength = this.lower > 0 ? clamp1((this.lower - r) / this.lower) : 1;
    } else if (r > this.upper) {
      this.side = -1;
      this.strength = this.upper < 100 ? clamp1((r - this.upper) / (100 - this.upper)) : 1;
    } else if (r >= this.exitLower && r <= this.exitUpper) {
      this.side = 0;
      this.strength = 0;
    }
    return this.side;
  }
}

/** `macd`: the sign of the MACD histogram (relative to price), with a band. */
export class MacdHistogram extends BandedSide implements Strategy {
  readonly kind = 'macd';
  constructor(
    private readonly feature: number,
    band: number,
    saturation: number,
  ) {
    super(band, saturation);
  }
  target(_score: number, px: number, f: Float64Array): number {
    return this.banded(f[this.feature]! / px);
  }
}

/** `momentum`: the price's log distance from a reference average. */
export class Momentum implements Strategy {
  readonly kind = 'momentum';
  strength = 0;
  constructor(
    private readonly ref: number,
    private readonly threshold: number,
    private readonly saturation: number,
  ) {}
  target(_score: number, px: number, f: Float64Array): number {
    const m = Math.log(px / f[this.ref]!);
    if (m !== m || !Number.isFinite(m)) return NaN;
    this.strength = clamp1((m < 0 ? -m : m) / this.saturation);
    return m > this.threshold ? 1 : m < -this.threshold ? -1 : 0;
  }
}
