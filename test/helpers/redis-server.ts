import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './test-kernel.js';
import { until } from './wait.js';

/** A redis-server of a test's own (the Debian binary, no persistence). */
export interface PrivateRedis {
  url: string;
  port: number;
  /** Stop it (SIGKILL when `crash`, else SIGTERM); resolves when it exited. */
  stop(crash?: boolean): Promise<void>;
  /** Start it again on the same port (after stop); resolves once it answers PING. */
  restart(): Promise<void>;
}

/**
 * Start a private redis-server on a free port; resolves once it answers.
 * For tests that stop Redis without touching the shared one.
 */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    const c = spawn(
      '/usr/bin/redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    child = c;
    await until(
      `redis-server on ${port}`,
      async () => {
        if (c.exitCode !== null) throw new Error(`redis-server exited with ${c.exitCode}`);
        const r = new Redis(url, {
          lazyConnect: true,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
        });
        r.on('error', () => undefined);
        try {
          await r.connect();
          return (await r.ping()) === 'PONG';
        } catch {
          return false;
        } finally {
          r.disconnect();
        }
      },
      15_000,
      50,
    );
  };
  const stop = async (crash = false): Promise<void> => {
    const c = child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(crash ? 'SIGKILL' : 'SIGTERM');
    await exited;
  };
  await launch();
  process.once('exit', () => child?.kill('SIGKILL'));
  return { url, port, stop, restart: launch };
}
