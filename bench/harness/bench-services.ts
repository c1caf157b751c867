import type { ServicesOptions } from '../../ops/services/service-manager.js';
import { servicesUp } from '../../ops/services/service-manager.js';
import { findPortOwners } from '../../ops/services/port-owner.js';

/**
 * The shared services the kernel needs besides the bench's own NATS: Redis
 * (kill switch, snapshots) and, with `--store clickhouse`, a ClickHouse
 * server. Taken from QILIN_REDIS_URL / QILIN_CLICKHOUSE_URL when set (CI
 * exports them after `qilin services up`); otherwise the project's local
 * services are started idempotently, as the integration tests do.
 */
export interface BenchServices {
  redisUrl: string;
  clickhouseUrl: string | undefined;
  /** Where they came from, for the report. */
  source: 'environment' | 'qilin services';
}

/** Resolve Redis (and ClickHouse when `clickhouse`) URLs. */
export async function resolveServices(
  clickhouse: boolean,
  servicesOptions: () => ServicesOptions,
): Promise<BenchServices> {
  const env = process.env;
  const redis = env['QILIN_REDIS_URL'];
  const ch = env['QILIN_CLICKHOUSE_URL'];
  if (redis !== undefined && redis !== '' && (!clickhouse || (ch !== undefined && ch !== ''))) {
    return { redisUrl: redis, clickhouseUrl: clickhouse ? ch : undefined, source: 'environment' };
  }
  const opts = servicesOptions();
  await servicesUp(opts);
  return {
    redisUrl: redis !== undefined && redis !== '' ? redis : `redis://127.0.0.1:${opts.ports.redis}`,
    clickhouseUrl: clickhouse
      ? ch !== undefined && ch !== ''
        ? ch
        : `http://127.0.0.1:${opts.ports.clickhouseHttp}`
      : undefined,
    source: 'qilin services',
  };
}

/** Pid of the process listening on a URL's port (loopback only), if /proc tells. */
export async function pidOfUrl(url: string): Promise<number | undefined> {
  let port: number;
  try {
    const u = new URL(url);
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) return undefined;
    port = Number(u.port);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(port) || port <= 0) return undefined;
  const owners = await findPortOwners([port]);
  return owners.get(port)?.pid;
}

/** Run one statement on a ClickHouse HTTP endpoint. */
export async function clickhouseCommand(url: string, sql: string): Promise<void> {
  const res = await fetch(url, { method: 'POST', body: sql, signal: AbortSignal.timeout(30_000) });
  if (!res.ok) throw new Error(`ClickHouse ${res.status}: ${(await res.text()).trim()}`);
}
