/**
 * History for replay, in columns: a `TickChunk` holds up to `capacity` ticks
 * (trades and quotes) in replay order, one typed array per field, over
 * SharedArrayBuffers so the replay workers read the same memory the source
 * wrote (no copy, no message per tick). A `TickSource` fills a caller-owned
 * chunk again and again until the history ends: memory stays flat however
 * long the data set.
 *
 * The fields are those of `MarketEvent` (kernel/market-record.ts): `kind`
 * (MarketKind: 1 trade, 2 quote), `side` (trades: Side), `symId` (an index
 * into the source's `symbols`, assigned in order of first appearance),
 * `seq` (venue sequence), `ts` (exchange time, µs since epoch), `recv` (the
 * time the kernel received it, µs; the quality checks use it, so a replay of
 * stored ticks gives them the recorded value), `px`/`qty` (trades) and
 * `bid`/`bidQty`/`ask`/`askQty` (quotes).
 */
import { invalidArgument } from '../kernel/errors.js';
import { MarketKind, type MarketEvent } from '../kernel/market-record.js';

export interface TickChunk {
  readonly capacity: number;
  /** Ticks filled, 0 ≤ length ≤ capacity. */
  length: number;
  readonly kind: Uint8Array;
  readonly side: Uint8Array;
  readonly symId: Uint32Array;
  readonly seq: Float64Array;
  readonly ts: Float64Array;
  readonly recv: Float64Array;
  readonly px: Float64Array;
  readonly qty: Float64Array;
  readonly bid: Float64Array;
  readonly bidQty: Float64Array;
  readonly ask: Float64Array;
  readonly askQty: Float64Array;
}

/** The shared memory of a chunk, to hand to a worker (`chunkFromShared` there). */
export interface SharedTickChunk {
  capacity: number;
  u8: SharedArrayBuffer;
  u32: SharedArrayBuffer;
  f64: SharedArrayBuffer;
}

const F64_FIELDS = ['seq', 'ts', 'recv', 'px', 'qty', 'bid', 'bidQty', 'ask', 'askQty'] as const;

export function newSharedTickChunk(capacity: number): SharedTickChunk {
  if (!Number.isInteger(capacity) || capacity < 1) {
    invalidArgument('capacity', capacity, 'an integer ≥ 1');
  }
  return {
    capacity,
    u8: new SharedArrayBuffer(capacity * 2),
    u32: new SharedArrayBuffer(capacity * 4),
    f64: new SharedArrayBuffer(capacity * 8 * F64_FIELDS.length),
  };
}

/** Views over shared chunk memory (the same memory in every thread that calls this). */
export function chunkFromShared(s: SharedTickChunk): TickChunk {
  const n = s.capacity;
  const f = (i: number): Float64Array => new Float64Array(s.f64, i * n * 8, n);
  return {
    capacity: n,
    length: 0,
    kind: new Uint8Array(s.u8, 0, n),
    side: new Uint8Array(s.u8, n, n),
    symId: new Uint32Array(s.u32, 0, n),
    seq: f(0),
    ts: f(1),
    recv: f(2),
    px: f(3),
    qty: f(4),
    bid: f(5),
    bidQty: f(6),
    ask: f(7),
    askQty: f(8),
  };
}

/** A chunk in this thread only (tests, single-threaded sources). */
export function newTickChunk(capacity: number): TickChunk {
  return chunkFromShared(newSharedTickChunk(capacity));
}

/** Row `i` of `c` into the reusable event `e` (no allocation). */
export function readTick(c: TickChunk, i: number, e: MarketEvent): void {
  const kind = c.kind[i]!;
  e.kind = kind === MarketKind.QUOTE ? MarketKind.QUOTE : MarketKind.TRADE;
  e.symId = c.symId[i]!;
  e.seq = c.seq[i]!;
  e.ts = c.ts[i]!;
  e.recv = c.recv[i]!;
  if (e.kind === MarketKind.TRADE) {
    e.px = c.px[i]!;
    e.qty = c.qty[i]!;
    const side = c.side[i]!;
    e.side = side === 1 || side === 2 ? side : 0;
  } else {
    e.bid = c.bid[i]!;
    e.bidQty = c.bidQty[i]!;
    e.ask = c.ask[i]!;
    e.askQty = c.askQty[i]!;
  }
  e.streamSeq = 0;
  e.unit = 0;
}

/** Append the event `e` (its `symId` already set) to `c`; false when full. */
export function appendTick(c: TickChunk, e: MarketEvent): boolean {
  const i = c.length;
  if (i >= c.capacity) return false;
  c.kind[i] = e.kind;
  c.symId[i] = e.symId;
  c.seq[i] = e.seq;
  c.ts[i] = e.ts;
  c.recv[i] = e.recv;
  if (e.kind === MarketKind.TRADE) {
    c.side[i] = e.side;
    c.px[i] = e.px;
    c.qty[i] = e.qty;
    c.bid[i] = 0;
    c.bidQty[i] = 0;
    c.ask[i] = 0;
    c.askQty[i] = 0;
  } else {
    c.side[i] = 0;
    c.px[i] = 0;
    c.qty[i] = 0;
    c.bid[i] = e.bid;
    c.bidQty[i] = e.bidQty;
    c.ask[i] = e.ask;
    c.askQty[i] = e.askQty;
  }
  c.length = i + 1;
  return true;
}

/**
 * Stored history, read in order in chunks. `next` fills `into` from index 0
 * (sets `into.length`) and resolves to the number of ticks written: 0 only at
 * the end. Rows a source cannot read (malformed) are counted in `rejected`,
 * never replayed and never silently dropped.
 */
export interface TickSource {
  /** What it reads, for logs and reports (no secrets). */
  readonly description: string;
  /** Symbol names by `symId`; grows as chunks are read. */
  readonly symbols: readonly string[];
  /** Ticks in all when the source knows it up front (progress bars), else undefined. */
  readonly total: number | undefined;
  /** Ticks delivered so far, and rows refused (malformed). */
  readonly read: number;
  readonly rejected: number;
  next(into: TickChunk): Promise<number>;
  close(): Promise<void>;
}

/** Symbol interning shared by the sources: ids in order of first appearance. */
export class SymbolIds {
  readonly names: string[] = [];
  private readonly ids = new Map<string, number>();
  id(sym: string): number {
    let id = this.ids.get(sym);
    if (id === undefined) {
      id = this.names.length;
      this.ids.set(sym, id);
      this.names.push(sym);
    }
    return id;
  }
}
