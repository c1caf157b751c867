/**
 * The scanner is an optimisation, never a second opinion: for any bytes the
 * decoder with the fast path gives exactly what the JSON.parse path gives
 * (verdict, reason, detail, every field), and it does take the plain ticks
 * real feeds send.
 */
import fc from 'fast-check';
import t from 'tap';
import { TickJsonDecoder } from '../../../adapters/nats/tick-json-decoder.js';
import { TickScanner, newScannedTick } from '../../../adapters/nats/tick-json-scanner.js';

const scanner = new TickScanner();
const scanTick = (d: Uint8Array, out: ReturnType<typeof newScannedTick>): boolean =>
  scanner.scan(d, out);
import { newMarketEvent } from '../../../kernel/market-record.js';

const NOW = 1_732_300_000_000_000;
const utf8 = new TextEncoder();
const fast = new TickJsonDecoder({ clockUs: () => NOW });
const slow = new TickJsonDecoder({ clockUs: () => NOW, fastPath: false });
const SUBJECT = 'md.sim.BTC-USD.3';

function both(data: Uint8Array): [unknown, unknown] {
  const a = newMarketEvent();
  const b = newMarketEvent();
  const ra = { ...fast.decode(SUBJECT, data, a) };
  const rb = { ...slow.decode(SUBJECT, data, b) };
  return [
    { ...ra, ev: ra.ok ? a : undefined },
    { ...rb, ev: rb.ok ? b : undefined },
  ];
}

const ws = fc.constantFrom('', ' ', '\n', '\t ', '\r\n  ');
const num = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer({ min: -1e6, max: 1e6 }),
  fc.double({ min: 0.0001, max: 1e6, noNaN: true }),
  fc.constantFrom(0, -0, 1e21, 1e-7, 97012.5, 0.25, 1e300, 5e-324),
);
const tsArb = fc.oneof(
  fc.integer({ min: NOW - 10_000_000_000, max: NOW }),
  fc.constantFrom(NOW, NOW + 1, 946_684_800_000_000, 1.5e15, -1, 0),
  num,
);
const seqArb = fc.oneof(fc.nat(), fc.constantFrom(0, 2 ** 53, 2 ** 53 - 1, -1, 1.5), num);
const extra = fc.dictionary(
  fc.constantFrom('venue', 'id', 'x', 'note', 'Ts', 'px2'),
  fc.oneof(fc.string({ maxLength: 5 }), num, fc.boolean(), fc.constant(null)),
  { maxKeys: 2 },
);

/** A tick object in random key order and whitespace, numbers as JSON.stringify writes them. */
const tickText = fc
  .record({
    trade: fc.boolean(),
    sym: fc.constantFrom('BTC-USD', 'BTC-USD', 'ETH-USD', 'BTC'),
    ts: tsArb,
    seq: seqArb,
    a: num,
    b: num,
    c: num,
    d: num,
    side: fc.constantFrom(undefined, 'buy', 'sell', 'hold'),
    extra,
    order: fc.array(fc.nat(), { minLength: 12, maxLength: 12 }),
    w: fc.array(ws, { minLength: 8, maxLength: 8 }),
  })
  .map((r) => {
    const fields: Array<[string, unknown]> = r.trade
      ? [
          ['type', 'trade'],
          ['sym', r.sym],
          ['ts', r.ts],
          ['px', r.a],
          ['qty', r.b],
          ['seq', r.seq],
          ...(r.side === undefined ? [] : ([['side', r.side]] as Array<[string, unknown]>)),
        ]
      : [
          ['type', 'quote'],
          ['sym', r.sym],
          ['ts', r.ts],
          ['bid', r.a],
          ['bidQty', r.b],
          ['ask', r.c],
          ['askQty', r.d],
          ['seq', r.seq],
        ];
    for (const [k, v] of Object.entries(r.extra)) fields.push([k, v]);
    fields.sort((x, y) => r.order[fields.indexOf(x) % 12]! - r.order[fields.indexOf(y) % 12]!);
    const w = (i: number): string => r.w[i % 8]!;
    return (
      w(0) +
      '{' +
      fields
        .map(
          ([k, v], i) =>
            `${w(i + 1)}${JSON.stringify(k)}${w(i + 2)}:${w(i + 3)}${JSON.stringify(v)}`,
        )
        .join(',') +
      w(5) +
      '}' +
      w(6)
    );
  });

void t.test('fast path and JSON.parse path agree on random ticks (valid and not)', (t) => {
  fc.assert(
    fc.property(tickText, (text) => {
      const [a, b] = both(utf8.encode(text));
      t.same(a, b, text);
      return true;
    }),
    { numRuns: 20_000 },
  );
  t.end();
});

void t.test('... and on arbitrary JSON, mutated ticks and byte soup', (t) => {
  const base =
    '{"type":"trade","sym":"BTC-USD","ts":1732299999999000,"px":97012.5,"qty":0.25,"side":"buy","seq":1042}';
  fc.assert(
    fc.property(
      fc.oneof(
        fc.json().map((s) => utf8.encode(s)),
        fc.uint8Array({ maxLength: 64 }),
        fc.tuple(fc.nat({ max: base.length - 1 }), fc.nat({ max: 255 })).map(([i, b]) => {
          const d = utf8.encode(base);
          d[i] = b;
          return d;
        }),
        fc.nat({ max: base.length }).map((i) => utf8.encode(base.slice(0, i))),
      ),
      (data) => {
        const [a, b] = both(data);
        t.same(a, b);
        return true;
      },
    ),
    { numRuns: 20_000 },
  );
  t.end();
});

void t.test('plain ticks as feeds send them take the scanner', (t) => {
  const sc = newScannedTick();
  const ticks = [
    '{"type":"trade","sym":"BTC-USD","ts":1732300000123456,"px":97012.5,"qty":0.25,"side":"buy","seq":1042}',
    '{"type":"quote","sym":"BTC-USD","ts":1732300000123999,"bid":97012.0,"bidQty":1.2,"ask":97013.0,"askQty":0.8,"seq":1043}',
    '{ "seq": 7, "px": 1e2, "qty": 3, "sym": "X", "ts": 1732300000000000, "type": "trade", "venue": "sim", "live": true, "note": null }',
  ];
  for (const text of ticks) t.ok(scanTick(utf8.encode(text), sc), text);
  t.equal(sc.px, 100);
  t.equal(sc.side, 0, 'no side');
  // What it declines (the full decoder takes these): escapes, non-ASCII, nesting, exotic numbers.
  for (const text of [
    '{"type":"trade","sym":"BTC\\u002dUSD","ts":1,"px":1,"qty":1,"seq":1}',
    '{"type":"trade","sym":"BTC-USD","ts":1,"px":1,"qty":1,"seq":1,"meta":{"a":1}}',
    '{"type":"trade","sym":"BTC-USD","ts":1,"px":1,"qty":1,"seq":1,"x":"é"}',
    '{"type":"trade","sym":"BTC-USD","ts":1,"px":1,"qty":1,"seq":01}',
    '[1]',
    '{}',
  ]) {
    t.notOk(scanTick(utf8.encode(text), sc), `declined: ${text}`);
  }
  t.end();
});

void t.test('numbers: exactly the doubles JSON.parse reads, whatever their form', (t) => {
  const sc = newScannedTick();
  fc.assert(
    fc.property(
      fc.oneof(
        fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => JSON.stringify(x)),
        // Forms JSON.stringify never writes: long digit strings, exponents, fractions.
        fc
          .tuple(
            fc.constantFrom('', '-'),
            fc.stringMatching(/^(0|[1-9][0-9]{0,24})$/),
            fc.option(fc.stringMatching(/^[0-9]{1,24}$/)),
            fc.option(
              fc.tuple(
                fc.constantFrom('e', 'E'),
                fc.constantFrom('', '+', '-'),
                fc.integer({ min: 0, max: 400 }),
              ),
            ),
          )
          .map(
            ([sign, int, frac, exp]) =>
              `${sign}${int}${frac === null ? '' : `.${frac}`}${exp === null ? '' : `${exp[0]}${exp[1]}${exp[2]}`}`,
          ),
      ),
      (text) => {
        const tick = `{"type":"trade","sym":"A","ts":1,"px":${text},"qty":1,"seq":1}`;
        return scanTick(utf8.encode(tick), sc) && Object.is(sc.px, JSON.parse(text));
      },
    ),
    { numRuns: 50_000 },
  );
  // Prices as feeds write them (up to 8 decimals) always take the fast path.
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 10 ** 12 }), fc.integer({ min: 0, max: 8 }), (m, k) => {
      const x = m / 10 ** k;
      const text = `{"type":"trade","sym":"A","ts":1,"px":${String(x)},"qty":1,"seq":1}`;
      return scanTick(utf8.encode(text), sc) && sc.px === x;
    }),
    { numRuns: 20_000 },
  );
  t.end();
});
