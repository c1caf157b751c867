import fc from 'fast-check';
import t from 'tap';
import { RollingWindow, TRADE_COLUMNS } from '../../actors/rolling-window.js';
import { ErrorCodes } from '../../kernel/errors.js';

/** Push rows 0..n-1 where every column of row i holds i * 10 + column index. */
function fill(w: RollingWindow<(typeof TRADE_COLUMNS)[number]>, n: number): void {
  for (let i = 0; i < n; i++) {
    const s = w.slot();
    TRADE_COLUMNS.forEach((name, k) => {
      w.columns[name][s] = i * 10 + k;
    });
  }
}

void t.test('holds the last `capacity` rows in time order (model check)', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 7 }).map((k) => 1 << k),
      fc.integer({ min: 0, max: 400 }),
      (cap, n) => {
        const w = new RollingWindow(TRADE_COLUMNS, cap);
        fill(w, n);
        const held = Math.min(n, cap);
        if (w.length !== held) return false;
        const batch = w.toRecordBatch();
        if (batch.numRows !== held) return false;
        for (const [k, name] of TRADE_COLUMNS.entries()) {
          const col = batch.getChild(name)?.toArray();
          if (col?.length !== held) return false;
          for (let i = 0; i < held; i++) {
            const row = n - held + i;
            if (col[i] !== row * 10 + k || w.get(name, i) !== row * 10 + k) return false;
          }
        }
        return held === 0 || w.last('px') === (n - 1) * 10 + 2;
      },
    ),
  );
  t.pass('model check');
  t.end();
});

void t.test(
  'zero-copy before the wrap, one copy after (boundary capacity-1/capacity/capacity+1)',
  (t) => {
    const cap = 8;
    for (const n of [cap - 1, cap, cap + 1, 2 * cap]) {
      const w = new RollingWindow(TRADE_COLUMNS, cap);
      fill(w, n);
      const values = w.toRecordBatch().getChild('px')!.data[0]!.values;
      const wraps = n > cap && n % cap !== 0;
      t.equal(
        values.buffer === w.columns.px.buffer,
        !wraps,
        `n=${n}: shares the ring buffer iff the held rows are contiguous`,
      );
      t.same(
        Array.from(values),
        Array.from({ length: Math.min(n, cap) }, (_, i) => (n - Math.min(n, cap) + i) * 10 + 2),
      );
    }
    t.end();
  },
);

void t.test('rejects a capacity that is not a power of two, naming it', (t) => {
  for (const bad of [0, 1, 3, 1000, 2.5, -4]) {
    t.throws(() => new RollingWindow(TRADE_COLUMNS, bad), {
      code: ErrorCodes.INVALID_ARGUMENT,
      message: /invalid capacity/,
    });
  }
  t.throws(() => new RollingWindow(['a', 'a'], 4), { code: ErrorCodes.INVALID_ARGUMENT });
  const w = new RollingWindow(TRADE_COLUMNS, 4);
  t.ok(Number.isNaN(w.last('px')), 'last of an empty window is NaN');
  fill(w, 3);
  w.clear();
  t.equal(w.length, 0);
  t.equal(w.toRecordBatch().numRows, 0);
  t.end();
});
