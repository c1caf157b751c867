import fc from 'fast-check';
import t from 'tap';
import {
  ATR,
  Bollinger,
  DEFAULT_FEATURE_SPECS,
  FULL_FEATURE_SPECS,
  EMA,
  FeatureSet,
  Imbalance,
  LogReturn,
  MACD,
  OBV,
  RealizedVol,
  RelSpread,
  RollingStats,
  resolveFeatureSpecs,
  RSI,
  SMA,
  Spread,
  VWAP,
  WMA,
  type FeatureSpec,
} from '../../../actors/indicators/index.js';
import { ErrorCodes } from '../../../kernel/errors.js';
import { prng } from './helpers.js';

void t.test('full set: names in spec order, MACD and Bollinger expanded, one bar series', (t) => {
  const fs = new FeatureSet(FULL_FEATURE_SPECS);
  t.same(fs.names, [
    'ema12',
    'ema26',
    'sma20',
    'wma20',
    'rsi14',
    'macd_line',
    'macd_signal',
    'macd_hist',
    'bb_upper',
    'bb_middle',
    'bb_lower',
    'bb_pctb',
    'mean50',
    'stddev50',
    'zscore50',
    'vwap',
    'rv50',
    'logret',
    'atr14',
    'obv',
    'imbalance',
    'quoteSpread',
    'relSpread',
  ]);
  t.equal(fs.values.length, fs.names.length);
  t.ok(fs.values.every(Number.isNaN), 'all NaN before the first tick');
  t.same(fs.barSeries, ['1s']);
  t.equal(fs.indexOf('macd_signal'), 6);
  t.equal(fs.indexOf('relSpread'), fs.names.length - 1);
  t.equal(fs.indexOf('macd'), -1);
  t.equal(fs.indexOf('nope'), -1);
  t.same(
    new FeatureSet().names,
    new FeatureSet(DEFAULT_FEATURE_SPECS).names,
    'the default argument is the default set',
  );
  t.same(new FeatureSet(DEFAULT_FEATURE_SPECS).names, [
    'ema12',
    'ema26',
    'rsi14',
    'macd_line',
    'macd_signal',
    'macd_hist',
    'zscore50',
    'vwap',
    'atr14',
    'imbalance',
    'relSpread',
  ]);
  t.end();
});

/** One per kind, several inputs and bar series, shared rolling stats. */
const SPECS: FeatureSpec[] = [
  { name: 's', kind: 'sma', period: 5 },
  { name: 'e', kind: 'ema', period: 4 },
  { name: 'w', kind: 'wma', period: 6 },
  { name: 'r', kind: 'rsi', period: 3 },
  { name: 'm', kind: 'mean', period: 7 },
  { name: 'v', kind: 'variance', period: 7 },
  { name: 'sd', kind: 'stddev', period: 7 },
  { name: 'z', kind: 'zscore', period: 8 },
  { name: 'rv', kind: 'realizedVol', period: 5 },
  { name: 'lr', kind: 'logReturn' },
  { name: 'mc', kind: 'macd', fast: 3, slow: 6, signal: 4 },
  { name: 'bb', kind: 'bollinger', period: 5, k: 1.5 },
  { name: 'vw', kind: 'vwap', period: 10 },
  { name: 'vws', kind: 'vwap', period: 0 },
  { name: 'a1', kind: 'atr', period: 3 },
  { name: 'a2', kind: 'atr', period: 2, bars: '1m' },
  { name: 'o', kind: 'obv' },
  { name: 'imb', kind: 'imbalance' },
  { name: 'sp', kind: 'spread' },
  { name: 'rs', kind: 'relSpread' },
  { name: 'midEma', kind: 'ema', period: 3, input: 'mid' },
  { name: 'midZ', kind: 'zscore', period: 4, input: 'mid' },
  { name: 'midMacd', kind: 'macd', input: 'mid', fast: 2, slow: 3, signal: 2 },
  { name: 'midBb', kind: 'bollinger', period: 3, input: 'mid' },
];

void t.test('values equal the individual indicators fed the same stream (bit for bit)', (t) => {
  let runs = 0;
  let compared = 0;
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1e9 }), fc.integer({ min: 1, max: 400 }), (seed, n) => {
      runs++;
      const fs = new FeatureSet(SPECS);
      t.same(fs.barSeries, ['1s', '1m']);
      const px = {
        s: new SMA(5),
        e: new EMA(4),
        w: new WMA(6),
        r: new RSI(3),
        st7: new RollingStats(7),
        st8: new RollingStats(8),
        rv: new RealizedVol(5),
        lr: new LogReturn(),
        mc: new MACD(3, 6, 4),
        bb: new Bollinger(5, 1.5),
      };
      const mid = {
        e: new EMA(3),
        z: new RollingStats(4),
        mc: new MACD(2, 3, 2),
        bb: new Bollinger(3, 2),
      };
      const vw = new VWAP(10);
      const vws = new VWAP(0);
      const o = new OBV();
      const a1 = new ATR(3);
      const a2 = new ATR(2);
      const imb = new Imbalance();
      const sp = new Spread();
      const rs = new RelSpread();
      const r = prng(seed);
      let p = 100;
      for (let i = 0; i < n; i++) {
        p *= Math.exp(0.01 * (2 * r() - 1));
        const u = r();
        if (u < 0.5) {
          const q = Math.floor(r() * 100);
          fs.onTrade(p, q);
          for (const ind of Object.values(px)) ind.update(p);
          vw.update(p, q);
          vws.update(p, q);
          o.update(p, q);
        } else if (u < 0.9) {
          const bid = p * (1 - 0.001 * r());
          const ask = p * (1 + 0.001 * r());
          const bq = r() * 10;
          const aq = r() * 10;
          fs.onQuote(bid, bq, ask, aq);
          for (const ind of Object.values(mid)) ind.update((bid + ask) / 2);
          imb.update(bq, aq);
          sp.update(bid, ask);
          rs.update(bid, ask);
        } else {
          const series = u < 0.95 ? 0 : 1;
          const h = p * 1.01;
          const l = p * 0.99;
          fs.onBar(series, h, l, p);
          (series === 0 ? a1 : a2).update(h, l, p);
        }
      }
      const want: Record<string, number> = {
        s: px.s.value,
        e: px.e.value,
        w: px.w.value,
        r: px.r.value,
        m: px.st7.mean,
        v: px.st7.variance,
        sd: px.st7.stddev,
        z: px.st8.zscore,
        rv: px.rv.value,
        lr: px.lr.value,
        mc_line: px.mc.line,
        mc_signal: px.mc.signal,
        mc_hist: px.mc.hist,
        bb_upper: px.bb.upper,
        bb_middle: px.bb.middle,
        bb_lower: px.bb.lower,
        bb_pctb: px.bb.pctb,
        vw: vw.value,
        vws: vws.value,
        a1: a1.value,
        a2: a2.value,
        o: o.value,
        imb: imb.value,
        sp: sp.value,
        rs: rs.value,
        midEma: mid.e.value,
        midZ: mid.z.zscore,
        midMacd_line: mid.mc.line,
        midMacd_signal: mid.mc.signal,
        midMacd_hist: mid.mc.hist,
        midBb_upper: mid.bb.upper,
        midBb_middle: mid.bb.middle,
        midBb_lower: mid.bb.lower,
        midBb_pctb: mid.bb.pctb,
      };
      if (Object.keys(want).length !== fs.names.length) return false;
      for (const [name, v] of Object.entries(want)) {
        const i = fs.indexOf(name);
        if (i < 0 || !Object.is(fs.values[i], v)) {
          throw new Error(`${name}: set ${fs.values[i]}, indicator ${v} after ${n} ticks`);
        }
        compared++;
      }
      fs.reset();
      return fs.values.every(Number.isNaN);
    }),
    { numRuns: 100 },
  );
  t.equal(runs, 100);
  t.equal(compared, 100 * 34);
  t.end();
});

void t.test('resolveFeatureSpecs fills the defaults', (t) => {
  const r = resolveFeatureSpecs([
    { name: 'a', kind: 'sma', period: 3 },
    { name: 'm', kind: 'macd' },
    { name: 'b', kind: 'bollinger', period: 20 },
    { name: 't', kind: 'atr', period: 14 },
    { name: 'o', kind: 'obv' },
  ]);
  t.same(r, [
    { name: 'a', kind: 'sma', period: 3, input: 'px' },
    { name: 'm', kind: 'macd', input: 'px', fast: 12, slow: 26, signal: 9 },
    { name: 'b', kind: 'bollinger', period: 20, input: 'px', k: 2 },
    { name: 't', kind: 'atr', period: 14, bars: '1s' },
    { name: 'o', kind: 'obv' },
  ]);
  t.same(resolveFeatureSpecs([]), []);
  t.equal(resolveFeatureSpecs(DEFAULT_FEATURE_SPECS).length, DEFAULT_FEATURE_SPECS.length);
  t.end();
});

void t.test('bad specs throw QLN_INVALID_ARGUMENT naming the key', (t) => {
  const ok = { name: 'x', kind: 'sma', period: 3 };
  const cases: [unknown, RegExp][] = [
    [{}, /invalid features:/],
    ['sma', /invalid features:/],
    [[null], /features\[0\]/],
    [[ok, []], /features\[1\]/],
    [[{ kind: 'sma', period: 3 }], /features\[0\]\.name/],
    [[{ name: '9lives', kind: 'sma', period: 3 }], /features\[0\]\.name/],
    [[{ name: 'a-b', kind: 'sma', period: 3 }], /features\[0\]\.name/],
    [[{ name: 'x', kind: 'median', period: 3 }], /features\[0\]\.kind/],
    [[ok, { name: 'y', kind: 'ema' }], /features\[1\]\.period/],
    [
      [ok, { ...ok, name: 'y' }, { ...ok, name: 'w' }, { name: 'z', kind: 'wma', period: 0 }],
      /features\[3\]\.period/,
    ],
    [[{ name: 'x', kind: 'rsi', period: 2.5 }], /features\[0\]\.period/],
    [[{ name: 'x', kind: 'vwap', period: -1 }], /features\[0\]\.period/],
    [[{ name: 'x', kind: 'sma', period: 3, input: 'bid' }], /features\[0\]\.input/],
    [[{ name: 'x', kind: 'sma', period: 3, k: 2 }], /features\[0\]\.k.*not used by kind sma/],
    [[{ name: 'x', kind: 'vwap', period: 3, input: 'mid' }], /features\[0\]\.input/],
    [[{ name: 'x', kind: 'obv', period: 3 }], /features\[0\]\.period/],
    [[{ name: 'x', kind: 'sma', period: 3, perod: 4 }], /features\[0\]\.perod.*no such key/],
    [[{ name: 'x', kind: 'macd', fast: 26, slow: 12 }], /features\[0\]\.slow/],
    [[{ name: 'x', kind: 'macd', signal: 0 }], /features\[0\]\.signal/],
    [[{ name: 'x', kind: 'bollinger', period: 20, k: -1 }], /features\[0\]\.k/],
    [[{ name: 'x', kind: 'atr', period: 14, bars: '' }], /features\[0\]\.bars/],
    [[{ name: 'x', kind: 'atr', period: 14, bars: 5 }], /features\[0\]\.bars/],
    [[ok, { name: 'x', kind: 'ema', period: 2 }], /features\[1\]\.name/],
    // uniqueness after expansion: `m_line` is one of macd m's outputs
    [
      [
        { name: 'm', kind: 'macd' },
        { name: 'm_line', kind: 'obv' },
      ],
      /features\[1\]\.name/,
    ],
    [
      [
        { name: 'bb_pctb', kind: 'obv' },
        { name: 'bb', kind: 'bollinger', period: 5 },
      ],
      /features\[1\]\.name/,
    ],
  ];
  for (const [raw, message] of cases) {
    t.throws(
      () => resolveFeatureSpecs(raw),
      { code: ErrorCodes.INVALID_ARGUMENT, message },
      JSON.stringify(raw),
    );
  }
  t.throws(() => new FeatureSet([{ name: 'x', kind: 'ema', period: 0 }]), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /features\[0\]\.period/,
  });
  t.equal(cases.length, 25);
  t.end();
});

void t.test('a set only refreshes what the call feeds; reset clears everything', (t) => {
  const fs = new FeatureSet([
    { name: 'e', kind: 'ema', period: 1 },
    { name: 'me', kind: 'ema', period: 1, input: 'mid' },
    { name: 'sp', kind: 'spread' },
    { name: 'a', kind: 'atr', period: 1 },
  ]);
  fs.onTrade(10, 1);
  t.same(Array.from(fs.values), [10, NaN, NaN, NaN]);
  fs.onQuote(9, 1, 11, 1);
  t.same(Array.from(fs.values), [10, 10, 2, NaN]);
  fs.onBar(0, 12, 8, 10);
  t.same(Array.from(fs.values), [10, 10, 2, 4]);
  fs.onBar(1, 100, 0, 10); // no such series: nothing changes
  t.same(Array.from(fs.values), [10, 10, 2, 4]);
  fs.reset();
  t.ok(fs.values.every(Number.isNaN));
  fs.onTrade(20, 1);
  t.equal(fs.values[0], 20);
  t.end();
});

void t.test('two statistics of the same kind and period are both computed', (t) => {
  const fs = new FeatureSet([
    { name: 'm1', kind: 'mean', period: 3 },
    { name: 'm2', kind: 'mean', period: 3 },
    { name: 'z', kind: 'zscore', period: 3 },
  ]);
  for (const x of [1, 2, 3, 4]) fs.onTrade(x, 1);
  t.equal(fs.values[0], 3, 'm1');
  t.equal(fs.values[1], 3, 'm2');
  t.ok(Number.isFinite(fs.values[2]!), 'z shares a stats entry and is computed');
  t.end();
});
