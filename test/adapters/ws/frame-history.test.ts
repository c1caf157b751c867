import fc from 'fast-check';
import t from 'tap';
import { FrameHistory } from '../../../adapters/ws/frame-history.js';

const frame = (s: string): Buffer => Buffer.from(s);

void t.test('disabled history keeps nothing', (t) => {
  const evicted: number[] = [];
  const h = new FrameHistory(0, (_id, off) => evicted.push(off));
  t.equal(h.append(0, 1, frame('{}'), 2), false);
  t.equal(h.records, 0);
  t.equal(h.maxRecords, 0);
  t.end();
});

void t.test(
  'wrap boundary: a record that does not fit at the end goes to 0, evicting oldest first',
  (t) => {
    const evicted: Array<[number, number]> = [];
    const h = new FrameHistory(100, (id, off) => evicted.push([id, off]));
    // 3 × 30 bytes fill [0, 90); the 4th (30) does not fit in [90, 100): written at 0.
    for (let off = 1; off <= 3; off++) {
      h.tick(off);
      t.ok(h.append(7, off, frame('a'.repeat(30)), 30));
    }
    t.equal(h.bytes, 90);
    t.same(evicted, [], 'nothing evicted while it fits');
    t.ok(h.append(7, 4, frame('b'.repeat(30)), 30));
    t.same(evicted, [[7, 1]], 'only the record at [0, 30) was overwritten');
    t.equal(h.records, 3);
    // The next (10 bytes) fits at [30, 40): overwrites record 2 at [30, 60).
    t.ok(h.append(8, 1, frame('c'.repeat(10)), 10));
    t.same(evicted, [
      [7, 1],
      [7, 2],
    ]);
    const seen: Array<[number, number, string]> = [];
    h.scan((id, off, _len, i) => void seen.push([id, off, h.frameAt(i).toString()]));
    t.same(
      seen,
      [
        [7, 3, 'a'.repeat(30)],
        [7, 4, 'b'.repeat(30)],
        [8, 1, 'c'.repeat(10)],
      ],
      'oldest first, bytes intact',
    );
    t.equal(h.oldestAt, 3);
    t.notOk(
      h.append(9, 1, frame('x'.repeat(101)), 101),
      'a frame bigger than the arena is refused',
    );
    t.end();
  },
);

void t.test('the index bounds the record count whatever the byte size', (t) => {
  const evicted: number[] = [];
  const h = new FrameHistory(1 << 20, (_id, off) => evicted.push(off), 1 << 20);
  t.equal(h.maxRecords, 1024, 'at least 1024 slots');
  for (let off = 1; off <= 1030; off++) h.append(0, off, frame('z'), 1);
  t.equal(h.records, 1024);
  t.same(evicted, [1, 2, 3, 4, 5, 6], 'the oldest six made room');
  t.end();
});

void t.test('property: held records are exactly the newest that fit, in order', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 16, max: 512 }),
      fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 300 }),
      (cap, lens) => {
        const evicted: number[] = [];
        const h = new FrameHistory(cap, (_id, off) => evicted.push(off));
        const stored: Array<[number, number]> = [];
        lens.forEach((len, k) => {
          const ok = h.append(0, k + 1, Buffer.alloc(len, k % 251), len);
          if (ok) stored.push([k + 1, len]);
        });
        const held: Array<[number, number]> = [];
        let bytes = 0;
        h.scan((_id, off, len, i) => {
          const f = h.frameAt(i);
          if (f.length !== len || f.some((b) => b !== (off - 1) % 251))
            throw new Error(`record ${off} corrupted`);
          held.push([off, len]);
          bytes += len;
        });
        // Held: a suffix of what was stored, within capacity, contiguous in offsets.
        const suffix = stored.slice(stored.length - held.length);
        if (JSON.stringify(suffix) !== JSON.stringify(held)) throw new Error('not a suffix');
        if (bytes > cap || bytes !== h.bytes) throw new Error(`bytes ${bytes} vs ${h.bytes}`);
        // Evicted: exactly the stored ones not held, oldest first.
        const gone = stored.slice(0, stored.length - held.length).map(([off]) => off);
        if (JSON.stringify(gone) !== JSON.stringify(evicted)) throw new Error('eviction order');
        // The newest record is always held (it fit when written).
        if (stored.length > 0 && held.length === 0) throw new Error('newest not held');
      },
    ),
  );
  t.pass('property held');
  t.end();
});
