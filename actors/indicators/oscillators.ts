import { invalidArgument } from '../../kernel/errors.js';
import { checkPeriod } from './common.js';
import { EMA } from './moving-averages.js';

/**
 * Relative strength index with Wilder's smoothing over `period` changes.
 *
 * Changes `d_t = x_t − x_{t−1}`, gain `max(d, 0)`, loss `max(−d, 0)`.
 * The first average gain / loss are the plain means of the first `period`
 * changes; after that `avg ← (avg·(n−1) + current) / n`.
 * `RSI = 100 − 100 / (1 + avgGain/avgLoss) = 100·avgGain / (avgGain + avgLoss)`;
 * 100 when avgLoss is 0 (only gains), 50 when both are 0 (a flat series).
 *
 * Warm-up: NaN and not ready until `period` changes, i.e. `period + 1` values.
 */
export class RSI {
  readonly period: number;
  value = Number.NaN;
  ready = false;
  /** Wilder-smoothed average gain and loss (NaN during warm-up). */
  avgGain = Number.NaN;
  avgLoss = Number.NaN;
  private prev = 0;
  private seen = 0;
  private sumGain = 0;
  private sumLoss = 0;

  constructor(period: number) {
    this.period = checkPeriod('period', period);
  }

  update(x: number): void {
    if (this.seen === 0) {
      this.prev = x;
      this.seen = 1;
      return;
    }
    const d = x - this.prev;
    this.prev = x;
    const g = d > 0 ? d : 0;
    const l = d < 0 ? -d : 0;
    const n = this.period;
    if (this.ready) {
      this.avgGain = (this.avgGain * (n - 1) + g) / n;
      this.avgLoss = (this.avgLoss * (n - 1) + l) / n;
    } else {
      this.sumGain += g;
      this.sumLoss += l;
      if (this.seen++ < n) return;
      this.avgGain = this.sumGain / n;
      this.avgLoss = this.sumLoss / n;
      this.ready = true;
    }
    const ag = this.avgGain;
    const al = this.avgLoss;
    this.value = al === 0 ? (ag === 0 ? 50 : 100) : (100 * ag) / (ag + al);
  }

  reset(): void {
    this.value = this.avgGain = this.avgLoss = Number.NaN;
    this.ready = false;
    this.prev = 0;
    this.seen = 0;
    this.sumGain = this.sumLoss = 0;
  }
}

/**
 * MACD(fast, slow, signal), fast < slow:
 *
 * - `line = EMA_fast(x) − EMA_slow(x)` (both SMA-seeded EMAs, see EMA)
 * - `signal = EMA_signal(line)` (seeded with the SMA of the first `signal` lines)
 * - `hist = line − signal`
 *
 * Warm-up: `line` (= `value`) is NaN until `slow` values; `signal` and
 * `hist` until `slow + signal − 1` values, when `ready` turns true.
 */
export class MACD {
  readonly fast: number;
  readonly slow: number;
  readonly signalPeriod: number;
  ready = false;
  line = Number.NaN;
  signal = Number.NaN;
  hist = Number.NaN;
  private readonly emaFast: EMA;
  private readonly emaSlow: EMA;
  private readonly emaSignal: EMA;

  constructor(fast = 12, slow = 26, signal = 9) {
    this.fast = checkPeriod('fast', fast);
    this.slow = checkPeriod('slow', slow);
    if (this.slow <= this.fast) invalidArgument('slow', slow, `an integer > fast (${fast})`);
    this.signalPeriod = checkPeriod('signal', signal);
    this.emaFast = new EMA(this.fast);
    this.emaSlow = new EMA(this.slow);
    this.emaSignal = new EMA(this.signalPeriod);
  }

  get value(): number {
    return this.line;
  }

  update(x: number): void {
    this.emaFast.update(x);
    this.emaSlow.update(x);
    if (!this.emaSlow.ready) return;
    const line = this.emaFast.value - this.emaSlow.value;
    this.line = line;
    const s = this.emaSignal;
    s.update(line);
    if (!s.ready) return;
    this.ready = true;
    this.signal = s.value;
    this.hist = line - s.value;
  }

  reset(): void {
    this.emaFast.reset();
    this.emaSlow.reset();
    this.emaSignal.reset();
    this.ready = false;
    this.line = this.signal = this.hist = Number.NaN;
  }
}
