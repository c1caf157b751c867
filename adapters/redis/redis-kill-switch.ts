import type { Redis } from 'ioredis';
import { closeRedis, failFastRedis } from './redis-client.js';
import type { KillSwitchState, KillSwitchStore } from '../../actors/kill-switch.js';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';

/** Redis hash of an account's kill switch: `qilin:risk:kill:<account>`. */
export const KILL_KEY_PREFIX = 'qilin:risk:kill:';

/** Options of {@link RedisKillSwitch}. */
export interface RedisKillSwitchOptions {
  /** `redis://host:port` (config `redisUrl`). */
  url: string;
}

/**
 * The kill switch kept in Redis (a hash per account: killed, by, reason,
 * at), so a restarted kernel comes back killed if it was. Commands fail fast
 * while Redis is away (no offline queue): the caller logs, `unavailable()`
 * says why, and ioredis reconnects by itself.
 */
export class RedisKillSwitch implements KillSwitchStore {
  private readonly redis: Redis;
  private closing: Promise<void> | undefined;

  constructor(opts: RedisKillSwitchOptions) {
    this.redis = failFastRedis(opts.url);
  }

  /** Connect; rejects with QLN_BUS_UNAVAILABLE naming the URL when Redis does not answer. */
  async connect(): Promise<void> {
    try {
      await this.redis.connect();
    } catch (cause) {
      throw new QilinError(
        ErrorCodes.BUS_UNAVAILABLE,
        `cannot connect to Redis at ${this.redis.options.host}:${this.redis.options.port}: ${(cause as Error).message}`,
        { cause },
      );
    }
  }

  async load(account: string): Promise<KillSwitchState | undefined> {
    const h = await this.redis.hgetall(KILL_KEY_PREFIX + account);
    if (h['killed'] === undefined) return undefined;
    return {
      killed: h['killed'] === '1',
      by: h['by'] ?? 'unknown',
      reason: h['reason'] ?? '',
      at: Number(h['at'] ?? 0),
    };
  }

  async save(account: string, s: KillSwitchState): Promise<void> {
    await this.redis.hset(KILL_KEY_PREFIX + account, {
      killed: s.killed ? '1' : '0',
      by: s.by,
      reason: s.reason,
      at: String(s.at),
    });
  }

  unavailable(): string | undefined {
    return this.redis.status === 'ready' ? undefined : `Redis is ${this.redis.status}`;
  }

  close(): Promise<void> {
    this.closing ??= closeRedis(this.redis);
    return this.closing;
  }
}
