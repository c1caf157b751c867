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
import { ModelBatch, ModelStep, type BatchModel } from './model-batch.js';
import { ModelRefTable } from './model-refs.js';
import { WorkerCounter } from '../kernel/worker-protocol.js';
import { ErrorCodes, QilinError } from '../kernel/errors.js';
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

/**
 * What the main thread sends a shard worker to change its model
 * (WorkerPool.control): load a verified version (the kernel checked its
 * sha256 and manifest) and make it live, or go back to the built-in model.
 */
export type ModelControl =
  | {
      op: 'model';
      /** Id in the kernel's ModelRefTable (the store worker knows it already). */
      id: number;
      name: string;
      version: string;
      bytes: Uint8Array;
      /** The manifest's features, in input order: names of this kernel's features. */
      features: readonly string[];
      /** The manifest's outputs: exactly one `score`, optional `lower` / `upper`. */
      outputs: ReadonlyArray<{ name: string; role: string }>;
      thresholds: { buy: number; sell: number };
      /** Rows per run at most. Default 512. */
      maxBatch?: number;
      /** `live` (default): it scores the trades; `shadow`: scored beside the live one, never trading. */
      role?: 'live' | 'shadow';
      /** The manifest's `reference.scoreQuantiles` (raw score): the drift reference. */
      reference?: readonly number[];
      /** Live rows per drift window, and the PSI over which the version counts as drifted. */
      driftRows?: number;
      driftPsi?: number;
      /** Breaker settings (ModelBatchOptions). */
      budgetUs?: number;
      resetMs?: number;
      lastResort?: 'rule' | 'none';
    }
  | { op: 'model-off' }
  | { op: 'shadow-off' };

/**
 * This worker's model state: one per shard worker (one shard per thread),
 * shared by every factory the worker makes (warm-up, the snapshot probe,
 * the live one) and by its encoder (which names the model of each record).
 */
interface ShardModels {
  readonly batch: ModelBatch;
  readonly refs: ModelRefTable;
  readonly names: readonly string[];
  readonly options: Readonly<SymbolActorOptions>;
}

let shardModels: ShardModels | undefined;

function modelsFor(options: Readonly<SymbolActorOptions>, names: readonly string[]): ShardModels {
  shardModels ??= {
    batch: new ModelBatch({ threshold: options.threshold }),
    refs: new ModelRefTable(BASELINE_MODEL),
    names,
    options,
  };
  return shardModels;
}

/** ActorModule entry point: validate `ctx.options` once per shard, then one actor per symbol. */
export function createActorFactory(ctx: ShardContext): ActorFactory {
  const options = Object.freeze(resolveSymbolActorOptions(splitOptions(ctx.options).actor));
  const plan = featurePlan(options);
  const strategy = strategyFactory(options.rule, plan.names);
  const decisions = ctx.decisions === undefined ? undefined : new DecisionView(ctx.decisions);
  const models = modelsFor(options, plan.names);
  return (symId) =>
    new SymbolActor(symId, options, {
      plan,
      strategy: strategy(),
      decisions,
      decisionSlot: ((symId - ctx.shard) / ctx.shards) | 0,
      batch: models.batch,
    });
}

/**
 * ActorModule entry point: apply a ModelControl. A version whose features
 * this kernel does not compute, or whose outputs have no score, is refused
 * with QLN_MODEL_INVALID naming what differs; a file onnxruntime cannot load
 * likewise (adapters/onnx/onnx-scorer.ts). The swap happens between two
 * batches (ModelBatch.setLive); the version it pushes out is released.
 */
export async function control(body: unknown): Promise<void> {
  const m = shardModels;
  if (m === undefined) invalidArgument('control', 'model', 'a worker whose actors were created');
  const c = body as ModelControl;
  if (c.op === 'model-off') {
    await m.batch.setLive(undefined)?.scorer.release();
    return;
  }
  if (c.op === 'shadow-off') {
    await m.batch.setShadow(undefined)?.scorer.release();
    return;
  }
  if (c.op !== 'model') {
    invalidArgument('control', (body as { op?: unknown }).op, 'model, model-off or shadow-off');
  }
  const role = c.role ?? 'live';
  const label = `${c.name}@${c.version}`;
  const missing = c.features.filter((f) => !m.names.includes(f));
  if (missing.length > 0) {
    throw new QilinError(
      ErrorCodes.MODEL_INVALID,
      `${label} reads features this kernel does not compute: ${missing.join(', ')} (configured: ${m.names.join(', ')})`,
      { details: { model: label, missing } },
    );
  }
  const col = (role: string): number => c.outputs.findIndex((o) => o.role === role);
  const { OnnxScorer } = await import('../adapters/onnx/onnx-scorer.js');
  const scorer = await OnnxScorer.create(c.bytes, {
    features: c.features,
    outputs: c.outputs.length,
    maxBatch: c.maxBatch ?? 512,
    label,
  });
  const model: BatchModel = {
    id: c.id,
    label,
    scorer,
    index: Int32Array.from(c.features, (f) => m.names.indexOf(f)),
    scoreCol: col('score'),
    lowerCol: col('lower'),
    upperCol: col('upper'),
    buy: c.thresholds.buy,
    sell: c.thresholds.sell,
    // Inner quantile edges (min and max dropped): equal expected share per bin.
    ...(c.reference !== undefined && c.reference.length >= 3
      ? { edges: Float64Array.from(c.reference.slice(1, -1)) }
      : {}),
  };
  m.refs.set(c.id, {
    ref: { name: c.name, version: c.version, role },
    interval: model.lowerCol >= 0 && model.upperCol >= 0,
  });
  if (role === 'shadow') {
    await m.batch.setShadow(model)?.scorer.release();
    return;
  }
  m.batch.flush();
  m.batch.configure({
    budgetUs: c.budgetUs,
    resetMs: c.resetMs,
    lastResort: c.lastResort,
    driftRows: c.driftRows,
    driftPsi: c.driftPsi,
  });
  await m.batch.setLive(model)?.scorer.release();
}

/** ActorModule entry point: score the drain's staged rows before the rings flush. */
export function endOfDrain(): void {
  shardModels?.batch.flush();
}

/** ActorModule entry point: the model counters into the worker's shared counters. */
export function report(c: Float64Array): void {
  const b = shardModels?.batch;
  if (b === undefined) return;
  const s = b.stats;
  c[WorkerCounter.MODEL_BATCHES] = s.batches;
  c[WorkerCounter.MODEL_ROWS] = s.rows;
  c[WorkerCounter.MODEL_FAILED] = s.failedBatches;
  c[WorkerCounter.MODEL_PREVIOUS_ROWS] = s.previousRows;
  c[WorkerCounter.MODEL_RULE_ROWS] = s.ruleRows;
  c[WorkerCounter.MODEL_NO_SIGNAL_ROWS] = s.noSignalRows + s.coldRows;
  c[WorkerCounter.MODEL_STEP] = b.active ? b.currentStep : ModelStep.NONE;
  c[WorkerCounter.MODEL_LIVE_ID] = b.liveId;
  c[WorkerCounter.MODEL_RUN_MAX_US] = s.maxRunUs;
  c[WorkerCounter.MODEL_BREAKER_OPENED] = s.opened;
  c[WorkerCounter.MODEL_SHADOW_ROWS] = s.shadowRows;
  c[WorkerCounter.MODEL_SHADOW_AGREE] = s.shadowAgree;
  c[WorkerCounter.MODEL_SHADOW_FAILED] = s.shadowFailed;
  c[WorkerCounter.MODEL_SHADOW_ID] = b.shadowId;
  c[WorkerCounter.MODEL_PSI] = s.lastPsi;
  c[WorkerCounter.MODEL_DRIFT_WINDOWS] = s.driftWindows;
  s.maxRunUs = 0;
}

/**
 * ActorModule entry point: the encoder that turns this module's outputs into
 * WebSocket frames in the worker (actors/output-encoder.ts).
 */
export function createOutputEncoder(ctx: ShardContext): FrameEncoder<SymbolText> {
  const { strategy, account, actor } = splitOptions(ctx.options);
  const options = Object.freeze(resolveSymbolActorOptions(actor));
  const models = modelsFor(options, featurePlan(options).names);
  return new OutputEncoder({
    strategy,
    account,
    model: BASELINE_MODEL,
    models: models.refs,
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

/** The module's built-in model (the rule the fallback chain ends with; id 0 of the model table). */
export const BASELINE_MODEL = { name: 'baseline', version: '1' } as const;
