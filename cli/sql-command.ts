import type { Command } from 'commander';
import type { QilinConfig } from '../config/config.js';
import type { Logger } from '../kernel/logger.js';
import { runSql } from './store-factory.js';

/** `qilin sql "SELECT …"`: query the configured store (ClickHouse or embedded chdb). */
export function registerSqlCommand(
  program: Command,
  context: () => { config: QilinConfig; log: Logger },
): void {
  program
    .command('sql')
    .description(
      'run a read query on the configured store (ClickHouse when QILIN_CLICKHOUSE_URL is set, else the embedded chdb) and print JSON rows',
    )
    .argument('<query>', 'SQL, e.g. "SELECT sym, count() FROM ticks FINAL GROUP BY sym"')
    .option('--format <fmt>', 'output: json (one object per line) or table', 'table')
    .action(async (query: string, o: { format: string }) => {
      const { config } = context();
      const rows = await runSql(config, query);
      if (o.format === 'json') {
        for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
      } else if (rows.length > 0) {
        const cols = Object.keys(rows[0]!);
        const cell = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));
        const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
        process.stdout.write(`${cols.map((c, i) => c.padEnd(widths[i]!)).join('  ')}\n`);
        for (const r of rows)
          process.stdout.write(`${cols.map((c, i) => cell(r[c]).padEnd(widths[i]!)).join('  ')}\n`);
      }
      process.stderr.write(`(${rows.length} rows)\n`);
    });
}
