import type { AuditEvent } from '../../kernel/audit-event.js';
import type { MetricRow, SignalRow, StoreBatch, TickRow } from '../../kernel/event-store.js';
import type { PredictionMessage, QualityMessage } from '../../kernel/messages.js';

/**
 * Store rows → JSONEachRow objects, shared by the ClickHouse and the chdb
 * store so both hold byte-for-byte the same data.
 *
 * Why the writer computes `ts` (DateTime) and `date` (Date) instead of the
 * server (DEFAULT / MATERIALIZED): ClickHouse 18.16 fills a column omitted from
 * a JSONEachRow insert with the type's zero, not its DEFAULT expression
 * (`input_format_defaults_for_omitted_fields` came in 19.x), and whether a
 * MATERIALIZED column may appear in the input differs between versions.
 * Computing them here behaves the same everywhere.
 *
 * Conventions:
 * - Int64/UInt64 columns get integers (`Math.round`): 18.16 refuses `1.5`
 *   for an Int64; µs stage stamps from `nowUs()` carry fractions.
 * - `ts` is whole seconds since the epoch (DateTime parses a number as a
 *   Unix time on every version); `date` is the UTC calendar day `YYYY-MM-DD`.
 *   DateTime is shown in the server's time zone; `date` is always UTC.
 * - Non-finite floats (NaN, ±Infinity) become 0: JSON has no spelling for
 *   them (JSON.stringify writes `null`, which a non-Nullable column refuses),
 *   and one bad value must not make the whole batch unstorable.
 */

/** Table names in the database, in the order a batch is inserted. */
export const TABLES = [
  'ticks',
  'predictions',
  'signals',
  'quality_events',
  'metrics',
  'audit',
] as const;
export type TableName = (typeof TABLES)[number];

/** StoreBatch key → table name. */
export const BATCH_TABLE: Readonly<Record<keyof StoreBatch, TableName>> = {
  ticks: 'ticks',
  predictions: 'predictions',
  signals: 'signals',
  quality: 'quality_events',
  metrics: 'metrics',
  audit: 'audit',
};

/** One JSONEachRow object (column → value). */
export type JsonRow = Record<string, string | number | string[] | null>;

/** The rows of one table of a batch, ready to insert. */
export interface TableRows {
  table: TableName;
  rows: JsonRow[];
}

const US_PER_S = 1_000_000;
const US_PER_DAY = 86_400 * US_PER_S;

// One-entry cache: rows of a batch almost always share a day, so the
// `YYYY-MM-DD` string is built once per day rather than once per row.
let cachedDay = Number.NaN;
let cachedDate = '1970-01-01';

function int(x: number): number {
  return Number.isFinite(x) ? Math.round(x) : 0;
}

function num(x: number): number {
  return Number.isFinite(x) ? x : 0;
}

/** Whole seconds since the epoch for a µs timestamp (floor, also below 0). */
export function secondsOf(tsUs: number): number {
  return Number.isFinite(tsUs) ? Math.floor(tsUs / US_PER_S) : 0;
}

/** UTC calendar day `YYYY-MM-DD` of a µs timestamp. */
export function dateOf(tsUs: number): string {
  const day = Number.isFinite(tsUs) ? Math.floor(tsUs / US_PER_DAY) : 0;
  if (day !== cachedDay) {
    cachedDay = day;
    cachedDate = new Date(day * 86_400_000).toISOString().slice(0, 10);
  }
  return cachedDate;
}

/** `ticks` row. */
export function tickRow(t: TickRow): JsonRow {
  return {
    type: t.type,
    sym: t.sym,
    venue: t.venue,
    seq: Math.max(0, int(t.seq)),
    ts_us: int(t.tsUs),
    recv_us: int(t.recvUs),
    ts: secondsOf(t.tsUs),
    date: dateOf(t.tsUs),
    px: num(t.px),
    qty: num(t.qty),
    side: int(t.side),
    bid: num(t.bid),
    bid_qty: num(t.bidQty),
    ask: num(t.ask),
    ask_qty: num(t.askQty),
  };
}

/** `predictions` row; `features` is stored as a JSON string. */
export function predictionRow(p: PredictionMessage): JsonRow {
  return {
    sym: p.sym,
    ts_us: int(p.ts),
    ts: secondsOf(p.ts),
    date: dateOf(p.ts),
    model: p.model.name,
    model_version: p.model.version,
    model_role: p.model.role ?? 'live',
    score: num(p.score),
    lower: p.interval === undefined ? null : num(p.interval.lower),
    upper: p.interval === undefined ? null : num(p.interval.upper),
    features: p.featuresJson ?? JSON.stringify(p.features),
    src_seq: Math.max(0, int(p.src.seq)),
    src_ts_us: int(p.src.ts),
    lat_recv_us: int(p.lat.recv),
    lat_feat_us: int(p.lat.feat),
    lat_infer_us: int(p.lat.infer),
  };
}

/** `signals` row; absent `lat.risk` / `lat.pub` are 0. */
export function signalRow(r: SignalRow): JsonRow {
  const s = r.signal;
  return {
    id: s.id,
    strategy: s.strategy,
    sym: s.sym,
    ts_us: int(s.ts),
    ts: secondsOf(s.ts),
    date: dateOf(s.ts),
    side: s.side,
    strength: num(s.strength),
    ref_px: num(s.refPx),
    qty: num(s.qty),
    account: s.account,
    model: s.model.name,
    model_version: s.model.version,
    pred_score: num(s.prediction.score),
    quality_score: num(s.quality.score),
    status: r.status,
    reason: r.reason,
    src_seq: Math.max(0, int(s.src.seq)),
    src_ts_us: int(s.src.ts),
    lat_recv_us: int(s.lat.recv),
    lat_feat_us: int(s.lat.feat),
    lat_infer_us: int(s.lat.infer),
    lat_risk_us: int(s.lat.risk ?? 0),
    lat_pub_us: int(s.lat.pub ?? 0),
  };
}

/** `quality_events` row. */
export function qualityRow(q: QualityMessage): JsonRow {
  const w = q.window;
  return {
    sym: q.sym,
    ts_us: int(q.ts),
    ts: secondsOf(q.ts),
    date: dateOf(q.ts),
    score: num(q.score),
    issues: q.issues,
    ticks: Math.max(0, int(w.ticks)),
    gaps: Math.max(0, int(w.gaps)),
    crossed: Math.max(0, int(w.crossed)),
    out_of_order: Math.max(0, int(w.outOfOrder)),
    stale: Math.max(0, int(w.stale)),
    spikes: Math.max(0, int(w.spikes)),
    src_seq: Math.max(0, int(q.src.seq)),
    src_ts_us: int(q.src.ts),
    lat_recv_us: int(q.lat.recv),
    kind: q.kind,
    session: Math.max(0, int(q.session)),
    bad_values: Math.max(0, int(w.badValues)),
    locked: Math.max(0, int(w.locked)),
    outside_band: Math.max(0, int(w.outsideBand)),
    time_gaps: Math.max(0, int(w.timeGaps)),
    skew: Math.max(0, int(w.skew)),
    duplicates: Math.max(0, int(w.duplicates)),
    resets: Math.max(0, int(w.resets)),
    quarantined: Math.max(0, int(w.quarantined)),
    nonfinite: Math.max(0, int(w.nonfinite)),
    raw: q.tick === undefined ? '' : JSON.stringify({ ...q.tick, sym: q.sym }),
  };
}

/** `metrics` row. */
export function metricRow(m: MetricRow): JsonRow {
  return {
    ts_us: int(m.tsUs),
    ts: secondsOf(m.tsUs),
    date: dateOf(m.tsUs),
    name: m.name,
    labels: m.labels,
    value: num(m.value),
  };
}

/** `audit` row (migration 5); the event's fields are the columns. */
export function auditRow(a: AuditEvent): JsonRow {
  return {
    id: a.id,
    ts_us: int(a.ts_us),
    ts: secondsOf(a.ts_us),
    date: dateOf(a.ts_us),
    actor: a.actor,
    action: a.action,
    target: a.target,
    outcome: a.outcome,
    reason: a.reason,
    source: a.source,
    detail: a.detail,
  };
}

/** The non-empty tables of a batch as JSONEachRow objects, in TABLES order. */
export function formatBatch(batch: StoreBatch): TableRows[] {
  const out: TableRows[] = [];
  if (batch.ticks.length > 0) out.push({ table: 'ticks', rows: batch.ticks.map(tickRow) });
  if (batch.predictions.length > 0)
    out.push({ table: 'predictions', rows: batch.predictions.map(predictionRow) });
  if (batch.signals.length > 0) out.push({ table: 'signals', rows: batch.signals.map(signalRow) });
  if (batch.quality.length > 0)
    out.push({ table: 'quality_events', rows: batch.quality.map(qualityRow) });
  if (batch.metrics.length > 0) out.push({ table: 'metrics', rows: batch.metrics.map(metricRow) });
  if (batch.audit.length > 0) out.push({ table: 'audit', rows: batch.audit.map(auditRow) });
  return out;
}

/** Rows as newline-delimited JSON (the JSONEachRow body), trailing newline included. */
export function toNdjson(rows: readonly JsonRow[]): string {
  let s = '';
  for (const r of rows) s += JSON.stringify(r) + '\n';
  return s;
}

/** Total rows of a batch. */
export function batchSize(batch: StoreBatch): number {
  return (
    batch.ticks.length +
    batch.predictions.length +
    batch.signals.length +
    batch.quality.length +
    batch.metrics.length +
    batch.audit.length
  );
}

/** A new empty batch. */
export function emptyBatch(): StoreBatch {
  return { ticks: [], predictions: [], signals: [], quality: [], metrics: [], audit: [] };
}

/**
 * A `ticks` NDJSON line written directly: the same bytes as
 * `JSON.stringify(tickRow(t))` (property-tested), without the intermediate
 * object. Ticks are most of what the store writes; strings here are
 * validated tokens (symbol, venue) and `type` a fixed word, so only numbers
 * need formatting.
 */
export function tickLine(t: TickRow): string {
  return `{"type":"${t.type}","sym":${str(t.sym)},"venue":${str(t.venue)},"seq":${Math.max(0, int(t.seq))},"ts_us":${int(t.tsUs)},"recv_us":${int(t.recvUs)},"ts":${secondsOf(t.tsUs)},"date":"${dateOf(t.tsUs)}","px":${num(t.px)},"qty":${num(t.qty)},"side":${int(t.side)},"bid":${num(t.bid)},"bid_qty":${num(t.bidQty)},"ask":${num(t.ask)},"ask_qty":${num(t.askQty)}}\n`;
}

/** A `predictions` NDJSON line written directly (same bytes as JSON.stringify(predictionRow(p))). */
export function predictionLine(p: PredictionMessage): string {
  return `{"sym":${str(p.sym)},"ts_us":${int(p.ts)},"ts":${secondsOf(p.ts)},"date":"${dateOf(p.ts)}","model":${str(p.model.name)},"model_version":${str(p.model.version)},"model_role":${str(p.model.role ?? 'live')},"score":${num(p.score)},"lower":${p.interval === undefined ? 'null' : num(p.interval.lower)},"upper":${p.interval === undefined ? 'null' : num(p.interval.upper)},"features":${str(p.featuresJson ?? JSON.stringify(p.features))},"src_seq":${Math.max(0, int(p.src.seq))},"src_ts_us":${int(p.src.ts)},"lat_recv_us":${int(p.lat.recv)},"lat_feat_us":${int(p.lat.feat)},"lat_infer_us":${int(p.lat.infer)}}\n`;
}

/** A JSON string literal: tokens as they are, anything else through JSON.stringify. */
function str(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return JSON.stringify(s);
  }
  return `"${s}"`;
}

/** Reused by linesText: grows to the biggest table text seen, never shrinks. */
let scratch = Buffer.allocUnsafe(1 << 16);

/**
 * Lines joined through a reused byte buffer: each line dies at once, and
 * the text is one flat string made at the end. Built with `+=`, the
 * half-built text of a 10,000-row batch was a live rope of young strings
 * that every scavenge during the formatting copied.
 */
function linesText<T>(rows: readonly T[], line: (r: T) => string): string {
  let off = 0;
  for (const r of rows) {
    const l = line(r);
    const worst = l.length * 3; // UTF-8 bytes of a UTF-16 string, at most
    if (off + worst > scratch.length) {
      const bigger = Buffer.allocUnsafe(Math.max(scratch.length * 2, off + worst));
      scratch.copy(bigger, 0, 0, off);
      scratch = bigger;
    }
    off += scratch.write(l, off, 'utf8');
  }
  return scratch.toString('utf8', 0, off);
}

/** The rows of one table as NDJSON text, ready to insert. */
export interface TableText {
  table: TableName;
  rows: number;
  text: string;
}

/**
 * The non-empty tables of a batch as NDJSON text, in TABLES order: the same
 * text as `toNdjson(formatBatch(batch)[i].rows)`, with the row objects of
 * the two big tables (ticks, predictions) skipped.
 */
export function formatBatchText(batch: StoreBatch): TableText[] {
  const out: TableText[] = [];
  if (batch.ticks.length > 0) {
    out.push({ table: 'ticks', rows: batch.ticks.length, text: linesText(batch.ticks, tickLine) });
  }
  if (batch.predictions.length > 0) {
    out.push({
      table: 'predictions',
      rows: batch.predictions.length,
      text: linesText(batch.predictions, predictionLine),
    });
  }
  if (batch.signals.length > 0) {
    out.push({
      table: 'signals',
      rows: batch.signals.length,
      text: toNdjson(batch.signals.map(signalRow)),
    });
  }
  if (batch.quality.length > 0) {
    out.push({
      table: 'quality_events',
      rows: batch.quality.length,
      text: toNdjson(batch.quality.map(qualityRow)),
    });
  }
  if (batch.metrics.length > 0) {
    out.push({
      table: 'metrics',
      rows: batch.metrics.length,
      text: toNdjson(batch.metrics.map(metricRow)),
    });
  }
  if (batch.audit.length > 0) {
    out.push({
      table: 'audit',
      rows: batch.audit.length,
      text: toNdjson(batch.audit.map(auditRow)),
    });
  }
  return out;
}
