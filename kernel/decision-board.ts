import { invalidArgument } from './errors.js';

/**
 * What the executors were last told, per symbol, shared by the main thread
 * (which decides) with the shard workers (whose strategies propose).
 *
 * A strategy states a target side per symbol; its actor proposes a signal
 * when the target differs from the side last *approved* (published to
 * executors), not from the side it last *proposed*. So a rejected proposal
 * (risk limit, kill switch, breaker, low quality) changes nothing the
 * strategy believes, and the current view is proposed again once the
 * obstacle is gone. The main thread writes decisions here; workers read them
 * on their next tick: no message per decision, nothing allocated.
 *
 * ```
 *  one SharedArrayBuffer per shard, Int32 words (Atomics: written by main, read by the worker)
 *
 *  word 0        epoch: +1 when an obstacle to every proposal is gone (kill switch
 *                resumed, publish breaker closed) and on clear(): actors forget
 *                their retry backoff and propose their current view at once
 *  word 1..3     reserved
 *  word 4 + i    approved side of the shard's i-th symbol (local id = (symId − shard) / shards):
 *                0 nothing approved yet (executors know nothing: as flat),
 *                1 buy, −1 sell, 2 flat approved, 3 unknown (publish failed: propose again)
 * ```
 * Sides are Int32 so Atomics work on every word; 4 B per symbol.
 */
export const DecisionWord = { EPOCH: 0 } as const;
const HEADER_WORDS = 4;

/** Approved-side codes of a symbol word. */
export const ApprovedSide = { NONE: 0, BUY: 1, SELL: -1, FLAT: 2, UNKNOWN: 3 } as const;

/** Bytes of a shard's board for `maxSymbols` symbols. */
export function decisionBoardBytes(maxSymbols: number): number {
  return (HEADER_WORDS + maxSymbols) * 4;
}

/** The worker's read side of one shard's board. */
export class DecisionView {
  private readonly words: Int32Array;
  private readonly capacity: number;

  constructor(sab: SharedArrayBuffer) {
    if (sab.byteLength < (HEADER_WORDS + 1) * 4 || sab.byteLength % 4 !== 0) {
      invalidArgument('decisions', sab.byteLength, 'a SharedArrayBuffer from decisionBoardBytes()');
    }
    this.words = new Int32Array(sab);
    this.capacity = this.words.length - HEADER_WORDS;
  }

  get epoch(): number {
    return Atomics.load(this.words, DecisionWord.EPOCH);
  }

  /**
   * The approved side of local symbol `local` as a signal side (1 buy, −1
   * sell, 0 flat or nothing yet), or NaN when unknown (propose again).
   */
  approved(local: number): number {
    if (local >= this.capacity) return 0;
    const v = Atomics.load(this.words, HEADER_WORDS + local);
    return v === ApprovedSide.FLAT ? 0 : v === ApprovedSide.UNKNOWN ? NaN : v;
  }
}

/**
 * The main thread's side: one board per shard. `approve` on each published
 * signal, `unknown` when its publication failed, `resync` when the kill
 * switch is resumed or the breaker closes, `clear` when a shard's worker restarts (its
 * symbols are numbered afresh).
 */
export class DecisionBoard {
  readonly buffers: readonly SharedArrayBuffer[];
  private readonly words: Int32Array[];
  private readonly shards: number;
  /** Approved-side code by symbol name: what re-seeds a restarted worker's renumbered symbols. */
  private readonly byName = new Map<string, number>();
  private readonly names: Array<string | undefined> = [];

  constructor(shards: number, maxSymbolsPerShard: number) {
    if (!Number.isInteger(shards) || shards < 1)
      invalidArgument('shards', shards, 'an integer ≥ 1');
    if (!Number.isInteger(maxSymbolsPerShard) || maxSymbolsPerShard < 1) {
      invalidArgument('maxSymbolsPerShard', maxSymbolsPerShard, 'an integer ≥ 1');
    }
    this.shards = shards;
    // Pages of a SharedArrayBuffer are committed on first write: a board
    // sized for a million symbols costs what the symbols in use touch.
    this.buffers = Array.from(
      { length: shards },
      () => new SharedArrayBuffer(decisionBoardBytes(maxSymbolsPerShard)),
    );
    this.words = this.buffers.map((b) => new Int32Array(b));
  }

  /** Signal `side` (1, −1, 0) of symbol `symId` was approved and handed to executors. */
  approve(symId: number, side: number): void {
    this.put(
      symId,
      side === 1 ? ApprovedSide.BUY : side === -1 ? ApprovedSide.SELL : ApprovedSide.FLAT,
    );
  }

  /** What executors know of `symId` is unknown (a publish failed): the actor proposes again. */
  unknown(symId: number): void {
    this.put(symId, ApprovedSide.UNKNOWN);
  }

  /**
   * Symbol `symId` is `name` (its worker announced it). After a worker
   * restart the same name gets a new id: its slot is seeded with the side
   * approved under the old one, so executors are not left holding a
   * position the strategy no longer wants (a flat view is re-sent). The
   * actor of a new id is still warming up when the announce is read.
   */
  announce(symId: number, name: string): void {
    this.names[symId] = name;
    // Always written: an id reused for another name must not keep the old side.
    this.write(symId, this.byName.get(name) ?? ApprovedSide.NONE);
  }

  /** Every actor proposes its current view again on its next tick (epoch + 1). */
  resync(): void {
    for (const w of this.words) Atomics.add(w, DecisionWord.EPOCH, 1);
  }

  /**
   * Forget shard `shard`'s slots (its worker restarted and renumbers its
   * symbols; `announce` re-seeds them by name).
   */
  clear(shard: number): void {
    const w = this.words[shard];
    if (w === undefined) return;
    w.fill(0, HEADER_WORDS);
    for (let id = shard; id < this.names.length; id += this.shards) this.names[id] = undefined;
    Atomics.add(w, DecisionWord.EPOCH, 1);
  }

  /** Approved-side code of `symId` (ApprovedSide), for tests and status. */
  code(symId: number): number {
    const shard = symId % this.shards;
    const local = ((symId - shard) / this.shards) | 0;
    const w = this.words[shard]!;
    return local < w.length - HEADER_WORDS ? Atomics.load(w, HEADER_WORDS + local) : 0;
  }

  private put(symId: number, code: number): void {
    const name = this.names[symId];
    if (name !== undefined) this.byName.set(name, code);
    this.write(symId, code);
  }

  private write(symId: number, code: number): void {
    const shard = symId % this.shards;
    const local = ((symId - shard) / this.shards) | 0;
    const w = this.words[shard];
    if (w === undefined || local >= w.length - HEADER_WORDS) return;
    Atomics.store(w, HEADER_WORDS + local, code);
  }
}
