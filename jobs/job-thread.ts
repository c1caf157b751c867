import { Worker } from 'node:worker_threads';
import { ErrorCodes, QilinError, type ErrorCode } from '../kernel/errors.js';
import type { JobProgress, JobResult } from './job-types.js';

/**
 * One job run on a worker thread of its own, never on the caller's thread
 * (the kernel's main thread carries the live hot path).
 *
 * ```
 *  caller (kernel main thread)              job thread (job-thread-entry.ts)
 *  ───────────────────────────              ────────────────────────────────
 *  runJobThread() ── workerData ──────────► parse params, spec.run(params, ctx)
 *  cancel() / timeout ─► Atomics.store ──►  stop flag  ◄── read at each ctx.progress()
 *  onProgress ◄────────── postMessage ───── progress (≤ 1 per percent)
 *  resolve / reject ◄──── postMessage ───── done | error {code, message}
 *  terminate() after STOP_GRACE_MS if the run did not stop by itself
 * ```
 */

/** Values of the shared stop flag. */
export const STOP_NONE = 0;
export const STOP_CANCEL = 1;
export const STOP_TIMEOUT = 2;

/** After a stop request, the time a run gets to stop at its next step before its thread is terminated, ms. */
export const STOP_GRACE_MS = 5000;

export interface ThreadInput {
  id: string;
  type: string;
  params: Record<string, unknown>;
  timeoutMs: number;
  /** One Int32: STOP_NONE, STOP_CANCEL or STOP_TIMEOUT. */
  stop: SharedArrayBuffer;
}

export type ThreadMessage =
  | ({ kind: 'progress' } & JobProgress)
  | { kind: 'done'; result: JobResult }
  | { kind: 'error'; code: string; message: string };

export interface JobThreadOptions {
  id: string;
  type: string;
  params: Record<string, unknown>;
  timeoutMs: number;
  onProgress: (p: JobProgress) => void;
}

export interface JobThread {
  /** The result, or a QilinError (QLN_JOB_CANCELLED, QLN_JOB_TIMEOUT, the type's own code). */
  readonly result: Promise<JobResult>;
  /** Ask the run to stop (it throws QLN_JOB_CANCELLED at its next step). Safe twice. */
  cancel(): void;
  /** Stop the thread now (the kernel closes: the job goes back to the queue); rejects `result`. */
  terminate(): Promise<void>;
}

const ENTRY = new URL('./job-thread-entry.js', import.meta.url);

export function runJobThread(o: JobThreadOptions): JobThread {
  const stopBuf = new SharedArrayBuffer(4);
  const stop = new Int32Array(stopBuf);
  const input: ThreadInput = {
    id: o.id,
    type: o.type,
    params: o.params,
    timeoutMs: o.timeoutMs,
    stop: stopBuf,
  };
  const worker = new Worker(ENTRY, { workerData: input, name: `qilin-job-${o.id}` });
  let grace: NodeJS.Timeout | undefined;
  const requestStop = (why: number): void => {
    if (Atomics.compareExchange(stop, 0, STOP_NONE, why) !== STOP_NONE) return;
    grace = setTimeout(() => void worker.terminate(), STOP_GRACE_MS);
    grace.unref();
  };
  const timer = setTimeout(() => requestStop(STOP_TIMEOUT), o.timeoutMs);
  timer.unref();
  const result = new Promise<JobResult>((resolve, reject) => {
    let settled = false;
    const settle = (err: QilinError | undefined, r?: JobResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      if (err !== undefined) reject(err);
      else resolve(r!);
    };
    worker.on('message', (m: ThreadMessage) => {
      if (m.kind === 'progress') o.onProgress({ done: m.done, total: m.total, message: m.message });
      else if (m.kind === 'done') settle(undefined, m.result);
      else settle(new QilinError(m.code as ErrorCode, m.message));
    });
    worker.on('error', (err) =>
      settle(
        new QilinError(ErrorCodes.INTERNAL, `job ${o.id}: its thread threw: ${err.message}`, {
          cause: err,
        }),
      ),
    );
    worker.on('exit', (code) => {
      const s = Atomics.load(stop, 0);
      settle(
        s === STOP_CANCEL
          ? new QilinError(
              ErrorCodes.JOB_CANCELLED,
              `job ${o.id} cancelled (its thread was stopped)`,
            )
          : s === STOP_TIMEOUT
            ? new QilinError(
                ErrorCodes.JOB_TIMEOUT,
                `job ${o.id} ran past its timeout of ${o.timeoutMs} ms (its thread was stopped)`,
              )
            : new QilinError(ErrorCodes.INTERNAL, `job ${o.id}: its thread exited (code ${code})`),
      );
    });
  });
  return {
    result,
    cancel: () => requestStop(STOP_CANCEL),
    terminate: async () => {
      Atomics.compareExchange(stop, 0, STOP_NONE, STOP_CANCEL);
      await worker.terminate();
    },
  };
}
