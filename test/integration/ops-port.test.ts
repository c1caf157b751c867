/**
 * The operations port (config opsPort): a running kernel serves /metrics and
 * /health/* there and no longer on its public HTTP/WebSocket port, which
 * keeps /ws, the dashboard and the admin routes.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import t from 'tap';
import WebSocket from 'ws';
import { KernelApp } from '../../cli/kernel-app.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { ensureServices } from '../helpers/services.js';
import { testKernelConfig } from '../helpers/test-kernel.js';

void t.test('metrics and health move to the operations port', async (t) => {
  const urls = await ensureServices();
  const db = `qilin_test_ops_${randomBytes(4).toString('hex')}`;
  const key = randomBytes(12).toString('hex');
  const config = await testKernelConfig(urls, db, key, { opsPort: 0 });
  const app = new KernelApp({ config, log: pino({ level: 'silent' }) });
  t.teardown(async () => {
    await app.close();
    await dropDatabase(urls.clickhouseUrl, db);
  });
  await app.start();
  const ops = app.opsPort;
  if (ops === undefined) throw new Error('the kernel bound no operations port');
  t.not(ops, app.port, 'a port of its own');

  const onOps = async (path: string): Promise<Response> => fetch(`http://127.0.0.1:${ops}${path}`);
  const onPublic = async (path: string): Promise<Response> =>
    fetch(`http://127.0.0.1:${app.port}${path}`);

  const metrics = await onOps('/metrics');
  t.equal(metrics.status, 200);
  t.match(
    await metrics.text(),
    /^qilin_worker_restarts_total /m,
    'the kernel registry, not an empty one',
  );
  t.equal((await onOps('/health/live')).status, 200);
  t.equal((await onOps('/health/startup')).status, 200);
  t.ok([200, 503].includes((await onOps('/health/ready')).status), 'ready answers');

  for (const path of ['/metrics', '/health/live', '/health/ready', '/health/startup']) {
    t.equal((await onPublic(path)).status, 404, `${path} is gone from the public port`);
  }
  t.equal((await onOps('/audit')).status, 404, 'admin routes stay on the public port');
  t.equal((await onPublic('/audit')).status, 401, '/audit still answers there (admin key needed)');

  const ws = new WebSocket(`ws://127.0.0.1:${app.port}/ws`, {
    headers: { Authorization: `Bearer ${key}` },
  });
  const reply = await new Promise<unknown>((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () => ws.send(JSON.stringify({ op: 'ping' })));
    ws.once('message', (data: Buffer) => resolve(JSON.parse(data.toString('utf8'))));
  });
  ws.close();
  t.same(reply, { type: 'pong' }, '/ws still on the public port');
});
