/**
 * Worker thread of a sweep (backtest/sweep.ts): runs the grid points it is
 * handed, one at a time, each a whole `runBacktest` on this thread, and
 * posts each result back. Stateless between points: a point's result
 * depends on its options alone, never on which worker ran it or what ran
 * there before, which is what makes a sweep's ranking independent of
 * `--workers`.
 *
 * ```
 *  main ──{run, index, options, executions}──► runBacktest ──{result, index, …}──► main
 *       ──{stop}──────────────────────────────► close the port, exit
 *  a point that throws ──{error, index, code, message}──► main (the sweep fails, naming the point)
 * ```
 */
import { parentPort } from 'node:worker_threads';
import { runBacktest } from './backtest-run.js';
import type { SweepFromWorker, SweepToWorker } from './sweep.js';

const port = parentPort;
if (port === null) throw new Error('backtest/sweep-worker.ts runs as a worker thread');

const post = (msg: SweepFromWorker | { type: 'ready' } | { type: 'stopped' }): void =>
  port.postMessage(msg);

port.on('message', (msg: SweepToWorker) => {
  if (msg.type === 'stop') {
    post({ type: 'stopped' });
    port.close();
    return;
  }
  try {
    const r = runBacktest(msg.options);
    post({
      type: 'result',
      index: msg.index,
      report: r.report,
      ticks: r.ticks,
      signals: r.signals,
      approved: r.approved,
      fills: r.fills,
      ms: r.ms,
      executions: msg.executions ? r.executions : undefined,
    });
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    post({
      type: 'error',
      index: msg.index,
      code: typeof e.code === 'string' ? e.code : 'QLN_INTERNAL',
      message: typeof e.message === 'string' ? e.message : String(err),
    });
  }
});
post({ type: 'ready' });
