/**
 * Fixed 512-byte binary record for actor output, worker → main thread:
 * predictions, candidate signals and quality events. 512 B (not 128) so a
 * prediction carries its named feature values (up to 48 configured ones
 * beside the 8 built-in ones, see actors/output-layout.ts) and a quality
 * event its per-check counts.
 *
 * ```
 *  word  field
 *   0    u32 kind (1 prediction, 2 signal, 3 quality) | u32 symbol id
 *   1    f64 src.seq      the tick that caused this event
 *   2    f64 src.ts       its exchange time, µs
 *   3    f64 lat.recv     stage timestamps, µs, one monotonic-derived clock
 *   4    f64 lat.feat
 *   5    f64 lat.infer
 *   6    f64 lat.emit     when the worker wrote the record
 *   7-63 f64 payload[0..56], meaning per kind (see OutputEvent)
 * ```
 */
export const OUTPUT_RECORD_BYTES = 512;
export const OUTPUT_PAYLOAD_WORDS = 57;

export const OutputKind = { PREDICTION: 1, SIGNAL: 2, QUALITY: 3 } as const;
export type OutputKindValue = (typeof OutputKind)[keyof typeof OutputKind];

/** Reusable decoded view of one output record. */
export interface OutputEvent {
  kind: OutputKindValue;
  symId: number;
  srcSeq: number;
  srcTs: number;
  recv: number;
  feat: number;
  infer: number;
  emit: number;
  /** Kind-specific values; the actor that writes them documents the layout. */
  payload: Float64Array;
}

export function newOutputEvent(): OutputEvent {
  return {
    kind: OutputKind.PREDICTION,
    symId: 0,
    srcSeq: 0,
    srcTs: 0,
    recv: 0,
    feat: 0,
    infer: 0,
    emit: 0,
    payload: new Float64Array(OUTPUT_PAYLOAD_WORDS),
  };
}

export function encodeOutput(
  e: OutputEvent,
  f64: Float64Array,
  u32: Uint32Array,
  at: number,
): void {
  const w = at * 2;
  u32[w] = e.kind;
  u32[w + 1] = e.symId;
  f64[at + 1] = e.srcSeq;
  f64[at + 2] = e.srcTs;
  f64[at + 3] = e.recv;
  f64[at + 4] = e.feat;
  f64[at + 5] = e.infer;
  f64[at + 6] = e.emit;
  f64.set(e.payload, at + 7);
}

export function decodeOutput(
  f64: Float64Array,
  u32: Uint32Array,
  at: number,
  e: OutputEvent,
): OutputEvent {
  const w = at * 2;
  e.kind = u32[w]! as OutputKindValue;
  e.symId = u32[w + 1]!;
  e.srcSeq = f64[at + 1]!;
  e.srcTs = f64[at + 2]!;
  e.recv = f64[at + 3]!;
  e.feat = f64[at + 4]!;
  e.infer = f64[at + 5]!;
  e.emit = f64[at + 6]!;
  for (let i = 0; i < OUTPUT_PAYLOAD_WORDS; i++) e.payload[i] = f64[at + 7 + i]!;
  return e;
}
