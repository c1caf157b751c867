import { Redis } from 'ioredis';
import { startPrivateProcess, type PrivateProcess } from './private-process.js';
import { freePort } from './test-kernel.js';

/** A redis-server of a test's own (the Debian binary, no persistence). */
export interface PrivateRedis extends PrivateProcess {
  url: string;
  port: number;
}

/**
 * Start a private redis-server on a free port; resolves once it answers
 * PING. For tests that stop Redis without touching the shared one.
 */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const proc = await startPrivateProcess('/usr/bin/redis-server', args, async () => {
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
  });
  return { url, port, ...proc };
}
