import CircuitBreaker from 'opossum';
import { Redis } from 'ioredis';
import type { NatsConnection } from '@nats-io/transport-node';
import { OutputDecoder } from '../actors/output-decoder.js';
import { RiskActor } from '../actors/risk-actor.js';
import type { RiskLimits } from '../actors/risk-rules.js';
import type { SymbolActorOptions } from '../actors/symbol-actor.js';
import { connectNats, drainNats } from '../adapters/nats/nats-connection.js';
import { NatsControlSource } from '../adapters/nats/nats-control-source.js';
import { NatsMarketSource } from '../adapters/nats/nats-market-source.js';
import { NatsSignalSink } from '../adapters/nats/nats-signal-sink.js';
import { parseApiKeys } from '../adapters/ws/api-keys.js';
import { assertNativeUws } from '../adapters/ws/native-uws.js';
import { UwsServer } from '../adapters/ws/uws-server.js';
import type { QilinConfig } from '../config/config.js';
import { nowUs } from '../kernel/clock.js';
import type { Logger } from '../kernel/logger.js';
import type { MarketEvent } from '../kernel/market-record.js';
import type { MarketIngest, RejectReason } from '../kernel/market-source.js';
import type { RiskControlReply, RiskRejectReason, SignalMessage } from '../kernel/messages.js';
import { OutputKind, type OutputEvent } from '../kernel/output-record.js';
import { WorkerPool } from '../kernel/worker-pool.js';
import { KernelMetrics } from './kernel-metrics.js';
import { StoreClient } from './store-client.js';

/**
 * The live kernel, wired: the composition root of `qilin start` and `qilin demo`.
 *
 * ```
 *  NATS md.>  ─► NatsMarketSource ─► ingest ─┬─► WorkerPool (SymbolActors in workers) ─► outputs
 *                                            └─► StoreClient (store worker) ◄──────────────┤
 *                                                                                          ▼
 *        predictions, quality ─► uWS topics                       candidate signals ─► RiskActor
 *                                                                                          │ approved
 *                   WS signal/<sym> ◄─┬─ opossum breaker ─► NatsSignalSink (JetStream sig.<strategy>.<sym>)
 *                                     └─ rejected ─► risk.rejected.<sym>, store
 *  NATS fill.<account>, ctl.risk.kill|resume ─► NatsControlSource ─► RiskActor (kill state kept in Redis)
 * ```
 */
export interface KernelAppOptions {
  config: QilinConfig;
  log: Logger;
  /** Strategy name (signal subjects and ids). Default 'momentum'. */
  strategy?: string;
  /** Account the risk actor guards (fills on fill.<account>). Default 'main'. */
  account?: string;
  actorOptions?: Partial<SymbolActorOptions>;
  riskLimits?: Partial<RiskLimits>;
  /** Consume market data from a JetStream durable instead of core subjects. */
  jetstream?: { stream: string; durable: string };
  breaker?: {
    timeoutMs?: number;
    errorThresholdPercentage?: number;
    resetTimeoutMs?: number;
    volumeThreshold?: number;
  };
  /** Status topic / metric snapshot periods. */
  statusIntervalMs?: number;
  metricsSnapshotMs?: number;
}

interface RejectSample {
  at: number;
  reason: RejectReason;
  subject: string;
  detail: string;
  raw: string;
}

const REJECT_SAMPLE_SIZE = 200;
const KILL_KEY_PREFIX = 'qilin:risk:kill:';

export class KernelApp {
  readonly metrics: KernelMetrics;
  readonly risk: RiskActor;
  readonly pool: WorkerPool;
  readonly store: StoreClient;
  private readonly opts: KernelAppOptions;
  private readonly log: Logger;
  private readonly decoder: OutputDecoder;
  private readonly strategy: string;
  private readonly account: string;
  private nc: NatsConnection | undefined;
  private redis: Redis | undefined;
  private source: NatsMarketSource | undefined;
  private sink: NatsSignalSink | undefined;
  private control: NatsControlSource | undefined;
  private ws: UwsServer | undefined;
  private breaker: CircuitBreaker<[SignalMessage, string], void> | undefined;
  private readonly rejects: RejectSample[] = [];
  private rejectNext = 0;
  private timers: NodeJS.Timeout[] = [];
  private state: 'new' | 'starting' | 'running' | 'closing' | 'closed' = 'new';
  private closing: Promise<void> | undefined;
  private boundPort = 0;
  private lastStatusTicks = 0;
  private lastStatusAt = Date.now();
  private ticksPerSec = 0;
  private publishFailuresSinceLog = 0;
  private lastPublishFailureLog = 0;

  constructor(opts: KernelAppOptions) {
    this.opts = opts;
    this.log = opts.log;
    this.strategy = opts.strategy ?? 'momentum';
    this.account = opts.account ?? 'main';
    this.decoder = new OutputDecoder({
      strategy: this.strategy,
      account: this.account,
      model: { name: 'baseline', version: '1' },
    });
    this.risk = new RiskActor(opts.riskLimits ?? {}, { log: opts.log.child({ actor: 'risk' }) });
    this.pool = new WorkerPool({
      workers: opts.config.workers,
      ringCapacity: opts.config.ringCapacity,
      actorModule: new URL('../actors/symbol-actor-module.js', import.meta.url).href,
      actorOptions: opts.actorOptions ?? {},
      log: opts.log.child({ part: 'pool' }),
      onOutput: (ev, _shard) => this.onOutput(ev),
    });
    this.store = new StoreClient({ config: opts.config, log: opts.log.child({ part: 'store' }) });
    this.metrics = new KernelMetrics({
      shards: () => this.pool.stats(),
      breakerState: () => this.breakerState(),
      wsClients: () => this.ws?.stats().clients ?? 0,
      store: () => {
        const s = this.store.stats();
        return {
          lagMs: s.lagMs,
          spilledRows: s.spilledRows,
          buffered: s.buffered,
          storeUp: s.storeUp,
          tickRingDropped: s.tickRingDropped,
        };
      },
      killed: () => this.risk.killed,
    });
  }

  /** Redis hash holding this account's kill switch (survives restarts). */
  private get killKey(): string {
    return `${KILL_KEY_PREFIX}${this.account}`;
  }

  /** HTTP/WebSocket port actually bound. */
  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'starting';
    const { config, log } = this.opts;
    assertNativeUws();
    this.ws = new UwsServer({
      port: config.httpPort,
      apiKeys: parseApiKeys(config.apiKeys),
      log: log.child({ part: 'ws' }),
      routes: {
        '/metrics': async () => ({
          status: 200,
          contentType: this.metrics.registry.contentType,
          body: await this.metrics.text(),
        }),
        '/health/live': () => this.health('live'),
        '/health/ready': () => this.health('ready'),
        '/health/startup': () => this.health('startup'),
        '/rejects': () => ({
          status: 200,
          contentType: 'application/json',
          body: JSON.stringify(this.rejectSample()),
        }),
        '/audit': () => ({
          status: 200,
          contentType: 'application/json',
          body: JSON.stringify(this.risk.audit().slice(-200)),
        }),
      },
    });
    this.boundPort = await this.ws.start();
    this.redis = new Redis(config.redisUrl, {
      lazyConnect: true,
      maxRetriesPerRequest: 2,
      enableOfflineQueue: false,
    });
    await this.redis.connect();
    await this.restoreKillSwitch();
    this.nc = await connectNats({ servers: config.natsUrl, name: 'qilin-kernel', log });
    await this.store.start();
    await this.pool.start();
    this.sink = new NatsSignalSink({
      nc: this.nc,
      log: log.child({ part: 'signals' }),
      ackTimeoutMs: this.opts.breaker?.timeoutMs ?? 2500,
    });
    await this.sink.ensureStream();
    const sink = this.sink;
    const b = this.opts.breaker ?? {};
    this.breaker = new CircuitBreaker(
      (sig: SignalMessage, json: string) => sink.publishSignal(sig, json),
      {
        // The sink enforces its own ack deadline (one sweeper for all signals);
        // an opossum timeout would add a timer per signal.
        timeout: false,
        errorThresholdPercentage: b.errorThresholdPercentage ?? 50,
        resetTimeout: b.resetTimeoutMs ?? 5000,
        volumeThreshold: b.volumeThreshold ?? 5,
        rollingCountTimeout: 10_000,
        name: 'signal-publish',
      },
    );
    const onBreaker = (): void => {
      log.warn({ breaker: this.breakerState() }, 'signal publish breaker changed state');
      this.publishStatus();
    };
    this.breaker.on('open', onBreaker);
    this.breaker.on('halfOpen', onBreaker);
    this.breaker.on('close', onBreaker);
    this.control = new NatsControlSource({
      nc: this.nc,
      log: log.child({ part: 'control' }),
      fillSubject: `fill.${this.account}`,
    });
    await this.control.start({
      onFill: (fill) => {
        try {
          this.risk.onFill(fill);
        } catch (err) {
          this.metrics.controlRejected.inc();
          log.warn({ err, fill }, 'fill refused by the risk actor');
        }
      },
      onRiskControl: (op, msg) => this.riskControl(op, msg.by, msg.reason),
      onBadControl: (subject, detail) => {
        this.metrics.controlRejected.inc();
        log.warn({ subject, detail }, 'bad control message');
      },
    });
    this.source = new NatsMarketSource({
      nc: this.nc,
      subject: config.marketSubject,
      log: log.child({ part: 'md' }),
      ...(this.opts.jetstream ? { jetstream: this.opts.jetstream } : {}),
    });
    await this.source.start(this.ingest);
    this.timers.push(setInterval(() => this.publishStatus(), this.opts.statusIntervalMs ?? 1000));
    this.timers.push(
      setInterval(() => void this.snapshotMetrics(), this.opts.metricsSnapshotMs ?? 10_000),
    );
    this.state = 'running';
    log.info(
      { port: this.boundPort, workers: config.workers, strategy: this.strategy },
      'kernel running',
    );
  }

  /** Kill or resume all signal publication (NATS ctl.risk.*, `qilin risk`). */
  riskControl(op: 'kill' | 'resume', by: string, reason: string): RiskControlReply {
    const at = Date.now();
    const reply = op === 'kill' ? this.risk.kill(by, reason, at) : this.risk.resume(by, reason, at);
    const redis = this.redis;
    if (redis !== undefined) {
      const write =
        op === 'kill'
          ? redis.hset(this.killKey, { killed: '1', by, reason, at: String(at) })
          : redis.hset(this.killKey, { killed: '0', by, reason, at: String(at) });
      write.catch((err: unknown) =>
        this.log.error({ err }, 'could not persist the kill switch to Redis'),
      );
    }
    this.publishStatus();
    return reply;
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.state = 'closing';
    for (const t of this.timers) clearInterval(t);
    await this.source?.close();
    await this.pool.close();
    await this.control?.close();
    this.breaker?.shutdown();
    await this.sink?.close();
    await this.store.close();
    await this.ws?.close();
    if (this.nc !== undefined) await drainNats(this.nc);
    this.redis?.disconnect();
    this.metrics.close();
    this.state = 'closed';
  }

  // ─────────────────────────────── ingest ───────────────────────────────

  private readonly ingest: MarketIngest = {
    intern: (symbol: string): number => {
      const before = this.pool.symbols.size;
      const id = this.pool.intern(symbol);
      if (this.pool.symbols.size !== before) this.store.symbol(id, symbol);
      return id;
    },
    accept: (ev: MarketEvent, venue: string): boolean => {
      this.metrics.received++;
      const queued = this.pool.submit(ev);
      if (!queued) this.metrics.ticksDropped.inc({ ring: 'worker' });
      if (!this.store.writeTick(ev, venue)) this.metrics.ticksDropped.inc({ ring: 'store' });
      return queued;
    },
    reject: (reason: RejectReason, subject: string, detail: string, raw: Uint8Array): void => {
      this.metrics.reject(reason);
      const sample: RejectSample = {
        at: Date.now(),
        reason,
        subject,
        detail,
        raw: Buffer.from(raw.buffer, raw.byteOffset, Math.min(raw.byteLength, 256)).toString(
          'utf8',
        ),
      };
      this.rejects[this.rejectNext % REJECT_SAMPLE_SIZE] = sample;
      this.rejectNext++;
    },
  };

  private rejectSample(): RejectSample[] {
    const n = Math.min(this.rejectNext, REJECT_SAMPLE_SIZE);
    const out: RejectSample[] = [];
    for (let i = this.rejectNext - n; i < this.rejectNext; i++)
      out.push(this.rejects[i % REJECT_SAMPLE_SIZE]!);
    return out;
  }

  // ─────────────────────────────── outputs ───────────────────────────────

  private onOutput(ev: OutputEvent): void {
    const sym = this.pool.symbols.name(ev.symId);
    switch (ev.kind) {
      case OutputKind.PREDICTION: {
        this.metrics.output('prediction');
        const msg = this.decoder.toPrediction(ev, sym);
        this.ws?.publish(`prediction/${sym}`, msg);
        this.store.writePrediction(msg);
        break;
      }
      case OutputKind.QUALITY: {
        this.metrics.output('quality');
        const msg = this.decoder.toQuality(ev, sym);
        this.ws?.publish(`quality/${sym}`, msg);
        this.store.writeQuality(msg);
        break;
      }
      case OutputKind.SIGNAL:
        this.metrics.output('signal');
        this.onSignal(this.decoder.toSignal(ev, sym));
        break;
    }
  }

  private onSignal(sig: SignalMessage): void {
    const decision = this.risk.check(sig, nowUs());
    sig.lat.risk = nowUs();
    if (!decision.approved) return this.rejectSignal(sig, decision.reason, decision.detail);
    const breaker = this.breaker;
    if (breaker === undefined || breaker.opened) {
      return this.rejectSignal(
        sig,
        'breaker_open',
        'signal publish circuit breaker is open (executors not acknowledging)',
      );
    }
    sig.lat.pub = nowUs();
    this.metrics.approved();
    this.metrics.observeStages(sig.lat);
    const json = JSON.stringify(sig); // once, for the WebSocket and for NATS
    this.ws?.publish(`signal/${sig.sym}`, json);
    this.store.writeSignal({ signal: sig, status: 'approved', reason: '' });
    breaker.fire(sig, json).catch((err: unknown) => {
      // Subscribers saw it on the WebSocket already; executors did not get it:
      // say so on risk.rejected so monitors can reconcile.
      this.metrics.signals.inc({ decision: 'publish_failed', reason: 'publish_failed' });
      this.logPublishFailure(err, sig.id);
      const detail = err instanceof Error ? err.message : String(err);
      this.sink?.publishRejection({ signal: sig, reason: 'publish_failed', detail, ts: nowUs() });
    });
  }

  /**
   * An outage fails thousands of acks at once: log the first failure, then
   * at most one line a second with the count (the metric has them all), so
   * logging never becomes the outage's second victim.
   */
  private logPublishFailure(err: unknown, id: string): void {
    this.publishFailuresSinceLog++;
    const now = Date.now();
    if (now - this.lastPublishFailureLog < 1000) return;
    this.log.warn(
      { err, id, failures: this.publishFailuresSinceLog },
      'signals not acknowledged by the bus',
    );
    this.lastPublishFailureLog = now;
    this.publishFailuresSinceLog = 0;
  }

  private rejectSignal(sig: SignalMessage, reason: RiskRejectReason, detail: string): void {
    this.metrics.signals.inc({ decision: 'rejected', reason });
    const rejection = { signal: sig, reason, detail, ts: nowUs() };
    this.sink?.publishRejection(rejection);
    this.store.writeSignal({ signal: sig, status: 'rejected', reason });
  }

  // ─────────────────────────────── status & health ───────────────────────────────

  private breakerState(): 'closed' | 'open' | 'half_open' {
    const b = this.breaker;
    if (b === undefined) return 'closed';
    if (b.halfOpen) return 'half_open';
    return b.opened ? 'open' : 'closed';
  }

  private statusBody(): Record<string, unknown> {
    const now = Date.now();
    const dt = (now - this.lastStatusAt) / 1000;
    if (dt >= 0.5) {
      this.ticksPerSec = Math.round((this.metrics.received - this.lastStatusTicks) / dt);
      this.lastStatusTicks = this.metrics.received;
      this.lastStatusAt = now;
    }
    const store = this.store.stats();
    return {
      ts: now * 1000,
      state: this.state,
      breaker: this.breakerState(),
      killed: this.risk.killed,
      ticksReceived: this.metrics.received,
      ticksPerSec: this.ticksPerSec,
      symbols: this.pool.symbols.size,
      workers: this.pool.stats().map((s) => ({
        shard: s.shard,
        alive: s.alive,
        restarts: s.restarts,
        inRing: s.in.size,
        dropped: s.in.dropped,
      })),
      wsClients: this.ws?.stats().clients ?? 0,
      store: { up: store.storeUp, lagMs: store.lagMs, spilledRows: store.spilledRows },
    };
  }

  private publishStatus(): void {
    if (this.ws === undefined) return;
    this.ws.publish('status', this.statusBody());
  }

  private health(kind: 'live' | 'ready' | 'startup'): {
    status: number;
    contentType: string;
    body: string;
  } {
    const reasons: string[] = [];
    if (kind !== 'live') {
      if (this.state !== 'running') reasons.push(`kernel is ${this.state}`);
    }
    if (kind === 'ready') {
      if (this.nc === undefined || this.nc.isClosed()) reasons.push('NATS connection closed');
      if (!this.pool.healthy()) reasons.push('a worker shard is down or failed');
      if (this.redis?.status !== 'ready')
        reasons.push(`Redis is ${this.redis?.status ?? 'not connected'}`);
    }
    const ok = reasons.length === 0;
    return {
      status: ok ? 200 : 503,
      contentType: 'application/json',
      body: JSON.stringify({
        status: ok ? 'ok' : 'unavailable',
        check: kind,
        reasons,
        store: this.store.stats().storeUp ? 'up' : 'down (spilling to disk)',
      }),
    };
  }

  private async restoreKillSwitch(): Promise<void> {
    const saved = await this.redis!.hgetall(this.killKey);
    if (saved['killed'] === '1') {
      this.risk.kill(
        saved['by'] ?? 'unknown',
        `restored from Redis: ${saved['reason'] ?? ''}`,
        Date.now(),
      );
      this.log.warn(
        { by: saved['by'], reason: saved['reason'] },
        'kill switch restored from Redis: signals stay stopped',
      );
    }
  }

  private async snapshotMetrics(): Promise<void> {
    try {
      this.store.writeMetrics(await this.metrics.snapshot(nowUs()));
    } catch (err) {
      this.log.warn({ err }, 'metric snapshot failed');
    }
  }
}
