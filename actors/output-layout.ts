/**
 * The meaning of `OutputEvent.payload[0..56]` (kernel/output-record.ts) for
 * each output kind. The SymbolActor (worker) writes these slots and the
 * OutputDecoder / OutputEncoder read them; all import the constants from
 * here so the sides cannot drift apart.
 *
 * ```
 *  slot   PREDICTION       SIGNAL               QUALITY
 *   0     score            side (1/-1/0)        score
 *   1     emaFast          strength             ticks
 *   2     emaSlow          refPx                gaps (missing seqs)
 *   3     ret              qty                  crossed
 *   4     vol              predScore            outOfOrder
 *   5     spread           qualityScore         stale
 *   6     zscore           suppressed (0/1)     spikes
 *   7     mid              model id             issueBits (QualityIssue)
 *   8     qualityScore     interval lower       badValues
 *   9     model id         interval upper       locked, outsideBand, timeGaps, skew, duplicates,
 *  10     interval lower   ─                    resets, quarantined, nonfinite, session, kind,
 *  11     interval upper   ─                    then for kind quarantine the tick (RAW_*)
 *  12..   configured features (≤ 45, names from config)
 * ```
 * The model name and version and the feature names are not in the record:
 * a record carries the model's id in the kernel's ModelRefTable
 * (actors/model-refs.ts), and encoder and decoder are configured with the
 * feature names.
 */
export const OutputLayout = {
  prediction: {
    SCORE: 0,
    EMA_FAST: 1,
    EMA_SLOW: 2,
    RET: 3,
    VOL: 4,
    SPREAD: 5,
    ZSCORE: 6,
    MID: 7,
    QUALITY: 8,
    /** Id of the model version that made the score (actors/model-refs.ts). */
    MODEL: 9,
    /** Prediction interval on the score's scale (NaN: the model has none). */
    LOWER: 10,
    UPPER: 11,
    /** First configured feature; feature i is at FEATURES + i. */
    FEATURES: 12,
  },
  signal: {
    SIDE: 0,
    STRENGTH: 1,
    REF_PX: 2,
    QTY: 3,
    PRED_SCORE: 4,
    QUALITY: 5,
    SUPPRESSED: 6,
    /** Id of the model version whose score made the signal (actors/model-refs.ts). */
    MODEL: 7,
    /** The score's prediction interval (NaN: the model has none). */
    LOWER: 8,
    UPPER: 9,
  },
  quality: {
    SCORE: 0,
    TICKS: 1,
    GAPS: 2,
    CROSSED: 3,
    OUT_OF_ORDER: 4,
    STALE: 5,
    SPIKES: 6,
    ISSUE_BITS: 7,
    BAD_VALUES: 8,
    LOCKED: 9,
    OUTSIDE_BAND: 10,
    TIME_GAPS: 11,
    SKEW: 12,
    DUPLICATES: 13,
    RESETS: 14,
    QUARANTINED: 15,
    NONFINITE: 16,
    SESSION: 17,
    /** QualityEventKind. */
    KIND: 18,
    /** kind quarantine: the held-out tick. RAW_TYPE 1 trade, 2 quote. */
    RAW_TYPE: 20,
    RAW_SEQ: 21,
    RAW_TS: 22,
    RAW_RECV: 23,
    RAW_PX: 24,
    RAW_QTY: 25,
    RAW_SIDE: 26,
    RAW_BID: 27,
    RAW_BID_QTY: 28,
    RAW_ASK: 29,
    RAW_ASK_QTY: 30,
  },
} as const;

/** Configured prediction features at most (payload words after the built-in ones). */
export const MAX_CONFIGURED_FEATURES = 45;

/** Why a QUALITY record was made (slot KIND); the names are the `kind` of the message and row. */
export const QualityEventKind = { WINDOW: 1, CHANGE: 2, QUARANTINE: 3, RESET: 4 } as const;
export const QUALITY_EVENT_KIND_NAMES: readonly string[] = [
  '',
  'window',
  'change',
  'quarantine',
  'reset',
];

/** Per-check counts of a QUALITY payload: [check name, slot], in the order the JSON shows them. */
export const QUALITY_COUNT_SLOTS: ReadonlyArray<readonly [check: string, slot: number]> = [
  ['seq_gap', OutputLayout.quality.GAPS],
  ['time_gap', OutputLayout.quality.TIME_GAPS],
  ['crossed_quote', OutputLayout.quality.CROSSED],
  ['locked_quote', OutputLayout.quality.LOCKED],
  ['bad_value', OutputLayout.quality.BAD_VALUES],
  ['outside_band', OutputLayout.quality.OUTSIDE_BAND],
  ['out_of_order', OutputLayout.quality.OUT_OF_ORDER],
  ['duplicate', OutputLayout.quality.DUPLICATES],
  ['stale', OutputLayout.quality.STALE],
  ['skew', OutputLayout.quality.SKEW],
  ['spike', OutputLayout.quality.SPIKES],
  ['seq_reset', OutputLayout.quality.RESETS],
  ['nonfinite', OutputLayout.quality.NONFINITE],
];

/** Signal side as encoded in the SIGNAL payload. */
export const SignalSideCode = { SELL: -1, FLAT: 0, BUY: 1 } as const;

/**
 * Quality issue bits (QUALITY payload slot `ISSUE_BITS`, and the per-tick
 * result of QualityChecker). Bits, not strings, so the worker never allocates.
 */
export const QualityIssue = {
  SEQ_GAP: 1,
  OUT_OF_ORDER: 2,
  CROSSED_QUOTE: 4,
  BAD_VALUE: 8,
  STALE: 16,
  SPIKE: 32,
  LOCKED_QUOTE: 64,
  OUTSIDE_BAND: 128,
  TIME_GAP: 256,
  SKEW: 512,
  DUPLICATE: 1024,
  SEQ_RESET: 2048,
  NONFINITE: 4096,
} as const;

/** Issue code strings of QualityMessage.issues, in bit order. */
export const QUALITY_ISSUE_NAMES: ReadonlyArray<readonly [bit: number, name: string]> = [
  [QualityIssue.SEQ_GAP, 'seq_gap'],
  [QualityIssue.OUT_OF_ORDER, 'out_of_order'],
  [QualityIssue.CROSSED_QUOTE, 'crossed_quote'],
  [QualityIssue.BAD_VALUE, 'bad_value'],
  [QualityIssue.STALE, 'stale'],
  [QualityIssue.SPIKE, 'spike'],
  [QualityIssue.LOCKED_QUOTE, 'locked_quote'],
  [QualityIssue.OUTSIDE_BAND, 'outside_band'],
  [QualityIssue.TIME_GAP, 'time_gap'],
  [QualityIssue.SKEW, 'skew'],
  [QualityIssue.DUPLICATE, 'duplicate'],
  [QualityIssue.SEQ_RESET, 'seq_reset'],
  [QualityIssue.NONFINITE, 'nonfinite'],
];
