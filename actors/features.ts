import { resolvedOnce } from './resolved-options.js';
import { invalidArgument } from '../kernel/errors.js';

/** Parameters of the incremental indicators. */
export interface FeatureOptions {
  /** Period of the fast EMA of trade prices, in trades (α = 2 / (period + 1)). Default 12. */
  emaFastPeriod: number;
  /** Period of the slow EMA (also the mean and variance of the z-score). Default 26. */
  emaSlowPeriod: number;
  /** Decay λ of the EWMA of squared log returns (RiskMetrics 0.94). Default 0.94. */
  volLambda: number;
}

export const DEFAULT_FEATURE_OPTIONS: Readonly<FeatureOptions> = {
  emaFastPeriod: 12,
  emaSlowPeriod: 26,
  volLambda: 0.94,
};

/**
 * Incremental per-symbol indicators, O(1) per tick and allocation-free: every
 * value is a plain numeric field, read directly by the model and the output
 * encoder.
 *
 * - `emaFast`, `emaSlow`: EMA of trade prices, seeded with the first price.
 * - `ret`: log return trade to trade (0 on the first trade).
 * - `vol`: realized volatility, √(EWMA of squared returns); the first return
 *   seeds the average with r².
 * - `zscore`: (px − emaSlow) / σ where σ² is the exponentially weighted
 *   variance of price around emaSlow (same α), updated with West's/Finch's
 *   recurrence `var = (1−α)(var + α·d²)`, d = px − previous emaSlow; 0 while σ = 0.
 * - `bid`, `ask`, `mid`, `spread` (ask − bid), `relSpread` (spread / mid): last
 *   quote; 0 until the first quote (0 rather than NaN: these values go to JSON).
 */
export class Features {
  emaFast = 0;
  emaSlow = 0;
  ret = 0;
  vol = 0;
  zscore = 0;
  /** Last trade price (0 before the first trade). */
  lastPx = 0;
  /** Trades folded in so far. */
  trades = 0;
  bid = 0;
  ask = 0;
  mid = 0;
  spread = 0;
  relSpread = 0;
  /** Exponentially weighted variance of price around emaSlow. */
  priceVar = 0;
  /** EWMA of squared log returns (vol²). */
  retVar = 0;

  private readonly aFast: number;
  private readonly aSlow: number;
  private readonly lambda: number;

  constructor(options: Partial<FeatureOptions> = {}) {
    const o = resolvedOnce(RESOLVED, options, resolveFeatureOptions);
    this.aFast = 2 / (o.emaFastPeriod + 1);
    this.aSlow = 2 / (o.emaSlowPeriod + 1);
    this.lambda = o.volLambda;
  }

  /** Fold in one trade price (must be finite and > 0: callers drop bad ticks first). */
  onTrade(px: number): void {
    if (this.trades === 0) {
      this.emaFast = px;
      this.emaSlow = px;
      this.ret = 0;
      this.lastPx = px;
      this.trades = 1;
      return;
    }
    const r = Math.log(px / this.lastPx);
    this.ret = r;
    this.retVar = this.trades === 1 ? r * r : this.lambda * this.retVar + (1 - this.lambda) * r * r;
    this.vol = Math.sqrt(this.retVar);

    this.emaFast += this.aFast * (px - this.emaFast);
    const d = px - this.emaSlow;
    const inc = this.aSlow * d;
    this.emaSlow += inc;
    this.priceVar = (1 - this.aSlow) * (this.priceVar + d * inc);
    const sd = Math.sqrt(this.priceVar);
    this.zscore = sd > 0 ? (px - this.emaSlow) / sd : 0;

    this.lastPx = px;
    this.trades++;
  }

  /** Fold in one top-of-book quote. */
  onQuote(bid: number, ask: number): void {
    this.bid = bid;
    this.ask = ask;
    this.spread = ask - bid;
    this.mid = (bid + ask) / 2;
    this.relSpread = this.mid !== 0 ? this.spread / this.mid : 0;
  }

  /** Back to the state before the first tick. */
  reset(): void {
    this.emaFast = this.emaSlow = this.ret = this.vol = this.zscore = this.lastPx = 0;
    this.trades = 0;
    this.bid = this.ask = this.mid = this.spread = this.relSpread = 0;
    this.priceVar = this.retVar = 0;
  }
}

const RESOLVED = new WeakMap<Partial<FeatureOptions>, FeatureOptions>();

function resolveFeatureOptions(options: Partial<FeatureOptions>): FeatureOptions {
  const o = { ...DEFAULT_FEATURE_OPTIONS, ...options };
  if (!Number.isInteger(o.emaFastPeriod) || o.emaFastPeriod < 1) {
    invalidArgument('emaFastPeriod', o.emaFastPeriod, 'an integer ≥ 1');
  }
  if (!Number.isInteger(o.emaSlowPeriod) || o.emaSlowPeriod < 1) {
    invalidArgument('emaSlowPeriod', o.emaSlowPeriod, 'an integer ≥ 1');
  }
  if (!(o.volLambda > 0 && o.volLambda < 1)) {
    invalidArgument('volLambda', o.volLambda, 'a number in (0, 1)');
  }
  return o;
}
