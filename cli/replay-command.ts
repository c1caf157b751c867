import { closeSync, openSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import type { QilinConfig } from '../config/config.js';
import { ErrorCodes, QilinError } from '../kernel/errors.js';
import type { Logger } from '../kernel/logger.js';
import { parseParam } from './backtest-command.js';

interface ReplayCliOptions {
  from: string;
  workers?: string;
  speed: string;
  out?: string;
  strategy: string;
  param: Record<string, unknown>;
  predictions: boolean;
  json?: boolean;
}

/** Shard workers of a replay by default: one per core (the main thread only merges and records). */
export function replayWorkersDefault(): number {
  return Math.max(1, availableParallelism());
}

/**
 * `qilin replay`: stored history (the store's `ticks`, a JetStream stream,
 * a CSV or Arrow IPC file, or the generated market) through the kernel's own
 * actors on a simulated clock, as fast as possible or paced; predictions and
 * signals as NDJSON, deterministic whatever `--workers` (backtest/README.md).
 */
export function registerReplayCommand(
  program: Command,
  context: () => { config: QilinConfig; log: Logger },
): void {
  program
    .command('replay')
    .description(
      'replay history (store ticks, JetStream, CSV, Arrow, or a generated market) through the same actors that run live; predictions and signals as NDJSON, the same bytes whatever --workers',
    )
    .requiredOption(
      '--from <source>',
      'store[:since=T,until=T,symbols=A|B] | jetstream[:stream=S,since=T] | FILE.csv | FILE.arrow | sim[:symbols=N,messages=N,seed=N]',
    )
    .option('--workers <n>', `shard worker threads (default ${replayWorkersDefault()}: the cores)`)
    .option(
      '--speed <k>',
      'k seconds of history per second of wall time; 0: as fast as possible',
      '0',
    )
    .option('--out <file>', 'write predictions and signals as NDJSON (- for stdout)')
    .option('--strategy <name>', 'strategy name (signal ids: <strategy>:<sym>:<seq>)', 'momentum')
    .option(
      '--param <k=v>',
      'an actor option (repeatable), e.g. threshold=0.3 (config/README.md "actor")',
      (v: string, acc: Record<string, unknown>) => parseParam(v, acc),
      {},
    )
    .option('--no-predictions', 'record signals only')
    .option('--json', 'print the summary as JSON')
    .action(async (o: ReplayCliOptions) => {
      const { config, log } = context();
      const int = (name: string, v: string, min: number, max: number): number => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < min || n > max) {
          throw new QilinError(
            ErrorCodes.CLI_USAGE,
            `invalid ${name}: ${JSON.stringify(v)} (allowed: an integer ${min}..${max})`,
            { details: { option: name, value: v } },
          );
        }
        return n;
      };
      const workers =
        o.workers === undefined ? replayWorkersDefault() : int('--workers', o.workers, 0, 64);
      const speed = Number(o.speed);
      if (!Number.isFinite(speed) || speed < 0) {
        throw new QilinError(
          ErrorCodes.CLI_USAGE,
          `invalid --speed: ${JSON.stringify(o.speed)} (allowed: a number ≥ 0; 0 is as fast as possible)`,
          { details: { option: '--speed', value: o.speed } },
        );
      }
      const { openTickSource } = await import('../backtest/sources/open-source.js');
      const { replay } = await import('../backtest/replay-engine.js');
      const { OutputRecorder } = await import('../backtest/output-recorder.js');
      const { BASELINE_MODEL } = await import('../actors/symbol-actor-module.js');
      const source = await openTickSource(o.from, { config, log });
      const fd = o.out === undefined ? undefined : o.out === '-' ? 1 : openSync(o.out, 'w');
      const actor = { ...config.actor, ...o.param };
      const recorder = new OutputRecorder({
        strategy: o.strategy,
        account: 'replay',
        model: BASELINE_MODEL,
        fd,
        predictions: o.predictions,
      });
      const { default: cliProgress } = await import('cli-progress');
      const bar =
        process.stderr.isTTY === true && o.json !== true && o.out !== '-'
          ? new cliProgress.SingleBar(
              {
                stream: process.stderr,
                format:
                  source.total === undefined
                    ? ' {value} ticks replayed'
                    : ' {bar} {percentage}% | {value}/{total} ticks | eta {eta_formatted}',
                hideCursor: true,
                clearOnComplete: true,
              },
              cliProgress.Presets.shades_classic,
            )
          : undefined;
      bar?.start(source.total ?? 0, 0);
      let stats;
      try {
        stats = await replay(source, recorder, {
          workers,
          chunkTicks: 8192,
          actorOptions: { ...actor, strategy: o.strategy, account: 'replay' },
          speed,
          onProgress: (done) => bar?.update(done),
        });
      } finally {
        bar?.stop();
        await source.close();
        if (fd !== undefined && fd !== 1) closeSync(fd);
      }
      const summary = {
        from: source.description,
        workers,
        ticks: stats.ticks,
        rejected: source.rejected,
        predictions: recorder.predictions,
        signals: recorder.signals,
        sha256: recorder.digest(),
        seconds: stats.ms / 1000,
        ticksPerSec: Math.round(stats.ticksPerSec),
        out: o.out,
      };
      log.debug(summary, 'replay done');
      const say = o.out === '-' ? process.stderr : process.stdout;
      if (o.json === true) {
        say.write(`${JSON.stringify(summary, null, 2)}\n`);
        return;
      }
      say.write(
        `${summary.ticks} ticks from ${summary.from} through the actors in ${summary.seconds.toFixed(2)} s ` +
          `(${summary.ticksPerSec} ticks/s, ${workers} workers); ${summary.rejected} rows refused; ` +
          `${summary.predictions} predictions, ${summary.signals} signals; sha256 ${summary.sha256}` +
          (o.out === undefined || o.out === '-' ? '\n' : `; written to ${o.out}\n`),
      );
    });
}
