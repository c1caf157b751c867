import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import type { QilinConfig } from '../config/config.js';
import { ErrorCodes, QilinError } from '../kernel/errors.js';
import type { Logger } from '../kernel/logger.js';
import {
  checkGrid,
  checkStrategy,
  gridSize,
  parseSweep,
  strategyActorOptions,
  type SweepAxis,
} from '../backtest/sweep-grid.js';

/** `--param k=v` (repeatable): a SymbolActor option; numbers and booleans parsed. */
export function parseParam(text: string, into: Record<string, unknown>): Record<string, unknown> {
  const eq = text.indexOf('=');
  if (eq <= 0) {
    throw new QilinError(
      ErrorCodes.CLI_USAGE,
      `invalid --param: ${JSON.stringify(text)} (allowed: key=value, e.g. threshold=0.3)`,
      { details: { option: '--param', value: text } },
    );
  }
  const key = text.slice(0, eq);
  const raw = text.slice(eq + 1);
  const num = Number(raw);
  into[key] =
    raw === 'true'
      ? true
      : raw === 'false'
        ? false
        : raw !== '' && Number.isFinite(num)
          ? num
          : raw;
  return into;
}

/**
 * `--workers` default of a sweep: the config's worker count, at most
 * cores − 1 (the main thread collects and ranks), at least 1.
 */
export function sweepWorkersDefault(configWorkers: number): number {
  return Math.max(1, Math.min(configWorkers, availableParallelism() - 1));
}

/** Id of a single saved run: strategy, seed and a hash of its config and code version (same config, same id). */
export function runIdOf(
  strategy: string,
  seed: number,
  config: Readonly<Record<string, unknown>>,
  codeVersion: string,
): string {
  const h = createHash('sha256')
    .update(JSON.stringify([config, codeVersion]))
    .digest('hex');
  return `bt-${strategy}-${seed}-${h.slice(0, 12)}`;
}

interface BacktestCliOptions {
  symbols: string;
  messages: string;
  seed: string;
  stepUs: string;
  strategy?: string;
  param: Record<string, unknown>;
  sweep: SweepAxis[];
  from?: string;
  workers?: string;
  rankBy: string;
  top: string;
  save?: boolean;
  fill: string;
  latencyUs: string;
  feeBps: string;
  cash: string;
  sampleMs: string;
  html?: string;
  json?: boolean;
}

/**
 * `qilin backtest`: the kernel's actors, risk actor, a fill model and a
 * portfolio over a generated market, in one process on a simulated clock;
 * a report as a table, JSON and a self-contained HTML page
 * (backtest/README.md). `--strategy` selects a strategy of the registry
 * (actors/strategies.ts), `--param k=v` sets its parameters (or actor
 * options), `--sweep k=a..b:step` (repeatable) runs the grid over worker
 * threads and ranks it; `--save` stores the runs in `backtests` and
 * `backtest_trades`.
 */
export function registerBacktestCommand(
  program: Command,
  context: () => { config: QilinConfig; log: Logger },
): void {
  program
    .command('backtest')
    .description(
      'replay a generated market (or --from stored history) through the same actors, risk and strategy code that trades live; fills, PnL and a report (table, --json, --html); --sweep runs a parameter grid over worker threads; --save stores the results',
    )
    .option('--symbols <n>', 'symbols of the generated market', '8')
    .option('--messages <n>', 'market messages (trades and quotes), all symbols together', '200000')
    .option('--seed <n>', 'market seed: the same seed and options give the same report', '1')
    .option('--step-us <µs>', 'exchange time between two messages', '1000')
    .option(
      '--strategy <name>',
      'a strategy of the registry: model, maCross, rsi, macd, momentum (default: the config\'s actor.rule, "model" unless set)',
    )
    .option(
      '--param <k=v>',
      'a strategy parameter (e.g. threshold=0.002 for momentum) or an actor option (e.g. minIntervalUs=50000), repeatable',
      (v: string, acc: Record<string, unknown>) => parseParam(v, acc),
      {},
    )
    .option(
      '--sweep <k=a..b:step>',
      'sweep a parameter from a to b by step (repeatable: the grid is the cartesian product, at most 10,000 points)',
      (v: string, acc: SweepAxis[]) => [...acc, parseSweep(v)],
      [],
    )
    .option(
      '--from <source>',
      'history instead of the generated market, replayed in shard workers: store[:since=T,until=T,symbols=A|B] | jetstream[:stream=S,since=T] | FILE.csv | FILE.arrow | sim[:symbols=N,messages=N,seed=N]',
    )
    .option(
      '--workers <n>',
      "worker threads of a sweep (default: the config's workers, at most cores - 1), or shard workers of a --from replay (default: the cores)",
    )
    .option(
      '--rank-by <metric>',
      'rank a sweep by: sharpe, sortino, calmar, totalReturn, annualisedReturn, pnl, hitRate, profitFactor, expectancy, trades (higher first); maxDrawdown, maxDrawdownDurationUs, volatility, fees (lower first)',
      'sharpe',
    )
    .option(
      '--top <n>',
      'rows of the ranked table on the terminal (--json and --html have every point)',
      '20',
    )
    .option(
      '--save',
      'store the run (a sweep: every point, with the sweep id) in the backtests and backtest_trades tables of the configured store',
    )
    .option('--fill <model>', 'fill model: next-tick or quote-touch', 'next-tick')
    .option('--latency-us <µs>', 'between a signal and the first tick that may fill it', '0')
    .option('--fee-bps <bps>', 'fee in basis points of the notional', '1')
    .option('--cash <amount>', 'initial cash', '1000000')
    .option('--sample-ms <ms>', 'equity sample interval (exchange time)', '1000')
    .option('--html <file>', 'write the report as one self-contained HTML page')
    .option('--json', 'print the report as JSON')
    .action(async (o: BacktestCliOptions) => {
      const { config, log } = context();
      const num = (name: string, v: string, min: number, int = false): number => {
        const n = Number(v);
        if (!Number.isFinite(n) || n < min || (int && !Number.isInteger(n))) {
          throw new QilinError(
            ErrorCodes.CLI_USAGE,
            `invalid ${name}: ${JSON.stringify(v)} (allowed: ${int ? 'an integer' : 'a number'} ≥ ${min})`,
            { details: { option: name, value: v } },
          );
        }
        return n;
      };
      if (o.fill !== 'next-tick' && o.fill !== 'quote-touch') {
        throw new QilinError(
          ErrorCodes.CLI_USAGE,
          `invalid --fill: ${JSON.stringify(o.fill)} (allowed: next-tick, quote-touch)`,
          { details: { option: '--fill', value: o.fill } },
        );
      }
      const { parseRankBy } = await import('../backtest/sweep-report.js');
      const fillModel: 'next-tick' | 'quote-touch' = o.fill;
      // The config's SymbolActor options (a spread: a plain record of them).
      const actorBase: Record<string, unknown> = { ...config.actor };
      const configRule = (config.actor as { rule?: { kind?: string } }).rule?.kind ?? 'model';
      const strategy = checkStrategy(o.strategy ?? configRule);
      const rankBy = parseRankBy(o.rankBy);
      const top = num('--top', o.top, 1, true);
      checkGrid(o.sweep, o.param);
      const sweeping = o.sweep.length > 0;
      if (sweeping && o.from !== undefined) {
        throw new QilinError(
          ErrorCodes.CLI_USAGE,
          'invalid --from with --sweep: a sweep runs on the generated market (allowed: one of them)',
          { details: { option: '--from', value: o.from } },
        );
      }
      const workers =
        o.workers !== undefined
          ? num('--workers', o.workers, 1, true)
          : o.from !== undefined
            ? (await import('./replay-command.js')).replayWorkersDefault()
            : sweepWorkersDefault(config.workers);
      const messages = num('--messages', o.messages, 1, true);
      const seed = num('--seed', o.seed, 0, true);
      const base = {
        symbols: num('--symbols', o.symbols, 1, true),
        messages,
        seed,
        stepUs: num('--step-us', o.stepUs, 1),
        account: 'backtest',
        risk: config.risk,
        fill: {
          model: fillModel,
          latencyUs: num('--latency-us', o.latencyUs, 0),
          feeBps: num('--fee-bps', o.feeBps, 0),
        },
        initialCash: num('--cash', o.cash, 1),
        sampleIntervalUs: num('--sample-ms', o.sampleMs, 1) * 1000,
        codeVersion: process.env['npm_package_version'] ?? '0.1.0',
      };
      // The store first: a locked embedded store fails now, not after the run.
      const store =
        o.save === true
          ? await (await import('../backtest/backtest-store.js')).openBacktestStore(config)
          : undefined;
      try {
        const { default: cliProgress } = await import('cli-progress');
        const total = sweeping ? gridSize(o.sweep) : messages;
        const bar =
          process.stderr.isTTY === true && o.json !== true
            ? new cliProgress.SingleBar(
                {
                  stream: process.stderr,
                  format: sweeping
                    ? ' {bar} {percentage}% | {value}/{total} grid points | eta {eta_formatted}'
                    : ' {bar} {percentage}% | {value}/{total} messages | eta {eta_formatted}',
                  hideCursor: true,
                  clearOnComplete: true,
                },
                cliProgress.Presets.shades_classic,
              )
            : undefined;
        bar?.start(total, 0);
        if (sweeping) {
          const { runSweep, sweepId } = await import('../backtest/sweep.js');
          const { renderSweepHtml, renderSweepText, sweepJson } =
            await import('../backtest/sweep-report.js');
          const { saveBacktests } = await import('../backtest/backtest-store.js');
          const sweep = { base, strategy, actor: actorBase, params: o.param, axes: o.sweep };
          const id = sweepId(sweep);
          // --save: each point is stored as it arrives (memory stays flat
          // however large the grid); a failed insert cancels the sweep.
          const ac = new AbortController();
          let saving: Promise<void> = Promise.resolve();
          let saveError: Error | undefined;
          const written = { runs: 0, trades: 0 };
          let s;
          try {
            s = await runSweep({
              ...sweep,
              workers,
              rankBy,
              executions: store !== undefined,
              lean: true,
              log,
              signal: ac.signal,
              onPoint: (done) => bar?.update(done),
              onResult:
                store === undefined
                  ? undefined
                  : (p) => {
                      const run = { report: p.report, executions: p.executions ?? [], sweepId: id };
                      saving = saving.then(async () => {
                        if (saveError !== undefined) return;
                        try {
                          const w = await saveBacktests(store, [run], Date.now() * 1000);
                          written.runs += w.runs;
                          written.trades += w.trades;
                        } catch (err) {
                          saveError = err instanceof Error ? err : new Error(String(err));
                          ac.abort();
                        }
                      });
                    },
            });
          } catch (err) {
            await saving;
            throw saveError ?? err;
          } finally {
            bar?.stop();
          }
          await saving;
          if (saveError !== undefined) throw saveError;
          if (o.html !== undefined) writeFileSync(o.html, renderSweepHtml(s));
          const saved =
            store === undefined
              ? ''
              : `; saved ${written.runs} runs and ${written.trades} trades (sweep_id '${s.id}')`;
          if (o.json === true) {
            process.stdout.write(`${JSON.stringify(sweepJson(s), null, 2)}\n`);
            return;
          }
          process.stdout.write(renderSweepText(s, top));
          process.stdout.write(
            `\n${s.points.length} backtests over ${s.workers} worker threads in ${(s.ms / 1000).toFixed(2)} s` +
              (o.html === undefined ? '' : `; report: ${o.html}`) +
              `${saved}\n`,
          );
          return;
        }
        const { runBacktest, runBacktestReplay } = await import('../backtest/backtest-run.js');
        const { renderHtmlReport, renderTextReport } = await import('../backtest/report.js');
        let r;
        try {
          const run = {
            ...base,
            strategy,
            actor: strategyActorOptions(actorBase, strategy, o.param),
            onProgress: (done: number) => bar?.update(done),
          };
          if (o.from === undefined) {
            r = runBacktest(run);
          } else {
            const { openTickSource } = await import('../backtest/sources/open-source.js');
            const source = await openTickSource(o.from, { config, log });
            if (bar !== undefined) bar.setTotal(source.total ?? 0);
            try {
              r = await runBacktestReplay({ ...run, workers, source });
            } finally {
              await source.close();
            }
          }
        } finally {
          bar?.stop();
        }
        const report = {
          ...r.report,
          meta: {
            ...r.report.meta,
            id: runIdOf(strategy, seed, r.report.meta.config, r.report.meta.codeVersion),
          },
        };
        let saved = '';
        if (store !== undefined) {
          const { saveBacktests } = await import('../backtest/backtest-store.js');
          const w = await saveBacktests(
            store,
            [{ report, executions: r.executions }],
            Date.now() * 1000,
          );
          saved = `; saved as ${report.meta.id} with ${w.trades} trades`;
        }
        if (o.html !== undefined) writeFileSync(o.html, renderHtmlReport(report));
        if (o.json === true) {
          process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
          return;
        }
        process.stdout.write(renderTextReport(report));
        process.stdout.write(
          `\n${r.ticks} ticks through the actors in ${(r.ms / 1000).toFixed(2)} s (${Math.round(r.ticksPerSec)} ticks/s); ` +
            `${r.signals} signals, ${r.approved} approved by risk, ${r.fills} fills` +
            (o.html === undefined ? '' : `; report: ${o.html}`) +
            `${saved}\n`,
        );
      } finally {
        await store?.close();
      }
    });
}
