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
}

/** A market data source (NATS core or JetStream, a replay file, a test feed). */
export interface MarketSource {
  start(ingest: MarketIngest): Promise<void>;
  /** Drain and stop; safe to call twice. */
  close(): Promise<void>;
}
