import fc from 'fast-check';
import t from 'tap';
import {
  TICK_BINARY_HEADER_BYTES,
  TICK_BINARY_MAGIC_V1,
  TickBinaryCodec,
} from '../../../adapters/nats/tick-binary-codec.js';
import { MIN_TICK_TS_US, TickJsonDecoder } from '../../../adapters/nats/tick-json-decoder.js';
import {
  MarketKind,
  Side,
  newMarketEvent,
  type MarketEvent,
} from '../../../kernel/market-record.js';
import type { TickMessage } from '../../../kernel/messages.js';

/** Fixed "now" for property tests, so the ts upper bound is stable. */
const NOW_US = 1_732_300_000_000_000;

const token = fc.stringMatching(/^[A-Za-z0-9_-]{1,24}$/);
const price = fc.double({ min: Number.MIN_VALUE, max: 1e15, noNaN: true, noDefaultInfinity: true });
const size = fc
  .double({ min: 0, max: 1e12, noNaN: true, noDefaultInfinity: true })
  .map((v) => v + 0); // no -0: JSON cannot carry it
const ts = fc.integer({ min: MIN_TICK_TS_US, max: NOW_US });
const seq = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });

const trade: fc.Arbitrary<TickMessage> = fc.record(
  {
    type: fc.constant('trade' as const),
    sym: token,
    ts,
    px: price,
    qty: price,
    side: fc.constantFrom('buy' as const, 'sell' as const),
    seq,
  },
  { requiredKeys: ['type', 'sym', 'ts', 'px', 'qty', 'seq'] },
);

const quote: fc.Arbitrary<TickMessage> = fc.record({
  type: fc.constant('quote' as const),
  sym: token,
  ts,
  bid: price,
  bidQty: size,
  ask: price,
  askQty: size,
  seq,
});

const tick = fc.oneof(trade, quote);

/** What a decoder must produce for `m` (symId and recv are the caller's). */
function expectedEvent(m: TickMessage): Omit<MarketEvent, 'symId' | 'recv' | 'streamSeq' | 'unit'> {
  if (m.type === 'trade') {
    return {
      kind: MarketKind.TRADE,
      seq: m.seq,
      ts: m.ts,
      px: m.px,
      qty: m.qty,
      side: m.side === 'buy' ? Side.BUY : m.side === 'sell' ? Side.SELL : Side.NONE,
      bid: 0,
      bidQty: 0,
      ask: 0,
      askQty: 0,
    };
  }
  return {
    kind: MarketKind.QUOTE,
    seq: m.seq,
    ts: m.ts,
    px: 0,
    qty: 0,
    side: Side.NONE,
    bid: m.bid,
    bidQty: m.bidQty,
    ask: m.ask,
    askQty: m.askQty,
  };
}

function withoutIds(e: MarketEvent): Omit<MarketEvent, 'symId' | 'recv' | 'streamSeq' | 'unit'> {
  const { symId: _s, recv: _r, streamSeq: _q, unit: _u, ...rest } = e;
  return rest;
}

const opts = { clockUs: () => NOW_US };
const subjectOf = (m: TickMessage) => `md.venue-1.${m.sym}`;
const utf8 = new TextEncoder();

void t.test('JSON and binary round-trip every valid TickMessage', (t) => {
  const json = new TickJsonDecoder(opts);
  const bin = new TickBinaryCodec(opts);
  const out = newMarketEvent();
  const buf = new Uint8Array(512);
  fc.assert(
    fc.property(tick, (m) => {
      const a = json.decode(subjectOf(m), utf8.encode(JSON.stringify(m)), out);
      if (!a.ok) throw new Error(`json refused: ${a.reason} ${a.detail}`);
      t.same(withoutIds(out), expectedEvent(m));
      if (a.sym !== m.sym || a.venue !== 'venue-1')
        throw new Error(`json sym/venue ${a.sym}/${a.venue}`);
      const b = bin.decode(subjectOf(m), bin.encodeTick(m, buf), out);
      if (!b.ok) throw new Error(`binary refused: ${b.reason} ${b.detail}`);
      if (b.sym !== m.sym || b.venue !== 'venue-1') throw new Error(`binary sym/venue ${b.sym}`);
      t.same(withoutIds(out), expectedEvent(m));
    }),
    { numRuns: 500 },
  );
  t.end();
});

void t.test('binary: every corruption is refused with its specific reason, never a throw', (t) => {
  const bin = new TickBinaryCodec(opts);
  const out = newMarketEvent();
  const check = (m: TickMessage, data: Uint8Array, reason: string, sym = m.sym): void => {
    const r = bin.decode(`md.v.${sym}`, data, out);
    if (r.ok || r.reason !== reason) {
      throw new Error(`expected ${reason}, got ${r.ok ? 'ok' : `${r.reason}: ${r.detail}`}`);
    }
    if (r.detail === '') throw new Error('empty detail');
  };
  fc.assert(
    fc.property(tick, fc.nat(), (m, k) => {
      const good = bin.encodeTick(m);
      // Truncation at any point.
      check(m, good.slice(0, k % good.byteLength), 'malformed_binary');
      // One extra byte.
      check(m, Uint8Array.from([...good, 0]), 'malformed_binary');
      // Bad magic/version.
      const magic = good.slice();
      magic[0] = (TICK_BINARY_MAGIC_V1 + 1 + (k % 255)) & 0xff;
      check(m, magic, 'malformed_binary');
      // NaN in each float field names the field's reason.
      const nan = (off: number) => {
        const c = good.slice();
        new DataView(c.buffer).setFloat64(off, NaN, true);
        return c;
      };
      check(m, nan(8), 'bad_seq');
      check(m, nan(16), 'bad_timestamp');
      check(m, nan(24), 'bad_number');
      check(m, nan(32), 'bad_number');
      // Wrong symbol: same bytes on another subject symbol.
      check(m, good, 'symbol_mismatch', `${m.sym}X`);
      // Unknown kind byte.
      const kind = good.slice();
      kind[1] = 3 + (k % 200);
      check(m, kind, 'unknown_type');
    }),
    { numRuns: 300 },
  );
  // Arbitrary bytes (with a plausible header or not) never throw.
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), fc.boolean(), (bytes, header) => {
      if (header && bytes.length > 4) {
        bytes[0] = TICK_BINARY_MAGIC_V1;
        bytes[3] = Math.max(1, bytes.length - TICK_BINARY_HEADER_BYTES) & 0xff;
      }
      const r = bin.decode('md.v.AB', bytes, out);
      return typeof r.ok === 'boolean';
    }),
    { numRuns: 2000 },
  );
  t.end();
});

void t.test('JSON: every corruption is refused with its specific reason, never a throw', (t) => {
  const json = new TickJsonDecoder(opts);
  const out = newMarketEvent();
  const reasonOf = (sym: string, text: string) => {
    const r = json.decode(`md.v.${sym}`, utf8.encode(text), out);
    return r.ok ? 'ok' : r.reason;
  };
  fc.assert(
    fc.property(tick, fc.nat(), (m, k) => {
      const text = JSON.stringify(m);
      t.equal(reasonOf(m.sym, text.slice(0, k % text.length)), 'malformed_json');
      t.equal(reasonOf(`${m.sym}X`, text), 'symbol_mismatch');
      const fields = Object.keys(m).filter((f) => f !== 'side');
      const field = fields[k % fields.length]!;
      const missing: Record<string, unknown> = { ...m };
      delete missing[field];
      t.equal(reasonOf(m.sym, JSON.stringify(missing)), 'missing_field');
      const wrongType = { ...m, [field]: [1] };
      t.equal(reasonOf(m.sym, JSON.stringify(wrongType)), 'bad_field_type');
    }),
    { numRuns: 200 },
  );
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string(),
        fc.json(),
        fc.uint8Array().map((b) => String.fromCharCode(...b)),
      ),
      (s) => {
        const r = json.decode('md.v.AB', utf8.encode(s), out);
        return typeof r.ok === 'boolean';
      },
    ),
    { numRuns: 2000 },
  );
  t.end();
});

void t.test('binary layout is the documented table', (t) => {
  const bin = new TickBinaryCodec(opts);
  const b = bin.encodeTick({
    type: 'quote',
    sym: 'AB',
    ts: 2e15,
    bid: 1,
    bidQty: 2,
    ask: 3,
    askQty: 4,
    seq: 7,
  });
  t.equal(b.byteLength, TICK_BINARY_HEADER_BYTES + 2);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  t.equal(dv.getUint8(0), 0xb1);
  t.equal(dv.getUint8(1), MarketKind.QUOTE);
  t.equal(dv.getUint8(2), Side.NONE);
  t.equal(dv.getUint8(3), 2);
  t.equal(dv.getFloat64(8, true), 7);
  t.equal(dv.getFloat64(16, true), 2e15);
  t.same(
    [24, 32, 40, 48].map((o) => dv.getFloat64(o, true)),
    [1, 2, 3, 4],
  );
  t.same([...b.subarray(56)], [0x41, 0x42]);
  t.throws(
    () => bin.encodeTick({ type: 'trade', sym: 'x'.repeat(256), ts: 1, px: 1, qty: 1, seq: 1 }),
    {
      code: 'QLN_INVALID_ARGUMENT',
    },
  );
  t.end();
});
