/**
 * Store worker: owns the EventStore (ClickHouse client or the embedded chdb
 * engine) and the StoreWriter, off the kernel's main thread.
 *
 * ```
 *   main thread (StoreClient)                      this worker
 *   ─────────────────────────                      ───────────
 *   writeTick ─► tick SpscRing (64 B records) ───► drain ─► TickRow ─► StoreWriter ─► store
 *   symbol / venue names ─► postMessage ─────────► id → name maps
 *   rows (every 100 ms) ──► postMessage ─────────► StoreWriter.add*
 *   flush {id} ───────────► postMessage ─────────► drain ring, writer.flush() ─► flushed {id}
 *   query {id, sql} ──────► postMessage ─────────► store.query ─► result {id, rows | error}
 *   stats ◄──────────────── postMessage (every statsIntervalMs and after each flush)
 * ```
 * Start-up: create the store, `migrate()`, `writer.start()` (replays spill
 * files a previous run left), then `ready`; a failure is posted as `error`
 * (code + message, matched on code across the thread boundary) and the worker
 * exits.
 *
 * Ordering: the client posts a symbol's or venue's name before it publishes
 * the first tick that uses it, and a flush after the ticks it covers, and a
 * ring publish is visible before any later postMessage. The drain loop may
 * still see a tick before the name message was handled (the loop runs between
 * messages); it then stops, lets the message queue run, and retries.
 *
 * The worker stays alive while parked on `Atomics.waitAsync` (which holds no
 * event-loop reference) because it listens on its parent port.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { StoreWriter } from '../actors/store-writer.js';
import type { EventStore, TickRow } from '../kernel/event-store.js';
import { createLogger } from '../kernel/logger.js';
import { MarketKind, Side, decodeMarket, newMarketEvent } from '../kernel/market-record.js';
import { SpscRing } from '../kernel/spsc-ring.js';
import type { StoreFromWorker, StoreToWorker, StoreWorkerInit } from './store-client.js';
import { createStore, spillDir } from './store-factory.js';

const BATCH = 4096;
const IDLE_WAIT_MS = 1000;
/** How long a tick may wait for its symbol's name before it is stored as `#<id>`. */
const NAME_WAIT_MS = 2000;

const init = workerData as StoreWorkerInit;
const port = parentPort;
if (port === null) throw new Error('store-worker-entry must run in a worker thread');

const log = createLogger('qilin-store', init.config.logLevel);
const ring = SpscRing.attach(init.ring);
const symbols = new Map<number, string>(init.symbols);
const venues = new Map<number, string>(init.venues);
const ev = newMarketEvent();
let stopping = false;
let store: EventStore | undefined;
let writer: StoreWriter | undefined;
let nameWaitSince = 0;

function post(msg: StoreFromWorker): void {
  port!.postMessage(msg);
}

/**
 * Move every record in the ring into the writer. Returns false when it had
 * to stop at a tick whose symbol name has not arrived yet.
 */
function drain(max: number): { n: number; blocked: boolean } {
  let n = 0;
  let at: number;
  while (n < max && (at = ring.peek()) !== -1) {
    decodeMarket(ring.f64, ring.u32, at, ev);
    const venueId = ring.u32[at * 2]! >>> 16;
    let sym = symbols.get(ev.symId);
    if (sym === undefined) {
      const now = Date.now();
      if (nameWaitSince === 0) nameWaitSince = now;
      if (now - nameWaitSince < NAME_WAIT_MS) return { n, blocked: true };
      sym = `#${ev.symId}`;
      log.warn({ symId: ev.symId }, 'no name for a symbol id; storing it as #<id>');
      symbols.set(ev.symId, sym);
    }
    nameWaitSince = 0;
    const trade = ev.kind === MarketKind.TRADE;
    const row: TickRow = {
      type: trade ? 'trade' : 'quote',
      sym,
      venue: venues.get(venueId) ?? '',
      seq: ev.seq,
      tsUs: ev.ts,
      recvUs: ev.recv,
      px: ev.px,
      qty: ev.qty,
      side: ev.side === Side.BUY ? 1 : ev.side === Side.SELL ? -1 : 0,
      bid: ev.bid,
      bidQty: ev.bidQty,
      ask: ev.ask,
      askQty: ev.askQty,
    };
    writer!.addTick(row);
    ring.release();
    n++;
  }
  return { n, blocked: false };
}

function postStats(): void {
  if (writer !== undefined) post({ type: 'stats', stats: writer.stats() });
}

async function onMessage(msg: StoreToWorker): Promise<void> {
  switch (msg.type) {
    case 'symbol':
      symbols.set(msg.id, msg.name);
      return;
    case 'venue':
      venues.set(msg.id, msg.name);
      return;
    case 'rows': {
      const w = writer!;
      for (const p of msg.predictions) w.addPrediction(p);
      for (const s of msg.signals) w.addSignal(s);
      for (const q of msg.quality) w.addQuality(q);
      w.addMetrics(msg.metrics);
      return;
    }
    case 'flush':
      while (drain(Number.MAX_SAFE_INTEGER).blocked) {
        // Names are posted before their ticks, so this only waits out NAME_WAIT_MS for an unnamed id.
        await new Promise<void>((r) => setTimeout(r, 5));
      }
      await writer!.flush();
      postStats();
      post({ type: 'flushed', id: msg.id });
      return;
    case 'query':
      // Not on the message chain's critical path for long: queries are rare (CLI, demo).
      try {
        post({ type: 'result', id: msg.id, rows: await store!.query(msg.sql) });
      } catch (err) {
        const e = err as { code?: unknown; message?: unknown };
        post({
          type: 'result',
          id: msg.id,
          error: {
            code: typeof e?.code === 'string' ? e.code : 'QLN_STORE_FAILED',
            message: typeof e?.message === 'string' ? e.message : String(err),
          },
        });
      }
      return;
    case 'stop':
      stopping = true;
      ring.wakeConsumer();
      return;
  }
}

async function main(): Promise<void> {
  try {
    store = await createStore(init.config);
    await store.migrate();
    writer = new StoreWriter({
      store,
      log,
      spillDir: init.spillDir ?? spillDir(init.config),
      ...init.writer,
    });
    await writer.start();
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    post({
      type: 'error',
      code: typeof e?.code === 'string' ? e.code : 'QLN_STORE_FAILED',
      message: typeof e?.message === 'string' ? e.message : String(err),
    });
    await store?.close().catch(() => undefined);
    port!.close();
    return;
  }
  // Messages are handled one after another so a flush sees the rows posted before it.
  let chain = Promise.resolve();
  port!.on('message', (msg: StoreToWorker) => {
    chain = chain
      .then(() => onMessage(msg))
      .catch((err: unknown) => log.error({ err, type: msg.type }, 'store worker message failed'));
  });
  const statsTimer = setInterval(postStats, init.statsIntervalMs);
  post({ type: 'ready' });

  for (;;) {
    const { n, blocked } = drain(BATCH);
    if (n === BATCH) {
      // Let control messages (names, flush, stop) run between batches.
      await new Promise<void>((r) => setImmediate(r));
      continue;
    }
    if (blocked) {
      // A name message is on its way: give the queue a turn without spinning.
      await new Promise<void>((r) => setTimeout(r, 1));
      continue;
    }
    if (stopping && ring.peek() === -1) break;
    const wait = ring.waitForData(stopping ? 10 : IDLE_WAIT_MS);
    if (wait !== null) await wait;
  }
  await chain;
  clearInterval(statsTimer);
  await writer.close();
  await store.close();
  postStats();
  post({ type: 'stopped' });
  port!.close();
}

void main();
