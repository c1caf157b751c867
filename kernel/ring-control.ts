/**
 * The control words and the wake-up protocol shared by the two SPSC rings
 * (`SpscRing`: fixed records; `FrameRing`: variable-size frames). Both keep
 * their counters and flags in the same 256-byte header at the start of the
 * SharedArrayBuffer, in Int32 words:
 *
 * ```
 *  word  0  head              published (records or bytes), written only by the producer
 *  word 16  tail              consumed, written only by the consumer      (own 64-byte line)
 *  word 32  consumerWaiting   1 while the consumer is parked on head      (own line)
 *  word 40  producerWaiting   1 while the producer is parked on tail
 *  word 48  magic, 49 capacity, 50 record bytes (0: frame ring), 51 dropped, 52 high water
 *  word 56  durable           consumer → producer acknowledgement mark, written only by the
 *                             consumer (the store ring: TICK frames stored, docs/adr/0005)
 *  word 57  produced          the producer's count of the same things, published at flush,
 *                             so a restarted producer continues the numbering
 * ```
 * Wake-ups are batched: a consumer that finds the ring empty raises
 * `consumerWaiting` and parks in `Atomics.waitAsync` on `head`; a producer
 * notifies only when that flag is up, and clears it, so a burst costs one
 * wake-up. `Atomics.waitAsync` compares the value atomically with registering
 * the waiter, so a publish between the check and the park turns into an
 * immediate `not-equal`: no lost wake-ups, no spinning. The same protocol on
 * `tail` lets a producer that is a worker thread block for space.
 */
export const RingWord = {
  HEAD: 0,
  TAIL: 16,
  CONSUMER_WAITING: 32,
  PRODUCER_WAITING: 40,
  MAGIC: 48,
  CAPACITY: 49,
  RECORD_BYTES: 50,
  DROPPED: 51,
  HIGH_WATER: 52,
  DURABLE: 56,
  PRODUCED: 57,
} as const;

export const RING_HEADER_BYTES = 256;

/** Producer: `head` was just stored; wake the consumer if it is parked. */
export function wakeParkedConsumer(ctl: Int32Array): void {
  if (Atomics.load(ctl, RingWord.CONSUMER_WAITING) === 1) {
    Atomics.store(ctl, RingWord.CONSUMER_WAITING, 0);
    Atomics.notify(ctl, RingWord.HEAD);
  }
}

/** Either side: wake a parked consumer without publishing (it re-checks, e.g. for stop). */
export function wakeConsumer(ctl: Int32Array): void {
  Atomics.store(ctl, RingWord.CONSUMER_WAITING, 0);
  Atomics.notify(ctl, RingWord.HEAD);
}

/**
 * Consumer: park until `head` moves away from `seenHead` (the consumer's own
 * tail: it has consumed everything) or `timeoutMs` passes. Null when data is
 * already there; else a promise that settles on wake-up or timeout. A pending
 * `Atomics.waitAsync` holds no event-loop reference: the thread must keep
 * itself alive (a worker does, through its message port).
 */
export function parkConsumer(
  ctl: Int32Array,
  seenHead: number,
  timeoutMs: number,
): Promise<unknown> | null {
  Atomics.store(ctl, RingWord.CONSUMER_WAITING, 1);
  const head = Atomics.load(ctl, RingWord.HEAD);
  if (head !== seenHead) {
    Atomics.store(ctl, RingWord.CONSUMER_WAITING, 0);
    return null;
  }
  const r = Atomics.waitAsync(ctl, RingWord.HEAD, head, timeoutMs);
  if (!r.async) {
    Atomics.store(ctl, RingWord.CONSUMER_WAITING, 0);
    return null;
  }
  return r.value;
}

/**
 * Producer (worker threads only: it blocks the event loop): wait until
 * `tail` moves away from `seenTail` or `timeoutMs` passes. True when it moved.
 */
export function parkProducer(ctl: Int32Array, seenTail: number, timeoutMs: number): boolean {
  Atomics.store(ctl, RingWord.PRODUCER_WAITING, 1);
  const tail = Atomics.load(ctl, RingWord.TAIL);
  if (tail !== seenTail) {
    Atomics.store(ctl, RingWord.PRODUCER_WAITING, 0);
    return true;
  }
  const r = Atomics.wait(ctl, RingWord.TAIL, tail, timeoutMs);
  Atomics.store(ctl, RingWord.PRODUCER_WAITING, 0);
  return r !== 'timed-out';
}

/**
 * Consumer, after storing `tail`: wake a producer parked on a full ring,
 * but only once the ring is down to half full. Waking it for every freed
 * record would turn a full ring into a futex ping-pong of one record per
 * wake-up.
 */
export function wakeParkedProducer(ctl: Int32Array, used: number, capacity: number): void {
  if (Atomics.load(ctl, RingWord.PRODUCER_WAITING) === 1 && used <= capacity >>> 1) {
    Atomics.store(ctl, RingWord.PRODUCER_WAITING, 0);
    Atomics.notify(ctl, RingWord.TAIL);
  }
}

/** Producer: raise the high-water mark (a plain store: only the producer writes it). */
export function noteHighWater(ctl: Int32Array, used: number): void {
  if (used > ctl[RingWord.HIGH_WATER]!) ctl[RingWord.HIGH_WATER] = used;
}

/**
 * A doorbell one consumer thread shares between several rings, so that a
 * burst flushed by several producers at about the same time costs it one
 * wake-up, not one per ring (the main thread drains every shard's out ring).
 *
 * ```
 *  Int32 word 0 = consumer parked (0/1)
 *  producer, after storing its ring's head:  if parked 1 → 0 (compare-exchange): wake()
 *  consumer:  parked = 1; re-check every ring; nothing → sleep until wake()
 * ```
 * A flush that saw `parked = 0` stored its head before the consumer's
 * re-check, which then finds its frames; a flush that saw `parked = 1`
 * wakes it (exactly one producer wins the exchange). The wake-up itself is
 * a message (`wake`, e.g. a MessagePort post), not `Atomics.waitAsync`:
 * measured on Node 20, an async waiter can miss a notify (the promise stayed
 * pending, or timed out, with the value changed and notify called: about
 * one run in five of 90,000 flushes), and a missed wake-up would leave the
 * consumer asleep with every later producer seeing `parked = 0`.
 */
export const DOORBELL_BYTES = 4;

/** Producer: after storing the head, wake the consumer if it sleeps (one producer wins). */
export function ringDoorbell(bell: Int32Array, wake: () => void): void {
  if (Atomics.load(bell, 0) === 1 && Atomics.compareExchange(bell, 0, 1, 0) === 1) wake();
}

/**
 * Consumer: raise the parked flag and re-check the rings. True: nothing to
 * do, sleep until a producer's wake(); false: data is there (flag lowered).
 */
export function parkOnDoorbell(bell: Int32Array, anyData: () => boolean): boolean {
  Atomics.store(bell, 0, 1);
  if (anyData()) {
    Atomics.store(bell, 0, 0);
    return false;
  }
  return true;
}

/**
 * The consumer side of a doorbell as one object: `park` raises the flag and
 * re-checks (null: data is there), else returns a promise that `wake()`
 * resolves (called when a producer's wake message arrives, or to stop).
 */
export class DoorbellSleeper {
  private readonly bell: Int32Array;
  private resolveSleep: () => void = () => undefined;

  constructor(buffer: SharedArrayBuffer) {
    this.bell = new Int32Array(buffer, 0, 1);
  }

  park(anyData: () => boolean): Promise<void> | null {
    if (!parkOnDoorbell(this.bell, anyData)) return null;
    return new Promise<void>((resolve) => (this.resolveSleep = resolve));
  }

  /** End the current sleep, if any (a stale call is harmless: the sleeper re-checks). */
  wake(): void {
    this.resolveSleep();
  }
}
