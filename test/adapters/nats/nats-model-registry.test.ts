/**
 * The model registry in NATS JetStream (adapters/nats/nats-model-registry.ts)
 * on the real test NATS: the local registry's semantics, a damaged file
 * refused, compare-and-set under concurrent writers, two nodes sharing one
 * state, and the role permissions (operator writes, kernel reads, publisher
 * neither). Each run uses buckets of its own, except the permission test,
 * which needs the default buckets the roles are granted and uses a model
 * name of its own there.
 */
import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { drainNats } from '../../../adapters/nats/nats-connection.js';
import {
  MODEL_FILES_BUCKET,
  MODEL_STATE_BUCKET,
  kvStream,
  objectStoreStream,
} from '../../../adapters/nats/model-registry-buckets.js';
import { NatsModelRegistry } from '../../../adapters/nats/nats-model-registry.js';
import type { NatsRole } from '../../../adapters/nats/nats-credentials.js';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '../../../adapters/onnx/model-manifest.js';
import { LocalModelRegistry } from '../../../adapters/onnx/model-registry.js';
import { openModelRegistry } from '../../../adapters/onnx/open-registry.js';
import { loadConfig } from '../../../config/config.js';
import { runQilin } from '../../helpers/cli.js';
import { lrBytes, manifestFor, who } from '../../helpers/model-fixtures.js';
import { connectAs, ensureServices } from '../../helpers/services.js';
import { until } from '../../helpers/wait.js';

const run = randomBytes(4).toString('hex');
const b1 = lrBytes([1, 0, 0]);
const b2 = lrBytes([0, 1, 0]);
const b3 = lrBytes([0, 0, 1]);

const conns: NatsConnection[] = [];
async function conn(role: NatsRole = 'admin'): Promise<NatsConnection> {
  const nc = await connectAs(role, { name: `model-registry-test-${role}` });
  conns.push(nc);
  return nc;
}

/** Buckets of this run (deleted at the end). */
let seq = 0;
async function buckets(t: Test): Promise<{ filesBucket: string; stateBucket: string }> {
  seq++;
  const b = { filesBucket: `T_MODELS_${run}_${seq}`, stateBucket: `T_MODEL_STATE_${run}_${seq}` };
  const admin = await conn();
  t.teardown(async () => {
    const jsm = await jetstreamManager(admin);
    for (const s of [objectStoreStream(b.filesBucket), kvStream(b.stateBucket)]) {
      await jsm.streams.delete(s).catch(() => undefined);
    }
  });
  return b;
}

t.teardown(async () => {
  for (const nc of conns) await drainNats(nc);
});

void t.test('push, get, list, promote, shadow, rollback: the local semantics', async (t) => {
  const reg = new NatsModelRegistry(await conn(), await buckets(t));
  t.same(await reg.list(), [], 'no buckets yet: an empty registry');
  t.same((await reg.state('lr')).history, []);
  await t.rejects(reg.get('lr', '1'), {
    code: 'QLN_MODEL_INVALID',
    message: /lr@1 is not in the registry/,
  });

  t.equal(await reg.push(manifestFor(b1, '1'), b1, who), 'stored');
  t.equal(await reg.push(manifestFor(b1, '1'), b1, who), 'unchanged', 'the same bytes again');
  await t.rejects(reg.push(manifestFor(b2, '1'), b2, who), {
    code: 'QLN_MODEL_INVALID',
    message: /lr@1 is already pushed with another file/,
  });
  await t.rejects(reg.push(manifestFor(b2, '2', { sha256: sha256Hex(b3) }), b2, who), {
    message: /lr@2: the file's sha256 is/,
  });
  const got = await reg.get('lr', '1');
  t.same(Buffer.from(got.bytes), Buffer.from(b1), 'the same bytes back');
  t.equal(got.manifest.sha256, sha256Hex(b1));
  await reg.push(manifestFor(b2, '2'), b2, who);
  // A version with a dot: KV keys split on dots, the registry does not.
  const b4 = lrBytes([1, 1, 0]);
  await reg.push(manifestFor(b4, '4', { version: '3.1', createdAt: '2026-12-04' }), b4, who);
  await reg.push(manifestFor(b3, '3'), b3, who);
  await t.rejects(reg.rollback('lr', who), {
    message: /nothing to roll back to \(no version was promoted\)/,
  });

  let s = await reg.promote('lr', '1', who);
  t.equal(s.promoted, '1');
  s = await reg.promote('lr', '2', who);
  t.same([s.promoted, s.previous], ['2', ['1']]);
  t.equal((await reg.promote('lr', '2', who)).history.length, 6, 'promoting the live one: no-op');
  s = await reg.shadow('lr', '3', who);
  t.equal(s.shadow, '3');
  s = await reg.promote('lr', '3', who);
  t.same([s.promoted, s.previous, s.shadow], ['3', ['1', '2'], undefined], 'the shadow ends');
  s = await reg.rollback('lr', who);
  t.same([s.promoted, s.previous], ['2', ['1']]);
  s = await reg.shadow('lr', '3.1', who);
  s = await reg.shadow('lr', undefined, who);
  t.equal(s.shadow, undefined);
  await t.rejects(reg.promote('lr', '9', who), { message: /lr@9 is not in the registry/ });
  await t.rejects(reg.get('..', '1'), { message: /invalid model name/ });

  const list = await reg.list();
  t.equal(list.length, 1);
  t.same(
    list[0]!.versions.map((v) => v.version),
    ['1', '2', '3', '3.1'],
    'oldest first',
  );
  t.same(
    list[0]!.state.history.map((e) => `${e.op} ${e.version}`),
    [
      'push 1',
      'push 2',
      'push 3.1',
      'push 3',
      'promote 1',
      'promote 2',
      'shadow 3',
      'promote 3',
      'rollback 2',
      'shadow 3.1',
      'unshadow 3.1',
    ],
  );
  t.ok(list[0]!.state.history.every((e) => e.by === 'alice' && e.reason === 'test'));
  t.equal(reg.conflicts, 0, 'one writer: no compare-and-set conflict');
});

void t.test('a damaged file is refused, never served; pushing it again repairs it', async (t) => {
  const nc = await conn();
  const b = await buckets(t);
  const reg = new NatsModelRegistry(nc, { ...b, timeoutMs: 3000 });
  await reg.push(manifestFor(b1, '1'), b1, who);
  await reg.push(manifestFor(b2, '2'), b2, who);
  await reg.promote('lr', '1', who);
  const os = await new Objm(nc).open(b.filesBucket);

  // Other bytes written straight into the object: the Object Store's digest
  // agrees with them, the manifest's sha256 does not.
  await os.putBlob({ name: 'lr/2' }, b3);
  await t.rejects(reg.get('lr', '2'), {
    code: 'QLN_MODEL_INVALID',
    message: new RegExp(
      `lr@2: the file's sha256 is ${sha256Hex(b3)}, the manifest says ${sha256Hex(b2)}`,
    ),
  });
  await t.rejects(reg.promote('lr', '2', who), { message: /sha256/ });
  t.equal((await reg.state('lr')).promoted, '1', 'still the old live version');

  // A chunk added behind the object's back: the bytes no longer match its digest.
  const info = (await os.info('lr/1'))!;
  await jetstream(nc).publish(`$O.${b.filesBucket}.C.${info.nuid}`, new Uint8Array([1, 2, 3]));
  await t.rejects(reg.get('lr', '1'), {
    code: 'QLN_MODEL_INVALID',
    message: new RegExp(`lr@1: the stored file is damaged .*the manifest says ${sha256Hex(b1)}`),
  });

  t.equal(await reg.push(manifestFor(b2, '2'), b2, who), 'stored', 'the right bytes put back');
  t.same(Buffer.from((await reg.get('lr', '2')).bytes), Buffer.from(b2));
  t.equal(await reg.push(manifestFor(b2, '2'), b2, who), 'unchanged');
});

void t.test('concurrent writers: compare-and-set, nothing lost', async (t) => {
  const b = await buckets(t);
  const a = new NatsModelRegistry(await conn(), b);
  const c = new NatsModelRegistry(await conn(), b);
  await a.push(manifestFor(b1, '1'), b1, who);
  await a.push(manifestFor(b2, '2'), b2, who);
  await a.push(manifestFor(b3, '3'), b3, who);
  await a.promote('lr', '1', who);

  // Two operators on two nodes promote at once: both land, in some order.
  const [pa, pc] = await Promise.all([
    a.promote('lr', '2', { by: 'alice' }),
    c.promote('lr', '3', { by: 'carol' }),
  ]);
  const s = await a.state('lr');
  t.same(
    s.history
      .slice(-2)
      .map((e) => `${e.op} ${e.version} ${e.by}`)
      .sort(),
    ['promote 2 alice', 'promote 3 carol'],
    'both promotes in the history',
  );
  t.ok(['2', '3'].includes(s.promoted!), `live ${s.promoted}`);
  t.same(s.previous, ['1', s.promoted === '2' ? '3' : '2'], 'the other one is the rollback target');
  t.ok([pa.promoted, pc.promoted].includes(s.promoted), 'one of them saw the final state');

  // Eight state changes at once from two nodes: each reads the same revision
  // first, so all but one conflict and redo; every one is recorded.
  const before = a.conflicts + c.conflicts;
  await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      (i % 2 === 0 ? a : c).shadow('lr', undefined, { by: `op${i}` }),
    ),
  );
  const after = await c.state('lr');
  t.same(
    after.history
      .slice(-8)
      .map((e) => e.by)
      .sort(),
    ['op0', 'op1', 'op2', 'op3', 'op4', 'op5', 'op6', 'op7'],
    'all eight changes recorded',
  );
  t.ok(a.conflicts + c.conflicts - before >= 1, `conflicts retried: ${a.conflicts + c.conflicts}`);

  // With one attempt only, the losers fail with QLN_MODEL_REGISTRY_CONFLICT and change nothing.
  const once = new NatsModelRegistry(await conn(), { ...b, casAttempts: 1 });
  const results = await Promise.allSettled(
    Array.from({ length: 4 }, (_, i) => once.shadow('lr', undefined, { by: `once${i}` })),
  );
  const ok = results.filter((r) => r.status === 'fulfilled').length;
  const lost = results.filter(
    (r) =>
      r.status === 'rejected' &&
      (r.reason as { code?: string }).code === 'QLN_MODEL_REGISTRY_CONFLICT',
  ).length;
  t.equal(ok + lost, 4, `${ok} written, ${lost} refused with the conflict code`);
  t.ok(ok >= 1 && lost >= 1, 'one wins the race, the others lose it');
  t.equal(
    (await once.state('lr')).history.filter((e) => e.by.startsWith('once')).length,
    ok,
    'only the winners are in the history',
  );
  t.throws(() => new NatsModelRegistry(conns[0]!, { casAttempts: 0 }), {
    code: 'QLN_INVALID_ARGUMENT',
    message: /casAttempts/,
  });
  t.throws(() => new NatsModelRegistry(conns[0]!, { stateBucket: 'a.b' }), {
    message: /stateBucket/,
  });
});

void t.test('two nodes see one state', async (t) => {
  const b = await buckets(t);
  const node1 = new NatsModelRegistry(await conn(), b);
  const node2 = new NatsModelRegistry(await conn(), b);
  await node1.push(manifestFor(b1, '1'), b1, who);
  await node1.push(manifestFor(b2, '2'), b2, who);
  await node1.promote('lr', '2', who);
  const s = await node2.state('lr');
  t.same([s.promoted, s.previous], ['2', []]);
  const live = await node2.get('lr', s.promoted!);
  t.same(Buffer.from(live.bytes), Buffer.from(b2), 'node 2 loads the version node 1 promoted');
  await t.rejects(node2.rollback('lr', { by: 'bob' }), { message: /only 2 was ever promoted/ });
  await node2.promote('lr', '1', { by: 'bob' });
  t.equal((await node1.state('lr')).promoted, '1', "node 1 sees node 2's promote");
  t.equal((await node1.list())[0]!.versions.length, 2);
});

const noAuth = (await ensureServices()).natsAuthDir === undefined;

void t.test(
  'permissions: operator writes, kernel reads only, publisher nothing',
  { skip: noAuth ? 'this NATS has no authorization' : false },
  async (t) => {
    // The default buckets (what the roles are granted), a model name of this run.
    const name = `perm-${run}`;
    const m1 = manifestFor(b1, '1', { name });
    const m2 = manifestFor(b2, '2', { name });
    const operator = new NatsModelRegistry(await conn('operator'), { timeoutMs: 3000 });
    t.equal(operator.filesBucket, MODEL_FILES_BUCKET);
    t.equal(operator.stateBucket, MODEL_STATE_BUCKET);
    t.equal(await operator.push(m1, b1, who), 'stored', 'operator pushes (creating the buckets)');
    await operator.push(m2, b2, who);
    t.equal((await operator.promote(name, '1', who)).promoted, '1', 'operator promotes');
    t.equal((await operator.list()).find((m) => m.name === name)?.versions.length, 2);

    const kernel = new NatsModelRegistry(await conn('kernel'), { timeoutMs: 3000 });
    t.equal((await kernel.state(name)).promoted, '1', 'kernel reads the state');
    // …and watches it: the operator's next change reaches it without polling.
    const seen: string[] = [];
    const errors: Error[] = [];
    const watch = await kernel.watchStates(
      (s) => {
        if (s.name === name) seen.push(`${s.promoted} ${s.shadow ?? '-'}`);
      },
      (e) => errors.push(e),
    );
    await until('the current state', () => seen.length === 1, 5000);
    await operator.shadow(name, '2', who);
    await until("the operator's change", () => seen.length === 2, 5000);
    watch.stop();
    await watch.closed;
    t.same(seen, ['1 -', '1 2'], 'the state now, then the change');
    t.same(errors, []);
    t.same(Buffer.from((await kernel.get(name, '1')).bytes), Buffer.from(b1), 'and the file');
    await t.rejects(kernel.promote(name, '2', who), {
      code: 'QLN_MODEL_REGISTRY_UNAVAILABLE',
      message: /cannot update .*[Pp]ermission/,
    });

    const publisher = new NatsModelRegistry(await conn('publisher'), { timeoutMs: 1000 });
    await t.rejects(publisher.promote(name, '2', who), {
      code: 'QLN_MODEL_REGISTRY_UNAVAILABLE',
      message: /Permissions Violation/,
    });
    await t.rejects(publisher.state(name), { code: 'QLN_MODEL_REGISTRY_UNAVAILABLE' });

    const s = await operator.state(name);
    t.same([s.promoted, s.history.length], ['1', 4], 'neither changed anything');
  },
);

void t.test('openModelRegistry: the kind config names; qilin model --registry nats', async (t) => {
  const urls = await ensureServices();
  const dir = mkdtempSync(join(tmpdir(), 'qilin-open-registry-'));
  const local = await openModelRegistry(loadConfig({ env: { QILIN_STATE_DIR: dir } }));
  t.equal(local.kind, 'local');
  t.ok(local instanceof LocalModelRegistry);
  t.equal(local.where, join(dir, 'models'));
  await local.close();

  const nc = await conn();
  const b = await buckets(t);
  const config = loadConfig({ env: { QILIN_MODEL_REGISTRY: 'nats' } });
  const shared = await openModelRegistry(config, nc, { nats: b });
  t.equal(shared.kind, 'nats');
  t.ok(shared instanceof NatsModelRegistry);
  t.equal(await shared.push(manifestFor(b1, '1'), b1, who), 'stored');
  await shared.close();
  await shared.close();
  t.equal(nc.isClosed(), false, 'a connection given to it stays open');
  await t.rejects(openModelRegistry(config, nc, { dir }), {
    code: 'QLN_INVALID_ARGUMENT',
    message: /no directory with the nats registry/,
  });

  // The command line: its own connection with the operator's credentials, default buckets.
  const name = `cli-${run}`;
  writeFileSync(join(dir, 'm.onnx'), b2);
  writeFileSync(join(dir, 'm.json'), JSON.stringify(manifestFor(b2, '2', { name })));
  const env: Record<string, string> = { QILIN_NATS_URL: urls.natsUrl };
  if (urls.natsAuthDir !== undefined) env['QILIN_NATS_AUTH_DIR'] = urls.natsAuthDir;
  const push = await runQilin(
    [
      'model',
      '--registry',
      'nats',
      'push',
      '--file',
      join(dir, 'm.onnx'),
      '--manifest',
      join(dir, 'm.json'),
      '--by',
      'bob',
    ],
    env,
  );
  t.equal(push.code, 0, push.err);
  t.match(push.out, new RegExp(`${name}@2: pushed`));
  const reader = new NatsModelRegistry(nc);
  t.same(
    (await reader.state(name)).history.map((e) => `${e.op} ${e.version} ${e.by}`),
    ['push 2 bob'],
    'the push is in the NATS registry',
  );
  t.same(Buffer.from((await reader.get(name, '2')).bytes), Buffer.from(b2));
});
