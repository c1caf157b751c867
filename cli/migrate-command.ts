import type { Command } from 'commander';
import type { QilinConfig } from '../config/config.js';
import type { Logger } from '../kernel/logger.js';
import type { TtlResult } from '../adapters/clickhouse/schema.js';
import { createStore, storeKind } from './store-factory.js';

/**
 * `qilin migrate`: create the database and apply the versioned schema
 * migrations (adapters/clickhouse/schema.ts) to the configured store.
 * Idempotent; the kernel also runs it at start.
 */
export function registerMigrateCommand(
  program: Command,
  context: () => { config: QilinConfig; log: Logger },
): void {
  program
    .command('migrate')
    .description(
      'create the database and tables (versioned, idempotent) in ClickHouse, or in the embedded chdb store when QILIN_CLICKHOUSE_URL is unset',
    )
    .action(async () => {
      const { config } = context();
      const store = await createStore(config);
      try {
        await store.migrate();
        process.stderr.write(
          `migrate: ${storeKind(config)} database ${config.clickhouseDb} is up to date\n`,
        );
        const ttl = (store as { lastTtl?: TtlResult }).lastTtl;
        if (ttl !== undefined)
          process.stderr.write(
            ttl.supported
              ? `migrate: TTL set on ${ttl.applied.join(', ')} (storeTtlDays)\n`
              : `migrate: storeTtlDays ignored: server ${ttl.version} has no TTL clauses (ClickHouse 19.6+)\n`,
          );
      } finally {
        await store.close();
      }
    });
}
