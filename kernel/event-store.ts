import type { AuditEvent } from './audit-event.js';
import type {
  PredictionMessage,
  QualityMessage,
  RiskRejectReason,
  SignalMessage,
} from './messages.js';

/** One accepted market message, as stored in `ticks`. */
export interface TickRow {
  type: 'trade' | 'quote';
  sym: string;
  venue: string;
  seq: number;
  /** Exchange time, µs since epoch. */
  tsUs: number;
  /** Kernel receive time, µs since epoch. */
  recvUs: number;
  px: number;
  qty: number;
  /** 1 buy, -1 sell, 0 unknown (trades); 0 for quotes. */
  side: number;
  bid: number;
  bidQty: number;
  ask: number;
  askQty: number;
}

/** A signal with the risk decision taken on it. */
export interface SignalRow {
  signal: SignalMessage;
  status: 'approved' | 'rejected';
  reason: RiskRejectReason | '';
}

/** A point of a kernel metric at a moment (periodic snapshots). */
export interface MetricRow {
  tsUs: number;
  name: string;
  /** Prometheus-style labels, `k=v` joined with commas, '' for none. */
  labels: string;
  value: number;
}

/** A batch of rows for every table; empty arrays are skipped. */
export interface StoreBatch {
  ticks: TickRow[];
  predictions: PredictionMessage[];
  signals: SignalRow[];
  quality: QualityMessage[];
  metrics: MetricRow[];
  /** Audit events (kernel/audit-event.ts): the same path as ticks, spill included. */
  audit: AuditEvent[];
}

/**
 * The history store (ClickHouse over HTTP, or embedded chdb). Declared here,
 * implemented by adapters/clickhouse and adapters/chdb.
 */
export interface EventStore {
  /** Create the database and tables (idempotent, versioned migrations). */
  migrate(): Promise<void>;
  /** Insert one batch; rejects (QLN_STORE_FAILED) when the store refused it. */
  insert(batch: StoreBatch): Promise<void>;
  /** Run a read query, rows as JSON objects. */
  query(sql: string): Promise<Array<Record<string, unknown>>>;
  /** True when the store answers. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
