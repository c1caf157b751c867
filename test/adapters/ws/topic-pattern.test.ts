import fc from 'fast-check';
import t from 'tap';
import {
  MAX_SYMBOL_LENGTH,
  TOPIC_KINDS,
  TopicPattern,
  type TopicKind,
} from '../../../adapters/ws/topic-pattern.js';

const symbol = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
const kind = fc.constantFrom<TopicKind>(...TOPIC_KINDS);
const topic = fc.oneof(
  fc.tuple(kind, symbol).map(([k, s]) => `${k}/${s}`),
  fc.constant('status'),
);
const pattern = fc.oneof(
  topic,
  kind.map((k) => `${k}/*`),
  fc.constant('*'),
);

/** Reference semantics, written independently of the implementation. */
function reference(p: string, tp: string): boolean {
  // `*` is every topic but the job topics (admins only, asked for by name).
  if (p === '*') return !tp.startsWith('job/');
  if (p.endsWith('/*')) return tp.split('/')[0] === p.split('/')[0] && tp !== 'status';
  return p === tp;
}

void t.test('matches agrees with the reference semantics (property)', (t) => {
  fc.assert(
    fc.property(pattern, topic, (p, tp) => {
      const parsed = TopicPattern.parse(p);
      return parsed !== undefined && parsed.matches(tp) === reference(p, tp);
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 random pattern/topic pairs agree');
  t.end();
});

void t.test('every valid topic is a topic, a pattern, and matches itself (property)', (t) => {
  fc.assert(
    fc.property(topic, (tp) => {
      const p = TopicPattern.parse(tp);
      return TopicPattern.isTopic(tp) && p !== undefined && p.matches(tp) && !p.isWildcard;
    }),
  );
  t.ok(TopicPattern.isTopic('signal/BTC-USD'));
  t.notOk(TopicPattern.isTopic('signal/*'), 'a wildcard is not a publishable topic');
  t.notOk(TopicPattern.isTopic('*'));
  t.end();
});

void t.test('covers(a, b) implies every topic matched by b is matched by a (property)', (t) => {
  fc.assert(
    fc.property(pattern, pattern, topic, (a, b, tp) => {
      const pa = TopicPattern.parse(a)!;
      const pb = TopicPattern.parse(b)!;
      return !pa.covers(pb) || !pb.matches(tp) || pa.matches(tp);
    }),
    { numRuns: 2000 },
  );
  const star = TopicPattern.parse('*')!;
  const sigAll = TopicPattern.parse('signal/*')!;
  const sigBtc = TopicPattern.parse('signal/BTC-USD')!;
  t.ok(star.covers(sigAll));
  t.ok(sigAll.covers(sigBtc));
  t.notOk(sigBtc.covers(sigAll));
  t.notOk(sigAll.covers(star));
  t.notOk(sigAll.covers(TopicPattern.parse('status')!));
  t.end();
});

void t.test('rejects everything that is not one of the accepted forms (property)', (t) => {
  const bad = fc.string({ maxLength: 80 }).filter((s) => {
    if (s === '*' || s === 'status') return false;
    const m = /^(signal|prediction|quality)\/(.*)$/.exec(s);
    return m === null || (m[2] !== '*' && !/^[A-Za-z0-9_-]{1,64}$/.test(m[2]!));
  });
  fc.assert(fc.property(bad, (s) => TopicPattern.parse(s) === undefined));
  for (const s of [
    '',
    'signal',
    'signal/',
    'signal/BTC*',
    '*/BTC-USD',
    'signal/#',
    'signal/BTC USD',
    'signal/a/b',
    'status/*',
    'trades/BTC-USD',
    `signal/${'A'.repeat(MAX_SYMBOL_LENGTH + 1)}`,
  ]) {
    t.equal(TopicPattern.parse(s), undefined, `rejects ${JSON.stringify(s)}`);
  }
  t.equal(TopicPattern.parse(42), undefined, 'rejects a non-string');
  t.equal(TopicPattern.parse(null), undefined, 'rejects null');
  t.end();
});

void t.test('kindOf and wildcardOf', (t) => {
  t.equal(TopicPattern.kindOf('signal/BTC-USD'), 'signal');
  t.equal(TopicPattern.kindOf('quality/X'), 'quality');
  t.equal(TopicPattern.kindOf('status'), 'status');
  t.equal(TopicPattern.wildcardOf('prediction'), 'prediction/*');
  const p = TopicPattern.parse('prediction/*')!;
  t.same([p.kind, p.sym, p.isWildcard], ['prediction', '*', true]);
  t.notOk(p.matches('predictionx/A'), 'kind prefix must end at the slash');
  t.notOk(p.matches('signal/A'));
  t.end();
});
