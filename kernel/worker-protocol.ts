/**
 * Control messages between the pool (main thread) and a worker host. Market
 * data and actor output never travel here: they go through the rings. These
 * are rare (start-up, symbol names, stop), so structured clone is fine.
 */
export interface WorkerInit {
  shard: number;
  shards: number;
  inRing: SharedArrayBuffer;
  outRing: SharedArrayBuffer;
  /** Int32 counters the worker updates (see WorkerCounter). */
  counters: SharedArrayBuffer;
  actorModule: string;
  actorOptions: unknown;
  /** Symbols already routed to this shard: recreated eagerly on (re)start. */
  symbols: Array<[id: number, name: string]>;
  /** Max milliseconds the worker blocks on a full output ring before dropping. */
  outFullWaitMs: number;
}

export const WorkerCounter = {
  /** Market records handled. */
  PROCESSED: 0,
  /** Exceptions thrown by actors (the record is skipped, the actor kept). */
  ACTOR_ERRORS: 1,
  /** Output records dropped because the output ring stayed full. */
  OUT_DROPPED: 2,
  /** Actors created. */
  ACTORS: 3,
} as const;
export const WORKER_COUNTER_BYTES = 64;

export type ToWorker = { type: 'symbol'; id: number; name: string } | { type: 'stop' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'actor-error'; symId: number; code: string; message: string }
  | { type: 'stopped' };
