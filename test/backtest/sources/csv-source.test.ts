/**
 * CsvTickSource: round trips through writeTicksCsv across chunk boundaries
 * (fixture and fast-check), ClickHouse's CSVWithNames form, malformed rows
 * counted with their line numbers, unusable files refused with a code, and
 * flat memory on a file much larger than the chunk.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import {
  CsvTickSource,
  splitCsvLine,
  writeTicksCsv,
} from '../../../backtest/sources/csv-source.js';
import { GeneratedTickSource } from '../../../backtest/sources/generated-source.js';
import { sourceRows } from '../../../backtest/sources/tick-rows.js';
import { newTickChunk } from '../../../backtest/tick-chunk.js';
import { ErrorCodes } from '../../../kernel/errors.js';
import { heapAfterGc, noVenue, readAll, tickRowArb } from './source-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'qilin-csv-src-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

void t.test('splitCsvLine: plain, quoted, doubled quotes, empty fields, broken quoting', (t) => {
  const f: string[] = [];
  t.equal(splitCsvLine('a,b,c', f), 3);
  t.same(f.slice(0, 3), ['a', 'b', 'c']);
  t.equal(splitCsvLine('"tr,ade","say ""hi""",', f), 3);
  t.same(f.slice(0, 3), ['tr,ade', 'say "hi"', '']);
  t.equal(splitCsvLine(',', f), 2);
  t.same(f.slice(0, 2), ['', '']);
  t.equal(splitCsvLine('"open', f), -1, 'unterminated quote');
  t.equal(splitCsvLine('"a"b,c', f), -1, 'text after a closing quote');
  t.end();
});

void t.test('generated ticks → CSV → CsvTickSource (chunk 7): identical columns', async (t) => {
  const path = join(dir, 'sim.csv');
  const src = new GeneratedTickSource({ symbols: 3, messages: 500, seed: 4 });
  const written = await writeTicksCsv(path, sourceRows(src, 64));
  t.equal(written, 500, '500 rows written');
  const want = (await readAll(new GeneratedTickSource({ symbols: 3, messages: 500, seed: 4 }), 100))
    .ticks;
  const csv = new CsvTickSource(path);
  const got = await readAll(csv, 7);
  t.equal(got.ticks.length, 500);
  t.same(got.ticks, want, 'every column of every tick identical');
  t.same(got.sizes.slice(0, -1), new Array(got.sizes.length - 1).fill(7), 'full chunks of 7');
  t.equal(got.sizes.at(-1), 500 % 7, 'then the rest');
  t.equal(csv.read, 500);
  t.equal(csv.rejected, 0);
  t.same(csv.symbols, src.symbols, 'symbols in order of first appearance');
  t.equal(csv.total, undefined, 'a CSV file does not know its length up front');
  await csv.close();
  await csv.close();
  t.equal(await csv.next(newTickChunk(4)), 0, 'closed: nothing more');
});

void t.test('property: any stored ticks round-trip through CSV, any chunk size', async (t) => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(tickRowArb, { maxLength: 60 }),
      fc.integer({ min: 1, max: 9 }),
      async (rows, cap) => {
        runs++;
        const path = join(dir, `p${runs}.csv`);
        await writeTicksCsv(path, rows);
        const src = new CsvTickSource(path);
        const got = await readAll(src, cap);
        await src.close();
        t.same(got.ticks, noVenue(rows));
        t.equal(src.rejected, 0);
      },
    ),
    { numRuns: 60 },
  );
  t.equal(runs, 60, '60 random files');
});

void t.test(
  "ClickHouse's CSVWithNames (quoted strings, every table column) replays as is",
  async (t) => {
    const path = join(dir, 'ch.csv');
    writeFileSync(
      path,
      [
        '"type","sym","venue","seq","ts_us","recv_us","ts","date","px","qty","side","bid","bid_qty","ask","ask_qty"',
        '"trade","AAA","v1",1,1767225600000001,1767225600000009,"2026-01-01 00:00:00","2026-01-01",101.5,2,-1,0,0,0,0',
        '"quote","AAA","v1",2,1767225600000002,1767225600000010,"2026-01-01 00:00:00","2026-01-01",0,0,0,101.25,3,101.75,4',
        '',
      ].join('\r\n'),
    );
    const src = new CsvTickSource(path);
    const got = await readAll(src, 1);
    t.same(got.ticks, [
      {
        type: 'trade',
        sym: 'AAA',
        seq: 1,
        tsUs: 1767225600000001,
        recvUs: 1767225600000009,
        px: 101.5,
        qty: 2,
        side: -1,
        bid: 0,
        bidQty: 0,
        ask: 0,
        askQty: 0,
      },
      {
        type: 'quote',
        sym: 'AAA',
        seq: 2,
        tsUs: 1767225600000002,
        recvUs: 1767225600000010,
        px: 0,
        qty: 0,
        side: 0,
        bid: 101.25,
        bidQty: 3,
        ask: 101.75,
        askQty: 4,
      },
    ]);
  },
);

void t.test('a BOM before the header is skipped', async (t) => {
  const path = join(dir, 'bom.csv');
  writeFileSync(path, '\uFEFFtype,sym,seq,ts_us,px,qty\ntrade,X,1,1000,10,1\n');
  const src = new CsvTickSource(path);
  t.same(
    (await readAll(src, 4)).ticks.map((r) => [r.type, r.sym, r.px]),
    [['trade', 'X', 10]],
  );
});

void t.test(
  'kind for type, no recv_us (= ts_us), buy/sell sides, a trades-only file',
  async (t) => {
    const path = join(dir, 'min.csv');
    writeFileSync(
      path,
      'kind,sym,seq,ts_us,px,qty,side\ntrade,X,1,1000,10,1,buy\n2,X,2,2000,11,2,\n1,X,3,3000,12,3,sell\n',
    );
    const src = new CsvTickSource(path);
    const got = await readAll(src, 2);
    t.same(
      got.ticks.map((r) => [r.type, r.tsUs, r.recvUs, r.side]),
      [
        ['trade', 1000, 1000, 1],
        ['trade', 3000, 3000, -1],
      ],
    );
    t.equal(src.rejected, 1, 'the quote has no bid/ask columns: refused, counted');
    t.match(src.rejections, [{ at: 3, reason: /bid NaN/ }]);
  },
);

void t.test(
  'malformed rows are counted, the first ones with line and reason, never replayed',
  async (t) => {
    const path = join(dir, 'bad.csv');
    const good = (seq: number): string =>
      `trade,AAA,v,${seq},${1000 + seq},${1000 + seq},10,1,1,0,0,0,0`;
    const lines = [
      'type,sym,venue,seq,ts_us,recv_us,px,qty,side,bid,bid_qty,ask,ask_qty',
      good(1),
      'trade,AAA,v,2,1002,1002,0,1,1,0,0,0,0', // px 0
      'trade,AAA,v,3,1003', // too few fields
      good(4),
      'fill,AAA,v,5,1005,1005,10,1,1,0,0,0,0', // unknown type
      'trade,A A,v,6,1006,1006,10,1,1,0,0,0,0', // sym not a token
      'trade,AAA,v,x,1007,1007,10,1,1,0,0,0,0', // seq not a number
      'trade,AAA,v,8,1008,1008,10,1,7,0,0,0,0', // side 7
      'quote,AAA,v,9,1009,1009,0,0,0,10,1,-1,1', // ask < 0
      '"trade,AAA,v,10,1010,1010,10,1,1,0,0,0,0', // broken quoting
      'trade,AAA,v,11,1.5,1011,10,1,1,0,0,0,0', // ts not an integer
      'trade,AAA,v,12,1012,1012,Infinity,1,1,0,0,0,0',
      'trade,AAA,v,13,1013,1013,10,-2,1,0,0,0,0',
      'trade,AAA,v,14,1014,,10,1,1,0,0,0,0', // recv empty: = ts
      good(15),
    ];
    writeFileSync(path, lines.join('\n'));
    const src = new CsvTickSource(path);
    const got = await readAll(src, 3);
    t.same(
      got.ticks.map((r) => r.seq),
      [1, 4, 14, 15],
      'only the good rows',
    );
    t.equal(got.ticks[2]!.recvUs, 1014, 'an empty recv_us is ts_us');
    t.equal(src.read, 4);
    t.equal(src.rejected, 11, 'eleven refused rows counted');
    t.equal(src.rejections.length, 10, 'the first ten kept');
    t.same(
      src.rejections.map((r) => r.at),
      [3, 4, 6, 7, 8, 9, 10, 11, 12, 13],
      'their line numbers (header = line 1)',
    );
    t.match(src.rejections[0]!.reason, /px 0 is not a finite price > 0/);
    t.match(src.rejections[1]!.reason, /5 fields, the header has 13/);
    t.match(src.rejections[2]!.reason, /type is not trade or quote/);
    t.match(src.rejections[7]!.reason, /broken quoting/);
  },
);

void t.test(
  'an unusable file is refused with QLN_REPLAY_SOURCE_FAILED naming the problem',
  async (t) => {
    const cases: Array<[string, string | undefined, RegExp]> = [
      ['missing.csv', undefined, /cannot open the file.*ENOENT/],
      ['empty.csv', '', /no header line/],
      [
        'unknown.csv',
        'type,sym,seq,ts_us,price\n',
        /unknown column "price" \(allowed: kind or type, sym/,
      ],
      ['twice.csv', 'type,sym,seq,ts_us,sym\n', /column "sym" appears twice/],
      ['lacks.csv', 'type,sym,px\n', /lacks required columns seq, ts_us/],
    ];
    for (const [name, text, msg] of cases) {
      const path = join(dir, name);
      if (text !== undefined) writeFileSync(path, text);
      const src = new CsvTickSource(path);
      await t.rejects(
        src.next(newTickChunk(4)),
        { code: ErrorCodes.REPLAY_SOURCE_FAILED, message: msg },
        name,
      );
    }
  },
);

void t.test('memory stays flat: 200k rows read in chunks of 10k', async (t) => {
  const path = join(dir, 'big.csv');
  const n = 200_000;
  await writeTicksCsv(
    path,
    sourceRows(new GeneratedTickSource({ symbols: 8, messages: n, seed: 9 }), 10_000),
  );
  const bytes = statSync(path).size;
  const src = new CsvTickSource(path);
  const c = newTickChunk(10_000);
  await src.next(c);
  const before = heapAfterGc();
  let peak = 0;
  let chunks = 1;
  while ((await src.next(c)) > 0) {
    if (++chunks % 5 === 0) peak = Math.max(peak, heapAfterGc() - before);
  }
  peak = Math.max(peak, heapAfterGc() - before);
  t.equal(src.read, n, `${n} ticks read from ${(bytes / 1e6).toFixed(0)} MB`);
  // Keeping the rows (≥ 100 B each as objects or columns) would need ≥ 20 MB.
  t.ok(
    peak < 4e6,
    `memory grew ${(peak / 1e6).toFixed(1)} MB (bound 4 MB) reading a ${(bytes / 1e6).toFixed(0)} MB file`,
  );
  await src.close();
});
