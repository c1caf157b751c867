import { pino } from 'pino';
import t from 'tap';
import type { AuditEvent } from '../../kernel/audit-event.js';
import { AuditLog } from '../../kernel/audit-log.js';

const log = pino({ level: 'silent' });
const kill = {
  action: 'risk.kill' as const,
  actor: 'ops',
  target: 'risk',
  outcome: 'ok' as const,
  reason: 'drill',
  source: 'nats:ctl.risk.kill',
};

void t.test('record: published; NATS down: stored directly; both down: no throw', async (t) => {
  const published: AuditEvent[] = [];
  const stored: AuditEvent[] = [];
  let natsUp = true;
  let storeUp = true;
  const made: string[] = [];
  const a = new AuditLog({
    log,
    publish: (ev) => {
      if (!natsUp) return Promise.reject(new Error('no NATS'));
      published.push(ev);
      return Promise.resolve();
    },
    store: (evs) => {
      if (!storeUp) return Promise.reject(new Error('no store'));
      stored.push(...evs);
      return Promise.resolve();
    },
    onEvent: (ev) => made.push(`${ev.action}/${ev.outcome}`),
  });
  const e1 = a.record(kill)!;
  await a.settle();
  t.same(
    published.map((e) => e.id),
    [e1.id],
  );
  t.same(stored, []);
  natsUp = false;
  const e2 = a.record({ ...kill, action: 'risk.resume' })!;
  await a.settle();
  t.same(
    stored.map((e) => e.id),
    [e2.id],
    'the store fallback holds it',
  );
  storeUp = false;
  t.doesNotThrow(() => a.record(kill));
  await a.settle();
  t.equal(stored.length, 1);
  t.equal(a.record({ ...kill, actor: '' }), undefined, 'an invalid event is refused, not thrown');
  t.same(made, ['risk.kill/ok', 'risk.resume/ok', 'risk.kill/ok']);
  t.equal(a.recent().length, 3);
});

void t.test('refusals: limited per source, summarised by sweep, every one accounted', async (t) => {
  let now = 10_000;
  const out: AuditEvent[] = [];
  let suppressed = 0;
  const a = new AuditLog({
    log,
    publish: (ev) => {
      out.push(ev);
      return Promise.resolve();
    },
    store: () => Promise.resolve(),
    limiter: { perSourcePerSec: 2, totalPerSec: 100 },
    onSuppressed: (_action, n) => (suppressed += n),
    nowMs: () => now,
  });
  const bad = {
    action: 'auth.failure' as const,
    actor: 'anonymous',
    target: '/ws',
    outcome: 'refused' as const,
    reason: 'unknown API key',
  };
  for (let i = 0; i < 50; i++) a.refusal({ ...bad, source: '10.0.0.1' });
  for (let i = 0; i < 3; i++) a.refusal({ ...bad, source: '10.0.0.2' });
  t.equal(suppressed, 49, '48 + 1 held back');
  now += 1000;
  a.sweep();
  await a.settle();
  const summaries = out.filter((e) => e.detail !== '{}');
  t.same(summaries.map((e): [string, unknown] => [e.source, JSON.parse(e.detail)]).sort(), [
    ['10.0.0.1', { suppressed: 48 }],
    ['10.0.0.2', { suppressed: 1 }],
  ]);
  let accounted = 0;
  for (const e of out)
    accounted += (JSON.parse(e.detail) as { suppressed?: number }).suppressed ?? 1;
  t.equal(accounted, 53, 'rows + suppressed counts = every refusal');
  t.equal(out.length, 6, '4 let through + 2 summaries');
  a.sweep();
  t.equal(out.length, 6, 'each summary once');
});

void t.test('recent: bounded ring, each id once', (t) => {
  const a = new AuditLog({
    log,
    publish: () => Promise.resolve(),
    store: () => Promise.resolve(),
    recent: 3,
  });
  const evs = [1, 2, 3, 4].map((i) => a.record({ ...kill, reason: `r${i}` })!);
  a.remember(evs[3]!);
  t.same(
    a.recent().map((e) => e.reason),
    ['r2', 'r3', 'r4'],
  );
  t.end();
});
