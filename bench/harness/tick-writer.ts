import { invalidArgument } from '../../kernel/errors.js';
import { symbolName } from './frame-fields.js';

/**
 * The bench market's trades, as PROTOCOL.md JSON text:
 * `{"type":"trade","sym":"B0042","ts":<µs>,"px":…,"qty":…,"side":"buy","seq":…}`.
 * Each symbol walks its price with a drift that flips about every 200
 * trades (so a momentum strategy sees rising and falling stretches); `seq`
 * comes last so receivers find it with one `lastIndexOf`. Reproducible from
 * the seed (xorshift32); one string allocated per trade.
 */
export class TickWriter {
  readonly symbols: number;
  readonly names: readonly string[];
  private readonly px: Float64Array;
  private readonly drift: Int8Array;
  private rng: number;

  constructor(symbols: number, seed = 0x9e3779b9) {
    if (!Number.isInteger(symbols) || symbols < 1 || symbols > 10_000) {
      invalidArgument('symbols', symbols, 'an integer from 1 to 10000');
    }
    if (!Number.isInteger(seed) || (seed | 0) === 0) {
      invalidArgument('seed', seed, 'a non-zero 32-bit integer');
    }
    this.symbols = symbols;
    this.names = Array.from({ length: symbols }, (_, i) => symbolName(i));
    this.px = new Float64Array(symbols);
    this.drift = new Int8Array(symbols);
    this.rng = seed | 0;
    for (let i = 0; i < symbols; i++) {
      this.px[i] = 50 + 150 * this.random();
      this.drift[i] = this.random() < 0.5 ? 1 : -1;
    }
  }

  /** Subjects `<prefix>.<sym>`, by symbol index. */
  subjects(prefix: string): string[] {
    return this.names.map((n) => `${prefix}.${n}`);
  }

  /** xorshift32 in [0, 1). */
  private random(): number {
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x;
    return (x >>> 0) / 4294967296;
  }

  /** The next trade of symbol `i` with this `seq`, stamped `tsUs` (integer µs). */
  trade(i: number, seq: number, tsUs: number): string {
    if (this.random() < 0.005) this.drift[i] = -this.drift[i]!;
    const d = this.drift[i]!;
    const px = this.px[i]! * (1 + d * 0.0004 + (this.random() - 0.5) * 0.0008);
    this.px[i] = px;
    const qty = 1 + Math.floor(this.random() * 10);
    return `{"type":"trade","sym":"${this.names[i]!}","ts":${Math.floor(tsUs)},"px":${Math.round(px * 1e4) / 1e4},"qty":${qty},"side":"${d > 0 ? 'buy' : 'sell'}","seq":${seq}}`;
  }
}
