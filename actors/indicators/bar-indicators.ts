import { checkPeriod } from './common.js';

/**
 * Average true range over bars, Wilder's smoothing.
 *
 * True range `TR = max(h − l, |h − prevClose|, |l − prevClose|)`; the first
 * bar has no previous close, so its TR is `h − l`. The first ATR is the mean
 * of the first `period` TRs, then `ATR ← (ATR·(n−1) + TR) / n`.
 *
 * Warm-up: NaN and not ready until `period` bars. `tr` is the last bar's true range.
 */
export class ATR {
  readonly period: number;
  value = Number.NaN;
  ready = false;
  tr = Number.NaN;
  private prevClose = Number.NaN;
  private count = 0;
  private sum = 0;

  constructor(period: number) {
    this.period = checkPeriod('period', period);
  }

  update(high: number, low: number, close: number): void {
    let tr = high - low;
    const pc = this.prevClose;
    if (pc === pc) {
      const a = Math.abs(high - pc);
      const b = Math.abs(low - pc);
      if (a > tr) tr = a;
      if (b > tr) tr = b;
    }
    this.prevClose = close;
    this.tr = tr;
    const n = this.period;
    if (this.ready) {
      this.value = (this.value * (n - 1) + tr) / n;
      return;
    }
    this.sum += tr;
    if (++this.count === n) {
      this.value = this.sum / n;
      this.ready = true;
    }
  }

  reset(): void {
    this.value = this.tr = this.prevClose = Number.NaN;
    this.ready = false;
    this.count = 0;
    this.sum = 0;
  }
}
