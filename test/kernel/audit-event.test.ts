import fc from 'fast-check';
import t from 'tap';
import {
  AUDIT_ACTIONS,
  AUDIT_OUTCOMES,
  AUDIT_TEXT_MAX,
  auditSubject,
  checkAuditEvent,
  decodeAuditEvent,
  encodeAuditEvent,
  makeAuditEvent,
  newAuditId,
  type AuditEvent,
} from '../../kernel/audit-event.js';

const text = fc.string({ minLength: 1, maxLength: 80 }).filter((s) => s.trim() !== '');
const event: fc.Arbitrary<AuditEvent> = fc.record({
  id: fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/),
  ts_us: fc.integer({ min: 0, max: 4_000_000_000_000_000 }),
  actor: text,
  action: fc.constantFrom(...AUDIT_ACTIONS),
  target: text,
  outcome: fc.constantFrom(...AUDIT_OUTCOMES),
  reason: fc.string({ maxLength: 80 }),
  source: text,
  detail: fc
    .dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.integer(), fc.string({ maxLength: 8 })))
    .map((o) => JSON.stringify(o)),
});

void t.test('codec: decode(encode(e)) is e, for any valid event', (t) => {
  fc.assert(
    fc.property(event, (e) => {
      fc.pre(checkAuditEvent(e) === undefined);
      const back = decodeAuditEvent(encodeAuditEvent(e));
      t.same(back, e);
    }),
    { numRuns: 300 },
  );
  t.end();
});

void t.test('decode never throws: any bytes give an event or a reason', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const r = decodeAuditEvent(bytes);
      return typeof r === 'string' || checkAuditEvent(r) === undefined;
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.anything(), (v) => {
      const r = decodeAuditEvent(Buffer.from(JSON.stringify(v) ?? 'null'));
      return typeof r === 'string' || checkAuditEvent(r) === undefined;
    }),
    { numRuns: 500 },
  );
  t.end();
});

void t.test('validation names the bad field', (t) => {
  const good = makeAuditEvent({
    action: 'risk.kill',
    actor: 'ops',
    target: 'risk',
    outcome: 'ok',
    reason: 'drill',
    source: 'nats:ctl.risk.kill',
  });
  t.equal(checkAuditEvent(good), undefined);
  t.match(good.id, /^a-[0-9a-z]+-[0-9a-f]{12}$/);
  t.equal(good.detail, '{}');
  t.match(checkAuditEvent({ ...good, action: 'risk.explode' }), /field action/);
  t.match(checkAuditEvent({ ...good, outcome: 'maybe' }), /field outcome/);
  t.match(checkAuditEvent({ ...good, ts_us: 1.5 }), /field ts_us/);
  t.match(checkAuditEvent({ ...good, id: 'has space' }), /field id/);
  t.match(checkAuditEvent({ ...good, actor: '' }), /field actor is empty/);
  t.match(checkAuditEvent({ ...good, detail: '[1]' }), /not a JSON object/);
  t.match(checkAuditEvent({ ...good, detail: 'x'.repeat(5000) }), /field detail/);
  t.match(checkAuditEvent(null), /not a JSON object/);
  t.end();
});

void t.test('a secret-looking value is refused and never echoed', (t) => {
  const key = 'qk_abcdefghijklmnopqrstuvwxyz012345';
  t.throws(
    () =>
      makeAuditEvent({
        action: 'key.create',
        actor: `cli:${key}`,
        target: 'key:x',
        outcome: 'ok',
        source: 'cli:h',
      }),
    { code: 'QLN_AUDIT_INVALID', message: /looks like an API key/ },
  );
  const bad = decodeAuditEvent(
    Buffer.from(JSON.stringify({ id: key, ts_us: 1, action: 'x' }), 'utf8'),
  );
  t.type(bad, 'string');
  t.notOk(JSON.stringify(bad).includes(key), 'the error does not repeat it');
  t.match(
    checkAuditEvent({
      ...makeAuditEvent({
        action: 'key.create',
        actor: 'a',
        target: 't',
        outcome: 'ok',
        source: 's',
      }),
      detail: JSON.stringify({ k: key }),
    }),
    /detail holds something that looks like an API key/,
  );
  t.end();
});

void t.test('long text is clipped, not refused; ids are unique; subjects', (t) => {
  const e = makeAuditEvent({
    action: 'risk.resume',
    actor: 'ops',
    target: 'risk',
    outcome: 'ok',
    reason: 'r'.repeat(2000),
    source: 's',
  });
  t.equal(e.reason.length, AUDIT_TEXT_MAX);
  const ids = new Set(Array.from({ length: 10_000 }, () => newAuditId()));
  t.equal(ids.size, 10_000);
  t.equal(auditSubject('auth.failure'), 'audit.auth.failure');
  t.end();
});
