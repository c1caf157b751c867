import t from 'tap';
import fc from 'fast-check';
import {
  TickJsonDecoder,
  isToken,
  parseMarketSubject,
} from '../../../adapters/nats/tick-json-decoder.js';
import { MarketKind, Side, newMarketEvent } from '../../../kernel/market-record.js';

const NOW_US = 1_732_300_000_000_000;
const utf8 = new TextEncoder();
const trade = {
  type: 'trade',
  sym: 'BTC-USD',
  ts: NOW_US - 5,
  px: 97012.5,
  qty: 0.25,
  side: 'buy',
  seq: 1042,
};
const quote = {
  type: 'quote',
  sym: 'BTC-USD',
  ts: NOW_US - 1,
  bid: 97012.0,
  bidQty: 1.2,
  ask: 97013.0,
  askQty: 0.8,
  seq: 1043,
};

function decode(body: unknown, subject = 'md.sim.BTC-USD', raw?: string | Uint8Array) {
  const dec = new TickJsonDecoder({ clockUs: () => NOW_US, maxBytes: 512 });
  const out = newMarketEvent();
  const data = raw instanceof Uint8Array ? raw : utf8.encode(raw ?? JSON.stringify(body));
  const r = dec.decode(subject, data, out);
  return {
    ok: r.ok,
    reason: r.ok ? undefined : r.reason,
    detail: r.detail,
    sym: r.sym,
    venue: r.venue,
    out,
  };
}

void t.test('accepts the PROTOCOL.md examples', (t) => {
  const a = decode(trade);
  t.ok(a.ok);
  t.equal(a.sym, 'BTC-USD');
  t.equal(a.venue, 'sim');
  t.match(a.out, {
    kind: MarketKind.TRADE,
    px: 97012.5,
    qty: 0.25,
    side: Side.BUY,
    seq: 1042,
    ts: NOW_US - 5,
  });
  const b = decode(quote);
  t.ok(b.ok);
  t.match(b.out, {
    kind: MarketKind.QUOTE,
    bid: 97012,
    bidQty: 1.2,
    ask: 97013,
    askQty: 0.8,
    px: 0,
    seq: 1043,
  });
  const noSide = decode({ ...trade, side: undefined });
  t.ok(noSide.ok);
  t.equal(noSide.out.side, Side.NONE);
  t.end();
});

void t.test('accepts crossed and locked quotes and zero book sizes (quality decides)', (t) => {
  t.ok(decode({ ...quote, bid: 101, ask: 100 }).ok);
  t.ok(decode({ ...quote, bid: 100, ask: 100 }).ok);
  t.ok(decode({ ...quote, bidQty: 0, askQty: 0 }).ok);
  t.end();
});

void t.test(
  'each bad input is refused with its reason and a detail naming field and value',
  (t) => {
    const cases: [string, unknown, string, string?, (string | Uint8Array)?][] = [
      ['oversized', { ...trade, pad: 'x'.repeat(600) }, 'oversized'],
      ['garbage', undefined, 'malformed_json', 'md.sim.BTC-USD', '{"type":"trade",'],
      [
        'not UTF-8',
        undefined,
        'malformed_json',
        'md.sim.BTC-USD',
        new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d]),
      ],
      ['array', [trade], 'not_an_object'],
      ['null', null, 'not_an_object'],
      ['string', 'trade', 'not_an_object'],
      ['no type', { ...trade, type: undefined }, 'missing_field', undefined, undefined],
      ['type number', { ...trade, type: 1 }, 'bad_field_type'],
      ['type bogus', { ...trade, type: 'book' }, 'unknown_type'],
      ['no sym', { ...trade, sym: undefined }, 'missing_field'],
      ['sym number', { ...trade, sym: 5 }, 'bad_field_type'],
      ['sym with dot', { ...trade, sym: 'BTC.USD' }, 'bad_symbol'],
      ['sym other', { ...trade, sym: 'ETH-USD' }, 'symbol_mismatch'],
      ['bad subject prefix', trade, 'bad_subject', 'xx.sim.BTC-USD'],
      ['subject 4 tokens, last not a partition', trade, 'bad_subject', 'md.sim.BTC.USD'],
      ['subject 5 tokens', trade, 'bad_subject', 'md.sim.BTC.7.1'],
      ['subject empty partition', trade, 'bad_subject', 'md.sim.BTC-USD.'],
      ['subject trailing dot', trade, 'bad_subject', 'md.sim.'],
      ['subject empty venue', trade, 'bad_subject', 'md..BTC-USD'],
      ['subject space', trade, 'bad_subject', 'md.sim.BTC USD'],
      ['no ts', { ...trade, ts: undefined }, 'missing_field'],
      ['ts string', { ...trade, ts: '1' }, 'bad_field_type'],
      ['ts fraction', { ...trade, ts: NOW_US - 0.5 }, 'bad_timestamp'],
      ['ts ms', { ...trade, ts: 1732300000123 }, 'bad_timestamp'],
      ['ts 1999', { ...trade, ts: 915148800000000 }, 'bad_timestamp'],
      ['ts far future', { ...trade, ts: NOW_US + 2 * 86_400_000_000 }, 'bad_timestamp'],
      ['no seq', { ...trade, seq: undefined }, 'missing_field'],
      ['seq negative', { ...trade, seq: -1 }, 'bad_seq'],
      ['seq fraction', { ...trade, seq: 1.5 }, 'bad_seq'],
      ['seq unsafe', { ...trade, seq: 2 ** 60 }, 'bad_seq'],
      ['px zero', { ...trade, px: 0 }, 'bad_number'],
      ['px negative', { ...trade, px: -97012.5 }, 'bad_number'],
      [
        'px infinite',
        undefined,
        'bad_number',
        'md.sim.BTC-USD',
        JSON.stringify(trade).replace('97012.5', '1e400'),
      ],
      ['px string', { ...trade, px: '97012.5' }, 'bad_field_type'],
      ['no px', { ...trade, px: undefined }, 'missing_field'],
      ['qty zero', { ...trade, qty: 0 }, 'bad_number'],
      ['side bogus', { ...trade, side: 'long' }, 'bad_side'],
      ['side null', { ...trade, side: null }, 'bad_side'],
      ['bid negative', { ...quote, bid: -1 }, 'bad_number'],
      ['bidQty negative', { ...quote, bidQty: -0.1 }, 'bad_number'],
      ['ask zero', { ...quote, ask: 0 }, 'bad_number'],
      ['no askQty', { ...quote, askQty: undefined }, 'missing_field'],
    ];
    for (const [name, body, reason, subject, raw] of cases) {
      const r = decode(body, subject, raw);
      t.equal(r.ok, false, `${name}: refused`);
      t.equal(r.reason, reason, `${name}: reason ${reason} (${r.detail})`);
      t.not(r.detail, '', `${name}: has a detail`);
    }
    // Details name the field and the value.
    t.match(decode({ ...trade, px: -3 }).detail, /px = -3/);
    t.match(decode({ ...trade, sym: 'ETH-USD' }).detail, /"ETH-USD".*"BTC-USD"/);
    t.match(decode(trade, 'md.sim.BTC.USD').detail, /md\.sim\.BTC\.USD/);
    t.end();
  },
);

void t.test('the result and the event are reused: a later refusal leaves no stale ok', (t) => {
  const dec = new TickJsonDecoder({ clockUs: () => NOW_US });
  const out = newMarketEvent();
  const first = dec.decode('md.sim.BTC-USD', utf8.encode(JSON.stringify(trade)), out);
  t.ok(first.ok);
  const second = dec.decode('md.sim.BTC-USD', utf8.encode('{}'), out);
  t.equal(second, first, 'same result object');
  t.equal(second.ok, false);
  t.equal(second.reason, 'missing_field');
  t.end();
});

void t.test('isToken', (t) => {
  t.ok(isToken('BTC-USD_1'));
  t.notOk(isToken(''));
  t.notOk(isToken('a.b'));
  t.notOk(isToken('a*'));
  t.notOk(isToken('é'));
  t.end();
});

void t.test('the partitioned subject md.<venue>.<symbol>.<p> decodes like the plain one', (t) => {
  const a = decode(trade, 'md.sim.BTC-USD.7');
  t.ok(a.ok, a.detail);
  t.equal(a.sym, 'BTC-USD');
  t.equal(a.venue, 'sim');
  t.equal(decode(trade, 'md.sim.BTC-USD.1023').ok, true);
  t.end();
});

void t.test('parseMarketSubject: venue and symbol of every valid form, nothing else', (t) => {
  const tokenChars = 'abcXYZ019_-';
  const token = fc
    .array(fc.constantFrom(...tokenChars.split('')), { minLength: 1, maxLength: 12 })
    .map((a) => a.join(''));
  fc.assert(
    fc.property(token, token, fc.option(fc.nat({ max: 100_000 })), (venue, sym, part) => {
      const subject = part === null ? `md.${venue}.${sym}` : `md.${venue}.${sym}.${part}`;
      const r = parseMarketSubject(subject);
      return r !== undefined && r[0] === venue && r[1] === sym;
    }),
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 24 }), (s) => {
      const r = parseMarketSubject(s);
      if (r === undefined) return true;
      // whatever it accepts is exactly one of the two forms
      return s === `md.${r[0]}.${r[1]}` || new RegExp(`^md\\.${r[0]}\\.${r[1]}\\.[0-9]+$`).test(s);
    }),
  );
  t.equal(parseMarketSubject('md.sim.BTC-USD.x'), undefined);
  t.equal(parseMarketSubject('md.sim'), undefined);
  t.end();
});
