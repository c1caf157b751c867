import { invalidArgument } from '../kernel/errors.js';
import type { RiskRejectReason, SignalMessage } from '../kernel/messages.js';

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
}

export const DEFAULT_RISK_LIMITS: Readonly<RiskLimits> = {
  maxPosition: 100,
  maxNotional: 1e7,
  maxSignalsPerSec: 50,
  minQuality: 0.5,
};

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
      default:
        invalidArgument(key, value, 'maxPosition, maxNotional, maxSignalsPerSec or minQuality');
    }
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
}

export function newRiskState(): RiskState {
  return { killed: false, killedBy: '', killReason: '', positions: new Map(), rates: new Map() };
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
 * reason wins.
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

/** The default pre-trade checks, in the order they are applied. */
export const DEFAULT_RISK_RULES: readonly RiskRule[] = [
  killSwitchRule,
  maxPositionRule,
  maxNotionalRule,
  rateLimitRule,
  minQualityRule,
];
