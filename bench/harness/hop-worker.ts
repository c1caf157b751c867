/**
 * A worker thread of the hop relay (hop-server.ts): its own NATS connection
 * and its share of the market, as a kernel shard worker has
 * (adapters/nats/nats-shard-source.ts), and nothing else: each message is
 * copied into this worker's FrameRing as the finished WebSocket frame
 * (hop-frames.ts HopWriter), flushed once per task with the shared doorbell.
 *
 * ```
 *  partitions P > 0   subscribe md.*.*.<p> for every p < P with p ≡ shard (mod shards)
 *  partitions 0       subscribe md.> and keep the symbols ShardRouter gives this shard
 * ```
 * Messages to the parent: `{type:'ready'}` once subscribed, `{type:'failed', message}`,
 * `{type:'wake'}` when it rang the doorbell of a sleeping drain (as kernel workers do).
 */
import { connect } from '@nats-io/transport-node';
import { parentPort, workerData } from 'node:worker_threads';
import { FrameRing } from '../../kernel/frame-ring.js';
import { ShardRouter } from '../../kernel/shard-router.js';
import { HopWriter, hopSubjects, type HopWorkerInit } from './hop-frames.js';

async function main(): Promise<void> {
  const init = workerData as HopWorkerInit;
  const ring = FrameRing.attach(init.ring);
  const wake = { type: 'wake' };
  ring.useDoorbell(init.bell, () => parentPort?.postMessage(wake));
  const router = new ShardRouter(init.shards);
  const writer = new HopWriter(
    ring,
    init.partitions > 0 ? undefined : (sym) => router.shardOf(sym) === init.shard,
  );
  const nc = await connect({ servers: init.natsUrl, name: `qilin-bench-hop-${init.shard}` });
  for (const subject of hopSubjects(init.shard, init.shards, init.partitions)) {
    nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err === null) writer.write(msg.subject, msg.data);
      },
    });
  }
  await nc.flush();
  parentPort?.postMessage({ type: 'ready' });
}

main().catch((err: unknown) => {
  parentPort?.postMessage({
    type: 'failed',
    message: err instanceof Error ? err.message : String(err),
  });
});
