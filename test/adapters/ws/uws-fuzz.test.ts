/**
 * Fuzzing the fan-out server's inputs (property tests, fast-check): arbitrary
 * WebSocket client frames and arbitrary HTTP requests never crash it, never
 * grow its memory without bound, and always get a clear answer: an error
 * frame with a documented code (or a documented close), an HTTP status with a
 * JSON error body. Plus the pre-request bounds uWS gives (header floods, slow
 * handshakes), checked so that an upgrade of uWS that loses them fails here.
 */
import { request } from 'node:http';
import { connect as tcpConnect } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { pino } from 'pino';
import t from 'tap';
import WebSocket from 'ws';
import { parseApiKeys } from '../../../adapters/ws/api-keys.js';
import {
  CLOSE_BAD_FRAMES,
  CLOSE_LIMIT,
  UwsServer,
  WS_ERROR_CODES,
  requireAdmin,
} from '../../../adapters/ws/uws-server.js';
import { until, within } from '../../helpers/wait.js';
import { opened } from '../../helpers/ws.js';

const READ_KEY = 'fuzz-read-key-01';
const ADMIN_KEY = 'fuzz-admin-key-1';
const MAX_PAYLOAD = 2048;

type Frame = Record<string, unknown>;

async function startServer(t: {
  teardown(fn: () => unknown): void;
}): Promise<{ server: UwsServer; port: number }> {
  const apiKeys = parseApiKeys(`${READ_KEY}:read=signal/*,${ADMIN_KEY}:admin`);
  const ok = () => ({ status: 200, contentType: 'application/json', body: '{"ok":true}' });
  const server = new UwsServer({
    port: 0,
    host: '127.0.0.1',
    apiKeys,
    log: pino({ level: 'silent' }),
    maxPayloadBytes: MAX_PAYLOAD,
    maxBadFrames: 5,
    maxTopicsPerConnection: 64,
    subscribeRatePerSec: 1_000_000,
    routes: { '/health/live': ok, '/audit': requireAdmin(apiKeys, ok) },
  });
  const port = await server.start();
  t.teardown(() => server.close());
  return { server, port };
}

/** A connection that queues frames and records its close. */
class Conn {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | undefined;
  constructor(readonly ws: WebSocket) {
    ws.on('message', (raw: Buffer) => this.frames.push(JSON.parse(raw.toString('utf8')) as Frame));
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString('utf8') };
    });
    ws.on('error', () => undefined);
  }

  static async open(port: number, key: string): Promise<Conn> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?key=${key}`);
    const c = new Conn(ws);
    await opened(ws, 5000);
    return c;
  }
}

/** What a client may send: anything, with a bias towards almost-valid frames. */
const topicArb = fc.oneof(
  fc.constantFrom('signal/BTC-USD', 'signal/*', 'prediction/*', 'status', '*', 'quality/ETH-USD'),
  fc.string({ maxLength: 40 }),
  fc.anything({ maxDepth: 2 }),
);
type Sent = { kind: 'text'; text: string } | { kind: 'binary'; bytes: Uint8Array };
const frameArb: fc.Arbitrary<Sent> = fc.oneof(
  fc.string({ maxLength: 200 }).map((text): Sent => ({ kind: 'text', text })),
  fc.string({ unit: 'grapheme', maxLength: 100 }).map((text): Sent => ({ kind: 'text', text })),
  fc.json({ maxDepth: 3 }).map((text): Sent => ({ kind: 'text', text })),
  fc
    .record(
      {
        op: fc.oneof(
          fc.constantFrom('subscribe', 'unsubscribe', 'ping', 'SUBSCRIBE', ''),
          fc.anything({ maxDepth: 1 }),
        ),
        topics: fc.oneof(fc.array(topicArb, { maxLength: 300 }), fc.anything({ maxDepth: 2 })),
      },
      { requiredKeys: [] },
    )
    .map((o): Sent => ({ kind: 'text', text: JSON.stringify(o) })),
  fc.uint8Array({ maxLength: 300 }).map((bytes): Sent => ({ kind: 'binary', bytes })),
);

const ANSWERS = new Set(['error', 'subscribed', 'unsubscribed', 'pong']);

void t.test(
  'any sequence of client frames gets one clear answer each, or a documented close',
  async (t) => {
    const { server, port } = await startServer(t);
    let errors = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(READ_KEY, ADMIN_KEY),
        fc.array(frameArb, { minLength: 1, maxLength: 12 }),
        async (key, sent) => {
          const c = await Conn.open(port, key);
          try {
            for (const s of sent) {
              if (c.closed !== undefined) break;
              const before = c.frames.length;
              if (s.kind === 'text') c.ws.send(s.text);
              else c.ws.send(s.bytes, { binary: true });
              // One answer per frame: never a silent drop (no snapshots: nothing is published).
              await until(
                'an answer or a close',
                () => c.frames.length > before || c.closed !== undefined,
                5000,
                1,
              );
              if (c.closed !== undefined) break;
              const f = c.frames[before]!;
              if (!ANSWERS.has(String(f['type']))) return false;
              if (f['type'] === 'error') {
                errors++;
                if (!(WS_ERROR_CODES as readonly string[]).includes(String(f['code'])))
                  return false;
                if (typeof f['message'] !== 'string' || f['message'] === '') return false;
              }
            }
            if (c.closed !== undefined) {
              // Documented closes only: too many bad frames, or a per-connection limit.
              if (![CLOSE_BAD_FRAMES, CLOSE_LIMIT].includes(c.closed.code)) return false;
              const last = c.frames.at(-1);
              if (last?.['type'] !== 'error') return false;
            }
            return true;
          } finally {
            c.ws.terminate();
          }
        },
      ),
      { numRuns: 150 },
    );
    t.ok(errors > 0, `${errors} error frames checked`);
    await until('every fuzz client gone', () => server.stats().clients === 0, 5000);
    t.equal(server.stats().clients, 0, 'no client state left behind');
  },
);

void t.test('oversized frames close the connection; the server keeps serving', async (t) => {
  const { server, port } = await startServer(t);
  const c = await Conn.open(port, READ_KEY);
  c.ws.send('x'.repeat(MAX_PAYLOAD + 1));
  await until('closed', () => c.closed !== undefined, 5000);
  t.equal(c.closed?.code, 1006, 'uWS drops it (documented: 1006 for a frame over the limit)');
  await until('counted', () => server.stats().oversizeDisconnects === 1, 5000);
  const d = await Conn.open(port, READ_KEY);
  d.ws.send('{"op":"ping"}');
  await until('pong', () => d.frames.some((f) => f['type'] === 'pong'), 5000);
  t.pass('a new client is served');
  d.ws.close();
});

void t.test('memory stays bounded under a stream of bad and big frames', async (t) => {
  const { server, port } = await startServer(t);
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const heap = (): number => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };
  const base = heap();
  // 40 rounds × 100 frames of ~2 KiB: ~8 MB through the server.
  const big = JSON.stringify({ op: 'nope', pad: 'p'.repeat(MAX_PAYLOAD - 40) });
  for (let round = 0; round < 40; round++) {
    const c = await Conn.open(port, ADMIN_KEY);
    for (let i = 0; i < 100; i++) c.ws.send(i % 2 === 0 ? big : '{"op":"ping"}');
    await until(
      'closed or answered',
      () => c.closed !== undefined || c.frames.length >= 100,
      5000,
      1,
    );
    c.ws.terminate();
  }
  await until('clients gone', () => server.stats().clients === 0, 5000);
  const grown = heap() - base;
  t.ok(
    grown < 4 * 1024 * 1024,
    `heap grew ${Math.round(grown / 1024)} KiB (< 4 MiB for ~8 MB of frames)`,
  );
});

interface HttpAnswer {
  status: number;
  type: string;
  body: string;
}

function httpRequest(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<HttpAnswer> {
  return within(
    `${method} ${path}`,
    new Promise<HttpAnswer>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, method, path, headers, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              type: String(res.headers['content-type'] ?? ''),
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
        },
      );
      req.on('error', reject);
      req.end();
    }),
    5000,
  );
}

const pathChar = fc.constantFrom(...'abcz09/-_.~%?=&*+;:@!$'.split(''));
void t.test('arbitrary HTTP requests: a documented status and a JSON error body', async (t) => {
  const { port } = await startServer(t);
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        { arbitrary: fc.constant('GET'), weight: 4 },
        fc.constantFrom('POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
      ),
      fc.oneof(
        fc.constantFrom('/audit', '/health/live', '/ws', '/', '/metrics', '/audit?key=x'),
        fc.array(pathChar, { maxLength: 60 }).map((cs) => `/${cs.join('')}`),
      ),
      fc.oneof(
        fc.constant(undefined),
        fc.constantFrom(`Bearer ${ADMIN_KEY}`, `Bearer ${READ_KEY}`, 'Bearer', 'Basic x'),
        fc.string({ unit: fc.constantFrom(...'ab Bearer\t01-_'.split('')), maxLength: 80 }),
      ),
      async (method, path, authorization) => {
        const headers: Record<string, string> = {};
        if (authorization !== undefined) headers['authorization'] = authorization;
        const r = await httpRequest(port, method, path, headers);
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (![200, 401, 403, 404, 405, 426].includes(r.status)) return false;
        if (r.status === 200) return true;
        if (!r.type.startsWith('application/json')) return false;
        const body = JSON.parse(r.body) as { error?: { code?: unknown; message?: unknown } };
        if (typeof body.error?.code !== 'string' || typeof body.error.message !== 'string') {
          return false;
        }
        // The route guard never echoes what was presented as a key.
        return !(
          authorization !== undefined &&
          authorization.length > 12 &&
          r.body.includes(authorization)
        );
      },
    ),
    { numRuns: 300 },
  );
  t.ok(statuses.size >= 3, `statuses seen: ${JSON.stringify([...statuses])}`);
  const live = await httpRequest(port, 'GET', '/health/live', {});
  t.equal(live.status, 200, 'still serving');
});

/** Write `text` on a raw TCP connection; resolve with what came back and how long until the server closed it. */
function rawExchange(port: number, text: string): Promise<{ ms: number; got: string }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let got = '';
    const s = tcpConnect(port, '127.0.0.1', () => s.write(text));
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => resolve({ ms: Date.now() - t0, got }));
  });
}

void t.test('header floods and slow handshakes are bounded (uWS)', async (t) => {
  const { port } = await startServer(t);
  let manyHeaders = 'GET /ws HTTP/1.1\r\nHost: x\r\n';
  for (let i = 0; i < 500; i++) manyHeaders += `X-Flood-${i}: ${'v'.repeat(20)}\r\n`;
  manyHeaders += '\r\n';
  const [huge, many, slow] = await within(
    'every abusive connection closed by the server',
    Promise.all([
      rawExchange(port, `GET /audit HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(1 << 20)}\r\n\r\n`),
      rawExchange(port, manyHeaders),
      // A handshake that never finishes.
      rawExchange(port, 'GET /ws HTTP/1.1\r\nHost: x\r\n'),
    ]),
    30_000,
  );
  t.notOk(huge.got.startsWith('HTTP/1.1 200'), 'a 1 MiB header block is not served');
  t.ok(huge.ms < 5000, `a 1 MiB header block: connection dropped after ${huge.ms} ms`);
  t.notOk(many.got.startsWith('HTTP/1.1 101'), '500 headers: no upgrade');
  t.ok(many.ms < 20_000, `500 headers: closed after ${many.ms} ms`);
  t.equal(slow.got, '', 'an unfinished handshake gets nothing');
  t.ok(slow.ms < 20_000, `an unfinished handshake: closed after ${slow.ms} ms (uWS idle timeout)`);
  const live = await httpRequest(port, 'GET', '/health/live', {});
  t.equal(live.status, 200, 'the server still serves');
});
