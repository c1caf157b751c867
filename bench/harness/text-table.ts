/**
 * Plain-text tables and number formats for the human report: columns padded
 * to their widest cell, numbers right-aligned, two spaces between columns.
 */

export type Align = 'left' | 'right';

/** A table with a header row and a dashed rule under it. */
export function formatTable(
  header: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  align: readonly Align[] = [],
): string {
  const widths = header.map((h, i) =>
    Math.max([...h].length, ...rows.map((r) => [...(r[i] ?? '')].length)),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => {
        const pad = ' '.repeat(Math.max(0, widths[i]! - [...c].length));
        return (align[i] ?? 'left') === 'right' ? pad + c : c + pad;
      })
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** 1000 → "1k", 2500 → "2.5k", 1200000 → "1.2M". */
export function fmtRate(r: number): string {
  if (!Number.isFinite(r)) return 'n/a';
  const short = (x: number): string => String(Number(x.toFixed(x >= 100 ? 0 : 1)));
  if (r >= 1e6) return `${short(r / 1e6)}M`;
  if (r >= 1e3) return `${short(r / 1e3)}k`;
  return String(Math.round(r));
}

/** µs with precision that suits the size; "n/a" when not finite. */
export function fmtUs(us: number): string {
  if (!Number.isFinite(us)) return 'n/a';
  const a = Math.abs(us);
  if (a >= 1000) return Math.round(us).toLocaleString('en-US');
  if (a >= 100) return us.toFixed(0);
  if (a >= 10) return us.toFixed(1);
  return us.toFixed(2);
}

/** A ratio as "2.31x"; "n/a" when not finite. */
export function fmtRatio(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}x` : 'n/a';
}

/** A count with thousands separators. */
export function fmtCount(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a';
}

/** A figure with `digits` decimals, "n/a" when not finite. */
export function fmtNum(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : 'n/a';
}
