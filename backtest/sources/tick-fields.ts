/**
 * The columns of stored ticks as files carry them (CSV, Arrow) and the checks
 * every row-based source applies before a row enters a chunk. Names are those
 * of the `ticks` table (adapters/clickhouse/schema.ts), so
 * `qilin sql "SELECT * FROM ticks FORMAT CSVWithNames"` replays as it is;
 * `kind` is accepted for `type`.
 *
 * A source fills one reused {@link RawTick} per row (NaN for a missing
 * number), {@link checkRawTick} names what is wrong with it, and
 * {@link appendRawTick} writes it into the chunk: no object per row.
 */
import { isToken } from '../../adapters/nats/tick-json-decoder.js';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';
import { MarketKind, Side } from '../../kernel/market-record.js';
import type { TickChunk } from '../tick-chunk.js';

/** Every column a tick file may have: the `ticks` table's, in its order. */
export const TICK_FILE_COLUMNS = [
  'type',
  'sym',
  'venue',
  'seq',
  'ts_us',
  'recv_us',
  'ts',
  'date',
  'px',
  'qty',
  'side',
  'bid',
  'bid_qty',
  'ask',
  'ask_qty',
] as const;
export type TickFileColumn = (typeof TICK_FILE_COLUMNS)[number];

/** Columns a file must have (prices are checked per row: a trades-only file needs no bid). */
export const REQUIRED_TICK_COLUMNS: readonly TickFileColumn[] = ['type', 'sym', 'seq', 'ts_us'];

/** Position of each known column in a file's header (-1: absent). */
export type TickColumnIndex = Record<TickFileColumn, number>;

/** QLN_REPLAY_SOURCE_FAILED naming the source and what is wrong with it. */
export function sourceFailed(
  source: string,
  what: string,
  cause?: unknown,
  details: Record<string, unknown> = {},
): QilinError {
  const why =
    cause === undefined
      ? ''
      : `: ${cause instanceof Error ? cause.message : (JSON.stringify(cause) ?? 'unknown')}`;
  return new QilinError(ErrorCodes.REPLAY_SOURCE_FAILED, `${source}: ${what}${why}`, {
    cause,
    details: { ...details, source },
  });
}

/**
 * Header names → column positions. Throws QLN_REPLAY_SOURCE_FAILED for an
 * unknown or repeated column, or a missing required one, naming it and the
 * allowed names.
 */
export function resolveTickColumns(names: readonly string[], source: string): TickColumnIndex {
  const index = Object.fromEntries(TICK_FILE_COLUMNS.map((c) => [c, -1])) as TickColumnIndex;
  names.forEach((raw, i) => {
    const name = raw.trim() === 'kind' ? 'type' : raw.trim();
    if (!(TICK_FILE_COLUMNS as readonly string[]).includes(name)) {
      throw sourceFailed(
        source,
        `unknown column ${JSON.stringify(raw)} (allowed: kind or ${TICK_FILE_COLUMNS.join(', ')})`,
        undefined,
        { column: raw },
      );
    }
    const col = name as TickFileColumn;
    if (index[col] !== -1) {
      throw sourceFailed(source, `column ${JSON.stringify(raw)} appears twice`, undefined, {
        column: raw,
      });
    }
    index[col] = i;
  });
  const missing = REQUIRED_TICK_COLUMNS.filter((c) => index[c] === -1);
  if (missing.length > 0) {
    throw sourceFailed(
      source,
      `header lacks required column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (got: ${names.join(', ')}; required: type or kind, sym, seq, ts_us)`,
      undefined,
      { missing },
    );
  }
  return index;
}

/** One row as read, before checks. Numbers are NaN when the column is absent or empty. */
export interface RawTick {
  /** MarketKind, or 0 when the type is not trade/quote. */
  kind: number;
  sym: string;
  seq: number;
  ts: number;
  /** NaN: not given, = ts. */
  recv: number;
  px: number;
  qty: number;
  /** Side (0 none, 1 buy, 2 sell), or -1 when the value is not a side. */
  side: number;
  bid: number;
  bidQty: number;
  ask: number;
  askQty: number;
}

export function newRawTick(): RawTick {
  return {
    kind: 0,
    sym: '',
    seq: NaN,
    ts: NaN,
    recv: NaN,
    px: NaN,
    qty: NaN,
    side: 0,
    bid: NaN,
    bidQty: NaN,
    ask: NaN,
    askQty: NaN,
  };
}

/** `trade` / `quote` (the table), or 1 / 2 (MarketKind) → MarketKind; 0 otherwise. */
export function parseKind(v: unknown): number {
  if (v === 'trade' || v === MarketKind.TRADE || v === '1') return MarketKind.TRADE;
  if (v === 'quote' || v === MarketKind.QUOTE || v === '2') return MarketKind.QUOTE;
  return 0;
}

/**
 * The table's side (1 buy, -1 sell, 0 unknown) or `buy` / `sell` / empty →
 * Side; -1 when it is none of them.
 */
export function parseSide(v: unknown): number {
  if (v === 1 || v === '1' || v === 'buy') return Side.BUY;
  if (v === -1 || v === '-1' || v === 'sell') return Side.SELL;
  if (v === 0 || v === '0' || v === '' || v === undefined || v === null) return Side.NONE;
  return -1;
}

/** A number from a file's cell: number, bigint or numeric string; NaN for anything else or empty. */
export function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') return v === '' ? NaN : Number(v);
  return NaN;
}

const isTime = (x: number): boolean => Number.isSafeInteger(x) && x >= 0;

/**
 * What is wrong with `r`, or '' when it can be replayed: the checks of the
 * kernel's tick decoder (a token symbol; integer seq and times; trade price
 * and size > 0; quote prices > 0 and sizes ≥ 0) on the stored form.
 */
export function checkRawTick(r: RawTick): string {
  if (r.kind === 0) return 'type is not trade or quote';
  if (!isToken(r.sym)) return `sym ${JSON.stringify(r.sym)} is not a token [A-Za-z0-9_-]+`;
  if (!isTime(r.seq)) return `seq ${r.seq} is not an integer ≥ 0`;
  if (!isTime(r.ts)) return `ts_us ${r.ts} is not an integer ≥ 0`;
  if (!Number.isNaN(r.recv) && !isTime(r.recv)) return `recv_us ${r.recv} is not an integer ≥ 0`;
  if (r.kind === MarketKind.TRADE) {
    if (!(r.px > 0 && Number.isFinite(r.px))) return `px ${r.px} is not a finite price > 0`;
    if (!(r.qty > 0 && Number.isFinite(r.qty))) return `qty ${r.qty} is not a finite size > 0`;
    if (r.side < 0) return 'side is not 1, -1, 0, buy or sell';
  } else {
    if (!(r.bid > 0 && Number.isFinite(r.bid))) return `bid ${r.bid} is not a finite price > 0`;
    if (!(r.ask > 0 && Number.isFinite(r.ask))) return `ask ${r.ask} is not a finite price > 0`;
    if (!(r.bidQty >= 0 && Number.isFinite(r.bidQty))) return `bid_qty ${r.bidQty} is not ≥ 0`;
    if (!(r.askQty >= 0 && Number.isFinite(r.askQty))) return `ask_qty ${r.askQty} is not ≥ 0`;
  }
  return '';
}

/** Append a checked `r` as tick `symId` at `into.length` (the caller checked there is room). */
export function appendRawTick(into: TickChunk, r: RawTick, symId: number): void {
  const i = into.length;
  into.kind[i] = r.kind;
  into.symId[i] = symId;
  into.seq[i] = r.seq;
  into.ts[i] = r.ts;
  into.recv[i] = Number.isNaN(r.recv) ? r.ts : r.recv;
  if (r.kind === MarketKind.TRADE) {
    into.side[i] = r.side;
    into.px[i] = r.px;
    into.qty[i] = r.qty;
    into.bid[i] = 0;
    into.bidQty[i] = 0;
    into.ask[i] = 0;
    into.askQty[i] = 0;
  } else {
    into.side[i] = 0;
    into.px[i] = 0;
    into.qty[i] = 0;
    into.bid[i] = r.bid;
    into.bidQty[i] = r.bidQty;
    into.ask[i] = r.ask;
    into.askQty[i] = r.askQty;
  }
  into.length = i + 1;
}

/** A refused row: where (line or row number, from 1) and why. */
export interface RejectedRow {
  at: number;
  reason: string;
}

/** How many refused rows a source keeps for its error report (the rest are only counted). */
export const KEPT_REJECTIONS = 10;
