import type { Float64, RecordBatch } from 'apache-arrow';
import { recordBatchToIPC, ringToRecordBatch } from './arrow-ring.js';
import { invalidArgument } from '../kernel/errors.js';

/** Columns of the trade window, in schema order. */
export const TRADE_COLUMNS = ['ts', 'seq', 'px', 'qty', 'side'] as const;
/** Columns of the quote window, in schema order. */
export const QUOTE_COLUMNS = ['ts', 'bid', 'bidQty', 'ask', 'askQty'] as const;

export type TradeColumn = (typeof TRADE_COLUMNS)[number];
export type QuoteColumn = (typeof QUOTE_COLUMNS)[number];

/**
 * RollingWindow: the last `capacity` rows of a few Float64 columns, each
 * column its own ring (columnar, so a column is one contiguous typed array
 * that arrow, a model or a SIMD-minded loop can read directly).
 *
 * ```
 *  capacity 8, 11 rows pushed (total = 11, head = 11 & 7 = 3)
 *
 *  slot      0    1    2    3    4    5    6    7
 *  px     [ r8 | r9 | r10| r3 | r4 | r5 | r6 | r7 ]
 *                        ▲ head: next write, and the oldest row once wrapped
 *  time order = slots 3..7 then 0..2  (two pieces → one copy for arrow)
 *  before the first wrap time order = slots 0..total-1 (one piece → zero-copy)
 * ```
 * Writing a row is `const s = w.slot(); w.columns.px[s] = …`: no allocation.
 * Capacity is a power of two so the wrap is a bitmask.
 */
export class RollingWindow<K extends string> {
  readonly capacity: number;
  /** The raw ring of each column (index with `slot()` / `index()`). */
  readonly columns: Readonly<Record<K, Float64Array>>;
  /** Rows ever pushed (may exceed capacity). */
  total = 0;
  private readonly names: readonly K[];
  private readonly mask: number;

  constructor(names: readonly K[], capacity = 1024) {
    if (!Number.isInteger(capacity) || capacity < 2 || capacity > 1 << 24) {
      invalidArgument('capacity', capacity, 'a power of two in [2, 2^24]');
    }
    if ((capacity & (capacity - 1)) !== 0) {
      invalidArgument('capacity', capacity, 'a power of two in [2, 2^24]');
    }
    if (names.length === 0 || new Set(names).size !== names.length) {
      invalidArgument('names', names, 'one or more distinct column names');
    }
    this.capacity = capacity;
    this.mask = capacity - 1;
    this.names = names;
    // One backing store for every column: a new symbol's actor was ~10
    // ArrayBuffer allocations (each a calloc and external-memory accounting
    // that can start a GC), ~90 µs per new symbol in the worker.
    const cols = {} as Record<K, Float64Array>;
    const buf = new ArrayBuffer(capacity * 8 * names.length);
    names.forEach((n, i) => (cols[n] = new Float64Array(buf, i * capacity * 8, capacity)));
    this.columns = cols;
  }

  /** Rows held (≤ capacity). */
  get length(): number {
    return this.total < this.capacity ? this.total : this.capacity;
  }

  /** Claim the slot of a new row (overwriting the oldest once full) and return it. */
  slot(): number {
    const s = this.total & this.mask;
    this.total++;
    return s;
  }

  /** Slot of the i-th row in time order (0 = oldest held, length-1 = newest). */
  index(i: number): number {
    return (this.total - this.length + i) & this.mask;
  }

  /** Value of column `name` in the i-th row in time order. */
  get(name: K, i: number): number {
    return this.columns[name][this.index(i)]!;
  }

  /** The newest value of column `name` (NaN when empty). */
  last(name: K): number {
    return this.total === 0 ? NaN : this.columns[name][(this.total - 1) & this.mask]!;
  }

  /** Forget every row (keeps the buffers). */
  clear(): void {
    this.total = 0;
  }

  /**
   * The held rows in time order as an arrow RecordBatch of Float64 columns
   * (`ringToRecordBatch`). Before the ring wraps each column is a `subarray`
   * of the ring (zero-copy: the batch sees later writes, so use it before
   * pushing more); after the wrap each column is copied once into time order.
   * Not for the hot path.
   */
  toRecordBatch(): RecordBatch<Record<K, Float64>> {
    return ringToRecordBatch(this.names, this.columns, this.total);
  }

  /** `toRecordBatch()` as Arrow IPC stream bytes (`tableFromIPC` reads them back). */
  toIPC(): Uint8Array {
    return recordBatchToIPC(this.toRecordBatch());
  }
}
