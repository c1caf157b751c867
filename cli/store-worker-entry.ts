/**
 * Store worker: owns the EventStore (ClickHouse client or the embedded chdb
 * engine) and the StoreWriter, off the kernel's main thread.
 *
 * ```
 *   shard worker k (ShardHost)                         this worker
 *   ──────────────────────────                         ───────────
 *   SYMBOL, VENUE, TICK, OUTPUT ─► store ring k ─────► drain ─► TickRow / PredictionMessage /
 *                                                      QualityMessage ─► StoreWriter ─► store
 *   main thread (StoreClient)
 *   SIGNAL_ROW ─► signal ring ───────────────────────► drain ─► SignalRow ─► StoreWriter
 *   metric snapshots ───────────────► postMessage ─► StoreWriter.addMetrics
 *   flush {id} ─────────────────────► postMessage ─► drain every ring, writer.flush() ─► flushed
 *   query {id, sql} ────────────────► postMessage ─► store.query ─► result {id, rows | error}
 *   stats ◄──────────────────────── postMessage (every statsIntervalMs and after each flush)
 *   store ring k header word DURABLE ◄── TICK frames of ring k whose rows are durable
 * ```
 * Durable marks (docs/adr/0005-exactly-once-ticks.md): after each drain of a
 * ring that took TICK frames, the ring gets a checkpoint (TICK frames drained
 * so far, StoreWriter.rowsAdded). Once the writer's durableMark() passes a
 * checkpoint's row count, its tick count is published in the ring's header
 * (FrameRing.setDurable), where the shard worker reads it to acknowledge
 * JetStream messages. Checkpoints live in a fixed ring per feed (a full one
 * merges into its newest entry: later, never wrong); nothing allocates.
 * Start-up: create the store, `migrate()`, `writer.start()` (replays spill
 * files a previous run left), then `ready`; a failure is posted as `fatal`
 * (code + message, matched on code across the thread boundary) and the
 * worker exits. Names come in-band: each ring carries a SYMBOL (or VENUE)
 * frame before the first frame that uses it. Symbol ids are process-wide;
 * venue ids are per ring (per shard).
 *
 * The worker stays alive while parked on `Atomics.waitAsync` (which holds no
 * event-loop reference) because it listens on its parent port.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { OutputDecoder } from '../actors/output-decoder.js';
import { ModelRefTable } from '../actors/model-refs.js';
import { StoreWriter } from '../actors/store-writer.js';
import type { EventStore, StoreBatch, TickRow } from '../kernel/event-store.js';
import { FrameRing } from '../kernel/frame-ring.js';
import { createLogger } from '../kernel/logger.js';
import { MarketKind, Side, newMarketEvent } from '../kernel/market-record.js';
import { OutputKind, newOutputEvent } from '../kernel/output-record.js';
import {
  FrameType,
  nameFrameId,
  nameFrameText,
  outputFrameText,
  readOutputRecord,
  readSignalRowFrame,
  readTickFrame,
  type SignalDecision,
} from '../kernel/shard-frames.js';
import { RiskRejectReasons, type PredictionMessage } from '../kernel/messages.js';
import type { LifecycleMessage } from '../kernel/worker-thread.js';
import type { StoreFromWorker, StoreToWorker, StoreWorkerInit } from './store-client.js';
import type { TtlResult } from '../adapters/clickhouse/schema.js';
import { createStore, spillDir } from './store-factory.js';

const BATCH = 4096;
/**
 * Producers do not wake this worker for every flush (FrameRing.flush(lazy)):
 * it looks at each ring at least this often, and is woken early only when
 * a ring is an eighth full. Rows wait at most this long before the writer
 * sees them; inserts are batched over a second anyway.
 */
const STORE_POLL_MS = 50;

const init = workerData as StoreWorkerInit;
const port = parentPort;
if (port === null) throw new Error('store-worker-entry must run in a worker thread');

const log = createLogger('qilin-store', init.config.logLevel);
const models = new ModelRefTable(init.decoder.model);
const decoder = new OutputDecoder({ ...init.decoder, models });
const symbols: string[] = [];
const ev = newMarketEvent();
const out = newOutputEvent();
const decision: SignalDecision = { risk: 0, pub: 0, approved: false, reason: 0 };
let stopping = false;
let stopRequested: () => void = () => undefined;
const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
let store: EventStore | undefined;
let writer: StoreWriter | undefined;

/**
 * Tick rows and predictions are pooled: the writer holds each for up to a
 * second (flushIntervalMs) and then drops it, so fresh objects survived two
 * scavenges, were promoted and became old-generation garbage: measured at
 * 10k ticks/s, the store worker spent ~9 % of a core in GC, in bursts of
 * 15-30 ms parallel scavenges that took both cores from the shard workers
 * (p99.9 stalls of 60-70 ms). The writer hands batches back (release) once
 * inserted or spilled; the pools hold at most what the writer can hold.
 */
const tickPool: TickRow[] = [];
const predictionPool: PredictionMessage[] = [];

function newTickRow(): TickRow {
  return {
    type: 'trade',
    sym: '',
    venue: '',
    seq: 0,
    tsUs: 0,
    recvUs: 0,
    px: 0,
    qty: 0,
    side: 0,
    bid: 0,
    bidQty: 0,
    ask: 0,
    askQty: 0,
  };
}

function releaseRows(batch: StoreBatch): void {
  for (const r of batch.ticks) tickPool.push(r);
  for (const p of batch.predictions) predictionPool.push(p);
}

/** Checkpoints a feed keeps (a drain each): ~STORE_POLL_MS apart, a second's worth and more. */
const CHECKPOINTS = 256;

/** One shard's store ring and the venue names it announced. */
interface Feed {
  ring: FrameRing;
  venues: string[];
  /** TICK frames drained (wrapping 32-bit, as the producer counts them). */
  ticks: number;
  /** Checkpoints: tick count, and writer rows added at that point; head..tail in use. */
  cpTicks: Int32Array;
  cpRows: Float64Array;
  cpHead: number;
  cpTail: number;
}
const feeds: Feed[] = init.feeds.map((b) => ({
  ring: FrameRing.attach(b),
  venues: [],
  ticks: 0,
  cpTicks: new Int32Array(CHECKPOINTS),
  cpRows: new Float64Array(CHECKPOINTS),
  cpHead: 0,
  cpTail: 0,
}));

/** After a drain that took ticks: remember how many, against the writer's row count. */
function checkpoint(feed: Feed): void {
  const rows = writer!.rowsAdded;
  if (feed.cpTail - feed.cpHead === CHECKPOINTS) {
    // Full: the newest entry moves later (its ticks become durable a bit later).
    const last = (feed.cpTail - 1) % CHECKPOINTS;
    feed.cpTicks[last] = feed.ticks;
    feed.cpRows[last] = rows;
    return;
  }
  const at = feed.cpTail % CHECKPOINTS;
  feed.cpTicks[at] = feed.ticks;
  feed.cpRows[at] = rows;
  feed.cpTail++;
}

/** Audit batches waiting for the durable mark: request id, writer row count after them. */
const auditWaiting: Array<{ id: number; mark: number }> = [];

/** Publish, per feed, the ticks whose rows the writer holds durably; answer audit batches that are. */
function publishDurable(): void {
  if (writer === undefined) return;
  const durable = writer.durableMark();
  while (auditWaiting.length > 0 && auditWaiting[0]!.mark <= durable) {
    post({ type: 'audit-durable', id: auditWaiting.shift()!.id });
  }
  for (const f of feeds) {
    let mark = -1;
    while (f.cpHead < f.cpTail) {
      const at = f.cpHead % CHECKPOINTS;
      if (f.cpRows[at]! > durable) break;
      mark = f.cpTicks[at]!;
      f.cpHead++;
    }
    if (f.cpHead === f.cpTail) {
      f.cpHead = f.cpTail = 0;
    }
    if (mark !== -1) f.ring.setDurable(mark);
  }
}

function post(msg: StoreFromWorker | LifecycleMessage): void {
  port!.postMessage(msg);
}

/** Move up to `max` frames of one ring into the writer; returns how many. */
function drain(feed: Feed, max: number): number {
  const ring = feed.ring;
  const w = writer!;
  let n = 0;
  let at: number;
  const ticks0 = feed.ticks;
  while (n < max && (at = ring.peek()) !== -1) {
    switch (ring.type()) {
      case FrameType.SYMBOL:
        symbols[nameFrameId(ring, at)] = nameFrameText(ring, at);
        break;
      case FrameType.VENUE:
        feed.venues[nameFrameId(ring, at)] = nameFrameText(ring, at);
        break;
      case FrameType.TICK: {
        const venue = feed.venues[readTickFrame(ring, at, ev)] ?? '';
        const row = tickPool.pop() ?? newTickRow();
        row.type = ev.kind === MarketKind.TRADE ? 'trade' : 'quote';
        row.sym = symbols[ev.symId] ?? `#${ev.symId}`;
        row.venue = venue;
        row.seq = ev.seq;
        row.tsUs = ev.ts;
        row.recvUs = ev.recv;
        row.px = ev.px;
        row.qty = ev.qty;
        row.side = ev.side === Side.BUY ? 1 : ev.side === Side.SELL ? -1 : 0;
        row.bid = ev.bid;
        row.bidQty = ev.bidQty;
        row.ask = ev.ask;
        row.askQty = ev.askQty;
        w.addTick(row);
        feed.ticks = (feed.ticks + 1) | 0;
        break;
      }
      case FrameType.SIGNAL_ROW: {
        const sym = readSignalRowFrame(ring, at, out, decision);
        const signal = decoder.toSignal(out, sym);
        signal.lat.risk = decision.risk;
        if (decision.approved) signal.lat.pub = decision.pub;
        w.addSignal({
          signal,
          status: decision.approved ? 'approved' : 'rejected',
          reason: decision.reason === 0 ? '' : (RiskRejectReasons[decision.reason - 1] ?? ''),
        });
        break;
      }
      case FrameType.OUTPUT: {
        readOutputRecord(ring, at, out, false);
        const sym = symbols[out.symId] ?? `#${out.symId}`;
        if (out.kind === OutputKind.PREDICTION) {
          const p = decoder.fillPrediction(
            out,
            sym,
            predictionPool.pop() ?? decoder.newPrediction(),
          );
          // The features as the worker encoded them: formatted once, kept as is.
          const text = outputFrameText(ring, at, ring.length());
          if (text === '') delete p.featuresJson;
          else p.featuresJson = text;
          w.addPrediction(p);
        } else if (out.kind === OutputKind.QUALITY) w.addQuality(decoder.toQuality(out, sym));
        break;
      }
    }
    ring.release();
    n++;
  }
  if (feed.ticks !== ticks0) checkpoint(feed);
  return n;
}

function feedBytes(): number {
  let n = 0;
  for (const f of feeds) n += f.ring.used();
  return n;
}

function postStats(): void {
  if (writer !== undefined) post({ type: 'stats', stats: writer.stats(), feedBytes: feedBytes() });
}

async function onMessage(msg: StoreToWorker): Promise<void> {
  switch (msg.type) {
    case 'rows':
      writer!.addMetrics(msg.metrics);
      return;
    case 'audit':
      // Answered by publishDurable (every drain, ≤ STORE_POLL_MS) once inserted or spilled.
      writer!.addAudit(msg.events);
      auditWaiting.push({ id: msg.id, mark: writer!.rowsAdded });
      return;
    case 'flush':
      for (const f of feeds) drain(f, Number.MAX_SAFE_INTEGER);
      await writer!.flush();
      publishDurable();
      postStats();
      post({ type: 'flushed', id: msg.id });
      return;
    case 'model-ref':
      models.set(msg.model, msg.entry);
      post({ type: 'flushed', id: msg.id });
      return;
    case 'query':
      // Not on the message chain's critical path for long: queries are rare (CLI, demo).
      try {
        post({ type: 'result', id: msg.id, rows: await store!.query(msg.sql) });
      } catch (err) {
        post({ type: 'result', id: msg.id, error: describe(err) });
      }
      return;
    case 'stop':
      stopping = true;
      stopRequested();
      for (const f of feeds) f.ring.wakeConsumer();
      return;
  }
}

function describe(err: unknown): { code: string; message: string } {
  const e = err as { code?: unknown; message?: unknown };
  return {
    code: typeof e?.code === 'string' ? e.code : 'QLN_STORE_FAILED',
    message: typeof e?.message === 'string' ? e.message : String(err),
  };
}

/** Drain one ring until stopped: batches, then park on the ring. */
async function drainLoop(feed: Feed): Promise<void> {
  for (;;) {
    const n = drain(feed, BATCH);
    publishDurable();
    if (n === BATCH) {
      // Let control messages (rows, flush, stop) run between batches.
      await new Promise<void>((r) => setImmediate(r));
      continue;
    }
    if (stopping && feed.ring.peek() === -1) return;
    const wait = feed.ring.waitForData(stopping ? 10 : STORE_POLL_MS);
    if (wait !== null) await wait;
  }
}

/**
 * Storing is throughput work next to latency work: on two cores a second's
 * batch (formatting, the embedded engine's parse, write and merges) would
 * otherwise preempt the shard workers and the main thread for tens of ms
 * (measured: p99 tick → WebSocket 11 → 37 ms at 10k ticks/s with 1 s
 * batches). This thread, and the engine threads it starts (threads inherit
 * the nice value), yield to them. Linux: /proc/thread-self names this
 * thread's id; elsewhere the priority stays as it is.
 */
const STORE_NICE = 10;

function lowerPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, STORE_NICE);
  } catch (err) {
    log.debug({ err }, 'store worker priority unchanged');
  }
}

/**
 * The embedded engine also starts threads from other threads (its global
 * pool grows on demand from the insert's libuv thread): lower those too.
 * Node's own threads are all named `node`; the engine names its own.
 */
function lowerEngineThreads(): void {
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return;
  }
  for (const t of tasks) {
    try {
      const comm = readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim();
      const tid = Number(t);
      if (comm !== 'node' && getPriority(tid) < STORE_NICE) setPriority(tid, STORE_NICE);
    } catch {
      // the thread ended meanwhile
    }
  }
}

async function main(): Promise<void> {
  lowerPriority();
  try {
    store = await createStore(init.config);
    await store.migrate();
    const ttl = (store as { lastTtl?: TtlResult }).lastTtl;
    if (ttl !== undefined && !ttl.supported)
      log.warn(
        { version: ttl.version, storeTtlDays: init.config.storeTtlDays },
        'storeTtlDays ignored: the server has no TTL clauses (ClickHouse 19.6+)',
      );
    else if (ttl !== undefined) log.info({ tables: ttl.applied }, 'store TTL set');
    writer = new StoreWriter({
      store,
      log,
      spillDir: init.spillDir ?? spillDir(init.config),
      ...init.writer,
      release: releaseRows,
    });
    await writer.start();
  } catch (err) {
    post({ type: 'fatal', ...describe(err) });
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
  const statsTimer = setInterval(() => {
    postStats();
    if (init.config.clickhouseUrl === undefined) lowerEngineThreads();
  }, init.statsIntervalMs);
  post({ type: 'ready' });
  await Promise.all([stopped, ...feeds.map((f) => drainLoop(f))]);
  await chain;
  clearInterval(statsTimer);
  await writer.close();
  publishDurable();
  await store.close();
  postStats();
  post({ type: 'stopped' });
  port!.close();
}

void main();
