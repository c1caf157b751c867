import { hasCode, ErrorCodes } from './errors.js';
import type { FrameRing } from './frame-ring.js';
import { newMarketEvent, type MarketEvent } from './market-record.js';
import type { MarketIngest, MarketSource } from './market-source.js';
import {
  FrameType,
  MAX_NAME_BYTES,
  nameFrameId,
  nameFrameText,
  readTickFrame,
  writeNameFrame,
  writeTickFrame,
} from './shard-frames.js';

/**
 * The in-process market feed of a shard: the main thread writes ticks into
 * the shard's in-ring, the worker reads them as one more MarketSource, so
 * ticks fed by tests or by a replay take exactly the path NATS ticks take
 * (ShardHost.intern / accept). Names travel in-band (SYMBOL / VENUE frames
 * before the first TICK that uses them), so they cannot race the ticks.
 *
 * ```
 *  main: RingFeedWriter.submit(ev, symbol, venue) ──► in-ring ──► worker: RingFeedSource ──► ingest
 * ```
 */
export class RingFeedWriter {
  private readonly symbolIds = new Map<string, number>();
  private readonly venueIds = new Map<string, number>();

  constructor(readonly ring: FrameRing) {}

  /** Every name announced so far, for a restarted reader (`RingFeedSource` tables). */
  tables(): FeedTables {
    return { symbols: [...this.symbolIds.keys()], venues: [...this.venueIds.keys()] };
  }

  /**
   * Queue a tick (visible at the ring's next flush). False when the ring is
   * full: the tick is not queued (the caller counts it). Never blocks.
   */
  submit(ev: MarketEvent, symbol: string, venue: string): boolean {
    const sym = this.idOf(this.symbolIds, FrameType.SYMBOL, symbol);
    if (sym === -1) return false;
    const ven = this.idOf(this.venueIds, FrameType.VENUE, venue);
    if (ven === -1) return false;
    const keep = ev.symId;
    ev.symId = sym;
    const ok = writeTickFrame(this.ring, ev, ven);
    ev.symId = keep;
    return ok;
  }

  private idOf(
    ids: Map<string, number>,
    type: typeof FrameType.SYMBOL | typeof FrameType.VENUE,
    name: string,
  ): number {
    const id = ids.get(name);
    if (id !== undefined) return id;
    const next = ids.size;
    if (name.length > MAX_NAME_BYTES || !writeNameFrame(this.ring, type, next, name)) return -1;
    ids.set(name, next);
    return next;
  }
}

/** Names by id (index), as a restarted reader needs them. */
export interface FeedTables {
  symbols: string[];
  venues: string[];
}

/** Frames handled before yielding to the event loop. */
const BATCH = 1024;

/** The worker side of a RingFeedWriter: a MarketSource over the in-ring. */
export class RingFeedSource implements MarketSource {
  readonly redelivers = false;
  private readonly names: string[];
  private readonly venues: string[];
  private readonly ev = newMarketEvent();
  private stopping = false;
  private loop: Promise<void> | undefined;

  /** `tables`: names announced before this reader attached (a restarted worker). */
  constructor(
    private readonly ring: FrameRing,
    tables: FeedTables = { symbols: [], venues: [] },
  ) {
    this.names = tables.symbols.slice();
    this.venues = tables.venues.slice();
  }

  start(ingest: MarketIngest): Promise<void> {
    this.loop ??= this.run(ingest);
    return Promise.resolve();
  }

  /** Handle what is queued, then stop. */
  async close(): Promise<void> {
    this.stopping = true;
    this.ring.wakeConsumer();
    await this.loop;
  }

  private async run(ingest: MarketIngest): Promise<void> {
    const ring = this.ring;
    for (;;) {
      let n = 0;
      let at: number;
      while (n < BATCH && (at = ring.peek()) !== -1) {
        this.handle(ingest, at);
        // Outputs out before the input is released: a worker that dies on a
        // frame gets that frame again, and only that one (poison detection).
        ingest.flush?.();
        ring.release();
        n++;
      }
      if (this.stopping && ring.peek() === -1) return;
      if (n === BATCH) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      // Bounded: Atomics.waitAsync can miss a notify on Node 20 (ring-control.ts
      // doorbell); a missed wake-up then costs at most 100 ms, never a stall.
      const wait = ring.waitForData(this.stopping ? 10 : 100);
      if (wait !== null) await wait;
    }
  }

  private handle(ingest: MarketIngest, at: number): void {
    const ring = this.ring;
    switch (ring.type()) {
      case FrameType.SYMBOL:
        this.names[nameFrameId(ring, at)] = nameFrameText(ring, at);
        return;
      case FrameType.VENUE:
        this.venues[nameFrameId(ring, at)] = nameFrameText(ring, at);
        return;
      case FrameType.TICK: {
        const ev = this.ev;
        const venue = this.venues[readTickFrame(ring, at, ev)] ?? '';
        const name = this.names[ev.symId] ?? '';
        try {
          ev.symId = ingest.intern(name);
        } catch (err) {
          if (!hasCode(err, ErrorCodes.SYMBOL_TABLE_FULL)) throw err;
          ingest.reject('symbol_table_full', `md.${venue}.${name}`, (err as Error).message, EMPTY);
          return;
        }
        ingest.accept(ev, venue);
        return;
      }
    }
  }
}

const EMPTY = new Uint8Array(0);
