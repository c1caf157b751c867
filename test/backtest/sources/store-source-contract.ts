/**
 * What StoreTickSource must do on either store (ClickHouse server, chdb):
 * arrival order across pages and chunks, ties broken the same way every
 * time, a redelivered tick read once, filters, `total`, malformed rows
 * counted. Run by store-source.test.ts and store-source-chdb.test.ts.
 */
import type { Test } from 'tap';
import { StoreTickSource } from '../../../backtest/sources/store-source.js';
import type { EventStore, StoreBatch, TickRow } from '../../../kernel/event-store.js';
import { noVenue, readAll } from './source-fixtures.js';

export const T0 = 1_767_225_600_000_000;

export function batchOf(ticks: TickRow[]): StoreBatch {
  return { ticks, predictions: [], signals: [], quality: [], metrics: [], audit: [] };
}

function tick(
  type: 'trade' | 'quote',
  sym: string,
  seq: number,
  tsUs: number,
  recvUs: number,
  px = 100 + seq / 8,
): TickRow {
  const trade = type === 'trade';
  return {
    type,
    sym,
    venue: 'sim',
    seq,
    tsUs,
    recvUs,
    px: trade ? px : 0,
    qty: trade ? 1 + (seq % 3) : 0,
    side: trade ? (seq % 2 === 0 ? 1 : -1) : 0,
    bid: trade ? 0 : px - 0.5,
    bidQty: trade ? 0 : 2,
    ask: trade ? 0 : px + 0.5,
    askQty: trade ? 0 : 3,
  };
}

/**
 * 60 ticks of 3 symbols whose arrival order (recv) is neither their
 * exchange-time order nor grouped by symbol, with recv ties across symbols
 * and between a trade and a quote of the same seq.
 */
export function fixtureTicks(): TickRow[] {
  const syms = ['CCC', 'AAA', 'BBB'];
  const out: TickRow[] = [];
  for (let k = 0; k < 20; k++) {
    syms.forEach((sym, j) => {
      const seq = k + 1;
      const ts = T0 + k * 1000 + (2 - j) * 10; // CCC latest in exchange time
      const recv = T0 + 5000 + Math.floor(k / 2) * 700 + (k % 2) * j * 3; // even k: a tie across syms
      out.push(tick(k % 4 === 3 ? 'quote' : 'trade', sym, seq, ts, recv));
    });
  }
  // Same seq, same recv, trade and quote: the type decides.
  out.push(tick('quote', 'AAA', 1, T0 + 1, T0 + 5000));
  return out;
}

/** Arrival order: (recv_us, sym, seq, type, venue, ts_us). */
export function arrivalOrder(rows: TickRow[]): TickRow[] {
  const key = (r: TickRow): Array<number | string> => [
    r.recvUs,
    r.sym,
    r.seq,
    r.type,
    r.venue,
    r.tsUs,
  ];
  return [...rows].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < ka.length; i++) {
      if (ka[i]! < kb[i]!) return -1;
      if (ka[i]! > kb[i]!) return 1;
    }
    return 0;
  });
}

/** Insert the fixture (and a redelivery of one tick, and two bad rows) through `store`. */
export async function loadFixture(store: EventStore): Promise<TickRow[]> {
  await store.migrate();
  const rows = fixtureTicks();
  await store.insert(batchOf(rows.slice(0, 30)));
  await store.insert(batchOf(rows.slice(30)));
  await store.insert(batchOf([rows[7]!])); // redelivered and stored again
  await store.insert(
    batchOf([
      tick('trade', 'BAD', 1, T0 + 50_000, T0 + 90_000, 0), // px 0
      tick('quote', 'BAD', 2, T0 + 50_001, T0 + 90_001, 0.25), // bid -0.25
    ]),
  );
  return rows;
}

export async function storeSourceContract(
  t: Test,
  store: EventStore,
  rows: TickRow[],
  table: string,
): Promise<void> {
  const expected = arrivalOrder(rows);

  await t.test('arrival order over pages of 5 and chunks of 7; the redelivery once', async (t) => {
    const src = new StoreTickSource({ store, table, pageRows: 5 });
    await src.open();
    t.equal(src.total, rows.length + 2, 'total: count() of the ticks, bad rows included');
    const got = await readAll(src, 7);
    t.equal(got.ticks.length, rows.length, `${rows.length} ticks`);
    t.same(got.ticks, noVenue(expected), 'every column, in (recv_us, sym, seq, type) order');
    t.equal(src.rejected, 2, 'the two bad rows counted');
    t.match(src.rejections, [{ reason: /px 0/ }, { reason: /bid -0.25/ }]);
    t.same(src.symbols, ['AAA', 'BBB', 'CCC'], 'symbols by first arrival');
    await src.close();
  });

  await t.test('one page or many give the same ticks', async (t) => {
    const one = await readAll(new StoreTickSource({ store, table, pageRows: 10_000 }), 64);
    const many = await readAll(new StoreTickSource({ store, table, pageRows: 1 }), 3);
    t.same(many.ticks, one.ticks);
    t.equal(one.ticks.length, rows.length);
  });

  await t.test('filters: since ≤ ts_us < until, symbols', async (t) => {
    const since = T0 + 5000;
    const until = T0 + 15_000;
    const src = new StoreTickSource({
      store,
      table,
      since,
      until,
      symbols: ['AAA', 'CCC'],
      pageRows: 4,
    });
    await src.open();
    const want = expected.filter(
      (r) => r.tsUs >= since && r.tsUs < until && (r.sym === 'AAA' || r.sym === 'CCC'),
    );
    t.equal(src.total, want.length, `total ${want.length}`);
    const got = await readAll(src, 5);
    t.same(got.ticks, noVenue(want));
    t.equal(src.rejected, 0);
    t.match(src.description, /since .*until .*symbols AAA\|CCC/);
  });

  await t.test('FINAL off: the redelivered tick is read twice', async (t) => {
    const src = new StoreTickSource({ store, table, final: false, symbols: ['AAA', 'BBB', 'CCC'] });
    const got = await readAll(src, 9);
    t.equal(got.ticks.length, rows.length + 1);
  });

  await t.test('bad options are refused up front', (t) => {
    t.throws(() => new StoreTickSource({ store, symbols: ["A'; DROP"] }), {
      code: 'QLN_INVALID_ARGUMENT',
    });
    t.throws(() => new StoreTickSource({ store, table: 'x; DROP' }), {
      code: 'QLN_INVALID_ARGUMENT',
    });
    t.throws(() => new StoreTickSource({ store, pageRows: 0 }), { code: 'QLN_INVALID_ARGUMENT' });
    t.end();
  });
}
