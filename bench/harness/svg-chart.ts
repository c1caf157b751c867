/**
 * A hand-written SVG line chart (no chart library, nothing fetched): axes with
 * "nice" ticks on linear or log scales, one polyline plus markers per series,
 * a legend, and a title. Points whose x or y is not finite (or not positive
 * on a log axis) break the line. Deterministic: the same input gives the
 * same bytes, so charts diff cleanly in git.
 */

/** One line of the chart. */
export interface ChartSeries {
  name: string;
  points: ReadonlyArray<readonly [number, number]>;
  /** Draw dashed (e.g. p50 beside a solid p99). */
  dashed?: boolean;
}

/** What to draw. */
export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly ChartSeries[];
  xScale?: 'linear' | 'log';
  yScale?: 'linear' | 'log';
  width?: number;
  height?: number;
  /** Tick label text; default: compact numbers (1k, 2.5M). */
  formatX?: (x: number) => string;
  formatY?: (y: number) => string;
}

const PALETTE = [
  '#d62728',
  '#1f77b4',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#bcbd22',
  '#7f7f7f',
];

/** Escape text for SVG content and attribute values. */
export function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** 1234 → "1.23k", 2500000 → "2.5M", 0.25 → "0.25". */
export function compactNumber(v: number): string {
  const a = Math.abs(v);
  const trim = (x: number): string => String(Number(x.toPrecision(3)));
  if (a >= 1e9) return `${trim(v / 1e9)}G`;
  if (a >= 1e6) return `${trim(v / 1e6)}M`;
  if (a >= 1e3) return `${trim(v / 1e3)}k`;
  return trim(v);
}

/** Ticks 1, 2, 5 × 10^k covering [lo, hi], about `count` of them. */
function linearTicks(lo: number, hi: number, count = 6): number[] {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    out.push(Number(t.toPrecision(12)));
  }
  return out;
}

/** Powers of ten within [lo, hi] (with 2× and 5× when the range is under three decades). */
function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  const dense = Math.log10(hi / lo) < 3;
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of dense ? [1, 2, 5] : [1]) {
      const t = m * 10 ** e;
      if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9)) out.push(Number(t.toPrecision(12)));
    }
  }
  return out;
}

interface Axis {
  lo: number;
  hi: number;
  log: boolean;
}

function axisFor(values: number[], log: boolean): Axis {
  const v = values.filter((x) => Number.isFinite(x) && (!log || x > 0));
  if (v.length === 0) return { lo: log ? 1 : 0, hi: log ? 10 : 1, log };
  let lo = Math.min(...v);
  let hi = Math.max(...v);
  if (log) {
    lo = 10 ** Math.floor(Math.log10(lo));
    hi = 10 ** Math.ceil(Math.log10(hi));
    if (hi === lo) hi = lo * 10;
  } else {
    if (lo > 0 && lo < hi * 0.5) lo = 0;
    if (hi === lo) hi = lo + (lo === 0 ? 1 : Math.abs(lo));
    const t = linearTicks(lo, hi);
    const step = t.length > 1 ? t[1]! - t[0]! : hi - lo;
    hi = Math.ceil(hi / step) * step;
    lo = Math.floor(lo / step) * step;
  }
  return { lo, hi, log };
}

function position(a: Axis, v: number): number {
  if (a.log) return (Math.log10(v) - Math.log10(a.lo)) / (Math.log10(a.hi) - Math.log10(a.lo));
  return (v - a.lo) / (a.hi - a.lo);
}

const fmt = (n: number): string => n.toFixed(1);

/** The chart as a standalone SVG document. */
export function lineChartSvg(o: LineChartOptions): string {
  const width = o.width ?? 880;
  const height = o.height ?? 480;
  const left = 80;
  const right = 210;
  const top = 48;
  const bottom = 64;
  const pw = width - left - right;
  const ph = height - top - bottom;
  const xLog = o.xScale === 'log';
  const yLog = o.yScale === 'log';
  const usable = (x: number, y: number): boolean =>
    Number.isFinite(x) && Number.isFinite(y) && (!xLog || x > 0) && (!yLog || y > 0);
  const all = o.series.flatMap((s) => s.points.filter(([x, y]) => usable(x, y)));
  const xa = axisFor(
    all.map(([x]) => x),
    xLog,
  );
  const ya = axisFor(
    all.map(([, y]) => y),
    yLog,
  );
  const px = (x: number): number => left + position(xa, x) * pw;
  const py = (y: number): number => top + ph - position(ya, y) * ph;
  const fx = o.formatX ?? compactNumber;
  const fy = o.formatY ?? compactNumber;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<title>${escapeXml(o.title)}</title>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(
    `<text x="${left}" y="24" font-size="15" font-weight="bold">${escapeXml(o.title)}</text>`,
  );
  // Grid and tick labels.
  out.push('<g class="grid" stroke="#e0e0e0" stroke-width="1">');
  const xt = xa.log ? logTicks(xa.lo, xa.hi) : linearTicks(xa.lo, xa.hi);
  const yt = ya.log ? logTicks(ya.lo, ya.hi) : linearTicks(ya.lo, ya.hi);
  for (const t of xt) {
    out.push(`<line x1="${fmt(px(t))}" y1="${top}" x2="${fmt(px(t))}" y2="${top + ph}"/>`);
  }
  for (const t of yt) {
    out.push(`<line x1="${left}" y1="${fmt(py(t))}" x2="${left + pw}" y2="${fmt(py(t))}"/>`);
  }
  out.push('</g>');
  out.push('<g class="ticks" fill="#333333">');
  for (const t of xt) {
    out.push(
      `<text x="${fmt(px(t))}" y="${top + ph + 18}" text-anchor="middle">${escapeXml(fx(t))}</text>`,
    );
  }
  for (const t of yt) {
    out.push(
      `<text x="${left - 8}" y="${fmt(py(t) + 4)}" text-anchor="end">${escapeXml(fy(t))}</text>`,
    );
  }
  out.push('</g>');
  // Axes and their labels.
  out.push(
    `<path d="M${left},${top} V${top + ph} H${left + pw}" fill="none" stroke="#333333" stroke-width="1.5"/>`,
  );
  out.push(
    `<text x="${left + pw / 2}" y="${height - 18}" text-anchor="middle">${escapeXml(o.xLabel)}${xLog ? ' (log)' : ''}</text>`,
  );
  out.push(
    `<text x="18" y="${top + ph / 2}" text-anchor="middle" transform="rotate(-90 18 ${top + ph / 2})">${escapeXml(o.yLabel)}${yLog ? ' (log)' : ''}</text>`,
  );
  // Series.
  o.series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const dash = s.dashed === true ? ' stroke-dasharray="6 4"' : '';
    out.push(`<g class="series" data-series="${escapeXml(s.name)}">`);
    let run: string[] = [];
    const flush = (): void => {
      if (run.length > 1) {
        out.push(
          `<polyline points="${run.join(' ')}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`,
        );
      }
      run = [];
    };
    for (const [x, y] of s.points) {
      if (!usable(x, y)) {
        flush();
        continue;
      }
      run.push(`${fmt(px(x))},${fmt(py(y))}`);
      out.push(
        `<circle cx="${fmt(px(x))}" cy="${fmt(py(y))}" r="3" fill="${color}"><title>${escapeXml(`${s.name}: ${fx(x)}, ${fy(y)}`)}</title></circle>`,
      );
    }
    flush();
    out.push('</g>');
  });
  // Legend.
  out.push(`<g class="legend" transform="translate(${left + pw + 16},${top})">`);
  o.series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const dash = s.dashed === true ? ' stroke-dasharray="6 4"' : '';
    const y = i * 20;
    out.push(
      `<line x1="0" y1="${y}" x2="24" y2="${y}" stroke="${color}" stroke-width="2"${dash}/>`,
    );
    out.push(`<text x="30" y="${y + 4}">${escapeXml(s.name)}</text>`);
  });
  out.push('</g>');
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
