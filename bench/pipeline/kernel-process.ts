/**
 * Bench-only kernel entry: the same KernelApp as `qilin start`, in its own
 * process, configured from the QILIN_* environment by loadConfig(), with the
 * actor options and risk limits the pipeline bench needs so that every trade
 * yields exactly one published signal (and therefore one measurable latency):
 *
 * - actors: `emitEveryTick: true, warmup: 0, minQuality: 0` (no throttling,
 *   no warm-up, no quality gate: a STALE flag under overload must not turn
 *   into a missing signal that reads like a loss);
 * - risk: `maxSignalsPerSec` 5000 per symbol (far above 400k/s over 1,000 symbols; its rate window keeps one f64 per allowed signal per symbol, so the 100,000 ceiling would cost 800 MB), position
 *   and notional limits out of reach, `minQuality: 0`.
 *
 * ```
 *  pipeline-bench (parent) ──fork + IPC──► kernel-process (this file)
 *     {type:'clock', t0}    ──────────►     replies {type:'clock', t0, tk: nowUs()}
 *     {type:'stop'}         ──────────►     app.close(), exit 0
 *                           ◄──────────     {type:'ready', port} once started
 *                           ◄──────────     {type:'failed', code, message} if start fails
 * ```
 * Strategy name from QILIN_BENCH_STRATEGY (default `bench`). Not a public
 * entry point: run it through bench/pipeline/pipeline-bench.ts.
 */
import { KernelApp } from '../../cli/kernel-app.js';
import { loadConfig } from '../../config/config.js';
import { nowUs } from '../../kernel/clock.js';
import { createLogger } from '../../kernel/logger.js';

/** Messages from the bench to the kernel process. */
export type ToKernel = { type: 'clock'; t0: number } | { type: 'stop' };
/** Messages from the kernel process to the bench. */
export type FromKernel =
  | { type: 'ready'; port: number; workers: number; store: string }
  | { type: 'clock'; t0: number; tk: number }
  | { type: 'failed'; code: string; message: string };

function send(msg: FromKernel): void {
  process.send?.(msg);
}

async function main(): Promise<void> {
  const config = loadConfig({
    overrides: {
      actor: { emitEveryTick: true, warmup: 0, minQuality: 0 },
      risk: { maxSignalsPerSec: 5000, maxPosition: 1e15, maxNotional: 1e300, minQuality: 0 },
    },
  });
  const log = createLogger('qilin-bench-kernel', config.logLevel);
  const app = new KernelApp({
    config,
    log,
    strategy: process.env['QILIN_BENCH_STRATEGY'] ?? 'bench',
    account: 'bench',
    statusIntervalMs: 1000,
  });
  let stopping: Promise<void> | undefined;
  const stop = (): void => {
    stopping ??= app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'kernel close failed');
        process.exit(1);
      },
    );
  };
  process.on('message', (msg: ToKernel) => {
    if (msg.type === 'clock') send({ type: 'clock', t0: msg.t0, tk: nowUs() });
    else if (msg.type === 'stop') stop();
  });
  // The parent died or closed the channel: do not linger holding ports.
  process.on('disconnect', stop);
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await app.start();
  send({
    type: 'ready',
    port: app.port,
    workers: config.workers,
    store: config.clickhouseUrl === undefined ? 'chdb' : `clickhouse ${config.clickhouseDb}`,
  });
}

main().catch((err: unknown) => {
  const e = err as { code?: unknown; message?: unknown };
  send({
    type: 'failed',
    code: typeof e?.code === 'string' ? e.code : 'QLN_INTERNAL',
    message: String(e?.message ?? err),
  });
  process.stderr.write(`kernel-process failed: ${String(e?.message ?? err)}\n`);
  process.exit(1);
});
