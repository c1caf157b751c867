/**
 * Worker host: one per shard, runs the shard's symbol actors.
 *
 * ```
 *   main thread                          worker k (this file)
 *   ──────────                           ────────────────────
 *   pool.submit ──► inRing (SAB) ──────► drain ─► actor[symId].onMarket ─┐
 *   pool drain  ◄── outRing (SAB) ◄────── sink.emit ◄────────────────────┘
 *   pool ── postMessage ─► symbol names, stop      (rare control only)
 * ```
 * The loop drains up to BATCH records, then either continues (after a
 * setImmediate so control messages get a turn) or parks in Atomics.waitAsync
 * until the main thread publishes. The tail is released after each record is
 * handled, so a worker that dies mid-record gets that record again on restart
 * (the supervisor quarantines a record that kills its worker twice).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ActorFactory, ActorModule, MarketActor, OutputSink } from './actor.js';
import { nowUs } from './clock.js';
import { ErrorCodes } from './errors.js';
import { decodeMarket, newMarketEvent } from './market-record.js';
import { encodeOutput, type OutputEvent } from './output-record.js';
import { SpscRing } from './spsc-ring.js';
import {
  WorkerCounter,
  type FromWorker,
  type ToWorker,
  type WorkerInit,
} from './worker-protocol.js';

const BATCH = 1024;
const IDLE_WAIT_MS = 1000;

const init = workerData as WorkerInit;
const port = parentPort;
if (port === null) throw new Error('worker-entry must run in a worker thread');

const inRing = SpscRing.attach(init.inRing);
const outRing = SpscRing.attach(init.outRing);
const counters = new Int32Array(init.counters);
const names = new Map<number, string>(init.symbols);
const actors: Array<MarketActor | undefined> = [];
let stopping = false;
let lastErrorReport = 0;

function post(msg: FromWorker): void {
  port!.postMessage(msg);
}

const sink: OutputSink = {
  emit(event: OutputEvent): void {
    let at = outRing.claim();
    if (at === -1) {
      outRing.flush();
      if (!outRing.waitForSpace(init.outFullWaitMs)) {
        outRing.countDropped();
        Atomics.add(counters, WorkerCounter.OUT_DROPPED, 1);
        return;
      }
      at = outRing.claim();
    }
    event.emit = nowUs();
    encodeOutput(event, outRing.f64, outRing.u32, at);
    outRing.commit();
  },
};

function reportActorError(symId: number, err: unknown): void {
  Atomics.add(counters, WorkerCounter.ACTOR_ERRORS, 1);
  const now = Date.now();
  if (now - lastErrorReport < 1000) return; // at most one report a second; the counter has them all
  lastErrorReport = now;
  const e = err as { code?: unknown; message?: unknown };
  post({
    type: 'actor-error',
    symId,
    code: typeof e?.code === 'string' ? e.code : ErrorCodes.ACTOR_FAILED,
    message: typeof e?.message === 'string' ? e.message : String(err),
  });
}

async function main(): Promise<void> {
  const mod = (await import(init.actorModule)) as ActorModule;
  const factory: ActorFactory = await mod.createActorFactory({
    shard: init.shard,
    shards: init.shards,
    options: init.actorOptions,
  });
  const actorFor = (symId: number): MarketActor => {
    let a = actors[symId];
    if (a === undefined) {
      a = factory(symId, names.get(symId));
      actors[symId] = a;
      Atomics.add(counters, WorkerCounter.ACTORS, 1);
    }
    return a;
  };
  for (const [id] of init.symbols) actorFor(id);

  port!.on('message', (msg: ToWorker) => {
    if (msg.type === 'symbol') names.set(msg.id, msg.name);
    else if (msg.type === 'stop') stopping = true;
  });
  post({ type: 'ready' });

  const ev = newMarketEvent();
  for (;;) {
    let n = 0;
    let at: number;
    while (n < BATCH && (at = inRing.peek()) !== -1) {
      decodeMarket(inRing.f64, inRing.u32, at, ev);
      try {
        actorFor(ev.symId).onMarket(ev, sink);
      } catch (err) {
        reportActorError(ev.symId, err);
      }
      outRing.flush();
      inRing.release();
      n++;
    }
    Atomics.add(counters, WorkerCounter.PROCESSED, n);
    if (stopping && inRing.peek() === -1) break;
    if (n === BATCH) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      continue;
    }
    const wait = inRing.waitForData(stopping ? 10 : IDLE_WAIT_MS);
    if (wait !== null) await wait;
  }
  outRing.flush();
  post({ type: 'stopped' });
  port!.close();
}

main().catch((err: unknown) => {
  // Fatal to this worker: surface it to the supervisor through the 'error' event.
  queueMicrotask(() => {
    throw err;
  });
});
