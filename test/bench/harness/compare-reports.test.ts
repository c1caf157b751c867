/**
 * Unit tests of `qilin bench compare`: ratios after/before, regression and
 * improvement flags in both directions (lower-is-better latency, higher-is-
 * better rates), the threshold, metrics present on one side only, setup
 * differences noted, and inputs that are not bench reports.
 */
import t from 'tap';
import type { BenchReport, MetricEntry } from '../../../bench/harness/bench-report.js';
import {
  asReport,
  compareReports,
  formatComparison,
} from '../../../bench/harness/compare-reports.js';

function report(
  metrics: Record<string, MetricEntry>,
  options: Record<string, unknown> = {},
): BenchReport {
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
      platform: 'linux-x64',
      loadavgBefore: [],
      loadavgAfter: [],
    },
    options: { symbols: 1000, runs: 3, ...options },
    setup: {},
    summary: {},
    metrics,
    targets: [],
    runs: [],
  };
}

const lower = (value: number): MetricEntry => ({ value, unit: 'µs', better: 'lower' });
const higher = (value: number): MetricEntry => ({ value, unit: 'ticks/s', better: 'higher' });

void t.test('ratios and flags in both directions', (t) => {
  const a = report({
    'latency.kernel@1000.p99': lower(1000),
    'latency.kernel@1000.p50': lower(100),
    'latency.relay@1000.p99': lower(500),
    'maxSustained.kernel': higher(20_000),
    'maxSustained.relay': higher(50_000),
    drops: lower(0),
  });
  const b = report({
    'latency.kernel@1000.p99': lower(1200), // 20 % worse: regression
    'latency.kernel@1000.p50': lower(105), // 5 % worse: within the threshold
    'latency.relay@1000.p99': lower(400), // 20 % better: improvement
    'maxSustained.kernel': higher(10_000), // halved: regression
    'maxSustained.relay': higher(60_000), // 20 % more: improvement
    drops: lower(3), // from 0: regression
  });
  const c = compareReports(a, b, 0.1);
  const row = (k: string) => c.rows.find((r) => r.key === k)!;
  t.equal(row('latency.kernel@1000.p99').ratio, 1.2);
  t.ok(row('latency.kernel@1000.p99').regression);
  t.notOk(row('latency.kernel@1000.p50').regression);
  t.notOk(row('latency.kernel@1000.p50').improvement);
  t.ok(row('latency.relay@1000.p99').improvement);
  t.ok(row('maxSustained.kernel').regression, 'a lower rate is worse');
  t.equal(row('maxSustained.kernel').ratio, 0.5);
  t.ok(row('maxSustained.relay').improvement);
  t.ok(row('drops').regression, 'any growth from 0 is a regression');
  t.ok(Number.isNaN(row('drops').ratio), 'no ratio from 0');
  t.equal(c.regressions, 3);
  t.equal(c.improvements, 2);
  t.same(c.notes, []);
  const text = formatComparison(c, ['a.json', 'b.json']);
  t.match(text, /latency\.kernel@1000\.p99\s+µs\s+1,000\s+1,200\s+1\.20x\s+REGRESSION/);
  t.match(text, /3 regression\(s\), 2 improvement\(s\) beyond ±10 %/);
  t.end();
});

void t.test('threshold decides what counts', (t) => {
  const a = report({ x: lower(100) });
  const b = report({ x: lower(130) });
  t.equal(compareReports(a, b, 0.5).regressions, 0);
  t.equal(compareReports(a, b, 0.2).regressions, 1);
  t.equal(compareReports(a, b, 0).regressions, 1);
  t.throws(() => compareReports(a, b, -1), { code: 'QLN_CLI_USAGE' });
  t.end();
});

void t.test('metrics on one side only and setup differences', (t) => {
  const a = report({ old: lower(1), both: lower(1) }, { symbols: 1000 });
  const b = {
    ...report({ new: lower(2), both: lower(1) }, { symbols: 100 }),
    scenario: 'throughput' as const,
  };
  const c = compareReports(a, b);
  t.same(
    c.rows.map((r) => r.key),
    ['old', 'both', 'new'],
  );
  const old = c.rows.find((r) => r.key === 'old')!;
  t.ok(Number.isNaN(old.after));
  t.notOk(old.regression);
  t.match(c.notes.join('\n'), /different scenarios: latency vs throughput/);
  t.match(c.notes.join('\n'), /option symbols differs: 1000 vs 100/);
  t.match(formatComparison(c, ['a', 'b']), /n\/a/);
  t.end();
});

void t.test('asReport refuses documents that are not bench reports', (t) => {
  t.throws(() => asReport(null, 'x.json'), {
    code: 'QLN_CLI_USAGE',
    message: /x\.json is not a qilin bench report/,
  });
  t.throws(() => asReport({ bench: 'pipeline' }, 'p.json'), { code: 'QLN_CLI_USAGE' });
  t.throws(() => asReport({ bench: 'qilin-bench' }, 'p.json'), { code: 'QLN_CLI_USAGE' });
  t.equal(asReport(report({}), 'ok.json').bench, 'qilin-bench');
  t.end();
});
