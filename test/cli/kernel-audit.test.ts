import { pino } from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { KernelAudit } from '../../cli/kernel-audit.js';
import type { AuditEvent } from '../../kernel/audit-event.js';

void t.test(
  "a NATS permission refusal of the kernel's own user is a rate-limited audit event",
  async (t) => {
    const stored: AuditEvent[] = [];
    const registry = new Registry();
    const audit = new KernelAudit({
      log: pino({ level: 'silent' }),
      registry,
      store: (evs) => {
        stored.push(...evs);
        return Promise.resolve();
      },
    });
    const ev = audit.natsPermission('publish', 'sig.momentum.BTC-USD', '127.0.0.1:4222');
    t.ok(ev !== undefined, 'the first refusal is an event');
    t.match(ev, {
      action: 'permission.denied',
      actor: 'nats:kernel',
      target: 'nats:sig.momentum.BTC-USD',
      outcome: 'refused',
      reason: "the kernel's NATS user may not publish to sig.momentum.BTC-USD",
      source: 'nats:127.0.0.1:4222',
    });
    t.match(audit.natsPermission('subscription', 'md.>', ''), {
      reason: "the kernel's NATS user may not subscribe to md.>",
      source: 'nats',
    });
    // A storm from one source: at most the per-source rate passes; the rest is counted.
    let passed = 0;
    for (let i = 0; i < 50; i++) {
      if (audit.natsPermission('publish', 'sig.x', '127.0.0.1:4222') !== undefined) passed++;
    }
    t.ok(passed < 50, `${passed} of 50 in one second became events`);
    const suppressed =
      (await registry.getSingleMetric('qilin_audit_suppressed_total')?.get())?.values ?? [];
    t.equal(
      suppressed.reduce((n, v) => n + v.value, 0),
      50 - passed,
      'the others are counted as suppressed',
    );
    await audit.close();
    t.ok(
      stored.length >= 1,
      `events made before NATS went to the store on close (${stored.length})`,
    );
  },
);
