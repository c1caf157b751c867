import { request } from 'node:http';
import { pino } from 'pino';
import t from 'tap';
import { OpsHttpServer } from '../../../adapters/http/ops-http-server.js';
import { freePort } from '../../helpers/test-kernel.js';

const log = pino({ level: 'silent' });

/** One raw request: status, headers, body. */
function get(
  port: number,
  path: string,
  opts: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

void t.test(
  'serves its routes, 404 for others, 405 for non-GET, 500 for a failing route',
  async (t) => {
    let seenAuth = '';
    const server = new OpsHttpServer({
      port: 0,
      log,
      routes: {
        '/metrics': () => ({ status: 200, contentType: 'text/plain', body: 'qilin_up 1\n' }),
        '/health/ready': (req) => {
          seenAuth = req.authorization;
          return Promise.resolve({
            status: 503,
            contentType: 'application/json',
            body: '{"ready":false}',
          });
        },
        '/boom': () => {
          throw new Error('broken');
        },
      },
    });
    const port = await server.start();
    t.teardown(() => server.close());
    t.ok(port > 0, 'bound an ephemeral port');

    const m = await get(port, '/metrics');
    t.equal(m.status, 200);
    t.equal(m.type, 'text/plain');
    t.equal(m.body, 'qilin_up 1\n');

    const r = await get(port, '/health/ready?x=1', { headers: { authorization: 'Bearer k' } });
    t.equal(r.status, 503, 'the route status passes through');
    t.equal(r.body, '{"ready":false}');
    t.equal(seenAuth, 'Bearer k', 'the route sees the Authorization header');

    const nf = await get(port, '/ws');
    t.equal(nf.status, 404);
    t.match(JSON.parse(nf.body), { error: { code: 'not_found' } });

    const post = await get(port, '/metrics', { method: 'POST' });
    t.equal(post.status, 405);
    t.match(JSON.parse(post.body), { error: { code: 'method_not_allowed' } });

    const boom = await get(port, '/boom');
    t.equal(boom.status, 500);
    t.match(JSON.parse(boom.body), { error: { code: 'internal' } });
    t.notMatch(boom.body, /broken/, 'no internal error text leaks');

    const big = await get(port, '/metrics', { headers: { 'x-flood': 'a'.repeat(16 * 1024) } });
    t.equal(big.status, 431, 'a header flood is refused, not buffered');
  },
);

void t.test('a port already taken is a clear error, not a silent share', async (t) => {
  const port = await freePort();
  const a = new OpsHttpServer({ port, log, routes: {} });
  t.equal(await a.start(), port);
  t.teardown(() => a.close());
  const b = new OpsHttpServer({ port, log, routes: {} });
  await t.rejects(b.start(), { code: 'QLN_SERVICE_PORT_IN_USE', message: /operations port/ });
  await b.close();
});

void t.test('bad options are refused', (t) => {
  t.throws(() => new OpsHttpServer({ port: 70000, log, routes: {} }), {
    code: 'QLN_INVALID_ARGUMENT',
  });
  t.throws(() => new OpsHttpServer({ port: 1.5, log, routes: {} }), {
    code: 'QLN_INVALID_ARGUMENT',
  });
  t.end();
});
