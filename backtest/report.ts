import type { GroupResult, PortfolioResult, RoundTrip } from './portfolio.js';

/**
 * The backtest report: metrics of the whole run, of each account, strategy
 * and symbol, as JSON ({@link BacktestReport}), a plain-text table
 * ({@link renderTextReport}) and a self-contained HTML page
 * ({@link renderHtmlReport}: inline CSS and SVG, no script, no network).
 *
 * Definitions (P = periods per year = `yearUs / sampleIntervalUs`; the
 * returns r_i = (e_i − e_{i−1}) / |e_{i−1}| of the sampled equity e_0..e_n,
 * 0 where e_{i−1} = 0; the risk-free rate is 0):
 * - totalReturn = e_n / e_0 − 1; annualisedReturn = (e_n / e_0)^(yearUs / T) − 1
 *   with T = the time the samples span (null when T is under a day, yearUs / 365:
 *   compounding minutes to a year gives numbers like 1e89 % that say nothing;
 *   −1 when e_n ≤ 0).
 * - volatility = sd(r) · √P, sd with n − 1.
 * - sharpe = mean(r) / sd(r) · √P (null: fewer than 2 returns or sd = 0).
 * - sortino = mean(r) / √(Σ min(r, 0)² / n) · √P (null: no negative return).
 * - maxDrawdown = max_i (peak_i − e_i) / peak_i, a fraction ≥ 0 (peak_i the
 *   running maximum); maxDrawdownDurationUs = from that drawdown's peak to
 *   the first sample back at or above the peak (or the last sample, if it
 *   never recovered); longestDrawdownUs the same for the longest episode.
 * - calmar = annualisedReturn / maxDrawdown (null when maxDrawdown = 0).
 * - On round trips (flat to flat, net of fees): hitRate = wins / trips;
 *   profitFactor = Σ wins / |Σ losses| (null: no loss); expectancy = mean pnl.
 * - turnover = Σ |fill notional| / mean equity; exposure = time with an open
 *   position / time spanned; fees = Σ fees.
 * Metrics that are undefined are `null`, never NaN or Infinity (JSON has
 * neither).
 */

/** A Julian year of 365 days, in µs (crypto trades every day; pass 252 trading days' worth for equities). */
export const YEAR_US = 365 * 86_400 * 1e6;

/** The shortest span annualised, as a fraction of the year: a day. */
const MIN_ANNUALISED_FRACTION = 1 / 365;

/** Why `annual` and `calmar` are blank for a run shorter than a day (text and HTML reports). */
export function annualisationNote(
  report: Pick<BacktestReport, 'startTs' | 'endTs'> & {
    total: Pick<SeriesMetrics, 'annualisedReturn'>;
  },
): string | null {
  const span = report.endTs - report.startTs;
  const short = span > 0 && span < YEAR_US * MIN_ANNUALISED_FRACTION;
  return short && report.total.annualisedReturn === null
    ? `annual and calmar are blank: the run spans ${formatDuration(span)}, under a day (compounded to a year it would mean nothing)`
    : null;
}

/** Metrics of one equity series. */
export interface SeriesMetrics {
  totalReturn: number;
  annualisedReturn: number | null;
  volatility: number | null;
  sharpe: number | null;
  sortino: number | null;
  maxDrawdown: number;
  maxDrawdownDurationUs: number;
  longestDrawdownUs: number;
  calmar: number | null;
}

/** Metrics of a set of round trips. */
export interface TradeMetrics {
  trades: number;
  hitRate: number | null;
  profitFactor: number | null;
  expectancy: number | null;
}

/** Every metric of one group (or of the run). */
export interface BacktestMetrics extends SeriesMetrics, TradeMetrics {
  kind: GroupResult['kind'];
  name: string;
  /** Net PnL: realised + unrealised − fees. */
  pnl: number;
  realised: number;
  unrealised: number;
  fees: number;
  fills: number;
  turnoverNotional: number;
  turnover: number | null;
  exposure: number | null;
  /** False when the group's equity series was not kept: the series metrics are then from its end values only. */
  hasSeries: boolean;
}

/** The JSON report of one run. */
export interface BacktestReport {
  version: 1;
  /** Run id, name, config and code version, as the caller gives them. */
  meta: BacktestMeta;
  startTs: number;
  endTs: number;
  sampleIntervalUs: number;
  initialCash: number;
  total: BacktestMetrics;
  accounts: BacktestMetrics[];
  strategies: BacktestMetrics[];
  symbols: BacktestMetrics[];
  /** The run's equity curve and drawdown (fraction below the running peak) per sample. */
  curve: { ts: number[]; equity: number[]; drawdown: number[] };
}

export interface BacktestMeta {
  id: string;
  name: string;
  /** The configuration that made the run (stored as JSON with the results). */
  config: Readonly<Record<string, unknown>>;
  /** Code version (git commit or package version). */
  codeVersion: string;
}

export interface ReportOptions {
  /** Length of a year in µs for annualising (default {@link YEAR_US}). */
  yearUs: number;
}

/** Period returns of an equity series (see the file comment). */
export function periodReturns(equity: ArrayLike<number>): Float64Array {
  const n = Math.max(0, equity.length - 1);
  const r = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const prev = equity[i]!;
    r[i] = prev === 0 ? 0 : (equity[i + 1]! - prev) / Math.abs(prev);
  }
  return r;
}

function mean(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]!;
  return x.length === 0 ? 0 : s / x.length;
}

function sampleSd(x: ArrayLike<number>): number {
  if (x.length < 2) return 0;
  const m = mean(x);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i]! - m) ** 2;
  return Math.sqrt(s / (x.length - 1));
}

/** Sharpe ratio of period returns, annualised with `periodsPerYear` (risk-free 0). */
export function sharpeRatio(r: ArrayLike<number>, periodsPerYear: number): number | null {
  if (r.length < 2) return null;
  const sd = sampleSd(r);
  if (!(sd > 1e-15)) return null;
  return (mean(r) / sd) * Math.sqrt(periodsPerYear);
}

/** Sortino ratio: mean over the downside deviation (target 0, over all n returns), annualised. */
export function sortinoRatio(r: ArrayLike<number>, periodsPerYear: number): number | null {
  if (r.length === 0) return null;
  let s = 0;
  for (let i = 0; i < r.length; i++) {
    const v = r[i]!;
    if (v < 0) s += v * v;
  }
  const dd = Math.sqrt(s / r.length);
  if (!(dd > 1e-15)) return null;
  return (mean(r) / dd) * Math.sqrt(periodsPerYear);
}

/** Drawdown of each sample: (running peak − e) / running peak (0 while the peak is ≤ 0). */
export function drawdownSeries(equity: ArrayLike<number>): Float64Array {
  const d = new Float64Array(equity.length);
  let peak = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < equity.length; i++) {
    const e = equity[i]!;
    if (e > peak) peak = e;
    d[i] = peak > 0 ? (peak - e) / peak : 0;
  }
  return d;
}

/** Max drawdown, the duration of that drawdown, and the longest drawdown (µs). */
export function maxDrawdown(
  equity: ArrayLike<number>,
  ts: ArrayLike<number>,
): { maxDrawdown: number; durationUs: number; longestUs: number } {
  const n = equity.length;
  if (n === 0) return { maxDrawdown: 0, durationUs: 0, longestUs: 0 };
  let peak = equity[0]!;
  let peakTs = ts[0]!;
  let inDrawdown = false;
  let best = 0;
  let bestPeakTs = 0;
  // The deepest drawdown so far is in the current, not yet recovered, episode.
  let bestOpen = false;
  let durationUs = 0;
  let longestUs = 0;
  for (let i = 1; i < n; i++) {
    const e = equity[i]!;
    const t = ts[i]!;
    if (e >= peak) {
      if (inDrawdown) {
        longestUs = Math.max(longestUs, t - peakTs);
        if (bestOpen) durationUs = t - bestPeakTs;
        bestOpen = false;
        inDrawdown = false;
      }
      peak = e;
      peakTs = t;
      continue;
    }
    inDrawdown = true;
    const dd = peak > 0 ? (peak - e) / peak : 0;
    if (dd > best) {
      best = dd;
      bestPeakTs = peakTs;
      bestOpen = true;
    }
  }
  const last = ts[n - 1]!;
  if (inDrawdown) longestUs = Math.max(longestUs, last - peakTs);
  if (bestOpen) durationUs = last - bestPeakTs;
  return { maxDrawdown: best, durationUs, longestUs };
}

/** Every series metric of one equity curve (see the file comment). */
export function seriesMetrics(
  equity: ArrayLike<number>,
  ts: ArrayLike<number>,
  sampleIntervalUs: number,
  yearUs = YEAR_US,
): SeriesMetrics {
  const n = equity.length;
  const P = yearUs / sampleIntervalUs;
  const first = n > 0 ? equity[0]! : 0;
  const lastE = n > 0 ? equity[n - 1]! : 0;
  const totalReturn = first > 0 ? lastE / first - 1 : 0;
  const span = n > 1 ? ts[n - 1]! - ts[0]! : 0;
  let annualisedReturn: number | null = null;
  if (span > 0 && span >= yearUs * MIN_ANNUALISED_FRACTION && first > 0) {
    annualisedReturn = lastE <= 0 ? -1 : Math.pow(lastE / first, yearUs / span) - 1;
    if (!Number.isFinite(annualisedReturn)) annualisedReturn = null;
  }
  const r = periodReturns(equity);
  const sd = sampleSd(r);
  const dd = maxDrawdown(equity, ts);
  return {
    totalReturn,
    annualisedReturn,
    volatility: r.length >= 2 ? sd * Math.sqrt(P) : null,
    sharpe: sharpeRatio(r, P),
    sortino: sortinoRatio(r, P),
    maxDrawdown: dd.maxDrawdown,
    maxDrawdownDurationUs: dd.durationUs,
    longestDrawdownUs: dd.longestUs,
    calmar:
      annualisedReturn !== null && dd.maxDrawdown > 0 ? annualisedReturn / dd.maxDrawdown : null,
  };
}

/** Hit rate, profit factor and expectancy of round trips (net of fees). */
export function tradeMetrics(trips: readonly Pick<RoundTrip, 'pnl'>[]): TradeMetrics {
  const n = trips.length;
  if (n === 0) return { trades: 0, hitRate: null, profitFactor: null, expectancy: null };
  let wins = 0;
  let gain = 0;
  let loss = 0;
  let sum = 0;
  for (const t of trips) {
    sum += t.pnl;
    if (t.pnl > 0) {
      wins++;
      gain += t.pnl;
    } else if (t.pnl < 0) loss -= t.pnl;
  }
  return {
    trades: n,
    hitRate: wins / n,
    profitFactor: loss > 0 ? gain / loss : null,
    expectancy: sum / n,
  };
}

function groupMetrics(
  g: GroupResult,
  trips: readonly RoundTrip[],
  sampleTs: Float64Array,
  res: PortfolioResult,
  yearUs: number,
): BacktestMetrics {
  const pnl = g.realised + g.unrealised - g.fees;
  // Without a kept series, the curve is its start and end: still a return, a drawdown if it lost.
  const equity = g.equity ?? Float64Array.of(g.initial, g.initial + pnl);
  const ts = g.equity !== null ? sampleTs : Float64Array.of(res.startTs, res.endTs);
  const span = res.endTs - res.startTs;
  const meanEquity = mean(equity);
  return {
    kind: g.kind,
    name: g.name,
    ...seriesMetrics(equity, ts, res.sampleIntervalUs, yearUs),
    ...tradeMetrics(trips),
    pnl,
    realised: g.realised,
    unrealised: g.unrealised,
    fees: g.fees,
    fills: g.fills,
    turnoverNotional: g.turnoverNotional,
    turnover: meanEquity > 0 ? g.turnoverNotional / meanEquity : null,
    exposure: span > 0 ? g.exposureUs / span : null,
    hasSeries: g.equity !== null,
  };
}

/** The JSON report of a finished portfolio (call `portfolio.finish(ts)` first). */
export function buildReport(
  res: PortfolioResult,
  meta: BacktestMeta,
  options: Partial<ReportOptions> = {},
): BacktestReport {
  const yearUs = options.yearUs ?? YEAR_US;
  // Round trips by group, in one pass (not a filter per group: runs have many of both).
  const tripsBy = new Map<string, RoundTrip[]>();
  const add = (key: string, trip: RoundTrip): void => {
    const list = tripsBy.get(key);
    if (list === undefined) tripsBy.set(key, [trip]);
    else list.push(trip);
  };
  for (const trip of res.roundTrips) {
    add(`account\u0000${trip.account}`, trip);
    add(`symbol\u0000${trip.sym}`, trip);
    add(`strategy\u0000${trip.strategy}`, trip);
  }
  const of = (kind: GroupResult['kind']): BacktestMetrics[] =>
    res.groups
      .filter((g) => g.kind === kind)
      .map((g) =>
        groupMetrics(g, tripsBy.get(`${kind}\u0000${g.name}`) ?? [], res.sampleTs, res, yearUs),
      )
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const equity = res.total.equity ?? new Float64Array(0);
  return {
    version: 1,
    meta,
    startTs: res.startTs,
    endTs: res.endTs,
    sampleIntervalUs: res.sampleIntervalUs,
    initialCash: res.total.initial,
    total: groupMetrics(res.total, res.roundTrips, res.sampleTs, res, yearUs),
    accounts: of('account'),
    strategies: of('strategy'),
    symbols: of('symbol'),
    curve: {
      ts: Array.from(res.sampleTs),
      equity: Array.from(equity),
      drawdown: Array.from(drawdownSeries(equity)),
    },
  };
}

// ── rendering ─────────────────────────────────────────────────────────────

const pct = (v: number | null): string => (v === null ? '-' : `${(v * 100).toFixed(2)}%`);
const num = (v: number | null, digits = 2): string => (v === null ? '-' : v.toFixed(digits));

/** A duration in µs as `1d 02:03:04` / `02:03:04` / `1.234s`. */
export function formatDuration(us: number): string {
  if (us < 60e6) return `${(us / 1e6).toFixed(3)}s`;
  const s = Math.floor(us / 1e6);
  const d = Math.floor(s / 86_400);
  const hms = [Math.floor((s % 86_400) / 3600), Math.floor((s % 3600) / 60), s % 60]
    .map((v) => String(v).padStart(2, '0'))
    .join(':');
  return d > 0 ? `${d}d ${hms}` : hms;
}

/** The table's columns: header, value, right-aligned. */
const COLUMNS: readonly [string, (m: BacktestMetrics) => string][] = [
  ['group', (m) => (m.kind === 'total' ? 'TOTAL' : `${m.kind}:${m.name}`)],
  ['pnl', (m) => num(m.pnl)],
  ['return', (m) => pct(m.totalReturn)],
  ['annual', (m) => pct(m.annualisedReturn)],
  ['sharpe', (m) => num(m.sharpe)],
  ['sortino', (m) => num(m.sortino)],
  ['maxDD', (m) => pct(m.maxDrawdown)],
  ['DD time', (m) => formatDuration(m.maxDrawdownDurationUs)],
  ['calmar', (m) => num(m.calmar)],
  ['trades', (m) => String(m.trades)],
  ['hit', (m) => pct(m.hitRate)],
  ['PF', (m) => num(m.profitFactor)],
  ['expect.', (m) => num(m.expectancy)],
  ['turnover', (m) => num(m.turnover)],
  ['exposure', (m) => pct(m.exposure)],
  ['fees', (m) => num(m.fees)],
];

function rowsOf(report: BacktestReport): BacktestMetrics[] {
  return [report.total, ...report.accounts, ...report.strategies, ...report.symbols];
}

/** The report as an aligned plain-text table (ASCII only), one row per group, TOTAL first. */
export function renderTextReport(report: BacktestReport): string {
  const cells = [
    COLUMNS.map(([h]) => h),
    ...rowsOf(report).map((m) => COLUMNS.map(([, f]) => f(m))),
  ];
  const widths = COLUMNS.map((_, c) => Math.max(...cells.map((r) => r[c]!.length)));
  const line = (r: string[]): string =>
    r
      .map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!)))
      .join('  ')
      .trimEnd();
  const head = [
    `backtest ${report.meta.name} (${report.meta.id}), code ${report.meta.codeVersion}`,
    `from ${new Date(report.startTs / 1000).toISOString()} to ${new Date(report.endTs / 1000).toISOString()}, ` +
      `initial cash ${report.initialCash.toFixed(2)}, samples every ${formatDuration(report.sampleIntervalUs)}`,
    '',
  ];
  const body = cells.map(line);
  body.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  const note = annualisationNote(report);
  return [...head, ...body, ...(note === null ? [] : ['', note])].join('\n') + '\n';
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;',
  );
}

/**
 * At most `max` indexes of a series for a light SVG: all of them when short,
 * else the first and last plus, per bucket, the indexes of its minimum and
 * maximum in time order, so the peaks and the deepest drawdown stay on the
 * chart (a plain stride would skip a one-sample dip).
 */
export function thinIndexes(values: readonly number[], max: number): number[] {
  const n = values.length;
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  const buckets = Math.max(1, Math.floor((max - 2) / 2));
  const out: number[] = [0];
  for (let b = 0; b < buckets; b++) {
    const from = 1 + Math.floor((b * (n - 2)) / buckets);
    const to = 1 + Math.floor(((b + 1) * (n - 2)) / buckets);
    if (from >= to) continue;
    let lo = from;
    let hi = from;
    for (let i = from + 1; i < to; i++) {
      if (values[i]! < values[lo]!) lo = i;
      if (values[i]! > values[hi]!) hi = i;
    }
    if (lo === hi) out.push(lo);
    else out.push(Math.min(lo, hi), Math.max(lo, hi));
  }
  out.push(n - 1);
  return out;
}

/** An SVG polyline chart (area for drawdown), values scaled to the box. */
function svgChart(
  ts: readonly number[],
  values: readonly number[],
  opts: {
    title: string;
    width: number;
    height: number;
    color: string;
    area: boolean;
    format: (v: number) => string;
  },
): string {
  const { width: W, height: H } = opts;
  const pad = { l: 70, r: 10, t: 22, b: 20 };
  const idx = thinIndexes(values, 2000);
  if (idx.length === 0) {
    return `<svg width="${W}" height="${H}" role="img"><text x="10" y="20">${escapeHtml(opts.title)}: no data</text></svg>`;
  }
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const i of idx) {
    lo = Math.min(lo, values[i]!);
    hi = Math.max(hi, values[i]!);
  }
  if (hi === lo) {
    hi += Math.abs(hi) * 0.01 || 1;
    lo -= Math.abs(lo) * 0.01 || 1;
  }
  const t0 = ts[idx[0]!]!;
  const t1 = ts[idx[idx.length - 1]!]!;
  const x = (t: number): number =>
    pad.l + (t1 === t0 ? 0 : ((t - t0) / (t1 - t0)) * (W - pad.l - pad.r));
  const y = (v: number): number => pad.t + ((hi - v) / (hi - lo)) * (H - pad.t - pad.b);
  const pts = idx.map((i) => `${x(ts[i]!).toFixed(1)},${y(values[i]!).toFixed(1)}`).join(' ');
  const shape = opts.area
    ? `<polygon fill="${opts.color}" fill-opacity="0.35" stroke="${opts.color}" points="${x(t0).toFixed(1)},${y(Math.max(lo, Math.min(hi, 0))).toFixed(1)} ${pts} ${x(t1).toFixed(1)},${y(Math.max(lo, Math.min(hi, 0))).toFixed(1)}"/>`
    : `<polyline fill="none" stroke="${opts.color}" stroke-width="1.5" points="${pts}"/>`;
  return [
    `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(opts.title)}">`,
    `<text x="${pad.l}" y="14" class="t">${escapeHtml(opts.title)}</text>`,
    `<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${H - pad.b}" class="ax"/>`,
    `<line x1="${pad.l}" y1="${H - pad.b}" x2="${W - pad.r}" y2="${H - pad.b}" class="ax"/>`,
    `<text x="${pad.l - 4}" y="${pad.t + 8}" class="l">${escapeHtml(opts.format(hi))}</text>`,
    `<text x="${pad.l - 4}" y="${H - pad.b}" class="l">${escapeHtml(opts.format(lo))}</text>`,
    `<text x="${pad.l}" y="${H - 4}" class="d">${new Date(t0 / 1000).toISOString()}</text>`,
    `<text x="${W - pad.r}" y="${H - 4}" class="d e">${new Date(t1 / 1000).toISOString()}</text>`,
    shape,
    '</svg>',
  ].join('');
}

/**
 * A self-contained HTML page: inline CSS, the equity curve and drawdown as
 * inline SVG, the metrics table. No script and no external reference at all
 * (no link, image or font from anywhere), so it opens offline and can be
 * mailed or archived as one file.
 */
export function renderHtmlReport(report: BacktestReport): string {
  const { ts, equity, drawdown } = report.curve;
  const eqSvg = svgChart(ts, equity, {
    title: 'Equity',
    width: 960,
    height: 280,
    color: '#1f6feb',
    area: false,
    format: (v) => v.toFixed(0),
  });
  const ddSvg = svgChart(
    ts,
    drawdown.map((d) => -d),
    {
      title: 'Drawdown',
      width: 960,
      height: 160,
      color: '#d1242f',
      area: true,
      format: (v) => pct(v),
    },
  );
  const head = COLUMNS.map(([h]) => `<th>${escapeHtml(h)}</th>`).join('');
  const rows = rowsOf(report)
    .map(
      (m) =>
        `<tr class="${m.kind}">${COLUMNS.map(([, f]) => `<td>${escapeHtml(f(m))}</td>`).join('')}</tr>`,
    )
    .join('\n');
  const title = `Backtest ${escapeHtml(report.meta.name)}`;
  const note = annualisationNote(report);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${title}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1f2328;background:#fff}
h1{font-size:20px;margin:0 0 4px}
p.meta{color:#59636e;margin:0 0 16px}
svg{display:block;margin:8px 0}
svg .ax{stroke:#8c959f}
svg text{font:11px monospace;fill:#59636e}
svg text.t{font-weight:bold;fill:#1f2328}
svg text.l{text-anchor:end}
svg text.e{text-anchor:end}
table{border-collapse:collapse;font:12px monospace;margin-top:16px}
th,td{padding:3px 8px;text-align:right;border-bottom:1px solid #d0d7de}
th:first-child,td:first-child{text-align:left}
tr.total{font-weight:bold;background:#f6f8fa}
</style>
</head>
<body>
<h1>${title}</h1>
<p class="meta">run ${escapeHtml(report.meta.id)} · code ${escapeHtml(report.meta.codeVersion)} · ${escapeHtml(new Date(report.startTs / 1000).toISOString())} to ${escapeHtml(new Date(report.endTs / 1000).toISOString())} · initial cash ${escapeHtml(report.initialCash.toFixed(2))} · sampled every ${escapeHtml(formatDuration(report.sampleIntervalUs))}</p>
${eqSvg}
${ddSvg}
<table>
<thead><tr>${head}</tr></thead>
<tbody>
${rows}
</tbody>
</table>
${note === null ? '' : `<p class="meta">${escapeHtml(note)}</p>\n`}</body>
</html>
`;
}
