import type { LatencySummary } from '../../hdr-report.js';
import type { MetricEntry, StepResult, Subject } from '../bench-report.js';
import { SUBJECT_LABEL } from '../bench-report.js';
import { median, ratio } from '../run-stats.js';
import {
  failureLines,
  findRow,
  latencyTable,
  medianSteps,
  processLines,
  SUBJECT_PROCESS,
  type StepMedians,
} from '../step-summary.js';
import { fmtRate, fmtRatio, fmtUs } from '../text-table.js';
import {
  atMost,
  latencyMetrics,
  latencySeries,
  ratioPairs,
  ratioRows,
  subjectOrder,
  targetLines,
  withSubject,
  type ScenarioDefinition,
} from './scenario.js';

/**
 * `qilin bench latency`: fixed offered rates (default 1k, 2k, 5k, 10k
 * ticks/s, 1,000 symbols), each subject fresh per run, rates in rising order;
 * the first step of each fresh subject also records the cold start (the
 * first second after its symbols appear).
 */

/** Cold start of a subject: p99 of the first second vs the steady p99 of the same step. */
export interface ColdStart {
  subject: Subject;
  rate: number;
  symbols: number;
  coldP99: number;
  steadyP99: number;
  ratio: number;
  coldCount: number;
}

/** Cold-start figures from the first step of each run (medians across runs). */
export function coldStarts(runs: readonly (readonly StepResult[])[]): ColdStart[] {
  const bySubject = new Map<Subject, StepResult[]>();
  for (const run of runs) {
    for (const s of run) {
      if (s.cold === null) continue;
      const list = bySubject.get(s.subject) ?? [];
      list.push(s);
      bySubject.set(s.subject, list);
    }
  }
  return [...bySubject].map(([subject, steps]) => {
    const coldP99 = median(steps.map((s) => s.cold!.p99));
    const steadyP99 = median(steps.map((s) => s.latency.p99));
    return {
      subject,
      rate: steps[0]!.rate,
      symbols: steps[0]!.symbols,
      coldP99,
      steadyP99,
      ratio: median(steps.map((s) => ratio(s.cold!.p99, s.latency.p99))),
      coldCount: median(steps.map((s) => (s.cold as LatencySummary).count)),
    };
  });
}

/** Cold-start lines for the human report. */
export function coldStartLines(cold: readonly ColdStart[]): string[] {
  return cold.map(
    (c) =>
      `  ${SUBJECT_LABEL[c.subject].padEnd(10)} first second after ${c.symbols} new symbols @${fmtRate(c.rate)}/s: ` +
      `p99 ${fmtUs(c.coldP99)} µs (n=${c.coldCount}) vs steady p99 ${fmtUs(c.steadyP99)} µs: ${fmtRatio(c.ratio)}`,
  );
}

/** Ratio lines: kernel / each baseline, hop relay / uWS relay. */
export function ratioLines(rows: readonly StepMedians[], baselines: readonly Subject[]): string[] {
  return ratioRows(rows, baselines, 'rate').map(
    (r) =>
      `  @${fmtRate(r.at)}/s  ${`${SUBJECT_LABEL[r.subject]} / ${SUBJECT_LABEL[r.baseline]}:`.padEnd(22)} p50 ${fmtRatio(r.p50)}, p99 ${fmtRatio(r.p99)}` +
      (Number.isFinite(r.cpuPerTick) ? `, CPU per tick ${fmtRatio(r.cpuPerTick)}` : ''),
  );
}

/** Metrics shared by latency and throughput: per-step percentiles, CPU per tick, ratios, cold start. */
export function rateMetrics(
  rows: readonly StepMedians[],
  baselines: readonly Subject[],
  cold: readonly ColdStart[],
): Record<string, MetricEntry> {
  const m: Record<string, MetricEntry> = {};
  for (const r of rows) {
    const at = `${r.subject}@${r.rate}`;
    latencyMetrics(`latency.${at}`, r.latency, m);
    const p = r.subject === 'raw' ? undefined : SUBJECT_PROCESS[r.subject];
    if (p !== undefined) {
      m[`cpuUsPerTick.${at}`] = { value: r.cpuUsPerTick[p] ?? NaN, unit: 'µs', better: 'lower' };
      m[`rssMiB.${at}`] = { value: r.rssEndMiB[p] ?? NaN, unit: 'MiB', better: 'lower' };
    }
  }
  for (const r of ratioRows(rows, baselines, 'rate')) {
    const at = `ratio.${r.subject}/${r.baseline}@${r.at}`;
    m[`${at}.p50`] = { value: r.p50, unit: 'x', better: 'lower' };
    m[`${at}.p99`] = { value: r.p99, unit: 'x', better: 'lower' };
    if (Number.isFinite(r.cpuPerTick)) {
      m[`${at}.cpuPerTick`] = { value: r.cpuPerTick, unit: 'x', better: 'lower' };
    }
  }
  for (const c of cold) {
    m[`coldStart.${c.subject}.p99`] = { value: c.coldP99, unit: 'µs', better: 'lower' };
    m[`coldStart.${c.subject}.ratio`] = { value: c.ratio, unit: 'x', better: 'lower' };
  }
  return m;
}

export const latencyScenario: ScenarioDefinition = {
  plan(o) {
    const starts = o.runs * (1 + o.baselines.length);
    return { seconds: starts * o.rates.length * o.seconds, steps: starts * o.rates.length, starts };
  },

  async run(rig, progress) {
    const o = rig.opts;
    const runs: StepResult[][] = [];
    for (let run = 1; run <= o.runs; run++) {
      const steps: StepResult[] = [];
      for (const subject of subjectOrder(run, o.baselines)) {
        await withSubject(rig, subject, `run ${run}`, async (h) => {
          for (const rate of o.rates) {
            progress.step(`run ${run}/${o.runs} ${SUBJECT_LABEL[subject]} @${fmtRate(rate)}/s`);
            const s = await rig.runStep(h, {
              run,
              rate,
              symbols: o.symbols,
              subscribers: 1,
              seconds: o.seconds,
              warmupSeconds: o.warmupSeconds,
              onProgress: (x) => progress.within(x),
            });
            steps.push(s);
            progress.log(
              `  run ${run} ${SUBJECT_LABEL[subject]} @${fmtRate(rate)}/s: p50 ${fmtUs(s.latency.p50)} p99 ${fmtUs(s.latency.p99)} µs, matched ${s.arrivals.ticksMatched}/${s.publish.sent}${s.pass ? '' : `  FAIL: ${s.reasons.join('; ')}`}`,
            );
          }
        });
      }
      runs.push(steps);
    }
    const rows = medianSteps(runs);
    const cold = coldStarts(runs);
    const k = (rate: number): StepMedians | undefined => findRow(rows, 'kernel', { rate });
    const r = (rate: number): StepMedians | undefined => findRow(rows, 'relay', { rate });
    const kc = cold.find((c) => c.subject === 'kernel');
    const targets = [
      atMost(
        'p99 at 10k ticks/s, kernel / relay',
        ratio(k(10_000)?.latency.p99 ?? NaN, r(10_000)?.latency.p99 ?? NaN),
        2,
        'x',
      ),
      atMost(
        'median at 1k ticks/s, kernel − relay',
        (k(1000)?.latency.p50 ?? NaN) - (r(1000)?.latency.p50 ?? NaN),
        300,
        'µs',
      ),
      atMost('cold start p99 / steady p99 (kernel)', kc?.ratio ?? NaN, 3, 'x'),
      atMost(
        'CPU per tick at 2k ticks/s, kernel / relay',
        ratio(k(2000)?.cpuUsPerTick['kernel'] ?? NaN, r(2000)?.cpuUsPerTick['relay'] ?? NaN),
        1.5,
        'x',
      ),
    ];
    const text = [
      latencyTable(rows, 'rate'),
      ...(o.baselines.length > 0
        ? [
            '',
            ratioPairs(o.baselines).some(([s]) => s === 'hop')
              ? 'ratios of the medians (kernel vs baselines; hop relay / uWS relay = the hop alone):'
              : 'kernel vs baselines (ratios of the medians):',
            ...ratioLines(rows, o.baselines),
          ]
        : []),
      '',
      'cold start:',
      ...coldStartLines(cold),
      '',
      'CPU (% of one core) and RSS per process:',
      ...processLines(rows),
      ...(failureLines(rows).length > 0 ? ['', 'failed steps:', ...failureLines(rows)] : []),
      '',
      'targets (issue 6):',
      ...targetLines(targets),
    ].join('\n');
    return {
      runs,
      summary: { rows, ratios: ratioRows(rows, o.baselines, 'rate'), coldStart: cold },
      metrics: rateMetrics(rows, o.baselines, cold),
      targets,
      chart: {
        title: `qilin bench latency: tick → WebSocket, ${o.symbols} symbols (medians of ${o.runs} run(s))`,
        xLabel: 'offered ticks/s',
        yLabel: 'latency µs (CO-corrected)',
        xScale: 'log',
        yScale: 'log',
        series: latencySeries(rows, ['kernel', ...o.baselines], (x) => x.rate),
      },
      text,
    };
  },
};
