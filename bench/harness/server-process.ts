import { fileURLToPath } from 'node:url';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';
import type { ChildProcesses, TrackedChild } from './child-processes.js';
import { childEnv } from './kernel-process.js';

/**
 * A baseline server in its own process: the trivial uWS relay
 * (relay-server.ts), the hop relay (hop-server.ts: the relay with the
 * kernel's worker → main thread hop) or the `ws`-library fan-out server
 * (ws-fanout-server.ts). Forked with a clean environment and no execArgv,
 * ready once it sent `{type:'ready', port}`.
 */
export type BaselineServerKind = 'relay' | 'hop' | 'ws';

const ENTRY: Readonly<Record<BaselineServerKind, string>> = {
  relay: fileURLToPath(new URL('./relay-server.js', import.meta.url)),
  hop: fileURLToPath(new URL('./hop-server.js', import.meta.url)),
  ws: fileURLToPath(new URL('./ws-fanout-server.js', import.meta.url)),
};

const NAME: Readonly<Record<BaselineServerKind, string>> = {
  relay: 'relay',
  hop: 'hop-relay',
  ws: 'ws-server',
};

/** A running baseline server. */
export interface BaselineServer {
  kind: BaselineServerKind;
  child: TrackedChild;
  port: number;
}

/**
 * Fork a baseline server on `natsUrl` and wait for its port. `extraArgs`
 * follow the common ones (hop: workers, partitions, ring bytes).
 */
export async function startBaselineServer(
  children: ChildProcesses,
  kind: BaselineServerKind,
  natsUrl: string,
  deadlineMs: number,
  extraArgs: readonly string[] = [],
): Promise<BaselineServer> {
  const child = children.fork(
    NAME[kind],
    ENTRY[kind],
    [natsUrl, '0', String(deadlineMs), ...extraArgs],
    { env: childEnv({}), execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    deadlineMs + 5000,
  );
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new QilinError(ErrorCodes.BENCH_TIMEOUT, `${NAME[kind]} not ready within 20 s`)),
      20_000,
    );
    child.child.on('message', (m: { type?: string; port?: number; message?: string }) => {
      if (m.type === 'ready' && typeof m.port === 'number') {
        clearTimeout(timer);
        resolve(m.port);
      } else if (m.type === 'failed') {
        clearTimeout(timer);
        reject(new QilinError(ErrorCodes.SERVICE_START_FAILED, `${NAME[kind]}: ${m.message}`));
      }
    });
    void child.exited.then((e) => {
      clearTimeout(timer);
      reject(
        new QilinError(
          ErrorCodes.SERVICE_START_FAILED,
          `${NAME[kind]} exited (code ${e.code}, signal ${e.signal}) before it was ready`,
        ),
      );
    });
  });
  return { kind, child, port };
}
