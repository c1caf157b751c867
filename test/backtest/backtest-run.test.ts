/**
 * `qilin backtest` end to end: a generated market through the kernel's own
 * actors, risk actor, fill model and portfolio. Deterministic (the same seed
 * and options give the same report, bit for bit), the accounting closes, and
 * the CLI writes the self-contained HTML report from one command.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runBacktest, type BacktestRunOptions } from '../../backtest/backtest-run.js';
import { parseParam } from '../../cli/backtest-command.js';
import { runQilin } from '../helpers/cli.js';

const base: BacktestRunOptions = {
  symbols: 4,
  messages: 40_000,
  seed: 7,
  stepUs: 1000,
  strategy: 'momentum',
  account: 'bt',
  actor: {},
  risk: {},
  fill: { model: 'next-tick', feeBps: 1 },
  initialCash: 1_000_000,
  sampleIntervalUs: 1_000_000,
  codeVersion: 'test',
};

void t.test('the same seed and options give the same report, bit for bit', (t) => {
  const a = runBacktest(base);
  const b = runBacktest(base);
  t.ok(a.ticks > 30_000, `${a.ticks} ticks through the actors`);
  t.ok(a.signals > 10, `${a.signals} signals`);
  t.ok(a.fills > 0, `${a.fills} fills`);
  t.equal(JSON.stringify(a.report), JSON.stringify(b.report), 'identical reports');
  const c = runBacktest({ ...base, seed: 8 });
  t.not(
    JSON.stringify(c.report.total),
    JSON.stringify(a.report.total),
    'another seed, another run',
  );
  t.end();
});

void t.test('the accounting closes: equity = initial cash + net PnL; fees counted', (t) => {
  const r = runBacktest({ ...base, fill: { model: 'next-tick', feeBps: 5, latencyUs: 2000 } });
  const m = r.report.total;
  const eq = r.report.curve.equity;
  const last = eq[eq.length - 1]!;
  t.ok(
    Math.abs(last - (base.initialCash + m.pnl)) < 1e-6 * base.initialCash,
    `${last} vs ${base.initialCash} + ${m.pnl}`,
  );
  t.ok(m.fees > 0, `fees ${m.fees}`);
  t.ok(r.approved <= r.signals);
  t.end();
});

void t.test('--param parses numbers and booleans; a bad one is a usage error', (t) => {
  t.same(parseParam('threshold=0.3', {}), { threshold: 0.3 });
  t.same(parseParam('emitEveryTick=true', { a: 1 }), { a: 1, emitEveryTick: true });
  t.throws(() => parseParam('threshold', {}), { code: 'QLN_CLI_USAGE' });
  t.throws(() => runBacktest({ ...base, actor: { threshold: 2 } }), {
    code: 'QLN_INVALID_ARGUMENT',
  });
  t.end();
});

void t.test('qilin backtest writes the HTML report from one command', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qilin-bt-'));
  const html = join(dir, 'report.html');
  const r = await runQilin(['backtest', '--messages', '20000', '--symbols', '3', '--html', html], {
    QILIN_STATE_DIR: dir,
  });
  t.equal(r.code, 0, r.err);
  t.match(r.out, /TOTAL/);
  t.match(r.out, /ticks through the actors/);
  const page = readFileSync(html, 'utf8');
  t.match(page, /<svg/);
  t.notMatch(page, /https?:\/\/|<script/i, 'self-contained: no network, no script');
  const bad = await runQilin(['backtest', '--fill', 'magic'], { QILIN_STATE_DIR: dir });
  t.equal(bad.code, 2);
  t.match(bad.err, /QLN_CLI_USAGE: invalid --fill: "magic"/);
});
