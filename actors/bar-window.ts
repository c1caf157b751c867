import type { Float64, RecordBatch } from 'apache-arrow';
import { recordBatchToIPC, ringToRecordBatch } from './arrow-ring.js';
import { RollingWindow } from './rolling-window.js';
import { invalidArgument } from '../kernel/errors.js';

/** One bar series: its name (`1s`), its interval in µs and how many closed bars it keeps. */
export interface BarSpec {
  name: string;
  intervalUs: number;
  /** Closed bars kept, a power of two in [2, 2^16]. */
  capacity: number;
}

/** Bars kept when the configuration names none: 64 one-second and 64 one-minute bars. */
export const DEFAULT_BAR_SPECS: readonly BarSpec[] = Object.freeze([
  Object.freeze({ name: '1s', intervalUs: 1_000_000, capacity: 64 }),
  Object.freeze({ name: '1m', intervalUs: 60_000_000, capacity: 64 }),
]);

/** Columns of a bar, in schema order. */
export const BAR_COLUMNS = [
  'start',
  'open',
  'high',
  'low',
  'close',
  'volume',
  'vwap',
  'trades',
] as const;
export type BarColumn = (typeof BAR_COLUMNS)[number];

const NAME_RE = /^[A-Za-z0-9_]+$/;
const MIN_INTERVAL_US = 1000;
const MAX_CAPACITY = 1 << 16;
const DEFAULT_CAPACITY = 64;
const SPEC_KEYS = ['name', 'intervalUs', 'capacity'];

/** Validate one spec object; errors name `${path}.key`. */
function checkSpec(raw: unknown, path: string): BarSpec {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    invalidArgument(path, raw, 'an object { name, intervalUs, capacity }');
  }
  const o = raw as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!SPEC_KEYS.includes(key))
      invalidArgument(`${path}.${key}`, o[key], 'name, intervalUs or capacity');
  }
  const { name, intervalUs } = o;
  const capacity = o.capacity === undefined ? DEFAULT_CAPACITY : o.capacity;
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    invalidArgument(`${path}.name`, name, 'a non-empty string of letters, digits and _');
  }
  if (!Number.isSafeInteger(intervalUs) || (intervalUs as number) < MIN_INTERVAL_US) {
    invalidArgument(`${path}.intervalUs`, intervalUs, `an integer ≥ ${MIN_INTERVAL_US} (µs)`);
  }
  if (
    !Number.isInteger(capacity) ||
    (capacity as number) < 2 ||
    (capacity as number) > MAX_CAPACITY ||
    ((capacity as number) & ((capacity as number) - 1)) !== 0
  ) {
    invalidArgument(`${path}.capacity`, capacity, 'a power of two in [2, 2^16]');
  }
  return { name, intervalUs: intervalUs as number, capacity: capacity as number };
}

/**
 * The `bars` configuration key → validated specs. `undefined`/`null` gives a
 * copy of DEFAULT_BAR_SPECS; `[]` means no bars. Each entry is
 * `{ name, intervalUs, capacity? }` (capacity defaults to 64); names are
 * unique and match /^[A-Za-z0-9_]+$/, intervalUs is an integer ≥ 1000,
 * capacity a power of two in [2, 2^16]. Throws QLN_INVALID_ARGUMENT naming
 * the first bad key, e.g. `bars[1].intervalUs`.
 */
export function resolveBarSpecs(raw: unknown): BarSpec[] {
  if (raw === undefined || raw === null) return DEFAULT_BAR_SPECS.map((s) => ({ ...s }));
  if (!Array.isArray(raw)) {
    invalidArgument('bars', raw, 'an array of { name, intervalUs, capacity }');
  }
  const seen = new Set<string>();
  return raw.map((entry: unknown, i) => {
    const spec = checkSpec(entry, `bars[${i}]`);
    if (seen.has(spec.name)) {
      invalidArgument(`bars[${i}].name`, spec.name, 'a name no earlier bar uses');
    }
    seen.add(spec.name);
    return spec;
  });
}

/**
 * BarWindow: time bars (OHLCV, vwap, trade count) of one symbol for one
 * interval. The bar being built lives in a few scalar fields; a bar that
 * closes is written as one row of a RollingWindow of the BAR_COLUMNS (one
 * ArrayBuffer, Float64 column rings). No allocation per trade.
 *
 * ```
 *  interval 1000 µs, capacity 4; trades at ts 100, 900, 1000, 1500, 4200
 *
 *  bar start = floor(ts / interval) * interval      (aligned to the epoch)
 *
 *  time  0        1000      2000      3000      4000      5000
 *        ├─────────┼─────────┼─────────┼─────────┼─────────┤
 *   ts   100  900  1000 1500                     4200
 *        └─bar 0──┘└─bar 1──┘   (no trades:        └─open bar (4000)
 *                                no bar 2000/3000)
 *
 *  onTrade(1000) → true: bar 0 closes (ts = start + interval is the NEXT bar)
 *  onTrade(4200) → true: bar 1 closes; bar 4000 opens; nothing for 2000, 3000
 *
 *  closed ring   slot 0        slot 1        slot 2  slot 3
 *   start     [  0          | 1000        |       |       ]   total = 2
 *   open/high/low/close/volume/vwap/trades … one row per closed bar
 * ```
 * - **Empty intervals make no bar**: bars are only the intervals that had at
 *   least one trade, so consecutive rows may be more than one interval apart
 *   (read `start`). A trade far in the future closes the open bar and opens
 *   one new bar: no flood of empty bars.
 * - **Late trades are ignored**: a trade with ts before the open bar's start
 *   (or a NaN ts) is not folded (its bar is closed, or would be one that was
 *   skipped), `onTrade` returns false and `lateTrades` counts it. Callers drop
 *   out-of-order ticks anyway. A trade older than the previous one but inside
 *   the open bar is folded into it (close = the last trade folded).
 * - vwap = Σ px·qty / Σ qty of the bar (NaN when its volume is 0);
 *   trades = how many trades were folded.
 */
export class BarWindow {
  readonly spec: Readonly<BarSpec>;
  /** Closed bars: the raw ring of each column (index with `index(i)`). */
  readonly columns: Readonly<Record<BarColumn, Float64Array>>;
  /** Trades ignored because their ts lay before the open bar's start (or was NaN). */
  lateTrades = 0;
  private readonly ring: RollingWindow<BarColumn>;
  private readonly intervalUs: number;
  // The open bar. No open bar: barStart = +∞, barEnd = −∞, so any ts opens one.
  private barStart = Infinity;
  private barEnd = -Infinity;
  private barOpen = NaN;
  private barHigh = NaN;
  private barLow = NaN;
  private barClose = NaN;
  private barVolume = 0;
  private barPv = 0;
  private barTrades = 0;

  constructor(spec: BarSpec) {
    this.spec = Object.freeze(checkSpec(spec, 'spec'));
    this.intervalUs = spec.intervalUs;
    this.ring = new RollingWindow(BAR_COLUMNS, spec.capacity);
    this.columns = this.ring.columns;
  }

  /** Closed bars ever (may exceed capacity). */
  get total(): number {
    return this.ring.total;
  }

  /** Closed bars held (≤ capacity). */
  get length(): number {
    return this.ring.length;
  }

  /**
   * Fold one trade (ts exchange µs, non-decreasing). Returns true when ts
   * lies at or past the open bar's end: the open bar was closed (readable via
   * `last(col)`) and a new bar opened with this trade. False when the trade
   * was folded into the open bar, opened the first bar, or was late (ignored).
   */
  onTrade(ts: number, px: number, qty: number): boolean {
    if (ts < this.barEnd) {
      if (ts >= this.barStart) {
        if (px > this.barHigh) this.barHigh = px;
        if (px < this.barLow) this.barLow = px;
        this.barClose = px;
        this.barVolume += qty;
        this.barPv += px * qty;
        this.barTrades++;
        return false;
      }
      this.lateTrades++;
      return false;
    }
    if (!(ts >= this.barEnd)) {
      this.lateTrades++; // NaN
      return false;
    }
    const closed = this.barTrades > 0;
    if (closed) this.closeBar();
    // floor(ts / interval) * interval, exact for integer ts (% is exact).
    let r = ts % this.intervalUs;
    if (r < 0) r += this.intervalUs;
    this.barStart = ts - r;
    this.barEnd = this.barStart + this.intervalUs;
    this.barOpen = this.barHigh = this.barLow = this.barClose = px;
    this.barVolume = qty;
    this.barPv = px * qty;
    this.barTrades = 1;
    return closed;
  }

  private closeBar(): void {
    const s = this.ring.slot();
    const c = this.columns;
    c.start[s] = this.barStart;
    c.open[s] = this.barOpen;
    c.high[s] = this.barHigh;
    c.low[s] = this.barLow;
    c.close[s] = this.barClose;
    c.volume[s] = this.barVolume;
    c.vwap[s] = this.barPv / this.barVolume;
    c.trades[s] = this.barTrades;
  }

  /** Slot of the i-th closed bar in time order (0 = oldest held, length-1 = newest). */
  index(i: number): number {
    return this.ring.index(i);
  }

  /** Column `col` of the i-th closed bar in time order. */
  get(col: BarColumn, i: number): number {
    return this.ring.get(col, i);
  }

  /** Column `col` of the newest closed bar, the one that just closed when onTrade returned true (NaN when none). */
  last(col: BarColumn): number {
    return this.ring.last(col);
  }

  /** True when a bar is being built (a trade arrived since the start or the last clear()). */
  get hasOpenBar(): boolean {
    return this.barTrades > 0;
  }

  /** Column `col` of the open bar so far (NaN for every column but trades/volume = 0 when none). */
  current(col: BarColumn): number {
    switch (col) {
      case 'start':
        return this.start;
      case 'open':
        return this.open;
      case 'high':
        return this.high;
      case 'low':
        return this.low;
      case 'close':
        return this.close;
      case 'volume':
        return this.volume;
      case 'vwap':
        return this.vwap;
      case 'trades':
        return this.trades;
    }
  }

  /** Open bar: its start (µs, aligned), NaN when none. */
  get start(): number {
    return this.barTrades > 0 ? this.barStart : NaN;
  }
  /** Open bar: first price so far (NaN when none). */
  get open(): number {
    return this.barOpen;
  }
  /** Open bar: highest price so far (NaN when none). */
  get high(): number {
    return this.barHigh;
  }
  /** Open bar: lowest price so far (NaN when none). */
  get low(): number {
    return this.barLow;
  }
  /** Open bar: last price so far (NaN when none). */
  get close(): number {
    return this.barClose;
  }
  /** Open bar: Σ qty so far (0 when none). */
  get volume(): number {
    return this.barVolume;
  }
  /** Open bar: Σ px·qty / Σ qty so far (NaN when none or volume 0). */
  get vwap(): number {
    return this.barPv / this.barVolume;
  }
  /** Open bar: trades folded so far (0 when none). */
  get trades(): number {
    return this.barTrades;
  }

  /**
   * Closed bars in time order as an arrow RecordBatch of Float64 columns
   * (BAR_COLUMNS), plus the open bar as the last row when `includeOpen` and
   * there is one. Zero-copy until the ring wraps and without the open bar
   * (see ringToRecordBatch). Not for the hot path.
   */
  toRecordBatch(includeOpen = false): RecordBatch<Record<BarColumn, Float64>> {
    const extra =
      includeOpen && this.barTrades > 0
        ? {
            start: this.barStart,
            open: this.barOpen,
            high: this.barHigh,
            low: this.barLow,
            close: this.barClose,
            volume: this.barVolume,
            vwap: this.vwap,
            trades: this.barTrades,
          }
        : undefined;
    return ringToRecordBatch(BAR_COLUMNS, this.columns, this.ring.total, extra);
  }

  /** `toRecordBatch(includeOpen)` as Arrow IPC stream bytes (`tableFromIPC` reads them back). */
  toIPC(includeOpen = false): Uint8Array {
    return recordBatchToIPC(this.toRecordBatch(includeOpen));
  }

  /** New session: forget the closed bars, the open bar and lateTrades (keeps the buffers). */
  clear(): void {
    this.ring.clear();
    this.lateTrades = 0;
    this.barStart = Infinity;
    this.barEnd = -Infinity;
    this.barOpen = this.barHigh = this.barLow = this.barClose = NaN;
    this.barVolume = 0;
    this.barPv = 0;
    this.barTrades = 0;
  }
}
