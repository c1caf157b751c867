/**
 * Ring benchmark: the SharedArrayBuffer SPSC ring (kernel/spsc-ring.ts) against
 * `postMessage` for handing 64-byte market records from the main thread to a
 * worker, in the same run. See bench/ring/README.md for method and caveats.
 *
 * ```
 *   main thread: producer                         worker: consumer (ring-bench-worker.ts)
 *   ┌──────────────────────────┐   SpscRing (SAB)   ┌───────────────────────────────┐
 *   │ encodeMarket + publish   │ ─────────────────► │ peek/decodeMarket/release      │
 *   │  full: ring.waitForSpace │                    │  empty: park in waitForData    │
 *   │ postMessage(object|f64)  │ ─ structured clone►│ 'message' → copy into event    │
 *   │ pacing: Atomics.wait on a│                    │ latency: nowUs() - recv → HDR  │
 *   │  scratch Int32Array      │ ◄── done (ack) ─── │ one ack per phase              │
 *   └──────────────────────────┘                    └───────────────────────────────┘
 * ```
 * Phases, each repeated `--runs` times with the transports interleaved so a
 * noisy neighbour hurts them alike:
 * - throughput: N records as fast as possible; records/s from the first write
 *   to the moment the consumer's ack arrives on the main thread.
 * - latency at a fixed offered rate: bursts every BURST_US of the records that
 *   are due, `recv` stamped with nowUs() right before each write, the consumer
 *   records `nowUs() - recv`.
 * Waiting never spins: a full ring blocks the producer in `ring.waitForSpace`
 * (Atomics.wait on the ring's tail word, woken by the consumer's release), and
 * the pacing sleeps in Atomics.wait on a scratch word with a sub-ms timeout.
 * Both are allowed on Node's main thread and block nothing the bench needs:
 * acks are read only after the producer loop returns.
 */
import { emitBenchDocument, parseBenchArgs, runBench } from '../bench-output.js';
import { availableParallelism, cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import { nowUs } from '../../kernel/clock.js';
import { ErrorCodes, QilinError, invalidArgument } from '../../kernel/errors.js';
import {
  MARKET_RECORD_BYTES,
  MarketKind,
  Side,
  encodeMarket,
  newMarketEvent,
} from '../../kernel/market-record.js';
import type { MarketEvent } from '../../kernel/market-record.js';
import { SpscRing } from '../../kernel/spsc-ring.js';
import { formatSummary } from '../hdr-report.js';
import type { LatencySummary } from '../hdr-report.js';
import type {
  BenchFromWorker,
  BenchPhase,
  BenchToWorker,
  BenchWorkerInit,
  PostForm,
} from './ring-bench-worker.js';

/** Pacing granularity of the latency phase. */
const BURST_US = 100;
/** One `waitForSpace` park; the producer re-parks until the deadline. */
const FULL_WAIT_MS = 1;
/** A phase that takes longer than this has lost its consumer. */
const PHASE_DEADLINE_MS = 120_000;
const CLOCK_PINGS = 50;

/** The transports compared. */
type Transport = 'ring' | 'post-object' | 'post-f64';
const TRANSPORTS: readonly Transport[] = ['ring', 'post-object', 'post-f64'];
const LABEL: Record<Transport, string> = {
  ring: 'ring (SAB SPSC, 64 B)',
  'post-object': 'postMessage plain object',
  'post-f64': 'postMessage Float64Array(8)',
};

/** Parsed command line. */
interface BenchOptions {
  /** Ring records in the throughput phase. */
  records: number;
  /** postMessage records in the throughput phase. */
  postRecords: number;
  /** Offered rates of the latency phase, records/s. */
  rates: number[];
  /** Seconds per latency run. */
  duration: number;
  runs: number;
  /** Ring capacity in records. */
  capacity: number;
  json: boolean;
  out: boolean;
}

const HELP = `ring-bench: SAB SPSC ring vs postMessage, main thread -> worker, 64-byte MarketRecords

Measures, in the same run and with the transports interleaved:
  throughput  records/s from the first write to the consumer's final ack
              (ring, postMessage of a plain object, postMessage of a Float64Array(8));
              prints the ring/postMessage ratio of the medians (target >= 10x)
  latency     hand-off latency (write -> read, nowUs() on both threads) at fixed
              offered rates, p50/p90/p99/p99.9 from an HDR histogram (target: ring
              p99 < 50 us at 100k records/s)
Each configuration runs --runs times; per-run figures and the median are printed.

Usage: node dist/bench/ring/ring-bench.js [flags]
  --records N       ring records in the throughput phase (default 2000000)
  --post-records N  postMessage records in the throughput phase (default records/10)
  --rate R[,R...]   offered rates for the latency phase, records/s; repeatable
                    (default 100000,10000)
  --duration S      seconds per latency run (default 1)
  --runs N          runs per configuration (default 5)
  --capacity N      ring capacity in records, a power of two (default 65536)
  --json            print a JSON document on stdout (the human report goes to stderr)
  --out             also write the JSON document to bench/results/ring-<date>.json
  --help            this text
`;

function positiveInt(name: string, raw: string | undefined, dflt: number, max: number): number {
  if (raw === undefined) return dflt;
  const v = Number(raw.replace(/_/g, ''));
  if (!Number.isInteger(v) || v < 1 || v > max) {
    invalidArgument(name, raw, `an integer from 1 to ${max}`);
  }
  return v;
}

const OPTIONS = {
  records: { type: 'string' },
  'post-records': { type: 'string' },
  rate: { type: 'string', multiple: true },
  duration: { type: 'string' },
  runs: { type: 'string' },
  capacity: { type: 'string' },
  json: { type: 'boolean', default: false },
  out: { type: 'boolean', default: false },
  help: { type: 'boolean', default: false },
} as const;

function parseOptions(argv: string[]): BenchOptions | null {
  const parsed = parseBenchArgs(argv, OPTIONS);
  const values = parsed.values;
  if (values.help) return null;
  const records = positiveInt('--records', values.records, 2_000_000, 2 ** 31);
  const postRecords = positiveInt(
    '--post-records',
    values['post-records'],
    Math.max(1, Math.round(records / 10)),
    2 ** 31,
  );
  const rates = (values.rate ?? ['100000,10000'])
    .flatMap((r) => r.split(','))
    .map((r) => positiveInt('--rate', r.trim(), 0, 10_000_000));
  const durationRaw = values.duration ?? '1';
  const duration = Number(durationRaw);
  if (!Number.isFinite(duration) || duration <= 0 || duration > 600) {
    invalidArgument('--duration', durationRaw, 'seconds, more than 0 and at most 600');
  }
  const runs = positiveInt('--runs', values.runs, 5, 1000);
  const capacity = positiveInt('--capacity', values.capacity, 65_536, 2 ** 30);
  if ((capacity & (capacity - 1)) !== 0 || capacity < 2) {
    invalidArgument('--capacity', values.capacity, 'a power of two from 2 to 2^30');
  }
  return {
    records,
    postRecords,
    rates,
    duration,
    runs,
    capacity,
    json: values.json,
    out: values.out,
  };
}

// ───────────────────────────── consumer worker ─────────────────────────────

type Done = Extract<BenchFromWorker, { type: 'done' }>;

/**
 * The consumer thread and a one-at-a-time request/ack channel to it. Every
 * wait has a deadline and fails if the worker errors or exits.
 */
class Consumer {
  readonly worker: Worker;
  private waiter: ((msg: BenchFromWorker) => void) | null = null;
  private failer: ((err: Error) => void) | null = null;
  private dead: Error | null = null;

  constructor(ring: SpscRing) {
    const init: BenchWorkerInit = { ring: ring.buffer };
    this.worker = new Worker(new URL('./ring-bench-worker.js', import.meta.url), {
      workerData: init,
    });
    this.worker.on('message', (msg: BenchFromWorker) => {
      if (msg.type === 'error') {
        this.fail(new QilinError(ErrorCodes.WORKER_DIED, `bench consumer failed: ${msg.message}`));
        return;
      }
      const w = this.waiter;
      this.waiter = null;
      this.failer = null;
      w?.(msg);
    });
    this.worker.on('error', (err) => {
      this.fail(
        new QilinError(ErrorCodes.WORKER_DIED, `bench consumer threw: ${err.message}`, {
          cause: err,
        }),
      );
    });
    this.worker.on('exit', (code) => {
      this.fail(new QilinError(ErrorCodes.WORKER_DIED, `bench consumer exited with code ${code}`));
    });
  }

  private fail(err: Error): void {
    this.dead ??= err;
    const f = this.failer;
    this.waiter = null;
    this.failer = null;
    f?.(err);
  }

  /** The next message from the consumer, within `deadlineMs`. */
  next(what: string, deadlineMs = PHASE_DEADLINE_MS): Promise<BenchFromWorker> {
    if (this.dead !== null) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        this.failer = null;
        reject(
          new QilinError(
            ErrorCodes.BENCH_TIMEOUT,
            `bench consumer did not answer ${what} within ${deadlineMs} ms`,
          ),
        );
      }, deadlineMs);
      this.waiter = (msg) => {
        clearTimeout(timer);
        resolve(msg);
      };
      this.failer = (err) => {
        clearTimeout(timer);
        reject(err);
      };
    });
  }

  send(msg: BenchToWorker): void {
    this.worker.postMessage(msg);
  }

  async done(what: string): Promise<Done> {
    const msg = await this.next(what);
    if (msg.type !== 'done') {
      throw new QilinError(
        ErrorCodes.WORKER_DIED,
        `bench consumer sent ${msg.type} while ${what} expected done`,
      );
    }
    return msg;
  }

  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.failer = null;
    this.send({ type: 'exit' });
    const timer = setTimeout(() => void this.worker.terminate(), 5000);
    await exited;
    clearTimeout(timer);
  }
}

// ───────────────────────────── producers ─────────────────────────────

/** Scratch word the pacing sleeps on; nobody ever notifies it. */
const scratch = new Int32Array(new SharedArrayBuffer(4));
/** The producer's reused event, and the reused Float64Array for the f64 baseline. */
const ev: MarketEvent = newMarketEvent();
const postF64 = new Float64Array(MARKET_RECORD_BYTES / 8);
const postU32 = new Uint32Array(postF64.buffer);
/** Next sequence number; increases across all phases so the consumer can check order. */
let nextSeq = 1;

/** Fill the reused event with record number `seq`: trades and quotes alternate. */
function fillRecord(seq: number): void {
  ev.seq = seq;
  ev.symId = seq & 1023;
  ev.ts = 1_732_300_000_000_000 + seq;
  if ((seq & 1) === 0) {
    ev.kind = MarketKind.TRADE;
    ev.side = Side.BUY;
    ev.px = 97_012.5 + (seq & 15);
    ev.qty = 0.25;
  } else {
    ev.kind = MarketKind.QUOTE;
    ev.side = Side.NONE;
    ev.bid = 97_012;
    ev.bidQty = 1.2;
    ev.ask = 97_013;
    ev.askQty = 0.8;
  }
}

/** Claim a slot, parking (not spinning) in waitForSpace while the ring is full. */
function claimSlot(ring: SpscRing): number {
  let at = ring.claim();
  if (at !== -1) return at;
  const giveUp = nowUs() + PHASE_DEADLINE_MS * 1000;
  while (at === -1) {
    if (!ring.waitForSpace(FULL_WAIT_MS) && nowUs() > giveUp) {
      throw new QilinError(
        ErrorCodes.BENCH_TIMEOUT,
        `ring of ${ring.capacity} records stayed full for ${PHASE_DEADLINE_MS} ms: consumer stalled`,
      );
    }
    at = ring.claim();
  }
  return at;
}

/** Write one record, `recv` stamped just before, through the chosen transport. */
function writeOne(transport: Transport, ring: SpscRing, consumer: Consumer, stamp: boolean): void {
  fillRecord(nextSeq++);
  if (transport === 'ring') {
    const at = claimSlot(ring);
    ev.recv = stamp ? nowUs() : 0;
    encodeMarket(ev, ring.f64, ring.u32, at);
    ring.publish();
  } else if (transport === 'post-object') {
    ev.recv = stamp ? nowUs() : 0;
    consumer.worker.postMessage(ev);
  } else {
    ev.recv = stamp ? nowUs() : 0;
    encodeMarket(ev, postF64, postU32, 0);
    consumer.worker.postMessage(postF64);
  }
}

function announce(
  consumer: Consumer,
  transport: Transport,
  phase: BenchPhase,
  count: number,
): void {
  if (transport === 'ring') {
    consumer.send({ type: 'ring', phase, count, firstSeq: nextSeq });
  } else {
    const form: PostForm = transport === 'post-f64' ? 'f64' : 'object';
    consumer.send({ type: 'post', phase, form, count, firstSeq: nextSeq });
  }
}

function checkDone(d: Done, transport: Transport, count: number): void {
  if (d.count !== count || d.bad !== 0) {
    throw new QilinError(
      ErrorCodes.BENCH_INTEGRITY,
      `${transport}: consumer read ${d.count} of ${count} records, ${d.bad} out of sequence`,
    );
  }
}

/** Throughput run: records/s from the first write to the consumer's ack. */
async function throughputRun(
  transport: Transport,
  count: number,
  ring: SpscRing,
  consumer: Consumer,
): Promise<number> {
  announce(consumer, transport, 'throughput', count);
  const t0 = nowUs();
  for (let i = 0; i < count; i++) writeOne(transport, ring, consumer, false);
  const d = await consumer.done(`${transport} throughput`);
  const t1 = nowUs();
  checkDone(d, transport, count);
  return count / ((t1 - t0) / 1e6);
}

/**
 * Latency run at `rate` records/s for `seconds`: every BURST_US write the
 * records that are due, then sleep on the scratch word until the next burst.
 */
async function latencyRun(
  transport: Transport,
  rate: number,
  seconds: number,
  ring: SpscRing,
  consumer: Consumer,
): Promise<LatencySummary & { achievedRate: number }> {
  const count = Math.max(1, Math.round(rate * seconds));
  const intervalUs = 1e6 / rate;
  announce(consumer, transport, 'latency', count);
  const start = nowUs();
  let written = 0;
  while (written < count) {
    const due = Math.min(count, Math.floor((nowUs() - start) / intervalUs) + 1);
    while (written < due) {
      writeOne(transport, ring, consumer, true);
      written++;
    }
    if (written >= count) break;
    const nextBurst = start + (Math.floor((nowUs() - start) / BURST_US) + 1) * BURST_US;
    const sleepUs = nextBurst - nowUs();
    if (sleepUs > 0) Atomics.wait(scratch, 0, 0, sleepUs / 1000);
  }
  const elapsed = nowUs() - start;
  const d = await consumer.done(`${transport} latency at ${rate}/s`);
  checkDone(d, transport, count);
  if (d.latency === null) {
    throw new QilinError(ErrorCodes.WORKER_DIED, `${transport}: latency phase ack had no summary`);
  }
  return { ...d.latency, achievedRate: count / (elapsed / 1e6) };
}

/** Offset of the worker's nowUs() against the main thread's, from the fastest ping. */
async function measureClock(consumer: Consumer): Promise<{ offsetUs: number; rttUs: number }> {
  let best = { offsetUs: 0, rttUs: Number.POSITIVE_INFINITY };
  for (let i = 0; i < CLOCK_PINGS; i++) {
    consumer.send({ type: 'clock', t0: nowUs() });
    const msg = await consumer.next('clock ping', 5000);
    const t1 = nowUs();
    if (msg.type !== 'clock') {
      throw new QilinError(ErrorCodes.WORKER_DIED, `bench consumer sent ${msg.type} to a ping`);
    }
    const rtt = t1 - msg.t0;
    if (rtt < best.rttUs) best = { offsetUs: msg.tw - (msg.t0 + t1) / 2, rttUs: rtt };
  }
  return best;
}

// ───────────────────────────── report ─────────────────────────────

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function medianSummary(runs: readonly LatencySummary[]): LatencySummary {
  const pick = (k: keyof LatencySummary): number => median(runs.map((r) => r[k]));
  return {
    count: pick('count'),
    min: pick('min'),
    mean: pick('mean'),
    p50: pick('p50'),
    p90: pick('p90'),
    p99: pick('p99'),
    p999: pick('p999'),
    max: pick('max'),
  };
}

/** 17.75M, 529.2k, 100k, 950. */
function fmtRate(r: number): string {
  const short = (x: number, digits: number): string => x.toFixed(digits).replace(/\.0+$/, '');
  if (r >= 1e6) return `${short(r / 1e6, 2)}M`;
  if (r >= 1e3) return `${short(r / 1e3, 1)}k`;
  return r.toFixed(0);
}

function fmtUs(us: number): string {
  return us >= 100 ? us.toFixed(0) : us.toFixed(1);
}

interface ThroughputResult {
  records: number;
  runs: number[];
  median: number;
}

interface LatencyResult {
  runs: Array<LatencySummary & { achievedRate: number }>;
  median: LatencySummary;
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts === null) {
    process.stdout.write(HELP);
    return;
  }
  // With --json, stdout carries only the JSON document.
  const say = (line = ''): void => {
    (opts.json ? process.stderr : process.stdout).write(`${line}\n`);
  };

  const ring = SpscRing.create(opts.capacity, MARKET_RECORD_BYTES);
  const consumer = new Consumer(ring);
  const ready = await consumer.next('start-up', 10_000);
  if (ready.type !== 'ready') {
    throw new QilinError(ErrorCodes.WORKER_DIED, `bench consumer sent ${ready.type} at start`);
  }

  say(
    `ring-bench: ${availableParallelism()} CPU(s) (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}`,
  );
  say(
    `  throughput: ring ${opts.records} records, postMessage ${opts.postRecords} records; ` +
      `latency: ${opts.rates.join(', ')} records/s for ${opts.duration} s; ` +
      `${opts.runs} runs; ring capacity ${opts.capacity}`,
  );
  const clock = await measureClock(consumer);
  say(
    `  clock: worker nowUs() - main nowUs() = ${clock.offsetUs.toFixed(1)} us ` +
      `(best ping RTT ${clock.rttUs.toFixed(1)} us of ${CLOCK_PINGS})`,
  );
  if (Math.abs(clock.offsetUs) > clock.rttUs / 2 + 5) {
    say('  WARNING: the two threads clocks disagree by more than the ping can explain');
  }

  const countFor = (t: Transport, scale = 1): number =>
    Math.max(1, Math.round((t === 'ring' ? opts.records : opts.postRecords) * scale));

  // Warm-up (JIT, first-touch of the ring pages), not reported.
  for (const t of TRANSPORTS) await throughputRun(t, countFor(t, 0.1), ring, consumer);
  for (const t of TRANSPORTS) {
    await latencyRun(t, opts.rates[0]!, Math.min(0.2, opts.duration), ring, consumer);
  }

  const throughput = new Map<Transport, ThroughputResult>();
  for (const t of TRANSPORTS) throughput.set(t, { records: countFor(t), runs: [], median: 0 });
  const latency = new Map<number, Map<Transport, LatencyResult>>();
  for (const rate of opts.rates) {
    const m = new Map<Transport, LatencyResult>();
    for (const t of TRANSPORTS) m.set(t, { runs: [], median: medianSummary([]) });
    latency.set(rate, m);
  }

  for (let run = 1; run <= opts.runs; run++) {
    say(`\nrun ${run}/${opts.runs}`);
    for (const t of TRANSPORTS) {
      const r = await throughputRun(t, countFor(t), ring, consumer);
      throughput.get(t)!.runs.push(r);
      say(
        `  throughput ${''.padEnd(9)} ${LABEL[t].padEnd(28)} ${fmtRate(r).padStart(8)} records/s`,
      );
    }
    for (const rate of opts.rates) {
      for (const t of TRANSPORTS) {
        const r = await latencyRun(t, rate, opts.duration, ring, consumer);
        latency.get(rate)!.get(t)!.runs.push(r);
        say(
          `  ${formatSummary(`latency ${`@${fmtRate(rate)}/s`.padEnd(9)} ${LABEL[t].padEnd(28)}`, r)}` +
            ` (offered ${fmtRate(r.achievedRate)}/s)`,
        );
      }
    }
  }
  await consumer.close();

  // ── medians and ratios ──
  for (const r of throughput.values()) r.median = median(r.runs);
  for (const m of latency.values()) for (const r of m.values()) r.median = medianSummary(r.runs);
  const tp = (t: Transport): number => throughput.get(t)!.median;
  const ratioObject = tp('ring') / tp('post-object');
  const ratioF64 = tp('ring') / tp('post-f64');
  const firstRate = opts.rates.includes(100_000) ? 100_000 : opts.rates[0]!;
  const ringP99 = latency.get(firstRate)!.get('ring')!.median.p99;
  const throughputPass = Math.min(ratioObject, ratioF64) >= 10;
  const latencyPass = ringP99 < 50;

  const head = (label: string, cols: readonly string[], width: number): string =>
    `  ${label.padEnd(width)}` + cols.map((c) => c.padStart(8)).join(' ');
  say(`\nmedians over ${opts.runs} runs (transports interleaved within each run)`);
  say(
    head(
      'throughput, records/s',
      [...Array.from({ length: opts.runs }, (_, i) => `run ${i + 1}`), 'median'],
      38,
    ),
  );
  for (const t of TRANSPORTS) {
    const r = throughput.get(t)!;
    say(head(LABEL[t], [...r.runs, r.median].map(fmtRate), 38));
  }
  say(
    `  ring / postMessage: ${ratioObject.toFixed(1)}x vs plain object, ${ratioF64.toFixed(1)}x vs Float64Array` +
      `  (target >= 10x: ${throughputPass ? 'PASS' : 'FAIL'})`,
  );
  say('');
  say(head('hand-off latency, us (median of runs)', ['p50', 'p90', 'p99', 'p99.9', 'max'], 38));
  for (const rate of opts.rates) {
    for (const t of TRANSPORTS) {
      const s = latency.get(rate)!.get(t)!.median;
      say(
        head(
          `${`@${fmtRate(rate)}/s`.padEnd(9)} ${LABEL[t]}`,
          [s.p50, s.p90, s.p99, s.p999, s.max].map(fmtUs),
          38,
        ),
      );
    }
    const ringS = latency.get(rate)!.get('ring')!.median;
    const objS = latency.get(rate)!.get('post-object')!.median;
    const f64S = latency.get(rate)!.get('post-f64')!.median;
    say(
      `  ${`@${fmtRate(rate)}/s`.padEnd(9)} p50 postMessage / ring: ${(objS.p50 / ringS.p50).toFixed(1)}x object, ` +
        `${(f64S.p50 / ringS.p50).toFixed(1)}x Float64Array; p99: ${(objS.p99 / ringS.p99).toFixed(1)}x, ` +
        `${(f64S.p99 / ringS.p99).toFixed(1)}x`,
    );
  }
  say(
    `  ring p99 at ${fmtRate(firstRate)}/s = ${fmtUs(ringP99)} us (target < 50 us: ${latencyPass ? 'PASS' : 'FAIL'})`,
  );

  if (opts.json || opts.out) {
    const doc = {
      bench: 'ring',
      date: new Date().toISOString(),
      host: {
        cpus: availableParallelism(),
        model: cpus()[0]?.model ?? 'unknown',
        node: process.version,
        platform: `${process.platform}-${process.arch}`,
      },
      options: opts,
      clock,
      throughput: Object.fromEntries(throughput),
      ratio: { ringVsPostObject: ratioObject, ringVsPostF64: ratioF64 },
      latency: Object.fromEntries(
        [...latency].map(([rate, m]) => [String(rate), Object.fromEntries(m)]),
      ),
      targets: {
        throughputRatioAtLeast10: throughputPass,
        ringP99Under50us: latencyPass,
        latencyRate: firstRate,
      },
    };
    emitBenchDocument('ring', doc, opts, say);
  }
}

runBench('ring-bench', main);
