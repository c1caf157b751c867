/**
 * The meaning of `OutputEvent.payload[0..8]` (kernel/output-record.ts) for each
 * output kind. The SymbolActor (worker) writes these slots and the
 * OutputDecoder (main thread) reads them; both import the constants from here
 * so the two sides cannot drift apart.
 *
 * ```
 *  slot   PREDICTION     SIGNAL               QUALITY
 *   0     score          side (1/-1/0)        score
 *   1     emaFast        strength             ticks
 *   2     emaSlow        refPx                gaps (missing seqs)
 *   3     ret            qty                  crossed
 *   4     vol            predScore            outOfOrder
 *   5     spread         qualityScore         stale
 *   6     zscore         ─                    spikes
 *   7     mid            ─                    issueBits (QualityIssue)
 *   8     qualityScore   ─                    badValues
 * ```
 * The model name and version are not in the record: one actor module runs one
 * model, so the decoder is configured with it (OutputDecoder's `model`).
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
  },
  signal: {
    SIDE: 0,
    STRENGTH: 1,
    REF_PX: 2,
    QTY: 3,
    PRED_SCORE: 4,
    QUALITY: 5,
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
  },
} as const;

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
} as const;

/** Issue code strings of QualityMessage.issues, in bit order. */
export const QUALITY_ISSUE_NAMES: ReadonlyArray<readonly [bit: number, name: string]> = [
  [QualityIssue.SEQ_GAP, 'seq_gap'],
  [QualityIssue.OUT_OF_ORDER, 'out_of_order'],
  [QualityIssue.CROSSED_QUOTE, 'crossed_quote'],
  [QualityIssue.BAD_VALUE, 'bad_value'],
  [QualityIssue.STALE, 'stale'],
  [QualityIssue.SPIKE, 'spike'],
];
