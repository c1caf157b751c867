import { channel } from 'node:diagnostics_channel';
import { Worker } from 'node:worker_threads';
import { ErrorCodes, QilinError, invalidArgument } from './errors.js';
import type { Logger } from './logger.js';
import { MARKET_RECORD_BYTES, encodeMarket, type MarketEvent } from './market-record.js';
import {
  OUTPUT_RECORD_BYTES,
  decodeOutput,
  newOutputEvent,
  type OutputEvent,
} from './output-record.js';
import { ShardRouter } from './shard-router.js';
import { SpscRing, type SpscRingStats } from './spsc-ring.js';
import { SymbolTable } from './symbol-table.js';
import {
  WORKER_COUNTER_BYTES,
  WorkerCounter,
  type FromWorker,
  type ToWorker,
  type WorkerInit,
} from './worker-protocol.js';

/**
 * WorkerPool: the actor runtime's main-thread half, and its supervisor.
 *
 * ```
 *            submit(event)                       ┌── worker 0: actors of shard 0
 *  adapters ───────────► router ─► inRing[0] ───►┤
 *                          │                     └─► outRing[0] ─┐
 *                          └──────► inRing[1] ───► worker 1 ─► outRing[1] ─┤
 *                                                                          ▼
 *                                                      drain loops ─► onOutput(event, shard)
 * ```
 * Rings belong to the pool, not to a worker: when a worker dies the rings (and
 * every record not yet consumed) survive, the supervisor starts a new worker on
 * the same rings, hands it the shard's symbols so it recreates their actors,
 * and processing resumes where the dead one stopped.
 *
 * Full-ring policy (docs/adr/0001-ring-full-policy.md): the main thread never
 * blocks. A record for a worker whose input ring is full is dropped, counted
 * (ring `dropped`, `qilin:ring:drop` channel) and shows up downstream as a
 * sequence gap. A worker whose output ring is full blocks up to
 * `outFullWaitMs` (back-pressure into its input ring), then drops and counts.
 */

/** Diagnostics channels; the metrics adapter subscribes, the kernel does not log metrics. */
export const poolChannels = {
  restart: channel('qilin:worker:restart'),
  drop: channel('qilin:ring:drop'),
  quarantine: channel('qilin:worker:quarantine'),
  actorError: channel('qilin:actor:error'),
};

export interface WorkerPoolOptions {
  /** Number of worker threads (shards). */
  workers: number;
  /** Records per ring, a power of two. */
  ringCapacity: number;
  /** URL of the actor module (exports createActorFactory). */
  actorModule: string;
  actorOptions?: unknown;
  log: Logger;
  /** Called on the main thread for every output record (the event is reused). */
  onOutput: (event: OutputEvent, shard: number) => void;
  /** Restarts allowed per shard within restartWindowMs before the shard is failed. */
  maxRestarts?: number;
  restartWindowMs?: number;
  /** See the full-ring policy. */
  outFullWaitMs?: number;
  symbols?: SymbolTable;
}

export interface ShardStats {
  shard: number;
  alive: boolean;
  failed: boolean;
  restarts: number;
  quarantined: number;
  processed: number;
  actorErrors: number;
  actors: number;
  in: SpscRingStats;
  out: SpscRingStats;
}

interface Shard {
  index: number;
  inRing: SpscRing;
  outRing: SpscRing;
  counters: Int32Array;
  worker: Worker | undefined;
  symbols: Array<[number, string]>;
  restarts: number;
  restartTimes: number[];
  quarantined: number;
  /** Input tail when the worker last died (poison-record detection). */
  lastDeathTail: number | undefined;
  failed: boolean;
  ready: Promise<void>;
}

export class WorkerPool {
  readonly symbols: SymbolTable;
  readonly router: ShardRouter;
  private readonly shards: Shard[] = [];
  private readonly opts: Required<Omit<WorkerPoolOptions, 'symbols' | 'actorOptions'>> & {
    actorOptions: unknown;
  };
  private readonly outEvent = newOutputEvent();
  private state: 'new' | 'running' | 'closing' | 'closed' = 'new';
  private drains: Array<Promise<void>> = [];
  private closedPromise: Promise<void> | undefined;
  private flushScheduled = false;

  constructor(options: WorkerPoolOptions) {
    if (!Number.isInteger(options.workers) || options.workers < 1 || options.workers > 64) {
      invalidArgument('workers', options.workers, 'an integer from 1 to 64');
    }
    this.opts = {
      maxRestarts: 5,
      restartWindowMs: 60_000,
      outFullWaitMs: 250,
      ...options,
      actorOptions: options.actorOptions ?? {},
    };
    this.symbols = options.symbols ?? new SymbolTable();
    this.router = new ShardRouter(options.workers);
    for (let i = 0; i < options.workers; i++) {
      this.shards.push({
        index: i,
        inRing: SpscRing.create(options.ringCapacity, MARKET_RECORD_BYTES),
        outRing: SpscRing.create(options.ringCapacity, OUTPUT_RECORD_BYTES),
        counters: new Int32Array(new SharedArrayBuffer(WORKER_COUNTER_BYTES)),
        worker: undefined,
        symbols: [],
        restarts: 0,
        restartTimes: [],
        quarantined: 0,
        lastDeathTail: undefined,
        failed: false,
        ready: Promise.resolve(),
      });
    }
  }

  /** Start every worker; resolves when all have built their actors. */
  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'running';
    for (const s of this.shards) this.spawn(s);
    this.drains = this.shards.map((s) => this.drainLoop(s));
    await Promise.all(this.shards.map((s) => s.ready));
  }

  /**
   * Intern `symbol` and return its id (routing it to its shard on first
   * sight). Adapters call this once per new symbol, then `submit` by id.
   */
  intern(symbol: string): number {
    const before = this.symbols.size;
    const id = this.symbols.intern(symbol);
    if (this.symbols.size !== before) {
      const shard = this.shards[this.router.shardOfId(id, symbol)]!;
      shard.symbols.push([id, symbol]);
      this.send(shard, { type: 'symbol', id, name: symbol });
    }
    return id;
  }

  /** Shard index of an interned symbol. */
  shardOf(symId: number): number {
    return this.router.shardOfId(symId, this.symbols.name(symId));
  }

  /**
   * Hand a market event (with `symId` from `intern`) to its shard. Returns
   * false when the shard's input ring is full and the record was dropped
   * (counted). Never blocks, never allocates.
   */
  submit(event: MarketEvent): boolean {
    if (this.state !== 'running') {
      throw new QilinError(ErrorCodes.POOL_CLOSED, `worker pool is ${this.state}; cannot submit`);
    }
    const shardIndex = this.router.shardOfId(event.symId, this.symbols.name(event.symId));
    const ring = this.shards[shardIndex]!.inRing;
    const at = ring.claim();
    if (at === -1) {
      ring.countDropped();
      if (poolChannels.drop.hasSubscribers)
        poolChannels.drop.publish({ shard: shardIndex, ring: 'in' });
      return false;
    }
    encodeMarket(event, ring.f64, ring.u32, at);
    ring.commit();
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flushRings);
    }
    return true;
  }

  /**
   * Publish every committed record at the end of the current task. A source
   * delivers a socket read's worth of messages in one synchronous loop; one
   * flush (and at most one wake-up per worker) per loop instead of one per
   * record.
   */
  private readonly flushRings = (): void => {
    this.flushScheduled = false;
    for (const s of this.shards) s.inRing.flush();
  };

  stats(): ShardStats[] {
    return this.shards.map((s) => ({
      shard: s.index,
      alive: s.worker !== undefined,
      failed: s.failed,
      restarts: s.restarts,
      quarantined: s.quarantined,
      processed: Atomics.load(s.counters, WorkerCounter.PROCESSED),
      actorErrors: Atomics.load(s.counters, WorkerCounter.ACTOR_ERRORS),
      actors: Atomics.load(s.counters, WorkerCounter.ACTORS),
      in: s.inRing.stats(),
      out: s.outRing.stats(),
    }));
  }

  /** True when every shard has a live worker and none has exhausted its restarts. */
  healthy(): boolean {
    return (
      this.state === 'running' && this.shards.every((s) => s.worker !== undefined && !s.failed)
    );
  }

  /** Resolves once the shard's current worker is ready (after a restart too). */
  whenReady(shard: number): Promise<void> {
    return this.shards[shard]?.ready ?? Promise.resolve();
  }

  /** Kill a shard's worker as a crash would (tests and chaos drills). */
  async killWorker(shard: number): Promise<void> {
    const w = this.shards[shard]?.worker;
    if (w !== undefined) await w.terminate();
  }

  /**
   * Graceful stop: workers finish what is in their input rings, the pool
   * drains their output, then threads exit. Safe to call twice.
   */
  close(): Promise<void> {
    this.closedPromise ??= this.doClose();
    return this.closedPromise;
  }

  /** Immediate stop: terminate threads, drop what is in flight. */
  async destroy(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    await Promise.all(this.shards.map((s) => s.worker?.terminate() ?? Promise.resolve(0)));
    for (const s of this.shards) s.outRing.wakeConsumer();
    await Promise.all(this.drains);
  }

  private async doClose(): Promise<void> {
    if (this.state !== 'running') {
      this.state = 'closed';
      return;
    }
    this.state = 'closing';
    await Promise.all(
      this.shards.map(
        (s) =>
          new Promise<void>((resolve) => {
            const w = s.worker;
            if (w === undefined) return resolve();
            w.once('exit', () => resolve());
            this.send(s, { type: 'stop' });
            s.inRing.wakeConsumer();
          }),
      ),
    );
    this.state = 'closed';
    for (const s of this.shards) s.outRing.wakeConsumer();
    await Promise.all(this.drains);
  }

  private send(shard: Shard, msg: ToWorker): void {
    shard.worker?.postMessage(msg);
  }

  private spawn(shard: Shard): void {
    const init: WorkerInit = {
      shard: shard.index,
      shards: this.shards.length,
      inRing: shard.inRing.buffer,
      outRing: shard.outRing.buffer,
      counters: shard.counters.buffer as SharedArrayBuffer,
      actorModule: this.opts.actorModule,
      actorOptions: this.opts.actorOptions,
      symbols: shard.symbols.slice(),
      outFullWaitMs: this.opts.outFullWaitMs,
    };
    const worker = new Worker(new URL('./worker-entry.js', import.meta.url), {
      workerData: init,
      name: `qilin-shard-${shard.index}`,
    });
    shard.worker = worker;
    let lastError: unknown;
    shard.ready = new Promise<void>((resolve) => {
      const onMessage = (msg: FromWorker): void => {
        if (msg.type === 'ready') resolve();
        else if (msg.type === 'actor-error') {
          const symbol = this.symbols.lookupName(msg.symId);
          this.opts.log.warn(
            { shard: shard.index, symbol, code: msg.code, err: msg.message },
            'actor failed on a record (skipped)',
          );
          if (poolChannels.actorError.hasSubscribers)
            poolChannels.actorError.publish({ shard: shard.index, code: msg.code });
        }
      };
      worker.on('message', onMessage);
      worker.once('exit', () => resolve());
    });
    worker.on('error', (err) => {
      lastError = err;
    });
    worker.once('exit', (code) => {
      if (shard.worker === worker) shard.worker = undefined;
      if (this.state !== 'running') return;
      this.onWorkerDeath(shard, code, lastError);
    });
  }

  private onWorkerDeath(shard: Shard, exitCode: number, err: unknown): void {
    const now = Date.now();
    shard.restarts++;
    shard.restartTimes = shard.restartTimes.filter((t) => now - t < this.opts.restartWindowMs);
    shard.restartTimes.push(now);
    const tail = shard.inRing.tailCounter();
    this.opts.log.error(
      {
        code: ErrorCodes.WORKER_DIED,
        shard: shard.index,
        exitCode,
        err,
        restarts: shard.restarts,
        inRingSize: shard.inRing.size(),
      },
      'worker died; restarting it on the same rings',
    );
    if (poolChannels.restart.hasSubscribers)
      poolChannels.restart.publish({ shard: shard.index, exitCode });
    if (shard.lastDeathTail === tail && shard.inRing.size() > 0) {
      // Died twice on the same record: quarantine it so the shard can move on.
      shard.inRing.skipOldest();
      shard.quarantined++;
      this.opts.log.error(
        { shard: shard.index, tail },
        'record killed its worker twice; quarantined (skipped)',
      );
      if (poolChannels.quarantine.hasSubscribers)
        poolChannels.quarantine.publish({ shard: shard.index });
      shard.lastDeathTail = undefined;
    } else {
      shard.lastDeathTail = tail;
    }
    if (shard.restartTimes.length > this.opts.maxRestarts) {
      shard.failed = true;
      this.opts.log.fatal(
        {
          code: ErrorCodes.WORKER_RESTART_BUDGET,
          shard: shard.index,
          restarts: shard.restartTimes.length,
          windowMs: this.opts.restartWindowMs,
        },
        'worker keeps dying; shard failed, not restarting',
      );
      return;
    }
    // Back off a little more on each death inside the window: 0, 50, 100, … ms.
    const delay = Math.min(1000, (shard.restartTimes.length - 1) * 50);
    setTimeout(() => {
      if (this.state === 'running') this.spawn(shard);
    }, delay);
  }

  private async drainLoop(shard: Shard): Promise<void> {
    const ring = shard.outRing;
    const ev = this.outEvent;
    for (;;) {
      let at: number;
      let n = 0;
      while ((at = ring.peek()) !== -1) {
        decodeOutput(ring.f64, ring.u32, at, ev);
        ring.release();
        try {
          this.opts.onOutput(ev, shard.index);
        } catch (err) {
          this.opts.log.error({ err, shard: shard.index }, 'output handler failed');
        }
        if (++n === 4096) {
          n = 0;
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
      if (this.state === 'closed') return;
      const wait = ring.waitForData(1000);
      if (wait !== null) await wait;
    }
  }
}
