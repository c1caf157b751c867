import CircuitBreaker from 'opossum';
import { nowUs } from '../kernel/clock.js';
import type { Logger } from '../kernel/logger.js';
import type {
  RiskControlReply,
  RiskRejectReason,
  SignalMessage,
  StageTimes,
} from '../kernel/messages.js';
import { RiskRejectReasons } from '../kernel/messages.js';
import { OutputKind, type OutputEvent } from '../kernel/output-record.js';
import type { SignalDecision } from '../kernel/shard-frames.js';
import type { SignalSink } from '../kernel/signal-sink.js';
import type { PoolOutput } from '../kernel/worker-pool.js';
import type { KillSwitchStore } from './kill-switch.js';
import { OutputDecoder, type OutputDecoderOptions } from './output-decoder.js';
import { patchStageTime } from './output-encoder.js';
import { OutputLayout, QUALITY_COUNT_SLOTS, QUALITY_EVENT_KIND_NAMES } from './output-layout.js';
import { Suppressed } from './signal-gate.js';
import type { RiskActor } from './risk-actor.js';

/**
 * Where encoded frames go to subscribers (the uWS server implements it).
 * `topic()` is called once per topic; `publishFrame` per message, with a
 * view that is only valid during the call.
 */
export interface FrameFanout<H = unknown> {
  topic(name: string): H;
  publishFrame(topic: H, frame: Uint8Array): void;
}

/**
 * Where signals are stored with their risk decision (the store client):
 * the binary event, its symbol and the decision, so nothing is serialised
 * on the main thread.
 */
export interface SignalRowSink {
  writeSignal(event: OutputEvent, symbol: string, decision: SignalDecision): void;
}

/** Where the pipeline posts what executors were last told (kernel/decision-board.ts). */
export interface DecisionSink {
  approve(symId: number, side: number): void;
  unknown(symId: number): void;
  resync(): void;
}

/** Plain counters of the pipeline, read by the metrics adapter at scrape time. */
export interface PipelineCounters {
  predictions: number;
  quality: number;
  /** Quality records by kind (window, change, quarantine, reset). */
  qualityEvents: Record<string, number>;
  /** Issues by check, summed from window-end records. */
  qualityIssues: Record<string, number>;
  signals: number;
  approved: number;
  /** Rejected signals by reason (risk rules, breaker, publish failures). */
  rejected: Partial<Record<RiskRejectReason, number>>;
}

export interface BreakerOptions {
  /** Failing share of calls (≥ volumeThreshold in 10 s) that opens it, %. Default 50. */
  errorThresholdPercentage?: number;
  /** Open → half-open after this long, ms. Default 5000. */
  resetTimeoutMs?: number;
  /** Calls in the rolling window before it may open. Default 5. */
  volumeThreshold?: number;
}

export interface OutputPipelineOptions {
  decoder: OutputDecoderOptions;
  risk: RiskActor;
  /** The account the risk actor guards (kill switch key). */
  account: string;
  fanout: FrameFanout;
  signals: SignalSink;
  rows: SignalRowSink;
  killSwitch: KillSwitchStore;
  breaker?: BreakerOptions;
  log: Logger;
  /** Stage latencies of each published signal (metrics). */
  onStages?: (lat: StageTimes) => void;
  /** Something subscribers see in `status` changed (breaker, kill switch). */
  onStateChange?: () => void;
  /** The pool's DecisionBoard: approvals go there so strategies re-send what was not approved. */
  decisions?: DecisionSink;
}

interface SymbolTopics {
  /** The symbol these topics are for (an id is reused after a worker restart). */
  name: string;
  prediction: unknown;
  signal: unknown;
  quality: unknown;
}

/**
 * The main thread's share of the hot path: route the frames the shard
 * workers encoded, and take the risk decision on candidate signals.
 *
 * ```
 *  out frame ─┬─ PREDICTION, QUALITY ─► fanout: the frame bytes as they are
 *             └─ SIGNAL ─► RiskActor.check ─rejected─► risk.rejected.<sym>, store (rejected)
 *                               │ approved
 *                         breaker open? ──yes──► rejected: breaker_open
 *                               │ no: stamp lat.risk / lat.pub into the frame in place
 *                               ├─► fanout signal/<sym>     (WebSocket subscribers)
 *                               ├─► store (approved)
 *                               └─► opossum breaker ─► SignalSink (JetStream sig.<strategy>.<sym>)
 * ```
 * No I/O of its own: every effect goes through an interface, so it runs in
 * a unit test with fakes. Allocation per prediction or quality event: one
 * view of the frame; per signal: the signal object, the NATS payload copy.
 */
export class OutputPipeline {
  readonly counters: PipelineCounters = {
    predictions: 0,
    quality: 0,
    qualityEvents: {},
    qualityIssues: {},
    signals: 0,
    approved: 0,
    rejected: {},
  };
  private readonly o: OutputPipelineOptions;
  private readonly decoder: OutputDecoder;
  private readonly topics: Array<SymbolTopics | undefined> = [];
  private readonly breaker: CircuitBreaker<[SignalMessage, Uint8Array], void>;
  private readonly decision: SignalDecision = { risk: 0, pub: 0, approved: false, reason: 0 };
  private publishFailuresSinceLog = 0;
  private lastPublishFailureLog = 0;

  constructor(opts: OutputPipelineOptions) {
    this.o = opts;
    this.decoder = new OutputDecoder(opts.decoder);
    const b = opts.breaker ?? {};
    const sink = opts.signals;
    this.breaker = new CircuitBreaker(
      (sig: SignalMessage, payload: Uint8Array) => sink.publishSignal(sig, payload),
      {
        // The sink enforces its own ack deadline (one sweeper for all signals);
        // an opossum timeout would add a timer per signal.
        timeout: false,
        // Latency percentiles and snapshots keep every call's latency and
        // re-sum them each second: measured at ~18 % of the main thread at
        // 2k signals/s. Only the failure counts matter here.
        rollingPercentilesEnabled: false,
        enableSnapshots: false,
        errorThresholdPercentage: b.errorThresholdPercentage ?? 50,
        resetTimeout: b.resetTimeoutMs ?? 5000,
        volumeThreshold: b.volumeThreshold ?? 5,
        rollingCountTimeout: 10_000,
        name: 'signal-publish',
      },
    );
    const onBreaker = (): void => {
      opts.log.warn({ breaker: this.breakerState() }, 'signal publish breaker changed state');
      if (!this.breaker.opened) opts.decisions?.resync();
      opts.onStateChange?.();
    };
    this.breaker.on('open', onBreaker);
    this.breaker.on('halfOpen', onBreaker);
    this.breaker.on('close', onBreaker);
  }

  /** One output frame from a shard worker (the PoolOutput is reused after return). */
  onOutput(out: PoolOutput): void {
    const ev = out.event;
    const t = this.topicsOf(out);
    switch (ev.kind) {
      case OutputKind.PREDICTION: {
        // A shadow version's predictions are stored (the store ring), never published.
        if (this.decoder.isShadow(ev)) return;
        this.counters.predictions++;
        // Market observation for the VaR rules and interval sizing: slots, no decode.
        const p = ev.payload;
        const L = OutputLayout.prediction;
        this.o.risk.observe(out.symbol, p[L.MID]!, ev.srcTs, p[L.LOWER], p[L.UPPER]);
        this.o.fanout.publishFrame(t.prediction, frameOf(out));
        return;
      }
      case OutputKind.QUALITY: {
        this.counters.quality++;
        this.countQuality(ev.payload);
        this.o.fanout.publishFrame(t.quality, frameOf(out));
        const v = out.view;
        this.o.signals.publishQuality?.(out.symbol, out.ring.u8.subarray(v.dataStart, v.dataEnd));
        return;
      }
      case OutputKind.SIGNAL:
        this.counters.signals++;
        this.onSignal(out, t);
        return;
    }
  }

  breakerState(): 'closed' | 'open' | 'half_open' {
    const b = this.breaker;
    if (b.halfOpen) return 'half_open';
    return b.opened ? 'open' : 'closed';
  }

  /** Restore the kill switch saved for the account (at start). */
  async restoreKillSwitch(): Promise<void> {
    const saved = await this.o.killSwitch.load(this.o.account);
    if (saved?.killed !== true) return;
    this.o.risk.kill(saved.by, `restored: ${saved.reason}`, Date.now());
    this.o.log.warn(
      { by: saved.by, reason: saved.reason },
      'kill switch restored from the state store: signals stay stopped',
    );
  }

  /** Kill or resume all signal publication (NATS ctl.risk.*, `qilin risk`); saved for restarts. */
  riskControl(op: 'kill' | 'resume', by: string, reason: string): RiskControlReply {
    const at = Date.now();
    const risk = this.o.risk;
    const reply = op === 'kill' ? risk.kill(by, reason, at) : risk.resume(by, reason, at);
    // Proposals rejected while killed are retried with a growing backoff: resume
    // makes every actor propose its current view on its next tick.
    if (op === 'resume') this.o.decisions?.resync();
    this.o.killSwitch
      .save(this.o.account, { killed: op === 'kill', by, reason, at })
      .catch((err: unknown) => this.o.log.error({ err }, 'could not save the kill switch'));
    this.o.onStateChange?.();
    return reply;
  }

  /** Stop the breaker's timers. */
  close(): void {
    this.breaker.shutdown();
  }

  private topicsOf(out: PoolOutput): SymbolTopics {
    const id = out.view.symId;
    let t = this.topics[id];
    // A restarted worker numbers its symbols afresh: an id may now name
    // another symbol (the names are interned strings: usually one compare).
    if (t === undefined || t.name !== out.symbol) {
      const f = this.o.fanout;
      t = {
        name: out.symbol,
        prediction: f.topic(`prediction/${out.symbol}`),
        signal: f.topic(`signal/${out.symbol}`),
        quality: f.topic(`quality/${out.symbol}`),
      };
      this.topics[id] = t;
    }
    return t;
  }

  private onSignal(out: PoolOutput, t: SymbolTopics): void {
    const sig = this.decoder.toSignal(out.event, out.symbol);
    if (out.event.payload[OutputLayout.signal.SUPPRESSED] === Suppressed.LOW_QUALITY) {
      sig.lat.risk = nowUs();
      return this.reject(
        out,
        sig,
        'low_quality',
        `quality window score ${sig.quality.score} below the strategy's minQuality`,
      );
    }
    const decision = this.o.risk.check(sig, nowUs());
    sig.lat.risk = nowUs();
    const resized = this.applySizing(out, sig);
    if (!decision.approved) return this.reject(out, sig, decision.reason, decision.detail);
    if (this.breaker.opened) {
      return this.reject(
        out,
        sig,
        'breaker_open',
        'signal publish circuit breaker is open (executors not acknowledging)',
      );
    }
    sig.lat.pub = nowUs();
    const v = out.view;
    const buf = out.ring.buf;
    // The slots hold whole µs; keep the stored object equal to the bytes.
    sig.lat.risk = Math.round(sig.lat.risk);
    sig.lat.pub = Math.round(sig.lat.pub);
    if (v.riskAt >= 0) patchStageTime(buf, v.riskAt, sig.lat.risk);
    if (v.pubAt >= 0) patchStageTime(buf, v.pubAt, sig.lat.pub);
    this.counters.approved++;
    this.o.onStages?.(sig.lat);
    // A resized signal is re-encoded from the message (the frame's qty and
    // strength are variable-width numbers; see applySizing).
    const resizedData = resized ? Buffer.from(JSON.stringify(sig)) : undefined;
    this.o.fanout.publishFrame(
      t.signal,
      resizedData === undefined ? frameOf(out) : signalFrame(out.symbol, resizedData),
    );
    const d = this.decision;
    d.risk = sig.lat.risk;
    d.pub = sig.lat.pub;
    d.approved = true;
    d.reason = 0;
    this.o.rows.writeSignal(out.event, out.symbol, d);
    const symId = v.symId;
    this.o.decisions?.approve(symId, out.event.payload[OutputLayout.signal.SIDE]!);
    // A copy: the NATS client keeps a reference until its next write, and the
    // ring slot is reused as soon as this returns.
    const payload = resizedData ?? out.ring.u8.slice(v.dataStart, v.dataEnd);
    this.breaker.fire(sig, payload).catch((err: unknown) => {
      // Executors may not know: the actor proposes its view again.
      this.o.decisions?.unknown(symId);
      // Subscribers saw it on the WebSocket already; executors did not get it:
      // say so on risk.rejected so monitors can reconcile.
      this.count('publish_failed');
      this.logPublishFailure(err, sig.id);
      const detail = err instanceof Error ? err.message : String(err);
      this.o.signals.publishRejection({
        signal: sig,
        reason: 'publish_failed',
        detail,
        ts: nowUs(),
      });
    });
  }

  /**
   * When the risk actor's sizing steps scaled the signal (its qty no longer
   * equals the record's), write the new qty and strength into the record's
   * payload so the stored row agrees; true if so. The frame bytes cannot be
   * patched in place (qty and strength are written at their shortest
   * width), so the caller re-encodes a resized signal: JSON.stringify of the
   * message is byte-for-byte the encoder's format (actors/output-encoder.ts)
   * with the new values, without the stage-time padding. Rare (only resized
   * signals) and no costlier than the payload copy it replaces.
   */
  private applySizing(out: PoolOutput, sig: SignalMessage): boolean {
    const p = out.event.payload;
    const L = OutputLayout.signal;
    if (Object.is(sig.qty, p[L.QTY])) return false;
    p[L.QTY] = sig.qty;
    p[L.STRENGTH] = sig.strength;
    return true;
  }

  private reject(
    out: PoolOutput,
    sig: SignalMessage,
    reason: RiskRejectReason,
    detail: string,
  ): void {
    this.count(reason);
    this.o.signals.publishRejection({ signal: sig, reason, detail, ts: nowUs() });
    const d = this.decision;
    d.risk = sig.lat.risk ?? 0;
    d.pub = 0;
    d.approved = false;
    d.reason = 1 + RiskRejectReasons.indexOf(reason);
    this.o.rows.writeSignal(out.event, out.symbol, d);
  }

  private countQuality(p: Float64Array): void {
    const L = OutputLayout.quality;
    const kind = QUALITY_EVENT_KIND_NAMES[p[L.KIND]!] || 'window';
    const k = this.counters.qualityEvents;
    k[kind] = (k[kind] ?? 0) + 1;
    if (kind !== 'window') return;
    const c = this.counters.qualityIssues;
    for (const [check, slot] of QUALITY_COUNT_SLOTS) {
      const n = p[slot]!;
      if (n > 0) c[check] = (c[check] ?? 0) + n;
    }
  }

  private count(reason: RiskRejectReason): void {
    const r = this.counters.rejected;
    r[reason] = (r[reason] ?? 0) + 1;
  }

  /**
   * An outage fails thousands of acks at once: log the first failure, then
   * at most one line a second with the count (the counter has them all), so
   * logging never becomes the outage's second victim.
   */
  private logPublishFailure(err: unknown, id: string): void {
    this.publishFailuresSinceLog++;
    const now = Date.now();
    if (now - this.lastPublishFailureLog < 1000) return;
    this.o.log.warn(
      { err, id, failures: this.publishFailuresSinceLog },
      'signals not acknowledged by the bus',
    );
    this.lastPublishFailureLog = now;
    this.publishFailuresSinceLog = 0;
  }
}

/** `{"topic":"signal/<sym>","data":<data>}`: a re-encoded signal's WebSocket frame. */
function signalFrame(symbol: string, data: Buffer): Uint8Array {
  return Buffer.concat([Buffer.from(`{"topic":"signal/${symbol}","data":`), data, CLOSE_BRACE]);
}
const CLOSE_BRACE = Buffer.from('}');

/** The WebSocket bytes of an output frame, as a view of the ring (valid during the call). */
function frameOf(out: PoolOutput): Uint8Array {
  const u8 = out.ring.u8;
  return new Uint8Array(
    u8.buffer,
    u8.byteOffset + out.view.frameStart,
    out.view.frameEnd - out.view.frameStart,
  );
}
