import type { Logger } from './logger.js';
import type { MarketEvent } from './market-record.js';

/**
 * Why a market message was refused. Stable strings: they are the `reason`
 * label of `qilin_ticks_rejected_total` and appear in the reject sample.
 */
export const RejectReasons = [
  'oversized',
  'malformed_json',
  'malformed_binary',
  'unsupported_content_type',
  'not_an_object',
  'unknown_type',
  'missing_field',
  'bad_field_type',
  'bad_number',
  'bad_symbol',
  'symbol_mismatch',
  'bad_subject',
  'bad_side',
  'bad_timestamp',
  'bad_seq',
  'symbol_table_full',
  'unpartitioned',
] as const;
export type RejectReason = (typeof RejectReasons)[number];

/** What a market source feeds. Implemented by the kernel's ingest stage. */
export interface MarketIngest {
  /** Interned id of `symbol` (interned on first sight). */
  intern(symbol: string): number;
  /**
   * Take a decoded, validated event (symId from `intern`, `recv` stamped).
   * The event object is the caller's and is reused after return. False when
   * the event could not be queued (full ring, see the ring policy): a source
   * that can redeliver (JetStream) should nak it, a core subscription counts
   * the loss.
   */
  accept(event: MarketEvent, venue: string): boolean;
  /** Record a refused message: counted by reason, sampled for inspection. */
  reject(reason: RejectReason, subject: string, detail: string, raw: Uint8Array): void;
  /**
   * Make everything accepted so far visible downstream now, instead of at
   * the end of the current task. A source that must not release its input
   * before the outputs are out (the in-ring feed) calls it per message.
   */
  flush?(): void;
  /**
   * Exactly-once input (docs/adr/0005-exactly-once-ticks.md): the number of
   * ticks written to the store so far (wrapping 32-bit); read right after an
   * `accept` that returned true, it tags that tick.
   */
  storeMark?(): number;
  /** Ticks whose store rows are durable (same numbering): a tag at or below it may be acknowledged. */
  durableMark?(): number;
  /** The source's acknowledgement state, for metrics (totals since start, and a gauge). */
  reportAcks?(waiting: number, acked: number, redelivered: number): void;
  /**
   * Warm restart (docs/adr/0006-warm-restart.md): restore the actors of
   * snapshot unit `name` (one per durable consumer or subscription) from its
   * latest snapshot. Resolves to the unit's number, to put in `event.unit`
   * of its messages, and the stream sequence the snapshot covers (0: none,
   * nothing to replay). Never rejects: an unusable snapshot is logged and
   * counted, and the unit starts cold.
   */
  restore?(name: string): Promise<UnitRestore>;
  /**
   * Apply a message replayed from the stream to its actor only: no store
   * row, no output (they were made before the restart). False when the
   * actor had already applied it (streamSeq at or below its own).
   */
  replay?(event: MarketEvent, venue: string): boolean;
}

/** What MarketIngest.restore found. */
export interface UnitRestore {
  unit: number;
  /** Stream sequence the snapshot covers (every message of the unit at or below it is in the state). */
  position: number;
  /** Symbols restored. */
  symbols: number;
}

/** A market data source (NATS core or JetStream, a replay file, a test feed). */
export interface MarketSource {
  /**
   * True when a message refused by `accept` (returned false) comes back later
   * (JetStream: nak and redelivery). The ingest then refuses a tick it cannot
   * store instead of processing it without its store row.
   */
  readonly redelivers?: boolean;
  start(ingest: MarketIngest): Promise<void>;
  /** Drain and stop; safe to call twice. */
  close(): Promise<void>;
  /**
   * Start taking market partitions `partitions` as well (failover: adopted
   * from a kernel that died). Only partitioned sources implement it.
   */
  take?(partitions: readonly number[]): Promise<void>;
}

/**
 * What happened to a source's connection or flow: the kernel counts each,
 * logs once per episode and turns `/health/ready` degraded while it lasts.
 */
export type SourceEvent =
  | { type: 'disconnected'; detail: string }
  | { type: 'reconnected'; detail: string }
  /** Messages piled up on the client, or the server cut us off as a slow consumer. */
  | { type: 'slow_consumer'; detail: string }
  | { type: 'error'; detail: string };

/** What a shard worker hands the source it runs (see SourceModule). */
export interface SourceContext {
  shard: number;
  shards: number;
  /** Structured-clone-able options from the composition root. */
  options: unknown;
  log: Logger;
  /** Report a connection or flow event (never throws). */
  report(event: SourceEvent): void;
}

/**
 * A market source module, loaded by a shard worker from a URL so that each
 * worker takes its own share of the market directly (kernel code never
 * imports an adapter): `createMarketSource(ctx)`.
 */
export interface SourceModule {
  createMarketSource(ctx: SourceContext): MarketSource | Promise<MarketSource>;
}
