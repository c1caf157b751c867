/**
 * A byte-bounded history of the frames the WebSocket server published, for
 * subscribers that reconnect with their last offsets (docs/adr/0007).
 *
 * ```
 *  arena (capacityBytes, allocated once)
 *  ┌──────────────┬────────┬──────┬─────────────────────────┬───────────┐
 *  │ r5 │ r6 │ r7 │  free  │ r1   │ r2 │ r3 │ r4           │ tail waste│
 *  └──────────────┴────────┴──────┴─────────────────────────┴───────────┘
 *  0          head ┘        └ oldest record (index[tail])
 *
 *  index (a FIFO ring of `maxRecords` slots, power of two, bitmask-wrapped):
 *    slot: pos │ len │ topicId │ off │ at (ms)      oldest = tail, newest = tail + count − 1
 * ```
 * A record never wraps: one that does not fit before the end of the arena
 * is written at 0 and the tail of the arena is skipped. Appending evicts,
 * oldest first, every record the new one would overwrite (and, on a wrap,
 * every record in the skipped tail), then any record over the index's slot
 * count: both the bytes and the index are bounded whatever the topic count.
 * Each eviction is reported through `onEvict(topicId, off)`, so the server
 * knows the oldest offset it still holds per topic. Nothing is allocated per
 * append.
 */
export class FrameHistory {
  /** Bytes of the arena; 0 when history is disabled. */
  readonly capacityBytes: number;
  /** Slots of the index (power of two; 0 when disabled). */
  readonly maxRecords: number;
  private readonly arena: Buffer;
  private readonly mask: number;
  private readonly pos: Uint32Array;
  private readonly len: Uint32Array;
  private readonly topicId: Uint32Array;
  private readonly off: Float64Array;
  private readonly at: Float64Array;
  /** Index slot of the oldest record (unmasked counter). */
  private tail = 0;
  private count = 0;
  /** Arena position of the next write. */
  private head = 0;
  /** Bytes held by live records. */
  private used = 0;
  /**
   * Wall-clock ms stamped on appended records, set by {@link tick} (the owner's
   * timer): a clock read per append would box a number per frame.
   */
  private now = Date.now();

  /**
   * @param capacityBytes arena size; 0 disables history (every append is refused).
   * @param onEvict told of each record dropped, oldest first.
   * @param bytesPerSlot one index slot per this many arena bytes (frames are
   *   typically a few hundred bytes; smaller ones evict by slot count first).
   */
  constructor(
    capacityBytes: number,
    private readonly onEvict: (topicId: number, off: number) => void,
    bytesPerSlot = 256,
  ) {
    this.capacityBytes = capacityBytes;
    let slots = 0;
    if (capacityBytes > 0) {
      slots = 1024;
      const want = Math.ceil(capacityBytes / bytesPerSlot);
      while (slots < want && slots < 1 << 24) slots *= 2;
    }
    this.maxRecords = slots;
    this.mask = slots - 1;
    this.arena = Buffer.allocUnsafe(capacityBytes);
    this.pos = new Uint32Array(slots);
    this.len = new Uint32Array(slots);
    this.topicId = new Uint32Array(slots);
    this.off = new Float64Array(slots);
    this.at = new Float64Array(slots);
  }

  /** Set the time stamped on the records appended from now on (wall-clock ms). */
  tick(now: number): void {
    this.now = now;
  }

  /** Records held. */
  get records(): number {
    return this.count;
  }

  /** Bytes of the frames held. */
  get bytes(): number {
    return this.used;
  }

  /** Wall-clock ms the oldest record was appended at; undefined when empty. */
  get oldestAt(): number | undefined {
    return this.count === 0 ? undefined : this.at[this.tail & this.mask];
  }

  /**
   * Keep `frame[0, length)` as offset `off` of topic `topicId`. False (and
   * nothing kept) when history is disabled or the frame is bigger than the
   * arena; the caller then knows that offset is not held.
   */
  append(topicId: number, off: number, frame: Uint8Array, length: number): boolean {
    if (length > this.capacityBytes || length === 0) return false;
    let p = this.head;
    const wrap = p + length > this.capacityBytes;
    if (wrap) p = 0;
    while (this.count > 0) {
      const s = this.tail & this.mask;
      const sp = this.pos[s]!;
      const overlaps = sp < p + length && sp + this.len[s]! > p;
      const skipped = wrap && sp >= this.head;
      if (!overlaps && !skipped && this.count < this.maxRecords) break;
      this.evictOldest();
    }
    // `frame` is at least `length` long; copy without a subarray view.
    if (frame.length === length) this.arena.set(frame, p);
    else for (let i = 0; i < length; i++) this.arena[p + i] = frame[i]!;
    const s = (this.tail + this.count) & this.mask;
    this.pos[s] = p;
    this.len[s] = length;
    this.topicId[s] = topicId;
    this.off[s] = off;
    this.at[s] = this.now;
    this.count++;
    this.used += length;
    this.head = p + length;
    return true;
  }

  /**
   * Visit every record held, oldest first (publish order): `fn(topicId, off,
   * length, i)`; `frameAt(i)` gives the bytes of visit `i`. Stops early when
   * `fn` returns false.
   */
  scan(fn: (topicId: number, off: number, length: number, i: number) => boolean | void): void {
    for (let i = 0; i < this.count; i++) {
      const s = (this.tail + i) & this.mask;
      if (fn(this.topicId[s]!, this.off[s]!, this.len[s]!, i) === false) return;
    }
  }

  /** The bytes of the `i`-th record from the oldest (a view: send or copy it before the next append). */
  frameAt(i: number): Buffer {
    const s = (this.tail + i) & this.mask;
    const p = this.pos[s]!;
    return this.arena.subarray(p, p + this.len[s]!);
  }

  private evictOldest(): void {
    const s = this.tail & this.mask;
    this.used -= this.len[s]!;
    this.tail++;
    this.count--;
    if (this.count === 0) {
      this.tail = 0;
      this.head = 0;
    }
    this.onEvict(this.topicId[s]!, this.off[s]!);
  }
}
