import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import {
  ALLOWED_BASELINES,
  resolveBenchOptions,
  type RawBenchOptions,
} from '../bench/harness/bench-options.js';
import { SCENARIOS, type Scenario } from '../bench/harness/bench-report.js';
import { asReport, compareReports, formatComparison } from '../bench/harness/compare-reports.js';
import { DEFAULT_FEATURES_BENCH_OPTIONS } from '../bench/features/features-bench-options.js';
import type { QilinConfig } from '../config/config.js';
import { ErrorCodes, QilinError } from '../kernel/errors.js';
import type { Logger } from '../kernel/logger.js';
import { serviceOptions } from './services-command.js';
import { usageErrors } from './usage-errors.js';

/**
 * `qilin bench <scenario>` and `qilin bench compare A.json B.json`: the
 * performance instrument (bench/README.md). The scenarios' logic lives in
 * bench/harness; this file is the command line: options, usage errors
 * (QLN_CLI_USAGE, exit 2), and a bench that fails at run time (a process
 * died, a service did not start) ends with exit 1. The harness and the
 * features bench are imported when a scenario runs (cli/main.ts: start-up).
 */

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const DESCRIPTIONS: Readonly<Record<Scenario, string>> = {
  latency:
    'tick → WebSocket prediction latency at fixed offered rates, kernel vs a trivial uWS relay and raw NATS, plus the cold start',
  throughput:
    'step the offered rate up until p99 passes the SLO or anything is lost: max sustained ticks/s of the kernel and of each baseline, and the ratios',
  symbols:
    'CPU per tick and memory per symbol of the kernel (and the relay) at 1, 100, 1,000 and 10,000 symbols',
  fanout:
    'latency and delivered counts with 100 and 1,000 WebSocket subscribers, kernel vs a fan-out server on the ws library',
  soak: 'fixed load for minutes: latency per interval and RSS of every process over time (drift)',
};

const list = (xs: readonly number[]): string => xs.join(',');

function addScenario(
  bench: Command,
  scenario: Scenario,
  run: (s: Scenario, raw: RawBenchOptions) => Promise<void>,
): void {
  // Defaults and the --smoke preset, as resolved, for the help text.
  const d = resolveBenchOptions(scenario, {});
  const smoke = resolveBenchOptions(scenario, { smoke: true });
  const cmd = bench.command(scenario).description(DESCRIPTIONS[scenario]);
  if (scenario === 'latency' || scenario === 'throughput') {
    cmd.option(
      '--rates <list>',
      `offered ticks/s per step, rising, k suffix allowed (default ${list(d.rates)}; --smoke ${list(smoke.rates)})`,
    );
  } else {
    cmd.option('--rate <n>', `offered ticks/s (default ${d.rate}; --smoke ${smoke.rate})`);
  }
  if (scenario === 'symbols') {
    cmd.option(
      '--symbol-counts <list>',
      `symbol counts, rising, each on a fresh kernel (default ${list(d.symbolCounts)}; --smoke ${list(smoke.symbolCounts)})`,
    );
  } else {
    cmd.option(
      '--symbols <n>',
      `symbols B0000… the ticks go round robin over (default ${d.symbols}; --smoke ${smoke.symbols})`,
    );
  }
  if (scenario === 'fanout') {
    cmd.option(
      '--subscribers <list>',
      `WebSocket subscriber counts (default ${list(d.subscribers)}; --smoke ${list(smoke.subscribers)})`,
    );
  }
  if (scenario === 'throughput') {
    cmd.option('--slo-p99-ms <ms>', `a step whose p99 passes this fails (default ${d.sloP99Ms})`);
  }
  if (scenario === 'latency' || scenario === 'throughput') {
    cmd.option(
      '--cold-seconds <s>',
      `cold start: seconds after the first tick of a fresh subject recorded apart (default ${d.coldSeconds}; 0: off)`,
    );
  }
  if (scenario === 'soak') {
    cmd.option(
      '--interval-seconds <s>',
      `latency and memory reported every this many seconds (default ${d.intervalSeconds}; --smoke ${smoke.intervalSeconds})`,
    );
  }
  cmd
    .option(
      '--seconds <s>',
      `seconds of load per step, warm-up included${scenario === 'soak' ? ' (the soak length)' : ''} (default ${d.seconds}; --smoke ${smoke.seconds})`,
    )
    .option(
      '--warmup-seconds <s>',
      `first seconds of each step not recorded (default ${d.warmupSeconds}; --smoke ${smoke.warmupSeconds})`,
    )
    .option(
      '--runs <n>',
      `runs of every subject, interleaved, medians reported (default ${d.runs}; --smoke ${smoke.runs})`,
    )
    .option(
      '--baselines <list>',
      `subjects beside the kernel: ${ALLOWED_BASELINES[scenario].join(', ')} or none (default ${d.baselines.join(',')})`,
    )
    .option(
      '--nodes <1|2>',
      'kernel processes: 1 (default), or 2 dividing the partitions with cluster fan-out on (subscribers on the first node)',
    )
    .option(
      '--store <chdb|clickhouse>',
      'kernel store: embedded chdb (default) or ClickHouse (QILIN_CLICKHOUSE_URL or the local service; a bench database, dropped at the end)',
    )
    .option(
      '--drain-seconds <s>',
      `longest wait for in-flight arrivals after a step (default ${d.drainSeconds}; --smoke ${smoke.drainSeconds})`,
    )
    .option(
      '--settle-seconds <s>',
      `longest wait for the subject and nats-server to go idle before a step (default ${d.settleSeconds}; --smoke ${smoke.settleSeconds})`,
    )
    .option(
      '--ready-timeout-seconds <s>',
      `longest wait for the kernel's /health/ready (default ${d.readyTimeoutSeconds})`,
    )
    .option('--seed <n>', 'PRNG seed of the price walks')
    .option(
      '--smoke',
      'seconds-long run for CI: tiny rates, short steps, one run (end to end, no timing claims)',
    )
    .option('--json', 'print the JSON report on stdout (the human report goes to stderr)')
    .option('--results-dir <dir>', 'where the JSON report and SVG chart go (default bench/results)')
    .option('--no-write', 'do not write the JSON report and SVG chart')
    .option(
      '--no-progress',
      'no progress bar (it is also off when stderr is not a terminal, and with --json)',
    )
    .action(async (raw: RawBenchOptions) => run(scenario, raw));
  usageErrors(cmd, `qilin bench ${scenario} --help`);
}

/** A CLI integer option: digits (k/M suffix allowed) ≥ min, else QLN_CLI_USAGE naming the flag. */
function intOption(flag: string, min: number): (v: string) => number {
  return (v: string) => {
    const m = /^(\d+)([kM]?)$/.exec(v.trim().replace(/_/g, ''));
    const n =
      m === null ? Number.NaN : Number(m[1]) * (m[2] === 'k' ? 1e3 : m[2] === 'M' ? 1e6 : 1);
    if (!Number.isSafeInteger(n) || n < min) {
      throw new QilinError(
        ErrorCodes.CLI_USAGE,
        `invalid ${flag}: ${JSON.stringify(v)} (allowed: an integer ≥ ${min}, k/M suffix allowed; see qilin bench features --help)`,
      );
    }
    return n;
  };
}

/**
 * `qilin bench features`: the incremental indicators (actors/indicators) in
 * process, FeatureSet vs the naive recomputation (bench/features).
 */
function addFeaturesCommand(bench: Command): void {
  const d = DEFAULT_FEATURES_BENCH_OPTIONS;
  const cmd = bench
    .command('features')
    .description(
      'ns per tick of the per-symbol FeatureSet (default indicator set) over a random-walk stream of trades, quotes and bars vs the naive per-tick recomputation, and heap growth (in process, no services)',
    )
    .option(
      '--symbols <n>',
      `symbols, one FeatureSet each (default ${d.symbols})`,
      intOption('--symbols', 1),
    )
    .option(
      '--ticks <n>',
      `timed ticks (trades, quotes, bars) (default ${d.ticks})`,
      intOption('--ticks', 1024),
    )
    .option(
      '--warmup-ticks <n>',
      `untimed ticks first (default ${d.warmupTicks})`,
      intOption('--warmup-ticks', 0),
    )
    .option(
      '--naive-ticks <n>',
      `timed ticks of the naive reference (default ${d.naiveTicks})`,
      intOption('--naive-ticks', 1),
    )
    .option(
      '--naive-symbols <n>',
      `symbols the naive reference runs on (default ${d.naiveSymbols})`,
      intOption('--naive-symbols', 1),
    )
    .option(
      '--bar-every <n>',
      `a 1 s bar every this many trades of a symbol (default ${d.barEvery})`,
      intOption('--bar-every', 1),
    )
    .option('--seed <n>', `PRNG seed of the stream (default ${d.seed})`, intOption('--seed', 0))
    .option('--json', 'print the JSON report on stdout (the human report goes to stderr)')
    .option('--results-dir <dir>', 'where the JSON report goes (default bench/results)')
    .option('--no-write', 'do not write the JSON report')
    .addHelpText(
      'after',
      '\nTargets: full set < 1 µs per tick per symbol; heap growth < 1 MB over the timed ticks.\n' +
        'Example: qilin bench features; qilin bench features --ticks 1M --naive-ticks 10k --no-write',
    )
    .action(
      async (o: {
        symbols?: number;
        ticks?: number;
        warmupTicks?: number;
        naiveTicks?: number;
        naiveSymbols?: number;
        barEvery?: number;
        seed?: number;
        json?: boolean;
        resultsDir?: string;
        write: boolean;
      }) => {
        if (o.naiveSymbols !== undefined && o.naiveSymbols > (o.symbols ?? d.symbols)) {
          throw new QilinError(
            ErrorCodes.CLI_USAGE,
            `invalid --naive-symbols: ${o.naiveSymbols} (allowed: at most --symbols; see qilin bench features --help)`,
          );
        }
        const { formatFeaturesReport, runFeaturesBench, writeFeaturesReport } =
          await import('../bench/features/features-bench.js');
        const human = o.json === true ? process.stderr : process.stdout;
        const opts = Object.fromEntries(
          (
            [
              'symbols',
              'ticks',
              'warmupTicks',
              'naiveTicks',
              'naiveSymbols',
              'barEvery',
              'seed',
            ] as const
          )
            .filter((k) => o[k] !== undefined)
            .map((k) => [k, o[k]]),
        );
        const report = runFeaturesBench(opts, (line) => process.stderr.write(`${line}\n`));
        human.write(`\n${formatFeaturesReport(report)}`);
        if (o.json === true) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        if (o.write) {
          const file = writeFeaturesReport(
            report,
            o.resultsDir ?? join(REPO_ROOT, 'bench', 'results'),
          );
          human.write(`wrote ${file}\n`);
        }
      },
    );
  usageErrors(cmd, 'qilin bench features --help');
}

/** Register `qilin bench`. */
export function registerBenchCommand(
  program: Command,
  context: () => { config: QilinConfig; log: Logger },
): void {
  const bench = program
    .command('bench')
    .description(
      'measure the kernel (started as `qilin start`) against baselines in the same run: latency, throughput, symbols, fanout, soak; the indicators in process: features; compare two results',
    )
    .addHelpText(
      'after',
      '\nEvery run writes bench/results/<scenario>-<UTC time>.json and .svg. Method: bench/README.md.\n' +
        'Example: qilin bench latency --smoke; qilin bench compare bench/results/a.json bench/results/b.json',
    );
  usageErrors(bench, 'qilin bench --help');
  const run = async (scenario: Scenario, raw: RawBenchOptions): Promise<void> => {
    const opts = resolveBenchOptions(scenario, raw);
    const { runBench } = await import('../bench/harness/run-bench.js');
    try {
      await runBench(opts, {
        repoRoot: REPO_ROOT,
        servicesOptions: () => {
          const { config, log } = context();
          return serviceOptions(config, log);
        },
        command: `qilin ${process.argv.slice(2).join(' ')}`,
      });
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown };
      process.stderr.write(
        `qilin bench ${scenario} failed: ${typeof e?.code === 'string' ? `${e.code}: ` : ''}${String(e?.message ?? err)}\n`,
      );
      process.exitCode = 1;
    }
  };
  for (const s of SCENARIOS) addScenario(bench, s, run);
  addFeaturesCommand(bench);

  const compare = bench
    .command('compare')
    .description(
      'compare two bench reports: every metric before/after with the ratio, regressions flagged',
    )
    .argument('<before>', 'JSON report (the baseline)')
    .argument('<after>', 'JSON report (the candidate)')
    .option('--threshold <fraction>', 'a change worse than this fraction is a regression', '0.1')
    .option('--fail-on-regression', 'exit 1 when a regression is flagged')
    .option('--json', 'print the comparison as JSON')
    .action(
      (
        before: string,
        after: string,
        o: { threshold: string; failOnRegression?: boolean; json?: boolean },
      ) => {
        const read = (file: string): ReturnType<typeof asReport> => {
          let text: string;
          try {
            text = readFileSync(file, 'utf8');
          } catch (err) {
            throw new QilinError(
              ErrorCodes.CLI_USAGE,
              `cannot read ${file}: ${(err as Error).message}`,
              { cause: err },
            );
          }
          try {
            return asReport(JSON.parse(text), file);
          } catch (err) {
            if (err instanceof QilinError) throw err;
            throw new QilinError(
              ErrorCodes.CLI_USAGE,
              `${file} is not JSON: ${(err as Error).message}`,
              { cause: err },
            );
          }
        };
        const threshold = Number(o.threshold);
        if (o.threshold.trim() === '' || !Number.isFinite(threshold) || threshold < 0) {
          throw new QilinError(
            ErrorCodes.CLI_USAGE,
            `invalid --threshold: ${JSON.stringify(o.threshold)} (allowed: a fraction >= 0, e.g. 0.1)`,
          );
        }
        const c = compareReports(read(before), read(after), threshold);
        if (o.json === true) process.stdout.write(`${JSON.stringify(c, null, 2)}\n`);
        else process.stdout.write(formatComparison(c, [before, after]));
        if (o.failOnRegression === true && c.regressions > 0) process.exitCode = 1;
      },
    );
  usageErrors(compare, 'qilin bench compare --help');
}
