/**
 * `qilin keys` end to end against the real Redis (a prefix of its own): the
 * key is printed once by create and rotate and appears nowhere else (list,
 * Redis), rotate sets the grace, revoke marks it, and bad input fails with a
 * catalogue code.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import t from 'tap';
import { parseDuration } from '../../cli/keys-command.js';
import { type CliRun, runQilin } from '../helpers/cli.js';
import { ensureServices } from '../helpers/services.js';

const run = randomBytes(3).toString('hex');
const PREFIX = `qilin:test:keyscli${run}:`;
let natsUrl: string | undefined;

function qilin(redisUrl: string, ...args: string[]): Promise<CliRun> {
  return runQilin(['keys', ...args], {
    QILIN_REDIS_URL: redisUrl,
    // Key changes are audited on NATS (audit.key.*): the test stack's.
    ...(natsUrl === undefined ? {} : { QILIN_NATS_URL: natsUrl }),
    QILIN_API_KEY_PREFIX: PREFIX,
  });
}

void t.test('parseDuration', (t) => {
  t.equal(parseDuration('--grace', '10m'), 600_000);
  t.equal(parseDuration('--expires', '30d'), 30 * 86_400_000);
  t.equal(parseDuration('--grace', '0s'), 0);
  t.throws(() => parseDuration('--grace', '10 minutes'), { code: 'QLN_CLI_USAGE' });
  t.throws(() => parseDuration('--grace', '-1m'), { code: 'QLN_CLI_USAGE' });
  t.end();
});

void t.test('qilin keys create | list | rotate | revoke', async (t) => {
  const urls = await ensureServices();
  natsUrl = urls.natsUrl;
  t.teardown(async () => {
    const r = new Redis(urls.redisUrl);
    const found = await r.keys(`${PREFIX}*`);
    if (found.length > 0) await r.del(...found);
    r.disconnect();
  });
  const created = await qilin(
    urls.redisUrl,
    'create',
    '--role',
    'viewer',
    '--read',
    'signal/*',
    '--label',
    'cli test',
    '--expires',
    '30d',
    '--json',
  );
  t.equal(created.code, 0, created.err);
  const c = JSON.parse(created.out) as Record<string, unknown>;
  const key = String(c['key']);
  t.match(key, /^qk_[A-Za-z0-9_-]{32}$/, 'a generated key');
  t.match(c, { role: 'viewer', patterns: ['signal/*'], label: 'cli test' });
  t.notOk('digest' in c, 'the digest is not printed');
  t.ok(Number(c['expires']) > Date.now() + 29 * 86_400_000, 'expires in 30 days');
  const id = String(c['id']);

  const list = await qilin(urls.redisUrl, 'list');
  t.equal(list.code, 0, list.err);
  t.match(list.out, new RegExp(`${id}\\s+viewer\\s+signal/\\*\\s+cli test`));
  t.match(list.out, /active/);
  t.notOk(list.out.includes(key), 'list never shows the key');

  const rotated = await qilin(urls.redisUrl, 'rotate', id, '--grace', '5m', '--json');
  t.equal(rotated.code, 0, rotated.err);
  const r = JSON.parse(rotated.out) as { key: string; id: string; old: Record<string, unknown> };
  t.not(r.key, key, 'a new key');
  t.equal(r.old['id'], id);
  const grace = Number(r.old['graceUntil']) - Date.now();
  t.ok(grace > 4 * 60_000 && grace <= 5 * 60_000, `old key in grace for ${grace} ms`);

  const revoked = await qilin(urls.redisUrl, 'revoke', id);
  t.equal(revoked.code, 0, revoked.err);
  const states = JSON.parse((await qilin(urls.redisUrl, 'list', '--json')).out) as Array<{
    id: string;
    state: string;
  }>;
  t.same(
    states.map((s) => [s.id, s.state]),
    [
      [id, 'revoked'],
      [r.id, 'active'],
    ],
  );

  const redis = new Redis(urls.redisUrl);
  const stored: string[] = [];
  for (const name of await redis.keys(`${PREFIX}*`)) {
    if ((await redis.type(name)) === 'hash') stored.push(JSON.stringify(await redis.hgetall(name)));
  }
  redis.disconnect();
  t.equal(stored.length, 2, 'two records');
  t.notOk(stored.join('').includes(key) || stored.join('').includes(r.key), 'Redis holds no key');

  const badId = await qilin(urls.redisUrl, 'revoke', '0123456789ab');
  t.equal(badId.code, 2);
  t.match(badId.err, /QLN_API_KEY_STORE: no API key with id 0123456789ab/);
  const trader = await qilin(urls.redisUrl, 'create', '--role', 'trader');
  t.equal(trader.code, 2);
  t.match(trader.err, /QLN_INVALID_ARGUMENT: invalid account/, 'a trader needs an account');
  const pattern = await qilin(urls.redisUrl, 'create', '--role', 'viewer', '--read', 'nope');
  t.equal(pattern.code, 2);
  t.match(pattern.err, /invalid read: "nope"/);
});
