import { invalidArgument } from './errors.js';

/**
 * Stable symbol → shard routing.
 *
 * The shard is `jumpHash(fnv1a64(symbol), shards)` (Lamping & Veach, "A Fast,
 * Minimal Memory, Consistent Hash Algorithm"): the same symbol lands on the
 * same shard in every process and every run, keys spread evenly, and going from
 * n to n+1 shards moves only ~1/(n+1) of the symbols. The hash is computed
 * once per symbol when it is first routed and cached by symbol id, so the
 * 64-bit BigInt arithmetic never runs per tick.
 */
const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK64 = 0xffffffffffffffffn;
const JUMP_MUL = 2862933555777941757n;

/** FNV-1a 64-bit over the UTF-8 bytes of `s`. */
export function fnv1a64(s: string): bigint {
  let h = FNV_OFFSET;
  for (const byte of Buffer.from(s, 'utf8')) {
    h ^= BigInt(byte);
    h = (h * FNV_PRIME) & MASK64;
  }
  return h;
}

/** Jump consistent hash: bucket in [0, buckets) for a 64-bit key. */
export function jumpHash(key: bigint, buckets: number): number {
  let k = key & MASK64;
  let b = -1;
  let j = 0;
  while (j < buckets) {
    b = j;
    k = (k * JUMP_MUL + 1n) & MASK64;
    j = Math.floor(((b + 1) * 2 ** 31) / (Number(k >> 33n) + 1));
  }
  return b;
}

export class ShardRouter {
  private readonly cache: number[] = [];

  constructor(readonly shards: number) {
    if (!Number.isInteger(shards) || shards < 1 || shards > 1024)
      invalidArgument('shards', shards, 'an integer from 1 to 1024');
  }

  /** Shard of a symbol name. */
  shardOf(symbol: string): number {
    return jumpHash(fnv1a64(symbol), this.shards);
  }

  /** Shard of an interned symbol, cached by id (the hot-path entry point). */
  shardOfId(symId: number, symbol: string): number {
    const s = this.cache[symId];
    if (s !== undefined) return s;
    const shard = this.shardOf(symbol);
    this.cache[symId] = shard;
    return shard;
  }
}
