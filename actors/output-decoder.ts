import { invalidArgument } from '../kernel/errors.js';
import type {
  ModelRef,
  PredictionMessage,
  QualityMessage,
  SignalMessage,
  SignalSide,
} from '../kernel/messages.js';
import type { OutputEvent } from '../kernel/output-record.js';
import { ModelRefTable, type ModelRefEntry } from './model-refs.js';
import {
  MAX_CONFIGURED_FEATURES,
  OutputLayout,
  QUALITY_EVENT_KIND_NAMES,
  QUALITY_ISSUE_NAMES,
  SignalSideCode,
} from './output-layout.js';

/** Configuration of an OutputDecoder: what the worker records do not carry. */
export interface OutputDecoderOptions {
  /** Strategy name: signal ids and `sig.<strategy>.<symbol>` subjects. */
  strategy: string;
  /** Account the signals are proposed for (fills come back on `fill.<account>`). */
  account: string;
  /** The actor module's built-in model (id 0 of `models`). */
  model: ModelRef;
  /**
   * Loaded model versions by id (actors/model-refs.ts), shared with whoever
   * adds them; default a table holding only `model`.
   */
  models?: ModelRefTable;
  /**
   * Names of the configured prediction features, in payload order (after
   * the built-in ones, OutputLayout.prediction.FEATURES). Default none.
   */
  features?: readonly string[];
}

/** Built-in prediction features, in JSON order (the baseline model's inputs and the quote). */
export const BUILTIN_FEATURES = [
  'emaFast',
  'emaSlow',
  'ret',
  'vol',
  'spread',
  'zscore',
  'mid',
  'qualityScore',
] as const;

/**
 * Validate OutputDecoder / OutputEncoder options (fail fast, naming the key)
 * and return a private copy, so a caller mutating its object later cannot
 * change what an encoder pre-encoded or a decoder writes.
 */
export function resolveOutputDecoderOptions(opts: OutputDecoderOptions): OutputDecoderOptions {
  if (typeof opts.strategy !== 'string' || !/^[A-Za-z0-9_-]+$/.test(opts.strategy)) {
    invalidArgument('strategy', opts.strategy, 'a NATS token [A-Za-z0-9_-]+');
  }
  if (typeof opts.account !== 'string' || !/^[A-Za-z0-9_-]+$/.test(opts.account)) {
    invalidArgument('account', opts.account, 'a NATS token [A-Za-z0-9_-]+');
  }
  if (
    typeof opts.model?.name !== 'string' ||
    opts.model.name === '' ||
    typeof opts.model.version !== 'string' ||
    opts.model.version === ''
  ) {
    invalidArgument('model', opts.model, '{name, version}: non-empty strings');
  }
  const given: unknown = opts.features ?? [];
  const features: readonly string[] = Array.isArray(given) ? (given as string[]) : [];
  if (
    !Array.isArray(given) ||
    features.length > MAX_CONFIGURED_FEATURES ||
    features.some((f) => typeof f !== 'string' || f === '') ||
    new Set([...BUILTIN_FEATURES, ...features]).size !== BUILTIN_FEATURES.length + features.length
  ) {
    invalidArgument(
      'features',
      features,
      `at most ${MAX_CONFIGURED_FEATURES} distinct names, none of ${BUILTIN_FEATURES.join(', ')}`,
    );
  }
  return {
    strategy: opts.strategy,
    account: opts.account,
    model: { name: opts.model.name, version: opts.model.version },
    models: opts.models,
    features: [...features],
  };
}

/** The features of a prediction, in the order the JSON shows them. */
function newFeatures(configured: readonly string[]): Record<string, number> {
  const f: Record<string, number> = {};
  for (const k of BUILTIN_FEATURES) f[k] = 0;
  for (const k of configured) f[k] = 0;
  return f;
}

/**
 * Main thread: turns the binary OutputEvents of the SymbolActors into the
 * public JSON messages of kernel/messages.ts (one object per event, off the
 * worker hot path). `lat` carries recv/feat/infer from the record; the caller
 * adds `risk` and `pub`. `ts` is the source tick's exchange time, and a
 * signal's id is `${strategy}:${sym}:${srcSeq}`, deterministic so JetStream
 * dedups a replayed signal.
 */
export class OutputDecoder {
  private readonly strategy: string;
  private readonly account: string;
  private readonly models: ModelRefTable;
  private readonly features: readonly string[];

  constructor(opts: OutputDecoderOptions) {
    const o = resolveOutputDecoderOptions(opts);
    this.strategy = o.strategy;
    this.account = o.account;
    this.models = o.models ?? new ModelRefTable(o.model);
    this.features = o.features ?? [];
  }

  toPrediction(ev: OutputEvent, sym: string): PredictionMessage {
    const m = this.fillPrediction(ev, sym, this.newPrediction());
    // Keys in the order the encoder writes them (interval after score).
    const { features, src, lat } = m;
    return {
      sym: m.sym,
      ts: m.ts,
      model: { ...m.model },
      score: m.score,
      ...(m.interval === undefined ? {} : { interval: { ...m.interval } }),
      features,
      src,
      lat,
    };
  }

  /**
   * Overwrite `into` (made by toPrediction or newPrediction) with this
   * event: the same message as toPrediction, no allocation. `model` and
   * `interval` are the decoder's own, shared: the caller must not change them.
   */
  fillPrediction(ev: OutputEvent, sym: string, into: PredictionMessage): PredictionMessage {
    const p = ev.payload;
    const L = OutputLayout.prediction;
    const m = this.entry(p[L.MODEL]!);
    into.sym = sym;
    into.ts = ev.srcTs;
    into.model = m.ref;
    into.score = p[L.SCORE]!;
    if (m.interval) {
      const iv = (into.interval ??= { lower: 0, upper: 0 });
      iv.lower = p[L.LOWER]!;
      iv.upper = p[L.UPPER]!;
    } else if (into.interval !== undefined) delete into.interval;
    const f = into.features;
    f.emaFast = p[L.EMA_FAST]!;
    f.emaSlow = p[L.EMA_SLOW]!;
    f.ret = p[L.RET]!;
    f.vol = p[L.VOL]!;
    f.spread = p[L.SPREAD]!;
    f.zscore = p[L.ZSCORE]!;
    f.mid = p[L.MID]!;
    f.qualityScore = p[L.QUALITY]!;
    const names = this.features;
    for (let i = 0; i < names.length; i++) f[names[i]!] = p[L.FEATURES + i]!;
    into.src.seq = ev.srcSeq;
    into.src.ts = ev.srcTs;
    into.lat.recv = ev.recv;
    into.lat.feat = ev.feat;
    into.lat.infer = ev.infer;
    return into;
  }

  /** A prediction to fill with fillPrediction (pooled by the store worker). */
  newPrediction(): PredictionMessage {
    return {
      sym: '',
      ts: 0,
      model: this.models.get(0).ref,
      score: 0,
      features: newFeatures(this.features),
      src: { seq: 0, ts: 0 },
      lat: { recv: 0, feat: 0, infer: 0 },
    };
  }

  toSignal(ev: OutputEvent, sym: string): SignalMessage {
    const p = ev.payload;
    const L = OutputLayout.signal;
    const code = p[L.SIDE]!;
    const side: SignalSide =
      code === SignalSideCode.BUY ? 'buy' : code === SignalSideCode.SELL ? 'sell' : 'flat';
    return {
      id: `${this.strategy}:${sym}:${ev.srcSeq}`,
      strategy: this.strategy,
      sym,
      ts: ev.srcTs,
      side,
      strength: p[L.STRENGTH]!,
      refPx: p[L.REF_PX]!,
      qty: p[L.QTY]!,
      account: this.account,
      model: { ...this.entry(p[L.MODEL]!).ref },
      prediction: this.entry(p[L.MODEL]!).interval
        ? { score: p[L.PRED_SCORE]!, interval: { lower: p[L.LOWER]!, upper: p[L.UPPER]! } }
        : { score: p[L.PRED_SCORE]! },
      quality: { score: p[L.QUALITY]! },
      src: { seq: ev.srcSeq, ts: ev.srcTs },
      lat: { recv: ev.recv, feat: ev.feat, infer: ev.infer },
    };
  }

  /** Whether a PREDICTION record comes from a shadow version (stored and compared, never published). */
  isShadow(ev: OutputEvent): boolean {
    return this.models.get(ev.payload[OutputLayout.prediction.MODEL]!).ref.role === 'shadow';
  }

  /** The model entry of a record's id (0, the built-in, for records of actors without models). */
  private entry(id: number): ModelRefEntry {
    return this.models.get(id);
  }

  toQuality(ev: OutputEvent, sym: string): QualityMessage {
    const p = ev.payload;
    const L = OutputLayout.quality;
    const bits = p[L.ISSUE_BITS]!;
    const issues: string[] = [];
    for (const [bit, name] of QUALITY_ISSUE_NAMES) if ((bits & bit) !== 0) issues.push(name);
    const kind = (QUALITY_EVENT_KIND_NAMES[p[L.KIND]!] || 'window') as QualityMessage['kind'];
    const msg: QualityMessage = {
      sym,
      ts: ev.srcTs,
      kind,
      session: p[L.SESSION]!,
      score: p[L.SCORE]!,
      issues,
      window: {
        ticks: p[L.TICKS]!,
        gaps: p[L.GAPS]!,
        crossed: p[L.CROSSED]!,
        outOfOrder: p[L.OUT_OF_ORDER]!,
        stale: p[L.STALE]!,
        spikes: p[L.SPIKES]!,
        badValues: p[L.BAD_VALUES]!,
        locked: p[L.LOCKED]!,
        outsideBand: p[L.OUTSIDE_BAND]!,
        timeGaps: p[L.TIME_GAPS]!,
        skew: p[L.SKEW]!,
        duplicates: p[L.DUPLICATES]!,
        resets: p[L.RESETS]!,
        quarantined: p[L.QUARANTINED]!,
        nonfinite: p[L.NONFINITE]!,
      },
      src: { seq: ev.srcSeq, ts: ev.srcTs },
      lat: { recv: ev.recv, feat: ev.feat, infer: ev.infer },
    };
    if (kind === 'quarantine') {
      const base = { seq: p[L.RAW_SEQ]!, ts: p[L.RAW_TS]!, recv: p[L.RAW_RECV]! };
      msg.tick =
        p[L.RAW_TYPE] === 1
          ? {
              type: 'trade',
              ...base,
              px: p[L.RAW_PX]!,
              qty: p[L.RAW_QTY]!,
              side: p[L.RAW_SIDE] === 1 ? 'buy' : p[L.RAW_SIDE] === 2 ? 'sell' : 'unknown',
            }
          : {
              type: 'quote',
              ...base,
              bid: p[L.RAW_BID]!,
              bidQty: p[L.RAW_BID_QTY]!,
              ask: p[L.RAW_ASK]!,
              askQty: p[L.RAW_ASK_QTY]!,
            };
      // src/lat after tick, as the encoder writes them.
      const { src, lat } = msg;
      delete (msg as Partial<QualityMessage>).src;
      delete (msg as Partial<QualityMessage>).lat;
      msg.src = src;
      msg.lat = lat;
    }
    return msg;
  }
}
