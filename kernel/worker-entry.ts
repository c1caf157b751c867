/**
 * Shard worker: one per shard. It takes its own share of the market (its
 * NATS partitions, through the source module it is given), runs the shard's
 * symbol actors, and writes their output, already encoded, into its rings.
 *
 * ```
 *   NATS md.*.*.<p> (p ≡ shard mod shards) ──► source ──┐
 *   main thread ── in-ring (tests, replay) ──► feed ────┤
 *                                                      ▼
 *                                   ShardHost: decode → actors → encode
 *                                      ├──► out ring   ──► main thread (WebSocket, risk)
 *                                      └──► store ring ──► store worker (ClickHouse / chdb)
 *   main thread ◄── postMessage: ready, actor errors, source events, reject samples (rare)
 * ```
 * Stop: the source drains and closes (JetStream acks flushed), the feed
 * handles what is queued, both rings are flushed, then the thread exits.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ActorModule, ShardContext } from './actor.js';
import {
  FallbackSnapshotStore,
  FileSnapshotStore,
  type SnapshotStore,
  type SnapshotStoreModule,
} from './snapshot-store.js';
import { StateKeeper, stateFingerprint } from './state-keeper.js';
import { ErrorCodes } from './errors.js';
import { FrameRing } from './frame-ring.js';
import { createLogger } from './logger.js';
import type { MarketSource, SourceModule } from './market-source.js';
import { RingFeedSource } from './ring-feed.js';
import { ShardHost } from './shard-host.js';
import { warmUp } from './warm-up.js';
import {
  WorkerCounter,
  type FromWorker,
  type ToWorker,
  type WorkerInit,
} from './worker-protocol.js';

const init = workerData as WorkerInit;
const port = parentPort;
if (port === null) throw new Error('worker-entry must run in a worker thread');
const log = createLogger(`qilin-shard-${init.shard}`, init.logLevel);
const counters = new Float64Array(init.counters);

function post(msg: FromWorker): void {
  port!.postMessage(msg);
}

function describe(err: unknown): { code: string; message: string } {
  const e = err as { code?: unknown; message?: unknown };
  return {
    code: typeof e?.code === 'string' ? e.code : ErrorCodes.INTERNAL,
    message: typeof e?.message === 'string' ? e.message : String(err),
  };
}

/** Worst event-loop lag over the last second, for health and metrics. */
function watchLoopLag(): NodeJS.Timeout {
  const every = 100;
  let expected = Date.now() + every;
  let worst = 0;
  let windowStart = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    worst = Math.max(worst, now - expected);
    expected = now + every;
    if (now - windowStart >= 1000) {
      counters[WorkerCounter.LOOP_LAG_MS] = worst;
      worst = 0;
      windowStart = now;
    }
  }, every);
  timer.unref();
  return timer;
}

/**
 * Snapshots on (init.snapshots) and the actors keep state: a StateKeeper
 * over Redis (else local files) that restores units as the sources ask.
 */
async function startStateKeeper(
  host: ShardHost,
  mod: ActorModule,
  ctx: ShardContext,
): Promise<StateKeeper | undefined> {
  const o = init.snapshots;
  if (o === undefined) return undefined;
  const probe = (await mod.createActorFactory(ctx))(init.shard, '__snapshot_probe__');
  const fingerprint = stateFingerprint(init.actorOptions, probe);
  if (fingerprint === undefined) {
    log.info('actors keep no snapshot state: warm restart off');
    return undefined;
  }
  const files = new FileSnapshotStore(o.dir);
  let store: SnapshotStore = files;
  if (o.module !== undefined) {
    const smod = (await import(o.module)) as SnapshotStoreModule;
    store = new FallbackSnapshotStore(await smod.createSnapshotStore(o.options, log), files, log);
  }
  const keeper = new StateKeeper({
    host,
    store,
    fingerprint,
    intervalMs: o.intervalMs,
    counters,
    log,
  });
  host.restorer = (name) => keeper.restore(name);
  return keeper;
}

async function main(): Promise<void> {
  const mod = (await import(init.actorModule)) as ActorModule;
  const ctx = {
    shard: init.shard,
    shards: init.shards,
    options: init.actorOptions,
    decisions: init.decisions,
  };
  const out = FrameRing.attach(init.outRing);
  const wake: FromWorker = { type: 'wake' };
  out.useDoorbell(init.outBell, () => port!.postMessage(wake));
  const host = new ShardHost({
    shard: init.shard,
    shards: init.shards,
    out,
    store: FrameRing.attach(init.storeRing),
    counters,
    factory: await mod.createActorFactory(ctx),
    encoder: await mod.createOutputEncoder(ctx),
    outFullWaitMs: init.outFullWaitMs,
    endOfDrain: mod.endOfDrain?.bind(mod),
    onActorError: (symId, err) => post({ type: 'actor-error', symId, ...describe(err) }),
    onRejectSample: (reason, subject, detail, raw) =>
      post({
        type: 'reject',
        reason,
        subject,
        detail,
        raw: Buffer.from(raw.buffer, raw.byteOffset, Math.min(raw.byteLength, 256)).toString(),
      }),
  });
  if (mod.warmUp === true) {
    // Compile the per-tick path on synthetic ticks before the first real one (kernel/warm-up.ts).
    const warm = warmUp(
      await mod.createActorFactory(ctx),
      await mod.createOutputEncoder(ctx),
      init.shard,
      init.shards,
      counters.length,
    );
    log.debug({ shard: init.shard, ...warm }, 'shard worker warmed up');
  }
  const sources: MarketSource[] = [new RingFeedSource(FrameRing.attach(init.inRing), init.feed)];
  if (init.sourceModule !== undefined) {
    const smod = (await import(init.sourceModule)) as SourceModule;
    sources.push(
      await smod.createMarketSource({
        shard: init.shard,
        shards: init.shards,
        options: init.sourceOptions,
        log,
        report: (event) => post({ type: 'source-event', event }),
      }),
    );
  }
  host.redelivers = sources.some((s) => s.redelivers === true);
  // Control applied before this worker started (a model loaded, …), in order, before any tick.
  for (const body of init.control ?? []) {
    try {
      await mod.control?.(body);
    } catch (err) {
      log.error({ err }, 'replayed control message refused');
    }
  }
  if (mod.report !== undefined) {
    const timer = setInterval(() => mod.report!(counters), 1000);
    timer.unref();
  }
  const keeper = await startStateKeeper(host, mod, ctx);
  let stopping: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    for (const s of sources) {
      try {
        await s.close();
      } catch (err) {
        log.warn({ err }, 'market source close failed');
      }
    }
    host.flush();
    if (keeper !== undefined) {
      try {
        await keeper.close();
      } catch (err) {
        log.warn({ err }, 'last snapshot failed');
      }
    }
    post({ type: 'stopped' });
    port!.close();
  };
  // The port listener also keeps the thread alive while the feed is parked
  // in Atomics.waitAsync (which holds no event-loop reference).
  port!.on('message', (msg: ToWorker) => {
    if (msg.type === 'stop') stopping ??= stop();
    else if (msg.type === 'control') {
      const apply = mod.control?.(msg.body) ?? Promise.resolve();
      apply.then(
        () => {
          mod.report?.(counters);
          post({ type: 'control-done', id: msg.id });
        },
        (err: unknown) => post({ type: 'control-done', id: msg.id, error: describe(err) }),
      );
    } else if (msg.type === 'take' && stopping === undefined) {
      const taker = sources.find((s) => s.take !== undefined);
      if (taker === undefined) {
        log.warn({ partitions: msg.partitions }, 'asked to take partitions: no partitioned source');
        return;
      }
      taker.take!(msg.partitions).then(
        () => log.info({ partitions: msg.partitions }, 'took over market partitions'),
        (err: unknown) => {
          log.error({ err, partitions: msg.partitions }, 'taking over partitions failed');
          post({
            type: 'source-event',
            event: {
              type: 'error',
              detail: `taking over partitions ${msg.partitions.join(',')} failed: ${describe(err).message}`,
            },
          });
        },
      );
    }
  });
  for (const s of sources) await s.start(host);
  keeper?.start();
  watchLoopLag();
  post({ type: 'ready' });
}

main().catch((err: unknown) => {
  log.error({ err }, 'shard worker failed to start');
  post({ type: 'fatal', ...describe(err) });
  port.close();
});
