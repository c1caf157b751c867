/**
 * Consumer side of the ring benchmark (bench/ring/ring-bench.ts), one worker
 * thread, as a kernel shard worker would be.
 *
 * ```
 *   main thread (producer)                       this worker (consumer)
 *   ──────────────────────                       ──────────────────────
 *   encodeMarket ─► SpscRing (SAB) ────────────► peek/decodeMarket/release,
 *                                                park in waitForData when empty
 *   worker.postMessage(record) ─ structured ───► 'message' listener, copy fields
 *                                clone
 *   control: {type:'ring'|'post'|'clock'|'exit'} ─►
 *            ◄─ {type:'ready'|'clock'|'done'|'error'} (one ack per phase)
 * ```
 * Every phase is announced by a control message that says how many records
 * follow and the first sequence number; the consumer checks each record's
 * `seq` (a lost, duplicated or torn record shows up as `bad`), measures
 * `nowUs() - recv` into a LatencyRecorder in latency phases, and acks once
 * with `done` after the last record. Nothing is allocated per record on the
 * ring path; the postMessage path allocates what structured clone hands it
 * (that cost is what the baseline measures).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { nowUs } from '../../kernel/clock.js';
import { MarketKind, decodeMarket, newMarketEvent } from '../../kernel/market-record.js';
import type { MarketEvent } from '../../kernel/market-record.js';
import { SpscRing } from '../../kernel/spsc-ring.js';
import { LatencyRecorder } from '../hdr-report.js';
import type { LatencySummary } from '../hdr-report.js';

/** What the consumer is being measured on. */
export type BenchPhase = 'throughput' | 'latency';
/** How postMessage carries a record: a plain object, or a 64-byte Float64Array copy. */
export type PostForm = 'object' | 'f64';

/** workerData of the bench consumer. */
export interface BenchWorkerInit {
  /** The ring's SharedArrayBuffer (SpscRing.create on the main thread). */
  ring: SharedArrayBuffer;
}

/** Main thread → consumer control messages. */
export type BenchToWorker =
  | { type: 'clock'; t0: number }
  | { type: 'ring'; phase: BenchPhase; count: number; firstSeq: number }
  | { type: 'post'; phase: BenchPhase; form: PostForm; count: number; firstSeq: number }
  | { type: 'exit' };

/** Consumer → main thread. */
export type BenchFromWorker =
  | { type: 'ready' }
  /** Clock ping reply: the main thread's send time and this thread's nowUs(). */
  | { type: 'clock'; t0: number; tw: number }
  | {
      type: 'done';
      count: number;
      /** Records whose seq was not the expected one (must be 0). */
      bad: number;
      /** nowUs() on this thread when the last record was read. */
      endUs: number;
      /** Latency phases only. */
      latency: LatencySummary | null;
    }
  | { type: 'error'; code: string; message: string };

/** Records handled before yielding to the event loop, as the kernel's worker-entry does. */
const BATCH = 1024;
/** Park timeout; a wake-up only re-checks, so its size matters little. */
const IDLE_WAIT_MS = 1000;

const port = parentPort;
if (port === null) throw new Error('ring-bench-worker must run in a worker thread');
const init = workerData as BenchWorkerInit;
const ring = SpscRing.attach(init.ring);
const ev: MarketEvent = newMarketEvent();
const recorder = new LatencyRecorder();

/** State of a postMessage phase: while `postLeft > 0` every message is a record. */
let postLeft = 0;
let postForm: PostForm = 'object';
let postPhase: BenchPhase = 'throughput';
let postCount = 0;
let expectSeq = 0;
let bad = 0;

function post(msg: BenchFromWorker): void {
  port!.postMessage(msg);
}

function done(count: number, phase: BenchPhase): void {
  const endUs = nowUs();
  post({
    type: 'done',
    count,
    bad,
    endUs,
    latency: phase === 'latency' ? recorder.summary() : null,
  });
}

function startPhase(firstSeq: number): void {
  expectSeq = firstSeq;
  bad = 0;
  recorder.reset();
}

/** Consume `count` ring records, parking when the ring is empty. */
async function consumeRing(phase: BenchPhase, count: number): Promise<void> {
  const latency = phase === 'latency';
  const f64 = ring.f64;
  const u32 = ring.u32;
  let n = 0;
  while (n < count) {
    let batch = 0;
    let at: number;
    while (batch < BATCH && n < count && (at = ring.peek()) !== -1) {
      decodeMarket(f64, u32, at, ev);
      if (latency) recorder.record(nowUs() - ev.recv);
      if (ev.seq !== expectSeq) bad++;
      expectSeq = ev.seq + 1;
      ring.release();
      batch++;
      n++;
    }
    if (n >= count) break;
    if (batch === BATCH) {
      // Let control messages in, as the kernel's worker loop does.
      await new Promise<void>((resolve) => setImmediate(resolve));
      continue;
    }
    const wait = ring.waitForData(IDLE_WAIT_MS);
    if (wait !== null) await wait;
  }
  done(n, phase);
}

/** Read one postMessage record into the reused event. */
function readPosted(msg: unknown): void {
  if (postForm === 'f64') {
    const f = msg as Float64Array;
    // The Uint32 view is an allocation, but so is the clone itself: this is the baseline's cost.
    decodeMarket(f, new Uint32Array(f.buffer, f.byteOffset, 16), 0, ev);
  } else {
    const o = msg as MarketEvent;
    ev.kind = o.kind;
    ev.symId = o.symId;
    ev.seq = o.seq;
    ev.ts = o.ts;
    ev.recv = o.recv;
    ev.side = o.side;
    if (o.kind === MarketKind.TRADE) {
      ev.px = o.px;
      ev.qty = o.qty;
    } else {
      ev.bid = o.bid;
      ev.bidQty = o.bidQty;
      ev.ask = o.ask;
      ev.askQty = o.askQty;
    }
  }
  if (postPhase === 'latency') recorder.record(nowUs() - ev.recv);
  if (ev.seq !== expectSeq) bad++;
  expectSeq = ev.seq + 1;
  if (--postLeft === 0) done(postCount, postPhase);
}

function fail(err: unknown): void {
  const e = err as { code?: unknown; message?: unknown };
  post({
    type: 'error',
    code: typeof e?.code === 'string' ? e.code : 'QLN_WORKER_DIED',
    message: typeof e?.message === 'string' ? e.message : String(err),
  });
}

// The listener also keeps this thread alive while it is parked in
// Atomics.waitAsync, which holds no event-loop reference of its own.
port.on('message', (msg: BenchToWorker | MarketEvent | Float64Array) => {
  if (postLeft > 0) {
    readPosted(msg);
    return;
  }
  const m = msg as BenchToWorker;
  switch (m.type) {
    case 'clock':
      post({ type: 'clock', t0: m.t0, tw: nowUs() });
      break;
    case 'ring':
      startPhase(m.firstSeq);
      consumeRing(m.phase, m.count).catch(fail);
      break;
    case 'post':
      startPhase(m.firstSeq);
      postForm = m.form;
      postPhase = m.phase;
      postCount = m.count;
      postLeft = m.count;
      if (m.count === 0) done(0, m.phase);
      break;
    case 'exit':
      port.close();
      break;
  }
});
post({ type: 'ready' });
