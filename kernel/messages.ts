/**
 * The public JSON messages of PROTOCOL.md, as types. Adapters serialise these
 * exactly; fields are only ever added.
 */

/** Stage timestamps in µs (monotonic-derived, one clock for all stages of an event). */
export interface StageTimes {
  recv: number;
  feat: number;
  infer: number;
  risk?: number;
  pub?: number;
}

/** The tick that caused an event, so a client can measure its own latency. */
export interface SourceRef {
  seq: number;
  /** Exchange time of that tick, µs. */
  ts: number;
}

/** A signal's target side (docs/api/asyncapi.yaml lists the same). */
export const SIGNAL_SIDES = ['buy', 'sell', 'flat'] as const;
export type SignalSide = (typeof SIGNAL_SIDES)[number];

export interface ModelRef {
  name: string;
  version: string;
  /** `live` (it trades) or `shadow` (compared, never trades); absent for the built-in baseline. */
  role?: 'live' | 'shadow';
}

/** A trade or top-of-book quote as it arrives on `md.<venue>.<symbol>`. */
export type TickMessage =
  | {
      type: 'trade';
      sym: string;
      ts: number;
      px: number;
      qty: number;
      side?: 'buy' | 'sell';
      seq: number;
    }
  | {
      type: 'quote';
      sym: string;
      ts: number;
      bid: number;
      bidQty: number;
      ask: number;
      askQty: number;
      seq: number;
    };

export interface PredictionMessage {
  sym: string;
  /** Event time, µs since epoch (the source tick's exchange time). */
  ts: number;
  model: ModelRef;
  /** Model output in [-1, 1]: expected direction and conviction. */
  score: number;
  /**
   * The model's prediction interval on the same scale as `score`, when the
   * model outputs one (manifest outputs with roles `lower` and `upper`).
   */
  interval?: { lower: number; upper: number };
  /** Feature values the model saw. */
  features: Record<string, number>;
  /**
   * Store path only, never sent: `features` as JSON text when the worker
   * already encoded it (the store writes it as is instead of formatting
   * every number again).
   */
  featuresJson?: string;
  src: SourceRef;
  lat: StageTimes;
}

export interface QualityMessage {
  sym: string;
  ts: number;
  /**
   * Why it was sent: `window` (window end), `change` (the quality state
   * changed), `quarantine` (a tick held out: see `tick`), `reset` (the venue
   * restarted its sequence numbers: a new session).
   */
  kind: 'window' | 'change' | 'quarantine' | 'reset';
  /** Sessions of the symbol started by sequence resets (0 before any). */
  session: number;
  /** Window quality score in [0, 1]; 1 is clean. */
  score: number;
  /** Issue codes seen in the window: seq_gap, crossed_quote, stale, out_of_order, spike, … */
  issues: string[];
  /** Counts of the current window by check. */
  window: {
    ticks: number;
    gaps: number;
    crossed: number;
    outOfOrder: number;
    stale: number;
    spikes: number;
    badValues: number;
    locked: number;
    outsideBand: number;
    timeGaps: number;
    skew: number;
    duplicates: number;
    resets: number;
    quarantined: number;
    nonfinite: number;
  };
  /** kind `quarantine`: the tick as received (decoded fields). */
  tick?: QuarantinedTick;
  src: SourceRef;
  lat: StageTimes;
}

export type QuarantinedTick =
  | {
      type: 'trade';
      seq: number;
      ts: number;
      recv: number;
      px: number;
      qty: number;
      side: 'buy' | 'sell' | 'unknown';
    }
  | {
      type: 'quote';
      seq: number;
      ts: number;
      recv: number;
      bid: number;
      bidQty: number;
      ask: number;
      askQty: number;
    };

export interface SignalMessage {
  /** Unique and deterministic (strategy, symbol, source seq): also the NATS Nats-Msg-Id. */
  id: string;
  strategy: string;
  sym: string;
  ts: number;
  side: SignalSide;
  strength: number;
  refPx: number;
  /** Quantity the strategy proposes (risk checks position and notional with it). */
  qty: number;
  account: string;
  model: ModelRef;
  /** The score that made the signal, and the model's prediction interval when it outputs one. */
  prediction: { score: number; interval?: { lower: number; upper: number } };
  quality: { score: number };
  src: SourceRef;
  lat: StageTimes;
}

/** Why a signal was not published, as stored and counted (stable strings). */
export const RiskRejectReasons = [
  'kill_switch',
  'breaker_open',
  'max_position',
  'max_notional',
  'rate_limit',
  'quality_low',
  'publish_failed',
  // Not a risk rule: the symbol actor suppressed its own proposal because its
  // quality window scored below the strategy's minQuality (never sent to risk).
  'low_quality',
  // Value-at-Risk rules (actors/risk-rules.ts symbolVarRule, accountVarRule).
  // Appended: stored rows keep 1 + the index (kernel/shard-frames.ts).
  'var_symbol',
  'var_account',
] as const;
export type RiskRejectReason = (typeof RiskRejectReasons)[number];

export interface RiskRejection {
  signal: SignalMessage;
  reason: RiskRejectReason;
  detail: string;
  /** When the decision was made, µs. */
  ts: number;
}

/** An executor's fill on `fill.<account>`. */
export interface FillMessage {
  signalId: string;
  sym: string;
  side: 'buy' | 'sell';
  qty: number;
  px: number;
  ts: number;
}

/** Body of `ctl.risk.kill` / `ctl.risk.resume`. */
export interface RiskControlMessage {
  by: string;
  reason: string;
  /** Optional: where the request comes from (a host, a tool), recorded in the audit log. */
  from?: string;
}

export interface RiskControlReply {
  killed: boolean;
  by: string;
  reason: string;
  /** When the state changed, ms since epoch. */
  at: number;
}
