import fc from 'fast-check';
import t from 'tap';
import { OutputDecoder } from '../../actors/output-decoder.js';
import { OutputLayout } from '../../actors/output-layout.js';
import { resolveSymbolActorOptions } from '../../actors/symbol-actor-module.js';
import { SymbolActor } from '../../actors/symbol-actor.js';
import { ErrorCodes } from '../../kernel/errors.js';
import { MarketKind, Side, newMarketEvent } from '../../kernel/market-record.js';
import {
  OutputKind,
  decodeOutput,
  encodeOutput,
  newOutputEvent,
  OUTPUT_RECORD_BYTES,
  type OutputEvent,
} from '../../kernel/output-record.js';

const model = { name: 'baseline', version: '1' };

/** Run a random market through a SymbolActor; return every record after a binary round trip. */
function runActor(steps: Array<[number, boolean, number]>): OutputEvent[] {
  const actor = new SymbolActor(
    3,
    resolveSymbolActorOptions({ warmup: 5, minIntervalUs: 0, qualityWindowTicks: 10 }),
  );
  const buf = new ArrayBuffer(OUTPUT_RECORD_BYTES);
  const f64 = new Float64Array(buf);
  const u32 = new Uint32Array(buf);
  const events: OutputEvent[] = [];
  const sink = {
    emit(e: OutputEvent): void {
      encodeOutput(e, f64, u32, 0);
      events.push(decodeOutput(f64, u32, 0, newOutputEvent()));
    },
  };
  const ev = newMarketEvent();
  let px = 100;
  let ts = 1_700_000_000_000_000;
  let seq = 0;
  for (const [step, quote, skip] of steps) {
    px *= Math.exp(step);
    ts += 1000;
    seq += 1 + skip;
    ev.seq = seq;
    ev.ts = ts;
    ev.recv = ts + 50;
    if (quote) {
      ev.kind = MarketKind.QUOTE;
      ev.bid = px - 0.05;
      ev.ask = step > 0.009 ? px - 0.1 : px + 0.05; // sometimes crossed
      ev.bidQty = ev.askQty = 1;
    } else {
      ev.kind = MarketKind.TRADE;
      ev.px = px;
      ev.qty = 1;
      ev.side = Side.SELL;
    }
    actor.onMarket(ev, sink);
  }
  return events;
}

const market = fc.array(
  fc.tuple(
    fc.double({ min: -0.01, max: 0.01, noNaN: true }),
    fc.boolean(),
    fc.constantFrom(0, 0, 0, 0, 2),
  ),
  { minLength: 1, maxLength: 150 },
);

void t.test('decoded messages carry exactly the encoded payload fields', (t) => {
  const dec = new OutputDecoder({ strategy: 'mom', account: 'acc1', model });
  let kinds = 0;
  fc.assert(
    fc.property(market, (steps) => {
      for (const e of runActor(steps)) {
        const src = { seq: e.srcSeq, ts: e.srcTs };
        const lat = { recv: e.recv, feat: e.feat, infer: e.infer };
        const p = e.payload;
        if (e.kind === OutputKind.PREDICTION) {
          const L = OutputLayout.prediction;
          const m = dec.toPrediction(e, 'BTC-USD');
          t.same(m, {
            sym: 'BTC-USD',
            ts: e.srcTs,
            model,
            score: p[L.SCORE],
            features: {
              emaFast: p[L.EMA_FAST],
              emaSlow: p[L.EMA_SLOW],
              ret: p[L.RET],
              vol: p[L.VOL],
              spread: p[L.SPREAD],
              zscore: p[L.ZSCORE],
              mid: p[L.MID],
              qualityScore: p[L.QUALITY],
            },
            src,
            lat,
          });
          kinds |= 1;
        } else if (e.kind === OutputKind.SIGNAL) {
          const L = OutputLayout.signal;
          const m = dec.toSignal(e, 'BTC-USD');
          const side = p[L.SIDE] === 1 ? 'buy' : p[L.SIDE] === -1 ? 'sell' : 'flat';
          t.same(m, {
            id: `mom:BTC-USD:${e.srcSeq}`,
            strategy: 'mom',
            sym: 'BTC-USD',
            ts: e.srcTs,
            side,
            strength: p[L.STRENGTH],
            refPx: p[L.REF_PX],
            qty: p[L.QTY],
            account: 'acc1',
            model,
            prediction: { score: p[L.PRED_SCORE] },
            quality: { score: p[L.QUALITY] },
            src,
            lat,
          });
          if (JSON.stringify(m.lat) !== JSON.stringify(lat)) return false;
          kinds |= 2;
        } else {
          const L = OutputLayout.quality;
          const m = dec.toQuality(e, 'BTC-USD');
          t.equal(m.score, p[L.SCORE]);
          t.same(m.window, {
            ticks: p[L.TICKS],
            gaps: p[L.GAPS],
            crossed: p[L.CROSSED],
            outOfOrder: p[L.OUT_OF_ORDER],
            stale: p[L.STALE],
            spikes: p[L.SPIKES],
            badValues: p[L.BAD_VALUES],
            locked: p[L.LOCKED],
            outsideBand: p[L.OUTSIDE_BAND],
            timeGaps: p[L.TIME_GAPS],
            skew: p[L.SKEW],
            duplicates: p[L.DUPLICATES],
            resets: p[L.RESETS],
            quarantined: p[L.QUARANTINED],
            nonfinite: p[L.NONFINITE],
          });
          t.equal(m.issues.includes('seq_gap'), (p[L.ISSUE_BITS]! & 1) !== 0);
          t.equal(m.issues.includes('crossed_quote'), (p[L.ISSUE_BITS]! & 4) !== 0);
          t.same(m.src, src);
          kinds |= 4;
        }
      }
      return true;
    }),
    { numRuns: 60 },
  );
  t.equal(kinds, 7, 'predictions, signals and quality events were all exercised');
  t.end();
});

void t.test('fillPrediction into one reused object writes what toPrediction makes', (t) => {
  const dec = new OutputDecoder({ strategy: 'mom', account: 'acc1', model });
  const reused = dec.newPrediction();
  let n = 0;
  fc.assert(
    fc.property(market, (steps) => {
      for (const e of runActor(steps)) {
        if (e.kind !== OutputKind.PREDICTION) continue;
        const fresh = dec.toPrediction(e, `S${n % 7}`);
        const filled = dec.fillPrediction(e, `S${n % 7}`, reused);
        if (filled !== reused) return false;
        // The same JSON, key order included (the store and the wire see JSON).
        if (JSON.stringify(filled) !== JSON.stringify(fresh)) return false;
        n++;
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.ok(n > 100, `${n} predictions compared`);
  t.end();
});

void t.test('bad decoder options are rejected naming the key', (t) => {
  t.throws(() => new OutputDecoder({ strategy: 'a.b', account: 'x', model }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /strategy/,
  });
  t.throws(() => new OutputDecoder({ strategy: 'a', account: '', model }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /account/,
  });
  t.throws(
    () => new OutputDecoder({ strategy: 'a', account: 'x', model: { name: '', version: '1' } }),
    {
      code: ErrorCodes.INVALID_ARGUMENT,
      message: /model/,
    },
  );
  t.end();
});
