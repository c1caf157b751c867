import fc from 'fast-check';
import t from 'tap';
import { FillModel } from '../../backtest/fill-model.js';
import { Portfolio } from '../../backtest/portfolio.js';
import {
  annualisationNote,
  buildReport,
  drawdownSeries,
  formatDuration,
  maxDrawdown,
  periodReturns,
  renderHtmlReport,
  renderTextReport,
  seriesMetrics,
  thinIndexes,
  sharpeRatio,
  sortinoRatio,
  tradeMetrics,
  YEAR_US,
  type BacktestMeta,
} from '../../backtest/report.js';

const near = (a: number | null, b: number, eps = 1e-12): boolean =>
  a !== null && Math.abs(a - b) <= eps * Math.max(1, Math.abs(b));

const META: BacktestMeta = { id: 'bt-1', name: 'unit', config: { k: 1 }, codeVersion: 'abc123' };

void t.test('series metrics of a literal curve, computed by hand', (t) => {
  // e = 100, 110, 99, 121 at t = 0, 1, 2, 3 µs; interval 1 µs, a "year" of 4 µs → P = 4.
  // r = 0.1, −0.1, 22/99;  mean = 2/27;  deviations 0.7/27, −4.7/27, 4/27
  // sd = √((0.49 + 22.09 + 16) / 27² / 2) = 0.16266808337776…
  const m = seriesMetrics([100, 110, 99, 121], [0, 1, 2, 3], 1, 4);
  t.ok(near(m.totalReturn, 0.21), 'total 121/100 − 1');
  t.ok(
    near(m.annualisedReturn, Math.pow(1.21, 4 / 3) - 1),
    'annualised (1.21)^(4/3) − 1 = 0.2893787…',
  );
  t.ok(near(m.annualisedReturn, 0.289378706487599), 'the same as a literal');
  t.ok(near(m.volatility, 0.1626680833777611 * 2), 'sd · √4');
  t.ok(near(m.sharpe, (2 / 27 / 0.1626680833777611) * 2), 'mean / sd · √4');
  t.ok(near(m.sharpe, 0.9107388804975739));
  // downside deviation √(0.1² / 3) (only −0.1 is below 0, over all 3 returns)
  t.ok(near(m.sortino, (2 / 27 / Math.sqrt(0.01 / 3)) * 2));
  t.ok(near(m.sortino, 2.5660011963983362));
  t.ok(near(m.maxDrawdown, 0.1), '110 → 99');
  t.equal(m.maxDrawdownDurationUs, 2, 'peak at 1, back at the peak at 3');
  t.equal(m.longestDrawdownUs, 2);
  t.ok(near(m.calmar, 2.89378706487599), 'annualised / max drawdown');
  t.end();
});

void t.test('drawdowns: unrecovered, deepest vs longest, ties at the peak', (t) => {
  const a = maxDrawdown([100, 120, 90, 100, 80], [0, 10, 20, 30, 40]);
  t.ok(near(a.maxDrawdown, 1 / 3), '120 → 80');
  t.equal(a.durationUs, 30, 'from the peak at 10 to the end (never recovered)');
  t.equal(a.longestUs, 30);
  const b = maxDrawdown([100, 95, 94, 96, 97, 100, 80, 100], [0, 1, 2, 3, 4, 5, 6, 7]);
  t.ok(near(b.maxDrawdown, 0.2), 'the second episode is the deepest');
  t.equal(b.durationUs, 2, '5 → 7');
  t.equal(b.longestUs, 5, 'the first episode is the longest: 0 → 5');
  const c = maxDrawdown([100, 100, 90, 100], [0, 1, 2, 3]);
  t.equal(c.durationUs, 2, 'a flat top moves the peak to its last sample');
  t.same(maxDrawdown([], []), { maxDrawdown: 0, durationUs: 0, longestUs: 0 });
  t.same(maxDrawdown([1, 2, 3], [0, 1, 2]), { maxDrawdown: 0, durationUs: 0, longestUs: 0 });
  t.same(Array.from(drawdownSeries([100, 120, 90, 130])), [0, 0, 0.25, 0]);
  t.end();
});

void t.test('undefined metrics are null, never NaN or Infinity', (t) => {
  const flat = seriesMetrics([100, 100, 100], [0, 1, 2], 1, 4);
  t.equal(flat.sharpe, null, 'no variance');
  t.equal(flat.sortino, null, 'no loss');
  t.equal(flat.calmar, null, 'no drawdown');
  t.equal(flat.totalReturn, 0);
  const one = seriesMetrics([100], [0], 1, 4);
  t.equal(one.annualisedReturn, null, 'no time spanned');
  t.equal(one.volatility, null);
  t.equal(sharpeRatio([0.1], 4), null, 'one return');
  t.equal(sortinoRatio([], 4), null);
  const bust = seriesMetrics([100, 50, -10], [0, 1, 2], 1, 4);
  t.equal(bust.annualisedReturn, -1, 'equity ≤ 0: −100 %');
  t.same(Array.from(periodReturns([0, 5])), [0], 'a return from 0 is 0');
  t.end();
});

void t.test('a run shorter than a day is not annualised (no 1e89 %)', (t) => {
  const DAY = 86_400e6;
  // +0.13 % in 200 s: compounded to a year it would be ~1e89.
  const short = seriesMetrics([100, 100.13], [0, 200e6], 1e6);
  t.ok(near(short.totalReturn, 0.0013), 'the return itself stays');
  t.equal(short.annualisedReturn, null, 'annual: blank under a day');
  t.equal(seriesMetrics([100, 90, 100.13], [0, 1e8, 2e8], 1e6).calmar, null, 'calmar with it');
  const day = seriesMetrics([100, 100.13], [0, DAY], 1e6);
  t.ok(near(day.annualisedReturn, Math.pow(1.0013, 365) - 1), 'a day: (1.0013)^365 − 1');
  t.equal(
    annualisationNote({ startTs: 0, endTs: 200e6, total: short }),
    'annual and calmar are blank: the run spans 00:03:20, under a day (compounded to a year it would mean nothing)',
  );
  t.equal(
    annualisationNote({ startTs: 0, endTs: YEAR_US / 365, total: day }),
    null,
    'a day: no note',
  );
  t.equal(annualisationNote({ startTs: 5, endTs: 5, total: short }), null, 'no span: no note');
  t.end();
});

void t.test('trade metrics of literal round trips', (t) => {
  const m = tradeMetrics([10, -5, 0, 20, -15].map((pnl) => ({ pnl })));
  t.same(
    m,
    { trades: 5, hitRate: 0.4, profitFactor: 1.5, expectancy: 2 },
    'wins 30, losses 20, Σ 10',
  );
  t.same(tradeMetrics([{ pnl: 3 }]), { trades: 1, hitRate: 1, profitFactor: null, expectancy: 3 });
  t.same(tradeMetrics([]), { trades: 0, hitRate: null, profitFactor: null, expectancy: null });
  t.end();
});

/** The definitions, written the slow and obvious way. */
function naive(e: number[], ts: number[], P: number) {
  const r = e.slice(1).map((v, i) => (e[i] === 0 ? 0 : (v - e[i]!) / Math.abs(e[i]!)));
  const mean = r.reduce((s, v) => s + v, 0) / r.length;
  const sd = Math.sqrt(r.reduce((s, v) => s + (v - mean) ** 2, 0) / (r.length - 1));
  const down = Math.sqrt(r.reduce((s, v) => s + Math.min(v, 0) ** 2, 0) / r.length);
  let best = 0;
  let bestPeak = -1;
  let bestTrough = -1;
  let longest = 0;
  for (let i = 0; i < e.length; i++) {
    // the peak of sample i: the last j ≤ i holding max(e[0..i])
    const top = Math.max(...e.slice(0, i + 1));
    const j = e.slice(0, i + 1).lastIndexOf(top);
    const dd = top > 0 ? (top - e[i]!) / top : 0;
    if (dd > best) [best, bestPeak, bestTrough] = [dd, j, i];
    if (j === i && i + 1 < e.length && e[i + 1]! < top) {
      const k = e.findIndex((v, x) => x > i && v >= top);
      longest = Math.max(longest, (k < 0 ? ts.at(-1)! : ts[k]!) - ts[i]!);
    }
  }
  let duration = 0;
  if (bestPeak >= 0) {
    const k = e.findIndex((v, x) => x > bestTrough && v >= e[bestPeak]!);
    duration = (k < 0 ? ts.at(-1)! : ts[k]!) - ts[bestPeak]!;
  }
  return {
    sharpe: r.length >= 2 && sd > 1e-15 ? (mean / sd) * Math.sqrt(P) : null,
    sortino: r.length >= 1 && down > 1e-15 ? (mean / down) * Math.sqrt(P) : null,
    maxDrawdown: best,
    duration,
    longest,
  };
}

void t.test('property: metrics equal the naive reference', (t) => {
  let runs = 0;
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 50, max: 150 }), { minLength: 1, maxLength: 40 }),
      fc.integer({ min: 1, max: 1000 }),
      (levels, step) => {
        const ts = levels.map((_, i) => i * step);
        const got = seriesMetrics(levels, ts, step, step * 252);
        const want = naive(levels, ts, 252);
        const same = (a: number | null, b: number | null): boolean =>
          a === null || b === null ? a === b : Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));
        if (!same(got.sharpe, want.sharpe))
          throw new Error(`sharpe ${got.sharpe} != ${want.sharpe}`);
        if (!same(got.sortino, want.sortino))
          throw new Error(`sortino ${got.sortino} != ${want.sortino}`);
        if (!same(got.maxDrawdown, want.maxDrawdown)) throw new Error('max drawdown');
        if (got.maxDrawdownDurationUs !== want.duration)
          throw new Error(`duration ${got.maxDrawdownDurationUs} != ${want.duration}`);
        if (got.longestDrawdownUs !== want.longest)
          throw new Error(`longest ${got.longestDrawdownUs} != ${want.longest}`);
        runs++;
      },
    ),
    { numRuns: 500 },
  );
  t.equal(runs, 500);
  t.end();
});

void t.test('property: trade metrics equal the naive reference', (t) => {
  let runs = 0;
  fc.assert(
    fc.property(fc.array(fc.integer({ min: -1000, max: 1000 }), { maxLength: 60 }), (pnls) => {
      const got = tradeMetrics(pnls.map((pnl) => ({ pnl })));
      const wins = pnls.filter((p) => p > 0);
      const losses = pnls.filter((p) => p < 0);
      const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
      const want = {
        trades: pnls.length,
        hitRate: pnls.length === 0 ? null : wins.length / pnls.length,
        profitFactor: losses.length === 0 ? null : sum(wins) / -sum(losses),
        expectancy: pnls.length === 0 ? null : sum(pnls) / pnls.length,
      };
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        throw new Error(`${JSON.stringify(got)} != ${JSON.stringify(want)}`);
      }
      runs++;
    }),
    { numRuns: 300 },
  );
  t.equal(runs, 300);
  t.end();
});

void t.test('formatDuration', (t) => {
  t.equal(formatDuration(1_500_000), '1.500s');
  t.equal(formatDuration(3_723_000_000), '01:02:03');
  t.equal(formatDuration(90_061_000_000), '1d 01:01:01');
  t.end();
});

/** The hand-computed run of portfolio.test.ts, as a report. */
function handRun(): ReturnType<typeof buildReport> {
  const p = new Portfolio({ initialCash: 1_000_000, sampleIntervalUs: 10 });
  p.mark('A', 100, 5);
  p.onFill({ signalId: 'mom:A:1', sym: 'A', side: 'buy', qty: 10, px: 100, fee: 1, ts: 6 });
  p.mark('A', 110, 12);
  p.onFill({ signalId: 'mom:A:2', sym: 'A', side: 'sell', qty: 4, px: 120, fee: 1, ts: 13 });
  p.onFill({ signalId: 'mom:A:3', sym: 'A', side: 'sell', qty: 10, px: 90, fee: 2, ts: 25 });
  p.mark('A', 95, 31);
  p.onFill({ signalId: 'rsi:A:4', sym: 'A', side: 'buy', qty: 4, px: 95, ts: 32 });
  p.finish(40);
  return buildReport(p.result(), META, { yearUs: 40 });
}

void t.test('buildReport: totals and groups of a hand-computed run', (t) => {
  const r = handRun();
  t.equal(r.version, 1);
  t.same(r.meta, META);
  // mom: realised 80 − 60, fees 4, short 4 @ 90 marked at 95 (−20); rsi: long 4 @ 95 at 95 (0).
  t.ok(near(r.total.pnl, -4), '20 − 4 − 20 + 0');
  t.equal(r.total.fees, 4);
  t.equal(r.total.fills, 4);
  t.ok(near(r.total.exposure, 34 / 35), 'some position open from 6 to the end, of 5 → 40');
  t.ok(near(r.strategies[1]!.exposure, 8 / 35), 'rsi: 32 → 40');
  const meanEq = (1_000_000 + 999_999 + 1_000_138 + 999_936 + 999_996) / 5;
  t.ok(near(r.total.turnover, 2760 / meanEq), 'Σ|notional| / mean equity');
  t.ok(near(r.total.totalReturn, 999_996 / 1_000_000 - 1));
  t.same(
    r.strategies.map((s) => s.name),
    ['mom', 'rsi'],
  );
  t.same(
    r.symbols.map((s) => s.name),
    ['A'],
  );
  t.same(
    r.accounts.map((s) => s.name),
    ['backtest'],
  );
  // mom: long trip +16.8; then a short of 4 @ 90 that rsi's buy does not close (another slot).
  const mom = r.strategies[0]!;
  t.equal(mom.trades, 1);
  t.equal(mom.hitRate, 1);
  t.ok(near(mom.expectancy, 16.8));
  const rsi = r.strategies[1]!;
  t.equal(rsi.trades, 0, "rsi's long is still open");
  t.ok(near(mom.pnl + rsi.pnl, r.total.pnl), 'strategies add up to the total');
  t.same(r.curve.ts, [0, 10, 20, 30, 40]);
  t.equal(r.curve.drawdown.length, 5);
  t.same(JSON.parse(JSON.stringify(r)), r, 'JSON round trip: no NaN, no Infinity, no typed arrays');
  t.end();
});

void t.test('text table: ASCII, aligned, TOTAL first then each group', (t) => {
  const text = renderTextReport(handRun());
  t.match(text, /^[\x20-\x7e\n]*$/, 'plain ASCII');
  const lines = text.trimEnd().split('\n');
  const header = lines.findIndex((l) => l.startsWith('group'));
  t.ok(header > 0);
  const table = lines.slice(header);
  t.match(table[1], /^-+( +-+)+$/, 'a rule under the header');
  t.match(table[2], /^TOTAL /);
  t.same(
    table.slice(3).map((l) => l.split(/\s+/)[0]),
    ['account:backtest', 'strategy:mom', 'strategy:rsi', 'symbol:A'],
  );
  const widths = new Set(table.map((l) => l.length));
  t.equal(widths.size, 1, 'every row as wide as the header (right-aligned numbers)');
  const col = table[0]!.indexOf('sharpe') + 'sharpe'.length;
  for (const l of table.slice(2)) t.match(l[col - 1], /[0-9-]/, 'numbers end under their header');
  t.end();
});

void t.test('HTML: self-contained, no script, no network reference, names escaped', (t) => {
  const report = handRun();
  report.meta = { ...report.meta, name: '<b>x & "y"</b>' };
  const html = renderHtmlReport(report);
  for (const banned of ['http://', 'https://', '<script', 'src=', 'href=', 'url(', '@import']) {
    t.notOk(html.includes(banned), `no ${banned}`);
  }
  t.equal(html.match(/<svg /g)?.length, 2, 'equity and drawdown charts');
  t.match(html, /<polyline [^>]*points="[0-9., ]+"/, 'the equity line');
  t.match(html, /<polygon [^>]*points="[0-9., -]+"/, 'the drawdown area');
  t.match(html, /&lt;b&gt;x &amp; &quot;y&quot;&lt;\/b&gt;/);
  t.notOk(html.includes('<b>x'), 'the raw name never appears');
  t.equal(html.match(/<tr class="/g)?.length, 5, 'one row per group');
  t.match(html, /<style>/);
  t.end();
});

void t.test('end to end: a generated market through fill model, portfolio and report', (t) => {
  // A seeded random walk; a 1-trade momentum rule: buy after an up-tick when flat, sell after a down-tick when long.
  let seed = 42;
  const rnd = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const portfolio = new Portfolio({ initialCash: 100_000, sampleIntervalUs: 10_000_000 });
  const fm = new FillModel(
    { latencyUs: 500, feeBps: 5, feePerFill: 0.1, maxVolumeShare: 0.5 },
    (f) => {
      portfolio.onFill(f);
    },
  );
  const syms = ['AAA', 'BBB'];
  const last = new Map(syms.map((s) => [s, 100]));
  const wantLong = new Map(syms.map((s) => [s, false]));
  let ts = 1_700_000_000_000_000;
  let n = 0;
  for (let i = 0; i < 20_000; i++) {
    ts += 1 + Math.floor(rnd() * 200_000);
    const sym = syms[i & 1]!;
    const prev = last.get(sym)!;
    const px = Math.max(1, prev * (1 + (rnd() - 0.5) * 0.004));
    const qty = 1 + Math.floor(rnd() * 10);
    fm.onTrade(sym, ts, px, qty);
    portfolio.mark(sym, px, ts);
    last.set(sym, px);
    const up = px > prev;
    if (up !== wantLong.get(sym)) {
      wantLong.set(sym, up);
      fm.submit({
        signalId: `mom:${sym}:${i}`,
        account: 'backtest',
        strategy: 'mom',
        sym,
        side: up ? 'buy' : 'sell',
        qty: 2,
        ts,
        refPx: px,
      });
      n++;
    }
  }
  portfolio.finish(ts);
  const report = buildReport(portfolio.result(), META);
  t.ok(n > 100, `${n} orders`);
  t.equal(report.total.fills, fm.stats.fills, 'every fill booked');
  t.ok(near(report.total.fees, fm.stats.fees, 1e-9), 'fees agree');
  t.ok(near(report.total.pnl, portfolio.equity() - 100_000, 1e-9), 'pnl = equity − initial');
  t.ok(report.total.trades > 50, `${report.total.trades} round trips`);
  t.equal(report.symbols.length, 2);
  t.ok(
    near(report.symbols[0]!.pnl + report.symbols[1]!.pnl, report.total.pnl, 1e-9),
    'symbols add up',
  );
  t.ok(report.curve.equity.length > 100, `${report.curve.equity.length} samples`);
  const html = renderHtmlReport(report);
  t.notOk(/https?:\/\/|<script/.test(html));
  t.end();
});

void t.test(
  'HTML edge cases: an empty run, a flat curve, a long curve thinned to 2,000 points',
  (t) => {
    const empty = buildReport(new Portfolio().result(), META);
    t.equal(empty.curve.equity.length, 0);
    const e = renderHtmlReport(empty);
    t.match(e, /Equity: no data/);
    t.match(e, /Drawdown: no data/);
    t.match(renderTextReport(empty), /^TOTAL /m);

    const flat = new Portfolio({ sampleIntervalUs: 10 });
    flat.mark('A', 100, 0);
    flat.finish(100);
    const f = renderHtmlReport(buildReport(flat.result(), META));
    t.match(
      f,
      /<polyline [^>]*points="[0-9., ]+"/,
      'a flat curve still draws (no division by zero)',
    );
    t.notMatch(f, /NaN|Infinity/);

    const long = new Portfolio({ sampleIntervalUs: 10 });
    long.mark('A', 100, 0);
    long.onFill({ signalId: 'x:A:1', sym: 'A', side: 'buy', qty: 1, px: 100, ts: 1 });
    for (let i = 1; i <= 3000; i++) long.mark('A', 100 + Math.sin(i / 50) * 10, i * 10);
    long.finish(30_001);
    const r = buildReport(long.result(), META);
    t.ok(r.curve.equity.length > 3000, `${r.curve.equity.length} samples in the JSON`);
    const html = renderHtmlReport(r);
    const pts = /<polyline [^>]*points="([^"]+)"/.exec(html)![1]!.split(' ');
    t.ok(pts.length <= 2000 && pts.length > 1000, `the SVG line has ${pts.length} ≤ 2,000 points`);
    t.end();
  },
);

void t.test("thinIndexes keeps the first, the last, and every bucket's extremes", (t) => {
  t.same(thinIndexes([3, 1, 2], 10), [0, 1, 2], 'short: every index');
  const v = Array.from({ length: 10_000 }, (_, i) => 100 + Math.sin(i / 300));
  v[4321] = 10; // a one-sample crash between stride points
  v[7777] = 500;
  const idx = thinIndexes(v, 2000);
  t.ok(idx.length <= 2000, `${idx.length} indexes`);
  t.equal(idx[0], 0);
  t.equal(idx.at(-1), 9999);
  t.ok(idx.includes(4321), 'the crash is kept');
  t.ok(idx.includes(7777), 'the spike is kept');
  t.ok(
    idx.every((x, i) => i === 0 || x > idx[i - 1]!),
    'strictly increasing (time order)',
  );
  t.end();
});
