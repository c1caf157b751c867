/**
 * The one error catalogue of Qilin.
 *
 * Every error the kernel raises carries a stable `code` (`QLN_*`), a message
 * that names the bad value, and, where there is one, the `cause`. Across worker
 * threads errors lose their prototype, so callers match on `code`, never on
 * `instanceof`.
 */
export const ErrorCodes = {
  /** A configuration key has a value outside what is allowed. */
  CONFIG_INVALID: 'QLN_CONFIG_INVALID',
  /** A configuration file could not be read or parsed. */
  CONFIG_FILE: 'QLN_CONFIG_FILE',
  /** A constructor or function was given an option it cannot accept. */
  INVALID_ARGUMENT: 'QLN_INVALID_ARGUMENT',
  /** A ring was full and the record was dropped under the documented policy. */
  RING_FULL: 'QLN_RING_FULL',
  /** A shared ring buffer does not have the expected layout. */
  RING_LAYOUT: 'QLN_RING_LAYOUT',
  /** A worker thread exited or threw; the supervisor restarts it. */
  WORKER_DIED: 'QLN_WORKER_DIED',
  /** A worker kept dying faster than the restart budget allows. */
  WORKER_RESTART_BUDGET: 'QLN_WORKER_RESTART_BUDGET',
  /** The pool was used after close(). */
  POOL_CLOSED: 'QLN_POOL_CLOSED',
  /** The symbol table reached its configured maximum size. */
  SYMBOL_TABLE_FULL: 'QLN_SYMBOL_TABLE_FULL',
  /** A local service could not be installed. */
  SERVICE_INSTALL: 'QLN_SERVICE_INSTALL',
  /** A local service's port is held by another process. */
  SERVICE_PORT_IN_USE: 'QLN_SERVICE_PORT_IN_USE',
  /** A local service did not answer within its start-up deadline. */
  SERVICE_START_TIMEOUT: 'QLN_SERVICE_START_TIMEOUT',
  /** A market message failed to decode or validate. */
  TICK_REJECTED: 'QLN_TICK_REJECTED',
  /** The native uWebSockets.js binding did not load. */
  UWS_NATIVE_MISSING: 'QLN_UWS_NATIVE_MISSING',
  /** The store rejected a write or a query. */
  STORE_FAILED: 'QLN_STORE_FAILED',
  /** A WebSocket client sent a frame the server cannot accept. */
  WS_BAD_FRAME: 'QLN_WS_BAD_FRAME',
  /** A local service exited or failed to spawn before it answered. */
  SERVICE_START_FAILED: 'QLN_SERVICE_START_FAILED',
  /** The message bus (NATS) could not be reached. */
  BUS_UNAVAILABLE: 'QLN_BUS_UNAVAILABLE',
  /** A publish was not acknowledged (JetStream ack failed or timed out). */
  PUBLISH_FAILED: 'QLN_PUBLISH_FAILED',
  /** An actor threw while handling a record (the record is skipped). */
  ACTOR_FAILED: 'QLN_ACTOR_FAILED',
  /** An unexpected internal failure; the message says where. */
  INTERNAL: 'QLN_INTERNAL',
  /** A benchmark phase did not finish within its deadline. */
  BENCH_TIMEOUT: 'QLN_BENCH_TIMEOUT',
  /** A benchmark consumer saw records lost, duplicated or out of sequence. */
  BENCH_INTEGRITY: 'QLN_BENCH_INTEGRITY',
  /** A CLI command was used wrongly. */
  CLI_USAGE: 'QLN_CLI_USAGE',
  /** A user feature formula is malformed or uses something not allowed (names the feature, position, reason). */
  FORMULA_INVALID: 'QLN_FORMULA_INVALID',
  /** A market partition this kernel is configured to take is claimed by another running kernel. */
  PARTITION_CLAIMED: 'QLN_PARTITION_CLAIMED',
  /**
   * A state snapshot cannot be used: torn, of another format, code or
   * configuration (fingerprint), or unreadable. The actors start cold.
   */
  SNAPSHOT_INVALID: 'QLN_SNAPSHOT_INVALID',
  /** An API key is missing, unknown, revoked or expired (HTTP 401, WebSocket 401 / close 4001, 4002). */
  AUTH_REQUIRED: 'QLN_AUTH_REQUIRED',
  /** A valid API key whose role does not allow the operation (HTTP 403, `forbidden` frame). */
  AUTH_FORBIDDEN: 'QLN_AUTH_FORBIDDEN',
  /** A WebSocket client went over a per-key limit (connections, subscribe rate, topics); close 4029. */
  WS_LIMIT: 'QLN_WS_LIMIT',
  /** The API key store (Redis) was used with a bad key id or record, or is unreachable. */
  API_KEY_STORE: 'QLN_API_KEY_STORE',
  // ── audit log (issue 11 item 4) ──
  /** An audit event is malformed (names the field), or looks like it holds a secret. */
  AUDIT_INVALID: 'QLN_AUDIT_INVALID',
  /** An audit event could not be recorded (JetStream `AUDIT` not reachable or not acknowledging). */
  AUDIT_UNAVAILABLE: 'QLN_AUDIT_UNAVAILABLE',
  /**
   * A NATS credential (nkey seed file) is missing, unreadable, readable by
   * everyone or not a user seed; the message names the file, never its content.
   */
  NATS_CREDENTIALS: 'QLN_NATS_CREDENTIALS',
  /**
   * A model cannot be used: the file does not load, or its inputs or outputs
   * do not match the features and outputs it is declared with (the message
   * names what differs).
   */
  MODEL_INVALID: 'QLN_MODEL_INVALID',
  /** Inference failed on a batch (the runtime threw); the rows of that batch get no prediction from it. */
  MODEL_FAILED: 'QLN_MODEL_FAILED',
  // ── model registry in NATS JetStream (issue 8 item 2) ──
  /**
   * The model registry in NATS (KV + Object Store) could not be read or
   * written: NATS unreachable, a permission the credential lacks, a bucket
   * missing; the message names the bucket and the operation.
   */
  MODEL_REGISTRY_UNAVAILABLE: 'QLN_MODEL_REGISTRY_UNAVAILABLE',
  /**
   * A registry state change (promote, rollback, shadow, push) lost the
   * compare-and-set race against other writers more times than allowed; nothing
   * was changed by it, retry.
   */
  MODEL_REGISTRY_CONFLICT: 'QLN_MODEL_REGISTRY_CONFLICT',
  // ── end model registry ──
  // ── replay engine (issue 10 item 1) ──
  /**
   * A replay shard failed: its worker thread could not start the actor
   * module, apply a control message (e.g. load a model), or run a chunk
   * (the message names the shard and the cause). The replay stops.
   */
  REPLAY_FAILED: 'QLN_REPLAY_FAILED',
  // ── end replay engine ──
  // ── backtest: fill model and portfolio (issue 10 items 3-4) ──
  /**
   * The simulated book refused an order: a quantity or price that is not a
   * finite positive number, a side other than buy/sell, or a symbol whose ring
   * of open orders is full (the message names the value and the limit).
   */
  BACKTEST_ORDER_REJECTED: 'QLN_BACKTEST_ORDER_REJECTED',
  /**
   * The portfolio refused a fill: unknown account, a side other than buy/sell,
   * or a quantity, price or fee that is not a finite number (≥ 0, price > 0).
   */
  BACKTEST_FILL_INVALID: 'QLN_BACKTEST_FILL_INVALID',
  // ── backtest sweeps (issue 10 item 5: backtest/sweep.ts) ──
  /**
   * A parameter sweep stopped: a grid point failed in its worker (the message
   * names the point's index and parameters and carries the worker's error
   * code), a sweep worker died, or the sweep was cancelled.
   */
  BACKTEST_SWEEP_FAILED: 'QLN_BACKTEST_SWEEP_FAILED',
  // ── end backtest sweeps ──
  // ── replay sources (issue 10 item 1, backtest/sources/) ──
  /**
   * A replay source cannot be read at all: a missing or unreadable file, a
   * header without a required column or with an unknown or repeated one, a
   * store or stream that cannot be reached or opened (the embedded store held
   * by a running kernel). The message names the source and what is wrong.
   * Malformed rows are not this: the source counts them in `rejected`.
   */
  REPLAY_SOURCE_FAILED: 'QLN_REPLAY_SOURCE_FAILED',
  /**
   * A replay source spec (`--from`, `openTickSource`) that does not parse: an
   * unknown kind or option, or a bad value; the message names the part that
   * is wrong and what is allowed.
   */
  REPLAY_SOURCE_SPEC: 'QLN_REPLAY_SOURCE_SPEC',
  // ── end replay sources ──
  // ── jobs (issue 10 item 6; jobs/README.md) ──
  /**
   * A job was submitted with a type that is not registered, or params its
   * type refuses (the message names the param, the value and what is allowed).
   */
  JOB_INVALID: 'QLN_JOB_INVALID',
  /** No job with that id in the queue (never submitted, or removed). */
  JOB_NOT_FOUND: 'QLN_JOB_NOT_FOUND',
  /** A job was cancelled (`qilin jobs cancel`, POST /jobs/<id>/cancel): it stopped and is not retried. */
  JOB_CANCELLED: 'QLN_JOB_CANCELLED',
  /** A job ran past its timeout and was stopped; retried while it has attempts left. */
  JOB_TIMEOUT: 'QLN_JOB_TIMEOUT',
  /** The job queue (BullMQ on Redis) could not be reached or refused an operation. */
  JOB_QUEUE_UNAVAILABLE: 'QLN_JOB_QUEUE_UNAVAILABLE',
  // ── end jobs ──
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface QilinErrorOptions {
  cause?: unknown;
  /** Structured details for logs (the key, the value, what is allowed …). */
  details?: Readonly<Record<string, unknown>>;
}

/** Base class of every error raised by Qilin. Match on `code`. */
export class QilinError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: QilinErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'QilinError';
    this.code = code;
    this.details = options.details ?? {};
  }

  /** A plain object that survives structured clone and JSON. */
  toJSON(): { code: ErrorCode; message: string; details: Readonly<Record<string, unknown>> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** True when `err` carries the given catalogue code (works across threads). */
export function hasCode(err: unknown, code: ErrorCode): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

/** Throw a QLN_INVALID_ARGUMENT naming the option, the value and what is allowed. */
export function invalidArgument(name: string, value: unknown, allowed: string): never {
  throw new QilinError(
    ErrorCodes.INVALID_ARGUMENT,
    `invalid ${name}: ${JSON.stringify(value)} (allowed: ${allowed})`,
    { details: { name, value, allowed } },
  );
}
