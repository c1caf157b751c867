import fc from 'fast-check';
import t from 'tap';
import { AckQueue } from '../../kernel/ack-queue.js';

/** One step: queue a message whose tag is `step` past the last one, or a durable report. */
type Op = { push: number } | { durable: number };

void t.test(
  'any interleaving of pushes and durable marks acks exactly the items with tag ≤ mark, in order, each once',
  (t) => {
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.integer({ min: 1, max: 64 }),
        fc.array(
          fc.oneof(
            fc.record({ push: fc.integer({ min: 0, max: 3 }) }),
            fc.record({ durable: fc.integer({ min: -2, max: 40 }) }),
          ),
          { maxLength: 300 },
        ),
        (start, capacity, ops: Op[]) => {
          // Tags wrap at 32 bits: start anywhere, near the edge included.
          const q = new AckQueue<number>(capacity);
          let tag = start | 0;
          let next = 0;
          let mark = start | 0;
          const tags: number[] = [];
          const acked: number[] = [];
          for (const op of ops) {
            if ('push' in op) {
              tag = (tag + op.push) | 0;
              tags.push(tag);
              q.push(next++, tag);
            } else {
              // A durable mark never goes back; it may run ahead of what is queued.
              mark = (mark + Math.max(0, op.durable)) | 0;
              q.release(mark, (id) => acked.push(id));
              // Everything acked so far has a tag at or below the mark...
              for (const id of acked) if (((mark - tags[id]!) | 0) < 0) return false;
              // ...and everything still queued is above it.
              if (q.length > 0 && ((mark - tags[acked.length]!) | 0) >= 0) return false;
            }
          }
          // In order, each once: acked is exactly 0, 1, 2, … and the rest is queued.
          if (!acked.every((id, i) => id === i)) return false;
          return q.length === next - acked.length;
        },
      ),
      { numRuns: 2000 },
    );
    t.pass('2000 interleavings');
    t.end();
  },
);

void t.test('grows past its capacity without losing order; drain empties it', (t) => {
  const q = new AckQueue<string>(16);
  for (let i = 0; i < 100; i++) q.push(`m${i}`, i, i * 10);
  t.equal(q.length, 100);
  t.ok(q.growths >= 1, 'grew');
  t.equal(q.oldestAt(), 0);
  const out: string[] = [];
  t.equal(
    q.release(49, (m) => out.push(m)),
    50,
  );
  t.same(
    out,
    Array.from({ length: 50 }, (_, i) => `m${i}`),
  );
  t.equal(q.oldestAt(), 500, 'the oldest left was queued at 500');
  let seen = 0;
  q.forEach(() => seen++);
  t.equal(seen, 50, 'forEach leaves them queued');
  t.equal(q.length, 50);
  t.equal(
    q.drain(() => undefined),
    50,
  );
  t.equal(q.length, 0);
  t.ok(Number.isNaN(q.oldestAt()));
  t.end();
});
