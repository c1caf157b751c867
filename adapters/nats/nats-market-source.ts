import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import {
  nanos,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node';
import { AckQueue } from '../../kernel/ack-queue.js';
import { stampUs } from '../../kernel/clock.js';
import { ErrorCodes, hasCode, invalidArgument } from '../../kernel/errors.js';
import type { Logger } from '../../kernel/logger.js';
import { newMarketEvent } from '../../kernel/market-record.js';
import type { MarketIngest, MarketSource, RejectReason } from '../../kernel/market-source.js';
import { TICK_BINARY_CONTENT_TYPE, TickBinaryCodec } from './tick-binary-codec.js';
import { TickJsonDecoder, parseMarketSubject, type DecodeResult } from './tick-json-decoder.js';

/** JetStream mode: replay/backfill or partitioned consumption with redelivery. */
export interface NatsMarketJetStreamOptions {
  /** Stream holding the market subjects; created (file storage, limits) when missing. */
  stream: string;
  /**
   * Durable pull consumer name; a restarted source resumes where it left off.
   * With several subjects, one consumer each: `durables[i]`, or `<durable>-<i>`.
   */
  durable: string;
  /** Consumer name per subject (same order as `subjects`). */
  durables?: string[];
  /** Redelivery delay for a tick the ring could not take, ms (default 50). */
  nakDelayMs?: number;
  /**
   * Server waits this long for an ack before redelivering, ms (default
   * 30000). Applies when the source creates the consumer. A tick is acked
   * once its store row is durable (about a second: the store's batch); a
   * message waiting longer than a third of this is reported in progress
   * (`working()`), so a slow store does not cause redeliveries.
   */
  ackWaitMs?: number;
  /** Unacknowledged messages the server allows in flight (default 20000). */
  maxAckPending?: number;
  /** Messages per pull request (default 1000). */
  batch?: number;
  /** Stream limits when the source creates it: max age ms (default 24 h). */
  maxAgeMs?: number;
  /** Stream limits when the source creates it: max bytes (default 1 GiB). */
  maxBytes?: number;
}

/** Options of {@link NatsMarketSource}. */
export interface NatsMarketSourceOptions {
  /** A connected client (see connectNats); the source never closes it. */
  nc: NatsConnection;
  /** Subject filter, default `md.>`. */
  subject?: string;
  /** Several filters (a worker's partitions, `md.*.*.<p>`); overrides `subject`. */
  subjects?: string[];
  /**
   * Keep only these symbols (evaluated once per subject and cached): a worker
   * sharing an unpartitioned subject with the others takes its own symbols.
   * Others' messages are skipped before decoding and not counted.
   */
  keep?: (symbol: string) => boolean;
  /** Stream subjects when the source creates the JetStream stream (default: the filters). */
  streamSubjects?: string[];
  /** Consume from a JetStream durable instead of a core subscription. */
  jetstream?: NatsMarketJetStreamOptions;
  log: Logger;
  /** Largest accepted payload in bytes (default 4096); bigger ones are `oversized`. */
  maxPayload?: number;
  /** Core mode: a queue group so several kernels share one subject space (default none). */
  queue?: string;
  /**
   * Warm restart (docs/adr/0006-warm-restart.md): the snapshot unit of each
   * subject (same order as `subjects`). At start the source asks the ingest
   * to restore each unit and, with JetStream, replays the stream from the
   * unit's snapshot position to what its durable had delivered before it
   * consumes. Unset: no restore.
   */
  units?: string[];
}

/** Counters of one source, for metrics and tests. */
export interface NatsMarketSourceStats {
  received: number;
  accepted: number;
  rejected: number;
  /** Core mode: accepted by the decoder but refused by a full ring (lost). */
  dropped: number;
  /** JetStream mode: nak'd because the ring was full (redelivered later). */
  naked: number;
  /** JetStream mode: acked once the tick's store row was durable (or at once: skipped). */
  acked: number;
  /** JetStream mode: accepted messages waiting for their store row to be durable. */
  ackWaiting: number;
  /** JetStream mode: messages delivered more than once (the first was not acked in time). */
  redelivered: number;
  /** Warm restart: messages read back from the stream into restored actors. */
  replayed: number;
}

/** How often accepted JetStream messages are checked against the store's durable mark. */
const ACK_EVERY_MS = 20;
/** Longest a closing source waits for the store to make what it accepted durable. */
const CLOSE_ACK_WAIT_MS = 5000;

/** What happened to one message (plain numbers: no allocation per tick). */
const Outcome = { ACCEPTED: 0, REJECTED: 1, FULL: 2, SKIPPED: 3 } as const;
type Outcome = (typeof Outcome)[keyof typeof Outcome];

const JSON_TYPE = 'application/json';

/**
 * Market data in from NATS (`md.<venue>.<symbol>`), core or JetStream.
 *
 * ```
 *  NATS msg ──► content type? ──► TickJsonDecoder │ TickBinaryCodec ──► one reused MarketEvent
 *                   │ other              │ refused                          │ recv = stampUs()
 *                   ▼                    ▼                                  ▼ symId = intern(sym)
 *            reject(unsupported)   reject(reason)                    ingest.accept(ev, venue)
 *                                                             core: false → counted as dropped
 *                                            JetStream: true → ack, false → nak(delay), refused → term
 * ```
 * Messages are handled in the subscription callback (no async iterator per
 * message); nothing thrown by a decoder escapes into the NATS client.
 */
export class NatsMarketSource implements MarketSource {
  private readonly nc: NatsConnection;
  private readonly subjects: string[];
  private readonly keep: ((symbol: string) => boolean) | undefined;
  private readonly kept = new Map<string, boolean>();
  private readonly streamSubjects: string[];
  private readonly js: NatsMarketJetStreamOptions | undefined;
  private readonly log: Logger;
  private readonly queue: string | undefined;
  private readonly json: TickJsonDecoder;
  private readonly binary: TickBinaryCodec;
  private readonly ev = newMarketEvent();
  private readonly counters: NatsMarketSourceStats = {
    received: 0,
    accepted: 0,
    rejected: 0,
    dropped: 0,
    naked: 0,
    acked: 0,
    ackWaiting: 0,
    redelivered: 0,
    replayed: 0,
  };
  private readonly units: string[] | undefined;
  /** Unit number of each subject (from ingest.restore; 0: none). */
  private readonly unitOf: number[];
  /** JetStream: accepted messages until their rows are durable; undefined: ack at once. */
  private acks: AckQueue<JsMsg> | undefined;
  private ackTimer: NodeJS.Timeout | undefined;
  /** Coarse clock (ms) for the ack queue, advanced by the ack timer. */
  private now = Date.now();
  private lastWorkingAt = 0;
  private ackWaitMs = 30_000;
  private readonly ackOne = (m: JsMsg): void => {
    m.ack();
    this.counters.acked++;
  };
  private readonly workingOne = (m: JsMsg): void => {
    m.working();
  };
  private ingest: MarketIngest | undefined;
  private readonly subs: Subscription[] = [];
  private readonly messages: ConsumerMessages[] = [];
  private closing: Promise<void> | undefined;

  constructor(opts: NatsMarketSourceOptions) {
    this.nc = opts.nc;
    this.subjects = opts.subjects ?? [opts.subject ?? 'md.>'];
    for (const subject of this.subjects) {
      if (!/^md(\.([A-Za-z0-9_-]+|\*))*(\.>)?$/.test(subject)) {
        invalidArgument('subject', subject, 'md.> or a filter under md. (tokens, * or a final >)');
      }
    }
    if (this.subjects.length === 0) invalidArgument('subjects', '[]', 'one or more filters');
    this.keep = opts.keep;
    this.streamSubjects = opts.streamSubjects ?? this.subjects;
    this.js = opts.jetstream;
    if (this.js !== undefined) {
      if (!/^[A-Za-z0-9_-]+$/.test(this.js.stream)) {
        invalidArgument('jetstream.stream', this.js.stream, 'a stream name [A-Za-z0-9_-]+');
      }
      for (const d of [this.js.durable, ...(this.js.durables ?? [])]) {
        if (!/^[A-Za-z0-9_-]+$/.test(d)) {
          invalidArgument('jetstream.durable', d, 'a consumer name [A-Za-z0-9_-]+');
        }
      }
      if (this.js.durables !== undefined && this.js.durables.length !== this.subjects.length) {
        invalidArgument('jetstream.durables', this.js.durables.length, 'one name per subject');
      }
    }
    this.log = opts.log.child({
      source: 'nats-market',
      subject: this.subjects.length === 1 ? this.subjects[0] : `${this.subjects.length} subjects`,
    });
    this.queue = opts.queue;
    this.units = opts.units;
    if (this.units !== undefined && this.units.length !== this.subjects.length) {
      invalidArgument('units', this.units.length, 'one unit name per subject');
    }
    this.unitOf = this.subjects.map(() => 0);
    const maxBytes = opts.maxPayload ?? 4096;
    this.json = new TickJsonDecoder({ maxBytes });
    this.binary = new TickBinaryCodec({ maxBytes });
  }

  /** JetStream redelivers what `accept` refuses (nak); a core subscription does not. */
  get redelivers(): boolean {
    return this.js !== undefined;
  }

  /** Live counters (the same object on every call). */
  stats(): Readonly<NatsMarketSourceStats> {
    return this.counters;
  }

  /** Subscribe (core) or create stream + durable and start consuming (JetStream). */
  async start(ingest: MarketIngest): Promise<void> {
    if (this.ingest !== undefined) invalidArgument('start', 'twice', 'start() once per source');
    this.ingest = ingest;
    if (this.js === undefined) {
      await this.restoreUnits();
      for (let i = 0; i < this.subjects.length; i++) {
        const subject = this.subjects[i]!;
        const unit = this.unitOf[i]!;
        this.subs.push(
          this.nc.subscribe(subject, {
            ...(this.queue === undefined ? {} : { queue: this.queue }),
            callback: (err, msg) => {
              if (err !== null) {
                this.log.error({ err }, 'market subscription error');
                return;
              }
              const out = this.handle(msg.subject, msg.headers, msg.data, unit, 0);
              if (out === Outcome.FULL) this.counters.dropped++;
            },
          }),
        );
      }
      // The subscriptions are live once the server has processed SUB.
      await this.nc.flush();
      this.log.info('market source subscribed (core)');
      return;
    }
    await this.startJetStream(this.js);
  }

  private async startJetStream(o: NatsMarketJetStreamOptions): Promise<void> {
    const jsm = await jetstreamManager(this.nc);
    try {
      await jsm.streams.info(o.stream);
    } catch (err) {
      if (!isApiCode(err, JetStreamApiCodes.StreamNotFound)) throw err;
      try {
        await jsm.streams.add({
          name: o.stream,
          subjects: this.streamSubjects,
          storage: StorageType.File,
          retention: RetentionPolicy.Limits,
          discard: DiscardPolicy.Old,
          max_age: nanos(o.maxAgeMs ?? 86_400_000),
          max_bytes: o.maxBytes ?? 1 << 30,
        });
        this.log.info({ stream: o.stream }, 'created market stream');
      } catch (addErr) {
        // Another worker or kernel created it between our info and add: fine.
        await jsm.streams.info(o.stream).catch(() => {
          throw addErr;
        });
      }
    }
    const js = jetstream(this.nc);
    const nakDelay = o.nakDelayMs ?? 50;
    const ingest = this.ingest!;
    if (ingest.storeMark !== undefined && ingest.durableMark !== undefined) {
      // Ack after durable: see docs/adr/0005-exactly-once-ticks.md.
      this.ackWaitMs = o.ackWaitMs ?? 30_000;
      this.acks = new AckQueue<JsMsg>(
        Math.min(1 << 16, (o.maxAckPending ?? 20_000) * this.subjects.length),
      );
      this.ackTimer = setInterval(() => this.ackDurable(), ACK_EVERY_MS);
      this.ackTimer.unref();
    }
    const positions = await this.restoreUnits();
    const durables = this.subjects.map(
      (_, i) => o.durables?.[i] ?? (this.subjects.length === 1 ? o.durable : `${o.durable}-${i}`),
    );
    // Every unit replayed before any durable delivers: live messages must
    // not arrive while the actors are still being brought up to date.
    for (let i = 0; i < this.subjects.length; i++) {
      const subject = this.subjects[i]!;
      const unit = this.unitOf[i]!;
      const durable = durables[i]!;
      try {
        const ci = await jsm.consumers.info(o.stream, durable);
        // Restored actors: bring them to where the durable left off before it resumes.
        if (positions[i]! > 0) {
          await this.replay(jsm, o.stream, subject, unit, positions[i]!, ci.delivered.stream_seq);
        }
      } catch (err) {
        if (!isApiCode(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
        await jsm.consumers.add(o.stream, {
          durable_name: durable,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          filter_subject: subject,
          ack_wait: nanos(o.ackWaitMs ?? 30_000),
          max_ack_pending: o.maxAckPending ?? 20_000,
        });
        this.log.info({ stream: o.stream, durable, subject }, 'created market consumer');
      }
    }
    for (let i = 0; i < this.subjects.length; i++) {
      const unit = this.unitOf[i]!;
      const durable = durables[i]!;
      const consumer = await js.consumers.get(o.stream, durable);
      const messages = await consumer.consume({
        max_messages: o.batch ?? 1000,
        callback: (m: JsMsg) => {
          if (this.closing !== undefined) {
            // Pulled while closing: hand it straight back for the next consumer.
            m.nak();
            return;
          }
          if (m.redelivered) this.counters.redelivered++;
          const out = this.handle(m.subject, m.headers, m.data, unit, m.seq);
          if (out === Outcome.ACCEPTED) {
            // Acked once the tick's store row is durable (ackDurable).
            if (this.acks !== undefined) this.acks.push(m, ingest.storeMark!(), this.now);
            else this.ackOne(m);
          }
          // Nothing of ours to store (another worker's symbol): done with it.
          else if (out === Outcome.SKIPPED) this.ackOne(m);
          else if (out === Outcome.REJECTED) m.term('rejected');
          else {
            this.counters.naked++;
            m.nak(nakDelay);
          }
        },
      });
      void messages.closed().then((err) => {
        if (err) this.log.error({ err, durable }, 'market consumer stopped with an error');
      });
      this.messages.push(messages);
    }
    this.log.info(
      { stream: o.stream, consumers: this.subjects.length },
      'market source consuming (JetStream)',
    );
  }

  /**
   * Ack every queued message whose tick the store holds durably; report the
   * oldest ones in progress when the store is slow (so the server does not
   * redeliver them); publish the counts.
   */
  private ackDurable(): void {
    const acks = this.acks!;
    const ingest = this.ingest!;
    this.now = Date.now();
    if (acks.length > 0) acks.release(ingest.durableMark!(), this.ackOne);
    const third = this.ackWaitMs / 3;
    if (
      acks.length > 0 &&
      this.now - acks.oldestAt() > third &&
      this.now - this.lastWorkingAt > third
    ) {
      this.lastWorkingAt = this.now;
      acks.forEach(this.workingOne);
      this.log.warn(
        { waiting: acks.length, oldestMs: this.now - acks.oldestAt() },
        'store slow to make ticks durable: JetStream messages reported in progress',
      );
    }
    this.counters.ackWaiting = acks.length;
    ingest.reportAcks?.(acks.length, this.counters.acked, this.counters.redelivered);
  }

  /** Ask the ingest to restore each subject's unit; the stream position each covers (0: none). */
  private async restoreUnits(): Promise<number[]> {
    const positions = this.subjects.map(() => 0);
    const ingest = this.ingest!;
    if (this.units === undefined || ingest.restore === undefined) return positions;
    for (let i = 0; i < this.subjects.length; i++) {
      const r = await ingest.restore(this.units[i]!);
      this.unitOf[i] = r.unit;
      positions[i] = r.position;
    }
    return positions;
  }

  /**
   * Warm restart: read `subject`'s messages after `from` up to `upTo` (what
   * the durable had delivered: processed before the restart, or about to be
   * redelivered) from the stream with an ordered consumer, into the actors
   * only. What the durable redelivers afterwards is stored but not applied
   * twice (ShardHost: streamSeq at or below the actor's).
   */
  private async replay(
    jsm: JetStreamManager,
    stream: string,
    subject: string,
    unit: number,
    from: number,
    upTo: number,
  ): Promise<void> {
    if (upTo <= from || this.ingest!.replay === undefined) return;
    const t0 = Date.now();
    const first = (await jsm.streams.info(stream)).state.first_seq;
    if (first > from + 1) {
      this.log.warn(
        { stream, subject, from, first },
        'stream no longer holds every message after the snapshot: restored state misses the ones aged out',
      );
    }
    const oc = await jetstream(this.nc).consumers.get(stream, {
      filter_subjects: subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: from + 1,
    });
    let read = 0;
    let applied = 0;
    try {
      for (let done = false; !done;) {
        const batch = await oc.fetch({ max_messages: 1000, expires: 2000 });
        let got = 0;
        for await (const m of batch) {
          got++;
          if (m.seq > upTo) {
            done = true;
            break;
          }
          read++;
          const recv = Math.floor(m.info.timestampNanos / 1000);
          const out = this.handle(m.subject, m.headers, m.data, unit, m.seq, recv, true);
          if (out === Outcome.ACCEPTED) {
            applied++;
          }
          if (m.seq >= upTo) {
            done = true;
            break;
          }
        }
        if (got === 0) done = true;
      }
    } finally {
      await oc.delete().catch(() => undefined);
    }
    this.counters.replayed += applied;
    this.log.info(
      { subject, from, upTo, read, applied, ms: Date.now() - t0 },
      'replayed the stream into restored actors',
    );
  }

  /**
   * Decode, stamp, intern, hand over. Never throws. `recv`: the receive time
   * to stamp (replay: when the stream stored it); default now. `replay`: a
   * message read back into restored actors (ingest.replay: no store row).
   */
  private handle(
    subject: string,
    headers: MsgHdrs | undefined,
    data: Uint8Array,
    unit: number,
    streamSeq: number,
    recv = -1,
    replay = false,
  ): Outcome {
    const ingest = this.ingest!;
    if (this.keep !== undefined && !this.keeps(subject)) return Outcome.SKIPPED;
    const ev = this.ev;
    ev.recv = recv < 0 ? stampUs() : recv;
    ev.unit = unit;
    ev.streamSeq = streamSeq;
    if (replay) return this.handleReplay(subject, headers, data);
    this.counters.received++;
    const ct = headers === undefined ? '' : headers.get('Content-Type');
    let res: DecodeResult;
    try {
      if (ct === '' || ct === JSON_TYPE || ct.startsWith('application/json;')) {
        res = this.json.decode(subject, data, ev);
      } else if (ct === TICK_BINARY_CONTENT_TYPE) {
        res = this.binary.decode(subject, data, ev);
      } else {
        return this.reject(
          'unsupported_content_type',
          subject,
          `Content-Type ${JSON.stringify(ct)} is not ${JSON_TYPE} or ${TICK_BINARY_CONTENT_TYPE}`,
          data,
        );
      }
    } catch (err) {
      // A decoder bug, not bad input the rules know: still the message's fault for the kernel.
      return this.reject(
        ct === TICK_BINARY_CONTENT_TYPE ? 'malformed_binary' : 'malformed_json',
        subject,
        `decoder threw: ${(err as Error).message}`,
        data,
      );
    }
    if (!res.ok) return this.reject(res.reason, subject, res.detail, data);
    try {
      ev.symId = ingest.intern(res.sym);
    } catch (err) {
      if (hasCode(err, ErrorCodes.SYMBOL_TABLE_FULL)) {
        return this.reject('symbol_table_full', subject, (err as Error).message, data);
      }
      this.log.error({ err, subject }, 'ingest.intern threw');
      return Outcome.FULL;
    }
    let ok: boolean;
    try {
      ok = ingest.accept(ev, res.venue);
    } catch (err) {
      this.log.error({ err, subject }, 'ingest.accept threw');
      return Outcome.FULL;
    }
    if (!ok) return Outcome.FULL;
    this.counters.accepted++;
    return Outcome.ACCEPTED;
  }

  /** A replayed message: decoded and interned like a live one, applied to its actor only. */
  private handleReplay(subject: string, headers: MsgHdrs | undefined, data: Uint8Array): Outcome {
    const ev = this.ev;
    const ct = headers === undefined ? '' : headers.get('Content-Type');
    let res: DecodeResult;
    try {
      res =
        ct === TICK_BINARY_CONTENT_TYPE
          ? this.binary.decode(subject, data, ev)
          : this.json.decode(subject, data, ev);
    } catch {
      return Outcome.REJECTED;
    }
    // Refused messages were counted when they were first delivered.
    if (!res.ok) return Outcome.REJECTED;
    try {
      ev.symId = this.ingest!.intern(res.sym);
      return this.ingest!.replay!(ev, res.venue) ? Outcome.ACCEPTED : Outcome.SKIPPED;
    } catch (err) {
      this.log.error({ err, subject }, 'replay into a restored actor failed');
      return Outcome.REJECTED;
    }
  }

  /** Whether `keep` takes the symbol of `subject` (cached; unparsable subjects are kept to be rejected). */
  private keeps(subject: string): boolean {
    let k = this.kept.get(subject);
    if (k === undefined) {
      const parsed = parseMarketSubject(subject);
      k = parsed === undefined || this.keep!(parsed[1]);
      if (this.kept.size >= 1 << 17) this.kept.clear();
      this.kept.set(subject, k);
    }
    return k;
  }

  private reject(reason: RejectReason, subject: string, detail: string, data: Uint8Array): Outcome {
    this.counters.rejected++;
    try {
      this.ingest!.reject(reason, subject, detail, data);
    } catch (err) {
      this.log.error({ err, subject, reason }, 'ingest.reject threw');
    }
    return Outcome.REJECTED;
  }

  /** Stop taking messages, let the subscription finish what it holds, flush acks. Safe twice. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    for (const sub of this.subs) {
      if (sub.isClosed()) continue;
      try {
        await sub.drain();
      } catch (err) {
        this.log.debug({ err }, 'market subscription drain failed (connection closing)');
      }
    }
    for (const m of this.messages) {
      try {
        await m.close();
      } catch (err) {
        this.log.debug({ err }, 'market consumer close failed (connection closing)');
      }
    }
    if (this.acks !== undefined) await this.ackRest();
    // Acks and naks are plain publishes: make sure the server has them before we report closed.
    if (!this.nc.isClosed() && !this.nc.isDraining()) {
      try {
        await this.nc.flush();
      } catch (err) {
        this.log.debug({ err }, 'flush on close failed');
      }
    }
    this.log.info(this.counters, 'market source closed');
  }

  /**
   * Close: wait (bounded) until the store has made durable what this source
   * accepted, acking as it goes; what is left stays unacknowledged and is
   * redelivered to the next run (and stored once: the key dedups).
   */
  private async ackRest(): Promise<void> {
    const acks = this.acks!;
    const deadline = Date.now() + CLOSE_ACK_WAIT_MS;
    // The shard host publishes the last frames on its next flush.
    this.ingest!.flush?.();
    while (acks.length > 0 && Date.now() < deadline && !this.nc.isClosed()) {
      this.ackDurable();
      if (acks.length > 0) await pause(ACK_EVERY_MS);
    }
    clearInterval(this.ackTimer);
    this.ackTimer = undefined;
    this.ackDurable();
    const left = acks.drain(() => undefined);
    if (left > 0) {
      this.log.warn(
        { left },
        'closing before the store made these ticks durable: left unacknowledged for redelivery',
      );
    }
  }
}

/** Resolves after `ms` (the close-time poll of the durable mark; not a synchronisation sleep). */
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isApiCode(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}
