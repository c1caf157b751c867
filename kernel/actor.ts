import type { StateReader, StateWriter } from './actor-state.js';
import type { MarketEvent } from './market-record.js';
import type { OutputEvent } from './output-record.js';
import type { FrameInfo } from './shard-frames.js';

/**
 * Actors are plain classes: a message in, effects out. The worker host, the
 * replay driver and unit tests all call them the same way, so an actor has no
 * idea which thread, clock or transport it runs on.
 */

/** Where an actor's effects go. `emit` copies the event; the caller may reuse it. */
export interface OutputSink {
  emit(event: OutputEvent): void;
}

/** A per-symbol actor living in a worker shard. */
export interface MarketActor {
  /** Handle one market event (the object is reused: copy what you keep). */
  onMarket(event: MarketEvent, out: OutputSink): void;
  /**
   * Warm restart (kernel/actor-state.ts): write this actor's state, read it
   * back into a fresh actor of the same module and options, and describe its
   * shape (hashed into the snapshot fingerprint). All three or none.
   */
  writeState?(w: StateWriter): void;
  readState?(r: StateReader): void;
  stateShape?(): string;
  /**
   * Called after readState when the ticks since the snapshot will not be
   * replayed (core input): the live feed continues as a new session.
   */
  resumeLive?(): void;
}

/** What a shard knows when it builds its actors. */
export interface ShardContext {
  shard: number;
  shards: number;
  /** Free-form, structured-clone-able options handed from the composition root. */
  options: unknown;
  /**
   * The shard's DecisionBoard buffer (kernel/decision-board.ts): the side
   * last approved per symbol, written by the main thread. Absent in tests.
   */
  decisions?: SharedArrayBuffer;
}

/**
 * Turns an actor's output into the bytes the fan-out sends as they are: the
 * WebSocket frame `{"topic":"<kind>/<sym>","data":<message>}`, whose `data`
 * is also the NATS payload. Runs in the worker, so the main thread only
 * routes bytes. `symbol()` runs once per symbol (it may allocate and cache
 * pre-encoded pieces); `encode()` runs per output and should not allocate.
 */
export interface OutputEncoder<S = unknown> {
  symbol(name: string): S;
  /**
   * Write the frame of `ev` into `buf[off, end)`; fill `info` with absolute
   * offsets. False (nothing usable written) when it does not fit.
   */
  encode(ev: OutputEvent, sym: S, buf: Buffer, off: number, end: number, info: FrameInfo): boolean;
}

/**
 * An actor module (loaded by the worker host from a URL) exports
 * `createActorFactory(ctx)`, returning a function that builds the actor of one
 * interned symbol, and `createOutputEncoder(ctx)`. The kernel never imports
 * actor code directly.
 */
export type ActorFactory = (symId: number, symbol: string) => MarketActor;
export interface ActorModule {
  createActorFactory(ctx: ShardContext): ActorFactory | Promise<ActorFactory>;
  createOutputEncoder(ctx: ShardContext): OutputEncoder | Promise<OutputEncoder>;
  /**
   * True when this module's actors may be run on synthetic ticks at start
   * (kernel/warm-up.ts: scratch actors, nothing emitted) to compile the
   * per-tick code before the first real tick. Absent: no warm-up.
   */
  readonly warmUp?: boolean;
  /**
   * A control message from the main thread (WorkerPool.control), e.g. load a
   * model version. Runs between drains; resolves when applied, rejects with
   * a QilinError when refused. Also replayed, in order, to a restarted worker.
   */
  control?(body: unknown): Promise<void>;
  /** End of a drain (ShardHost.flush): finish deferred work (batched inference) before the rings flush. */
  endOfDrain?(): void;
  /** Copy the module's counters into the worker's shared counters (about once a second). */
  report?(counters: Float64Array): void;
}
