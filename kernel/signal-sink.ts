import type {
  FillMessage,
  RiskControlMessage,
  RiskControlReply,
  RiskRejection,
  SignalMessage,
} from './messages.js';

/** Where approved signals go for executors (NATS JetStream in production). */
export interface SignalSink {
  /**
   * Publish an approved signal; resolves when the bus acknowledged it
   * (JetStream ack), rejects on failure or timeout. `payload` is the
   * signal's JSON as encoded by the worker (the sink keeps it until sent);
   * without it the sink serialises `signal`. The caller wraps this in a
   * circuit breaker.
   */
  publishSignal(signal: SignalMessage, payload?: Uint8Array): Promise<void>;
  /** Publish a risk rejection (fire and forget). */
  publishRejection(rejection: RiskRejection): void;
  /**
   * Publish a quality event's JSON on `quality.<sym>` (fire and forget; core
   * NATS, not JetStream). `payload` is only valid during the call.
   */
  publishQuality?(sym: string, payload: Uint8Array): void;
  close(): Promise<void>;
}

/** Executors' fills and operators' risk control requests. */
export interface ControlHandlers {
  onFill(fill: FillMessage, account: string): void;
  /** Kill or resume all signal publication; returns the new state for the reply. */
  onRiskControl(op: 'kill' | 'resume', msg: RiskControlMessage): RiskControlReply;
  /** A control or fill message that failed validation. */
  onBadControl(subject: string, detail: string): void;
}

export interface ControlSource {
  start(handlers: ControlHandlers): Promise<void>;
  close(): Promise<void>;
}
