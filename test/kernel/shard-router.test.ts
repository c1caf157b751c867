import fc from 'fast-check';
import t from 'tap';
import { ShardRouter, fnv1a64, jumpHash } from '../../kernel/shard-router.js';

const token = fc.stringMatching(/^[A-Za-z0-9_-]{1,16}$/);

void t.test('stable: the same symbol always lands on the same shard', (t) => {
  fc.assert(
    fc.property(token, fc.integer({ min: 1, max: 64 }), (sym, n) => {
      const a = new ShardRouter(n);
      const b = new ShardRouter(n);
      const s = a.shardOf(sym);
      return s === b.shardOf(sym) && s === a.shardOfId(0, sym) && s >= 0 && s < n;
    }),
  );
  // Pinned values: a change of hash would silently move every symbol between
  // shards (and between kernel nodes); this fails first.
  t.equal(new ShardRouter(2).shardOf('BTC-USD'), jumpHash(fnv1a64('BTC-USD'), 2));
  t.equal(fnv1a64(''), 0xcbf29ce484222325n, 'FNV-1a offset basis');
  t.equal(fnv1a64('a'), 0xaf63dc4c8601ec8cn, 'FNV-1a 64 of "a"');
  t.end();
});

void t.test('balanced: 10 000 symbols spread within 10% of even over n shards', (t) => {
  for (const n of [2, 3, 4, 8, 16]) {
    const r = new ShardRouter(n);
    const counts = new Array<number>(n).fill(0);
    for (let i = 0; i < 10_000; i++) counts[r.shardOf(`SYM${i}`)]!++;
    const even = 10_000 / n;
    t.ok(
      counts.every((c) => Math.abs(c - even) < even * 0.1),
      `n=${n}: ${counts.join(',')}`,
    );
  }
  t.end();
});

void t.test('consistent: growing n → n+1 moves only symbols to the new shard', (t) => {
  fc.assert(
    fc.property(
      fc.array(token, { minLength: 1, maxLength: 200 }),
      fc.integer({ min: 1, max: 32 }),
      (syms, n) => {
        const a = new ShardRouter(n);
        const b = new ShardRouter(n + 1);
        return syms.every((s) => {
          const x = a.shardOf(s);
          const y = b.shardOf(s);
          return x === y || y === n;
        });
      },
    ),
  );
  t.end();
});

void t.test('bad shard counts are refused', (t) => {
  t.throws(() => new ShardRouter(0), { code: 'QLN_INVALID_ARGUMENT' });
  t.throws(() => new ShardRouter(1.5), { code: 'QLN_INVALID_ARGUMENT' });
  t.end();
});
