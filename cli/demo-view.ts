import WebSocket from 'ws';
import type { SignalMessage } from '../kernel/messages.js';

/**
 * The demo's live terminal view: a WebSocket subscriber like any other
 * (API key, `signal/*` + `status`), drawing the last signal per symbol and a
 * status line. On a TTY it redraws in place; otherwise it prints one line per
 * signal (at most 5 a second) and the status line every few seconds.
 */
interface Row {
  side: string;
  strength: number;
  refPx: number;
  at: number;
  count: number;
  latUs: number;
}

export interface DemoViewStats {
  signals: number;
  statusMessages: number;
  /** End-to-end latency samples: tick receive (lat.recv) → WS receive here, µs. */
  latenciesUs: number[];
}

export class DemoView {
  private ws: WebSocket | undefined;
  private readonly rows = new Map<string, Row>();
  private status: Record<string, unknown> = {};
  private timer: NodeJS.Timeout | undefined;
  private readonly tty = process.stdout.isTTY === true;
  private lastLinePrint = 0;
  private linesThisSecond = 0;
  /** Wall clock (µs) of the subscribe: frames about older ticks are the snapshot. */
  private subscribedAtUs = Infinity;
  readonly stats: DemoViewStats = { signals: 0, statusMessages: 0, latenciesUs: [] };

  constructor(
    private readonly url: string,
    private readonly key: string,
    private readonly startedAt = Date.now(),
  ) {}

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, { headers: { Authorization: `Bearer ${this.key}` } });
      this.ws = ws;
      ws.once('open', () => {
        this.subscribedAtUs = (performance.timeOrigin + performance.now()) * 1000;
        ws.send(JSON.stringify({ op: 'subscribe', topics: ['signal/*', 'status'] }));
        this.timer = setInterval(() => this.draw(), this.tty ? 250 : 5000);
        resolve();
      });
      ws.once('error', reject);
      ws.on('message', (data: Buffer) => this.onMessage(data.toString('utf8')));
    });
  }

  private onMessage(text: string): void {
    let msg: { topic?: string; data?: unknown };
    try {
      msg = JSON.parse(text) as { topic?: string; data?: unknown };
    } catch {
      return;
    }
    if (msg.topic === 'status') {
      this.stats.statusMessages++;
      this.status = msg.data as Record<string, unknown>;
      return;
    }
    if (msg.topic?.startsWith('signal/') !== true) return;
    const s = msg.data as SignalMessage;
    const nowUs = (performance.timeOrigin + performance.now()) * 1000;
    const latUs = nowUs - s.lat.recv;
    this.stats.signals++;
    // A signal about a tick received before we subscribed is the snapshot
    // (a last value, maybe from before a restart), not a latency.
    if (s.lat.recv >= this.subscribedAtUs && this.stats.latenciesUs.length < 100_000) {
      this.stats.latenciesUs.push(latUs);
    }
    const prev = this.rows.get(s.sym);
    this.rows.set(s.sym, {
      side: s.side,
      strength: s.strength,
      refPx: s.refPx,
      at: Date.now(),
      count: (prev?.count ?? 0) + 1,
      latUs,
    });
    if (!this.tty) this.printLine(s, latUs);
  }

  private printLine(s: SignalMessage, latUs: number): void {
    const now = Date.now();
    if (now - this.lastLinePrint >= 1000) {
      this.lastLinePrint = now;
      this.linesThisSecond = 0;
    }
    if (++this.linesThisSecond > 5) return;
    process.stdout.write(
      `signal ${s.sym.padEnd(9)} ${s.side.padEnd(4)} strength ${s.strength.toFixed(2)} px ${s.refPx.toFixed(2)}  tick→ws ${(latUs / 1000).toFixed(2)} ms\n`,
    );
  }

  statusLine(): string {
    const st = this.status;
    const show = (v: unknown): string =>
      typeof v === 'number' || typeof v === 'string' ? String(v) : '-';
    const lat = percentiles(this.stats.latenciesUs);
    const up = ((Date.now() - this.startedAt) / 1000).toFixed(0);
    return (
      `[${up}s] ticks/s ${show(st['ticksPerSec'])}  ticks ${show(st['ticksReceived'])}  ` +
      `signals seen ${this.stats.signals}  breaker ${show(st['breaker'])}  ` +
      `${st['killed'] === true ? 'KILLED  ' : ''}tick→ws p50 ${lat.p50} p99 ${lat.p99} ms`
    );
  }

  private draw(): void {
    if (!this.tty) {
      process.stdout.write(`${this.statusLine()}\n`);
      return;
    }
    const lines = [
      'Qilin demo: live signals over WebSocket (signal/*)   Ctrl-C to stop',
      this.statusLine(),
      '',
      `${'symbol'.padEnd(10)}${'side'.padEnd(6)}${'strength'.padStart(9)}${'ref px'.padStart(14)}${'signals'.padStart(9)}${'tick→ws ms'.padStart(12)}  age`,
    ];
    const now = Date.now();
    for (const [sym, r] of [...this.rows.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
      const color = r.side === 'buy' ? '\x1b[32m' : r.side === 'sell' ? '\x1b[31m' : '\x1b[33m';
      lines.push(
        `${sym.padEnd(10)}${color}${r.side.padEnd(6)}\x1b[0m${r.strength.toFixed(2).padStart(9)}${r.refPx.toFixed(2).padStart(14)}${String(r.count).padStart(9)}${(r.latUs / 1000).toFixed(2).padStart(12)}  ${((now - r.at) / 1000).toFixed(1)}s`,
      );
    }
    process.stdout.write(`\x1b[H\x1b[2J${lines.join('\n')}\n`);
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.ws?.close();
  }
}

export function percentiles(values: readonly number[]): { p50: string; p99: string } {
  if (values.length === 0) return { p50: '-', p99: '-' };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): string =>
    (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! / 1000).toFixed(2);
  return { p50: at(0.5), p99: at(0.99) };
}
