import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';
import { writeNatsConfig } from '../../ops/services/nats-config.js';
import type { ChildProcesses, TrackedChild } from './child-processes.js';
import { freePort } from './free-port.js';

/**
 * The bench's own nats-server: free ports on loopback, a temp JetStream store,
 * and the same generated config as `qilin services up` (ops/services/nats-config.ts),
 * so `md.<venue>.<sym>` is delivered as `md.<venue>.<sym>.<p>` with the
 * kernel's partition count. Private, so other users' traffic on a shared dev
 * server neither loads nor pollutes the measurement.
 */
export interface PrivateNats {
  url: string;
  /** HTTP monitoring base URL (/healthz, /varz). */
  monitorUrl: string;
  partitions: number;
  child: TrackedChild;
}

/** Debian installs it here; anything else is looked up on the PATH. */
const NATS_SERVER = existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';

function logTail(file: string, lines = 10): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Start a private nats-server in `dir` with `partitions` market partitions. */
export async function startPrivateNats(
  children: ChildProcesses,
  dir: string,
  partitions: number,
  deadlineMs: number,
): Promise<PrivateNats> {
  const port = await freePort();
  const monitorPort = await freePort();
  const logFile = join(dir, 'nats.log');
  const { path } = await writeNatsConfig({
    confDir: dir,
    storeDir: join(dir, 'jetstream'),
    port,
    monitorPort,
    partitions,
    logFile,
  });
  const child = children.spawn(
    'nats-server',
    NATS_SERVER,
    ['-c', path],
    { stdio: ['ignore', 'ignore', 'pipe'] },
    deadlineMs,
  );
  let stderr = '';
  child.child.stderr?.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  const monitorUrl = `http://127.0.0.1:${monitorPort}`;
  const until = Date.now() + 15_000;
  for (;;) {
    if (child.exit !== undefined) {
      throw new QilinError(
        ErrorCodes.SERVICE_START_FAILED,
        `nats-server exited (code ${child.exit.code}) before answering: ${stderr.trim() || logTail(logFile)}`,
      );
    }
    try {
      const res = await fetch(`${monitorUrl}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) {
      throw new QilinError(
        ErrorCodes.SERVICE_START_TIMEOUT,
        `nats-server on port ${port} not healthy within 15 s: ${logTail(logFile)}`,
      );
    }
    await delay(50);
  }
  return { url: `nats://127.0.0.1:${port}`, monitorUrl, partitions, child };
}

/** nats-server's total slow-consumer count (its /varz); NaN when it cannot be read. */
export async function natsSlowConsumers(monitorUrl: string): Promise<number> {
  try {
    const res = await fetch(`${monitorUrl}/varz`, { signal: AbortSignal.timeout(5000) });
    const v = (await res.json()) as { slow_consumers?: unknown };
    return typeof v.slow_consumers === 'number' ? v.slow_consumers : Number.NaN;
  } catch {
    return Number.NaN;
  }
}
