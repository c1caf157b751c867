/**
 * ArrowTickSource: round trips through writeTicksArrow (IPC file and stream)
 * across chunk and record-batch boundaries (fixture and fast-check), other
 * column types (a table written by hand), malformed rows counted, unusable
 * files refused with a code.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import fc from 'fast-check';
import t from 'tap';
import { ArrowTickSource, writeTicksArrow } from '../../../backtest/sources/arrow-source.js';
import { GeneratedTickSource } from '../../../backtest/sources/generated-source.js';
import { sourceRows } from '../../../backtest/sources/tick-rows.js';
import { newTickChunk } from '../../../backtest/tick-chunk.js';
import { ErrorCodes } from '../../../kernel/errors.js';
import { noVenue, readAll, tickRowArb } from './source-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'qilin-arrow-src-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

for (const ext of ['arrow', 'arrows'] as const) {
  void t.test(
    `generated ticks → .${ext} (batches of 50) → source (chunk 7): identical`,
    async (t) => {
      const path = join(dir, `sim.${ext}`);
      const gen = (): GeneratedTickSource =>
        new GeneratedTickSource({ symbols: 3, messages: 500, seed: 5 });
      const written = await writeTicksArrow(path, sourceRows(gen(), 64), { batchRows: 50 });
      t.equal(written, 500);
      const want = (await readAll(gen(), 100)).ticks;
      const src = new ArrowTickSource(path);
      const got = await readAll(src, 7);
      t.equal(got.ticks.length, 500);
      t.same(got.ticks, want, 'every column of every tick identical');
      t.ok(
        got.sizes.slice(0, -1).every((n) => n === 7),
        'full chunks of 7 across batches of 50',
      );
      t.equal(src.read, 500);
      t.equal(src.rejected, 0);
      await src.close();
      await src.close();
    },
  );
}

void t.test('property: any stored ticks round-trip through Arrow file and stream', async (t) => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(tickRowArb, { maxLength: 60 }),
      fc.integer({ min: 1, max: 9 }),
      fc.integer({ min: 1, max: 20 }),
      fc.constantFrom('arrow', 'arrows'),
      async (rows, cap, batchRows, ext) => {
        runs++;
        const path = join(dir, `p${runs}.${ext}`);
        await writeTicksArrow(path, rows, { batchRows });
        const src = new ArrowTickSource(path);
        const got = await readAll(src, cap);
        await src.close();
        t.same(got.ticks, noVenue(rows));
        t.equal(src.rejected, 0);
      },
    ),
    { numRuns: 40 },
  );
  t.equal(runs, 40, '40 random files');
});

void t.test(
  'other column types: kind, doubles for times, no recv_us; bad rows counted',
  async (t) => {
    const table = tableFromArrays({
      kind: ['trade', 'quote', 'trade', 'trade', 'trade'],
      sym: ['AAA', 'AAA', 'AAA', 'BBB', 'AAA'],
      seq: Float64Array.from([1, 2, 3, 4, 5]),
      ts_us: Float64Array.from([1000, 2000, 3000, 4000, 5000]),
      px: Float64Array.from([10, 0, -1, 11, 12]),
      qty: Float64Array.from([1, 0, 1, 2, 3]),
      side: Int32Array.from([1, 0, 1, -1, 3]),
      bid: Float64Array.from([0, 9.5, 0, 0, 0]),
      bid_qty: Float64Array.from([0, 1, 0, 0, 0]),
      ask: Float64Array.from([0, 10.5, 0, 0, 0]),
      ask_qty: Float64Array.from([0, 2, 0, 0, 0]),
    });
    const path = join(dir, 'typed.arrow');
    writeFileSync(path, tableToIPC(table, 'file'));
    const src = new ArrowTickSource(path);
    const got = await readAll(src, 2);
    t.same(
      got.ticks.map((r) => [r.type, r.sym, r.seq, r.tsUs, r.recvUs, r.side]),
      [
        ['trade', 'AAA', 1, 1000, 1000, 1],
        ['quote', 'AAA', 2, 2000, 2000, 0],
        ['trade', 'BBB', 4, 4000, 4000, -1],
      ],
    );
    t.equal(src.rejected, 2, 'px -1 and side 3 refused');
    t.same(
      src.rejections.map((r) => r.at),
      [3, 5],
      'row numbers',
    );
    t.match(src.rejections[0]!.reason, /px -1/);
    t.match(src.rejections[1]!.reason, /side/);
  },
);

void t.test('an unusable file is refused with QLN_REPLAY_SOURCE_FAILED', async (t) => {
  writeFileSync(join(dir, 'text.arrow'), 'type,sym\nnot arrow\n');
  writeFileSync(
    join(dir, 'cols.arrow'),
    tableToIPC(tableFromArrays({ type: ['trade'], sym: ['A'], price: Float64Array.from([1]) })),
  );
  const cases: Array<[string, RegExp]> = [
    ['missing.arrow', /cannot open the file.*ENOENT/],
    ['text.arrow', /not an Arrow IPC file or stream/],
    ['cols.arrow', /unknown column "price"/],
  ];
  for (const [name, msg] of cases) {
    const src = new ArrowTickSource(join(dir, name));
    await t.rejects(
      src.next(newTickChunk(4)),
      { code: ErrorCodes.REPLAY_SOURCE_FAILED, message: msg },
      name,
    );
    await src.close();
  }
});

void t.test('an empty file (schema, no rows) reads as no ticks', async (t) => {
  const path = join(dir, 'empty.arrows');
  t.equal(await writeTicksArrow(path, []), 0);
  const src = new ArrowTickSource(path);
  t.same((await readAll(src, 3)).ticks, []);
  t.equal(src.rejected, 0);
});
