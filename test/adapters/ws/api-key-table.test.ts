/**
 * The live part of the key table (unit): stored records merged with the
 * configured keys, revocation and expiry through `validity`, roles, and the
 * admin guard of HTTP routes.
 */
import t from 'tap';
import {
  keyDigest,
  keyIdOf,
  parseApiKeys,
  type ApiKeyRecord,
} from '../../../adapters/ws/api-keys.js';
import { requireAdmin, type HttpRouteResult } from '../../../adapters/ws/uws-server.js';

const CONFIG_KEY = 'config-read-key-1';
const VIEWER = 'qk_viewer_key_000000001';
const TRADER = 'qk_trader_key_000000001';
const ADMIN = 'qk_admin_key_0000000001';

function record(key: string, extra: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  const digest = keyDigest(key);
  return {
    id: digest.slice(0, 12),
    digest,
    role: 'viewer',
    patterns: ['signal/*'],
    label: 'test',
    created: 1,
    ...extra,
  };
}

void t.test('stored keys merge with configured keys; revoked ones are left out', (t) => {
  const table = parseApiKeys(`${CONFIG_KEY}:read`);
  let changes = 0;
  table.onChange(() => changes++);
  t.equal(table.authorize(VIEWER), undefined, 'unknown before the store loads');
  table.setStored([
    record(VIEWER),
    record(TRADER, { role: 'trader', account: 'acct1', patterns: ['*'] }),
    record(ADMIN, { role: 'admin', patterns: [] }),
    record('qk_revoked_key_00000001', { revokedAt: 5 }),
  ]);
  t.equal(changes, 1, 'listeners run on every change');
  t.equal(table.size, 4, 'configured + three live stored keys');
  const viewer = table.authorize(VIEWER)!;
  t.equal(viewer.role, 'viewer');
  t.equal(viewer.source, 'store');
  t.equal(viewer.keyId, keyIdOf(VIEWER));
  t.ok(viewer.canRead('signal/BTC-USD'));
  t.notOk(viewer.canRead('prediction/BTC-USD'), 'a viewer reads its patterns only');
  t.notOk(viewer.admin);
  const trader = table.authorize(TRADER)!;
  t.equal(trader.role, 'trader');
  t.equal(trader.account, 'acct1');
  const admin = table.authorize(ADMIN)!;
  t.ok(admin.admin, 'admin role is admin');
  t.ok(admin.canRead('*'));
  t.equal(table.authorize('qk_revoked_key_00000001'), undefined, 'a revoked key is refused');
  t.equal(table.authorize(CONFIG_KEY)?.source, 'config', 'configured keys still work');
  t.equal(table.authorize(CONFIG_KEY)?.role, 'viewer', 'read is the viewer role');
  t.equal(table.authorize('x'.repeat(10_000)), undefined, 'an absurdly long key is refused');
  t.end();
});

void t.test('validity: revoked, expired, valid', (t) => {
  const table = parseApiKeys(`${CONFIG_KEY}:admin`);
  const now = 1_000_000;
  table.setStored([record(VIEWER), record(TRADER, { expires: now + 500 })]);
  const viewer = table.authorize(VIEWER, now)!;
  const expiring = table.authorize(TRADER, now)!;
  const configured = table.authorize(CONFIG_KEY, now)!;
  t.equal(table.validity(viewer, now), 'valid');
  t.equal(table.validity(expiring, now), 'valid');
  t.equal(table.validity(expiring, now + 500), 'expired', 'expired at its expiry');
  t.equal(table.authorize(TRADER, now + 500), undefined, 'and refused from then on');
  table.setStored([record(VIEWER, { revokedAt: now }), record(TRADER, { expires: now + 500 })]);
  t.equal(table.validity(viewer, now), 'revoked', 'revocation applies to a scope already out');
  table.setStored([]);
  t.equal(table.validity(viewer, now), 'revoked', 'a deleted key counts as revoked');
  t.equal(table.validity(configured, now), 'valid', 'configured keys cannot be revoked');
  t.end();
});

void t.test('records that do not parse are ignored', (t) => {
  const table = parseApiKeys('');
  table.setStored([
    record(VIEWER, { patterns: ['no such pattern'] }),
    record(TRADER, { role: 'boss' as 'admin' }),
    { ...record(ADMIN), digest: 'zz' },
  ]);
  t.equal(table.size, 0);
  t.end();
});

void t.test('requireAdmin: 401 without a valid key, 403 for a non-admin key', async (t) => {
  const table = parseApiKeys(`${CONFIG_KEY}:read`);
  table.setStored([record(ADMIN, { role: 'admin' }), record(VIEWER)]);
  let served = 0;
  const route = requireAdmin(table, () => {
    served++;
    return { status: 200, contentType: 'application/json', body: '[]' };
  });
  const call = async (authorization: string): Promise<HttpRouteResult> =>
    route({ path: '/audit', query: new URLSearchParams(), authorization });
  const none = await call('');
  t.equal(none.status, 401);
  t.equal(none.headers?.['WWW-Authenticate'], 'Bearer');
  t.match(JSON.parse(String(none.body)), { error: { code: 'unauthorized' } });
  t.equal((await call('Basic abc')).status, 401, 'malformed');
  t.equal((await call('Bearer qk_unknown_key_0001')).status, 401, 'unknown');
  const viewer = await call(`Bearer ${VIEWER}`);
  t.equal(viewer.status, 403);
  t.match(JSON.parse(String(viewer.body)), { error: { code: 'forbidden' } });
  t.notOk(String(viewer.body).includes(VIEWER), 'the key is not echoed');
  t.equal((await call(`Bearer ${CONFIG_KEY}`)).status, 403, 'a configured read key');
  t.equal(served, 0, 'the route never ran for a refused request');
  t.equal((await call(`Bearer ${ADMIN}`)).status, 200);
  t.equal(served, 1);
});
