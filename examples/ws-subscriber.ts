/**
 * A minimal Qilin WebSocket subscriber: prints every signal with its latency.
 *
 * Usage: `node dist/examples/ws-subscriber.js [--url ws://127.0.0.1:9470/ws] [--topics signal/*] [--count N]`
 * Env: QILIN_API_KEY (required: a key of QILIN_API_KEYS with read scope),
 * QILIN_WS_URL (default ws://127.0.0.1:9470/ws).
 *
 * Two latencies per signal, both "until this process parsed the frame":
 *  - from `src.ts`, the exchange time of the tick that caused the signal: what
 *    a trader feels, but it includes the feed's own delay before the kernel
 *    got the tick, and the offset between the venue's clock and ours;
 *  - from `lat.recv`, when the kernel received that tick: the kernel plus the
 *    WebSocket hop. Only meaningful on the kernel's host (or with synced
 *    clocks): the kernel stamps it with performance.timeOrigin + now(), and so
 *    do we.
 * Frames of the snapshot sent on subscribe are the last signal per symbol, so
 * their latencies are as old as that signal.
 *
 * Only public npm packages are imported: this file is what a user copies.
 */
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

/** The fields of a Qilin signal this subscriber reads (docs/protocol.md has them all). */
interface Signal {
  id: string;
  sym: string;
  side: 'buy' | 'sell' | 'flat';
  strength: number;
  refPx: number;
  src: { seq: number; ts: number };
  lat: { recv: number; feat: number; infer: number; risk?: number; pub?: number };
}

/** A server frame: a topic message, or a reply / error to one of ours. */
interface Frame {
  topic?: string;
  data?: unknown;
  type?: string;
  topics?: string[];
  code?: string;
  message?: string;
}

const { values: args } = parseArgs({
  options: { url: { type: 'string' }, topics: { type: 'string' }, count: { type: 'string' } },
});
const url = args.url ?? process.env['QILIN_WS_URL'] ?? 'ws://127.0.0.1:9470/ws';
const key = process.env['QILIN_API_KEY'];
const count = Number(args.count ?? 0); // 0: until the server closes or Ctrl-C
if (key === undefined || key === '' || !(count >= 0)) {
  console.error('usage: QILIN_API_KEY=<key> ws-subscriber [--url URL] [--topics T,…] [--count N]');
  process.exit(2);
}
const nowUs = (): number => (performance.timeOrigin + performance.now()) * 1000;

const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${key}` } });
let seen = 0;
ws.on('open', () => {
  ws.send(JSON.stringify({ op: 'subscribe', topics: (args.topics ?? 'signal/*').split(',') }));
});
ws.on('message', (raw: Buffer) => {
  // Frames already received when we asked to close still arrive: --count is exact.
  if (count > 0 && seen >= count) return;
  const at = nowUs();
  const f = JSON.parse(raw.toString('utf8')) as Frame;
  if (f.type === 'subscribed') console.log(`subscribed ${f.topics?.join(',')}`);
  else if (f.type === 'error') console.error(`server error ${f.code}: ${f.message}`);
  if (f.topic?.startsWith('signal/') !== true) return;
  const s = f.data as Signal;
  const fromTick = (at - s.src.ts) / 1000;
  const fromRecv = (at - s.lat.recv) / 1000;
  const inKernel = ((s.lat.pub ?? s.lat.recv) - s.lat.recv) / 1000;
  console.log(
    `signal ${s.sym} ${s.side} strength ${s.strength.toFixed(3)} refPx ${s.refPx} id ${s.id}` +
      ` | tick→here ${fromTick.toFixed(3)} ms (incl. feed delay)` +
      ` | recv→here ${fromRecv.toFixed(3)} ms | kernel recv→pub ${inKernel.toFixed(3)} ms`,
  );
  if (count > 0 && ++seen >= count) ws.close(1000, 'done');
});
ws.on('error', (err) => {
  console.error(`ws-subscriber: ${err.message}`); // e.g. "Unexpected server response: 401"
  process.exitCode = 1;
});
ws.on('close', (code, reason) => {
  // 1000: we closed after --count; 1001: the kernel shut down. Anything else
  // (4008 backpressure, 1008 bad frames, 1006 dropped) is a failure.
  if (code !== 1000 && code !== 1001) {
    console.error(`ws-subscriber: closed ${code} ${reason.toString('utf8')}`);
    process.exitCode ??= 1;
  }
});
