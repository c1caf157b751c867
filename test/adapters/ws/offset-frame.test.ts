import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { PerformanceObserver } from 'node:perf_hooks';
import fc from 'fast-check';
import { pino } from 'pino';
import t from 'tap';
import { parseApiKeys } from '../../../adapters/ws/api-keys.js';
import { OffsetFrameWriter } from '../../../adapters/ws/offset-frame.js';
import { UwsServer } from '../../../adapters/ws/uws-server.js';

void t.test('the offset goes before the final brace; trailing whitespace is dropped', (t) => {
  const w = new OffsetFrameWriter();
  const f = Buffer.from('{"topic":"signal/X","data":{"a":1}}');
  t.equal(w.write(f, 0)?.toString(), '{"topic":"signal/X","data":{"a":1},"off":0}');
  t.equal(w.write(f, 9)?.toString(), '{"topic":"signal/X","data":{"a":1},"off":9}');
  t.equal(
    w.write(Buffer.from('{"topic":"status","data":[]} \n'), Number.MAX_SAFE_INTEGER)?.toString(),
    `{"topic":"status","data":[],"off":${Number.MAX_SAFE_INTEGER}}`,
  );
  t.equal(w.write(Buffer.from('not json'), 1), undefined, 'no final brace: left as it is');
  t.equal(w.write(Buffer.from('}'), 1), undefined);
  const big = Buffer.from(`{"topic":"signal/X","data":"${'x'.repeat(100_000)}"}`);
  t.equal(
    (JSON.parse(w.write(big, 12)!.toString()) as { off: number }).off,
    12,
    'a frame larger than the scratch',
  );
  t.end();
});

void t.test('property: the result parses to the frame plus off', (t) => {
  const w = new OffsetFrameWriter();
  fc.assert(
    fc.property(fc.jsonValue(), fc.nat(), (data, off) => {
      const frame = Buffer.from(JSON.stringify({ topic: 'signal/X', data }));
      const out = JSON.parse(w.write(frame, off)!.toString()) as unknown;
      const want = { topic: 'signal/X', data: JSON.parse(JSON.stringify(data)) as unknown, off };
      return JSON.stringify(out) === JSON.stringify(want);
    }),
  );
  t.pass('property held');
  t.end();
});

/**
 * publishFrame (offset insertion + history append) allocates nothing per
 * message: 200,000 publishes of frames of a few sizes cause no garbage
 * collection and leave the heap where it was.
 */
void t.test('publishFrame allocates nothing per message', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const server = new UwsServer({
    port: 0,
    host: '127.0.0.1',
    apiKeys: parseApiKeys('alloc-test-key-01:read'),
    log: pino({ level: 'silent' }),
    historyBytes: 1 << 20, // wraps many times over the run
  });
  await server.start();
  t.teardown(() => server.close());
  const entry = server.topic('signal/ALLOC');
  const frames = [10, 200, 700].map((n) =>
    Buffer.from(`{"topic":"signal/ALLOC","data":{"pad":"${'p'.repeat(n)}"}}`),
  );
  // Warm up: views per length, JIT, the snapshot buffer.
  for (let i = 0; i < 30_000; i++) server.publishFrame(entry, frames[i % 3]!);
  const gcAt: number[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcAt.push(e.startTime);
  });
  obs.observe({ entryTypes: ['gc'] });
  gc();
  await new Promise((r) => setImmediate(r));
  const t0 = performance.now();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 200_000; i++) server.publishFrame(entry, frames[i % 3]!);
  const after = process.memoryUsage().heapUsed;
  const t1 = performance.now();
  await new Promise((r) => setImmediate(r)); // let the observer report
  obs.disconnect();
  t.equal(
    gcAt.filter((at) => at >= t0 && at <= t1).length,
    0,
    'no garbage collection during 200,000 publishes',
  );
  // One object per message would be ≥ 12 bytes each (2.4 MB); allow 2 bytes of noise per message.
  t.ok(after - before < 400_000, `heap grew ${after - before} bytes (< 2 per message)`);
  t.equal(server.offsets('signal/ALLOC').last, 230_000, 'every publish got its offset');
});
