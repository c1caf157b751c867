/**
 * Ticks from an Arrow IPC file (`.arrow`, random access) or stream
 * (`.arrows`, `.ipc`): the format is told by the file's magic bytes, not its
 * name. Columns as in tick-fields.ts (the `ticks` table's names), any
 * numeric type (64-bit integers come as bigint and are converted), strings
 * as Utf8 or dictionary.
 *
 * Read record batch by record batch through `RecordBatchReader` over a file
 * handle: memory is one batch whatever the file size. A row the checks refuse
 * (or a null where a value is needed) is counted in `rejected`, the first
 * {@link KEPT_REJECTIONS} with their row number (from 1) and reason. A missing
 * or non-Arrow file, or a schema with an unknown, repeated or missing
 * required column, throws QLN_REPLAY_SOURCE_FAILED on the first `next`.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import {
  RecordBatchFileWriter,
  RecordBatchReader,
  RecordBatchStreamWriter,
  Table,
  Utf8,
  makeVector,
  vectorFromArray,
  type RecordBatch,
  type Vector,
} from 'apache-arrow';
import type { TickRow } from '../../kernel/event-store.js';
import { SymbolIds, type TickChunk, type TickSource } from '../tick-chunk.js';
import {
  KEPT_REJECTIONS,
  appendRawTick,
  checkRawTick,
  newRawTick,
  parseKind,
  parseSide,
  resolveTickColumns,
  sourceFailed,
  toNumber,
  type RejectedRow,
  type TickColumnIndex,
  type TickFileColumn,
} from './tick-fields.js';
import type { TickRows } from './tick-rows.js';

type Col = Vector | null;

export class ArrowTickSource implements TickSource {
  readonly description: string;
  /** Unknown up front (an IPC stream has no footer; a file's footer counts batches, not rows). */
  readonly total = undefined;
  read = 0;
  rejected = 0;
  /** The first refused rows: row number in the file (from 1) and reason. */
  readonly rejections: RejectedRow[] = [];
  private readonly ids = new SymbolIds();
  private readonly path: string;
  private fh: FileHandle | undefined;
  private batches: AsyncIterator<RecordBatch> | undefined;
  private cols: TickColumnIndex | undefined;
  private batch: RecordBatch | undefined;
  private vec: Partial<Record<TickFileColumn, Col>> = {};
  private row = 0;
  private rowNo = 0;
  private done = false;
  private closed = false;
  private readonly raw = newRawTick();

  constructor(path: string) {
    this.path = path;
    this.description = `arrow ${path}`;
  }

  get symbols(): readonly string[] {
    return this.ids.names;
  }

  async next(into: TickChunk): Promise<number> {
    into.length = 0;
    if (this.closed || this.done) return 0;
    if (this.batches === undefined) await this.open();
    while (into.length < into.capacity) {
      if (this.batch === undefined || this.row >= this.batch.numRows) {
        if (!(await this.nextBatch())) break;
        continue;
      }
      this.take(this.row++, into);
    }
    this.read += into.length;
    return into.length;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.batch = undefined;
    await this.batches?.return?.().catch(() => undefined);
    await this.fh?.close().catch(() => undefined);
  }

  /** Open the file and read its schema (QLN_REPLAY_SOURCE_FAILED when either fails); `next` calls it. */
  async open(): Promise<void> {
    if (this.batches !== undefined || this.closed) return;
    try {
      this.fh = await open(this.path, 'r');
    } catch (cause) {
      throw sourceFailed(this.description, 'cannot open the file', cause, { path: this.path });
    }
    try {
      const reader = await RecordBatchReader.from(this.fh);
      await reader.open();
      this.cols = resolveTickColumns(
        reader.schema.fields.map((f) => f.name),
        this.description,
      );
      this.batches = reader[Symbol.asyncIterator]();
    } catch (cause) {
      await this.fh.close().catch(() => undefined);
      this.fh = undefined;
      if ((cause as { code?: string }).code === 'QLN_REPLAY_SOURCE_FAILED') throw cause;
      throw sourceFailed(this.description, 'not an Arrow IPC file or stream', cause, {
        path: this.path,
      });
    }
  }

  private async nextBatch(): Promise<boolean> {
    let r: IteratorResult<RecordBatch>;
    try {
      r = await this.batches!.next();
    } catch (cause) {
      throw sourceFailed(
        this.description,
        `record batch after row ${this.rowNo} unreadable`,
        cause,
      );
    }
    if (r.done === true) {
      this.done = true;
      this.batch = undefined;
      return false;
    }
    const b = r.value;
    this.batch = b;
    this.row = 0;
    const c = this.cols!;
    for (const k of Object.keys(c) as TickFileColumn[])
      this.vec[k] = c[k] < 0 ? null : b.getChildAt(c[k]);
    return true;
  }

  private take(i: number, into: TickChunk): void {
    this.rowNo++;
    const v = this.vec;
    const r = this.raw;
    r.kind = parseKind(cellAt(v.type, i));
    const sym = cellAt(v.sym, i);
    r.sym = typeof sym === 'string' ? sym : '';
    r.seq = toNumber(cellAt(v.seq, i));
    r.ts = toNumber(cellAt(v.ts_us, i));
    r.recv = toNumber(cellAt(v.recv_us, i));
    r.px = toNumber(cellAt(v.px, i));
    r.qty = toNumber(cellAt(v.qty, i));
    const side = cellAt(v.side, i);
    r.side = parseSide(typeof side === 'bigint' ? Number(side) : side);
    r.bid = toNumber(cellAt(v.bid, i));
    r.bidQty = toNumber(cellAt(v.bid_qty, i));
    r.ask = toNumber(cellAt(v.ask, i));
    r.askQty = toNumber(cellAt(v.ask_qty, i));
    const why = checkRawTick(r);
    if (why !== '') {
      this.rejected++;
      if (this.rejections.length < KEPT_REJECTIONS)
        this.rejections.push({ at: this.rowNo, reason: why });
      return;
    }
    appendRawTick(into, r, this.ids.id(r.sym));
  }
}

/** Row `i` of column `c`, undefined when the column is absent. */
function cellAt(c: Col | undefined, i: number): unknown {
  return c === null || c === undefined ? undefined : c.get(i);
}

/** Options of {@link writeTicksArrow}. */
export interface WriteArrowOptions {
  /** `file` (random access, `.arrow`) or `stream` (`.arrows`); default: by the extension. */
  format?: 'file' | 'stream';
  /** Rows per record batch (default 65 536). */
  batchRows?: number;
}

/**
 * Write `ticks` to `path` as Arrow IPC, batch by batch, with the `ticks`
 * table's column names and types (type, sym, venue Utf8; seq UInt64; ts_us,
 * recv_us Int64; side Int8; prices and sizes Float64). Resolves to the rows
 * written.
 */
export async function writeTicksArrow(
  path: string,
  ticks: TickRows,
  opts: WriteArrowOptions = {},
): Promise<number> {
  const format = opts.format ?? (/\.arrows$|\.ipc$/.test(path) ? 'stream' : 'file');
  const size = opts.batchRows ?? 65_536;
  const writer = format === 'file' ? new RecordBatchFileWriter() : new RecordBatchStreamWriter();
  const done = pipeline(writer.toNodeStream(), createWriteStream(path));
  done.catch(() => undefined);
  let rows = 0;
  let batch: Parameters<typeof toBatch>[0] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    writer.write(toBatch(batch));
    batch = [];
    // Let the file stream take what was written before the next batch is built.
    await new Promise((r) => setImmediate(r));
  };
  for await (const t of ticks) {
    batch.push(t);
    rows++;
    if (batch.length >= size) await flush();
  }
  await flush();
  if (rows === 0) writer.write(toBatch([]));
  writer.finish();
  await done;
  return rows;
}

function toBatch(rows: TickRow[]): RecordBatch {
  const n = rows.length;
  const f64 = (pick: (i: number) => number): Float64Array => {
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) a[i] = pick(i);
    return a;
  };
  const seq = new BigUint64Array(n);
  const ts = new BigInt64Array(n);
  const recv = new BigInt64Array(n);
  const side = new Int8Array(n);
  for (let i = 0; i < n; i++) {
    const t = rows[i]!;
    seq[i] = BigInt(t.seq);
    ts[i] = BigInt(t.tsUs);
    recv[i] = BigInt(t.recvUs);
    side[i] = t.side;
  }
  const table = new Table({
    type: vectorFromArray(
      rows.map((t) => t.type),
      new Utf8(),
    ),
    sym: vectorFromArray(
      rows.map((t) => t.sym),
      new Utf8(),
    ),
    venue: vectorFromArray(
      rows.map((t) => t.venue),
      new Utf8(),
    ),
    seq: makeVector(seq),
    ts_us: makeVector(ts),
    recv_us: makeVector(recv),
    px: makeVector(f64((i) => rows[i]!.px)),
    qty: makeVector(f64((i) => rows[i]!.qty)),
    side: makeVector(side),
    bid: makeVector(f64((i) => rows[i]!.bid)),
    bid_qty: makeVector(f64((i) => rows[i]!.bidQty)),
    ask: makeVector(f64((i) => rows[i]!.ask)),
    ask_qty: makeVector(f64((i) => rows[i]!.askQty)),
  });
  return table.batches[0]!;
}
