import type {
  IntervalSample,
  MetricEntry,
  ProcName,
  StepResult,
  Subject,
} from '../bench-report.js';
import { SUBJECT_LABEL } from '../bench-report.js';
import { median, slope } from '../run-stats.js';
import type { ChartSeries } from '../svg-chart.js';
import { SUBJECT_PROCESS, failureLines, latencyTable, medianSteps } from '../step-summary.js';
import { formatTable, fmtNum, fmtRate, fmtUs } from '../text-table.js';
import { latencyMetrics, subjectOrder, withSubject, type ScenarioDefinition } from './scenario.js';

/**
 * `qilin bench soak`: a fixed load (default 10k ticks/s, 1,000 symbols) for
 * minutes (default 5), one long step per subject: latency per interval
 * (default 10 s) and the RSS and CPU of every process at each interval's end.
 * Drift = least-squares slope over the intervals after the warm-up: RSS in
 * MiB per minute, p99 in µs per minute. One run by default (drift is within
 * a run; `--runs` repeats it).
 */

/** Drift of one soak step. */
export interface SoakDrift {
  subject: Subject;
  run: number;
  /** MiB per minute, per process. */
  rssSlopeMiBPerMin: Partial<Record<ProcName, number>>;
  /** RSS at the first and last interval after the warm-up, MiB, per process. */
  rssFirstMiB: Partial<Record<ProcName, number>>;
  rssLastMiB: Partial<Record<ProcName, number>>;
  /** p99 slope, µs per minute. */
  p99SlopeUsPerMin: number;
  p99First: number;
  p99Last: number;
}

/** Intervals that hold measured samples (after the warm-up). */
export function measuredIntervals(s: StepResult): IntervalSample[] {
  return s.intervals.filter((i) => i.t > s.warmupSeconds && i.latency.count > 0);
}

/** Drift figures of one soak step. */
export function soakDrift(s: StepResult): SoakDrift {
  const iv = measuredIntervals(s);
  const procs = new Set<ProcName>();
  for (const i of iv) for (const p of Object.keys(i.rssMiB) as ProcName[]) procs.add(p);
  const rssSlope: Partial<Record<ProcName, number>> = {};
  const first: Partial<Record<ProcName, number>> = {};
  const last: Partial<Record<ProcName, number>> = {};
  for (const p of procs) {
    rssSlope[p] = slope(iv.map((i) => [i.t / 60, i.rssMiB[p] ?? NaN] as const));
    first[p] = iv[0]?.rssMiB[p] ?? NaN;
    last[p] = iv[iv.length - 1]?.rssMiB[p] ?? NaN;
  }
  return {
    subject: s.subject,
    run: s.run,
    rssSlopeMiBPerMin: rssSlope,
    rssFirstMiB: first,
    rssLastMiB: last,
    p99SlopeUsPerMin: slope(iv.map((i) => [i.t / 60, i.latency.p99] as const)),
    p99First: iv[0]?.latency.p99 ?? NaN,
    p99Last: iv[iv.length - 1]?.latency.p99 ?? NaN,
  };
}

export const soakScenario: ScenarioDefinition = {
  plan(o) {
    const starts = o.runs * (1 + o.baselines.length);
    return { seconds: starts * o.seconds, steps: starts, starts };
  },

  async run(rig, progress) {
    const o = rig.opts;
    const runs: StepResult[][] = [];
    for (let run = 1; run <= o.runs; run++) {
      const steps: StepResult[] = [];
      for (const subject of subjectOrder(run, o.baselines)) {
        await withSubject(rig, subject, `run ${run}`, async (h) => {
          progress.step(
            `run ${run}/${o.runs} ${SUBJECT_LABEL[subject]} soak @${fmtRate(o.rate)}/s`,
          );
          const s = await rig.runStep(h, {
            run,
            rate: o.rate,
            symbols: o.symbols,
            subscribers: 1,
            seconds: o.seconds,
            warmupSeconds: o.warmupSeconds,
            intervalSeconds: o.intervalSeconds,
            onProgress: (x) => progress.within(x),
          });
          steps.push(s);
          progress.log(
            `  run ${run} ${SUBJECT_LABEL[subject]} soak: p99 ${fmtUs(s.latency.p99)} µs over ${s.intervals.length} intervals${s.pass ? '' : `  FAIL: ${s.reasons.join('; ')}`}`,
          );
        });
      }
      runs.push(steps);
    }
    const subjects: Subject[] = ['kernel', ...o.baselines];
    const medians = medianSteps(runs);
    const all = runs.flat();
    const drifts = all.map(soakDrift);
    const metrics: Record<string, MetricEntry> = {};
    for (const m of medians) latencyMetrics(`latency.${m.subject}`, m.latency, metrics);
    for (const s of subjects) {
      const mine = drifts.filter((d) => d.subject === s);
      const p = SUBJECT_PROCESS[s];
      metrics[`rssSlopeMiBPerMin.${s}`] = {
        value: median(mine.map((d) => d.rssSlopeMiBPerMin[p] ?? NaN)),
        unit: 'MiB/min',
        better: 'lower',
      };
      metrics[`p99SlopeUsPerMin.${s}`] = {
        value: median(mine.map((d) => d.p99SlopeUsPerMin)),
        unit: 'µs/min',
        better: 'lower',
      };
    }
    const intervalTables = all.map((s) => {
      const p = SUBJECT_PROCESS[s.subject];
      return [
        `${SUBJECT_LABEL[s.subject]}, run ${s.run}:`,
        formatTable(
          [
            't s',
            'n',
            'p50 µs',
            'p99 µs',
            'max µs',
            `${p} MiB`,
            `${p} cpu%`,
            'nats MiB',
            'loadgen MiB',
          ],
          s.intervals.map((i) => [
            fmtNum(i.t, 1),
            String(i.latency.count),
            i.latency.count > 0 ? fmtUs(i.latency.p50) : '-',
            i.latency.count > 0 ? fmtUs(i.latency.p99) : '-',
            i.latency.count > 0 ? fmtUs(i.latency.max) : '-',
            fmtNum(i.rssMiB[p] ?? NaN, 1),
            fmtNum(i.cpuPercent[p] ?? NaN, 0),
            fmtNum(i.rssMiB['nats-server'] ?? NaN, 1),
            fmtNum(i.rssMiB['loadgen'] ?? NaN, 1),
          ]),
          ['right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
        ),
      ].join('\n');
    });
    const driftLines = drifts.map((d) => {
      const procs = Object.keys(d.rssSlopeMiBPerMin) as ProcName[];
      return (
        `  ${SUBJECT_LABEL[d.subject].padEnd(10)} run ${d.run}: p99 ${fmtUs(d.p99First)} → ${fmtUs(d.p99Last)} µs (${fmtNum(d.p99SlopeUsPerMin)} µs/min); RSS ` +
        procs
          .map(
            (p) =>
              `${p} ${fmtNum(d.rssFirstMiB[p] ?? NaN)} → ${fmtNum(d.rssLastMiB[p] ?? NaN)} MiB (${fmtNum(d.rssSlopeMiBPerMin[p] ?? NaN, 2)} MiB/min)`,
          )
          .join(', ')
      );
    });
    const series: ChartSeries[] = [];
    for (const s of all) {
      const procs: ProcName[] = [SUBJECT_PROCESS[s.subject]];
      if (s.subject === 'kernel' && s.run === 1) procs.push('nats-server', 'loadgen');
      for (const p of procs) {
        series.push({
          name: `${SUBJECT_LABEL[s.subject]} run ${s.run}: ${p}`,
          points: s.intervals.map((i) => [i.t, i.rssMiB[p] ?? NaN] as const),
          dashed: p !== SUBJECT_PROCESS[s.subject],
        });
      }
    }
    const text = [
      `${fmtRate(o.rate)} ticks/s over ${o.symbols} symbols for ${o.seconds} s, ${o.intervalSeconds} s intervals (first ${o.warmupSeconds} s warm-up)`,
      latencyTable(medians, 'rate'),
      '',
      'drift (intervals after the warm-up; least-squares slopes):',
      ...driftLines,
      '',
      ...intervalTables,
      ...(failureLines(medians).length > 0 ? ['', 'failed steps:', ...failureLines(medians)] : []),
    ].join('\n');
    return {
      runs,
      summary: { rate: o.rate, symbols: o.symbols, steps: medians, drift: drifts },
      metrics,
      targets: [],
      chart: {
        title: `qilin bench soak: RSS over time at ${fmtRate(o.rate)} ticks/s, ${o.symbols} symbols`,
        xLabel: 'seconds',
        yLabel: 'RSS MiB',
        xScale: 'linear',
        yScale: 'linear',
        series,
      },
      text,
    };
  },
};
