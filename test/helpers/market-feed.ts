import type { NatsConnection } from '@nats-io/transport-node';

/** Fields a test may override on one published tick. */
export interface TickOverrides {
  seq?: number;
  ts?: number;
}

/**
 * Publishes protocol ticks on `md.<venue>.<sym>` for tests: per-symbol
 * sequence numbers and exchange times (10 ms apart, from `baseTs`), with
 * overrides for the faults a test injects (a sequence reset, a duplicate, a
 * crossed quote). Remembers the last seq and ts of every symbol.
 */
export class MarketFeed {
  readonly seqs = new Map<string, number>();
  readonly lastTs = new Map<string, number>();
  private step = 0;

  constructor(
    private readonly nc: NatsConnection,
    readonly venue: string,
    readonly baseTs = Date.now() * 1000,
  ) {}

  /** The next (seq, ts) of `sym`, or the overrides; both become the symbol's last. */
  private next(sym: string, o: TickOverrides): { seq: number; ts: number } {
    const seq = o.seq ?? (this.seqs.get(sym) ?? 0) + 1;
    const ts = o.ts ?? this.baseTs + ++this.step * 10_000;
    this.seqs.set(sym, seq);
    this.lastTs.set(sym, Math.max(ts, this.lastTs.get(sym) ?? ts));
    return { seq, ts };
  }

  trade(sym: string, px: number, o: TickOverrides = {}): number {
    const { seq, ts } = this.next(sym, o);
    this.nc.publish(
      `md.${this.venue}.${sym}`,
      JSON.stringify({ type: 'trade', sym, ts, px, qty: 1, side: 'buy', seq }),
    );
    return seq;
  }

  quote(sym: string, bid: number, ask: number, o: TickOverrides = {}): number {
    const { seq, ts } = this.next(sym, o);
    this.nc.publish(
      `md.${this.venue}.${sym}`,
      JSON.stringify({ type: 'quote', sym, ts, bid, bidQty: 2, ask, askQty: 3, seq }),
    );
    return seq;
  }

  /** `n` trades, each followed by a quote around it, the price × (1 ± 0.2 %) per trade. Returns the last price. */
  trend(sym: string, n: number, dir: 1 | -1, start = 100): number {
    let px = start;
    for (let i = 0; i < n; i++) {
      px *= 1 + dir * 0.002;
      this.trade(sym, px);
      this.quote(sym, px - 0.01, px + 0.01);
    }
    return px;
  }
}
