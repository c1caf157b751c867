import { invalidArgument } from '../kernel/errors.js';
import type { RiskRejectReason, SignalMessage } from '../kernel/messages.js';
import type { ReturnWindow } from './return-window.js';
import { valueAtRisk, type VarMethod } from './value-at-risk.js';

/** Pre-trade limits of one account. */
export interface RiskLimits {
  /** Largest |position| per symbol, in units, once every approved signal is filled. Default 100. */
  maxPosition: number;
  /** Largest |position × refPx| per symbol, in quote currency. Default 1e7. */
  maxNotional: number;
  /** Most signals approved per symbol in any 1-second window (integer). Default 50. */
  maxSignalsPerSec: number;
  /** Signals whose quality score is below this are rejected. Default 0.5. */
  minQuality: number;

  // ── Value-at-Risk and interval sizing (symbolVarRule, accountVarRule, sizeByInterval) ──
  /**
   * Largest VaR of one symbol's position once the signal fills, quote
   * currency. Default Infinity (rule off).
   */
  maxSymbolVar: number;
  /** Largest VaR of all positions once the signal fills, quote currency. Default Infinity (off). */
  maxAccountVar: number;
  /**
   * 'historical' (empirical quantile of the window's returns) or
   * 'parametric' (normal, z(confidence) × stdev). Default 'historical'.
   */
  varMethod: VarMethod;
  /** VaR confidence, in (0.5, 1). Default 0.99. */
  varConfidence: number;
  /** Log returns kept per symbol (integer in [2, 65536]). Default 250. */
  varWindow: number;
  /**
   * Returns a symbol needs before the VaR rules use it (integer in [2,
   * varWindow]); below it they pass and count `varSkipped`. Default 30.
   */
  varMinObservations: number;
  /**
   * Prediction interval width (upper − lower, score scale) at which the
   * size factor reaches minSizeFactor. Default Infinity (sizing off).
   */
  maxIntervalWidth: number;
  /** Smallest size factor of sizeByInterval, in (0, 1]. Default 0.25. */
  minSizeFactor: number;
}

export const DEFAULT_RISK_LIMITS: Readonly<RiskLimits> = {
  maxPosition: 100,
  maxNotional: 1e7,
  maxSignalsPerSec: 50,
  minQuality: 0.5,
  maxSymbolVar: Infinity,
  maxAccountVar: Infinity,
  varMethod: 'historical',
  varConfidence: 0.99,
  varWindow: 250,
  varMinObservations: 30,
  maxIntervalWidth: Infinity,
  minSizeFactor: 0.25,
};

/** Upper bound of varWindow: each symbol keeps one f64 per return. */
const MAX_VAR_WINDOW = 65_536;

/** Upper bound of maxSignalsPerSec: the rate window keeps one f64 per allowed signal. */
const MAX_SIGNALS_PER_SEC = 100_000;

/** Defaults merged with `raw`; throws QLN_INVALID_ARGUMENT naming the bad or unknown key. */
export function resolveRiskLimits(raw: unknown): RiskLimits {
  if (raw === undefined || raw === null) return { ...DEFAULT_RISK_LIMITS };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    invalidArgument('limits', raw, 'an object of RiskLimits');
  }
  const out: RiskLimits = { ...DEFAULT_RISK_LIMITS };
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (value === undefined) continue;
    const ok = typeof value === 'number' && Number.isFinite(value);
    switch (key) {
      case 'maxPosition':
      case 'maxNotional':
        if (!ok || value < 0) invalidArgument(key, value, 'a finite number ≥ 0');
        out[key] = value;
        break;
      case 'maxSignalsPerSec':
        if (!ok || !Number.isInteger(value) || value < 1 || value > MAX_SIGNALS_PER_SEC) {
          invalidArgument(key, value, `an integer in [1, ${MAX_SIGNALS_PER_SEC}]`);
        }
        out[key] = value;
        break;
      case 'minQuality':
        if (!ok || value < 0 || value > 1) invalidArgument(key, value, 'a number in [0, 1]');
        out[key] = value;
        break;
      case 'maxSymbolVar':
      case 'maxAccountVar':
      case 'maxIntervalWidth':
        // Infinity (the default) turns the rule off; JSON has no Infinity, so omit the key.
        if (typeof value !== 'number' || !(value > 0)) {
          invalidArgument(key, value, 'a number > 0 (Infinity: off)');
        }
        out[key] = value;
        break;
      case 'varMethod':
        if (value !== 'historical' && value !== 'parametric') {
          invalidArgument(key, value, "'historical' or 'parametric'");
        }
        out[key] = value;
        break;
      case 'varConfidence':
        if (!ok || !(value > 0.5 && value < 1)) invalidArgument(key, value, 'a number in (0.5, 1)');
        out[key] = value;
        break;
      case 'varWindow':
        if (!ok || !Number.isInteger(value) || value < 2 || value > MAX_VAR_WINDOW) {
          invalidArgument(key, value, `an integer in [2, ${MAX_VAR_WINDOW}]`);
        }
        out[key] = value;
        break;
      case 'varMinObservations':
        if (!ok || !Number.isInteger(value) || value < 2) {
          invalidArgument(key, value, 'an integer ≥ 2 and ≤ varWindow');
        }
        out[key] = value;
        break;
      case 'minSizeFactor':
        if (!ok || !(value > 0 && value <= 1)) invalidArgument(key, value, 'a number in (0, 1]');
        out[key] = value;
        break;
      default:
        invalidArgument(key, value, `one of ${Object.keys(DEFAULT_RISK_LIMITS).join(', ')}`);
    }
  }
  if (out.varMinObservations > out.varWindow) {
    invalidArgument(
      'varMinObservations',
      out.varMinObservations,
      `an integer ≥ 2 and ≤ varWindow (${out.varWindow})`,
    );
  }
  return out;
}

/**
 * Approval times of one symbol's last `capacity` approved signals, in a ring.
 * A signal may be approved at `now` iff fewer than `capacity` approvals are
 * held or the oldest held one is at least 1 s old. That makes "at most N in
 * any 1-second window" exact, which a token bucket of burst N is not (it lets
 * a full burst through at the end of one second and the refill right after:
 * up to 2N within one second).
 *
 * ```
 *  capacity 4, next = 6 approvals recorded (slot = count & 3)
 *  times [ t4 | t5 | t2 | t3 ]      oldest of the last 4 = times[next & 3] = t2
 *                    ▲ next write   approve at now iff now − t2 ≥ 1 s
 * ```
 */
export class RateWindow {
  private readonly times: Float64Array;
  private count = 0;

  constructor(readonly capacity: number) {
    this.times = new Float64Array(capacity);
  }

  /** Whether one more approval at `nowUs` keeps the 1-second window within capacity. */
  allows(nowUs: number): boolean {
    if (this.count < this.capacity) return true;
    return nowUs - this.times[this.count % this.capacity]! >= 1_000_000;
  }

  /** Approvals within the second before `nowUs` (for messages). */
  inLastSecond(nowUs: number): number {
    const n = this.count < this.capacity ? this.count : this.capacity;
    let k = 0;
    for (let i = 0; i < n; i++) if (nowUs - this.times[i]! < 1_000_000) k++;
    return k;
  }

  record(nowUs: number): void {
    this.times[this.count % this.capacity] = nowUs;
    this.count++;
  }
}

/** What the rules read: the risk actor's state. */
export interface RiskState {
  killed: boolean;
  killedBy: string;
  killReason: string;
  /** Net position per symbol, from fills (buy +, sell −). */
  readonly positions: Map<string, number>;
  /** Approval history per symbol for the rate limit. */
  readonly rates: Map<string, RateWindow>;
  /** Observed returns, last price and last prediction interval per symbol (RiskActor.observe). */
  readonly returns: Map<string, ReturnWindow>;
  /** Scenario P&Ls of the VaR rules (varWindow long), reused by every check. */
  readonly scratch: Float64Array;
  /**
   * VaR checks that passed because a symbol had fewer than
   * varMinObservations returns (the one thing the rules write: a counter).
   */
  readonly varSkipped: { symbol: number; account: number };
}

export function newRiskState(varWindow: number = DEFAULT_RISK_LIMITS.varWindow): RiskState {
  return {
    killed: false,
    killedBy: '',
    killReason: '',
    positions: new Map(),
    rates: new Map(),
    returns: new Map(),
    scratch: new Float64Array(varWindow),
    varSkipped: { symbol: 0, account: 0 },
  };
}

/** Why a rule rejected a signal. */
export interface RuleBreach {
  reason: RiskRejectReason;
  detail: string;
}

/**
 * A pre-trade rule: null to pass, a breach to reject. Rules read the state and
 * never change it (the risk actor records an approval only after every rule
 * passed), so each one can be tested alone and the order only decides which
 * reason wins. (The VaR rules bump the `varSkipped` counters and reuse the
 * `scratch` array; neither changes a later decision.)
 */
export type RiskRule = (
  signal: SignalMessage,
  state: RiskState,
  limits: RiskLimits,
  nowUs: number,
) => RuleBreach | null;

function signedQty(signal: SignalMessage): number {
  return signal.side === 'buy' ? signal.qty : signal.side === 'sell' ? -signal.qty : 0;
}

/** While killed, every signal is rejected. */
export const killSwitchRule: RiskRule = (_signal, state) =>
  state.killed
    ? {
        reason: 'kill_switch',
        detail: `killed by ${state.killedBy}: ${state.killReason}`,
      }
    : null;

/**
 * |position + signed qty| must stay ≤ maxPosition. A signal that reduces
 * |position| always passes (getting back inside the limit must be possible),
 * and flat signals never breach.
 */
export const maxPositionRule: RiskRule = (signal, state, limits) => {
  const dq = signedQty(signal);
  if (dq === 0) return null;
  const pos = state.positions.get(signal.sym) ?? 0;
  const next = pos + dq;
  if (Math.abs(next) <= limits.maxPosition || Math.abs(next) < Math.abs(pos)) return null;
  return {
    reason: 'max_position',
    detail: `position ${pos} ${signal.side} ${signal.qty} → ${next}, |${next}| > maxPosition ${limits.maxPosition}`,
  };
};

/** |(position + signed qty) · refPx| must stay ≤ maxNotional (reducing always passes). */
export const maxNotionalRule: RiskRule = (signal, state, limits) => {
  const dq = signedQty(signal);
  if (dq === 0) return null;
  const pos = state.positions.get(signal.sym) ?? 0;
  const next = pos + dq;
  const notional = Math.abs(next * signal.refPx);
  if (notional <= limits.maxNotional || Math.abs(next) < Math.abs(pos)) return null;
  return {
    reason: 'max_notional',
    detail: `notional |${next} × ${signal.refPx}| = ${notional} > maxNotional ${limits.maxNotional}`,
  };
};

/** At most maxSignalsPerSec approvals per symbol in any 1-second window (see RateWindow). */
export const rateLimitRule: RiskRule = (signal, state, limits, nowUs) => {
  const w = state.rates.get(signal.sym);
  if (w === undefined || w.allows(nowUs)) return null;
  return {
    reason: 'rate_limit',
    detail: `${w.inLastSecond(nowUs)} signals for ${signal.sym} in the last second, maxSignalsPerSec ${limits.maxSignalsPerSec}`,
  };
};

/** The signal's quality score must be ≥ minQuality. */
export const minQualityRule: RiskRule = (signal, _state, limits) =>
  signal.quality.score >= limits.minQuality
    ? null
    : {
        reason: 'quality_low',
        detail: `quality ${signal.quality.score} < minQuality ${limits.minQuality}`,
      };

// ─────────────────────────── Value-at-Risk ───────────────────────────
//
// Both VaR rules turn the returns observed per symbol (RiskActor.observe:
// log returns of the predictions' mid, so one return spans one prediction
// interval, ~100 ms by default) into scenario P&Ls of the position as it
// would be once the signal fills, and take their loss quantile
// (actors/value-at-risk.ts). The P&L of a position q at price px under a log
// return r is taken as q · px · r (linear: e^r − 1 ≈ r for the small returns
// of one interval). The signal's own symbol is priced at its refPx, the
// others at their last observed price. Historical VaR keeps the direction: a
// short position loses on the window's up moves.

/** The symbol's returns if it has at least varMinObservations of them, else undefined. */
function returnsOf(state: RiskState, sym: string, limits: RiskLimits): ReturnWindow | undefined {
  const w = state.returns.get(sym);
  return w !== undefined && w.count >= limits.varMinObservations ? w : undefined;
}

function varLabel(limits: RiskLimits): string {
  return `${limits.varMethod} VaR ${limits.varConfidence}`;
}

/**
 * VaR of the symbol's position once the signal fills (q · refPx · each
 * window return) must stay ≤ maxSymbolVar. Reducing |position| always
 * passes; with fewer than varMinObservations returns the rule passes and
 * counts `varSkipped.symbol` (it never guesses).
 */
export const symbolVarRule: RiskRule = (signal, state, limits) => {
  if (!(limits.maxSymbolVar < Infinity)) return null;
  const dq = signedQty(signal);
  if (dq === 0) return null;
  const pos = state.positions.get(signal.sym) ?? 0;
  const next = pos + dq;
  if (Math.abs(next) < Math.abs(pos)) return null;
  const w = returnsOf(state, signal.sym, limits);
  if (w === undefined) {
    state.varSkipped.symbol++;
    return null;
  }
  const pnl = state.scratch;
  const n = Math.min(w.count, pnl.length);
  const exposure = next * signal.refPx;
  for (let i = 0; i < n; i++) pnl[i] = exposure * w.at(i);
  const v = valueAtRisk(pnl, n, limits.varMethod, limits.varConfidence);
  if (v <= limits.maxSymbolVar) return null;
  return {
    reason: 'var_symbol',
    detail: `${varLabel(limits)} of position ${next} × ${signal.refPx} over ${n} returns = ${v} > maxSymbolVar ${limits.maxSymbolVar}`,
  };
};

/** accountVar: a held symbol has fewer than varMinObservations returns. */
const NOT_ENOUGH = -1;

/**
 * VaR of every position, with `dq` added to `sym` (priced at `px`), or
 * NOT_ENOUGH. Scenario i is the i-th newest return of EVERY held symbol:
 * returns are aligned by observation index, not by time, over the common
 * window (the shortest held symbol's count). A simplification: symbols
 * observed at different rates pair returns of different moments, which
 * blurs their correlation; the P&L series of the book is still exact per
 * symbol. Parametric on this series is z · stdev of the summed P&Ls, i.e.
 * the sample covariance of the aligned returns (√(wᵀΣw)), not zero
 * correlation.
 */
function accountVar(
  state: RiskState,
  limits: RiskLimits,
  sym: string,
  dq: number,
  px: number,
): number {
  const pnl = state.scratch;
  let n = pnl.length;
  let held = 0;
  const symPos = (state.positions.get(sym) ?? 0) + dq;
  if (symPos !== 0) {
    const w = returnsOf(state, sym, limits);
    if (w === undefined) return NOT_ENOUGH;
    n = Math.min(n, w.count);
    held++;
  }
  for (const [s, q] of state.positions) {
    if (s === sym || q === 0) continue;
    const w = returnsOf(state, s, limits);
    if (w === undefined) return NOT_ENOUGH;
    n = Math.min(n, w.count);
    held++;
  }
  if (held === 0) return 0;
  pnl.fill(0, 0, n);
  if (symPos !== 0) addExposure(pnl, n, symPos * px, state.returns.get(sym)!);
  for (const [s, q] of state.positions) {
    if (s === sym || q === 0) continue;
    const w = state.returns.get(s)!;
    addExposure(pnl, n, q * w.lastPx, w);
  }
  return valueAtRisk(pnl, n, limits.varMethod, limits.varConfidence);
}

function addExposure(pnl: Float64Array, n: number, exposure: number, w: ReturnWindow): void {
  for (let i = 0; i < n; i++) pnl[i] = pnl[i]! + exposure * w.at(i);
}

/**
 * VaR of all positions once the signal fills (accountVar above) must stay
 * ≤ maxAccountVar. A signal that does not raise the account's VaR always
 * passes (getting back inside the limit must be possible, and a hedge may
 * add a position yet lower the VaR). When any symbol held (after the fill)
 * has fewer than varMinObservations returns the rule passes and counts
 * `varSkipped.account`.
 */
export const accountVarRule: RiskRule = (signal, state, limits) => {
  if (!(limits.maxAccountVar < Infinity)) return null;
  const dq = signedQty(signal);
  if (dq === 0) return null;
  const after = accountVar(state, limits, signal.sym, dq, signal.refPx);
  if (after === NOT_ENOUGH) {
    state.varSkipped.account++;
    return null;
  }
  if (after <= limits.maxAccountVar) return null;
  const before = accountVar(state, limits, signal.sym, 0, signal.refPx);
  if (before !== NOT_ENOUGH && after <= before) return null;
  return {
    reason: 'var_account',
    detail: `${varLabel(limits)} of the account after ${signal.side} ${signal.qty} ${signal.sym} = ${after} (before ${before}) > maxAccountVar ${limits.maxAccountVar}`,
  };
};

// ─────────────────────────── Sizing ───────────────────────────

/**
 * A sizing step: the factor in (0, 1] the signal's qty and strength are
 * scaled by before the reject rules run (1: unchanged; a product outside
 * (0, 1) leaves the signal unchanged, a step cannot veto: that is a rule's
 * job). Like a RiskRule it
 * reads the state and never changes it; the risk actor multiplies the
 * factors of its sizing steps and applies the product.
 */
export type SizingRule = (
  signal: SignalMessage,
  state: RiskState,
  limits: RiskLimits,
  nowUs: number,
) => number;

/** A prediction interval on the score's scale. */
export interface PredictionInterval {
  lower: number;
  upper: number;
}

/**
 * Width (upper − lower) of the prediction interval behind a signal: the
 * signal's own `prediction.interval` when it carries one, else the last
 * interval the risk actor observed for the symbol (RiskActor.observe, from
 * the PREDICTION records: SIGNAL records carry no interval today, and a
 * prediction is emitted at most once per predictionIntervalUs, so this is
 * the model's latest word on the symbol, not necessarily the signal's own
 * tick). NaN when neither is known.
 */
export function intervalWidth(signal: SignalMessage, state: RiskState): number {
  const own = (signal.prediction as { interval?: PredictionInterval }).interval;
  if (own !== undefined) return own.upper - own.lower;
  const w = state.returns.get(signal.sym);
  return w === undefined ? Number.NaN : w.upper - w.lower;
}

/**
 * Size by the model's uncertainty: factor clamp(1 − width / maxIntervalWidth,
 * minSizeFactor, 1), width = upper − lower of the prediction interval
 * (intervalWidth). No interval (or a non-finite width): 1.
 */
export const sizeByInterval: SizingRule = (signal, state, limits) => {
  if (!(limits.maxIntervalWidth < Infinity)) return 1;
  const width = intervalWidth(signal, state);
  if (!Number.isFinite(width)) return 1;
  const f = 1 - width / limits.maxIntervalWidth;
  return f >= 1 ? 1 : f <= limits.minSizeFactor ? limits.minSizeFactor : f;
};

/** The default sizing steps, applied before the rules. */
export const DEFAULT_SIZING_RULES: readonly SizingRule[] = [sizeByInterval];

/** The default pre-trade checks, in the order they are applied. */
export const DEFAULT_RISK_RULES: readonly RiskRule[] = [
  killSwitchRule,
  maxPositionRule,
  maxNotionalRule,
  rateLimitRule,
  minQualityRule,
  symbolVarRule,
  accountVarRule,
];
