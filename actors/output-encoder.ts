import { invalidArgument } from '../kernel/errors.js';
import { OutputKind, type OutputEvent } from '../kernel/output-record.js';
import type { FrameInfo } from '../kernel/shard-frames.js';
import { resolveOutputDecoderOptions, type OutputDecoderOptions } from './output-decoder.js';
import { ModelRefTable, type ModelRefEntry } from './model-refs.js';
import {
  OutputLayout,
  QUALITY_EVENT_KIND_NAMES,
  QUALITY_ISSUE_NAMES,
  QualityEventKind,
  SignalSideCode,
} from './output-layout.js';

/** Same options as the OutputDecoder (validated by the same function). */
export type OutputEncoderOptions = OutputDecoderOptions;

/**
 * Width in bytes of the `lat.risk` and `lat.pub` slots of an encoded signal.
 *
 * The worker encodes a signal before the main thread has run its risk check,
 * so those two stage times are not known yet. Each gets a fixed-width slot
 * that initially holds `0` followed by 19 spaces (JSON allows whitespace after
 * a number, so the frame is valid JSON at every moment); `patchStageTime`
 * overwrites it in place, left-aligned and space-padded, without moving a
 * single other byte of the frame.
 *
 * 20 bytes hold a sign and 18 digits (19 bytes, one to spare): every |µs|
 * below 1e18 (≈ 31 700 years after the epoch; a monotonic-derived epoch µs is
 * 16 digits today), and `null` for anything else. Fixed width is the point:
 * the slot's position is known when the worker encodes, the main thread
 * patches without re-encoding or moving bytes, and the frame length (and so
 * the ring layout) never changes after the worker published it.
 */
export const STAGE_TIME_SLOT_BYTES = 20;

/** `patchStageTime` writes `null` when |Math.round(us)| reaches this. */
export const STAGE_TIME_LIMIT_US = 1e18;

/**
 * The longest text of one JSON number (or of `String(x)` in a signal id):
 * `-2.2250738585072014e-308` is 24 bytes. Used for `SymbolText.maxFrameBytes`.
 */
const NUMBER_MAX_BYTES = 24;
/** Longest JSON of a model ref (names and versions are ≤ 64 ASCII characters, manifest-checked). */
const MODEL_TEXT_MAX_BYTES = 200;

export { newFrameInfo, type FrameInfo } from '../kernel/shard-frames.js';

/**
 * The pre-encoded, symbol-specific bytes of one encoder (`OutputEncoder.symbol`).
 * Built once per symbol; per event the encoder only copies these and writes
 * numbers. Bound to the encoder that made it (the signal id holds its strategy).
 */
export interface SymbolText {
  readonly name: string;
  /** `{"topic":"prediction/<sym>","data":{"sym":"<sym>","ts":` */
  readonly prediction: Buffer;
  /** `{"topic":"quality/<sym>","data":{"sym":"<sym>","ts":` */
  readonly quality: Buffer;
  /** `{"topic":"signal/<sym>","data":{"id":"<strategy>:<sym>:` (the source seq follows) */
  readonly signal: Buffer;
  /** `","strategy":"<strategy>","sym":"<sym>","ts":` */
  readonly signalSym: Buffer;
  /** Offset of `<message>` from the start of the frame, per kind. */
  readonly predictionData: number;
  readonly qualityData: number;
  readonly signalData: number;
  /** An upper bound of the bytes of any frame of this symbol (for ring sizing). */
  readonly maxFrameBytes: number;
}

/** Constant text, encoded once (model names may be any Unicode: UTF-8, as the WebSocket sends it). */
const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

// Chunks that depend on nothing configurable, in frame order.
const K_SCORE = utf8(',"score":');
const K_FEATURES = [
  utf8(',"features":{"emaFast":'),
  utf8(',"emaSlow":'),
  utf8(',"ret":'),
  utf8(',"vol":'),
  utf8(',"spread":'),
  utf8(',"zscore":'),
  utf8(',"mid":'),
  utf8(',"qualityScore":'),
] as const;
/** Offset of the features object's `{` in K_FEATURES[0]. */
const FEATURES_OBJECT_AT = ',"features":'.length;
const FEATURE_SLOTS = [
  OutputLayout.prediction.EMA_FAST,
  OutputLayout.prediction.EMA_SLOW,
  OutputLayout.prediction.RET,
  OutputLayout.prediction.VOL,
  OutputLayout.prediction.SPREAD,
  OutputLayout.prediction.ZSCORE,
  OutputLayout.prediction.MID,
  OutputLayout.prediction.QUALITY,
] as const;
const K_ISSUES = utf8(',"issues":[');
const ISSUE_BIT: readonly number[] = QUALITY_ISSUE_NAMES.map(([bit]) => bit);
/** `"seq_gap"` …: the first issue of the array. */
const ISSUE_FIRST: readonly Buffer[] = QUALITY_ISSUE_NAMES.map(([, n]) => utf8(JSON.stringify(n)));
/** `,"seq_gap"` …: every later one. */
const ISSUE_NEXT: readonly Buffer[] = QUALITY_ISSUE_NAMES.map(([, n]) =>
  utf8(`,${JSON.stringify(n)}`),
);
const QL = OutputLayout.quality;
/** The `window` counts: [key, slot], in QualityMessage order. */
const WINDOW_FIELDS: ReadonlyArray<readonly [string, number]> = [
  ['ticks', QL.TICKS],
  ['gaps', QL.GAPS],
  ['crossed', QL.CROSSED],
  ['outOfOrder', QL.OUT_OF_ORDER],
  ['stale', QL.STALE],
  ['spikes', QL.SPIKES],
  ['badValues', QL.BAD_VALUES],
  ['locked', QL.LOCKED],
  ['outsideBand', QL.OUTSIDE_BAND],
  ['timeGaps', QL.TIME_GAPS],
  ['skew', QL.SKEW],
  ['duplicates', QL.DUPLICATES],
  ['resets', QL.RESETS],
  ['quarantined', QL.QUARANTINED],
  ['nonfinite', QL.NONFINITE],
];
const K_WINDOW: readonly Buffer[] = WINDOW_FIELDS.map(([k], i) =>
  utf8(`${i === 0 ? '],"window":{' : ','}${JSON.stringify(k)}:`),
);
const WINDOW_SLOTS: readonly number[] = WINDOW_FIELDS.map(([, slot]) => slot);
/** `,"kind":"<kind>","session":` by QualityEventKind. */
const K_KIND: readonly Buffer[] = QUALITY_EVENT_KIND_NAMES.map((k) =>
  utf8(`,"kind":${JSON.stringify(k || 'window')},"session":`),
);
const K_TRADE_TICK = [
  utf8('},"tick":{"type":"trade","seq":'),
  utf8(',"ts":'),
  utf8(',"recv":'),
  utf8(',"px":'),
  utf8(',"qty":'),
] as const;
const TRADE_TICK_SLOTS = [QL.RAW_SEQ, QL.RAW_TS, QL.RAW_RECV, QL.RAW_PX, QL.RAW_QTY] as const;
const K_TRADE_SIDE = [
  utf8(',"side":"unknown"'),
  utf8(',"side":"buy"'),
  utf8(',"side":"sell"'),
] as const;
const K_QUOTE_TICK = [
  utf8('},"tick":{"type":"quote","seq":'),
  utf8(',"ts":'),
  utf8(',"recv":'),
  utf8(',"bid":'),
  utf8(',"bidQty":'),
  utf8(',"ask":'),
  utf8(',"askQty":'),
] as const;
const QUOTE_TICK_SLOTS = [
  QL.RAW_SEQ,
  QL.RAW_TS,
  QL.RAW_RECV,
  QL.RAW_BID,
  QL.RAW_BID_QTY,
  QL.RAW_ASK,
  QL.RAW_ASK_QTY,
] as const;
const SIDE_BUY = utf8(',"side":"buy","strength":');
const SIDE_SELL = utf8(',"side":"sell","strength":');
const SIDE_FLAT = utf8(',"side":"flat","strength":');
const K_REF_PX = utf8(',"refPx":');
const K_QTY = utf8(',"qty":');
const K_QUALITY_SCORE = utf8('},"quality":{"score":');
// The common tail: `},"src":{"seq":N,"ts":N},"lat":{"recv":N,"feat":N,"infer":N`
const K_SRC_SEQ = utf8('},"src":{"seq":');
const K_TS = utf8(',"ts":');
const K_LAT_RECV = utf8('},"lat":{"recv":');
const K_FEAT = utf8(',"feat":');
const K_INFER = utf8(',"infer":');
const K_RISK = utf8(',"risk":');
const K_PUB = utf8(',"pub":');
const STAGE_SLOT = utf8('0'.padEnd(STAGE_TIME_SLOT_BYTES, ' '));
/** Closes `lat`, `<message>` and the frame. */
const K_END = utf8('}}}');
/** A prediction interval, after the score: `,"interval":{"lower":x,"upper":y}`. */
const K_INTERVAL_LOWER = utf8(',"interval":{"lower":');
const K_INTERVAL_UPPER = utf8(',"upper":');
const K_CLOSE = utf8('}');
const NULL = utf8('null');
const TAIL_MAX_BYTES =
  K_SRC_SEQ.length +
  K_TS.length +
  K_LAT_RECV.length +
  K_FEAT.length +
  K_INFER.length +
  5 * NUMBER_MAX_BYTES;

// Slots of OutputEncoder.head.
const H_SEQ = 0;
const H_TS = 1;
const H_RECV = 2;
const H_FEAT = 3;
const H_INFER = 4;

const MINUS = 0x2d;
const ZERO = 0x30;
const SPACE = 0x20;

/**
 * Worker side of the output path: encodes each OutputEvent ONCE, straight
 * into a byte buffer (typically a view over a SharedArrayBuffer ring), as the
 * exact bytes of the WebSocket frame. The main thread then only routes bytes:
 * the frame goes to WebSocket clients as is, its `<message>` slice is the
 * NATS payload, and for signals it stamps `lat.risk` / `lat.pub` in place
 * (`patchStageTime`) after its risk check.
 *
 * ```
 *  {"topic":"prediction/BTC-USD","data":{"sym":"BTC-USD","ts":1732…456,"model":{…},"score":…}}}
 *  ├──────────── SymbolText.prediction (copied) ─────────────┤├─number─┤├── chunk ──┤     ││└ frameEnd
 *  off                                  dataStart ┘ (the NATS payload: dataStart..dataEnd) └ dataEnd
 *
 *  signal  …,"lat":{"recv":N,"feat":N,"infer":N,"risk":0␣␣␣…␣,"pub":0␣␣␣…␣}}}
 *                                          riskAt ┘└─ 20 B ─┘ pubAt ┘└─ 20 B ─┘
 * ```
 * `<message>` is byte-identical to `JSON.stringify(decoder.toX(ev, sym))` of
 * an OutputDecoder with the same options (signals: once the slots are parsed,
 * their values are the stage times patched in). Every string is pre-encoded:
 * symbol-specific text by `symbol()`, model/strategy/account text by the
 * constructor, keys and issue names at module load. Per event the encoder
 * copies chunks and writes numbers; it allocates nothing except `String(x)`
 * for numbers that are not safe integers.
 */
export class OutputEncoder {
  readonly options: Readonly<OutputEncoderOptions>;
  /** By model id: `,"model":{"name":…,"version":…},"score":` */
  private readonly predModel: Buffer[] = [];
  /** By model id: whether its predictions carry an interval. */
  private readonly predInterval: boolean[] = [];
  /** By model id: `,"account":"<account>","model":{…},"prediction":{"score":` */
  private readonly sigAccount: Buffer[] = [];
  /** Loaded model versions (actors/model-refs.ts): entries added later are encoded as they come. */
  readonly models: ModelRefTable;
  /** `,"<name>":` of each configured feature (payload FEATURES + i). */
  private readonly featureKeys: readonly Buffer[];
  /** The event's scalar fields, copied so numbers are read from an array (see putNumber). */
  private readonly head = new Float64Array(5);

  constructor(opts: OutputEncoderOptions) {
    const o = resolveOutputDecoderOptions(opts);
    this.options = o;
    this.featureKeys = (o.features ?? []).map((n) => utf8(`,${JSON.stringify(n)}:`));
    this.models = o.models ?? new ModelRefTable(o.model);
    this.addModel(0, this.models.get(0));
  }

  /**
   * The model of a record: its id if the table has it (its text encoded on
   * first use, once per version), else the built-in model's.
   */
  private modelOf(id: number): number {
    if (this.predModel[id] !== undefined) return id;
    if (!this.models.has(id)) return 0;
    this.addModel(id, this.models.get(id));
    return id;
  }

  /** Pre-encode the text of model `id` (once per version, never per event). */
  private addModel(id: number, e: ModelRefEntry): void {
    const model = JSON.stringify(e.ref);
    if (model.length > MODEL_TEXT_MAX_BYTES) {
      invalidArgument('model', model, `a ref of at most ${MODEL_TEXT_MAX_BYTES} bytes of JSON`);
    }
    this.predModel[id] = utf8(`,"model":${model},"score":`);
    this.predInterval[id] = e.interval;
    this.sigAccount[id] = utf8(
      `,"account":${JSON.stringify(this.options.account)},"model":${model},"prediction":{"score":`,
    );
  }

  private load(ev: OutputEvent): Float64Array {
    const h = this.head;
    h[H_SEQ] = ev.srcSeq;
    h[H_TS] = ev.srcTs;
    h[H_RECV] = ev.recv;
    h[H_FEAT] = ev.feat;
    h[H_INFER] = ev.infer;
    return h;
  }

  /** Pre-encode the text of one symbol (once per symbol; allocates). */
  symbol(name: string): SymbolText {
    if (typeof name !== 'string' || name === '') {
      invalidArgument('symbol', name, 'a non-empty string');
    }
    const sym = JSON.stringify(name);
    const topic = (kind: string): string => `{"topic":${JSON.stringify(`${kind}/${name}`)},"data":`;
    const pTopic = topic('prediction');
    const qTopic = topic('quality');
    const sTopic = topic('signal');
    // The id is `${strategy}:${sym}:${srcSeq}`: the encoded prefix without its
    // closing quote; the seq's text (ASCII, needs no escaping) and `"` follow.
    const idPrefix = JSON.stringify(`${this.options.strategy}:${name}:`).slice(0, -1);
    const prediction = utf8(`${pTopic}{"sym":${sym},"ts":`);
    const quality = utf8(`${qTopic}{"sym":${sym},"ts":`);
    const signal = utf8(`${sTopic}{"id":${idPrefix}`);
    const signalSym = utf8(
      `","strategy":${JSON.stringify(this.options.strategy)},"sym":${sym},"ts":`,
    );
    const sum = (bs: readonly Buffer[]): number => bs.reduce((n, b) => n + b.length, 0);
    const predMax =
      prediction.length +
      MODEL_TEXT_MAX_BYTES +
      24 +
      K_INTERVAL_LOWER.length +
      K_INTERVAL_UPPER.length +
      K_CLOSE.length +
      2 * NUMBER_MAX_BYTES +
      sum(K_FEATURES) +
      sum(this.featureKeys) +
      (10 + this.featureKeys.length) * NUMBER_MAX_BYTES +
      TAIL_MAX_BYTES +
      K_END.length;
    const qualMax =
      quality.length +
      Math.max(...K_KIND.map((b) => b.length)) +
      K_SCORE.length +
      K_ISSUES.length +
      sum(ISSUE_NEXT) +
      sum(K_WINDOW) +
      Math.max(sum(K_TRADE_TICK) + K_TRADE_SIDE[0].length, sum(K_QUOTE_TICK)) +
      (3 + K_WINDOW.length + K_QUOTE_TICK.length) * NUMBER_MAX_BYTES +
      TAIL_MAX_BYTES +
      K_END.length;
    const sigMax =
      signal.length +
      signalSym.length +
      Math.max(SIDE_BUY.length, SIDE_SELL.length, SIDE_FLAT.length) +
      K_REF_PX.length +
      K_QTY.length +
      this.sigAccount[0]!.length +
      MODEL_TEXT_MAX_BYTES +
      K_INTERVAL_LOWER.length +
      K_INTERVAL_UPPER.length +
      K_CLOSE.length +
      2 * NUMBER_MAX_BYTES +
      K_QUALITY_SCORE.length +
      7 * NUMBER_MAX_BYTES +
      TAIL_MAX_BYTES +
      K_RISK.length +
      K_PUB.length +
      2 * STAGE_TIME_SLOT_BYTES +
      K_END.length;
    return {
      name,
      prediction,
      quality,
      signal,
      signalSym,
      predictionData: Buffer.byteLength(pTopic),
      qualityData: Buffer.byteLength(qTopic),
      signalData: Buffer.byteLength(sTopic),
      maxFrameBytes: Math.max(predMax, qualMax, sigMax),
    };
  }

  /**
   * Encode `ev` by its kind (PREDICTION, SIGNAL or QUALITY); see `prediction`.
   * Throws QLN_INVALID_ARGUMENT for any other kind (a bug in the writer).
   */
  encode(
    ev: OutputEvent,
    sym: SymbolText,
    buf: Buffer,
    off: number,
    end: number,
    info: FrameInfo,
  ): boolean {
    switch (ev.kind) {
      case OutputKind.PREDICTION:
        return this.prediction(ev, sym, buf, off, end, info);
      case OutputKind.SIGNAL:
        return this.signal(ev, sym, buf, off, end, info);
      case OutputKind.QUALITY:
        return this.quality(ev, sym, buf, off, end, info);
      default:
        return invalidArgument('kind', ev.kind, 'an OutputKind (1, 2 or 3)');
    }
  }

  /**
   * Write the frame `{"topic":"prediction/<sym>","data":<PredictionMessage>}`
   * at `buf[off]`. Returns false when it does not fit in `[off, end)` (`end`
   * is clamped to `buf.length`): then bytes in `[off, end)` may have been
   * overwritten, `info` is untouched and nothing at or beyond `end` is.
   * On success fills `info` (riskAt/pubAt −1).
   */
  prediction(
    ev: OutputEvent,
    sym: SymbolText,
    buf: Buffer,
    off: number,
    end: number,
    info: FrameInfo,
  ): boolean {
    if (end > buf.length) end = buf.length;
    const p = ev.payload;
    const h = this.load(ev);
    let o = put(buf, off, end, sym.prediction);
    o = putNumber(buf, o, end, h, H_TS);
    const L = OutputLayout.prediction;
    const model = this.modelOf(p[L.MODEL]!);
    o = put(buf, o, end, this.predModel[model]!);
    o = putNumber(buf, o, end, p, L.SCORE);
    if (this.predInterval[model] === true) o = putInterval(buf, o, end, p, L.LOWER, L.UPPER);
    // `{` of the features object: after `,"features":`.
    const textStart = o + FEATURES_OBJECT_AT;
    for (let i = 0; i < K_FEATURES.length; i++) {
      o = put(buf, o, end, K_FEATURES[i]!);
      o = putNumber(buf, o, end, p, FEATURE_SLOTS[i]!);
    }
    const keys = this.featureKeys;
    for (let i = 0; i < keys.length; i++) {
      o = put(buf, o, end, keys[i]!);
      o = putNumber(buf, o, end, p, OutputLayout.prediction.FEATURES + i);
    }
    // …and its `}`, the first byte of the tail.
    const textEnd = o + 1;
    o = putTail(buf, o, end, h);
    o = put(buf, o, end, K_END);
    if (o < 0) return false;
    info.frameEnd = o;
    info.dataStart = off + sym.predictionData;
    info.dataEnd = o - 1;
    info.riskAt = -1;
    info.pubAt = -1;
    info.textStart = textStart;
    info.textEnd = textEnd;
    return true;
  }

  /**
   * Write `{"topic":"quality/<sym>","data":<QualityMessage>}`; the `issues`
   * names come from the payload's issue bits. Same contract as `prediction`.
   */
  quality(
    ev: OutputEvent,
    sym: SymbolText,
    buf: Buffer,
    off: number,
    end: number,
    info: FrameInfo,
  ): boolean {
    if (end > buf.length) end = buf.length;
    const p = ev.payload;
    const h = this.load(ev);
    const L = OutputLayout.quality;
    let o = put(buf, off, end, sym.quality);
    o = putNumber(buf, o, end, h, H_TS);
    const kind = p[L.KIND]!;
    o = put(buf, o, end, K_KIND[kind] ?? K_KIND[QualityEventKind.WINDOW]!);
    o = putNumber(buf, o, end, p, L.SESSION);
    o = put(buf, o, end, K_SCORE);
    o = putNumber(buf, o, end, p, L.SCORE);
    o = put(buf, o, end, K_ISSUES);
    // `bits & bit` on the f64 slot, exactly as OutputDecoder.toQuality does.
    const bits = p[L.ISSUE_BITS]!;
    let first = true;
    for (let i = 0; i < ISSUE_BIT.length; i++) {
      if ((bits & ISSUE_BIT[i]!) === 0) continue;
      o = put(buf, o, end, first ? ISSUE_FIRST[i]! : ISSUE_NEXT[i]!);
      first = false;
    }
    for (let i = 0; i < K_WINDOW.length; i++) {
      o = put(buf, o, end, K_WINDOW[i]!);
      o = putNumber(buf, o, end, p, WINDOW_SLOTS[i]!);
    }
    if (kind === QualityEventKind.QUARANTINE) {
      const trade = p[L.RAW_TYPE] === 1;
      const keys = trade ? K_TRADE_TICK : K_QUOTE_TICK;
      const slots = trade ? TRADE_TICK_SLOTS : QUOTE_TICK_SLOTS;
      for (let i = 0; i < keys.length; i++) {
        o = put(buf, o, end, keys[i]!);
        o = putNumber(buf, o, end, p, slots[i]!);
      }
      if (trade) {
        const side = p[L.RAW_SIDE]!;
        o = put(buf, o, end, K_TRADE_SIDE[side === 1 || side === 2 ? side : 0]);
      }
    }
    o = putTail(buf, o, end, h);
    o = put(buf, o, end, K_END);
    if (o < 0) return false;
    info.frameEnd = o;
    info.dataStart = off + sym.qualityData;
    info.dataEnd = o - 1;
    info.riskAt = -1;
    info.pubAt = -1;
    info.textStart = info.textEnd = -1;
    return true;
  }

  /**
   * Write `{"topic":"signal/<sym>","data":<SignalMessage>}` with `lat.risk`
   * and `lat.pub` as placeholder slots (`0` and spaces, STAGE_TIME_SLOT_BYTES
   * wide) at `info.riskAt` / `info.pubAt`, for `patchStageTime`. Same
   * contract as `prediction`.
   */
  signal(
    ev: OutputEvent,
    sym: SymbolText,
    buf: Buffer,
    off: number,
    end: number,
    info: FrameInfo,
  ): boolean {
    if (end > buf.length) end = buf.length;
    const p = ev.payload;
    const h = this.load(ev);
    const L = OutputLayout.signal;
    let o = put(buf, off, end, sym.signal);
    o = putIdNumber(buf, o, end, h, H_SEQ);
    o = put(buf, o, end, sym.signalSym);
    o = putNumber(buf, o, end, h, H_TS);
    const side = p[L.SIDE]!;
    o = put(
      buf,
      o,
      end,
      side === SignalSideCode.BUY ? SIDE_BUY : side === SignalSideCode.SELL ? SIDE_SELL : SIDE_FLAT,
    );
    o = putNumber(buf, o, end, p, L.STRENGTH);
    o = put(buf, o, end, K_REF_PX);
    o = putNumber(buf, o, end, p, L.REF_PX);
    o = put(buf, o, end, K_QTY);
    o = putNumber(buf, o, end, p, L.QTY);
    const model = this.modelOf(p[L.MODEL]!);
    o = put(buf, o, end, this.sigAccount[model]!);
    o = putNumber(buf, o, end, p, L.PRED_SCORE);
    if (this.predInterval[model] === true) o = putInterval(buf, o, end, p, L.LOWER, L.UPPER);
    o = put(buf, o, end, K_QUALITY_SCORE);
    o = putNumber(buf, o, end, p, L.QUALITY);
    o = putTail(buf, o, end, h);
    o = put(buf, o, end, K_RISK);
    const riskAt = o;
    o = put(buf, o, end, STAGE_SLOT);
    o = put(buf, o, end, K_PUB);
    const pubAt = o;
    o = put(buf, o, end, STAGE_SLOT);
    o = put(buf, o, end, K_END);
    if (o < 0) return false;
    info.frameEnd = o;
    info.dataStart = off + sym.signalData;
    info.dataEnd = o - 1;
    info.riskAt = riskAt;
    info.pubAt = pubAt;
    info.textStart = info.textEnd = -1;
    return true;
  }
}

/**
 * Stamp a stage time into a signal's `lat.risk` or `lat.pub` slot at `at`
 * (`FrameInfo.riskAt` / `pubAt`): `Math.round(us)` as decimal digits,
 * left-aligned, the rest of the STAGE_TIME_SLOT_BYTES filled with spaces.
 * NaN, ±Infinity and |values| ≥ STAGE_TIME_LIMIT_US are written as `null`.
 * Allocation-free. Integers above 2^53 are written as their exact decimal
 * expansion (which JSON.parse reads back as the same double; the text may be
 * longer than JSON.stringify's shortest form).
 */
export function patchStageTime(buf: Buffer, at: number, us: number): void {
  let v = Math.round(us);
  const stop = at + STAGE_TIME_SLOT_BYTES;
  let i: number;
  if (!(v > -STAGE_TIME_LIMIT_US && v < STAGE_TIME_LIMIT_US)) {
    buf.set(NULL, at);
    i = at + NULL.length;
  } else {
    i = at;
    if (v < 0) {
      buf[i++] = MINUS;
      v = -v; // -0 is not < 0: written `0`
    }
    if (v < 1e8) {
      i = putDigits(buf, i, stop, v | 0, 0, 0, 0);
    } else {
      const hi = Math.floor(v / 1e8); // < 1e10; exact, see putSafeInt
      const lo = v - hi * 1e8;
      if (hi < 1e8) {
        i = putDigits(buf, i, stop, hi | 0, 1, 0, lo | 0);
      } else {
        const top = Math.floor(hi / 1e8); // < 100
        i = putDigits(buf, i, stop, top | 0, 2, (hi - top * 1e8) | 0, lo | 0);
      }
    }
  }
  while (i < stop) buf[i++] = SPACE;
}

/** The tail every kind shares: `},"src":{"seq":N,"ts":N},"lat":{"recv":N,"feat":N,"infer":N`. */
function putTail(buf: Buffer, off: number, end: number, h: Float64Array): number {
  let o = put(buf, off, end, K_SRC_SEQ);
  o = putNumber(buf, o, end, h, H_SEQ);
  o = put(buf, o, end, K_TS);
  o = putNumber(buf, o, end, h, H_TS);
  o = put(buf, o, end, K_LAT_RECV);
  o = putNumber(buf, o, end, h, H_RECV);
  o = put(buf, o, end, K_FEAT);
  o = putNumber(buf, o, end, h, H_FEAT);
  o = put(buf, o, end, K_INFER);
  return putNumber(buf, o, end, h, H_INFER);
}

/** Copy `chunk` to `buf[off]` if it fits before `end`; −1 propagates failure. */
function put(buf: Buffer, off: number, end: number, chunk: Buffer): number {
  if (off < 0) return -1;
  const next = off + chunk.length;
  if (next > end) return -1;
  buf.set(chunk, off); // TypedArray copy: what Buffer#copy does, minus its argument checks
  return next;
}

/*
 * Numbers cross function boundaries as (Float64Array, index), never as a
 * double argument: a double outside the small-integer range passed to a call
 * V8 did not inline is boxed in a fresh HeapNumber (16 bytes) — five per event
 * for the µs timestamps alone. Inside, digits are written from int32 groups.
 */

/**
 * The JSON number `a[i]`, as JSON.stringify writes it: safe integers digit by
 * digit (-0 as `0`), non-finite as `null`, anything else as `String(x)` (the
 * same text, and the only allocation of the encoder).
 */
function putNumber(buf: Buffer, off: number, end: number, a: Float64Array, i: number): number {
  if (off < 0) return -1;
  const x = a[i]!;
  if (Number.isSafeInteger(x)) return putSafeInt(buf, off, end, a, i);
  if (x - x !== 0) return put(buf, off, end, NULL); // NaN, ±Infinity
  return putText(buf, off, end, String(x));
}

/** `a[i]` inside the signal id string: the text of `${x}` (NaN stays `NaN`). */
function putIdNumber(buf: Buffer, off: number, end: number, a: Float64Array, i: number): number {
  if (off < 0) return -1;
  const x = a[i]!;
  if (Number.isSafeInteger(x)) return putSafeInt(buf, off, end, a, i);
  return putText(buf, off, end, String(x));
}

/** `,"interval":{"lower":p[lo],"upper":p[hi]}` (after a prediction's or a signal's score). */
function putInterval(
  buf: Buffer,
  off: number,
  end: number,
  p: Float64Array,
  lo: number,
  hi: number,
): number {
  let o = put(buf, off, end, K_INTERVAL_LOWER);
  o = putNumber(buf, o, end, p, lo);
  o = put(buf, o, end, K_INTERVAL_UPPER);
  o = putNumber(buf, o, end, p, hi);
  return put(buf, o, end, K_CLOSE);
}

function putText(buf: Buffer, off: number, end: number, s: string): number {
  const next = off + s.length;
  if (next > end) return -1;
  buf.write(s, off, s.length, 'latin1'); // number text is ASCII
  return next;
}

/**
 * The safe integer `a[i]`; -0 is written `0`, like JSON.stringify does.
 *
 * Splitting an integer-valued double 0 ≤ v < 2^60 at 1e8 is exact:
 * - `hi = floor(v / 1e8)` is the true quotient q. The division rounds, but
 *   v = q·1e8 + r with 1e8 − r ≥ ulp(v) (r is a multiple of ulp(v) ≤ 2^7,
 *   which divides 1e8 = 2^8·5^8), and ulp(v) ≥ 2^26·ulp(q) because
 *   v ≥ q·1e8 > q·2^26. So v/1e8 is at least 2^26/1e8 ≈ 0.67 ulp(q) below
 *   q + 1, more than the half ulp a rounding can move it: it never reaches q + 1.
 * - `hi · 1e8` is exact (hi·5^8 < 2^53), and `v − hi·1e8` = r < 1e8 is an
 *   integer, so the subtraction is exact too.
 * (The tests check the digits against JSON.stringify / JSON.parse at and
 * around every multiple-of-1e8 boundary they can reach.)
 */
function putSafeInt(buf: Buffer, off: number, end: number, a: Float64Array, i: number): number {
  let v = a[i]!;
  let o = off;
  if (v < 0) {
    if (o >= end) return -1;
    buf[o++] = MINUS;
    v = -v;
  }
  if (v < 1e8) return putDigits(buf, o, end, v | 0, 0, 0, 0);
  const hi = Math.floor(v / 1e8); // < 2^27
  return putDigits(buf, o, end, hi | 0, 1, 0, (v - hi * 1e8) | 0);
}

/**
 * Decimal digits from int32 groups: `head` without leading zeros, then
 * `groups` (0, 1 or 2) zero-padded 8-digit groups, `mid` (if 2) and `lo`.
 */
function putDigits(
  buf: Buffer,
  off: number,
  end: number,
  head: number,
  groups: number,
  mid: number,
  lo: number,
): number {
  const next = off + digits32(head) + 8 * groups;
  if (next > end) return -1;
  let i = next;
  if (groups > 0) {
    write8(buf, i, lo);
    i -= 8;
  }
  if (groups > 1) {
    write8(buf, i, mid);
    i -= 8;
  }
  write32(buf, i, head);
  return next;
}

/** Decimal digits of a non-negative int32 (1 for 0). */
function digits32(n: number): number {
  if (n < 10000) return n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : 4;
  if (n < 100000000) return n < 100000 ? 5 : n < 1000000 ? 6 : n < 10000000 ? 7 : 8;
  return n < 1000000000 ? 9 : 10;
}

/** Write the digits of a non-negative int32 so that the last one is at `stop − 1`. */
function write32(buf: Buffer, stop: number, n: number): void {
  let i = stop;
  do {
    const q = (n / 10) | 0;
    buf[--i] = ZERO + n - q * 10;
    n = q;
  } while (n !== 0);
}

/** Exactly 8 digits (leading zeros) of 0 ≤ n < 1e8, ending at `stop − 1`. */
function write8(buf: Buffer, stop: number, n: number): void {
  for (let i = stop - 1; i >= stop - 8; i--) {
    const q = (n / 10) | 0;
    buf[i] = ZERO + n - q * 10;
    n = q;
  }
}
