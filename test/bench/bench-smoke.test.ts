/**
 * Every `qilin bench` scenario with `--smoke`, end to end, as a user runs it:
 * `node bin/qilin.js bench <scenario> --smoke --json` from this checkout,
 * which starts its own nats-server and the real kernel (`node bin/qilin.js
 * start`), the baselines and the load process, against the local Redis.
 * Asserts counts, never timings: ticks were sent, the kernel received
 * exactly what was sent, predictions were matched, baselines delivered every
 * tick, the report and chart were written with the expected fields, compare
 * reads the report, and no process the bench started outlives it.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import t, { type Test } from 'tap';
import type { BenchReport, Scenario, StepResult } from '../../bench/harness/bench-report.js';
import { isAlive } from '../../bench/harness/proc-stats.js';
import { ensureServices, repoRoot } from '../helpers/services.js';

interface Run {
  code: number | null;
  report: BenchReport;
  stderr: string;
  /** Pids of every process the bench said it started. */
  pids: number[];
}

async function bench(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const child = spawn(process.execPath, ['bin/qilin.js', 'bench', ...args], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const pids = [...stderr.matchAll(/started [\w-]+ pid (\d+)/g)].map((m) => Number(m[1]));
  let report: BenchReport;
  try {
    report = JSON.parse(stdout) as BenchReport;
  } catch {
    throw new Error(
      `bench ${args.join(' ')} exited ${code}; no JSON on stdout. stderr:\n${stderr}`,
    );
  }
  return { code, report, stderr, pids };
}

/** Poll until no pid is alive; false after `ms`. */
async function allGone(pids: number[], ms = 10_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (pids.some(isAlive)) {
    if (Date.now() > until) return false;
    await delay(100);
  }
  return true;
}

// The heaviest files of the suite (~2–4 min on a loaded 2-core machine): more than
// .taprc's 300 s per file, so a slow CI machine is not reported as a failure.
t.setTimeout(540_000);

void t.test('qilin bench --smoke, every scenario', async (t) => {
  const services = await ensureServices();
  const dir = mkdtempSync(join(tmpdir(), 'qilin-bench-smoke-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const env = { ...process.env, QILIN_REDIS_URL: services.redisUrl };
  const reports: Partial<Record<Scenario, BenchReport>> = {};

  /** The checks every step of every scenario must pass. */
  const checkSteps = (t: Test, r: BenchReport): void => {
    const steps: StepResult[] = r.runs.flat();
    t.ok(steps.length > 0, 'steps ran');
    for (const s of steps) {
      const at = `${s.subject} @${s.rate}/s ${s.symbols} sym ${s.subscribers} subs`;
      t.ok(s.publish.sent > 0, `${at}: ticks sent (${s.publish.sent})`);
      t.ok(s.latency.count > 0, `${at}: latency samples`);
      t.equal(s.arrivals.duplicates, 0, `${at}: no duplicates`);
      t.equal(s.arrivals.unknown, 0, `${at}: no unknown arrivals`);
      if (s.subject === 'kernel') {
        t.ok(s.kernel !== null, `${at}: kernel counters read`);
        t.equal(
          s.kernel?.received,
          s.publish.sent,
          `${at}: the kernel received exactly what was sent`,
        );
        t.same(s.kernel?.reasons, [], `${at}: no loss counter grew`);
        t.ok(
          s.arrivals.ticksMatched > 0,
          `${at}: predictions matched (${s.arrivals.ticksMatched})`,
        );
        t.ok((s.processes.kernel?.rssEndMiB ?? 0) > 0, `${at}: kernel RSS read`);
      } else {
        t.equal(
          s.arrivals.delivered,
          s.publish.sent * s.subscribers,
          `${at}: every tick delivered to every subscriber`,
        );
      }
      t.ok((s.processes['nats-server']?.rssEndMiB ?? 0) > 0, `${at}: nats-server RSS read`);
    }
  };

  const run = async (scenario: Scenario, extra: string[] = []): Promise<BenchReport> => {
    const r = await bench([scenario, '--smoke', '--json', '--results-dir', dir, ...extra], env);
    t.equal(r.code, 0, `${scenario}: exit 0`);
    t.equal(r.report.scenario, scenario);
    t.equal(r.report.bench, 'qilin-bench');
    t.equal(r.report.runs.length, 1, `${scenario}: one run`);
    t.ok(Object.keys(r.report.metrics).length > 0, `${scenario}: metrics for compare`);
    t.ok(
      r.report.files !== undefined && existsSync(r.report.files.json),
      `${scenario}: JSON written`,
    );
    const svg = r.report.files === undefined ? '' : readFileSync(r.report.files.svg, 'utf8');
    t.match(svg, /^<svg [^>]*>[\s\S]*<\/svg>\n$/, `${scenario}: SVG written`);
    t.match(svg, /data-series="kernel/, `${scenario}: the chart has the kernel series`);

    t.ok(r.pids.length >= 3, `${scenario}: started ${r.pids.length} processes`);
    t.ok(await allGone(r.pids), `${scenario}: no process outlives the bench`);
    await t.test(`${scenario} steps`, (t) => {
      checkSteps(t, r.report);
      t.end();
    });
    reports[scenario] = r.report;
    return r.report;
  };

  const latency = await run('latency');
  const subjects = latency.runs[0]!.map((s) => s.subject);
  t.same(
    [...subjects].sort(),
    ['hop', 'kernel', 'raw', 'relay'],
    'latency: kernel, relay, hop relay and raw NATS',
  );
  // The hop relay: every tick through a worker's ring to the one subscriber
  // (checkSteps), from its own process, measured and reported beside the relay.
  const hop = latency.runs[0]!.find((s) => s.subject === 'hop')!;
  t.ok(hop.publish.sent > 0, 'latency: ticks sent to the hop relay');
  t.equal(hop.arrivals.delivered, hop.publish.sent, 'latency: the hop relay delivered every tick');
  t.equal(hop.arrivals.ticksMatched, hop.publish.sent, 'latency: every tick matched');
  t.ok((hop.processes['hop-relay']?.rssEndMiB ?? 0) > 0, 'latency: hop relay RSS read');
  t.ok((hop.processes['hop-relay']?.cpuUsPerTick ?? 0) > 0, 'latency: hop relay CPU per tick read');
  const setup = latency.setup['hop'] as { workers: number; partitions: number } | undefined;
  t.ok(setup !== undefined && setup.workers >= 1 && setup.partitions === 16, 'latency: hop setup');
  t.ok('ratio.kernel/hop@500.p99' in latency.metrics, 'latency: kernel / hop relay');
  t.ok('ratio.hop/relay@500.p99' in latency.metrics, 'latency: hop relay / relay');
  t.ok('cpuUsPerTick.hop@500' in latency.metrics);
  t.match(
    readFileSync(latency.files!.svg, 'utf8'),
    /data-series="hop relay p99"/,
    'latency: the chart has the hop relay',
  );
  const cold = (latency.summary['coldStart'] as { subject: string; coldP99: number }[]) ?? [];
  t.ok(
    cold.some((c) => c.subject === 'kernel' && c.coldP99 > 0),
    'latency: kernel cold start',
  );
  t.ok('latency.kernel@500.p99' in latency.metrics);
  t.ok('latency.hop@500.p99' in latency.metrics);
  t.ok('ratio.kernel/relay@500.p99' in latency.metrics);
  t.equal(latency.targets.length, 4, 'latency: the four issue targets');

  const throughput = await run('throughput');
  const max = throughput.summary['maxSustained'] as Record<string, number>;
  for (const s of ['kernel', 'relay', 'hop', 'raw'])
    t.type(max[s], 'number', `throughput: max sustained of ${s}`);
  t.ok('maxSustained.kernel' in throughput.metrics);
  t.ok('maxSustained.hop/relay' in throughput.metrics, 'throughput: hop relay / relay');
  t.ok(
    throughput.runs[0]!.some((s) => s.subject === 'hop'),
    'throughput: the hop relay ran its sweep',
  );

  const symbols = await run('symbols');
  const rows = symbols.summary['rows'] as {
    subject: string;
    symbols: number;
    cpuUsPerTick: number;
    idleRssMiB: number;
  }[];
  for (const n of [10, 100]) {
    const k = rows.find((r) => r.subject === 'kernel' && r.symbols === n);
    t.ok(k !== undefined && k.cpuUsPerTick > 0, `symbols: kernel CPU per tick at ${n}`);
    t.ok(k !== undefined && k.idleRssMiB > 0, `symbols: idle kernel RSS at ${n}`);
  }
  t.ok(Array.isArray(symbols.summary['costRatios']));

  const fanout = await run('fanout');
  for (const s of fanout.runs.flat()) {
    t.equal(
      s.perSubscriber.min,
      s.perSubscriber.max,
      `fanout ${s.subject} ${s.subscribers}: every subscriber got the same`,
    );
  }
  t.same(
    [...new Set(fanout.runs.flat().map((s) => s.subscribers))],
    [5, 20],
    'fanout: 5 and 20 subscribers',
  );

  const soak = await run('soak');
  for (const s of soak.runs.flat()) {
    t.ok(s.intervals.length >= 2, `soak ${s.subject}: ${s.intervals.length} intervals`);
    t.ok(
      s.intervals.every((i) => Object.keys(i.rssMiB).length >= 3),
      `soak ${s.subject}: RSS of every process per interval`,
    );
  }

  // compare reads a real report: against itself nothing regresses.
  const file = latency.files!.json;
  const cmp = spawn(process.execPath, ['bin/qilin.js', 'bench', 'compare', file, file, '--json'], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  cmp.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
  t.equal(await new Promise((resolve) => cmp.once('exit', resolve)), 0, 'compare exits 0');
  const c = JSON.parse(out) as { regressions: number; rows: unknown[] };
  t.equal(c.regressions, 0);
  t.equal(c.rows.length, Object.keys(latency.metrics).length);
  t.same(Object.keys(reports).sort(), ['fanout', 'latency', 'soak', 'symbols', 'throughput']);
});
