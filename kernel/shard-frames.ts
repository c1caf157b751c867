import type { FrameRing } from './frame-ring.js';
import {
  MARKET_RECORD_BYTES,
  decodeMarket,
  encodeMarket,
  type MarketEvent,
} from './market-record.js';
import {
  OUTPUT_RECORD_BYTES,
  decodeOutput,
  encodeOutput,
  type OutputEvent,
} from './output-record.js';

/**
 * The frames a shard worker exchanges with the rest of the process through
 * its FrameRings (kernel/frame-ring.ts). All payload offsets are 8-aligned,
 * so records are read and written through the ring's f64 / u32 views.
 *
 * ```
 *  ring               producer → consumer      frames
 *  out   (per shard)  worker   → main thread   SYMBOL, then PREDICTION | SIGNAL | QUALITY
 *  store (per shard)  worker   → store worker  SYMBOL, VENUE, then TICK | OUTPUT
 *  in    (per shard)  main     → worker        SYMBOL, VENUE, then TICK   (in-process feed:
 *                                               tests, replay; live ticks come from NATS)
 *
 *  SYMBOL / VENUE    u32 id │ u32 name bytes n │ name (ASCII token)
 *  TICK              64 B market record (kernel/market-record.ts) │ u32 venue id │ u32 0
 *  OUTPUT            512 B output record (kernel/output-record.ts) │ predictions: the
 *                    features JSON text as the worker encoded it (the store keeps it)
 *  SIGNAL_ROW        512 B output record │ f64 lat.risk │ f64 lat.pub │ u32 approved (1/0)
 *                    │ u32 reason (1 + RiskRejectReasons index, 0: none) │ u32 name bytes │ u32 0 │ symbol
 *                    (main thread → store worker: a signal with its risk decision)
 *  PREDICTION, SIGNAL, QUALITY (type = OutputKind):
 *    @0   u32 symbol id        @4   u32 frame bytes
 *    @8   u32 data start       @12  u32 data end      ┐ offsets inside the frame: the
 *    @16  u32 risk stamp at    @20  u32 pub stamp at  ┘ message JSON, lat.risk/pub slots (0: none)
 *    @24  512 B output record  (the binary event: risk reads it, tests decode it)
 *    @536 frame: the WebSocket bytes {"topic":"<kind>/<sym>","data":<message>}
 * ```
 * A SYMBOL (and VENUE) frame always precedes the first frame that uses its
 * id in the same ring, so the consumer learns names in order, with no side
 * channel to race against.
 */
export const FrameType = {
  PREDICTION: 1,
  SIGNAL: 2,
  QUALITY: 3,
  SYMBOL: 16,
  VENUE: 17,
  TICK: 18,
  OUTPUT: 19,
  SIGNAL_ROW: 20,
} as const;

/** Bytes before the WebSocket frame in a PREDICTION / SIGNAL / QUALITY frame. */
export const OUTPUT_FRAME_HEAD = 24 + OUTPUT_RECORD_BYTES;
/** Longest symbol or venue name carried in a SYMBOL / VENUE frame. */
export const MAX_NAME_BYTES = 256;
const TICK_PAYLOAD = MARKET_RECORD_BYTES + 8;

/** Where an encoder put the parts of an output frame (offsets into the ring's bytes). */
export interface FrameInfo {
  /** End (exclusive) of the frame. */
  frameEnd: number;
  /** The message JSON (the `data` of the frame; a NATS payload as is). */
  dataStart: number;
  dataEnd: number;
  /** Signals: the fixed-width slots of `lat.risk` and `lat.pub`; −1 otherwise. */
  riskAt: number;
  pubAt: number;
  /**
   * Predictions: the JSON text of the `features` object, which the store
   * row keeps as is (numbers are formatted once, in the worker); −1 otherwise.
   */
  textStart: number;
  textEnd: number;
}

export function newFrameInfo(): FrameInfo {
  return {
    frameEnd: 0,
    dataStart: 0,
    dataEnd: 0,
    riskAt: -1,
    pubAt: -1,
    textStart: -1,
    textEnd: -1,
  };
}

/**
 * Write a SYMBOL or VENUE frame; false when the ring is full (nothing
 * written). Names are ASCII tokens; longer than MAX_NAME_BYTES is refused by
 * the caller's validation before it gets here.
 */
export function writeNameFrame(
  ring: FrameRing,
  type: typeof FrameType.SYMBOL | typeof FrameType.VENUE,
  id: number,
  name: string,
): boolean {
  const at = ring.reserve(8 + name.length);
  if (at === -1) return false;
  ring.u32[at >>> 2] = id;
  ring.u32[(at >>> 2) + 1] = name.length;
  ring.buf.write(name, at + 8, name.length, 'latin1');
  ring.commit(type, 8 + name.length);
  return true;
}

/** Id of a SYMBOL / VENUE frame at payload offset `at`. */
export function nameFrameId(ring: FrameRing, at: number): number {
  return ring.u32[at >>> 2]!;
}

/** Name of a SYMBOL / VENUE frame (allocates the string: once per name). */
export function nameFrameText(ring: FrameRing, at: number): string {
  const n = ring.u32[(at >>> 2) + 1]!;
  return ring.buf.toString('latin1', at + 8, at + 8 + n);
}

/** Write a TICK frame (market record + venue id); false when full. */
export function writeTickFrame(ring: FrameRing, ev: MarketEvent, venueId: number): boolean {
  const at = ring.reserve(TICK_PAYLOAD);
  if (at === -1) return false;
  const w = at >>> 3;
  encodeMarket(ev, ring.f64, ring.u32, w);
  ring.u32[(at + MARKET_RECORD_BYTES) >>> 2] = venueId;
  ring.u32[((at + MARKET_RECORD_BYTES) >>> 2) + 1] = 0;
  ring.commit(FrameType.TICK, TICK_PAYLOAD);
  return true;
}

/** Read a TICK frame into `ev`; returns its venue id. */
export function readTickFrame(ring: FrameRing, at: number, ev: MarketEvent): number {
  decodeMarket(ring.f64, ring.u32, at >>> 3, ev);
  return ring.u32[(at + MARKET_RECORD_BYTES) >>> 2]!;
}

/**
 * Write an OUTPUT frame for the store: the binary record, then optionally
 * `text[start, end)` (a prediction's features JSON, ASCII); false when full.
 */
export function writeOutputRecordFrame(
  ring: FrameRing,
  ev: OutputEvent,
  text?: Buffer,
  start = 0,
  end = 0,
): boolean {
  const n = text === undefined || end <= start ? 0 : end - start;
  const at = ring.reserve(OUTPUT_RECORD_BYTES + n);
  if (at === -1) return false;
  encodeOutput(ev, ring.f64, ring.u32, at >>> 3);
  if (n > 0) text!.copy(ring.buf, at + OUTPUT_RECORD_BYTES, start, end);
  ring.commit(FrameType.OUTPUT, OUTPUT_RECORD_BYTES + n);
  return true;
}

/** The text after the record of an OUTPUT frame of `length` bytes at `at` ('' if none). */
export function outputFrameText(ring: FrameRing, at: number, length: number): string {
  return length > OUTPUT_RECORD_BYTES
    ? ring.buf.toString('latin1', at + OUTPUT_RECORD_BYTES, at + length)
    : '';
}

/** A signal's risk decision, as the SIGNAL_ROW frame carries it. */
export interface SignalDecision {
  risk: number;
  pub: number;
  approved: boolean;
  /** 0: none, else 1 + index in RiskRejectReasons. */
  reason: number;
}

/** Write a SIGNAL_ROW frame; false when full. */
export function writeSignalRowFrame(
  ring: FrameRing,
  ev: OutputEvent,
  symbol: string,
  d: SignalDecision,
): boolean {
  const at = ring.reserve(OUTPUT_RECORD_BYTES + 32 + symbol.length);
  if (at === -1) return false;
  encodeOutput(ev, ring.f64, ring.u32, at >>> 3);
  const w = (at + OUTPUT_RECORD_BYTES) >>> 3;
  ring.f64[w] = d.risk;
  ring.f64[w + 1] = d.pub;
  const u = (w + 2) * 2;
  ring.u32[u] = d.approved ? 1 : 0;
  ring.u32[u + 1] = d.reason;
  ring.u32[u + 2] = symbol.length;
  ring.u32[u + 3] = 0;
  ring.buf.write(symbol, at + OUTPUT_RECORD_BYTES + 32, symbol.length, 'latin1');
  ring.commit(FrameType.SIGNAL_ROW, OUTPUT_RECORD_BYTES + 32 + symbol.length);
  return true;
}

/** Read a SIGNAL_ROW frame: the record into `ev`, the decision into `d`; returns the symbol. */
export function readSignalRowFrame(
  ring: FrameRing,
  at: number,
  ev: OutputEvent,
  d: SignalDecision,
): string {
  decodeOutput(ring.f64, ring.u32, at >>> 3, ev);
  const w = (at + OUTPUT_RECORD_BYTES) >>> 3;
  d.risk = ring.f64[w]!;
  d.pub = ring.f64[w + 1]!;
  const u = (w + 2) * 2;
  d.approved = ring.u32[u] === 1;
  d.reason = ring.u32[u + 1]!;
  const n = ring.u32[u + 2]!;
  const start = at + OUTPUT_RECORD_BYTES + 32;
  return ring.buf.toString('latin1', start, start + n);
}

/** Read an OUTPUT frame, or the record inside a PREDICTION / SIGNAL / QUALITY frame. */
export function readOutputRecord(
  ring: FrameRing,
  at: number,
  ev: OutputEvent,
  inOutputFrame: boolean,
): OutputEvent {
  return decodeOutput(ring.f64, ring.u32, (inOutputFrame ? at + 24 : at) >>> 3, ev);
}

/**
 * Write the head of a PREDICTION / SIGNAL / QUALITY frame whose WebSocket
 * bytes the encoder already put at `at + OUTPUT_FRAME_HEAD` (so `info` holds
 * ring offsets), then commit it.
 */
export function commitOutputFrame(
  ring: FrameRing,
  at: number,
  ev: OutputEvent,
  info: FrameInfo,
): void {
  const frameStart = at + OUTPUT_FRAME_HEAD;
  const w = at >>> 2;
  const u32 = ring.u32;
  u32[w] = ev.symId;
  u32[w + 1] = info.frameEnd - frameStart;
  u32[w + 2] = info.dataStart - frameStart;
  u32[w + 3] = info.dataEnd - frameStart;
  // Relative offsets; 0 means no slot (a frame never starts with one).
  u32[w + 4] = info.riskAt < 0 ? 0 : info.riskAt - frameStart;
  u32[w + 5] = info.pubAt < 0 ? 0 : info.pubAt - frameStart;
  encodeOutput(ev, ring.f64, u32, (at + 24) >>> 3);
  ring.commit(ev.kind, info.frameEnd - at);
}

/** A PREDICTION / SIGNAL / QUALITY frame as the consumer sees it (one reused object). */
export interface OutputFrameView {
  symId: number;
  /** Absolute offsets into the ring's `u8` / `buf`. */
  frameStart: number;
  frameEnd: number;
  dataStart: number;
  dataEnd: number;
  /** −1 when the frame has no such slot. */
  riskAt: number;
  pubAt: number;
}

export function newOutputFrameView(): OutputFrameView {
  return { symId: 0, frameStart: 0, frameEnd: 0, dataStart: 0, dataEnd: 0, riskAt: -1, pubAt: -1 };
}

/** Read the head of an output frame at payload offset `at` into `v`. */
export function readOutputFrame(ring: FrameRing, at: number, v: OutputFrameView): OutputFrameView {
  const w = at >>> 2;
  const u32 = ring.u32;
  const start = at + OUTPUT_FRAME_HEAD;
  v.symId = u32[w]!;
  v.frameStart = start;
  v.frameEnd = start + u32[w + 1]!;
  v.dataStart = start + u32[w + 2]!;
  v.dataEnd = start + u32[w + 3]!;
  v.riskAt = u32[w + 4] === 0 ? -1 : start + u32[w + 4]!;
  v.pubAt = u32[w + 5] === 0 ? -1 : start + u32[w + 5]!;
  return v;
}
