/**
 * `qilin backtest` options of strategies and sweeps (cli/backtest-command.ts):
 * bad input is a usage error naming the option, before anything runs
 * (in process); one sweep from the command line prints the ranked table and
 * writes the page with the ranked grid (a child process).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { pino } from 'pino';
import t from 'tap';
import {
  registerBacktestCommand,
  runIdOf,
  sweepWorkersDefault,
} from '../../cli/backtest-command.js';
import { loadConfig } from '../../config/config.js';
import { runQilin } from '../helpers/cli.js';

function program(): Command {
  const p = new Command().exitOverride();
  const config = loadConfig({ env: {} });
  registerBacktestCommand(p, () => ({ config, log: pino({ level: 'silent' }) }));
  return p;
}

const backtest = (...args: string[]): Promise<unknown> =>
  program().parseAsync(['node', 'qilin', 'backtest', ...args]);

void t.test('usage errors name the option and what is allowed', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [
      ['--strategy', 'momo'],
      /invalid --strategy: "momo" \(allowed: model, maCross, rsi, macd, momentum\)/,
    ],
    [
      ['--sweep', 'threshold=0.1..0.5:0'],
      /invalid --sweep: "threshold=0\.1\.\.0\.5:0" \(allowed: a step > 0/,
    ],
    [['--sweep', 'threshold=0.5..0.1:0.1'], /from ≤ to \(got 0\.5 > 0\.1\)/],
    [
      ['--sweep', 'a=1..200:1', '--sweep', 'b=1..100:1'],
      /a grid of at most 10000 points \(this one has 20000\)/,
    ],
    [
      ['--sweep', 'threshold=0.1..0.2:0.1', '--param', 'threshold=0.3'],
      /a key not also set by --param/,
    ],
    [['--rank-by', 'luck'], /invalid --rank-by: "luck"/],
    [['--workers', '0', '--sweep', 'threshold=0.1..0.2:0.1'], /invalid --workers: "0"/],
    [
      ['--strategy', 'rsi', '--sweep', 'lower=40..60:10'],
      /grid point 1 \(lower=50\): invalid rule: "50\/45\/55\/70"/,
    ],
  ];
  for (const [args, message] of cases) {
    await t.rejects(
      backtest('--messages', '10', ...args),
      { code: 'QLN_CLI_USAGE', message },
      args.join(' '),
    );
  }
});

void t.test('defaults: workers at most cores - 1; a run id is a hash of its config', (t) => {
  const cores = availableParallelism();
  t.equal(sweepWorkersDefault(64), Math.max(1, cores - 1));
  t.equal(sweepWorkersDefault(1), 1);
  const a = runIdOf('momentum', 1, { x: 1 }, 'v1');
  t.match(a, /^bt-momentum-1-[0-9a-f]{12}$/);
  t.equal(runIdOf('momentum', 1, { x: 1 }, 'v1'), a, 'same config, same id');
  t.not(runIdOf('momentum', 1, { x: 2 }, 'v1'), a, 'another config');
  t.not(runIdOf('momentum', 1, { x: 1 }, 'v2'), a, 'another code version');
  t.end();
});

void t.test('a sweep from the command line: ranked table and the page', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qilin-sweep-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const html = join(dir, 'sweep.html');
  const r = await runQilin(
    [
      'backtest',
      '--messages',
      '2000',
      '--symbols',
      '2',
      '--strategy',
      'momentum',
      '--sweep',
      'threshold=0.0002..0.0006:0.0002',
      '--workers',
      '2',
      '--rank-by',
      'pnl',
      '--html',
      html,
    ],
    { QILIN_STATE_DIR: dir },
  );
  t.equal(r.code, 0, r.err);
  t.match(
    r.out,
    /^sweep sw-[0-9a-f]{12}: strategy momentum, 3 points \(threshold=0\.0002\.\.0\.0006:0\.0002\), ranked by pnl/,
  );
  const rows = r.out.split('\n').filter((l) => /^\s+\d+\s+\d\s+0\.000\d\s/.test(l));
  t.equal(rows.length, 3, 'one row per point');
  t.match(r.out, /3 backtests over 2 worker threads/);
  const page = readFileSync(html, 'utf8');
  t.match(page, /<h2 id="sweep">Sweep sw-[0-9a-f]{12}: 3 points, ranked by pnl<\/h2>/);
  t.notMatch(page, /https?:\/\/|<script/i, 'self-contained');
});
