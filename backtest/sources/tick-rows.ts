/**
 * Chunks ↔ `TickRow`s (the stored form, kernel/event-store.ts): what the file
 * writers take, so any source can be written out as a fixture or an export
 * (`writeTicksCsv(path, sourceRows(source))`).
 */
import type { TickRow } from '../../kernel/event-store.js';
import { MarketKind, Side } from '../../kernel/market-record.js';
import { newTickChunk, type TickChunk, type TickSource } from '../tick-chunk.js';

/** Row `i` of `c` as a stored tick (side 1 / -1 / 0; `venue` as given). */
export function chunkRow(c: TickChunk, i: number, symbols: readonly string[], venue = ''): TickRow {
  const trade = c.kind[i] === MarketKind.TRADE;
  const side = c.side[i];
  return {
    type: trade ? 'trade' : 'quote',
    sym: symbols[c.symId[i]!] ?? '',
    venue,
    seq: c.seq[i]!,
    tsUs: c.ts[i]!,
    recvUs: c.recv[i]!,
    px: c.px[i]!,
    qty: c.qty[i]!,
    side: trade ? (side === Side.BUY ? 1 : side === Side.SELL ? -1 : 0) : 0,
    bid: c.bid[i]!,
    bidQty: c.bidQty[i]!,
    ask: c.ask[i]!,
    askQty: c.askQty[i]!,
  };
}

/** Every tick of `source`, read in chunks of `capacity`, as stored rows (the source is not closed). */
export async function* sourceRows(source: TickSource, capacity = 10_000): AsyncGenerator<TickRow> {
  const c = newTickChunk(capacity);
  for (let n = await source.next(c); n > 0; n = await source.next(c)) {
    for (let i = 0; i < n; i++) yield chunkRow(c, i, source.symbols);
  }
}

/** Anything the writers take: an array, a generator, an async generator. */
export type TickRows = Iterable<TickRow> | AsyncIterable<TickRow>;
