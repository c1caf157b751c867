import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { closeRedis, failFastRedis } from '../adapters/redis/redis-client.js';
import { ErrorCodes, hasCode } from '../kernel/errors.js';
import type { Logger } from '../kernel/logger.js';
import {
  JOB_QUEUE_NAME,
  bullConnection,
  cancelSetKey,
  failureText,
  parseFailure,
  progressOf,
} from './job-queue.js';
import { runJobThread, type JobThread } from './job-thread.js';
import type { JobData, JobEvent, JobProgress, JobResult, JobState } from './job-types.js';

/** How often running jobs' cancel marks are read, ms. */
const CANCEL_POLL_MS = 250;
/** Times one job may be found stalled (its kernel died) and taken again before it fails. */
const MAX_STALLED = 2;

export interface JobWorkerOptions {
  redisUrl: string;
  /** BullMQ key prefix (jobs/job-queue.ts jobsPrefixOf). */
  prefix: string;
  /** Jobs run at once, each on its own worker thread. */
  concurrency: number;
  /** Lock of a running job, ms (config jobsLockMs): a dead kernel's job is taken again after it. */
  lockMs: number;
  log: Logger;
  /** Each progress step and state change (NATS `job.<id>`, WebSocket `job/<id>`). */
  onEvent?: (ev: JobEvent) => void;
}

interface Running {
  thread: JobThread;
  job: Job<JobData, JobResult>;
}

/**
 * Runs the queue's jobs in this process: a BullMQ Worker (Redis I/O only,
 * on the caller's thread) hands each job to its own worker thread
 * (jobs/job-thread.ts), at most `concurrency` at once.
 *
 * - cancel: the queue marks the id (jobs/job-queue.ts); marks of running jobs
 *   are read every 250 ms and stop the run at its next step; a marked job
 *   not yet started fails at once. Both end QLN_JOB_CANCELLED, not retried.
 * - timeout: the thread stops the run past `timeoutMs` (QLN_JOB_TIMEOUT),
 *   retried with backoff while attempts are left, as any other failure.
 * - kernel restart: `close()` stops the runs and puts their jobs back in
 *   the queue; a kernel that died leaves them locked for `lockMs`, then the
 *   stalled check (of this or another kernel) puts them back, and they run
 *   again from the start.
 */
/** How long `close` waits for BullMQ's own close before it drops the connections. */
const CLOSE_MS = 5000;

/** True when `p` settled (resolved or rejected) within `ms`. */
export async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export class JobWorker {
  private readonly o: JobWorkerOptions;
  private worker: Worker<JobData, JobResult> | undefined;
  private readonly redis: Redis;
  private readonly running = new Map<string, Running>();
  /** Every process() call not yet settled (close waits for them to hand their jobs back). */
  private readonly inFlight = new Set<Promise<JobResult>>();
  private poll: NodeJS.Timeout | undefined;
  private polling = false;
  private closingNow = false;
  private closing: Promise<void> | undefined;

  constructor(o: JobWorkerOptions) {
    this.o = o;
    this.redis = failFastRedis(o.redisUrl);
  }

  async start(): Promise<void> {
    if (this.worker !== undefined) return;
    // The cancel marks' connection: ioredis retries by itself while Redis is away.
    this.redis
      .connect()
      .catch((err: unknown) =>
        this.o.log.warn({ err }, 'job worker: Redis not reachable yet (cancel marks)'),
      );
    const worker = new Worker<JobData, JobResult>(
      JOB_QUEUE_NAME,
      (job, token) => this.process(job, token),
      {
        connection: bullConnection(this.o.redisUrl, true),
        prefix: this.o.prefix,
        concurrency: this.o.concurrency,
        lockDuration: this.o.lockMs,
        stalledInterval: this.o.lockMs,
        maxStalledCount: MAX_STALLED,
        autorun: false,
      },
    );
    this.worker = worker;
    worker.on('error', (err) => this.o.log.warn({ err }, 'job worker: queue error'));
    worker.on('completed', (job) => {
      this.emit(job, 'completed', 'completed', {
        ...(job.returnvalue?.summary === undefined ? {} : { summary: job.returnvalue.summary }),
      });
      void this.forget(job.id);
    });
    worker.on('failed', (job, err) => {
      if (job === undefined || err instanceof WaitingError) return;
      const error = parseFailure(job.failedReason) ?? {
        code: ErrorCodes.INTERNAL,
        message: err.message,
      };
      const cancelled = error.code === ErrorCodes.JOB_CANCELLED;
      const final =
        cancelled ||
        err instanceof UnrecoverableError ||
        job.attemptsMade >= (job.opts.attempts ?? 1);
      const event = cancelled ? 'cancelled' : final ? 'failed' : 'retrying';
      this.emit(job, event, cancelled ? 'cancelled' : final ? 'failed' : 'delayed', { error });
      if (final) void this.forget(job.id);
    });
    worker.on('stalled', (id) =>
      this.o.log.warn({ job: id }, 'job stalled (its kernel stopped): back in the queue'),
    );
    this.poll = setInterval(() => void this.pollCancels(), CANCEL_POLL_MS);
    this.poll.unref();
    void worker.run().catch((err: unknown) => this.o.log.error({ err }, 'job worker stopped'));
    await worker.waitUntilReady();
  }

  /**
   * Stop taking jobs, stop the running ones and put them back in the queue
   * (they run again, from the start, on the next kernel). Safe twice.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closingNow = true;
      clearInterval(this.poll);
      const worker = this.worker;
      // No new job from here (paused without waiting for the running ones)...
      if (worker !== undefined) await settledWithin(worker.pause(true), CLOSE_MS);
      // ...then the runs: their threads stop and each job goes back to the queue (runJob),
      // a job fetched meanwhile included.
      await Promise.all([...this.running.values()].map((r) => r.thread.terminate()));
      const deadline = Date.now() + CLOSE_MS;
      while (this.inFlight.size > 0 && Date.now() < deadline) {
        await settledWithin(Promise.allSettled([...this.inFlight]), deadline - Date.now());
      }
      if (this.inFlight.size > 0) {
        this.o.log.warn(
          { ms: CLOSE_MS, jobs: this.inFlight.size },
          'job worker: jobs not handed back in time (they stall, then run again)',
        );
      }
      // Forced: the runs are over, and BullMQ's graceful close also waits for its blocking
      // fetch, which after a Redis restart never answers (the kernel's shutdown hung there).
      if (worker !== undefined && !(await settledWithin(worker.close(true), CLOSE_MS))) {
        this.o.log.warn({ ms: CLOSE_MS }, 'job worker: close did not finish; connections dropped');
        void worker.disconnect().catch(() => undefined);
      }
      await closeRedis(this.redis);
    })();
    return this.closing;
  }

  private async process(job: Job<JobData, JobResult>, token?: string): Promise<JobResult> {
    const run = this.runJob(job, token);
    this.inFlight.add(run);
    try {
      return await run;
    } finally {
      this.inFlight.delete(run);
    }
  }

  private async runJob(job: Job<JobData, JobResult>, token?: string): Promise<JobResult> {
    const id = job.id ?? '';
    if ((await this.redis.sismember(cancelSetKey(this.o.prefix), id).catch(() => 0)) === 1) {
      throw new UnrecoverableError(
        `${ErrorCodes.JOB_CANCELLED}: job ${id} cancelled before it ran`,
      );
    }
    if (this.closingNow) return this.handBack(job, token);
    let progress: JobProgress = progressOf(undefined);
    this.emit(job, 'active', 'active', {}, progress);
    const thread = runJobThread({
      id,
      type: job.name,
      params: job.data.params,
      timeoutMs: job.data.timeoutMs,
      onProgress: (p) => {
        progress = p;
        job
          .updateProgress(p)
          .catch((err: unknown) => this.o.log.debug({ err, job: id }, 'job progress not stored'));
        this.emit(job, 'progress', 'active', {}, p);
      },
    });
    this.running.set(id, { thread, job });
    try {
      return await thread.result;
    } catch (err) {
      if (this.closingNow) return this.handBack(job, token);
      this.o.log.warn(
        { job: id, type: job.name, code: (err as { code?: unknown }).code },
        'job failed',
      );
      if (hasCode(err, ErrorCodes.JOB_CANCELLED)) throw new UnrecoverableError(failureText(err));
      throw new Error(failureText(err));
    } finally {
      this.running.delete(id);
    }
  }

  /** The kernel stops: the job back to the queue, this attempt not counted as a failure. */
  private async handBack(job: Job<JobData, JobResult>, token?: string): Promise<never> {
    await job.moveToWait(token);
    throw new WaitingError();
  }

  private async pollCancels(): Promise<void> {
    if (this.polling || this.running.size === 0) return;
    this.polling = true;
    try {
      const ids = [...this.running.keys()];
      const marks = await this.redis.smismember(cancelSetKey(this.o.prefix), ...ids);
      marks.forEach((m, i) => {
        if (m === 1) this.running.get(ids[i]!)?.thread.cancel();
      });
    } catch (err) {
      this.o.log.debug({ err }, 'job cancel marks not read (Redis away): retried');
    } finally {
      this.polling = false;
    }
  }

  /** A finished job's cancel mark is no longer needed. */
  private async forget(id: string | undefined): Promise<void> {
    if (id === undefined) return;
    await this.redis.srem(cancelSetKey(this.o.prefix), id).catch(() => undefined);
  }

  private emit(
    job: Job<JobData, JobResult>,
    event: JobEvent['event'],
    state: JobState,
    extra: Pick<JobEvent, 'summary' | 'error'>,
    progress: JobProgress = progressOf(job.progress),
  ): void {
    if (this.o.onEvent === undefined) return;
    try {
      this.o.onEvent({
        id: job.id ?? '',
        type: job.name,
        event,
        state,
        progress,
        attempt: job.attemptsStarted,
        ...extra,
        ts: Date.now(),
      });
    } catch (err) {
      this.o.log.warn({ err, job: job.id }, 'job event not delivered');
    }
  }
}
