import t from 'tap';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import WebSocket from 'ws';
import { parseApiKeys } from '../../../adapters/ws/api-keys.js';
import {
  CLOSE_BACKPRESSURE,
  CLOSE_BAD_FRAMES,
  CLOSE_SHUTDOWN,
  UwsServer,
  type UwsServerOptions,
} from '../../../adapters/ws/uws-server.js';
import { ErrorCodes } from '../../../kernel/errors.js';

const READ_KEY = 'reader-key-0001';
const SIGNAL_KEY = 'signal-key-0001';
const ADMIN_KEY = 'admin-key-00001';
const KEYS = `${READ_KEY}:read,${SIGNAL_KEY}:read=signal/*,${ADMIN_KEY}:admin`;
const DEADLINE_MS = 10_000;

type Frame = Record<string, unknown>;

/** Log lines the server wrote, for assertions on what is (not) logged. */
function captureLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

async function startServer(
  t: { teardown(fn: () => unknown): void },
  extra: Partial<UwsServerOptions> = {},
): Promise<{ server: UwsServer; port: number; lines: string[] }> {
  const { log, lines } = captureLog();
  const server = new UwsServer({
    port: 0,
    host: '127.0.0.1',
    apiKeys: parseApiKeys(KEYS),
    log,
    ...extra,
  });
  const port = await server.start();
  t.teardown(() => server.close());
  return { server, port, lines };
}

function withDeadline<T>(p: Promise<T>, what: string, ms = DEADLINE_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/** Await a condition that other events make true, checking after each turn of the event loop. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + DEADLINE_MS;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** A `ws` client that queues incoming frames and exposes them as awaitable. */
class TestClient {
  private readonly queue: Frame[] = [];
  private wake: (() => void) | undefined;
  received = 0;
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      this.received++;
      this.queue.push(JSON.parse(data.toString('utf8')) as Frame);
      this.wake?.();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString('utf8') });
        this.wake?.();
      });
    });
  }

  static connect(
    port: number,
    opts: { key?: string; bearer?: string; query?: string } = {},
  ): Promise<TestClient> {
    const q = opts.query ?? (opts.key === undefined ? '' : `?key=${encodeURIComponent(opts.key)}`);
    const headers: Record<string, string> = {};
    if (opts.bearer !== undefined) headers['Authorization'] = `Bearer ${opts.bearer}`;
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws${q}`, { headers });
    const client = new TestClient(ws);
    return withDeadline(
      new Promise<TestClient>((resolve, reject) => {
        ws.once('open', () => resolve(client));
        ws.once('error', reject);
      }),
      'open',
    );
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  async next(): Promise<Frame> {
    const end = Date.now() + DEADLINE_MS;
    for (;;) {
      const f = this.queue.shift();
      if (f !== undefined) return f;
      if (this.ws.readyState === WebSocket.CLOSED)
        throw new Error('closed while waiting for a frame');
      const left = end - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a frame');
      await withDeadline(new Promise<void>((r) => (this.wake = r)), 'a frame', left);
    }
  }

  /** Frames already received and not yet consumed. */
  pending(): Frame[] {
    return this.queue.splice(0);
  }

  async subscribe(topics: string[]): Promise<Frame> {
    this.send({ op: 'subscribe', topics });
    return this.next();
  }
}

/** The status code and body of an upgrade the server refused. */
function refusedUpgrade(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return withDeadline(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
      ws.on('open', () => reject(new Error('upgrade unexpectedly accepted')));
      ws.on('error', () => undefined); // ws emits an error after unexpected-response
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
    }),
    'refused upgrade',
  );
}

void t.test(
  'upgrade without a key, with an unknown key or a malformed header is refused with 401',
  async (t) => {
    const { server, port, lines } = await startServer(t);
    const none = await refusedUpgrade(port, '/ws');
    t.equal(none.status, 401);
    t.same((JSON.parse(none.body) as { error: { code: string } }).error.code, 'unauthorized');
    t.match(none.body, /missing API key/);
    const bad = await refusedUpgrade(port, '/ws?key=wrong-key-123456');
    t.equal(bad.status, 401);
    t.match(bad.body, /unknown API key/);
    const badBearer = await refusedUpgrade(port, '/ws', {
      Authorization: 'Bearer wrong-key-654321',
    });
    t.equal(badBearer.status, 401);
    const basic = await refusedUpgrade(port, '/ws', { Authorization: `Basic ${READ_KEY}` });
    t.equal(basic.status, 401, 'only Bearer is accepted');
    t.match(basic.body, /malformed Authorization/);
    t.equal(server.stats().authFailures, 4);
    t.equal(server.stats().clients, 0);
    const warns = lines.filter((l) => l.includes('ws auth failure'));
    t.equal(warns.length, 4, 'each failure logged');
    t.notOk(
      lines.some((l) => l.includes('wrong-key') || l.includes(READ_KEY)),
      'no key appears in the log',
    );
  },
);

void t.test('Bearer header and ?key= both authenticate; ping gets pong', async (t) => {
  const { server, port } = await startServer(t);
  const a = await TestClient.connect(port, { bearer: READ_KEY });
  const b = await TestClient.connect(port, { key: ADMIN_KEY });
  a.send({ op: 'ping' });
  b.send({ op: 'ping' });
  t.same(await a.next(), { type: 'pong' });
  t.same(await b.next(), { type: 'pong' });
  t.equal(server.stats().clients, 2);
  a.ws.close();
  await withDeadline(a.closed, 'close');
  await until(() => server.stats().clients === 1, 'server to see the close');
  t.equal(server.stats().clients, 1);
  b.ws.close();
});

void t.test('subscribe: ack, then the snapshot, then live messages, in that order', async (t) => {
  const { server, port } = await startServer(t);
  server.publish('signal/BTC-USD', { n: 1 });
  server.publish('signal/BTC-USD', { n: 2 }); // only the last value is the snapshot
  server.publish('signal/ETH-USD', '{"n":10}'); // pre-serialised JSON
  server.publish('prediction/BTC-USD', { n: 99 });
  const c = await TestClient.connect(port, { key: READ_KEY });
  // Frames carry their topic's offset and `subscribed` the server's epoch (docs/adr/0007).
  t.same(await c.subscribe(['signal/BTC-USD']), {
    type: 'subscribed',
    topics: ['signal/BTC-USD'],
    epoch: server.epoch,
  });
  t.same(await c.next(), { topic: 'signal/BTC-USD', data: { n: 2 }, off: 2 }, 'snapshot first');
  server.publish('signal/BTC-USD', { n: 3 });
  server.publish('signal/ETH-USD', { n: 11 }); // not subscribed
  server.publish('signal/BTC-USD', { n: 4 });
  t.same(await c.next(), { topic: 'signal/BTC-USD', data: { n: 3 }, off: 3 });
  t.same(await c.next(), { topic: 'signal/BTC-USD', data: { n: 4 }, off: 4 });

  // A wildcard subscription snapshots every signal topic it newly covers.
  t.same(await c.subscribe(['signal/*']), {
    type: 'subscribed',
    topics: ['signal/*'],
    epoch: server.epoch,
  });
  t.same(
    await c.next(),
    { topic: 'signal/ETH-USD', data: { n: 11 }, off: 2 },
    'ETH snapshot; BTC already covered',
  );
  server.publish('status', { up: true });
  server.publish('signal/BTC-USD', { n: 5 });
  t.same(await c.next(), { topic: 'signal/BTC-USD', data: { n: 5 }, off: 5 });
  t.same(c.pending(), [], 'nothing else');
  t.equal(server.stats().published, 9);
  c.ws.close();
});

void t.test(
  'wildcards deliver every matching topic exactly once, also with overlapping exact subscriptions',
  async (t) => {
    const { server, port } = await startServer(t);
    const c = await TestClient.connect(port, { key: READ_KEY });
    const all = await TestClient.connect(port, { key: READ_KEY });
    await c.subscribe(['signal/BTC-USD', 'signal/*', 'status']);
    await c.subscribe(['signal/ETH-USD']); // exact under a held wildcard: still once
    await all.subscribe(['*', 'signal/BTC-USD', 'prediction/*']);
    const topics = [
      'signal/BTC-USD',
      'signal/ETH-USD',
      'prediction/BTC-USD',
      'quality/ETH-USD',
      'signal/SOL-USD',
    ];
    for (const tp of topics) server.publish(tp, { tp });
    server.publish('status', { end: 1 });
    const got: string[] = [];
    for (;;) {
      const f = await c.next();
      if (f['topic'] === 'status') break;
      got.push(f['topic'] as string);
    }
    t.same(
      got,
      ['signal/BTC-USD', 'signal/ETH-USD', 'signal/SOL-USD'],
      'each signal once, in order',
    );
    const gotAll: string[] = [];
    for (;;) {
      const f = await all.next();
      if (f['topic'] === 'status') break;
      gotAll.push(f['topic'] as string);
    }
    t.same(gotAll, topics, '`*` gets every topic once');

    // Dropping the wildcard restores the exact subscriptions it had shadowed.
    c.send({ op: 'unsubscribe', topics: ['signal/*'] });
    t.same(await c.next(), { type: 'unsubscribed', topics: ['signal/*'] });
    for (const tp of topics) server.publish(tp, { tp });
    server.publish('status', { end: 2 });
    got.length = 0;
    for (;;) {
      const f = await c.next();
      if (f['topic'] === 'status') break;
      got.push(f['topic'] as string);
    }
    t.same(got, ['signal/BTC-USD', 'signal/ETH-USD'], 'only the remembered exact topics');
    c.send({ op: 'unsubscribe', topics: ['signal/BTC-USD', 'signal/ETH-USD'] });
    await c.next();
    server.publish('signal/BTC-USD', {});
    server.publish('status', { end: 3 });
    t.same(
      await c.next(),
      { topic: 'status', data: { end: 3 }, off: 3 },
      'unsubscribed topics no longer arrive',
    );
    c.ws.close();
    all.ws.close();
  },
);

void t.test('a read=signal/* key is forbidden other topics', async (t) => {
  const { server, port } = await startServer(t);
  const c = await TestClient.connect(port, { bearer: SIGNAL_KEY });
  for (const topics of [['prediction/X'], ['*'], ['status'], ['signal/A', 'quality/*']]) {
    const f = await c.subscribe(topics);
    t.equal(f['type'], 'error');
    t.equal(f['code'], 'forbidden', `forbidden: ${topics.join(',')}`);
  }
  t.same(await c.subscribe(['signal/*', 'signal/X']), {
    type: 'subscribed',
    topics: ['signal/*', 'signal/X'],
    epoch: server.epoch,
  });
  server.publish('prediction/X', {});
  server.publish('signal/X', { ok: 1 });
  t.same(
    await c.next(),
    { topic: 'signal/X', data: { ok: 1 }, off: 1 },
    'a rejected frame subscribed nothing',
  );
  c.ws.close();
});

void t.test(
  'every malformed frame gets its error code; one past maxBadFrames closes with 1008',
  async (t) => {
    const { server, port } = await startServer(t);
    const c = await TestClient.connect(port, { key: READ_KEY });
    const cases: Array<[string | Buffer, string]> = [
      ['not json', 'bad_json'],
      ['[1,2]', 'bad_frame'],
      ['42', 'bad_frame'],
      ['{}', 'bad_frame'],
      ['{"op":"dance"}', 'unknown_op'],
      ['{"op":"subscribe"}', 'bad_frame'],
      ['{"op":"subscribe","topics":"signal/X"}', 'bad_frame'],
      ['{"op":"subscribe","topics":[]}', 'bad_frame'],
      ['{"op":"subscribe","topics":["signal/BTC*"]}', 'bad_topic'],
      ['{"op":"unsubscribe","topics":[7]}', 'bad_topic'],
    ];
    for (const [frame, code] of cases) {
      c.send(frame);
      const f = await c.next();
      t.equal(f['type'], 'error');
      t.equal(f['code'], code, `${frame.toString()} → ${code}`);
      t.type(f['message'], 'string');
    }
    t.equal(server.stats().badFrames, 10);
    t.equal(server.stats().badFrameDisconnects, 0, 'ten bad frames are tolerated');
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true }); // the 11th
    const f = await c.next();
    t.equal(f['code'], 'bad_frame', 'binary frame');
    const closed = await withDeadline(c.closed, 'close');
    t.equal(closed.code, CLOSE_BAD_FRAMES);
    t.match(closed.reason, /too many bad frames/);
    t.equal(server.stats().badFrameDisconnects, 1);
  },
);

void t.test('a frame over maxPayloadBytes is dropped by uWS and counted', async (t) => {
  const { server, port, lines } = await startServer(t, { maxPayloadBytes: 1024 });
  const c = await TestClient.connect(port, { key: READ_KEY });
  c.send({ op: 'subscribe', topics: ['signal/X'], pad: 'x'.repeat(2048) });
  const closed = await withDeadline(c.closed, 'close');
  t.equal(closed.code, 1006, 'uWS closes without a close frame');
  await until(() => server.stats().oversizeDisconnects === 1, 'oversize count');
  t.equal(server.stats().oversizeDisconnects, 1);
  t.ok(
    lines.some((l) => l.includes('oversized frame')),
    'logged',
  );
});

void t.test(
  'a slow client is cut with 4008 backpressure while a fast one receives everything',
  async (t) => {
    const limit = 256 * 1024;
    const { server, port } = await startServer(t, { maxBackpressureBytes: limit });
    const slow = await TestClient.connect(port, { key: READ_KEY });
    const fast = await TestClient.connect(port, { key: READ_KEY });
    await slow.subscribe(['signal/*']);
    await fast.subscribe(['signal/*']);
    (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();

    const payload = 'p'.repeat(2000);
    let sent = 0;
    // Up to 256 MB, in 100 kB bursts with a turn of the event loop between
    // (the fast client reads in this same process): stop once the slow one is cut.
    while (server.stats().slowDisconnects === 0 && sent < 128_000) {
      for (let i = 0; i < 50; i++) server.publish('signal/BTC-USD', { i: sent++, payload });
      await new Promise((r) => setImmediate(r));
    }
    t.equal(server.stats().slowDisconnects, 1, `slow client cut after ${sent} messages`);
    for (let i = 0; i < 100; i++) server.publish('signal/BTC-USD', { i: sent++, payload });
    await until(() => fast.received >= sent + 1, `fast client to receive all ${sent} messages`);
    let expected = 0;
    let inOrder = true;
    for (const f of fast.pending()) {
      const d = f['data'] as { i?: number } | undefined;
      if (d?.i === undefined) continue;
      if (d.i !== expected++) inOrder = false;
    }
    t.ok(inOrder, 'fast client got every message in order');
    t.equal(expected, sent, 'and all of them');
    t.equal(server.stats().clients, 1, 'only the fast client is left');

    (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.resume();
    const closed = await withDeadline(slow.closed, 'slow close');
    t.equal(closed.code, CLOSE_BACKPRESSURE);
    t.equal(closed.reason, 'backpressure');
    fast.ws.close();
  },
);

void t.test(
  'a snapshot bigger than the limit cuts that client; the server and other clients carry on',
  async (t) => {
    const { server, port } = await startServer(t, { maxBackpressureBytes: 64 * 1024 });
    const big = 'b'.repeat(4000);
    for (let i = 0; i < 4000; i++) server.publish(`quality/S${i}`, { big }); // 16 MB of snapshot
    const greedy = await TestClient.connect(port, { key: READ_KEY });
    const other = await TestClient.connect(port, { key: READ_KEY });
    (greedy.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    greedy.send({ op: 'subscribe', topics: ['*'] });
    await until(() => server.stats().slowDisconnects === 1, 'the greedy client to be cut');
    t.equal(server.stats().clients, 1);
    t.same(await other.subscribe(['status']), {
      type: 'subscribed',
      topics: ['status'],
      epoch: server.epoch,
    });
    server.publish('status', { ok: true });
    t.same(
      await other.next(),
      { topic: 'status', data: { ok: true }, off: 1 },
      'others unaffected',
    );
    greedy.ws.terminate();
    other.ws.close();
  },
);

void t.test('HTTP routes on the same port: body, 404, 405, 426, 500', async (t) => {
  const { port } = await startServer(t, {
    routes: {
      '/health/live': () => ({
        status: 200,
        contentType: 'application/json',
        body: '{"live":true}',
      }),
      '/health/ready': async () => {
        await new Promise((r) => setImmediate(r));
        return {
          status: 503,
          contentType: 'application/json',
          body: '{"ready":false,"why":"nats down"}',
        };
      },
      '/metrics': () =>
        Promise.resolve({
          status: 200,
          contentType: 'text/plain; version=0.0.4',
          body: 'qilin_up 1\n',
        }),
      '/boom': () => {
        throw new Error('kaput');
      },
    },
  });
  const base = `http://127.0.0.1:${port}`;
  const live = await fetch(`${base}/health/live`);
  t.equal(live.status, 200);
  t.equal(live.headers.get('content-type'), 'application/json');
  t.same(await live.json(), { live: true });
  const ready = await fetch(`${base}/health/ready`);
  t.equal(ready.status, 503);
  t.same(await ready.json(), { ready: false, why: 'nats down' });
  const metrics = await fetch(`${base}/metrics`);
  t.equal(await metrics.text(), 'qilin_up 1\n');
  t.match(metrics.headers.get('content-type'), /^text\/plain/);
  const missing = await fetch(`${base}/nope`);
  t.equal(missing.status, 404);
  t.equal(((await missing.json()) as { error: { code: string } }).error.code, 'not_found');
  const post = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
  t.equal(post.status, 405);
  await post.text();
  const plainWs = await fetch(`${base}/ws`);
  t.equal(plainWs.status, 426);
  await plainWs.text();
  const boom = await fetch(`${base}/boom`);
  t.equal(boom.status, 500);
  t.equal(((await boom.json()) as { error: { code: string } }).error.code, 'internal');
});

void t.test(
  'close() ends clients with 1001, is safe twice, and later publishes are ignored',
  async (t) => {
    const { server, port } = await startServer(t);
    const c = await TestClient.connect(port, { key: READ_KEY });
    await c.subscribe(['*']);
    const first = server.close();
    const second = server.close();
    t.equal(first, second, 'same promise');
    await first;
    const closed = await withDeadline(c.closed, 'close');
    t.equal(closed.code, CLOSE_SHUTDOWN);
    t.equal(server.stats().clients, 0);
    t.doesNotThrow(() => server.publish('signal/X', {}));
    await t.rejects(server.start(), { code: ErrorCodes.INVALID_ARGUMENT });
    const refused = await new Promise<string>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?key=${READ_KEY}`);
      ws.on('open', () => resolve('open'));
      ws.on('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? 'error'));
    });
    t.equal(refused, 'ECONNREFUSED', 'no longer listening');
  },
);

void t.test('options and publish arguments are validated', async (t) => {
  const log = pino({ level: 'silent' });
  const apiKeys = parseApiKeys(KEYS);
  const bad: Array<Partial<UwsServerOptions>> = [
    { port: -1 },
    { port: 70000 },
    { port: 1.5 },
    { maxPayloadBytes: 10 },
    { maxBackpressureBytes: 0 },
    { maxBadFrames: -1 },
    { idleTimeoutSec: 4 },
    { routes: { '/ws': () => ({ status: 200, contentType: 'text/plain', body: '' }) } },
    { routes: { metrics: () => ({ status: 200, contentType: 'text/plain', body: '' }) } },
  ];
  for (const o of bad) {
    t.throws(
      () => new UwsServer({ port: 0, apiKeys, log, ...o }),
      { code: ErrorCodes.INVALID_ARGUMENT },
      JSON.stringify(o),
    );
  }
  const server = new UwsServer({ port: 0, apiKeys, log });
  t.throws(
    () => server.publish('signal/*', {}),
    { code: ErrorCodes.INVALID_ARGUMENT },
    'a wildcard is not a topic',
  );
  t.throws(() => server.publish('trades/X', {}), { code: ErrorCodes.INVALID_ARGUMENT });
  t.throws(() => server.publish('signal/X', undefined), { code: ErrorCodes.INVALID_ARGUMENT });
  await server.close();
});

void t.test('port in use: start() rejects', async (t) => {
  const { port } = await startServer(t);
  const other = new UwsServer({
    port,
    host: '127.0.0.1',
    apiKeys: parseApiKeys(KEYS),
    log: pino({ level: 'silent' }),
  });
  await t.rejects(other.start(), { code: ErrorCodes.SERVICE_PORT_IN_USE });
  await other.close();
});
