/**
 * Unit and property tests of the byte-level extractors the receivers use
 * instead of JSON.parse: symbol from the `prediction/B<digits>` topic,
 * `src.seq` from a kernel frame, the tick's `seq` from a relayed frame or a
 * raw tick body. Frames are built the way the kernel and the relay build them.
 */
import fc from 'fast-check';
import t from 'tap';
import {
  lastSeq,
  predictionSymbol,
  readUint,
  srcSeq,
  symbolName,
  tickSymbol,
} from '../../../bench/harness/frame-fields.js';
import { TickWriter } from '../../../bench/harness/tick-writer.js';

/** A kernel prediction frame as UwsServer sends it (prefix + JSON of the PredictionMessage). */
function kernelFrame(sym: string, seq: number): Buffer {
  const data = {
    sym,
    ts: 1732300000123456,
    model: { name: 'baseline', version: '1' },
    score: 0.12,
    features: { ema: 1.5, rsi: 55, seq: 999 },
    src: { seq, ts: 1732300000123456 },
    lat: { recv: 1, feat: 2, infer: 3 },
  };
  return Buffer.from(`{"topic":"prediction/${sym}","data":${JSON.stringify(data)}}`);
}

void t.test('kernel prediction frame: symbol and src.seq', (t) => {
  const f = kernelFrame('B0042', 1042);
  t.equal(predictionSymbol(f), 42);
  t.equal(srcSeq(f), 1042, 'src.seq, not a feature named seq');
  t.end();
});

void t.test('relay frame and raw tick: symbol and the tick seq', (t) => {
  const w = new TickWriter(100);
  const tick = w.trade(7, 31, 1.7e15);
  const relayed = Buffer.from(
    JSON.stringify({ topic: 'prediction/B0007', data: JSON.parse(tick) as unknown }),
  );
  t.equal(predictionSymbol(relayed), 7);
  t.equal(lastSeq(relayed), 31);
  t.equal(srcSeq(relayed), -1, 'no src in a relayed tick');
  const raw = Buffer.from(tick);
  t.equal(tickSymbol(raw), 7);
  t.equal(lastSeq(raw), 31);
  t.end();
});

void t.test('other frames give -1', (t) => {
  t.equal(predictionSymbol(Buffer.from('{"topic":"signal/B0001","data":{}}')), -1);
  t.equal(predictionSymbol(Buffer.from('{"type":"subscribed","topics":["prediction/*"]}')), -1);
  t.equal(predictionSymbol(Buffer.from('{"topic":"prediction/BTC-USD","data":{}}')), -1);
  t.equal(predictionSymbol(Buffer.from('{"topic":"predic')), -1, 'shorter than the prefix');
  t.equal(srcSeq(Buffer.from('{"src":{"ts":1}}')), -1, 'src without seq');
  t.equal(srcSeq(Buffer.from(`{"src":{"ts":1${' '.repeat(60)}},"seq":5}`)), -1, 'seq outside src');
  t.equal(lastSeq(Buffer.from('{"x":1}')), -1);
  t.equal(tickSymbol(Buffer.from('{"type":"quote","sym":"B0001"}')), -1);
  t.end();
});

void t.test('readUint', (t) => {
  const b = Buffer.from('{"seq":1042}');
  t.equal(readUint(b, 7), 1042);
  t.equal(readUint(b, 0), -1);
  t.equal(readUint(b, b.length), -1);
  t.end();
});

void t.test('property: symbol and seq survive the kernel and relay encodings', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 9999 }),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      (i, seq) => {
        const sym = symbolName(i);
        const k = kernelFrame(sym, seq);
        const relayed = Buffer.from(
          `{"topic":"prediction/${sym}","data":{"type":"trade","sym":"${sym}","ts":1,"px":1.5,"qty":2,"side":"buy","seq":${seq}}}`,
        );
        return (
          predictionSymbol(k) === i &&
          srcSeq(k) === seq &&
          predictionSymbol(relayed) === i &&
          lastSeq(relayed) === seq &&
          readUint(Buffer.from(`:${seq},`), 1) === seq
        );
      },
    ),
  );
  t.end();
});

void t.test('symbolName pads to four digits', (t) => {
  t.equal(symbolName(0), 'B0000');
  t.equal(symbolName(42), 'B0042');
  t.equal(symbolName(9999), 'B9999');
  t.end();
});
