/**
 * Pipeline benchmark: tick → signal latency and the sustained tick rate of the
 * whole kernel (NATS in → decode → ring → SymbolActor → ring → risk → uWS
 * out), against a raw NATS publish → subscribe baseline in the same run. See
 * bench/pipeline/README.md for method, caveats and the latest results.
 *
 * ```
 *  bench process (one thread, one clock: nowUs())             kernel process (kernel-process.ts)
 *  ┌────────────────────────────────────────────┐             ┌──────────────────────────────────┐
 *  │ LoadGenerator ─ pubNc ─► md.bench.<sym>  ──┼─► NATS ────►│ KernelApp: main + 2 shard workers│
 *  │   send table (sym, seq) → nowUs()          │             │  + store worker (chdb)           │
 *  │ ws client ◄── signal/* frames ─────────────┼─────────────┤ uWS signal/<sym>; JetStream sig.>│
 *  │   arrive(sym, src.seq, nowUs()) → HDR      │             └──────────────────────────────────┘
 *  │ baseline: pubNc ─► bench.raw.<sym> ─► NATS ─► subNc (plain core subscription, same process) │
 *  │   arrive(sym, seq, nowUs()) → HDR          │
 *  └────────────────────────────────────────────┘
 *  2 cores shared by: bench process, kernel (3-4 threads), nats-server (+ JetStream), redis
 * ```
 * Steps: offered rates rise (`--rates`); each step runs `--step-seconds`, the
 * first `--warmup-seconds` unrecorded; a sweep stops at the first step whose
 * p99 passes `--p99-limit-us` or that loses or drops anything (the report
 * rates, 10k and 50k by default, are still measured once beyond the stop,
 * flagged, so their latency is always reported). `--runs` sweeps of each,
 * raw and kernel interleaved; medians reported.
 */
import { writeNatsConfig } from '../../ops/services/nats-config.js';
import { emitBenchDocument, parseBenchArgs, runBench } from '../bench-output.js';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import WebSocket from 'ws';
import { nowUs } from '../../kernel/clock.js';
import { ErrorCodes, QilinError, invalidArgument } from '../../kernel/errors.js';
import type { SignalMessage } from '../../kernel/messages.js';
import { ensureServices, repoRoot } from '../../test/helpers/services.js';
import { LatencyRecorder, formatSummary, type LatencySummary } from '../hdr-report.js';
import type { FromKernel, ToKernel } from './kernel-process.js';
import { LoadGenerator, readUint, type PublishStats } from './load-generator.js';

// ───────────────────────────── options ─────────────────────────────

type Subject = 'raw' | 'kernel';

/** Parsed command line. */
interface BenchOptions {
  rates: number[];
  stepSeconds: number;
  warmupSeconds: number;
  runs: number;
  symbols: number;
  p99LimitUs: number;
  /** Rates whose latency the report always needs (measured beyond the stop if need be). */
  reportRates: number[];
  /** Longest wait for the in-flight tail after a step, s. */
  drainSeconds: number;
  store: 'chdb' | 'clickhouse';
  workers: number | undefined;
  mode: 'both' | Subject;
  kernelCpuProf: string | undefined;
  /** private: a nats-server of the bench's own (isolated from other md.> traffic); shared: the dev one. */
  nats: 'private' | 'shared';
  json: boolean;
  out: boolean;
}

const DEFAULT_RATES = '2000,5000,10000,20000,30000,50000,75000,100000,150000,200000,300000,400000';

const HELP = `pipeline-bench: end-to-end tick -> signal latency of the kernel vs raw NATS, 1,000 symbols

Steps the offered tick rate up until p99 latency passes the limit or anything is
lost or dropped, for the kernel (NATS publish -> WebSocket signal receive) and for
a raw NATS baseline (publish -> plain core subscriber) in the same run. Reports
the max sustained ticks/s of each and the ratio, p50/p99 at the report rates,
and where the kernel's time goes (the signals' lat stage stamps).

Usage: node dist/bench/pipeline/pipeline-bench.js [flags]
  --rates R,R...        offered ticks/s per step, rising (default ${DEFAULT_RATES})
  --step-seconds S      seconds per step (default 8)
  --warmup-seconds S    first seconds of a step not recorded (default 2)
  --runs N              full sweeps of each subject, medians reported (default 3)
  --symbols N           symbols B0000... (default 1000)
  --p99-limit-us U      a step with p99 above this fails (default 5000)
  --report-rates R,R... rates always measured, even beyond the stop (default 10000,50000)
  --drain-seconds S     longest wait for in-flight signals after a step (default 5)
  --store chdb|clickhouse   kernel store: embedded chdb (default) or the local
                        ClickHouse server, database qilin_bench
  --workers N           kernel shard workers (default: QILIN_WORKERS or one per core)
  --mode both|kernel|raw    which subjects to run (default both)
  --nats private|shared     private (default): start a nats-server (JetStream, temp
                        store) for this run only, so other md.> traffic on the dev
                        server neither loads nor pollutes the kernel; shared: the
                        project's dev NATS (QILIN_NATS_URL or ops/ services)
  --kernel-cpu-prof DIR run the kernel with node --cpu-prof, profiles into DIR
  --quick               smoke run: rates 2000,10000, 3 s steps (1 s warm-up), 1 run
  --json                print a JSON document on stdout (the human report goes to stderr)
  --out                 also write the JSON document to bench/results/pipeline-<date>.json
  --help                this text
`;

const OPTIONS = {
  rates: { type: 'string' },
  'step-seconds': { type: 'string' },
  'warmup-seconds': { type: 'string' },
  runs: { type: 'string' },
  symbols: { type: 'string' },
  'p99-limit-us': { type: 'string' },
  'report-rates': { type: 'string' },
  'drain-seconds': { type: 'string' },
  store: { type: 'string' },
  workers: { type: 'string' },
  mode: { type: 'string' },
  'kernel-cpu-prof': { type: 'string' },
  nats: { type: 'string' },
  quick: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  out: { type: 'boolean', default: false },
  help: { type: 'boolean', default: false },
} as const;

function positiveInt(name: string, raw: string | undefined, dflt: number, max: number): number {
  if (raw === undefined) return dflt;
  const v = Number(raw.replace(/_/g, ''));
  if (!Number.isInteger(v) || v < 1 || v > max) {
    invalidArgument(name, raw, `an integer from 1 to ${max}`);
  }
  return v;
}

function seconds(name: string, raw: string | undefined, dflt: number, min: number): number {
  if (raw === undefined) return dflt;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min || v > 600) {
    invalidArgument(name, raw, `seconds from ${min} to 600`);
  }
  return v;
}

function rateList(name: string, raw: string): number[] {
  const rates = raw.split(',').map((r) => positiveInt(name, r.trim(), 0, 10_000_000));
  for (let i = 1; i < rates.length; i++) {
    if (rates[i]! <= rates[i - 1]!)
      invalidArgument(name, raw, 'rising rates, e.g. 2000,5000,10000');
  }
  return rates;
}

function parseOptions(argv: string[]): BenchOptions | null {
  const parsed = parseBenchArgs(argv, OPTIONS);
  const v = parsed.values;
  if (v.help) return null;
  const quick = v.quick;
  const rates = rateList('--rates', v.rates ?? (quick ? '2000,10000' : DEFAULT_RATES));
  const stepSeconds = seconds('--step-seconds', v['step-seconds'], quick ? 3 : 8, 1);
  const warmupSeconds = seconds('--warmup-seconds', v['warmup-seconds'], quick ? 1 : 2, 0);
  if (warmupSeconds >= stepSeconds) {
    invalidArgument('--warmup-seconds', warmupSeconds, `less than --step-seconds (${stepSeconds})`);
  }
  const store = v.store ?? 'chdb';
  if (store !== 'chdb' && store !== 'clickhouse') {
    invalidArgument('--store', store, 'chdb or clickhouse');
  }
  const mode = v.mode ?? 'both';
  if (mode !== 'both' && mode !== 'kernel' && mode !== 'raw') {
    invalidArgument('--mode', mode, 'both, kernel or raw');
  }
  const nats = v.nats ?? 'private';
  if (nats !== 'private' && nats !== 'shared') invalidArgument('--nats', nats, 'private or shared');
  return {
    nats,
    rates,
    stepSeconds,
    warmupSeconds,
    runs: positiveInt('--runs', v.runs, quick ? 1 : 3, 100),
    symbols: positiveInt('--symbols', v.symbols, 1000, 10_000),
    p99LimitUs: positiveInt('--p99-limit-us', v['p99-limit-us'], 5000, 10_000_000),
    reportRates: rateList('--report-rates', v['report-rates'] ?? '10000,50000'),
    drainSeconds: seconds('--drain-seconds', v['drain-seconds'], 5, 0.1),
    store,
    workers: v.workers === undefined ? undefined : positiveInt('--workers', v.workers, 0, 64),
    mode,
    kernelCpuProf: v['kernel-cpu-prof'],
    json: v.json,
    out: v.out,
  };
}

// ───────────────────────────── kernel process ─────────────────────────────

/** The kernel child process and its IPC channel. */
class KernelProcess {
  readonly child: ChildProcess;
  private exited: Error | null = null;
  private readonly waiters = new Set<(msg: FromKernel | Error) => void>();

  constructor(env: NodeJS.ProcessEnv, execArgv: string[]) {
    this.child = fork(fileURLToPath(new URL('./kernel-process.js', import.meta.url)), [], {
      env,
      execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (msg: FromKernel) => {
      for (const w of [...this.waiters]) w(msg);
    });
    this.child.once('exit', (code, signal) => {
      this.exited = new QilinError(
        ErrorCodes.WORKER_DIED,
        `kernel process exited (code ${code ?? 'none'}, signal ${signal ?? 'none'})`,
      );
      for (const w of [...this.waiters]) w(this.exited);
    });
  }

  get alive(): boolean {
    return this.exited === null;
  }

  /** The first message satisfying `pick` within `ms`. */
  next<T extends FromKernel>(
    what: string,
    pick: (m: FromKernel) => m is T,
    ms: number,
  ): Promise<T> {
    if (this.exited !== null) return Promise.reject(this.exited);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(
          new QilinError(ErrorCodes.BENCH_TIMEOUT, `kernel process: no ${what} within ${ms} ms`),
        );
      }, ms);
      const waiter = (m: FromKernel | Error): void => {
        if (m instanceof Error) {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          reject(m);
        } else if (m.type === 'failed') {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          reject(new QilinError(ErrorCodes.WORKER_DIED, `kernel failed: ${m.code}: ${m.message}`));
        } else if (pick(m)) {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(m);
        }
      };
      this.waiters.add(waiter);
    });
  }

  send(msg: ToKernel): void {
    this.child.send(msg);
  }

  /**
   * Offset of the kernel's nowUs() against ours from the fastest of `n`
   * IPC pings: both are monotonic clocks anchored on the wall clock at each
   * process's start, so they can disagree by a constant.
   */
  async clockOffset(n = 50): Promise<{ offsetUs: number; rttUs: number }> {
    let best = { offsetUs: 0, rttUs: Number.POSITIVE_INFINITY };
    for (let i = 0; i < n; i++) {
      const t0 = nowUs();
      this.send({ type: 'clock', t0 });
      const m = await this.next(
        'clock reply',
        (x): x is Extract<FromKernel, { type: 'clock' }> => x.type === 'clock' && x.t0 === t0,
        5000,
      );
      const rtt = nowUs() - t0;
      if (rtt < best.rttUs) best = { offsetUs: m.tk - (t0 + t0 + rtt) / 2, rttUs: rtt };
    }
    return best;
  }

  async stop(): Promise<void> {
    if (this.exited !== null) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.send({ type: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    await gone;
    clearTimeout(timer);
  }
}

// ───────────────────────────── probes ─────────────────────────────

/** Prometheus text → value per series (`name{labels}`) and per name (summed over labels). */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    const series = line.slice(0, sp);
    const value = Number(line.slice(sp + 1));
    if (!Number.isFinite(value)) continue;
    out.set(series, value);
    const brace = series.indexOf('{');
    if (brace > 0) {
      const name = series.slice(0, brace);
      out.set(name, (out.get(name) ?? 0) + value);
    }
  }
  return out;
}

async function scrape(port: number, timeoutMs = 30_000): Promise<Map<string, number>> {
  // Generous timeout: an overloaded kernel answers /metrics late, not never.
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!res.ok) {
    throw new QilinError(ErrorCodes.BENCH_INTEGRITY, `kernel /metrics answered ${res.status}`);
  }
  return parseMetrics(await res.text());
}

const CLK_TCK = 100;

/** CPU seconds (user + system, all threads) of process `pid`, from /proc; NaN if unreadable. */
function procCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields after the command: state is index 0, so utime (14th) is 11 and stime 12.
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function natsServerPid(): number | undefined {
  const file = join(repoRoot, '.qilin', 'run', 'nats.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && existsSync(`/proc/${pid}`) ? pid : undefined;
}

/** Resolve when `cond()` holds, checking every `everyMs`; false at the deadline. */
async function waitFor(cond: () => boolean, deadlineMs: number, everyMs = 10): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return true;
}

// ───────────────────────────── receivers ─────────────────────────────

/** Frames of `signal/B<digits>`: the symbol index starts right after this prefix. */
const SIGNAL_PREFIX = Buffer.from('{"topic":"signal/B');
const SRC_SEQ = Buffer.from('"src":{"seq":');
/** Raw tick bodies start `{"type":"trade","sym":"B`; the symbol digits follow. */
const RAW_SYM_AT = '{"type":"trade","sym":"B'.length;
const COLON = 58;

/** Kernel stage recorders, µs, from a sample of the signals' `lat` stamps. */
const STAGES = [
  'nats→recv',
  'recv→feat',
  'feat→infer',
  'infer→risk',
  'risk→pub',
  'pub→ws',
] as const;
type Stage = (typeof STAGES)[number];
/** One signal in this many (by seq) is fully parsed for its stage stamps. */
const STAGE_SAMPLE_MASK = 7;

/** The bench's WebSocket subscriber on `signal/*`. */
class SignalClient {
  private ws: WebSocket | undefined;
  closedWhy: string | null = null;
  frames = 0;

  constructor(
    private readonly url: string,
    private readonly gen: LoadGenerator,
    private readonly stages: Map<Stage, LatencyRecorder>,
    private readonly clock: { offsetUs: number },
  ) {}

  get open(): boolean {
    return this.ws !== undefined && this.ws.readyState === WebSocket.OPEN;
  }

  /** Connect (again) and subscribe; resolves once the server confirmed the subscription. */
  async connect(): Promise<void> {
    if (this.open) return;
    const ws = new WebSocket(this.url, { perMessageDeflate: false });
    this.ws = ws;
    this.closedWhy = null;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new QilinError(ErrorCodes.BENCH_TIMEOUT, `WebSocket ${this.url}: no open`)),
        10_000,
      );
      ws.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    let subscribed = false;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary && this.onFrame(data)) return;
      if (!subscribed && data.includes('"type":"subscribed"')) subscribed = true;
    });
    ws.on('close', (code, reason) => {
      this.closedWhy = `closed ${code} ${reason.toString('utf8')}`;
    });
    ws.on('error', (err) => {
      this.closedWhy = `error ${err.message}`;
    });
    ws.send(JSON.stringify({ op: 'subscribe', topics: ['signal/*'] }));
    if (!(await waitFor(() => subscribed, 10_000))) {
      throw new QilinError(ErrorCodes.BENCH_TIMEOUT, 'WebSocket subscribe not confirmed in 10 s');
    }
  }

  /** One frame; true when it was a signal. Allocation-free unless sampled for stages. */
  private onFrame(buf: Buffer): boolean {
    const recv = nowUs();
    if (
      buf.length < SIGNAL_PREFIX.length ||
      buf.compare(SIGNAL_PREFIX, 0, SIGNAL_PREFIX.length, 0, SIGNAL_PREFIX.length) !== 0
    ) {
      return false;
    }
    this.frames++;
    const sym = readUint(buf, SIGNAL_PREFIX.length);
    const at = buf.indexOf(SRC_SEQ);
    const seq = at < 0 ? -1 : readUint(buf, at + SRC_SEQ.length);
    const sent = this.gen.arrive(sym, seq, recv);
    if (sent > 0 && (seq & STAGE_SAMPLE_MASK) === 0) this.sampleStages(buf, sent, recv);
    return true;
  }

  private sampleStages(buf: Buffer, sent: number, recv: number): void {
    const msg = JSON.parse(buf.toString('utf8')) as { data: SignalMessage };
    const l = msg.data.lat;
    const off = this.clock.offsetUs;
    const s = this.stages;
    s.get('nats→recv')!.record(l.recv - off - sent);
    s.get('recv→feat')!.record(l.feat - l.recv);
    s.get('feat→infer')!.record(l.infer - l.feat);
    if (l.risk !== undefined) s.get('infer→risk')!.record(l.risk - l.infer);
    if (l.risk !== undefined && l.pub !== undefined) s.get('risk→pub')!.record(l.pub - l.risk);
    if (l.pub !== undefined) s.get('pub→ws')!.record(recv - (l.pub - off));
  }

  close(): void {
    this.ws?.close();
  }
}

/** The raw baseline's plain core subscriber. */
function rawSubscriber(nc: NatsConnection, subject: string, gen: LoadGenerator): Subscription {
  return nc.subscribe(subject, {
    callback: (err, msg) => {
      const recv = nowUs();
      if (err !== null) return;
      const d = msg.data;
      const sym = readUint(d, RAW_SYM_AT);
      const seq = readUint(d, d.lastIndexOf(COLON) + 1);
      gen.arrive(sym, seq, recv);
    },
  });
}

// ───────────────────────────── steps ─────────────────────────────

/** Kernel counters over one step (deltas of /metrics). */
interface KernelStepCounters {
  received: number;
  droppedWorker: number;
  droppedStore: number;
  rejected: number;
  signalsApproved: number;
  signalsRejected: number;
}

/** One step of one sweep. */
interface StepResult {
  subject: Subject;
  rate: number;
  publish: PublishStats;
  /** Recorded trades whose arrival (signal or raw message) was seen. */
  arrived: number;
  missing: number;
  duplicates: number;
  unknown: number;
  latency: LatencySummary;
  kernel: KernelStepCounters | null;
  /** Kernel stage latencies, µs (sampled signals). */
  stages: Partial<Record<Stage, LatencySummary>> | null;
  /** CPU use over the step, in cores (1.0 = one core busy). */
  cpu: { bench: number; kernel: number; nats: number };
  pass: boolean;
  why: string;
  /** Measured after the sweep had already stopped (report rate only). */
  beyond: boolean;
}

interface Sweep {
  subject: Subject;
  steps: StepResult[];
  /** Highest offered rate that passed, before the first failure (0 if none). */
  maxSustained: number;
}

interface Rig {
  opts: BenchOptions;
  gen: LoadGenerator;
  pubNc: NatsConnection;
  subNc: NatsConnection;
  kernel: KernelProcess | undefined;
  port: number;
  client: SignalClient | undefined;
  stages: Map<Stage, LatencyRecorder>;
  natsPid: number | undefined;
  say: (line?: string) => void;
}

const KERNEL_PREFIX = 'md.bench';
const RAW_PREFIX = 'bench.raw';

/**
 * Wait until the kernel and nats-server are idle again (each under 0.15 core
 * over 500 ms), at most 60 s: a step that overloaded the kernel leaves a
 * JetStream ack backlog and store inserts behind it that would otherwise be
 * charged to the next step (seen: a 2k/s step at p50 3.8 s after a 10k/s one).
 */
async function settle(rig: Rig): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const k0 = procCpuSeconds(rig.kernel?.child.pid);
    const n0 = procCpuSeconds(rig.natsPid);
    await new Promise((r) => setTimeout(r, 500));
    const k = (procCpuSeconds(rig.kernel?.child.pid) - k0) / 0.5;
    const n = (procCpuSeconds(rig.natsPid) - n0) / 0.5;
    const idle = (Number.isNaN(k) || k < 0.15) && (Number.isNaN(n) || n < 0.15);
    if (idle || Date.now() - t0 > 60_000) return (Date.now() - t0) / 1000;
  }
}

async function runStep(
  rig: Rig,
  subject: Subject,
  rate: number,
  beyond: boolean,
): Promise<StepResult> {
  const { opts, gen } = rig;
  const settledS = await settle(rig);
  if (settledS > 2)
    rig.say(`      (waited ${settledS.toFixed(1)} s for the kernel and nats-server to go idle)`);
  if (subject === 'kernel') await rig.client!.connect();
  const rec = new LatencyRecorder();
  gen.recorder = rec;
  gen.resetCounters();
  for (const r of rig.stages.values()) r.reset();
  const before = subject === 'kernel' ? await scrape(rig.port) : null;
  const cpu0 = {
    bench: selfCpuSeconds(),
    kernel: procCpuSeconds(rig.kernel?.child.pid),
    nats: procCpuSeconds(rig.natsPid),
  };
  const t0 = nowUs();
  const prefix = subject === 'kernel' ? KERNEL_PREFIX : RAW_PREFIX;
  const publish = await gen.run(rig.pubNc, prefix, rate, opts.stepSeconds, opts.warmupSeconds);
  // The in-flight tail: wait until every recorded trade arrived, or nothing
  // arrived for a second (the rest is lost), or the drain deadline.
  let lastCount = -1;
  let lastProgress = Date.now();
  await waitFor(() => {
    const c = gen.counters.arrived;
    if (c >= publish.recorded) return true;
    if (c !== lastCount) {
      lastCount = c;
      lastProgress = Date.now();
    }
    return Date.now() - lastProgress > 1000;
  }, opts.drainSeconds * 1000);
  const wallS = (nowUs() - t0) / 1e6;
  const cpu = {
    bench: (selfCpuSeconds() - cpu0.bench) / wallS,
    kernel: (procCpuSeconds(rig.kernel?.child.pid) - cpu0.kernel) / wallS,
    nats: (procCpuSeconds(rig.natsPid) - cpu0.nats) / wallS,
  };
  gen.recorder = undefined;
  const c = { ...gen.counters };
  let kernel: KernelStepCounters | null = null;
  if (before !== null) {
    const after = await scrape(rig.port);
    const d = (k: string): number => (after.get(k) ?? 0) - (before.get(k) ?? 0);
    kernel = {
      received: d('qilin_ticks_received_total'),
      droppedWorker: d('qilin_ticks_dropped_total{ring="worker"}'),
      droppedStore: d('qilin_ticks_dropped_total{ring="store"}'),
      rejected: d('qilin_ticks_rejected_total'),
      signalsApproved: d('qilin_signals_total{decision="approved",reason=""}'),
      signalsRejected:
        d('qilin_signals_total') - d('qilin_signals_total{decision="approved",reason=""}'),
    };
  }
  const latency = rec.summary();
  const missing = publish.recorded - c.arrived;
  const why: string[] = [];
  if (publish.achievedRate < rate * 0.95) {
    why.push(`publisher offered only ${fmtRate(publish.achievedRate)}/s`);
  }
  if (missing > 0) why.push(`${missing} of ${publish.recorded} missing`);
  if (c.duplicates > 0) why.push(`${c.duplicates} duplicates`);
  if (kernel !== null) {
    if (kernel.droppedWorker + kernel.droppedStore > 0) {
      why.push(
        `kernel dropped ${kernel.droppedWorker} (worker ring) + ${kernel.droppedStore} (store ring)`,
      );
    }
    if (kernel.received < publish.published) {
      why.push(`kernel received ${kernel.received} of ${publish.published} ticks`);
    }
    if (kernel.rejected > 0) why.push(`${kernel.rejected} ticks rejected`);
    if (kernel.signalsRejected > 0) why.push(`${kernel.signalsRejected} signals rejected by risk`);
  }
  if (subject === 'kernel' && rig.client!.closedWhy !== null) {
    why.push(`WebSocket ${rig.client!.closedWhy}`);
  }
  if (latency.p99 > opts.p99LimitUs) why.push(`p99 ${fmtUs(latency.p99)} µs > ${opts.p99LimitUs}`);
  let stages: StepResult['stages'] = null;
  if (subject === 'kernel') {
    stages = {};
    for (const [k, r] of rig.stages) stages[k] = r.summary();
  }
  return {
    subject,
    rate,
    publish,
    arrived: c.arrived,
    missing,
    duplicates: c.duplicates,
    unknown: c.unknown,
    latency,
    kernel,
    stages,
    cpu,
    pass: why.length === 0,
    why: why.join('; '),
    beyond,
  };
}

function stepLine(s: StepResult): string {
  const name = `${s.subject.padEnd(6)} @${fmtRate(s.rate).padEnd(5)}/s`;
  const k = s.kernel;
  return (
    `  ${formatSummary(name, s.latency)}\n` +
    `      offered ${fmtRate(s.publish.achievedRate)}/s, arrived ${s.arrived}/${s.publish.recorded}` +
    (k === null ? '' : `, kernel recv ${k.received}/${s.publish.published}`) +
    `, cpu bench ${s.cpu.bench.toFixed(2)} kernel ${s.cpu.kernel.toFixed(2)} nats ${s.cpu.nats.toFixed(2)}` +
    `, max batch gap ${s.publish.maxBatchGapMs.toFixed(1)} ms` +
    `  ${s.pass ? 'PASS' : `FAIL: ${s.why}`}${s.beyond ? ' (beyond the stop)' : ''}`
  );
}

/** One sweep: rising rates until the first failure, then the missing report rates. */
async function sweep(rig: Rig, subject: Subject): Promise<Sweep> {
  const { opts } = rig;
  const steps: StepResult[] = [];
  let maxSustained = 0;
  let stopped = false;
  // Past the stop, report rates are measured only while the subject is merely
  // slow (no loss, p99 within 20x the limit): a kernel that already loses
  // ticks would only be buried deeper, and the sweep would take minutes.
  let beyondOk = true;
  for (const rate of opts.rates) {
    if (stopped && (!beyondOk || !opts.reportRates.includes(rate))) continue;
    if (subject === 'kernel' && !rig.kernel!.alive) break;
    const s = await runStep(rig, subject, rate, stopped);
    steps.push(s);
    rig.say(stepLine(s));
    if (!stopped) {
      if (s.pass) maxSustained = rate;
      else stopped = true;
    }
    if (stopped) beyondOk &&= s.missing === 0 && s.latency.p99 <= 20 * opts.p99LimitUs;
  }
  for (const rate of opts.reportRates) {
    if (steps.some((s) => s.rate === rate) || !stopped || !beyondOk) continue;
    if (subject === 'kernel' && !rig.kernel!.alive) break;
    const s = await runStep(rig, subject, rate, true);
    steps.push(s);
    rig.say(stepLine(s));
    beyondOk &&= s.missing === 0 && s.latency.p99 <= 20 * opts.p99LimitUs;
  }
  return { subject, steps, maxSustained };
}

// ───────────────────────────── report ─────────────────────────────

function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function fmtRate(r: number): string {
  if (!Number.isFinite(r)) return 'n/a';
  const short = (x: number, digits: number): string => x.toFixed(digits).replace(/\.0+$/, '');
  if (r >= 1e6) return `${short(r / 1e6, 2)}M`;
  if (r >= 1e3) return `${short(r / 1e3, 1)}k`;
  return r.toFixed(0);
}

function fmtUs(us: number): string {
  if (!Number.isFinite(us)) return 'n/a';
  return us >= 100 ? us.toFixed(0) : us.toFixed(1);
}

/** Median over runs of a step's figure at `rate` (runs that measured it). */
function atRate(sweeps: readonly Sweep[], rate: number, pick: (s: StepResult) => number): number {
  const xs: number[] = [];
  for (const sw of sweeps) {
    const s = sw.steps.find((x) => x.rate === rate);
    if (s !== undefined) xs.push(pick(s));
  }
  return median(xs);
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts === null) {
    process.stdout.write(HELP);
    return;
  }
  const say = (line = ''): void => {
    (opts.json ? process.stderr : process.stdout).write(`${line}\n`);
  };
  const load0 = loadavg();
  const services = await ensureServices();
  const stateDir = mkdtempSync(join(tmpdir(), 'qilin-pbench-'));
  let privateNats: ChildProcess | undefined;
  let natsUrl = services.natsUrl;
  let natsPid = natsServerPid();
  if (opts.nats === 'private') {
    const p = await startPrivateNats(stateDir);
    privateNats = p.child;
    natsUrl = p.url;
    natsPid = p.child.pid;
  }
  const urls = { ...services, natsUrl };
  let kernel: KernelProcess | undefined;
  // Ctrl-C: take down the processes this bench started (finally blocks do not run on a signal).
  const onSignal = (): void => {
    kernel?.child.kill('SIGTERM');
    privateNats?.kill('SIGTERM');
    rmSync(stateDir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const gen = new LoadGenerator({ symbols: opts.symbols });
  const runId = randomBytes(3).toString('hex');
  const strategy = `bench${runId}`;
  const apiKey = `bench-${runId}-key`;
  const stages = new Map<Stage, LatencyRecorder>(STAGES.map((s) => [s, new LatencyRecorder()]));
  const clock = { offsetUs: 0, rttUs: 0 };

  say(
    `pipeline-bench: ${availableParallelism()} CPU(s) (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}, ` +
      `loadavg ${load0.map((x) => x.toFixed(2)).join(' ')}`,
  );
  say(
    `  ${opts.symbols} symbols; rates ${opts.rates.map(fmtRate).join(', ')}/s; ${opts.stepSeconds} s steps ` +
      `(${opts.warmupSeconds} s warm-up); p99 limit ${opts.p99LimitUs} µs; ${opts.runs} run(s); ` +
      `store ${opts.store}; nats ${urls.natsUrl} (${opts.nats})`,
  );

  let port = 0;
  let client: SignalClient | undefined;
  const pubNc = await connect({ servers: urls.natsUrl, name: 'pbench-pub' });
  const subNc = await connect({ servers: urls.natsUrl, name: 'pbench-raw-sub' });
  const rawSub = rawSubscriber(subNc, `${RAW_PREFIX}.>`, gen);
  await subNc.flush();
  try {
    if (opts.mode !== 'raw') {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        QILIN_NATS_URL: urls.natsUrl,
        QILIN_REDIS_URL: urls.redisUrl,
        QILIN_HTTP_PORT: String(await freePort()),
        QILIN_API_KEYS: `${apiKey}:read`,
        QILIN_LOG_LEVEL: 'warn',
        QILIN_STATE_DIR: stateDir,
        QILIN_BENCH_STRATEGY: strategy,
      };
      if (opts.workers !== undefined) env['QILIN_WORKERS'] = String(opts.workers);
      if (opts.store === 'clickhouse') {
        env['QILIN_CLICKHOUSE_URL'] = urls.clickhouseUrl;
        env['QILIN_CLICKHOUSE_DB'] = 'qilin_bench';
      } else {
        delete env['QILIN_CLICKHOUSE_URL'];
        delete env['QILIN_CLICKHOUSE_DB'];
      }
      const execArgv: string[] = [];
      if (opts.kernelCpuProf !== undefined) {
        mkdirSync(opts.kernelCpuProf, { recursive: true });
        execArgv.push('--cpu-prof', `--cpu-prof-dir=${opts.kernelCpuProf}`);
      }
      kernel = new KernelProcess(env, execArgv);
      const ready = await kernel.next(
        'ready',
        (m): m is Extract<FromKernel, { type: 'ready' }> => m.type === 'ready',
        120_000,
      );
      port = ready.port;
      Object.assign(clock, await kernel.clockOffset());
      say(
        `  kernel pid ${kernel.child.pid ?? '?'}: ${ready.workers} worker(s), store ${ready.store}, port ${port}; ` +
          `clock: kernel nowUs() - bench nowUs() = ${clock.offsetUs.toFixed(1)} µs ` +
          `(best IPC ping RTT ${clock.rttUs.toFixed(1)} µs)`,
      );
      client = new SignalClient(`ws://127.0.0.1:${port}/ws?key=${apiKey}`, gen, stages, clock);
      await client.connect();
    }
    const rig: Rig = {
      opts,
      gen,
      pubNc,
      subNc,
      kernel,
      port,
      client,
      stages,
      natsPid,
      say,
    };
    const subjects: Subject[] =
      opts.mode === 'both' ? ['raw', 'kernel'] : [opts.mode === 'raw' ? 'raw' : 'kernel'];
    const sweeps: Record<Subject, Sweep[]> = { raw: [], kernel: [] };
    for (let run = 1; run <= opts.runs; run++) {
      // Interleaved A, B / B, A so drift in the machine's load hits both alike.
      const order = run % 2 === 1 ? subjects : [...subjects].reverse();
      for (const subject of order) {
        say(`\nrun ${run}/${opts.runs}: ${subject}`);
        const sw = await sweep(rig, subject);
        sweeps[subject].push(sw);
        say(`  ${subject} max sustained: ${fmtRate(sw.maxSustained)} ticks/s`);
        if (subject === 'kernel') await purgeSignals(pubNc, strategy);
      }
    }
    report(opts, sweeps, clock, load0, say);
  } finally {
    client?.close();
    rawSub.unsubscribe();
    await kernel?.stop();
    await pubNc.drain().catch(() => undefined);
    await subNc.drain().catch(() => undefined);
    if (privateNats !== undefined) {
      const gone = new Promise<void>((resolve) => privateNats.once('exit', () => resolve()));
      privateNats.kill('SIGTERM');
      await gone;
    }
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/**
 * A nats-server of the bench's own on a free port, JetStream in `dir`: the
 * kernel subscribes `md.>`, and on the shared dev server other engineers'
 * tests publish there too (seen: extra and malformed ticks in the kernel's
 * counters). Resolves once a client can connect.
 */
async function startPrivateNats(dir: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const { path } = await writeNatsConfig({
    confDir: dir,
    storeDir: join(dir, 'nats'),
    port,
    monitorPort: await freePort(),
    partitions: 16,
    logFile: join(dir, 'nats.log'),
  });
  const child = spawn('nats-server', ['-c', path], { stdio: ['ignore', 'ignore', 'inherit'] });
  let failed: Error | null = null;
  child.once('error', (err) => (failed = err));
  child.once('exit', (code) => (failed ??= new Error(`nats-server exited with ${code}`)));
  const url = `nats://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (failed !== null) {
      throw new QilinError(
        ErrorCodes.SERVICE_START_FAILED,
        `private nats-server on port ${port} did not start: ${(failed as Error).message}`,
        { cause: failed },
      );
    }
    try {
      const nc = await connect({ servers: url, reconnect: false, timeout: 1000 });
      await nc.close();
      return { url, child };
    } catch (err) {
      if (Date.now() > deadline) {
        child.kill('SIGTERM');
        throw new QilinError(
          ErrorCodes.SERVICE_START_TIMEOUT,
          `private nats-server on port ${port} not reachable within 15 s`,
          { cause: err },
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Drop this run's signals from the shared JetStream stream (they are bench noise). */
async function purgeSignals(nc: NatsConnection, strategy: string): Promise<void> {
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.purge('QILIN_SIGNALS', { filter: `sig.${strategy}.>` });
  } catch {
    // The stream may not exist (kernel failed early): nothing to purge.
  }
}

function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

function report(
  opts: BenchOptions,
  sweeps: Record<Subject, Sweep[]>,
  clock: { offsetUs: number; rttUs: number },
  load0: number[],
  say: (line?: string) => void,
): void {
  const rawMax = median(sweeps.raw.map((s) => s.maxSustained));
  const kMax = median(sweeps.kernel.map((s) => s.maxSustained));
  const ratio = kMax / rawMax;
  const n = Math.max(sweeps.raw.length, sweeps.kernel.length);
  say(`\nmedians over ${n} run(s) (raw and kernel interleaved)`);
  say(
    `  max sustained ticks/s   kernel ${fmtRate(kMax)}   raw NATS ${fmtRate(rawMax)}   ` +
      `kernel/raw ${Number.isFinite(ratio) ? `${(ratio * 100).toFixed(1)}%` : 'n/a'}` +
      `   per run: kernel ${sweeps.kernel.map((s) => fmtRate(s.maxSustained)).join(', ')}; ` +
      `raw ${sweeps.raw.map((s) => fmtRate(s.maxSustained)).join(', ')}`,
  );
  const byRate: Record<string, unknown> = {};
  for (const rate of opts.reportRates) {
    const k = (f: keyof LatencySummary): number => atRate(sweeps.kernel, rate, (s) => s.latency[f]);
    const r = (f: keyof LatencySummary): number => atRate(sweeps.raw, rate, (s) => s.latency[f]);
    const kBeyond = sweeps.kernel.some((sw) => sw.steps.some((s) => s.rate === rate && s.beyond));
    say(
      `  @${fmtRate(rate)}/s  kernel p50 ${fmtUs(k('p50'))} p90 ${fmtUs(k('p90'))} p99 ${fmtUs(k('p99'))} max ${fmtUs(k('max'))} µs` +
        `${kBeyond ? ' (beyond the kernel stop)' : ''}  |  raw p50 ${fmtUs(r('p50'))} p90 ${fmtUs(r('p90'))} p99 ${fmtUs(r('p99'))} max ${fmtUs(r('max'))} µs` +
        `  |  kernel/raw p50 ${(k('p50') / r('p50')).toFixed(1)}x p99 ${(k('p99') / r('p99')).toFixed(1)}x`,
    );
    const stageP50: Record<string, number> = {};
    const stageP99: Record<string, number> = {};
    for (const st of STAGES) {
      stageP50[st] = atRate(sweeps.kernel, rate, (s) => s.stages?.[st]?.p50 ?? Number.NaN);
      stageP99[st] = atRate(sweeps.kernel, rate, (s) => s.stages?.[st]?.p99 ?? Number.NaN);
    }
    say(
      `      kernel stages p50 (p99) µs: ` +
        STAGES.map((st) => `${st} ${fmtUs(stageP50[st]!)} (${fmtUs(stageP99[st]!)})`).join(', '),
    );
    const cpuK = atRate(sweeps.kernel, rate, (s) => s.cpu.kernel);
    const cpuB = atRate(sweeps.kernel, rate, (s) => s.cpu.bench);
    const cpuN = atRate(sweeps.kernel, rate, (s) => s.cpu.nats);
    say(
      `      cpu cores during the kernel step: kernel ${cpuK.toFixed(2)}, bench ${cpuB.toFixed(2)}, nats-server ${cpuN.toFixed(2)}`,
    );
    byRate[String(rate)] = {
      kernel: { p50: k('p50'), p90: k('p90'), p99: k('p99'), max: k('max'), beyondStop: kBeyond },
      raw: { p50: r('p50'), p90: r('p90'), p99: r('p99'), max: r('max') },
      ratio: { p50: k('p50') / r('p50'), p99: k('p99') / r('p99') },
      stagesP50: stageP50,
      stagesP99: stageP99,
      cpu: { kernel: cpuK, bench: cpuB, nats: cpuN },
    };
  }
  const p99At10k = atRate(sweeps.kernel, 10_000, (s) => s.latency.p99);
  const ceilingPass = ratio >= 0.3;
  const latencyPass = p99At10k < 2000;
  say(
    `  targets: kernel >= 30% of the raw ceiling: ${Number.isFinite(ratio) ? (ceilingPass ? 'PASS' : 'FAIL') : 'n/a'}` +
      `; kernel p99 < 2 ms at 10k/s: ${Number.isFinite(p99At10k) ? (latencyPass ? 'PASS' : 'FAIL') : 'n/a'} (${fmtUs(p99At10k)} µs)`,
  );
  say(
    `  loadavg before ${load0.map((x) => x.toFixed(2)).join(' ')}, after ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );

  if (opts.json || opts.out) {
    const doc = {
      bench: 'pipeline',
      date: new Date().toISOString(),
      host: {
        cpus: availableParallelism(),
        model: cpus()[0]?.model ?? 'unknown',
        node: process.version,
        platform: `${process.platform}-${process.arch}`,
        loadavgBefore: load0,
        loadavgAfter: loadavg(),
      },
      options: opts,
      clock,
      maxSustained: { kernel: kMax, raw: rawMax, ratio },
      byRate,
      targets: { kernelAtLeast30PctOfRaw: ceilingPass, kernelP99Under2msAt10k: latencyPass },
      sweeps,
    };
    emitBenchDocument('pipeline', doc, opts, say);
  }
}

runBench('pipeline-bench', main);
