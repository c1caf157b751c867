/**
 * The main thread's share of warm restart (docs/adr/0006-warm-restart.md),
 * in Redis: the risk actor's positions (a hash per account, symbol →
 * position) and the WebSocket last-value cache (a hash, topic → last
 * frame), so a restarted kernel answers subscribers with the last values
 * before the first new tick, and risk limits see the positions it had.
 *
 * Commands fail fast while Redis is away (no offline queue): the caller
 * keeps what changed and writes it on its next round; ioredis reconnects.
 */
import type { Redis } from 'ioredis';
import { closeRedis, failFastRedis } from './redis-client.js';

export interface RedisKernelStateOptions {
  url: string;
  /** Key prefix, e.g. `qilin:state:<db>:`. */
  prefix: string;
}

export class RedisKernelState {
  private readonly redis: Redis;
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: RedisKernelStateOptions) {
    this.redis = failFastRedis(opts.url, { maxRetriesPerRequest: 1 });
  }

  /** Connect (the kill switch's connect already proved Redis answers). */
  async connect(): Promise<void> {
    await this.redis.connect();
  }

  private positionsKey(account: string): string {
    return `${this.opts.prefix}positions:${account}`;
  }

  private lvcKey(): string {
    return `${this.opts.prefix}lvc`;
  }

  async loadPositions(account: string): Promise<Map<string, number>> {
    const h = await this.redis.hgetall(this.positionsKey(account));
    const out = new Map<string, number>();
    for (const [sym, v] of Object.entries(h)) {
      const n = Number(v);
      if (Number.isFinite(n)) out.set(sym, n);
    }
    return out;
  }

  /** Replace the stored positions of `account` with `positions` (atomic). */
  async savePositions(account: string, positions: ReadonlyMap<string, number>): Promise<void> {
    const key = this.positionsKey(account);
    const m = this.redis.multi().del(key);
    if (positions.size > 0) {
      m.hset(key, Object.fromEntries([...positions].map(([s, p]) => [s, String(p)])));
    }
    const res = await m.exec();
    const failed = res?.find(([err]) => err !== null);
    if (res === null || failed !== undefined) {
      throw failed?.[0] ?? new Error('positions not saved (transaction aborted)');
    }
  }

  /** Every cached last frame, topic → frame. */
  async loadLastValues(): Promise<Map<string, Buffer>> {
    const h = await this.redis.hgetallBuffer(this.lvcKey());
    return new Map(Object.entries(h));
  }

  /** Store the last frame of each topic in `frames`. */
  async saveLastValues(frames: ReadonlyMap<string, Buffer>): Promise<void> {
    if (frames.size === 0) return;
    await this.redis.hset(this.lvcKey(), frames);
  }

  close(): Promise<void> {
    this.closing ??= closeRedis(this.redis);
    return this.closing;
  }
}
