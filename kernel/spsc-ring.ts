import { ErrorCodes, QilinError, invalidArgument } from './errors.js';
import {
  RING_HEADER_BYTES as HEADER_BYTES,
  RingWord,
  noteHighWater,
  parkConsumer,
  parkProducer,
  wakeConsumer,
  wakeParkedConsumer,
  wakeParkedProducer,
} from './ring-control.js';

/**
 * SpscRing: a single-producer / single-consumer ring of fixed-size binary
 * records in a SharedArrayBuffer, shared by two threads.
 *
 * ```
 *  SharedArrayBuffer
 *  ┌──────────────── header, 256 B (Int32 words) ────────────────┐┌──── capacity × recordBytes ────┐
 *  │ head @0 │ tail @64 │ consumerWaiting @128 │ producerWaiting @160 │ meta @192 ││ slot 0 │ slot 1 │ … │ slot N-1 │
 *  └──────────────────────────────────────────────────────────────┘└─────────────────────────────────┘
 *    head  records ever published  (written only by the producer)
 *    tail  records ever consumed   (written only by the consumer)
 *    size = (head - tail) >>> 0    slot = counter & (capacity - 1)
 * ```
 * head and tail are 32-bit counters that wrap; with a power-of-two capacity
 * below 2^31 the unsigned difference is always the number of records held.
 * They sit on different 64-byte lines so the two threads do not share a cache
 * line on every record. Each side keeps a private copy of its own counter and a
 * cached copy of the other's, re-reading the shared one only when the ring
 * looks full (producer) or empty (consumer).
 *
 * Wake-ups are batched, one per burst, with no lost wake-ups and no spinning:
 * the protocol and the header are shared with FrameRing (kernel/ring-control.ts).
 *
 * Records are accessed through `f64` / `u32` views of the slot region at the
 * word offset `claim()` / `peek()` return: no allocation per record.
 */
const { HEAD, TAIL, MAGIC, CAPACITY, RECORD_BYTES, DROPPED, HIGH_WATER } = RingWord;
const MAGIC_VALUE = 0x51_4c_4e_52; // 'QLNR'

export interface SpscRingStats {
  capacity: number;
  size: number;
  dropped: number;
  highWater: number;
}

export class SpscRing {
  readonly buffer: SharedArrayBuffer;
  readonly capacity: number;
  readonly recordBytes: number;
  /** 8-byte words per record: slot base offsets are in these units. */
  readonly recordWords: number;
  /** Float64 view of the slot region. */
  readonly f64: Float64Array;
  /** Uint32 view of the slot region (index = f64 offset * 2 + k). */
  readonly u32: Uint32Array;
  private readonly ctl: Int32Array;
  private readonly mask: number;
  // producer-private
  private localHead: number;
  private cachedTail: number;
  private pending = 0;
  // consumer-private
  private localTail: number;
  private cachedHead: number;

  /** Allocate a new ring. `startAt` moves both counters (tests of 32-bit wrap). */
  static create(capacity: number, recordBytes: number, startAt = 0): SpscRing {
    if (
      !Number.isInteger(capacity) ||
      capacity < 2 ||
      capacity > 1 << 30 ||
      (capacity & (capacity - 1)) !== 0
    ) {
      invalidArgument('capacity', capacity, 'a power of two from 2 to 2^30');
    }
    if (
      !Number.isInteger(recordBytes) ||
      recordBytes < 8 ||
      recordBytes % 8 !== 0 ||
      recordBytes > 4096
    ) {
      invalidArgument('recordBytes', recordBytes, 'a multiple of 8 from 8 to 4096');
    }
    const buffer = new SharedArrayBuffer(HEADER_BYTES + capacity * recordBytes);
    const ctl = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    ctl[MAGIC] = MAGIC_VALUE;
    ctl[CAPACITY] = capacity;
    ctl[RECORD_BYTES] = recordBytes;
    ctl[HEAD] = startAt | 0;
    ctl[TAIL] = startAt | 0;
    return new SpscRing(buffer);
  }

  /** Attach to a ring created elsewhere (the other thread's side). */
  static attach(buffer: SharedArrayBuffer): SpscRing {
    return new SpscRing(buffer);
  }

  private constructor(buffer: SharedArrayBuffer) {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < HEADER_BYTES) {
      throw new QilinError(
        ErrorCodes.RING_LAYOUT,
        'ring buffer must be a SharedArrayBuffer made by SpscRing.create',
      );
    }
    const ctl = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    const capacity = Atomics.load(ctl, CAPACITY);
    const recordBytes = Atomics.load(ctl, RECORD_BYTES);
    if (
      Atomics.load(ctl, MAGIC) !== MAGIC_VALUE ||
      buffer.byteLength !== HEADER_BYTES + capacity * recordBytes
    ) {
      throw new QilinError(
        ErrorCodes.RING_LAYOUT,
        `ring buffer of ${buffer.byteLength} bytes has no valid ring header`,
      );
    }
    this.buffer = buffer;
    this.ctl = ctl;
    this.capacity = capacity;
    this.recordBytes = recordBytes;
    this.recordWords = recordBytes / 8;
    this.mask = capacity - 1;
    this.f64 = new Float64Array(buffer, HEADER_BYTES);
    this.u32 = new Uint32Array(buffer, HEADER_BYTES);
    this.localHead = Atomics.load(ctl, HEAD);
    this.cachedTail = Atomics.load(ctl, TAIL);
    this.localTail = this.cachedTail;
    this.cachedHead = this.localHead;
  }

  // ───────────────────────────── producer side ─────────────────────────────

  /**
   * Word offset (into `f64`) of the next free slot, or -1 when the ring is
   * full. The slot becomes visible to the consumer only after `commit()` and
   * `flush()` (or `publish()`). Calling `claim()` again without `commit()`
   * returns the same slot.
   */
  claim(): number {
    const next = (this.localHead + this.pending) | 0;
    if ((next - this.cachedTail) >>> 0 >= this.capacity) {
      this.cachedTail = Atomics.load(this.ctl, TAIL);
      if ((next - this.cachedTail) >>> 0 >= this.capacity) return -1;
    }
    return (next & this.mask) * this.recordWords;
  }

  /** Mark the claimed slot written; it is published by the next `flush()`. */
  commit(): void {
    this.pending++;
  }

  /** Make every committed record visible and wake the consumer if it sleeps. */
  flush(): void {
    if (this.pending === 0) return;
    this.localHead = (this.localHead + this.pending) | 0;
    this.pending = 0;
    Atomics.store(this.ctl, HEAD, this.localHead);
    noteHighWater(this.ctl, (this.localHead - this.cachedTail) >>> 0);
    wakeParkedConsumer(this.ctl);
  }

  /** `commit()` + `flush()`. */
  publish(): void {
    this.pending++;
    this.flush();
  }

  /** Count a record dropped by the producer's full-ring policy. */
  countDropped(): void {
    Atomics.add(this.ctl, DROPPED, 1);
  }

  /**
   * Block the calling thread until there is room or `timeoutMs` passes.
   * Only for worker threads (it blocks the event loop). True when room.
   */
  waitForSpace(timeoutMs: number): boolean {
    for (;;) {
      if (this.claim() !== -1) return true;
      if (!parkProducer(this.ctl, this.cachedTail, timeoutMs)) return this.claim() !== -1;
    }
  }

  // ───────────────────────────── consumer side ─────────────────────────────

  /** Word offset of the oldest unconsumed record, or -1 when empty. */
  peek(): number {
    if (this.localTail === this.cachedHead) {
      this.cachedHead = Atomics.load(this.ctl, HEAD);
      if (this.localTail === this.cachedHead) return -1;
    }
    return (this.localTail & this.mask) * this.recordWords;
  }

  /**
   * Release the record `peek()` returned; its slot may be reused. A producer
   * parked on a full ring is woken only once the ring is down to half full:
   * waking it for every freed slot would turn a full ring into a futex
   * ping-pong of one record per wake-up.
   */
  release(): void {
    this.localTail = (this.localTail + 1) | 0;
    Atomics.store(this.ctl, TAIL, this.localTail);
    wakeParkedProducer(this.ctl, (this.cachedHead - this.localTail) >>> 0, this.capacity);
  }

  /**
   * Park until the producer publishes or `timeoutMs` passes. Returns `null`
   * when records are already there (no wait needed), else a promise that
   * settles on wake-up or timeout. Never spins. Note: a pending
   * `Atomics.waitAsync` holds no event-loop reference; the calling thread must
   * keep itself alive (a worker does, through its message port listener).
   */
  waitForData(timeoutMs: number): Promise<unknown> | null {
    if (this.peek() !== -1) return null;
    return parkConsumer(this.ctl, this.localTail, timeoutMs);
  }

  // ───────────────────────────── either side ─────────────────────────────

  /** Wake a parked consumer without publishing (it re-checks, e.g. for stop). */
  wakeConsumer(): void {
    wakeConsumer(this.ctl);
  }

  /** Records currently held (a snapshot; exact only on a quiet ring). */
  size(): number {
    return (Atomics.load(this.ctl, HEAD) - Atomics.load(this.ctl, TAIL)) >>> 0;
  }

  stats(): SpscRingStats {
    return {
      capacity: this.capacity,
      size: this.size(),
      dropped: Atomics.load(this.ctl, DROPPED),
      highWater: Atomics.load(this.ctl, HIGH_WATER),
    };
  }

  /**
   * Skip the oldest record. Only for the supervisor while no consumer thread
   * is attached (a record that killed its worker twice is quarantined).
   */
  skipOldest(): boolean {
    const head = Atomics.load(this.ctl, HEAD);
    const tail = Atomics.load(this.ctl, TAIL);
    if (head === tail) return false;
    Atomics.store(this.ctl, TAIL, (tail + 1) | 0);
    return true;
  }

  /** Shared tail counter (the supervisor uses it to spot a poison record). */
  tailCounter(): number {
    return Atomics.load(this.ctl, TAIL);
  }
}
