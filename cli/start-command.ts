import type { Command } from 'commander';
import type { QilinConfig } from '../config/config.js';
import { ErrorCodes, QilinError } from '../kernel/errors.js';
import type { Logger } from '../kernel/logger.js';

/**
 * `qilin start`: run the kernel until SIGINT/SIGTERM, then drain and stop.
 * The kernel's code is imported when the action runs (cli/main.ts: start-up).
 */
export function registerStartCommand(
  program: Command,
  context: () => { config: QilinConfig; log: Logger },
): void {
  program
    .command('start')
    .description(
      'run the kernel: NATS md.> in, signals out on NATS sig.<strategy>.<symbol> and WebSocket /ws, history to the store',
    )
    .option('--strategy <name>', 'strategy name (signal subjects and ids)', 'momentum')
    .option('--account <name>', 'account the risk actor guards (fills on fill.<account>)', 'main')
    .option(
      '--jetstream <stream:durable>',
      'consume market data from a JetStream durable instead of core subjects',
    )
    .option('--duration <seconds>', 'stop after this long (0: until Ctrl-C)', '0')
    .action(
      async (o: { strategy: string; account: string; jetstream?: string; duration: string }) => {
        const { config, log } = context();
        let jetstream: { stream: string; durable: string } | undefined;
        if (o.jetstream !== undefined) {
          const [stream, durable] = o.jetstream.split(':');
          if (!stream || !durable) {
            throw new QilinError(
              ErrorCodes.CLI_USAGE,
              `--jetstream expects STREAM:DURABLE, got ${JSON.stringify(o.jetstream)}`,
            );
          }
          jetstream = { stream, durable };
        }
        const [{ opsBaseUrl }, { KernelApp }, { runUntilSignal }] = await Promise.all([
          import('../config/config.js'),
          import('./kernel-app.js'),
          import('./run-until-signal.js'),
        ]);
        const app = new KernelApp({
          config,
          log,
          strategy: o.strategy,
          account: o.account,
          ...(jetstream ? { jetstream } : {}),
        });
        try {
          await app.start();
          process.stderr.write(
            `qilin: kernel running; ws://127.0.0.1:${app.port}/ws  ${opsBaseUrl(config, app.opsPort ?? app.port)}/metrics  (Ctrl-C stops)\n`,
          );
          await runUntilSignal(Number(o.duration) * 1000);
        } finally {
          await app.close();
        }
      },
    );
}
