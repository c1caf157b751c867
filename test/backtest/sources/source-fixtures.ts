/**
 * What the source tests share: read a whole source through a small chunk
 * (so chunk boundaries fall everywhere), random stored ticks for the
 * fast-check round trips, and a heap probe for the flat-memory tests.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { newTickChunk, type TickSource } from '../../../backtest/tick-chunk.js';
import { chunkRow } from '../../../backtest/sources/tick-rows.js';
import type { TickRow } from '../../../kernel/event-store.js';

/** A stored tick without its venue (sources do not carry it). */
export type ReadTick = Omit<TickRow, 'venue'>;

/** Every tick of `source` through a chunk of `capacity`, and the chunk sizes seen. */
export async function readAll(
  source: TickSource,
  capacity = 7,
): Promise<{ ticks: ReadTick[]; sizes: number[] }> {
  const c = newTickChunk(capacity);
  const ticks: ReadTick[] = [];
  const sizes: number[] = [];
  for (let n = await source.next(c); n > 0; n = await source.next(c)) {
    if (c.length !== n) throw new Error(`next returned ${n} but chunk.length is ${c.length}`);
    sizes.push(n);
    for (let i = 0; i < n; i++) {
      const { venue: _v, ...row } = chunkRow(c, i, source.symbols);
      ticks.push(row);
    }
  }
  if ((await source.next(c)) !== 0) throw new Error('next after the end did not return 0');
  return { ticks, sizes };
}

export const noVenue = (rows: readonly TickRow[]): ReadTick[] =>
  rows.map(({ venue: _v, ...r }) => r);

const T0 = 1_767_225_600_000_000;

/** A stored tick as the store keeps it: a trade's quote fields 0, a quote's trade fields 0. */
export const tickRowArb: fc.Arbitrary<TickRow> = fc
  .record({
    trade: fc.boolean(),
    sym: fc.constantFrom('AAA', 'B-1', 'c_2', 'DDDD'),
    seq: fc.nat({ max: 1e12 }),
    tsUs: fc.integer({ min: T0, max: T0 + 1e12 }),
    lagUs: fc.nat({ max: 1e6 }),
    px: fc.double({ min: 1e-6, max: 1e9, noNaN: true }),
    qty: fc.double({ min: 1e-6, max: 1e9, noNaN: true }),
    side: fc.constantFrom(-1, 0, 1),
    bidQty: fc.double({ min: 0, max: 1e9, noNaN: true }),
    ask: fc.double({ min: 1e-6, max: 1e9, noNaN: true }),
  })
  .map((r): TickRow => ({
    type: r.trade ? 'trade' : 'quote',
    sym: r.sym,
    venue: 'v1',
    seq: r.seq,
    tsUs: r.tsUs,
    recvUs: r.tsUs + r.lagUs,
    px: r.trade ? r.px : 0,
    qty: r.trade ? r.qty : 0,
    side: r.trade ? r.side : 0,
    bid: r.trade ? 0 : r.px,
    bidQty: r.trade ? 0 : r.bidQty + 0, // +0: no -0
    ask: r.trade ? 0 : r.ask,
    askQty: r.trade ? 0 : r.qty,
  }));

let gcFn: (() => void) | undefined;
/**
 * Heap plus ArrayBuffer memory in use after a full collection (`--expose-gc`
 * set at run time, as fill-model.test.ts does): a source that kept its
 * history, as objects or in typed arrays, shows in it.
 */
export function heapAfterGc(): number {
  if (gcFn === undefined) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
  gcFn();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
