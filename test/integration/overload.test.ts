/**
 * Losing the bus is never silent. A shard worker that loses its NATS
 * connection (a slow-consumer cut by the server looks exactly like this to
 * the client: the connection closes) is counted, logged once per episode at
 * error level, and turns /health/ready degraded with the reason until it is
 * back and the hold has passed. The test kills a private nats-server and
 * starts it again on the same port.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import t from 'tap';
import { KernelApp } from '../../cli/kernel-app.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { startPrivateNats } from '../helpers/nats-server.js';
import { ensureServices } from '../helpers/services.js';
import { testKernelConfig } from '../helpers/test-kernel.js';
import { until } from '../helpers/wait.js';

const run = randomBytes(3).toString('hex');

void t.test('a lost NATS connection is counted, logged once and degrades readiness', async (t) => {
  const urls = await ensureServices();
  const nats = await startPrivateNats();
  const db = `qilin_ovl_${run}`;
  const config = await testKernelConfig({ ...urls, natsUrl: nats.url }, db, `ovl-read-${run}`);
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n'))
        if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const app = new KernelApp({
    config,
    log: pino({ level: 'info' }, sink),
    account: `ovl${run}`,
    episodeHoldMs: 1500,
  });
  t.teardown(async () => {
    await app.close();
    await nats.stop();
    await dropDatabase(urls.clickhouseUrl, db);
  });
  await app.start();
  const ready = async (): Promise<{
    status: number;
    body: { status: string; reasons: string[] };
  }> => {
    const res = await fetch(`http://127.0.0.1:${app.port}/health/ready`);
    return {
      status: res.status,
      body: (await res.json()) as { status: string; reasons: string[] },
    };
  };
  t.equal((await ready()).status, 200, 'ready before the outage');

  await nats.stop(true);
  await until('the disconnect episode is reported', () =>
    lines.some((l) => l['kind'] === 'nats_disconnect'),
  );
  const degraded = await ready();
  t.equal(degraded.status, 503, 'readiness fails while the episode lasts');
  t.equal(degraded.body.status, 'degraded');
  t.match(degraded.body.reasons.join(' | '), /shard \d lost its NATS connection/);
  await nats.restart();
  const metrics = await (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();
  const disconnects = [...metrics.matchAll(/^qilin_nats_disconnects_total\{shard="\d+"\} (\d+)/gm)]
    .map((m) => Number(m[1]))
    .reduce((a, b) => a + b, 0);
  t.ok(disconnects >= 1, `qilin_nats_disconnects_total = ${disconnects}`);
  const episodes = Number(
    /^qilin_overload_episodes_total\{kind="nats_disconnect"\} (\d+)/m.exec(metrics)?.[1],
  );
  t.equal(episodes, disconnects, 'every occurrence counted');
  const errorLines = lines.filter((l) => l['kind'] === 'nats_disconnect' && l['level'] === 50);
  const shards = new Set(errorLines.map((l) => l['key']));
  t.equal(errorLines.length, shards.size, 'one error line per shard episode, not per occurrence');

  await until(
    'readiness back after the hold',
    async () => (await ready()).status === 200,
    30_000,
    100,
  );
  t.pass('ready again once the connection is back and the hold has passed');
});
