import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { QilinConfig } from '../config/config.js';
import type { Logger } from '../kernel/logger.js';
import {
  exportLines,
  servicesDown,
  servicesStatus,
  servicesUp,
  type ServicePorts,
  type ServiceStatus,
  type ServicesOptions,
} from '../ops/services/service-manager.js';

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
      const rows = await servicesUp(serviceOptions(config, log));
      printStatus(rows);
      process.stdout.write(`${exportLines(servicePorts(config))}\n`);
    });
  services
    .command('down')
    .description('stop the services this project started (never anything else)')
    .action(async () => {
      const { config, log } = context();
      printStatus(await servicesDown(serviceOptions(config, log)));
    });
  services
    .command('status')
    .description('say what runs where')
    .action(async () => {
      const { config, log } = context();
      const rows = await servicesStatus(serviceOptions(config, log));
      printStatus(rows);
      if (rows.some((r) => r.state !== 'running')) process.exitCode = 3;
    });
}
