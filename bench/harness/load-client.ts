import { fileURLToPath } from 'node:url';
import { ErrorCodes, QilinError, type ErrorCode } from '../../kernel/errors.js';
import type { IntervalSample, PublishFigures } from './bench-report.js';
import type { ChildProcesses } from './child-processes.js';
import { childEnv } from './kernel-process.js';
import type { FromLoad, LoadResult, LoadStepSpec, ToLoad } from './load-protocol.js';

/**
 * The bench's side of one load step: fork load-process.ts (clean
 * environment, no execArgv, `advanced` serialisation, a hard deadline), send
 * the spec, let the caller take its "before" readings when the process is
 * connected, start it, and collect its result. See load-protocol.ts.
 */

const ENTRY = fileURLToPath(new URL('./load-process.js', import.meta.url));

/** Callbacks of a step, in the order they happen. */
export interface LoadStepHooks {
  /** Connected and subscribed; resolve to start publishing. */
  ready(pid: number, stale: number): Promise<void>;
  /** The warm-up is over: the measured window starts. */
  measuring?(): void;
  progress?(sent: number, delivered: number): void;
  interval?(t: number, latency: IntervalSample['latency'], delivered: number): void;
  /** The last tick was published (the drain starts). */
  published?(publish: PublishFigures): void;
}

/** A step that delivered its result; the load process waits for `stop()`. */
export interface LoadStepRun {
  result: LoadResult;
  pid: number;
  /** Let the load process go (closes its connections); resolves once it exited. */
  stop(): Promise<void>;
}

/**
 * Run one load step to its result. Rejects when the load process fails or
 * dies first; after the result it stays until `stop()` (so its CPU and RSS
 * can still be read).
 */
export async function runLoadStep(
  children: ChildProcesses,
  spec: LoadStepSpec,
  hooks: LoadStepHooks,
): Promise<LoadStepRun> {
  const tracked = children.fork(
    'loadgen',
    ENTRY,
    [],
    {
      env: childEnv({}),
      execArgv: [],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
    spec.deadlineMs + 5000,
  );
  const child = tracked.child;
  const result = await new Promise<LoadResult>((resolve, reject) => {
    let done = false;
    const finish = (err: Error | null, result?: LoadResult): void => {
      if (done) return;
      done = true;
      if (err !== null) {
        if (tracked.exit === undefined) child.kill('SIGKILL');
        reject(err);
      } else {
        resolve(result!);
      }
    };
    child.on('message', (m: FromLoad) => {
      switch (m.type) {
        case 'ready':
          hooks.ready(tracked.pid, m.stale).then(
            () => {
              if (child.connected) child.send({ type: 'go' } satisfies ToLoad);
            },
            (err: unknown) => finish(err instanceof Error ? err : new Error(String(err))),
          );
          break;
        case 'measuring':
          hooks.measuring?.();
          break;
        case 'progress':
          hooks.progress?.(m.sent, m.delivered);
          break;
        case 'interval':
          hooks.interval?.(m.t, m.latency, m.delivered);
          break;
        case 'published':
          hooks.published?.(m.publish);
          break;
        case 'result':
          finish(null, m);
          break;
        case 'failed':
          finish(new QilinError(m.code as ErrorCode, `load process: ${m.message}`));
          break;
      }
    });
    void tracked.exited.then((e) => {
      finish(
        new QilinError(
          ErrorCodes.BENCH_INTEGRITY,
          `load process exited (code ${e.code}, signal ${e.signal}${e.deadline ? ', killed at its deadline' : ''}) before its result`,
        ),
      );
    });
    child.send({ type: 'step', spec } satisfies ToLoad);
  });
  return {
    result,
    pid: tracked.pid,
    stop: async () => {
      if (tracked.exit !== undefined) return;
      if (child.connected) child.send({ type: 'stop' } satisfies ToLoad);
      await children.stop(tracked, 5000, null);
    },
  };
}
