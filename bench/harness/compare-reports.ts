import { ErrorCodes, QilinError } from '../../kernel/errors.js';
import type { BenchReport, MetricEntry } from './bench-report.js';
import { formatTable } from './text-table.js';

/**
 * `qilin bench compare A.json B.json`: every figure of the two documents'
 * `metrics` maps side by side, the ratio after/before, and a flag when the
 * change goes the wrong way by more than the threshold (default 10 %: two
 * runs on a shared 2-core machine differ by that much without any change).
 */

/** One compared figure. */
export interface CompareRow {
  key: string;
  unit: string;
  better: 'lower' | 'higher';
  before: number;
  after: number;
  /** after / before (NaN when either is missing or before is 0). */
  ratio: number;
  /** Worse than `before` by more than the threshold. */
  regression: boolean;
  /** Better than `before` by more than the threshold. */
  improvement: boolean;
}

/** The result of a comparison. */
export interface Comparison {
  scenarioBefore: string;
  scenarioAfter: string;
  threshold: number;
  rows: CompareRow[];
  regressions: number;
  improvements: number;
  /** Differences in setup that make the comparison questionable. */
  notes: string[];
}

/** Is `doc` a bench report with a metrics map? Throws QLN_CLI_USAGE naming `what` otherwise. */
export function asReport(doc: unknown, what: string): BenchReport {
  const d = doc as Partial<BenchReport> | null;
  if (
    typeof d !== 'object' ||
    d === null ||
    d.bench !== 'qilin-bench' ||
    typeof d.metrics !== 'object' ||
    d.metrics === null
  ) {
    throw new QilinError(
      ErrorCodes.CLI_USAGE,
      `${what} is not a qilin bench report (expected "bench":"qilin-bench" and a "metrics" object)`,
    );
  }
  return d as BenchReport;
}

function compareOne(
  key: string,
  a: MetricEntry | undefined,
  b: MetricEntry | undefined,
  threshold: number,
): CompareRow {
  const ref = b ?? a!;
  const before = a?.value ?? Number.NaN;
  const after = b?.value ?? Number.NaN;
  const ratio =
    Number.isFinite(before) && Number.isFinite(after) && before !== 0 ? after / before : Number.NaN;
  let regression = false;
  let improvement = false;
  if (Number.isFinite(before) && Number.isFinite(after)) {
    const worse = ref.better === 'lower' ? after - before : before - after;
    const scale = Math.abs(before);
    // A change from 0 (e.g. drops) counts as soon as it is not 0.
    regression = scale === 0 ? worse > 0 : worse > threshold * scale;
    improvement = scale === 0 ? false : -worse > threshold * scale;
  }
  return { key, unit: ref.unit, better: ref.better, before, after, ratio, regression, improvement };
}

/** Compare two reports (`before`, `after`). `threshold` is a fraction (0.1 = 10 %). */
export function compareReports(
  before: BenchReport,
  after: BenchReport,
  threshold = 0.1,
): Comparison {
  if (!(threshold >= 0) || !Number.isFinite(threshold)) {
    throw new QilinError(
      ErrorCodes.CLI_USAGE,
      `invalid --threshold: ${threshold} (allowed: a fraction >= 0, e.g. 0.1)`,
    );
  }
  const keys = [...Object.keys(before.metrics)];
  for (const k of Object.keys(after.metrics)) if (!keys.includes(k)) keys.push(k);
  const rows = keys.map((k) => compareOne(k, before.metrics[k], after.metrics[k], threshold));
  const notes: string[] = [];
  if (before.scenario !== after.scenario) {
    notes.push(`different scenarios: ${before.scenario} vs ${after.scenario}`);
  }
  for (const opt of ['symbols', 'seconds', 'warmupSeconds', 'runs', 'store', 'smoke']) {
    const x = JSON.stringify(before.options?.[opt]);
    const y = JSON.stringify(after.options?.[opt]);
    if (x !== y) notes.push(`option ${opt} differs: ${x ?? 'unset'} vs ${y ?? 'unset'}`);
  }
  if (before.host?.cpus !== after.host?.cpus) {
    notes.push(`different machines: ${before.host?.cpus} vs ${after.host?.cpus} CPUs`);
  }
  return {
    scenarioBefore: before.scenario,
    scenarioAfter: after.scenario,
    threshold,
    rows,
    regressions: rows.filter((r) => r.regression).length,
    improvements: rows.filter((r) => r.improvement).length,
    notes,
  };
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** The comparison as a text table plus a verdict line. */
export function formatComparison(c: Comparison, labels: [string, string]): string {
  const rows = c.rows.map((r) => [
    r.key,
    r.unit,
    fmt(r.before),
    fmt(r.after),
    Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}x` : 'n/a',
    r.regression ? 'REGRESSION' : r.improvement ? 'better' : '',
  ]);
  const lines = [
    `compare (${c.scenarioBefore}): before ${labels[0]}`,
    `                after  ${labels[1]}`,
    ...c.notes.map((n) => `note: ${n}`),
    '',
    formatTable(['metric', 'unit', 'before', 'after', 'after/before', 'flag'], rows, [
      'left',
      'left',
      'right',
      'right',
      'right',
      'left',
    ]),
    '',
    `${c.regressions} regression(s), ${c.improvements} improvement(s) beyond ±${Math.round(c.threshold * 100)} %` +
      ' (lower is better for latency, CPU and memory; higher for rates)',
  ];
  return `${lines.join('\n')}\n`;
}
