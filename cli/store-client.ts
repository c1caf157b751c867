import type { OutputDecoderOptions } from '../actors/output-decoder.js';
import type { ModelRefEntry } from '../actors/model-refs.js';
import type { StoreWriterOptions, StoreWriterStats } from '../actors/store-writer.js';
import type { QilinConfig } from '../config/config.js';
import { ErrorCodes, QilinError, invalidArgument, type ErrorCode } from '../kernel/errors.js';
import type { AuditEvent } from '../kernel/audit-event.js';
import type { MetricRow } from '../kernel/event-store.js';
import { FrameRing } from '../kernel/frame-ring.js';
import type { OutputEvent } from '../kernel/output-record.js';
import { writeSignalRowFrame, type SignalDecision } from '../kernel/shard-frames.js';
import type { Logger } from '../kernel/logger.js';
import { WorkerThread } from '../kernel/worker-thread.js';
import { TABLES, type TableName } from '../adapters/clickhouse/row-format.js';
import { storeKind } from './store-factory.js';

/**
 * StoreClient: the main thread's handle on the store worker
 * (cli/store-worker-entry.ts has the topology diagram).
 *
 * - Ticks, predictions and quality events never pass through the main
 *   thread: each shard worker writes them into its store ring (a FrameRing,
 *   kernel/shard-frames.ts) and the store worker drains those rings.
 * - Signals, stored with the risk decision taken on this thread, go the same
 *   way: a SIGNAL_ROW frame (the binary event, the decision, the symbol)
 *   into this client's own ring, flushed once per task. No serialisation or
 *   structured clone per signal on the main thread; a full ring drops and
 *   counts (`stats().signalRowsDropped`), it never blocks.
 * - Metric snapshots (every few seconds) are posted as messages.
 * - Audit events (`writeAudit`) are posted as messages too; the worker
 *   answers once the writer's durable mark passes them (inserted or
 *   spilled), which is when the audit consumer acknowledges them on NATS.
 * - With the embedded store the chdb addon is imported on this thread before
 *   the worker starts: a worker that is the only holder of that native
 *   library crashes the process when it exits. Importing only maps the
 *   library; no query ever runs on the main thread.
 */

/** Options of {@link StoreClient}. */
export interface StoreClientOptions {
  config: QilinConfig;
  log: Logger;
  /** The shards' store rings (FrameRing buffers) the worker drains. */
  feeds: SharedArrayBuffer[];
  /** Bytes of this client's own ring of signal rows (default 1 MiB). */
  signalRingBytes?: number;
  /** What the binary prediction records do not carry (model name, …). */
  decoder: OutputDecoderOptions;
  /** Signal and metric rows are posted to the worker this often. Default 100. */
  postIntervalMs?: number;
  /** The worker reports its StoreWriter stats this often. Default 500. */
  statsIntervalMs?: number;
  /** StoreWriter tuning passed to the worker. */
  writer?: StoreWriterTuning;
  /** Spill folder (default `<stateDir>/spill/store`). */
  spillDir?: string;
}

/** The StoreWriter options that may cross the thread boundary. */
export type StoreWriterTuning = Partial<
  Pick<
    StoreWriterOptions,
    | 'maxBatchRows'
    | 'flushIntervalMs'
    | 'maxBufferedRows'
    | 'retryMinMs'
    | 'retryMaxMs'
    | 'maxReplayAttempts'
  >
>;

/** StoreWriter stats from the worker plus the state of the feeds. */
export interface StoreClientStats extends StoreWriterStats {
  /** Bytes waiting in the feed rings. */
  feedBytes: number;
  /** Signal rows dropped because this client's ring was full. */
  signalRowsDropped: number;
  /** False before start, after close, or if the worker died. */
  workerUp: boolean;
}

/** workerData of the store worker. */
export interface StoreWorkerInit {
  config: QilinConfig;
  feeds: SharedArrayBuffer[];
  decoder: OutputDecoderOptions;
  statsIntervalMs: number;
  writer: StoreWriterTuning;
  spillDir: string | undefined;
}

/** Main thread → store worker. */
export type StoreToWorker =
  | { type: 'rows'; metrics: MetricRow[] }
  /** Audit events; the worker answers `audit-durable` once they are inserted or spilled. */
  | { type: 'audit'; id: number; events: AuditEvent[] }
  | { type: 'flush'; id: number }
  | { type: 'query'; id: number; sql: string }
  /** A model version records may name from now on (actors/model-refs.ts); answered `flushed`. */
  | { type: 'model-ref'; id: number; model: number; entry: ModelRefEntry }
  | { type: 'stop' };

/** Store worker → main thread (besides ready / fatal / stopped). */
export type StoreFromWorker =
  | { type: 'stats'; stats: StoreWriterStats; feedBytes: number }
  | { type: 'flushed'; id: number }
  | { type: 'audit-durable'; id: number }
  | { type: 'result'; id: number; rows: Array<Record<string, unknown>> }
  | { type: 'result'; id: number; error: { code: string; message: string } };

const EMPTY_STATS: StoreWriterStats = {
  buffered: 0,
  inflight: 0,
  inserted: { ticks: 0, predictions: 0, signals: 0, quality: 0, metrics: 0, audit: 0 },
  failures: 0,
  spilledFiles: 0,
  spilledRows: 0,
  spillTornTails: 0,
  lagMs: 0,
  storeUp: false,
};

interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

export class StoreClient {
  private readonly opts: StoreClientOptions;
  private readonly thread: WorkerThread<StoreToWorker, StoreFromWorker>;
  private readonly signalRing: FrameRing;
  private signalRowsDropped = 0;
  private flushQueued = false;
  private state: 'new' | 'starting' | 'running' | 'closing' | 'closed' = 'new';
  private rows: Extract<StoreToWorker, { type: 'rows' }> = emptyRows();
  private rowsPending = 0;
  private postTimer: NodeJS.Timeout | undefined;
  private lastStats: StoreWriterStats = EMPTY_STATS;
  private lastFeedBytes = 0;
  private seq = 0;
  private readonly waiters = new Map<number, Waiter<Array<Record<string, unknown>>>>();
  private closing: Promise<void> | undefined;

  constructor(opts: StoreClientOptions) {
    for (const k of ['postIntervalMs', 'statsIntervalMs'] as const) {
      const v = opts[k];
      if (v !== undefined && (!Number.isInteger(v) || v < 1))
        invalidArgument(k, v, 'a positive integer');
    }
    this.opts = opts;
    this.signalRing = FrameRing.create(opts.signalRingBytes ?? 1 << 20);
    const init: StoreWorkerInit = {
      config: opts.config,
      feeds: [...opts.feeds, this.signalRing.buffer],
      // The model table is this thread's; the worker keeps its own (model-ref messages).
      decoder: { ...opts.decoder, models: undefined },
      statsIntervalMs: opts.statsIntervalMs ?? 500,
      writer: opts.writer ?? {},
      spillDir: opts.spillDir,
    };
    this.thread = new WorkerThread({
      url: new URL('./store-worker-entry.js', import.meta.url),
      name: 'qilin-store',
      workerData: init,
      log: opts.log,
      stopMessage: { type: 'stop' },
      closeTimeoutMs: 60_000,
    });
    this.thread.onMessage = (msg) => this.onMessage(msg);
    this.thread.onExit = (code, err) => {
      this.failWaiters(
        new QilinError(ErrorCodes.STORE_FAILED, `store worker exited (code ${code})`, {
          cause: err,
        }),
      );
      this.opts.log.error({ code, err }, 'store worker exited unexpectedly');
    };
  }

  /**
   * Spawn the worker; resolves once it has migrated the schema and started
   * its writer (leftover spill files replay in the background). Rejects with
   * the worker's error (QLN_STORE_FAILED when migration failed).
   */
  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'starting';
    if (storeKind(this.opts.config) === 'chdb') {
      // Pin the native library on this thread (see the class comment).
      await import('chdb');
    }
    try {
      await this.thread.start();
    } catch (err) {
      this.state = 'closed';
      await this.thread.closed;
      throw err;
    }
    this.state = 'running';
    this.postTimer = setInterval(() => this.postRows(), this.opts.postIntervalMs ?? 100);
  }

  /** Store a signal with its risk decision (a frame in this client's ring; never blocks). */
  writeSignal(event: OutputEvent, symbol: string, decision: SignalDecision): void {
    if (!writeSignalRowFrame(this.signalRing, event, symbol, decision)) {
      this.signalRing.countDropped();
      this.signalRowsDropped++;
      return;
    }
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushSignals);
    }
  }

  private readonly flushSignals = (): void => {
    this.flushQueued = false;
    this.signalRing.flush(true); // the store worker polls; see STORE_POLL_MS
  };

  /**
   * Store audit events the way ticks are stored (batched, spilled to disk
   * while the store is down); resolves once every one is inserted or in an
   * fsync'd spill file (the writer's durable mark), which is when the
   * JetStream audit consumer may acknowledge them. Rejects
   * (QLN_STORE_FAILED) when the store worker is not running or dies.
   */
  writeAudit(events: readonly AuditEvent[]): Promise<void> {
    if (this.state !== 'running' || !this.thread.alive) {
      return Promise.reject(
        new QilinError(
          ErrorCodes.STORE_FAILED,
          `store client is ${this.state}; audit events not stored`,
        ),
      );
    }
    return this.request({ type: 'audit', id: ++this.seq, events: [...events] }).then(
      () => undefined,
    );
  }

  /**
   * Tell the store worker about model `model` before any record can name it;
   * resolves once it knows it (so its rows name the version, never the
   * built-in model by mistake).
   */
  async addModelRef(model: number, entry: ModelRefEntry): Promise<void> {
    if (this.state !== 'running' || !this.thread.alive) return;
    await this.request({ type: 'model-ref', id: ++this.seq, model, entry });
  }

  writeMetrics(rows: readonly MetricRow[]): void {
    for (const r of rows) this.rows.metrics.push(r);
    this.rowsPending += rows.length;
  }

  /** Last stats the worker reported. */
  stats(): StoreClientStats {
    return {
      ...this.lastStats,
      feedBytes: this.lastFeedBytes,
      signalRowsDropped: this.signalRowsDropped,
      workerUp: this.thread.alive && this.state === 'running',
    };
  }

  /**
   * Resolves when everything in the feeds and written here so far is
   * inserted (or spilled while the store is down).
   */
  async flush(): Promise<void> {
    if (this.state !== 'running' || !this.thread.alive) return;
    this.postRows();
    this.signalRing.flush();
    await this.request({ type: 'flush', id: ++this.seq });
  }

  /**
   * Run a read query in the worker (the store lives there; with chdb it can
   * live nowhere else in this process). Rows as JSON objects.
   */
  query(sql: string): Promise<Array<Record<string, unknown>>> {
    if (this.state !== 'running' || !this.thread.alive) {
      return Promise.reject(
        new QilinError(ErrorCodes.STORE_FAILED, `store client is ${this.state}; cannot query`),
      );
    }
    return this.request({ type: 'query', id: ++this.seq, sql });
  }

  /** Rows in one of the store's tables (`ticks`, `signals`, …). */
  async count(table: TableName): Promise<number> {
    if (!(TABLES as readonly string[]).includes(table))
      invalidArgument('table', table, TABLES.join(', '));
    const rows = await this.query(`SELECT count() AS n FROM ${table}`);
    return Number(rows[0]?.['n'] ?? 0);
  }

  /** Drain the feeds, insert what is buffered, stop the worker. Safe twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.postTimer !== undefined) clearInterval(this.postTimer);
      this.postTimer = undefined;
      if (this.state === 'running') {
        this.postRows();
        this.signalRing.flush();
        this.state = 'closing';
      }
      await this.thread.close();
      this.state = 'closed';
    })();
    return this.closing;
  }

  private request(
    msg: Extract<StoreToWorker, { id: number }>,
  ): Promise<Array<Record<string, unknown>>> {
    return new Promise((resolve, reject) => {
      this.waiters.set(msg.id, { resolve, reject });
      this.thread.post(msg);
    });
  }

  private onMessage(msg: StoreFromWorker): void {
    switch (msg.type) {
      case 'stats':
        this.lastStats = msg.stats;
        this.lastFeedBytes = msg.feedBytes;
        return;
      case 'flushed':
      case 'audit-durable':
        this.waiters.get(msg.id)?.resolve([]);
        this.waiters.delete(msg.id);
        return;
      case 'result': {
        const w = this.waiters.get(msg.id);
        this.waiters.delete(msg.id);
        if ('rows' in msg) w?.resolve(msg.rows);
        else w?.reject(new QilinError(msg.error.code as ErrorCode, msg.error.message));
        return;
      }
    }
  }

  private failWaiters(err: Error): void {
    for (const w of this.waiters.values()) w.reject(err);
    this.waiters.clear();
  }

  private postRows(): void {
    if (this.rowsPending === 0 || !this.thread.alive) return;
    this.thread.post(this.rows);
    this.rows = emptyRows();
    this.rowsPending = 0;
  }
}

function emptyRows(): Extract<StoreToWorker, { type: 'rows' }> {
  return { type: 'rows', metrics: [] };
}
