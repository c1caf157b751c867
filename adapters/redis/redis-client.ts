/**
 * The one way Qilin's Redis adapters open and close a connection: commands
 * fail fast while Redis is away (no offline queue, few retries), so callers
 * fall back or report instead of hanging; ioredis reconnects by itself, and
 * an 'error' listener keeps it from printing every reconnect attempt (the
 * failures surface through the commands).
 */
import { Redis } from 'ioredis';

export interface FailFastRedisOptions {
  /** Connect on `connect()` (true, the default) or at once. */
  lazyConnect?: boolean;
  /** Retries of one command before it rejects (default 2). */
  maxRetriesPerRequest?: number;
  connectTimeout?: number;
}

export function failFastRedis(url: string, o: FailFastRedisOptions = {}): Redis {
  const redis = new Redis(url, {
    lazyConnect: o.lazyConnect ?? true,
    maxRetriesPerRequest: o.maxRetriesPerRequest ?? 2,
    enableOfflineQueue: false,
    ...(o.connectTimeout === undefined ? {} : { connectTimeout: o.connectTimeout }),
  });
  redis.on('error', () => undefined);
  return redis;
}

/** QUIT, or drop the socket when Redis cannot answer it. */
export function closeRedis(redis: Redis): Promise<void> {
  return redis.quit().then(
    () => undefined,
    () => redis.disconnect(),
  );
}
