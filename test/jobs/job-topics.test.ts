/**
 * WebSocket job topics (jobs/README.md): `job/<id>` and `job/*` are topics
 * and patterns, read by admin keys only; `*` does not include them.
 */
import t from 'tap';
import { parseApiKeys } from '../../adapters/ws/api-keys.js';
import { TopicPattern } from '../../adapters/ws/topic-pattern.js';

void t.test('job topics: patterns, `*` excludes them, admins only', (t) => {
  t.ok(TopicPattern.isTopic('job/42'), 'job/<id> is a topic');
  const all = TopicPattern.parse('job/*')!;
  const one = TopicPattern.parse('job/42')!;
  const star = TopicPattern.parse('*')!;
  t.ok(all.matches('job/42'));
  t.notOk(all.matches('signal/BTC-USD'));
  t.ok(one.matches('job/42'));
  t.notOk(one.matches('job/43'));
  t.notOk(star.matches('job/42'), '`*` does not match a job topic');
  t.ok(star.matches('signal/BTC-USD'), '`*` still matches the others');
  t.notOk(star.covers(all), '`*` does not cover job/*');
  t.ok(all.covers(one));
  const keys = parseApiKeys('adminkey01:admin,readkey001:read,sigkey0001:read=signal/*');
  const admin = keys.authorize('adminkey01')!;
  const reader = keys.authorize('readkey001')!;
  const sig = keys.authorize('sigkey0001')!;
  t.ok(admin.canRead('job/*'), 'admin reads job/*');
  t.ok(admin.canRead('job/42'), 'admin reads job/<id>');
  t.notOk(reader.canRead('job/*'), 'a read key does not read job/*');
  t.notOk(reader.canRead('job/42'), 'nor job/<id>');
  t.notOk(sig.canRead('job/42'));
  t.ok(reader.canRead('*'), 'a read key still reads `*` (which has no job topic)');
  t.end();
});
