import fc from 'fast-check';
import t from 'tap';
import {
  MARKET_RECORD_BYTES,
  MarketKind,
  Side,
  decodeMarket,
  encodeMarket,
  newMarketEvent,
  type MarketEvent,
} from '../../kernel/market-record.js';
import {
  OUTPUT_PAYLOAD_WORDS,
  OUTPUT_RECORD_BYTES,
  OutputKind,
  decodeOutput,
  encodeOutput,
  newOutputEvent,
} from '../../kernel/output-record.js';
import { SymbolTable } from '../../kernel/symbol-table.js';

const dbl = fc.double({ noNaN: true });
const u32 = fc.integer({ min: 0, max: 0xffffffff });

const trade = fc.record({
  kind: fc.constant(MarketKind.TRADE),
  symId: u32,
  seq: fc.maxSafeNat(),
  ts: fc.maxSafeNat(),
  recv: dbl,
  px: dbl,
  qty: dbl,
  side: fc.constantFrom(Side.NONE, Side.BUY, Side.SELL),
  bid: fc.constant(0),
  bidQty: fc.constant(0),
  ask: fc.constant(0),
  askQty: fc.constant(0),
  // Not in the record: the source's (0 in a fresh event).
  streamSeq: fc.constant(0),
  unit: fc.constant(0),
});
const quote = fc.record({
  kind: fc.constant(MarketKind.QUOTE),
  symId: u32,
  seq: fc.maxSafeNat(),
  ts: fc.maxSafeNat(),
  recv: dbl,
  px: fc.constant(0),
  qty: fc.constant(0),
  side: fc.constant(Side.NONE),
  bid: dbl,
  bidQty: dbl,
  ask: dbl,
  askQty: dbl,
  streamSeq: fc.constant(0),
  unit: fc.constant(0),
});

void t.test('market records round-trip through a slot, at any slot', (t) => {
  const buf = new ArrayBuffer(MARKET_RECORD_BYTES * 4);
  const f64 = new Float64Array(buf);
  const words = new Uint32Array(buf);
  const out = newMarketEvent();
  fc.assert(
    fc.property(fc.oneof(trade, quote), fc.integer({ min: 0, max: 3 }), (e: MarketEvent, slot) => {
      f64.fill(Number.NaN); // stale bytes from a previous record must not leak through
      encodeMarket(e, f64, words, slot * 8);
      decodeMarket(f64, words, slot * 8, out);
      t.same(out, e);
      return true;
    }),
  );
  t.end();
});

void t.test('output records round-trip with their payload', (t) => {
  const buf = new ArrayBuffer(OUTPUT_RECORD_BYTES * 2);
  const f64 = new Float64Array(buf);
  const words = new Uint32Array(buf);
  const a = newOutputEvent();
  const b = newOutputEvent();
  fc.assert(
    fc.property(
      fc.constantFrom(OutputKind.PREDICTION, OutputKind.SIGNAL, OutputKind.QUALITY),
      u32,
      fc.array(dbl, { minLength: 6 + OUTPUT_PAYLOAD_WORDS, maxLength: 6 + OUTPUT_PAYLOAD_WORDS }),
      fc.integer({ min: 0, max: 1 }),
      (kind, symId, vals, slot) => {
        a.kind = kind;
        a.symId = symId;
        [a.srcSeq, a.srcTs, a.recv, a.feat, a.infer, a.emit] = vals as [
          number,
          number,
          number,
          number,
          number,
          number,
        ];
        a.payload.set(vals.slice(6));
        encodeOutput(a, f64, words, slot * 16);
        decodeOutput(f64, words, slot * 16, b);
        return (
          b.kind === a.kind &&
          b.symId === a.symId &&
          [b.srcSeq, b.srcTs, b.recv, b.feat, b.infer, b.emit].every((v, i) =>
            Object.is(v, vals[i]),
          ) &&
          b.payload.every((v, i) => Object.is(v, a.payload[i]))
        );
      },
    ),
  );
  t.pass('round-tripped');
  t.end();
});

void t.test('symbol table interns densely, looks up both ways and is bounded', (t) => {
  const st = new SymbolTable(3);
  t.equal(st.intern('A'), 0);
  t.equal(st.intern('B'), 1);
  t.equal(st.intern('A'), 0, 'same id again');
  t.equal(st.name(1), 'B');
  t.equal(st.lookup('Z'), -1);
  t.equal(st.intern('C'), 2);
  t.throws(() => st.intern('D'), { code: 'QLN_SYMBOL_TABLE_FULL' });
  t.throws(() => st.name(9), { code: 'QLN_INVALID_ARGUMENT' });
  t.equal(st.size, 3);
  t.end();
});
