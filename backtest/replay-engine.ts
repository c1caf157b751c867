/**
 * Replay: history from a `TickSource` through the kernel's own actors (the
 * live workers' actor module: quality, windows, features, model, strategy,
 * gate), on a simulated clock (the ticks' own times), in shard workers.
 *
 * ```
 *  TickSource ─next()─► chunk slot (shared columns)  ─┬─► shard 0 worker: ShardRunner ─► outputs + source index
 *     (slots: 2, in flight                            ├─► shard 1 worker …
 *      at once: read k+1 while k runs)                 ┘
 *  all shards done with slot k ─► OutputOrder (by source tick index) ─► consumer.onChunk(chunk, outputs)
 * ```
 * The consumer (a backtest: fills, portfolio, risk; or a recorder of
 * predictions and signals) sees each chunk's ticks and its outputs in source
 * order. Actors are per symbol and a symbol's ticks reach its shard in source
 * order, so the outputs are the same, bit for bit, whatever `workers` is
 * (0 runs the one shard on this thread). Memory stays flat: two chunk slots,
 * whatever the length of the history.
 */
import { Worker } from 'node:worker_threads';
import type { ActorModule } from '../kernel/actor.js';
import { ErrorCodes, QilinError, invalidArgument } from '../kernel/errors.js';
import type { ReplayFromWorker, ReplayToWorker, ReplayWorkerInit } from './replay-protocol.js';
import {
  OutputBuffer,
  OutputOrder,
  ShardRunner,
  type ChunkOutputs,
  newSharedOutput,
  type SharedOutput,
} from './shard-runner.js';
import {
  chunkFromShared,
  newSharedTickChunk,
  type SharedTickChunk,
  type TickChunk,
  type TickSource,
} from './tick-chunk.js';

export type { ChunkOutputs };

export const KERNEL_ACTOR_MODULE = new URL('../actors/symbol-actor-module.js', import.meta.url)
  .href;

export interface ReplayConsumer {
  /** One chunk: its ticks, then its outputs in source order (`outputs.src(k)` ascending). */
  onChunk(chunk: TickChunk, symbols: readonly string[], outputs: ChunkOutputs): void;
}

export interface ReplayOptions {
  /** Shard workers; 0 runs one shard on this thread. */
  workers: number;
  /** Ticks per chunk. */
  chunkTicks: number;
  /** The actors' options, as the kernel gives its workers: `{...config.actor, strategy, account}`. */
  actorOptions: unknown;
  /** Actor module URL; the kernel's by default. */
  actorModule?: string;
  /** Control messages for each shard before the first tick (e.g. load a model version). */
  controls?: unknown[];
  /**
   * Exchange time per wall time: 0 (default) as fast as possible; k > 0
   * paces chunks so that k seconds of history take one second (chunks are
   * then at most 256 ticks, the pacing's granularity).
   */
  speed?: number;
  /** After each chunk: ticks replayed so far, and the source's total when known. */
  onProgress?: (done: number, total: number | undefined) => void;
  /** Per chunk: µs from handing it to the shards to the consumer's end (benchmarks). */
  onChunkLatency?: (us: number) => void;
}

export interface ReplayStats {
  ticks: number;
  outputs: number;
  chunks: number;
  /** Wall time, ms, and ticks per second from the first read to the last output. */
  ms: number;
  ticksPerSec: number;
  workers: number;
}

const SLOTS = 2;
const PACED_CHUNK = 256;

/** A shard: a worker thread, or (workers = 0) a ShardRunner on this thread. */
interface Shard {
  start(slot: number, chunk: TickChunk, length: number, names: string[]): void;
  readonly outs: OutputBuffer[];
  stop(): Promise<void>;
}

export async function replay(
  source: TickSource,
  consumer: ReplayConsumer,
  o: ReplayOptions,
): Promise<ReplayStats> {
  if (!Number.isInteger(o.workers) || o.workers < 0 || o.workers > 64) {
    invalidArgument('workers', o.workers, 'an integer 0..64 (0: on this thread)');
  }
  if (!Number.isInteger(o.chunkTicks) || o.chunkTicks < 1) {
    invalidArgument('chunkTicks', o.chunkTicks, 'an integer ≥ 1');
  }
  const speed = o.speed ?? 0;
  if (!(speed >= 0) || !Number.isFinite(speed)) {
    invalidArgument('speed', o.speed, 'a finite number ≥ 0 (0: as fast as possible)');
  }
  const capacity = speed > 0 ? Math.min(o.chunkTicks, PACED_CHUNK) : o.chunkTicks;
  const sharedSlots: SharedTickChunk[] = [];
  const chunks: TickChunk[] = [];
  for (let s = 0; s < SLOTS; s++) {
    sharedSlots.push(newSharedTickChunk(capacity));
    chunks.push(chunkFromShared(sharedSlots[s]!));
  }
  const outCapacity = Math.max(64, capacity >> 1);
  const waiters: Array<{ done: () => void; fail: (e: Error) => void } | undefined> =
    new Array<undefined>(SLOTS).fill(undefined);
  const shards: Shard[] = [];
  const actorModule = o.actorModule ?? KERNEL_ACTOR_MODULE;
  const controls = o.controls ?? [];
  let failure: Error | undefined;
  const fail = (e: Error): void => {
    failure ??= e;
    for (const w of waiters) w?.fail(failure);
  };
  try {
    if (o.workers === 0) {
      shards.push(await inlineShard(actorModule, o.actorOptions, controls, outCapacity, waiters));
    } else {
      const started = [];
      for (let s = 0; s < o.workers; s++) {
        started.push(
          workerShard(
            s,
            o.workers,
            actorModule,
            o.actorOptions,
            controls,
            sharedSlots,
            outCapacity,
            {
              done: (slot) => waiters[slot]?.done(),
              fail,
            },
          ),
        );
      }
      shards.push(...(await Promise.all(started)));
    }
    const order = new OutputOrder(capacity);
    const outsOf: OutputBuffer[][] = [];
    for (let s = 0; s < SLOTS; s++) outsOf.push(shards.map((sh) => sh.outs[s]!));
    let namesSent = 0;
    let ticks = 0;
    let outputs = 0;
    let chunkCount = 0;
    const inFlight: Array<{ slot: number; length: number; done: Promise<void>; at: number }> = [];
    const t0 = performance.now();
    let firstTs = NaN;
    const dispatch = async (slot: number): Promise<boolean> => {
      const c = chunks[slot]!;
      c.length = 0;
      const n = await source.next(c);
      if (n === 0) return false;
      c.length = n;
      if (speed > 0) {
        if (firstTs !== firstTs) firstTs = c.ts[0]!;
        const due = t0 + (c.ts[0]! - firstTs) / 1000 / speed;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      }
      const names = source.symbols.slice(namesSent);
      namesSent = source.symbols.length;
      const done = new Promise<void>((resolve, reject) => {
        let left = shards.length;
        waiters[slot] = {
          done: () => {
            if (--left > 0) return;
            waiters[slot] = undefined;
            resolve();
          },
          fail: reject,
        };
      });
      done.catch(() => undefined); // awaited in order below; a shard's failure must not go unhandled meanwhile
      if (failure !== undefined) throw failure;
      const at = performance.now();
      for (const sh of shards) sh.start(slot, c, n, names);
      inFlight.push({ slot, length: n, done, at });
      return true;
    };
    let more = true;
    for (let s = 0; s < SLOTS && more; s++) more = await dispatch(s);
    while (inFlight.length > 0) {
      const head = inFlight.shift()!;
      await head.done;
      const c = chunks[head.slot]!;
      c.length = head.length;
      order.sort(outsOf[head.slot]!, head.length);
      consumer.onChunk(c, source.symbols, order);
      o.onChunkLatency?.((performance.now() - head.at) * 1000);
      ticks += head.length;
      outputs += order.count;
      chunkCount++;
      o.onProgress?.(ticks, source.total);
      if (more) more = await dispatch(head.slot);
    }
    const ms = performance.now() - t0;
    return {
      ticks,
      outputs,
      chunks: chunkCount,
      ms,
      ticksPerSec: ticks / (ms / 1000),
      workers: o.workers,
    };
  } finally {
    await Promise.all(shards.map((s) => s.stop()));
  }
}

async function inlineShard(
  actorModule: string,
  options: unknown,
  controls: unknown[],
  outCapacity: number,
  waiters: Array<{ done: () => void } | undefined>,
): Promise<Shard> {
  const mod = (await import(actorModule)) as ActorModule;
  const factory = await mod.createActorFactory({ shard: 0, shards: 1, options });
  for (const body of controls) await applyControl(mod, body, 0);
  const runner = new ShardRunner(factory, 0, 1, mod.endOfDrain?.bind(mod));
  const outs = Array.from({ length: SLOTS }, () => new OutputBuffer(newSharedOutput(outCapacity)));
  const names: string[] = [];
  return {
    outs,
    start(slot, chunk, _length, added) {
      for (const n of added) names.push(n);
      runner.run(chunk, names, outs[slot]!);
      waiters[slot]?.done();
    },
    stop: () => Promise.resolve(),
  };
}

async function applyControl(mod: ActorModule, body: unknown, shard: number): Promise<void> {
  if (mod.control === undefined) {
    throw new QilinError(
      ErrorCodes.REPLAY_FAILED,
      `replay shard ${shard}: the actor module takes no control messages`,
    );
  }
  await mod.control(body);
}

function workerShard(
  shard: number,
  shards: number,
  actorModule: string,
  options: unknown,
  controls: unknown[],
  slots: SharedTickChunk[],
  outCapacity: number,
  on: { done: (slot: number) => void; fail: (e: Error) => void },
): Promise<Shard> {
  const outputs: SharedOutput[] = slots.map(() => newSharedOutput(outCapacity));
  const outs = outputs.map((s) => new OutputBuffer(s));
  const init: ReplayWorkerInit = { shard, shards, actorModule, options, controls, slots, outputs };
  const worker = new Worker(new URL('./replay-worker.js', import.meta.url), {
    workerData: init,
    // Not the parent's flags: a test runner's --import loaders cost seconds per worker start.
    execArgv: [],
  });
  const failed = (message: string): QilinError =>
    new QilinError(ErrorCodes.REPLAY_FAILED, `replay shard ${shard}: ${message}`);
  return new Promise<Shard>((resolve, reject) => {
    let ready = false;
    let stopping = false;
    const shardApi: Shard = {
      outs,
      start(slot, _chunk, length, names) {
        const m: ReplayToWorker = { t: 'chunk', slot, length, names };
        worker.postMessage(m);
      },
      async stop() {
        stopping = true;
        await worker.terminate();
      },
    };
    worker.on('message', (m: ReplayFromWorker) => {
      if (m.t === 'ready') {
        ready = true;
        resolve(shardApi);
      } else if (m.t === 'done') {
        const out = outs[m.slot]!;
        out.adopt(m.output);
        out.count = m.count;
        on.done(m.slot);
      } else {
        const e = failed(m.message);
        if (!ready) reject(e);
        on.fail(e);
      }
    });
    worker.on('error', (e) => {
      const err = failed(e.message);
      if (!ready) reject(err);
      on.fail(err);
    });
    worker.on('exit', (code) => {
      if (stopping) return;
      const err = failed(`worker exited (code ${code})`);
      if (!ready) reject(err);
      on.fail(err);
    });
  });
}
