import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import type { ServicesOptions } from '../../ops/services/service-manager.js';
import type { BenchOptions } from './bench-options.js';
import { BenchProgress } from './bench-progress.js';
import type { BenchReport, Scenario } from './bench-report.js';
import { SUBJECT_LABEL } from './bench-report.js';
import { BenchRig } from './bench-rig.js';
import { KernelProcess } from './kernel-process.js';
import { fanoutScenario } from './scenarios/fanout.js';
import { latencyScenario } from './scenarios/latency.js';
import type { ScenarioDefinition, ScenarioPlan } from './scenarios/scenario.js';
import { soakScenario } from './scenarios/soak.js';
import { symbolsScenario } from './scenarios/symbols.js';
import { throughputScenario } from './scenarios/throughput.js';
import { lineChartSvg } from './svg-chart.js';
import { fmtRate } from './text-table.js';

/**
 * One `qilin bench <scenario>` run, start to end: the rig, the scenario, the
 * JSON document and SVG chart under bench/results/, the human report on
 * stdout (stderr with --json, which prints the document on stdout).
 */

export const SCENARIO_DEFINITIONS: Readonly<Record<Scenario, ScenarioDefinition>> = {
  latency: latencyScenario,
  throughput: throughputScenario,
  symbols: symbolsScenario,
  fanout: fanoutScenario,
  soak: soakScenario,
};

/** What the CLI hands the harness. */
export interface RunBenchContext {
  /** The checkout the kernel is started from (`node bin/qilin.js`). */
  repoRoot: string;
  servicesOptions: () => ServicesOptions;
  /** The command line, for the report. */
  command: string;
}

/**
 * A hard deadline for every child of a run: twice the planned load, plus per
 * step the settle, drain and a margin, plus per subject start its ready
 * timeout. A bench that overruns it has hung; its children are killed.
 */
export function benchDeadlineMs(o: BenchOptions, plan: ScenarioPlan): number {
  const perStep = o.settleSeconds + o.drainSeconds * 2 + 30;
  const perStart = o.readyTimeoutSeconds + 30;
  return (2 * plan.seconds + plan.steps * perStep + plan.starts * perStart + 60) * 1000;
}

/** The options that mean something for `o.scenario` (the report's `options`). */
export function reportOptions(o: BenchOptions): Record<string, unknown> {
  const drop: Record<Scenario, string[]> = {
    latency: ['rate', 'symbolCounts', 'subscribers', 'sloP99Ms', 'intervalSeconds'],
    throughput: ['rate', 'symbolCounts', 'subscribers', 'intervalSeconds'],
    symbols: ['rates', 'symbols', 'subscribers', 'sloP99Ms', 'coldSeconds', 'intervalSeconds'],
    fanout: ['rates', 'symbolCounts', 'sloP99Ms', 'coldSeconds', 'intervalSeconds'],
    soak: ['rates', 'symbolCounts', 'subscribers', 'sloP99Ms', 'coldSeconds'],
  };
  const out: Record<string, unknown> = { ...o };
  for (const k of drop[o.scenario]) delete out[k];
  return out;
}

/** `<scenario>-2026-11-23T21-23-41Z` for a date. */
export function resultBaseName(scenario: Scenario, date: Date): string {
  return `${scenario}-${date.toISOString().slice(0, 19).replace(/:/g, '-')}Z`;
}

/** Run a scenario; resolves with the report (also printed and written as the options say). */
export async function runBench(o: BenchOptions, ctx: RunBenchContext): Promise<BenchReport> {
  const def = SCENARIO_DEFINITIONS[o.scenario];
  const plan = def.plan(o);
  const started = new Date();
  const load0 = loadavg();
  const human = (text: string): void => {
    (o.json ? process.stderr : process.stdout).write(text.endsWith('\n') ? text : `${text}\n`);
  };
  const progress = new BenchProgress(plan.seconds, o.progress && !o.json);
  const say = (line: string): void => progress.log(line);
  const host = `${availableParallelism()} CPU(s) (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}`;
  say(
    `qilin bench ${o.scenario}${o.smoke ? ' --smoke' : ''}: ${host}, loadavg ${load0.map((x) => x.toFixed(2)).join(' ')}; ~${Math.round(plan.seconds)} s of load planned`,
  );
  const rig = await BenchRig.open(
    o,
    { repoRoot: ctx.repoRoot, servicesOptions: ctx.servicesOptions, say },
    benchDeadlineMs(o, plan),
  );
  let outcome;
  try {
    say(
      `  nats-server ${rig.nats.url} (private, ${rig.nats.partitions} market partitions); Redis ${rig.services.redisUrl} (${rig.services.source}); store ${o.store === 'clickhouse' ? `ClickHouse ${rig.clickhouse?.url} database ${rig.clickhouse?.database}` : 'embedded chdb'}`,
    );
    outcome = await def.run(rig, progress);
  } finally {
    progress.stop();
    await rig.close();
  }
  const subjects = ['kernel', ...o.baselines].map(
    (s) => SUBJECT_LABEL[s as keyof typeof SUBJECT_LABEL],
  );
  const report: BenchReport = {
    bench: 'qilin-bench',
    version: 1,
    scenario: o.scenario,
    date: started.toISOString(),
    command: ctx.command,
    host: {
      cpus: availableParallelism(),
      model: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      loadavgBefore: load0,
      loadavgAfter: loadavg(),
    },
    options: reportOptions(o),
    setup: {
      kernel: `node ${KernelProcess.command(rig.account).join(' ')} (cwd ${ctx.repoRoot}; default config; env QILIN_NATS_URL, QILIN_REDIS_URL, QILIN_HTTP_PORT, QILIN_API_KEYS, QILIN_STATE_DIR, QILIN_LOG_LEVEL=warn${o.store === 'clickhouse' ? ', QILIN_CLICKHOUSE_URL, QILIN_CLICKHOUSE_DB' : ''})`,
      kernelStarts: rig.kernelStarts,
      subjects,
      ...(o.baselines.includes('hop')
        ? {
            hop: {
              ...rig.hop,
              entry:
                'bench/harness/hop-server.ts: per worker its own NATS connection (md.*.*.<p>, p ≡ worker mod workers), frame bytes copied into a FrameRing, flushed once per task with a shared doorbell; main thread drains and publishes on uWS',
            },
          }
        : {}),
      natsServer: { private: true, partitions: rig.nats.partitions },
      services: rig.services.source,
      store: o.store,
      clock:
        'one process: the load process publishes and receives; send and arrival times are its own nowUs()',
      latency: 'arrival − intended send time (open-loop schedule; coordinated omission corrected)',
    },
    summary: outcome.summary,
    metrics: outcome.metrics,
    targets: outcome.targets,
    runs: outcome.runs,
  };
  const svg = lineChartSvg(outcome.chart);
  if (o.write) {
    const dir = o.resultsDir ?? join(ctx.repoRoot, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const base = join(dir, resultBaseName(o.scenario, started));
    report.files = { json: `${base}.json`, svg: `${base}.svg` };
    writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(`${base}.svg`, svg);
  }
  const rates =
    o.scenario === 'latency' || o.scenario === 'throughput'
      ? `rates ${o.rates.map(fmtRate).join(', ')} ticks/s`
      : `${fmtRate(o.rate)} ticks/s`;
  human(
    [
      '',
      `qilin bench ${o.scenario}: ${subjects.join(' vs ')}; ${o.scenario === 'symbols' ? `${o.symbolCounts.join(', ')} symbols` : `${o.symbols} symbols`}; ${rates}; ${o.seconds} s steps (${o.warmupSeconds} s warm-up); ${o.runs} run(s), interleaved, medians`,
      `${host}; loadavg ${load0.map((x) => x.toFixed(2)).join(' ')} → ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}; latency in µs, arrival − intended send time (CO-corrected)`,
      '',
      outcome.text,
      ...(report.files !== undefined
        ? ['', `wrote ${report.files.json}`, `      ${report.files.svg}`]
        : []),
    ].join('\n'),
  );
  if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  return report;
}
