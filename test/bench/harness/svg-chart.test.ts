/**
 * Unit tests of the hand-written SVG chart: a well-formed XML document (tags
 * balanced, attributes quoted, text escaped), one group and one legend entry
 * per series, lines broken at missing points, log and linear axes with
 * sensible ticks, deterministic output.
 */
import t from 'tap';
import { compactNumber, escapeXml, lineChartSvg } from '../../../bench/harness/svg-chart.js';

/**
 * Minimal XML well-formedness check: every tag closes in order, attribute
 * values are quoted, no raw `<` or `&` outside tags/entities.
 */
function checkXml(text: string): string | null {
  const stack: string[] = [];
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let at = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const between = text.slice(at, m.index);
    if (/[<>]/.test(between)) return `stray bracket before ${m[0]}`;
    if (/&(?!(amp|lt|gt|quot|apos);)/.test(between)) return `raw & in ${between}`;
    at = m.index + m[0].length;
    const [, close, name, , self] = m;
    if (close === '/') {
      if (stack.pop() !== name) return `</${name}> does not close the open tag`;
    } else if (self !== '/') {
      stack.push(name!);
    }
  }
  if (text.slice(at).trim() !== '') return 'text after the root';
  return stack.length === 0 ? null : `unclosed <${stack.join('>, <')}>`;
}

const OPTIONS = {
  title: 'latency <kernel & relay>',
  xLabel: 'offered ticks/s',
  yLabel: 'µs',
  xScale: 'log' as const,
  yScale: 'log' as const,
  series: [
    {
      name: 'kernel p99',
      points: [
        [1000, 900],
        [2000, 1500],
        [10_000, 120_000],
      ] as [number, number][],
    },
    {
      name: 'kernel p50',
      points: [
        [1000, 300],
        [2000, Number.NaN],
        [10_000, 800],
      ] as [number, number][],
      dashed: true,
    },
    {
      name: 'relay "p99"',
      points: [
        [1000, 200],
        [2000, 210],
        [10_000, 300],
      ] as [number, number][],
    },
  ],
};

void t.test('well-formed SVG with every series and the legend', (t) => {
  const svg = lineChartSvg(OPTIONS);
  t.equal(checkXml(svg), null, 'well-formed');
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  t.match(svg, /<title>latency &lt;kernel &amp; relay&gt;<\/title>/, 'title escaped');
  for (const name of ['kernel p99', 'kernel p50', 'relay &quot;p99&quot;']) {
    t.match(svg, new RegExp(`data-series="${name}"`), `group of ${name}`);
    t.match(svg, new RegExp(`<text x="30" y="\\d+">${name}</text>`), `legend of ${name}`);
  }
  t.equal(
    svg.match(/<polyline /g)?.length,
    2,
    'kernel p50 is broken by its gap into single points: no line',
  );
  t.equal(svg.match(/<circle /g)?.length, 8, 'a marker per finite point');
  t.match(svg, /stroke-dasharray="6 4"/, 'p50 dashed');
  t.match(svg, />1k<\/text>/, 'x tick 1k');
  t.match(svg, />10k<\/text>/, 'x tick 10k');
  t.match(svg, />100k<\/text>/, 'y tick 100k');
  t.match(svg, /offered ticks\/s \(log\)/);
  t.equal(lineChartSvg(OPTIONS), svg, 'deterministic');
  t.end();
});

void t.test('linear axes and empty charts still render', (t) => {
  const linear = lineChartSvg({
    title: 'rss',
    xLabel: 's',
    yLabel: 'MiB',
    series: [
      {
        name: 'kernel',
        points: [
          [0, 300],
          [10, 305],
          [20, 311],
        ],
      },
    ],
  });
  t.equal(checkXml(linear), null);
  t.match(linear, />310<\/text>/, 'linear y ticks in 5s or 10s');
  t.equal(linear.match(/<polyline /g)?.length, 1);
  const empty = lineChartSvg({ title: 'none', xLabel: 'x', yLabel: 'y', series: [] });
  t.equal(checkXml(empty), null);
  const nonPositiveOnLog = lineChartSvg({
    title: 'log',
    xLabel: 'x',
    yLabel: 'y',
    yScale: 'log',
    series: [
      {
        name: 'a',
        points: [
          [1, 0],
          [2, -1],
        ],
      },
    ],
  });
  t.equal(checkXml(nonPositiveOnLog), null);
  t.notMatch(nonPositiveOnLog, /<circle /, 'nothing to draw on a log axis');
  t.end();
});

void t.test('helpers', (t) => {
  t.equal(escapeXml(`<a href="x">&'`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;');
  t.equal(compactNumber(1000), '1k');
  t.equal(compactNumber(2500), '2.5k');
  t.equal(compactNumber(1_200_000), '1.2M');
  t.equal(compactNumber(3e9), '3G');
  t.equal(compactNumber(0.25), '0.25');
  t.end();
});
