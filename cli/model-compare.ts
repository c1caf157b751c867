import { invalidArgument } from '../kernel/errors.js';

/** One version's figures in a comparison. */
export interface VersionFigures {
  version: string;
  role: 'live' | 'shadow';
  /** Predictions stored in the window. */
  rows: number;
  /** Of them, with a side (|score| > threshold) and a realised move after the horizon. */
  decided: number;
  /** Share of decided predictions whose side matched the realised move (null: none decided). */
  hitRate: number | null;
}

/** `qilin model compare`: the live and shadow versions over the same trades. */
export interface ModelComparison {
  name: string;
  sinceUs: number;
  horizonMs: number;
  threshold: number;
  versions: VersionFigures[];
  /** Trades both the live and the shadow version scored. */
  paired: number;
  /** Share of them where both stood for the same side (null: none paired). */
  agreement: number | null;
}

export interface CompareOptions {
  name: string;
  /** Predictions from this time on, µs since the epoch. */
  sinceUs: number;
  /** The realised move: the symbol's mid this long after the prediction, ms. */
  horizonMs: number;
  /** The strategy's threshold: a score beyond ±threshold stands for a side. */
  threshold: number;
  /** Most rows read. */
  limit?: number;
}

interface Row {
  sym: string;
  ts_us: number | string;
  src_seq: number | string;
  v: string;
  role: string;
  score: number;
  mid: number;
}

const side = (s: number, thr: number): number => (s > thr ? 1 : s < -thr ? -1 : 0);

/**
 * Compare the versions of model `name` on stored predictions: hit rate of
 * each version against the realised move of the symbol's mid after
 * `horizonMs` (the mid of the first live prediction at least that much
 * later), and the agreement of the shadow with the live version on the
 * trades both scored (paired by symbol and source sequence). `query` runs a
 * SELECT on the store (rows as JSON objects).
 */
export async function compareModels(
  query: (sql: string) => Promise<Array<Record<string, unknown>>>,
  db: string,
  o: CompareOptions,
): Promise<ModelComparison> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(o.name)) {
    invalidArgument('name', o.name, 'a model name [A-Za-z0-9][A-Za-z0-9_.-]{0,63}');
  }
  if (!(o.horizonMs > 0)) invalidArgument('horizonMs', o.horizonMs, 'a number of ms > 0');
  const limit = o.limit ?? 1_000_000;
  const rows = (await query(
    `SELECT sym, ts_us, src_seq, model_version AS v, model_role AS role, score, ` +
      `visitParamExtractFloat(features, 'mid') AS mid FROM ${db}.predictions ` +
      `WHERE model = '${o.name}' AND ts_us >= ${Math.floor(o.sinceUs)} ORDER BY sym, ts_us LIMIT ${limit}`,
  )) as unknown as Row[];
  const horizonUs = o.horizonMs * 1000;
  const figures = new Map<string, VersionFigures & { hits: number }>();
  const fig = (v: string, role: 'live' | 'shadow'): VersionFigures & { hits: number } => {
    const key = `${role}:${v}`;
    let f = figures.get(key);
    if (f === undefined) {
      f = { version: v, role, rows: 0, decided: 0, hitRate: null, hits: 0 };
      figures.set(key, f);
    }
    return f;
  };
  let paired = 0;
  let agree = 0;
  // Per symbol (rows are ordered by symbol, then time).
  for (let i = 0; i < rows.length;) {
    let j = i;
    while (j < rows.length && rows[j]!.sym === rows[i]!.sym) j++;
    const live = rows.slice(i, j).filter((r) => r.role !== 'shadow');
    const shadow = new Map<string, Row>();
    for (const r of rows.slice(i, j)) if (r.role === 'shadow') shadow.set(String(r.src_seq), r);
    let k = 0;
    for (let a = 0; a < live.length; a++) {
      const r = live[a]!;
      const ts = Number(r.ts_us);
      if (k <= a) k = a + 1;
      while (k < live.length && Number(live[k]!.ts_us) < ts + horizonUs) k++;
      const moved = k < live.length ? Math.sign(live[k]!.mid - r.mid) : 0;
      const lf = fig(r.v, 'live');
      lf.rows++;
      const ls = side(r.score, o.threshold);
      if (moved !== 0 && ls !== 0) {
        lf.decided++;
        if (ls === moved) lf.hits++;
      }
      const s = shadow.get(String(r.src_seq));
      if (s === undefined) continue;
      const sf = fig(s.v, 'shadow');
      sf.rows++;
      const ss = side(s.score, o.threshold);
      paired++;
      if (ss === ls) agree++;
      if (moved !== 0 && ss !== 0) {
        sf.decided++;
        if (ss === moved) sf.hits++;
      }
    }
    i = j;
  }
  const versions = [...figures.values()].map(({ hits, ...f }) => ({
    ...f,
    hitRate: f.decided === 0 ? null : hits / f.decided,
  }));
  return {
    name: o.name,
    sinceUs: o.sinceUs,
    horizonMs: o.horizonMs,
    threshold: o.threshold,
    versions,
    paired,
    agreement: paired === 0 ? null : agree / paired,
  };
}

/** The comparison as a terminal table. */
export function formatComparison(c: ModelComparison): string {
  const pct = (x: number | null): string => (x === null ? '—' : `${(x * 100).toFixed(1)}%`);
  const lines = [
    `model ${c.name}: hit rate against the mid ${c.horizonMs} ms later (sides beyond ±${c.threshold})`,
    'role     version        predictions   decided   hit rate',
    ...c.versions.map(
      (v) =>
        `${v.role.padEnd(8)} ${v.version.padEnd(14)} ${String(v.rows).padStart(11)}   ${String(v.decided).padStart(7)}   ${pct(v.hitRate).padStart(8)}`,
    ),
    `shadow vs live: ${c.paired} trades scored by both, same side on ${pct(c.agreement)}`,
  ];
  return `${lines.join('\n')}\n`;
}
