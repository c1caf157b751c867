import fc from 'fast-check';
import t from 'tap';
import {
  MAX_CONFIGURED_FEATURES,
  OutputLayout,
  QualityEventKind,
  QualityIssue,
} from '../../actors/output-layout.js';
import { resolveSymbolActorOptions } from '../../actors/symbol-actor-module.js';
import { SymbolActor } from '../../actors/symbol-actor.js';
import { BarWindow } from '../../actors/bar-window.js';
import { FeatureSet, resolveFeatureSpecs } from '../../actors/indicators/feature-set.js';
import type { OutputSink } from '../../kernel/actor.js';
import { MarketKind, Side, newMarketEvent, type MarketEvent } from '../../kernel/market-record.js';
import { OutputKind, newOutputEvent, type OutputEvent } from '../../kernel/output-record.js';

/** A sink that copies every event (the actor reuses its own). */
class CollectSink implements OutputSink {
  readonly events: OutputEvent[] = [];
  emit(e: OutputEvent): void {
    const c = newOutputEvent();
    Object.assign(c, e, { payload: Float64Array.from(e.payload) });
    this.events.push(c);
  }
  of(kind: number): OutputEvent[] {
    return this.events.filter((e) => e.kind === kind);
  }
}

const T0 = 1_700_000_000_000_000;

/** Drives one actor with a reused MarketEvent, like the worker host does. */
class Driver {
  readonly ev: MarketEvent = newMarketEvent();
  seq = 0;
  ts = T0;
  constructor(
    readonly actor: SymbolActor,
    readonly sink: CollectSink,
  ) {}
  trade(px: number, dtUs = 10_000, qty = 1): void {
    const e = this.ev;
    this.seq++;
    this.ts += dtUs;
    e.kind = MarketKind.TRADE;
    e.symId = this.actor.symId;
    e.seq = this.seq;
    e.ts = this.ts;
    e.recv = this.ts + 200;
    e.px = px;
    e.qty = qty;
    e.side = Side.BUY;
    e.bid = e.bidQty = e.ask = e.askQty = 0;
    this.actor.onMarket(e, this.sink);
  }
  quote(bid: number, ask: number, dtUs = 10_000): void {
    const e = this.ev;
    this.seq++;
    this.ts += dtUs;
    e.kind = MarketKind.QUOTE;
    e.seq = this.seq;
    e.ts = this.ts;
    e.recv = this.ts + 200;
    e.px = e.qty = 0;
    e.side = Side.NONE;
    e.bid = bid;
    e.bidQty = 1;
    e.ask = ask;
    e.askQty = 1;
    this.actor.onMarket(e, this.sink);
  }
}

function setup(opts: Record<string, unknown> = {}): Driver {
  return new Driver(new SymbolActor(7, resolveSymbolActorOptions(opts)), new CollectSink());
}

void t.test('rising prices produce buys and falling prices sells', (t) => {
  for (const dir of [1, -1]) {
    const d = setup();
    let px = 100;
    for (let i = 0; i < 400; i++) {
      px *= Math.exp(dir * 0.0005 * (1 + 0.5 * Math.sin(i / 3)));
      d.trade(px, 50_000);
      if (i % 4 === 0) d.quote(px - 0.01, px + 0.01, 1);
    }
    const sides = d.sink.of(OutputKind.SIGNAL).map((e) => e.payload[OutputLayout.signal.SIDE]);
    t.ok(sides.length > 0, `direction ${dir}: signals emitted`);
    t.ok(
      sides.every((s) => s === dir),
      `direction ${dir}: every signal is ${dir === 1 ? 'buy' : 'sell'} (${sides.join(',')})`,
    );
  }
  t.end();
});

void t.test('no signal during warm-up; predictions throttled; windows of quality', (t) => {
  const d = setup({ warmup: 30, predictionIntervalUs: 100_000, qualityWindowTicks: 100 });
  let px = 100;
  for (let i = 0; i < 250; i++) {
    px *= Math.exp(0.001);
    d.trade(px, 20_000); // 5 trades per 100 ms
  }
  const sigs = d.sink.of(OutputKind.SIGNAL);
  t.ok(
    sigs.every((e) => e.srcSeq >= 30),
    'first signal after 30 trades',
  );
  const preds = d.sink.of(OutputKind.PREDICTION);
  let last = -Infinity;
  let spaced = true;
  for (const p of preds) {
    if (p.srcTs - last < 100_000) spaced = false;
    last = p.srcTs;
  }
  t.ok(spaced, 'predictions at most one per predictionIntervalUs (signals carry their own score)');
  t.ok(preds.length >= 45 && preds.length <= 55, `predictions ${preds.length}`);
  const q = d.sink.of(OutputKind.QUALITY);
  t.same(
    q.map((e) => [
      e.payload[OutputLayout.quality.TICKS],
      e.payload[OutputLayout.quality.SCORE],
      e.payload[OutputLayout.quality.ISSUE_BITS],
    ]),
    [
      [100, 1, 0],
      [100, 1, 0],
    ],
    'two clean windows of 100 ticks',
  );
  for (const e of d.sink.events) {
    t.ok(e.recv <= e.feat && e.feat <= e.infer, 'stage times ordered');
  }
  t.end();
});

void t.test('bad ticks are counted, not folded in, and raise an immediate quality record', (t) => {
  const d = setup();
  d.trade(100);
  d.trade(101);
  const trades = d.actor.features.trades;
  d.trade(-5);
  t.equal(d.actor.features.trades, trades, 'negative price not folded into features');
  t.equal(d.actor.trades.length, 2, 'nor into the window');
  const q = d.sink.of(OutputKind.QUALITY);
  const L = OutputLayout.quality;
  t.same(
    q.map((e) => e.payload[L.KIND]),
    [QualityEventKind.QUARANTINE, QualityEventKind.CHANGE],
    'a quarantine record with the tick, and the change of state',
  );
  t.equal(q[0]!.payload[L.RAW_PX], -5, 'the quarantine record carries the tick');
  t.equal(q[0]!.payload[L.RAW_TYPE], 1);
  t.equal(q[0]!.payload[L.QUARANTINED], 1);
  t.equal(q[1]!.payload[L.ISSUE_BITS], QualityIssue.BAD_VALUE);
  t.equal(q[1]!.srcSeq, 3, 'it names the bad tick');
  d.quote(101, 100, 200_000);
  t.equal(d.actor.quotes.length, 0, 'crossed quote not in the quote window');
  t.equal(d.actor.features.spread, 0, 'nor in the spread');
  t.same(
    d.sink.of(OutputKind.QUALITY).map((e) => e.payload[L.KIND]),
    [
      QualityEventKind.QUARANTINE,
      QualityEventKind.CHANGE,
      QualityEventKind.QUARANTINE,
      QualityEventKind.CHANGE,
    ],
    'second issue 200 ms later: another quarantine and change record',
  );
  d.quote(100, 100.5);
  t.equal(d.actor.features.spread, 0.5);
  t.equal(d.actor.quotes.toRecordBatch().numRows, 1);
  t.end();
});

void t.test('emitEveryTick: a signal on every trade after warm-up', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: -0.01, max: 0.01, noNaN: true }), { minLength: 1, maxLength: 100 }),
      (steps) => {
        const d = setup({ emitEveryTick: true, warmup: 0 });
        let px = 50;
        for (const s of steps) d.trade((px *= Math.exp(s)));
        return d.sink.of(OutputKind.SIGNAL).length === steps.length;
      },
    ),
  );
  t.pass('property held');
  t.end();
});

void t.test('onMarket reuses its output event (no per-tick objects)', (t) => {
  class RefSink extends CollectSink {
    readonly refs = new Set<OutputEvent>();
    override emit(e: OutputEvent): void {
      this.refs.add(e);
      super.emit(e);
    }
  }
  const sink = new RefSink();
  const d = new Driver(
    new SymbolActor(1, resolveSymbolActorOptions({ emitEveryTick: true, warmup: 0 })),
    sink,
  );
  for (let i = 0; i < 50; i++) d.trade(100 + i);
  t.ok(sink.events.length >= 50, `${sink.events.length} records`);
  t.equal(sink.refs.size, 1, 'one OutputEvent object for every record');
  t.end();
});

void t.test(
  'predictions carry every configured feature, equal to a FeatureSet fed the same ticks',
  (t) => {
    const opts = {
      features: [
        { name: 'ema5', kind: 'ema', period: 5 },
        { name: 'rsi5', kind: 'rsi', period: 5 },
        { name: 'atr3', kind: 'atr', period: 3, bars: '1s' },
        { name: 'imb', kind: 'imbalance' },
      ],
      formulas: [
        { name: 'gap', expr: '(px - ema5) / ema5' },
        { name: 'mid2', expr: 'mid * 2' },
      ],
      predictionIntervalUs: 0,
    };
    const d = setup(opts);
    const ref = new FeatureSet(resolveFeatureSpecs(opts.features));
    const bars = new BarWindow({ name: '1s', intervalUs: 1_000_000, capacity: 64 });
    let px = 100;
    for (let i = 0; i < 200; i++) {
      px *= 1 + 0.003 * Math.sin(i / 3);
      d.quote(px - 0.05, px + 0.05, 50_000);
      ref.onQuote(px - 0.05, 1, px + 0.05, 1);
      d.trade(px, 150_000);
      if (bars.onTrade(d.ts, px, 1))
        ref.onBar(0, bars.last('high'), bars.last('low'), bars.last('close'));
      ref.onTrade(px, 1);
    }
    const preds = d.sink.of(OutputKind.PREDICTION);
    t.equal(preds.length, 200, 'one prediction per trade (interval 0)');
    const last = preds[preds.length - 1]!.payload;
    const F = OutputLayout.prediction.FEATURES;
    t.same(d.actor.featureSet.names, ['ema5', 'rsi5', 'atr3', 'imb']);
    for (let i = 0; i < ref.names.length; i++) {
      t.equal(last[F + i], ref.values[i], `${ref.names[i]} as the reference computes it`);
    }
    t.ok(Number.isFinite(last[F + 2]!), 'ATR warmed up on 1 s bars');
    t.equal(
      last[F + 4],
      (px - ref.values[0]!) / ref.values[0]!,
      'formula over an indicator and px',
    );
    t.equal(last[F + 5], 2 * px, 'formula over the last quote');
    t.end();
  },
);

void t.test('a formula that is not finite is a counted quality issue, not a crash', (t) => {
  const d = setup({
    features: [{ name: 'ema3', kind: 'ema', period: 3 }],
    formulas: [{ name: 'bad', expr: 'log(px - px - 1)' }],
    qualityImmediateIntervalUs: 0,
  });
  for (let i = 0; i < 5; i++) d.trade(100 + i);
  const q = d.sink.of(OutputKind.QUALITY);
  t.ok(q.length >= 1, 'a quality record');
  t.equal(
    q[0]!.payload[OutputLayout.quality.ISSUE_BITS]! & QualityIssue.NONFINITE,
    QualityIssue.NONFINITE,
  );
  t.equal(
    d.actor.quality.nonfinite,
    3,
    'one per trade once ema3 is warm (3 trades): NaN inputs do not count',
  );
  t.end();
});

void t.test('feature configuration errors name what is wrong, at load', (t) => {
  t.throws(() => resolveSymbolActorOptions({ formulas: [{ name: 'x', expr: '2 * ema13' }] }), {
    code: 'QLN_FORMULA_INVALID',
    message: /feature "x": unknown input "ema13" at position 5/,
  });
  t.throws(() => resolveSymbolActorOptions({ features: [{ name: 'spread', kind: 'spread' }] }), {
    code: 'QLN_INVALID_ARGUMENT',
    message: /built-in features/,
  });
  t.throws(
    () =>
      resolveSymbolActorOptions({ features: [{ name: 'a', kind: 'atr', period: 3, bars: '5m' }] }),
    { code: 'QLN_INVALID_ARGUMENT', message: /bars of a configured series/ },
  );
  t.throws(() => resolveSymbolActorOptions({ rule: { kind: 'maCross', fast: 'nope' } }), {
    code: 'QLN_INVALID_ARGUMENT',
    message: /rule\.fast/,
  });
  const many = Array.from({ length: MAX_CONFIGURED_FEATURES + 1 }, (_, i) => ({
    name: `e${i}`,
    kind: 'ema',
    period: 2,
  }));
  t.throws(() => resolveSymbolActorOptions({ features: many }), {
    code: 'QLN_INVALID_ARGUMENT',
    message: new RegExp(`at most ${MAX_CONFIGURED_FEATURES}`),
  });
  t.end();
});

void t.test(
  'a venue sequence reset starts a new session: predictions go on, one reset record',
  (t) => {
    const d = setup({ predictionIntervalUs: 0 });
    for (let i = 0; i < 200; i++) d.trade(100 + (i % 5));
    const before = d.sink.of(OutputKind.PREDICTION).length;
    d.seq = 0; // the venue restarts from 1, time goes on
    for (let i = 0; i < 40; i++) d.trade(100 + (i % 5));
    const preds = d.sink.of(OutputKind.PREDICTION);
    t.equal(preds.length - before, 40, 'every tick after the reset is predicted on');
    const resets = d.sink
      .of(OutputKind.QUALITY)
      .filter((e) => e.payload[OutputLayout.quality.KIND] === QualityEventKind.RESET);
    t.equal(resets.length, 1);
    t.equal(resets[0]!.srcSeq, 1);
    t.equal(resets[0]!.payload[OutputLayout.quality.SESSION], 1);
    t.equal(d.actor.quality.outOfOrder, 0, 'nothing out of order in the window');
    t.end();
  },
);
