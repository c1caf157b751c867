import type { LatencySummary } from '../hdr-report.js';
import type { ProcName, StepResult, Subject } from './bench-report.js';
import { SUBJECT_LABEL } from './bench-report.js';
import { median, medianSummary } from './run-stats.js';
import { formatTable, fmtCount, fmtNum, fmtRate, fmtUs, type Align } from './text-table.js';

/**
 * Medians across runs of the steps that measured the same thing (subject,
 * rate, symbols, subscribers), and the human table of them. Every figure is
 * the median of that figure over the runs; `runs` and `passed` say how many
 * runs measured the step and how many of them passed.
 */
export interface StepMedians {
  subject: Subject;
  rate: number;
  symbols: number;
  subscribers: number;
  runs: number;
  passed: number;
  achievedRate: number;
  sent: number;
  /** Kernel: ticks its /metrics counted; baselines: arrivals (matched or not) of this step. */
  received: number;
  delivered: number;
  ticksMatched: number;
  latency: LatencySummary;
  latencyUncorrected: LatencySummary;
  /** Median cold-start latency of the runs whose step recorded one. */
  cold: LatencySummary | null;
  cpuPercent: Partial<Record<ProcName, number>>;
  cpuUsPerTick: Partial<Record<ProcName, number>>;
  rssEndMiB: Partial<Record<ProcName, number>>;
  rssAfterWarmupMiB: Partial<Record<ProcName, number>>;
  idleRssMiB: number;
  /** Kernel only: ticks received, rejected, predictions emitted (medians). */
  kernelReceived: number;
  kernelRejected: number;
  predictionsEmitted: number;
  /** Why runs failed (distinct phrases). */
  reasons: string[];
}

/** The process that embodies a subject (raw: the load process receives). */
export const SUBJECT_PROCESS: Readonly<Record<Subject, ProcName>> = {
  kernel: 'kernel',
  relay: 'relay',
  hop: 'hop-relay',
  ws: 'ws-server',
  raw: 'loadgen',
};

/** Identity of a step across runs. */
export function stepKey(
  s: Pick<StepResult, 'subject' | 'rate' | 'symbols' | 'subscribers'>,
): string {
  return `${s.subject}|${s.rate}|${s.symbols}|${s.subscribers}`;
}

function perProc(
  steps: readonly StepResult[],
  pick: (f: NonNullable<StepResult['processes'][ProcName]>) => number,
): Partial<Record<ProcName, number>> {
  const names = new Set<ProcName>();
  for (const s of steps) for (const n of Object.keys(s.processes) as ProcName[]) names.add(n);
  const out: Partial<Record<ProcName, number>> = {};
  for (const n of names) {
    out[n] = median(steps.map((s) => (s.processes[n] ? pick(s.processes[n]) : NaN)));
  }
  return out;
}

/** Medians of one group of steps (same key, different runs). */
export function medianOf(steps: readonly StepResult[]): StepMedians {
  const first = steps[0]!;
  const colds = steps.map((s) => s.cold).filter((c): c is LatencySummary => c !== null);
  const reasons = [...new Set(steps.flatMap((s) => s.reasons))];
  const k = steps.map((s) => s.kernel);
  return {
    subject: first.subject,
    rate: first.rate,
    symbols: first.symbols,
    subscribers: first.subscribers,
    runs: steps.length,
    passed: steps.filter((s) => s.pass).length,
    achievedRate: median(steps.map((s) => s.publish.achievedRate)),
    sent: median(steps.map((s) => s.publish.sent)),
    received: median(
      steps.map((s) =>
        s.kernel !== null
          ? s.kernel.received
          : s.arrivals.delivered + s.arrivals.duplicates + s.arrivals.unknown,
      ),
    ),
    delivered: median(steps.map((s) => s.arrivals.delivered)),
    ticksMatched: median(steps.map((s) => s.arrivals.ticksMatched)),
    latency: medianSummary(steps.map((s) => s.latency)),
    latencyUncorrected: medianSummary(steps.map((s) => s.latencyUncorrected)),
    cold: colds.length > 0 ? medianSummary(colds) : null,
    cpuPercent: perProc(steps, (f) => f.cpuPercent),
    cpuUsPerTick: perProc(steps, (f) => f.cpuUsPerTick),
    rssEndMiB: perProc(steps, (f) => f.rssEndMiB),
    rssAfterWarmupMiB: perProc(steps, (f) => f.rssAfterWarmupMiB),
    idleRssMiB: median(steps.map((s) => s.idleRssMiB ?? NaN)),
    kernelReceived: median(k.map((x) => x?.received ?? NaN)),
    kernelRejected: median(k.map((x) => x?.rejected ?? NaN)),
    predictionsEmitted: median(k.map((x) => x?.predictionsEmitted ?? NaN)),
    reasons,
  };
}

/** Group every run's steps by key (first-seen order) and take medians. */
export function medianSteps(runs: readonly (readonly StepResult[])[]): StepMedians[] {
  const groups = new Map<string, StepResult[]>();
  for (const run of runs) {
    for (const s of run) {
      const key = stepKey(s);
      const g = groups.get(key);
      if (g === undefined) groups.set(key, [s]);
      else g.push(s);
    }
  }
  return [...groups.values()].map(medianOf);
}

/** The medians row of `subject` at `rate` (and symbols/subscribers when given). */
export function findRow(
  rows: readonly StepMedians[],
  subject: Subject,
  match: Partial<Pick<StepMedians, 'rate' | 'symbols' | 'subscribers'>>,
): StepMedians | undefined {
  return rows.find(
    (r) =>
      r.subject === subject &&
      (match.rate === undefined || r.rate === match.rate) &&
      (match.symbols === undefined || r.symbols === match.symbols) &&
      (match.subscribers === undefined || r.subscribers === match.subscribers),
  );
}

/**
 * The latency table: one line per step, subjects of one rate (or symbol or
 * subscriber count) together. `by` names the first column. "received" is
 * what the kernel counted (`qilin_ticks_received_total`) or, for a baseline,
 * what arrived at the subscribers; "matched" is what was matched to a sent
 * tick (kernel: the ticks that produced a prediction).
 */
export function latencyTable(
  rows: readonly StepMedians[],
  by: 'rate' | 'symbols' | 'subscribers',
): string {
  const order = [...rows].sort((a, b) => a[by] - b[by]);
  const header = [
    by === 'rate' ? 'offered' : by,
    'subject',
    'achieved/s',
    'sent',
    'received',
    'matched',
    'p50',
    'p90',
    'p99',
    'p99.9',
    'max',
    'p99 uncorr.',
    'cpu% subj',
    'µs/tick',
    'rss MiB',
    'loss/fail',
  ];
  let prev = NaN;
  const lines = order.map((r) => {
    const p = SUBJECT_PROCESS[r.subject];
    const first = r[by] !== prev;
    prev = r[by];
    const col = by === 'rate' ? `${fmtRate(r.rate)}/s` : fmtCount(r[by]);
    return [
      first ? col : '',
      SUBJECT_LABEL[r.subject],
      fmtRate(r.achievedRate),
      fmtCount(r.sent),
      fmtCount(r.received),
      fmtCount(r.subject === 'kernel' ? r.ticksMatched : r.delivered),
      fmtUs(r.latency.p50),
      fmtUs(r.latency.p90),
      fmtUs(r.latency.p99),
      fmtUs(r.latency.p999),
      fmtUs(r.latency.max),
      fmtUs(r.latencyUncorrected.p99),
      fmtNum(r.cpuPercent[p] ?? NaN, 0),
      fmtNum(r.cpuUsPerTick[p] ?? NaN, 1),
      fmtNum(r.rssEndMiB[p] ?? NaN, 0),
      r.passed === r.runs ? 'ok' : `${r.runs - r.passed}/${r.runs} failed`,
    ];
  });
  const align = header.map((_, i): Align => (i < 2 || i === header.length - 1 ? 'left' : 'right'));
  return formatTable(header, lines, align);
}

/** Failure reasons of the rows, one line each ("kernel @10k/s: …"). */
export function failureLines(rows: readonly StepMedians[]): string[] {
  return rows
    .filter((r) => r.reasons.length > 0)
    .map(
      (r) =>
        `  ${SUBJECT_LABEL[r.subject]} @${fmtRate(r.rate)}/s ${r.symbols} sym${r.subscribers > 1 ? ` ${r.subscribers} subs` : ''}: ${r.reasons.join('; ')}`,
    );
}

/** CPU% and RSS of every process of the rows, one line per step. */
export function processLines(rows: readonly StepMedians[]): string[] {
  return rows.map((r) => {
    const procs = Object.keys(r.cpuPercent) as ProcName[];
    return (
      `  ${SUBJECT_LABEL[r.subject].padEnd(10)} @${fmtRate(r.rate)}/s ${r.symbols} sym${r.subscribers > 1 ? ` ${r.subscribers} subs` : ''}: ` +
      procs
        .map(
          (p) =>
            `${p} ${fmtNum(r.cpuPercent[p] ?? NaN, 0)}% ${fmtNum(r.rssEndMiB[p] ?? NaN, 0)} MiB`,
        )
        .join(', ')
    );
  });
}
