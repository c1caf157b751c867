import { channel } from 'node:diagnostics_channel';
import { DecisionBoard } from './decision-board.js';
import { ErrorCodes, QilinError, invalidArgument } from './errors.js';
import { FrameRing, type FrameRingStats } from './frame-ring.js';
import type { Logger } from './logger.js';
import type { MarketEvent } from './market-record.js';
import { RejectReasons } from './market-source.js';
import { newOutputEvent, type OutputEvent } from './output-record.js';
import { RingFeedWriter } from './ring-feed.js';
import { DOORBELL_BYTES, DoorbellSleeper } from './ring-control.js';
import { ShardRouter } from './shard-router.js';
import {
  FrameType,
  nameFrameId,
  nameFrameText,
  newOutputFrameView,
  readOutputFrame,
  readOutputRecord,
  type OutputFrameView,
} from './shard-frames.js';
import {
  WORKER_COUNTER_WORDS,
  WorkerCounter,
  type FromWorker,
  type ToWorker,
  type WorkerInit,
  type WorkerSnapshotOptions,
} from './worker-protocol.js';
import { WorkerThread } from './worker-thread.js';

/**
 * WorkerPool: the shard workers, their rings, and their supervisor.
 *
 * ```
 *                 ┌─ worker 0: its NATS partitions ─► actors ─┬─► out ring 0 ──┐
 *  NATS md.> ─────┤                                           └─► store ring 0 ─┼─► store worker
 *  (partitioned)  └─ worker 1: …                    ─► actors ─┬─► out ring 1 ──┤
 *                                                              └─► store ring 1 ─┘
 *  submit() ─► in ring k (tests, replay)                   out rings ─► drain ─► onOutput(frame)
 * ```
 * Each worker owns its share of the market (the source module it is given);
 * the main thread does no per-tick work: it drains the out rings (encoded
 * predictions, signals, quality events) and hands each frame to `onOutput`.
 *
 * Rings belong to the pool, not to a worker (docs/adr/0002-worker-supervision.md):
 * a worker that dies is restarted on the same rings; what the dead one
 * flushed survives, the in-ring frame it died on is handed to the new one,
 * and a frame that kills two workers in a row is quarantined.
 */

/** Diagnostics channels; the metrics adapter subscribes, the kernel does not log metrics. */
export const poolChannels = {
  restart: channel('qilin:worker:restart'),
  quarantine: channel('qilin:worker:quarantine'),
  actorError: channel('qilin:actor:error'),
};

/** One output frame, as `onOutput` sees it (the same object every time: copy what you keep). */
export interface PoolOutput {
  /** The binary event (kind, symbol id, src, lat, payload). */
  event: OutputEvent;
  /** Symbol name. */
  symbol: string;
  /** Where the frame's parts are in `ring.u8` / `ring.buf`. */
  view: OutputFrameView;
  /** The out ring holding the frame (valid until onOutput returns). */
  ring: FrameRing;
}

export interface WorkerPoolOptions {
  /** Number of worker threads (shards). */
  workers: number;
  /** Bytes of each frame ring (in, out, store; per shard), a power of two ≥ 32 KiB. */
  ringBytes: number;
  /** URL of the actor module (exports createActorFactory, createOutputEncoder). */
  actorModule: string;
  actorOptions?: unknown;
  /** URL of a market source module each worker runs (exports createMarketSource). */
  sourceModule?: string;
  sourceOptions?: unknown;
  /** Warm restart: each worker snapshots its actors and restores them at start (docs/adr/0006-warm-restart.md). */
  snapshots?: WorkerSnapshotOptions;
  log: Logger;
  /** Log level of the workers (default info). */
  logLevel?: string;
  /** Every output frame, on the main thread. */
  onOutput: (out: PoolOutput, shard: number) => void;
  /** Control messages of a worker other than the lifecycle (source events, reject samples). */
  onWorkerMessage?: (msg: FromWorker, shard: number) => void;
  /** Restarts allowed per shard within restartWindowMs before the shard is failed. */
  maxRestarts?: number;
  restartWindowMs?: number;
  /** See the full-ring policy. */
  outFullWaitMs?: number;
}

export interface ShardStats {
  shard: number;
  alive: boolean;
  failed: boolean;
  restarts: number;
  quarantined: number;
  processed: number;
  accepted: number;
  actorErrors: number;
  actors: number;
  outDropped: number;
  storeDropped: number;
  refused: number;
  encodeFailed: number;
  /** Ticks missing by sequence number (lost before the kernel). */
  missing: number;
  /** Ticks lost because their symbol could not be announced. */
  unannounced: number;
  /** JetStream input: accepted messages waiting for durable store rows before their ack. */
  ackWaiting: number;
  /** JetStream input: messages acked after their rows were durable. */
  ackedDurable: number;
  /** JetStream input: messages delivered more than once. */
  redelivered: number;
  /** Warm restart (docs/adr/0006-warm-restart.md): messages replayed into restored actors. */
  replayed: number;
  /** Redelivered messages their restored actor already had (stored, not processed again). */
  alreadyApplied: number;
  /** Unit snapshots written; could not be written; written to local files instead of Redis. */
  snapshots: number;
  snapshotFailed: number;
  snapshotFallback: number;
  /** Compressed bytes and duration of the last snapshot round. */
  snapshotBytes: number;
  snapshotMs: number;
  /** Longest synchronous unit encode of the last round (the worker takes no tick meanwhile). */
  snapshotBlockMs: number;
  /** Symbols restored from snapshots; snapshots refused (their units started cold). */
  restored: number;
  snapshotRefused: number;
  loopLagMs: number;
  rejected: Partial<Record<(typeof RejectReasons)[number], number>>;
  in: FrameRingStats;
  out: FrameRingStats;
  store: FrameRingStats;
}

interface Shard {
  index: number;
  inRing: FrameRing;
  outRing: FrameRing;
  storeRing: FrameRing;
  feed: RingFeedWriter;
  counters: Float64Array;
  thread: WorkerThread<ToWorker, FromWorker> | undefined;
  ready: Promise<void>;
  restarts: number;
  restartTimes: number[];
  quarantined: number;
  /** In-ring tail when the worker last died (poison-frame detection). */
  lastDeathTail: number | undefined;
  failed: boolean;
  /** Symbol names by id, from the SYMBOL frames of the out ring. */
  names: string[];
}

export class WorkerPool {
  readonly router: ShardRouter;
  private readonly shards: Shard[] = [];
  private readonly o: WorkerPoolOptions;
  private readonly maxRestarts: number;
  private readonly restartWindowMs: number;
  private readonly out: PoolOutput;
  private state: 'new' | 'running' | 'closing' | 'closed' = 'new';
  private drain: Promise<void> = Promise.resolve();
  /** One doorbell for every out ring: the workers ring it, this thread parks on it. */
  private readonly doorbell = new SharedArrayBuffer(DOORBELL_BYTES);
  /**
   * What executors were last told per symbol (main → workers): the output
   * pipeline writes decisions, the actors read them. A restarted worker's
   * shard is cleared (its symbols are numbered afresh).
   */
  readonly decisions: DecisionBoard;
  /** The drain loop sleeps here; a worker's `wake` message or close() ends the sleep. */
  private readonly sleeper = new DoorbellSleeper(this.doorbell);
  private closing: Promise<void> | undefined;
  private flushQueued = false;
  /** Partitions adopted from dead kernels (takePartitions), kept for worker restarts. */
  private readonly adopted: number[] = [];
  /** Control messages by key, the last of each, replayed to a restarted worker (control). */
  private readonly controls = new Map<string, unknown>();
  private controlSeq = 0;
  private readonly controlWaiters = new Map<
    string,
    (error: { code: string; message: string } | undefined) => void
  >();

  constructor(options: WorkerPoolOptions) {
    if (!Number.isInteger(options.workers) || options.workers < 1 || options.workers > 64) {
      invalidArgument('workers', options.workers, 'an integer from 1 to 64');
    }
    const rb = options.ringBytes;
    if (!Number.isInteger(rb) || rb < 1 << 15 || rb > 1 << 30 || (rb & (rb - 1)) !== 0) {
      invalidArgument('ringBytes', rb, 'a power of two from 32 KiB to 1 GiB');
    }
    this.o = options;
    this.maxRestarts = options.maxRestarts ?? 5;
    this.restartWindowMs = options.restartWindowMs ?? 60_000;
    this.router = new ShardRouter(options.workers);
    this.decisions = new DecisionBoard(options.workers, 1 << 20);
    for (let i = 0; i < options.workers; i++) {
      const inRing = FrameRing.create(rb);
      this.shards.push({
        index: i,
        inRing,
        outRing: FrameRing.create(rb),
        storeRing: FrameRing.create(rb),
        feed: new RingFeedWriter(inRing),
        counters: new Float64Array(new SharedArrayBuffer(WORKER_COUNTER_WORDS * 8)),
        thread: undefined,
        ready: Promise.resolve(),
        restarts: 0,
        restartTimes: [],
        quarantined: 0,
        lastDeathTail: undefined,
        failed: false,
        names: [],
      });
    }
    const first = this.shards[0]!;
    this.out = {
      event: newOutputEvent(),
      symbol: '',
      view: newOutputFrameView(),
      ring: first.outRing,
    };
  }

  /** The store rings, one per shard, for the store worker. */
  storeRings(): SharedArrayBuffer[] {
    return this.shards.map((s) => s.storeRing.buffer);
  }

  /** Start every worker; resolves when all are ready (their sources subscribed). */
  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'running';
    for (const s of this.shards) this.spawn(s);
    this.drain = this.drainLoop();
    try {
      await Promise.all(this.shards.map((s) => s.ready));
    } catch (err) {
      await this.destroy();
      throw err;
    }
  }

  /**
   * Feed a tick through a shard's in-ring (tests, replay): routed by symbol
   * (FNV-1a + jump hash), visible to the worker at the end of the current
   * task. False when that ring is full (the tick is not queued). Never blocks.
   */
  submit(ev: MarketEvent, symbol: string, venue: string): boolean {
    if (this.state !== 'running') {
      throw new QilinError(ErrorCodes.POOL_CLOSED, `worker pool is ${this.state}; cannot submit`);
    }
    const shard = this.shards[this.router.shardOf(symbol)]!;
    const ok = shard.feed.submit(ev, symbol, venue);
    if (ok && !this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushFeeds);
    }
    return ok;
  }

  private readonly flushFeeds = (): void => {
    this.flushQueued = false;
    for (const s of this.shards) s.inRing.flush();
  };

  /** Name of a symbol id seen in an output frame. */
  symbolName(symId: number): string | undefined {
    return this.shards[symId % this.shards.length]?.names[symId];
  }

  stats(): ShardStats[] {
    return this.shards.map((s) => {
      const c = s.counters;
      const rejected: ShardStats['rejected'] = {};
      RejectReasons.forEach((r, i) => {
        const n = c[WorkerCounter.REJECTED_BASE + i]!;
        if (n > 0) rejected[r] = n;
      });
      return {
        shard: s.index,
        alive: s.thread?.alive === true,
        failed: s.failed,
        restarts: s.restarts,
        quarantined: s.quarantined,
        processed: c[WorkerCounter.PROCESSED]!,
        accepted: c[WorkerCounter.ACCEPTED]!,
        actorErrors: c[WorkerCounter.ACTOR_ERRORS]!,
        actors: c[WorkerCounter.ACTORS]!,
        outDropped: c[WorkerCounter.OUT_DROPPED]!,
        storeDropped: c[WorkerCounter.STORE_DROPPED]!,
        refused: c[WorkerCounter.REFUSED]!,
        encodeFailed: c[WorkerCounter.ENCODE_FAILED]!,
        missing: c[WorkerCounter.MISSING]!,
        unannounced: c[WorkerCounter.UNANNOUNCED]!,
        ackWaiting: c[WorkerCounter.ACK_WAITING]!,
        ackedDurable: c[WorkerCounter.ACKED_DURABLE]!,
        redelivered: c[WorkerCounter.REDELIVERED]!,
        replayed: c[WorkerCounter.REPLAYED]!,
        alreadyApplied: c[WorkerCounter.ALREADY_APPLIED]!,
        snapshots: c[WorkerCounter.SNAPSHOTS]!,
        snapshotFailed: c[WorkerCounter.SNAPSHOT_FAILED]!,
        snapshotFallback: c[WorkerCounter.SNAPSHOT_FALLBACK]!,
        snapshotBytes: c[WorkerCounter.SNAPSHOT_BYTES]!,
        snapshotMs: c[WorkerCounter.SNAPSHOT_MS]!,
        snapshotBlockMs: c[WorkerCounter.SNAPSHOT_BLOCK_MS]!,
        restored: c[WorkerCounter.RESTORED]!,
        snapshotRefused: c[WorkerCounter.SNAPSHOT_REFUSED]!,
        loopLagMs: c[WorkerCounter.LOOP_LAG_MS]!,
        rejected,
        in: s.inRing.stats(),
        out: s.outRing.stats(),
        store: s.storeRing.stats(),
      };
    });
  }

  /** True when every shard has a live worker and none has exhausted its restarts. */
  healthy(): boolean {
    return (
      this.state === 'running' && this.shards.every((s) => s.thread?.alive === true && !s.failed)
    );
  }

  /** Resolves once the shard's current worker is ready (after a restart too). */
  whenReady(shard: number): Promise<void> {
    return this.shards[shard]?.ready ?? Promise.resolve();
  }

  /** Kill a shard's worker as a crash would (tests and chaos drills). */
  async killWorker(shard: number): Promise<void> {
    const s = this.shards[shard];
    const t = s?.thread;
    if (s === undefined || t === undefined) return;
    // Not destroy(): the supervisor must see an unexpected exit and restart it.
    await t.terminateAsCrash();
  }

  /**
   * Graceful stop: workers close their sources and hand over what they hold,
   * the pool drains their output, then threads exit. Safe to call twice.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose(false);
    return this.closing;
  }

  /** Immediate stop: terminate threads, drop what is in flight. Safe to call twice. */
  destroy(): Promise<void> {
    this.closing ??= this.doClose(true);
    return this.closing;
  }

  private async doClose(now: boolean): Promise<void> {
    if (this.state === 'new') {
      this.state = 'closed';
      return;
    }
    this.state = 'closing';
    await Promise.all(
      this.shards.map((s) =>
        s.thread === undefined ? Promise.resolve() : now ? s.thread.destroy() : s.thread.close(),
      ),
    );
    this.state = 'closed';
    this.sleeper.wake();
    await this.drain;
  }

  /** `restart`: a death before ready is a death too (the poison frame may kill it at once). */
  private spawn(shard: Shard, restart = false): void {
    const init: WorkerInit = {
      shard: shard.index,
      shards: this.shards.length,
      inRing: shard.inRing.buffer,
      feed: shard.feed.tables(),
      outRing: shard.outRing.buffer,
      outBell: this.doorbell,
      decisions: this.decisions.buffers[shard.index]!,
      storeRing: shard.storeRing.buffer,
      counters: shard.counters.buffer as SharedArrayBuffer,
      actorModule: this.o.actorModule,
      actorOptions: this.o.actorOptions ?? {},
      sourceModule: this.o.sourceModule,
      sourceOptions: this.o.sourceOptions,
      snapshots: this.o.snapshots,
      control: [...this.controls.values()],
      outFullWaitMs: this.o.outFullWaitMs ?? 250,
      logLevel: this.o.logLevel ?? 'info',
    };
    const thread = new WorkerThread<ToWorker, FromWorker>({
      url: new URL('./worker-entry.js', import.meta.url),
      name: `qilin-shard-${shard.index}`,
      workerData: init,
      log: this.o.log,
      stopMessage: { type: 'stop' },
    });
    thread.onMessage = (msg) => this.onWorkerMessage(shard, msg);
    thread.onExit = (code, err, wasReady) => {
      // Control messages it never answered: refused (it gets them again if it restarts).
      for (const [key, w] of this.controlWaiters) {
        if (!key.startsWith(`${shard.index}:`)) continue;
        this.controlWaiters.delete(key);
        w({ code: 'QLN_WORKER_DIED', message: `shard ${shard.index} exited (code ${code})` });
      }
      if (this.state === 'running' && (wasReady || restart)) this.onWorkerDeath(shard, code, err);
    };
    shard.thread = thread;
    shard.ready = thread.start().then(() => {
      // A restarted worker takes the partitions this kernel adopted too.
      const mine = this.adopted.filter((p) => p % this.shards.length === shard.index);
      if (mine.length > 0) thread.post({ type: 'take', partitions: mine });
    });
  }

  /**
   * Take market partitions `partitions` as well (failover: adopted from a
   * dead kernel): partition p goes to worker p mod workers, now and after a
   * restart of that worker.
   */
  takePartitions(partitions: readonly number[]): void {
    const fresh = partitions.filter((p) => !this.adopted.includes(p));
    this.adopted.push(...fresh);
    for (const s of this.shards) {
      const mine = fresh.filter((p) => p % this.shards.length === s.index);
      if (mine.length > 0 && s.thread?.alive === true)
        s.thread.post({ type: 'take', partitions: mine });
    }
  }

  /**
   * Send `body` to every worker's actor module (ActorModule.control) and
   * wait until each applied it. Kept under `key` (the last body per key) and
   * replayed to a worker that restarts. Resolves with each shard's refusal
   * (empty when every worker applied it); a worker that is down gets it when
   * it restarts.
   */
  async control(
    key: string,
    body: unknown,
  ): Promise<Array<{ shard: number; code: string; message: string }>> {
    this.controls.set(key, body);
    const refused: Array<{ shard: number; code: string; message: string }> = [];
    await Promise.all(
      this.shards.map(async (s) => {
        const t = s.thread;
        if (t === undefined || !t.alive) return;
        await s.ready;
        const id = ++this.controlSeq;
        const done = new Promise<{ code: string; message: string } | undefined>((resolve) =>
          this.controlWaiters.set(`${s.index}:${id}`, resolve),
        );
        t.post({ type: 'control', id, body });
        const err = await done;
        if (err !== undefined) refused.push({ shard: s.index, ...err });
      }),
    );
    return refused;
  }

  /**
   * Set what a restarted worker is sent under `key` (undefined: nothing)
   * without sending it now: after workers refused a control message, what
   * they kept running.
   */
  rememberControl(key: string, body: unknown): void {
    if (body === undefined) this.controls.delete(key);
    else this.controls.set(key, body);
  }

  /** Shard `shard`'s counters (WorkerCounter words), live: read, never write. */
  counters(shard: number): Float64Array {
    const s = this.shards[shard];
    if (s === undefined) invalidArgument('shard', shard, `0 to ${this.shards.length - 1}`);
    return s.counters;
  }

  /** Partitions adopted from other kernels (takePartitions). */
  get adoptedPartitions(): readonly number[] {
    return this.adopted;
  }

  private onWorkerMessage(shard: Shard, msg: FromWorker): void {
    if (msg.type === 'wake') {
      this.sleeper.wake();
      return;
    }
    if (msg.type === 'control-done') {
      const key = `${shard.index}:${msg.id}`;
      const w = this.controlWaiters.get(key);
      this.controlWaiters.delete(key);
      w?.(msg.error);
      return;
    }
    if (msg.type === 'actor-error') {
      this.o.log.warn(
        {
          shard: shard.index,
          symbol: this.symbolName(msg.symId),
          code: msg.code,
          err: msg.message,
        },
        'actor failed on a record (skipped)',
      );
      if (poolChannels.actorError.hasSubscribers)
        poolChannels.actorError.publish({ shard: shard.index, code: msg.code });
      return;
    }
    this.o.onWorkerMessage?.(msg, shard.index);
  }

  private onWorkerDeath(shard: Shard, exitCode: number, err: unknown): void {
    const now = Date.now();
    shard.restarts++;
    shard.restartTimes = shard.restartTimes.filter((t) => now - t < this.restartWindowMs);
    shard.restartTimes.push(now);
    this.decisions.clear(shard.index);
    const tail = shard.inRing.tailCounter();
    this.o.log.error(
      {
        code: ErrorCodes.WORKER_DIED,
        shard: shard.index,
        exitCode,
        err,
        restarts: shard.restarts,
        inRingBytes: shard.inRing.used(),
      },
      'worker died; restarting it on the same rings',
    );
    if (poolChannels.restart.hasSubscribers)
      poolChannels.restart.publish({ shard: shard.index, exitCode });
    if (shard.lastDeathTail === tail && shard.inRing.used() > 0) {
      // Died twice on the same frame: quarantine it so the shard can move on.
      shard.inRing.skipOldest();
      shard.quarantined++;
      this.o.log.error(
        { shard: shard.index, tail },
        'record killed its worker twice; quarantined (skipped)',
      );
      if (poolChannels.quarantine.hasSubscribers)
        poolChannels.quarantine.publish({ shard: shard.index });
      shard.lastDeathTail = undefined;
    } else {
      shard.lastDeathTail = tail;
    }
    if (shard.restartTimes.length > this.maxRestarts) {
      shard.failed = true;
      this.o.log.fatal(
        {
          code: ErrorCodes.WORKER_RESTART_BUDGET,
          shard: shard.index,
          restarts: shard.restartTimes.length,
          windowMs: this.restartWindowMs,
        },
        'worker keeps dying; shard failed, not restarting',
      );
      return;
    }
    // Back off a little more on each death inside the window: 0, 50, 100, … ms.
    const delay = Math.min(1000, (shard.restartTimes.length - 1) * 50);
    setTimeout(() => {
      if (this.state === 'running') {
        this.spawn(shard, true);
        // A death before ready went through onWorkerDeath already; this only keeps it handled.
        shard.ready.catch(() => undefined);
      }
    }, delay);
  }

  /**
   * The main thread's only per-output loop: drain every shard's out ring,
   * then park on the shared doorbell (one wake-up for a burst flushed by
   * several workers at once). Yields to the event loop every 4096 frames.
   */
  private async drainLoop(): Promise<void> {
    const anyData = (): boolean => this.shards.some((s) => s.outRing.hasData());
    for (;;) {
      let n = 0;
      for (const s of this.shards) n += this.drainShard(s, 4096);
      if (n >= 4096) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      if (this.state === 'closed') {
        for (const s of this.shards) this.drainShard(s, Number.MAX_SAFE_INTEGER);
        return;
      }
      // Sleep until a worker's `wake` message (or close()); no timer is armed
      // per park. Atomics.waitAsync is not used: it can miss a notify on Node 20.
      const sleep = this.sleeper.park(anyData);
      if (sleep !== null) await sleep;
    }
  }

  /** Hand up to `max` frames of one shard's out ring to onOutput; returns how many. */
  private drainShard(shard: Shard, max: number): number {
    const ring = shard.outRing;
    const out = this.out;
    let n = 0;
    let at: number;
    while (n < max && (at = ring.peek()) !== -1) {
      if (ring.type() === FrameType.SYMBOL) {
        const id = nameFrameId(ring, at);
        const name = nameFrameText(ring, at);
        shard.names[id] = name;
        this.decisions.announce(id, name);
      } else {
        readOutputFrame(ring, at, out.view);
        readOutputRecord(ring, at, out.event, true);
        out.symbol = shard.names[out.view.symId] ?? '';
        out.ring = ring;
        try {
          this.o.onOutput(out, shard.index);
        } catch (err) {
          this.o.log.error({ err, shard: shard.index }, 'output handler failed');
        }
      }
      ring.release();
      n++;
    }
    return n;
  }
}
