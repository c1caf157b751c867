/**
 * Ranking and rendering of a sweep (backtest/sweep-report.ts): best first in
 * the metric's direction, `null` last, ties by grid index (a total order,
 * checked as a property on shuffled input); `--rank-by` validation; the
 * terminal table and the self-contained page. Unit tier, no services.
 */
import fc from 'fast-check';
import t from 'tap';
import type { BacktestReport } from '../../backtest/report.js';
import type { SweepPointResult, SweepResult } from '../../backtest/sweep.js';
import { parseSweep } from '../../backtest/sweep-grid.js';
import {
  RANK_METRICS,
  parseRankBy,
  rankPoints,
  renderSweepHtml,
  renderSweepText,
  sweepJson,
} from '../../backtest/sweep-report.js';
import { Portfolio } from '../../backtest/portfolio.js';
import { buildReport } from '../../backtest/report.js';

type Fake = Pick<SweepPointResult, 'index' | 'report'>;

const point = (index: number, total: Partial<BacktestReport['total']>): Fake => ({
  index,
  report: { total } as unknown as BacktestReport,
});

void t.test(
  'rankPoints: higher first for ratios, lower first for drawdown; null last; ties by index',
  (t) => {
    const pts = [
      point(0, { sharpe: 1, maxDrawdown: 0.2 }),
      point(1, { sharpe: null, maxDrawdown: 0.1 }),
      point(2, { sharpe: 3, maxDrawdown: 0.3 }),
      point(3, { sharpe: 1, maxDrawdown: 0.1 }),
      point(4, { sharpe: null, maxDrawdown: 0.05 }),
    ];
    t.same(
      rankPoints(pts, 'sharpe').map((p) => p.index),
      [2, 0, 3, 1, 4],
    );
    t.same(
      rankPoints(pts, 'maxDrawdown').map((p) => p.index),
      [4, 1, 3, 0, 2],
    );
    t.same(
      pts.map((p) => p.index),
      [0, 1, 2, 3, 4],
      'the input is not reordered',
    );
    t.end();
  },
);

void t.test('property: the ranking does not depend on the input order', (t) => {
  let runs = 0;
  const metricArb = fc.constantFrom(
    ...(Object.keys(RANK_METRICS) as Array<keyof typeof RANK_METRICS>),
  );
  fc.assert(
    fc.property(
      fc.array(fc.option(fc.integer({ min: -3, max: 3 }), { nil: null }), {
        minLength: 1,
        maxLength: 30,
      }),
      metricArb,
      fc.integer(),
      (values, by, seed) => {
        runs++;
        const pts = values.map((v, i) => point(i, { [by]: v }));
        const shuffled = fc.sample(fc.shuffledSubarray(pts, { minLength: pts.length }), {
          seed,
          numRuns: 1,
        })[0]!;
        const a = rankPoints(pts, by).map((p) => p.index);
        const b = rankPoints(shuffled, by).map((p) => p.index);
        if (JSON.stringify(a) !== JSON.stringify(b)) return false;
        // Sorted in the metric's direction, nulls last, ties by index.
        for (let i = 1; i < a.length; i++) {
          const x = values[a[i - 1]!]!;
          const y = values[a[i]!]!;
          if (x === null && y !== null) return false;
          if (x !== null && y !== null) {
            const better = RANK_METRICS[by] === 'high' ? x > y : x < y;
            if (!better && !(x === y && a[i - 1]! < a[i]!)) return false;
          }
          if (x === null && y === null && a[i - 1]! > a[i]!) return false;
        }
        return true;
      },
    ),
    { numRuns: 200 },
  );
  t.equal(runs, 200);
  t.end();
});

void t.test('parseRankBy: the metric names, a usage error otherwise', (t) => {
  t.equal(parseRankBy('sortino'), 'sortino');
  t.throws(() => parseRankBy('sharpness'), {
    code: 'QLN_CLI_USAGE',
    message: /invalid --rank-by: "sharpness" \(allowed: sharpe, sortino, calmar/,
  });
  t.throws(() => parseRankBy('toString'), { code: 'QLN_CLI_USAGE' }, 'no prototype key');
  t.end();
});

function realReport(id: string, gain: number): BacktestReport {
  const p = new Portfolio({ initialCash: 10_000, sampleIntervalUs: 1_000_000 });
  const T0 = 1_765_000_000_000_000;
  p.mark('A', 100, T0);
  p.onFill({ signalId: 's1', sym: 'A', side: 'buy', qty: 1, px: 100, ts: T0 + 10 });
  p.mark('A', 100 + gain, T0 + 2_000_000);
  p.mark('A', 100 + gain / 2, T0 + 3_000_000);
  p.finish(T0 + 4_000_000);
  return buildReport(p.result(), { id, name: `<run ${id}>`, config: {}, codeVersion: 't' });
}

void t.test('text table, JSON and the self-contained page', (t) => {
  const axes = [parseSweep('threshold=1..2:1')];
  const points: SweepPointResult[] = [1, 2].map((v, i) => ({
    index: i,
    params: { threshold: v },
    report: realReport(`sw-x-${i}`, i === 0 ? 5 : 20),
    ticks: 10,
    signals: 2,
    approved: 1,
    fills: 1,
    ms: 1,
  }));
  const s: SweepResult = {
    id: 'sw-x',
    strategy: 'momentum',
    axes,
    params: { minIntervalUs: 5 },
    rankBy: 'pnl',
    points: rankPoints(points, 'pnl'),
    workers: 2,
    ms: 5,
  };
  const text = renderSweepText(s);
  const lines = text.split('\n');
  t.match(
    lines[0],
    /sweep sw-x: strategy momentum, 2 points \(threshold=1\.\.2:1\), fixed minIntervalUs=5, ranked by pnl/,
  );
  t.match(lines[2], /rank\s+point\s+threshold\s+sharpe/);
  t.match(lines[4], /^\s+1\s+1\s+2\s/, 'the better point (index 1) first');
  t.match(lines[5], /^\s+2\s+0\s+1\s/);
  t.match(renderSweepText(s, 1), /… 1 more \(--json for all\)/);
  const j = sweepJson(s) as { points: Array<{ rank: number; index: number; value: number }> };
  t.same(
    j.points.map((p) => [p.rank, p.index, p.value]),
    [
      [1, 1, 10],
      [2, 0, 2.5],
    ],
  );
  const page = renderSweepHtml(s);
  t.match(page, /<h2 id="sweep">Sweep sw-x: 2 points, ranked by pnl<\/h2>/);
  t.match(page, /<svg/, "the best point's curves");
  t.match(page, /&lt;run sw-x-1&gt;/, "the best point's report, escaped");
  const section = page.slice(page.indexOf('id="sweep"'));
  t.equal((section.match(/<tr/g) ?? []).length, 3, 'the grid table: a header and every point');
  t.equal(page.indexOf('</body>'), page.lastIndexOf('</body>'), 'one body');
  t.ok(page.indexOf('id="sweep"') < page.indexOf('</body>'), 'the section inside the body');
  t.notMatch(page, /https?:\/\/|<script|src=|href=|url\(/i, 'self-contained');
  t.end();
});
