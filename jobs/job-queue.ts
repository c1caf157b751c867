import { Queue, type Job, type JobsOptions, type RedisOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { closeRedis, failFastRedis } from '../adapters/redis/redis-client.js';
import { ErrorCodes, QilinError, hasCode } from '../kernel/errors.js';
import { jobType } from './job-registry.js';
import type {
  JobData,
  JobProgress,
  JobResult,
  JobState,
  JobSubmission,
  JobView,
} from './job-types.js';

/** The queue's name (under the key prefix). */
export const JOB_QUEUE_NAME = 'qilin-jobs';

/** Defaults of a submission. */
export const JOB_DEFAULTS = { timeoutMs: 3_600_000, attempts: 1, backoffMs: 1000 } as const;

/** Finished jobs kept (each state), oldest removed first. */
const KEEP_FINISHED = 1000;

/** The states `list` reads, in this order. */
const LISTED = ['active', 'waiting', 'prioritized', 'delayed', 'completed', 'failed'] as const;

export interface JobQueueOptions {
  redisUrl: string;
  /** BullMQ key prefix (config jobsPrefix; see {@link jobsPrefixOf}). */
  prefix: string;
}

/** The key prefix of a config: jobsPrefix, else `qilin:jobs:<clickhouseDb>`. */
export function jobsPrefixOf(config: { jobsPrefix?: string | undefined; clickhouseDb: string }) {
  return config.jobsPrefix ?? `qilin:jobs:${config.clickhouseDb}`;
}

/** ioredis options of a `redis://` / `rediss://` URL, for BullMQ (which opens its own connections). */
export function bullConnection(url: string, worker = false): RedisOptions {
  const u = new URL(url);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname,
    port: u.port === '' ? 6379 : Number(u.port),
    ...(u.username === '' ? {} : { username: decodeURIComponent(u.username) }),
    ...(u.password === '' ? {} : { password: decodeURIComponent(u.password) }),
    ...(Number.isInteger(db) && db > 0 ? { db } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    // A worker's blocking commands must wait out a Redis restart (BullMQ requires null);
    // a client (CLI, HTTP) fails fast instead of hanging.
    maxRetriesPerRequest: worker ? null : 2,
    connectTimeout: 5000,
  };
}

/** The Redis set of ids whose cancel was asked for (read by the workers). */
export function cancelSetKey(prefix: string): string {
  return `${prefix}:${JOB_QUEUE_NAME}:qilin-cancelled`;
}

/**
 * The job queue: BullMQ `qilin-jobs` on the project's Redis. Submit checks
 * the type and params here, in the submitting process (a bad one never gets
 * queued); a kernel's JobWorker (jobs/job-worker.ts) runs the jobs.
 *
 * Cancel: a job not yet running is marked (its worker fails it with
 * QLN_JOB_CANCELLED without running it); a running one is marked and its
 * worker stops the run at its next progress step. Either way it ends
 * `failed` with QLN_JOB_CANCELLED, shown as `cancelled`, never retried.
 */
export class JobQueue {
  readonly queue: Queue<JobData, JobResult>;
  private readonly prefix: string;
  /** Our own connection for the cancel marks (BullMQ's are its own). */
  private readonly redis: Redis;
  private connected: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(o: JobQueueOptions) {
    this.prefix = o.prefix;
    this.redis = failFastRedis(o.redisUrl);
    this.queue = new Queue<JobData, JobResult>(JOB_QUEUE_NAME, {
      connection: bullConnection(o.redisUrl),
      prefix: o.prefix,
    });
    // Failures surface through the calls; keep BullMQ from printing each reconnect.
    this.queue.on('error', () => undefined);
  }

  /** Check and enqueue a job; QLN_JOB_INVALID on a bad type, param or option. */
  async submit(s: JobSubmission): Promise<JobView> {
    const spec = jobType(s.type);
    const params = spec.parse(s.params ?? {}) as Record<string, unknown>;
    const timeoutMs = option(
      'timeoutMs',
      s.timeoutMs,
      JOB_DEFAULTS.timeoutMs,
      1000,
      7 * 86_400_000,
    );
    const attempts = option('attempts', s.attempts, JOB_DEFAULTS.attempts, 1, 100);
    const backoffMs = option('backoffMs', s.backoffMs, JOB_DEFAULTS.backoffMs, 0, 86_400_000);
    const opts: JobsOptions = {
      attempts,
      backoff: { type: 'exponential', delay: backoffMs },
      removeOnComplete: { count: KEEP_FINISHED },
      removeOnFail: { count: KEEP_FINISHED },
    };
    if (s.priority !== undefined) {
      opts.priority = option('priority', s.priority, 0, 1, 2_097_152);
    }
    const job = await this.call('submit', () =>
      this.queue.add(s.type, { params, timeoutMs }, opts),
    );
    return this.view(job, opts.priority === undefined ? 'waiting' : 'prioritized');
  }

  /** One job; QLN_JOB_NOT_FOUND when there is none with that id. */
  async show(id: string): Promise<JobView> {
    const job = await this.get(id);
    return this.view(job, await this.call('show', () => job.getState()));
  }

  /** The full result of a completed job (the backtest report, …); null while it is not completed. */
  async result(id: string): Promise<JobResult | null> {
    const job = await this.get(id);
    const state = await this.call('result', () => job.getState());
    return state === 'completed' ? (job.returnvalue ?? null) : null;
  }

  /** The newest jobs of each state (active, waiting, … failed), at most `limit` per state. */
  async list(limit = 50): Promise<JobView[]> {
    const out: JobView[] = [];
    for (const state of LISTED) {
      const jobs = await this.call('list', () => this.queue.getJobs([state], 0, limit - 1, false));
      for (const j of jobs) out.push(await this.view(j, state));
    }
    return out;
  }

  /** Cancel a job (see the class comment); QLN_JOB_INVALID when it has already finished. */
  async cancel(id: string): Promise<JobView> {
    const job = await this.get(id);
    const state = await this.call('cancel', () => job.getState());
    if (state === 'completed' || state === 'failed') {
      throw new QilinError(
        ErrorCodes.JOB_INVALID,
        `job ${id} has already ${state === 'completed' ? 'completed' : 'failed'}: nothing to cancel`,
        { details: { id, state } },
      );
    }
    await this.call('cancel', async () => {
      await this.connect();
      await this.redis.sadd(cancelSetKey(this.prefix), id);
    });
    return this.view(job, state);
  }

  /** Stop handing out jobs (running ones finish). */
  pause(): Promise<void> {
    return this.call('pause', () => this.queue.pause());
  }

  resume(): Promise<void> {
    return this.call('resume', () => this.queue.resume());
  }

  isPaused(): Promise<boolean> {
    return this.call('isPaused', () => this.queue.isPaused());
  }

  /** Close the connections. Safe twice. */
  close(): Promise<void> {
    this.closing ??= Promise.all([
      this.queue.close().catch(() => undefined),
      closeRedis(this.redis),
    ]).then(() => undefined);
    return this.closing;
  }

  private connect(): Promise<void> {
    this.connected ??= this.redis.connect().catch((err: unknown) => {
      this.connected = undefined;
      throw err;
    });
    return this.connected;
  }

  private async get(id: string): Promise<Job<JobData, JobResult>> {
    if (!/^[A-Za-z0-9_:-]{1,100}$/.test(id)) {
      throw new QilinError(ErrorCodes.JOB_NOT_FOUND, `no job ${JSON.stringify(id.slice(0, 100))}`, {
        details: { id: id.slice(0, 100) },
      });
    }
    const job = await this.call('show', () => this.queue.getJob(id));
    if (job === undefined) {
      throw new QilinError(ErrorCodes.JOB_NOT_FOUND, `no job ${id} in the queue`, {
        details: { id },
      });
    }
    return job;
  }

  private async view(job: Job<JobData, JobResult>, raw: string): Promise<JobView> {
    const id = job.id ?? '';
    let state = raw as JobState;
    const error = parseFailure(job.failedReason);
    if (state === 'failed' && error?.code === ErrorCodes.JOB_CANCELLED) state = 'cancelled';
    if (state !== 'completed' && state !== 'failed' && state !== 'cancelled') {
      const asked = await this.call('show', async () => {
        await this.connect();
        return this.redis.sismember(cancelSetKey(this.prefix), id);
      });
      // Asked to stop, not stopped yet: shown as such, so a caller does not wait on it.
      if (asked === 1 && state !== 'active') state = 'cancelled';
    }
    return jobView(job, state, error);
  }

  private async call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof QilinError) throw err;
      throw new QilinError(
        ErrorCodes.JOB_QUEUE_UNAVAILABLE,
        `job queue ${op} failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
}

/** A JobView of a BullMQ job in a known state (also used by the worker for its events). */
export function jobView(
  job: Job<JobData, JobResult>,
  state: JobState,
  error = parseFailure(job.failedReason),
): JobView {
  return {
    id: job.id ?? '',
    type: job.name,
    state,
    progress: progressOf(job.progress),
    priority: job.priority,
    params: job.data.params,
    attempts: {
      started: job.attemptsStarted,
      made: job.attemptsMade,
      max: job.opts.attempts ?? 1,
      stalled: job.stalledCounter,
    },
    summary: job.returnvalue?.summary ?? null,
    error,
    timestamps: {
      created: job.timestamp,
      started: job.processedOn ?? null,
      finished: job.finishedOn ?? null,
    },
  };
}

/** A job's progress as stored; `{0, 0, ''}` before the first step. */
export function progressOf(p: unknown): JobProgress {
  if (typeof p === 'object' && p !== null) {
    const o = p as Partial<JobProgress>;
    return {
      done: typeof o.done === 'number' ? o.done : 0,
      total: typeof o.total === 'number' ? o.total : 0,
      message: typeof o.message === 'string' ? o.message : '',
    };
  }
  return { done: 0, total: 0, message: '' };
}

/** Failures are stored as `QLN_CODE: message` (jobs/job-worker.ts). */
export function parseFailure(reason: string | undefined): { code: string; message: string } | null {
  if (reason === undefined || reason === '') return null;
  const m = /^(QLN_[A-Z_]+): ([\s\S]*)$/.exec(reason);
  return m === null
    ? { code: ErrorCodes.INTERNAL, message: reason }
    : { code: m[1]!, message: m[2]! };
}

/** The stored failure text of an error (kept by BullMQ as the job's failedReason). */
export function failureText(err: unknown): string {
  const code = hasCode(err, ErrorCodes.JOB_CANCELLED)
    ? ErrorCodes.JOB_CANCELLED
    : ((err as { code?: unknown }).code ?? ErrorCodes.INTERNAL);
  return `${typeof code === 'string' && code.startsWith('QLN_') ? code : ErrorCodes.INTERNAL}: ${(err as Error).message}`;
}

function option(name: string, v: number | undefined, dflt: number, min: number, max: number) {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new QilinError(
      ErrorCodes.JOB_INVALID,
      `invalid job option ${name}: ${JSON.stringify(v)} (allowed: an integer from ${min} to ${max})`,
      { details: { option: name, value: v, min, max } },
    );
  }
  return v;
}
