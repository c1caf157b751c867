import fc from 'fast-check';
import t from 'tap';
import { Worker } from 'node:worker_threads';
import { SpscRing } from '../../kernel/spsc-ring.js';
import { hasCode } from '../../kernel/errors.js';

const pow2 = fc.integer({ min: 1, max: 8 }).map((k) => 1 << k);

/** Write a record whose words are all derived from `n`, so any mix-up shows. */
function write(ring: SpscRing, n: number): boolean {
  const at = ring.claim();
  if (at === -1) return false;
  for (let w = 0; w < ring.recordWords; w++) ring.f64[at + w] = n * 1000 + w;
  ring.publish();
  return true;
}

function read(ring: SpscRing): number | undefined {
  const at = ring.peek();
  if (at === -1) return undefined;
  const n = Math.floor(ring.f64[at]! / 1000);
  for (let w = 0; w < ring.recordWords; w++) {
    if (ring.f64[at + w] !== n * 1000 + w) throw new Error(`torn record ${n} word ${w}`);
  }
  ring.release();
  return n;
}

void t.test('never loses, duplicates or reorders under random interleavings (model check)', (t) => {
  fc.assert(
    fc.property(
      pow2,
      fc.integer({ min: 1, max: 4 }).map((k) => k * 8),
      fc.integer({ min: -5000, max: 5000 }), // start near the 32-bit wrap as well as at 0
      fc.boolean(),
      fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 300 })), { maxLength: 60 }),
      (capacity, recordBytes, offset, nearWrap, ops) => {
        const start = nearWrap ? (0x7fffffff + offset) | 0 : 0;
        const producer = SpscRing.create(capacity, recordBytes, start);
        const consumer = SpscRing.attach(producer.buffer);
        const model: number[] = [];
        let next = 0;
        for (const [produce, count] of ops) {
          for (let i = 0; i < count; i++) {
            if (produce) {
              const ok = write(producer, next);
              if (ok !== model.length < capacity) return false; // full exactly at capacity
              if (ok) model.push(next++);
            } else {
              const got = read(consumer);
              if (got !== model.shift()) return false;
            }
            if (producer.size() !== model.length) return false;
          }
        }
        return true;
      },
    ),
    { numRuns: 300 },
  );
  t.pass('model agreed on every run');
  t.end();
});

void t.test('boundary: capacity-1, capacity, and one past (like undici FixedQueue)', (t) => {
  const ring = SpscRing.create(2048, 64);
  let accepted = 0;
  for (let i = 0; i < 2047; i++) if (write(ring, i)) accepted++;
  t.equal(accepted, 2047, '2047 accepted');
  t.equal(ring.size(), 2047, '2047 held');
  t.ok(write(ring, 2047), 'the 2048th fits');
  t.equal(ring.size(), 2048, 'full');
  t.notOk(write(ring, 2048), 'the 2049th is refused');
  t.equal(read(ring), 0, 'oldest first');
  t.ok(write(ring, 2048), 'one slot freed, one record in (wraps to slot 0)');
  const rest: number[] = [];
  for (let i = 1; i <= 2048; i++) rest.push(read(ring)!);
  t.same(
    rest,
    Array.from({ length: 2048 }, (_, i) => i + 1),
    'the rest in order across the wrap',
  );
  t.equal(read(ring), undefined, 'empty again');
  t.end();
});

void t.test('32-bit counter wrap keeps order', (t) => {
  const ring = SpscRing.create(4, 8, 0x7ffffffe);
  const got: number[] = [];
  for (let i = 0; i < 20; i++) {
    t.ok(write(ring, i));
    got.push(read(ring)!);
  }
  t.same(
    got,
    Array.from({ length: 20 }, (_, i) => i),
  );
  t.end();
});

void t.test('commit/flush publishes a batch at once', (t) => {
  const p = SpscRing.create(8, 8);
  const c = SpscRing.attach(p.buffer);
  for (let i = 0; i < 3; i++) {
    const at = p.claim();
    p.f64[at] = i;
    p.commit();
  }
  t.equal(c.peek(), -1, 'not visible before flush');
  p.flush();
  t.equal(c.size(), 3);
  t.end();
});

void t.test('bad options and foreign buffers fail with codes', (t) => {
  t.throws(() => SpscRing.create(1000, 64), /capacity/);
  t.throws(() => SpscRing.create(8, 12), /recordBytes/);
  t.ok(
    hasCode(
      catchErr(() => SpscRing.create(3, 8)),
      'QLN_INVALID_ARGUMENT',
    ),
  );
  t.ok(
    hasCode(
      catchErr(() => SpscRing.attach(new SharedArrayBuffer(1024))),
      'QLN_RING_LAYOUT',
    ),
  );
  t.end();
});

function catchErr(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

void t.test('across threads: a worker consumer sees every record once, in order', async (t) => {
  for (const capacity of [2, 64, 1024]) {
    const ring = SpscRing.create(capacity, 64);
    const total = 200_000;
    const worker = new Worker(new URL('./fixtures/ring-consumer.js', import.meta.url), {
      workerData: { buffer: ring.buffer, total },
    });
    const result = new Promise<{ count: number; errors: number; sum: number }>(
      (resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      },
    );
    let n = 0;
    while (n < total) {
      const at = ring.claim();
      if (at === -1) {
        // Half the time park on the ring's tail (as a worker producer does),
        // half the time yield to the event loop: both paths must hand over.
        if (n % 2 === 0) ring.waitForSpace(1000);
        else await new Promise((r) => setImmediate(r));
        continue;
      }
      for (let w = 0; w < 8; w++) ring.f64[at + w] = n + w;
      ring.publish();
      n++;
    }
    const r = await result;
    await worker.terminate();
    t.equal(r.errors, 0, `capacity ${capacity}: no torn, lost or reordered records`);
    t.equal(r.count, total, `capacity ${capacity}: all ${total} records`);
  }
});
