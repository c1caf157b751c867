import type { MetricEntry, StepResult, Subject } from '../bench-report.js';
import { SUBJECT_LABEL } from '../bench-report.js';
import { median, ratio } from '../run-stats.js';
import {
  SUBJECT_PROCESS,
  failureLines,
  latencyTable,
  medianSteps,
  stepKey,
} from '../step-summary.js';
import { formatTable, fmtCount, fmtNum, fmtRate, fmtRatio, fmtUs } from '../text-table.js';
import {
  atMost,
  latencyMetrics,
  subjectOrder,
  targetLines,
  withSubject,
  type ScenarioDefinition,
} from './scenario.js';

/**
 * `qilin bench symbols`: one offered rate (default 5k ticks/s) over 1, 100,
 * 1,000 and 10,000 symbols; each (symbol count, subject) on a fresh process
 * so its memory starts from idle. Reported: CPU µs per tick of the subject's
 * process over the measured window, and memory per symbol = (RSS after the
 * warm-up − RSS of the idle process) / symbols. The warm-up is stretched so
 * every symbol ticked at least twice before the measurement.
 */

/** Warm-up long enough for every symbol to tick twice. */
export function symbolsWarmup(warmupSeconds: number, symbols: number, rate: number): number {
  return Math.max(warmupSeconds, (2 * symbols) / rate);
}

/** Memory per symbol of one step, KiB; NaN without an idle reading. */
export function kibPerSymbol(s: StepResult): number {
  const p = SUBJECT_PROCESS[s.subject];
  const after = s.processes[p]?.rssAfterWarmupMiB ?? NaN;
  const idle = s.idleRssMiB ?? NaN;
  return ((after - idle) * 1024) / s.symbols;
}

/** One line of the symbols table. */
export interface SymbolsRow {
  subject: Subject;
  symbols: number;
  cpuUsPerTick: number;
  cpuPercent: number;
  idleRssMiB: number;
  rssAfterWarmupMiB: number;
  kibPerSymbol: number;
  p50: number;
  p99: number;
}

/** CPU-per-tick growth between two symbol counts. */
export interface CostRatio {
  subject: Subject;
  from: number;
  to: number;
  ratio: number;
}

/** Cost ratio from `from` to `to` symbols: 1,000 → 10,000 when both ran, else smallest → largest. */
export function costRatios(rows: readonly SymbolsRow[], subjects: readonly Subject[]): CostRatio[] {
  const counts = [...new Set(rows.map((r) => r.symbols))].sort((a, b) => a - b);
  if (counts.length < 2) return [];
  const from = counts.includes(1000) && counts.includes(10_000) ? 1000 : counts[0]!;
  const to = counts.includes(1000) && counts.includes(10_000) ? 10_000 : counts[counts.length - 1]!;
  return subjects.map((subject) => {
    const a = rows.find((r) => r.subject === subject && r.symbols === from);
    const b = rows.find((r) => r.subject === subject && r.symbols === to);
    return { subject, from, to, ratio: ratio(b?.cpuUsPerTick ?? NaN, a?.cpuUsPerTick ?? NaN) };
  });
}

export const symbolsScenario: ScenarioDefinition = {
  plan(o) {
    const measured = o.seconds - o.warmupSeconds;
    const perCount = o.runs * (1 + o.baselines.length);
    const seconds =
      perCount *
      o.symbolCounts.reduce((t, n) => t + symbolsWarmup(o.warmupSeconds, n, o.rate) + measured, 0);
    const steps = perCount * o.symbolCounts.length;
    return { seconds, steps, starts: steps };
  },

  async run(rig, progress) {
    const o = rig.opts;
    const measured = o.seconds - o.warmupSeconds;
    const runs: StepResult[][] = [];
    for (let run = 1; run <= o.runs; run++) {
      const steps: StepResult[] = [];
      for (const n of o.symbolCounts) {
        const warmup = symbolsWarmup(o.warmupSeconds, n, o.rate);
        for (const subject of subjectOrder(run, o.baselines)) {
          await withSubject(rig, subject, `run ${run}, ${n} symbols`, async (h) => {
            progress.step(`run ${run}/${o.runs} ${SUBJECT_LABEL[subject]} ${fmtCount(n)} symbols`);
            const s = await rig.runStep(h, {
              run,
              rate: o.rate,
              symbols: n,
              subscribers: 1,
              seconds: warmup + measured,
              warmupSeconds: warmup,
              measureIdle: true,
              onProgress: (x) => progress.within(x),
            });
            steps.push(s);
            const p = SUBJECT_PROCESS[subject];
            progress.log(
              `  run ${run} ${SUBJECT_LABEL[subject]} ${fmtCount(n)} symbols: ${fmtNum(s.processes[p]?.cpuUsPerTick ?? NaN)} µs/tick, ${fmtNum(kibPerSymbol(s))} KiB/symbol${s.pass ? '' : `  FAIL: ${s.reasons.join('; ')}`}`,
            );
          });
        }
      }
      runs.push(steps);
    }
    const subjects: Subject[] = ['kernel', ...o.baselines];
    const medians = medianSteps(runs);
    const all = runs.flat();
    const rows: SymbolsRow[] = medians.map((m) => {
      const p = SUBJECT_PROCESS[m.subject];
      const mine = all.filter((s) => stepKey(s) === stepKey(m));
      return {
        subject: m.subject,
        symbols: m.symbols,
        cpuUsPerTick: m.cpuUsPerTick[p] ?? NaN,
        cpuPercent: m.cpuPercent[p] ?? NaN,
        idleRssMiB: m.idleRssMiB,
        rssAfterWarmupMiB: m.rssAfterWarmupMiB[p] ?? NaN,
        kibPerSymbol: median(mine.map(kibPerSymbol)),
        p50: m.latency.p50,
        p99: m.latency.p99,
      };
    });
    const costs = costRatios(rows, subjects);
    const kernelCost = costs.find((c) => c.subject === 'kernel');
    const targets = [
      atMost(
        `cost per tick ${fmtCount(kernelCost?.from ?? 1000)} → ${fmtCount(kernelCost?.to ?? 10_000)} symbols (kernel)`,
        kernelCost?.ratio ?? NaN,
        1.5,
        'x',
      ),
    ];
    const metrics: Record<string, MetricEntry> = {};
    for (const r of rows) {
      const at = `${r.subject}@${r.symbols}sym`;
      metrics[`cpuUsPerTick.${at}`] = { value: r.cpuUsPerTick, unit: 'µs', better: 'lower' };
      metrics[`kibPerSymbol.${at}`] = { value: r.kibPerSymbol, unit: 'KiB', better: 'lower' };
    }
    for (const m of medians)
      latencyMetrics(`latency.${m.subject}@${m.symbols}sym`, m.latency, metrics);
    for (const c of costs) {
      metrics[`costRatio.${c.subject}.${c.from}to${c.to}`] = {
        value: c.ratio,
        unit: 'x',
        better: 'lower',
      };
    }
    const table = formatTable(
      [
        'symbols',
        'subject',
        'µs/tick',
        'cpu%',
        'idle MiB',
        'warm MiB',
        'KiB/symbol',
        'p50 µs',
        'p99 µs',
      ],
      [...rows]
        .sort((a, b) => a.symbols - b.symbols)
        .map((r) => [
          fmtCount(r.symbols),
          SUBJECT_LABEL[r.subject],
          fmtNum(r.cpuUsPerTick),
          fmtNum(r.cpuPercent, 0),
          fmtNum(r.idleRssMiB, 0),
          fmtNum(r.rssAfterWarmupMiB, 0),
          fmtNum(r.kibPerSymbol),
          fmtUs(r.p50),
          fmtUs(r.p99),
        ]),
      ['right', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    );
    const text = [
      `${fmtRate(o.rate)} ticks/s; CPU of the subject's process over the measured window; memory per symbol = (RSS after warm-up − idle RSS) / symbols`,
      table,
      '',
      'cost per tick growth:',
      ...costs.map(
        (c) =>
          `  ${SUBJECT_LABEL[c.subject].padEnd(10)} ${fmtCount(c.from)} → ${fmtCount(c.to)} symbols: ${fmtRatio(c.ratio)}`,
      ),
      '',
      'latency of each step:',
      latencyTable(medians, 'symbols'),
      ...(failureLines(medians).length > 0 ? ['', 'failed steps:', ...failureLines(medians)] : []),
      '',
      'targets (issue 6):',
      ...targetLines(targets),
    ].join('\n');
    return {
      runs,
      summary: { rate: o.rate, rows, costRatios: costs, steps: medians },
      metrics,
      targets,
      chart: {
        title: `qilin bench symbols: CPU per tick vs symbols at ${fmtRate(o.rate)} ticks/s (medians of ${o.runs} run(s))`,
        xLabel: 'symbols',
        yLabel: 'CPU µs per tick',
        xScale: 'log',
        yScale: 'linear',
        series: subjects.map((s) => ({
          name: `${SUBJECT_LABEL[s]} µs/tick`,
          points: rows
            .filter((r) => r.subject === s)
            .sort((a, b) => a.symbols - b.symbols)
            .map((r) => [r.symbols, r.cpuUsPerTick] as const),
        })),
      },
      text,
    };
  },
};
