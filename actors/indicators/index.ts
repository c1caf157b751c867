export { CompensatedSum, MAX_PERIOD } from './common.js';
export { SMA, EMA, WMA } from './moving-averages.js';
export {
  RollingStats,
  RollingMean,
  RollingVariance,
  RollingStdDev,
  ZScore,
  Bollinger,
} from './rolling-stats.js';
export { RSI, MACD } from './oscillators.js';
export { VWAP, RealizedVol, LogReturn, OBV } from './trade-indicators.js';
export { ATR } from './bar-indicators.js';
export { Imbalance, Spread, RelSpread } from './book-indicators.js';
export {
  FeatureSet,
  resolveFeatureSpecs,
  DEFAULT_FEATURE_SPECS,
  FULL_FEATURE_SPECS,
  type FeatureSpec,
  type FeatureKind,
} from './feature-set.js';
