/**
 * `qilin audit`: the query it builds (filters validated or escaped), and the
 * command end to end against a real ClickHouse database of its own.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { ClickHouseStore } from '../../adapters/clickhouse/clickhouse-store.js';
import { auditQuery, parseSince } from '../../cli/audit-command.js';
import { makeAuditEvent } from '../../kernel/audit-event.js';
import { emptyBatch } from '../../adapters/clickhouse/row-format.js';
import { runQilin } from '../helpers/cli.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { ensureServices } from '../helpers/services.js';

void t.test('parseSince', (t) => {
  const now = Date.parse('2026-12-06T12:00:00Z');
  t.equal(parseSince('1h', now), (now - 3_600_000) * 1000);
  t.equal(parseSince('7d', now), (now - 7 * 86_400_000) * 1000);
  t.equal(parseSince('2026-12-06T10:00:00Z', now), Date.parse('2026-12-06T10:00:00Z') * 1000);
  t.throws(() => parseSince('yesterday', now), { code: 'QLN_CLI_USAGE', message: /--since/ });
  t.end();
});

void t.test('auditQuery: actions checked, actor escaped', (t) => {
  t.match(auditQuery({ sinceUs: 5, limit: 10, action: 'risk.kill' }), /action = 'risk\.kill'/);
  t.match(auditQuery({ sinceUs: 5, limit: 10, action: 'key' }), /startsWith\(action, 'key\.'\)/);
  t.match(auditQuery({ sinceUs: 5, limit: 10, action: 'key.*' }), /startsWith\(action, 'key\.'\)/);
  t.throws(() => auditQuery({ sinceUs: 5, limit: 10, action: "x' OR 1=1" }), {
    code: 'QLN_CLI_USAGE',
  });
  const q = auditQuery({ sinceUs: 5, limit: 10, actor: "o'brien\\" });
  t.match(q, /position\(actor, 'o\\'brien\\\\'\) > 0/);
  t.match(q, /FROM audit FINAL WHERE ts_us >= 5 .* LIMIT 10$/);
  t.end();
});

void t.test('qilin audit against ClickHouse: filters, JSON and table output', async (t) => {
  const urls = await ensureServices();
  const database = `qilin_auditcli_${randomBytes(3).toString('hex')}`;
  const store = new ClickHouseStore({ url: urls.clickhouseUrl, database });
  t.teardown(async () => {
    await store.close();
    await dropDatabase(urls.clickhouseUrl, database);
  });
  await store.migrate();
  const now = Date.now() * 1000;
  const ev = (action: 'risk.kill' | 'key.create' | 'auth.failure', actor: string, ago: number) =>
    makeAuditEvent({
      action,
      actor,
      target: 'x',
      outcome: action === 'auth.failure' ? 'refused' : 'ok',
      reason: `${action} by ${actor}`,
      source: '10.1.2.3',
      ts_us: now - ago,
    });
  const evs = [
    ev('risk.kill', 'alice', 60e6),
    ev('key.create', 'cli:alice@h', 30e6),
    ev('auth.failure', 'anonymous', 10e6),
    ev('risk.kill', 'bob', 3 * 3600e6),
  ];
  await store.insert({ ...emptyBatch(), audit: [...evs, evs[0]!] });
  const qilin = (...args: string[]) =>
    runQilin(['audit', ...args], {
      QILIN_CLICKHOUSE_URL: urls.clickhouseUrl,
      QILIN_CLICKHOUSE_DB: database,
    });
  const json = await qilin('--since', '1h', '--json');
  t.equal(json.code, 0, json.err);
  const lines = json.out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.same(
    lines.map((r) => r['id']),
    [evs[2]!.id, evs[1]!.id, evs[0]!.id],
    'the last hour, newest first, the duplicate once',
  );
  const kills = await qilin('--since', '1d', '--action', 'risk.kill', '--json');
  t.same(kills.out.trim().split('\n').length, 2, 'both kills in a day');
  const alice = await qilin('--since', '1d', '--actor', 'alice', '--limit', '1', '--json');
  t.same(
    alice.out
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { id: string }).id),
    [evs[1]!.id],
    'actor filter and limit',
  );
  const table = await qilin('--since', '1h');
  t.equal(table.code, 0, table.err);
  t.match(table.out, /^ts\s+action\s+outcome\s+actor\s+target\s+source\s+reason/);
  t.match(table.out, /auth\.failure\s+refused\s+anonymous/);
  t.match(table.err, /\(3 events\)/);
  const bad = await qilin('--action', 'nope');
  t.equal(bad.code, 2);
  t.match(bad.err, /QLN_CLI_USAGE: invalid --action/);
});
