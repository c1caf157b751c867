/**
 * Subscriber sessions end to end (docs/adr/0007): a real kernel (KernelApp on
 * the local NATS, Redis and ClickHouse) turns trades into signals; a
 * WebSocket subscriber disconnects, over 1,000 signals are published while it
 * is away, and it reconnects with its epoch and last offset:
 *
 * ```
 *  MarketFeed md.<venue>.<sym> ─► KernelApp ─► /ws signal/<sym> ─┬─► watcher (connected throughout)
 *                                                                 └─► subscriber: 20 ─ away: 1,100 ─ resume
 * ```
 * It must receive every signal it missed, in order, exactly once: the same
 * frames (offsets and signal ids) the watcher got.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import t from 'tap';
import WebSocket from 'ws';
import { KernelApp } from '../../cli/kernel-app.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { MarketFeed } from '../helpers/market-feed.js';
import { connectAs, ensureServices } from '../helpers/services.js';
import { SIGNAL_EVERY_TRADE, testKernelConfig } from '../helpers/test-kernel.js';
import { until } from '../helpers/wait.js';
import { opened } from '../helpers/ws.js';

const run = randomBytes(3).toString('hex');
const READ_KEY = `wsr-read-${run}`;
const SYM = `WSR${run}`;
const TOPIC = `signal/${SYM}`;

interface Frame {
  type?: string;
  topic?: string;
  off?: number;
  epoch?: string;
  reason?: string;
  data?: { id: string; src: { seq: number } };
}

/** A WebSocket client that records every frame. */
class Conn {
  readonly frames: Frame[] = [];
  closed = false;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (raw: Buffer) => this.frames.push(JSON.parse(raw.toString('utf8')) as Frame));
    ws.on('close', () => (this.closed = true));
  }

  static async open(port: number): Promise<Conn> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
      headers: { authorization: `Bearer ${READ_KEY}` },
    });
    const c = new Conn(ws);
    await opened(ws, 10_000);
    return c;
  }

  signals(): Frame[] {
    return this.frames.filter((f) => f.topic === TOPIC);
  }

  /** Subscribe (optionally resuming), then ping: resolves once the pong is in, i.e. after the replay. */
  async subscribe(resume?: unknown): Promise<{ ack: number; pong: number }> {
    const from = this.frames.length;
    this.ws.send(
      JSON.stringify({ op: 'subscribe', topics: [TOPIC], ...(resume ? { resume } : {}) }),
    );
    this.ws.send(JSON.stringify({ op: 'ping' }));
    await until('the pong after subscribe', () =>
      this.frames.slice(from).some((f) => f.type === 'pong'),
    );
    const ack = this.frames.findIndex((f, i) => i >= from && f.type === 'subscribed');
    const pong = this.frames.findIndex((f, i) => i >= from && f.type === 'pong');
    return { ack, pong };
  }
}

void t.test(
  'a subscriber that reconnects after missing 1,000+ signals receives every one, in order',
  async (t) => {
    const urls = await ensureServices();
    const db = `qilin_wsr_${run}`;
    const config = await testKernelConfig(urls, db, READ_KEY, SIGNAL_EVERY_TRADE);
    const app = new KernelApp({
      config,
      log: pino({ level: 'silent' }),
      strategy: `wsr${run}`,
      account: `wsracct${run}`,
    });
    await app.start();
    const nc = await connectAs('admin', { name: 'ws-resume-test' }, urls);
    t.teardown(async () => {
      await nc.drain();
      await app.close();
      await dropDatabase(urls.clickhouseUrl, db);
    });
    const feed = new MarketFeed(nc, `wsrv${run}`);
    /** Resolves when the watcher has the signal of the symbol's last trade. */
    const watcher = await Conn.open(app.port);
    await watcher.subscribe();
    const caughtUp = (lastTradeSeq: number): Promise<void> =>
      until(
        `the watcher to get the signal of trade ${lastTradeSeq}`,
        () => watcher.signals().some((f) => f.data?.src.seq === lastTradeSeq),
        90_000,
      );

    const sub = await Conn.open(app.port);
    const first = await sub.subscribe();
    const epoch = sub.frames[first.ack]!.epoch!;
    t.equal(typeof epoch, 'string', '`subscribed` names the epoch');

    // 30 trades (+ quotes): signals after the warm-up; the subscriber gets them live.
    feed.trend(SYM, 30, 1);
    const firstBatchSeq = feed.seqs.get(SYM)! - 1; // the last trade (a quote follows it)
    await caughtUp(firstBatchSeq);
    await until('the subscriber to have what the watcher has', () => {
      const w = watcher.signals();
      const s = sub.signals();
      return s.length > 0 && s.at(-1)!.off === w.at(-1)!.off;
    });
    const have = sub.signals().at(-1)!.off!;
    t.ok(have >= 20, `the subscriber got ${have} signals live`);
    sub.ws.close();
    await until('the subscriber closed', () => sub.closed);

    // Away: 1,100 more trades, so well over 1,000 signals.
    feed.trend(SYM, 1100, 1, 110);
    await caughtUp(feed.seqs.get(SYM)! - 1);
    const missed = watcher.signals().filter((f) => f.off! > have);
    t.ok(missed.length >= 1000, `${missed.length} signals published while away (≥ 1,000)`);

    const back = await Conn.open(app.port);
    const { ack, pong } = await back.subscribe({ epoch, offsets: { [TOPIC]: have } });
    t.equal(back.frames[ack]!.epoch, epoch, 'same kernel, same epoch');
    const replay = back.frames.slice(ack + 1, pong);
    t.equal(
      replay.filter((f) => f.type === 'history_lost').length,
      0,
      'no history_lost: all of it was held',
    );
    const got = replay.filter((f) => f.topic === TOPIC);
    t.equal(got.length, missed.length, 'every missed signal, exactly once');
    t.same(
      got.map((f) => f.off),
      missed.map((f) => f.off),
      'the same offsets, in order (contiguous from the last one seen)',
    );
    t.same(
      got.map((f) => f.off),
      Array.from({ length: missed.length }, (_, k) => have + 1 + k),
      'no gap, no duplicate',
    );
    t.same(
      got.map((f) => f.data!.id),
      missed.map((f) => f.data!.id),
      'the same signals as the watcher got live',
    );
    const seqs = got.map((f) => f.data!.src.seq);
    t.ok(
      seqs.every((s, i) => i === 0 || s > seqs[i - 1]!),
      'in the order of the trades that caused them',
    );
    back.ws.close();
    watcher.ws.close();
  },
);
