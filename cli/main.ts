import { Command, CommanderError } from 'commander';
import type { QilinConfig, loadConfig as LoadConfig } from '../config/config.js';
import { ErrorCodes, QilinError } from '../kernel/errors.js';
import type { Logger, createLogger as CreateLogger } from '../kernel/logger.js';
import { registerAuditCommand } from './audit-command.js';
import { registerBacktestCommand } from './backtest-command.js';
import { registerBenchCommand } from './bench-command.js';
import { registerDemoCommand } from './demo-command.js';
import { registerJobsCommand } from './jobs-command.js';
import { registerKeysCommand } from './keys-command.js';
import { registerModelCommand } from './model-command.js';
import { registerMigrateCommand } from './migrate-command.js';
import { registerQualityCommand } from './quality-command.js';
import { registerReplayCommand } from './replay-command.js';
import { registerRiskCommand } from './risk-command.js';
import { registerServicesCommand } from './services-command.js';
import { registerSimCommand } from './sim-command.js';
import { registerSqlCommand } from './sql-command.js';
import { registerStartCommand } from './start-command.js';
import { registerStoreCommand } from './store-command.js';

/**
 * The `qilin` command line: the composition root for every subcommand.
 * Config is loaded lazily (so `--help` works with a broken environment) from
 * `--config FILE` / QILIN_CONFIG, then QILIN_* variables.
 *
 * Start-up cost: each register*Command only declares its command (names,
 * options, help) and imports what its action needs (NATS, ClickHouse, chdb,
 * uWS, apache-arrow, mathjs via the config's formula check …) when the action
 * runs, so `qilin --help` and `qilin <cmd>` load only that command's code.
 * The config and the logger are imported before the first action (preAction).
 */
const program = new Command();
program
  .name('qilin')
  .description(
    'Qilin: actor-based realtime trading kernel (NATS in, risk-checked signals out, ClickHouse history)',
  )
  .option(
    '-c, --config <file>',
    'JSON config file (keys as in config/config.ts; QILIN_* variables override it)',
  )
  .showHelpAfterError()
  .exitOverride();

let ctx: { config: QilinConfig; log: Logger } | undefined;
let loaders: { loadConfig: typeof LoadConfig; createLogger: typeof CreateLogger } | undefined;
/**
 * Actions that never call context(): they skip importing the config (whose
 * validation pulls in the actors' modules, mathjs among them).
 */
const WITHOUT_CONTEXT: ReadonlySet<string> = new Set(['bench compare', 'bench features']);
function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c !== null && c !== program; c = c.parent)
    names.unshift(c.name());
  return names.join(' ');
}
program.hook('preAction', async (_program, action) => {
  if (WITHOUT_CONTEXT.has(commandPath(action))) return;
  const [{ loadConfig }, { createLogger }] = await Promise.all([
    import('../config/config.js'),
    import('../kernel/logger.js'),
  ]);
  loaders = { loadConfig, createLogger };
});
function context(): { config: QilinConfig; log: Logger } {
  if (ctx === undefined) {
    if (loaders === undefined)
      throw new QilinError(
        ErrorCodes.INTERNAL,
        'qilin: context() called outside an action, or by one listed in WITHOUT_CONTEXT',
      );
    const { loadConfig, createLogger } = loaders;
    const opts = program.opts<{ config?: string }>();
    const config = loadConfig({ file: opts.config });
    // The demo draws on the terminal: keep its logs to warnings unless asked.
    const demo =
      program.args[0] === 'demo' &&
      process.env['QILIN_LOG_LEVEL'] === undefined &&
      opts.config === undefined;
    ctx = { config, log: createLogger('qilin', demo ? 'warn' : config.logLevel) };
  }
  return ctx;
}

registerServicesCommand(program, context);
registerStartCommand(program, context);
registerSimCommand(program, context);
registerDemoCommand(program, context);
registerSqlCommand(program, context);
registerMigrateCommand(program, context);
registerStoreCommand(program, context);
registerQualityCommand(program, context);
registerRiskCommand(program, context);
registerKeysCommand(program, context);
registerAuditCommand(program, context);
registerModelCommand(program, context);
registerBacktestCommand(program, context);
registerReplayCommand(program, context);
registerBenchCommand(program, context);
registerJobsCommand(program, context);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
  } else if (err instanceof QilinError) {
    process.stderr.write(`qilin: ${err.code}: ${err.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`qilin: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  }
}
