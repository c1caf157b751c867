import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type {
  EventStore,
  MetricRow,
  SignalRow,
  StoreBatch,
  TickRow,
} from '../kernel/event-store.js';
import type { AuditEvent } from '../kernel/audit-event.js';
import { ErrorCodes, invalidArgument } from '../kernel/errors.js';
import type { Logger } from '../kernel/logger.js';
import type { PredictionMessage, QualityMessage } from '../kernel/messages.js';

/**
 * StoreWriter: batches rows per table into an EventStore, and keeps them when
 * the store is down.
 *
 * ```
 *  add*() ─► buffer (per table) ──flush: maxBatchRows rows or flushIntervalMs──► insert ─► store
 *               │                                                                 │ fails
 *               │ above maxBufferedRows, or store down                            ▼
 *               └──────────────────────────────► spill file <spillDir>/<epochMs>-<n>.ndjson
 *                                                    │
 *                   ping() with backoff 200 ms → 5 s │ store answers again
 *                                                    ▼
 *                              replay files oldest first; delete each after its insert
 * ```
 * - One insert in flight at a time (a single pump loop); spill files are
 *   replayed before newer buffered rows, so rows reach the store roughly in
 *   arrival order.
 * - Memory is bounded: the buffer never holds more than `maxBufferedRows`
 *   (beyond that it is written to a spill file at once, synchronously: this
 *   runs in the store worker, where a blocking write is acceptable), plus the
 *   one batch in flight.
 * - Nothing is lost while the store is down: rows are on disk, and a spill
 *   file is deleted only after its insert succeeded. Leftover files from a
 *   previous run are replayed by `start()`.
 * - Delivery is at-least-once: an insert that times out after the server
 *   committed it is spilled and replayed, so that batch appears twice. A
 *   tick's copies share its key and read once under `FROM ticks FINAL`
 *   (docs/sql.md); signals are unique by `id`.
 * - Durability mark (`durableMark()`): rows are numbered in the order they
 *   are added; every row numbered below the mark is inserted, or in a spill
 *   file that is fsync'd (file and folder). JetStream input acknowledges a
 *   tick only once its row is below it (docs/adr/0005-exactly-once-ticks.md).
 *   A spill file that cannot be written freezes the mark for good (its rows
 *   exist nowhere else): nothing after it is acknowledged; JetStream
 *   redelivers it to the next run.
 * - A spill file the store keeps refusing while it answers pings (bad data,
 *   not an outage) is moved to `<spillDir>/rejected/` after
 *   `maxReplayAttempts`, logged, and kept for a human.
 *
 * Spill file format: one JSON line per non-empty table of the batch,
 * `{"table":"ticks","rows":[<TickRow>…]}` (`table` is the StoreBatch key).
 */

/** Options of {@link StoreWriter}. */
export interface StoreWriterOptions {
  store: EventStore;
  log: Logger;
  /** Folder for spill files (created). */
  spillDir: string;
  /** Insert when this many rows (all tables) are buffered. Default 50 000. */
  maxBatchRows?: number;
  /**
   * Insert rows at the latest this long after the oldest arrived. Default
   * 1000: every insert is a new part per table for the MergeTree to merge
   * (files created, merged, unlinked); at 200 ms the embedded store spent
   * more CPU on parts than the kernel on ticks (measured: ~600 unlink/s at
   * 2k ticks/s).
   */
  flushIntervalMs?: number;
  /** Spill at once when the buffer passes this (insert slow or store down). Default 100 000. */
  maxBufferedRows?: number;
  /** First retry delay after a failure; doubles up to retryMaxMs. Default 200. */
  retryMinMs?: number;
  /** Default 5000. */
  retryMaxMs?: number;
  /** Failed replays of one file (store answering pings) before it is set aside. Default 5. */
  maxReplayAttempts?: number;
  /**
   * Called with each batch of added rows once the writer is done with it
   * (inserted, or written to a spill file); the writer reads none of its
   * row objects afterwards, so the caller may reuse them (the store worker
   * pools them: rows held for a second and then dropped were most of its
   * garbage, promoted by every scavenge). Rows read back from spill files
   * are never passed here.
   */
  release?: (batch: StoreBatch) => void;
}

/** What the writer has done; `inserted` counts rows per StoreBatch key. */
export interface StoreWriterStats {
  /** Rows in the buffer (at most maxBufferedRows). */
  buffered: number;
  /** Rows of the insert in flight (at most maxBufferedRows). */
  inflight: number;
  inserted: Record<keyof StoreBatch, number>;
  /** Failed inserts (of live batches and of replays). */
  failures: number;
  /** Spill files waiting for replay. */
  spilledFiles: number;
  /** Rows in those files. */
  spilledRows: number;
  /** Spill files read back that ended in a torn record (its complete records replayed, the tail dropped). */
  spillTornTails: number;
  /** Age of the oldest row not yet inserted or spilled, ms (0 when none). */
  lagMs: number;
  storeUp: boolean;
}

interface SpillFile {
  name: string;
  rows: number;
  attempts: number;
}

interface FlushWaiter {
  mark: number;
  resolve: () => void;
}

const KEYS: ReadonlyArray<keyof StoreBatch> = [
  'ticks',
  'predictions',
  'signals',
  'quality',
  'metrics',
  'audit',
];
const SPILL_NAME = /^(\d+)-(\d+)\.ndjson$/;

function positiveInt(name: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < 1) invalidArgument(name, x, 'a positive integer');
  return x;
}

function emptyBatch(): StoreBatch {
  return { ticks: [], predictions: [], signals: [], quality: [], metrics: [], audit: [] };
}

function sizeOf(b: StoreBatch): number {
  return (
    b.ticks.length +
    b.predictions.length +
    b.signals.length +
    b.quality.length +
    b.metrics.length +
    b.audit.length
  );
}

/** A spill file's text read back: its complete records, and the bytes of a torn last one. */
export interface ParsedSpill {
  batch: StoreBatch;
  /** Rows in `batch` (all tables). */
  rows: number;
  /** Length (UTF-16 units) of an unparseable last record that was dropped; 0 when none. */
  tornBytes: number;
}

/**
 * Parse a spill file's text. Spill files are written whole (tmp + fsync +
 * rename), but a file cut short by a full disk, a copy or a crash of an
 * older writer can end inside a record: a last line (not terminated by
 * `\n`) that is not valid JSON is that torn tail, dropped and reported in
 * `tornBytes`; every complete record before it is kept. A record is complete
 * when its JSON is, with or without the final `\n`. A bad line anywhere
 * else is corruption, not a tear: it throws (the file is set aside).
 */
export function parseSpill(text: string): ParsedSpill {
  const batch = emptyBatch();
  const lines = text.split('\n');
  let tornBytes = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    let rec: { table: keyof StoreBatch; rows: unknown[] };
    try {
      rec = JSON.parse(line) as { table: keyof StoreBatch; rows: unknown[] };
    } catch (err) {
      if (i === lines.length - 1) {
        tornBytes = line.length;
        break;
      }
      throw err;
    }
    if (
      rec === null ||
      typeof rec !== 'object' ||
      !KEYS.includes(rec.table) ||
      !Array.isArray(rec.rows)
    )
      throw new Error(`bad spill line for table ${JSON.stringify(rec?.table)}`);
    (batch[rec.table] as unknown[]).push(...rec.rows);
  }
  return { batch, rows: sizeOf(batch), tornBytes };
}

export class StoreWriter {
  private readonly store: EventStore;
  private readonly log: Logger;
  private readonly spillDir: string;
  private readonly maxBatchRows: number;
  private readonly flushIntervalMs: number;
  private readonly maxBufferedRows: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly maxReplayAttempts: number;
  private readonly release: ((batch: StoreBatch) => void) | undefined;

  private buffer: StoreBatch = emptyBatch();
  /** A released batch with its arrays emptied, reused by the next takeBuffer/spill (no new arrays per flush). */
  private spare: StoreBatch | undefined;
  private buffered = 0;
  /** Date.now() when the oldest buffered row arrived. */
  private oldestAt = 0;
  private inflightRows = 0;
  private inflightOldestAt = 0;
  /** Number (in `added` order) of the first row of the insert in flight. */
  private inflightStart = 0;
  /** Rows from this number on were lost by a failed spill write (-1: none). */
  private frozenAt = -1;
  private readonly inserted: Record<keyof StoreBatch, number> = {
    ticks: 0,
    predictions: 0,
    signals: 0,
    quality: 0,
    metrics: 0,
    audit: 0,
  };
  private failures = 0;
  /** Spill files that ended in a torn record (each counted once). */
  private tornTails = 0;
  private readonly tornSeen = new Set<string>();
  private readonly spills: SpillFile[] = [];
  private spillSeq = 0;
  private storeUp = true;
  private retryDelay: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private pumping: Promise<void> | undefined;
  private forceFlush = false;
  /** Rows ever added, and rows ever inserted or spilled out of the buffer. */
  private added = 0;
  private settled = 0;
  private waiters: FlushWaiter[] = [];
  private state: 'new' | 'running' | 'closing' | 'closed' = 'new';
  private closing: Promise<void> | undefined;

  constructor(opts: StoreWriterOptions) {
    this.store = opts.store;
    this.log = opts.log;
    if (typeof opts.spillDir !== 'string' || opts.spillDir === '')
      invalidArgument('spillDir', opts.spillDir, 'a folder path');
    this.spillDir = opts.spillDir;
    this.maxBatchRows = positiveInt('maxBatchRows', opts.maxBatchRows, 50_000);
    this.flushIntervalMs = positiveInt('flushIntervalMs', opts.flushIntervalMs, 1000);
    this.maxBufferedRows = positiveInt('maxBufferedRows', opts.maxBufferedRows, 100_000);
    if (this.maxBufferedRows < this.maxBatchRows)
      invalidArgument(
        'maxBufferedRows',
        this.maxBufferedRows,
        `at least maxBatchRows (${this.maxBatchRows})`,
      );
    this.retryMinMs = positiveInt('retryMinMs', opts.retryMinMs, 200);
    this.retryMaxMs = positiveInt('retryMaxMs', opts.retryMaxMs, 5000);
    this.maxReplayAttempts = positiveInt('maxReplayAttempts', opts.maxReplayAttempts, 5);
    this.release = opts.release;
    this.retryDelay = this.retryMinMs;
  }

  /**
   * Create the spill folder, pick up spill files a previous run left and start
   * the flush timer. Leftovers are replayed in the background (first thing the
   * pump does); `flush()` waits for them too when the store is up.
   */
  start(): Promise<void> {
    if (this.state !== 'new') return Promise.resolve();
    this.state = 'running';
    mkdirSync(this.spillDir, { recursive: true });
    const leftovers = readdirSync(this.spillDir)
      .map((name) => ({ name, m: SPILL_NAME.exec(name) }))
      .filter((f): f is { name: string; m: RegExpExecArray } => f.m !== null)
      .sort((a, b) => Number(a.m[1]) - Number(b.m[1]) || Number(a.m[2]) - Number(b.m[2]));
    for (const { name } of leftovers) {
      const rows = this.countSpillRows(name);
      this.spills.push({ name, rows, attempts: 0 });
    }
    if (leftovers.length > 0)
      this.log.info(
        { files: leftovers.length, rows: this.spilledRows(), dir: this.spillDir },
        'store writer: replaying spill files left by a previous run',
      );
    this.tickTimer = setInterval(
      () => this.onTick(),
      Math.max(10, Math.floor(this.flushIntervalMs / 2)),
    );
    this.kick();
    return Promise.resolve();
  }

  addTick(row: TickRow): void {
    this.buffer.ticks.push(row);
    this.added1();
  }

  addPrediction(msg: PredictionMessage): void {
    this.buffer.predictions.push(msg);
    this.added1();
  }

  addSignal(row: SignalRow): void {
    this.buffer.signals.push(row);
    this.added1();
  }

  addQuality(msg: QualityMessage): void {
    this.buffer.quality.push(msg);
    this.added1();
  }

  /** Audit events: buffered, inserted and spilled exactly as ticks are (see `durableMark`). */
  addAudit(events: readonly AuditEvent[]): void {
    for (const e of events) {
      this.buffer.audit.push(e);
      this.added1();
    }
  }

  addMetrics(rows: readonly MetricRow[]): void {
    for (const r of rows) {
      this.buffer.metrics.push(r);
      this.added1();
    }
  }

  /**
   * Resolves when every row added before the call is inserted or spilled
   * (and, when the store is up, spill files are replayed up to that point).
   */
  flush(): Promise<void> {
    const mark = this.added;
    if (this.state !== 'running') {
      this.spillBuffer('flush while not running');
      return Promise.resolve();
    }
    if (this.settled >= mark && (this.spills.length === 0 || !this.storeUp))
      return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.waiters.push({ mark, resolve });
      this.forceFlush = true;
      if (!this.storeUp) this.spillBuffer('flush while the store is down');
      this.kick();
      this.resolveWaiters();
    });
  }

  /** Rows ever added (numbers them: the n-th row added is number n − 1). */
  get rowsAdded(): number {
    return this.added;
  }

  /**
   * Every row numbered below this is inserted or in an fsync'd spill file.
   * Rows are settled in order except that the buffer can be spilled while
   * the insert before it is in flight: the mark then waits for that insert.
   */
  durableMark(): number {
    const m = this.inflightRows > 0 ? this.inflightStart : this.added - this.buffered;
    return this.frozenAt >= 0 && this.frozenAt < m ? this.frozenAt : m;
  }

  stats(): StoreWriterStats {
    const now = Date.now();
    const oldest =
      this.inflightRows > 0 && (this.buffered === 0 || this.inflightOldestAt < this.oldestAt)
        ? this.inflightOldestAt
        : this.buffered > 0
          ? this.oldestAt
          : 0;
    return {
      buffered: this.buffered,
      inflight: this.inflightRows,
      inserted: { ...this.inserted },
      failures: this.failures,
      spilledFiles: this.spills.length,
      spilledRows: this.spilledRows(),
      spillTornTails: this.tornTails,
      lagMs: oldest === 0 ? 0 : Math.max(0, now - oldest),
      storeUp: this.storeUp,
    };
  }

  /**
   * Insert what is buffered (or spill it when the store is down or refuses),
   * stop timers, resolve. Pending spill files stay for the next start. The
   * store itself is not closed (the owner closes it). Safe twice.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  // ─────────────────────────────── internals ───────────────────────────────

  private async doClose(): Promise<void> {
    if (this.state === 'new') {
      this.state = 'closed';
      return;
    }
    this.state = 'closing';
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.tickTimer !== undefined) clearInterval(this.tickTimer);
    this.tickTimer = undefined;
    await this.pumping;
    if (this.buffered > 0 && this.storeUp) {
      // Rows first: pending spill files can wait for the next run, live rows cannot.
      await this.insertBuffer();
    }
    this.spillBuffer('close');
    this.state = 'closed';
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
  }

  private added1(): void {
    if (this.buffered === 0) this.oldestAt = Date.now();
    this.buffered++;
    this.added++;
    if (this.state === 'closed') {
      // Late rows after close: keep the promise of "nothing lost" by spilling them.
      this.spillBuffer('row after close');
      return;
    }
    if (this.buffered >= this.maxBufferedRows) {
      this.spillBuffer(this.storeUp ? 'buffer full while an insert is slow' : 'store down');
    } else if (this.buffered >= this.maxBatchRows && this.pumping === undefined) {
      this.kick();
    }
  }

  private onTick(): void {
    if (this.buffered === 0) return;
    if (Date.now() - this.oldestAt < this.flushIntervalMs) return;
    if (!this.storeUp) {
      // Down: put due rows on disk rather than hold them in memory.
      this.spillBuffer('store down');
      return;
    }
    this.kick();
  }

  private due(): boolean {
    return (
      this.buffered > 0 &&
      (this.forceFlush ||
        this.buffered >= this.maxBatchRows ||
        Date.now() - this.oldestAt >= this.flushIntervalMs ||
        this.state !== 'running')
    );
  }

  /** Start the pump unless it runs. */
  private kick(): void {
    if (this.pumping !== undefined || this.state === 'new' || this.state === 'closed') return;
    this.pumping = this.pump()
      .catch((err: unknown) => {
        // Only a local failure gets here (the spill folder is not writable):
        // the rows stay buffered and the next tick tries again.
        this.log.error({ err, dir: this.spillDir }, 'store writer pump failed');
      })
      .finally(() => {
        this.pumping = undefined;
        this.resolveWaiters();
        // Rows that arrived while the last insert was in flight may be due already.
        if (this.state === 'running' && this.storeUp && (this.due() || this.spills.length > 0))
          this.kick();
      });
  }

  private async pump(): Promise<void> {
    while (this.storeUp && this.state === 'running') {
      if (this.spills.length > 0) {
        await this.replayOldest();
        continue;
      }
      if (!this.due()) break;
      await this.insertBuffer();
    }
    if (this.buffered === 0) this.forceFlush = false;
  }

  /**
   * The whole buffer becomes one batch: it is at most maxBufferedRows, and
   * after a slow insert one bigger insert catches up faster than many small.
   */
  private takeBuffer(): StoreBatch {
    const batch = this.buffer;
    this.buffer = this.nextBuffer();
    this.inflightStart = this.added - this.buffered;
    this.inflightRows = this.buffered;
    this.inflightOldestAt = this.oldestAt;
    this.buffered = 0;
    return batch;
  }

  private async insertBuffer(): Promise<void> {
    const batch = this.takeBuffer();
    const n = this.inflightRows;
    let done = false;
    try {
      await this.store.insert(batch);
      for (const k of KEYS) this.inserted[k] += batch[k].length;
      this.settled += n;
      done = true;
    } catch (err) {
      this.failures++;
      this.log.warn({ err, rows: n }, 'store insert failed; spilling the batch and retrying later');
      this.writeSpillOrFreeze(batch, n, this.inflightStart);
      done = true;
      this.settled += n;
      this.markDown();
    } finally {
      this.inflightRows = 0;
      // Not when the spill write itself threw: those rows must not be reused.
      if (done) this.recycle(batch);
    }
  }

  /** An empty batch: the spare one when there is one. */
  private nextBuffer(): StoreBatch {
    const b = this.spare;
    if (b === undefined) return emptyBatch();
    this.spare = undefined;
    return b;
  }

  /** The writer is done with a live batch: hand its rows to `release`, keep its arrays. */
  private recycle(batch: StoreBatch): void {
    try {
      this.release?.(batch);
    } finally {
      for (const k of KEYS) batch[k].length = 0;
      this.spare = batch;
    }
  }

  private async replayOldest(): Promise<void> {
    const file = this.spills[0]!;
    const path = join(this.spillDir, file.name);
    let batch: StoreBatch;
    try {
      batch = this.readSpill(path);
    } catch (err) {
      this.log.error({ err, file: path }, 'spill file unreadable; set aside in rejected/');
      this.setAside(file);
      return;
    }
    try {
      if (sizeOf(batch) > 0) await this.store.insert(batch);
    } catch (err) {
      this.failures++;
      file.attempts++;
      this.log.warn(
        { err, file: file.name, attempts: file.attempts },
        'replay of a spill file failed',
      );
      if (file.attempts >= this.maxReplayAttempts && (await this.safePing())) {
        this.log.error(
          { file: file.name, attempts: file.attempts },
          'store answers but keeps refusing this spill file; set aside in rejected/',
        );
        this.setAside(file);
        return;
      }
      this.markDown();
      return;
    }
    for (const k of KEYS) this.inserted[k] += batch[k].length;
    unlinkSync(path);
    this.tornSeen.delete(path);
    this.spills.shift();
  }

  private setAside(file: SpillFile): void {
    const dir = join(this.spillDir, 'rejected');
    mkdirSync(dir, { recursive: true });
    try {
      renameSync(join(this.spillDir, file.name), join(dir, file.name));
    } catch (err) {
      this.log.error({ err, file: file.name }, 'could not move a spill file to rejected/');
    }
    const i = this.spills.indexOf(file);
    if (i >= 0) this.spills.splice(i, 1);
  }

  private async safePing(): Promise<boolean> {
    try {
      return await this.store.ping();
    } catch {
      return false;
    }
  }

  private markDown(): void {
    if (this.storeUp)
      this.log.warn({ code: ErrorCodes.STORE_FAILED }, 'store is down; spilling to disk');
    this.storeUp = false;
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined || this.state !== 'running') return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.retry();
    }, this.retryDelay);
  }

  private async retry(): Promise<void> {
    if (this.state !== 'running') return;
    if (await this.safePing()) {
      this.log.info({ spilledFiles: this.spills.length }, 'store is back; replaying spill files');
      this.storeUp = true;
      this.retryDelay = this.retryMinMs;
      this.kick();
    } else {
      this.retryDelay = Math.min(this.retryMaxMs, this.retryDelay * 2);
      this.scheduleRetry();
    }
  }

  /** Write the buffer to a spill file (nothing when empty). */
  private spillBuffer(why: string): void {
    if (this.buffered === 0) return;
    const n = this.buffered;
    const batch = this.buffer;
    const start = this.added - n;
    this.buffer = this.nextBuffer();
    this.buffered = 0;
    this.writeSpillOrFreeze(batch, n, start);
    this.recycle(batch);
    this.settled += n;
    this.log.debug({ rows: n, why }, 'buffer spilled');
    this.resolveWaiters();
  }

  /** writeSpill; when it throws, rows from `start` on are not durable, ever (see durableMark). */
  private writeSpillOrFreeze(batch: StoreBatch, rows: number, start: number): void {
    try {
      this.writeSpill(batch, rows);
    } catch (err) {
      if (this.frozenAt < 0 || start < this.frozenAt) this.frozenAt = start;
      this.log.error(
        { err, rows, dir: this.spillDir, code: ErrorCodes.STORE_FAILED },
        'spill write failed: these rows are lost; nothing after them is acknowledged as durable',
      );
      throw err;
    }
  }

  private writeSpill(batch: StoreBatch, rows: number): void {
    let text = '';
    for (const k of KEYS) {
      if (batch[k].length > 0) text += JSON.stringify({ table: k, rows: batch[k] }) + '\n';
    }
    const name = `${Date.now()}-${this.spillSeq++}.ndjson`;
    const path = join(this.spillDir, name);
    // Write, fsync, rename, fsync the folder: a crash mid-write leaves a .tmp,
    // never a torn spill file, and a file reported durable survives power loss.
    const fd = openSync(`${path}.tmp`, 'w');
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(`${path}.tmp`, path);
    const dir = openSync(this.spillDir, 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
    this.spills.push({ name, rows, attempts: 0 });
  }

  private readSpill(path: string): StoreBatch {
    const { batch, tornBytes } = parseSpill(readFileSync(path, 'utf8'));
    if (tornBytes > 0 && !this.tornSeen.has(path)) {
      this.tornSeen.add(path);
      this.tornTails++;
      this.log.warn(
        { file: path, tornBytes, code: ErrorCodes.STORE_FAILED },
        'spill file ends in a torn record; replaying its complete records, dropping the tail',
      );
    }
    return batch;
  }

  private countSpillRows(name: string): number {
    try {
      return sizeOf(this.readSpill(join(this.spillDir, name)));
    } catch {
      return 0;
    }
  }

  private spilledRows(): number {
    let n = 0;
    for (const f of this.spills) n += f.rows;
    return n;
  }

  private resolveWaiters(): void {
    if (this.waiters.length === 0) return;
    const replayDone = this.spills.length === 0 || !this.storeUp;
    const keep: FlushWaiter[] = [];
    for (const w of this.waiters) {
      if (this.settled >= w.mark && replayDone) w.resolve();
      else keep.push(w);
    }
    this.waiters = keep;
  }
}
