/**
 * Ranking and rendering of a sweep (backtest/sweep.ts): the grid's points
 * ranked by one metric of their TOTAL row, as a terminal table, as JSON, and
 * as a section of the best point's self-contained HTML page.
 *
 * Ranking: points with the metric defined (not `null`) first, best first
 * (higher is better for returns and ratios, lower for drawdown, volatility
 * and fees), then the points where it is `null` (a Sharpe with no variance);
 * ties, `null`s included, in grid-index order. The index as the last key
 * makes the ranking a total order, the same whatever order the workers
 * finished in.
 */
import { ErrorCodes, QilinError } from '../kernel/errors.js';
import { formatDuration, renderHtmlReport, type BacktestMetrics } from './report.js';
import type { SweepPointResult, SweepResult } from './sweep.js';

/** Metrics a sweep can be ranked by, and whether higher or lower is better. */
export const RANK_METRICS = {
  sharpe: 'high',
  sortino: 'high',
  calmar: 'high',
  totalReturn: 'high',
  annualisedReturn: 'high',
  pnl: 'high',
  hitRate: 'high',
  profitFactor: 'high',
  expectancy: 'high',
  trades: 'high',
  maxDrawdown: 'low',
  maxDrawdownDurationUs: 'low',
  volatility: 'low',
  fees: 'low',
} as const satisfies Partial<Record<keyof BacktestMetrics, 'high' | 'low'>>;

export type RankMetric = keyof typeof RANK_METRICS;

/** `--rank-by`: a name of {@link RANK_METRICS}; QLN_CLI_USAGE otherwise. */
export function parseRankBy(name: string): RankMetric {
  if (!Object.hasOwn(RANK_METRICS, name)) {
    throw new QilinError(
      ErrorCodes.CLI_USAGE,
      `invalid --rank-by: ${JSON.stringify(name)} (allowed: ${Object.keys(RANK_METRICS).join(', ')})`,
      { details: { option: '--rank-by', value: name } },
    );
  }
  return name as RankMetric;
}

/** The point's value of `by` (TOTAL row), or null when undefined. */
export function rankValue(p: Pick<SweepPointResult, 'report'>, by: RankMetric): number | null {
  const v = p.report.total[by];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** A new array, best first (see the file comment). */
export function rankPoints<P extends Pick<SweepPointResult, 'index' | 'report'>>(
  points: readonly P[],
  by: RankMetric,
): P[] {
  const sign = RANK_METRICS[by] === 'high' ? -1 : 1;
  return [...points].sort((a, b) => {
    const va = rankValue(a, by);
    const vb = rankValue(b, by);
    if (va !== null && vb !== null && va !== vb) return sign * (va - vb);
    if (va === null && vb !== null) return 1;
    if (va !== null && vb === null) return -1;
    return a.index - b.index;
  });
}

const fmt = (v: number | null, digits = 4): string => (v === null ? '-' : v.toFixed(digits));
const pct = (v: number | null): string => (v === null ? '-' : `${(v * 100).toFixed(2)}%`);

/** Columns of the ranked table after the rank, the index and the swept keys. */
const COLUMNS: readonly [string, (m: BacktestMetrics) => string][] = [
  ['sharpe', (m) => fmt(m.sharpe, 2)],
  ['sortino', (m) => fmt(m.sortino, 2)],
  ['return', (m) => pct(m.totalReturn)],
  ['maxDD', (m) => pct(m.maxDrawdown)],
  ['DD time', (m) => formatDuration(m.maxDrawdownDurationUs)],
  ['calmar', (m) => fmt(m.calmar, 2)],
  ['trades', (m) => String(m.trades)],
  ['hit', (m) => pct(m.hitRate)],
  ['PF', (m) => fmt(m.profitFactor, 2)],
  ['pnl', (m) => fmt(m.pnl, 2)],
  ['fees', (m) => fmt(m.fees, 2)],
];

/** Header and rows of the ranked table (strings), at most `limit` points. */
function tableCells(s: SweepResult, limit: number): string[][] {
  const keys = s.axes.map((a) => a.key);
  const head = ['rank', 'point', ...keys, ...COLUMNS.map(([h]) => h)];
  const rows = s.points
    .slice(0, limit)
    .map((p, r) => [
      String(r + 1),
      String(p.index),
      ...keys.map((k) => String(p.params[k])),
      ...COLUMNS.map(([, f]) => f(p.report.total)),
    ]);
  return [head, ...rows];
}

/** The ranked grid as an aligned ASCII table, best first, at most `limit` rows (default 20). */
export function renderSweepText(s: SweepResult, limit = 20): string {
  const cells = tableCells(s, limit);
  const widths = cells[0]!.map((_, c) => Math.max(...cells.map((r) => r[c]!.length)));
  const line = (r: string[]): string =>
    r
      .map((v, c) => v.padStart(widths[c]!))
      .join('  ')
      .trimEnd();
  const fixed = Object.keys(s.params).length > 0 ? `, fixed ${describe(s.params)}` : '';
  const grid = s.axes.map((a) => `${a.key}=${a.from}..${a.to}:${a.step}`).join(' × ');
  const out = [
    `sweep ${s.id}: strategy ${s.strategy}, ${s.points.length} points (${grid})${fixed}, ranked by ${s.rankBy}`,
    '',
    line(cells[0]!),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...cells.slice(1).map(line),
  ];
  if (s.points.length > limit) out.push(`… ${s.points.length - limit} more (--json for all)`);
  return out.join('\n') + '\n';
}

const describe = (p: Readonly<Record<string, unknown>>): string =>
  Object.entries(p)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');

/** The sweep as JSON-ready data: ranked points with their TOTAL metrics (no curves, no trades). */
export function sweepJson(s: SweepResult): Record<string, unknown> {
  return {
    id: s.id,
    strategy: s.strategy,
    rankBy: s.rankBy,
    axes: s.axes,
    params: s.params,
    workers: s.workers,
    points: s.points.map((p, r) => ({
      rank: r + 1,
      index: p.index,
      id: p.report.meta.id,
      params: p.params,
      value: rankValue(p, s.rankBy),
      total: p.report.total,
      signals: p.signals,
      approved: p.approved,
      fills: p.fills,
    })),
  };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;',
  );
}

/**
 * One self-contained page: the best point's report (equity, drawdown, its
 * table: report.ts) followed by the ranked grid, every point (no script, no
 * external reference, like the single-run page).
 */
export function renderSweepHtml(s: SweepResult): string {
  const best = s.points[0];
  if (best === undefined) throw new Error('renderSweepHtml: a sweep with no point');
  const cells = tableCells(s, s.points.length);
  const head = cells[0]!.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const rows = cells
    .slice(1)
    .map(
      (r, i) =>
        `<tr${i === 0 ? ' class="total"' : ''}>${r.map((v) => `<td>${escapeHtml(v)}</td>`).join('')}</tr>`,
    )
    .join('\n');
  const grid = s.axes.map((a) => `${a.key}=${a.from}..${a.to}:${a.step}`).join(' × ');
  const section = `<h2 id="sweep">Sweep ${escapeHtml(s.id)}: ${s.points.length} points, ranked by ${escapeHtml(s.rankBy)}</h2>
<p class="meta">strategy ${escapeHtml(s.strategy)} · grid ${escapeHtml(grid)}${Object.keys(s.params).length > 0 ? ` · fixed ${escapeHtml(describe(s.params))}` : ''} · the page above is the best point (${escapeHtml(best.report.meta.id)})</p>
<table class="sweep">
<thead><tr>${head}</tr></thead>
<tbody>
${rows}
</tbody>
</table>
`;
  const page = renderHtmlReport(best.report);
  const end = page.lastIndexOf('</body>');
  return `${page.slice(0, end)}${section}${page.slice(end)}`;
}
