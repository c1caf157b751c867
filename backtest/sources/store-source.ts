/**
 * Ticks from the store's `ticks` table (ClickHouse server or the embedded
 * chdb, through the project's `EventStore.query`), in arrival order: the
 * order the kernel saw them, so a replay of a recorded live session gives
 * each symbol's ticks as it had them.
 *
 * ```
 *  ORDER BY recv_us, sym, seq, type, venue, ts_us      (a total order: ticks
 *                                                       are unique by sym,
 *                                                       ts_us, venue, seq, type)
 *  page k+1:  WHERE <filters> AND (recv_us > R OR (recv_us = R AND (sym > S OR
 *             (sym = S AND (seq > Q OR … ))))) … LIMIT pageRows
 *             with (R, S, Q, …) the last row of page k
 * ```
 * Keyset pagination, spelled out with OR/AND because ClickHouse 18.16 (the
 * Debian server CI uses) has no tuple comparison: memory is one page
 * whatever the table size, and no page depends on an OFFSET. `FINAL`
 * (default) reads a tick the store holds twice (a redelivery stored again,
 * docs/adr/0005) once, as the kernel processed it once. `total` is a count()
 * with the same filters, taken by `open()`.
 *
 * Filters: `since` ≤ ts_us < `until` (µs of exchange time), `symbols`.
 * Rows the checks refuse (tick-fields.ts) are counted in `rejected`.
 */
import type { EventStore } from '../../kernel/event-store.js';
import { invalidArgument } from '../../kernel/errors.js';
import { isToken } from '../../adapters/nats/tick-json-decoder.js';
import { SymbolIds, type TickChunk, type TickSource } from '../tick-chunk.js';
import {
  KEPT_REJECTIONS,
  appendRawTick,
  checkRawTick,
  newRawTick,
  parseKind,
  parseSide,
  sourceFailed,
  toNumber,
  type RejectedRow,
} from './tick-fields.js';

/** Options of {@link StoreTickSource}. */
export interface StoreSourceOptions {
  /** An EventStore (ClickHouseStore, ChdbStore), open or not, or anything that queries one (the kernel's store client). */
  store: Pick<EventStore, 'query' | 'close'>;
  /** Table, qualified or not (default `ticks`: the store's database). */
  table?: string;
  /** First exchange time, µs, inclusive. */
  since?: number;
  /** Last exchange time, µs, exclusive. */
  until?: number;
  /** Only these symbols. */
  symbols?: readonly string[];
  /** Rows per query (default 50 000). */
  pageRows?: number;
  /** Read under FINAL, a tick stored twice once (default true). */
  final?: boolean;
  /** Close the store with the source (default false). */
  ownsStore?: boolean;
  /** What the store is, for `description` (e.g. `clickhouse qilin.ticks`). */
  label?: string;
}

const ORDER = ['recv_us', 'sym', 'seq', 'type', 'venue', 'ts_us'] as const;
const COLUMNS = 'type, sym, venue, seq, ts_us, recv_us, px, qty, side, bid, bid_qty, ask, ask_qty';

/** A ClickHouse string literal. */
function lit(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** `(a > x) OR (a = x AND (<rest>))` down the keyset columns. */
export function keysetAfter(last: Record<string, unknown>): string {
  const val = (c: string): string => {
    const v = last[c];
    return typeof v === 'string' ? lit(v) : String(Number(v));
  };
  let cond = `${ORDER.at(-1)!} > ${val(ORDER.at(-1)!)}`;
  for (let k = ORDER.length - 2; k >= 0; k--) {
    const c = ORDER[k]!;
    cond = `${c} > ${val(c)} OR (${c} = ${val(c)} AND (${cond}))`;
  }
  return `(${cond})`;
}

export class StoreTickSource implements TickSource {
  readonly description: string;
  total: number | undefined = undefined;
  read = 0;
  rejected = 0;
  /** The first refused rows: position in the read order (from 1) and reason. */
  readonly rejections: RejectedRow[] = [];
  private readonly ids = new SymbolIds();
  private readonly o: StoreSourceOptions;
  private readonly from: string;
  private readonly where: string[] = [];
  private readonly pageRows: number;
  private page: Array<Record<string, unknown>> = [];
  private at = 0;
  private rowNo = 0;
  private last: Record<string, unknown> | undefined;
  private done = false;
  private opened = false;
  private closed = false;
  private readonly raw = newRawTick();

  constructor(o: StoreSourceOptions) {
    const table = o.table ?? 'ticks';
    if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/.test(table)) {
      invalidArgument('table', table, 'a table name, [db.]name');
    }
    for (const k of ['since', 'until'] as const) {
      const v = o[k];
      if (v !== undefined && !Number.isSafeInteger(v))
        invalidArgument(k, v, 'µs since epoch, an integer');
    }
    this.pageRows = o.pageRows ?? 50_000;
    if (!Number.isInteger(this.pageRows) || this.pageRows < 1) {
      invalidArgument('pageRows', o.pageRows, 'an integer ≥ 1');
    }
    if (o.symbols !== undefined) {
      const bad = o.symbols.find((s) => !isToken(s));
      if (bad !== undefined || o.symbols.length === 0) {
        invalidArgument('symbols', bad ?? o.symbols, 'one or more symbols [A-Za-z0-9_-]+');
      }
      this.where.push(`sym IN (${o.symbols.map(lit).join(', ')})`);
    }
    if (o.since !== undefined) this.where.push(`ts_us >= ${o.since}`);
    if (o.until !== undefined) this.where.push(`ts_us < ${o.until}`);
    this.o = o;
    this.from = `${table}${o.final === false ? '' : ' FINAL'}`;
    const f = [
      o.since !== undefined ? `since ${o.since}` : '',
      o.until !== undefined ? `until ${o.until}` : '',
      o.symbols !== undefined ? `symbols ${o.symbols.join('|')}` : '',
    ].filter((s) => s !== '');
    this.description = `store ${o.label ?? table}${f.length > 0 ? ` (${f.join(', ')})` : ''}`;
  }

  get symbols(): readonly string[] {
    return this.ids.names;
  }

  /** Count the ticks (`total`); fails with QLN_REPLAY_SOURCE_FAILED when the store cannot be read. */
  async open(): Promise<void> {
    if (this.opened) return;
    const rows = await this.query(
      `SELECT count() AS n FROM ${this.from}${this.whereClause(undefined)}`,
    );
    this.total = toNumber(rows[0]?.['n']);
    this.opened = true;
  }

  async next(into: TickChunk): Promise<number> {
    into.length = 0;
    if (this.closed) return 0;
    if (!this.opened) await this.open();
    while (into.length < into.capacity) {
      if (this.at >= this.page.length) {
        if (this.done || !(await this.fetch())) break;
      }
      this.take(this.page[this.at++]!, into);
    }
    this.read += into.length;
    return into.length;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.page = [];
    if (this.o.ownsStore === true) await this.o.store.close();
  }

  private whereClause(after: Record<string, unknown> | undefined): string {
    const w = after === undefined ? this.where : [...this.where, keysetAfter(after)];
    return w.length === 0 ? '' : ` WHERE ${w.join(' AND ')}`;
  }

  private async fetch(): Promise<boolean> {
    this.page = await this.query(
      `SELECT ${COLUMNS} FROM ${this.from}${this.whereClause(this.last)} ORDER BY ${ORDER.join(', ')} LIMIT ${this.pageRows}`,
    );
    this.at = 0;
    if (this.page.length < this.pageRows) this.done = true;
    if (this.page.length === 0) return false;
    this.last = this.page[this.page.length - 1];
    return true;
  }

  private async query(sql: string): Promise<Array<Record<string, unknown>>> {
    try {
      return await this.o.store.query(sql);
    } catch (cause) {
      throw sourceFailed(this.description, 'cannot read the ticks', cause);
    }
  }

  private take(row: Record<string, unknown>, into: TickChunk): void {
    this.rowNo++;
    const r = this.raw;
    r.kind = parseKind(row['type']);
    r.sym = typeof row['sym'] === 'string' ? row['sym'] : '';
    r.seq = toNumber(row['seq']);
    r.ts = toNumber(row['ts_us']);
    r.recv = toNumber(row['recv_us']);
    r.px = toNumber(row['px']);
    r.qty = toNumber(row['qty']);
    r.side = parseSide(row['side']);
    r.bid = toNumber(row['bid']);
    r.bidQty = toNumber(row['bid_qty']);
    r.ask = toNumber(row['ask']);
    r.askQty = toNumber(row['ask_qty']);
    const why = checkRawTick(r);
    if (why !== '') {
      this.rejected++;
      if (this.rejections.length < KEPT_REJECTIONS)
        this.rejections.push({ at: this.rowNo, reason: why });
      return;
    }
    appendRawTick(into, r, this.ids.id(r.sym));
  }
}
