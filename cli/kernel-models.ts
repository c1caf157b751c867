import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { MODEL_STEP_NAMES, ModelStep } from '../actors/model-batch.js';
import type { ModelRefTable } from '../actors/model-refs.js';
import { BUILTIN_MODEL_ID, type ModelRefEntry } from '../actors/model-refs.js';
import type { ModelControl } from '../actors/symbol-actor-module.js';
import type { ModelRegistry } from '../adapters/onnx/model-registry.js';
import type { QilinConfig } from '../config/config.js';
import type { ModelRef } from '../kernel/messages.js';
import type { WorkerPool } from '../kernel/worker-pool.js';
import { mirrorCounter } from './kernel-metrics.js';
import { WorkerCounter } from '../kernel/worker-protocol.js';

/** What the kernel's model layer needs of the rest of the kernel. */
export interface KernelModelsOptions {
  config: QilinConfig;
  log: Logger;
  pool: Pick<WorkerPool, 'control' | 'rememberControl' | 'stats' | 'counters'>;
  /** The store worker learns each version's id before any record names it. */
  store: { addModelRef(id: number, entry: ModelRefEntry): Promise<void> };
  /** The main thread's model table (the output pipeline's decoder reads it). */
  refs: ModelRefTable;
  registry: Registry;
  /** Open the registry (default: config `modelRegistry`, local `<stateDir>/models` or JetStream). */
  openRegistry?: () => Promise<ModelRegistry & { close?(): Promise<void> }>;
  /** A version went live (or the kernel went back to the built-in model): status, audit. */
  onChange?: (live: ModelRef) => void;
}

/** The model as `status` and `/health/ready` show it. */
export interface ModelStatus extends ModelRef {
  /** Step of the fallback chain: live, previous, rule, no_signal (none: the built-in model). */
  step: (typeof MODEL_STEP_NAMES)[number];
  /** Workers whose step is not `live` (their reasons make the kernel degraded). */
  degradedShards: number[];
  /** The shadow version beside the live one: rows both scored, and the share whose sides agreed. */
  shadow?: { version: string; rows: number; agreement: number | null };
}

/**
 * The kernel's model layer on the main thread (docs/adr/0008-model-inference.md):
 *
 * ```
 *  registry (local dir / JetStream) ──poll modelPollMs──► promoted version changed?
 *     get(name, version): sha256, features, shapes verified (verifyModel)
 *     id = next (never reused) ─► store worker: model-ref (acknowledged)
 *                              ─► every shard worker: control {op:'model'} (WorkerPool.control,
 *                                 replayed to a restarted worker) ─► swapped between two batches
 * ```
 * A refused version (a feature this kernel does not compute, a file that
 * does not load) leaves the running one in place, logged and counted; the
 * registry is polled again, so fixing the registry is enough. Rollback is a
 * promotion of the previous version: the same path.
 */
export class KernelModels {
  private readonly o: KernelModelsOptions;
  private registry: (ModelRegistry & { close?(): Promise<void> }) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  /** Versions loaded in this run, by `name@version`, with their ids. */
  private readonly ids = new Map<string, number>();
  private nextId = BUILTIN_MODEL_ID + 1;
  /** The version the workers run (undefined: the built-in), and the shadow beside it. */
  private live: { name: string; version: string; id: number } | undefined;
  private shadow: { name: string; version: string; id: number } | undefined;
  /** The control body each worker runs per key (model, shadow): what a refusal falls back to. */
  private readonly bodies = new Map<string, ModelControl>();
  /** Versions refused (`name@version#role`): reported once, not retried every poll. */
  private readonly refused = new Set<string>();
  private readonly loads: Counter<'outcome'>;
  private readonly step: Gauge<'shard'>;
  private closed = false;

  constructor(o: KernelModelsOptions) {
    this.o = o;
    this.loads = new Counter({
      name: 'qilin_model_loads_total',
      help: 'Model versions the kernel tried to make live, by outcome (loaded, refused)',
      labelNames: ['outcome'],
      registers: [o.registry],
    });
    const counters = (i: number): number => this.sum(i);
    const registers = [o.registry];
    mirrorCounter(
      registers,
      'qilin_model_rows_total',
      'Trades scored, by what scored them: model (live or previous version), previous, rule, none (no score: warming up, or no signal)',
      ['by'],
      () => [
        [{ by: 'model' }, counters(WorkerCounter.MODEL_ROWS)],
        [{ by: 'previous' }, counters(WorkerCounter.MODEL_PREVIOUS_ROWS)],
        [{ by: 'rule' }, counters(WorkerCounter.MODEL_RULE_ROWS)],
        [{ by: 'none' }, counters(WorkerCounter.MODEL_NO_SIGNAL_ROWS)],
      ],
    );
    const counter = (name: string, help: string, i: number): void =>
      mirrorCounter(registers, name, help, [], () => [[{}, counters(i)]]);
    const maxOf = (i: number): number => {
      let m = -1;
      for (const s of this.o.pool.stats()) m = Math.max(m, this.o.pool.counters(s.shard)[i] ?? -1);
      return m;
    };
    const gauge = (name: string, help: string, i: number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect: function (this: Gauge) {
          this.set(maxOf(i));
        },
      });
    };
    counter('qilin_model_batches_total', 'Model runs (batches)', WorkerCounter.MODEL_BATCHES);
    counter(
      'qilin_model_failed_batches_total',
      "Model batches that failed (error, non-finite score, over modelBudgetUs): the model breaker's failures",
      WorkerCounter.MODEL_FAILED,
    );
    counter(
      'qilin_model_breaker_opened_total',
      'Times a worker opened its model breaker',
      WorkerCounter.MODEL_BREAKER_OPENED,
    );
    counter(
      'qilin_model_shadow_rows_total',
      'Trades the shadow version scored beside the live one',
      WorkerCounter.MODEL_SHADOW_ROWS,
    );
    counter(
      'qilin_model_shadow_agree_total',
      'Of them, trades where the shadow and the live version stood for the same side',
      WorkerCounter.MODEL_SHADOW_AGREE,
    );
    counter(
      'qilin_model_shadow_failed_batches_total',
      'Shadow runs that failed (no shadow answer for their rows; the live path is unaffected)',
      WorkerCounter.MODEL_SHADOW_FAILED,
    );
    gauge(
      'qilin_model_psi',
      "PSI of the live version's last drift window against its training reference, worst worker (−1: none yet)",
      WorkerCounter.MODEL_PSI,
    );
    counter(
      'qilin_model_drift_windows_total',
      'Drift windows whose PSI was over modelDriftPsi (the live version counts as failing until a fresh window)',
      WorkerCounter.MODEL_DRIFT_WINDOWS,
    );
    gauge(
      'qilin_model_run_max_us',
      'Longest model run in the last second, any worker, µs',
      WorkerCounter.MODEL_RUN_MAX_US,
    );
    this.step = new Gauge({
      name: 'qilin_model_step',
      help: 'Fallback step per worker: 0 built-in model, 1 live, 2 previous version, 3 rule, 4 no signal',
      labelNames: ['shard'],
      registers: [o.registry],
      collect: () => {
        for (const s of this.o.pool.stats()) {
          this.step.set(
            { shard: String(s.shard) },
            this.o.pool.counters(s.shard)[WorkerCounter.MODEL_STEP] ?? 0,
          );
        }
      },
    });
  }

  /** Start watching the registry (no-op without `config.model`). Resolves after the first check. */
  async start(): Promise<void> {
    const name = this.o.config.model;
    if (name === undefined) return;
    this.registry = await (
      this.o.openRegistry ?? (() => openRegistry(this.o.config, this.o.log))
    )();
    await this.poll();
    this.timer = setInterval(() => void this.poll(), this.o.config.modelPollMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.polling;
    await this.registry?.close?.();
  }

  /** Check the registry now (the poll timer does this every modelPollMs). */
  poll(): Promise<void> {
    this.polling ??= this.check().finally(() => (this.polling = undefined));
    return this.polling;
  }

  /** The live model and the fallback step, for status and health. */
  status(): ModelStatus {
    const entry = this.o.refs.get(this.live?.id ?? BUILTIN_MODEL_ID);
    let worst: ModelStep = this.live === undefined ? ModelStep.NONE : ModelStep.LIVE;
    const degradedShards: number[] = [];
    for (const s of this.o.pool.stats()) {
      const step = (this.o.pool.counters(s.shard)[WorkerCounter.MODEL_STEP] ?? 0) as ModelStep;
      if (step > ModelStep.LIVE) degradedShards.push(s.shard);
      if (step > worst) worst = step;
    }
    const out: ModelStatus = {
      ...entry.ref,
      step: MODEL_STEP_NAMES[worst] ?? 'none',
      degradedShards,
    };
    if (this.shadow !== undefined) {
      const rows = this.sum(WorkerCounter.MODEL_SHADOW_ROWS);
      const agree = this.sum(WorkerCounter.MODEL_SHADOW_AGREE);
      out.shadow = {
        version: this.shadow.version,
        rows,
        agreement: rows === 0 ? null : agree / rows,
      };
    }
    return out;
  }

  /** Why the model layer degrades the kernel, or undefined. */
  degradedReason(): string | undefined {
    const s = this.status();
    if (s.degradedShards.length === 0) return undefined;
    return `model ${s.name}@${s.version} fallback: ${s.step} on shard(s) ${s.degradedShards.join(', ')}`;
  }

  private sum(i: number): number {
    let n = 0;
    for (const s of this.o.pool.stats()) n += this.o.pool.counters(s.shard)[i] ?? 0;
    return n;
  }

  private async check(): Promise<void> {
    const name = this.o.config.model;
    const reg = this.registry;
    if (name === undefined || reg === undefined || this.closed) return;
    let state: { promoted: string | undefined; shadow: string | undefined };
    try {
      state = await reg.state(name);
    } catch (err) {
      this.o.log.warn({ err, model: name }, 'model registry unreadable; the running model stays');
      return;
    }
    await this.apply(reg, name, 'live', state.promoted);
    // A shadow of the live version itself compares nothing: not run.
    await this.apply(
      reg,
      name,
      'shadow',
      state.shadow === state.promoted ? undefined : state.shadow,
    );
  }

  /** Make `version` the `role` version in every worker (undefined: none), unless it already is. */
  private async apply(
    reg: ModelRegistry,
    name: string,
    role: 'live' | 'shadow',
    version: string | undefined,
  ): Promise<void> {
    const { log, pool } = this.o;
    const key = role === 'live' ? 'model' : 'shadow';
    const current = role === 'live' ? this.live : this.shadow;
    if (version === current?.version) return;
    const label = `${name}@${version}`;
    // A refused version stays refused (versions are immutable): wait for another promotion.
    if (version !== undefined && this.refused.has(`${label}#${role}`)) return;
    if (version === undefined) {
      const off: ModelControl = role === 'live' ? { op: 'model-off' } : { op: 'shadow-off' };
      await pool.control(key, off);
      this.bodies.set(key, off);
      if (role === 'live') {
        log.warn({ model: name }, 'no version promoted: back to the built-in model');
        this.live = undefined;
        this.o.onChange?.(this.o.refs.get(BUILTIN_MODEL_ID).ref);
      } else {
        log.info({ model: name }, 'shadow stopped');
        this.shadow = undefined;
      }
      return;
    }
    try {
      const { manifest, bytes } = await reg.get(name, version);
      const idKey = `${label}#${role}`;
      let id = this.ids.get(idKey);
      if (id === undefined) {
        id = this.nextId++;
        this.ids.set(idKey, id);
      }
      const outs = manifest.outputs.map((o) => o.role);
      const entry: ModelRefEntry = {
        ref: { name, version, role },
        interval: outs.includes('lower') && outs.includes('upper'),
      };
      this.o.refs.set(id, entry);
      await this.o.store.addModelRef(id, entry);
      const { config } = this.o;
      const body: ModelControl = {
        op: 'model',
        id,
        name,
        version,
        role,
        bytes,
        features: manifest.features,
        outputs: manifest.outputs,
        thresholds: manifest.thresholds,
        ...(manifest.reference === undefined
          ? {}
          : { reference: manifest.reference.scoreQuantiles }),
        driftRows: config.modelDriftRows,
        driftPsi: config.modelDriftPsi,
        maxBatch: config.modelMaxBatch,
        budgetUs: config.modelBudgetUs,
        resetMs: config.modelResetMs,
        lastResort: config.modelLastResort,
      };
      const refused = await pool.control(key, body);
      if (refused.length > 0) {
        // Every worker refuses alike (same file, same features) and keeps what it ran; a
        // restarted worker gets that again, not the refused version.
        pool.rememberControl(key, this.bodies.get(key));
        throw new Error(refused.map((r) => `shard ${r.shard}: ${r.code}: ${r.message}`).join('; '));
      }
      this.bodies.set(key, body);
      const now = { name, version, id };
      if (role === 'live') this.live = now;
      else this.shadow = now;
      this.loads.inc({ outcome: 'loaded' });
      log.info(
        { model: label, role, id, features: manifest.features, sha256: manifest.sha256 },
        `model ${label} ${role} in every worker`,
      );
      if (role === 'live') this.o.onChange?.(entry.ref);
    } catch (err) {
      this.refused.add(`${label}#${role}`);
      this.loads.inc({ outcome: 'refused' });
      log.error({ err, model: label, role }, `model ${label} refused as ${role}`);
    }
  }
}

/** The configured registry, loaded lazily (it pulls in onnxruntime for its checks). */
async function openRegistry(
  config: QilinConfig,
  log: Logger,
): Promise<ModelRegistry & { close(): Promise<void> }> {
  const { openModelRegistry } = await import('../adapters/onnx/open-registry.js');
  return openModelRegistry(config, undefined, { role: 'kernel', log });
}
