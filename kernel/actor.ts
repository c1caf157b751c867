import type { MarketEvent } from './market-record.js';
import type { OutputEvent } from './output-record.js';

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
}

/** What a shard knows when it builds its actors. */
export interface ShardContext {
  shard: number;
  shards: number;
  /** Free-form, structured-clone-able options handed from the composition root. */
  options: unknown;
}

/**
 * An actor module (loaded by the worker host from a URL) exports
 * `createActorFactory(ctx)`, returning a function that builds the actor of one
 * interned symbol. The kernel never imports actor code directly.
 */
export type ActorFactory = (symId: number, symbol: string | undefined) => MarketActor;
export interface ActorModule {
  createActorFactory(ctx: ShardContext): ActorFactory | Promise<ActorFactory>;
}
