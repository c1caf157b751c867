/**
 * The actor module the worker host loads by URL (see kernel/actor.ts
 * ActorModule): validates the shard's options once, then builds one
 * SymbolActor per interned symbol.
 *
 * Compose with:
 * `new WorkerPool({ actorModule: new URL('../actors/symbol-actor-module.js', import.meta.url).href,
 *                   actorOptions: { threshold: 0.3, … } })`
 */
import type { ActorFactory, OutputEncoder as FrameEncoder, ShardContext } from '../kernel/actor.js';
import { OutputEncoder, type SymbolText } from './output-encoder.js';
import { DecisionView } from '../kernel/decision-board.js';
import { invalidArgument } from '../kernel/errors.js';
import { isCheckList, QUALITY_CHECK_NAMES } from './quality-checker.js';
import { resolveStrategyConfig, strategyFactory } from './strategies.js';
import { resolveBarSpecs } from './bar-window.js';
import { resolveFormulaSpecs } from './formula.js';
import { resolveFeatureSpecs } from './indicators/feature-set.js';
import {
  DEFAULT_SYMBOL_ACTOR_OPTIONS,
  featurePlan,
  SymbolActor,
  type SymbolActorOptions,
} from './symbol-actor.js';

type Check = (v: unknown) => boolean;

/** Options that are structured (lists, objects), validated by their own resolvers. */
type Structured = 'rule' | 'features' | 'formulas' | 'bars';
const STRUCTURED: readonly string[] = ['rule', 'features', 'formulas', 'bars'];

const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const int =
  (min: number, max = Number.MAX_SAFE_INTEGER): Check =>
  (v) =>
    num(v) && Number.isInteger(v) && v >= min && v <= max;
const range =
  (min: number, max: number, minOpen = false, maxOpen = false): Check =>
  (v) =>
    num(v) && (minOpen ? v > min : v >= min) && (maxOpen ? v < max : v <= max);
const pow2: Check = (v) => int(2, 1 << 24)(v) && ((v as number) & ((v as number) - 1)) === 0;

/** What each option accepts: the check and the words for the error message. */
const RULES: {
  readonly [K in Exclude<keyof SymbolActorOptions, Structured>]: readonly [Check, string];
} = {
  emaFastPeriod: [int(1), 'an integer ≥ 1'],
  emaSlowPeriod: [int(1), 'an integer ≥ 1'],
  volLambda: [range(0, 1, true, true), 'a number in (0, 1)'],
  qualityWindowTicks: [int(1), 'an integer ≥ 1'],
  staleUs: [range(0, Number.MAX_VALUE, true), 'a finite number > 0 (µs)'],
  maxSkewUs: [range(0, Number.MAX_VALUE), 'a finite number ≥ 0 (µs)'],
  timeGapK: [range(0, Number.MAX_VALUE), 'a finite number ≥ 0 (0: off)'],
  timeGapMinUs: [range(0, Number.MAX_VALUE), 'a finite number ≥ 0 (µs)'],
  bandTolerance: [range(0, Number.MAX_VALUE), 'a finite number ≥ 0'],
  resetSeqFloor: [range(0, Number.MAX_VALUE), 'a finite number ≥ 0'],
  resetMinDrop: [range(0, Number.MAX_VALUE, true), 'a finite number > 0'],
  qualityQuarantine: [isCheckList, `a list of distinct checks (${QUALITY_CHECK_NAMES.join(', ')})`],
  qualityDisabled: [
    (v) => isCheckList(v) && !v.includes('bad_value'),
    `a list of distinct checks other than bad_value (${QUALITY_CHECK_NAMES.join(', ')})`,
  ],
  spikeK: [range(0, Number.MAX_VALUE, true), 'a finite number > 0'],
  qualityImmediateIntervalUs: [range(0, Number.MAX_VALUE), 'a finite number ≥ 0 (µs)'],
  trendWeight: [num, 'a finite number'],
  zWeight: [num, 'a finite number'],
  volFloor: [range(0, Number.MAX_VALUE, true), 'a finite number > 0'],
  threshold: [range(0, 1, false, true), 'a number in [0, 1)'],
  baseQty: [range(0, Number.MAX_VALUE, true), 'a finite number > 0'],
  minStrengthChange: [range(0, 1), 'a number in [0, 1]'],
  minIntervalUs: [range(0, Number.MAX_VALUE), 'a finite number ≥ 0 (µs)'],
  retryMaxUs: [range(0, Number.MAX_VALUE), 'a finite number ≥ minIntervalUs (µs)'],
  emitEveryTick: [(v) => typeof v === 'boolean', 'true or false'],
  minQuality: [range(0, 1), 'a number in [0, 1]'],
  warmup: [int(0), 'an integer ≥ 0'],
  windowCapacity: [pow2, 'a power of two in [2, 2^24]'],
  predictionIntervalUs: [range(0, Number.MAX_VALUE), 'a finite number ≥ 0 (µs)'],
};

/**
 * Defaults merged with `raw` (an object of SymbolActorOptions fields, or
 * undefined/null for all defaults). Throws QLN_INVALID_ARGUMENT naming the
 * first bad or unknown key.
 */
export function resolveSymbolActorOptions(raw: unknown): SymbolActorOptions {
  if (raw === undefined || raw === null) return { ...DEFAULT_SYMBOL_ACTOR_OPTIONS };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    invalidArgument('options', raw, 'an object of SymbolActor options');
  }
  const given = raw as Record<string, unknown>;
  const out: Record<string, unknown> = { ...DEFAULT_SYMBOL_ACTOR_OPTIONS };
  for (const key of Object.keys(given)) {
    if (STRUCTURED.includes(key)) continue;
    const rule = (RULES as Record<string, readonly [Check, string] | undefined>)[key];
    if (rule === undefined) {
      invalidArgument(
        key,
        given[key],
        `a known option (${[...Object.keys(RULES), ...STRUCTURED].join(', ')})`,
      );
    }
    const value = given[key];
    if (value === undefined) continue;
    if (!rule[0](value)) invalidArgument(key, value, rule[1]);
    out[key] = value;
  }
  if ((out['retryMaxUs'] as number) < (out['minIntervalUs'] as number)) {
    invalidArgument('retryMaxUs', out['retryMaxUs'], 'a finite number ≥ minIntervalUs (µs)');
  }
  out['rule'] = resolveStrategyConfig(given['rule'], out['threshold'] as number);
  if (given['features'] !== undefined) out['features'] = resolveFeatureSpecs(given['features']);
  if (given['formulas'] !== undefined) out['formulas'] = resolveFormulaSpecs(given['formulas']);
  if (given['bars'] !== undefined) out['bars'] = resolveBarSpecs(given['bars']);
  const options = out as unknown as SymbolActorOptions;
  // Names, formulas and the strategy's features, checked together at load.
  strategyFactory(options.rule, featurePlan(options).names);
  return options;
}

/**
 * What the composition root hands this module (`ShardContext.options`): the
 * SymbolActor options plus what the encoded messages name (strategy,
 * account). Strategy and account default to `momentum` / `main`.
 */
export interface SymbolActorModuleOptions extends Partial<SymbolActorOptions> {
  strategy?: string;
  account?: string;
}

function splitOptions(raw: unknown): { actor: unknown; strategy: string; account: string } {
  if (raw === undefined || raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { actor: raw, strategy: 'momentum', account: 'main' };
  }
  const { strategy, account, ...actor } = raw as SymbolActorModuleOptions;
  return { actor, strategy: strategy ?? 'momentum', account: account ?? 'main' };
}

/** ActorModule entry point: validate `ctx.options` once per shard, then one actor per symbol. */
export function createActorFactory(ctx: ShardContext): ActorFactory {
  const options = Object.freeze(resolveSymbolActorOptions(splitOptions(ctx.options).actor));
  const plan = featurePlan(options);
  const strategy = strategyFactory(options.rule, plan.names);
  const decisions = ctx.decisions === undefined ? undefined : new DecisionView(ctx.decisions);
  return (symId) =>
    new SymbolActor(symId, options, {
      plan,
      strategy: strategy(),
      decisions,
      decisionSlot: ((symId - ctx.shard) / ctx.shards) | 0,
    });
}

/**
 * ActorModule entry point: the encoder that turns this module's outputs into
 * WebSocket frames in the worker (actors/output-encoder.ts).
 */
export function createOutputEncoder(ctx: ShardContext): FrameEncoder<SymbolText> {
  const { strategy, account, actor } = splitOptions(ctx.options);
  return new OutputEncoder({
    strategy,
    account,
    model: BASELINE_MODEL,
    features: predictionFeatures(actor),
  });
}

/**
 * Names of the configured prediction features for actor options `raw` (as
 * given to resolveSymbolActorOptions): what the encoder writes and a decoder
 * of the same kernel must be configured with.
 */
export function predictionFeatures(raw: unknown): string[] {
  return [...featurePlan(resolveSymbolActorOptions(raw)).names];
}

/** Its actors are pure (no I/O): the worker warms them up on synthetic ticks (kernel/warm-up.ts). */
export const warmUp = true;

/** The model this module runs (the ONNX runtime is not wired yet). */
export const BASELINE_MODEL = { name: 'baseline', version: '1' } as const;
