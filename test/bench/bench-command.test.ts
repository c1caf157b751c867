/**
 * The `qilin bench` command line as users run it (`node bin/qilin.js`), no
 * services: every option in --help, usage errors exit 2 with QLN_CLI_USAGE
 * naming the option, and `qilin bench compare` on two report files (table,
 * regression flags, --fail-on-regression, bad inputs). The runs of a subtest
 * are independent, so they are spawned together, then checked in order.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { BenchReport } from '../../bench/harness/bench-report.js';
import { runQilin } from '../helpers/cli.js';

async function qilin(
  ...args: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await runQilin(args);
  return { code: r.code, stdout: r.out, stderr: r.err };
}

void t.test('--help of every scenario lists its options', async (t) => {
  const scenarios = ['latency', 'throughput', 'symbols', 'fanout', 'soak'] as const;
  const [top, ...helps] = await Promise.all([
    qilin('bench', '--help'),
    ...scenarios.map((s) => qilin('bench', s, '--help')),
  ]);
  if (top === undefined) throw new Error('no bench --help run');
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
  for (const [i, s] of scenarios.entries()) {
    const h = helps[i]!;
    t.equal(h.code, 0, `${s} --help exits 0`);
    for (const o of [...expected[s]!, ...common]) t.match(h.stdout, o, `${s} --help lists ${o}`);
  }
});

void t.test('usage errors exit 2 with QLN_CLI_USAGE naming the option', async (t) => {
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
  const runs = await Promise.all(cases.map(([args]) => qilin(...args)));
  for (const [i, [args, message]] of cases.entries()) {
    const r = runs[i]!;
    t.equal(r.code, 2, `${args.join(' ')} exits 2`);
    t.match(r.stderr, message, args.join(' '));
    t.equal(r.stdout, '', 'nothing on stdout');
  }
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

void t.test('compare: table, flags, --fail-on-regression, bad files', async (t) => {
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
  writeFileSync(join(dir, 'bad.json'), '{"bench":"pipeline"}');
  writeFileSync(join(dir, 'text.json'), 'not json');
  const [r, failing, improving, j, missing, bad, text, threshold] = await Promise.all([
    qilin('bench', 'compare', a, b),
    qilin('bench', 'compare', a, b, '--fail-on-regression'),
    qilin('bench', 'compare', b, a, '--fail-on-regression'),
    qilin('bench', 'compare', a, b, '--json'),
    qilin('bench', 'compare', a, join(dir, 'nope.json')),
    qilin('bench', 'compare', a, join(dir, 'bad.json')),
    qilin('bench', 'compare', join(dir, 'text.json'), a),
    qilin('bench', 'compare', a, b, '--threshold', 'x'),
  ]);
  t.equal(r.code, 0, 'a regression alone does not fail the command');
  t.match(r.stdout, /latency\.kernel@1000\.p99\s+µs\s+1,000\s+2,000\s+2\.00x\s+REGRESSION/);
  t.match(r.stdout, /1 regression\(s\)/);
  t.equal(failing.code, 1);
  t.equal(improving.code, 0, 'an improvement passes');
  t.equal((JSON.parse(j.stdout) as { regressions: number }).regressions, 1);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /QLN_CLI_USAGE: cannot read .*nope\.json/);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /bad\.json is not a qilin bench report/);
  t.match(text.stderr, /text\.json is not JSON/);
  t.match(threshold.stderr, /invalid --threshold: "x"/);
});
