import { invalidArgument } from '../kernel/errors.js';
import type { Logger } from '../kernel/logger.js';
import type {
  FillMessage,
  RiskControlReply,
  RiskRejectReason,
  SignalMessage,
} from '../kernel/messages.js';
import { ReturnWindow } from './return-window.js';
import {
  DEFAULT_RISK_RULES,
  DEFAULT_SIZING_RULES,
  RateWindow,
  newRiskState,
  resolveRiskLimits,
  type RiskLimits,
  type RiskRule,
  type RiskState,
  type SizingRule,
} from './risk-rules.js';

/**
 * The outcome of a pre-trade check. `sizeFactor` (< 1) is present when the
 * sizing steps scaled the signal's qty and strength down (in the signal).
 */
export type RiskDecision =
  | { approved: true; sizeFactor?: number }
  | { approved: false; reason: RiskRejectReason; detail: string };

/** Plain counters of the risk actor's model-driven steps (read at scrape time). */
export interface RiskCounters {
  /** Prices taken by observe. */
  observations: number;
  /** Prices observe refused (not finite and > 0). */
  observationsRejected: number;
  /** Signals whose qty the sizing steps reduced. */
  resized: number;
  /** VaR checks passed for want of varMinObservations returns (the state's counters). */
  readonly varSkipped: { symbol: number; account: number };
}

/** One line of the audit trail: a decision on a signal, or a kill / resume. */
export interface AuditEntry {
  /** When, µs (the `nowUs` of check, or `atMs × 1000` of kill / resume). */
  ts: number;
  /** The signal's id ('' for kill / resume). */
  signalId: string;
  sym: string;
  decision: 'approved' | 'rejected' | 'kill' | 'resume';
  /** The reject reason ('' when approved, or for kill / resume). */
  reason: RiskRejectReason | '';
  /** Why, in words (the rule's detail, or the operator's reason). */
  detail: string;
  /** Who (the operator for kill / resume, the strategy for signals). */
  by: string;
}

export interface RiskActorOptions {
  log?: Logger;
  /** The rules, in order (default DEFAULT_RISK_RULES). */
  rules?: readonly RiskRule[];
  /** Sizing steps, applied before the rules (default DEFAULT_SIZING_RULES). */
  sizing?: readonly SizingRule[];
  /** Audit entries kept (oldest dropped first). Default 10 000. */
  auditCapacity?: number;
}

const APPROVED: RiskDecision = Object.freeze({ approved: true });

/**
 * The risk actor of one account (main thread): signals in, decisions out.
 *
 * - `check` runs the rules in order; the first breach rejects. An approval is
 *   recorded for the rate limit but does NOT change the position: positions
 *   move only on fills (`onFill`), because an executor may not fill, may fill
 *   partly or at another price, and counting an unfilled approval as a
 *   position would block later signals for a trade that never happened.
 * - `kill` / `resume` flip the kill switch (every signal is rejected with
 *   `kill_switch` while killed) and say who and why.
 * - `observe` keeps per symbol the last `varWindow` log returns of the
 *   observed price and the latest prediction interval (ReturnWindow); the
 *   sizing steps (`sizeByInterval`) scale a signal's qty and strength before
 *   the rules, and the VaR rules (`var_symbol`, `var_account`) read the
 *   returns. Off by default (risk-rules.ts). The windows are not saved on a
 *   warm restart: after one, the VaR rules pass (counted) until each symbol
 *   has varMinObservations returns again.
 * - Every decision and every kill / resume goes into a bounded audit ring (the
 *   last `auditCapacity` entries), so the trail never grows without bound.
 */
export class RiskActor {
  readonly limits: Readonly<RiskLimits>;
  readonly counters: RiskCounters;
  private readonly state: RiskState;
  private readonly rules: readonly RiskRule[];
  private readonly sizing: readonly SizingRule[];
  private readonly log: Logger | undefined;
  private readonly auditRing: Array<AuditEntry | undefined>;
  private auditCount = 0;
  private fills = 0;

  constructor(limits: Partial<RiskLimits> = {}, opts: RiskActorOptions = {}) {
    this.limits = Object.freeze(resolveRiskLimits(limits));
    this.state = newRiskState(this.limits.varWindow);
    this.counters = {
      observations: 0,
      observationsRejected: 0,
      resized: 0,
      varSkipped: this.state.varSkipped,
    };
    this.sizing = opts.sizing ?? DEFAULT_SIZING_RULES;
    const cap = opts.auditCapacity ?? 10_000;
    if (!Number.isInteger(cap) || cap < 1) {
      invalidArgument('auditCapacity', cap, 'an integer ≥ 1');
    }
    this.auditRing = new Array<AuditEntry | undefined>(cap).fill(undefined);
    this.rules = opts.rules ?? DEFAULT_RISK_RULES;
    this.log = opts.log;
  }

  get killed(): boolean {
    return this.state.killed;
  }

  /**
   * A market observation of `symbol` (the output pipeline calls it for each
   * PREDICTION with the prediction's mid and interval): appends the log
   * return since the previous price to the symbol's VaR window and keeps the
   * interval for sizeByInterval (NaN bounds: the model gives none). A price
   * that is not finite and > 0 is counted and ignored. Allocation-free once
   * the symbol's window exists.
   */
  observe(symbol: string, px: number, nowUs: number, lower = Number.NaN, upper = Number.NaN): void {
    let w = this.state.returns.get(symbol);
    if (w === undefined) {
      w = new ReturnWindow(this.limits.varWindow);
      this.state.returns.set(symbol, w);
    }
    w.lower = lower;
    w.upper = upper;
    if (w.observe(px, nowUs)) this.counters.observations++;
    else this.counters.observationsRejected++;
  }

  /**
   * Pre-trade check of one candidate signal at time `nowUs` (µs). The sizing
   * steps run first and scale `signal.qty` and `signal.strength` in place
   * (the rules then check the resized signal, and a rejection reports it).
   */
  check(signal: SignalMessage, nowUs: number): RiskDecision {
    let factor = 1;
    for (const step of this.sizing) factor *= step(signal, this.state, this.limits, nowUs);
    if (factor < 1 && factor > 0) {
      signal.qty *= factor;
      signal.strength *= factor;
      this.counters.resized++;
    } else factor = 1;
    for (const rule of this.rules) {
      const breach = rule(signal, this.state, this.limits, nowUs);
      if (breach !== null) {
        this.record(
          nowUs,
          signal.id,
          signal.sym,
          'rejected',
          breach.reason,
          breach.detail,
          signal.strategy,
        );
        return { approved: false, reason: breach.reason, detail: breach.detail };
      }
    }
    let w = this.state.rates.get(signal.sym);
    if (w === undefined) {
      w = new RateWindow(this.limits.maxSignalsPerSec);
      this.state.rates.set(signal.sym, w);
    }
    w.record(nowUs);
    if (factor === 1) {
      this.record(nowUs, signal.id, signal.sym, 'approved', '', '', signal.strategy);
      return APPROVED;
    }
    const detail = `sized ×${factor} to qty ${signal.qty}`;
    this.record(nowUs, signal.id, signal.sym, 'approved', '', detail, signal.strategy);
    return { approved: true, sizeFactor: factor };
  }

  /** Apply an executor's fill to the position of its symbol. */
  onFill(fill: FillMessage): void {
    if (fill.side !== 'buy' && fill.side !== 'sell') {
      invalidArgument('fill.side', fill.side, "'buy' or 'sell'");
    }
    if (typeof fill.qty !== 'number' || !Number.isFinite(fill.qty) || fill.qty < 0) {
      invalidArgument('fill.qty', fill.qty, 'a finite number ≥ 0');
    }
    const pos = this.state.positions.get(fill.sym) ?? 0;
    this.state.positions.set(fill.sym, pos + (fill.side === 'buy' ? fill.qty : -fill.qty));
    this.fills++;
  }

  /** Engage the kill switch: every signal is rejected until `resume`. `atMs`: ms since epoch. */
  kill(by: string, reason: string, atMs: number): RiskControlReply {
    this.state.killed = true;
    this.state.killedBy = by;
    this.state.killReason = reason;
    this.record(atMs * 1000, '', '', 'kill', '', reason, by);
    this.log?.warn({ by, reason, at: atMs }, 'risk kill switch engaged');
    return { killed: true, by, reason, at: atMs };
  }

  /** Release the kill switch. */
  resume(by: string, reason: string, atMs: number): RiskControlReply {
    this.state.killed = false;
    this.state.killedBy = '';
    this.state.killReason = '';
    this.record(atMs * 1000, '', '', 'resume', '', reason, by);
    this.log?.warn({ by, reason, at: atMs }, 'risk kill switch released');
    return { killed: false, by, reason, at: atMs };
  }

  /** Replace the positions with restored ones (warm restart: docs/adr/0006-warm-restart.md). */
  restorePositions(positions: ReadonlyMap<string, number>): void {
    this.state.positions.clear();
    for (const [sym, p] of positions) this.state.positions.set(sym, p);
    this.fills++;
  }

  /** Fills applied (and restores): a change count for whoever saves the positions. */
  get fillCount(): number {
    return this.fills;
  }

  /** Net position per symbol (buy +, sell −), from fills. */
  positions(): ReadonlyMap<string, number> {
    return this.state.positions;
  }

  /** The audit trail, oldest first (at most `auditCapacity` entries). */
  audit(): readonly AuditEntry[] {
    const cap = this.auditRing.length;
    const n = this.auditCount < cap ? this.auditCount : cap;
    const out: AuditEntry[] = [];
    for (let i = this.auditCount - n; i < this.auditCount; i++) {
      out.push(this.auditRing[i % cap]!);
    }
    return out;
  }

  private record(
    ts: number,
    signalId: string,
    sym: string,
    decision: AuditEntry['decision'],
    reason: AuditEntry['reason'],
    detail: string,
    by: string,
  ): void {
    const entry: AuditEntry = { ts, signalId, sym, decision, reason, detail, by };
    this.auditRing[this.auditCount % this.auditRing.length] = entry;
    this.auditCount++;
  }
}
