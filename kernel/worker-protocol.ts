import type { RejectReason, SourceEvent } from './market-source.js';
import type { FeedTables } from './ring-feed.js';

/**
 * Control messages between the pool (main thread) and a shard worker. Market
 * data and actor output never travel here: they go through the rings. These
 * are rare (start-up, stop, error reports, samples), so structured clone is
 * fine.
 */
export interface WorkerInit {
  shard: number;
  shards: number;
  /** Main → worker feed (FrameRing: SYMBOL, VENUE, TICK): tests and replay. */
  inRing: SharedArrayBuffer;
  /** Names announced on the in-ring before this worker started (after a restart). */
  feed: FeedTables;
  /** Worker → main outputs (FrameRing). */
  outRing: SharedArrayBuffer;
  /** The doorbell the main thread shares between every out ring (kernel/ring-control.ts). */
  outBell: SharedArrayBuffer;
  /** Worker → store worker rows (FrameRing). */
  storeRing: SharedArrayBuffer;
  /** The shard's DecisionBoard (kernel/decision-board.ts): approved sides, main → worker. */
  decisions: SharedArrayBuffer;
  /** Float64 counters the worker updates (see WorkerCounter). */
  counters: SharedArrayBuffer;
  actorModule: string;
  actorOptions: unknown;
  /** A market source module (kernel/market-source.ts SourceModule) the worker runs itself. */
  sourceModule?: string | undefined;
  sourceOptions?: unknown;
  /** Max milliseconds the worker blocks on a full output ring before dropping. */
  outFullWaitMs: number;
  logLevel: string;
  /** Warm restart: where and how often the worker snapshots its actors; unset: never. */
  snapshots?: WorkerSnapshotOptions | undefined;
  /** Control messages applied before this worker started (WorkerPool.control), replayed in order. */
  control?: unknown[];
}

/** Snapshot settings handed to each shard worker (docs/adr/0006-warm-restart.md). */
export interface WorkerSnapshotOptions {
  /** Period, ms; 0: only on a graceful stop. */
  intervalMs: number;
  /** Local folder for snapshot files (always the fallback). */
  dir: string;
  /** A SnapshotStoreModule URL (Redis) and its options; unset: local files only. */
  module?: string | undefined;
  options?: unknown;
}

/**
 * Per-shard counters, Float64 words written by the worker only (plain
 * stores: one writer, whole 8-byte words) and read by the main thread at
 * scrape time. Float64 so they never wrap.
 */
export const WorkerCounter = {
  /** Market events handed to the actors. */
  PROCESSED: 0,
  /** Exceptions thrown by actors (the record is skipped, the actor kept). */
  ACTOR_ERRORS: 1,
  /** Outputs dropped because the out ring stayed full. */
  OUT_DROPPED: 2,
  /** Actors (symbols) of the shard. */
  ACTORS: 3,
  /** Ticks accepted (decoded, validated). */
  ACCEPTED: 4,
  /** Store rows dropped because the store ring was full (core input). */
  STORE_DROPPED: 5,
  /** Ticks refused for a full store ring and left for redelivery (JetStream input). */
  REFUSED: 6,
  /** Event-loop lag of the worker, worst in the last second, ms. */
  LOOP_LAG_MS: 7,
  /** Outputs the encoder could not fit in MAX_OUTPUT_FRAME_BYTES. */
  ENCODE_FAILED: 8,
  /** Ticks missing by sequence number (gaps in a symbol's seq): lost before the kernel. */
  MISSING: 9,
  /** Ticks lost because their symbol could not be announced (a ring full for a second). */
  UNANNOUNCED: 10,
  /** JetStream input: accepted messages waiting for their store rows to be durable (gauge). */
  ACK_WAITING: 11,
  /** JetStream input: messages acknowledged once their rows were durable. */
  ACKED_DURABLE: 12,
  /** JetStream input: messages delivered again (their first delivery was not acknowledged). */
  REDELIVERED: 13,
  /** Rejected ticks by reason: REJECTED_BASE + RejectReasons.indexOf(reason). */
  REJECTED_BASE: 16,
  // Warm restart (docs/adr/0006-warm-restart.md); after the reject reasons.
  /** Messages replayed from the stream into restored actors (state only). */
  REPLAYED: 44,
  /** Redelivered messages whose actor already had them (restored state): stored, not processed again. */
  ALREADY_APPLIED: 45,
  /** Unit snapshots written. */
  SNAPSHOTS: 46,
  /** Unit snapshots that could not be written anywhere. */
  SNAPSHOT_FAILED: 47,
  /** Unit snapshots written to local files because Redis refused them. */
  SNAPSHOT_FALLBACK: 48,
  /** Bytes of the last snapshot round (compressed, every unit written; gauge). */
  SNAPSHOT_BYTES: 49,
  /** Duration of the last snapshot round, ms (gauge). */
  SNAPSHOT_MS: 50,
  /** Symbols restored from snapshots. */
  RESTORED: 51,
  /** Snapshots refused (fingerprint, torn, unreadable): their units started cold. */
  SNAPSHOT_REFUSED: 52,
  /** Longest synchronous encode of a unit in the last round, ms: how long the worker stopped taking ticks (gauge). */
  SNAPSHOT_BLOCK_MS: 53,
  // Models (actors/model-batch.ts), written by the actor module's report().
  /** Model runs (batches). */
  MODEL_BATCHES: 54,
  /** Rows scored by a model (live or previous version). */
  MODEL_ROWS: 55,
  /** Batches that failed: an error, a non-finite score, or over the latency budget. */
  MODEL_FAILED: 56,
  /** Rows scored by the previous version (the live one's breaker open). */
  MODEL_PREVIOUS_ROWS: 57,
  /** Rows scored by the rule on features (a failed batch, or nothing else to fall back to). */
  MODEL_RULE_ROWS: 58,
  /** Rows given no score (lastResort none, or warming up). */
  MODEL_NO_SIGNAL_ROWS: 59,
  /** Step of the fallback chain (ModelStep: 0 none, 1 live, 2 previous, 3 rule, 4 no signal; gauge). */
  MODEL_STEP: 60,
  /** Id of the live model version (0: none; gauge). */
  MODEL_LIVE_ID: 61,
  /** Longest model run in the last second, µs (gauge). */
  MODEL_RUN_MAX_US: 62,
  /** Breaker openings. */
  MODEL_BREAKER_OPENED: 63,
  /** Rows the shadow version scored beside the live one. */
  MODEL_SHADOW_ROWS: 64,
  /** Of them, rows where the shadow's side (beyond the threshold) agreed with the live answer. */
  MODEL_SHADOW_AGREE: 65,
  /** Shadow runs that failed (their rows got no shadow answer). */
  MODEL_SHADOW_FAILED: 66,
  /** Id of the shadow version (0: none; gauge). */
  MODEL_SHADOW_ID: 67,
  /** PSI of the live version's last drift window against its reference (−1: none yet; gauge). */
  MODEL_PSI: 68,
  /** Drift windows over the PSI limit (each fails the live version's batches until a fresh window). */
  MODEL_DRIFT_WINDOWS: 69,
} as const;
export const WORKER_COUNTER_WORDS = 72;

export type ToWorker =
  | { type: 'stop' }
  /** Take these market partitions too (failover: adopted from a dead kernel). */
  | { type: 'take'; partitions: number[] }
  /** A control message for the actor module (ActorModule.control), answered by `control-done`. */
  | { type: 'control'; id: number; body: unknown };

export type FromWorker =
  | { type: 'ready' }
  /** The out ring has frames and the main thread was asleep (kernel/ring-control.ts doorbell). */
  | { type: 'wake' }
  | { type: 'actor-error'; symId: number; code: string; message: string }
  | { type: 'source-event'; event: SourceEvent }
  | { type: 'reject'; reason: RejectReason; subject: string; detail: string; raw: string }
  | { type: 'fatal'; code: string; message: string }
  | { type: 'stopped' }
  | { type: 'control-done'; id: number; error?: { code: string; message: string } };
