import { Worker } from 'node:worker_threads';
import { ErrorCodes, QilinError, type ErrorCode } from './errors.js';
import type { Logger } from './logger.js';

/**
 * One worker thread's lifecycle, written once for every kind of worker
 * (shard workers, the store worker).
 *
 * ```
 *  start() ──spawn──► worker ──{type:'ready'}──────────► start() resolves
 *                        ├──{type:'fatal',code,message}─► start() rejects with that code; exit
 *                        ├── exit before ready ─────────► start() rejects QLN_WORKER_DIED
 *                        ├── other messages ────────────► onMessage
 *                        └── any exit not asked for ─────► onExit(code, lastError, wasReady)
 *  close()    ──stop message──► worker drains, exits ──► closed   (terminated after closeTimeoutMs)
 *  destroy()  ──terminate────────────────────────────────► closed
 * ```
 * `close()` and `destroy()` are safe to call twice and in any order; both
 * resolve when the thread has exited, as does `closed`.
 */
export interface WorkerThreadOptions<In> {
  url: URL;
  name: string;
  workerData: unknown;
  log: Logger;
  /** Posted by close() to ask for a graceful stop. */
  stopMessage: In;
  /** How long close() waits for a graceful exit before terminating. Default 10 000. */
  closeTimeoutMs?: number;
}

/** The messages every worker kind understands besides its own. */
export type LifecycleMessage =
  { type: 'ready' } | { type: 'fatal'; code: string; message: string } | { type: 'stopped' };

export class WorkerThread<In, Out extends { type: string }> {
  /** Messages other than the lifecycle ones. */
  onMessage: (msg: Out) => void = () => undefined;
  /**
   * The thread exited without close() or destroy() (crash, process.exit,
   * terminate), before or after it was ready (before: start() rejects too).
   */
  onExit: (code: number, lastError: unknown, wasReady: boolean) => void = () => undefined;
  private readonly o: WorkerThreadOptions<In>;
  private worker: Worker | undefined;
  private stopping = false;
  private started: Promise<void> | undefined;
  private exited: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;

  constructor(opts: WorkerThreadOptions<In>) {
    this.o = opts;
  }

  /** True from spawn until the thread exited. */
  get alive(): boolean {
    return this.worker !== undefined;
  }

  /** Resolves once the thread has exited (immediately when it never ran). */
  get closed(): Promise<void> {
    return this.exited;
  }

  /** Spawn; resolves on the worker's `ready`, rejects on `fatal` or an early exit. */
  start(): Promise<void> {
    this.started ??= this.spawn();
    return this.started;
  }

  post(msg: In): void {
    this.worker?.postMessage(msg);
  }

  /** Graceful stop: the stop message, then wait for the exit (terminate past the deadline). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopping = true;
      const w = this.worker;
      if (w === undefined) return;
      w.postMessage(this.o.stopMessage);
      const timeout = this.o.closeTimeoutMs ?? 10_000;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeout);
      });
      await Promise.race([this.exited, late]);
      clearTimeout(timer);
      if (this.worker !== undefined) {
        this.o.log.warn(
          { worker: this.o.name, timeoutMs: timeout },
          'worker did not stop; terminating',
        );
        await this.worker.terminate();
      }
      await this.exited;
    })();
    return this.closing;
  }

  /** Terminate as a crash would: `onExit` runs, as for any unexpected exit (tests, drills). */
  async terminateAsCrash(): Promise<void> {
    await this.worker?.terminate();
    await this.exited;
  }

  /** Immediate stop: terminate the thread, drop what it holds. */
  async destroy(): Promise<void> {
    this.stopping = true;
    await this.worker?.terminate();
    await this.exited;
  }

  private spawn(): Promise<void> {
    const worker = new Worker(this.o.url, { workerData: this.o.workerData, name: this.o.name });
    this.worker = worker;
    let lastError: unknown;
    let ready = false;
    this.exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    return new Promise<void>((resolve, reject) => {
      worker.on('error', (err) => {
        lastError = err;
        this.o.log.error({ err, worker: this.o.name }, 'worker thread failed');
      });
      worker.on('message', (msg: Out | LifecycleMessage) => {
        if (msg.type === 'ready') {
          ready = true;
          resolve();
        } else if (msg.type === 'fatal') {
          const m = msg as Extract<LifecycleMessage, { type: 'fatal' }>;
          const err = new QilinError(m.code as ErrorCode, m.message);
          lastError = err;
          if (!ready) reject(err);
        } else if (msg.type !== 'stopped') this.onMessage(msg as Out);
      });
      worker.once('exit', (code) => {
        this.worker = undefined;
        if (!ready) {
          reject(
            lastError instanceof QilinError
              ? lastError
              : new QilinError(
                  ErrorCodes.WORKER_DIED,
                  `worker ${this.o.name} exited (code ${code}) before it was ready`,
                  { cause: lastError },
                ),
          );
        }
        if (!this.stopping) this.onExit(code, lastError, ready);
      });
    });
  }
}
