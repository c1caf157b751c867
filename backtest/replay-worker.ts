/**
 * A replay shard in a worker thread (backtest/replay-engine.ts starts it):
 * the kernel's actor module, one `ShardRunner` over the shared chunk slots.
 * One message per chunk each way; ticks and outputs stay in shared memory.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ActorModule } from '../kernel/actor.js';
import { ShardRunner, OutputBuffer } from './shard-runner.js';
import { chunkFromShared, type TickChunk } from './tick-chunk.js';
import type { ReplayWorkerInit, ReplayToWorker, ReplayFromWorker } from './replay-protocol.js';

const init = workerData as ReplayWorkerInit;
const port = parentPort!;

function send(m: ReplayFromWorker): void {
  port.postMessage(m);
}

async function main(): Promise<void> {
  const mod = (await import(init.actorModule)) as ActorModule;
  const ctx = { shard: init.shard, shards: init.shards, options: init.options };
  const factory = await mod.createActorFactory(ctx);
  for (const body of init.controls) {
    if (mod.control === undefined) throw new Error('the actor module takes no control messages');
    await mod.control(body);
  }
  const runner = new ShardRunner(factory, init.shard, init.shards, mod.endOfDrain?.bind(mod));
  const chunks: TickChunk[] = init.slots.map(chunkFromShared);
  const outs = init.outputs.map((o) => new OutputBuffer(o));
  const names: string[] = [];
  port.on('message', (m: ReplayToWorker) => {
    if (m.t === 'end') {
      port.close();
      return;
    }
    try {
      for (const n of m.names) names.push(n);
      const c = chunks[m.slot]!;
      c.length = m.length;
      const out = outs[m.slot]!;
      runner.run(c, names, out);
      send({ t: 'done', slot: m.slot, count: out.count, output: out.shared, ticks: runner.ticks });
    } catch (e) {
      send({ t: 'error', message: e instanceof Error ? e.message : String(e) });
    }
  });
  send({ t: 'ready' });
}

main().catch((e: unknown) => {
  send({ t: 'error', message: e instanceof Error ? e.message : String(e) });
});
