import type { LatencySummary } from '../hdr-report.js';
import type { PublishFigures, Subject } from './bench-report.js';
import type { ArrivalCounts } from './send-table.js';

/**
 * IPC between the bench and its load process (load-process.ts), one fork per
 * step, `serialization: 'advanced'` (typed arrays cross as they are):
 *
 * ```
 *  bench                                   load process
 *    fork(spec in argv: none) ───────────►
 *    {type:'step', spec}      ───────────►  connect NATS (+ WebSockets), subscribe
 *                             ◄───────────  {type:'ready', stale}
 *    scrape /metrics, CPU baseline
 *    {type:'go'}              ───────────►  publish on the schedule
 *                             ◄───────────  {type:'measuring'}   warm-up over
 *                             ◄───────────  {type:'progress'} every 500 ms, {type:'interval'} (soak)
 *                             ◄───────────  {type:'published', publish}
 *                                           drain: every expected arrival, or quiet, or deadline
 *                             ◄───────────  {type:'result', …}
 *    final readings (its CPU and RSS too)
 *    {type:'stop'}            ───────────►  closes its connections, exits
 *  failure anywhere           ◄───────────  {type:'failed', code, message}; exits 1
 * ```
 */

/** What one load step does. */
export interface LoadStepSpec {
  subject: Subject;
  natsUrl: string;
  /** WebSocket URL of the kernel, relay or ws server (not for raw). */
  wsUrl?: string;
  /** API key (kernel): sent as `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** WebSocket subscribers (raw: ignored, one NATS subscriber). */
  subscribers: number;
  /** Subjects are `<prefix>.<sym>`: `md.bench`. */
  subjectPrefix: string;
  rate: number;
  symbols: number;
  seconds: number;
  warmupSeconds: number;
  /** Record the first `coldSeconds` separately (0: no). */
  coldSeconds: number;
  /** Per-symbol seq of the first tick of this step. */
  seqStart: Float64Array;
  /** Latency summaries every this many seconds (0: none). */
  intervalSeconds: number;
  /** Longest wait for in-flight arrivals after the last publish, s. */
  drainSeconds: number;
  /** Drain ends early after this long without an arrival, ms. */
  quietMs: number;
  /** PRNG seed of the price walks. */
  seed: number;
  /** Hard deadline of the process, ms after it received the spec. */
  deadlineMs: number;
}

export type ToLoad = { type: 'step'; spec: LoadStepSpec } | { type: 'go' } | { type: 'stop' };

/** The load process's final figures. */
export interface LoadResult {
  type: 'result';
  publish: PublishFigures;
  arrivals: ArrivalCounts;
  latency: LatencySummary;
  latencyUncorrected: LatencySummary;
  cold: LatencySummary | null;
  /** Deliveries of this step's ticks, per subscriber: min and max (fan-out). */
  perSubscriber: { min: number; max: number };
  /** WebSocket clients closed by the server during the step ("code reason"). */
  wsClosed: string[];
  /** Seconds from the last publish to the end of the drain. */
  drainSeconds: number;
}

export type FromLoad =
  | { type: 'ready'; stale: number }
  | { type: 'measuring' }
  | { type: 'progress'; sent: number; delivered: number }
  | { type: 'interval'; t: number; latency: LatencySummary; delivered: number }
  | { type: 'published'; publish: PublishFigures }
  | LoadResult
  | { type: 'failed'; code: string; message: string };
