import type { LatencySummary } from '../hdr-report.js';
import type { ArrivalCounts } from './send-table.js';
import type { KernelLossCheck } from './loss-check.js';

/**
 * The JSON document every `qilin bench` run writes to
 * `bench/results/<scenario>-<UTC timestamp>.json` (and prints with
 * `--json`). Everything a figure was computed from is kept: per-run, per-step
 * results under `runs`, medians under `summary`, and a flat `metrics` map
 * that `qilin bench compare` diffs between two documents.
 */

export const SCENARIOS = ['latency', 'throughput', 'symbols', 'fanout', 'soak'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/**
 * What is measured: the kernel, or one of the baselines run beside it.
 * - `kernel`: `node bin/qilin.js start`, default configuration;
 * - `relay`: a trivial NATS → JSON.parse → uWS publish process (no work);
 * - `hop`: the relay with the kernel's thread hop: worker threads (own NATS
 *   connections, partitions) write the frames into FrameRings, the main
 *   thread drains them into uWS (bench/harness/hop-server.ts);
 * - `raw`: raw NATS publish → core subscribe in the load process;
 * - `ws`: a fan-out server on the `ws` library (NATS → JSON.parse → ws send).
 */
export const SUBJECTS = ['kernel', 'relay', 'hop', 'raw', 'ws'] as const;
export type Subject = (typeof SUBJECTS)[number];

/** Human names of the subjects. */
export const SUBJECT_LABEL: Readonly<Record<Subject, string>> = {
  kernel: 'kernel',
  relay: 'uWS relay',
  hop: 'hop relay',
  raw: 'raw NATS',
  ws: 'ws fan-out',
};

/** Processes whose CPU and memory are reported. */
export type ProcName =
  | 'kernel'
  | 'kernel-b'
  | 'nats-server'
  | 'relay'
  | 'hop-relay'
  | 'ws-server'
  | 'loadgen'
  | 'clickhouse-server';

/** CPU and memory of one process over one step. */
export interface ProcessFigures {
  pid: number;
  /** CPU over the whole step (publishing + drain), % of one core. */
  cpuPercent: number;
  /** CPU µs per tick over the measured window (after warm-up, until the last publish). */
  cpuUsPerTick: number;
  /** RSS at the end of the warm-up, MiB. */
  rssAfterWarmupMiB: number;
  /** Largest RSS seen during the step, MiB. */
  rssMaxMiB: number;
  /** RSS at the end of the step, MiB. */
  rssEndMiB: number;
}

/** What the load process published in one step. */
export interface PublishFigures {
  /** Ticks published (warm-up included). */
  sent: number;
  /** Ticks after the warm-up (the measured ones). */
  measuredSent: number;
  /** Ticks/s actually published over the schedule. */
  achievedRate: number;
  /** Longest gap between two publishing turns, ms (timer jitter, stalls). */
  maxTurnGapMs: number;
}

/** One interval of a soak step. */
export interface IntervalSample {
  /** Seconds since the step's first tick (end of the interval). */
  t: number;
  /** Corrected latency of the interval's measured deliveries. */
  latency: LatencySummary;
  /** RSS per process at the end of the interval, MiB. */
  rssMiB: Partial<Record<ProcName, number>>;
  /** CPU per process over the interval, % of one core. */
  cpuPercent: Partial<Record<ProcName, number>>;
}

/** One step of one run: one subject at one rate (symbol count, subscriber count). */
export interface StepResult {
  subject: Subject;
  run: number;
  /** Offered ticks/s. */
  rate: number;
  symbols: number;
  /** WebSocket subscribers (raw: the one NATS subscriber). */
  subscribers: number;
  seconds: number;
  warmupSeconds: number;
  /** First step on a fresh subject: `cold` holds its first second. */
  cold: LatencySummary | null;
  publish: PublishFigures;
  arrivals: ArrivalCounts;
  /** Frames per WebSocket subscriber, fewest and most (fan-out). */
  perSubscriber: { min: number; max: number };
  /** Coordinated-omission corrected latency (arrival − intended send), µs. */
  latency: LatencySummary;
  /** Arrival − actual send, µs. */
  latencyUncorrected: LatencySummary;
  /** Kernel steps: loss check from /metrics, predictions it emitted. */
  kernel: (KernelLossCheck & { predictionsEmitted: number }) | null;
  /** nats-server slow consumers added during the step (its /varz). */
  natsSlowConsumers: number;
  processes: Partial<Record<ProcName, ProcessFigures>>;
  /** Symbols scenario: RSS of the idle kernel/relay before the load, MiB. */
  idleRssMiB: number | null;
  /** Soak: per-interval latency and memory. */
  intervals: IntervalSample[];
  /** False when anything was lost, dropped, or (throughput) p99 passed the SLO. */
  pass: boolean;
  reasons: string[];
}

/** A figure `compare` can diff: its value, unit and which direction is better. */
export interface MetricEntry {
  value: number;
  unit: string;
  better: 'lower' | 'higher';
}

/** A target of issue 6, evaluated on this run's medians. */
export interface TargetResult {
  name: string;
  value: number;
  limit: number;
  unit: string;
  /** null: not measured in this run. */
  pass: boolean | null;
}

/** Machine the run was on. */
export interface HostInfo {
  cpus: number;
  model: string;
  node: string;
  platform: string;
  loadavgBefore: number[];
  loadavgAfter: number[];
}

/** The whole document. */
export interface BenchReport {
  bench: 'qilin-bench';
  version: 1;
  scenario: Scenario;
  /** ISO start time (UTC). */
  date: string;
  /** The command line that produced it. */
  command: string;
  host: HostInfo;
  /** The resolved options (defaults filled in). */
  options: Record<string, unknown>;
  /** How the subjects were started and measured. */
  setup: Record<string, unknown>;
  /** Scenario-specific medians across runs (see bench/README.md). */
  summary: Record<string, unknown>;
  metrics: Record<string, MetricEntry>;
  targets: TargetResult[];
  runs: StepResult[][];
  /** Files written for this run (absent with --no-write). */
  files?: { json: string; svg: string };
}
