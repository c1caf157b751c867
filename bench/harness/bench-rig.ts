import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { loadConfig } from '../../config/config.js';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';
import type { ServicesOptions } from '../../ops/services/service-manager.js';
import type { LatencySummary } from '../hdr-report.js';
import type { BenchOptions } from './bench-options.js';
import type {
  IntervalSample,
  ProcessFigures,
  ProcName,
  PublishFigures,
  StepResult,
  Subject,
} from './bench-report.js';
import {
  clickhouseCommand,
  pidOfUrl,
  resolveServices,
  type BenchServices,
} from './bench-services.js';
import { ChildProcesses } from './child-processes.js';
import { freePort } from './free-port.js';
import { KernelProcess, kernelLogFile, snapshotPrefixOf } from './kernel-process.js';
import { runLoadStep, type LoadStepRun } from './load-client.js';
import { checkKernelLoss } from './loss-check.js';
import { natsSlowConsumers, startPrivateNats, type PrivateNats } from './nats-server-process.js';
import { cpuPercent, readProc, type ProcSample } from './proc-stats.js';
import { MetricsSnapshot } from './prometheus-text.js';
import { startBaselineServer } from './server-process.js';
import { advanceSeq } from './send-table.js';
import { fmtRate, fmtUs } from './text-table.js';

/**
 * The bench's test rig: its private nats-server, the services the kernel
 * needs, the subjects (a fresh kernel / relay / ws server per run), and the
 * step runner that drives one load step against one subject and turns what
 * it saw into a {@link StepResult}.
 *
 * ```
 *  BenchRig.open ─► private nats-server (partition mapping), Redis URL, temp dir
 *  startSubject('kernel') ─► node bin/qilin.js start … (fresh state dir), ready poll
 *  runStep(handle, plan):
 *     settle (subject + nats-server idle) ─► fork load process ─► ready:
 *     scrape /metrics, /proc readings ─► go ─► measuring ─► published ─►
 *     drain (load process) + kernel input drained (/metrics) ─► result
 *     ─► loss check, CPU/RSS per process, pass/fail
 *  close ─► every child stopped, temp dirs removed, bench database dropped
 * ```
 */

/** A subject started for one run. */
export interface SubjectHandle {
  subject: Subject;
  /** Its process (raw: none; the subscriber lives in the load process). */
  pid: number | undefined;
  wsUrl: string | undefined;
  kernel: KernelProcess | undefined;
  /** `--nodes 2`: the second kernel process (its CPU and memory reported as kernel-b). */
  kernelB?: KernelProcess | undefined;
  /** Steps run on it so far (the first one records the cold start). */
  steps: number;
  /** Seq of the next tick per symbol, by symbol count. */
  seq: Map<number, Float64Array>;
  stop(): Promise<void>;
}

/** One step to run. */
export interface StepPlan {
  run: number;
  rate: number;
  symbols: number;
  subscribers: number;
  seconds: number;
  warmupSeconds: number;
  /** Throughput: fail above this p99, µs (undefined: no SLO). */
  sloP99Us?: number;
  /** Measure the subject's RSS before the load (symbols scenario). */
  measureIdle?: boolean;
  /** Soak: interval length, s (0: none). */
  intervalSeconds?: number;
  /** Progress: seconds of load done in this step so far. */
  onProgress?: (stepSeconds: number) => void;
}

/** Environment of the rig, given by the CLI. */
export interface RigContext {
  repoRoot: string;
  /** Local services (when QILIN_REDIS_URL & co. are not set). */
  servicesOptions: () => ServicesOptions;
  /** Status lines (stderr). */
  say: (line: string) => void;
}

const MARKET_PREFIX = 'md.bench';
const MIB = 1024 * 1024;
/** A process under 15 % of a core over SETTLE_WINDOW_MS counts as idle. */
const IDLE_PERCENT = 15;
const SETTLE_WINDOW_MS = 250;

/** The rig of one bench invocation. */
export class BenchRig {
  readonly opts: BenchOptions;
  readonly ctx: RigContext;
  readonly children: ChildProcesses;
  readonly dir: string;
  readonly runId: string;
  readonly apiKey: string;
  readonly account: string;
  /** The kernel's default market partitions (its default config). */
  readonly partitions: number;
  /**
   * The hop relay's worker threads and ring bytes: the kernel's defaults
   * (workers = cores), so the baseline has the kernel's hop.
   */
  readonly hop: { workers: number; partitions: number; ringBytes: number };
  nats!: PrivateNats;
  services!: BenchServices;
  clickhouse: { url: string; database: string; pid: number | undefined } | undefined;
  /** Per kernel start: ready time and warn/error lines logged. */
  readonly kernelStarts: {
    label: string;
    readySeconds: number;
    logLines: number;
    pid: number;
    /** The first warn/error lines the kernel logged (what happened, when something did). */
    log: string[];
  }[] = [];
  private kernelCount = 0;
  private readonly deadlineMs: number;

  private constructor(opts: BenchOptions, ctx: RigContext, deadlineMs: number) {
    this.opts = opts;
    this.ctx = ctx;
    this.deadlineMs = deadlineMs;
    this.runId = randomBytes(4).toString('hex');
    this.apiKey = `bench${this.runId}key`;
    this.account = `bench-${process.pid}`;
    const defaults = loadConfig({ env: {} });
    this.partitions = defaults.natsPartitions;
    this.hop = {
      workers: defaults.workers,
      partitions: this.partitions,
      ringBytes: defaults.ringBytes,
    };
    this.dir = mkdtempSync(join(tmpdir(), 'qilin-bench-'));
    this.children = new ChildProcesses({
      onStart: (name, pid) => ctx.say(`  started ${name} pid ${pid}`),
    });
    this.children.removeAtEnd(this.dir);
    ctx.say(`  temp dir ${this.dir}`);
  }

  /**
   * Start the rig: resolve Redis (and ClickHouse), start the private
   * nats-server. `deadlineMs` bounds every child (the whole bench's budget).
   */
  static async open(opts: BenchOptions, ctx: RigContext, deadlineMs: number): Promise<BenchRig> {
    const rig = new BenchRig(opts, ctx, deadlineMs);
    try {
      rig.services = await resolveServices(opts.store === 'clickhouse', ctx.servicesOptions);
      if (opts.store === 'clickhouse') {
        const url = rig.services.clickhouseUrl!;
        const database = `qilin_bench_${process.pid}_${rig.runId}`;
        rig.clickhouse = { url, database, pid: await pidOfUrl(url) };
      }
      const partitions = rig.partitions > 0 ? rig.partitions : 1;
      rig.nats = await startPrivateNats(
        rig.children,
        join(rig.dir, 'nats'),
        partitions,
        deadlineMs,
      );
      return rig;
    } catch (err) {
      await rig.close();
      throw err;
    }
  }

  /** Start a fresh subject for a run (`label` names it in logs). */
  async startSubject(subject: Subject, label: string): Promise<SubjectHandle> {
    const base = {
      subject,
      steps: 0,
      seq: new Map<number, Float64Array>(),
    };
    if (subject === 'kernel') {
      const n = ++this.kernelCount;
      const stateDir = join(this.dir, `kernel-${n}`);
      mkdirSync(stateDir, { recursive: true });
      const startNode = async (
        dir: string,
        logName: string,
        env: Record<string, string>,
      ): Promise<KernelProcess> =>
        KernelProcess.start(this.children, {
          repoRoot: this.ctx.repoRoot,
          natsUrl: this.nats.url,
          redisUrl: this.services.redisUrl,
          httpPort: await freePort(),
          apiKey: this.apiKey,
          stateDir: dir,
          account: this.account,
          ...(this.clickhouse !== undefined
            ? { clickhouse: { url: this.clickhouse.url, database: this.clickhouse.database } }
            : {}),
          logFile: kernelLogFile(this.dir, logName),
          deadlineMs: this.deadlineMs,
          readyTimeoutMs: this.opts.readyTimeoutSeconds * 1000,
          env,
        });
      // --nodes 2: B takes the second half of the partitions, A the first;
      // both relay their frames to each other (cluster fan-out).
      let kernelB: KernelProcess | undefined;
      let nodeEnv: Record<string, string> = {};
      if (this.opts.nodes === 2) {
        const half = this.partitions >> 1;
        const stateDirB = join(this.dir, `kernel-${n}-b`);
        mkdirSync(stateDirB, { recursive: true });
        kernelB = await startNode(stateDirB, `${n}-b`, {
          QILIN_KERNEL_PARTITIONS: `${half}-${this.partitions - 1}`,
          QILIN_CLUSTER_FANOUT: 'true',
          QILIN_KERNEL_ID: `bench-${this.runId}-${n}-b`,
        });
        nodeEnv = {
          QILIN_KERNEL_PARTITIONS: `0-${half - 1}`,
          QILIN_CLUSTER_FANOUT: 'true',
          QILIN_KERNEL_ID: `bench-${this.runId}-${n}-a`,
        };
      }
      const kernel = await startNode(stateDir, String(n), nodeEnv);
      return {
        ...base,
        pid: kernel.pid,
        wsUrl: `ws://127.0.0.1:${kernel.port}/ws`,
        kernel,
        kernelB,
        stop: async () => {
          await this.children.stop(kernel.child, 20_000);
          if (kernelB !== undefined) await this.children.stop(kernelB.child, 20_000);
          await this.dropSnapshots([
            snapshotPrefixOf(kernel.port, stateDir),
            ...(kernelB === undefined
              ? []
              : [snapshotPrefixOf(kernelB.port, join(this.dir, `kernel-${n}-b`))]),
          ]);
          const lines = kernel.logLines();
          this.kernelStarts.push({
            label,
            readySeconds: kernel.readySeconds,
            logLines: lines.length,
            pid: kernel.pid,
            log: lines.slice(0, 20).map((l) => l.slice(0, 500)),
          });
          for (const l of lines.slice(0, 5))
            this.ctx.say(`  kernel (${label}) logged: ${l.slice(0, 300)}`);
          rmSync(stateDir, { recursive: true, force: true });
        },
      };
    }
    if (subject === 'relay' || subject === 'hop' || subject === 'ws') {
      const server = await startBaselineServer(
        this.children,
        subject,
        this.nats.url,
        this.deadlineMs,
        subject === 'hop'
          ? [String(this.hop.workers), String(this.hop.partitions), String(this.hop.ringBytes)]
          : [],
      );
      return {
        ...base,
        pid: server.child.pid,
        wsUrl: `ws://127.0.0.1:${server.port}/ws`,
        kernel: undefined,
        stop: async () => {
          await this.children.stop(server.child, 5000);
        },
      };
    }
    return { ...base, pid: undefined, wsUrl: undefined, kernel: undefined, stop: async () => {} };
  }

  /** Delete a stopped bench kernel's snapshot keys (they would pile up in the shared Redis). */
  private async dropSnapshots(prefixes: string[]): Promise<void> {
    const redis = new Redis(this.services.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      for (const prefix of prefixes) {
        const keys = await redis.keys(`${prefix}*`);
        if (keys.length > 0) await redis.del(...keys);
      }
    } catch (err) {
      this.ctx.say(`  could not delete the kernel's snapshot keys: ${(err as Error).message}`);
    } finally {
      redis.disconnect();
    }
  }

  /** Processes to read for a subject's step. */
  private processes(h: SubjectHandle, loadPid: number): Partial<Record<ProcName, number>> {
    const p: Partial<Record<ProcName, number>> = {
      'nats-server': this.nats.child.pid,
      loadgen: loadPid,
    };
    if (h.subject === 'kernel' && h.pid !== undefined) p.kernel = h.pid;
    if (h.subject === 'kernel' && h.kernelB !== undefined) p['kernel-b'] = h.kernelB.pid;
    if (h.subject === 'relay' && h.pid !== undefined) p.relay = h.pid;
    if (h.subject === 'hop' && h.pid !== undefined) p['hop-relay'] = h.pid;
    if (h.subject === 'ws' && h.pid !== undefined) p['ws-server'] = h.pid;
    if (this.clickhouse?.pid !== undefined && h.subject === 'kernel') {
      p['clickhouse-server'] = this.clickhouse.pid;
    }
    return p;
  }

  /**
   * Wait until the subject and nats-server use under 15 % of a core over a
   * quarter second (bounded by --settle-seconds): a fresh kernel still
   * initialising its store, or one still working off the previous step's
   * backlog, would otherwise be charged to this step. Seconds waited.
   */
  async settle(h: SubjectHandle): Promise<number> {
    const pids = [h.pid, this.nats.child.pid].filter((p): p is number => p !== undefined);
    const t0 = Date.now();
    while (Date.now() - t0 < this.opts.settleSeconds * 1000) {
      const a = pids.map((p) => readProc(p));
      await delay(SETTLE_WINDOW_MS);
      const b = pids.map((p) => readProc(p));
      const idle = pids.every(
        (_, i) => !(cpuPercent(a[i], b[i], SETTLE_WINDOW_MS / 1000) >= IDLE_PERCENT),
      );
      if (idle) break;
    }
    return (Date.now() - t0) / 1000;
  }

  /** Run one load step against a started subject. */
  async runStep(h: SubjectHandle, plan: StepPlan): Promise<StepResult> {
    const o = this.opts;
    if (h.kernel?.child.exit !== undefined) throw h.kernel.died();
    await this.settle(h);
    const idleRss = plan.measureIdle === true ? (readProc(h.pid)?.rssBytes ?? NaN) / MIB : null;
    const seqStart = h.seq.get(plan.symbols) ?? new Float64Array(plan.symbols).fill(1);
    const cold = h.steps === 0 && o.coldSeconds > 0;
    const drainSeconds = o.drainSeconds;
    const spec = {
      subject: h.subject,
      natsUrl: this.nats.url,
      ...(h.wsUrl !== undefined ? { wsUrl: h.wsUrl } : {}),
      ...(h.subject === 'kernel' ? { apiKey: this.apiKey } : {}),
      subscribers: h.subject === 'raw' ? 1 : plan.subscribers,
      subjectPrefix: MARKET_PREFIX,
      rate: plan.rate,
      symbols: plan.symbols,
      seconds: plan.seconds,
      warmupSeconds: plan.warmupSeconds,
      coldSeconds: cold ? o.coldSeconds : 0,
      seqStart,
      intervalSeconds: plan.intervalSeconds ?? 0,
      drainSeconds,
      quietMs: o.quietMs,
      seed: o.seed,
      deadlineMs: (plan.seconds + drainSeconds + 60) * 1000,
    };

    let pids: Partial<Record<ProcName, number>> = {};
    const read = (): Partial<Record<ProcName, ProcSample>> => {
      const out: Partial<Record<ProcName, ProcSample>> = {};
      for (const [name, pid] of Object.entries(pids) as [ProcName, number][]) {
        const s = readProc(pid);
        if (s !== undefined) out[name] = s;
      }
      return out;
    };
    let before: MetricsSnapshot | null = null;
    let slow0 = NaN;
    let p0: Partial<Record<ProcName, ProcSample>> = {};
    let pm0: Partial<Record<ProcName, ProcSample>> | undefined;
    let pm1: Partial<Record<ProcName, ProcSample>> | undefined;
    let t0 = 0;
    let tm0 = 0;
    let tm1 = 0;
    const rssMax: Partial<Record<ProcName, number>> = {};
    let rssAfterWarmup: Partial<Record<ProcName, number>> = {};
    const intervals: IntervalSample[] = [];
    let lastInterval: { t: number; at: Partial<Record<ProcName, ProcSample>> } | undefined;
    let sampler: NodeJS.Timeout | undefined;
    const sampleRss = (): Partial<Record<ProcName, ProcSample>> => {
      const r = read();
      for (const [name, s] of Object.entries(r) as [ProcName, ProcSample][]) {
        rssMax[name] = Math.max(rssMax[name] ?? 0, s.rssBytes / MIB);
      }
      return r;
    };
    let published: PublishFigures | undefined;

    const load = runLoadStep(this.children, spec, {
      ready: async (loadPid) => {
        pids = this.processes(h, loadPid);
        before = h.kernel !== undefined ? await scrapeKernels(h) : null;
        slow0 = await natsSlowConsumers(this.nats.monitorUrl);
        p0 = sampleRss();
        t0 = performance.now();
        lastInterval = { t: 0, at: p0 };
        sampler = setInterval(() => {
          sampleRss();
          plan.onProgress?.((performance.now() - t0) / 1000);
        }, 250);
      },
      measuring: () => {
        pm0 = sampleRss();
        tm0 = performance.now();
        rssAfterWarmup = Object.fromEntries(
          Object.entries(pm0).map(([k, s]) => [k, s.rssBytes / MIB]),
        );
      },
      interval: (t, latency: LatencySummary) => {
        const at = sampleRss();
        const prev = lastInterval!;
        const cpu: Partial<Record<ProcName, number>> = {};
        const rss: Partial<Record<ProcName, number>> = {};
        for (const [name, s] of Object.entries(at) as [ProcName, ProcSample][]) {
          rss[name] = s.rssBytes / MIB;
          cpu[name] = cpuPercent(prev.at[name], s, t - prev.t);
        }
        intervals.push({ t, latency, rssMiB: rss, cpuPercent: cpu });
        lastInterval = { t, at };
      },
      published: (p) => {
        published = p;
        pm1 = sampleRss();
        tm1 = performance.now();
      },
    });
    let loadRun: LoadStepRun;
    try {
      loadRun = await (h.kernel !== undefined
        ? Promise.race([
            load,
            h.kernel.child.exited.then((): never => {
              throw h.kernel!.died();
            }),
          ])
        : load);
    } finally {
      if (sampler !== undefined) clearInterval(sampler);
    }
    const result = loadRun.result;
    h.steps++;
    h.seq.set(plan.symbols, advanceSeq(seqStart, result.publish.sent));

    // Kernel: wait (bounded) until its input counter caught up with what was sent.
    let after: MetricsSnapshot | null = null;
    if (h.kernel !== undefined && before !== null) {
      const until = Date.now() + drainSeconds * 1000;
      for (;;) {
        after = await scrapeKernels(h);
        const got =
          after.sum('qilin_ticks_received_total') -
          (before as MetricsSnapshot).sum('qilin_ticks_received_total');
        if (got >= result.publish.sent || Date.now() > until) break;
        await delay(200);
      }
    }
    const p1 = sampleRss();
    const wall = (performance.now() - t0) / 1000;
    await loadRun.stop();
    const slow1 = await natsSlowConsumers(this.nats.monitorUrl);
    const pub = published ?? result.publish;
    const measuredWindow = pm0 !== undefined && pm1 !== undefined && tm1 > tm0;

    const processes: Partial<Record<ProcName, ProcessFigures>> = {};
    for (const [name, pid] of Object.entries(pids) as [ProcName, number][]) {
      const a = p0[name];
      const b = p1[name];
      const m0 = pm0?.[name];
      const m1 = pm1?.[name];
      processes[name] = {
        pid,
        cpuPercent: cpuPercent(a, b, wall),
        cpuUsPerTick:
          measuredWindow && m0 !== undefined && m1 !== undefined && pub.measuredSent > 0
            ? ((m1.cpuSeconds - m0.cpuSeconds) * 1e6) / pub.measuredSent
            : NaN,
        rssAfterWarmupMiB: rssAfterWarmup[name] ?? NaN,
        rssMaxMiB: rssMax[name] ?? NaN,
        rssEndMiB: b !== undefined ? b.rssBytes / MIB : NaN,
      };
    }

    const reasons: string[] = [];
    let kernel: StepResult['kernel'] = null;
    if (after !== null && before !== null) {
      const b = before as MetricsSnapshot;
      const loss = checkKernelLoss(b, after, result.publish.sent);
      const emitted =
        after.sum('qilin_actor_outputs_total', { kind: 'prediction' }) -
        b.sum('qilin_actor_outputs_total', { kind: 'prediction' });
      kernel = { ...loss, predictionsEmitted: emitted };
      reasons.push(...loss.reasons);
      const seen = result.arrivals.delivered + result.arrivals.duplicates + result.arrivals.unknown;
      if (after.has('qilin_actor_outputs_total') && seen < emitted * spec.subscribers) {
        reasons.push(
          `kernel emitted ${emitted} predictions, subscribers received ${seen} of ${emitted * spec.subscribers}`,
        );
      }
    } else {
      const missing = result.publish.sent * spec.subscribers - result.arrivals.delivered;
      if (missing > 0) {
        reasons.push(
          `${missing} of ${result.publish.sent * spec.subscribers} deliveries missing after ${result.drainSeconds.toFixed(1)} s`,
        );
      }
    }
    if (result.arrivals.duplicates > 0) reasons.push(`${result.arrivals.duplicates} duplicates`);
    if (result.wsClosed.length > 0) {
      reasons.push(
        `${result.wsClosed.length} WebSocket subscriber(s) closed by the server (${result.wsClosed[0]})`,
      );
    }
    const slow = slow1 - slow0;
    if (slow > 0) reasons.push(`nats-server cut ${slow} slow consumer(s)`);
    if (pub.achievedRate < plan.rate * 0.95) {
      reasons.push(`the load generator offered only ${fmtRate(pub.achievedRate)}/s`);
    }
    if (plan.sloP99Us !== undefined && result.latency.p99 > plan.sloP99Us) {
      reasons.push(`p99 ${fmtUs(result.latency.p99)} µs > SLO ${fmtUs(plan.sloP99Us)} µs`);
    }
    if (result.latency.count === 0) reasons.push('no measured arrival');

    return {
      subject: h.subject,
      run: plan.run,
      rate: plan.rate,
      symbols: plan.symbols,
      subscribers: spec.subscribers,
      seconds: plan.seconds,
      warmupSeconds: plan.warmupSeconds,
      cold: result.cold,
      publish: pub,
      arrivals: result.arrivals,
      perSubscriber: result.perSubscriber,
      latency: result.latency,
      latencyUncorrected: result.latencyUncorrected,
      kernel,
      natsSlowConsumers: Number.isFinite(slow) ? slow : 0,
      processes,
      idleRssMiB: idleRss,
      intervals,
      pass: reasons.length === 0,
      reasons,
    };
  }

  /** Stop everything, remove the temp dir, drop the bench database. Safe to call twice. */
  async close(): Promise<void> {
    await this.children.close();
    if (this.clickhouse !== undefined) {
      try {
        await clickhouseCommand(
          this.clickhouse.url,
          `DROP DATABASE IF EXISTS ${this.clickhouse.database}`,
        );
      } catch (err) {
        this.ctx.say(
          `  could not drop ClickHouse database ${this.clickhouse.database}: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A QilinError for a bench phase that cannot go on. */
export function benchFailed(message: string, cause?: unknown): QilinError {
  return new QilinError(ErrorCodes.BENCH_INTEGRITY, message, cause === undefined ? {} : { cause });
}

/** The kernel subject's metrics: with `--nodes 2`, both nodes' samples (sums count the cluster). */
async function scrapeKernels(h: SubjectHandle): Promise<MetricsSnapshot> {
  const a = await h.kernel!.scrape();
  if (h.kernelB === undefined) return a;
  const b = await h.kernelB.scrape();
  return new MetricsSnapshot([...a.samples, ...b.samples]);
}
