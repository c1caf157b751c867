/**
 * `qilin quality report` and schema migration 2, on chdb and on the real
 * ClickHouse: the migration over a table with old rows (defaults, re-run),
 * the report functions on known rows (exact windows, scores, counts by check,
 * worst-window order), the documented SQL equal to the builders' output,
 * option parsing, and the CLI once as a child process against chdb.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import { Session } from 'chdb';
import t, { type Test } from 'tap';
import { ChdbStore } from '../../adapters/chdb/chdb-store.js';
import { ClickHouseStore } from '../../adapters/clickhouse/clickhouse-store.js';
import {
  MIGRATIONS,
  migrateSchema,
  type SchemaExecutor,
} from '../../adapters/clickhouse/schema.js';
import { resolveReportOptions } from '../../cli/quality-command.js';
import {
  CHECKS,
  formatReport,
  parseTimeOption,
  parseWorst,
  qualityReport,
  summarySql,
  worstSql,
  type Check,
  type QualityReport,
  type QueryFn,
  type ReportFilter,
} from '../../cli/quality-report.js';
import { docQueries } from '../adapters/clickhouse/store-contract.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { ensureServices, repoRoot } from '../helpers/services.js';

const S = 1_000_000;
const H = 3600 * S;
/** 2026-11-26 00:00:00 UTC, µs. */
const DAY1 = Date.UTC(2026, 10, 26) * 1000;
const DAY2 = DAY1 + 24 * H;
const DAY3 = DAY2 + 24 * H;
/** The range of the documented queries: [DAY1, DAY3). */
const RANGE: ReportFilter = { sinceUs: DAY1, untilUs: DAY3 };

interface Row {
  sym: string;
  tsUs: number;
  score: number;
  kind?: string;
  issues?: string[];
  ticks?: number;
  counts?: Partial<Record<Check, number>>;
  session?: number;
  raw?: string;
}

const w = (sym: string, tsUs: number, score: number, more: Partial<Row> = {}): Row => ({
  sym,
  tsUs,
  score,
  ...more,
});

/**
 * The fixture, with the answers worked out below. CCC's window is stored
 * before migration 2 (an old row); every other row after it, BBB's second
 * window with kind '' (a window row from an old writer on 18.16).
 */
const OLD_ROW = w('CCC', DAY2 + 8 * H, 1, { ticks: 50, counts: { gaps: 1 } });
const ROWS: Row[] = [
  // AAA day 1: scores 1, 0.5, 0.75, 0.25
  w('AAA', DAY1 + 10 * H, 1),
  w('AAA', DAY1 + 11 * H, 0.5, {
    issues: ['seq_gap', 'crossed_quote'],
    counts: { gaps: 5, crossed: 1 },
  }),
  w('AAA', DAY1 + 12 * H, 0.75, { issues: ['locked'], counts: { locked: 2, outside_band: 1 } }),
  w('AAA', DAY1 + 13 * H, 0.25, {
    issues: ['stale', 'spike', 'bad_value'],
    counts: {
      out_of_order: 1,
      stale: 3,
      spikes: 1,
      bad_values: 2,
      time_gaps: 1,
      skew: 4,
      duplicates: 1,
      resets: 1,
      quarantined: 2,
      nonfinite: 3,
    },
  }),
  // not windows: left out of every figure
  w('AAA', DAY1 + 11 * H + S, 0, { kind: 'change', issues: ['seq_gap'], counts: { gaps: 100 } }),
  w('AAA', DAY1 + 12 * H + S, 0, {
    kind: 'quarantine',
    counts: { quarantined: 1 },
    raw: '{"sym":"AAA","px":-1}',
  }),
  w('AAA', DAY2 + 1 * H, 0, { kind: 'reset', session: 1, counts: { resets: 1 } }),
  // AAA day 2: 0.8, 0.4
  w('AAA', DAY2 + 2 * H, 0.8, { session: 1, counts: { gaps: 1 } }),
  w('AAA', DAY2 + 3 * H, 0.4, { session: 1, issues: ['stale'], counts: { stale: 7 } }),
  // outside the range: the day before, and DAY3 itself (until is exclusive)
  w('AAA', DAY1 - S, 0, { counts: { gaps: 1000 } }),
  w('AAA', DAY3, 0, { counts: { gaps: 1000 } }),
  // BBB day 1: 0.9 (09:00), 0.9 (10:00, kind ''), 0.6
  w('BBB', DAY1 + 9 * H, 0.9, { ticks: 200 }),
  w('BBB', DAY1 + 10 * H, 0.9, { ticks: 200, kind: '' }),
  w('BBB', DAY1 + 11 * H, 0.6, {
    ticks: 200,
    issues: ['out_of_order'],
    counts: { out_of_order: 9 },
  }),
];

const zeroChecks = (): Record<Check, number> =>
  Object.fromEntries(CHECKS.map((c) => [c, 0])) as Record<Check, number>;

function jsonRow(r: Row, v2: boolean): string {
  const o: Record<string, unknown> = {
    sym: r.sym,
    ts_us: r.tsUs,
    ts: Math.floor(r.tsUs / S),
    date: new Date(r.tsUs / 1000).toISOString().slice(0, 10),
    score: r.score,
    issues: r.issues ?? [],
    ticks: r.ticks ?? 100,
    src_seq: 1,
    src_ts_us: r.tsUs,
    lat_recv_us: r.tsUs + 10,
  };
  for (const c of ['gaps', 'crossed', 'out_of_order', 'stale', 'spikes'] as const)
    o[c] = r.counts?.[c] ?? 0;
  if (v2) {
    o['kind'] = r.kind ?? 'window';
    o['session'] = r.session ?? 0;
    o['raw'] = r.raw ?? '';
    for (const c of CHECKS) o[c] = r.counts?.[c] ?? 0;
  }
  return JSON.stringify(o);
}

/** Rows as one INSERT … FORMAT JSONEachRow statement (every column named). */
function insertSql(db: string, rows: Row[], v2: boolean): string {
  return `INSERT INTO ${db}.quality_events FORMAT JSONEachRow\n${rows.map((r) => jsonRow(r, v2)).join('\n')}\n`;
}

const near = (t: Test, got: number, want: number, what: string): void => {
  t.ok(Math.abs(got - want) < 1e-9, `${what}: ${got} ≈ ${want}`);
};

/**
 * Migrate to version 1, store the old row, migrate to 2 (applied on top of
 * old data), re-run, store the fixture.
 */
async function migrationChecks(t: Test, exec: SchemaExecutor, db: string): Promise<void> {
  t.same(await migrateSchema(exec, db, MIGRATIONS.slice(0, 1)), [1], 'version 1 alone');
  await exec.command(insertSql(db, [OLD_ROW], false));
  t.same(
    await migrateSchema(exec, db, MIGRATIONS.slice(0, 2)),
    [2],
    'version 2 applied over old rows',
  );
  t.same(
    await migrateSchema(exec, db),
    [3, 4, 5, 6, 7],
    'version 3 (ticks keyed by the tick), 4 (materialized views), 5 (audit), 6 (prediction role, interval), 7 (backtests)',
  );
  t.same(await migrateSchema(exec, db), [], 'nothing left to apply');
  // A migration that died after its ALTERs but before its record runs again:
  // every column is there already, each step is skipped, nothing fails.
  const again = { ...MIGRATIONS[1]!, version: 99 };
  t.same(await migrateSchema(exec, db, [...MIGRATIONS, again]), [99], 're-run of the steps');
  const cols = await exec.select(
    `SELECT name, type, default_expression AS d FROM system.columns WHERE database = '${db}' AND table = 'quality_events' ORDER BY name`,
  );
  const byName = new Map(cols.map((c) => [String(c['name']), c]));
  t.equal(cols.length, 15 + 12, '15 columns of version 1 + 12 of version 2');
  t.match(byName.get('kind'), { type: 'String', d: "'window'" });
  t.match(byName.get('session'), { type: 'UInt32', d: '0' });
  t.match(byName.get('raw'), { type: 'String', d: "''" });
  for (const c of CHECKS) t.equal(byName.get(c)?.['type'], 'UInt32', `${c} UInt32`);

  const old = await exec.select(
    `SELECT kind, session, locked, nonfinite, raw, gaps FROM ${db}.quality_events`,
  );
  t.same(
    old,
    [{ kind: 'window', session: 0, locked: 0, nonfinite: 0, raw: '', gaps: 1 }],
    'the old row reads the defaults',
  );
  // An old writer naming only version-1 columns still inserts (DEFAULTs apply).
  await exec.command(
    `INSERT INTO ${db}.quality_events (sym, ts_us, ts, date, score, issues, ticks) VALUES ('ZZZ', ${DAY1 - H}, ${DAY1 / S - 3600}, '2026-11-25', 1, [], 1)`,
  );
  t.same(
    await exec.select(
      `SELECT kind, session, skew, raw FROM ${db}.quality_events WHERE sym = 'ZZZ'`,
    ),
    [{ kind: 'window', session: 0, skew: 0, raw: '' }],
    'old-writer insert gets the defaults',
  );
  await exec.command(insertSql(db, ROWS, true));
}

/** The worked answers over RANGE. */
async function reportChecks(t: Test, query: QueryFn): Promise<void> {
  const r = await qualityReport(query, RANGE, 3);
  t.equal(r.since, '2026-11-26T00:00:00.000Z');
  t.equal(r.until, '2026-11-28T00:00:00.000Z');
  t.same(
    r.days.map((d) => [d.sym, d.date, d.windows, d.ticks]),
    [
      ['AAA', '2026-11-26', 4, 400],
      ['AAA', '2026-11-27', 2, 200],
      ['BBB', '2026-11-26', 3, 600],
      ['CCC', '2026-11-27', 1, 50],
    ],
    'symbol-days, windows and ticks',
  );
  const [a1, a2, b1, c2] = r.days;
  t.same(a1!.checks, {
    ...zeroChecks(),
    gaps: 5,
    crossed: 1,
    locked: 2,
    outside_band: 1,
    out_of_order: 1,
    stale: 3,
    spikes: 1,
    bad_values: 2,
    time_gaps: 1,
    skew: 4,
    duplicates: 1,
    resets: 1,
    quarantined: 2,
    nonfinite: 3,
  });
  t.same(a2!.checks, { ...zeroChecks(), gaps: 1, stale: 7 });
  t.same(b1!.checks, { ...zeroChecks(), out_of_order: 9 });
  t.same(c2!.checks, { ...zeroChecks(), gaps: 1 });

  // AAA day 1: [0.25, 0.5, 0.75, 1]; quantile at level q interpolates at q·(n−1).
  t.equal(a1!.score.min, 0.25);
  near(t, a1!.score.avg, 0.625, 'AAA d1 avg');
  near(t, a1!.score.p10, 0.325, 'AAA d1 p10');
  near(t, a1!.score.p50, 0.625, 'AAA d1 p50');
  near(t, a1!.score.p90, 0.925, 'AAA d1 p90');
  t.equal(a2!.score.min, 0.4);
  near(t, a2!.score.avg, 0.6, 'AAA d2 avg');
  t.equal(b1!.score.min, 0.6);
  near(t, b1!.score.avg, 0.8, 'BBB d1 avg');
  near(t, b1!.score.p50, 0.9, 'BBB d1 p50');
  t.same(c2!.score, { min: 1, avg: 1, p10: 1, p50: 1, p90: 1 });

  const hours = (d: (typeof r.days)[number]): Array<[number, number]> =>
    d.worst.map((x) => [x.score, (x.tsUs - Date.parse(`${d.date}T00:00:00Z`) * 1000) / H]);
  t.same(hours(a1!), [
    [0.25, 13],
    [0.5, 11],
    [0.75, 12],
  ]);
  t.same(a1!.worst[0]!.issues, ['stale', 'spike', 'bad_value']);
  t.equal(a1!.worst[0]!.ts, '2026-11-26T13:00:00.000Z');
  t.same(hours(a2!), [
    [0.4, 3],
    [0.8, 2],
  ]);
  t.same(
    hours(b1!),
    [
      [0.6, 11],
      [0.9, 9],
      [0.9, 10],
    ],
    'ties: earliest first',
  );
  t.same(hours(c2!), [[1, 8]]);

  const one = await qualityReport(query, { ...RANGE, symbol: 'BBB' }, 1);
  t.same(
    one.days.map((d) => [d.sym, d.windows, d.worst.map((x) => x.score)]),
    [['BBB', 3, [0.6]]],
    '--symbol BBB --worst 1',
  );
  const none = await qualityReport(query, { ...RANGE, symbol: 'AAA' }, 0);
  t.same(
    none.days.map((d) => [d.date, d.worst.length]),
    [
      ['2026-11-26', 0],
      ['2026-11-27', 0],
    ],
    '--worst 0',
  );
  const day2 = await qualityReport(query, { sinceUs: DAY2, untilUs: DAY2 + 2 * H + S }, 3);
  t.same(
    day2.days.map((d) => [d.sym, d.windows]),
    [['AAA', 1]],
    'a range of hours: only AAA 02:00 on day 2',
  );
  const open = await qualityReport(query, { sinceUs: DAY2 }, 3);
  t.same(
    open.days.map((d) => [d.sym, d.date, d.windows]),
    [
      ['AAA', '2026-11-27', 2],
      ['AAA', '2026-11-28', 1],
      ['CCC', '2026-11-27', 1],
    ],
    'no --until: no upper bound',
  );
  const empty = await qualityReport(query, { ...RANGE, symbol: 'NOPE' }, 3);
  t.same(empty.days, []);
  t.match(formatReport(empty), /^No quality windows in 2026-11-26T00:00:00.000Z .. /);

  // The documented SQL is the builders' output, and gives the same rows.
  const docs = docQueries();
  t.equal(docs.get('quality_report_days'), summarySql(RANGE), 'docs/sql.md = summarySql');
  t.equal(docs.get('quality_report_worst'), worstSql(RANGE, 3), 'docs/sql.md = worstSql');
  const worstDoc = await query(docs.get('quality_report_worst')!);
  t.equal(worstDoc.length, 3 + 2 + 3 + 1);
  t.same(
    (await query(docs.get('quality_report_days')!)).map((x) => [x['sym'], x['windows']]),
    [
      ['AAA', 4],
      ['AAA', 2],
      ['BBB', 3],
      ['CCC', 1],
    ],
  );
  const qd = await query(docs.get('quality_daily')!);
  t.same(
    qd.filter((x) => x['sym'] === 'AAA').map((x) => [x['date'], x['windows']]),
    [
      ['2026-11-25', 1],
      ['2026-11-26', 4],
      ['2026-11-27', 2],
      ['2026-11-28', 1],
    ],
    'quality_daily counts window rows only',
  );
}

function textChecks(t: Test, r: QualityReport): void {
  const text = formatReport(r);
  t.match(text, /Data quality per symbol per UTC day, 2026-11-26T00:00:00.000Z .. 2026-11-28/);
  t.match(
    text,
    /AAA\s+2026-11-26\s+4\s+400\s+0\.250\s+0\.625\s+0\.325\s+0\.625\s+0\.925\s+5\s+1\s+2/,
  );
  t.match(text, /BBB\s+2026-11-26\s+2026-11-26T11:00:00\.000Z\s+0\.600\s+200\s+out_of_order/);
  t.match(text, /Worst 3 windows per symbol-day/);
}

const ALL_CHECKS_USED = (r: QualityReport): boolean =>
  CHECKS.every((c) => r.days.some((d) => d.checks[c] > 0));

void t.test('on the real ClickHouse', async (t) => {
  const { clickhouseUrl } = await ensureServices();
  const db = `qilin_test_${randomBytes(4).toString('hex')}`;
  const admin = createClient({ url: clickhouseUrl });
  const store = new ClickHouseStore({ url: clickhouseUrl, database: db });
  t.teardown(async () => {
    await store.close();
    await admin.close();
    await dropDatabase(clickhouseUrl, db);
  });
  const exec: SchemaExecutor = {
    command: async (sql) => {
      await admin.command({ query: sql });
    },
    select: async (sql) =>
      (
        await admin.query({
          query: sql,
          format: 'JSONEachRow',
          clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
        })
      ).json<Record<string, unknown>>(),
  };
  await t.test('migration 2', (t) => migrationChecks(t, exec, db));
  await t.test('report', (t) => reportChecks(t, (sql) => store.query(sql)));
  await t.test('text', async (t) => {
    const r = await qualityReport((sql) => store.query(sql), RANGE, 3);
    t.ok(ALL_CHECKS_USED(r), 'every check column is shown');
    textChecks(t, r);
  });
});

void t.test('on chdb, then the CLI on the same store', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'qilin-quality-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const db = 'qilin_qr';
  // chdb binds one data directory per process: the CLI's, <stateDir>/chdb.
  const session = new Session(join(stateDir, 'chdb'), {
    connectionArgs: ['--output_format_json_quote_64bit_integers=0'],
  });
  const select = async (sql: string): Promise<Array<Record<string, unknown>>> => {
    const text = (await session.queryAsync(sql, { format: 'JSONEachRow' })).text();
    return text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  const exec: SchemaExecutor = {
    command: async (sql) => {
      await session.queryAsync(sql, { format: 'JSONEachRow' });
    },
    select,
  };
  await t.test('migration 2', (t) => migrationChecks(t, exec, db));
  session.close();

  const store = new ChdbStore({ path: join(stateDir, 'chdb'), database: db, readonly: true });
  await t.test('report', (t) => reportChecks(t, (sql) => store.query(sql)));
  await store.close();

  await t.test('qilin quality report as a child process', (t) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      QILIN_STATE_DIR: stateDir,
      QILIN_CLICKHOUSE_DB: db,
      QILIN_LOG_LEVEL: 'warn',
    };
    delete env['QILIN_CLICKHOUSE_URL'];
    delete env['QILIN_CONFIG'];
    const run = (...args: string[]): { code: number | null; stdout: string; stderr: string } => {
      const r = spawnSync(process.execPath, ['bin/qilin.js', 'quality', 'report', ...args], {
        cwd: repoRoot,
        env,
        encoding: 'utf8',
        timeout: 60_000,
      });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const j = run(
      '--json',
      '--since',
      '2026-11-26',
      '--until',
      '2026-11-28T00:00:00Z',
      '--worst',
      '2',
    );
    t.equal(j.code, 0, j.stderr);
    const r = JSON.parse(j.stdout) as QualityReport;
    t.same(
      r.days.map((d) => [d.sym, d.date, d.windows, d.checks.gaps, d.worst.map((x) => x.score)]),
      [
        ['AAA', '2026-11-26', 4, 5, [0.25, 0.5]],
        ['AAA', '2026-11-27', 2, 1, [0.4, 0.8]],
        ['BBB', '2026-11-26', 3, 0, [0.6, 0.9]],
        ['CCC', '2026-11-27', 1, 1, [1]],
      ],
    );
    const text = run('--since', '2026-11-26', '--until', '2026-11-28', '--symbol', 'AAA');
    t.equal(text.code, 0, text.stderr);
    t.match(text.stdout, /AAA\s+2026-11-27\s+2\s+200\s+0\.400\s+0\.600/);
    t.notMatch(text.stdout, /BBB/);
    const empty = run('--since', '2020-01-01', '--until', '2020-01-02');
    t.equal(empty.code, 0);
    t.match(empty.stdout, /^No quality windows in 2020-01-01T00:00:00.000Z .. 2020-01-02/);
    const bad = run('--since', 'last tuesday');
    t.equal(bad.code, 2);
    t.match(bad.stderr, /QLN_CLI_USAGE: invalid --since: "last tuesday" \(allowed: an ISO date/);
    const help = run('--help');
    t.equal(help.code, 0);
    for (const o of ['--since', '--until', '--symbol', '--worst', '--json', 'score = 1'])
      t.match(help.stdout, o, `--help explains ${o}`);
    t.end();
  });
});

void t.test('option parsing', (t) => {
  const now = Date.parse('2026-11-27T12:34:56.789Z');
  const iso = (us: number): string => new Date(us / 1000).toISOString();
  t.equal(iso(parseTimeOption('--since', '24h', now)), '2026-11-26T12:34:56.000Z');
  t.equal(iso(parseTimeOption('--since', '7d', now)), '2026-11-20T12:34:56.000Z');
  t.equal(iso(parseTimeOption('--since', '90m', now)), '2026-11-27T11:04:56.000Z');
  t.equal(iso(parseTimeOption('--since', '30s', now)), '2026-11-27T12:34:26.000Z');
  t.equal(iso(parseTimeOption('--since', '2w', now)), '2026-11-13T12:34:56.000Z');
  t.equal(iso(parseTimeOption('--since', '2026-11-27', now)), '2026-11-27T00:00:00.000Z');
  t.equal(iso(parseTimeOption('--since', '2026-11-27T10:00:00Z', now)), '2026-11-27T10:00:00.000Z');
  t.equal(iso(parseTimeOption('--since', '2026-11-27T10:00', now)), '2026-11-27T10:00:00.000Z');
  t.equal(
    iso(parseTimeOption('--since', '2026-11-27T10:00:30.750+01:00', now)),
    '2026-11-27T09:00:30.000Z',
    'zone applied, floored to the second',
  );
  t.equal(iso(parseTimeOption('--since', '2024-02-29', now)), '2024-02-29T00:00:00.000Z');
  for (const bad of [
    '',
    'yesterday',
    '24',
    'h',
    '-24h',
    '1.5h',
    '24 hours',
    '2026-13-01',
    '2026-02-30',
    '2025-02-29',
    '2026-11-27T24:00',
    '2026-11-27T10:60',
    '2026/11/27',
    "2026-11-27'; DROP TABLE x",
  ]) {
    t.throws(
      () => parseTimeOption('--until', bad, now),
      { code: 'QLN_CLI_USAGE', message: /^invalid --until: .*\(allowed: an ISO date .*24h/ },
      `--until ${JSON.stringify(bad)}`,
    );
  }
  t.equal(parseWorst('0'), 0);
  t.equal(parseWorst('5'), 5);
  for (const bad of ['-1', '1.5', 'x', '', '1001'])
    t.throws(() => parseWorst(bad), { code: 'QLN_CLI_USAGE', message: /--worst/ });

  const d = resolveReportOptions({}, now);
  t.equal(iso(d.filter.sinceUs), '2026-11-26T12:34:56.000Z', 'default since 24h ago');
  t.equal(d.filter.untilUs, undefined);
  t.equal(d.worst, 3);
  const o = resolveReportOptions(
    { since: '2026-11-26', until: '1h', symbol: 'BTC-USD_2', worst: '1' },
    now,
  );
  t.same(o, {
    filter: {
      sinceUs: DAY1,
      untilUs: Date.parse('2026-11-27T11:34:56Z') * 1000,
      symbol: 'BTC-USD_2',
    },
    worst: 1,
  });
  for (const sym of ["A'B", 'A B', 'A.B', '', 'Ä'])
    t.throws(
      () => resolveReportOptions({ symbol: sym }, now),
      { code: 'QLN_CLI_USAGE', message: /invalid --symbol: .*\[A-Za-z0-9_-\]\+/ },
      `--symbol ${JSON.stringify(sym)}`,
    );
  t.throws(() => resolveReportOptions({ since: '1h', until: '2h' }, now), {
    code: 'QLN_CLI_USAGE',
    message: /--until .* must be after --since/,
  });
  t.throws(() => summarySql({ sinceUs: DAY1, symbol: "x' OR 1=1 --" }), { code: 'QLN_CLI_USAGE' });
  t.match(summarySql({ sinceUs: DAY1, symbol: 'BTC-USD' }), /\n {2}AND sym = 'BTC-USD'\n/);
  t.notMatch(summarySql({ sinceUs: DAY1 }), /ts_us </, 'no --until: no upper bound');
  t.end();
});
