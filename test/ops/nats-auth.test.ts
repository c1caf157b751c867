import t from 'tap';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUser } from '@nats-io/nkeys';
import {
  DEFAULT_NATS_ROLES,
  authorizationLines,
  checkNatsRole,
  ensureNatsUsers,
  ensureSeed,
  natsRolePermissions,
  readNatsUsers,
  seedPath,
} from '../../ops/services/nats-auth.js';
import { natsConfigText } from '../../ops/services/nats-config.js';

const base = {
  confDir: '',
  storeDir: '/var/qilin/js',
  port: 14222,
  monitorPort: 18222,
  partitions: 16,
};
const key = (): string => createUser().getPublicKey();

void t.test('role names: the fixed roles and executor-<account>, nothing else', (t) => {
  for (const ok of [
    'admin',
    'kernel',
    'operator',
    'publisher',
    'executor-demo',
    'executor-a_b-1',
  ]) {
    t.equal(checkNatsRole(ok), ok);
  }
  for (const bad of [
    '',
    'root',
    'executor-',
    'executor-a.b',
    'executor-*',
    'executor->',
    'Kernel',
  ]) {
    t.throws(() => checkNatsRole(bad), { code: 'QLN_INVALID_ARGUMENT' }, bad);
  }
  t.end();
});

void t.test('permissions per role', (t) => {
  t.equal(natsRolePermissions('admin'), undefined, 'admin: unrestricted');
  t.same(natsRolePermissions('publisher'), {
    publish: ['md.>'],
    subscribe: ['_INBOX.>'],
    allowResponses: false,
  });
  const kernel = natsRolePermissions('kernel')!;
  for (const s of ['md.>', 'fill.>', 'ctl.>', 'qilin.>', 'audit.>', '_INBOX.>']) {
    t.ok(kernel.subscribe.includes(s), `kernel subscribes ${s}`);
  }
  for (const s of ['sig.>', 'risk.rejected.>', 'quality.>', 'audit.>', 'qilin.>', 'job.>']) {
    t.ok(kernel.publish.includes(s), `kernel publishes ${s}`);
  }
  for (const s of ['$JS.API.>', '$JS.ACK.>', '$KV.>', '$O.>', '_INBOX.>']) {
    t.ok(kernel.publish.includes(s), `kernel publishes ${s}`);
  }
  t.notOk(kernel.publish.includes('md.>'), 'the kernel does not publish market data');
  t.notOk(kernel.publish.includes('fill.>'), 'nor fills');
  t.notOk(kernel.publish.includes('ctl.>'), 'nor control');
  t.equal(kernel.allowResponses, true, 'the kernel answers ctl requests');

  const op = natsRolePermissions('operator')!;
  t.ok(op.publish.includes('ctl.>'));
  t.notOk(
    op.publish.some((s) => s.startsWith('fill') || s.startsWith('sig') || s.startsWith('md')),
  );
  t.same(op.subscribe, ['_INBOX.>', 'audit.>']);

  const ex = natsRolePermissions('executor-acme')!;
  t.ok(ex.publish.includes('fill.acme'));
  t.notOk(
    ex.publish.some((s) => s.startsWith('fill.') && s !== 'fill.acme'),
    'only its own fills',
  );
  t.notOk(
    ex.publish.some((s) => s.startsWith('ctl') || s === '$JS.API.>'),
    'no control, no JS admin',
  );
  t.notOk(
    ex.publish.some((s) => /STREAM\.(CREATE|UPDATE|DELETE|PURGE)|CONSUMER\.DELETE/.test(s)),
    'no stream admin subjects',
  );
  t.ok(
    ex.publish.includes('$JS.API.CONSUMER.MSG.NEXT.QILIN_SIGNALS.*'),
    'pull next on the signal stream',
  );
  t.ok(ex.publish.includes('$JS.ACK.QILIN_SIGNALS.>'), 'acks on the signal stream');
  t.same(ex.subscribe, ['sig.>', '_INBOX.>']);
  t.end();
});

void t.test('the authorization block: public keys only, every role, deterministic', (t) => {
  const users = DEFAULT_NATS_ROLES.map((role) => ({ role, nkey: key() }));
  const text = natsConfigText({ ...base, users });
  t.equal(
    natsConfigText({ ...base, users: [...users].reverse() }),
    text,
    'order of users does not matter',
  );
  t.match(text, /^authorization \{$/m);
  for (const u of users) t.match(text, `{ nkey: "${u.nkey}"`, `${u.role} present`);
  t.notMatch(text, /"S[A-Z2-7]{50,}"/, 'no seed in the config');
  t.match(text, /publish: \{ allow: \["fill\.demo", /);
  t.match(text, /allow_responses: true/);
  const admin = users.find((u) => u.role === 'admin')!;
  t.match(text, `{ nkey: "${admin.nkey}" }`, 'admin without restrictions');
  t.notMatch(natsConfigText(base), /authorization/, 'no users: no authorization block');
  t.notMatch(natsConfigText({ ...base, users: [] }), /authorization/);
  t.throws(() => authorizationLines([{ role: 'kernel', nkey: 'SUAXXX' }]), {
    code: 'QLN_INVALID_ARGUMENT',
  });
  t.end();
});

void t.test(
  'seed files: created once, folder 700, files 600, concurrent callers keep one',
  async (t) => {
    const dir = join(mkdtempSync(join(tmpdir(), 'qilin-auth-')), 'nats-auth');
    const created = await Promise.all([1, 2, 3, 4].map(() => ensureSeed(dir, 'kernel')));
    t.equal(created.filter(Boolean).length, 1, 'one of four concurrent callers created it');
    t.equal(statSync(dir).mode & 0o777, 0o700);
    t.equal(statSync(seedPath(dir, 'kernel')).mode & 0o777, 0o600);
    t.same(readdirSync(dir), ['kernel.nk'], 'no temp file left behind');
    const seed = readFileSync(seedPath(dir, 'kernel'), 'utf8');
    t.match(seed, /^SU[A-Z2-7]+$/);
    t.equal(await ensureSeed(dir, 'kernel'), false, 'kept when present');
    t.equal(readFileSync(seedPath(dir, 'kernel'), 'utf8'), seed, 'same seed');

    const users = await ensureNatsUsers(dir, DEFAULT_NATS_ROLES);
    t.same(
      users.map((u) => u.role),
      ['admin', 'executor-demo', 'kernel', 'operator', 'publisher'],
    );
    for (const u of users) t.match(u.nkey, /^U[A-Z2-7]{55}$/);
    writeFileSync(join(dir, 'notes.txt'), 'x');
    writeFileSync(join(dir, 'bogus role.nk'), 'x', { mode: 0o600 });
    t.equal((await readNatsUsers(dir)).length, 5, 'other files are not users');
    writeFileSync(join(dir, 'executor-bad.nk'), 'not a seed', { mode: 0o600 });
    await t.rejects(readNatsUsers(dir), {
      code: 'QLN_NATS_CREDENTIALS',
      message: /executor-bad\.nk/,
    });
    t.same(await readNatsUsers(join(dir, 'missing')), [], 'no folder: no users');
  },
);

// ── model registry (issue 8 item 2) ──
void t.test('model registry: the operator writes its buckets, the kernel may not', (t) => {
  const op = natsRolePermissions('operator')!;
  for (const s of [
    '$KV.QILIN_MODEL_STATE.>',
    '$O.QILIN_MODELS.>',
    '$JS.API.STREAM.CREATE.KV_QILIN_MODEL_STATE',
    '$JS.API.STREAM.CREATE.OBJ_QILIN_MODELS',
    '$JS.API.CONSUMER.CREATE.OBJ_QILIN_MODELS.>',
  ]) {
    t.ok(op.publish.includes(s), `operator publishes ${s}`);
  }
  t.notOk(
    op.publish.some(
      (s) => ['$JS.API.>', '$KV.>', '$O.>'].includes(s) || /STREAM\.(DELETE|UPDATE)/.test(s),
    ),
    'nothing wider, no stream deletion',
  );
  const kernel = natsRolePermissions('kernel')!;
  for (const s of [
    '$KV.QILIN_MODEL_STATE.>',
    '$O.QILIN_MODELS.>',
    '$JS.API.STREAM.PURGE.OBJ_QILIN_MODELS',
    '$JS.API.STREAM.DELETE.KV_QILIN_MODEL_STATE',
  ]) {
    t.ok(kernel.denyPublish?.includes(s), `kernel denied ${s}`);
  }
  t.equal(natsRolePermissions('publisher')!.denyPublish, undefined);
  const text = authorizationLines([{ role: 'kernel', nkey: key() }]).join('\n');
  t.match(text, /publish: \{ allow: \[.*\], deny: \["\$KV\.QILIN_MODEL_STATE\.>", /);
  t.end();
});
