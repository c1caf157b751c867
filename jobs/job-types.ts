/**
 * The types at the boundaries of the job system: what a caller submits, what
 * it sees of a job ({@link JobView}), what a job type implements
 * ({@link JobTypeSpec}) and the events a running job sends out
 * ({@link JobEvent}). Plain data only: they cross Redis, worker threads,
 * NATS, WebSockets and HTTP as JSON.
 */

/** The states a caller sees. `cancelled` is BullMQ's `failed` with the QLN_JOB_CANCELLED code. */
export type JobState =
  | 'waiting'
  | 'prioritized'
  | 'delayed'
  | 'active'
  | 'completed'
  | 'failed'
  | 'cancelled'
  | 'unknown';

/** A job's progress: `done` of `total` steps and what it does now. */
export interface JobProgress {
  done: number;
  total: number;
  message: string;
}

/** What `submit` takes. */
export interface JobSubmission {
  /** A registered job type (jobs/job-registry.ts): `backtest`, `train`, … */
  type: string;
  /** The type's params; checked at submit by the type's `parse` (QLN_JOB_INVALID). */
  params?: Readonly<Record<string, unknown>>;
  /** 1 (first) to 2 097 152 (last); unset: before every prioritised job, in submission order. */
  priority?: number;
  /** Wall time one attempt may run, ms; past it the run is stopped (QLN_JOB_TIMEOUT). Default 1 h. */
  timeoutMs?: number;
  /** Attempts in all (1: no retry). Default 1. */
  attempts?: number;
  /** Delay before a retry, ms, doubled at each further retry. Default 1000. */
  backoffMs?: number;
}

/** What is kept in the queue as the job's data. */
export interface JobData {
  params: Record<string, unknown>;
  timeoutMs: number;
}

/** What a finished job keeps as its result: a small summary and the type's full result. */
export interface JobResult {
  summary: Readonly<Record<string, number | string>>;
  result: unknown;
}

/** One job as callers see it (CLI, HTTP, WebSocket, NATS). */
export interface JobView {
  id: string;
  type: string;
  state: JobState;
  progress: JobProgress;
  priority: number;
  params: Record<string, unknown>;
  /** Attempts started (a run restarted after a kernel died counts), attempts allowed. */
  attempts: { started: number; made: number; max: number; stalled: number };
  /** The summary of the result once completed. */
  summary: Readonly<Record<string, number | string>> | null;
  /** Why it failed (cancelled, timed out, threw). */
  error: { code: string; message: string } | null;
  /** ms since the Unix epoch; null until it happens. */
  timestamps: { created: number; started: number | null; finished: number | null };
}

/** A job's progress or state change, as sent on NATS `job.<id>` and WebSocket `job/<id>`. */
export interface JobEvent {
  id: string;
  type: string;
  event: 'active' | 'progress' | 'completed' | 'failed' | 'cancelled' | 'retrying';
  state: JobState;
  progress: JobProgress;
  attempt: number;
  summary?: Readonly<Record<string, number | string>>;
  error?: { code: string; message: string };
  ts: number;
}

/** What a running job may call: report progress, and learn that it must stop. */
export interface JobContext {
  /** Report progress; throws QLN_JOB_CANCELLED / QLN_JOB_TIMEOUT once the run is to stop. */
  progress(done: number, total: number, message?: string): void;
  /** Throws QLN_JOB_CANCELLED / QLN_JOB_TIMEOUT once the run is to stop. */
  checkAborted(): void;
}

/**
 * One job type. `parse` runs at submit (in the submitting process) and again
 * in the worker thread; `run` runs only in a job worker thread, never on the
 * kernel's main thread. `run` must call `ctx.progress` (or `checkAborted`)
 * between steps so that a cancel or a timeout stops it.
 */
export interface JobTypeSpec<P = Record<string, unknown>> {
  /** One line for `qilin jobs --help`. */
  describe: string;
  /** Check and complete the params: throws QLN_JOB_INVALID naming the param. */
  parse(params: Readonly<Record<string, unknown>>): P;
  run(params: P, ctx: JobContext): Promise<JobResult>;
}
