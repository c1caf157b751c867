import type { NatsConnection } from '@nats-io/transport-node';
import type { QilinConfig } from '../config/config.js';
import type { Logger } from '../kernel/logger.js';
import { jobsPrefixOf } from './job-queue.js';
import type { JobEvent } from './job-types.js';
import { JobWorker, settledWithin } from './job-worker.js';

/** NATS subject of a job's events. */
export function jobSubject(id: string): string {
  return `job.${id}`;
}

export interface KernelJobsOptions {
  config: QilinConfig;
  log: Logger;
  nc: NatsConnection;
  /** Also send each event elsewhere (the WebSocket `job/<id>` topic), when wired. */
  onEvent?: (ev: JobEvent) => void;
}

/**
 * The job worker of `qilin start` (config jobsEnabled): runs the queue's jobs
 * on worker threads, `jobsConcurrency` at once, and publishes every progress
 * step and state change as JSON on NATS `job.<id>` (docs/protocol.md "Jobs").
 * Wiring only: the behaviour is in jobs/job-worker.ts.
 */
export class KernelJobs {
  private readonly worker: JobWorker;
  private readonly encoder = new TextEncoder();
  private starting: Promise<void> | undefined;

  constructor(private readonly o: KernelJobsOptions) {
    const { config, log } = o;
    this.worker = new JobWorker({
      redisUrl: config.redisUrl,
      prefix: jobsPrefixOf(config),
      concurrency: config.jobsConcurrency,
      lockMs: config.jobsLockMs,
      log,
      onEvent: (ev) => this.publish(ev),
    });
  }

  /**
   * Start taking jobs. The kernel does not wait for it: with Redis away the
   * kernel trades, and the worker takes jobs once Redis answers.
   */
  start(): void {
    this.starting ??= this.worker.start().catch((err: unknown) => {
      this.o.log.error({ err }, 'job worker did not start: this kernel runs no jobs');
    });
  }

  /** Running jobs go back to the queue (they run again on the next kernel). Safe twice. */
  async close(): Promise<void> {
    // A start still waiting for Redis must not hold the kernel's shutdown: close ends it.
    if (this.starting !== undefined) await settledWithin(this.starting, 5000);
    await this.worker.close();
  }

  private publish(ev: JobEvent): void {
    if (!this.o.nc.isClosed()) {
      this.o.nc.publish(jobSubject(ev.id), this.encoder.encode(JSON.stringify(ev)));
    }
    this.o.onEvent?.(ev);
  }
}
