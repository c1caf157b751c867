import { resolvedOnce } from './resolved-options.js';
import { invalidArgument } from '../kernel/errors.js';
import type { Features } from './features.js';

/**
 * A model turns the features of one symbol into a score in [-1, 1]: the
 * expected direction and conviction. `predict` runs once per trade on the hot
 * path, so it must not allocate. (An ONNX-backed model will implement this
 * same interface.)
 */
export interface Model {
  readonly name: string;
  readonly version: string;
  predict(features: Features): number;
}

/** Weights of the baseline model. */
export interface BaselineModelOptions {
  /** Weight of the normalised trend (emaFast − emaSlow) / (price · vol). Default 0.25. */
  trendWeight: number;
  /** Weight of the price z-score around emaSlow. Default 0.1. */
  zWeight: number;
  /** Floor of vol in the trend normalisation, so a flat market does not divide by 0. Default 1e-9. */
  volFloor: number;
}

export const DEFAULT_BASELINE_MODEL_OPTIONS: Readonly<BaselineModelOptions> = {
  trendWeight: 0.25,
  zWeight: 0.1,
  volFloor: 1e-9,
};

/**
 * The deterministic baseline: a volatility-normalised EMA crossover plus a
 * little z-score momentum, squashed into [-1, 1].
 * ```
 *   score = tanh( trendWeight · (emaFast − emaSlow) / (price · max(vol, volFloor))
 *               + zWeight · zscore )
 * ```
 * Dividing the EMA gap by price·vol makes it "how many typical moves is the
 * fast average ahead of the slow one", comparable across symbols and regimes.
 * Returns 0 before the first trade.
 */
export class BaselineModel implements Model {
  readonly name = 'baseline';
  readonly version = '1';
  private readonly o: Readonly<BaselineModelOptions>;

  constructor(options: Partial<BaselineModelOptions> = {}) {
    // Frozen: configuration, not state (kernel/actor-state.ts skips frozen objects).
    this.o = Object.freeze(resolvedOnce(RESOLVED, options, resolveBaselineModelOptions));
  }

  predict(f: Features): number {
    const px = f.lastPx;
    if (!(px > 0)) return 0;
    const vol = f.vol > this.o.volFloor ? f.vol : this.o.volFloor;
    const x =
      (this.o.trendWeight * (f.emaFast - f.emaSlow)) / (px * vol) + this.o.zWeight * f.zscore;
    return Math.tanh(x);
  }
}

const RESOLVED = new WeakMap<Partial<BaselineModelOptions>, BaselineModelOptions>();

function resolveBaselineModelOptions(options: Partial<BaselineModelOptions>): BaselineModelOptions {
  const o = { ...DEFAULT_BASELINE_MODEL_OPTIONS, ...options };
  if (!Number.isFinite(o.trendWeight)) {
    invalidArgument('trendWeight', o.trendWeight, 'a finite number');
  }
  if (!Number.isFinite(o.zWeight)) invalidArgument('zWeight', o.zWeight, 'a finite number');
  if (!(o.volFloor > 0) || !Number.isFinite(o.volFloor)) {
    invalidArgument('volFloor', o.volFloor, 'a finite number > 0');
  }
  return o;
}
