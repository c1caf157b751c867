import fc from 'fast-check';
import t from 'tap';
import { parseApiKeys } from '../../../adapters/ws/api-keys.js';
import { ErrorCodes, hasCode } from '../../../kernel/errors.js';

const key = fc.stringMatching(/^[A-Za-z0-9_-]{8,40}$/);
const symbol = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/);
const kind = fc.constantFrom('signal', 'prediction', 'quality');
const readPattern = fc.oneof(
  kind.map((k) => `${k}/*`),
  fc.tuple(kind, symbol).map(([k, s]) => `${k}/${s}`),
  fc.constant('status'),
);
const scope = fc.oneof(
  fc.constant('read'),
  fc.constant('admin'),
  readPattern.map((p) => `read=${p}`),
);
const topic = fc.oneof(
  fc.tuple(kind, symbol).map(([k, s]) => `${k}/${s}`),
  fc.constant('status'),
);

function grants(scopeText: string, tp: string): boolean {
  if (scopeText === 'read' || scopeText === 'admin') return true;
  const p = scopeText.slice('read='.length);
  if (p.endsWith('/*')) return tp.startsWith(p.slice(0, -1));
  return p === tp;
}

void t.test(
  'parsed tables authorize exactly the listed keys with the union of their scopes (property)',
  (t) => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(key, scope), { minLength: 1, maxLength: 8 }),
        key,
        fc.array(topic, { minLength: 1, maxLength: 10 }),
        (entries, stranger, topics) => {
          const table = parseApiKeys(entries.map(([k, s]) => `${k}:${s}`).join(','));
          const byKey = new Map<string, string[]>();
          for (const [k, s] of entries) byKey.set(k, [...(byKey.get(k) ?? []), s]);
          if (table.size !== byKey.size) return false;
          if (!byKey.has(stranger) && table.authorize(stranger) !== undefined) return false;
          for (const [k, scopes] of byKey) {
            const sc = table.authorize(k);
            if (sc === undefined) return false;
            if (sc.admin !== scopes.includes('admin')) return false;
            for (const tp of topics) {
              if (sc.canRead(tp) !== scopes.some((s) => grants(s, tp))) return false;
            }
          }
          return true;
        },
      ),
      { numRuns: 500 },
    );
    t.pass('500 random key tables');
    t.end();
  },
);

void t.test('read=<pattern> scopes combine and read subsumes them', (t) => {
  const table = parseApiKeys(
    'alpha-key-1:read=signal/*,alpha-key-1:read=status,beta-key-22:read=signal/BTC-USD,beta-key-22:read,gamma-key-3:admin',
  );
  const a = table.authorize('alpha-key-1')!;
  t.ok(a.canRead('signal/ETH-USD'));
  t.ok(a.canRead('status'));
  t.ok(a.canRead('signal/*'), 'the whole signal wildcard');
  t.notOk(a.canRead('prediction/ETH-USD'));
  t.notOk(a.canRead('*'), 'not everything');
  t.notOk(a.admin);
  t.same(a.patterns, ['signal/*', 'status']);
  const b = table.authorize('beta-key-22')!;
  t.same(b.patterns, ['*'], 'read subsumes the earlier exact grant');
  t.ok(b.canRead('*'));
  const g = table.authorize('gamma-key-3')!;
  t.ok(g.admin);
  t.ok(g.canRead('quality/X'));
  t.match(g.keyId, /^[0-9a-f]{12}$/);
  t.notOk(g.canRead('not a topic'), 'an invalid topic is never readable');
  t.end();
});

void t.test('unknown, empty and missing keys are refused', (t) => {
  const table = parseApiKeys('alpha-key-1:read');
  t.equal(table.authorize('alpha-key-2'), undefined);
  t.equal(table.authorize('alpha-key-'), undefined, 'a prefix of a key');
  t.equal(table.authorize(''), undefined);
  t.equal(table.authorize(undefined), undefined);
  t.equal(parseApiKeys('').size, 0, 'empty string: empty table');
  t.equal(parseApiKeys('').authorize('alpha-key-1'), undefined);
  t.end();
});

void t.test('bad entries throw QLN_INVALID_ARGUMENT naming the entry without the key', (t) => {
  const cases: Array<[string, RegExp]> = [
    ['secret-key-1', /entry 1/],
    ['secret-key-1:write', /entry 1 scope/],
    ['good-key-01:read,secret-key-1:read=trades/*', /entry 2 scope/],
    ['short:read', /entry 1 key/],
    ['secret key 1:read', /entry 1 key/],
    ['secret-key-1:read=signal/BTC*', /entry 1 scope/],
    ['secret-key-1:read,', /entry 2/],
    [':read', /entry 1 key/],
  ];
  for (const [input, where] of cases) {
    try {
      parseApiKeys(input);
      t.fail(`accepted ${input}`);
    } catch (err) {
      t.ok(hasCode(err, ErrorCodes.INVALID_ARGUMENT), `${input}: code`);
      const msg = (err as Error).message;
      t.match(msg, where, `${input}: names the entry`);
      t.notMatch(msg, /secret-key-1/, `${input}: does not echo the key`);
    }
  }
  t.end();
});

void t.test(
  'random garbage never crashes the parser: it parses or throws QLN_INVALID_ARGUMENT (property)',
  (t) => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (s) => {
        try {
          parseApiKeys(s);
          return true;
        } catch (err) {
          return hasCode(err, ErrorCodes.INVALID_ARGUMENT);
        }
      }),
      { numRuns: 1000 },
    );
    t.pass('1000 random strings');
    t.end();
  },
);
