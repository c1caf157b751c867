/**
 * The snapshot of one unit (a durable consumer's, or a subscription's,
 * symbols): versioned compact binary, then deflated (zlib, whose Adler-32
 * trailer catches a damaged copy). docs/adr/0006-warm-restart.md.
 *
 * ```
 *  u32 magic "QSNP"   u32 format version (1)
 *  str fingerprint    sha256 hex of the actor module's options and state shape
 *  str unit           the unit's name (a snapshot is only ever read back into its own unit)
 *  f64 takenAtMs      wall clock when it was taken
 *  f64 position       stream sequence it covers (0: not a stream)
 *  u32 symbols
 *  per symbol: str name, f64 streamSeq, f64 lastSeq (venue seq, NaN: none),
 *              u32 state bytes, state (kernel/actor-state.ts)
 *  (str: u16 length + UTF-8; little-endian throughout)
 * ```
 */
import type { StateWriter } from './actor-state.js';
import { StateReader, snapshotInvalid } from './actor-state.js';

export const SNAPSHOT_MAGIC = 0x504e5351; // "QSNP" read as a little-endian u32
export const SNAPSHOT_FORMAT = 1;

export interface UnitSnapshotHeader {
  fingerprint: string;
  unit: string;
  takenAtMs: number;
  position: number;
  symbols: number;
}

/** One symbol as read back: its state bytes are a view of the snapshot. */
export interface UnitSnapshotEntry {
  name: string;
  streamSeq: number;
  lastSeq: number;
  state: Buffer;
}

/** Start a unit snapshot in `w` (reset first); returns the offset of the symbol count to patch. */
export function beginUnitSnapshot(w: StateWriter, h: Omit<UnitSnapshotHeader, 'symbols'>): number {
  w.reset();
  w.u32(SNAPSHOT_MAGIC);
  w.u32(SNAPSHOT_FORMAT);
  w.str(h.fingerprint);
  w.str(h.unit);
  w.f64(h.takenAtMs);
  w.f64(h.position);
  return w.hole();
}

/** Append one symbol: `state(w)` writes its state bytes. */
export function writeUnitEntry(
  w: StateWriter,
  name: string,
  streamSeq: number,
  lastSeq: number,
  state: (w: StateWriter) => void,
): void {
  w.str(name);
  w.f64(streamSeq);
  w.f64(lastSeq);
  const len = w.hole();
  const start = w.length;
  state(w);
  w.patchU32(len, w.length - start);
}

/** Read the header of an (inflated) unit snapshot; QLN_SNAPSHOT_INVALID when it is not one. */
export function readUnitHeader(r: StateReader): UnitSnapshotHeader {
  const magic = r.u32();
  if (magic !== SNAPSHOT_MAGIC) {
    throw snapshotInvalid(`not a Qilin snapshot (magic 0x${magic.toString(16)})`, 0);
  }
  const version = r.u32();
  if (version !== SNAPSHOT_FORMAT) {
    throw snapshotInvalid(
      `snapshot format ${version}; this kernel reads format ${SNAPSHOT_FORMAT}`,
      4,
    );
  }
  const fingerprint = r.str();
  const unit = r.str();
  const takenAtMs = r.f64();
  const position = r.f64();
  const symbols = r.u32();
  return { fingerprint, unit, takenAtMs, position, symbols };
}

/** Read the next symbol of a unit snapshot (after the header). */
export function readUnitEntry(r: StateReader): UnitSnapshotEntry {
  const name = r.str();
  const streamSeq = r.f64();
  const lastSeq = r.f64();
  const n = r.u32();
  return { name, streamSeq, lastSeq, state: r.raw(n) };
}

/** Parse a whole unit snapshot (tests, `qilin snapshot inspect`-style tools); the state bytes are views. */
export function parseUnitSnapshot(bytes: Buffer): {
  header: UnitSnapshotHeader;
  entries: UnitSnapshotEntry[];
} {
  const r = new StateReader(bytes);
  const header = readUnitHeader(r);
  const entries: UnitSnapshotEntry[] = [];
  for (let i = 0; i < header.symbols; i++) entries.push(readUnitEntry(r));
  if (r.remaining !== 0) {
    throw snapshotInvalid(`${r.remaining} bytes after the last symbol`, r.offset);
  }
  return { header, entries };
}
