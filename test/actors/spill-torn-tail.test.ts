import {
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import t from 'tap';
import { StoreWriter, parseSpill } from '../../actors/store-writer.js';
import type { EventStore, MetricRow, StoreBatch, TickRow } from '../../kernel/event-store.js';
import { QilinError, ErrorCodes } from '../../kernel/errors.js';

/**
 * Spill file truncated at any byte: replay keeps every complete record and
 * drops the torn tail, counted in stats().spillTornTails and logged.
 */

/** Counts rows per insert; refuses while `down`. */
class CountingStore implements EventStore {
  rows = 0;
  inserts = 0;
  down = false;
  migrate(): Promise<void> {
    return Promise.resolve();
  }
  insert(batch: StoreBatch): Promise<void> {
    if (this.down) return Promise.reject(new QilinError(ErrorCodes.STORE_FAILED, 'down'));
    this.inserts++;
    this.rows +=
      batch.ticks.length +
      batch.predictions.length +
      batch.signals.length +
      batch.quality.length +
      batch.metrics.length;
    return Promise.resolve();
  }
  query(): Promise<Array<Record<string, unknown>>> {
    return Promise.resolve([]);
  }
  ping(): Promise<boolean> {
    return Promise.resolve(!this.down);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function tick(seq: number, sym: string): TickRow {
  return {
    type: seq % 2 === 0 ? 'trade' : 'quote',
    sym,
    venue: 'sim',
    seq,
    tsUs: 1_732_300_000_000_000 + seq,
    recvUs: 0,
    px: 100 + seq / 7,
    qty: 1,
    side: 1,
    bid: 99.5,
    bidQty: 3,
    ask: 100.5,
    askQty: 4,
  };
}

function metric(i: number): MetricRow {
  return { tsUs: 1_732_300_000_000_000 + i, name: 'm', labels: '{"k":"ü€"}', value: i };
}

/** Records of the file as written: its JSON is bytes [start, end), then `\n` at end. */
function records(buf: Buffer): Array<{ start: number; end: number; rows: number }> {
  const out: Array<{ start: number; end: number; rows: number }> = [];
  let start = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a, start);
    if (nl < 0) break;
    const rec = JSON.parse(buf.subarray(start, nl).toString('utf8')) as { rows: unknown[] };
    out.push({ start, end: nl, rows: rec.rows.length });
    start = nl + 1;
  }
  return out;
}

const batchArb = fc.record({
  ticks: fc.array(fc.constantFrom('AAA', 'BBB', 'ÄÖ'), { maxLength: 40 }),
  metrics: fc.nat({ max: 30 }),
});

void t.test(
  'a spill file cut at any byte replays exactly its complete records, no exception, torn tail counted (property)',
  async (t) => {
    let runs = 0;
    let torn = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(batchArb, { minLength: 1, maxLength: 4 }),
        fc.nat(),
        async (batches, cutAt) => {
          const dir = mkdtempSync(join(tmpdir(), 'qilin-torn-'));
          try {
            // 1. Spill: the store is down, every flush writes one spill file.
            const down = new CountingStore();
            down.down = true;
            const w1 = new StoreWriter({
              store: down,
              log: pino({ level: 'silent' }),
              spillDir: dir,
              retryMinMs: 60_000,
              retryMaxMs: 60_000,
            });
            await w1.start();
            let seq = 0;
            let added = 0;
            for (const b of batches) {
              for (const sym of b.ticks) w1.addTick(tick(seq++, sym));
              for (let i = 0; i < b.metrics; i++) w1.addMetrics([metric(i)]);
              added += b.ticks.length + b.metrics;
              await w1.flush();
            }
            await w1.close();
            const files = readdirSync(dir)
              .filter((n) => n.endsWith('.ndjson'))
              .sort();
            if (added === 0) {
              if (files.length !== 0) throw new Error('spill file for no rows');
              return;
            }
            // 2. Cut the last file at a random byte offset.
            const last = join(dir, files[files.length - 1]!);
            const buf = readFileSync(last);
            const cut = cutAt % (buf.length + 1);
            truncateSync(last, cut);
            let whole = 0;
            for (const f of files.slice(0, -1))
              for (const r of records(readFileSync(join(dir, f)))) whole += r.rows;
            let kept = 0;
            let tail = false;
            for (const r of records(buf)) {
              if (r.end <= cut) kept += r.rows;
              else if (r.start < cut) tail = true;
            }
            // 3. Replay into a store that answers.
            const up = new CountingStore();
            const lines: Array<{ msg: string; tornBytes?: number }> = [];
            const log = pino(
              { level: 'warn' },
              {
                write: (s: string) => {
                  lines.push(JSON.parse(s) as { msg: string; tornBytes?: number });
                },
              },
            );
            const w2 = new StoreWriter({ store: up, log, spillDir: dir });
            await w2.start();
            await w2.flush();
            const s = w2.stats();
            await w2.close();
            if (up.rows !== whole + kept)
              throw new Error(`replayed ${up.rows} rows, expected ${whole} + ${kept}`);
            if (s.spilledFiles !== 0) throw new Error(`${s.spilledFiles} files left`);
            if (readdirSync(dir).some((n) => n === 'rejected'))
              throw new Error('a torn file was set aside');
            const warned = lines.filter((l) => /torn record/.test(l.msg)).length;
            if (s.spillTornTails !== (tail ? 1 : 0) || warned !== s.spillTornTails)
              throw new Error(`torn tail ${tail}: counter ${s.spillTornTails}, ${warned} warnings`);
            runs++;
            if (tail) torn++;
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 150 },
    );
    t.ok(runs > 100, `${runs} runs with rows`);
    t.ok(torn > 20, `${torn} of them cut inside a record`);
  },
);

void t.test('parseSpill: every prefix of a file, exact rows, tail bytes, never throws', (t) => {
  const text =
    JSON.stringify({ table: 'ticks', rows: [tick(1, 'A'), tick(2, 'ü')] }) +
    '\n' +
    JSON.stringify({ table: 'metrics', rows: [metric(1)] }) +
    '\n';
  const nl = text.indexOf('\n');
  for (let cut = 0; cut <= text.length; cut++) {
    const p = parseSpill(text.slice(0, cut));
    const want = cut < nl ? 0 : cut < text.length - 1 ? 2 : 3;
    t.equal(p.rows, want, `cut ${cut}: rows`);
    const tailLen = cut < nl ? cut : cut <= nl + 1 || cut >= text.length - 1 ? 0 : cut - nl - 1;
    t.equal(p.tornBytes, tailLen, `cut ${cut}: torn bytes`);
  }
  t.throws(() => parseSpill('{"table":"ticks","rows":[]\n{"table":"ticks","rows":[]}\n'));
  t.end();
});

void t.test(
  'a torn file left by a previous run is counted in spilledRows by its complete records',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'qilin-torn-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const full = JSON.stringify({ table: 'ticks', rows: [tick(1, 'A'), tick(2, 'A')] }) + '\n';
    writeFileSync(join(dir, '1-0.ndjson'), full + full.slice(0, 20));
    const store = new CountingStore();
    store.down = true;
    const w = new StoreWriter({
      store,
      log: pino({ level: 'silent' }),
      spillDir: dir,
      retryMinMs: 60_000,
    });
    await w.start();
    t.equal(w.stats().spilledRows, 2);
    t.equal(w.stats().spillTornTails, 1);
    await w.close();
  },
);
