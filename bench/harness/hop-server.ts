/**
 * Baseline: the hop relay. The trivial relay (relay-server.ts) with the
 * kernel's one thread hop put in, and nothing else: where the floor of a
 * design that ingests in worker threads and serves WebSockets from the main
 * thread lies, measured in the same run as the kernel and the relay.
 *
 * ```
 *  worker k (N of them, default one per core as the kernel's workers):
 *     own NATS connection, md.*.*.<p> for p ≡ k (mod N)   (hop-worker.ts)
 *     tick bytes ─► {"topic":"prediction/<sym>","data":<tick>} in FrameRing k
 *     flush once per task (and every 16 frames) ─► shared doorbell
 *  main thread: uWS exactly as the relay; drains every ring, parks on the
 *     doorbell with no timeout (as WorkerPool.drainLoop), publishes the ring's
 *     bytes on prediction/<sym> and prediction/*
 * ```
 * No JSON parse, no store, no features, no model, no risk.
 *
 * argv: <nats url> <port (0: any)> <deadline ms> [workers (2)] [partitions (16;
 * 0: md.> filtered by ShardRouter)] [ring bytes (4 MiB)]. IPC: sends
 * `{type:'ready', port}` once every worker subscribed; exits on SIGTERM,
 * when the bench's channel closes, and at the deadline.
 */
import { Worker } from 'node:worker_threads';
import uws from 'uWebSockets.js';
import { assertNativeUws } from '../../adapters/ws/native-uws.js';
import { FrameRing } from '../../kernel/frame-ring.js';
import { DOORBELL_BYTES } from '../../kernel/ring-control.js';
import { HopDrain, type HopWorkerInit } from './hop-frames.js';

const WORKER_URL = new URL('./hop-worker.js', import.meta.url);
const WILDCARD = Buffer.from('prediction/*');

function intArg(name: string, raw: string, min: number, max: number): number {
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new Error(`${name} ${JSON.stringify(raw)}: an integer from ${min} to ${max}`);
  }
  return v;
}

async function main(): Promise<void> {
  const [
    natsUrl = '',
    portArg = '0',
    deadlineArg = '600000',
    workersArg = '2',
    partitionsArg = '16',
    ringArg = String(1 << 22),
  ] = process.argv.slice(2);
  setTimeout(() => process.exit(3), Number(deadlineArg)).unref();
  process.on('disconnect', () => process.exit(0));
  assertNativeUws();
  const workers = intArg('workers', workersArg, 1, 64);
  const partitions = intArg('partitions', partitionsArg, 0, 1024);
  const ringBytes = intArg('ring bytes', ringArg, 1 << 15, 1 << 30);

  const app = uws.App().ws('/ws', {
    open: (ws) => {
      ws.subscribe('prediction/*');
      ws.send('{"type":"subscribed","topics":["prediction/*"]}');
    },
  });

  // ── the hop ────────────────────────────────────────────────────────────
  const doorbell = new SharedArrayBuffer(DOORBELL_BYTES);
  const rings = Array.from({ length: workers }, () => FrameRing.create(ringBytes));
  const drain = new HopDrain(rings, doorbell, (topic, frame) => {
    app.publish(topic, frame, false);
    app.publish(WILDCARD, frame, false);
  });
  void drain.run();
  // ───────────────────────────────────────────────────────────────────────

  process.on('SIGTERM', () => {
    const dropped = rings.reduce((n, r) => n + r.stats().dropped, 0);
    if (dropped > 0) process.stderr.write(`hop relay dropped ${dropped} frame(s) (ring full)\n`);
    process.exit(0);
  });

  await Promise.all(
    rings.map(
      (ring, shard) =>
        new Promise<void>((resolve, reject) => {
          const init: HopWorkerInit = {
            natsUrl,
            shard,
            shards: workers,
            partitions,
            ring: ring.buffer,
            bell: doorbell,
          };
          const w = new Worker(WORKER_URL, { workerData: init, name: `hop-${shard}` });
          w.on('message', (m: { type?: string; message?: string }) => {
            if (m.type === 'wake') drain.wake();
            else if (m.type === 'ready') resolve();
            else if (m.type === 'failed') reject(new Error(`worker ${shard}: ${m.message}`));
          });
          w.on('error', (err) => {
            reject(err);
            fail(new Error(`worker ${shard}: ${err.message}`));
          });
          w.on('exit', (code) => {
            const err = new Error(`worker ${shard} exited (code ${code})`);
            reject(err);
            fail(err);
          });
        }),
    ),
  );

  const port = await new Promise<number>((resolve, reject) => {
    app.listen('127.0.0.1', Number(portArg), (socket) => {
      if (socket === false) reject(new Error(`hop relay could not listen on port ${portArg}`));
      else resolve(uws.us_socket_local_port(socket));
    });
  });
  process.send?.({ type: 'ready', port });
}

function fail(err: unknown): void {
  process.stderr.write(`hop relay failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.send?.({ type: 'failed', message: String(err) });
  process.exit(1);
}

main().catch(fail);
