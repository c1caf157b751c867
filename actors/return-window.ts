/**
 * The last `window` log returns of one symbol's observed price, for the
 * Value-at-Risk rules (actors/risk-rules.ts), plus the last price and the
 * last prediction interval the risk actor saw for the symbol.
 *
 * Storage is a power-of-two ring (bitmask wrap) of at least `window` slots;
 * only the newest `window` returns are read. Allocation-free after
 * construction.
 *
 * ```
 *  window 5, slots 8 (mask 7), written = 11 returns r0…r10
 *  slot   0    1    2    3    4    5    6    7
 *        [r8 | r9 |r10 | r3 | r4 | r5 | r6 | r7 ]
 *                    ▲ newest: slot (written − 1) & 7 = 2
 *  at(0) = r10, at(1) = r9, … at(4) = r6; count = min(written, window) = 5
 * ```
 */
export class ReturnWindow {
  /** Returns kept (the VaR window). */
  readonly window: number;
  /** Last accepted price (NaN before the first). */
  lastPx = Number.NaN;
  /** Time of the last accepted price, µs. */
  lastUs = Number.NaN;
  /** Last prediction interval of the symbol (NaN: the model gives none). */
  lower = Number.NaN;
  upper = Number.NaN;
  private readonly ring: Float64Array;
  private readonly mask: number;
  private written = 0;

  constructor(window: number) {
    this.window = window;
    let slots = 1;
    while (slots < window) slots *= 2;
    this.ring = new Float64Array(slots);
    this.mask = slots - 1;
  }

  /**
   * One price: appends ln(px / lastPx) once a previous price is known.
   * False (nothing changes) for a price that is not finite and > 0.
   */
  observe(px: number, nowUs: number): boolean {
    if (!(px > 0 && px < Number.POSITIVE_INFINITY)) return false;
    const prev = this.lastPx;
    if (prev === prev) {
      this.ring[this.written & this.mask] = Math.log(px / prev);
      this.written++;
    }
    this.lastPx = px;
    this.lastUs = nowUs;
    return true;
  }

  /** Returns held (≤ window). */
  get count(): number {
    return this.written < this.window ? this.written : this.window;
  }

  /** The i-th newest return (0: the newest); i < count. */
  at(i: number): number {
    return this.ring[(this.written - 1 - i) & this.mask]!;
  }
}
