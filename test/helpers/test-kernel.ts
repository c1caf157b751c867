import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../bench/harness/free-port.js';
import { loadConfig, type QilinConfig } from '../../config/config.js';
import type { ServiceUrls } from './services.js';

/** A free TCP port on loopback: the bench's helper, one implementation for both. */
export { freePort };

/**
 * Config of a kernel under test: the local services, its own ClickHouse
 * database, a free HTTP port, two workers, one read key, a temp state dir,
 * partition claims under a key prefix of its own (claimPrefix).
 */
export async function testKernelConfig(
  urls: ServiceUrls,
  database: string,
  readKey: string,
  overrides: Partial<Record<keyof QilinConfig, unknown>> = {},
): Promise<QilinConfig> {
  return loadConfig({
    overrides,
    env: {
      QILIN_NATS_URL: urls.natsUrl,
      ...(urls.natsAuthDir === undefined ? {} : { QILIN_NATS_AUTH_DIR: urls.natsAuthDir }),
      QILIN_REDIS_URL: urls.redisUrl,
      QILIN_CLICKHOUSE_URL: urls.clickhouseUrl,
      QILIN_CLICKHOUSE_DB: database,
      QILIN_HTTP_PORT: String(await freePort()),
      QILIN_WORKERS: '2',
      QILIN_API_KEYS: `${readKey}:read`,
      QILIN_STATE_DIR: mkdtempSync(join(tmpdir(), `${database}-`)),
      // Test kernels share NATS and Redis with each other (and a developer's
      // kernel): their partition claims live under a prefix of their own.
      QILIN_CLAIM_PREFIX: `qilin:test:${database}:partition:`,
      // Stored API keys (qilin keys) likewise: never a developer's real ones.
      QILIN_API_KEY_PREFIX: `qilin:test:${database}:apikey:`,
      // Snapshots default to a prefix named after the database: per test already.
    },
  });
}

/** Config overrides (actor, risk) that make every trade a signal (tests). */
export const SIGNAL_EVERY_TRADE = {
  actor: { warmup: 5, emitEveryTick: true },
  risk: { maxSignalsPerSec: 100_000, maxPosition: 1_000_000, maxNotional: 1e12 },
} as const;
