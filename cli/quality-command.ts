import type { Command } from 'commander';
import type { QilinConfig } from '../config/config.js';
import { ErrorCodes, QilinError, hasCode } from '../kernel/errors.js';
import type { Logger } from '../kernel/logger.js';
import {
  TIME_FORMS,
  checkSymbol,
  formatReport,
  parseTimeOption,
  parseWorst,
  qualityReport,
  type QualityReport,
  type ReportFilter,
} from './quality-report.js';
import { createStore } from './store-factory.js';
import { usageErrors } from './usage-errors.js';

/** Options of `qilin quality report` as commander hands them over. */
export interface RawReportOptions {
  since?: string | undefined;
  until?: string | undefined;
  symbol?: string | undefined;
  worst?: string | undefined;
}

/**
 * Raw options → filter and N (QLN_CLI_USAGE naming the option when one is
 * bad). `nowMs` anchors relative durations and the default since (24h ago).
 */
export function resolveReportOptions(
  o: RawReportOptions,
  nowMs: number,
): { filter: ReportFilter; worst: number } {
  const sinceUs = parseTimeOption('--since', o.since ?? '24h', nowMs);
  const untilUs = o.until === undefined ? undefined : parseTimeOption('--until', o.until, nowMs);
  if (untilUs !== undefined && untilUs <= sinceUs) {
    throw new QilinError(
      ErrorCodes.CLI_USAGE,
      `--until (${new Date(untilUs / 1000).toISOString()}) must be after --since (${new Date(sinceUs / 1000).toISOString()})`,
    );
  }
  const symbol = o.symbol === undefined ? undefined : checkSymbol(o.symbol);
  return { filter: { sinceUs, untilUs, symbol }, worst: parseWorst(o.worst ?? '3') };
}

const HELP_AFTER = `
The quality score of a window (the quality actor, docs/protocol.md):
  score = 1 - (sum of tick weights + missing seqs) / (ticks + missing seqs)
  in [0, 1], 1 is clean; weight 1 for an out-of-order, crossed or bad-value
  tick, 0.5 for a stale or spike tick. A window is the last N ticks of a
  symbol (default 100); each window end is one row of quality_events
  (kind 'window'), which is what this report reads.

Columns: windows and ticks per symbol per UTC day; min / avg / p10 / p50 /
p90 of the window scores (quantiles are exact up to 8,192 windows a day,
sampled beyond); the sum of each check's counter over the windows (gaps =
missing sequence numbers, crossed / locked quotes, out_of_order, stale,
spikes, bad_values, outside_band = trades outside the quote's band,
time_gaps, skew = exchange-to-receive skew out of bounds, duplicates,
resets, quarantined ticks, nonfinite formula results); then the --worst
lowest-scored windows of each symbol-day with their time and issues.

Reads the configured store (ClickHouse when QILIN_CLICKHOUSE_URL is set,
else the embedded chdb, which cannot be opened while a kernel holds it).
The same SQL, to paste: docs/sql.md, "Data quality".

Examples:
  qilin quality report
  qilin quality report --since 7d --symbol BTC-USD --worst 5
  qilin quality report --since 2026-11-27 --until 2026-11-28 --json
`;

/** `qilin quality report`: per-symbol, per-day data quality from quality_events. */
export function registerQualityCommand(
  program: Command,
  context: () => { config: QilinConfig; log: Logger },
): void {
  const quality = program
    .command('quality')
    .description('data quality of the feed, from the quality_events history');
  const report = quality
    .command('report')
    .description(
      'per symbol per UTC day: windows, ticks, score distribution, counts by check and the worst windows',
    )
    .option('--since <time>', `start of the range (inclusive): ${TIME_FORMS}`, '24h')
    .option('--until <time>', 'end of the range (exclusive), same forms as --since; default now')
    .option('--symbol <sym>', 'only this symbol (a token [A-Za-z0-9_-]+)')
    .option('--worst <n>', 'list the n lowest-scored windows per symbol-day (0: none)', '3')
    .option('--json', 'print one JSON document instead of tables')
    .addHelpText('after', HELP_AFTER)
    .action(async (o: RawReportOptions & { json?: boolean }) => {
      const { filter, worst } = resolveReportOptions(o, Date.now());
      const { config } = context();
      const store = await createStore(config, { readonly: true });
      let r: QualityReport;
      try {
        r = await qualityReport((sql) => store.query(sql), filter, worst);
      } catch (err) {
        if (hasCode(err, ErrorCodes.STORE_FAILED)) {
          throw new QilinError(
            ErrorCodes.STORE_FAILED,
            `${(err as Error).message} (is the schema at version 2? run \`qilin migrate\`)`,
            { cause: err },
          );
        }
        throw err;
      } finally {
        await store.close();
      }
      if (o.json !== true) process.stdout.write(formatReport(r));
      else {
        process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        if (r.days.length === 0) process.stderr.write(formatReport(r));
      }
    });
  usageErrors(report, 'qilin quality report --help');
}
