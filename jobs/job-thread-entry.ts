/**
 * A job's worker thread (jobs/job-thread.ts starts one per run): parses the
 * params with the type's own `parse`, runs the type, posts progress and the
 * result or the error. The stop flag is a shared Int32 the parent sets; the
 * job sees it at its next progress step (a synchronous loop never yields to
 * messages, a shared flag it reads anyway).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ErrorCodes, QilinError } from '../kernel/errors.js';
import { jobType } from './job-registry.js';
import { STOP_CANCEL, STOP_TIMEOUT, type ThreadInput, type ThreadMessage } from './job-thread.js';
import type { JobContext } from './job-types.js';

const input = workerData as ThreadInput;
const stop = new Int32Array(input.stop);
const port = parentPort!;
const post = (m: ThreadMessage): void => port.postMessage(m);

const ctx: JobContext = {
  checkAborted() {
    const s = Atomics.load(stop, 0);
    if (s === STOP_CANCEL) {
      throw new QilinError(ErrorCodes.JOB_CANCELLED, `job ${input.id} cancelled`);
    }
    if (s === STOP_TIMEOUT) {
      throw new QilinError(
        ErrorCodes.JOB_TIMEOUT,
        `job ${input.id} ran past its timeout of ${input.timeoutMs} ms`,
      );
    }
  },
  progress(done, total, message = '') {
    ctx.checkAborted();
    // At most one message per whole percent (and every change of stage text).
    const pct = total > 0 ? Math.floor((100 * done) / total) : 0;
    if (pct === lastPct && message === lastMessage) return;
    lastPct = pct;
    lastMessage = message;
    post({ kind: 'progress', done, total, message });
  },
};
let lastPct = -1;
let lastMessage = '';

try {
  const spec = jobType(input.type);
  const result = await spec.run(spec.parse(input.params), ctx);
  post({ kind: 'done', result });
} catch (err) {
  const e = err as { code?: unknown; message?: unknown };
  post({
    kind: 'error',
    code: typeof e.code === 'string' ? e.code : ErrorCodes.INTERNAL,
    message: typeof e.message === 'string' ? e.message : String(err),
  });
}
