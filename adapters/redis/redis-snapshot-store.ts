/**
 * Unit snapshots in Redis (kernel/snapshot-store.ts): one string key per
 * unit, `<prefix><unit>`, replaced with SET (atomic). Every kernel sharing
 * the Redis sees one state, so a unit (a durable consumer) restarted on
 * another node restores from where the last one left it.
 *
 * Commands fail fast while Redis is away (no offline queue); the caller
 * falls back to local files and ioredis reconnects by itself.
 */
import type { Redis } from 'ioredis';
import { closeRedis, failFastRedis } from './redis-client.js';
import type { Logger } from '../../kernel/logger.js';
import type { SnapshotStore } from '../../kernel/snapshot-store.js';

/** Options of the worker-side snapshot store (structured-clone-able: they cross into the worker). */
export interface RedisSnapshotStoreOptions {
  /** `redis://host:port` (config `redisUrl`). */
  url: string;
  /** Key prefix (config `snapshotPrefix`), e.g. `qilin:snapshot:`. */
  prefix: string;
}

export class RedisSnapshotStore implements SnapshotStore {
  readonly where: string;
  private readonly redis: Redis;
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: RedisSnapshotStoreOptions) {
    this.redis = failFastRedis(opts.url, {
      lazyConnect: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
    });
    this.where = `${this.redis.options.host}:${this.redis.options.port} ${opts.prefix}*`;
  }

  /** Resolves once connected (or rejects after connectTimeout); commands before it fail fast. */
  async ready(): Promise<void> {
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const ok = (): void => {
        this.redis.off('end', bad);
        resolve();
      };
      const bad = (): void => {
        this.redis.off('ready', ok);
        reject(new Error(`Redis ${this.where} closed`));
      };
      this.redis.once('ready', ok);
      this.redis.once('end', bad);
      setTimeout(() => {
        this.redis.off('ready', ok);
        this.redis.off('end', bad);
        reject(new Error(`Redis ${this.where} not ready after 2 s (${this.redis.status})`));
      }, 2000).unref();
    });
  }

  async get(unit: string): Promise<Buffer | undefined> {
    if (this.redis.status !== 'ready') await this.ready();
    const b = await this.redis.getBuffer(this.opts.prefix + unit);
    return b ?? undefined;
  }

  async put(unit: string, bytes: Buffer): Promise<void> {
    await this.redis.set(this.opts.prefix + unit, bytes);
  }

  close(): Promise<void> {
    this.closing ??= closeRedis(this.redis);
    return this.closing;
  }
}

/** SnapshotStoreModule entry point (loaded by URL in each shard worker). */
export function createSnapshotStore(options: unknown, _log: Logger): SnapshotStore {
  return new RedisSnapshotStore(options as RedisSnapshotStoreOptions);
}
