import { tableFromIPC, type RecordBatch } from 'apache-arrow';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import {
  BAR_COLUMNS,
  BarWindow,
  DEFAULT_BAR_SPECS,
  resolveBarSpecs,
  type BarColumn,
} from '../../actors/bar-window.js';
import { RollingWindow, TRADE_COLUMNS } from '../../actors/rolling-window.js';
import { ErrorCodes } from '../../kernel/errors.js';

type Bar = Record<BarColumn, number>;
type Trade = readonly [ts: number, px: number, qty: number];

/**
 * The naive model: walk the trades, bucket = floor(ts / interval) * interval,
 * a trade of an earlier bucket than the open one is late (dropped), the same
 * bucket folds, a later one closes the open bar and opens a new one.
 */
function naive(trades: readonly Trade[], intervalUs: number) {
  const closed: Bar[] = [];
  const returns: boolean[] = [];
  let open: (Bar & { pv?: number }) | null = null;
  let late = 0;
  for (const [ts, px, qty] of trades) {
    const start = Math.floor(ts / intervalUs) * intervalUs;
    if (open !== null && start < open.start) {
      late++;
      returns.push(false);
    } else if (open !== null && start === open.start) {
      open.high = Math.max(open.high, px);
      open.low = Math.min(open.low, px);
      open.close = px;
      open.volume += qty;
      open.pv! += px * qty;
      open.trades++;
      returns.push(false);
    } else {
      if (open !== null) closed.push(finish(open));
      returns.push(open !== null);
      open = { start, open: px, high: px, low: px, close: px, volume: qty, vwap: NaN, trades: 1 };
      open.pv = px * qty;
    }
  }
  return { closed, open: open === null ? null : finish(open), returns, late };
}

function finish(b: Bar & { pv?: number }): Bar {
  const { pv, ...bar } = b;
  return { ...bar, vwap: pv! / b.volume };
}

/** Interval first, then a trade list whose ts steps are relative to it. */
const scenario = fc
  .record({
    intervalUs: fc.constantFrom(1000, 1500, 7919, 1_000_000, 60_000_000),
    capacity: fc.constantFrom(2, 4, 8, 16),
    base: fc.oneof(
      fc.integer({ min: -5_000_000, max: 5_000_000 }),
      fc.integer({ min: 1_700_000_000_000_000, max: 1_700_000_001_000_000 }),
    ),
    steps: fc.array(
      fc.tuple(
        // 0 same ts, 1 small step, 2 jump many bars, 3 snap to the next edge, 4 back in time
        fc.constantFrom(0, 1, 1, 1, 2, 3, 3, 4),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0.01, max: 1e5, noNaN: true }),
        fc.oneof(fc.constant(0), fc.double({ min: 0.001, max: 1e4, noNaN: true })),
      ),
      { maxLength: 300, size: 'max' },
    ),
  })
  .map(({ intervalUs, capacity, base, steps }) => {
    const trades: Trade[] = [];
    let ts = base;
    for (const [kind, u, px, qty] of steps) {
      if (kind === 1) ts += Math.floor(u * intervalUs * 0.6);
      else if (kind === 2) ts += Math.floor(u * intervalUs * 1000);
      else if (kind === 3) ts = (Math.floor(ts / intervalUs) + 1) * intervalUs;
      else if (kind === 4) ts -= Math.floor(u * intervalUs * 2) + 1;
      trades.push([ts, px, qty]);
    }
    return { intervalUs, capacity, trades };
  });

function same(a: number, b: number): boolean {
  return Object.is(a, b);
}

function batchRows(batch: RecordBatch): Bar[] {
  const cols = BAR_COLUMNS.map((c) => batch.getChild(c)!.toArray() as Float64Array);
  return Array.from({ length: batch.numRows }, (_, i) => {
    const bar = {} as Bar;
    BAR_COLUMNS.forEach((c, k) => (bar[c] = cols[k]![i]!));
    return bar;
  });
}

function sameBars(got: readonly Bar[], want: readonly Bar[]): boolean {
  return (
    got.length === want.length &&
    got.every((g, i) => BAR_COLUMNS.every((c) => same(g[c], want[i]![c])))
  );
}

void t.test('matches a naive aggregation of random trades (model check, ring wrap)', (t) => {
  let wrapped = 0;
  let closedChecks = 0;
  fc.assert(
    fc.property(scenario, ({ intervalUs, capacity, trades }) => {
      const want = naive(trades, intervalUs);
      const w = new BarWindow({ name: 'x', intervalUs, capacity });
      for (let j = 0; j < trades.length; j++) {
        const [ts, px, qty] = trades[j]!;
        const ret = w.onTrade(ts, px, qty);
        if (ret !== want.returns[j]) return false;
        if (ret) {
          // the bar that just closed is readable through last()
          const k = want.returns.slice(0, j + 1).filter(Boolean).length;
          if (w.total !== k) return false;
          if (!BAR_COLUMNS.every((c) => same(w.last(c), want.closed[k - 1]![c]))) return false;
          closedChecks++;
        }
      }
      if (w.lateTrades !== want.late) return false;
      const total = want.closed.length;
      const held = Math.min(total, capacity);
      if (total > capacity) wrapped++;
      if (w.total !== total || w.length !== held) return false;
      const newest = want.closed.slice(total - held);
      const viaGet = newest.map((_, i) => {
        const bar = {} as Bar;
        for (const c of BAR_COLUMNS) bar[c] = w.get(c, i);
        return bar;
      });
      if (!sameBars(viaGet, newest)) return false;
      if (!sameBars(batchRows(w.toRecordBatch()), newest)) return false;
      if (w.hasOpenBar !== (want.open !== null)) return false;
      const withOpen = want.open === null ? newest : [...newest, want.open];
      if (!sameBars(batchRows(w.toRecordBatch(true)), withOpen)) return false;
      if (want.open !== null) {
        if (!BAR_COLUMNS.every((c) => same(w.current(c), want.open![c]))) return false;
        if (w.high !== want.open.high || w.trades !== want.open.trades) return false;
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.ok(wrapped > 20, `the ring wrapped in ${wrapped} runs`);
  t.ok(closedChecks > 1000, `last() checked after ${closedChecks} closes`);
  t.end();
});

void t.test('a bar edge: ts = start + interval belongs to the next bar', (t) => {
  const w = new BarWindow({ name: 'ms', intervalUs: 1000, capacity: 4 });
  t.equal(w.onTrade(0, 10, 1), false, 'first trade opens a bar, closes none');
  t.equal(w.start, 0);
  t.equal(w.onTrade(999, 12, 3), false, 'start + interval - 1 is still the open bar');
  t.equal(w.total, 0);
  t.equal(w.onTrade(1000, 11, 2), true, 'start + interval closes the bar');
  t.equal(w.total, 1);
  t.same(
    BAR_COLUMNS.map((c) => w.last(c)),
    [0, 10, 12, 10, 12, 4, (10 * 1 + 12 * 3) / 4, 2],
    'closed bar 0: start open high low close volume vwap trades',
  );
  t.equal(w.start, 1000, 'the edge trade opened bar 1000');
  t.equal(w.open, 11);
  t.equal(w.trades, 1);
  t.equal(w.onTrade(999, 99, 1), false, 'a late trade (closed bar) is ignored');
  t.equal(w.lateTrades, 1);
  t.equal(w.trades, 1, 'and not folded');
  t.equal(w.onTrade(NaN, 99, 1), false, 'a NaN ts is ignored');
  t.equal(w.lateTrades, 2);

  // far future: one close, one open, no empty bars in between
  t.equal(w.onTrade(1000 + 1e9 * 1000 + 5, 13, 1), true);
  t.equal(w.total, 2, 'one bar closed, not a million empty ones');
  t.equal(w.last('start'), 1000);
  t.equal(w.start, 1000 + 1e9 * 1000);

  // negative ts floors down, not towards zero
  const n = new BarWindow({ name: 'neg', intervalUs: 1000, capacity: 2 });
  n.onTrade(-1, 1, 1);
  t.equal(n.start, -1000);
  t.equal(n.onTrade(0, 1, 1), true, '0 is the edge after -1000');
  t.equal(n.last('start'), -1000);
  t.end();
});

void t.test('ring wrap boundary: capacity-1, capacity, capacity+1 closed bars', (t) => {
  const cap = 4;
  for (const closed of [cap - 1, cap, cap + 1, 2 * cap, 2 * cap + 1]) {
    const w = new BarWindow({ name: 'w', intervalUs: 1000, capacity: cap });
    for (let i = 0; i <= closed; i++) w.onTrade(i * 1000 + 7, 100 + i, 1);
    t.equal(w.total, closed);
    t.equal(w.length, Math.min(closed, cap));
    const held = Math.min(closed, cap);
    const starts = Array.from({ length: held }, (_, i) => (closed - held + i) * 1000);
    const batch = w.toRecordBatch();
    t.same(Array.from(batch.getChild('start')!.toArray()), starts, `${closed}: starts`);
    t.same(
      Array.from(w.toRecordBatch(true).getChild('close')!.toArray()),
      [...starts.map((s) => 100 + s / 1000), 100 + closed],
      `${closed}: closes with the open bar last`,
    );
    const contiguous = closed <= cap || closed % cap === 0;
    t.equal(
      batch.getChild('start')!.data[0]!.values.buffer === w.columns.start.buffer,
      contiguous,
      `${closed}: zero-copy iff contiguous`,
    );
  }
  t.end();
});

void t.test('IPC round trip (stream format) for both windows', (t) => {
  const check = (bytes: Uint8Array, batch: RecordBatch, label: string): void => {
    const table = tableFromIPC(bytes);
    t.equal(table.numRows, batch.numRows, `${label}: rows`);
    t.same(
      table.schema.fields.map((f) => f.name),
      batch.schema.fields.map((f) => f.name),
      `${label}: columns in order`,
    );
    for (const f of batch.schema.fields) {
      t.same(
        Array.from(table.getChild(f.name)!.toArray() as Float64Array),
        Array.from(batch.getChild(f.name)!.toArray() as Float64Array),
        `${label}: ${f.name}`,
      );
    }
  };
  const w = new BarWindow({ name: 'w', intervalUs: 1000, capacity: 4 });
  check(w.toIPC(), w.toRecordBatch(), 'bars empty');
  check(w.toIPC(true), w.toRecordBatch(true), 'bars empty, no open bar');
  for (const n of [3, 4, 7]) {
    w.clear();
    for (let i = 0; i <= n; i++) {
      w.onTrade(i * 1000, 100 + i, 1 + i);
      w.onTrade(i * 1000 + 500, 99 + i, 2);
    }
    t.equal(tableFromIPC(w.toIPC()).numRows, Math.min(n, 4), `bars ${n} closed: row count`);
    t.equal(tableFromIPC(w.toIPC(true)).numRows, Math.min(n, 4) + 1, `bars ${n}: + open bar`);
    check(w.toIPC(), w.toRecordBatch(), `bars ${n} closed`);
    check(w.toIPC(true), w.toRecordBatch(true), `bars ${n} + open`);
  }

  const r = new RollingWindow(TRADE_COLUMNS, 8);
  check(r.toIPC(), r.toRecordBatch(), 'rolling empty');
  for (const n of [5, 8, 11]) {
    r.clear();
    for (let i = 0; i < n; i++) {
      const s = r.slot();
      TRADE_COLUMNS.forEach((c, k) => (r.columns[c][s] = i * 10 + k));
    }
    t.equal(tableFromIPC(r.toIPC()).numRows, Math.min(n, 8), `rolling ${n}: row count`);
    check(r.toIPC(), r.toRecordBatch(), `rolling ${n}`);
  }
  t.end();
});

void t.test('clear() starts a new session', (t) => {
  const w = new BarWindow({ name: 'w', intervalUs: 1000, capacity: 4 });
  for (let i = 0; i < 6; i++) w.onTrade(i * 1000, 1, 1);
  w.onTrade(0, 1, 1); // late
  w.clear();
  t.equal(w.total, 0);
  t.equal(w.length, 0);
  t.equal(w.lateTrades, 0);
  t.equal(w.hasOpenBar, false);
  t.ok(Number.isNaN(w.start) && Number.isNaN(w.close) && Number.isNaN(w.last('close')));
  t.equal(w.toRecordBatch(true).numRows, 0);
  t.equal(w.onTrade(10, 5, 2), false, 'an earlier ts is fine after clear()');
  t.equal(w.start, 0);
  t.equal(w.vwap, 5);
  t.end();
});

function throwsNamed(t: Test, fn: () => unknown, name: string): void {
  try {
    fn();
    t.fail(`expected a throw naming ${name}`);
  } catch (err) {
    const e = err as { code?: string; details?: { name?: string } };
    t.equal(e.code, ErrorCodes.INVALID_ARGUMENT, `${name}: code`);
    t.equal(e.details?.name, name, `names ${name}`);
  }
}

void t.test('resolveBarSpecs: defaults, valid specs and errors naming the key', (t) => {
  t.same(resolveBarSpecs(undefined), [
    { name: '1s', intervalUs: 1_000_000, capacity: 64 },
    { name: '1m', intervalUs: 60_000_000, capacity: 64 },
  ]);
  t.same(resolveBarSpecs(null), DEFAULT_BAR_SPECS);
  t.not(resolveBarSpecs(undefined)[0], DEFAULT_BAR_SPECS[0], 'a copy');
  t.same(resolveBarSpecs([]), []);
  t.same(
    resolveBarSpecs([
      { name: 'fast_1', intervalUs: 1000, capacity: 2 },
      { name: '5m', intervalUs: 300_000_000, capacity: 65536 },
      { name: 'h1', intervalUs: 3_600_000_000 },
    ]),
    [
      { name: 'fast_1', intervalUs: 1000, capacity: 2 },
      { name: '5m', intervalUs: 300_000_000, capacity: 65536 },
      { name: 'h1', intervalUs: 3_600_000_000, capacity: 64 },
    ],
  );
  const ok = { name: 'a', intervalUs: 1000, capacity: 4 };
  throwsNamed(t, () => resolveBarSpecs({}), 'bars');
  throwsNamed(t, () => resolveBarSpecs('1s'), 'bars');
  throwsNamed(t, () => resolveBarSpecs([null]), 'bars[0]');
  throwsNamed(t, () => resolveBarSpecs([ok, 5]), 'bars[1]');
  for (const bad of [999, 1000.5, '1000', 0, -1000, NaN, Infinity, undefined]) {
    throwsNamed(
      t,
      () => resolveBarSpecs([ok, { ...ok, name: 'b', intervalUs: bad }]),
      'bars[1].intervalUs',
    );
  }
  for (const bad of [0, 1, 3, 6, 1 << 17, 2.5, -4, '4', null]) {
    throwsNamed(t, () => resolveBarSpecs([{ ...ok, capacity: bad }]), 'bars[0].capacity');
  }
  for (const bad of ['', 'a-b', '1 s', 'é', 7, undefined]) {
    throwsNamed(t, () => resolveBarSpecs([ok, { ...ok, name: bad }]), 'bars[1].name');
  }
  throwsNamed(t, () => resolveBarSpecs([ok, { ...ok, intervalUs: 2000 }]), 'bars[1].name');
  throwsNamed(t, () => resolveBarSpecs([{ ...ok, interval: 5 }]), 'bars[0].interval');
  throwsNamed(
    t,
    () => new BarWindow({ name: 'a', intervalUs: 1000, capacity: 12 }),
    'spec.capacity',
  );
  throwsNamed(
    t,
    () => new BarWindow({ name: 'a', intervalUs: 10, capacity: 4 }),
    'spec.intervalUs',
  );
  t.end();
});
