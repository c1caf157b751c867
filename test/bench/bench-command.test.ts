/**
 * The `qilin bench` command line as users run it (`node bin/qilin.js`), no
 * services: every option in --help, usage errors exit 2 with QLN_CLI_USAGE
 * naming the option, and `qilin bench compare` on two report files (table,
 * regression flags, --fail-on-regression, bad inputs).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { BenchReport } from '../../bench/harness/bench-report.js';
import { repoRoot } from '../helpers/services.js';

function qilin(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/qilin.js', ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

void t.test('--help of every scenario lists its options', (t) => {
  const top = qilin('bench', '--help');
  t.equal(top.code, 0);
  for (const s of ['latency', 'throughput', 'symbols', 'fanout', 'soak', 'compare']) {
    t.match(top.stdout, new RegExp(`\\n  ${s} `), `bench --help names ${s}`);
  }
  const expected: Record<string, string[]> = {
    latency: ['--rates', '--symbols', '--cold-seconds'],
    throughput: ['--rates', '--slo-p99-ms', '--cold-seconds'],
    symbols: ['--rate', '--symbol-counts'],
    fanout: ['--rate', '--symbols', '--subscribers'],
    soak: ['--rate', '--symbols', '--interval-seconds'],
  };
  const common = [
    '--seconds',
    '--warmup-seconds',
    '--runs',
    '--baselines',
    '--store',
    '--drain-seconds',
    '--settle-seconds',
    '--ready-timeout-seconds',
    '--seed',
    '--smoke',
    '--json',
    '--results-dir',
    '--no-write',
    '--no-progress',
  ];
  for (const [s, opts] of Object.entries(expected)) {
    const h = qilin('bench', s, '--help');
    t.equal(h.code, 0, `${s} --help exits 0`);
    for (const o of [...opts, ...common]) t.match(h.stdout, o, `${s} --help lists ${o}`);
  }
  t.end();
});

void t.test('usage errors exit 2 with QLN_CLI_USAGE naming the option', (t) => {
  const cases: [string[], RegExp][] = [
    [['bench', 'latency', '--rates', 'abc'], /QLN_CLI_USAGE: invalid --rates: "abc"/],
    [
      ['bench', 'latency', '--bogus'],
      /QLN_CLI_USAGE: unknown option '--bogus' \(see qilin bench latency --help\)/,
    ],
    [['bench', 'throughput', '--slo-p99-ms', '0'], /invalid --slo-p99-ms/],
    [['bench', 'symbols', '--symbol-counts', '10,5'], /invalid --symbol-counts/],
    [['bench', 'fanout', '--baselines', 'raw,kafka'], /invalid --baselines/],
    [['bench', 'soak', '--runs'], /QLN_CLI_USAGE: option '--runs <n>' argument missing/],
    [['bench', 'nope'], /QLN_CLI_USAGE: unknown command 'nope'/],
    [['bench', 'compare', 'only-one.json'], /QLN_CLI_USAGE: missing required argument 'after'/],
  ];
  for (const [args, message] of cases) {
    const r = qilin(...args);
    t.equal(r.code, 2, `${args.join(' ')} exits 2`);
    t.match(r.stderr, message, args.join(' '));
    t.equal(r.stdout, '', 'nothing on stdout');
  }
  t.end();
});

function report(metrics: BenchReport['metrics']): BenchReport {
  return {
    bench: 'qilin-bench',
    version: 1,
    scenario: 'latency',
    date: '2026-11-27T00:00:00.000Z',
    command: 'qilin bench latency',
    host: {
      cpus: 2,
      model: 'x',
      node: 'v20',
      platform: 'linux',
      loadavgBefore: [],
      loadavgAfter: [],
    },
    options: {},
    setup: {},
    summary: {},
    metrics,
    targets: [],
    runs: [],
  };
}

void t.test('compare: table, flags, --fail-on-regression, bad files', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qilin-bench-compare-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const a = join(dir, 'a.json');
  const b = join(dir, 'b.json');
  writeFileSync(
    a,
    JSON.stringify(
      report({ 'latency.kernel@1000.p99': { value: 1000, unit: 'µs', better: 'lower' } }),
    ),
  );
  writeFileSync(
    b,
    JSON.stringify(
      report({ 'latency.kernel@1000.p99': { value: 2000, unit: 'µs', better: 'lower' } }),
    ),
  );
  const r = qilin('bench', 'compare', a, b);
  t.equal(r.code, 0, 'a regression alone does not fail the command');
  t.match(r.stdout, /latency\.kernel@1000\.p99\s+µs\s+1,000\s+2,000\s+2\.00x\s+REGRESSION/);
  t.match(r.stdout, /1 regression\(s\)/);
  t.equal(qilin('bench', 'compare', a, b, '--fail-on-regression').code, 1);
  t.equal(qilin('bench', 'compare', b, a, '--fail-on-regression').code, 0, 'an improvement passes');
  const j = qilin('bench', 'compare', a, b, '--json');
  t.equal((JSON.parse(j.stdout) as { regressions: number }).regressions, 1);
  const missing = qilin('bench', 'compare', a, join(dir, 'nope.json'));
  t.equal(missing.code, 2);
  t.match(missing.stderr, /QLN_CLI_USAGE: cannot read .*nope\.json/);
  writeFileSync(join(dir, 'bad.json'), '{"bench":"pipeline"}');
  const bad = qilin('bench', 'compare', a, join(dir, 'bad.json'));
  t.equal(bad.code, 2);
  t.match(bad.stderr, /bad\.json is not a qilin bench report/);
  writeFileSync(join(dir, 'text.json'), 'not json');
  t.match(qilin('bench', 'compare', join(dir, 'text.json'), a).stderr, /text\.json is not JSON/);
  t.match(qilin('bench', 'compare', a, b, '--threshold', 'x').stderr, /invalid --threshold: "x"/);
  t.end();
});
