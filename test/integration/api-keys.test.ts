/**
 * API keys as data against a running kernel on the real local services
 * (Redis holds the keys): a revoked key is cut off within a second, rotation
 * keeps the old key for its grace period only, per-key limits close with an
 * error frame then 4029, the admin routes refuse read keys, QILIN_API_KEYS
 * keys keep working, and no key ever reaches the logs.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import t from 'tap';
import WebSocket from 'ws';
import { KernelApp } from '../../cli/kernel-app.js';
import { RedisApiKeys } from '../../adapters/redis/redis-api-keys.js';
import { CLOSE_KEY_EXPIRED, CLOSE_KEY_REVOKED, CLOSE_LIMIT } from '../../adapters/ws/uws-server.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { ensureServices } from '../helpers/services.js';
import { testKernelConfig } from '../helpers/test-kernel.js';
import { until, within } from '../helpers/wait.js';

const run = randomBytes(3).toString('hex');
const READ_KEY = `keys-read-${run}`;
const ADMIN_KEY = `keys-admin-${run}`;
const PREFIX = `qilin:test:keys${run}:apikey:`;

type Frame = Record<string, unknown>;

/** A WebSocket client that records frames and how it closed. */
class Client {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string; at: number } | undefined;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (raw: Buffer) => this.frames.push(JSON.parse(raw.toString('utf8')) as Frame));
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString('utf8'), at: Date.now() };
    });
  }

  static async open(port: number, key: string): Promise<Client> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
      headers: { authorization: `Bearer ${key}` },
    });
    // Listen before the open: a frame sent at open arrives in the same read.
    const client = new Client(ws);
    await within(
      'WebSocket open',
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
        ws.once('unexpected-response', (_req, res) =>
          reject(new Error(`upgrade refused: ${res.statusCode}`)),
        );
      }),
      5000,
    );
    return client;
  }

  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  errors(): unknown[] {
    return this.frames.filter((f) => f['type'] === 'error').map((f) => f['code']);
  }
}

/** The HTTP status of a refused (or accepted) upgrade with `key`. */
function upgradeStatus(port: number, key: string): Promise<number> {
  return within(
    'upgrade answer',
    new Promise<number>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?key=${key}`);
      ws.once('open', () => {
        ws.close();
        resolve(101);
      });
      ws.once('error', () => undefined);
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    }),
    5000,
  );
}

void t.test('API keys in a running kernel', async (t) => {
  const urls = await ensureServices();
  const db = `qilin_keys_${run}`;
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(chunk.toString('utf8'));
      cb();
    },
  });
  const config = await testKernelConfig(urls, db, READ_KEY, {
    apiKeys: `${READ_KEY}:read,${ADMIN_KEY}:admin`,
    apiKeyPrefix: PREFIX,
    wsMaxConnectionsPerKey: 2,
    wsSubscribeRatePerSec: 5,
    wsMaxTopicsPerConnection: 3,
  });
  const store = new RedisApiKeys({ url: urls.redisUrl, prefix: PREFIX });
  await store.connect();
  // A key created before the kernel starts is loaded at start.
  const early = await store.create({ role: 'viewer', patterns: ['signal/*'], label: 'early' });
  const app = new KernelApp({ config, log: pino({ level: 'info' }, sink) });
  await app.start();
  const port = app.port;
  const base = `http://127.0.0.1:${port}`;
  const keys: string[] = [READ_KEY, ADMIN_KEY, early.key];
  t.teardown(async () => {
    await app.close();
    await store.close();
    const r = new Redis(urls.redisUrl);
    const found = await r.keys(`${PREFIX}*`);
    if (found.length > 0) await r.del(...found);
    r.disconnect();
    await dropDatabase(urls.clickhouseUrl, db);
  });

  await t.test('stored and configured keys both connect', async (t) => {
    const a = await Client.open(port, early.key);
    const b = await Client.open(port, READ_KEY);
    a.send({ op: 'subscribe', topics: ['signal/*'] });
    a.send({ op: 'subscribe', topics: ['*'] });
    await until('subscribed and forbidden', () => a.frames.length >= 2);
    t.same(
      a.frames.map((f) => f['type']),
      ['subscribed', 'error'],
      'a viewer key reads its patterns only',
    );
    t.same(a.errors(), ['forbidden']);
    a.ws.close();
    b.ws.close();
  });

  await t.test('a revoked key is cut off within a second', async (t) => {
    const { key, record } = await store.create({ role: 'viewer', label: 'to revoke' });
    keys.push(key);
    await until('the new key is accepted', async () => (await upgradeStatus(port, key)) === 101);
    const c = await Client.open(port, key);
    const revokedAt = Date.now();
    await store.revoke(record.id);
    await until('the revoked key’s socket is closed', () => c.closed !== undefined, 3000, 5);
    t.equal(c.closed?.code, CLOSE_KEY_REVOKED, 'close code 4001');
    t.equal(c.closed?.reason, 'key revoked');
    const took = c.closed!.at - revokedAt;
    t.ok(took < 1000, `closed ${took} ms after the revocation (< 1000)`);
    t.equal(await upgradeStatus(port, key), 401, 'a new connection with it is refused');
    t.equal(app.metrics !== undefined, true);
  });

  await t.test('the poll applies a change even without the pub/sub message', async (t) => {
    const { key, record } = await store.create({ role: 'viewer', label: 'silent' });
    keys.push(key);
    await until('accepted', async () => (await upgradeStatus(port, key)) === 101);
    const c = await Client.open(port, key);
    // Revoke behind the store's back: no `changed` message, only the version moves.
    const r = new Redis(urls.redisUrl);
    await r.hset(`${PREFIX}${record.id}`, 'revokedAt', String(Date.now()));
    await r.incr(`${PREFIX}version`);
    r.disconnect();
    const at = Date.now();
    await until('closed by the poll', () => c.closed !== undefined, 3000, 5);
    t.equal(c.closed?.code, CLOSE_KEY_REVOKED);
    t.ok(c.closed!.at - at < 1500, `closed ${c.closed!.at - at} ms later (poll period 1 s)`);
  });

  await t.test('rotation: both keys work during the grace period, then only the new', async (t) => {
    const first = await store.create({ role: 'viewer', patterns: ['status'], label: 'rot' });
    keys.push(first.key);
    await until('accepted', async () => (await upgradeStatus(port, first.key)) === 101);
    const old = await Client.open(port, first.key);
    const graceMs = 2000;
    const rotated = await store.rotate(first.record.id, graceMs);
    keys.push(rotated.key);
    t.same(rotated.record.patterns, ['status'], 'the new key has the same grants');
    t.equal(rotated.old.rotatedTo, rotated.record.id);
    await until('the new key is accepted', async () => {
      return (await upgradeStatus(port, rotated.key)) === 101;
    });
    t.equal(await upgradeStatus(port, first.key), 101, 'the old key still connects in the grace');
    t.equal(old.closed, undefined, 'the old key’s socket stays open in the grace');
    await until('the old socket closes at the end of the grace', () => old.closed !== undefined);
    const lateBy = old.closed!.at - rotated.old.graceUntil!;
    t.equal(old.closed?.code, CLOSE_KEY_EXPIRED, 'close code 4002');
    t.equal(old.closed?.reason, 'key expired');
    t.ok(lateBy >= -50 && lateBy < 1000, `closed ${lateBy} ms after the grace ended`);
    t.equal(await upgradeStatus(port, first.key), 401, 'the old key is refused after the grace');
    t.equal(await upgradeStatus(port, rotated.key), 101, 'the new key still works');
  });

  await t.test('per-key connection limit: error frame, then 4029', async (t) => {
    const a = await Client.open(port, READ_KEY);
    const b = await Client.open(port, READ_KEY);
    const c = await Client.open(port, READ_KEY);
    await until('the third connection is closed', () => c.closed !== undefined);
    t.same(c.errors(), ['too_many_connections']);
    t.equal(c.closed?.code, CLOSE_LIMIT);
    t.equal(a.closed, undefined, 'the first two stay');
    t.equal(b.closed, undefined);
    a.ws.close();
    await until('a closed', () => a.closed !== undefined);
    // A slot is free again (the server counts the close).
    await until('a new connection is allowed again', async () => {
      const d = await Client.open(port, READ_KEY);
      d.send({ op: 'ping' });
      await until('pong or close', () => d.frames.length > 0 || d.closed !== undefined);
      const ok = d.frames.some((f) => f['type'] === 'pong');
      d.ws.close();
      return ok;
    });
    b.ws.close();
  });

  await t.test('subscribe rate limit: error frame, then 4029', async (t) => {
    const c = await Client.open(port, ADMIN_KEY);
    for (let i = 0; i < 20; i++) c.send({ op: 'subscribe', topics: ['status'] });
    await until('closed', () => c.closed !== undefined);
    t.equal(c.closed?.code, CLOSE_LIMIT);
    t.equal(c.closed?.reason, 'rate_limited');
    const errors = c.errors();
    t.same(errors, ['rate_limited'], 'one clear error frame before the close');
    const subscribed = c.frames.filter((f) => f['type'] === 'subscribed').length;
    t.ok(subscribed >= 5 && subscribed < 20, `${subscribed} subscribes served before the limit`);
  });

  await t.test('topics per connection: error frame, then 4029', async (t) => {
    const c = await Client.open(port, ADMIN_KEY);
    c.send({ op: 'subscribe', topics: ['signal/A', 'signal/B', 'signal/C'] });
    c.send({ op: 'subscribe', topics: ['signal/D'] });
    await until('closed', () => c.closed !== undefined);
    t.same(c.errors(), ['too_many_topics']);
    t.equal(c.closed?.code, CLOSE_LIMIT);
  });

  await t.test('/audit and /rejects need an admin key', async (t) => {
    const viewer = await store.create({ role: 'viewer', label: 'http' });
    const admin = await store.create({ role: 'admin', label: 'http admin' });
    keys.push(viewer.key, admin.key);
    await until('stored admin key loaded', async () => {
      const r = await fetch(`${base}/audit`, {
        headers: { authorization: `Bearer ${admin.key}` },
      });
      return r.status === 200;
    });
    for (const path of ['/audit', '/rejects']) {
      const status = async (key?: string): Promise<number> =>
        (
          await fetch(`${base}${path}`, {
            headers: key === undefined ? {} : { authorization: `Bearer ${key}` },
          })
        ).status;
      t.equal(await status(), 401, `${path}: no key`);
      t.equal(await status(READ_KEY), 403, `${path}: configured read key`);
      t.equal(await status(viewer.key), 403, `${path}: stored viewer key`);
      t.equal(await status(`nope-${run}-key`), 401, `${path}: unknown key`);
      t.equal(await status(ADMIN_KEY), 200, `${path}: configured admin key`);
      t.equal(await status(admin.key), 200, `${path}: stored admin key`);
    }
    const body = (await (await fetch(`${base}/audit`)).json()) as { error: { code: string } };
    t.equal(body.error.code, 'unauthorized');
    t.equal((await fetch(`${base}/metrics`)).status, 200, '/metrics stays open');
    t.equal((await fetch(`${base}/health/live`)).status, 200, '/health/live stays open');
    await store.revoke(admin.record.id);
    await until('the revoked admin key is refused', async () => {
      const r = await fetch(`${base}/audit`, {
        headers: { authorization: `Bearer ${admin.key}` },
      });
      return r.status === 401;
    });
  });

  await t.test('no key in the logs, the store or the metrics', async (t) => {
    const logs = logLines.join('');
    t.ok(logs.includes('API key is no longer valid'), 'the revocations were logged');
    for (const k of keys) t.notOk(logs.includes(k), `log free of key ${k.slice(0, 4)}…`);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    for (const k of keys) t.notOk(metrics.includes(k), 'metrics free of the key');
    const r = new Redis(urls.redisUrl);
    const dump: string[] = [];
    for (const name of await r.keys(`${PREFIX}*`)) {
      const type = await r.type(name);
      if (type === 'hash') dump.push(JSON.stringify(await r.hgetall(name)));
      else if (type === 'set') dump.push(...(await r.smembers(name)));
      else if (type === 'string') dump.push((await r.get(name)) ?? '');
    }
    r.disconnect();
    t.ok(dump.length > 5, 'the store holds records');
    for (const k of keys) t.notOk(dump.join('\n').includes(k), 'the store holds no key');
  });
});
