/**
 * The load process of one bench step (forked by load-client.ts): publishes
 * the bench market on NATS on an open-loop schedule and receives what comes
 * back, on the same clock, so no cross-process clock enters a latency:
 *
 * ```
 *  load process (this file, one thread, one clock: nowUs())
 *  ┌────────────────────────────────────────────────────────────────────┐
 *  │ 1 ms timer ─► PacingSchedule.dueBy(now) ─► TickWriter ─► pubNc.publish(md.bench.<sym>)
 *  │                                    SendTable.markSent(k, nowUs())   │
 *  │ kernel/relay/ws: N × ws client ◄── prediction/<sym> frames          │
 *  │ raw:             subNc.subscribe('md.>') ◄── the ticks themselves    │
 *  │   → (symbol, seq) by byte search → SendTable.arrive(sym, seq, nowUs())
 *  └────────────────────────────────────────────────────────────────────┘
 * ```
 * Bounded: exits at `spec.deadlineMs`, when the bench's IPC channel closes,
 * and when told to stop after its result. Loopback only (the URLs the bench gives).
 */
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import WebSocket from 'ws';
import { nowUs } from '../../kernel/clock.js';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';
import { lastSeq, predictionSymbol, srcSeq, tickSymbol } from './frame-fields.js';
import type { FromLoad, LoadResult, LoadStepSpec, ToLoad } from './load-protocol.js';
import { PacingSchedule } from './pacing-schedule.js';
import { SendTable } from './send-table.js';
import { TickWriter } from './tick-writer.js';

const SUBSCRIBED = Buffer.from('"type":"subscribed"');
const PROGRESS_MS = 500;
const FLUSH_US = 250_000;
const CONNECT_BATCH = 50;

function send(msg: FromLoad): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined || !process.connected) {
      resolve();
      return;
    }
    process.send(msg, undefined, {}, () => resolve());
  });
}

/** One WebSocket subscriber. */
class Subscriber {
  ws: WebSocket | undefined;
  frames = 0;
  subscribed = false;
  closed: string | undefined;
}

class LoadStep {
  private readonly spec: LoadStepSpec;
  private readonly writer: TickWriter;
  private readonly subjects: string[];
  private pubNc: NatsConnection | undefined;
  private subNc: NatsConnection | undefined;
  private rawSub: Subscription | undefined;
  private readonly subscribers: Subscriber[] = [];
  private table: SendTable | undefined;
  private staleBeforeGo = 0;
  private lastArrivalUs = 0;
  private readonly kernelFrames: boolean;

  constructor(spec: LoadStepSpec) {
    this.spec = spec;
    this.writer = new TickWriter(spec.symbols, spec.seed);
    this.subjects = this.writer.subjects(spec.subjectPrefix);
    this.kernelFrames = spec.subject === 'kernel';
  }

  /** Connect everything; resolves with the stale frames seen before the start. */
  async connect(): Promise<number> {
    const s = this.spec;
    this.pubNc = await connect({ servers: s.natsUrl, name: 'qilin-bench-load-pub' });
    if (s.subject === 'raw') {
      this.subNc = await connect({ servers: s.natsUrl, name: 'qilin-bench-load-sub' });
      this.rawSub = this.subNc.subscribe(`${s.subjectPrefix}.>`, {
        callback: (err, msg) => {
          const recv = nowUs();
          if (err !== null) return;
          const d = msg.data;
          const b = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
          this.onArrival(tickSymbol(b), lastSeq(b), recv);
        },
      });
      await this.subNc.flush();
    } else {
      if (s.wsUrl === undefined) {
        throw new QilinError(ErrorCodes.INTERNAL, `${s.subject} step without a WebSocket URL`);
      }
      for (let i = 0; i < s.subscribers; i += CONNECT_BATCH) {
        const batch: Promise<void>[] = [];
        for (let j = i; j < Math.min(s.subscribers, i + CONNECT_BATCH); j++) {
          batch.push(this.connectOne(s.wsUrl, j));
        }
        await Promise.all(batch);
      }
    }
    return this.staleBeforeGo;
  }

  private connectOne(url: string, index: number): Promise<void> {
    const sub = new Subscriber();
    this.subscribers[index] = sub;
    const headers: Record<string, string> = {};
    if (this.spec.apiKey !== undefined) headers['Authorization'] = `Bearer ${this.spec.apiKey}`;
    const ws = new WebSocket(url, { perMessageDeflate: false, headers });
    sub.ws = ws;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new QilinError(
              ErrorCodes.BENCH_TIMEOUT,
              `WebSocket subscriber ${index} on ${url}: no subscription confirmed within 20 s`,
            ),
          ),
        20_000,
      );
      ws.once('open', () => {
        ws.send('{"op":"subscribe","topics":["prediction/*"]}');
      });
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        reject(
          new QilinError(
            ErrorCodes.BENCH_INTEGRITY,
            `WebSocket ${url} refused the upgrade: HTTP ${res.statusCode ?? '?'}`,
          ),
        );
      });
      ws.on('error', (err) => {
        clearTimeout(timer);
        sub.closed ??= `error ${err.message}`;
        reject(err);
      });
      ws.on('close', (code, reason) => {
        sub.closed ??= `${code} ${reason.toString('utf8')}`;
      });
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        const recv = nowUs();
        if (isBinary) return;
        const sym = predictionSymbol(data);
        if (sym >= 0) {
          if (this.onArrival(sym, this.kernelFrames ? srcSeq(data) : lastSeq(data), recv)) {
            sub.frames++;
          }
        } else if (!sub.subscribed && data.includes(SUBSCRIBED)) {
          sub.subscribed = true;
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  /** One arrival; true when it was a delivery of a tick of this step. */
  private onArrival(sym: number, seq: number, recv: number): boolean {
    this.lastArrivalUs = recv;
    const t = this.table;
    if (t === undefined) {
      this.staleBeforeGo++;
      return false;
    }
    return t.arrive(sym, seq, recv);
  }

  /** Publish on the schedule, drain, and return the result. */
  async run(): Promise<LoadResult> {
    const s = this.spec;
    const nc = this.pubNc!;
    const startUs = nowUs() + 2000;
    const schedule = PacingSchedule.forDuration(s.rate, s.seconds, startUs);
    const warmupCount = schedule.countBefore(s.warmupSeconds);
    const expected = s.subject === 'raw' ? 1 : s.subscribers;
    const table = new SendTable({
      schedule,
      symbols: s.symbols,
      seqStart: s.seqStart,
      warmupCount,
      expected,
      ...(s.coldSeconds > 0 ? { coldEndUs: startUs + s.coldSeconds * 1e6 } : {}),
    });
    table.counts.stale += this.staleBeforeGo;
    this.table = table;
    const writer = this.writer;
    const subjects = this.subjects;
    const total = schedule.total;
    const maxPerTurn = Math.max(200, Math.ceil(s.rate * 0.005));
    const measureAtUs = schedule.intendedUs(warmupCount);
    let measuring = warmupCount === 0;
    if (measuring) void send({ type: 'measuring' });
    let lastTurn = startUs;
    let maxGap = 0;
    let lastFlush = startUs;
    let lastProgress = startUs;
    let nextInterval = s.intervalSeconds > 0 ? startUs + s.intervalSeconds * 1e6 : Infinity;
    let lastPublishUs = startUs;

    await new Promise<void>((resolve, reject) => {
      const turn = (): void => {
        try {
          const now = nowUs();
          if (now - lastTurn > maxGap && now > startUs) maxGap = now - lastTurn;
          lastTurn = now;
          const due = schedule.dueBy(now);
          const until = Math.min(due, table.sent + maxPerTurn);
          for (let k = table.sent; k < until; k++) {
            const sym = k % s.symbols;
            const seq = table.seqOf(k);
            const at = nowUs();
            table.markSent(k, at);
            nc.publish(subjects[sym]!, writer.trade(sym, seq, at));
          }
          if (until > 0) lastPublishUs = nowUs();
          if (!measuring && now >= measureAtUs) {
            measuring = true;
            void send({ type: 'measuring' });
          }
          // The turn that publishes the last tick leaves the interval open:
          // the final one (below, at the end of the drain) closes it.
          if (now >= nextInterval && table.sent < total) {
            void send({
              type: 'interval',
              t: (now - startUs) / 1e6,
              latency: table.interval.summary(),
              delivered: table.counts.delivered,
            });
            table.interval.reset();
            nextInterval += s.intervalSeconds * 1e6;
          }
          if (now - lastProgress > PROGRESS_MS * 1000) {
            lastProgress = now;
            void send({ type: 'progress', sent: table.sent, delivered: table.counts.delivered });
          }
          if (table.sent >= total) {
            nc.flush().then(() => resolve(), reject);
            return;
          }
          if (now - lastFlush > FLUSH_US) {
            lastFlush = now;
            nc.flush().catch(reject);
          }
          // Behind (a stall, or more due than one turn's cap): go again as soon
          // as pending I/O ran; otherwise the next ~1 ms timer turn.
          if (table.sent < due) setImmediate(turn);
          else setTimeout(turn, 1);
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      };
      setTimeout(turn, Math.max(0, (startUs - nowUs()) / 1000));
    });

    const elapsed = (lastPublishUs - startUs) / 1e6 + 1 / s.rate;
    const publish = {
      sent: table.sent,
      measuredSent: table.sent - warmupCount,
      achievedRate: table.sent / Math.max(elapsed, s.seconds),
      maxTurnGapMs: maxGap / 1000,
    };
    if (!measuring) void send({ type: 'measuring' });
    await send({ type: 'published', publish });
    const publishedAt = nowUs();
    this.lastArrivalUs = Math.max(this.lastArrivalUs, publishedAt);
    // Drain: every expected arrival (raw, relay, ws deliver every tick), or
    // nothing for quietMs (kernel: not every tick yields a prediction), or
    // the drain deadline.
    const everyTick = s.subject !== 'kernel';
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        const now = nowUs();
        const done =
          (everyTick && table.outstanding() <= 0) ||
          now - this.lastArrivalUs > s.quietMs * 1000 ||
          now - publishedAt > s.drainSeconds * 1e6;
        if (done) {
          clearInterval(poll);
          resolve();
        }
      }, 20);
    });
    if (s.intervalSeconds > 0) {
      // The last (partial) interval: up to the end of the drain.
      await send({
        type: 'interval',
        t: (nowUs() - startUs) / 1e6,
        latency: table.interval.summary(),
        delivered: table.counts.delivered,
      });
      table.interval.reset();
    }
    const frames = this.subscribers.map((x) => x.frames);
    return {
      type: 'result',
      publish,
      arrivals: { ...table.counts },
      latency: table.corrected.summary(),
      latencyUncorrected: table.uncorrected.summary(),
      cold: s.coldSeconds > 0 ? table.cold.summary() : null,
      perSubscriber: {
        min: frames.length === 0 ? table.counts.delivered : Math.min(...frames),
        max: frames.length === 0 ? table.counts.delivered : Math.max(...frames),
      },
      wsClosed: this.subscribers.flatMap((x, i) =>
        x.closed === undefined ? [] : [`subscriber ${i}: ${x.closed}`],
      ),
      drainSeconds: (nowUs() - publishedAt) / 1e6,
    };
  }

  async close(): Promise<void> {
    for (const sub of this.subscribers) sub.ws?.terminate();
    this.rawSub?.unsubscribe();
    await Promise.all([
      this.pubNc?.close().catch(() => undefined),
      this.subNc?.close().catch(() => undefined),
    ]);
  }
}

function fail(err: unknown): void {
  const e = err as { code?: unknown; message?: unknown };
  void send({
    type: 'failed',
    code: typeof e?.code === 'string' ? e.code : ErrorCodes.INTERNAL,
    message: String(e?.message ?? err),
  }).finally(() => process.exit(1));
}

function main(): void {
  let step: LoadStep | undefined;
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: ToLoad) => {
    if (m.type === 'step') {
      setTimeout(() => {
        process.stderr.write(`qilin bench load process: deadline passed, exiting\n`);
        process.exit(3);
      }, m.spec.deadlineMs).unref();
      step = new LoadStep(m.spec);
      step.connect().then((stale) => send({ type: 'ready', stale }), fail);
    } else if (m.type === 'go' && step !== undefined) {
      // After the result the process stays (idle) until the bench took its
      // last CPU/RSS readings of it and says stop.
      step.run().then(send, fail);
    } else if (m.type === 'stop') {
      const s = step;
      void (s?.close() ?? Promise.resolve()).finally(() => process.exit(0));
    }
  });
}

if (process.send !== undefined && process.argv[1]?.endsWith('load-process.js') === true) main();
