import { partitionSubject, partitionsOf } from '../../adapters/nats/nats-shard-source.js';
import { parseMarketSubject } from '../../adapters/nats/tick-json-decoder.js';
import type { FrameRing } from '../../kernel/frame-ring.js';
import { DoorbellSleeper } from '../../kernel/ring-control.js';

/**
 * The two ends of the hop relay (hop-server.ts, hop-worker.ts): the kernel's
 * one thread hop and nothing else. A worker writes each tick as the finished
 * WebSocket frame into its FrameRing; the main thread drains every ring and
 * publishes the bytes where they lie.
 *
 * ```
 *  worker k: NATS msg (subject md.<venue>.<sym>[.<p>], JSON tick bytes)
 *     │ symbol entry cached per subject string (first time: NAME frame, id)
 *     ▼
 *  ring k  ┌ type 1 (NAME)    u32 id, symbol bytes             once per symbol
 *          └ type 2 + id      {"topic":"prediction/<sym>","data":<tick bytes>}
 *     │ flush: once per task (queueMicrotask) and every 16 frames, rings the doorbell
 *     ▼
 *  main thread: drain every ring, park on the shared doorbell (no timeout)
 *     └ publish(topic bytes of (ring, id), frame view)
 * ```
 * The tick is copied, never parsed: the symbol comes from the subject,
 * exactly as the kernel's workers take it. Nothing is allocated per tick on
 * the worker (but what the NATS client hands over) and one view per frame on
 * the main thread (uWS takes no offset), as in the kernel.
 */

/** Frame type announcing a symbol id: payload u32 id, then the symbol's bytes. */
export const HOP_NAME = 1;
/** Frame types from this one up carry a frame of symbol `type − HOP_FRAME_BASE`. */
export const HOP_FRAME_BASE = 2;
/** Frames after which the ring is flushed even in the middle of a task (the kernel's FLUSH_EVERY). */
export const HOP_FLUSH_EVERY = 16;
/** Longest a worker blocks on a full ring before it drops the frame, ms (the kernel's default). */
export const HOP_FULL_WAIT_MS = 250;
/** Longest symbol name accepted, bytes. */
export const HOP_MAX_SYMBOL = 64;

const CLOSE_BRACE = 0x7d;

/** workerData of a hop worker. */
export interface HopWorkerInit {
  natsUrl: string;
  shard: number;
  shards: number;
  /** The server's market partitions (0: none, filter by ShardRouter). */
  partitions: number;
  /** This worker's out ring (FrameRing.create on the main thread). */
  ring: SharedArrayBuffer;
  /** The doorbell every worker rings and the main thread parks on. */
  bell: SharedArrayBuffer;
}

/** The subjects worker `shard` subscribes. */
export function hopSubjects(shard: number, shards: number, partitions: number): string[] {
  return partitions > 0
    ? partitionsOf(shard, shards, partitions).map((p) => partitionSubject('md.>', p))
    : ['md.>'];
}

/** The symbol of `md.<venue>.<sym>` or `md.<venue>.<sym>.<partition>`; undefined for anything else. */
export function symbolOfSubject(subject: string): string | undefined {
  return parseMarketSubject(subject)?.[1];
}

/** `{"topic":"prediction/<sym>","data":` — what goes before the tick's bytes. */
export function framePrefix(symbol: string): Buffer {
  return Buffer.from(`{"topic":"prediction/${symbol}","data":`, 'utf8');
}

interface SymbolEntry {
  /** Frame type (HOP_FRAME_BASE + id); 0 for the two sentinels below. */
  type: number;
  prefix: Buffer;
}

/** Cached for a subject of another worker's symbol. */
const SKIP: SymbolEntry = { type: 0, prefix: Buffer.alloc(0) };
/** Cached for a subject that is no market subject (or names too long a symbol). */
const REFUSE: SymbolEntry = { type: 0, prefix: Buffer.alloc(0) };

/** Counters of one worker's writer. */
export interface HopWriterStats {
  /** Frames committed. */
  frames: number;
  /** Symbols announced. */
  symbols: number;
  /** Messages skipped: another worker's symbol (unpartitioned mode). */
  skipped: number;
  /** Messages refused: not a market subject, or a symbol too long. */
  refused: number;
  /** Frames dropped: too large for the ring, or the ring full for HOP_FULL_WAIT_MS. */
  dropped: number;
}

/**
 * Worker side: turns NATS messages into frames in one FrameRing. `keep`
 * (unpartitioned mode) decides once per symbol whether it is this worker's.
 */
export class HopWriter {
  readonly stats: HopWriterStats = { frames: 0, symbols: 0, skipped: 0, refused: 0, dropped: 0 };
  /** Per subject string: its symbol's entry, or SKIP / REFUSE. */
  private readonly bySubject = new Map<string, SymbolEntry>();
  private readonly bySymbol = new Map<string, SymbolEntry>();
  private flushQueued = false;
  private unflushed = 0;

  constructor(
    private readonly ring: FrameRing,
    private readonly keep: (symbol: string) => boolean = () => true,
    private readonly fullWaitMs = HOP_FULL_WAIT_MS,
  ) {}

  /**
   * One message: its frame committed (visible at the end of the task). False
   * when skipped, refused or dropped (counted).
   */
  write(subject: string, data: Uint8Array): boolean {
    let e = this.bySubject.get(subject);
    if (e === undefined) e = this.learn(subject);
    if (e === undefined) {
      // No room to announce the symbol: this message is dropped, the next retries.
      this.ring.countDropped();
      this.stats.dropped++;
      return false;
    }
    if (e.type === 0) {
      if (e === SKIP) this.stats.skipped++;
      else this.stats.refused++;
      return false;
    }
    const ring = this.ring;
    const plen = e.prefix.length;
    const n = plen + data.length + 1;
    if (n > ring.maxPayload) {
      ring.countDropped();
      this.stats.dropped++;
      return false;
    }
    let at = ring.reserve(n);
    if (at === -1) at = ring.reserveWaiting(n, this.fullWaitMs);
    if (at === -1) {
      ring.countDropped();
      this.stats.dropped++;
      return false;
    }
    const u8 = ring.u8;
    u8.set(e.prefix, at);
    u8.set(data, at + plen);
    u8[at + n - 1] = CLOSE_BRACE;
    ring.commit(e.type, n);
    this.stats.frames++;
    if (++this.unflushed >= HOP_FLUSH_EVERY) {
      this.unflushed = 0;
      ring.flush();
    }
    this.scheduleFlush();
    return true;
  }

  /** Make every committed frame visible and ring the doorbell (once per task). */
  readonly flush = (): void => {
    this.flushQueued = false;
    this.unflushed = 0;
    this.ring.flush();
  };

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(this.flush);
  }

  /** First message on a subject string: find or announce its symbol (undefined: no room yet). */
  private learn(subject: string): SymbolEntry | undefined {
    const symbol = symbolOfSubject(subject);
    const e =
      symbol === undefined || Buffer.byteLength(symbol) > HOP_MAX_SYMBOL
        ? REFUSE
        : !this.keep(symbol)
          ? SKIP
          : (this.bySymbol.get(symbol) ?? this.announce(symbol));
    if (e !== undefined) this.bySubject.set(subject, e);
    return e;
  }

  /**
   * A NAME frame: it must precede the symbol's first frame. Waits like a
   * frame for room; undefined when there is none (the message is dropped and
   * the next one tries again).
   */
  private announce(symbol: string): SymbolEntry | undefined {
    const ring = this.ring;
    const id = this.bySymbol.size;
    const name = Buffer.from(symbol, 'utf8');
    let at = ring.reserve(4 + name.length);
    if (at === -1) at = ring.reserveWaiting(4 + name.length, this.fullWaitMs);
    if (at === -1) return undefined;
    ring.u32[at >>> 2] = id;
    ring.u8.set(name, at + 4);
    ring.commit(HOP_NAME, 4 + name.length);
    const e = { type: HOP_FRAME_BASE + id, prefix: framePrefix(symbol) };
    this.bySymbol.set(symbol, e);
    this.stats.symbols++;
    this.scheduleFlush();
    return e;
  }
}

/**
 * Where the main thread hands a frame: the exact topic's bytes
 * (`prediction/<sym>`) and a view of the frame in the ring, valid until the
 * call returns.
 */
export type HopPublish = (topic: Buffer, frame: Uint8Array) => void;

/** Frames handed over per ring before the loop yields to the event loop (as WorkerPool). */
const DRAIN_BATCH = 4096;

/**
 * Main-thread side: drains the workers' rings and parks on their shared
 * doorbell with no timeout, exactly as WorkerPool.drainLoop does.
 */
export class HopDrain {
  /** Frames handed to `publish`. */
  published = 0;
  /** Topic bytes per ring, by symbol id (from NAME frames). */
  private readonly topics: Buffer[][];
  private readonly sleeper: DoorbellSleeper;
  private closed = false;
  private readonly anyData = (): boolean => this.rings.some((r) => r.hasData());

  constructor(
    private readonly rings: readonly FrameRing[],
    doorbell: SharedArrayBuffer,
    private readonly publish: HopPublish,
  ) {
    this.topics = rings.map(() => []);
    this.sleeper = new DoorbellSleeper(doorbell);
  }

  /** Drain until `close()`: every ring, then park on the doorbell. */
  async run(): Promise<void> {
    const rings = this.rings;
    for (;;) {
      let n = 0;
      for (let i = 0; i < rings.length; i++) n += this.drain(i, DRAIN_BATCH);
      if (n >= DRAIN_BATCH) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      if (this.closed) {
        for (let i = 0; i < rings.length; i++) this.drain(i, Number.MAX_SAFE_INTEGER);
        return;
      }
      // Asleep until a worker's wake message, as in the kernel (no timer per park).
      const sleep = this.sleeper.park(this.anyData);
      if (sleep !== null) await sleep;
    }
  }

  /** A worker rang the doorbell while run() slept (its `{type:'wake'}` message). */
  wake(): void {
    this.sleeper.wake();
  }

  /** Stop `run()` after a last drain. */
  close(): void {
    this.closed = true;
    this.sleeper.wake();
  }

  /** Hand up to `max` frames of ring `i` to `publish`; returns how many frames it took. */
  drain(i: number, max: number): number {
    const ring = this.rings[i]!;
    const topics = this.topics[i]!;
    const u8 = ring.u8;
    let n = 0;
    let at: number;
    while (n < max && (at = ring.peek()) !== -1) {
      const type = ring.type();
      const len = ring.length();
      if (type === HOP_NAME) {
        const id = ring.u32[at >>> 2]!;
        topics[id] = Buffer.concat([
          Buffer.from('prediction/'),
          ring.buf.subarray(at + 4, at + len),
        ]);
      } else {
        const topic = topics[type - HOP_FRAME_BASE];
        if (topic !== undefined) {
          this.published++;
          this.publish(topic, new Uint8Array(u8.buffer, u8.byteOffset + at, len));
        }
      }
      ring.release();
      n++;
    }
    return n;
  }
}
