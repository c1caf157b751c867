import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import {
  connect,
  nkeyAuthenticator,
  type ConnectionOptions,
  type NatsConnection,
} from '@nats-io/transport-node';
import { pino } from 'pino';
import type { NatsRole } from '../../adapters/nats/nats-credentials.js';
import {
  DEFAULT_SERVICE_PORTS,
  natsAuthDir,
  servicesUp,
} from '../../ops/services/service-manager.js';

/** Repository root (tests run from dist/test/helpers). */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export interface ServiceUrls {
  natsUrl: string;
  redisUrl: string;
  clickhouseUrl: string;
  /**
   * Folder of the per-role NATS seed files (`<role>.nk`) of that NATS;
   * undefined: the server needs no credentials.
   */
  natsAuthDir?: string | undefined;
}

let started: Promise<ServiceUrls> | undefined;

/**
 * The real NATS, Redis and ClickHouse the integration tests run against: the
 * ones named by QILIN_* variables when set (CI exports them after
 * `qilin services up`, with QILIN_NATS_AUTH_DIR), otherwise the project's
 * local services, started idempotently on the default project ports. Never
 * stopped here: test files share them.
 */
export function ensureServices(): Promise<ServiceUrls> {
  started ??= (async () => {
    const env = process.env;
    if (env['QILIN_NATS_URL'] && env['QILIN_REDIS_URL'] && env['QILIN_CLICKHOUSE_URL']) {
      return {
        natsUrl: env['QILIN_NATS_URL'],
        redisUrl: env['QILIN_REDIS_URL'],
        clickhouseUrl: env['QILIN_CLICKHOUSE_URL'],
        natsAuthDir: env['QILIN_NATS_AUTH_DIR'] || undefined,
      };
    }
    const ports = DEFAULT_SERVICE_PORTS;
    const root = join(repoRoot, '.qilin');
    await servicesUp({ root, ports, log: pino({ level: 'warn' }) });
    return {
      natsUrl: `nats://127.0.0.1:${ports.nats}`,
      redisUrl: `redis://127.0.0.1:${ports.redis}`,
      clickhouseUrl: `http://127.0.0.1:${ports.clickhouseHttp}`,
      natsAuthDir: natsAuthDir(root),
    };
  })();
  return started;
}

/**
 * The seed file of `role` on the test NATS (or on the services of `urls`, a
 * test's private stack), undefined when that NATS needs no credentials.
 */
export async function natsSeedFile(
  role: NatsRole,
  urls?: ServiceUrls,
): Promise<string | undefined> {
  const dir = (urls ?? (await ensureServices())).natsAuthDir;
  return dir === undefined ? undefined : join(dir, `${role}.nk`);
}

/** Client options that authenticate as `role` on the test NATS (or `urls`'s); `{}` without auth. */
export async function natsAuthOptions(
  role: NatsRole,
  urls?: ServiceUrls,
): Promise<Partial<ConnectionOptions>> {
  const file = await natsSeedFile(role, urls);
  if (file === undefined) return {};
  const seed = new TextEncoder().encode(readFileSync(file, 'utf8').trim());
  return { authenticator: nkeyAuthenticator(seed) };
}

/**
 * A raw client of the test NATS with the credentials of `role` (tests'
 * stream setup and market feeds: `admin`; others to check permissions).
 * `opts` may override anything, e.g. `servers` or `name`.
 */
export async function connectAs(
  role: NatsRole,
  opts: Partial<ConnectionOptions> = {},
  urls?: ServiceUrls,
): Promise<NatsConnection> {
  const u = urls ?? (await ensureServices());
  return connect({
    servers: u.natsUrl,
    name: `test-${role}`,
    ...(await natsAuthOptions(role, u)),
    ...opts,
  });
}
