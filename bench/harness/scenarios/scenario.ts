import type { LatencySummary } from '../../hdr-report.js';
import type { BenchOptions } from '../bench-options.js';
import type { BenchProgress } from '../bench-progress.js';
import type { MetricEntry, ProcName, StepResult, Subject, TargetResult } from '../bench-report.js';
import { SUBJECT_LABEL } from '../bench-report.js';
import type { BenchRig, SubjectHandle } from '../bench-rig.js';
import { ratio } from '../run-stats.js';
import { SUBJECT_PROCESS, type StepMedians } from '../step-summary.js';
import type { ChartSeries, LineChartOptions } from '../svg-chart.js';
import { fmtCount, fmtRatio, fmtUs } from '../text-table.js';

/**
 * What every scenario produces, and the pieces they share: the interleaved
 * subject order, the latency-vs-something chart, metric keys for compare,
 * and target lines.
 */
export interface ScenarioOutcome {
  runs: StepResult[][];
  summary: Record<string, unknown>;
  metrics: Record<string, MetricEntry>;
  targets: TargetResult[];
  chart: LineChartOptions;
  /** The human report (without the header, which the runner prints). */
  text: string;
}

/** The size of a scenario run: seconds of load, load steps, subject starts (upper bounds). */
export interface ScenarioPlan {
  seconds: number;
  steps: number;
  starts: number;
}

/** A scenario: its plan (progress bar, deadlines) and its run. */
export interface ScenarioDefinition {
  plan(o: BenchOptions): ScenarioPlan;
  run(rig: BenchRig, progress: BenchProgress): Promise<ScenarioOutcome>;
}

/**
 * Subjects of run `run` (1-based): odd runs kernel first, even runs the
 * baselines first, so slow drift of the machine's load hits both alike.
 */
export function subjectOrder(run: number, baselines: readonly Subject[]): Subject[] {
  return run % 2 === 1 ? ['kernel', ...baselines] : [...baselines, 'kernel'];
}

/** Start a subject, run `body` with it, always stop it. */
export async function withSubject<T>(
  rig: BenchRig,
  subject: Subject,
  label: string,
  body: (h: SubjectHandle) => Promise<T>,
): Promise<T> {
  const h = await rig.startSubject(subject, label);
  try {
    return await body(h);
  } finally {
    await h.stop();
  }
}

/** A latency figure for compare (µs, lower is better). */
export function us(value: number): MetricEntry {
  return { value, unit: 'µs', better: 'lower' };
}

/** Latency percentiles of a row as metrics `<prefix>.p50` …. */
export function latencyMetrics(
  prefix: string,
  l: LatencySummary,
  into: Record<string, MetricEntry>,
): void {
  into[`${prefix}.p50`] = us(l.p50);
  into[`${prefix}.p90`] = us(l.p90);
  into[`${prefix}.p99`] = us(l.p99);
  into[`${prefix}.p99.9`] = us(l.p999);
}

/** A "lower is at most `limit`" target. */
export function atMost(name: string, value: number, limit: number, unit: string): TargetResult {
  return { name, value, limit, unit, pass: Number.isFinite(value) ? value <= limit : null };
}

/** A "at least `limit`" target. */
export function atLeast(name: string, value: number, limit: number, unit: string): TargetResult {
  return { name, value, limit, unit, pass: Number.isFinite(value) ? value >= limit : null };
}

/** Target lines for the human report. */
export function targetLines(targets: readonly TargetResult[]): string[] {
  return targets.map((t) => {
    const verdict = t.pass === null ? 'n/a ' : t.pass ? 'PASS' : 'FAIL';
    const num = (x: number): string => (t.unit === 'ticks/s' ? fmtCount(x) : fmtUs(x));
    const v =
      t.unit === 'x'
        ? fmtRatio(t.value)
        : `${Number.isFinite(t.value) ? num(t.value) : 'n/a'} ${t.unit}`;
    const lim = t.unit === 'x' ? fmtRatio(t.limit) : `${num(t.limit)} ${t.unit}`;
    return `  ${verdict}  ${t.name}: ${v} (target ${lim})`;
  });
}

/** Series "<subject> p50" (dashed) and "<subject> p99" of rows over `x`. */
export function latencySeries(
  rows: readonly StepMedians[],
  subjects: readonly Subject[],
  x: (r: StepMedians) => number,
): ChartSeries[] {
  const out: ChartSeries[] = [];
  for (const s of subjects) {
    const mine = rows.filter((r) => r.subject === s).sort((a, b) => x(a) - x(b));
    if (mine.length === 0) continue;
    out.push({
      name: `${SUBJECT_LABEL[s]} p99`,
      points: mine.map((r) => [x(r), r.latency.p99] as const),
    });
    out.push({
      name: `${SUBJECT_LABEL[s]} p50`,
      points: mine.map((r) => [x(r), r.latency.p50] as const),
      dashed: true,
    });
  }
  return out;
}

/** One ratio of two subjects' medians at one value of `by`: `subject` / `baseline`. */
export interface RatioRow {
  at: number;
  subject: Subject;
  baseline: Subject;
  p50: number;
  p99: number;
  /** CPU µs per tick of the two processes (NaN for raw NATS: no process of its own). */
  cpuPerTick: number;
}

/**
 * The pairs compared: kernel / each baseline, and hop relay / uWS relay when
 * both ran (what the thread hop alone costs).
 */
export function ratioPairs(baselines: readonly Subject[]): [Subject, Subject][] {
  const pairs = baselines.map((b): [Subject, Subject] => ['kernel', b]);
  if (baselines.includes('hop') && baselines.includes('relay')) pairs.push(['hop', 'relay']);
  return pairs;
}

/**
 * Ratios at each value of `by` (rising; pairs in ratioPairs order within
 * one value): p50 and p99 (subject / baseline), and CPU per tick of the two
 * processes.
 */
export function ratioRows(
  rows: readonly StepMedians[],
  baselines: readonly Subject[],
  by: 'rate' | 'symbols' | 'subscribers',
): RatioRow[] {
  const out: RatioRow[] = [];
  const proc = (s: Subject): ProcName | undefined => (s === 'raw' ? undefined : SUBJECT_PROCESS[s]);
  for (const [subject, b] of ratioPairs(baselines)) {
    for (const k of rows.filter((r) => r.subject === subject)) {
      const base = rows.find(
        (r) =>
          r.subject === b &&
          r.rate === k.rate &&
          r.symbols === k.symbols &&
          r.subscribers === k.subscribers,
      );
      if (base === undefined) continue;
      const kp = proc(subject);
      const bp = proc(b);
      out.push({
        at: k[by],
        subject,
        baseline: b,
        p50: ratio(k.latency.p50, base.latency.p50),
        p99: ratio(k.latency.p99, base.latency.p99),
        cpuPerTick:
          kp === undefined || bp === undefined
            ? NaN
            : ratio(k.cpuUsPerTick[kp] ?? NaN, base.cpuUsPerTick[bp] ?? NaN),
      });
    }
  }
  // Stable: within one value of `by` the pairs keep their order.
  return out.sort((a, b) => a.at - b.at);
}
