/**
 * Unit tests of what turns per-run step results into the report: medians
 * across runs per step, the interleaved subject order, max sustained of a
 * sweep, cold-start ratios, cost-per-tick growth and memory per symbol,
 * fan-out expected deliveries, soak drift, the human latency table, and the
 * run-level helpers (deadline, file names, reported options). No services.
 */
import t from 'tap';
import type { LatencySummary } from '../../../bench/hdr-report.js';
import { resolveBenchOptions } from '../../../bench/harness/bench-options.js';
import type { StepResult } from '../../../bench/harness/bench-report.js';
import {
  benchDeadlineMs,
  reportOptions,
  resultBaseName,
} from '../../../bench/harness/run-bench.js';
import { expectedDeliveries } from '../../../bench/harness/scenarios/fanout.js';
import { coldStarts, rateMetrics, ratioLines } from '../../../bench/harness/scenarios/latency.js';
import {
  ratioPairs,
  ratioRows,
  subjectOrder,
  targetLines,
} from '../../../bench/harness/scenarios/scenario.js';
import { soakDrift } from '../../../bench/harness/scenarios/soak.js';
import {
  costRatios,
  kibPerSymbol,
  symbolsWarmup,
} from '../../../bench/harness/scenarios/symbols.js';
import { maxSustained } from '../../../bench/harness/scenarios/throughput.js';
import { findRow, latencyTable, medianSteps } from '../../../bench/harness/step-summary.js';

const lat = (p99: number, count = 100): LatencySummary => ({
  count,
  min: 1,
  mean: p99 / 3,
  p50: p99 / 4,
  p90: p99 / 2,
  p99,
  p999: p99 * 1.5,
  max: p99 * 2,
});

function step(over: Partial<StepResult> = {}): StepResult {
  return {
    subject: 'kernel',
    run: 1,
    rate: 1000,
    symbols: 1000,
    subscribers: 1,
    seconds: 10,
    warmupSeconds: 3,
    cold: null,
    publish: { sent: 10_000, measuredSent: 7000, achievedRate: 1000, maxTurnGapMs: 2 },
    arrivals: {
      delivered: 9000,
      measured: 6300,
      ticksMatched: 9000,
      duplicates: 0,
      stale: 0,
      unknown: 0,
    },
    perSubscriber: { min: 9000, max: 9000 },
    latency: lat(1000),
    latencyUncorrected: lat(800),
    kernel: null,
    natsSlowConsumers: 0,
    processes: {
      kernel: {
        pid: 1,
        cpuPercent: 30,
        cpuUsPerTick: 200,
        rssAfterWarmupMiB: 300,
        rssMaxMiB: 310,
        rssEndMiB: 305,
      },
    },
    idleRssMiB: null,
    intervals: [],
    pass: true,
    reasons: [],
    ...over,
  };
}

void t.test('medians across runs, per step', (t) => {
  const runs = [
    [
      step({ run: 1, latency: lat(1000) }),
      step({ run: 1, subject: 'relay', latency: lat(200), processes: {} }),
    ],
    [
      step({ run: 2, latency: lat(3000), pass: false, reasons: ['p99 too high'] }),
      step({ run: 2, subject: 'relay', latency: lat(400), processes: {} }),
    ],
    [
      step({ run: 3, latency: lat(2000) }),
      step({ run: 3, subject: 'relay', latency: lat(300), processes: {} }),
    ],
  ];
  const rows = medianSteps(runs);
  t.equal(rows.length, 2);
  const k = findRow(rows, 'kernel', { rate: 1000 })!;
  t.equal(k.runs, 3);
  t.equal(k.passed, 2);
  t.equal(k.latency.p99, 2000, 'median of 1000, 3000, 2000');
  t.same(k.reasons, ['p99 too high']);
  t.equal(k.cpuUsPerTick['kernel'], 200);
  t.equal(findRow(rows, 'relay', {})!.latency.p99, 300);
  t.equal(findRow(rows, 'raw', {}), undefined);
  const table = latencyTable(rows, 'rate');
  t.match(table, /^offered\s+subject/);
  t.match(table, /1k\/s\s+kernel\s+1k\s+10,000\s+9,000\s+9,000\s+500\s+1,000\s+2,000/);
  t.equal(k.received, 9000, 'a baseline-style step: its arrivals');
  t.match(table, /1\/3 failed/);
  t.end();
});

void t.test('ratios: kernel / each baseline, and hop relay / uWS relay (the hop alone)', (t) => {
  const proc = (cpuUsPerTick: number) => ({
    pid: 2,
    cpuPercent: 10,
    cpuUsPerTick,
    rssAfterWarmupMiB: 60,
    rssMaxMiB: 60,
    rssEndMiB: 60,
  });
  const at = (rate: number) => [
    step({ rate, latency: lat(4000) }), // kernel: 200 µs/tick
    step({ rate, subject: 'relay', latency: lat(1000), processes: { relay: proc(40) } }),
    step({ rate, subject: 'hop', latency: lat(2000), processes: { 'hop-relay': proc(50) } }),
    step({ rate, subject: 'raw', latency: lat(500), processes: {} }),
  ];
  const rows = medianSteps([[...at(2000), ...at(1000)]]);
  t.same(ratioPairs(['relay', 'hop', 'raw']), [
    ['kernel', 'relay'],
    ['kernel', 'hop'],
    ['kernel', 'raw'],
    ['hop', 'relay'],
  ]);
  t.same(
    ratioPairs(['hop', 'raw']),
    [
      ['kernel', 'hop'],
      ['kernel', 'raw'],
    ],
    'no hop/relay without the relay',
  );
  const r = ratioRows(rows, ['relay', 'hop', 'raw'], 'rate');
  t.same(
    r.map((x) => [x.at, `${x.subject}/${x.baseline}`, x.p99, x.cpuPerTick]),
    [
      [1000, 'kernel/relay', 4, 5],
      [1000, 'kernel/hop', 2, 4],
      [1000, 'kernel/raw', 8, NaN],
      [1000, 'hop/relay', 2, 1.25],
      [2000, 'kernel/relay', 4, 5],
      [2000, 'kernel/hop', 2, 4],
      [2000, 'kernel/raw', 8, NaN],
      [2000, 'hop/relay', 2, 1.25],
    ],
    'rising rate, pairs in order; CPU per tick of the hop relay process',
  );
  const lines = ratioLines(rows, ['relay', 'hop']);
  t.equal(lines.length, 6);
  t.match(
    lines[2]!,
    /@1k\/s\s+hop relay \/ uWS relay:\s+p50 2\.00x, p99 2\.00x, CPU per tick 1\.25x/,
  );
  const m = rateMetrics(rows, ['relay', 'hop'], []);
  t.equal(m['ratio.hop/relay@1000.p99']?.value, 2);
  t.equal(m['ratio.kernel/hop@2000.cpuPerTick']?.value, 4);
  t.equal(m['cpuUsPerTick.hop@1000']?.value, 50, 'CPU per tick of the hop relay process');
  t.equal(m['rssMiB.hop@1000']?.value, 60);
  t.match(latencyTable(rows, 'rate'), /hop relay\s+1k\s+10,000\s+9,000\s+9,000/);
  t.end();
});

void t.test('subjects alternate kernel-first and baselines-first by run', (t) => {
  t.same(subjectOrder(1, ['relay', 'raw']), ['kernel', 'relay', 'raw']);
  t.same(subjectOrder(2, ['relay', 'raw']), ['relay', 'raw', 'kernel']);
  t.same(subjectOrder(3, []), ['kernel']);
  t.end();
});

void t.test('max sustained is the last pass before the first failure', (t) => {
  t.equal(
    maxSustained([
      { rate: 5000, pass: true },
      { rate: 10_000, pass: true },
      { rate: 20_000, pass: false },
    ]),
    10_000,
  );
  t.equal(
    maxSustained([
      { rate: 5000, pass: false },
      { rate: 10_000, pass: true },
    ]),
    0,
    'a later pass does not count',
  );
  t.equal(maxSustained([]), 0);
  t.end();
});

void t.test('cold start: first-second p99 over the steady p99, medians across runs', (t) => {
  const cold = coldStarts([
    [step({ cold: lat(9000, 1000), latency: lat(1000) }), step({ rate: 2000 })],
    [step({ cold: lat(3000, 1000), latency: lat(1000) })],
    [step({ cold: lat(6000, 1000), latency: lat(2000) })],
  ]);
  t.equal(cold.length, 1);
  t.equal(cold[0]!.coldP99, 6000);
  t.equal(cold[0]!.steadyP99, 1000);
  t.equal(cold[0]!.ratio, 3, 'median of 9, 3 and 3');
  t.equal(cold[0]!.coldCount, 1000);
  t.end();
});

void t.test('symbols: warm-up covers two ticks per symbol; KiB per symbol; cost growth', (t) => {
  t.equal(symbolsWarmup(3, 1000, 5000), 3);
  t.equal(symbolsWarmup(3, 10_000, 5000), 4);
  t.equal(kibPerSymbol(step({ symbols: 1000, idleRssMiB: 200 })), (100 * 1024) / 1000);
  t.ok(Number.isNaN(kibPerSymbol(step({ idleRssMiB: null }))));
  const row = (subject: 'kernel' | 'relay', symbols: number, cpuUsPerTick: number) => ({
    subject,
    symbols,
    cpuUsPerTick,
    cpuPercent: 0,
    idleRssMiB: 0,
    rssAfterWarmupMiB: 0,
    kibPerSymbol: 0,
    p50: 0,
    p99: 0,
  });
  const rows = [
    row('kernel', 1, 90),
    row('kernel', 1000, 100),
    row('kernel', 10_000, 130),
    row('relay', 1000, 50),
    row('relay', 10_000, 50),
  ];
  const c = costRatios(rows, ['kernel', 'relay']);
  t.same(
    c.map((x) => [x.subject, x.from, x.to, x.ratio]),
    [
      ['kernel', 1000, 10_000, 1.3],
      ['relay', 1000, 10_000, 1],
    ],
  );
  const smoke = costRatios([row('kernel', 10, 100), row('kernel', 100, 150)], ['kernel']);
  t.same(
    smoke.map((x) => [x.from, x.to, x.ratio]),
    [[10, 100, 1.5]],
    'smallest → largest otherwise',
  );
  t.same(costRatios([row('kernel', 10, 1)], ['kernel']), []);
  t.end();
});

void t.test('fan-out: expected deliveries', (t) => {
  t.equal(expectedDeliveries(step({ subject: 'ws', subscribers: 10 })), 100_000);
  t.equal(
    expectedDeliveries(
      step({
        subscribers: 10,
        kernel: {
          sent: 1,
          received: 1,
          rejected: 0,
          grown: {} as never,
          pass: true,
          reasons: [],
          predictionsEmitted: 640,
        },
      }),
    ),
    6400,
  );
  t.end();
});

void t.test('soak drift: slopes over the intervals after the warm-up', (t) => {
  const iv = (tSec: number, kernelMiB: number, p99: number, count = 100) => ({
    t: tSec,
    latency: lat(p99, count),
    rssMiB: { kernel: kernelMiB, 'nats-server': 14 },
    cpuPercent: {},
  });
  const d = soakDrift(
    step({
      warmupSeconds: 10,
      intervals: [
        iv(10, 500, 99_999, 0),
        iv(70, 300, 1000),
        iv(130, 302, 1000),
        iv(190, 304, 1600),
      ],
    }),
  );
  const close = (a: number | undefined, b: number): boolean => Math.abs((a ?? NaN) - b) < 1e-9;
  t.ok(
    close(d.rssSlopeMiBPerMin['kernel'], 2),
    '2 MiB per minute; the warm-up interval is left out',
  );
  t.equal(d.rssSlopeMiBPerMin['nats-server'], 0);
  t.equal(d.rssFirstMiB['kernel'], 300);
  t.equal(d.rssLastMiB['kernel'], 304);
  t.equal(d.p99First, 1000);
  t.equal(d.p99Last, 1600);
  t.ok(close(d.p99SlopeUsPerMin, 300), 'p99 +300 µs per minute');
  t.end();
});

void t.test('target lines', (t) => {
  const lines = targetLines([
    { name: 'a', value: 1.5, limit: 2, unit: 'x', pass: true },
    { name: 'b', value: 400, limit: 300, unit: 'µs', pass: false },
    { name: 'c', value: Number.NaN, limit: 3, unit: 'x', pass: null },
    { name: 'd', value: 0, limit: 30_000, unit: 'ticks/s', pass: false },
  ]);
  t.same(lines, [
    '  PASS  a: 1.50x (target 2.00x)',
    '  FAIL  b: 400 µs (target 300 µs)',
    '  n/a   c: n/a (target 3.00x)',
    '  FAIL  d: 0 ticks/s (target 30,000 ticks/s)',
  ]);
  t.end();
});

void t.test('run helpers: deadline, file name, options per scenario', (t) => {
  const o = resolveBenchOptions('latency', {});
  const plan = { seconds: 360, steps: 36, starts: 9 };
  const ms = benchDeadlineMs(o, plan);
  t.ok(ms > 2 * 360 * 1000, 'more than twice the planned load');
  t.ok(ms < 4 * 3600 * 1000, 'but bounded');
  t.equal(
    resultBaseName('latency', new Date('2026-11-27T15:43:06.318Z')),
    'latency-2026-11-27T15-43-06Z',
  );
  const r = reportOptions(o);
  t.ok('rates' in r && !('symbolCounts' in r) && !('subscribers' in r));
  const s = reportOptions(resolveBenchOptions('symbols', {}));
  t.ok('symbolCounts' in s && !('rates' in s));
  t.end();
});
