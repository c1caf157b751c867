/**
 * `qilin replay` and `qilin backtest --from` as a user runs them, on a CSV
 * written from the generated market: the same predictions and signals, byte
 * for byte, in 1 and 2 workers (sha256 and the files), the backtest report
 * of the file equal to the report of the same market generated, and a bad
 * `--from` refused with a coded error.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { GeneratedTickSource } from '../../backtest/sources/generated-source.js';
import { sourceRows } from '../../backtest/sources/tick-rows.js';
import { writeTicksCsv } from '../../backtest/sources/csv-source.js';
import { runQilin } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'qilin-replay-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const csv = join(dir, 'ticks.csv');
const market = { symbols: 5, messages: 30_000, seed: 4 };
const rows = await writeTicksCsv(csv, sourceRows(new GeneratedTickSource(market)));

interface Summary {
  ticks: number;
  rejected: number;
  predictions: number;
  signals: number;
  sha256: string;
  workers: number;
}

void t.test('qilin replay: the same bytes whatever --workers', async (t) => {
  t.equal(rows, market.messages, `${rows} ticks written to the CSV`);
  const runs: Summary[] = [];
  for (const workers of [1, 2]) {
    const out = join(dir, `replay-${workers}.ndjson`);
    const r = await runQilin(
      ['replay', '--from', csv, '--workers', String(workers), '--out', out, '--json'],
      {},
      120_000,
    );
    t.equal(r.code, 0, `${workers} workers: exit 0 ${r.err}`);
    const s = JSON.parse(r.out) as Summary;
    t.equal(s.ticks, market.messages, `${workers} workers: every tick replayed`);
    t.equal(s.rejected, 0);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    t.equal(lines.length, s.predictions + s.signals, 'one line per prediction and signal');
    const signal = JSON.parse(lines.find((l) => l.startsWith('{"topic":"signal/'))!) as {
      data: { id: string; lat?: unknown };
    };
    t.match(signal.data.id, /^momentum:[A-Z]+-USD:\d+$/, 'signal ids as live: strategy:sym:seq');
    t.equal(signal.data.lat, undefined, 'no wall-clock stage stamps');
    runs.push(s);
  }
  t.ok(runs[0]!.signals > 100, `${runs[0]!.signals} signals`);
  t.equal(runs[1]!.sha256, runs[0]!.sha256, 'same sha256 in 1 and 2 workers');
  t.equal(
    readFileSync(join(dir, 'replay-2.ndjson'), 'utf8'),
    readFileSync(join(dir, 'replay-1.ndjson'), 'utf8'),
    'identical files',
  );
});

void t.test(
  'qilin backtest --from FILE: the report of the generated market it holds',
  async (t) => {
    const fromFile = await runQilin(
      ['backtest', '--strategy', 'momentum', '--from', csv, '--workers', '2', '--json'],
      {},
      120_000,
    );
    t.equal(fromFile.code, 0, `exit 0 ${fromFile.err}`);
    const generated = await runQilin(
      [
        'backtest',
        '--strategy',
        'momentum',
        '--symbols',
        String(market.symbols),
        '--messages',
        String(market.messages),
        '--seed',
        String(market.seed),
        '--json',
      ],
      {},
      120_000,
    );
    t.equal(generated.code, 0, `exit 0 ${generated.err}`);
    type Report = { total: Record<string, unknown>; curve: { equity: number[] } };
    const a = JSON.parse(fromFile.out) as Report;
    const b = JSON.parse(generated.out) as Report;
    t.ok(Number(a.total['trades']) > 0, `${String(a.total['trades'])} trades`);
    t.same(a.total, b.total, 'the same metrics');
    t.same(a.curve.equity, b.curve.equity, 'the same equity curve');
  },
);

void t.test('bad input: a clear, coded error and exit 2', async (t) => {
  const bad = await runQilin(['replay', '--from', join(dir, 'nope.txt')]);
  t.equal(bad.code, 2);
  t.match(bad.err, /QLN_REPLAY_SOURCE_SPEC: .*nope\.txt/);
  const missing = await runQilin(['replay', '--from', join(dir, 'missing.csv')]);
  t.not(missing.code, 0);
  t.match(missing.err, /QLN_REPLAY_SOURCE_FAILED/);
  const speed = await runQilin(['replay', '--from', csv, '--speed', '-1']);
  t.equal(speed.code, 2);
  t.match(speed.err, /invalid --speed/);
  const sweep = await runQilin(['backtest', '--from', csv, '--sweep', 'threshold=0.1..0.2:0.1']);
  t.equal(sweep.code, 2);
  t.match(sweep.err, /--from with --sweep/);
});
