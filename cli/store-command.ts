import type { Command } from 'commander';
import type { QilinConfig } from '../config/config.js';
import type { Logger } from '../kernel/logger.js';
import { usageErrors } from './usage-errors.js';

const HELP_AFTER = `
Reports, each part on its own (a part that cannot be read says why):
  store       kind (clickhouse when QILIN_CLICKHOUSE_URL is set, else the
              embedded chdb), URL or data directory, database
  server      version() of the server / embedded engine
  schema      highest applied migration, and the newest this build knows
  ttl         whether the server accepts TTL clauses (ClickHouse 19.6+, chdb
              yes; Debian's 18.16 no) and which tables carry one
  tables      engine and rows in active parts per table (a ReplacingMergeTree
              counts copies not merged yet; an *_agg table counts partial
              aggregate rows, not bars)
  spill       <stateDir>/spill/store: files and bytes waiting for replay, and
              rejected/ (batches the store kept refusing)
  kernel      a running kernel's /metrics on QILIN_OPS_PORT or QILIN_HTTP_PORT: store up/down,
              lag, spilled rows ("no kernel answers" when none runs)
  last error  the kernel exposes none: the newest file in rejected/, if any

The embedded chdb store cannot be opened while a kernel holds it: the store
part then says so and the rest is still reported.

Examples:
  qilin store status
  qilin store status --json
`;

/** `qilin store status`. The store code is imported when it runs (cli/main.ts: start-up). */
export function registerStoreCommand(
  program: Command,
  context: () => { config: QilinConfig; log: Logger },
): void {
  const store = program
    .command('store')
    .description('the history store: status (version, schema, rows, TTL, spill, kernel lag)');
  const status = store
    .command('status')
    .description(
      'store kind and location, server version, migration, rows per table, TTL, spill folder, and a running kernel’s store lag',
    )
    .option('--json', 'print one JSON document')
    .addHelpText('after', HELP_AFTER)
    .action(async (o: { json?: boolean }) => {
      const { config } = context();
      const { formatStoreStatus, storeStatus } = await import('./store-status.js');
      const s = await storeStatus(config);
      process.stdout.write(
        o.json === true ? `${JSON.stringify(s, null, 2)}\n` : formatStoreStatus(s),
      );
    });
  usageErrors(status, 'qilin store status --help');
}
