import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import fc from 'fast-check';
import t from 'tap';
import {
  BUILTIN_FEATURES,
  OutputDecoder,
  type OutputDecoderOptions,
} from '../../actors/output-decoder.js';
import {
  OutputEncoder,
  STAGE_TIME_LIMIT_US,
  STAGE_TIME_SLOT_BYTES,
  newFrameInfo,
  patchStageTime,
  type FrameInfo,
} from '../../actors/output-encoder.js';
import { OutputLayout, QUALITY_ISSUE_NAMES, QualityEventKind } from '../../actors/output-layout.js';
import { resolveSymbolActorOptions } from '../../actors/symbol-actor-module.js';
import { SymbolActor } from '../../actors/symbol-actor.js';
import { ErrorCodes } from '../../kernel/errors.js';
import { MarketKind, Side, newMarketEvent } from '../../kernel/market-record.js';
import {
  OutputKind,
  OUTPUT_PAYLOAD_WORDS,
  newOutputEvent,
  type OutputEvent,
  type OutputKindValue,
} from '../../kernel/output-record.js';

// ---------------------------------------------------------------- generators

const SPECIAL = [
  NaN,
  Infinity,
  -Infinity,
  0,
  -0,
  1,
  -1,
  0.1,
  -0.5,
  1e-7,
  1.5e-7,
  123e-20,
  1e21,
  -1e21,
  1e20,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31),
  2 ** 32,
  99_999_999,
  100_000_000,
  100_000_001,
  199_999_999,
  Number.MAX_SAFE_INTEGER,
  -Number.MAX_SAFE_INTEGER,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  Number.MIN_VALUE,
  -Number.MIN_VALUE,
  2.2250738585072014e-308,
  -2.2250738585072014e-308,
  1_732_300_000_123_456,
];

/** Every kind of double: specials, raw doubles (NaN, ±Infinity, -0 included), integers of all sizes, tiny and huge. */
const num = fc.oneof(
  fc.constantFrom(...SPECIAL),
  fc.double(),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.integer({ min: -1_000_000, max: 1_000_000 }).map((k) => k * 1e8 + (k % 3) - 1), // 8-digit group boundaries
  fc.double({ min: -1e-300, max: 1e-300 }),
  fc.double({ min: 1e15, max: 1e25 }),
  fc.double({ min: -1e6, max: 1e6, noNaN: true }),
);

const token = fc.stringMatching(/^[A-Za-z0-9_-]{1,32}$/);

/** Model names and versions are free text: quotes, backslashes, control characters, lone surrogates, astral characters. */
const freeText = fc.string({
  minLength: 1,
  maxLength: 16,
  unit: fc.oneof(
    fc.constantFrom('"', '\\', '\n', '\u0000', '\u001f', '\u2028', '\ud800', '\udfff', 'é', '😀'),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }),
  ),
});

const optionsArb: fc.Arbitrary<OutputDecoderOptions> = fc.record({
  strategy: token,
  account: token,
  model: fc.record({ name: freeText, version: freeText }),
  // configured prediction features (identifiers, as featurePlan allows)
  features: fc
    .uniqueArray(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,31}$/), {
      maxLength: 48,
    })
    .filter((fs) => !fs.some((f) => (BUILTIN_FEATURES as readonly string[]).includes(f))),
});

interface EventSpec {
  kind: OutputKindValue;
  srcSeq: number;
  srcTs: number;
  recv: number;
  feat: number;
  infer: number;
  payload: number[];
  side: number;
  issueBits: number;
}

const eventArb: fc.Arbitrary<EventSpec> = fc.record({
  kind: fc.constantFrom(OutputKind.PREDICTION, OutputKind.SIGNAL, OutputKind.QUALITY),
  srcSeq: fc.oneof(fc.maxSafeInteger(), num),
  srcTs: fc.oneof(fc.integer({ min: 1.6e15, max: 1.8e15 }), num),
  recv: num,
  feat: num,
  infer: num,
  payload: fc.array(num, { minLength: OUTPUT_PAYLOAD_WORDS, maxLength: OUTPUT_PAYLOAD_WORDS }),
  side: fc.oneof(fc.constantFrom(1, -1, 0), num),
  issueBits: fc.oneof(fc.nat(63), fc.integer(), num),
});

function toEvent(s: EventSpec): OutputEvent {
  const e = newOutputEvent();
  e.kind = s.kind;
  e.srcSeq = s.srcSeq;
  e.srcTs = s.srcTs;
  e.recv = s.recv;
  e.feat = s.feat;
  e.infer = s.infer;
  e.payload.set(s.payload);
  if (s.kind === OutputKind.SIGNAL) e.payload[OutputLayout.signal.SIDE] = s.side;
  if (s.kind === OutputKind.QUALITY) e.payload[OutputLayout.quality.ISSUE_BITS] = s.issueBits;
  return e;
}

// ---------------------------------------------------------------- reference

const TOPIC = { 1: 'prediction', 2: 'signal', 3: 'quality' } as const;

/** The reference: the OutputDecoder's object, serialised as the WebSocket frame. */
function expectedFrame(
  dec: OutputDecoder,
  ev: OutputEvent,
  sym: string,
  risk: number | null = 0,
  pub: number | null = 0,
): string {
  const topic = `${TOPIC[ev.kind]}/${sym}`;
  if (ev.kind === OutputKind.PREDICTION)
    return JSON.stringify({ topic, data: dec.toPrediction(ev, sym) });
  if (ev.kind === OutputKind.QUALITY)
    return JSON.stringify({ topic, data: dec.toQuality(ev, sym) });
  const data = dec.toSignal(ev, sym);
  return JSON.stringify({ topic, data: { ...data, lat: { ...data.lat, risk, pub } } });
}

/** A signal frame with its two stage-time slots collapsed to their value text (padding removed). */
function collapseSlots(buf: Buffer, off: number, info: FrameInfo): Buffer {
  const slot = (at: number): Buffer => {
    const s = buf.subarray(at, at + STAGE_TIME_SLOT_BYTES);
    const sp = s.indexOf(0x20);
    return sp < 0 ? s : s.subarray(0, sp);
  };
  return Buffer.concat([
    buf.subarray(off, info.riskAt),
    slot(info.riskAt),
    buf.subarray(info.riskAt + STAGE_TIME_SLOT_BYTES, info.pubAt),
    slot(info.pubAt),
    buf.subarray(info.pubAt + STAGE_TIME_SLOT_BYTES, info.frameEnd),
  ]);
}

/** Exact text `patchStageTime` should leave, as JSON.parse will read it. */
const stageValue = (us: number): number | null => {
  const v = Math.round(us);
  return v > -STAGE_TIME_LIMIT_US && v < STAGE_TIME_LIMIT_US ? v : null;
};

// ---------------------------------------------------------------- tests

void t.test('frames are byte-identical to JSON.stringify of the decoder object', (t) => {
  let kinds = 0;
  fc.assert(
    fc.property(
      optionsArb,
      token,
      eventArb,
      fc.nat(64),
      fc.oneof(
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.double({ min: -1e6, max: 9e15 }),
      ),
      fc.oneof(
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.double({ min: -1e6, max: 9e15 }),
      ),
      (opts, symName, spec, off, risk, pub) => {
        const enc = new OutputEncoder(opts);
        const dec = new OutputDecoder(opts);
        const ev = toEvent(spec);
        const sym = enc.symbol(symName);
        const buf = Buffer.alloc(off + sym.maxFrameBytes + 16);
        const info = newFrameInfo();
        if (!enc.encode(ev, sym, buf, off, buf.length, info)) return false;
        kinds |= 1 << ev.kind;
        if (info.frameEnd - off > sym.maxFrameBytes) return false;
        if (info.dataEnd !== info.frameEnd - 1) return false;
        if (ev.kind !== OutputKind.SIGNAL) {
          const want = Buffer.from(expectedFrame(dec, ev, symName));
          if (!buf.subarray(off, info.frameEnd).equals(want)) return false;
          if (info.riskAt !== -1 || info.pubAt !== -1) return false;
          // a prediction's features text (what the store keeps) is exactly the features' JSON
          if (ev.kind === OutputKind.PREDICTION) {
            const text = buf.toString('latin1', info.textStart, info.textEnd);
            if (text !== JSON.stringify(dec.toPrediction(ev, symName).features)) return false;
          } else if (info.textStart !== -1 || info.textEnd !== -1) {
            return false;
          }
          // the data range is the NATS payload: exactly the message
          const data = JSON.stringify(
            ev.kind === OutputKind.PREDICTION
              ? dec.toPrediction(ev, symName)
              : dec.toQuality(ev, symName),
          );
          return buf.subarray(info.dataStart, info.dataEnd).equals(Buffer.from(data));
        }
        // signals: valid JSON with the placeholders (0) …
        const before = JSON.parse(buf.toString('utf8', off, info.frameEnd)) as unknown;
        if (JSON.stringify(before) !== expectedFrame(dec, ev, symName, 0, 0)) return false;
        // … and after patching, equal when parsed, and byte-equal once the slot padding is removed
        patchStageTime(buf, info.riskAt, risk);
        patchStageTime(buf, info.pubAt, pub);
        const want = expectedFrame(dec, ev, symName, stageValue(risk), stageValue(pub));
        const got = JSON.parse(buf.toString('utf8', off, info.frameEnd)) as unknown;
        if (JSON.stringify(got) !== want) return false;
        if (!collapseSlots(buf, off, info).equals(Buffer.from(want))) return false;
        const data = JSON.parse(buf.toString('utf8', info.dataStart, info.dataEnd)) as unknown;
        return (
          JSON.stringify(data) === JSON.stringify((JSON.parse(want) as { data: unknown }).data)
        );
      },
    ),
    { numRuns: 20_000 },
  );
  t.equal(kinds, 0b1110, 'predictions, signals and quality events were all exercised');
  t.end();
});

void t.test('integers at digit-group boundaries are written as JSON.stringify writes them', (t) => {
  const enc = new OutputEncoder({
    strategy: 's',
    account: 'a',
    model: { name: 'm', version: '1' },
  });
  const sym = enc.symbol('X');
  const dec = new OutputDecoder(enc.options);
  const ev = newOutputEvent();
  const buf = Buffer.alloc(sym.maxFrameBytes);
  const info = newFrameInfo();
  const values: number[] = [];
  for (let p = 1; p <= 1e21; p *= 10) values.push(p - 1, p, p + 1, -p + 1, -p, -p - 1);
  for (let k = 0; k < 53; k++) values.push(2 ** k - 1, 2 ** k, -(2 ** k));
  for (const x of values) {
    ev.payload.fill(x);
    ev.srcSeq = ev.srcTs = ev.recv = ev.feat = ev.infer = x;
    t.ok(enc.prediction(ev, sym, buf, 0, buf.length, info));
    t.equal(buf.toString('utf8', 0, info.frameEnd), expectedFrame(dec, ev, 'X'), `${x}`);
  }
  t.end();
});

void t.test('false exactly when the frame does not fit; nothing written at or past end', (t) => {
  fc.assert(
    fc.property(optionsArb, token, eventArb, fc.nat(40), (opts, symName, spec, off) => {
      const enc = new OutputEncoder(opts);
      const ev = toEvent(spec);
      const sym = enc.symbol(symName);
      const size = off + sym.maxFrameBytes + 8;
      const ref = Buffer.alloc(size);
      const info = newFrameInfo();
      if (!enc.encode(ev, sym, ref, off, size, info)) return false;
      const need = info.frameEnd - off;
      const frame = Buffer.from(ref.subarray(off, info.frameEnd));
      const buf = Buffer.alloc(size);
      for (let end = 0; end <= off + need; end++) {
        buf.fill(0xa5);
        const probe = {
          frameEnd: -7,
          dataStart: -7,
          dataEnd: -7,
          riskAt: -7,
          pubAt: -7,
          textStart: -7,
          textEnd: -7,
        };
        const ok = enc.encode(ev, sym, buf, off, end, probe);
        if (ok !== (end === off + need)) return false;
        for (let i = Math.max(end, 0); i < size; i++) if (buf[i] !== 0xa5) return false;
        for (let i = 0; i < off; i++) if (buf[i] !== 0xa5) return false;
        if (!ok && probe.frameEnd !== -7) return false; // info untouched on failure
        if (ok && !buf.subarray(off, end).equals(frame)) return false;
      }
      // end past the buffer is clamped: a buffer one byte short refuses without throwing
      const short = Buffer.alloc(off + need - 1);
      return !enc.encode(ev, sym, short, off, off + need + 100, info);
    }),
    { numRuns: 60 },
  );
  t.pass('property held');
  t.end();
});

void t.test('SharedArrayBuffer-backed buffers, non-zero offsets, frames back to back', (t) => {
  fc.assert(
    fc.property(
      optionsArb,
      fc.array(fc.tuple(token, eventArb), { minLength: 1, maxLength: 20 }),
      fc.nat(100),
      fc.nat(100),
      (opts, items, viewOffset, start) => {
        const enc = new OutputEncoder(opts);
        const dec = new OutputDecoder(opts);
        const sab = new SharedArrayBuffer(viewOffset + start + 20 * 2048);
        const buf = Buffer.from(sab, viewOffset); // a view that does not start at byte 0 of the SAB
        const info = newFrameInfo();
        const placed: Array<[OutputEvent, string, number, FrameInfo]> = [];
        let off = start;
        for (const [name, spec] of items) {
          const ev = toEvent(spec);
          if (!enc.encode(ev, enc.symbol(name), buf, off, buf.length, info)) return false;
          placed.push([ev, name, off, { ...info }]);
          off = info.frameEnd;
        }
        // read back through an independent view of the same memory
        const view = Buffer.from(sab);
        for (const [ev, name, at, fi] of placed) {
          const text = view.toString('utf8', viewOffset + at, viewOffset + fi.frameEnd);
          const want = expectedFrame(dec, ev, name);
          if (ev.kind === OutputKind.SIGNAL) {
            if (JSON.stringify(JSON.parse(text)) !== want) return false;
          } else if (text !== want) return false;
        }
        return true;
      },
    ),
    { numRuns: 300 },
  );
  t.pass('property held');
  t.end();
});

void t.test('patchStageTime: fixed width, round-trips, the frame stays valid JSON', (t) => {
  const enc = new OutputEncoder({
    strategy: 's',
    account: 'a',
    model: { name: 'm', version: '1' },
  });
  const sym = enc.symbol('BTC-USD');
  const ev = newOutputEvent();
  ev.kind = OutputKind.SIGNAL;
  ev.srcSeq = 7;
  ev.srcTs = 1_732_300_000_123_456;
  const buf = Buffer.alloc(sym.maxFrameBytes);
  const info = newFrameInfo();
  t.ok(enc.signal(ev, sym, buf, 0, buf.length, info));
  t.equal(
    buf.toString('latin1', info.riskAt, info.riskAt + STAGE_TIME_SLOT_BYTES),
    '0'.padEnd(STAGE_TIME_SLOT_BYTES, ' '),
    'placeholder: 0 and spaces',
  );
  const us = fc.oneof(
    fc.double({ min: 0, max: 1e17, noNaN: true }),
    fc.double({ min: -1e17, max: 1e17, noNaN: true }),
    fc.integer({ min: 0, max: 1e17 }),
    fc.maxSafeInteger(),
    fc.double({ min: 2 ** 53, max: 1e18, noNaN: true }),
    fc.integer({ min: -1_000_000, max: 1_000_000 }).map((k) => k * 1e8 + (k % 3) - 1),
    // just below, at and above multiples of 1e8 and 1e16, where the digit groups split
    fc
      .tuple(fc.integer({ min: 1, max: 10_000_000_000 }), fc.integer({ min: -256, max: 256 }))
      .map(([q, d]) => q * 1e8 + d),
    fc
      .tuple(fc.integer({ min: 1, max: 99 }), fc.integer({ min: -256, max: 256 }))
      .map(([q, d]) => q * 1e16 + d),
    fc.constantFrom(
      NaN,
      Infinity,
      -Infinity,
      -0,
      -0.4,
      0.5,
      -2.5,
      1e8,
      1e16,
      1e17,
      1e18,
      -1e18,
      999_999_999_999_999_872, // the largest double below 1e18
      -999_999_999_999_999_872,
      1e19,
      Number.MAX_VALUE,
    ),
  );
  fc.assert(
    fc.property(us, us, (risk, pub) => {
      const before = Buffer.from(buf);
      patchStageTime(buf, info.riskAt, risk);
      patchStageTime(buf, info.pubAt, pub);
      // only the two slots changed
      for (let i = 0; i < info.frameEnd; i++) {
        const inSlot =
          (i >= info.riskAt && i < info.riskAt + STAGE_TIME_SLOT_BYTES) ||
          (i >= info.pubAt && i < info.pubAt + STAGE_TIME_SLOT_BYTES);
        if (!inSlot && buf[i] !== before[i]) return false;
      }
      for (const [at, x] of [
        [info.riskAt, risk],
        [info.pubAt, pub],
      ] as const) {
        const slot = buf.toString('latin1', at, at + STAGE_TIME_SLOT_BYTES);
        if (!/^(-?\d+|null) *$/.test(slot)) return false; // left-aligned, space-padded
        const want = stageValue(x);
        if (JSON.parse(slot) !== want) return false;
        if (want !== null && Math.abs(want) <= Number.MAX_SAFE_INTEGER) {
          if (slot.trimEnd() !== JSON.stringify(want)) return false; // same text as JSON.stringify
        }
      }
      const m = JSON.parse(buf.toString('utf8', 0, info.frameEnd)) as {
        data: { lat: { risk: unknown; pub: unknown } };
      };
      return m.data.lat.risk === stageValue(risk) && m.data.lat.pub === stageValue(pub);
    }),
    { numRuns: 20_000 },
  );
  t.pass('property held');
  t.end();
});

void t.test('real SymbolActor output encodes like the decoder serialises it', (t) => {
  const opts = { strategy: 'mom', account: 'acc1', model: { name: 'baseline', version: '1' } };
  const enc = new OutputEncoder(opts);
  const dec = new OutputDecoder(opts);
  const sym = enc.symbol('BTC-USD');
  const buf = Buffer.from(new SharedArrayBuffer(1 << 16));
  const info = newFrameInfo();
  let n = 0;
  let kinds = 0;
  const sink = {
    emit(e: OutputEvent): void {
      if (!enc.encode(e, sym, buf, 0, buf.length, info)) throw new Error('no fit');
      const text = buf.toString('utf8', 0, info.frameEnd);
      const want = expectedFrame(dec, e, 'BTC-USD');
      t.equal(e.kind === OutputKind.SIGNAL ? JSON.stringify(JSON.parse(text)) : text, want);
      kinds |= 1 << e.kind;
      n++;
    },
  };
  const actor = new SymbolActor(
    0,
    resolveSymbolActorOptions({ warmup: 5, minIntervalUs: 0, qualityWindowTicks: 10 }),
  );
  const ev = newMarketEvent();
  let px = 100;
  for (let i = 0; i < 300; i++) {
    px *= Math.exp(0.002 * Math.sin(i / 5) + (i % 17 === 0 ? 0.01 : 0));
    ev.seq = i + 1 + (i % 41 === 0 ? 3 : 0);
    ev.ts = 1_700_000_000_000_000 + i * 1000;
    ev.recv = ev.ts + 50;
    if (i % 3 === 0) {
      ev.kind = MarketKind.QUOTE;
      ev.bid = px - 0.05;
      ev.ask = i % 30 === 0 ? px - 0.1 : px + 0.05;
      ev.bidQty = ev.askQty = 1;
    } else {
      ev.kind = MarketKind.TRADE;
      ev.px = px;
      ev.qty = 1;
      ev.side = Side.BUY;
    }
    actor.onMarket(ev, sink);
  }
  t.ok(n > 10, `${n} events`);
  t.equal(kinds, 0b1110, 'all three kinds');
  t.end();
});

void t.test('maxFrameBytes bounds the worst case', (t) => {
  const enc = new OutputEncoder({
    strategy: 'strategy_name',
    account: 'account-1',
    model: { name: 'm"\\\u0000', version: '😀' },
  });
  const sym = enc.symbol('A'.repeat(32));
  const ev = newOutputEvent();
  const worst = -2.2250738585072014e-308; // 24 characters, the longest a double gets
  t.equal(String(worst).length, 24);
  ev.srcSeq = ev.srcTs = ev.recv = ev.feat = ev.infer = worst;
  const info = newFrameInfo();
  const buf = Buffer.alloc(sym.maxFrameBytes);
  let longest = 0;
  for (const kind of [OutputKind.PREDICTION, OutputKind.SIGNAL, OutputKind.QUALITY] as const) {
    ev.kind = kind;
    ev.payload.fill(worst);
    if (kind === OutputKind.QUALITY) {
      // Every issue name, and a quarantined quote (the longest tick object).
      ev.payload[OutputLayout.quality.ISSUE_BITS] = (1 << QUALITY_ISSUE_NAMES.length) - 1;
      ev.payload[OutputLayout.quality.KIND] = QualityEventKind.QUARANTINE;
      ev.payload[OutputLayout.quality.RAW_TYPE] = 2;
    }
    if (kind === OutputKind.SIGNAL) ev.payload[OutputLayout.signal.SIDE] = 0; // "flat", the longest side
    t.ok(enc.encode(ev, sym, buf, 0, sym.maxFrameBytes, info), `kind ${kind} fits`);
    longest = Math.max(longest, info.frameEnd);
  }
  t.ok(
    longest > sym.maxFrameBytes * 0.6,
    `the bound is not loose (${longest} of ${sym.maxFrameBytes})`,
  );
  t.end();
});

void t.test('options are validated by the decoder rules; symbols and kinds too', (t) => {
  const model = { name: 'baseline', version: '1' };
  t.throws(() => new OutputEncoder({ strategy: 'a.b', account: 'x', model }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /strategy/,
  });
  t.throws(() => new OutputEncoder({ strategy: 'a', account: '', model }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /account/,
  });
  t.throws(
    () => new OutputEncoder({ strategy: 'a', account: 'x', model: { name: '', version: '1' } }),
    { code: ErrorCodes.INVALID_ARGUMENT, message: /model/ },
  );
  const opts = { strategy: 'a', account: 'x', model: { ...model } };
  const enc = new OutputEncoder(opts);
  opts.model.name = 'changed later';
  t.equal(enc.options.model.name, 'baseline', 'the options are copied');
  t.throws(() => enc.symbol(''), { code: ErrorCodes.INVALID_ARGUMENT, message: /symbol/ });
  const ev = newOutputEvent();
  ev.kind = 9 as OutputKindValue;
  t.throws(() => enc.encode(ev, enc.symbol('X'), Buffer.alloc(1024), 0, 1024, newFrameInfo()), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /kind/,
  });
  t.end();
});

/** `gc()` without --expose-gc on the command line (tap runs plain node). */
function getGc(): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

const gc = getGc();

void t.test(
  'encoding integer payloads allocates nothing (heap growth over 10 000 events)',
  { skip: gc ? false : 'gc() is not available' },
  (t) => {
    const enc = new OutputEncoder({
      strategy: 's',
      account: 'a',
      model: { name: 'm', version: '1' },
    });
    const sym = enc.symbol('BTC-USD');
    const buf = Buffer.from(new SharedArrayBuffer(1 << 20));
    const info = newFrameInfo();
    const ev = newOutputEvent();
    ev.srcTs = 1_732_300_000_123_456; // µs timestamps: doubles outside the small-integer range
    ev.recv = ev.srcTs + 40;
    ev.feat = ev.srcTs + 45;
    ev.infer = ev.srcTs + 51;
    const run = (kind: OutputKindValue, n: number): void => {
      ev.kind = kind;
      let off = 0;
      for (let i = 0; i < n; i++) {
        ev.srcSeq = 1_000_000_000_000 + i;
        ev.payload[0] = i;
        ev.payload[1] = 97_012 + (i & 7);
        ev.payload[2] = -3 * i;
        ev.payload[7] = i & 63;
        if (!enc.encode(ev, sym, buf, off, buf.length, info)) off = 0;
        else off = info.frameEnd > buf.length - 2048 ? 0 : info.frameEnd;
      }
    };
    /**
     * Heap growth over 10 000 calls of `body`, the smallest of 5 rounds: a
     * per-event allocation shows in every round, while one-off V8 work (a
     * compile job installing its code, feedback, sweeping) shows in some.
     */
    const growth = (body: () => void): number => {
      let min = Infinity;
      for (let r = 0; r < 5; r++) {
        gc!();
        const before = process.memoryUsage().heapUsed;
        body();
        min = Math.min(min, process.memoryUsage().heapUsed - before);
      }
      return min;
    };
    const BOUND = 32 * 1024; // ≪ 160 kB: one boxed double (16 B) per event
    for (const kind of [OutputKind.PREDICTION, OutputKind.SIGNAL, OutputKind.QUALITY] as const) {
      // warm up until `run` and the encoder run optimized (the interpreter boxes doubles)
      for (let r = 0; r < 20; r++) run(kind, 2000);
      const grown = growth(() => run(kind, 10_000));
      t.ok(grown < BOUND, `kind ${kind}: heap grew ${grown} B over 10 000 events`);
    }
    // the measurement can see allocation: one small object per event is caught
    let keep: Array<{ i: number }> = [];
    const control = growth(() => {
      keep = [];
      for (let i = 0; i < 10_000; i++) keep.push({ i });
    });
    t.ok(control > BOUND, `the control loop (an object per event) grew ${control} B`);
    t.end();
  },
);
