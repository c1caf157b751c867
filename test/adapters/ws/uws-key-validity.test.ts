/**
 * The server side of live keys (unit, no Redis): a change of the key table
 * closes the sockets of keys that stopped working (4001 revoked, 4002
 * expired) while the others stay, and the per-key connection count follows
 * opens and closes.
 */
import { pino } from 'pino';
import t from 'tap';
import WebSocket from 'ws';
import { keyDigest, parseApiKeys, type ApiKeyRecord } from '../../../adapters/ws/api-keys.js';
import {
  CLOSE_KEY_EXPIRED,
  CLOSE_KEY_REVOKED,
  CLOSE_LIMIT,
  UwsServer,
} from '../../../adapters/ws/uws-server.js';
import { until, within } from '../../helpers/wait.js';

const CONFIG_KEY = 'config-read-key-9';
const A = 'qk_stored_key_a_000000001';
const B = 'qk_stored_key_b_000000001';

function record(key: string, extra: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  const digest = keyDigest(key);
  return {
    id: digest.slice(0, 12),
    digest,
    role: 'viewer',
    patterns: ['*'],
    label: '',
    created: 1,
    ...extra,
  };
}

class Conn {
  closed: { code: number; reason: string; at: number } | undefined;
  readonly frames: Array<Record<string, unknown>> = [];
  constructor(readonly ws: WebSocket) {
    ws.on('message', (raw: Buffer) =>
      this.frames.push(JSON.parse(raw.toString('utf8')) as Record<string, unknown>),
    );
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString('utf8'), at: Date.now() };
    });
  }
  static async open(port: number, key: string): Promise<Conn> {
    const c = new Conn(new WebSocket(`ws://127.0.0.1:${port}/ws?key=${key}`));
    await within(
      'open',
      new Promise<void>((resolve, reject) => {
        c.ws.once('open', () => resolve());
        c.ws.once('error', reject);
      }),
      5000,
    );
    return c;
  }
}

void t.test('revocation and expiry close exactly the affected sockets', async (t) => {
  const table = parseApiKeys(`${CONFIG_KEY}:read`);
  const expires = Date.now() + 1500;
  table.setStored([record(A), record(B, { expires })]);
  const server = new UwsServer({
    port: 0,
    host: '127.0.0.1',
    apiKeys: table,
    log: pino({ level: 'silent' }),
  });
  const port = await server.start();
  t.teardown(() => server.close());
  const a = await Conn.open(port, A);
  const b = await Conn.open(port, B);
  const c = await Conn.open(port, CONFIG_KEY);
  table.setStored([record(A, { revokedAt: Date.now() }), record(B, { expires })]);
  await until('a closed', () => a.closed !== undefined, 2000, 5);
  t.same([a.closed?.code, a.closed?.reason], [CLOSE_KEY_REVOKED, 'key revoked']);
  t.equal(b.closed, undefined, 'b (not revoked) stays');
  await until('b expired', () => b.closed !== undefined, 5000, 5);
  t.same([b.closed?.code, b.closed?.reason], [CLOSE_KEY_EXPIRED, 'key expired']);
  t.ok(b.closed!.at - expires < 600, `closed ${b.closed!.at - expires} ms after its expiry`);
  t.equal(c.closed, undefined, 'the configured key stays');
  t.equal(server.stats().keyDisconnects, 2);
  c.ws.close();
});

void t.test('the per-key connection count follows opens and closes', async (t) => {
  const server = new UwsServer({
    port: 0,
    host: '127.0.0.1',
    apiKeys: parseApiKeys(`${CONFIG_KEY}:read`),
    log: pino({ level: 'silent' }),
    maxConnectionsPerKey: 1,
  });
  const port = await server.start();
  t.teardown(() => server.close());
  for (let i = 0; i < 3; i++) {
    const first = await Conn.open(port, CONFIG_KEY);
    const second = await Conn.open(port, CONFIG_KEY);
    await until('second closed', () => second.closed !== undefined, 2000, 5);
    t.equal(second.closed?.code, CLOSE_LIMIT, `round ${i}: the second is over the limit`);
    t.same(
      second.frames.map((f) => f['code']),
      ['too_many_connections'],
    );
    t.equal(first.closed, undefined, `round ${i}: the first stays`);
    first.ws.close();
    await until(
      'first closed',
      () => first.closed !== undefined && server.stats().clients === 0,
      2000,
      5,
    );
  }
  t.equal(server.stats().limitDisconnects, 3);
});
