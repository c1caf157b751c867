/**
 * NATS users and subject permissions (docs/security.md "NATS roles") on the
 * real test NATS, whose nats.conf `qilin services up` / ops/test-services.ts
 * generated with one nkey user per role:
 *
 * ```
 *  no credentials / unknown seed ──╳ connect
 *  executor-demo ── fill.demo ─────────────► kernel-role subscriber (counted)
 *                ── fill.other, ctl.risk.* ╳ (Permissions Violation, 0 delivered)
 *  publisher     ── md.<venue>.X ──────────► kernel-role subscriber
 *                ── sig.*, ctl.* ──────────╳
 *  operator      ── ctl.<run>.risk.kill ───► kernel-role NatsControlSource ─ reply ─► operator
 * ```
 * Subjects carry this run's id (or the body does) so parallel tests and a
 * developer's kernel neither disturb nor are disturbed by these messages.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createUser } from '@nats-io/nkeys';
import {
  connect,
  nkeyAuthenticator,
  type NatsConnection,
  type PermissionViolationError,
} from '@nats-io/transport-node';
import t from 'tap';
import { connectNats, drainNats } from '../../adapters/nats/nats-connection.js';
import { NatsControlSource } from '../../adapters/nats/nats-control-source.js';
import { createLogger } from '../../kernel/logger.js';
import { SIGNAL_STREAM } from '../../ops/services/nats-auth.js';
import { connectAs, ensureServices, natsSeedFile } from '../helpers/services.js';
import { until } from '../helpers/wait.js';

const log = createLogger('nats-auth-test', process.env['QILIN_LOG_LEVEL'] ?? 'warn');
const run = randomBytes(4).toString('hex');
const N = 20;

/** Permission errors the server reported to a client, by subject. */
function permissionErrors(nc: NatsConnection): Map<string, number> {
  const seen = new Map<string, number>();
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type !== 'error' || s.error.name !== 'PermissionViolationError') continue;
      const e = s.error as PermissionViolationError;
      seen.set(e.subject, (seen.get(e.subject) ?? 0) + 1);
    }
  })();
  return seen;
}

/** Count messages on `subject` whose body carries this run's id. */
function counter(nc: NatsConnection, subject: string): { n: number } {
  const c = { n: 0 };
  nc.subscribe(subject, {
    callback: (err, m) => {
      if (err === null && m.string().includes(run)) c.n++;
    },
  });
  return c;
}

void t.test('the test NATS requires credentials', async (t) => {
  const urls = await ensureServices();
  t.ok(urls.natsAuthDir, 'the test services carry a NATS auth dir (QILIN_NATS_AUTH_DIR)');

  await t.rejects(
    connect({ servers: urls.natsUrl, reconnect: false, timeout: 3000 }),
    /Authorization Violation/,
    'a client without credentials is refused',
  );
  const stranger = createUser().getSeed();
  await t.rejects(
    connect({
      servers: urls.natsUrl,
      reconnect: false,
      timeout: 3000,
      authenticator: nkeyAuthenticator(stranger),
    }),
    /Authorization Violation/,
    'a valid seed the server does not know is refused',
  );
  // The same through connectNats: a catalogue code, naming the seed file, not the seed.
  const dir = mkdtempSync(join(tmpdir(), 'qilin-nats-auth-'));
  const file = join(dir, 'stranger.nk');
  await writeFile(file, stranger, { mode: 0o600 });
  const err = await connectNats({
    servers: urls.natsUrl,
    name: 'nats-auth-stranger',
    log,
    seedFile: file,
    timeoutMs: 3000,
  }).then(
    () => undefined,
    (e: unknown) => e as { code: string; message: string },
  );
  t.equal(err?.code, 'QLN_BUS_UNAVAILABLE');
  t.match(err?.message, /Authorization Violation/);
  t.match(err?.message, file);
  t.notMatch(err?.message, new TextDecoder().decode(stranger));
});

void t.test('executor-demo publishes only fill.demo', async (t) => {
  const kernel = await connectAs('kernel', { name: 'nats-auth-kernel' });
  const executor = await connectAs('executor-demo', { name: 'nats-auth-executor' });
  t.teardown(async () => {
    await drainNats(executor);
    await drainNats(kernel);
  });
  const demo = counter(kernel, 'fill.demo');
  const other = counter(kernel, `fill.other${run}`);
  const kill = counter(kernel, 'ctl.risk.kill');
  await kernel.flush();
  const denied = permissionErrors(executor);

  const body = JSON.stringify({ signalId: run, sym: 'X', side: 'buy', qty: 1, px: 1, ts: 1 });
  for (let i = 0; i < N; i++) {
    executor.publish(`fill.other${run}`, body);
    executor.publish('ctl.risk.kill', JSON.stringify({ by: run, reason: 'not allowed' }));
  }
  for (let i = 0; i < N; i++) executor.publish('fill.demo', body);
  await executor.flush();
  // Same connection, same order: the permitted ones arrive after any refused one would have.
  await until('every fill.demo delivered', () => demo.n === N, 10_000);
  await until(
    'a permission error for every refused publish',
    () => denied.get(`fill.other${run}`) === N && denied.get('ctl.risk.kill') === N,
    10_000,
  );
  await kernel.flush();
  t.equal(demo.n, N, `${N} of ${N} fill.demo delivered`);
  t.equal(other.n, 0, `0 of ${N} fill.other delivered`);
  t.equal(kill.n, 0, `0 of ${N} ctl.risk.kill delivered`);
  t.equal(denied.get(`fill.other${run}`), N, 'the executor saw N permission errors on fill.other');
  t.equal(denied.get('ctl.risk.kill'), N, 'the executor saw N permission errors on ctl.risk.kill');
  t.equal(denied.get('fill.demo'), undefined, 'no error on its own account');
  t.equal(executor.isClosed(), false, 'a refused publish does not cost the connection');
});

void t.test('executor-demo consumes the signal stream but cannot administer it', async (t) => {
  const admin = await connectAs('admin', { name: 'nats-auth-admin' });
  const kernel = await connectAs('kernel', { name: 'nats-auth-kernel-js' });
  const executor = await connectAs('executor-demo', { name: 'nats-auth-executor-js' });
  t.teardown(async () => {
    await drainNats(executor);
    await drainNats(kernel);
    await drainNats(admin);
  });
  // The stream the kernel creates (NatsSignalSink.ensureStream), used as found.
  const jsm = await jetstreamManager(admin);
  await jsm.streams
    .info(SIGNAL_STREAM)
    .catch(() => jsm.streams.add({ name: SIGNAL_STREAM, subjects: ['sig.>'] }));
  const subject = `sig.auth${run}.X`;
  const durable = `auth-${run}`;
  t.teardown(() => jsm.consumers.delete(SIGNAL_STREAM, durable).catch(() => false));

  const xjsm = await jetstreamManager(executor);
  await xjsm.consumers.add(SIGNAL_STREAM, {
    durable_name: durable,
    filter_subject: subject,
    deliver_policy: DeliverPolicy.New,
    ack_policy: AckPolicy.Explicit,
  });
  await jetstream(kernel).publish(subject, JSON.stringify({ id: run }), { msgID: `auth-${run}` });
  const consumer = await jetstream(executor).consumers.get(SIGNAL_STREAM, durable);
  const m = await consumer.next({ expires: 5000 });
  t.equal(m?.json<{ id: string }>().id, run, 'the executor reads the signal (create, next)');
  t.equal(await m?.ackAck(), true, 'and acks it');
  t.equal((await consumer.info()).num_ack_pending, 0, 'nothing left pending (consumer info)');

  await t.rejects(
    xjsm.streams.delete(`NOPE${run}`),
    /Permissions Violation/,
    'stream admin is refused (not "stream not found")',
  );
  await t.rejects(
    xjsm.streams.add({ name: `AUTH${run}`, subjects: [`auth${run}.>`] }),
    /Permissions Violation/,
    'stream create is refused',
  );
});

void t.test('publisher publishes only md.>', async (t) => {
  const kernel = await connectAs('kernel', { name: 'nats-auth-kernel-md' });
  const admin = await connectAs('admin', { name: 'nats-auth-admin-sig' });
  const publisher = await connectAs('publisher', { name: 'nats-auth-publisher' });
  t.teardown(async () => {
    await drainNats(publisher);
    await drainNats(admin);
    await drainNats(kernel);
  });
  const venue = `auth${run}`;
  const md = counter(kernel, `md.${venue}.>`);
  const sig = counter(admin, 'sig.x');
  const ctl = counter(kernel, `ctl.${venue}.>`);
  await kernel.flush();
  await admin.flush();
  const denied = permissionErrors(publisher);
  for (let i = 0; i < N; i++) {
    publisher.publish('sig.x', run);
    publisher.publish(`ctl.${venue}.risk.kill`, run);
  }
  for (let i = 0; i < N; i++) publisher.publish(`md.${venue}.X`, run);
  await publisher.flush();
  await until('every md message delivered', () => md.n === N, 10_000);
  await until(
    'a permission error for every refused publish',
    () => denied.get('sig.x') === N && denied.get(`ctl.${venue}.risk.kill`) === N,
    10_000,
  );
  await kernel.flush();
  await admin.flush();
  t.equal(md.n, N, `${N} of ${N} md messages delivered`);
  t.equal(sig.n, 0, 'no sig.x delivered');
  t.equal(ctl.n, 0, 'no ctl delivered');
  t.equal(denied.get('sig.x'), N);
  t.equal(denied.get(`ctl.${venue}.risk.kill`), N);
});

void t.test('operator can kill (request/reply with a kernel-role responder)', async (t) => {
  const kernel = await connectAs('kernel', { name: 'nats-auth-kernel-ctl' });
  const operatorSeed = await natsSeedFile('operator');
  const operator = await connectNats({
    servers: (await ensureServices()).natsUrl,
    name: 'nats-auth-operator',
    log,
    seedFile: operatorSeed,
  });
  t.teardown(async () => {
    await drainNats(operator);
    await drainNats(kernel);
  });
  const controls: string[] = [];
  let fills = 0;
  const source = new NatsControlSource({
    nc: kernel,
    log,
    fillSubject: `fill.auth${run}`,
    killSubject: `ctl.auth${run}.risk.kill`,
    resumeSubject: `ctl.auth${run}.risk.resume`,
  });
  await source.start({
    onFill: () => void fills++,
    onRiskControl: (op, msg) => {
      controls.push(op);
      return { killed: op === 'kill', by: msg.by, reason: msg.reason, at: 1 };
    },
    onBadControl: () => undefined,
  });
  await kernel.flush();
  const reply = await operator.request(
    `ctl.auth${run}.risk.kill`,
    JSON.stringify({ by: 'op', reason: 'drill' }),
    { timeout: 5000 },
  );
  t.same(reply.json(), { killed: true, by: 'op', reason: 'drill', at: 1 }, 'the kernel replied');
  t.same(controls, ['kill']);

  const denied = permissionErrors(operator);
  operator.publish(`fill.auth${run}`, '{}');
  await operator.flush();
  await until('the refused fill reported', () => denied.get(`fill.auth${run}`) === 1, 10_000);
  await kernel.flush();
  t.equal(fills, 0, 'an operator cannot publish fills');
});
