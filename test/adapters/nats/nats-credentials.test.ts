import t from 'tap';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUser } from '@nats-io/nkeys';
import { natsSeedFileFor, readNatsSeed } from '../../../adapters/nats/nats-credentials.js';
import { loadConfig } from '../../../config/config.js';

void t.test('resolver: natsSeedFile wins, then natsAuthDir + role, else none', (t) => {
  t.equal(natsSeedFileFor({}, 'kernel'), undefined);
  t.equal(natsSeedFileFor({ natsAuthDir: '/a' }, 'kernel'), '/a/kernel.nk');
  t.equal(natsSeedFileFor({ natsAuthDir: '/a' }, 'executor-x'), '/a/executor-x.nk');
  t.equal(natsSeedFileFor({ natsAuthDir: '/a', natsSeedFile: '/s.nk' }, 'kernel'), '/s.nk');
  t.equal(natsSeedFileFor({ natsSeedFile: '/s.nk' }, 'operator'), '/s.nk');
  // the environment names of the two keys
  const c = loadConfig({ env: { QILIN_NATS_AUTH_DIR: '/d', QILIN_NATS_SEED_FILE: '/f.nk' } });
  t.equal(c.natsAuthDir, '/d');
  t.equal(c.natsSeedFile, '/f.nk');
  t.equal(
    natsSeedFileFor(loadConfig({ env: { QILIN_NATS_AUTH_DIR: '/d' } }), 'publisher'),
    '/d/publisher.nk',
  );
  t.end();
});

void t.test(
  'seed files: missing, world-readable, not a seed are refused naming the file only',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'qilin-seed-'));
    const seed = new TextDecoder().decode(createUser().getSeed());
    const good = join(dir, 'good.nk');
    writeFileSync(good, `${seed}\n`, { mode: 0o600 });
    t.equal(new TextDecoder().decode(await readNatsSeed(good)), seed, 'trailing newline trimmed');

    const missing = join(dir, 'missing.nk');
    await t.rejects(readNatsSeed(missing), {
      code: 'QLN_NATS_CREDENTIALS',
      message: new RegExp(`${missing}.*does not exist`),
    });

    const open = join(dir, 'open.nk');
    writeFileSync(open, seed);
    chmodSync(open, 0o644);
    const err = (await readNatsSeed(open).catch((e: unknown) => e)) as Error & { code: string };
    t.equal(err.code, 'QLN_NATS_CREDENTIALS');
    t.match(err.message, /open\.nk is readable by everyone \(mode 644\)/);
    t.notMatch(err.message, seed, 'the seed is not in the message');
    t.notMatch(JSON.stringify(err), seed, 'nor in its details');

    const bad = join(dir, 'bad.nk');
    writeFileSync(bad, 'SUAAAAthis-is-not-a-seed', { mode: 0o600 });
    await t.rejects(readNatsSeed(bad), {
      code: 'QLN_NATS_CREDENTIALS',
      message: /bad\.nk does not hold/,
    });

    const account = join(dir, 'account.nk');
    writeFileSync(account, 'SAAGJT6ARUJTSLR4YJNEFBZH5Q6WOVHLRY7YDLCJLX4WYNYCLCX7LCYBRE', {
      mode: 0o600,
    });
    await t.rejects(
      readNatsSeed(account),
      { code: 'QLN_NATS_CREDENTIALS' },
      'an account seed is not a user seed',
    );

    await t.rejects(readNatsSeed(dir), {
      code: 'QLN_NATS_CREDENTIALS',
      message: /not a regular file/,
    });
  },
);
