import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import { jetstreamManager } from '@nats-io/jetstream';
import { Redis } from 'ioredis';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';
import { createLogger } from '../../kernel/logger.js';
import { findPortOwners } from '../../ops/services/port-owner.js';
import { freeServicePorts, testServices } from '../../ops/test-services.js';
import { connectAs } from '../helpers/services.js';
import {
  exportLines,
  natsAuthDir,
  servicesDown,
  servicesStatus,
  servicesUp,
  type ServicePorts,
  type ServicesOptions,
  type ServiceStatus,
} from '../../ops/services/service-manager.js';

const log = createLogger('services-test', process.env['QILIN_LOG_LEVEL'] ?? 'warn');

const byName = (list: ServiceStatus[]) => Object.fromEntries(list.map((s) => [s.name, s]));

void t.test('exportLines prints eval-able URLs', (t) => {
  const lines = exportLines({
    nats: 1,
    natsMonitor: 2,
    redis: 3,
    clickhouseHttp: 4,
    clickhouseTcp: 5,
  }).split('\n');
  t.same(lines, [
    'export QILIN_NATS_URL=nats://127.0.0.1:1',
    'export QILIN_REDIS_URL=redis://127.0.0.1:3',
    'export QILIN_CLICKHOUSE_URL=http://127.0.0.1:4',
  ]);
  const ports = { nats: 1, natsMonitor: 2, redis: 3, clickhouseHttp: 4, clickhouseTcp: 5 };
  t.equal(
    exportLines(ports, '/srv/qilin/.qilin/nats-auth').split('\n')[3],
    'export QILIN_NATS_AUTH_DIR=/srv/qilin/.qilin/nats-auth',
  );
  t.equal(
    exportLines(ports, "/tmp/a b's").split('\n')[3],
    `export QILIN_NATS_AUTH_DIR='/tmp/a b'\\''s'`,
    'quoted for the shell',
  );
  t.end();
});

void t.test('services up, answer, idempotent, down', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'qilin-services-'));
  const ports = await freeServicePorts();
  const opts: ServicesOptions = { root, ports, log, install: false, startTimeoutMs: 60_000 };
  t.teardown(async () => {
    await servicesDown(opts);
    await rm(root, { recursive: true, force: true });
  });

  // a stale pid file (a process that has exited) is cleaned up, not trusted
  const dead = spawnSync('true').pid;
  await mkdir(join(root, 'run'), { recursive: true });
  await writeFile(join(root, 'run', 'redis.pid'), `${dead}\n`);

  const before = byName(await servicesStatus(opts));
  t.equal(before['redis']?.state, 'stopped');
  t.match(before['redis']?.detail, /stale pid file/);

  const up = byName(await servicesUp(opts));
  for (const name of ['nats', 'redis', 'clickhouse']) {
    t.equal(up[name]?.state, 'running', `${name} running`);
    t.type(up[name]?.pid, 'number', `${name} has a pid`);
    t.not(up[name]?.pid, dead);
  }
  t.equal(up['nats']?.url, `nats://127.0.0.1:${ports.nats}`);
  t.equal(up['redis']?.url, `redis://127.0.0.1:${ports.redis}`);
  t.equal(up['clickhouse']?.url, `http://127.0.0.1:${ports.clickhouseHttp}`);
  t.equal(
    Number((await readFile(join(root, 'run', 'redis.pid'), 'utf8')).trim()),
    up['redis']?.pid,
    'pid file rewritten',
  );

  await t.test('NATS round trip with JetStream', async (t) => {
    const urls = { natsUrl: up['nats']!.url, redisUrl: '', clickhouseUrl: '' };
    const nc = await connectAs('admin', {}, { ...urls, natsAuthDir: natsAuthDir(root) });
    try {
      const sub = nc.subscribe('qilin.test.ping', { max: 1 });
      const got = (async () => {
        for await (const m of sub) return m.string();
        return undefined;
      })();
      nc.publish('qilin.test.ping', 'hello');
      t.equal(await got, 'hello');
      const jsm = await jetstreamManager(nc);
      const info = await jsm.getAccountInfo();
      t.type(info.streams, 'number', 'JetStream account info');
    } finally {
      await nc.close();
    }
  });

  await t.test('Redis PING', async (t) => {
    const redis = new Redis(up['redis']!.url, { maxRetriesPerRequest: 1 });
    try {
      t.equal(await redis.ping(), 'PONG');
    } finally {
      redis.disconnect();
    }
  });

  await t.test('ClickHouse SELECT 1', async (t) => {
    const ch = createClient({ url: up['clickhouse']!.url });
    try {
      const rs = await ch.query({ query: 'SELECT 1 AS one', format: 'JSONEachRow' });
      t.same(await rs.json(), [{ one: 1 }]);
    } finally {
      await ch.close();
    }
  });

  await t.test('second up changes nothing', async (t) => {
    const again = byName(await servicesUp(opts));
    for (const name of ['nats', 'redis', 'clickhouse']) {
      t.equal(again[name]?.pid, up[name]?.pid, `${name} same pid`);
      t.equal(again[name]?.state, 'running');
    }
    const status = byName(await servicesStatus(opts));
    for (const name of ['nats', 'redis', 'clickhouse']) {
      t.equal(status[name]?.state, 'running');
      t.equal(status[name]?.detail, 'answers');
    }
  });

  await t.test('a second root on the same ports sees them as foreign', async (t) => {
    const other = await mkdtemp(join(tmpdir(), 'qilin-services-other-'));
    t.teardown(() => rm(other, { recursive: true, force: true }));
    const status = byName(await servicesStatus({ ...opts, root: other }));
    t.equal(status['redis']?.state, 'foreign');
    t.equal(status['redis']?.pid, up['redis']?.pid);
    await t.rejects(servicesUp({ ...opts, root: other }), {
      code: ErrorCodes.SERVICE_PORT_IN_USE,
      message: new RegExp(`port ${ports.nats} \\(nats\\) is in use by pid ${up['nats']?.pid}`),
    });
  });

  await t.test('npm test beside this stack: its own test stack on free ports', async (t) => {
    const other = await mkdtemp(join(tmpdir(), 'qilin-services-tests-'));
    const said: string[] = [];
    const first = await testServices({ ...opts, root: other }, (l) => said.push(l));
    const stack: ServicesOptions = { ...opts, root: first.root, ports: first.ports };
    t.teardown(async () => {
      await servicesDown(stack);
      await rm(other, { recursive: true, force: true });
    });
    t.equal(first.own, true, 'a test stack of its own');
    t.equal(first.root, join(other, 'test-stack'));
    for (const k of Object.keys(ports) as Array<keyof ServicePorts>) {
      t.not(first.ports[k], ports[k], `${k}: not the taken port`);
    }
    t.match(said.join('\n'), `port ${ports.nats} held by pid ${up['nats']?.pid}`, 'says why');
    t.match(said.join('\n'), 'npx qilin services down', 'says how to stop it');
    const status = byName(await servicesStatus(stack));
    for (const name of ['nats', 'redis', 'clickhouse']) t.equal(status[name]?.state, 'running');
    const again = await testServices({ ...opts, root: other }, () => undefined);
    t.same(again.ports, first.ports, 'the next run reuses the same stack');
    // With the project ports free, the tests use this checkout's own services there.
    const own = await testServices(stack, () => undefined);
    t.equal(own.own, false);
    t.same(own.ports, first.ports);
  });

  await t.test('down stops them', async (t) => {
    const down = byName(await servicesDown(opts));
    for (const name of ['nats', 'redis', 'clickhouse']) {
      t.equal(down[name]?.state, 'stopped', `${name} stopped`);
    }
    const status = byName(await servicesStatus(opts));
    for (const name of ['nats', 'redis', 'clickhouse']) t.equal(status[name]?.state, 'stopped');
    t.equal((await findPortOwners(Object.values(ports))).size, 0, 'ports released');
    const again = byName(await servicesDown(opts));
    t.equal(again['redis']?.state, 'stopped', 'down twice is fine');
  });
});

void t.test('port held by another process → SERVICE_PORT_IN_USE, nothing started', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'qilin-services-conflict-'));
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const busy = (server.address() as AddressInfo).port;
  const ports = { ...(await freeServicePorts()), redis: busy };
  const opts: ServicesOptions = { root, ports, log, install: false };
  t.teardown(async () => {
    await servicesDown(opts);
    await new Promise((resolve) => server.close(resolve));
    await rm(root, { recursive: true, force: true });
  });

  const err = await servicesUp(opts).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof QilinError, 'a QilinError');
  t.equal((err as QilinError).code, ErrorCodes.SERVICE_PORT_IN_USE);
  t.match(
    (err as QilinError).message,
    `port ${busy} (redis) is in use by pid ${process.pid} (node)`,
  );
  t.match((err as QilinError).message, /QILIN_REDIS_PORT/);

  const status = byName(await servicesStatus(opts));
  t.equal(status['redis']?.state, 'foreign');
  t.equal(status['redis']?.pid, process.pid);
  t.equal(status['nats']?.state, 'stopped', 'nats was not started');
  t.equal(status['clickhouse']?.state, 'stopped', 'clickhouse was not started');
});

void t.test(
  'a service that does not answer in time → SERVICE_START_TIMEOUT, and is stopped',
  async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'qilin-services-timeout-'));
    const ports = await freeServicePorts();
    const opts: ServicesOptions = { root, ports, log, install: false, startTimeoutMs: 1 };
    t.teardown(async () => {
      await servicesDown(opts);
      await rm(root, { recursive: true, force: true });
    });
    await t.rejects(servicesUp(opts), {
      code: ErrorCodes.SERVICE_START_TIMEOUT,
      message: /did not answer on port \d+ within 1 ms .*last lines of .*\.log/s,
    });
    const status = byName(await servicesStatus(opts));
    t.equal(status['clickhouse']?.state, 'stopped', 'the half-started clickhouse was stopped');
    t.equal((await findPortOwners([ports.clickhouseHttp, ports.clickhouseTcp])).size, 0);
  },
);

void t.test('bad ports are rejected before anything starts', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'qilin-services-ports-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const ports = await freeServicePorts();
  await t.rejects(servicesUp({ root, log, ports: { ...ports, redis: ports.nats } }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /ports\.redis/,
  });
  await t.rejects(servicesUp({ root, log, ports: { ...ports, nats: 70000 } }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /ports\.nats: 70000/,
  });
});
