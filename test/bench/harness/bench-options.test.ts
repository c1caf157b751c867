/**
 * Unit tests of `qilin bench` option resolution: defaults per scenario, the
 * --smoke preset, k/M suffixes, and every bad value as QLN_CLI_USAGE naming
 * the option, the value and what is allowed.
 */
import t from 'tap';
import {
  SCENARIO_DEFAULTS,
  parseQuantity,
  resolveBenchOptions,
} from '../../../bench/harness/bench-options.js';
import { SCENARIOS } from '../../../bench/harness/bench-report.js';

void t.test('defaults follow the issue: rates, symbols, runs, baselines', (t) => {
  const l = resolveBenchOptions('latency', {});
  t.same(l.rates, [1000, 2000, 5000, 10_000]);
  t.equal(l.symbols, 1000);
  t.equal(l.runs, 3);
  t.same(l.baselines, ['relay', 'hop', 'raw']);
  t.equal(l.coldSeconds, 1);
  t.equal(l.store, 'chdb');
  t.ok(l.progress && l.write && !l.json && !l.smoke);
  const tp = resolveBenchOptions('throughput', {});
  t.same(tp.rates.slice(0, 5), [5000, 10_000, 20_000, 30_000, 40_000]);
  t.equal(tp.sloP99Ms, 10);
  t.same(tp.baselines, ['relay', 'hop', 'raw']);
  const s = resolveBenchOptions('symbols', {});
  t.same(s.symbolCounts, [1, 100, 1000, 10_000]);
  t.equal(s.rate, 5000);
  const f = resolveBenchOptions('fanout', {});
  t.same(f.subscribers, [100, 1000]);
  t.same(f.baselines, ['ws']);
  t.same(s.baselines, ['relay'], 'the hop relay: latency and throughput only by default');
  const soak = resolveBenchOptions('soak', {});
  t.equal(soak.rate, 10_000);
  t.equal(soak.seconds, 300);
  t.end();
});

void t.test('--smoke makes every scenario seconds-long with one run', (t) => {
  for (const s of SCENARIOS) {
    const o = resolveBenchOptions(s, { smoke: true });
    t.ok(o.smoke);
    t.equal(o.runs, 1, `${s}: one run`);
    t.ok(o.seconds <= 4, `${s}: ${o.seconds} s steps`);
    t.ok(o.warmupSeconds < o.seconds);
    t.ok(Math.max(o.rate, ...o.rates) <= 1000, `${s}: tiny rates`);
    if (s === 'symbols') t.ok(Math.max(...o.symbolCounts) <= 100, `${s}: few symbols`);
    else t.ok(o.symbols <= 100, `${s}: few symbols`);
    t.ok(Math.max(...o.subscribers) <= 20 || s !== 'fanout', `${s}: few subscribers`);
  }
  t.same(resolveBenchOptions('latency', { smoke: true, rates: '2k' }).rates, [2000], 'flags win');
  t.end();
});

void t.test('values and suffixes', (t) => {
  const o = resolveBenchOptions('latency', {
    rates: '1k, 2.5k,10_000',
    runs: '5',
    seconds: '20',
    warmupSeconds: '0',
    symbols: '10k',
    baselines: 'raw',
    store: 'clickhouse',
    json: true,
    progress: false,
    write: false,
    resultsDir: '/tmp/x',
    seed: '7',
  });
  t.same(o.rates, [1000, 2500, 10_000]);
  t.equal(o.runs, 5);
  t.equal(o.seconds, 20);
  t.equal(o.warmupSeconds, 0);
  t.equal(o.symbols, 10_000);
  t.same(o.baselines, ['raw']);
  t.equal(o.store, 'clickhouse');
  t.ok(o.json && !o.progress && !o.write);
  t.equal(o.resultsDir, '/tmp/x');
  t.equal(o.seed, 7);
  t.same(resolveBenchOptions('latency', { baselines: 'none' }).baselines, []);
  t.same(
    resolveBenchOptions('latency', { baselines: 'relay,hop' }).baselines,
    ['relay', 'hop'],
    'the hop relay is selectable',
  );
  t.same(resolveBenchOptions('fanout', { baselines: 'hop' }).baselines, ['hop']);
  t.equal(parseQuantity('2M'), 2e6);
  t.ok(Number.isNaN(parseQuantity('12x')));
  t.end();
});

void t.test('bad values are QLN_CLI_USAGE naming the option', (t) => {
  const bad: [Parameters<typeof resolveBenchOptions>[0], Record<string, string>, RegExp][] = [
    ['latency', { rates: 'abc' }, /--rates: "abc"/],
    ['latency', { rates: '2k,1k' }, /--rates.*rising/],
    ['latency', { rates: '1k,,2k' }, /--rates/],
    ['latency', { runs: '0' }, /--runs: "0" \(allowed: an integer from 1 to 50/],
    ['latency', { seconds: 'x' }, /--seconds/],
    [
      'latency',
      { seconds: '5', warmupSeconds: '5' },
      /--warmup-seconds: 5 \(allowed: less than --seconds \(5\)\)/,
    ],
    ['latency', { symbols: '10001' }, /--symbols/],
    [
      'latency',
      { baselines: 'ws' },
      /--baselines: "ws" \(allowed: none, or a comma-separated list of relay, hop, raw\)/,
    ],
    ['latency', { store: 'sqlite' }, /--store: "sqlite" \(allowed: chdb or clickhouse\)/],
    ['throughput', { sloP99Ms: '-1' }, /--slo-p99-ms/],
    ['symbols', { symbolCounts: '100,10' }, /--symbol-counts/],
    ['symbols', { rate: '1.5' }, /--rate/],
    ['fanout', { subscribers: '0' }, /--subscribers/],
    [
      'soak',
      { seconds: '20', intervalSeconds: '30' },
      /--interval-seconds: 30 \(allowed: at most --seconds \(20\)\)/,
    ],
    ['latency', { drainSeconds: '0' }, /--drain-seconds/],
    ['latency', { seed: '0' }, /--seed/],
    ['latency', { coldSeconds: '61' }, /--cold-seconds/],
    ['latency', { readyTimeoutSeconds: '0' }, /--ready-timeout-seconds/],
    ['latency', { settleSeconds: '-1' }, /--settle-seconds/],
  ];
  for (const [scenario, raw, message] of bad) {
    t.throws(
      () => resolveBenchOptions(scenario, raw),
      { code: 'QLN_CLI_USAGE', message },
      JSON.stringify(raw),
    );
  }
  t.end();
});

void t.test('every scenario has defaults with a valid warm-up', (t) => {
  for (const s of SCENARIOS) {
    const d = SCENARIO_DEFAULTS[s];
    t.ok(d.warmupSeconds < d.seconds, s);
    t.ok(d.runs >= 1, s);
  }
  t.end();
});
