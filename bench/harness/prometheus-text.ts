/**
 * A parsed `/metrics` scrape (Prometheus text exposition format 0.0.4):
 * `name{label="value",…} value [timestamp]` lines, `#` comments ignored.
 * Label values may hold escaped `\"`, `\\` and `\n`; values may be `NaN`,
 * `+Inf` and `-Inf`.
 */

/** One series of a scrape. */
export interface MetricSample {
  name: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

function parseValue(text: string): number {
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  const v = Number(text);
  return text === '' ? Number.NaN : v;
}

/** Parse `{a="1",b="x\"y"}` starting at `open` (the `{`); returns the labels and the index after `}`. */
function parseLabels(line: string, open: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = open + 1;
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++;
    if (i >= line.length) return { labels, end: -1 };
    if (line[i] === '}') return { labels, end: i + 1 };
    const eq = line.indexOf('=', i);
    if (eq < 0 || line[eq + 1] !== '"') return { labels, end: -1 };
    const key = line.slice(i, eq).trim();
    let value = '';
    let j = eq + 2;
    for (; j < line.length; j++) {
      const c = line[j];
      if (c === '\\') {
        const n = line[j + 1];
        value += n === 'n' ? '\n' : (n ?? '');
        j++;
      } else if (c === '"') {
        break;
      } else {
        value += c;
      }
    }
    if (j >= line.length) return { labels, end: -1 };
    labels[key] = value;
    i = j + 1;
  }
}

/** Every series of a scrape, in order. Lines that do not parse are skipped. */
export function parsePrometheusText(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    let name: string;
    let labels: Record<string, string> = {};
    let rest: string;
    if (brace > 0 && (space < 0 || brace < space)) {
      name = line.slice(0, brace);
      const parsed = parseLabels(line, brace);
      if (parsed.end < 0) continue;
      labels = parsed.labels;
      rest = line.slice(parsed.end).trim();
    } else {
      if (space < 0) continue;
      name = line.slice(0, space);
      rest = line.slice(space + 1).trim();
    }
    const valueText = rest.split(/\s+/)[0] ?? '';
    const value = parseValue(valueText);
    if (Number.isNaN(value) && valueText !== 'NaN') continue;
    out.push({ name, labels, value });
  }
  return out;
}

/** A scrape with lookups by name; a series that is absent reads as 0. */
export class MetricsSnapshot {
  readonly samples: readonly MetricSample[];

  constructor(samples: readonly MetricSample[]) {
    this.samples = samples;
  }

  static parse(text: string): MetricsSnapshot {
    return new MetricsSnapshot(parsePrometheusText(text));
  }

  /** True when any series of `name` is present. */
  has(name: string): boolean {
    return this.samples.some((s) => s.name === name);
  }

  /**
   * Sum of every series of `name` whose labels include `match` (all of
   * them by default); 0 when none is present.
   */
  sum(name: string, match: Readonly<Record<string, string>> = {}): number {
    let total = 0;
    for (const s of this.samples) {
      if (s.name !== name) continue;
      let ok = true;
      for (const [k, v] of Object.entries(match)) {
        if (s.labels[k] !== v) {
          ok = false;
          break;
        }
      }
      if (ok) total += s.value;
    }
    return total;
  }
}
