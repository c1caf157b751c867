import { formatTable, type Align } from '../bench/harness/text-table.js';
import { ErrorCodes, QilinError } from '../kernel/errors.js';

/**
 * `qilin quality report`: data quality per symbol per UTC day, from the
 * window rows of `quality_events`. The SQL lives here (the builders below)
 * and, the same text with literal dates, in docs/sql.md under "Data quality";
 * it runs on ClickHouse 18.16, current ClickHouse and chdb (no window
 * functions: the worst windows use `LIMIT n BY`).
 *
 * Window rows are `kind IN ('window', '')`: '' is a window row written
 * without the `kind` column on ClickHouse 18.16, which stores the type's zero
 * instead of the DEFAULT for a field a JSONEachRow insert omits
 * (adapters/clickhouse/schema.ts).
 */

/** The per-check counters of a window, as `quality_events` columns, in report order. */
export const CHECKS = [
  'gaps',
  'crossed',
  'locked',
  'out_of_order',
  'stale',
  'spikes',
  'bad_values',
  'outside_band',
  'time_gaps',
  'skew',
  'duplicates',
  'resets',
  'quarantined',
  'nonfinite',
] as const;
export type Check = (typeof CHECKS)[number];

/** Which window rows a report covers. */
export interface ReportFilter {
  /** Inclusive lower bound of `ts_us` (whole seconds, µs). */
  sinceUs: number;
  /** Exclusive upper bound of `ts_us` (whole seconds, µs); none when undefined. */
  untilUs?: number | undefined;
  /** Only this symbol (checked against the token grammar). */
  symbol?: string | undefined;
}

/** Score distribution of the windows of a symbol-day. */
export interface ScoreStats {
  min: number;
  avg: number;
  p10: number;
  p50: number;
  p90: number;
}

/** One of the lowest-scored windows of a symbol-day. */
export interface WorstWindow {
  tsUs: number;
  /** `tsUs` as ISO 8601 UTC. */
  ts: string;
  score: number;
  issues: string[];
  ticks: number;
}

/** The report line of one symbol on one UTC day. */
export interface SymbolDay {
  sym: string;
  /** UTC day `YYYY-MM-DD`. */
  date: string;
  windows: number;
  ticks: number;
  score: ScoreStats;
  checks: Record<Check, number>;
  /** Lowest score first (ties: earliest first), at most `worst` of them. */
  worst: WorstWindow[];
}

/** `qilin quality report --json`. */
export interface QualityReport {
  /** ISO 8601 UTC. */
  since: string;
  /** ISO 8601 UTC, or null for "now" (no upper bound). */
  until: string | null;
  symbol: string | null;
  worst: number;
  days: SymbolDay[];
}

/** Runs a read query, rows as JSON objects (EventStore.query). */
export type QueryFn = (sql: string) => Promise<Array<Record<string, unknown>>>;

const SYMBOL = /^[A-Za-z0-9_-]+$/;
const US_PER_S = 1_000_000;

function usage(message: string): never {
  throw new QilinError(ErrorCodes.CLI_USAGE, message);
}

/** The symbol if it is a token `[A-Za-z0-9_-]+` (it is spliced into SQL), else QLN_CLI_USAGE. */
export function checkSymbol(symbol: string): string {
  if (!SYMBOL.test(symbol) || symbol.length > 128) {
    usage(
      `invalid --symbol: ${JSON.stringify(symbol)} (allowed: a symbol token [A-Za-z0-9_-]+, e.g. BTC-USD)`,
    );
  }
  return symbol;
}

const RELATIVE = /^(\d{1,6})([smhdw])$/;
const UNIT_S: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };
const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** What `--since` / `--until` accept, for help and errors. */
export const TIME_FORMS =
  'an ISO date or date-time (2026-11-27, 2026-11-27T10:00:00Z, 2026-11-27T10:00+01:00; UTC unless a zone is given) or a duration ago (90m, 24h, 7d, 2w, 30s)';

/**
 * `--since` / `--until` → µs since the epoch, floored to the whole second
 * (the SQL compares seconds). `nowMs` anchors relative durations.
 * QLN_CLI_USAGE naming the option and the accepted forms otherwise.
 */
export function parseTimeOption(option: string, value: string, nowMs: number): number {
  const v = value.trim();
  const bad = (): never =>
    usage(`invalid ${option}: ${JSON.stringify(value)} (allowed: ${TIME_FORMS})`);
  const rel = RELATIVE.exec(v);
  if (rel !== null) {
    const ms = Number(rel[1]) * UNIT_S[rel[2]!]! * 1000;
    return Math.floor((nowMs - ms) / 1000) * US_PER_S;
  }
  const m = ISO.exec(v);
  if (m === null) return bad();
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  const z = zone === 'Z' ? 'Z' : `${zone.slice(0, 3)}:${zone.slice(-2)}`;
  const ms = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}${frac.slice(0, 4)}${z}`);
  // Date.parse rolls 2026-02-30 over to March: reject a day or hour out of range.
  const calendar = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (
    !Number.isFinite(ms) ||
    calendar.getUTCDate() !== Number(d) ||
    calendar.getUTCMonth() !== Number(mo) - 1 ||
    Number(h) > 23 ||
    Number(mi) > 59 ||
    Number(s) > 59
  ) {
    return bad();
  }
  return Math.floor(ms / 1000) * US_PER_S;
}

/** `--worst N`: an integer 0–1000 (0: no worst-window list). */
export function parseWorst(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n > 1000) {
    usage(`invalid --worst: ${JSON.stringify(value)} (allowed: an integer 0–1000)`);
  }
  return n;
}

/** `YYYY-MM-DD hh:mm:ss` (UTC) of a µs timestamp, as the SQL literals spell it. */
function sqlTime(us: number): string {
  return new Date(Math.floor(us / US_PER_S) * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

/** The WHERE clause shared by both queries. */
function whereClause(f: ReportFilter): string {
  const since = sqlTime(f.sinceUs);
  const until = f.untilUs === undefined ? undefined : sqlTime(f.untilUs);
  const conds = ["kind IN ('window', '')", `date >= toDate('${since.slice(0, 10)}')`];
  // The date bounds only prune partitions; ts_us is the exact range.
  if (until !== undefined) conds.push(`date <= toDate('${until.slice(0, 10)}')`);
  conds.push(`ts_us >= toUnixTimestamp('${since}', 'UTC') * 1000000`);
  if (until !== undefined) conds.push(`ts_us < toUnixTimestamp('${until}', 'UTC') * 1000000`);
  if (f.symbol !== undefined) conds.push(`sym = '${checkSymbol(f.symbol)}'`);
  return `WHERE ${conds.join('\n  AND ')}`;
}

/**
 * Per symbol per UTC day: windows, ticks, the score distribution and the sum
 * of every check's counter. `quantiles` is exact up to 8,192 windows per
 * group (interpolated), a reservoir sample beyond.
 */
export function summarySql(f: ReportFilter): string {
  return `SELECT
    sym,
    date,
    count() AS windows,
    sum(ticks) AS ticks,
    min(score) AS min_score,
    avg(score) AS avg_score,
    quantiles(0.1, 0.5, 0.9)(score) AS p10_p50_p90,
${CHECKS.map((c) => `    sum(${c}) AS ${c}`).join(',\n')}
FROM quality_events
${whereClause(f)}
GROUP BY sym, date
ORDER BY sym, date`;
}

/** The `n` lowest-scored windows of each symbol-day (ties: earliest first). */
export function worstSql(f: ReportFilter, n: number): string {
  if (!Number.isInteger(n) || n < 1) usage(`invalid --worst: ${n} (allowed: an integer 0–1000)`);
  return `SELECT sym, date, ts_us, score, issues, ticks
FROM quality_events
${whereClause(f)}
ORDER BY sym, date, score, ts_us
LIMIT ${n} BY sym, date`;
}

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));

/** Run both queries and assemble the report. */
export async function qualityReport(
  query: QueryFn,
  f: ReportFilter,
  worst: number,
): Promise<QualityReport> {
  const summary = await query(summarySql(f));
  const worstRows = worst > 0 && summary.length > 0 ? await query(worstSql(f, worst)) : [];
  const byKey = new Map<string, WorstWindow[]>();
  for (const r of worstRows) {
    const key = `${String(r['sym'])}\u0000${String(r['date'])}`;
    const list = byKey.get(key) ?? [];
    const tsUs = num(r['ts_us']);
    list.push({
      tsUs,
      ts: new Date(tsUs / 1000).toISOString(),
      score: num(r['score']),
      issues: Array.isArray(r['issues']) ? r['issues'].map(String) : [],
      ticks: num(r['ticks']),
    });
    byKey.set(key, list);
  }
  const days = summary.map((r): SymbolDay => {
    const sym = String(r['sym']);
    const date = String(r['date']);
    const q = Array.isArray(r['p10_p50_p90']) ? r['p10_p50_p90'].map(num) : [];
    const checks = Object.fromEntries(CHECKS.map((c) => [c, num(r[c])])) as Record<Check, number>;
    return {
      sym,
      date,
      windows: num(r['windows']),
      ticks: num(r['ticks']),
      score: {
        min: num(r['min_score']),
        avg: num(r['avg_score']),
        p10: q[0] ?? Number.NaN,
        p50: q[1] ?? Number.NaN,
        p90: q[2] ?? Number.NaN,
      },
      checks,
      worst: byKey.get(`${sym}\u0000${date}`) ?? [],
    };
  });
  return {
    since: new Date(f.sinceUs / 1000).toISOString(),
    until: f.untilUs === undefined ? null : new Date(f.untilUs / 1000).toISOString(),
    symbol: f.symbol ?? null,
    worst,
    days,
  };
}

const score = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');

/** The terminal rendering: one table of symbol-days, one of worst windows, zero counters left out. */
export function formatReport(r: QualityReport): string {
  const range = `${r.since} .. ${r.until ?? 'now'}${r.symbol === null ? '' : `, symbol ${r.symbol}`}`;
  if (r.days.length === 0) return `No quality windows in ${range}.\n`;
  const used = CHECKS.filter((c) => r.days.some((d) => d.checks[c] > 0));
  const header = ['symbol', 'date', 'windows', 'ticks', 'min', 'avg', 'p10', 'p50', 'p90', ...used];
  const align: Align[] = ['left', 'left', ...header.slice(2).map((): Align => 'right')];
  const rows = r.days.map((d) => [
    d.sym,
    d.date,
    String(d.windows),
    String(d.ticks),
    score(d.score.min),
    score(d.score.avg),
    score(d.score.p10),
    score(d.score.p50),
    score(d.score.p90),
    ...used.map((c) => String(d.checks[c])),
  ]);
  let out = `Data quality per symbol per UTC day, ${range}\n\n${formatTable(header, rows, align)}\n`;
  if (used.length < CHECKS.length) {
    out += `(checks with no events left out: ${CHECKS.filter((c) => !used.includes(c)).join(', ')})\n`;
  }
  const worst = r.days.flatMap((d) =>
    d.worst.map((w) => [
      d.sym,
      d.date,
      w.ts,
      score(w.score),
      String(w.ticks),
      w.issues.join(',') || '-',
    ]),
  );
  if (worst.length > 0) {
    out += `\nWorst ${r.worst} windows per symbol-day (lowest score first)\n\n`;
    out += `${formatTable(['symbol', 'date', 'ts (UTC)', 'score', 'ticks', 'issues'], worst, [
      'left',
      'left',
      'left',
      'right',
      'right',
      'left',
    ])}\n`;
  }
  return out;
}
