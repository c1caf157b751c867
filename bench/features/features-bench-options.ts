/**
 * The options of `qilin bench features` (features-bench.ts) and their
 * defaults, in a module of their own: the command line shows the defaults in
 * its help without importing the bench itself (the indicators, the HDR
 * histogram).
 */
export interface FeaturesBenchOptions {
  /** Symbols, each with its own FeatureSet (default 1,000). */
  symbols: number;
  /** Timed updates (trades + quotes + bars) of the subject; the heap growth is over these (default 10,000,000). */
  ticks: number;
  /** Untimed updates before the timed ones (JIT, rings filled; default 1,000,000). */
  warmupTicks: number;
  /** Timed updates of the naive reference (default 50,000). */
  naiveTicks: number;
  /** Symbols the naive reference runs on (default 10). */
  naiveSymbols: number;
  /** A '1s' bar every this many trades of a symbol (default 20). */
  barEvery: number;
  /** PRNG seed of the stream (default 1). */
  seed: number;
}

export const DEFAULT_FEATURES_BENCH_OPTIONS: Readonly<FeaturesBenchOptions> = {
  symbols: 1000,
  ticks: 10_000_000,
  warmupTicks: 1_000_000,
  naiveTicks: 50_000,
  naiveSymbols: 10,
  barEvery: 20,
  seed: 1,
};
