/**
 * Actor state as bytes: what a snapshot holds of one actor, and how it is
 * put back (docs/adr/0006-warm-restart.md).
 *
 * An actor's state is its own mutable fields, reached from the actor object:
 *
 * ```
 *  number ─► f64          boolean ─► u8          typed array (not shared) ─► u32 length + bytes
 *  array  ─► u32 length + each element            object (not frozen) ─► its own keys, in order
 *  skipped: strings, functions, undefined/null, frozen objects (configuration), views of a
 *           SharedArrayBuffer (boards shared with other threads), keys named in `exclude`
 *  refused (QLN_INVALID_ARGUMENT naming the path): Map, Set, Date, other built-ins, depth > 32
 *  an object or typed array reached again (an alias): skipped, it was written at its first path
 * ```
 * Reading walks the same graph and writes each leaf back in place; any
 * difference in shape (an array or typed array of another length, fewer
 * bytes) is an error naming the path, and the actor is left partly written:
 * the caller drops it and builds a fresh one. `shapeOf` describes the walk
 * without values: the snapshot's fingerprint hashes it with the actor
 * options, so a snapshot taken by other code or another configuration is
 * refused as a whole before any byte is read.
 *
 * This is not the hot path (a snapshot every few seconds): it allocates.
 */
import { ErrorCodes, QilinError } from './errors.js';

const MAX_DEPTH = 32;

/** A growable little-endian byte buffer. */
export class StateWriter {
  private buf: Buffer;
  private at = 0;

  constructor(initial = 1 << 16) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.at;
  }

  /** Forget what was written (the buffer is kept). */
  reset(): void {
    this.at = 0;
  }

  /** A view of what was written (valid until the next write). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.at);
  }

  f64(v: number): void {
    this.room(8);
    this.buf.writeDoubleLE(v, this.at);
    this.at += 8;
  }

  u32(v: number): void {
    this.room(4);
    this.buf.writeUInt32LE(v >>> 0, this.at);
    this.at += 4;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.at++] = v;
  }

  raw(b: Uint8Array): void {
    this.room(b.byteLength);
    this.buf.set(b, this.at);
    this.at += b.byteLength;
  }

  /** The bytes of a typed array, without a view object per call. */
  view(v: ArrayBufferView): void {
    this.room(v.byteLength);
    Buffer.from(v.buffer, v.byteOffset, v.byteLength).copy(this.buf, this.at);
    this.at += v.byteLength;
  }

  /** u16 length + UTF-8. */
  str(s: string): void {
    const n = Buffer.byteLength(s);
    if (n > 0xffff) throw new QilinError(ErrorCodes.INVALID_ARGUMENT, `string of ${n} bytes`);
    this.room(2 + n);
    this.buf.writeUInt16LE(n, this.at);
    this.buf.write(s, this.at + 2);
    this.at += 2 + n;
  }

  /** Reserve a u32 to fill later (`patchU32`); returns its offset. */
  hole(): number {
    this.room(4);
    this.at += 4;
    return this.at - 4;
  }

  patchU32(at: number, v: number): void {
    this.buf.writeUInt32LE(v >>> 0, at);
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.at + n) cap *= 2;
    const next = Buffer.allocUnsafe(cap);
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }
}

/** Reads what a StateWriter wrote; every read past the end is QLN_SNAPSHOT_INVALID. */
export class StateReader {
  private at = 0;

  constructor(private readonly buf: Buffer) {}

  get offset(): number {
    return this.at;
  }

  get remaining(): number {
    return this.buf.length - this.at;
  }

  f64(): number {
    this.need(8, 'f64');
    const v = this.buf.readDoubleLE(this.at);
    this.at += 8;
    return v;
  }

  u32(): number {
    this.need(4, 'u32');
    const v = this.buf.readUInt32LE(this.at);
    this.at += 4;
    return v;
  }

  u8(): number {
    this.need(1, 'u8');
    return this.buf[this.at++]!;
  }

  /** The next `n` bytes (a view). */
  raw(n: number): Buffer {
    this.need(n, `${n} bytes`);
    const b = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return b;
  }

  str(): string {
    this.need(2, 'string length');
    const n = this.buf.readUInt16LE(this.at);
    this.need(2 + n, 'string');
    const s = this.buf.toString('utf8', this.at + 2, this.at + 2 + n);
    this.at += 2 + n;
    return s;
  }

  private need(n: number, what: string): void {
    if (this.at + n > this.buf.length) {
      throw snapshotInvalid(`truncated: ${what} at byte ${this.at} of ${this.buf.length}`, this.at);
    }
  }
}

export function snapshotInvalid(message: string, offset?: number): QilinError {
  return new QilinError(ErrorCodes.SNAPSHOT_INVALID, message, {
    details: offset === undefined ? {} : { offset },
  });
}

type Visit = (
  path: string,
  value: unknown,
  holder: Record<string | number, unknown>,
  key: string | number,
) => void;

function isShared(v: ArrayBufferView): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && v.buffer instanceof SharedArrayBuffer;
}

function plainish(v: object): boolean {
  if (Array.isArray(v)) return true;
  if (ArrayBuffer.isView(v)) return true;
  if (v instanceof Map || v instanceof Set || v instanceof Date || v instanceof Promise)
    return false;
  if (
    v instanceof ArrayBuffer ||
    v instanceof WeakMap ||
    v instanceof WeakSet ||
    v instanceof RegExp
  ) {
    return false;
  }
  return true;
}

/**
 * Walk the state leaves of `root` in a fixed order: `leaf(path, value,
 * holder, key)` for numbers, booleans and typed arrays; arrays are announced
 * with `leaf(path, array, …)` before their elements.
 */
function walk(root: object, exclude: ReadonlySet<string>, leaf: Visit): void {
  // An object or typed array reached twice (a window's columns held by the
  // window and by its owner) is state once: at its first path.
  const seen = new Set<object>();
  const visit = (obj: object, path: string, depth: number): void => {
    if (depth > MAX_DEPTH) {
      throw new QilinError(
        ErrorCodes.INVALID_ARGUMENT,
        `actor state deeper than ${MAX_DEPTH} at ${path}`,
      );
    }
    const holder = obj as Record<string | number, unknown>;
    const keys: Array<string | number> = Array.isArray(obj) ? [...obj.keys()] : Object.keys(obj);
    for (const key of keys) {
      if (typeof key === 'string' && exclude.has(key)) continue;
      const v = holder[key];
      const p = `${path}.${key}`;
      switch (typeof v) {
        case 'number':
        case 'boolean':
          leaf(p, v, holder, key);
          break;
        case 'object': {
          if (v === null || Object.isFrozen(v) || seen.has(v)) break;
          seen.add(v);
          if (ArrayBuffer.isView(v)) {
            if (!isShared(v)) leaf(p, v, holder, key);
            break;
          }
          if (!plainish(v)) {
            throw new QilinError(
              ErrorCodes.INVALID_ARGUMENT,
              `actor state at ${p} is a ${v.constructor?.name ?? 'built-in'}: not snapshottable (exclude it or keep state in fields, arrays and typed arrays)`,
            );
          }
          if (Array.isArray(v)) leaf(p, v, holder, key);
          visit(v, p, depth + 1);
          break;
        }
        default:
          break; // strings, functions, undefined, symbols, bigints: configuration or nothing
      }
    }
  };
  visit(root, '$', 0);
}

/** Write the state of `root` (see the module comment). */
export function writeState(root: object, w: StateWriter, exclude: ReadonlySet<string>): void {
  walk(root, exclude, (_path, v) => {
    if (typeof v === 'number') w.f64(v);
    else if (typeof v === 'boolean') w.u8(v ? 1 : 0);
    else if (Array.isArray(v)) w.u32(v.length);
    else {
      const view = v as ArrayBufferView;
      w.u32(view.byteLength);
      w.view(view);
    }
  });
}

/** Read what writeState wrote back into `root`, in place. Throws QLN_SNAPSHOT_INVALID on any mismatch. */
export function readState(root: object, r: StateReader, exclude: ReadonlySet<string>): void {
  walk(root, exclude, (path, v, holder, key) => {
    if (typeof v === 'number') holder[key] = r.f64();
    else if (typeof v === 'boolean') holder[key] = r.u8() === 1;
    else if (Array.isArray(v)) {
      const n = r.u32();
      if (n !== v.length) {
        throw snapshotInvalid(
          `${path}: ${n} elements in the snapshot, ${v.length} in the actor`,
          r.offset,
        );
      }
    } else {
      const view = v as ArrayBufferView;
      const n = r.u32();
      if (n !== view.byteLength) {
        throw snapshotInvalid(
          `${path}: ${n} bytes in the snapshot, ${view.byteLength} in the actor`,
          r.offset,
        );
      }
      new Uint8Array(view.buffer, view.byteOffset, view.byteLength).set(r.raw(n));
    }
  });
}

/**
 * The shape of `root`'s state, one line per leaf (`path:type[:length]`):
 * two actors whose shapes are equal read each other's state. Hashed into
 * the snapshot fingerprint.
 */
export function shapeOf(root: object, exclude: ReadonlySet<string>): string {
  const lines: string[] = [];
  walk(root, exclude, (path, v) => {
    if (typeof v === 'number') lines.push(`${path}:f64`);
    else if (typeof v === 'boolean') lines.push(`${path}:bool`);
    else if (Array.isArray(v)) lines.push(`${path}:array:${v.length}`);
    else {
      const view = v as ArrayBufferView;
      lines.push(`${path}:${view.constructor.name}:${view.byteLength}`);
    }
  });
  return lines.join('\n');
}
