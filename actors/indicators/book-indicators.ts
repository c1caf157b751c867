/**
 * Top-of-book indicators, each of the latest quote only (ready after the
 * first quote, NaN before).
 */

/**
 * Order-book imbalance `(bidQty − askQty) / (bidQty + askQty)`, in [−1, 1];
 * NaN when both quantities are 0.
 */
export class Imbalance {
  value = Number.NaN;
  ready = false;

  update(bidQty: number, askQty: number): void {
    const total = bidQty + askQty;
    this.value = total !== 0 ? (bidQty - askQty) / total : Number.NaN;
    this.ready = true;
  }

  reset(): void {
    this.value = Number.NaN;
    this.ready = false;
  }
}

/** Quoted spread `ask − bid`. */
export class Spread {
  value = Number.NaN;
  ready = false;

  update(bid: number, ask: number): void {
    this.value = ask - bid;
    this.ready = true;
  }

  reset(): void {
    this.value = Number.NaN;
    this.ready = false;
  }
}

/** Relative spread `(ask − bid) / mid`, mid = (bid + ask) / 2; NaN when mid is 0. */
export class RelSpread {
  value = Number.NaN;
  ready = false;

  update(bid: number, ask: number): void {
    const mid = (bid + ask) / 2;
    this.value = mid !== 0 ? (ask - bid) / mid : Number.NaN;
    this.ready = true;
  }

  reset(): void {
    this.value = Number.NaN;
    this.ready = false;
  }
}
