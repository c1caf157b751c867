/**
 * AckQueue: the messages a source holds until the store has their rows
 * (docs/adr/0005-exactly-once-ticks.md). A FIFO of items, each tagged with
 * a wrapping 32-bit count that never decreases along the queue (the store
 * mark right after the tick was written); `release(mark, fn)` hands every
 * item whose tag is at or below `mark`, oldest first, each once.
 *
 * Tags compare by their wrapping difference (`(mark − tag) | 0 >= 0`), so
 * the count may wrap as long as fewer than 2^31 items are between the
 * oldest tag and the mark. Preallocated; it doubles (allocates) only when an
 * item does not fit, which the consumer's `max_ack_pending` makes rare.
 */
export class AckQueue<T> {
  private items: Array<T | undefined>;
  private tags: Int32Array;
  /** When each item was queued (the caller's clock, e.g. a coarse ms clock). */
  private times: Float64Array;
  private head = 0;
  private size = 0;
  private grown = 0;

  constructor(capacity: number) {
    const n = Math.max(16, capacity | 0);
    this.items = new Array<T | undefined>(n).fill(undefined);
    this.tags = new Int32Array(n);
    this.times = new Float64Array(n);
  }

  /** Items waiting. */
  get length(): number {
    return this.size;
  }

  /** Times the queue had to grow (for logs: its capacity was too small). */
  get growths(): number {
    return this.grown;
  }

  /** Queue `item` with `tag` (not below the last one pushed), noted at time `now`. */
  push(item: T, tag: number, now = 0): void {
    if (this.size === this.items.length) this.grow();
    const at = (this.head + this.size) % this.items.length;
    this.items[at] = item;
    this.tags[at] = tag;
    this.times[at] = now;
    this.size++;
  }

  /** Pop every item with a tag at or below `mark`, oldest first, into `fn`; how many. */
  release(mark: number, fn: (item: T) => void): number {
    let n = 0;
    const cap = this.items.length;
    while (this.size > 0 && ((mark - this.tags[this.head]!) | 0) >= 0) {
      const item = this.items[this.head] as T;
      this.items[this.head] = undefined;
      this.head = (this.head + 1) % cap;
      this.size--;
      n++;
      fn(item);
    }
    return n;
  }

  /** When the oldest item was queued (NaN when empty). */
  oldestAt(): number {
    return this.size === 0 ? Number.NaN : this.times[this.head]!;
  }

  /** Call `fn` on every waiting item, oldest first (they stay queued). */
  forEach(fn: (item: T) => void): void {
    const cap = this.items.length;
    for (let i = 0; i < this.size; i++) fn(this.items[(this.head + i) % cap] as T);
  }

  /** Remove every item, oldest first, into `fn` (close: what stays unacknowledged). */
  drain(fn: (item: T) => void): number {
    const n = this.size;
    const cap = this.items.length;
    while (this.size > 0) {
      const item = this.items[this.head] as T;
      this.items[this.head] = undefined;
      this.head = (this.head + 1) % cap;
      this.size--;
      fn(item);
    }
    return n;
  }

  private grow(): void {
    const cap = this.items.length;
    const items = new Array<T | undefined>(cap * 2).fill(undefined);
    const tags = new Int32Array(cap * 2);
    const times = new Float64Array(cap * 2);
    for (let i = 0; i < this.size; i++) {
      const from = (this.head + i) % cap;
      items[i] = this.items[from];
      tags[i] = this.tags[from]!;
      times[i] = this.times[from]!;
    }
    this.items = items;
    this.tags = tags;
    this.times = times;
    this.head = 0;
    this.grown++;
  }
}
