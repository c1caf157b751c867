import type { ActorFactory, MarketActor, OutputEncoder, OutputSink } from './actor.js';
import { stampUs } from './clock.js';
import { ErrorCodes, QilinError } from './errors.js';
import type { FrameRing } from './frame-ring.js';
import type { MarketEvent } from './market-record.js';
import {
  RejectReasons,
  type MarketIngest,
  type RejectReason,
  type UnitRestore,
} from './market-source.js';
import { OUTPUT_RECORD_BYTES, OutputKind, type OutputEvent } from './output-record.js';
import {
  FrameType,
  MAX_NAME_BYTES,
  OUTPUT_FRAME_HEAD,
  commitOutputFrame,
  newFrameInfo,
  writeNameFrame,
  writeOutputRecordFrame,
  writeTickFrame,
} from './shard-frames.js';
import { WorkerCounter } from './worker-protocol.js';

/**
 * ShardHost: everything a shard worker does per tick, as a plain class (the
 * worker entry wires it to its thread; tests drive it directly).
 *
 * ```
 *  source (NATS partition, or the in-ring) ──► ingest.intern / accept / reject
 *                                                  │
 *      store ring ◄── TICK ────────────────────────┤  (first: refused → nak when the source redelivers)
 *                                                  ▼
 *                                   SymbolActor.onMarket(ev, sink)
 *                                                  │ OutputEvent
 *      out ring ◄── PREDICTION | SIGNAL | QUALITY: encoded once here, WebSocket bytes ready
 *      store ring ◄── OUTPUT (predictions, quality; signals are stored by the risk stage)
 *  one flush of both rings per task (a socket read's worth of messages): one wake-up each
 * ```
 * Symbols get process-wide ids without coordination: shard k numbers its
 * n-th symbol `k + n × shards`. A SYMBOL frame goes into both rings before
 * the first frame that uses the id.
 *
 * Full rings (docs/adr/0001-ring-full-policy.md): the out ring blocks this
 * thread up to `outFullWaitMs` (pushing back into the source), then drops
 * and counts. A full store ring refuses the tick when the source redelivers
 * (JetStream naks it: stored and processed later, exactly once); otherwise
 * the store row is dropped and counted and the live path goes on.
 */
export interface ShardHostOptions {
  shard: number;
  shards: number;
  out: FrameRing;
  store: FrameRing;
  /** Per-shard counters (WorkerCounter), read by the main thread. */
  counters: Float64Array;
  factory: ActorFactory;
  encoder: OutputEncoder;
  /** How long an emit may block on a full out ring before the output is dropped. */
  outFullWaitMs: number;
  /** Most symbols this shard takes; past it ticks are refused `symbol_table_full`. */
  maxSymbols?: number;
  /** End of a drain, before the rings flush (ActorModule.endOfDrain: batched inference). */
  endOfDrain?: () => void;
  /** An actor threw (the record is skipped, the actor kept). */
  onActorError?: (symId: number, err: unknown) => void;
  /** A refused message (rate-limited sample; the counter has them all). */
  onRejectSample?: (reason: RejectReason, subject: string, detail: string, raw: Uint8Array) => void;
}

/** Largest WebSocket frame an output may take (its encoder writes less). */
export const MAX_OUTPUT_FRAME_BYTES = 6144;
/** Store ring room a redelivered tick needs: its TICK frame and up to 4 OUTPUT frames. */
const STORE_HEADROOM = 80 + 4 * (OUTPUT_RECORD_BYTES + 8);
/** Outputs after which the out ring is flushed even in the middle of a task. */
const FLUSH_EVERY = 16;
/** Reject samples handed to onRejectSample, per second. */
const REJECT_SAMPLES_PER_SEC = 20;

/** What a snapshot reads of a symbol of a unit (kernel/state-keeper.ts). */
export interface UnitSymbol {
  readonly name: string;
  readonly actor: MarketActor;
  readonly streamSeq: number;
  readonly lastSeq: number;
}

interface SymbolSlot {
  name: string;
  actor: MarketActor;
  enc: unknown;
  /** Highest seq seen (NaN before the first tick): gaps are ticks lost upstream. */
  lastSeq: number;
  /** Highest stream sequence the actor has applied (0: none, or not from a stream). */
  streamSeq: number;
  /** Snapshot unit (0: none yet; set by the first message that names one). */
  unit: number;
}

/** Where the output of a replayed message goes: nowhere (it was published before the restart). */
const NO_OUTPUT: OutputSink = { emit: () => undefined };

export class ShardHost implements MarketIngest, OutputSink {
  /** True when the source redelivers what `accept` refuses (set before the source starts). */
  redelivers = false;
  private readonly o: ShardHostOptions;
  private readonly ids = new Map<string, number>();
  private readonly slots: SymbolSlot[] = [];
  private readonly venues = new Map<string, number>();
  private readonly info = newFrameInfo();
  private readonly c: Float64Array;
  private readonly maxSymbols: number;
  private flushQueued = false;
  /** Outputs committed since the last flush of the out ring. */
  private unflushed = 0;
  private sampleWindow = 0;
  private samples = 0;
  private lastActorError = 0;
  /** TICK frames written to the store ring (wrapping; continued from a predecessor's count). */
  private storeTicks: number;
  private acked = 0;
  private redelivered = 0;
  /** Snapshot unit names (index 0: none); their positions and whether they changed since the last snapshot. */
  private readonly unitNames: string[] = [''];
  private unitPos = new Float64Array(16);
  private unitDirty = new Uint8Array(16);
  /** Set by the worker entry when snapshots are on (kernel/state-keeper.ts). */
  restorer: ((name: string) => Promise<UnitRestore>) | undefined;

  constructor(opts: ShardHostOptions) {
    this.o = opts;
    this.storeTicks = opts.store.produced();
    this.c = opts.counters;
    this.maxSymbols = opts.maxSymbols ?? 1 << 20;
    if (opts.out.maxPayload < OUTPUT_FRAME_HEAD + MAX_OUTPUT_FRAME_BYTES) {
      throw new QilinError(
        ErrorCodes.INVALID_ARGUMENT,
        `out ring of ${opts.out.capacity} bytes is too small for ${MAX_OUTPUT_FRAME_BYTES}-byte frames (needs ≥ 32 KiB)`,
      );
    }
  }

  /** Symbols this shard has seen. */
  get symbols(): number {
    return this.slots.length;
  }

  // ─────────────────────────────── MarketIngest ───────────────────────────────

  intern(symbol: string): number {
    const id = this.ids.get(symbol);
    if (id !== undefined) return id;
    return this.addSymbol(symbol);
  }

  accept(ev: MarketEvent, venue: string): boolean {
    let venueId = this.venues.get(venue);
    if (venueId === undefined) venueId = this.addVenue(venue);
    // A redelivering source gets no tick whose rows might not all fit: room
    // for the tick and a few outputs first, or it goes back for later.
    if (this.redelivers && this.o.store.reserve(STORE_HEADROOM) === -1) {
      this.c[WorkerCounter.REFUSED]!++;
      return false;
    }
    if (!writeTickFrame(this.o.store, ev, venueId)) {
      if (this.redelivers) {
        this.c[WorkerCounter.REFUSED]!++;
        return false;
      }
      this.o.store.countDropped();
      this.c[WorkerCounter.STORE_DROPPED]!++;
    } else this.storeTicks = (this.storeTicks + 1) | 0;
    this.c[WorkerCounter.ACCEPTED]!++;
    const local = ((ev.symId - this.o.shard) / this.o.shards) | 0;
    const slot = this.slots[local];
    if (slot !== undefined) {
      // Ticks the venue numbered but we never received (lost on the bus, or a
      // slow-consumer cut): counted here for every symbol, whatever its actor
      // does with them. A seq at or below the last one is the actor's business
      // (duplicates, reorders, a venue restart).
      const last = slot.lastSeq;
      if (ev.seq > last) {
        if (ev.seq > last + 1) this.c[WorkerCounter.MISSING]! += ev.seq - last - 1;
        slot.lastSeq = ev.seq;
      } else if (last !== last) slot.lastSeq = ev.seq;
      if (ev.streamSeq > 0 && ev.streamSeq <= slot.streamSeq) {
        // Redelivered after a restart, and already in the restored state:
        // its store row is written above (the key dedups), its outputs were
        // published before the restart.
        this.c[WorkerCounter.ALREADY_APPLIED]!++;
      } else {
        this.track(slot, ev);
        try {
          slot.actor.onMarket(ev, this);
        } catch (err) {
          this.actorError(ev.symId, err);
        }
      }
    }
    this.c[WorkerCounter.PROCESSED]!++;
    this.scheduleFlush();
    return true;
  }

  reject(reason: RejectReason, subject: string, detail: string, raw: Uint8Array): void {
    const i = RejectReasons.indexOf(reason);
    this.c[WorkerCounter.REJECTED_BASE + (i < 0 ? 0 : i)]!++;
    const sample = this.o.onRejectSample;
    if (sample === undefined) return;
    const sec = Math.floor(Date.now() / 1000);
    if (sec !== this.sampleWindow) {
      this.sampleWindow = sec;
      this.samples = 0;
    }
    if (this.samples++ < REJECT_SAMPLES_PER_SEC) sample(reason, subject, detail, raw);
  }

  replay(ev: MarketEvent, _venue: string): boolean {
    const slot = this.slots[((ev.symId - this.o.shard) / this.o.shards) | 0];
    if (slot === undefined || ev.streamSeq <= slot.streamSeq) return false;
    if (ev.seq > slot.lastSeq || slot.lastSeq !== slot.lastSeq) slot.lastSeq = ev.seq;
    this.track(slot, ev);
    try {
      slot.actor.onMarket(ev, NO_OUTPUT);
    } catch (err) {
      this.actorError(ev.symId, err);
    }
    this.c[WorkerCounter.REPLAYED]!++;
    // Deferred work (a batched score) completes at the end of the drain here too.
    this.scheduleFlush();
    return true;
  }

  restore(name: string): Promise<UnitRestore> {
    if (this.restorer !== undefined) return this.restorer(name);
    return Promise.resolve({ unit: this.unitIndex(name), position: 0, symbols: 0 });
  }

  storeMark(): number {
    return this.storeTicks;
  }

  durableMark(): number {
    return this.o.store.durable();
  }

  reportAcks(waiting: number, acked: number, redelivered: number): void {
    // Totals of this worker's source, added to the shard's (which outlive a restart).
    this.c[WorkerCounter.ACK_WAITING] = waiting;
    this.c[WorkerCounter.ACKED_DURABLE]! += acked - this.acked;
    this.c[WorkerCounter.REDELIVERED]! += redelivered - this.redelivered;
    this.acked = acked;
    this.redelivered = redelivered;
  }

  // ─────────────────────────────── OutputSink ───────────────────────────────

  emit(ev: OutputEvent): void {
    const out = this.o.out;
    const slot = this.slots[((ev.symId - this.o.shard) / this.o.shards) | 0];
    if (slot === undefined) return;
    ev.emit = stampUs();
    const info = this.info;
    info.textStart = info.textEnd = -1;
    const max = OUTPUT_FRAME_HEAD + MAX_OUTPUT_FRAME_BYTES;
    let at = out.reserve(max);
    if (at === -1) at = out.reserveWaiting(max, this.o.outFullWaitMs);
    if (at === -1) {
      out.countDropped();
      this.c[WorkerCounter.OUT_DROPPED]!++;
    } else {
      const frameAt = at + OUTPUT_FRAME_HEAD;
      if (this.o.encoder.encode(ev, slot.enc, out.buf, frameAt, at + max, this.info)) {
        commitOutputFrame(out, at, ev, this.info);
        // A big socket read (catching up after a stall) would otherwise hold
        // every output until its last message is done: let the main thread
        // start on them every FLUSH_EVERY outputs.
        if (++this.unflushed >= FLUSH_EVERY) {
          this.unflushed = 0;
          out.flush();
        }
      } else {
        this.c[WorkerCounter.ENCODE_FAILED]!++;
      }
    }
    if (
      ev.kind !== OutputKind.SIGNAL &&
      !writeOutputRecordFrame(this.o.store, ev, out.buf, info.textStart, info.textEnd)
    ) {
      this.o.store.countDropped();
      this.c[WorkerCounter.STORE_DROPPED]!++;
    }
    this.scheduleFlush();
  }

  // ─────────────────────────────── flushing ───────────────────────────────

  /**
   * Publish everything written so far: the out ring wakes the main thread
   * (latency matters there); the store ring only when it fills up, the
   * store worker polls it (STORE_POLL_MS).
   */
  readonly flush = (): void => {
    // Outputs the drain's deferred work emits go out with this flush.
    if (this.o.endOfDrain !== undefined) {
      try {
        this.o.endOfDrain();
      } catch (err) {
        this.actorError(-1, err);
      }
    }
    this.flushQueued = false;
    this.unflushed = 0;
    this.o.out.flush();
    // Count before publishing: a successor that finds a count ahead of the
    // frames acknowledges late, never early.
    this.o.store.setProduced(this.storeTicks);
    this.o.store.flush(true);
  };

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(this.flush);
  }

  // ─────────────────────────────── snapshot units ───────────────────────────────

  /** The number of snapshot unit `name` (registered on first use). */
  unitIndex(name: string): number {
    let u = this.unitNames.indexOf(name);
    if (u > 0) return u;
    u = this.unitNames.length;
    this.unitNames.push(name);
    if (u >= this.unitPos.length) {
      const pos = new Float64Array(u * 2);
      pos.set(this.unitPos);
      this.unitPos = pos;
      const dirty = new Uint8Array(u * 2);
      dirty.set(this.unitDirty);
      this.unitDirty = dirty;
    }
    return u;
  }

  /** Registered units, by number (index 0 is the empty name: no unit). */
  get units(): readonly string[] {
    return this.unitNames;
  }

  /** Whether unit `u` changed since `markClean(u)`. */
  dirty(u: number): boolean {
    return this.unitDirty[u] === 1;
  }

  markClean(u: number): void {
    this.unitDirty[u] = 0;
  }

  markDirty(u: number): void {
    this.unitDirty[u] = 1;
  }

  /** The stream position of unit `u`: the highest sequence its actors applied. */
  position(u: number): number {
    return this.unitPos[u]!;
  }

  /** The symbols of unit `u` now (live views: their state and sequences move on as ticks arrive). */
  symbolsOfUnit(u: number): UnitSymbol[] {
    return this.slots.filter((s) => s.unit === u);
  }

  /**
   * Install restored state for `name` in unit `u`: interns the symbol (its
   * actor is built), then `load(actor)` reads the state into it. When load
   * throws, the actor is replaced by a fresh one (cold) and the error
   * rethrown for the caller to count.
   */
  restoreSymbol(
    u: number,
    name: string,
    streamSeq: number,
    lastSeq: number,
    load: (actor: MarketActor) => void,
  ): void {
    const id = this.intern(name);
    const slot = this.slots[((id - this.o.shard) / this.o.shards) | 0]!;
    slot.unit = u;
    try {
      load(slot.actor);
    } catch (err) {
      slot.actor = this.o.factory(id, name);
      throw err;
    }
    slot.streamSeq = streamSeq;
    slot.lastSeq = lastSeq;
  }

  /** Set unit `u`'s position after a restore. */
  setPosition(u: number, position: number): void {
    this.unitPos[u] = position;
  }

  /** Note that `slot` applies `ev`: its stream sequence, its unit's position and change flag. */
  private track(slot: SymbolSlot, ev: MarketEvent): void {
    const u = ev.unit;
    if (u === 0) return;
    if (slot.unit === 0) slot.unit = u;
    this.unitDirty[u] = 1;
    if (ev.streamSeq > 0) {
      slot.streamSeq = ev.streamSeq;
      if (ev.streamSeq > this.unitPos[u]!) this.unitPos[u] = ev.streamSeq;
    }
  }

  // ─────────────────────────────── internals ───────────────────────────────

  private addSymbol(symbol: string): number {
    if (this.slots.length >= this.maxSymbols) {
      throw new QilinError(
        ErrorCodes.SYMBOL_TABLE_FULL,
        `shard ${this.o.shard} holds ${this.maxSymbols} symbols; cannot add ${JSON.stringify(symbol)}`,
        { details: { symbol, maxSymbols: this.maxSymbols } },
      );
    }
    if (symbol.length > MAX_NAME_BYTES) {
      throw new QilinError(
        ErrorCodes.INVALID_ARGUMENT,
        `symbol of ${symbol.length} characters is longer than ${MAX_NAME_BYTES}`,
      );
    }
    const id = this.o.shard + this.slots.length * this.o.shards;
    // Names must reach both consumers before any frame with the id: block for room.
    this.announce(this.o.out, FrameType.SYMBOL, id, symbol);
    this.announce(this.o.store, FrameType.SYMBOL, id, symbol);
    this.slots.push({
      name: symbol,
      actor: this.o.factory(id, symbol),
      enc: this.o.encoder.symbol(symbol),
      lastSeq: Number.NaN,
      streamSeq: 0,
      unit: 0,
    });
    this.ids.set(symbol, id);
    this.c[WorkerCounter.ACTORS] = this.slots.length;
    return id;
  }

  private addVenue(venue: string): number {
    const id = this.venues.size;
    this.announce(this.o.store, FrameType.VENUE, id, venue.slice(0, MAX_NAME_BYTES));
    this.venues.set(venue, id);
    return id;
  }

  private announce(
    ring: FrameRing,
    type: typeof FrameType.SYMBOL | typeof FrameType.VENUE,
    id: number,
    name: string,
  ): void {
    while (!writeNameFrame(ring, type, id, name)) {
      // reserveWaiting flushes: the count goes first (see flush).
      if (ring === this.o.store) ring.setProduced(this.storeTicks);
      if (ring.reserveWaiting(8 + name.length, 1000) === -1) {
        // The consumer is gone or stuck for a second: nothing else can go in
        // either. The tick is lost: counted here, the source logs the error.
        this.c[WorkerCounter.UNANNOUNCED]!++;
        throw new QilinError(
          ErrorCodes.RING_FULL,
          `cannot announce ${JSON.stringify(name)}: ring full for 1 s`,
        );
      }
    }
    this.scheduleFlush();
  }

  private actorError(symId: number, err: unknown): void {
    this.c[WorkerCounter.ACTOR_ERRORS]!++;
    const now = Date.now();
    if (now - this.lastActorError < 1000) return; // one report a second; the counter has them all
    this.lastActorError = now;
    this.o.onActorError?.(symId, err);
  }
}
