import type { Redis } from 'ioredis';
import { closeRedis, failFastRedis } from './redis-client.js';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';
import type { Logger } from '../../kernel/logger.js';

/**
 * A kernel's claims on its market partitions (config kernelPartitions), kept
 * in Redis so two kernels against one NATS never take the same symbols by
 * accident: `SET <prefix><p> <owner JSON> NX PX <leaseMs>` per partition at
 * start; refreshed every leaseMs/3 with a compare-and-extend (only while the
 * value names this kernel); released with a compare-and-delete on close. A
 * claim of another kernel id fails the start (QLN_PARTITION_CLAIMED); one of
 * the same id (a restart after a crash, before the lease ran out) is taken over.
 */

/** Who holds a claim (the value of a claim key, JSON). */
export interface ClaimOwner {
  /** config kernelId (default `<hostname>:<httpPort>`). */
  id: string;
  host: string;
  pid: number;
  port: number;
  /** Kernel start, ms since the epoch. */
  since: number;
}

export interface PartitionClaimsOptions {
  url: string;
  /** Key prefix (config claimPrefix), e.g. `qilin:partition:`. */
  prefix: string;
  partitions: readonly number[];
  owner: ClaimOwner;
  leaseMs: number;
  log: Logger;
  /** A refresh found a claim of this kernel taken by another (called per refresh, with the lost partitions). */
  onLost?: (partitions: number[], other: ClaimOwner | undefined) => void;
  /**
   * Failover mode (config partitionTakeover): a partition of `partitions`
   * held by another kernel is skipped with a warning instead of failing the
   * start (it was adopted while this kernel was down).
   */
  bestEffort?: boolean;
}

/** Extend the lease only while the value is still ours (compare-and-extend). */
const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
/** Delete only while the value is still ours (compare-and-delete). */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

export class PartitionClaims {
  private readonly redis: Redis;
  private readonly value: string;
  private timer: NodeJS.Timeout | undefined;
  private held: number[] = [];
  private closing: Promise<void> | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(private readonly opts: PartitionClaimsOptions) {
    this.redis = failFastRedis(opts.url);
    this.value = JSON.stringify(opts.owner);
  }

  /** Redis key of partition `p`. */
  key(p: number): string {
    return `${this.opts.prefix}${p}`;
  }

  /**
   * Claim every partition, all or none: throws QLN_PARTITION_CLAIMED naming
   * the partitions and the other kernel (after releasing what it took), or
   * QLN_BUS_UNAVAILABLE when Redis does not answer.
   */
  async claim(): Promise<void> {
    const { partitions, owner, leaseMs } = this.opts;
    try {
      await this.redis.connect();
    } catch (cause) {
      throw new QilinError(
        ErrorCodes.BUS_UNAVAILABLE,
        `cannot connect to Redis at ${this.redis.options.host}:${this.redis.options.port} to claim the market partitions: ${(cause as Error).message}`,
        { cause },
      );
    }
    const taken = new Map<number, ClaimOwner | undefined>();
    for (const p of partitions) {
      const ok = await this.redis.set(this.key(p), this.value, 'PX', leaseMs, 'NX');
      if (ok === 'OK') {
        this.held.push(p);
        await this.markOwned(p);
        continue;
      }
      const current = await this.redis.get(this.key(p));
      const other = parseOwner(current);
      if (other?.id === owner.id) {
        // Our own id: a restart before the lease ran out. Take it over (only if unchanged).
        const over = await this.redis.eval(
          `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) else return redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[3]) end`,
          1,
          this.key(p),
          current ?? '',
          this.value,
          String(leaseMs),
        );
        if (over === 'OK') {
          this.opts.log.warn(
            { partition: p, previous: other },
            'partition claim of an earlier run of this kernel id taken over',
          );
          this.held.push(p);
          await this.markOwned(p);
          continue;
        }
      }
      taken.set(p, other);
    }
    if (taken.size > 0 && this.opts.bestEffort === true) {
      this.opts.log.warn(
        { partitions: [...taken.keys()], by: [...new Set([...taken.values()].map((o) => o?.id))] },
        'partitions of this kernel are held by other kernels (adopted while it was down): started without them',
      );
    } else if (taken.size > 0) {
      await this.release();
      throw claimedError(taken, owner);
    }
    this.timer = setInterval(
      () => {
        // One refresh at a time; close() waits for the one running.
        this.refreshing ??= this.refresh().finally(() => (this.refreshing = undefined));
      },
      Math.max(100, Math.floor(leaseMs / 3)),
    );
    this.timer.unref();
  }

  /**
   * Failover: claim those of `candidates` that no kernel holds (SET NX);
   * the ones won are refreshed like the others from now on. Resolves to
   * them. Redis away: none.
   */
  async adopt(candidates: readonly number[]): Promise<number[]> {
    const won: number[] = [];
    for (const p of candidates) {
      if (this.held.includes(p) || this.timer === undefined) continue;
      const ok = await this.redis
        .set(this.key(p), this.value, 'PX', this.opts.leaseMs, 'NX')
        .catch(() => null);
      if (ok === 'OK') {
        this.held.push(p);
        won.push(p);
        await this.markOwned(p);
      }
    }
    return won;
  }

  /**
   * Which of `candidates` are orphaned: owned by a kernel (`<prefix>owned:<p>`,
   * set when a kernel claims it, deleted when it releases it on a graceful
   * stop) whose claim has expired. Never-claimed partitions (a node not up
   * yet) and released ones (a rolling restart) are not orphans. Redis away: none.
   */
  async free(candidates: readonly number[]): Promise<number[]> {
    if (candidates.length === 0) return [];
    const values = await this.redis
      .mget(...candidates.flatMap((p) => [this.key(p), this.ownedKey(p)]))
      .catch(() => undefined);
    if (values === undefined) return [];
    return candidates.filter((_, i) => values[2 * i] === null && values[2 * i + 1] !== null);
  }

  /** Key that says partition `p` has an owner in the cluster (no lease). */
  ownedKey(p: number): string {
    return `${this.opts.prefix}owned:${p}`;
  }

  private async markOwned(p: number): Promise<void> {
    await this.redis.set(this.ownedKey(p), this.opts.owner.id).catch(() => undefined);
  }

  /** Partitions held now. */
  get partitions(): readonly number[] {
    return this.held;
  }

  /** Extend every lease; Redis away: logged, tried again next period; a claim taken by another: onLost. */
  async refresh(): Promise<void> {
    const lost: number[] = [];
    let other: ClaimOwner | undefined;
    for (const p of this.held) {
      let r: unknown;
      try {
        r = await this.redis.eval(EXTEND, 1, this.key(p), this.value, String(this.opts.leaseMs));
      } catch (err) {
        this.opts.log.warn(
          { err, partition: p },
          'partition claim not refreshed (Redis unavailable); tried again',
        );
        return;
      }
      if (r === 1) continue;
      lost.push(p);
      const current = await this.redis.get(this.key(p)).catch(() => null);
      other ??= parseOwner(current);
      if (current === null && this.timer !== undefined) {
        // Expired (e.g. Redis was away longer than the lease): claim it again if still free.
        const again = await this.redis
          .set(this.key(p), this.value, 'PX', this.opts.leaseMs, 'NX')
          .catch(() => null);
        if (again === 'OK') lost.pop();
      }
    }
    if (lost.length > 0) {
      this.opts.log.error(
        { partitions: lost, other },
        'partition claims of this kernel are held by another kernel: both process these symbols',
      );
      this.opts.onLost?.(lost, other);
    }
  }

  /** Stop refreshing and delete the claims that are still ours. Safe twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.release().catch((err: unknown) =>
        this.opts.log.warn({ err }, 'partition claims not released; they expire with the lease'),
      );
      await closeRedis(this.redis);
    })();
    return this.closing;
  }

  private async release(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    // A refresh under way could claim again what is being released: let it finish.
    await this.refreshing;
    const held = this.held;
    this.held = [];
    for (const p of held) {
      // Released on purpose: not an orphan for the others to adopt.
      if ((await this.redis.eval(RELEASE, 1, this.key(p), this.value)) === 1) {
        await this.redis.eval(RELEASE, 1, this.ownedKey(p), this.opts.owner.id);
      }
    }
  }
}

function parseOwner(v: string | null): ClaimOwner | undefined {
  if (v === null) return undefined;
  try {
    const o = JSON.parse(v) as Partial<ClaimOwner>;
    return typeof o.id === 'string' ? (o as ClaimOwner) : undefined;
  } catch {
    return undefined;
  }
}

function describe(o: ClaimOwner | undefined): string {
  if (o === undefined) return 'an unknown owner';
  return `kernel ${o.id} (host ${o.host}, pid ${o.pid}, port ${o.port}, since ${new Date(o.since).toISOString()})`;
}

function claimedError(taken: Map<number, ClaimOwner | undefined>, me: ClaimOwner): QilinError {
  const byOwner = new Map<string, { owner: ClaimOwner | undefined; partitions: number[] }>();
  for (const [p, o] of taken) {
    const k = o === undefined ? '?' : JSON.stringify(o);
    const e = byOwner.get(k) ?? { owner: o, partitions: [] };
    e.partitions.push(p);
    byOwner.set(k, e);
  }
  const parts = [...byOwner.values()].map(
    (e) => `partitions ${e.partitions.join(',')} are claimed by ${describe(e.owner)}`,
  );
  return new QilinError(
    ErrorCodes.PARTITION_CLAIMED,
    `kernel ${me.id} cannot start: ${parts.join('; ')}. Two kernels would process the same symbols; divide the partitions between the kernels with kernelPartitions (QILIN_KERNEL_PARTITIONS, e.g. 0-7 and 8-15), or stop the other kernel`,
    {
      details: {
        partitions: [...taken.keys()],
        owners: [...byOwner.values()].map((e) => ({ ...e.owner, partitions: e.partitions })),
      },
    },
  );
}
