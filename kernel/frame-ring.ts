import { ErrorCodes, QilinError, invalidArgument } from './errors.js';
import {
  RING_HEADER_BYTES,
  RingWord,
  noteHighWater,
  parkConsumer,
  ringDoorbell,
  parkProducer,
  wakeConsumer,
  wakeParkedConsumer,
  wakeParkedProducer,
} from './ring-control.js';

/**
 * FrameRing: a single-producer / single-consumer ring of variable-size
 * frames in a SharedArrayBuffer. Workers write their output here already
 * encoded (the WebSocket frame bytes, store rows), so the thread on the other
 * side only routes bytes.
 *
 * ```
 *  SharedArrayBuffer
 *  ┌─ header 256 B (kernel/ring-control.ts) ─┐┌──────────── data: capacity bytes ────────────────┐
 *  │ head │ tail │ waiting flags │ meta      ││ frame │ frame │ … │ PAD ┆ (wraps to 0)            │
 *  └─────────────────────────────────────────┘└───────────────────────────────────────────────────┘
 *  frame at byte offset o (o % 8 = 0):
 *    u32 @o    payload bytes n
 *    u32 @o+4  type (0 = PAD: skip to the end of the data region)
 *    o+8 …     payload, n bytes, then zero to 7 bytes to the next multiple of 8
 *
 *  head, tail   bytes ever published / consumed (u32, wrapping); used = (head − tail) >>> 0
 *  offset       counter & (capacity − 1)
 * ```
 * A frame never wraps: when the next one does not fit before the end of the
 * data region, the producer fills the rest with one PAD frame and starts at
 * offset 0; the consumer skips PAD frames. Frames are 8-byte aligned, so the
 * `f64` / `u32` views address them directly. The largest payload is a
 * quarter of the capacity, so a PAD never blocks progress.
 *
 * Producer: `reserve(max)` → payload offset (or -1: full), write up to `max`
 * bytes through `u8` / `buf` / `u32` / `f64`, `commit(type, n)`; frames become
 * visible at `flush()`, which wakes a parked consumer (one wake-up per flush,
 * however many frames). Consumer: `peek()` → payload offset (or -1: empty),
 * `type()` / `length()`, `release()`. Wake-up protocol and header shared with
 * SpscRing (kernel/ring-control.ts). Nothing allocates per frame.
 */
const MAGIC_VALUE = 0x51_4c_4e_46; // 'QLNF'
const FRAME_HEADER = 8;
/** The PAD frame type: the rest of the data region is unused. */
export const FRAME_PAD = 0;

const align8 = (n: number): number => (n + 7) & ~7;

export interface FrameRingStats {
  /** Data bytes. */
  capacity: number;
  /** Bytes held (frames, headers and padding). */
  used: number;
  /** Frames the producer dropped under its full-ring policy. */
  dropped: number;
  /** Highest `used` the producer has seen. */
  highWater: number;
}

export class FrameRing {
  readonly buffer: SharedArrayBuffer;
  /** Data bytes (a power of two). */
  readonly capacity: number;
  /** Largest payload a frame may carry (capacity / 4 − 8). */
  readonly maxPayload: number;
  /** Views of the data region, all starting at data offset 0. */
  readonly u8: Uint8Array;
  readonly buf: Buffer;
  readonly u32: Uint32Array;
  readonly f64: Float64Array;
  private readonly ctl: Int32Array;
  private readonly mask: number;
  // producer-private
  private localHead: number;
  private pending = 0;
  private cachedTail: number;
  private resOffset = -1;
  private resPad = 0;
  private resNeed = 0;
  // consumer-private
  private localTail: number;
  private cachedHead: number;
  private curType = 0;
  private curLength = 0;
  /** Producer side: a doorbell shared with other rings of the same consumer (see useDoorbell). */
  private bell: Int32Array | undefined;
  private wake: () => void = () => undefined;

  /** Allocate a ring of `capacity` data bytes (a power of two, 1 KiB to 1 GiB). */
  static create(capacity: number, startAt = 0): FrameRing {
    if (
      !Number.isInteger(capacity) ||
      capacity < 1024 ||
      capacity > 1 << 30 ||
      (capacity & (capacity - 1)) !== 0
    ) {
      invalidArgument('capacity', capacity, 'a power of two from 1024 to 2^30 bytes');
    }
    if (startAt % 8 !== 0) invalidArgument('startAt', startAt, 'a multiple of 8');
    const buffer = new SharedArrayBuffer(RING_HEADER_BYTES + capacity);
    const ctl = new Int32Array(buffer, 0, RING_HEADER_BYTES / 4);
    ctl[RingWord.MAGIC] = MAGIC_VALUE;
    ctl[RingWord.CAPACITY] = capacity;
    ctl[RingWord.RECORD_BYTES] = 0;
    ctl[RingWord.HEAD] = startAt | 0;
    ctl[RingWord.TAIL] = startAt | 0;
    return new FrameRing(buffer);
  }

  /** Attach to a ring created elsewhere (the other thread's side). */
  static attach(buffer: SharedArrayBuffer): FrameRing {
    return new FrameRing(buffer);
  }

  private constructor(buffer: SharedArrayBuffer) {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < RING_HEADER_BYTES) {
      throw new QilinError(
        ErrorCodes.RING_LAYOUT,
        'frame ring buffer must be a SharedArrayBuffer made by FrameRing.create',
      );
    }
    const ctl = new Int32Array(buffer, 0, RING_HEADER_BYTES / 4);
    const capacity = Atomics.load(ctl, RingWord.CAPACITY);
    if (
      Atomics.load(ctl, RingWord.MAGIC) !== MAGIC_VALUE ||
      buffer.byteLength !== RING_HEADER_BYTES + capacity
    ) {
      throw new QilinError(
        ErrorCodes.RING_LAYOUT,
        `buffer of ${buffer.byteLength} bytes has no valid frame ring header`,
      );
    }
    this.buffer = buffer;
    this.ctl = ctl;
    this.capacity = capacity;
    this.maxPayload = capacity / 4 - FRAME_HEADER;
    this.mask = capacity - 1;
    this.u8 = new Uint8Array(buffer, RING_HEADER_BYTES, capacity);
    this.buf = Buffer.from(buffer, RING_HEADER_BYTES, capacity);
    this.u32 = new Uint32Array(buffer, RING_HEADER_BYTES, capacity / 4);
    this.f64 = new Float64Array(buffer, RING_HEADER_BYTES, capacity / 8);
    this.localHead = Atomics.load(ctl, RingWord.HEAD);
    this.cachedTail = Atomics.load(ctl, RingWord.TAIL);
    this.localTail = this.cachedTail;
    this.cachedHead = this.localHead;
  }

  // ───────────────────────────── producer side ─────────────────────────────

  /**
   * Byte offset (into the data views) where a payload of up to `maxBytes`
   * may be written, or -1 when the ring has no room for it now. Nothing is
   * visible until `commit()` and `flush()`. Reserving again without a commit
   * returns the same place (for the same size).
   */
  reserve(maxBytes: number): number {
    if (!(maxBytes >= 0 && maxBytes <= this.maxPayload)) {
      invalidArgument('maxBytes', maxBytes, `0 to ${this.maxPayload} (a quarter of the ring)`);
    }
    const need = align8(FRAME_HEADER + maxBytes);
    const pos = (this.localHead + this.pending) | 0;
    const off = pos & this.mask;
    const toEnd = this.capacity - off;
    const pad = need > toEnd ? toEnd : 0;
    const after = (pos + pad + need - this.cachedTail) >>> 0;
    if (after > this.capacity) {
      this.cachedTail = Atomics.load(this.ctl, RingWord.TAIL);
      if ((pos + pad + need - this.cachedTail) >>> 0 > this.capacity) return -1;
    }
    this.resPad = pad;
    this.resNeed = need;
    this.resOffset = pad === 0 ? off : 0;
    return this.resOffset + FRAME_HEADER;
  }

  /** Close the reserved frame with its type (1 … 2^32−1) and actual payload length. */
  commit(type: number, length: number): void {
    const at = this.resOffset;
    if (at < 0) invalidArgument('commit', 'without reserve', 'reserve() first');
    if (!(length >= 0 && length + FRAME_HEADER <= this.resNeed)) {
      invalidArgument('length', length, `0 to the ${this.resNeed - FRAME_HEADER} bytes reserved`);
    }
    if (this.resPad !== 0) {
      const padAt = ((this.localHead + this.pending) & this.mask) >>> 2;
      this.u32[padAt] = this.resPad - FRAME_HEADER;
      this.u32[padAt + 1] = FRAME_PAD;
    }
    const w = at >>> 2;
    this.u32[w] = length;
    this.u32[w + 1] = type;
    this.pending += this.resPad + align8(FRAME_HEADER + length);
    this.resOffset = -1;
  }

  /** Frames committed and not yet flushed. */
  get unflushed(): boolean {
    return this.pending !== 0;
  }

  /**
   * Make every committed frame visible and wake the consumer if it sleeps.
   * `lazy`: wake it only once the ring is over an eighth full, for a
   * consumer that polls on a short timeout anyway (the store worker): a
   * futex wake costs the producer more than the write it announces.
   */
  flush(lazy = false): void {
    if (this.pending === 0) return;
    this.localHead = (this.localHead + this.pending) | 0;
    this.pending = 0;
    Atomics.store(this.ctl, RingWord.HEAD, this.localHead);
    let used = (this.localHead - this.cachedTail) >>> 0;
    if (used > this.capacity >>> 3) {
      // cachedTail is refreshed only when space runs short, so `used` is an
      // upper bound: look at the real tail before believing it (measured: a
      // stale tail made every lazy flush to the store worker a futex wake,
      // ~1.5 % of a core per shard worker at 10k ticks/s).
      this.cachedTail = Atomics.load(this.ctl, RingWord.TAIL);
      used = (this.localHead - this.cachedTail) >>> 0;
    }
    noteHighWater(this.ctl, used);
    if (this.bell !== undefined) ringDoorbell(this.bell, this.wake);
    else if (!lazy || used > this.capacity >>> 3) wakeParkedConsumer(this.ctl);
  }

  /**
   * Producer: announce flushes on a doorbell the consumer shares between
   * several rings (kernel/ring-control.ts) instead of this ring's own
   * waiting flag; `wake` reaches the consumer when it sleeps (a message).
   */
  useDoorbell(bell: SharedArrayBuffer, wake: () => void): void {
    this.bell = new Int32Array(bell, 0, 1);
    this.wake = wake;
  }

  /**
   * Consumer: publish an acknowledgement mark back to the producer (a
   * wrapping 32-bit count whose meaning the two sides agree on: for a store
   * ring, TICK frames whose rows are durable). Read with {@link durable}.
   */
  setDurable(mark: number): void {
    Atomics.store(this.ctl, RingWord.DURABLE, mark | 0);
  }

  /** Producer: the consumer's last {@link setDurable} mark (0 before the first). */
  durable(): number {
    return Atomics.load(this.ctl, RingWord.DURABLE);
  }

  /** Producer: record its own count (of what {@link setDurable} counts), for its successor. */
  setProduced(count: number): void {
    Atomics.store(this.ctl, RingWord.PRODUCED, count | 0);
  }

  /** The last {@link setProduced} count (0 for a new ring). */
  produced(): number {
    return Atomics.load(this.ctl, RingWord.PRODUCED);
  }

  /** Count a frame dropped by the producer's full-ring policy. */
  countDropped(): void {
    Atomics.add(this.ctl, RingWord.DROPPED, 1);
  }

  /**
   * Flush, then block the calling thread until `maxBytes` fit or `timeoutMs`
   * passes; the payload offset, or -1 on timeout. Only for worker threads.
   */
  reserveWaiting(maxBytes: number, timeoutMs: number): number {
    const deadline = Date.now() + timeoutMs;
    this.flush();
    for (;;) {
      const at = this.reserve(maxBytes);
      if (at !== -1) return at;
      const left = deadline - Date.now();
      if (left <= 0) return -1;
      parkProducer(this.ctl, this.cachedTail, left);
    }
  }

  // ───────────────────────────── consumer side ─────────────────────────────

  /** True when a frame is waiting (a peek that tolerates being called from a re-check). */
  hasData(): boolean {
    return this.peek() !== -1;
  }

  /** Payload offset of the oldest unconsumed frame, or -1 when empty. Skips PAD. */
  peek(): number {
    for (;;) {
      if (this.localTail === this.cachedHead) {
        this.cachedHead = Atomics.load(this.ctl, RingWord.HEAD);
        if (this.localTail === this.cachedHead) return -1;
      }
      const off = this.localTail & this.mask;
      const w = off >>> 2;
      const length = this.u32[w]!;
      const type = this.u32[w + 1]!;
      if (type !== FRAME_PAD) {
        this.curType = type;
        this.curLength = length;
        return off + FRAME_HEADER;
      }
      this.localTail = (this.localTail + FRAME_HEADER + length) | 0;
    }
  }

  /** Type of the frame `peek()` returned. */
  type(): number {
    return this.curType;
  }

  /** Payload length of the frame `peek()` returned. */
  length(): number {
    return this.curLength;
  }

  /** Release the frame `peek()` returned (and any PAD before it); its bytes may be reused. */
  release(): void {
    this.localTail = (this.localTail + align8(FRAME_HEADER + this.curLength)) | 0;
    Atomics.store(this.ctl, RingWord.TAIL, this.localTail);
    wakeParkedProducer(this.ctl, (this.cachedHead - this.localTail) >>> 0, this.capacity);
  }

  /** Park until the producer flushes or `timeoutMs` passes; null when frames are there. */
  waitForData(timeoutMs: number): Promise<unknown> | null {
    if (this.peek() !== -1) return null;
    return parkConsumer(this.ctl, this.localTail, timeoutMs);
  }

  // ───────────────────────────── either side ─────────────────────────────

  /**
   * Skip the oldest frame (and PADs before it). Only for a supervisor while
   * no consumer thread is attached (a frame that killed its worker twice is
   * quarantined). False when the ring is empty.
   */
  skipOldest(): boolean {
    let tail = Atomics.load(this.ctl, RingWord.TAIL);
    const head = Atomics.load(this.ctl, RingWord.HEAD);
    while (tail !== head) {
      const w = (tail & this.mask) >>> 2;
      const length = this.u32[w]!;
      const type = this.u32[w + 1]!;
      tail = (tail + align8(FRAME_HEADER + length)) | 0;
      if (type !== FRAME_PAD) {
        Atomics.store(this.ctl, RingWord.TAIL, tail);
        return true;
      }
    }
    return false;
  }

  /** Shared tail counter (the supervisor uses it to spot a poison frame). */
  tailCounter(): number {
    return Atomics.load(this.ctl, RingWord.TAIL);
  }

  /** Wake a parked consumer without publishing (it re-checks, e.g. for stop). */
  wakeConsumer(): void {
    wakeConsumer(this.ctl);
  }

  /** Bytes held (a snapshot). */
  used(): number {
    return (Atomics.load(this.ctl, RingWord.HEAD) - Atomics.load(this.ctl, RingWord.TAIL)) >>> 0;
  }

  stats(): FrameRingStats {
    return {
      capacity: this.capacity,
      used: this.used(),
      dropped: Atomics.load(this.ctl, RingWord.DROPPED),
      highWater: Atomics.load(this.ctl, RingWord.HIGH_WATER),
    };
  }
}
