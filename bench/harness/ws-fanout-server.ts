/**
 * Baseline for the fan-out scenario: a fan-out server built on the `ws`
 * library, the way one would write it without uWebSockets.js. Its own
 * process (forked by server-process.ts): NATS subscribe `md.>` → JSON.parse
 * → `{"topic":"prediction/<sym>","data":<tick>}` serialised once → `ws.send`
 * to every client subscribed to that topic (exact `prediction/<sym>`,
 * `prediction/*` or `*`). Clients subscribe with the kernel's frame
 * (`{"op":"subscribe","topics":[…]}`) and get `{"type":"subscribed",…}`.
 *
 * argv: <nats url> <port (0: any)> <deadline ms>. IPC: sends
 * `{type:'ready', port}`; exits on SIGTERM, when the bench's channel closes,
 * and at the deadline.
 */
import { connect } from '@nats-io/transport-node';
import { WebSocketServer, type WebSocket } from 'ws';

async function main(): Promise<void> {
  const [natsUrl = '', portArg = '0', deadlineArg = '600000'] = process.argv.slice(2);
  setTimeout(() => process.exit(3), Number(deadlineArg)).unref();
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));

  /** Clients by the pattern they subscribed to. */
  const byPattern = new Map<string, Set<WebSocket>>();
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: Number(portArg),
    perMessageDeflate: false,
  });
  wss.on('connection', (ws) => {
    const mine = new Set<string>();
    ws.on('message', (data: Buffer) => {
      let frame: { op?: unknown; topics?: unknown };
      try {
        frame = JSON.parse(data.toString('utf8')) as typeof frame;
      } catch {
        ws.send('{"type":"error","code":"bad_json","message":"frame is not JSON"}');
        return;
      }
      if (frame.op !== 'subscribe' || !Array.isArray(frame.topics)) return;
      const topics = frame.topics.filter((t): t is string => typeof t === 'string');
      for (const t of topics) {
        mine.add(t);
        let set = byPattern.get(t);
        if (set === undefined) byPattern.set(t, (set = new Set()));
        set.add(ws);
      }
      ws.send(JSON.stringify({ type: 'subscribed', topics }));
    });
    ws.on('close', () => {
      for (const t of mine) byPattern.get(t)?.delete(ws);
    });
  });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });

  const nc = await connect({ servers: natsUrl, name: 'qilin-bench-ws-fanout' });
  nc.subscribe('md.>', {
    callback: (_err, msg) => {
      const tick = JSON.parse(msg.string()) as { sym: string };
      const topic = `prediction/${tick.sym}`;
      // Serialised once; each client gets the same bytes.
      const frame = Buffer.from(JSON.stringify({ topic, data: tick }));
      for (const pattern of [topic, 'prediction/*', '*']) {
        const set = byPattern.get(pattern);
        if (set === undefined) continue;
        for (const ws of set) ws.send(frame, { binary: false });
      }
    },
  });
  await nc.flush();
  const addr = wss.address();
  process.send?.({
    type: 'ready',
    port: typeof addr === 'object' && addr !== null ? addr.port : 0,
  });
}

main().catch((err: unknown) => {
  process.stderr.write(
    `ws fan-out server failed: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.send?.({ type: 'failed', message: String(err) });
  process.exit(1);
});
