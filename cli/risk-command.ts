import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import type { QilinConfig } from '../config/config.js';
import { ErrorCodes, QilinError } from '../kernel/errors.js';
import type { Logger } from '../kernel/logger.js';

/**
 * `qilin risk kill|resume`: the kill switch over NATS request/reply (ctl.risk.*).
 * NATS is imported when the action runs (cli/main.ts: start-up).
 */
export function registerRiskCommand(
  program: Command,
  context: () => { config: QilinConfig; log: Logger },
): void {
  const risk = program
    .command('risk')
    .description('risk controls of a running kernel (over NATS ctl.risk.*)');
  for (const op of ['kill', 'resume'] as const) {
    risk
      .command(op)
      .description(op === 'kill' ? 'stop all signal publication now' : 'restart signal publication')
      .requiredOption('--reason <text>', 'why (recorded in the audit trail)')
      .option('--by <who>', 'who (recorded in the audit trail)', userInfo().username)
      .option('--timeout <ms>', 'how long to wait for the kernel to answer', '3000')
      .action(async (o: { reason: string; by: string; timeout: string }) => {
        const { config, log } = context();
        const [{ connectNats, drainNats }, { natsSeedFileFor }] = await Promise.all([
          import('../adapters/nats/nats-connection.js'),
          import('../adapters/nats/nats-credentials.js'),
        ]);
        const nc = await connectNats({
          servers: config.natsUrl,
          seedFile: natsSeedFileFor(config, 'operator'),
          name: 'qilin-risk-cli',
          log,
        });
        try {
          const body = JSON.stringify({
            by: o.by,
            reason: o.reason,
            from: `cli:${userInfo().username}@${hostname()}`,
          });
          const reply = await nc
            .request(`ctl.risk.${op}`, body, { timeout: Number(o.timeout) })
            .catch((cause: unknown) => {
              throw new QilinError(
                ErrorCodes.BUS_UNAVAILABLE,
                `no kernel answered ctl.risk.${op} within ${o.timeout} ms ` +
                  `(is \`qilin start\` running?): ${(cause as Error).message}`,
                { cause },
              );
            });
          process.stdout.write(`${reply.string()}\n`);
          if (reply.string().includes('"error"')) process.exitCode = 2;
        } finally {
          await drainNats(nc);
        }
      });
  }
}
