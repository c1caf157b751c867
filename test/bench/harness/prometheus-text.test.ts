/**
 * Unit tests of the /metrics parser and the kernel loss check: Prometheus
 * text with labels, escapes, special values and comments; sums over labels;
 * a missing series reads as 0; received must equal sent and no loss counter
 * may grow.
 */
import t from 'tap';
import { LOSS_COUNTERS, checkKernelLoss } from '../../../bench/harness/loss-check.js';
import { MetricsSnapshot, parsePrometheusText } from '../../../bench/harness/prometheus-text.js';

const SCRAPE = `# HELP qilin_ticks_received_total Market messages accepted by the ingest stage
# TYPE qilin_ticks_received_total counter
qilin_ticks_received_total 1000
# HELP qilin_ticks_rejected_total Market messages refused, by reason
# TYPE qilin_ticks_rejected_total counter
qilin_ticks_rejected_total{reason="bad_json"} 2
qilin_ticks_rejected_total{reason="sym_mismatch"} 3
qilin_ticks_dropped_total{ring="worker"} 0
qilin_ticks_dropped_total{ring="store"} 0
qilin_actor_outputs_total{kind="prediction"} 640
qilin_actor_outputs_total{kind="quality"} 12
weird{a="x\\"y",b="line\\nbreak",c="back\\\\slash"} 1.5e3 1732300000000
qilin_stage_latency_seconds_bucket{stage="total",le="+Inf"} 42
nan_gauge NaN
inf_gauge +Inf
neg_inf -Inf
not a metric line
broken{a="1" 5
`;

void t.test('parses names, labels, escapes, values and timestamps', (t) => {
  const samples = parsePrometheusText(SCRAPE);
  const weird = samples.find((s) => s.name === 'weird');
  t.same(weird, {
    name: 'weird',
    labels: { a: 'x"y', b: 'line\nbreak', c: 'back\\slash' },
    value: 1500,
  });
  t.same(samples.find((s) => s.name === 'qilin_stage_latency_seconds_bucket')?.labels, {
    stage: 'total',
    le: '+Inf',
  });
  t.ok(Number.isNaN(samples.find((s) => s.name === 'nan_gauge')?.value));
  t.equal(samples.find((s) => s.name === 'inf_gauge')?.value, Number.POSITIVE_INFINITY);
  t.equal(samples.find((s) => s.name === 'neg_inf')?.value, Number.NEGATIVE_INFINITY);
  t.notOk(
    samples.some((s) => s.name === 'not' || s.name === 'broken'),
    'bad lines skipped',
  );
  t.end();
});

void t.test('sums over labels, with a label filter; absent series read as 0', (t) => {
  const m = MetricsSnapshot.parse(SCRAPE);
  t.equal(m.sum('qilin_ticks_received_total'), 1000);
  t.equal(m.sum('qilin_ticks_rejected_total'), 5);
  t.equal(m.sum('qilin_actor_outputs_total', { kind: 'prediction' }), 640);
  t.equal(m.sum('qilin_nats_slow_consumer_total'), 0);
  t.ok(m.has('qilin_ticks_dropped_total'));
  t.notOk(m.has('qilin_nats_slow_consumer_total'));
  t.end();
});

const scrape = (lines: string[]): MetricsSnapshot => MetricsSnapshot.parse(lines.join('\n'));

void t.test('loss check passes when received = sent and nothing grew', (t) => {
  const before = scrape([
    'qilin_ticks_received_total 100',
    'qilin_ticks_dropped_total{ring="worker"} 4',
  ]);
  const after = scrape([
    'qilin_ticks_received_total 1100',
    'qilin_ticks_dropped_total{ring="worker"} 4',
  ]);
  const c = checkKernelLoss(before, after, 1000);
  t.ok(c.pass);
  t.same(c.reasons, []);
  t.equal(c.received, 1000);
  t.same(Object.keys(c.grown).sort(), [...LOSS_COUNTERS].sort(), 'every loss counter reported');
  t.end();
});

void t.test(
  'loss check fails on short receipt (naming rejects), extras and any grown counter',
  (t) => {
    const before = scrape(['qilin_ticks_received_total 0']);
    const short = checkKernelLoss(
      before,
      scrape([
        'qilin_ticks_received_total 990',
        'qilin_ticks_rejected_total{reason="bad_json"} 10',
      ]),
      1000,
    );
    t.notOk(short.pass);
    t.equal(short.rejected, 10);
    t.match(short.reasons[0], /received 990 of 1000 ticks \(10 rejected\)/);

    const extra = checkKernelLoss(before, scrape(['qilin_ticks_received_total 1001']), 1000);
    t.notOk(extra.pass);
    t.match(extra.reasons[0], /received 1001 ticks but the bench sent 1000/);

    for (const name of LOSS_COUNTERS) {
      const c = checkKernelLoss(
        before,
        scrape(['qilin_ticks_received_total 1000', `${name}{x="y"} 3`]),
        1000,
      );
      t.notOk(c.pass, `${name} growing fails the step`);
      t.equal(c.grown[name], 3);
      t.match(c.reasons.join(), new RegExp(`${name} \\+3`));
    }
    t.end();
  },
);
