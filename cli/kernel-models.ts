import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { MODEL_STEP_NAMES, ModelStep } from '../actors/model-batch.js';
import { BUILTIN_MODEL_ID, ModelRefTable, type ModelRefEntry } from '../actors/model-refs.js';
import type { ModelControl } from '../actors/symbol-actor-module.js';
import type { ModelRegistry } from '../adapters/onnx/model-registry.js';
import type { QilinConfig } from '../config/config.js';
import type { ModelRef } from '../kernel/messages.js';
import type { WorkerPool } from '../kernel/worker-pool.js';
import { WorkerCounter } from '../kernel/worker-protocol.js';

/** What the kernel's model layer needs of the rest of the kernel. */
export interface KernelModelsOptions {
  config: QilinConfig;
  log: Logger;
  pool: Pick<WorkerPool, 'control' | 'stats' | 'counters'>;
  /** The store worker learns each version's id before any record names it. */
  store: { addModelRef(id: number, entry: ModelRefEntry): Promise<void> };
  /** The main thread's model table (the output pipeline's decoder reads it). */
  refs: ModelRefTable;
  registry: Registry;
  /** Open the registry (default: the local one in `<stateDir>/models`). */
  openRegistry?: () => Promise<ModelRegistry>;
  /** A version went live (or the kernel went back to the built-in model): status, audit. */
  onChange?: (live: ModelRef) => void;
}

/** The model as `status` and `/health/ready` show it. */
export interface ModelStatus extends ModelRef {
  /** Step of the fallback chain: live, previous, rule, no_signal (none: the built-in model). */
  step: (typeof MODEL_STEP_NAMES)[number];
  /** Workers whose step is not `live` (their reasons make the kernel degraded). */
  degradedShards: number[];
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
  private registry: ModelRegistry | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  /** Versions loaded in this run, by `name@version`, with their ids. */
  private readonly ids = new Map<string, number>();
  private nextId = BUILTIN_MODEL_ID + 1;
  /** The version the workers run (undefined: the built-in). */
  private live: { name: string; version: string; id: number } | undefined;
  /** The last version refused, so it is reported once, not every poll. */
  private refused = '';
  private readonly loads: Counter<'outcome'>;
  private readonly rows: Gauge<'by'>;
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
    this.rows = new Gauge({
      name: 'qilin_model_rows_total',
      help: 'Trades scored, by what scored them: model (live or previous version), previous, rule, none (no score: warming up, or no signal)',
      labelNames: ['by'],
      registers: [o.registry],
      collect() {
        this.set({ by: 'model' }, counters(WorkerCounter.MODEL_ROWS));
        this.set({ by: 'previous' }, counters(WorkerCounter.MODEL_PREVIOUS_ROWS));
        this.set({ by: 'rule' }, counters(WorkerCounter.MODEL_RULE_ROWS));
        this.set({ by: 'none' }, counters(WorkerCounter.MODEL_NO_SIGNAL_ROWS));
      },
    });
    const gauge = (name: string, help: string, i: number, reduce: 'sum' | 'max'): void => {
      new Gauge({
        name,
        help,
        registers: [o.registry],
        collect: function (this: Gauge) {
          this.set(reduce === 'sum' ? counters(i) : maxOf(i));
        },
      });
    };
    const maxOf = (i: number): number => {
      let m = 0;
      for (const s of this.o.pool.stats()) m = Math.max(m, this.o.pool.counters(s.shard)[i] ?? 0);
      return m;
    };
    gauge('qilin_model_batches_total', 'Model runs (batches)', WorkerCounter.MODEL_BATCHES, 'sum');
    gauge(
      'qilin_model_failed_batches_total',
      "Model batches that failed (error, non-finite score, over modelBudgetUs): the model breaker's failures",
      WorkerCounter.MODEL_FAILED,
      'sum',
    );
    gauge(
      'qilin_model_breaker_opened_total',
      'Times a worker opened its model breaker',
      WorkerCounter.MODEL_BREAKER_OPENED,
      'sum',
    );
    gauge(
      'qilin_model_run_max_us',
      'Longest model run in the last second, any worker, µs',
      WorkerCounter.MODEL_RUN_MAX_US,
      'max',
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
    this.registry = await (this.o.openRegistry ?? (() => openLocalRegistry(this.o.config)))();
    await this.poll();
    this.timer = setInterval(() => void this.poll(), this.o.config.modelPollMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.polling;
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
    return { ...entry.ref, step: MODEL_STEP_NAMES[worst] ?? 'none', degradedShards };
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
    const { log } = this.o;
    let promoted: string | undefined;
    try {
      promoted = (await reg.state(name)).promoted;
    } catch (err) {
      log.warn({ err, model: name }, 'model registry unreadable; the running model stays');
      return;
    }
    if (promoted === this.live?.version) return;
    // A refused version stays refused (versions are immutable): wait for another promotion.
    if (promoted !== undefined && this.refused === `${name}@${promoted}`) return;
    if (promoted === undefined) {
      await this.o.pool.control('model', { op: 'model-off' } satisfies ModelControl);
      log.warn({ model: name }, 'no version promoted: back to the built-in model');
      this.live = undefined;
      this.o.onChange?.(this.o.refs.get(BUILTIN_MODEL_ID).ref);
      return;
    }
    const label = `${name}@${promoted}`;
    try {
      const { manifest, bytes } = await reg.get(name, promoted);
      let id = this.ids.get(label);
      if (id === undefined) {
        id = this.nextId++;
        this.ids.set(label, id);
      }
      const scored = manifest.outputs.map((o) => o.role);
      const entry: ModelRefEntry = {
        ref: { name, version: promoted, role: 'live' },
        interval: scored.includes('lower') && scored.includes('upper'),
      };
      this.o.refs.set(id, entry);
      await this.o.store.addModelRef(id, entry);
      const { config } = this.o;
      const body: ModelControl = {
        op: 'model',
        id,
        name,
        version: promoted,
        bytes,
        features: manifest.features,
        outputs: manifest.outputs,
        thresholds: manifest.thresholds,
        maxBatch: config.modelMaxBatch,
        budgetUs: config.modelBudgetUs,
        resetMs: config.modelResetMs,
        lastResort: config.modelLastResort,
      };
      const refused = await this.o.pool.control('model', body);
      if (refused.length > 0) {
        // Every worker refuses alike (same file, same features): the old version runs on.
        if (this.refused !== label) {
          log.error({ model: label, refused }, `model ${label} refused by the workers`);
        }
        this.refused = label;
        this.loads.inc({ outcome: 'refused' });
        return;
      }
      this.live = { name, version: promoted, id };
      this.refused = '';
      this.loads.inc({ outcome: 'loaded' });
      log.info(
        { model: label, id, features: manifest.features, sha256: manifest.sha256 },
        `model ${label} live in every worker`,
      );
      this.o.onChange?.(entry.ref);
    } catch (err) {
      if (this.refused !== label) {
        log.error({ err, model: label }, `model ${label} refused`);
      }
      this.refused = label;
      this.loads.inc({ outcome: 'refused' });
    }
  }
}

async function openLocalRegistry(config: QilinConfig): Promise<ModelRegistry> {
  const { LocalModelRegistry } = await import('../adapters/onnx/model-registry.js');
  return new LocalModelRegistry(resolve(config.stateDir, 'models'));
}
