/**
 * openTickSource / parseTickSourceSpec: every kind of spec, its options, and
 * a clear QLN_REPLAY_SOURCE_SPEC naming what is wrong for a bad one. (The
 * store and JetStream specs against real servers: store-source*.test.ts,
 * jetstream-source.test.ts.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { GeneratedTickSource } from '../../../backtest/sources/generated-source.js';
import {
  openTickSource,
  parseTickSourceSpec,
  sourceRows,
  writeTicksArrow,
  writeTicksCsv,
} from '../../../backtest/sources/open-source.js';
import { ErrorCodes } from '../../../kernel/errors.js';
import { readAll } from './source-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'qilin-open-src-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

void t.test('specs parse into a kind and its options', (t) => {
  t.same(parseTickSourceSpec('sim'), { kind: 'sim', options: {} });
  t.same(parseTickSourceSpec('sim:symbols=8,messages=200000,seed=1,stepUs=1000'), {
    kind: 'sim',
    options: { symbols: '8', messages: '200000', seed: '1', stepUs: '1000' },
  });
  t.same(parseTickSourceSpec('store:since=2026-01-02T09:30:00Z,symbols=A|B'), {
    kind: 'store',
    options: { since: '2026-01-02T09:30:00Z', symbols: 'A|B' },
  });
  t.same(parseTickSourceSpec('jetstream:stream=QILIN_MD,seq=5'), {
    kind: 'jetstream',
    options: { stream: 'QILIN_MD', seq: '5' },
  });
  t.same(parseTickSourceSpec('data/day 1.csv'), { kind: 'csv', path: 'data/day 1.csv' });
  t.same(parseTickSourceSpec('/x/a.ARROW'), { kind: 'arrow', path: '/x/a.ARROW' });
  t.same(parseTickSourceSpec('a.arrows'), { kind: 'arrow', path: 'a.arrows' });
  t.same(parseTickSourceSpec('a.ipc'), { kind: 'arrow', path: 'a.ipc' });
  t.end();
});

void t.test(
  'a bad spec is QLN_REPLAY_SOURCE_SPEC naming the part and what is allowed',
  async (t) => {
    const cases: Array<[string, RegExp]> = [
      ['', /empty/],
      ['ticks.parquet', /neither a source kind nor a \.csv/],
      ['sim:seed', /"seed" is not key=value/],
      ['sim:seed=', /"seed=" is not key=value/],
      ['sim:speed=2', /sim has no option "speed" \(sim takes symbols, messages, seed, stepUs\)/],
      ['sim:seed=1,seed=2', /option seed given twice/],
      ['sim:symbols=0', /symbols=0 is not an integer ≥ 1/],
      ['sim:messages=1e6', /messages=1e6 is not an integer ≥ 1/],
      ['sim:stepUs=-5', /stepUs=-5 is not a number of µs > 0/],
      ['store:since=yesterday', /since=yesterday is neither µs since epoch nor an ISO date-time/],
      ['store:symbols=A||B', /symbols=A\|\|B has an empty item/],
      ['store:final=yes', /final=yes is not true or false/],
      ['store', /store needs the kernel config/],
      ['jetstream:stream=a.b', /stream=a\.b is not a stream name/],
      ['jetstream:since=1,seq=2', /since and seq together/],
      ['jetstream:seq=0', /seq=0 is not an integer ≥ 1/],
      ['jetstream', /jetstream needs the kernel config/],
    ];
    for (const [spec, msg] of cases) {
      await t.rejects(
        openTickSource(spec),
        { code: ErrorCodes.REPLAY_SOURCE_SPEC, message: msg },
        JSON.stringify(spec),
      );
    }
    await t.rejects(openTickSource('sim:x=1'), { message: /allowed: sim\[:symbols=N.*FILE\.csv/ });
  },
);

void t.test('sim:… is the generated market with those options', async (t) => {
  const src = await openTickSource('sim:symbols=3,messages=300,seed=6,stepUs=500');
  t.equal(src.total, 300);
  const want = await readAll(
    new GeneratedTickSource({ symbols: 3, messages: 300, seed: 6, stepUs: 500 }),
    64,
  );
  t.same((await readAll(src, 7)).ticks, want.ticks);
  t.equal((await openTickSource('sim')).total, 200_000, 'defaults: 200 000 messages');
});

void t.test('file specs open CSV and Arrow, header checked at open', async (t) => {
  const sim = (): GeneratedTickSource => new GeneratedTickSource({ messages: 100, seed: 2 });
  const want = (await readAll(sim(), 100)).ticks;
  for (const name of ['a.csv', 'a.arrow', 'a.arrows', 'a.ipc']) {
    const path = join(dir, name);
    if (name.endsWith('.csv')) await writeTicksCsv(path, sourceRows(sim()));
    else await writeTicksArrow(path, sourceRows(sim()));
    const src = await openTickSource(path);
    t.same((await readAll(src, 7)).ticks, want, name);
    await src.close();
  }
  await t.rejects(openTickSource(join(dir, 'missing.csv')), {
    code: ErrorCodes.REPLAY_SOURCE_FAILED,
    message: /cannot open the file/,
  });
});
