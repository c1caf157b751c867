/**
 * Ticks from the JetStream market stream (the one `qilin start --jetstream
 * STREAM:DURABLE` consumes, subjects `md.<venue>.<symbol>[.<partition>]`),
 * read with an ordered consumer (no durable, no acks: nothing the kernel's
 * own consumers see changes), decoded by the kernel's decoders (JSON, or
 * binary by Content-Type, as the kernel does), `recv` = the message's
 * JetStream timestamp in µs.
 *
 * Bounded: `open()` takes the stream's last sequence; the replay ends there
 * (`next` returns 0) even while the market keeps publishing. Start: `since`
 * (µs: the first message JetStream stored at or after it), or `startSeq`, or
 * the stream's first message.
 * `total` is the consumer's pending count at the start. Messages the
 * decoders refuse are counted in `rejected`. A stream that does not exist or
 * a server that does not answer throws QLN_REPLAY_SOURCE_FAILED.
 */
import {
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type Consumer,
  type JsMsg,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  TICK_BINARY_CONTENT_TYPE,
  TickBinaryCodec,
} from '../../adapters/nats/tick-binary-codec.js';
import { TickJsonDecoder, type DecodeResult } from '../../adapters/nats/tick-json-decoder.js';
import { invalidArgument } from '../../kernel/errors.js';
import { newMarketEvent } from '../../kernel/market-record.js';
import { SymbolIds, appendTick, type TickChunk, type TickSource } from '../tick-chunk.js';
import { KEPT_REJECTIONS, sourceFailed, type RejectedRow } from './tick-fields.js';

/** Options of {@link JetStreamTickSource}. */
export interface JetStreamSourceOptions {
  nc: NatsConnection;
  /** Stream name (default `QILIN_MD`). */
  stream?: string;
  /**
   * Subjects to read, as stored: the project's NATS maps `md.<venue>.<sym>`
   * to `md.<venue>.<sym>.<partition>`, so `md.binance.BTCUSDT.>` (default:
   * all of the stream's; more than one needs nats-server 2.10+).
   */
  subjects?: string[];
  /** Start at the first message stored at or after this time, µs since epoch. */
  since?: number;
  /** Start at this stream sequence (exclusive with `since`). */
  startSeq?: number;
  /** Close the connection with the source (default false). */
  ownsConnection?: boolean;
  /** How long one fetch waits for messages the server said are there, ms (default 5000). */
  fetchTimeoutMs?: number;
}

export class JetStreamTickSource implements TickSource {
  readonly description: string;
  total: number | undefined = undefined;
  read = 0;
  rejected = 0;
  /** The first refused messages: stream sequence and reason. */
  readonly rejections: RejectedRow[] = [];
  /** Last stream sequence of the replay (0 before `open`). */
  lastSeq = 0;
  private readonly ids = new SymbolIds();
  private readonly o: JetStreamSourceOptions;
  private readonly stream: string;
  private readonly json = new TickJsonDecoder();
  private readonly binary = new TickBinaryCodec({});
  private readonly ev = newMarketEvent();
  private consumer: Consumer | undefined;
  private opened = false;
  private done = false;
  private closed = false;
  private seq = 0;
  private readonly sinceNs: bigint;

  constructor(o: JetStreamSourceOptions) {
    this.stream = o.stream ?? 'QILIN_MD';
    if (!/^[A-Za-z0-9_-]+$/.test(this.stream)) {
      invalidArgument('stream', this.stream, 'a stream name [A-Za-z0-9_-]+');
    }
    if (o.since !== undefined && o.startSeq !== undefined) {
      invalidArgument('since', o.since, 'either since or startSeq, not both');
    }
    if (o.since !== undefined && !(Number.isFinite(o.since) && o.since >= 0)) {
      invalidArgument('since', o.since, 'µs since epoch');
    }
    if (o.startSeq !== undefined && !(Number.isSafeInteger(o.startSeq) && o.startSeq >= 1)) {
      invalidArgument('startSeq', o.startSeq, 'a stream sequence ≥ 1');
    }
    this.o = o;
    this.sinceNs = o.since === undefined ? 0n : BigInt(Math.floor(o.since)) * 1000n;
    const from =
      o.since !== undefined
        ? ` since ${o.since}`
        : o.startSeq !== undefined
          ? ` from seq ${o.startSeq}`
          : '';
    this.description = `jetstream ${this.stream}${from}`;
  }

  get symbols(): readonly string[] {
    return this.ids.names;
  }

  /** Take the stream's last sequence (the bound) and start the ordered consumer. */
  async open(): Promise<void> {
    if (this.opened) return;
    this.opened = true;
    const o = this.o;
    try {
      const jsm = await jetstreamManager(o.nc);
      const si = await jsm.streams.info(this.stream);
      this.lastSeq = si.state.last_seq;
      if (si.state.messages === 0 || (o.startSeq !== undefined && o.startSeq > this.lastSeq)) {
        this.total = 0;
        this.done = true;
        return;
      }
      this.consumer = await jetstream(o.nc).consumers.get(this.stream, {
        // One subject as a string: servers before 2.10 (Debian's) take a single filter only.
        ...(o.subjects !== undefined
          ? { filter_subjects: o.subjects.length === 1 ? o.subjects[0]! : o.subjects }
          : {}),
        ...(o.since !== undefined
          ? {
              deliver_policy: DeliverPolicy.StartTime,
              opt_start_time: new Date(Math.floor(o.since / 1000)).toISOString(),
            }
          : o.startSeq !== undefined
            ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: o.startSeq }
            : { deliver_policy: DeliverPolicy.All }),
      });
      const ci = await this.consumer.info();
      this.total = ci.num_pending;
      if (ci.num_pending === 0) this.done = true;
    } catch (cause) {
      const msg = cause instanceof Error ? cause.message : String(cause);
      throw sourceFailed(
        this.description,
        /stream not found/i.test(msg) ? `no stream ${this.stream}` : 'cannot read the stream',
        cause,
        { stream: this.stream },
      );
    }
  }

  async next(into: TickChunk): Promise<number> {
    into.length = 0;
    if (this.closed) return 0;
    if (!this.opened) await this.open();
    while (!this.done && into.length < into.capacity) {
      let got = 0;
      try {
        const batch = await this.consumer!.fetch({
          max_messages: into.capacity - into.length,
          expires: this.o.fetchTimeoutMs ?? 5000,
        });
        for await (const m of batch) {
          got++;
          if (m.seq > this.lastSeq) {
            this.done = true;
            break;
          }
          // The server starts at a millisecond; messages of that millisecond before `since` are outside.
          if (this.sinceNs === 0n || m.timestampNanos >= this.sinceNs) this.take(m, into);
          if (m.seq >= this.lastSeq || m.info.pending === 0) {
            this.done = true;
            break;
          }
        }
      } catch (cause) {
        throw sourceFailed(this.description, `reading after stream seq ${this.seq} failed`, cause);
      }
      // Nothing came although the server said messages were left: a stall, not the end.
      if (got === 0) {
        throw sourceFailed(
          this.description,
          `no message within ${this.o.fetchTimeoutMs ?? 5000} ms after stream seq ${this.seq} though the replay ends at ${this.lastSeq}`,
        );
      }
    }
    this.read += into.length;
    return into.length;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.done = true;
    await this.consumer?.delete().catch(() => undefined);
    if (this.o.ownsConnection === true) await this.o.nc.close();
  }

  private take(m: JsMsg, into: TickChunk): void {
    this.seq = m.seq;
    const ev = this.ev;
    const ct = m.headers?.get('Content-Type') ?? '';
    let r: DecodeResult;
    if (ct === TICK_BINARY_CONTENT_TYPE) r = this.binary.decode(m.subject, m.data, ev);
    else r = this.json.decode(m.subject, m.data, ev);
    if (!r.ok) {
      this.rejected++;
      if (this.rejections.length < KEPT_REJECTIONS) {
        this.rejections.push({ at: m.seq, reason: `${r.reason}: ${r.detail}` });
      }
      return;
    }
    ev.symId = this.ids.id(r.sym);
    ev.recv = Number(m.timestampNanos / 1000n);
    appendTick(into, ev);
  }
}
