/**
 * `qilin services nats-user add` on a running nats-server: the seed is
 * written, nats.conf regenerated and the server reloaded (SIGHUP), so the new
 * user connects and gets its role's permissions without a restart. Only
 * NATS runs here (the manager's nats spec, on free ports of its own).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { connectNats, drainNats } from '../../adapters/nats/nats-connection.js';
import { createLogger } from '../../kernel/logger.js';
import { freeServicePorts } from '../../ops/test-services.js';
import {
  addNatsUser,
  natsAuthDir,
  reloadNats,
  type ServicesOptions,
} from '../../ops/services/service-manager.js';
import { connectAs, type ServiceUrls } from '../helpers/services.js';
import { until } from '../helpers/wait.js';

const log = createLogger('nats-user-test', process.env['QILIN_LOG_LEVEL'] ?? 'warn');

void t.test('nats-user add reloads a running server', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'qilin-nats-user-'));
  const ports = await freeServicePorts();
  const opts: ServicesOptions = { root, ports, log, install: false };
  // Write nats.conf (default roles) with no server running: nothing to reload.
  t.same(await reloadNats(opts), { changed: true, reloaded: false });
  const conf = join(root, 'conf', 'nats', 'nats.conf');
  const server = spawn('/usr/sbin/nats-server', ['-c', conf], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => server.once('exit', () => r()));
  t.teardown(async () => {
    server.kill('SIGTERM');
    await exited;
    await rm(root, { recursive: true, force: true });
  });
  const urls: ServiceUrls = {
    natsUrl: `nats://127.0.0.1:${ports.nats}`,
    redisUrl: '',
    clickhouseUrl: '',
    natsAuthDir: natsAuthDir(root),
  };
  await until(
    'nats-server answers (pid file written)',
    async () => {
      if (server.exitCode !== null) throw new Error(`nats-server exited ${server.exitCode}`);
      const pid = await readFile(join(root, 'run', 'nats.pid'), 'utf8').catch(() => '');
      if (pid.trim() !== String(server.pid)) return false;
      return connectAs('admin', { reconnect: false, timeout: 500 }, urls).then(
        (nc) => nc.close().then(() => true),
        () => false,
      );
    },
    15_000,
    50,
  );
  await t.rejects(
    connectAs('executor-acme', { reconnect: false, timeout: 2000 }, urls),
    /ENOENT/,
    'no seed for executor-acme yet',
  );

  const added = await addNatsUser(opts, 'executor-acme');
  t.same(added, {
    seedFile: join(natsAuthDir(root), 'executor-acme.nk'),
    created: true,
    reloaded: true,
  });
  t.match(await readFile(conf, 'utf8'), /# executor-acme\n.*"fill\.acme"/s);
  t.notMatch(await readFile(conf, 'utf8'), /"SU[A-Z2-7]+"/, 'no seed in nats.conf');

  // The reload takes effect without a restart: same pid, the new user gets in.
  let nc: NatsConnection | undefined;
  await until(
    'executor-acme accepted after the reload',
    async () => {
      nc = await connectAs('executor-acme', { reconnect: false, timeout: 1000 }, urls).catch(
        () => undefined,
      );
      return nc !== undefined;
    },
    10_000,
    50,
  );
  const executor = nc!;
  t.teardown(() => drainNats(executor));
  t.equal(server.exitCode, null, 'the server was not restarted');
  const admin = await connectAs('admin', {}, urls);
  t.teardown(() => drainNats(admin));
  let acme = 0;
  let demo = 0;
  admin.subscribe('fill.acme', { callback: () => void acme++ });
  admin.subscribe('fill.demo', { callback: () => void demo++ });
  await admin.flush();
  executor.publish('fill.demo', '{}');
  executor.publish('fill.acme', '{}');
  await executor.flush();
  await until('fill.acme delivered', () => acme === 1, 5000);
  await admin.flush();
  t.equal(acme, 1, 'its own account');
  t.equal(demo, 0, 'not another account');

  // Rotation: replace a seed, reload. The server drops the old user's
  // connection; connectNats reads the seed file again and reconnects.
  const opSeed = join(natsAuthDir(root), 'operator.nk');
  const oldSeed = await readFile(opSeed, 'utf8');
  let reconnects = 0;
  const op = await connectNats({
    servers: urls.natsUrl,
    name: 'nats-user-rotation',
    log,
    seedFile: opSeed,
    reconnectTimeWaitMs: 100,
    onStatus: (s) => {
      if (s.type === 'reconnect') reconnects++;
    },
  });
  t.teardown(() => drainNats(op));
  await rm(opSeed);
  const rotated = await addNatsUser(opts, 'operator');
  t.same([rotated.created, rotated.reloaded], [true, true], 'new seed, server reloaded');
  t.not(await readFile(opSeed, 'utf8'), oldSeed, 'a different seed');
  await until('the operator client reconnected with the new seed', () => reconnects > 0, 15_000);
  let ctl = 0;
  admin.subscribe('ctl.rotation.test', { callback: () => void ctl++ });
  await admin.flush();
  op.publish('ctl.rotation.test', '{}');
  await op.flush();
  await until('ctl published after the rotation delivered', () => ctl === 1, 5000);
  t.equal(ctl, 1, 'the rotated operator publishes again');

  const again = await addNatsUser(opts, 'executor-acme');
  t.same(again, { seedFile: added.seedFile, created: false, reloaded: false }, 'idempotent');
  await t.rejects(addNatsUser(opts, 'executor-a.b'), { code: 'QLN_INVALID_ARGUMENT' });
  await t.rejects(
    connect({ servers: urls.natsUrl, reconnect: false, timeout: 2000 }),
    /Authorization Violation/,
    'still no anonymous access',
  );
});
