/**
 * Fixed 64-byte binary record for market events, main thread → worker.
 *
 * ```
 *  word  bytes   field
 *   0    0..3    u32 kind (1 trade, 2 quote) | side << 8 (trade: 1 buy, 2 sell, 0 unknown)
 *        4..7    u32 symbol id (interned)
 *   1    8..15   f64 seq          venue sequence number
 *   2   16..23   f64 ts           exchange time, µs since epoch
 *   3   24..31   f64 recv         kernel receive time, µs (monotonic-derived)
 *   4   32..39   f64 px   | bid
 *   5   40..47   f64 qty  | bidQty
 *   6   48..55   f64 ─    | ask
 *   7   56..63   f64 ─    | askQty
 * ```
 * Encoding and decoding go through a caller-owned mutable `MarketEvent`, so
 * neither allocates.
 */
export const MARKET_RECORD_BYTES = 64;

export const MarketKind = { TRADE: 1, QUOTE: 2 } as const;
export type MarketKindValue = (typeof MarketKind)[keyof typeof MarketKind];

export const Side = { NONE: 0, BUY: 1, SELL: 2 } as const;
export type SideValue = (typeof Side)[keyof typeof Side];

/** Reusable decoded view of one market record. */
export interface MarketEvent {
  kind: MarketKindValue;
  symId: number;
  seq: number;
  ts: number;
  recv: number;
  /** Trade price (trades) */
  px: number;
  qty: number;
  side: SideValue;
  bid: number;
  bidQty: number;
  ask: number;
  askQty: number;
  /**
   * Not in the record (set by the source): the JetStream stream sequence of
   * the message (0: not from a stream), and the snapshot unit it belongs to
   * (from MarketIngest.restore; 0: none). Warm restart uses both
   * (docs/adr/0006-warm-restart.md).
   */
  streamSeq: number;
  unit: number;
}

export function newMarketEvent(): MarketEvent {
  return {
    kind: MarketKind.TRADE,
    symId: 0,
    seq: 0,
    ts: 0,
    recv: 0,
    px: 0,
    qty: 0,
    side: Side.NONE,
    bid: 0,
    bidQty: 0,
    ask: 0,
    askQty: 0,
    streamSeq: 0,
    unit: 0,
  };
}

/** Write `e` into the slot at word offset `at`. */
export function encodeMarket(
  e: MarketEvent,
  f64: Float64Array,
  u32: Uint32Array,
  at: number,
): void {
  const w = at * 2;
  u32[w] = e.kind | (e.kind === MarketKind.TRADE ? e.side << 8 : 0);
  u32[w + 1] = e.symId;
  f64[at + 1] = e.seq;
  f64[at + 2] = e.ts;
  f64[at + 3] = e.recv;
  if (e.kind === MarketKind.TRADE) {
    f64[at + 4] = e.px;
    f64[at + 5] = e.qty;
    f64[at + 6] = 0;
    f64[at + 7] = 0;
  } else {
    f64[at + 4] = e.bid;
    f64[at + 5] = e.bidQty;
    f64[at + 6] = e.ask;
    f64[at + 7] = e.askQty;
  }
}

/** Read the slot at word offset `at` into `e` (fields of the other kind are zeroed). */
export function decodeMarket(
  f64: Float64Array,
  u32: Uint32Array,
  at: number,
  e: MarketEvent,
): MarketEvent {
  const w = at * 2;
  const head = u32[w]!;
  const kind = (head & 0xff) as MarketKindValue;
  e.kind = kind;
  e.symId = u32[w + 1]!;
  e.seq = f64[at + 1]!;
  e.ts = f64[at + 2]!;
  e.recv = f64[at + 3]!;
  if (kind === MarketKind.TRADE) {
    e.side = ((head >>> 8) & 0xff) as SideValue;
    e.px = f64[at + 4]!;
    e.qty = f64[at + 5]!;
    e.bid = e.bidQty = e.ask = e.askQty = 0;
  } else {
    e.side = Side.NONE;
    e.px = e.qty = 0;
    e.bid = f64[at + 4]!;
    e.bidQty = f64[at + 5]!;
    e.ask = f64[at + 6]!;
    e.askQty = f64[at + 7]!;
  }
  return e;
}
