/**
 * A synthetic market straight into chunk columns: no JSON, no decoder, a
 * seeded random walk per symbol with trades and quotes interleaved. For the
 * replay benchmark (the source must not be what it measures) and the
 * determinism tests; `qilin replay --from sim` uses the kernel's simulator
 * and tick decoder instead (backtest/sources/).
 */
import { invalidArgument } from '../kernel/errors.js';
import { MarketKind, Side } from '../kernel/market-record.js';
import type { TickChunk, TickSource } from './tick-chunk.js';

export interface SyntheticOptions {
  symbols: number;
  ticks: number;
  seed: number;
  /** µs of exchange time between two ticks (all symbols together). */
  stepUs: number;
  /** Share of ticks that are trades (the rest are quotes). */
  tradeShare?: number;
  /** First tick time, µs since epoch. */
  t0Us?: number;
}

export class SyntheticSource implements TickSource {
  readonly description: string;
  readonly symbols: string[] = [];
  readonly total: number;
  read = 0;
  readonly rejected = 0;
  private readonly px: Float64Array;
  private readonly seqs: Float64Array;
  private state: number;
  private ts: number;
  private readonly tradeShare: number;

  constructor(private readonly o: SyntheticOptions) {
    if (!Number.isInteger(o.symbols) || o.symbols < 1) {
      invalidArgument('symbols', o.symbols, 'an integer ≥ 1');
    }
    if (!Number.isInteger(o.ticks) || o.ticks < 0)
      invalidArgument('ticks', o.ticks, 'an integer ≥ 0');
    if (!(o.stepUs > 0)) invalidArgument('stepUs', o.stepUs, 'a number > 0');
    this.description = `synthetic market: ${o.symbols} symbols, ${o.ticks} ticks, seed ${o.seed}`;
    this.total = o.ticks;
    this.px = new Float64Array(o.symbols);
    this.seqs = new Float64Array(o.symbols);
    for (let i = 0; i < o.symbols; i++) {
      this.symbols.push(`S${String(i).padStart(4, '0')}`);
      this.px[i] = 50 + ((i * 37) % 150);
    }
    this.state = (o.seed >>> 0) ^ 0x9e3779b9;
    this.ts = o.t0Us ?? 1_767_225_600_000_000;
    this.tradeShare = o.tradeShare ?? 0.5;
  }

  /** xorshift32 in [0, 1). */
  private rnd(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state / 4294967296;
  }

  next(c: TickChunk): Promise<number> {
    const n = Math.min(c.capacity, this.total - this.read);
    const symbols = this.o.symbols;
    for (let i = 0; i < n; i++) {
      const s = (this.rnd() * symbols) | 0;
      this.ts += this.o.stepUs;
      const seq = ++this.seqs[s]!;
      c.symId[i] = s;
      c.seq[i] = seq;
      c.ts[i] = this.ts;
      c.recv[i] = this.ts;
      const r = this.rnd();
      if (r < this.tradeShare) {
        const p = (this.px[s] = Math.max(0.01, this.px[s]! * (1 + (this.rnd() - 0.5) * 0.004)));
        c.kind[i] = MarketKind.TRADE;
        c.side[i] = r < this.tradeShare / 2 ? Side.BUY : Side.SELL;
        c.px[i] = Math.round(p * 100) / 100;
        c.qty[i] = 1 + ((this.rnd() * 100) | 0);
        c.bid[i] = 0;
        c.bidQty[i] = 0;
        c.ask[i] = 0;
        c.askQty[i] = 0;
      } else {
        const p = this.px[s]!;
        c.kind[i] = MarketKind.QUOTE;
        c.side[i] = 0;
        c.px[i] = 0;
        c.qty[i] = 0;
        c.bid[i] = Math.round((p - 0.01) * 100) / 100;
        c.ask[i] = Math.round((p + 0.01) * 100) / 100;
        c.bidQty[i] = 1 + ((this.rnd() * 500) | 0);
        c.askQty[i] = 1 + ((this.rnd() * 500) | 0);
      }
    }
    c.length = n;
    this.read += n;
    return Promise.resolve(n);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
