/**
 * The audit log end to end on the real services (NATS JetStream, Redis,
 * ClickHouse) with a running kernel: a kill over ctl.risk.kill, `qilin keys
 * create` + `revoke`, a bad key at the WebSocket door, a viewer key on
 * /audit, and a flood of 500 bad keys each become rows of `audit` (via
 * audit.<action> and the AUDIT stream), with who / what / why / from where,
 * and never a key.
 *
 * Other tests share NATS (and so the AUDIT stream): rows are told apart by
 * what is unique to this run: the operator name, the key ids, and the
 * loopback address the refused clients connect from (127.x.y.z).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import t from 'tap';
import WebSocket from 'ws';
import { AUDIT_STREAM } from '../../adapters/nats/audit-stream.js';
import { keyIdOf } from '../../adapters/ws/api-keys.js';
import { KernelApp } from '../../cli/kernel-app.js';
import { decodeAuditEvent, type AuditEvent } from '../../kernel/audit-event.js';
import { runQilin } from '../helpers/cli.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { connectAs, ensureServices } from '../helpers/services.js';
import { testKernelConfig } from '../helpers/test-kernel.js';
import { until, within } from '../helpers/wait.js';

const run = randomBytes(3).toString('hex');
const READ_KEY = `audit-read-${run}`;
const ADMIN_KEY = `audit-admin-${run}`;
const VIEW_KEY = `audit-view-${run}`;
const PREFIX = `qilin:test:audit${run}:apikey:`;
/** Loopback addresses of this run's refused clients (unique enough across parallel tests). */
const b = randomBytes(2);
const BAD_FROM = `127.${b[0]! | 1}.${b[1]!}.7`;
const FLOOD_FROM = `127.${b[0]! | 1}.${b[1]!}.9`;
const WS_FROM = `127.${b[0]! | 1}.${b[1]!}.11`;

/** HTTP status of a WebSocket upgrade with `key`, from `localAddress`. */
function upgradeStatus(port: number, key: string, localAddress: string): Promise<number> {
  return within(
    'upgrade answer',
    new Promise<number>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?key=${encodeURIComponent(key)}`, {
        localAddress,
      });
      ws.once('open', () => {
        ws.close();
        resolve(101);
      });
      ws.once('error', () => resolve(0));
      ws.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
      });
    }),
    10_000,
  );
}

/** `qilin …` with the test's services in `env` (test/helpers/cli.ts). */
const qilin = (env: Record<string, string>, ...args: string[]) => runQilin(args, env);

void t.test('audit log with a running kernel', async (t) => {
  const urls = await ensureServices();
  const db = `qilin_audit_${run}`;
  const config = await testKernelConfig(urls, db, READ_KEY, {
    apiKeys: `${READ_KEY}:read,${ADMIN_KEY}:admin,${VIEW_KEY}:read=signal/*`,
    apiKeyPrefix: PREFIX,
  });
  const app = new KernelApp({ config, log: pino({ level: 'silent' }) });
  await app.start();
  const base = `http://127.0.0.1:${app.port}`;
  const nc: NatsConnection = await connectAs('admin', {}, urls);
  const since = Date.now() * 1000;
  t.teardown(async () => {
    await app.close();
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.delete(AUDIT_STREAM, `qilin-audit-${db}`).catch(() => undefined);
    await nc.close();
    const r = new Redis(urls.redisUrl);
    const found = await r.keys(`${PREFIX}*`);
    if (found.length > 0) await r.del(...found);
    r.disconnect();
    await dropDatabase(urls.clickhouseUrl, db);
  });
  const rows = (where: string): Promise<Array<Record<string, unknown>>> =>
    app.store.query(
      `SELECT * FROM audit FINAL WHERE ts_us >= ${since} AND ${where} ORDER BY ts_us`,
    );

  await t.test(
    'a kill on ctl.risk.kill: one row with by, reason, from; on audit.risk.kill',
    async (t) => {
      const by = `audit-ops-${run}`;
      const seen: AuditEvent[] = [];
      const sub = nc.subscribe('audit.risk.kill', {
        callback: (_err, m) => {
          const ev = decodeAuditEvent(m.data);
          if (typeof ev !== 'string' && ev.actor === by) seen.push(ev);
        },
      });
      await nc.flush();
      const reply = await nc.request(
        'ctl.risk.kill',
        JSON.stringify({ by, reason: 'audit drill', from: 'desk-7' }),
        { timeout: 5000 },
      );
      t.match(JSON.parse(reply.string()), { killed: true, by });
      await until('the kill row', async () => (await rows(`actor = '${by}'`)).length > 0);
      const got = await rows(`actor = '${by}'`);
      t.equal(got.length, 1, 'one row');
      t.match(got[0], {
        action: 'risk.kill',
        target: 'risk',
        outcome: 'ok',
        reason: 'audit drill',
        source: 'desk-7',
      });
      await until('the event on NATS', () => seen.length > 0);
      t.equal(seen.length, 1);
      t.equal(seen[0]!.id, got[0]!['id'], 'the same event on the bus and in the table');
      sub.unsubscribe();
      await nc.request('ctl.risk.resume', JSON.stringify({ by, reason: 'drill over' }), {
        timeout: 5000,
      });
      await until(
        'the resume row',
        async () => (await rows(`actor = '${by}' AND action = 'risk.resume'`)).length === 1,
      );
      t.match((await rows(`actor = '${by}' AND action = 'risk.resume'`))[0], {
        outcome: 'ok',
        source: 'nats:ctl.risk.resume',
      });
      const metrics = await (await fetch(`${base}/metrics`)).text();
      t.match(metrics, /qilin_audit_events_total\{action="risk\.kill",outcome="ok"\} 1\b/);
    },
  );

  await t.test(
    'qilin keys create + revoke: rows with actor and label, never the key',
    async (t) => {
      const env = {
        QILIN_NATS_URL: urls.natsUrl,
        QILIN_REDIS_URL: urls.redisUrl,
        QILIN_API_KEY_PREFIX: PREFIX,
        QILIN_STATE_DIR: mkdtempSync(join(tmpdir(), 'qilin-audit-cli-')),
      };
      const label = `audit label ${run}`;
      const created = await qilin(
        env,
        'keys',
        'create',
        '--role',
        'viewer',
        '--label',
        label,
        '--reason',
        'for the test',
        '--json',
      );
      t.equal(created.code, 0, created.err);
      const c = JSON.parse(created.out) as { key: string; id: string };
      const revoked = await qilin(env, 'keys', 'revoke', c.id, '--reason', 'test over');
      t.equal(revoked.code, 0, revoked.err);
      await until(
        'create and revoke rows',
        async () => (await rows(`target = 'key:${c.id}'`)).length === 2,
      );
      const got = await rows(`target = 'key:${c.id}'`);
      t.same(
        got.map((r) => [r['action'], r['outcome'], r['reason']]),
        [
          ['key.create', 'ok', 'for the test'],
          ['key.revoke', 'ok', 'test over'],
        ],
      );
      for (const r of got) {
        t.match(r['actor'], /^cli:.+@.+/, 'the CLI user@host');
        t.match(JSON.parse(String(r['detail'])), { keyId: c.id, role: 'viewer', label });
      }
      const all = JSON.stringify(await app.store.query('SELECT * FROM audit'));
      t.notOk(all.includes(c.key), 'the key appears nowhere in the table');
      t.notOk(all.includes(c.key.slice(3)), 'not even without its prefix');
    },
  );

  await t.test('qilin keys with NATS unreachable: refused, no change made', async (t) => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const closed = (srv.address() as { port: number }).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const redis = new Redis(urls.redisUrl);
    const before = await redis.keys(`${PREFIX}*`);
    const r = await qilin(
      {
        QILIN_NATS_URL: `nats://127.0.0.1:${closed}`,
        QILIN_REDIS_URL: urls.redisUrl,
        QILIN_API_KEY_PREFIX: PREFIX,
        QILIN_STATE_DIR: mkdtempSync(join(tmpdir(), 'qilin-audit-cli-')),
      },
      'keys',
      'create',
      '--role',
      'viewer',
      '--label',
      `unaudited ${run}`,
    );
    t.equal(r.code, 2);
    t.match(r.err, /QLN_AUDIT_UNAVAILABLE: cannot reach NATS .* so it was not made/);
    t.notOk(/qk_/.test(r.out), 'no key printed');
    const after = await redis.keys(`${PREFIX}*`);
    redis.disconnect();
    t.same(after.sort(), before.sort(), 'Redis unchanged');
  });

  await t.test(
    'a body on audit.> that is not an event: refused and counted, not stored',
    async (t) => {
      const junk = `not-an-event-${run}`;
      const ack = await jetstream(nc).publish(
        'audit.risk.kill',
        JSON.stringify({ id: junk, action: 'risk.kill' }),
      );
      // The AUDIT stream is shared: the junk must not stay for kernels started later (the demo's
      // would log it as refused).
      t.teardown(async () => {
        await (await jetstreamManager(nc)).streams.deleteMessage(AUDIT_STREAM, ack.seq);
      });
      await until('counted', async () => {
        const m = /qilin_audit_invalid_total (\d+)/.exec(
          await (await fetch(`${base}/metrics`)).text(),
        );
        return m !== null && Number(m[1]) >= 1;
      });
      t.same(await rows(`id = '${junk}'`), [], 'not stored');
    },
  );

  await t.test(
    'a bad key at the WebSocket door: auth.failure with the remote address',
    async (t) => {
      t.equal(await upgradeStatus(app.port, `nope-${run}`, BAD_FROM), 401);
      await until(
        'the auth.failure row',
        async () =>
          (await rows(`action = 'auth.failure' AND position(source, '${BAD_FROM}') > 0`)).length >
          0,
      );
      const [r] = await rows(`action = 'auth.failure' AND position(source, '${BAD_FROM}') > 0`);
      t.match(r, {
        target: '/ws',
        outcome: 'refused',
        actor: 'anonymous',
        reason: /unknown API key/,
      });
      t.notOk(JSON.stringify(r).includes(`nope-${run}`), 'the refused key is not recorded');
    },
  );

  await t.test('a viewer key on /audit: 403 and a permission.denied row', async (t) => {
    const res = await fetch(`${base}/audit`, { headers: { authorization: `Bearer ${READ_KEY}` } });
    t.equal(res.status, 403);
    const actor = `key:${keyIdOf(READ_KEY)}`;
    await until(
      'the permission.denied row',
      async () => (await rows(`action = 'permission.denied' AND actor = '${actor}'`)).length > 0,
    );
    const got = await rows(`action = 'permission.denied' AND actor = '${actor}'`);
    t.equal(got.length, 1);
    t.match(got[0], { target: '/audit', outcome: 'refused' });
    t.match(JSON.parse(String(got[0]!['detail'])), { role: 'viewer' });
    const admin = await fetch(`${base}/audit?view=events`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    t.equal(admin.status, 200);
    const recent = (await admin.json()) as AuditEvent[];
    t.ok(
      recent.some((e) => e.action === 'permission.denied' && e.actor === actor),
      '/audit?view=events lists it',
    );
    const legacy = (await (
      await fetch(`${base}/audit`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })
    ).json()) as Array<{ decision: string }>;
    t.ok(
      legacy.some((e) => e.decision === 'kill'),
      '/audit still lists the risk decisions',
    );
  });

  await t.test('a forbidden subscribe and a 4029 cut-off: permission.denied rows', async (t) => {
    const ws = new WebSocket(`ws://127.0.0.1:${app.port}/ws`, {
      headers: { authorization: `Bearer ${VIEW_KEY}` },
      localAddress: WS_FROM,
    });
    let closedWith = 0;
    ws.on('close', (code) => (closedWith = code));
    await within('open', new Promise((r) => ws.once('open', r)), 10_000);
    ws.send(JSON.stringify({ op: 'subscribe', topics: ['status'] }));
    for (let i = 0; i < 40; i++) ws.send(JSON.stringify({ op: 'subscribe', topics: ['signal/A'] }));
    await until('closed 4029', () => closedWith !== 0);
    t.equal(closedWith, 4029);
    const where = `action = 'permission.denied' AND position(source, '${WS_FROM}') > 0`;
    await until('two rows', async () => (await rows(where)).length === 2);
    const got = await rows(where);
    t.same(
      got.map((r) => [r['target'], r['actor']]),
      [
        ['status', `key:${keyIdOf(VIEW_KEY)}`],
        ['rate_limited', `key:${keyIdOf(VIEW_KEY)}`],
      ],
    );
  });

  await t.test('a flood of 500 bad keys: bounded rows, every failure counted', async (t) => {
    const floodAt = Date.now();
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      statuses.push(
        ...(await Promise.all(
          Array.from({ length: 50 }, (_, j) =>
            upgradeStatus(app.port, `bad-${i}-${j}`, FLOOD_FROM),
          ),
        )),
      );
    }
    t.equal(statuses.filter((s) => s === 401).length, 500, 'all 500 refused');
    const where = `action = 'auth.failure' AND position(source, '${FLOOD_FROM}') > 0`;
    const accounted = async (): Promise<number> => {
      let n = 0;
      for (const r of await rows(where)) {
        const d = JSON.parse(String(r['detail'])) as { suppressed?: number };
        n += d.suppressed ?? 1;
      }
      return n;
    };
    await until(
      'every failure accounted for (rows + suppressed counts)',
      async () => (await accounted()) >= 500,
    );
    t.equal(await accounted(), 500, 'rows + suppressed = 500 exactly');
    const n = (await rows(where)).length;
    // The flood's own seconds, plus the window it ends in and the summary after.
    const took = Math.ceil((Date.now() - floodAt) / 1000) + 2;
    t.ok(n < 100, `${n} rows for 500 failures`);
    t.ok(
      n <= 2 * 5 * took,
      `at most 5 per second plus one summary per second (${n} in ~${took} s)`,
    );
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const m = /qilin_audit_suppressed_total\{action="auth\.failure"\} (\d+)/.exec(metrics);
    t.ok(m !== null && Number(m[1]) >= 500 - n, `suppressed counter ${m?.[1]} (≥ ${500 - n})`);
  });
});
