/**
 * Baseline: the trivial relay. Its own process (forked by server-process.ts),
 * doing the least a tick → WebSocket service can do: NATS subscribe `md.>` →
 * JSON.parse → uWS publish of `{"topic":"prediction/<sym>","data":<tick>}`.
 * No features, no model, no risk, no store. The kernel's latency and CPU
 * are reported as ratios to this.
 *
 * Like the kernel's server, a frame goes out on the exact topic
 * `prediction/<sym>` and on the kind's wildcard topic `prediction/*`, which
 * every socket holds from its open (uWS topics are exact strings, so a
 * wildcard subscription is a topic of its own). The socket gets
 * `{"type":"subscribed"}` on open, which is all the bench's client waits for.
 *
 * argv: <nats url> <port (0: any)> <deadline ms>. IPC: sends
 * `{type:'ready', port}`; exits on SIGTERM, when the bench's channel closes,
 * and at the deadline.
 */
import { connect } from '@nats-io/transport-node';
import uws from 'uWebSockets.js';
import { assertNativeUws } from '../../adapters/ws/native-uws.js';

async function main(): Promise<void> {
  const [natsUrl = '', portArg = '0', deadlineArg = '600000'] = process.argv.slice(2);
  setTimeout(() => process.exit(3), Number(deadlineArg)).unref();
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  assertNativeUws();

  // ── the relay ──────────────────────────────────────────────────────────
  const app = uws.App().ws('/ws', {
    open: (ws) => {
      ws.subscribe('prediction/*');
      ws.send('{"type":"subscribed","topics":["prediction/*"]}');
    },
  });
  const nc = await connect({ servers: natsUrl, name: 'qilin-bench-relay' });
  nc.subscribe('md.>', {
    callback: (_err, msg) => {
      const tick = JSON.parse(msg.string()) as { sym: string };
      const topic = `prediction/${tick.sym}`;
      const frame = JSON.stringify({ topic, data: tick });
      app.publish(topic, frame, false);
      app.publish('prediction/*', frame, false);
    },
  });
  // ───────────────────────────────────────────────────────────────────────

  await nc.flush();
  const port = await new Promise<number>((resolve, reject) => {
    app.listen('127.0.0.1', Number(portArg), (socket) => {
      if (socket === false) reject(new Error(`relay could not listen on port ${portArg}`));
      else resolve(uws.us_socket_local_port(socket));
    });
  });
  process.send?.({ type: 'ready', port });
}

main().catch((err: unknown) => {
  process.stderr.write(`relay failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.send?.({ type: 'failed', message: String(err) });
  process.exit(1);
});
