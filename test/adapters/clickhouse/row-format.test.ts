/**
 * The direct NDJSON writers are an optimisation of the row objects +
 * JSON.stringify path: for any rows they write exactly the same bytes.
 */
import fc from 'fast-check';
import t from 'tap';
import {
  formatBatch,
  formatBatchText,
  predictionLine,
  predictionRow,
  tickLine,
  tickRow,
  toNdjson,
} from '../../../adapters/clickhouse/row-format.js';
import type { StoreBatch, TickRow } from '../../../kernel/event-store.js';
import type { PredictionMessage } from '../../../kernel/messages.js';

const anyNum = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -0, NaN, Infinity, -Infinity, 1.5, 2 ** 53, 1732300000123456.5),
);
/** Event times (they become a calendar day): any value a valid tick can carry, and fractions. */
const eventTs = fc.oneof(
  fc.integer({ min: 0, max: 4e15 }),
  fc.double({ min: 0, max: 4e15, noNaN: true }),
  fc.constantFrom(0, NaN, Infinity, 1732300000123456.5),
);
const text = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_-]{0,12}$/),
  fc.string({ maxLength: 8 }),
  fc.constantFrom('a"b', 'back\\slash', 'é', '\u0001', '\u2028'),
);
const tick: fc.Arbitrary<TickRow> = fc.record({
  type: fc.constantFrom('trade' as const, 'quote' as const),
  sym: text,
  venue: text,
  seq: anyNum,
  tsUs: eventTs,
  recvUs: anyNum,
  px: anyNum,
  qty: anyNum,
  side: fc.constantFrom(-1, 0, 1),
  bid: anyNum,
  bidQty: anyNum,
  ask: anyNum,
  askQty: anyNum,
});
const prediction: fc.Arbitrary<PredictionMessage> = fc.record({
  sym: text,
  ts: eventTs,
  model: fc.record({ name: text, version: text }),
  score: anyNum,
  features: fc.dictionary(text, anyNum, { maxKeys: 4 }),
  src: fc.record({ seq: anyNum, ts: anyNum }),
  lat: fc.record({ recv: anyNum, feat: anyNum, infer: anyNum }),
});

void t.test(
  'tickLine and predictionLine write what JSON.stringify of the row objects writes',
  (t) => {
    fc.assert(
      fc.property(tick, (r) => tickLine(r) === `${JSON.stringify(tickRow(r))}\n`),
      { numRuns: 5000 },
    );
    fc.assert(
      fc.property(prediction, (p) => predictionLine(p) === `${JSON.stringify(predictionRow(p))}\n`),
      { numRuns: 5000 },
    );
    t.end();
  },
);

void t.test('formatBatchText: batches far bigger than its scratch buffer, any text', (t) => {
  const batch = fc.record({
    ticks: fc.array(tick, { minLength: 500, maxLength: 1500 }),
    predictions: fc.array(prediction, { minLength: 200, maxLength: 800 }),
    signals: fc.constant([]),
    quality: fc.constant([]),
    audit: fc.constant([]),
    metrics: fc.constant([]),
  }) as fc.Arbitrary<StoreBatch>;
  fc.assert(
    fc.property(batch, (b) => {
      const got = formatBatchText(b);
      const want = formatBatch(b).map((x) => ({
        table: x.table,
        rows: x.rows.length,
        text: toNdjson(x.rows),
      }));
      return JSON.stringify(got) === JSON.stringify(want);
    }),
    { numRuns: 12 },
  );
  t.end();
});

void t.test('formatBatchText: the same tables, rows and text as formatBatch + toNdjson', (t) => {
  const batch = fc.record({
    ticks: fc.array(tick, { maxLength: 5 }),
    predictions: fc.array(prediction, { maxLength: 5 }),
    signals: fc.constant([]),
    quality: fc.constant([]),
    audit: fc.constant([]),
    metrics: fc.array(fc.record({ tsUs: eventTs, name: text, labels: text, value: anyNum }), {
      maxLength: 3,
    }),
  }) as fc.Arbitrary<StoreBatch>;
  fc.assert(
    fc.property(batch, (b) => {
      const want = formatBatch(b).map((x) => ({
        table: x.table,
        rows: x.rows.length,
        text: toNdjson(x.rows),
      }));
      t.same(formatBatchText(b), want);
      return true;
    }),
    { numRuns: 1000 },
  );
  t.end();
});
