/**
 * The API documents against a real kernel: every message and response this
 * test can make a running kernel produce — WebSocket frames (control replies,
 * snapshot and live data, each error code), NATS signals, quality events,
 * rejections and control replies, HTTP responses — is captured and validated
 * against its schema in docs/api/asyncapi.yaml or docs/api/openapi.yaml.
 * Per kind: at least one captured, none invalid.
 *
 * QILIN_API_CAPTURE=<file> writes the first capture of each kind there (to
 * refresh the documents' examples from real output).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Msg } from '@nats-io/transport-node';
import { pino } from 'pino';
import t from 'tap';
import WebSocket from 'ws';
import { DASHBOARD_PATHS } from '../../cli/dashboard.js';
import { KernelApp } from '../../cli/kernel-app.js';
import { apiSchemas, field, isObject, resolveLocal } from '../helpers/api-schemas.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { MarketFeed } from '../helpers/market-feed.js';
import { ensureServices, repoRoot, connectAs } from '../helpers/services.js';
import { SIGNAL_EVERY_TRADE, testKernelConfig } from '../helpers/test-kernel.js';
import { until, within } from '../helpers/wait.js';

const run = randomBytes(3).toString('hex');
const strategy = `api${run}`;
const account = `acct${run}`;
const READ_KEY = `api-read-${run}`;
const ADMIN_KEY = `api-admin-${run}`;
const SIGNAL_KEY = `api-sig-${run}`;

/** Captured messages by kind: how many, which were invalid (with ajv's words), the first one. */
class Captures {
  readonly kinds = new Map<string, { n: number; invalid: string[]; first: unknown }>();

  /** Validate `value` with the schema `validatorName` and count it under `kind`. */
  check(kind: string, validatorName: string, value: unknown): void {
    let k = this.kinds.get(kind);
    if (k === undefined) {
      k = { n: 0, invalid: [], first: value };
      this.kinds.set(kind, k);
    }
    k.n++;
    const errors = apiSchemas().validator(validatorName).errors(value);
    if (errors !== undefined && k.invalid.length < 5) {
      k.invalid.push(`${errors}\n    in ${JSON.stringify(value).slice(0, 600)}`);
    }
  }

  count(kind: string): number {
    return this.kinds.get(kind)?.n ?? 0;
  }
}

/** A WebSocket client that validates every frame it gets. */
class Client {
  readonly frames: Array<Record<string, unknown>> = [];
  private constructor(
    readonly ws: WebSocket,
    private readonly caps: Captures,
    private readonly label: string,
  ) {
    ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      const bytes = Array.isArray(data)
        ? Buffer.concat(data)
        : Buffer.isBuffer(data)
          ? data
          : Buffer.from(data);
      const text = bytes.toString('utf8');
      const frame: unknown = isBinary ? { binary: text } : JSON.parse(text);
      if (!isObject(frame)) {
        caps.check('ws.unexpected', 'ws.pong', frame);
        return;
      }
      this.frames.push(frame);
      caps.check(...Client.classify(frame, label));
    });
  }

  static classify(frame: Record<string, unknown>, label: string): [string, string, unknown] {
    const type = frame['type'];
    if (typeof type === 'string') {
      const name = `ws.${type}`;
      const known = apiSchemas().names().includes(name);
      return [known ? name : `ws.unknown-type:${type}`, known ? name : 'ws.pong', frame];
    }
    const topic = frame['topic'];
    const kind = typeof topic === 'string' ? topic.split('/')[0]! : 'none';
    const name = `ws.${kind}`;
    const known = ['ws.signal', 'ws.prediction', 'ws.quality', 'ws.status'].includes(name);
    return [
      known ? `${name}${label === 'snapshot' ? ' (snapshot)' : ''}` : `ws.unknown-topic:${kind}`,
      known ? name : 'ws.status',
      frame,
    ];
  }

  static async open(port: number, key: string, caps: Captures, label = 'live'): Promise<Client> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
      headers: { authorization: `Bearer ${key}` },
    });
    await within(
      'WebSocket open',
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      }),
      5000,
    );
    return new Client(ws, caps, label);
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Frames received so far matching `pred`. */
  some(pred: (f: Record<string, unknown>) => boolean): boolean {
    return this.frames.some(pred);
  }

  close(): void {
    this.ws.close();
  }
}

/** The OpenAPI response documented for `path` (an OpenAPI path key), `method` and `status`. */
function documented(path: string, method: string, status: number): Record<string, unknown> {
  const doc = apiSchemas().openapi;
  const op = field(field(doc, 'paths'), path)[method];
  const response = resolveLocal(doc, field(field(op, 'responses'), String(status)));
  return isObject(response) ? response : {};
}

/** The media types `documented` lists, without parameters (`text/plain`). */
function mediaTypes(response: Record<string, unknown>): string[] {
  return Object.keys(field(response, 'content')).map((m) => m.split(';')[0]!.trim());
}

void t.test('API documents against a running kernel', async (t) => {
  const caps = new Captures();
  const urls = await ensureServices();
  const db = `qilin_api_${run}`;
  const config = await testKernelConfig(urls, db, READ_KEY, {
    ...SIGNAL_EVERY_TRADE,
    actor: {
      ...SIGNAL_EVERY_TRADE.actor,
      qualityWindowTicks: 20,
      // The feed's exchange clock runs ahead of the wall clock (10 ms a tick, sent in bursts).
      maxSkewUs: 3_600_000_000,
    },
    apiKeys: `${READ_KEY}:read,${ADMIN_KEY}:admin,${SIGNAL_KEY}:read=signal/*`,
  });
  const app = new KernelApp({
    config,
    log: pino({ level: 'silent' }),
    strategy,
    account,
    statusIntervalMs: 200,
  });
  await app.start();
  const base = `http://127.0.0.1:${app.port}`;
  const nc = await connectAs('admin', { name: 'api-conformance-test' });
  const clients: Client[] = [];
  t.teardown(async () => {
    for (const c of clients) c.close();
    await nc.drain();
    await app.close();
    await dropDatabase(urls.clickhouseUrl, db);
  });

  const feed = new MarketFeed(nc, `v${run}`);
  const mine = (sym: unknown): boolean => typeof sym === 'string' && sym.endsWith(run);
  const natsSub = (subject: string, onMsg: (m: Msg) => void): void => {
    nc.subscribe(subject, {
      callback: (err, m) => {
        if (err === null) onMsg(m);
      },
    });
  };
  natsSub(`sig.${strategy}.>`, (m) => {
    const body: unknown = m.json();
    caps.check('nats.signal', 'nats.signal', body);
    const headers: Record<string, string> = {};
    for (const k of m.headers?.keys() ?? []) headers[k] = m.headers!.get(k);
    caps.check('nats.signal headers', 'nats.signal:headers', headers);
    if (isObject(body) && headers['Nats-Msg-Id'] !== body['id']) {
      caps.check('nats.signal Nats-Msg-Id = id', 'async.token', '(mismatch)');
    }
  });
  natsSub('quality.>', (m) => {
    const body: unknown = m.json();
    if (isObject(body) && mine(body['sym'])) caps.check('nats.quality', 'nats.quality', body);
  });
  natsSub('risk.rejected.>', (m) => {
    const body: unknown = m.json();
    if (field(body, 'signal')['strategy'] === strategy) {
      caps.check('nats.riskRejection', 'nats.riskRejection', body);
    }
  });
  await nc.flush();

  // A live client on everything, before any data flows.
  const all = await Client.open(app.port, READ_KEY, caps);
  clients.push(all);
  all.send({ op: 'subscribe', topics: ['*'] });
  await until('subscribed to *', () => all.some((f) => f['type'] === 'subscribed'));

  const A = `A${run}`;
  const B = `B${run}`;

  await t.test('market data → signals, predictions, quality, status', async (t) => {
    let px = feed.trend(A, 40, 1);
    feed.trend(B, 30, -1);
    // A crossed quote (quarantined) and a duplicate trade.
    feed.quote(A, px + 1, px - 1);
    const seq = feed.trade(A, px);
    feed.trade(A, px, { seq });
    px = feed.trend(A, 25, 1, px);
    await until('signals, predictions and quality on both paths', () =>
      [
        'nats.signal',
        'nats.quality',
        'ws.signal',
        'ws.prediction',
        'ws.quality',
        'ws.status',
      ].every((k) => caps.count(k) > 0),
    );
    await until('a quarantine event', () =>
      all.some((f) => f['topic'] === `quality/${A}` && field(f, 'data')['kind'] === 'quarantine'),
    );
    t.ok(px > 0);
  });

  await t.test('kill switch: replies, kill_switch rejections, resume', async (t) => {
    const kill = await nc.request('ctl.risk.kill', JSON.stringify({ by: 'api', reason: 'test' }), {
      timeout: 3000,
    });
    caps.check('nats.riskControlReply', 'nats.riskControlReply', kill.json());
    feed.trend(B, 10, 1, 90);
    await until('a kill_switch rejection', () => caps.count('nats.riskRejection') > 0);
    await until('a status frame with killed', () =>
      all.some((f) => f['topic'] === 'status' && field(f, 'data')['killed'] === true),
    );
    const bad = await nc.request('ctl.risk.kill', JSON.stringify({ by: 'api' }), { timeout: 3000 });
    caps.check('nats.controlError', 'nats.controlError', bad.json());
    const resume = await nc.request(
      'ctl.risk.resume',
      JSON.stringify({ by: 'api', reason: 'done' }),
      { timeout: 3000 },
    );
    caps.check('nats.riskControlReply', 'nats.riskControlReply', resume.json());
    t.match(resume.json(), { killed: false });
  });

  await t.test('WebSocket: snapshot, ping, unsubscribe, every error code', async (t) => {
    // Nothing is fed any more: what a new subscriber gets now is the snapshot.
    const snap = await Client.open(app.port, ADMIN_KEY, caps, 'snapshot');
    clients.push(snap);
    snap.send({ op: 'subscribe', topics: [`signal/${A}`, `prediction/${A}`, `quality/${A}`] });
    await until('the snapshot of A', () =>
      [`signal/${A}`, `prediction/${A}`, `quality/${A}`].every((topic) =>
        snap.some((f) => f['topic'] === topic),
      ),
    );
    snap.send({ op: 'ping' });
    await until('pong', () => snap.some((f) => f['type'] === 'pong'));
    snap.send({ op: 'unsubscribe', topics: [`quality/${A}`] });
    await until('unsubscribed', () => snap.some((f) => f['type'] === 'unsubscribed'));

    const errors = await Client.open(app.port, SIGNAL_KEY, caps);
    clients.push(errors);
    errors.send('not json');
    errors.send('[1]');
    errors.send({ op: 'dance' });
    errors.send({ op: 'subscribe', topics: ['signal/BTC USD'] });
    errors.send({ op: 'subscribe', topics: ['*'] });
    const codes = ['bad_json', 'bad_frame', 'unknown_op', 'bad_topic', 'forbidden'];
    await until('one error frame of each code', () =>
      codes.every((code) => errors.some((f) => f['type'] === 'error' && f['code'] === code)),
    );
    const got = errors.frames.filter((f) => f['type'] === 'error').map((f) => f['code']);
    t.same(got, codes, 'one error per bad frame, in order');
  });

  await t.test('HTTP routes', async (t) => {
    // Rejects: two bad market messages on our venue. `subject` is the subject the
    // kernel received: with the server's partition mapping, md.<venue>.<symbol>.<p>.
    nc.publish(`md.v${run}.${A}`, '{not json');
    nc.publish(`md.v${run}.${A}`, JSON.stringify({ type: 'trade', sym: A, ts: 1, px: 1, qty: 1 }));
    await nc.flush();
    await until('our rejects at /rejects', async () => {
      const body = (await (
        await fetch(`${base}/rejects`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })
      ).json()) as unknown[];
      const ours = (r: unknown): boolean =>
        isObject(r) && String(r['subject']).startsWith(`md.v${run}.${A}`);
      return body.filter(ours).length >= 2;
    });

    const get = async (
      path: string,
      docPath: string,
      validatorName: string,
      init: RequestInit = {},
    ): Promise<Response> => {
      const res = await fetch(`${base}${path}`, init);
      const method = (init.method ?? 'GET').toLowerCase();
      const doc = documented(docPath, method, res.status);
      const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
      t.ok(
        mediaTypes(doc).includes(type),
        `${method.toUpperCase()} ${path} → ${res.status} ${type} is documented (${mediaTypes(doc).join(', ') || 'nothing'})`,
      );
      const text = await res.text();
      const body: unknown = type === 'application/json' ? JSON.parse(text) : text;
      caps.check(`http ${method.toUpperCase()} ${docPath} ${res.status}`, validatorName, body);
      return res;
    };
    for (const check of ['live', 'ready', 'startup']) {
      const res = await get(`/health/${check}`, `/health/${check}`, 'http.health');
      t.equal(res.headers.get('cache-control'), 'no-store');
    }
    await get('/metrics', '/metrics', 'http.metrics');
    const admin = { headers: { authorization: `Bearer ${ADMIN_KEY}` } };
    await get('/rejects', '/rejects', 'http.rejects', admin);
    await get('/audit', '/audit', 'http.audit', admin);
    // Admin-only routes: 401 without a key, 403 with a read key.
    for (const path of ['/rejects', '/audit']) {
      const none = await get(path, path, 'http.error');
      t.equal(none.status, 401, `${path} without a key`);
      t.equal(none.headers.get('www-authenticate'), 'Bearer');
      const read = await get(path, path, 'http.error', {
        headers: { authorization: `Bearer ${READ_KEY}` },
      });
      t.equal(read.status, 403, `${path} with a read key`);
    }
    await get(`/nope${run}`, '/{path}', 'http.error');
    const r405 = await get('/health/live', '/{path}', 'http.error', { method: 'POST' });
    t.equal(r405.headers.get('allow'), 'GET');
    await get('/ws', '/ws', 'http.error');

    // The dashboard page (a key is needed), and the files and documents it links (open).
    t.equal((await get('/', '/', 'http.document')).status, 401, 'the page without a key');
    t.equal((await get(`/?key=${READ_KEY}`, '/', 'http.document')).status, 200, 'with a key');
    for (const p of DASHBOARD_PATHS) if (p !== '/') await get(p, p, 'http.document');
    for (const doc of ['asyncapi.yaml', 'openapi.yaml']) {
      t.equal(
        await (await fetch(`${base}/api/${doc}`)).text(),
        readFileSync(join(repoRoot, 'docs', 'api', doc), 'utf8'),
        `the kernel serves docs/api/${doc} as it is in the repository`,
      );
    }

    // 401 at the upgrade: no socket, a JSON error body.
    const refused = await within(
      'the refused upgrade',
      new Promise<{ status: number; auth: string; type: string; body: string }>(
        (resolve, reject) => {
          const ws = new WebSocket(`ws://127.0.0.1:${app.port}/ws?key=wrong-key-${run}`);
          ws.once('open', () => reject(new Error('an unknown key was let in')));
          ws.once('error', () => undefined);
          ws.once('unexpected-response', (_req, res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                auth: String(res.headers['www-authenticate']),
                type: String(res.headers['content-type']),
                body: Buffer.concat(chunks).toString('utf8'),
              }),
            );
          });
        },
      ),
      5000,
    );
    t.equal(refused.status, 401);
    t.equal(refused.auth, 'Bearer');
    t.ok(mediaTypes(documented('/ws', 'get', 401)).includes(refused.type), '401 type documented');
    caps.check('http GET /ws 401', 'http.error', JSON.parse(refused.body));
  });

  await t.test('every captured kind is valid against its schema', (t) => {
    const expected = [
      'ws.subscribed',
      'ws.unsubscribed',
      'ws.pong',
      'ws.error',
      'ws.signal',
      'ws.prediction',
      'ws.quality',
      'ws.status',
      'ws.signal (snapshot)',
      'ws.prediction (snapshot)',
      'ws.quality (snapshot)',
      'nats.signal',
      'nats.signal headers',
      'nats.quality',
      'nats.riskRejection',
      'nats.riskControlReply',
      'nats.controlError',
      'http GET /health/live ',
      'http GET /health/ready ',
      'http GET /health/startup ',
      'http GET /metrics 200',
      'http GET /rejects 200',
      'http GET /audit 200',
      'http GET /rejects 401',
      'http GET /rejects 403',
      'http GET /audit 401',
      'http GET /audit 403',
      'http GET /{path} 404',
      'http POST /{path} 405',
      'http GET /ws 426',
      'http GET /ws 401',
      'http GET / 401',
      'http GET / 200',
      ...DASHBOARD_PATHS.filter((p) => p !== '/').map((p) => `http GET ${p} 200`),
    ];
    // A kind with a trailing space is a prefix: the health routes may answer 200 or 503.
    const matches = (kind: string, e: string): boolean =>
      e.endsWith(' ') ? kind.startsWith(e) : kind === e;
    for (const e of expected) {
      const n = [...caps.kinds].filter(([k]) => matches(k, e)).reduce((s, [, v]) => s + v.n, 0);
      t.ok(n > 0, `${e.trim()}: ${n} captured`);
    }
    for (const [kind, k] of caps.kinds) {
      t.equal(k.invalid.length, 0, `${kind}: ${k.n} captured, none invalid`, {
        invalid: k.invalid,
      });
    }
    t.same(
      [...caps.kinds.keys()].filter((k) => !expected.some((e) => matches(k, e))),
      [],
      'no unexpected kind of message',
    );
    const dump = process.env['QILIN_API_CAPTURE'];
    if (dump !== undefined && dump !== '') {
      writeFileSync(
        dump,
        JSON.stringify(Object.fromEntries([...caps.kinds].map(([k, v]) => [k, v.first])), null, 2),
      );
    }
    t.end();
  });
});
