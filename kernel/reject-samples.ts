import type { RejectReason } from './market-source.js';

/** One refused market message, as `/rejects` shows it. */
export interface RejectSample {
  /** When, ms since the epoch. */
  at: number;
  reason: RejectReason;
  subject: string;
  detail: string;
  /** The first 256 bytes of the message, as text. */
  raw: string;
}

/** The last `capacity` refused messages (workers sample them; counters count them all). */
export class RejectSamples {
  private readonly ring: Array<RejectSample | undefined>;
  private next = 0;

  constructor(readonly capacity = 200) {
    this.ring = new Array<RejectSample | undefined>(capacity).fill(undefined);
  }

  add(sample: RejectSample): void {
    this.ring[this.next % this.capacity] = sample;
    this.next++;
  }

  /** Oldest first. */
  list(): RejectSample[] {
    const n = Math.min(this.next, this.capacity);
    const out: RejectSample[] = [];
    for (let i = this.next - n; i < this.next; i++) out.push(this.ring[i % this.capacity]!);
    return out;
  }
}
