/**
 * Qilin live dashboard: one page, the public WebSocket protocol only.
 *
 * Frames update plain objects in O(1) (no DOM work per frame); a render loop
 * draws what changed a few times a second, so 1,000 symbols × 10 predictions
 * a second never freeze the page. The socket reconnects by itself with
 * back-off and re-subscribes; the snapshot the server sends on subscribe
 * refills the view.
 */
import type uPlotType from 'uplot/dist/uPlot';

type UPlotCtor = typeof uPlotType;
/** Served by the kernel from the npm package (no CDN); typed by its d.ts above. */
const UPLOT_URL: string = '/dashboard/vendor/uPlot.esm.js';
const { default: uPlot } = (await import(UPLOT_URL)) as { default: UPlotCtor };

// ── Message shapes (docs/api/asyncapi.yaml) ─────────────────────────────

interface Src {
  seq: number;
  ts: number;
}
interface Lat {
  recv: number;
}
interface Model {
  name: string;
  version: string;
}
interface SignalData {
  id: string;
  sym: string;
  ts: number;
  side: 'buy' | 'sell' | 'flat';
  strength: number;
  refPx: number;
  model?: Model;
  quality?: { score: number };
  lat?: Lat;
}
interface PredictionData {
  sym: string;
  ts: number;
  score: number;
  model?: Model;
  features?: Record<string, number | null>;
  lat?: Lat;
  src?: Src;
}
interface QualityData {
  sym: string;
  ts: number;
  kind: string;
  score: number;
  issues: string[];
}
interface StatusData {
  ts: number;
  state: string;
  breaker: string;
  killed: boolean;
  ticksReceived: number;
  ticksPerSec: number;
  symbols: number;
  wsClients: number;
  store: { up: boolean; lagMs: number; spilledRows: number };
  degraded?: string[];
  model?: Model;
  latencyUs?: { n: number; p50: number | null; p90: number | null; p99: number | null };
  workers?: Array<{ shard: number; alive: boolean; restarts: number }>;
}
type ServerFrame =
  | { topic: string; data: unknown }
  | { type: 'subscribed' | 'unsubscribed'; topics: string[] }
  | { type: 'pong' }
  | { type: 'error'; code: string; message: string };

// ── State ───────────────────────────────────────────────────────────────

/** Points kept per symbol for its chart. */
const HISTORY = 600;
const TABLE_RENDER_MS = 500;
const CHART_RENDER_MS = 250;
const STALE_STATUS_MS = 3000;
const TOPICS = ['status', 'signal/*', 'prediction/*', 'quality/*'] as const;

/** A fixed-size ring of chart points for one symbol. */
class History {
  readonly t = new Float64Array(HISTORY);
  readonly px = new Float64Array(HISTORY);
  readonly score = new Float64Array(HISTORY);
  readonly quality = new Float64Array(HISTORY);
  /** 1 buy signal, -1 sell, 0 none. */
  readonly mark = new Int8Array(HISTORY);
  n = 0;
  private head = 0;

  push(t: number, px: number, score: number, quality: number, mark: number): void {
    const i = this.head;
    this.t[i] = t;
    this.px[i] = px;
    this.score[i] = score;
    this.quality[i] = quality;
    this.mark[i] = mark;
    this.head = (i + 1) % HISTORY;
    if (this.n < HISTORY) this.n++;
  }

  /** uPlot's aligned data, oldest first; NaN shows as a gap, null hides a point. */
  aligned(): uPlotType.AlignedData {
    const n = this.n;
    const xs: number[] = new Array<number>(n);
    const px: Array<number | null> = new Array<number | null>(n);
    const sc: Array<number | null> = new Array<number | null>(n);
    const q: Array<number | null> = new Array<number | null>(n);
    const buy: Array<number | null> = new Array<number | null>(n);
    const sell: Array<number | null> = new Array<number | null>(n);
    const start = (this.head - n + HISTORY) % HISTORY;
    let last = -Infinity;
    for (let k = 0; k < n; k++) {
      const i = (start + k) % HISTORY;
      // uPlot needs ascending x: a late frame is drawn at the latest time seen.
      last = Math.max(last, this.t[i]!);
      xs[k] = last;
      const p = this.px[i]!;
      px[k] = Number.isFinite(p) ? p : null;
      sc[k] = Number.isFinite(this.score[i]!) ? this.score[i]! : null;
      q[k] = Number.isFinite(this.quality[i]!) ? this.quality[i]! : null;
      buy[k] = this.mark[i] === 1 ? p : null;
      sell[k] = this.mark[i] === -1 ? p : null;
    }
    return [xs, px, sc, q, buy, sell];
  }
}

interface SymbolView {
  sym: string;
  mid: number;
  score: number;
  side: string;
  strength: number;
  signalAt: number;
  quality: number;
  issues: string;
  history: History;
  dirty: boolean;
  row: HTMLTableRowElement | undefined;
  cells: HTMLTableCellElement[];
  texts: string[];
}

/** Latency (µs) from the kernel receiving a tick to this page receiving the frame it caused. */
class ClientLatency {
  private readonly ring = new Float64Array(2048);
  private n = 0;
  private i = 0;
  record(us: number): void {
    if (!(us >= 0) || !Number.isFinite(us)) return;
    this.ring[this.i] = us;
    this.i = (this.i + 1) % this.ring.length;
    if (this.n < this.ring.length) this.n++;
  }
  percentiles(): { n: number; p50: number; p99: number } | undefined {
    if (this.n === 0) return undefined;
    const s = this.ring.slice(0, this.n).sort();
    const at = (q: number): number => s[Math.min(this.n - 1, Math.ceil(q * this.n) - 1)]!;
    return { n: this.n, p50: at(0.5), p99: at(0.99) };
  }
}

const symbols = new Map<string, SymbolView>();
const clientLatency = new ClientLatency();
let status: StatusData | undefined;
let statusAt = 0;
let selected: string | undefined;
let chart: uPlotType | undefined;
let chartFor: string | undefined;
let signalsSeen = 0;
let signalsPerSec = 0;
let signalsMark = { at: Date.now(), count: 0 };
let newRows = false;
const forbidden = new Set<string>();
let lastError = '';
/** Wall clock (µs) of our latest subscribe: frames about older ticks are snapshots. */
let subscribedAtUs = Infinity;

// ── DOM ─────────────────────────────────────────────────────────────────

function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`dashboard: #${id} is missing from index.html`);
  return e as T;
}

const dom = {
  conn: el('conn'),
  killBanner: el('kill-banner'),
  tbody: el<HTMLTableSectionElement>('symbols-body'),
  filter: el<HTMLInputElement>('filter'),
  count: el('sym-count'),
  chartTitle: el('chart-title'),
  chart: el('chart'),
  errors: el('errors'),
};

function setText(id: string, text: string, cls?: string): void {
  const e = el(id);
  if (e.textContent !== text) e.textContent = text;
  if (cls !== undefined && e.dataset['state'] !== cls) e.dataset['state'] = cls;
}

const fmtInt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
/** Natural order: k2 before k10. */
const byName = new Intl.Collator('en', { numeric: true });
function fmtPx(x: number): string {
  if (!Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  return x.toFixed(a >= 1000 ? 2 : a >= 1 ? 4 : 6);
}
function fmtUs(us: number | null | undefined): string {
  if (us === null || us === undefined || !Number.isFinite(us)) return '–';
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${Math.round(us)} µs`;
}
function fmtAge(atMs: number, now: number): string {
  if (atMs === 0) return '–';
  const s = Math.max(0, (now - atMs) / 1000);
  return s < 60 ? `${s.toFixed(0)} s` : `${(s / 60).toFixed(0)} min`;
}

// ── Frames ──────────────────────────────────────────────────────────────

function view(sym: string): SymbolView {
  let v = symbols.get(sym);
  if (v === undefined) {
    v = {
      sym,
      mid: NaN,
      score: NaN,
      side: '',
      strength: NaN,
      signalAt: 0,
      quality: NaN,
      issues: '',
      history: new History(),
      dirty: true,
      row: undefined,
      cells: [],
      texts: [],
    };
    symbols.set(sym, v);
    newRows = true;
  }
  return v;
}

function onPrediction(p: PredictionData): void {
  const v = view(p.sym);
  const mid = p.features?.['mid'];
  const q = p.features?.['qualityScore'];
  // mid is 0 until the symbol's first quote: no price yet, not a price of 0.
  if (typeof mid === 'number' && mid > 0) v.mid = mid;
  if (typeof q === 'number') v.quality = q;
  v.score = p.score;
  v.dirty = true;
  v.history.push(p.ts / 1e6, v.mid, p.score, v.quality, 0);
  recordLatency(p.lat);
}

function onSignal(s: SignalData): void {
  const v = view(s.sym);
  v.side = s.side;
  v.strength = s.strength;
  v.signalAt = Date.now();
  if (s.quality !== undefined) v.quality = s.quality.score;
  v.dirty = true;
  const mark = s.side === 'buy' ? 1 : s.side === 'sell' ? -1 : 0;
  v.history.push(s.ts / 1e6, s.refPx, v.score, v.quality, mark);
  signalsSeen++;
  recordLatency(s.lat);
}

/**
 * Kernel receive → this page. Frames about ticks the kernel received before
 * we subscribed are the snapshot (last values, possibly old), not latency.
 */
function recordLatency(lat: Lat | undefined): void {
  if (lat === undefined || lat.recv < subscribedAtUs) return;
  clientLatency.record(Date.now() * 1000 - lat.recv);
}

function onQuality(q: QualityData): void {
  const v = view(q.sym);
  v.quality = q.score;
  v.issues = q.issues.join(' ');
  v.dirty = true;
}

function onFrame(raw: string): void {
  let f: ServerFrame;
  try {
    f = JSON.parse(raw) as ServerFrame;
  } catch {
    return;
  }
  if ('topic' in f) {
    const slash = f.topic.indexOf('/');
    const kind = slash < 0 ? f.topic : f.topic.slice(0, slash);
    if (kind === 'prediction') onPrediction(f.data as PredictionData);
    else if (kind === 'signal') onSignal(f.data as SignalData);
    else if (kind === 'quality') onQuality(f.data as QualityData);
    else if (kind === 'status') {
      status = f.data as StatusData;
      statusAt = Date.now();
    }
    return;
  }
  // The server answers every subscribe frame, in order, with `subscribed` or an error.
  if (f.type === 'subscribed') {
    inFlight.shift();
  } else if (f.type === 'error') {
    const frame = inFlight.shift();
    if (f.code !== 'forbidden' || frame === undefined) {
      lastError = `${f.code}: ${f.message}`;
    } else if (frame.length === 1) {
      forbidden.add(frame[0]!);
    } else {
      // A frame is applied whole or not at all: retry its topics one by one
      // so the ones this key may read still arrive.
      for (const t of frame) subscribe([t]);
    }
  }
}

// ── Connection ──────────────────────────────────────────────────────────

const key = new URLSearchParams(location.search).get('key') ?? '';
let ws: WebSocket | undefined;
let backoffMs = 500;
/** Subscribe frames sent and not answered yet, oldest first. */
let inFlight: string[][] = [];
let connState: 'connecting' | 'live' | 'reconnecting' = 'connecting';
let reconnectAt = 0;
let closeInfo = '';

function subscribe(topics: readonly string[]): void {
  if (ws === undefined || ws.readyState !== WebSocket.OPEN) return;
  inFlight.push([...topics]);
  ws.send(JSON.stringify({ op: 'subscribe', topics }));
}

function connect(): void {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const sock = new WebSocket(`${proto}//${location.host}/ws?key=${encodeURIComponent(key)}`);
  ws = sock;
  connState = connState === 'live' ? 'reconnecting' : connState;
  sock.onopen = () => {
    connState = 'live';
    backoffMs = 500;
    closeInfo = '';
    inFlight = [];
    forbidden.clear();
    subscribedAtUs = Date.now() * 1000;
    subscribe(TOPICS);
  };
  sock.onmessage = (ev: MessageEvent) => {
    if (typeof ev.data === 'string') onFrame(ev.data);
  };
  sock.onclose = (ev: CloseEvent) => {
    if (ws !== sock) return;
    ws = undefined;
    connState = 'reconnecting';
    closeInfo = `closed ${ev.code}${ev.reason === '' ? '' : ` ${ev.reason}`}`;
    reconnectAt = Date.now() + backoffMs;
    setTimeout(connect, backoffMs);
    backoffMs = Math.min(10_000, backoffMs * 2);
  };
}

// ── Rendering (throttled) ───────────────────────────────────────────────

const COLUMNS = 6;

function rowFor(v: SymbolView): HTMLTableRowElement {
  if (v.row !== undefined) return v.row;
  const tr = document.createElement('tr');
  tr.dataset['sym'] = v.sym;
  for (let i = 0; i < COLUMNS; i++) {
    const td = document.createElement('td');
    tr.appendChild(td);
    v.cells.push(td);
    v.texts.push('');
  }
  tr.addEventListener('click', () => select(v.sym));
  v.row = tr;
  return tr;
}

function renderTable(now: number): void {
  if (newRows) {
    newRows = false;
    const sorted = [...symbols.values()].sort((a, b) => byName.compare(a.sym, b.sym));
    const frag = document.createDocumentFragment();
    for (const v of sorted) frag.appendChild(rowFor(v));
    dom.tbody.appendChild(frag);
    applyFilter();
    if (selected === undefined && sorted[0] !== undefined) select(sorted[0].sym);
  }
  for (const v of symbols.values()) {
    if (v.row === undefined || v.row.hidden) continue;
    // The signal age changes with the clock: those rows are redrawn each time.
    if (!v.dirty && v.signalAt === 0) continue;
    v.dirty = false;
    const texts = [
      v.sym,
      fmtPx(v.mid),
      Number.isFinite(v.score) ? v.score.toFixed(3) : '–',
      v.side === '' ? '–' : `${v.side} ${v.strength.toFixed(2)}`,
      fmtAge(v.signalAt, now),
      Number.isFinite(v.quality) ? v.quality.toFixed(2) : '–',
    ];
    for (let i = 0; i < COLUMNS; i++) {
      if (v.texts[i] !== texts[i]) {
        v.texts[i] = texts[i]!;
        v.cells[i]!.textContent = texts[i]!;
      }
    }
    const sideClass = v.side === 'buy' ? 'buy' : v.side === 'sell' ? 'sell' : '';
    if (v.cells[3]!.className !== sideClass) v.cells[3]!.className = sideClass;
    const qClass = v.quality < 0.9 ? 'warn' : '';
    const q = v.cells[5]!;
    if (q.className !== qClass) q.className = qClass;
    // The window's issue codes (seq_gap, crossed_quote…) on hover: the column stays narrow.
    const issues = v.issues === '' ? '' : `issues in the window: ${v.issues}`;
    if (q.title !== issues) q.title = issues;
  }
  dom.count.textContent = `${symbols.size} symbols`;
}

function applyFilter(): void {
  const f = dom.filter.value.trim().toUpperCase();
  for (const v of symbols.values()) {
    if (v.row === undefined) continue;
    const hide = f !== '' && !v.sym.toUpperCase().includes(f);
    if (v.row.hidden !== hide) {
      v.row.hidden = hide;
      if (!hide) v.dirty = true;
    }
  }
}

function select(sym: string): void {
  if (selected !== undefined) symbols.get(selected)?.row?.classList.remove('selected');
  selected = sym;
  symbols.get(sym)?.row?.classList.add('selected');
  dom.chartTitle.textContent = sym;
}

function renderChart(): void {
  if (selected === undefined) return;
  const v = symbols.get(selected);
  if (v === undefined) return;
  const data = v.history.aligned();
  if (chart === undefined || chartFor !== selected) {
    chart?.destroy();
    chartFor = selected;
    chart = new uPlot(
      {
        width: Math.max(320, dom.chart.clientWidth),
        height: 300,
        scales: { x: { time: true }, score: { range: [-1, 1] } },
        series: [
          {},
          { label: 'mid', scale: 'px', stroke: '#5aa9e6', width: 1.5, spanGaps: true },
          { label: 'prediction', scale: 'score', stroke: '#c792ea', width: 1, spanGaps: true },
          { label: 'quality', scale: 'score', stroke: '#e6c15a', width: 1, spanGaps: true },
          {
            label: 'buy',
            scale: 'px',
            stroke: '#3ecf8e',
            fill: '#3ecf8e',
            paths: () => null,
            points: { show: true, size: 9, fill: '#3ecf8e' },
          },
          {
            label: 'sell',
            scale: 'px',
            stroke: '#ef5b5b',
            fill: '#ef5b5b',
            paths: () => null,
            points: { show: true, size: 9, fill: '#ef5b5b' },
          },
        ],
        axes: [
          { stroke: '#9aa4b2', grid: { stroke: '#2a2f3a' } },
          { scale: 'px', stroke: '#9aa4b2', grid: { stroke: '#2a2f3a' }, size: 80 },
          { scale: 'score', side: 1, stroke: '#9aa4b2', grid: { show: false } },
        ],
        legend: { live: false },
      },
      data,
      dom.chart,
    );
  } else {
    chart.setData(data);
  }
}

function renderStatus(now: number): void {
  const conn =
    connState === 'live'
      ? now - statusAt > STALE_STATUS_MS && statusAt !== 0
        ? ['live, status stale', 'warn']
        : ['live', 'ok']
      : connState === 'connecting'
        ? ['connecting', 'warn']
        : [
            `reconnecting in ${Math.max(0, Math.ceil((reconnectAt - now) / 1000))} s (${closeInfo})`,
            'bad',
          ];
  setText('conn', conn[0]!, conn[1]);
  if (now - signalsMark.at >= 1000) {
    signalsPerSec = Math.round(((signalsSeen - signalsMark.count) * 1000) / (now - signalsMark.at));
    signalsMark = { at: now, count: signalsSeen };
  }
  setText('k-signals', fmtInt.format(signalsPerSec));
  const cl = clientLatency.percentiles();
  setText('k-client-lat', cl === undefined ? '–' : `${fmtUs(cl.p50)} / ${fmtUs(cl.p99)}`);
  const errs = [...forbidden].map((t) => `${t}: not readable with this key`);
  if (lastError !== '' && forbidden.size === 0) errs.push(lastError);
  const text = errs.join(' · ');
  if (dom.errors.textContent !== text) dom.errors.textContent = text;
  const s = status;
  if (s === undefined) return;
  setText('k-state', s.state, s.state === 'running' ? 'ok' : 'warn');
  setText('k-ingest', fmtInt.format(s.ticksPerSec));
  setText('k-symbols', fmtInt.format(s.symbols));
  setText('k-clients', fmtInt.format(s.wsClients));
  setText('k-breaker', s.breaker, s.breaker === 'closed' ? 'ok' : 'bad');
  setText('k-kill', s.killed ? 'ON: signals stopped' : 'off', s.killed ? 'bad' : 'ok');
  dom.killBanner.hidden = !s.killed;
  setText(
    'k-store',
    s.store.up
      ? `up, lag ${fmtInt.format(s.store.lagMs)} ms`
      : `down, ${fmtInt.format(s.store.spilledRows)} rows spilled`,
    s.store.up ? (s.store.lagMs > 5000 ? 'warn' : 'ok') : 'bad',
  );
  setText('k-model', s.model === undefined ? '–' : `${s.model.name} v${s.model.version}`);
  const l = s.latencyUs;
  setText(
    'k-latency',
    l === undefined || l.n === 0
      ? 'no signals in 10 s'
      : `${fmtUs(l.p50)} / ${fmtUs(l.p90)} / ${fmtUs(l.p99)}`,
  );
  const degraded = s.degraded ?? [];
  setText(
    'k-degraded',
    degraded.length === 0 ? 'none' : degraded.join('; '),
    degraded.length === 0 ? 'ok' : 'warn',
  );
}

let lastTable = 0;
function frame(): void {
  const now = Date.now();
  renderStatus(now);
  if (now - lastTable >= TABLE_RENDER_MS) {
    lastTable = now;
    renderTable(now);
  }
  renderChart();
}

dom.filter.addEventListener('input', () => {
  applyFilter();
  lastTable = 0;
});
window.addEventListener('resize', () => {
  chart?.setSize({ width: Math.max(320, dom.chart.clientWidth), height: 300 });
});
// setInterval, not requestAnimationFrame: a page in a background tab still
// keeps its model current, and the render rate is bounded either way.
setInterval(frame, CHART_RENDER_MS);
connect();
