import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { pino } from 'pino';
import { DEFAULT_SERVICE_PORTS, servicesUp } from '../../ops/services/service-manager.js';

/** Repository root (tests run from dist/test/helpers). */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export interface ServiceUrls {
  natsUrl: string;
  redisUrl: string;
  clickhouseUrl: string;
}

let started: Promise<ServiceUrls> | undefined;

/**
 * The real NATS, Redis and ClickHouse the integration tests run against: the
 * ones named by QILIN_* variables when set (CI exports them after
 * `qilin services up`), otherwise the project's local services, started
 * idempotently on the default project ports. Never stopped here: test files
 * share them.
 */
export function ensureServices(): Promise<ServiceUrls> {
  started ??= (async () => {
    const env = process.env;
    if (env['QILIN_NATS_URL'] && env['QILIN_REDIS_URL'] && env['QILIN_CLICKHOUSE_URL']) {
      return {
        natsUrl: env['QILIN_NATS_URL'],
        redisUrl: env['QILIN_REDIS_URL'],
        clickhouseUrl: env['QILIN_CLICKHOUSE_URL'],
      };
    }
    const ports = DEFAULT_SERVICE_PORTS;
    await servicesUp({ root: join(repoRoot, '.qilin'), ports, log: pino({ level: 'warn' }) });
    return {
      natsUrl: `nats://127.0.0.1:${ports.nats}`,
      redisUrl: `redis://127.0.0.1:${ports.redis}`,
      clickhouseUrl: `http://127.0.0.1:${ports.clickhouseHttp}`,
    };
  })();
  return started;
}
