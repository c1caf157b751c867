import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { StoreWriter, type StoreWriterOptions } from '../../actors/store-writer.js';
import type { EventStore, StoreBatch, TickRow } from '../../kernel/event-store.js';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';

const log = pino({ level: 'silent' });

function tick(seq: number): TickRow {
  return {
    type: 'trade',
    sym: 'AAA',
    venue: 'sim',
    seq,
    tsUs: 1_732_300_000_000_000 + seq,
    recvUs: 0,
    px: 100,
    qty: 1,
    side: 1,
    bid: 0,
    bidQty: 0,
    ask: 0,
    askQty: 0,
  };
}

/**
 * An in-memory EventStore that fails on demand (a fake of the interface:
 * the real stores have their own integration tests). `down` refuses inserts
 * and pings; `hold` keeps inserts pending until `release()`.
 */
class FakeStore implements EventStore {
  ticks: TickRow[] = [];
  /** Tick seqs as they were at insert time (rows may be reused after release). */
  insertedSeqs: number[] = [];
  metrics = 0;
  down = false;
  hold = false;
  /** Refuse inserts while answering pings (bad data, not an outage). */
  refuse = false;
  inserts = 0;
  inFlight = 0;
  maxInFlight = 0;
  private held: Array<() => void> = [];
  private watchers: Array<() => void> = [];

  migrate(): Promise<void> {
    return Promise.resolve();
  }
  async insert(batch: StoreBatch): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.notify();
    try {
      if (this.hold) await new Promise<void>((r) => this.held.push(r));
      if (this.down) throw new QilinError(ErrorCodes.STORE_FAILED, 'fake store is down');
      if (this.refuse) throw new QilinError(ErrorCodes.STORE_FAILED, 'fake store refuses the rows');
      this.inserts++;
      this.ticks.push(...batch.ticks);
      for (const r of batch.ticks) this.insertedSeqs.push(r.seq);
      this.metrics += batch.metrics.length;
    } finally {
      this.inFlight--;
      this.notify();
    }
  }
  query(): Promise<Array<Record<string, unknown>>> {
    return Promise.resolve([]);
  }
  ping(): Promise<boolean> {
    this.notify();
    return Promise.resolve(!this.down);
  }
  /** Wake `until` once the writer's reaction to this call (microtasks) has run. */
  private notify(): void {
    setImmediate(() => {
      for (const w of this.watchers.splice(0)) w();
    });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  release(): void {
    for (const r of this.held.splice(0)) r();
  }
  /** Resolve when `cond()` holds after an insert settles; reject after `ms`. */
  async until(cond: () => boolean, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('condition not met before the deadline');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.watchers.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
  seqs(): number[] {
    return this.ticks.map((r) => r.seq).sort((a, b) => a - b);
  }
}

function tmp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'qilin-spill-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writer(
  store: EventStore,
  spillDir: string,
  o: Partial<StoreWriterOptions> = {},
): StoreWriter {
  return new StoreWriter({ store, log, spillDir, retryMinMs: 5, retryMaxMs: 20, ...o });
}

const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, i) => a + i);

void t.test(
  'batches at maxBatchRows, one insert in flight, flush waits for the insert',
  async (t) => {
    const store = new FakeStore();
    const w = writer(store, tmp(t), { maxBatchRows: 100, flushIntervalMs: 60_000 });
    await w.start();
    store.hold = true;
    for (let i = 0; i < 100; i++) w.addTick(tick(i));
    await store.until(() => store.inFlight === 1);
    for (let i = 100; i < 350; i++) w.addTick(tick(i));
    t.equal(store.inFlight, 1, 'second batch waits for the first');
    t.equal(w.stats().inflight, 100);
    t.equal(w.stats().buffered, 250);
    store.hold = false;
    store.release();
    await w.flush();
    t.same(store.seqs(), range(0, 350));
    t.equal(store.maxInFlight, 1);
    t.equal(w.stats().inserted.ticks, 350);
    t.equal(w.stats().buffered, 0);
    t.equal(w.stats().lagMs, 0);
    await w.close();
  },
);

void t.test(
  'release: each live batch once its insert or spill is done; replayed rows never',
  async (t) => {
    const store = new FakeStore();
    const dir = tmp(t);
    let released = 0;
    const w = writer(store, dir, {
      flushIntervalMs: 60_000,
      // As the store worker's pools do: the rows are reused at once (poisoned here).
      release: (batch) => {
        for (const r of batch.ticks) {
          r.seq = -1;
          released++;
        }
      },
    });
    await w.start();
    for (let i = 0; i < 100; i++) w.addTick(tick(i));
    await w.flush();
    t.same(store.insertedSeqs, range(0, 100), 'inserted before release');
    t.equal(released, 100, 'the inserted batch released');
    store.down = true;
    for (let i = 100; i < 250; i++) w.addTick(tick(i));
    await w.flush();
    t.equal(w.stats().spilledRows, 150);
    t.equal(released, 250, 'the spilled batch released after the spill file was written');
    store.down = false;
    await store.until(() => store.insertedSeqs.length >= 250);
    await w.flush();
    t.same(store.insertedSeqs, range(0, 250), 'the spill file holds the rows as they were');
    t.equal(released, 250, 'rows read back from a spill file are not released');
    for (let i = 250; i < 260; i++) w.addTick(tick(i));
    await w.close();
    t.same(store.insertedSeqs, range(0, 260), 'close inserts the rest');
    t.equal(released, 260);
  },
);

void t.test('the interval flushes a small batch without a flush() call', async (t) => {
  const store = new FakeStore();
  const w = writer(store, tmp(t), { flushIntervalMs: 20 });
  await w.start();
  w.addMetrics([{ tsUs: 1, name: 'm', labels: '', value: 1 }]);
  await store.until(() => store.metrics === 1, 5000);
  t.equal(w.stats().inserted.metrics, 1);
  await w.close();
});

void t.test('store down → spill → up → replay: every row exactly once', async (t) => {
  const store = new FakeStore();
  const dir = tmp(t);
  const w = writer(store, dir, { maxBatchRows: 50, flushIntervalMs: 10 });
  await w.start();
  store.down = true;
  for (let i = 0; i < 1000; i++) w.addTick(tick(i));
  await w.flush();
  let s = w.stats();
  t.equal(s.storeUp, false);
  t.ok(s.failures >= 1);
  t.ok(s.spilledFiles >= 1, 'spilled to disk');
  t.equal(s.spilledRows, 1000);
  t.equal(s.buffered + s.inflight, 0);
  t.equal(store.ticks.length, 0);
  // keep accepting while down
  for (let i = 1000; i < 1500; i++) w.addTick(tick(i));
  await w.flush();
  store.down = false;
  await store.until(() => store.ticks.length >= 1500);
  await w.flush();
  t.same(store.seqs(), range(0, 1500), 'each row once, none lost');
  s = w.stats();
  t.equal(s.storeUp, true);
  t.equal(s.spilledFiles, 0);
  t.same(readdirSync(dir), [], 'spill files deleted after replay');
  await w.close();
});

void t.test('spill files left by a previous run are replayed on start', async (t) => {
  const dir = tmp(t);
  const down = new FakeStore();
  down.down = true;
  const a = writer(down, dir, { maxBatchRows: 100 });
  await a.start();
  for (let i = 0; i < 250; i++) a.addTick(tick(i));
  await a.close();
  t.ok(readdirSync(dir).length >= 1, 'files left on disk');

  const up = new FakeStore();
  const b = writer(up, dir);
  await b.start();
  await b.flush();
  t.same(up.seqs(), range(0, 250));
  t.same(readdirSync(dir), []);
  await b.close();
  await b.close();
});

void t.test(
  'a spill file the answering store keeps refusing is set aside, not looped on',
  async (t) => {
    const dir = tmp(t);
    const store = new FakeStore();
    const w = writer(store, dir, { maxReplayAttempts: 2 });
    await w.start();
    store.refuse = true;
    w.addTick(tick(1));
    await w.flush();
    t.equal(w.stats().spilledRows, 1);
    await store.until(() => w.stats().spilledFiles === 0);
    t.ok(w.stats().failures >= 3, 'live insert + 2 replays failed');
    t.equal(store.ticks.length, 0);
    t.equal(readdirSync(join(dir, 'rejected')).length, 1, 'kept in rejected/');
    await w.close();
  },
);

void t.test('memory stays bounded whatever the store does (property)', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.oneof(
          fc.constant('down'),
          fc.constant('up'),
          fc.constant('hold'),
          fc.constant('release'),
          fc.integer({ min: 1, max: 400 }),
        ),
        { maxLength: 40 },
      ),
      async (ops) => {
        const dir = mkdtempSync(join(tmpdir(), 'qilin-spill-p-'));
        const store = new FakeStore();
        const max = 256;
        const w = writer(store, dir, {
          maxBatchRows: 64,
          maxBufferedRows: max,
          flushIntervalMs: 5,
        });
        await w.start();
        let seq = 0;
        try {
          for (const op of ops) {
            if (op === 'down') store.down = true;
            else if (op === 'up') store.down = false;
            else if (op === 'hold') store.hold = true;
            else if (op === 'release') {
              store.hold = false;
              store.release();
            } else {
              for (let i = 0; i < op; i++) {
                w.addTick(tick(seq++));
                const s = w.stats();
                if (s.buffered >= max || s.inflight > max)
                  throw new Error(`bound broken: ${JSON.stringify(s)}`);
              }
            }
          }
          store.down = false;
          store.hold = false;
          store.release();
          await store.until(() => store.ticks.length >= seq);
          await w.flush();
          if (store.ticks.length !== seq || new Set(store.seqs()).size !== seq)
            throw new Error('lost or duplicated rows');
        } finally {
          store.hold = false;
          store.release();
          await w.close();
          rmSync(dir, { recursive: true, force: true });
        }
      },
    ),
    { numRuns: 25 },
  );
  t.pass('buffer within maxBufferedRows, in-flight within it, every row stored once');
});

void t.test('options are checked', (t) => {
  const store = new FakeStore();
  t.throws(() => writer(store, '/tmp/x', { maxBatchRows: 0 }), {
    code: 'QLN_INVALID_ARGUMENT',
    message: /maxBatchRows/,
  });
  t.throws(() => writer(store, '/tmp/x', { maxBatchRows: 10, maxBufferedRows: 5 }), {
    code: 'QLN_INVALID_ARGUMENT',
    message: /maxBufferedRows/,
  });
  t.throws(() => writer(store, ''), { code: 'QLN_INVALID_ARGUMENT', message: /spillDir/ });
  t.end();
});

/** Tick seqs in the spill files of `dir` (fsync'd before the writer counts them durable). */
function spilledSeqs(dir: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.ndjson')) continue;
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
      if (line === '') continue;
      const rec = JSON.parse(line) as { table: string; rows: TickRow[] };
      if (rec.table === 'ticks') for (const r of rec.rows) out.push(r.seq);
    }
  }
  return out;
}

void t.test(
  'durableMark: never ahead of what is inserted or spilled, never backwards, all rows at the end (property)',
  async (t) => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.constant('down'),
            fc.constant('up'),
            fc.constant('hold'),
            fc.constant('release'),
            fc.constant('flush'),
            fc.integer({ min: 1, max: 300 }),
          ),
          { maxLength: 30 },
        ),
        async (ops) => {
          const dir = mkdtempSync(join(tmpdir(), 'qilin-spill-d-'));
          const store = new FakeStore();
          const w = writer(store, dir, {
            maxBatchRows: 64,
            maxBufferedRows: 200,
            flushIntervalMs: 5,
          });
          await w.start();
          let seq = 0;
          let last = 0;
          const check = (): void => {
            const mark = w.durableMark();
            if (mark < last) throw new Error(`mark went back ${last} → ${mark}`);
            if (mark > w.rowsAdded) throw new Error(`mark ${mark} past ${w.rowsAdded} rows`);
            last = mark;
            const have = new Set([...store.insertedSeqs, ...spilledSeqs(dir)]);
            for (let i = 0; i < mark; i++)
              if (!have.has(i)) throw new Error(`row ${i} below mark ${mark} is nowhere`);
          };
          try {
            for (const op of ops) {
              if (op === 'down') store.down = true;
              else if (op === 'up') store.down = false;
              else if (op === 'hold') store.hold = true;
              else if (op === 'release') {
                store.hold = false;
                store.release();
              } else if (op === 'flush') {
                if (!store.hold) await w.flush();
              } else for (let i = 0; i < op; i++) w.addTick(tick(seq++));
              check();
              await new Promise((r) => setImmediate(r));
              check();
            }
            store.down = false;
            store.hold = false;
            store.release();
            await w.flush();
            await store.until(() => w.durableMark() === seq);
            check();
          } finally {
            store.hold = false;
            store.release();
            await w.close();
            rmSync(dir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 25 },
    );
    t.pass('durable mark sound and complete');
  },
);
