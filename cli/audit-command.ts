import type { Command } from 'commander';
import type { QilinConfig } from '../config/config.js';
import { AUDIT_ACTIONS } from '../kernel/audit-event.js';
import { ErrorCodes, QilinError, hasCode } from '../kernel/errors.js';
import type { Logger } from '../kernel/logger.js';
import { runSql } from './store-factory.js';

/** Options of {@link auditQuery} (the `qilin audit` flags, parsed). */
export interface AuditQueryOptions {
  /** Events at or after this time, µs since the epoch. */
  sinceUs: number;
  /** Exact action (`risk.kill`) or a family (`key`, `key.*`). */
  action?: string;
  /** Substring of the actor (`ops`, `key:3f2a9c0d1e4b`). */
  actor?: string;
  /** Most rows, newest first. */
  limit: number;
}

const SINCE_UNITS: Readonly<Record<string, number>> = {
  s: 1,
  m: 60,
  h: 3600,
  d: 86_400,
  w: 7 * 86_400,
};

/** `--since`: `90s`, `15m`, `1h`, `7d`, `2w` (ago), or an ISO time; µs since the epoch. */
export function parseSince(text: string, nowMs: number = Date.now()): number {
  const m = /^(\d{1,9})([smhdw])$/.exec(text.trim());
  if (m !== null) return (nowMs - Number(m[1]) * SINCE_UNITS[m[2]!]! * 1000) * 1000;
  const t = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(t)) {
    throw new QilinError(
      ErrorCodes.CLI_USAGE,
      `invalid --since: ${JSON.stringify(text)} (allowed: a duration ago such as 15m, 1h, 7d, or an ISO time such as 2026-12-06T10:00:00Z)`,
      { details: { option: '--since', value: text } },
    );
  }
  return t * 1000;
}

/** A SQL string literal (quotes and backslashes escaped). */
function lit(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * The query of `qilin audit`: `audit FINAL` (each event once, also when it
 * was written twice), newest first. Filters are validated (action) or
 * escaped (actor), never spliced raw.
 */
export function auditQuery(o: AuditQueryOptions): string {
  const where = [`ts_us >= ${Math.floor(o.sinceUs)}`];
  if (o.action !== undefined) {
    const a = o.action.replace(/\.\*$/, '');
    if ((AUDIT_ACTIONS as readonly string[]).includes(a)) where.push(`action = ${lit(a)}`);
    else if (AUDIT_ACTIONS.some((x) => x.startsWith(`${a}.`)))
      where.push(`startsWith(action, ${lit(`${a}.`)})`);
    else
      throw new QilinError(
        ErrorCodes.CLI_USAGE,
        `invalid --action: ${JSON.stringify(o.action)} (allowed: ${AUDIT_ACTIONS.join(', ')}, or a family such as key or auth)`,
      );
  }
  if (o.actor !== undefined && o.actor !== '') where.push(`position(actor, ${lit(o.actor)}) > 0`);
  return (
    'SELECT id, ts_us, actor, action, target, outcome, reason, source, detail FROM audit FINAL ' +
    `WHERE ${where.join(' AND ')} ORDER BY ts_us DESC, id LIMIT ${o.limit}`
  );
}

/** `qilin audit`: query the audit log in the configured store (ClickHouse or embedded). */
export function registerAuditCommand(
  program: Command,
  context: () => { config: QilinConfig; log: Logger },
): void {
  program
    .command('audit')
    .description(
      'query the audit log (table audit: kill/resume, key changes, auth failures, refused permissions) in the configured store, newest first',
    )
    .option('--since <when>', 'events since a duration ago (15m, 1h, 7d) or an ISO time', '24h')
    .option('--action <action>', `one action (${AUDIT_ACTIONS.join(', ')}) or a family (key, auth)`)
    .option('--actor <text>', 'only actors containing this text (ops, key:3f2a9c0d1e4b)')
    .option('--limit <n>', 'most events shown', '100')
    .option('--json', 'one JSON object per line instead of a table')
    .addHelpText(
      'after',
      `
Examples:
  qilin audit --since 1h
  qilin audit --action risk.kill --since 7d
  qilin audit --action key --actor alice --json
  qilin audit --since 2026-12-06T00:00:00Z --action auth.failure --limit 20

Columns: ts (UTC), action, outcome, actor (who), target (what), source (from where), reason (why).
Refusals (auth.failure, permission.denied) are rate-limited per source: a row with
detail {"suppressed":N} stands for N more. docs/security.md "Audit".`,
    )
    .action(
      async (o: {
        since: string;
        action?: string;
        actor?: string;
        limit: string;
        json?: boolean;
      }) => {
        const limit = Number(o.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) {
          throw new QilinError(
            ErrorCodes.CLI_USAGE,
            `invalid --limit: ${JSON.stringify(o.limit)} (allowed: an integer from 1 to 100000)`,
          );
        }
        const sql = auditQuery({
          sinceUs: parseSince(o.since),
          limit,
          ...(o.action === undefined ? {} : { action: o.action }),
          ...(o.actor === undefined ? {} : { actor: o.actor }),
        });
        const { config } = context();
        let rows: Array<Record<string, unknown>>;
        try {
          rows = await runSql(config, sql);
        } catch (err) {
          // A store no kernel has migrated since the audit table came (schema 5).
          if (
            hasCode(err, ErrorCodes.STORE_FAILED) &&
            /audit doesn't exist|UNKNOWN_TABLE/i.test((err as Error).message)
          ) {
            throw new QilinError(
              ErrorCodes.STORE_FAILED,
              `the store ${config.clickhouseDb} has no audit table yet: run \`qilin migrate\` (a kernel also does at start)`,
              { cause: err },
            );
          }
          throw err;
        }
        if (o.json === true) {
          for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
        } else printTable(rows);
        process.stderr.write(`(${rows.length} events)\n`);
      },
    );
}

function printTable(rows: Array<Record<string, unknown>>): void {
  if (rows.length === 0) return;
  const head = ['ts', 'action', 'outcome', 'actor', 'target', 'source', 'reason'];
  const cells = rows.map((r) => [
    new Date(Number(r['ts_us']) / 1000).toISOString().replace(/\.(\d{3})Z$/, '.$1Z'),
    String(r['action']),
    String(r['outcome']),
    String(r['actor']),
    String(r['target']),
    String(r['source']),
    String(r['reason']),
  ]);
  const widths = head.map((h, i) =>
    Math.min(60, Math.max(h.length, ...cells.map((c) => c[i]!.length))),
  );
  const line = (c: string[]): string =>
    c
      .map((x, i) => (x.length > widths[i]! ? `${x.slice(0, widths[i]! - 1)}…` : x))
      .map((x, i) => x.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${[line(head), ...cells.map(line)].join('\n')}\n`);
}
