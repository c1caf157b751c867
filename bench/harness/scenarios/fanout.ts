import type { MetricEntry, StepResult, Subject } from '../bench-report.js';
import { SUBJECT_LABEL } from '../bench-report.js';
import { median } from '../run-stats.js';
import {
  SUBJECT_PROCESS,
  failureLines,
  latencyTable,
  medianSteps,
  stepKey,
} from '../step-summary.js';
import { formatTable, fmtCount, fmtNum, fmtRate, fmtRatio, fmtUs } from '../text-table.js';
import {
  latencyMetrics,
  latencySeries,
  ratioRows,
  subjectOrder,
  withSubject,
  type ScenarioDefinition,
} from './scenario.js';

/**
 * `qilin bench fanout`: 100 and 1,000 WebSocket subscribers on
 * `prediction/*`, all in the load process, the kernel against a fan-out
 * server on the `ws` library in the same run. Every delivery to every
 * subscriber is a latency sample; delivered counts are checked against what
 * was sent (ws: every tick to every subscriber; kernel: every prediction it
 * emitted to every subscriber). The offered rate is low by default (100
 * ticks/s over 100 symbols: one tick per symbol per second, so every tick
 * yields a kernel prediction) because the deliveries, not the ticks, are the
 * load: 1,000 subscribers × 100 ticks/s is 100,000 frames/s into one client
 * process on the same two cores.
 */

/** Deliveries a step expected: every tick (baselines) or every kernel prediction, to every subscriber. */
export function expectedDeliveries(s: StepResult): number {
  const per = s.subject === 'kernel' ? (s.kernel?.predictionsEmitted ?? NaN) : s.publish.sent;
  return per * s.subscribers;
}

export const fanoutScenario: ScenarioDefinition = {
  plan(o) {
    const starts = o.runs * (1 + o.baselines.length);
    const steps = starts * o.subscribers.length;
    return { seconds: steps * o.seconds, steps, starts };
  },

  async run(rig, progress) {
    const o = rig.opts;
    const runs: StepResult[][] = [];
    for (let run = 1; run <= o.runs; run++) {
      const steps: StepResult[] = [];
      for (const subject of subjectOrder(run, o.baselines)) {
        await withSubject(rig, subject, `run ${run}`, async (h) => {
          for (const n of o.subscribers) {
            progress.step(
              `run ${run}/${o.runs} ${SUBJECT_LABEL[subject]} ${fmtCount(n)} subscribers`,
            );
            const s = await rig.runStep(h, {
              run,
              rate: o.rate,
              symbols: o.symbols,
              subscribers: n,
              seconds: o.seconds,
              warmupSeconds: o.warmupSeconds,
              onProgress: (x) => progress.within(x),
            });
            steps.push(s);
            progress.log(
              `  run ${run} ${SUBJECT_LABEL[subject]} ${fmtCount(n)} subscribers: p99 ${fmtUs(s.latency.p99)} µs, delivered ${fmtCount(s.arrivals.delivered)}/${fmtCount(expectedDeliveries(s))}${s.pass ? '' : `  FAIL: ${s.reasons.join('; ')}`}`,
            );
          }
        });
      }
      runs.push(steps);
    }
    const subjects: Subject[] = ['kernel', ...o.baselines];
    const medians = medianSteps(runs);
    const all = runs.flat();
    const rows = medians.map((m) => {
      const mine = all.filter((s) => stepKey(s) === stepKey(m));
      return {
        subject: m.subject,
        subscribers: m.subscribers,
        delivered: m.delivered,
        expected: median(mine.map(expectedDeliveries)),
        perSubscriberMin: median(mine.map((s) => s.perSubscriber.min)),
        perSubscriberMax: median(mine.map((s) => s.perSubscriber.max)),
        cpuPercent: m.cpuPercent[SUBJECT_PROCESS[m.subject]] ?? NaN,
        loadgenCpuPercent: m.cpuPercent['loadgen'] ?? NaN,
        latency: m.latency,
      };
    });
    const ratios = ratioRows(medians, o.baselines, 'subscribers');
    const metrics: Record<string, MetricEntry> = {};
    for (const r of rows) {
      const at = `${r.subject}@${r.subscribers}subs`;
      latencyMetrics(`latency.${at}`, r.latency, metrics);
      metrics[`cpuPercent.${at}`] = { value: r.cpuPercent, unit: '%', better: 'lower' };
    }
    for (const r of ratios) {
      metrics[`ratio.${r.subject}/${r.baseline}@${r.at}subs.p99`] = {
        value: r.p99,
        unit: 'x',
        better: 'lower',
      };
    }
    const table = formatTable(
      [
        'subscribers',
        'subject',
        'delivered',
        'expected',
        'per sub min',
        'per sub max',
        'p50 µs',
        'p99 µs',
        'p99.9 µs',
        'max µs',
        'server cpu%',
        'client cpu%',
      ],
      [...rows]
        .sort((a, b) => a.subscribers - b.subscribers)
        .map((r) => [
          fmtCount(r.subscribers),
          SUBJECT_LABEL[r.subject],
          fmtCount(r.delivered),
          fmtCount(r.expected),
          fmtCount(r.perSubscriberMin),
          fmtCount(r.perSubscriberMax),
          fmtUs(r.latency.p50),
          fmtUs(r.latency.p99),
          fmtUs(r.latency.p999),
          fmtUs(r.latency.max),
          fmtNum(r.cpuPercent, 0),
          fmtNum(r.loadgenCpuPercent, 0),
        ]),
      [
        'right',
        'left',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
      ],
    );
    const text = [
      `${fmtRate(o.rate)} ticks/s over ${o.symbols} symbols; every delivery to every subscriber is a sample`,
      table,
      '',
      'kernel vs baselines:',
      ...ratios.map(
        (r) =>
          `  ${fmtCount(r.at)} subscribers  ${SUBJECT_LABEL[r.subject]} / ${SUBJECT_LABEL[r.baseline]}: p50 ${fmtRatio(r.p50)}, p99 ${fmtRatio(r.p99)}`,
      ),
      '',
      'all figures of each step:',
      latencyTable(medians, 'subscribers'),
      ...(failureLines(medians).length > 0 ? ['', 'failed steps:', ...failureLines(medians)] : []),
    ].join('\n');
    return {
      runs,
      summary: { rate: o.rate, symbols: o.symbols, rows, ratios, steps: medians },
      metrics,
      targets: [],
      chart: {
        title: `qilin bench fanout: ${fmtRate(o.rate)} ticks/s, ${o.symbols} symbols, latency vs WebSocket subscribers`,
        xLabel: 'subscribers',
        yLabel: 'latency µs (CO-corrected)',
        xScale: 'log',
        yScale: 'log',
        series: latencySeries(medians, subjects, (x) => x.subscribers),
      },
      text,
    };
  },
};
