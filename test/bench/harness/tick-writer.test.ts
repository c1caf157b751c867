/**
 * Unit and property tests of the bench market's trades: valid PROTOCOL.md
 * trade JSON (fields, integer µs ts, positive prices, seq last), subjects
 * `<prefix>.<sym>`, reproducible from the seed.
 */
import fc from 'fast-check';
import t from 'tap';
import { TickWriter } from '../../../bench/harness/tick-writer.js';
import type { TickMessage } from '../../../kernel/messages.js';

void t.test('trades are PROTOCOL trades with seq last', (t) => {
  const w = new TickWriter(3);
  t.same(w.subjects('md.bench'), ['md.bench.B0000', 'md.bench.B0001', 'md.bench.B0002']);
  const text = w.trade(1, 42, 1732300000123456 + 0.75);
  const m = JSON.parse(text) as TickMessage;
  t.equal(m.type, 'trade');
  if (m.type !== 'trade') return;
  t.equal(m.sym, 'B0001');
  t.equal(m.ts, 1732300000123456, 'integer µs');
  t.equal(m.seq, 42);
  t.ok(m.px > 0);
  t.ok(m.qty >= 1 && m.qty <= 10);
  t.ok(m.side === 'buy' || m.side === 'sell');
  t.match(text, /"seq":42\}$/, 'seq is the last field');
  t.end();
});

void t.test('property: prices stay positive and finite; same seed, same market', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 0x7fffffff }),
      fc.integer({ min: 1, max: 2000 }),
      (seed, n) => {
        const a = new TickWriter(5, seed);
        const b = new TickWriter(5, seed);
        for (let i = 0; i < n; i++) {
          const x = a.trade(i % 5, i, 1.7e15 + i);
          if (x !== b.trade(i % 5, i, 1.7e15 + i)) return false;
          const m = JSON.parse(x) as { px: number };
          if (!(m.px > 0) || !Number.isFinite(m.px)) return false;
        }
        return true;
      },
    ),
    { numRuns: 30 },
  );
  t.end();
});

void t.test('bad arguments are QLN_INVALID_ARGUMENT', (t) => {
  t.throws(() => new TickWriter(0), { code: 'QLN_INVALID_ARGUMENT' });
  t.throws(() => new TickWriter(10_001), { code: 'QLN_INVALID_ARGUMENT' });
  t.throws(() => new TickWriter(1, 0), { code: 'QLN_INVALID_ARGUMENT' });
  t.end();
});
