import { Worker } from 'node:worker_threads';
import type { StoreWriterOptions, StoreWriterStats } from '../actors/store-writer.js';
import type { QilinConfig } from '../config/config.js';
import { ErrorCodes, QilinError, invalidArgument, type ErrorCode } from '../kernel/errors.js';
import type { MetricRow, SignalRow } from '../kernel/event-store.js';
import type { Logger } from '../kernel/logger.js';
import { MARKET_RECORD_BYTES, encodeMarket, type MarketEvent } from '../kernel/market-record.js';
import type { PredictionMessage, QualityMessage } from '../kernel/messages.js';
import { SpscRing } from '../kernel/spsc-ring.js';
import { TABLES, type TableName } from '../adapters/clickhouse/row-format.js';
import { storeKind } from './store-factory.js';

/**
 * StoreClient: the main thread's handle on the store worker
 * (cli/store-worker-entry.ts has the topology diagram).
 *
 * - Ticks go through a SpscRing of 64-byte market records: `writeTick` is
 *   `encodeMarket` into a claimed slot, no allocation. The venue id rides in
 *   the upper 16 bits of the record's first word (kind and side use the low
 *   16; decodeMarket ignores the rest).
 * - Full-ring policy: the main thread never blocks. When the ring is full the
 *   tick is dropped, counted (`stats().dropped`, the ring's `dropped`) and
 *   `writeTick` returns false. The ring (default 2^18 records × 64 B = 16 MiB)
 *   is what bounds the memory between the kernel and a slow store; behind it
 *   the StoreWriter spills to disk, so the ring only fills when the worker
 *   itself cannot keep up.
 * - Predictions, signals, quality events and metrics are rare next to ticks:
 *   they are buffered here and posted as one message every `postIntervalMs`.
 * - With the embedded store the chdb addon is imported on this thread before
 *   the worker starts: a worker that is the only holder of that native
 *   library crashes the process when it exits. Importing only maps the
 *   library; no query ever runs on the main thread.
 */

/** Options of {@link StoreClient}. */
export interface StoreClientOptions {
  config: QilinConfig;
  log: Logger;
  /** Tick ring records, a power of two. Default 2^18 (16 MiB). */
  ringCapacity?: number;
  /** Name of a symbol id, asked once per id on its first tick (else call `symbol()`). */
  symbolName?: (symId: number) => string | undefined;
  /** Rows other than ticks are posted to the worker this often. Default 100. */
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

/** StoreWriter stats from the worker plus the tick ring's state. */
export interface StoreClientStats extends StoreWriterStats {
  /** Ticks in the ring, not yet taken by the worker. */
  ringSize: number;
  ringCapacity: number;
  /** Ticks dropped because the ring was full (or the client was not running). */
  dropped: number;
  /** Same as `dropped` (name used by the kernel's metrics). */
  tickRingDropped: number;
  /** False before start, after close, or if the worker died. */
  workerUp: boolean;
}

/** workerData of the store worker. */
export interface StoreWorkerInit {
  config: QilinConfig;
  ring: SharedArrayBuffer;
  symbols: Array<[number, string]>;
  venues: Array<[number, string]>;
  statsIntervalMs: number;
  writer: StoreWriterTuning;
  spillDir: string | undefined;
}

/** Main thread → store worker. */
export type StoreToWorker =
  | { type: 'symbol'; id: number; name: string }
  | { type: 'venue'; id: number; name: string }
  | {
      type: 'rows';
      predictions: PredictionMessage[];
      signals: SignalRow[];
      quality: QualityMessage[];
      metrics: MetricRow[];
    }
  | { type: 'flush'; id: number }
  | { type: 'query'; id: number; sql: string }
  | { type: 'stop' };

/** Store worker → main thread. */
export type StoreFromWorker =
  | { type: 'ready' }
  | { type: 'error'; code: string; message: string }
  | { type: 'stats'; stats: StoreWriterStats }
  | { type: 'flushed'; id: number }
  | { type: 'result'; id: number; rows: Array<Record<string, unknown>> }
  | { type: 'result'; id: number; error: { code: string; message: string } }
  | { type: 'stopped' };

/** Venue ids live in 16 bits of the record's first word. */
const MAX_VENUES = 0xffff;

const EMPTY_STATS: StoreWriterStats = {
  buffered: 0,
  inflight: 0,
  inserted: { ticks: 0, predictions: 0, signals: 0, quality: 0, metrics: 0 },
  failures: 0,
  spilledFiles: 0,
  spilledRows: 0,
  lagMs: 0,
  storeUp: false,
};

export class StoreClient {
  private readonly opts: StoreClientOptions;
  private readonly ring: SpscRing;
  private worker: Worker | undefined;
  private state: 'new' | 'starting' | 'running' | 'closing' | 'closed' = 'new';
  /** 1 at index symId once the worker was told the name. */
  private knownSyms = new Uint8Array(1024);
  private readonly symNames: Array<[number, string]> = [];
  private readonly venueIds = new Map<string, number>();
  private readonly venueNames: Array<[number, string]> = [];
  private dropped = 0;
  private rows: Extract<StoreToWorker, { type: 'rows' }> = emptyRows();
  private rowsPending = 0;
  private postTimer: NodeJS.Timeout | undefined;
  private lastStats: StoreWriterStats = EMPTY_STATS;
  private flushSeq = 0;
  private readonly flushWaiters = new Map<
    number,
    { resolve: () => void; reject: (e: Error) => void }
  >();
  private readonly queryWaiters = new Map<
    number,
    { resolve: (rows: Array<Record<string, unknown>>) => void; reject: (e: Error) => void }
  >();
  private exited: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;

  constructor(opts: StoreClientOptions) {
    const cap = opts.ringCapacity ?? 1 << 18;
    if (!Number.isInteger(cap) || cap < 2 || cap > 1 << 24 || (cap & (cap - 1)) !== 0)
      invalidArgument('ringCapacity', cap, 'a power of two from 2 to 2^24');
    for (const k of ['postIntervalMs', 'statsIntervalMs'] as const) {
      const v = opts[k];
      if (v !== undefined && (!Number.isInteger(v) || v < 1))
        invalidArgument(k, v, 'a positive integer');
    }
    this.opts = opts;
    this.ring = SpscRing.create(cap, MARKET_RECORD_BYTES);
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
    const init: StoreWorkerInit = {
      config: this.opts.config,
      ring: this.ring.buffer,
      symbols: this.symNames.slice(),
      venues: this.venueNames.slice(),
      statsIntervalMs: this.opts.statsIntervalMs ?? 500,
      writer: this.opts.writer ?? {},
      spillDir: this.opts.spillDir,
    };
    const worker = new Worker(new URL('./store-worker-entry.js', import.meta.url), {
      workerData: init,
      name: 'qilin-store',
    });
    this.worker = worker;
    let lastError: unknown;
    worker.on('error', (err) => {
      lastError = err;
      this.opts.log.error({ err }, 'store worker failed');
    });
    this.exited = new Promise<void>((resolve) => {
      worker.once('exit', (code) => {
        this.worker = undefined;
        const err = new QilinError(
          ErrorCodes.STORE_FAILED,
          `store worker exited (code ${code}) with ${this.flushWaiters.size} flush(es) pending`,
          { cause: lastError },
        );
        for (const w of this.flushWaiters.values()) w.reject(err);
        this.flushWaiters.clear();
        for (const w of this.queryWaiters.values()) w.reject(err);
        this.queryWaiters.clear();
        if (this.state === 'running') {
          this.opts.log.error({ code, err: lastError }, 'store worker exited unexpectedly');
        }
        resolve();
      });
    });
    await new Promise<void>((resolve, reject) => {
      const onStartExit = (): void =>
        reject(
          new QilinError(ErrorCodes.STORE_FAILED, 'store worker exited before it was ready', {
            cause: lastError,
          }),
        );
      worker.once('exit', onStartExit);
      worker.on('message', (msg: StoreFromWorker) => {
        switch (msg.type) {
          case 'ready':
            worker.off('exit', onStartExit);
            resolve();
            break;
          case 'error':
            worker.off('exit', onStartExit);
            reject(new QilinError(msg.code as ErrorCode, msg.message));
            break;
          case 'stats':
            this.lastStats = msg.stats;
            break;
          case 'flushed':
            this.flushWaiters.get(msg.id)?.resolve();
            this.flushWaiters.delete(msg.id);
            break;
          case 'result': {
            const q = this.queryWaiters.get(msg.id);
            this.queryWaiters.delete(msg.id);
            if ('rows' in msg) q?.resolve(msg.rows);
            else q?.reject(new QilinError(msg.error.code as ErrorCode, msg.error.message));
            break;
          }
          case 'stopped':
            break;
        }
      });
    }).catch(async (err: unknown) => {
      this.state = 'closed';
      await this.exited;
      throw err;
    });
    this.state = 'running';
    this.postTimer = setInterval(() => this.postRows(), this.opts.postIntervalMs ?? 100);
  }

  /** Tell the worker the name of a symbol id (before its first tick, or use `symbolName`). */
  symbol(id: number, name: string): void {
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff)
      invalidArgument('symbol id', id, 'a u32');
    if (id >= this.knownSyms.length) {
      const grown = new Uint8Array(Math.max(id + 1, this.knownSyms.length * 2));
      grown.set(this.knownSyms);
      this.knownSyms = grown;
    }
    this.knownSyms[id] = 1;
    this.symNames.push([id, name]);
    this.worker?.postMessage({ type: 'symbol', id, name } satisfies StoreToWorker);
  }

  /**
   * Queue a tick for the `ticks` table. Returns false (and counts) when the
   * ring is full or the client is not running. No allocation once the
   * symbol and the venue have been seen.
   */
  writeTick(ev: MarketEvent, venue: string): boolean {
    if (this.state !== 'running') {
      this.dropped++;
      return false;
    }
    if (this.knownSyms[ev.symId] !== 1) {
      const name = this.opts.symbolName?.(ev.symId);
      if (name === undefined)
        invalidArgument('symId', ev.symId, 'an id named by symbol(id, name) or options.symbolName');
      this.symbol(ev.symId, name);
    }
    let venueId = this.venueIds.get(venue);
    if (venueId === undefined) venueId = this.newVenue(venue);
    const ring = this.ring;
    const at = ring.claim();
    if (at === -1) {
      ring.countDropped();
      this.dropped++;
      return false;
    }
    encodeMarket(ev, ring.f64, ring.u32, at);
    ring.u32[at * 2] = (ring.u32[at * 2]! & 0xffff) | (venueId << 16);
    ring.publish();
    return true;
  }

  writePrediction(msg: PredictionMessage): void {
    this.rows.predictions.push(msg);
    this.rowsPending++;
  }

  writeSignal(row: SignalRow): void {
    this.rows.signals.push(row);
    this.rowsPending++;
  }

  writeQuality(msg: QualityMessage): void {
    this.rows.quality.push(msg);
    this.rowsPending++;
  }

  writeMetrics(rows: readonly MetricRow[]): void {
    for (const r of rows) this.rows.metrics.push(r);
    this.rowsPending += rows.length;
  }

  /** Last stats the worker reported, plus the ring's state now. */
  stats(): StoreClientStats {
    const r = this.ring.stats();
    return {
      ...this.lastStats,
      ringSize: r.size,
      ringCapacity: r.capacity,
      dropped: this.dropped,
      tickRingDropped: this.dropped,
      workerUp: this.worker !== undefined && this.state === 'running',
    };
  }

  /** Resolves when everything written so far is inserted (or spilled while the store is down). */
  flush(): Promise<void> {
    const worker = this.worker;
    if (this.state !== 'running' || worker === undefined) return Promise.resolve();
    this.postRows();
    const id = ++this.flushSeq;
    return new Promise<void>((resolve, reject) => {
      this.flushWaiters.set(id, { resolve, reject });
      worker.postMessage({ type: 'flush', id } satisfies StoreToWorker);
    });
  }

  /**
   * Run a read query in the worker (the store lives there; with chdb it can
   * live nowhere else in this process). Rows as JSON objects.
   */
  query(sql: string): Promise<Array<Record<string, unknown>>> {
    const worker = this.worker;
    if (this.state !== 'running' || worker === undefined) {
      return Promise.reject(
        new QilinError(ErrorCodes.STORE_FAILED, `store client is ${this.state}; cannot query`),
      );
    }
    const id = ++this.flushSeq;
    return new Promise((resolve, reject) => {
      this.queryWaiters.set(id, { resolve, reject });
      worker.postMessage({ type: 'query', id, sql } satisfies StoreToWorker);
    });
  }

  /** Rows in one of the store's tables (`ticks`, `signals`, …). */
  async count(table: TableName): Promise<number> {
    if (!(TABLES as readonly string[]).includes(table))
      invalidArgument('table', table, TABLES.join(', '));
    const rows = await this.query(`SELECT count() AS n FROM ${table}`);
    return Number(rows[0]?.['n'] ?? 0);
  }

  /** Drain the ring, flush, stop the worker. Safe twice. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.state === 'new') {
      this.state = 'closed';
      return;
    }
    if (this.postTimer !== undefined) clearInterval(this.postTimer);
    this.postTimer = undefined;
    if (this.state === 'running') {
      this.postRows();
      this.state = 'closing';
      this.worker?.postMessage({ type: 'stop' } satisfies StoreToWorker);
      this.ring.wakeConsumer();
    }
    await this.exited;
    this.state = 'closed';
  }

  private newVenue(venue: string): number {
    const id = this.venueIds.size;
    if (id > MAX_VENUES)
      invalidArgument('venue', venue, `at most ${MAX_VENUES + 1} distinct venues`);
    this.venueIds.set(venue, id);
    this.venueNames.push([id, venue]);
    this.worker?.postMessage({ type: 'venue', id, name: venue } satisfies StoreToWorker);
    return id;
  }

  private postRows(): void {
    if (this.rowsPending === 0 || this.worker === undefined) return;
    this.worker.postMessage(this.rows satisfies StoreToWorker);
    this.rows = emptyRows();
    this.rowsPending = 0;
  }
}

function emptyRows(): Extract<StoreToWorker, { type: 'rows' }> {
  return { type: 'rows', predictions: [], signals: [], quality: [], metrics: [] };
}
