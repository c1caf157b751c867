/**
 * Ticks from a CSV file whose header names the columns (tick-fields.ts: the
 * `ticks` table's names, `kind` for `type`; `recv_us` optional, = `ts_us`).
 * `qilin sql "SELECT * FROM ticks ORDER BY recv_us FORMAT CSVWithNames"`
 * output replays as it is.
 *
 * Streamed: the file is read 64 KiB at a time and split into lines as the
 * chunk fills, so memory is one read buffer plus its lines whatever the file
 * size. A row that does not parse (field count, quoting, a value the checks
 * refuse) is counted in `rejected`; the first {@link KEPT_REJECTIONS} keep
 * their line number and reason (`rejections`). A missing file or a header
 * with an unknown, repeated or missing required column throws
 * QLN_REPLAY_SOURCE_FAILED on the first `next`.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
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
} from './tick-fields.js';
import type { TickRows } from './tick-rows.js';

const READ_BYTES = 64 * 1024;

/**
 * Split one CSV line (RFC 4180 quoting: `"a ""b"""`) into `out`; returns the
 * field count, or -1 when the quoting is broken.
 */
export function splitCsvLine(line: string, out: string[]): number {
  let n = 0;
  let i = 0;
  const len = line.length;
  for (;;) {
    let field: string;
    if (i < len && line.charCodeAt(i) === 0x22) {
      // Quoted: up to the closing quote, "" is a quote.
      let s = '';
      let j = i + 1;
      for (;;) {
        const q = line.indexOf('"', j);
        if (q < 0) return -1;
        s += line.slice(j, q);
        if (line.charCodeAt(q + 1) === 0x22) {
          s += '"';
          j = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      if (i < len && line.charCodeAt(i) !== 0x2c) return -1;
      field = s;
    } else {
      const c = line.indexOf(',', i);
      const end = c < 0 ? len : c;
      field = line.slice(i, end);
      i = end;
    }
    out[n++] = field;
    if (i >= len) return n;
    i++; // the comma
    if (i === len) {
      out[n++] = '';
      return n;
    }
  }
}

export class CsvTickSource implements TickSource {
  readonly description: string;
  readonly total = undefined;
  read = 0;
  rejected = 0;
  /** The first refused rows: line number (from 1, the header is line 1) and reason. */
  readonly rejections: RejectedRow[] = [];
  private readonly ids = new SymbolIds();
  private readonly path: string;
  private stream: AsyncIterator<Buffer> | undefined;
  private readonly decoder = new StringDecoder('utf8');
  private cols: TickColumnIndex | undefined;
  private width = 0;
  private lines: string[] = [];
  private at = 0;
  private carry = '';
  private lineNo = 0;
  private eof = false;
  private closed = false;
  private readonly fields: string[] = [];
  private readonly raw = newRawTick();

  constructor(path: string) {
    this.path = path;
    this.description = `csv ${path}`;
  }

  get symbols(): readonly string[] {
    return this.ids.names;
  }

  async next(into: TickChunk): Promise<number> {
    into.length = 0;
    if (this.closed) return 0;
    if (this.cols === undefined) await this.open();
    while (into.length < into.capacity) {
      if (this.at >= this.lines.length && !(await this.fill())) break;
      const line = this.lines[this.at++]!;
      this.lineNo++;
      if (line === '') continue;
      this.row(line, into);
    }
    this.read += into.length;
    return into.length;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.lines = [];
    await this.stream?.return?.();
  }

  /** Open the file and read its header (QLN_REPLAY_SOURCE_FAILED when either fails); `next` calls it. */
  async open(): Promise<void> {
    if (this.cols !== undefined || this.closed) return;
    // Opened once to fail clearly (missing, a folder, no permission) before streaming.
    try {
      const fh = await open(this.path, 'r');
      await fh.close();
    } catch (cause) {
      throw sourceFailed(this.description, 'cannot open the file', cause, { path: this.path });
    }
    this.stream = createReadStream(this.path, { highWaterMark: READ_BYTES })[
      Symbol.asyncIterator
    ]() as AsyncIterator<Buffer>;
    try {
      if (!(await this.fill())) this.header('');
      this.lineNo++;
      this.header(this.lines[this.at++]!);
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  /** Next lines of the file into `lines`; false at the end. */
  private async fill(): Promise<boolean> {
    this.lines = [];
    this.at = 0;
    while (this.lines.length === 0) {
      if (this.eof) return false;
      let r: IteratorResult<Buffer>;
      try {
        r = await this.stream!.next();
      } catch (cause) {
        throw sourceFailed(this.description, 'read failed', cause, { path: this.path });
      }
      let text: string;
      if (r.done === true) {
        this.eof = true;
        text = this.carry + this.decoder.end();
        this.carry = '';
        if (text === '') return false;
        this.lines = [stripCr(text)];
      } else {
        text = this.carry + this.decoder.write(r.value);
        const parts = text.split('\n');
        this.carry = parts.pop()!;
        for (let k = 0; k < parts.length; k++) parts[k] = stripCr(parts[k]!);
        this.lines = parts;
      }
    }
    return true;
  }

  private header(line: string): void {
    const names: string[] = [];
    const n = splitCsvLine(line.replace(/^\uFEFF/, ''), names);
    if (line.trim() === '' || n < 1) {
      throw sourceFailed(this.description, 'no header line naming the columns', undefined, {
        path: this.path,
      });
    }
    this.cols = resolveTickColumns(names.slice(0, n), this.description);
    this.width = n;
  }

  private row(line: string, into: TickChunk): void {
    const f = this.fields;
    const n = splitCsvLine(line, f);
    if (n !== this.width) {
      this.reject(n < 0 ? 'broken quoting' : `${n} fields, the header has ${this.width}`);
      return;
    }
    const c = this.cols!;
    const r = this.raw;
    r.kind = parseKind(cell(f, c.type));
    r.sym = cell(f, c.sym);
    r.seq = toNumber(cell(f, c.seq));
    r.ts = toNumber(cell(f, c.ts_us));
    r.recv = toNumber(cell(f, c.recv_us));
    r.px = toNumber(cell(f, c.px));
    r.qty = toNumber(cell(f, c.qty));
    r.side = parseSide(cell(f, c.side));
    r.bid = toNumber(cell(f, c.bid));
    r.bidQty = toNumber(cell(f, c.bid_qty));
    r.ask = toNumber(cell(f, c.ask));
    r.askQty = toNumber(cell(f, c.ask_qty));
    const why = checkRawTick(r);
    if (why !== '') {
      this.reject(why);
      return;
    }
    appendRawTick(into, r, this.ids.id(r.sym));
  }

  private reject(reason: string): void {
    this.rejected++;
    if (this.rejections.length < KEPT_REJECTIONS) this.rejections.push({ at: this.lineNo, reason });
  }
}

/** Field `k` of a split line, '' when the column is absent (-1). */
function cell(f: readonly string[], k: number): string {
  return k < 0 ? '' : f[k]!;
}

function stripCr(s: string): string {
  return s.endsWith('\r') ? s.slice(0, -1) : s;
}

/** The columns {@link writeTicksCsv} writes, in order. */
export const CSV_WRITE_COLUMNS = [
  'type',
  'sym',
  'venue',
  'seq',
  'ts_us',
  'recv_us',
  'px',
  'qty',
  'side',
  'bid',
  'bid_qty',
  'ask',
  'ask_qty',
] as const;

function csvText(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * Write `ticks` to `path` as CSV with a header (the columns above), streamed
 * with back-pressure: a generator of any length writes in flat memory.
 * Numbers are written in JavaScript's shortest round-trip form, so a file
 * read back gives the same doubles. Resolves to the rows written.
 */
export async function writeTicksCsv(path: string, ticks: TickRows): Promise<number> {
  const out = createWriteStream(path);
  const failed = once(out, 'error').then(([e]) => {
    throw e;
  });
  failed.catch(() => undefined);
  const write = async (s: string): Promise<void> => {
    if (!out.write(s)) await Promise.race([once(out, 'drain'), failed]);
  };
  let rows = 0;
  let buf = `${CSV_WRITE_COLUMNS.join(',')}\n`;
  for await (const t of ticks) {
    buf += `${t.type},${csvText(t.sym)},${csvText(t.venue)},${t.seq},${t.tsUs},${t.recvUs},${t.px},${t.qty},${t.side},${t.bid},${t.bidQty},${t.ask},${t.askQty}\n`;
    rows++;
    if (buf.length >= READ_BYTES) {
      await write(buf);
      buf = '';
    }
  }
  await write(buf);
  out.end();
  await Promise.race([once(out, 'finish'), failed]);
  return rows;
}
