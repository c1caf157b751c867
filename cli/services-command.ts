import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { QilinConfig } from '../config/config.js';
import type { Logger } from '../kernel/logger.js';
import { ErrorCodes, QilinError } from '../kernel/errors.js';
import type {
  ServicePorts,
  ServiceStatus,
  ServicesOptions,
} from '../ops/services/service-manager.js';

/** The service manager, imported when an action runs (cli/main.ts: start-up). */
const serviceManager = () => import('../ops/services/service-manager.js');

export function servicePorts(config: QilinConfig): ServicePorts {
  return {
    nats: config.natsPort,
    natsMonitor: config.natsMonitorPort,
    redis: config.redisPort,
    clickhouseHttp: config.clickhouseHttpPort,
    clickhouseTcp: config.clickhouseTcpPort,
  };
}

export function serviceOptions(config: QilinConfig, log: Logger): ServicesOptions {
  return {
    root: resolve(config.stateDir),
    ports: servicePorts(config),
    log,
    ...(config.natsPartitions > 0 ? { natsPartitions: config.natsPartitions } : {}),
  };
}

function printStatus(rows: ServiceStatus[]): void {
  for (const r of rows) {
    const pid = r.pid === undefined ? '' : ` pid ${r.pid}`;
    const detail = r.detail === undefined ? '' : ` (${r.detail})`;
    process.stderr.write(`${r.name.padEnd(11)} ${r.state.padEnd(8)} ${r.url}${pid}${detail}\n`);
  }
}

/** `qilin services up|down|status` */
export function registerServicesCommand(
  program: Command,
  context: () => { config: QilinConfig; log: Logger },
): void {
  const services = program
    .command('services')
    .description(
      'install (Debian packages) and run the local NATS (JetStream), Redis and ClickHouse on the project ports',
    );
  services
    .command('up')
    .description(
      'install missing packages, start the services, wait until each answers; prints `export QILIN_…` lines for eval',
    )
    .action(async () => {
      const { config, log } = context();
      const { exportLines, natsAuthDir, servicesUp } = await serviceManager();
      const opts = serviceOptions(config, log);
      const rows = await servicesUp(opts);
      printStatus(rows);
      process.stdout.write(`${exportLines(servicePorts(config), natsAuthDir(opts.root))}\n`);
    });
  services
    .command('down')
    .description('stop the services this project started (never anything else)')
    .action(async () => {
      const { config, log } = context();
      const { servicesDown } = await serviceManager();
      printStatus(await servicesDown(serviceOptions(config, log)));
    });
  const natsUser = services
    .command('nats-user')
    .description('NATS users per role (nkey seeds in <stateDir>/nats-auth; docs/security.md)');
  natsUser
    .command('add <role>')
    .description(
      'create the seed of a role (admin, kernel, operator, publisher, executor-<account>) if missing, regenerate nats.conf, reload a running server',
    )
    .option('--account <acct>', 'executor account: same as the role executor-<acct>')
    .action(async (role: string, o: { account?: string }) => {
      const { config, log } = context();
      let name = role;
      if (o.account !== undefined) {
        if (role !== 'executor') {
          throw new QilinError(
            ErrorCodes.CLI_USAGE,
            `--account goes with the role executor (got ${JSON.stringify(role)})`,
          );
        }
        name = `executor-${o.account}`;
      }
      const { addNatsUser } = await serviceManager();
      const r = await addNatsUser(serviceOptions(config, log), name);
      process.stderr.write(
        `nats-user ${name}: seed ${r.seedFile} ${r.created ? 'created' : 'already there'}; ` +
          `${r.reloaded ? 'nats-server reloaded' : 'nats.conf up to date (no running server reloaded)'}\n`,
      );
    });
  services
    .command('status')
    .description('say what runs where')
    .action(async () => {
      const { config, log } = context();
      const { servicesStatus } = await serviceManager();
      const rows = await servicesStatus(serviceOptions(config, log));
      printStatus(rows);
      if (rows.some((r) => r.state !== 'running')) process.exitCode = 3;
    });
}
