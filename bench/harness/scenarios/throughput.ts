import type { StepResult, Subject } from '../bench-report.js';
import { SUBJECT_LABEL } from '../bench-report.js';
import { median, ratio } from '../run-stats.js';
import { failureLines, latencyTable, medianSteps, processLines } from '../step-summary.js';
import { fmtRate, fmtRatio, fmtUs } from '../text-table.js';
import { coldStartLines, coldStarts, rateMetrics, ratioLines } from './latency.js';
import {
  atLeast,
  latencySeries,
  ratioPairs,
  subjectOrder,
  targetLines,
  withSubject,
  type ScenarioDefinition,
} from './scenario.js';

/**
 * `qilin bench throughput`: each subject (fresh per run) steps the offered
 * rate up until a step fails (p99 over the SLO, or anything lost, dropped,
 * cut or not offered): its max sustained rate is the last step that passed
 * before that. Medians across runs, and the kernel's as a ratio of each
 * baseline's.
 */

/** Max sustained of one sweep: the highest passing rate before the first failure (0: none). */
export function maxSustained(steps: readonly Pick<StepResult, 'rate' | 'pass'>[]): number {
  let best = 0;
  for (const s of steps) {
    if (!s.pass) break;
    best = s.rate;
  }
  return best;
}

export const throughputScenario: ScenarioDefinition = {
  plan(o) {
    const starts = o.runs * (1 + o.baselines.length);
    return { seconds: starts * o.rates.length * o.seconds, steps: starts * o.rates.length, starts };
  },

  async run(rig, progress) {
    const o = rig.opts;
    const slo = o.sloP99Ms * 1000;
    const runs: StepResult[][] = [];
    const sustained: Record<Subject, number[]> = {
      kernel: [],
      relay: [],
      hop: [],
      raw: [],
      ws: [],
    };
    for (let run = 1; run <= o.runs; run++) {
      const steps: StepResult[] = [];
      for (const subject of subjectOrder(run, o.baselines)) {
        const mine: StepResult[] = [];
        await withSubject(rig, subject, `run ${run}`, async (h) => {
          for (const [i, rate] of o.rates.entries()) {
            progress.step(`run ${run}/${o.runs} ${SUBJECT_LABEL[subject]} @${fmtRate(rate)}/s`);
            const s = await rig.runStep(h, {
              run,
              rate,
              symbols: o.symbols,
              subscribers: 1,
              seconds: o.seconds,
              warmupSeconds: o.warmupSeconds,
              sloP99Us: slo,
              onProgress: (x) => progress.within(x),
            });
            mine.push(s);
            progress.log(
              `  run ${run} ${SUBJECT_LABEL[subject]} @${fmtRate(rate)}/s: p99 ${fmtUs(s.latency.p99)} µs${s.pass ? ' ok' : `  FAIL: ${s.reasons.join('; ')}`}`,
            );
            if (!s.pass) {
              progress.skip((o.rates.length - i - 1) * o.seconds);
              break;
            }
          }
        });
        const max = maxSustained(mine);
        sustained[subject].push(max);
        progress.log(
          `  run ${run} ${SUBJECT_LABEL[subject]}: max sustained ${fmtRate(max)} ticks/s`,
        );
        steps.push(...mine);
      }
      runs.push(steps);
    }
    const subjects: Subject[] = ['kernel', ...o.baselines];
    const maxMedian = Object.fromEntries(subjects.map((s) => [s, median(sustained[s])])) as Record<
      Subject,
      number
    >;
    const ratios = ratioPairs(o.baselines).map(([s, b]) => ({
      subject: s,
      baseline: b,
      ratio: ratio(maxMedian[s], maxMedian[b]),
    }));
    const rows = medianSteps(runs);
    const cold = coldStarts(runs);
    const metrics = rateMetrics(rows, o.baselines, cold);
    for (const s of subjects) {
      metrics[`maxSustained.${s}`] = { value: maxMedian[s], unit: 'ticks/s', better: 'higher' };
    }
    for (const r of ratios) {
      metrics[`maxSustained.${r.subject}/${r.baseline}`] = {
        value: r.ratio,
        unit: 'x',
        better: 'higher',
      };
    }
    const targets = [atLeast('max sustained (kernel)', maxMedian.kernel, 30_000, 'ticks/s')];
    const text = [
      latencyTable(rows, 'rate'),
      '',
      `max sustained ticks/s (p99 ≤ ${o.sloP99Ms} ms, nothing lost or dropped; medians of ${o.runs} run(s)):`,
      ...subjects.map(
        (s) =>
          `  ${SUBJECT_LABEL[s].padEnd(10)} ${fmtRate(maxMedian[s]).padStart(6)}   per run: ${sustained[s].map(fmtRate).join(', ')}` +
          (maxMedian[s] === 0
            ? `  (failed the first rate, ${fmtRate(o.rates[0]!)}/s: start lower with --rates)`
            : ''),
      ),
      ...ratios.map(
        (r) => `  ${SUBJECT_LABEL[r.subject]} / ${SUBJECT_LABEL[r.baseline]}: ${fmtRatio(r.ratio)}`,
      ),
      ...(o.baselines.length > 0
        ? [
            '',
            ratioPairs(o.baselines).some(([s]) => s === 'hop')
              ? 'ratios at each rate both reached (hop relay / uWS relay = the hop alone):'
              : 'kernel vs baselines at each rate the kernel reached:',
            ...ratioLines(rows, o.baselines),
          ]
        : []),
      '',
      'cold start (first step of each run):',
      ...coldStartLines(cold),
      '',
      'CPU (% of one core) and RSS per process:',
      ...processLines(rows),
      ...(failureLines(rows).length > 0
        ? ['', 'steps that ended a sweep:', ...failureLines(rows)]
        : []),
      '',
      'targets (issue 6):',
      ...targetLines(targets),
    ].join('\n');
    const series = latencySeries(rows, subjects, (x) => x.rate);
    const rates = rows.map((r) => r.rate);
    series.push({
      name: `SLO p99 ${o.sloP99Ms} ms`,
      points: [
        [Math.min(...rates), slo],
        [Math.max(...rates), slo],
      ],
      dashed: true,
    });
    return {
      runs,
      summary: {
        maxSustained: maxMedian,
        maxSustainedPerRun: sustained,
        ratios,
        rows,
        coldStart: cold,
      },
      metrics,
      targets,
      chart: {
        title: `qilin bench throughput: ${o.symbols} symbols, SLO p99 ${o.sloP99Ms} ms (medians of ${o.runs} run(s))`,
        xLabel: 'offered ticks/s',
        yLabel: 'latency µs (CO-corrected)',
        xScale: 'log',
        yScale: 'log',
        series,
      },
      text,
    };
  },
};
