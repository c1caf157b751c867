/**
 * One replay shard: the symbols `symId % shards === shard` of each chunk run
 * through the kernel's own actors (the worker's actor module, as a live
 * shard worker runs them), their outputs written as the kernel's 512-byte
 * output records into a shared buffer, each tagged with the chunk index of
 * the tick that caused it. The main thread orders every shard's outputs by
 * that index (`OutputOrder`), so the result is the same whatever the number
 * of shards: actors are per symbol, and a symbol always sees its own ticks in
 * order.
 *
 * Deferred work (a model scores the trades of a drain in one batch at the end
 * of the drain, actors/model-batch.ts) completes by the end of the chunk
 * (`endOfDrain`), so a chunk's outputs are all known when the shard answers.
 */
import type { ActorFactory, MarketActor, OutputSink } from '../kernel/actor.js';
import { MarketKind, newMarketEvent } from '../kernel/market-record.js';
import { decodeOutput, encodeOutput, type OutputEvent } from '../kernel/output-record.js';
import { readTick, type TickChunk } from './tick-chunk.js';

/** f64 words of one output record (512 B). */
export const RECORD_WORDS = 64;

/** Shared output of one shard for one chunk slot; grows (a new buffer) when full. */
export interface SharedOutput {
  records: SharedArrayBuffer;
  /** Uint32 per record: the chunk index of the tick that caused it. */
  src: SharedArrayBuffer;
  capacity: number;
}

export function newSharedOutput(capacity: number): SharedOutput {
  return {
    records: new SharedArrayBuffer(capacity * RECORD_WORDS * 8),
    src: new SharedArrayBuffer(capacity * 4),
    capacity,
  };
}

/** Views over a SharedOutput, and how many records it holds. */
export class OutputBuffer {
  shared: SharedOutput;
  f64: Float64Array;
  u32: Uint32Array;
  src: Uint32Array;
  count = 0;
  constructor(shared: SharedOutput) {
    this.shared = shared;
    this.f64 = new Float64Array(shared.records);
    this.u32 = new Uint32Array(shared.records);
    this.src = new Uint32Array(shared.src);
  }

  /** Adopt a buffer the shard grew into (the main thread's view follows the worker's). */
  adopt(shared: SharedOutput): void {
    if (shared === this.shared || shared.records === this.shared.records) return;
    this.shared = shared;
    this.f64 = new Float64Array(shared.records);
    this.u32 = new Uint32Array(shared.records);
    this.src = new Uint32Array(shared.src);
  }

  push(e: OutputEvent, srcIndex: number): void {
    if (this.count === this.shared.capacity) this.grow();
    const n = this.count++;
    encodeOutput(e, this.f64, this.u32, n * RECORD_WORDS);
    this.src[n] = srcIndex;
  }

  private grow(): void {
    const next = newSharedOutput(this.shared.capacity * 2);
    new Float64Array(next.records).set(this.f64);
    new Uint32Array(next.src).set(this.src);
    this.adopt(next);
  }
}

/**
 * Runs one shard's actors over chunks. `trades` keeps, per symbol, the seq
 * and chunk index of its last two trades: an output names its source tick by
 * seq (`srcSeq`), and a trade completed late (batched inference) is either the
 * symbol's last trade or the one before it (actors/symbol-actor.ts completes
 * a waiting trade before its next trade).
 */
export class ShardRunner {
  private readonly actors: Array<MarketActor | undefined> = [];
  private readonly ev = newMarketEvent();
  private lastSeq = new Float64Array(64);
  private lastIdx = new Int32Array(64);
  private prevSeq = new Float64Array(64);
  private prevIdx = new Int32Array(64);
  private out: OutputBuffer | undefined;
  private current = 0;
  private currentSym = 0;
  /** Ticks this shard ran, in all. */
  ticks = 0;
  private readonly sink: OutputSink = {
    emit: (e: OutputEvent): void => {
      this.out!.push(e, this.sourceIndex(e));
    },
  };

  constructor(
    private readonly factory: ActorFactory,
    private readonly shard: number,
    private readonly shards: number,
    private readonly endOfDrain: (() => void) | undefined,
  ) {}

  /** Run the chunk's ticks of this shard; outputs into `out` (count reset first). */
  run(c: TickChunk, names: readonly string[], out: OutputBuffer): void {
    out.count = 0;
    this.out = out;
    const ev = this.ev;
    const shards = this.shards;
    const shard = this.shard;
    for (let i = 0; i < c.length; i++) {
      const sym = c.symId[i]!;
      if (sym % shards !== shard) continue;
      const slot = (sym / shards) | 0;
      let actor = this.actors[slot];
      if (actor === undefined) actor = this.create(sym, slot, names);
      readTick(c, i, ev);
      if (ev.kind === MarketKind.TRADE) {
        this.prevSeq[slot] = this.lastSeq[slot]!;
        this.prevIdx[slot] = this.lastIdx[slot]!;
        this.lastSeq[slot] = ev.seq;
        this.lastIdx[slot] = i;
      }
      this.current = i;
      this.currentSym = slot;
      actor.onMarket(ev, this.sink);
      this.ticks++;
    }
    // The drain's deferred trades (a model's batch): each one is its
    // symbol's last trade, whose index the table holds.
    this.current = -1;
    this.endOfDrain?.();
    this.out = undefined;
  }

  private sourceIndex(e: OutputEvent): number {
    const slot = (e.symId / this.shards) | 0;
    if (e.srcSeq === this.lastSeq[slot]) return this.lastIdx[slot]!;
    if (e.srcSeq === this.prevSeq[slot]) return this.prevIdx[slot]!;
    // A quote's output: the tick running now (or, at the end of the drain, the symbol's last trade).
    return this.current >= 0 && slot === this.currentSym ? this.current : this.lastIdx[slot]!;
  }

  private create(sym: number, slot: number, names: readonly string[]): MarketActor {
    if (slot >= this.lastSeq.length) {
      const n = Math.max(slot + 1, this.lastSeq.length * 2);
      const grow = <T extends Float64Array | Int32Array>(a: T, make: (n: number) => T): T => {
        const b = make(n);
        b.set(a);
        return b;
      };
      this.lastSeq = grow(this.lastSeq, (k) => new Float64Array(k));
      this.prevSeq = grow(this.prevSeq, (k) => new Float64Array(k));
      this.lastIdx = grow(this.lastIdx, (k) => new Int32Array(k));
      this.prevIdx = grow(this.prevIdx, (k) => new Int32Array(k));
    }
    this.lastSeq[slot] = NaN;
    this.prevSeq[slot] = NaN;
    const name = names[sym];
    const actor = this.factory(sym, name ?? `sym${sym}`);
    this.actors[slot] = actor;
    return actor;
  }
}

/** The outputs of one chunk, in source order. */
export interface ChunkOutputs {
  readonly count: number;
  /** Chunk index of the tick that caused the k-th output (ascending in k). */
  src(k: number): number;
  /** The k-th output's kind (OutputKind), without decoding it. */
  kind(k: number): number;
  /** The k-th output into the reusable `e`. */
  decode(k: number, e: OutputEvent): OutputEvent;
}

/**
 * The outputs of every shard for one chunk in source order: by the index of
 * the tick that caused them, and for one tick in the order its shard emitted
 * them (a tick belongs to one symbol, so to one shard). A counting sort over
 * the chunk's indices: no comparison, no allocation once sized.
 */
export class OutputOrder implements ChunkOutputs {
  private counts: Uint32Array;
  private outs: readonly OutputBuffer[] = [];
  /** Sorted: shard and record position of the k-th output. */
  shardOf: Uint8Array;
  posOf: Uint32Array;
  srcOf: Uint32Array;
  count = 0;

  constructor(chunkCapacity: number) {
    this.counts = new Uint32Array(chunkCapacity + 1);
    this.shardOf = new Uint8Array(1024);
    this.posOf = new Uint32Array(1024);
    this.srcOf = new Uint32Array(1024);
  }

  src(k: number): number {
    return this.srcOf[k]!;
  }

  kind(k: number): number {
    return this.outs[this.shardOf[k]!]!.u32[this.posOf[k]! * RECORD_WORDS * 2]!;
  }

  decode(k: number, e: OutputEvent): OutputEvent {
    const out = this.outs[this.shardOf[k]!]!;
    return decodeOutput(out.f64, out.u32, this.posOf[k]! * RECORD_WORDS, e);
  }

  sort(outs: readonly OutputBuffer[], chunkLength: number): void {
    this.outs = outs;
    let total = 0;
    for (const o of outs) total += o.count;
    if (total > this.posOf.length) {
      const n = Math.max(total, this.posOf.length * 2);
      this.shardOf = new Uint8Array(n);
      this.posOf = new Uint32Array(n);
      this.srcOf = new Uint32Array(n);
    }
    const counts = this.counts;
    counts.fill(0, 0, chunkLength + 1);
    for (const o of outs) {
      const src = o.src;
      for (let k = 0; k < o.count; k++) counts[src[k]! + 1]!++;
    }
    for (let i = 1; i <= chunkLength; i++) counts[i]! += counts[i - 1]!;
    for (let s = 0; s < outs.length; s++) {
      const o = outs[s]!;
      const src = o.src;
      for (let k = 0; k < o.count; k++) {
        const at = counts[src[k]!]!++;
        this.shardOf[at] = s;
        this.posOf[at] = k;
        this.srcOf[at] = src[k]!;
      }
    }
    this.count = total;
  }
}
