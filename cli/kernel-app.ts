import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { findPortOwners } from '../ops/services/port-owner.js';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { PermissionViolationError, type NatsConnection } from '@nats-io/transport-node';
import { OutputPipeline, type BreakerOptions } from '../actors/output-pipeline.js';
import { RiskActor } from '../actors/risk-actor.js';
import type { OutputDecoderOptions } from '../actors/output-decoder.js';
import { BASELINE_MODEL, predictionFeatures } from '../actors/symbol-actor-module.js';
import { ModelRefTable } from '../actors/model-refs.js';
import { KernelModels } from './kernel-models.js';
import { connectNats, drainNats } from '../adapters/nats/nats-connection.js';
import { natsSeedFileFor } from '../adapters/nats/nats-credentials.js';
import { NatsControlSource } from '../adapters/nats/nats-control-source.js';
import type { NatsShardSourceOptions } from '../adapters/nats/nats-shard-source.js';
import { NatsSignalSink } from '../adapters/nats/nats-signal-sink.js';
import { RedisKillSwitch } from '../adapters/redis/redis-kill-switch.js';
import { OpsHttpServer } from '../adapters/http/ops-http-server.js';
import { PartitionClaims } from '../adapters/redis/partition-claims.js';
import { RedisKernelState } from '../adapters/redis/redis-kernel-state.js';
import { RedisApiKeys } from '../adapters/redis/redis-api-keys.js';
import { parsePartitionSet } from '../kernel/partition-set.js';
import { parseApiKeys } from '../adapters/ws/api-keys.js';
import { assertNativeUws } from '../adapters/ws/native-uws.js';
import {
  UwsServer,
  requireAdmin,
  type HttpRoute,
  type HttpRouteResult,
  type TopicEntry,
} from '../adapters/ws/uws-server.js';
import { ClusterFanout } from '../adapters/nats/cluster-fanout.js';
import type { QilinConfig } from '../config/config.js';
import { nowMs, nowUs } from '../kernel/clock.js';
import { Episodes } from '../kernel/episodes.js';
import { ErrorCodes, QilinError } from '../kernel/errors.js';
import type { Logger } from '../kernel/logger.js';
import { RejectSamples } from '../kernel/reject-samples.js';
import type { FromWorker, WorkerSnapshotOptions } from '../kernel/worker-protocol.js';
import type { RedisSnapshotStoreOptions } from '../adapters/redis/redis-snapshot-store.js';
import { WorkerPool, poolChannels } from '../kernel/worker-pool.js';
import { dashboardRoutes } from './dashboard.js';
import { KernelMetrics, NO_WS_SESSIONS } from './kernel-metrics.js';
import { StoreClient } from './store-client.js';
// ── audit log (issue 11 item 4) ──
import { KernelAudit } from './kernel-audit.js';
// ── jobs (issue 10 item 6; jobs/README.md) ──
import type { KernelJobs } from '../jobs/kernel-jobs.js';
import { JobQueue, jobsPrefixOf } from '../jobs/job-queue.js';
import { jobRoutes } from '../jobs/job-routes.js';

/**
 * The live kernel, wired: the composition root of `qilin start` and `qilin
 * demo`. Wiring only; the behaviour lives in the units it connects.
 *
 * ```
 *  NATS md.*.*.<p> ──► WorkerPool: shard workers (own NATS connections, decode, SymbolActors,
 *                      │          frames encoded once)
 *                      ├─ out rings ──► OutputPipeline (main thread): frames → uWS topics;
 *                      │                signals → RiskActor → breaker → NatsSignalSink (JetStream)
 *                      └─ store rings ─► StoreClient's worker (ClickHouse / chdb)
 *  NATS fill.<account>, ctl.risk.* ─► NatsControlSource ─► RiskActor / OutputPipeline.riskControl
 *  kill switch ─► RedisKillSwitch        overload and outages ─► Episodes ─► /health/ready
 * ```
 */
export interface KernelAppOptions {
  config: QilinConfig;
  log: Logger;
  /** Strategy name (signal subjects and ids). Default 'momentum'. */
  strategy?: string;
  /** Account the risk actor guards (fills on fill.<account>). Default 'main'. */
  account?: string;
  /** Consume market data from JetStream durables (one per partition) instead of core subjects. */
  jetstream?: { stream: string; durable: string };
  breaker?: BreakerOptions & { timeoutMs?: number };
  /** Status topic / metric snapshot periods. */
  statusIntervalMs?: number;
  metricsSnapshotMs?: number;
  /** How long an overload or outage stays in /health/ready after its last occurrence, ms (default 10 000). */
  episodeHoldMs?: number;
}

/**
 * The kernel's HTTP GET routes on the WebSocket port (docs/api/openapi.yaml
 * documents each; `/ws` is the WebSocket endpoint itself).
 */
export const KERNEL_HTTP_ROUTES = [
  '/metrics',
  '/health/live',
  '/health/ready',
  '/health/startup',
  '/rejects',
  '/audit',
] as const;
export type KernelHttpRoute = (typeof KERNEL_HTTP_ROUTES)[number];

/** Sampling period of the main thread's event-loop delay, ms. */
const LOOP_RESOLUTION_MS = 20;
/** A worker event-loop lag above this is an overload episode. */
const LAG_EPISODE_MS = 1000;

/** How often a shutdown step that has not finished is logged. */
const SHUTDOWN_WARN_MS = 5000;

export class KernelApp {
  readonly metrics: KernelMetrics;
  readonly risk: RiskActor;
  readonly pool: WorkerPool;
  readonly store: StoreClient;
  readonly rejects = new RejectSamples();
  readonly episodes: Episodes;
  /** Audit log wiring: events out on audit.<action>, the AUDIT stream into the store (docs/security.md). */
  readonly audit: KernelAudit;
  private readonly opts: KernelAppOptions;
  private readonly log: Logger;
  private readonly strategy: string;
  private readonly account: string;
  private readonly killSwitch: RedisKillSwitch;
  /** Positions and the last-value cache in Redis (warmRestart); undefined: off. */
  private readonly mainState: RedisKernelState | undefined;
  private savedFills = -1;
  private savingMain: Promise<void> | undefined;
  /** Last-value frames not yet written (Redis away): merged into the next round. */
  private lvcPending = new Map<string, Buffer>();
  /** This kernel's market partitions (config kernelPartitions), claimed in Redis at start. */
  readonly partitions: readonly number[];
  private claims: PartitionClaims | undefined;
  /** What each worker's market source is given (kernelPartitions narrowed to the claims won). */
  private sourceOptions: NatsShardSourceOptions | undefined;
  /** Failover: when each unclaimed partition was first seen free (partitionTakeover). */
  private readonly freeSince = new Map<number, number>();
  private takingOver: Promise<void> | undefined;
  private fanout: ClusterFanout<TopicEntry> | undefined;
  private readonly sourceEvents = new Map<string, number>();
  /** Services currently down (an open outage episode each). */
  private readonly down = new Set<OutageService>();
  /** Outages by service since start (`qilin_outages_total`). */
  private readonly outageCounts = new Map<OutageService, number>([
    // Every series exists from the start, so increase() sees the first outage.
    ['nats', 0],
    ['redis', 0],
    ['clickhouse', 0],
  ]);
  /** The store has reported up once (its stats start `storeUp: false`). */
  private storeSeenUp = false;
  private nc: NatsConnection | undefined;
  private pipeline: OutputPipeline | undefined;
  /** Model versions by id: the output pipeline's decoder names each signal's model from it. */
  private readonly modelRefs = new ModelRefTable(BASELINE_MODEL);
  private readonly models: KernelModels;
  private sink: NatsSignalSink | undefined;
  private control: NatsControlSource | undefined;
  private ws: UwsServer | undefined;
  /** Keys managed by `qilin keys`, merged into the table (docs/security.md). */
  private keyStore: RedisApiKeys | undefined;
  private timers: NodeJS.Timeout[] = [];
  /** The job worker (config jobsEnabled); undefined: this kernel runs no jobs. */
  private jobs: KernelJobs | undefined;
  /** The queue behind the job HTTP routes, opened on their first request. */
  private jobQueue: JobQueue | undefined;
  private state: 'new' | 'starting' | 'running' | 'closing' | 'closed' = 'new';
  private closing: Promise<void> | undefined;
  private boundPort = 0;
  private ops: OpsHttpServer | undefined;
  private boundOpsPort: number | undefined;
  private lastStatusTicks = 0;
  private lastStatusAt = Date.now();
  private ticksPerSec = 0;
  private lastDrops = { out: 0, store: 0, tooLarge: 0 };
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({
    resolution: LOOP_RESOLUTION_MS,
  });
  private mainLagMs = 0;
  private readonly onRestart = (msg: unknown): void => {
    const shard = (msg as { shard?: number }).shard ?? -1;
    this.episodes.raise(
      'worker_restart',
      `restart:shard${shard}`,
      ErrorCodes.WORKER_DIED,
      `shard ${shard}'s worker died and was restarted: core ticks on its partitions until it resubscribed are lost`,
    );
  };

  constructor(opts: KernelAppOptions) {
    this.opts = opts;
    const { config, log } = opts;
    this.log = log;
    this.strategy = opts.strategy ?? 'momentum';
    this.account = opts.account ?? 'main';
    this.episodes = new Episodes({
      log: log.child({ part: 'health' }),
      ...(opts.episodeHoldMs === undefined ? {} : { holdMs: opts.episodeHoldMs }),
    });
    this.risk = new RiskActor(config.risk, { log: log.child({ actor: 'risk' }) });
    const set = parsePartitionSet(config.kernelPartitions, config.natsPartitions);
    if (typeof set === 'string') {
      throw new QilinError(
        ErrorCodes.CONFIG_INVALID,
        `config key kernelPartitions = ${JSON.stringify(config.kernelPartitions)} is invalid: ${set}`,
        { details: { key: 'kernelPartitions', value: config.kernelPartitions } },
      );
    }
    this.partitions = set;
    const source: NatsShardSourceOptions = (this.sourceOptions = {
      natsUrl: config.natsUrl,
      seedFile: natsSeedFileFor(config, 'kernel'),
      subject: config.marketSubject,
      partitions: config.natsPartitions,
      kernelPartitions: set,
      jetstream: opts.jetstream && { ...opts.jetstream, ackWaitMs: config.jetstreamAckWaitMs },
    });
    this.pool = new WorkerPool({
      workers: config.workers,
      ringBytes: config.ringBytes,
      actorModule: new URL('../actors/symbol-actor-module.js', import.meta.url).href,
      actorOptions: { ...config.actor, strategy: this.strategy, account: this.account },
      sourceModule: new URL('../adapters/nats/nats-shard-source.js', import.meta.url).href,
      sourceOptions: source,
      ...(config.warmRestart ? { snapshots: snapshotOptions(config) } : {}),
      log: log.child({ part: 'pool' }),
      // Workers log like the kernel's own logger (tests pass a silent one).
      logLevel: log.level,
      onOutput: (out) => this.pipeline?.onOutput(out),
      onWorkerMessage: (msg, shard) => this.onWorkerMessage(msg, shard),
    });
    this.store = new StoreClient({
      config,
      log: log.child({ part: 'store' }),
      feeds: this.pool.storeRings(),
      decoder: this.decoderOptions(),
    });
    this.killSwitch = new RedisKillSwitch({ url: config.redisUrl });
    this.mainState = config.warmRestart
      ? new RedisKernelState({
          url: config.redisUrl,
          prefix: `qilin:state:${config.clickhouseDb}:`,
        })
      : undefined;
    this.metrics = new KernelMetrics({
      shards: () => this.pool.stats(),
      pipeline: () =>
        this.pipeline?.counters ?? {
          predictions: 0,
          quality: 0,
          qualityEvents: {},
          qualityIssues: {},
          signals: 0,
          approved: 0,
          rejected: {},
        },
      episodes: () => this.episodes.counts,
      outages: () => this.outageCounts,
      sourceEvents: () => this.sourceEvents,
      breakerState: () => this.pipeline?.breakerState() ?? 'closed',
      wsClients: () => this.ws?.stats().clients ?? 0,
      wsSessions: () => this.ws?.stats() ?? NO_WS_SESSIONS,
      store: () => this.store.stats(),
      killed: () => this.risk.killed,
      riskCounters: () => this.risk.counters,
      feedDropped: () => 0,
      mainLoopLagMs: () => this.mainLagMs,
    });
    this.models = new KernelModels({
      config,
      log: log.child({ part: 'models' }),
      pool: this.pool,
      store: this.store,
      refs: this.modelRefs,
      registry: this.metrics.registry,
      onChange: () => this.publishStatus(),
    });
    // ── audit log ──
    this.audit = new KernelAudit({
      log: log.child({ part: 'audit' }),
      store: (events) => this.store.writeAudit(events),
      registry: this.metrics.registry,
      // One durable per database: kernels sharing a store share it (each event
      // written once); a kernel with another database gets every event too.
      durable: `qilin-audit-${config.clickhouseDb}`,
    });
  }

  /** HTTP/WebSocket port actually bound. */
  get port(): number {
    return this.boundPort;
  }

  /** The bound operations port (`opsPort`), undefined when metrics and health share `port`. */
  get opsPort(): number | undefined {
    return this.boundOpsPort;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'starting';
    const { config, log } = this.opts;
    assertNativeUws();
    if (config.httpPort !== 0) await assertPortFree(config.httpPort);
    await this.claimPartitions();
    const apiKeys = parseApiKeys(config.apiKeys);
    this.keyStore = new RedisApiKeys({
      url: config.redisUrl,
      prefix: config.apiKeyPrefix,
      log: log.child({ part: 'keys' }),
    });
    await this.keyStore.watch(apiKeys);
    // Typed by the route list: a route missing from it, or listed without a handler, does not compile.
    const routes: Record<KernelHttpRoute, HttpRoute> = {
      '/metrics': async () => ({
        status: 200,
        contentType: this.metrics.registry.contentType,
        body: await this.metrics.text(),
      }),
      '/health/live': () => this.health('live'),
      '/health/ready': () => this.health('ready'),
      '/health/startup': () => this.health('startup'),
      '/rejects': requireAdmin(apiKeys, () => json(200, this.rejects.list())),
      // Default: the risk actor's decisions and kill / resume (unchanged);
      // `?view=events`: the recent audit events (docs/security.md "Audit").
      '/audit': requireAdmin(apiKeys, (req) =>
        req.query.get('view') === 'events'
          ? json(200, this.audit.audit.recent().slice(-200))
          : json(200, this.risk.audit().slice(-200)),
      ),
    };
    // ── jobs: GET /jobs, GET /jobs/<id>, POST /jobs, POST /jobs/<id>/cancel (admin keys) ──
    const jobHttp = jobRoutes(
      apiKeys,
      () => {
        this.jobQueue ??= new JobQueue({ redisUrl: config.redisUrl, prefix: jobsPrefixOf(config) });
        return this.jobQueue;
      },
      () => this.metrics.jobsRefused.inc(),
    );
    // ── end jobs ──
    // With an operations port, metrics and health move there, off the public port.
    const { publicRoutes, opsRoutes } = splitOpsRoutes(routes, config.opsPort !== undefined);
    if (config.opsPort !== undefined) {
      this.ops = new OpsHttpServer({
        port: config.opsPort,
        host: config.opsHost,
        routes: opsRoutes,
        log: log.child({ part: 'ops-http' }),
      });
      this.boundOpsPort = await this.ops.start();
    }
    this.ws = new UwsServer({
      port: config.httpPort,
      apiKeys,
      maxConnectionsPerKey: config.wsMaxConnectionsPerKey,
      subscribeRatePerSec: config.wsSubscribeRatePerSec,
      maxTopicsPerConnection: config.wsMaxTopicsPerConnection,
      historyBytes: config.wsHistoryBytes,
      heartbeatMs: config.wsHeartbeatMs,
      log: log.child({ part: 'ws' }),
      // The dashboard page, its files and the API documents (cli/dashboard.ts).
      routes: { ...publicRoutes, ...dashboardRoutes(apiKeys), ...jobHttp.get },
      postRoutes: jobHttp.post,
      onSecurityEvent: this.audit.onSecurityEvent,
    });
    this.boundPort = await this.ws.start();
    await this.killSwitch.connect();
    await this.restoreMainState();
    this.nc = await connectNats({
      servers: config.natsUrl,
      seedFile: natsSeedFileFor(config, 'kernel'),
      name: 'qilin-kernel',
      log,
      onStatus: (s) => {
        if (s.type === 'disconnect') {
          this.outage(
            'nats',
            true,
            `NATS disconnected (${s.server}): reconnecting; signals wait for the bus (breaker), core market ticks published meanwhile are lost, JetStream input resumes where it stopped`,
          );
        } else if (s.type === 'reconnect') {
          this.outage('nats', false);
        } else if (s.type === 'error' && s.error instanceof PermissionViolationError) {
          // The server refused this kernel's own NATS user (a role misconfigured): audited.
          this.audit.natsPermission(s.error.operation, s.error.subject, this.nc?.getServer() ?? '');
        }
      },
    });
    await this.store.start();
    await this.audit.start(this.nc);
    this.sink = new NatsSignalSink({
      nc: this.nc,
      log: log.child({ part: 'signals' }),
      ackTimeoutMs: this.opts.breaker?.timeoutMs ?? 2500,
    });
    await this.sink.ensureStream();
    if (config.clusterFanout) {
      this.fanout = new ClusterFanout({
        local: this.ws,
        nc: this.nc,
        kernelId: kernelIdOf(config),
        log: log.child({ part: 'fanout' }),
        onReceived: () => this.metrics.fanoutReceived.inc(),
      });
      await this.fanout.start();
    }
    this.pipeline = new OutputPipeline({
      decisions: this.pool.decisions,
      decoder: this.decoderOptions(),
      risk: this.risk,
      account: this.account,
      fanout: this.fanout ?? this.ws,
      signals: this.sink,
      rows: this.store,
      killSwitch: this.killSwitch,
      log: log.child({ part: 'pipeline' }),
      onStages: (lat) => this.metrics.observeStages(lat),
      onStateChange: () => this.publishStatus(),
      ...(this.opts.breaker === undefined ? {} : { breaker: this.opts.breaker }),
    });
    await this.pipeline.restoreKillSwitch();
    const pipeline = this.pipeline;
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
      onRiskControl: (op, msg) =>
        this.auditedRiskControl(op, msg.by, msg.reason, msg.from ?? `nats:ctl.risk.${op}`, () =>
          pipeline.riskControl(op, msg.by, msg.reason),
        ),
      onBadControl: (subject, detail) => {
        this.audit.badControl(subject, detail);
        this.metrics.controlRejected.inc();
        log.warn({ subject, detail }, 'bad control message');
      },
    });
    // Before the workers start: they load the promoted version before their first tick.
    await this.models.start();
    await this.pool.start();
    this.timers.push(setInterval(() => this.publishStatus(), this.opts.statusIntervalMs ?? 1000));
    this.timers.push(
      setInterval(() => void this.snapshotMetrics(), this.opts.metricsSnapshotMs ?? 10_000),
    );
    this.loopDelay.enable();
    poolChannels.restart.subscribe(this.onRestart);
    this.timers.push(setInterval(() => this.checkOverload(), 1000));
    if (this.mainState !== undefined) {
      this.timers.push(
        setInterval(
          () => {
            this.savingMain ??= this.saveMainState().finally(() => (this.savingMain = undefined));
          },
          Math.max(1000, config.snapshotIntervalMs),
        ),
      );
    }
    if (config.partitionTakeover && this.claims !== undefined) {
      this.timers.push(
        setInterval(
          () => {
            this.takingOver ??= this.takeover()
              .catch((err: unknown) => log.warn({ err }, 'partition takeover check failed'))
              .finally(() => (this.takingOver = undefined));
          },
          Math.max(100, Math.floor(config.partitionLeaseMs / 3)),
        ),
      );
    }
    // ── jobs (issue 10 item 6): long work on worker threads, never on this thread ──
    if (config.jobsEnabled) {
      const { KernelJobs } = await import('../jobs/kernel-jobs.js');
      const ws = this.ws;
      const metrics = this.metrics;
      this.jobs = new KernelJobs({
        config,
        log: log.child({ part: 'jobs' }),
        nc: this.nc,
        // WebSocket `job/<id>` (and `job/*`), admin keys only (adapters/ws/topic-pattern.ts).
        onEvent: (ev) => {
          if (ev.event !== 'progress') metrics.jobEvents.inc({ type: ev.type, event: ev.event });
          ws.publish(`job/${ev.id}`, ev);
        },
      });
      this.jobs.start();
    }
    // ── end jobs ──
    this.state = 'running';
    log.info(
      {
        port: this.boundPort,
        opsPort: this.boundOpsPort,
        workers: config.workers,
        partitions: config.natsPartitions,
        kernelPartitions: config.kernelPartitions,
        strategy: this.strategy,
        dashboard: `http://127.0.0.1:${this.boundPort}/?key=<read key>`,
      },
      'kernel running',
    );
  }

  /** Kill or resume all signal publication (NATS ctl.risk.*, `qilin risk`). */
  riskControl(
    op: 'kill' | 'resume',
    by: string,
    reason: string,
  ): ReturnType<OutputPipeline['riskControl']> {
    if (this.pipeline === undefined) {
      throw new QilinError(
        ErrorCodes.INTERNAL,
        `kernel is ${this.state}; risk control unavailable`,
      );
    }
    const pipeline = this.pipeline;
    return this.auditedRiskControl(op, by, reason, `local:${hostname()}`, () =>
      pipeline.riskControl(op, by, reason),
    );
  }

  /** Run a kill / resume and make its audit event (ok, or error when it threw). */
  private auditedRiskControl<T>(
    op: 'kill' | 'resume',
    by: string,
    reason: string,
    source: string,
    apply: () => T,
  ): T {
    let reply: T;
    try {
      reply = apply();
    } catch (err) {
      this.audit.riskControl(op, by, reason, source, 'error', {
        error: (err as { code?: unknown }).code ?? 'QLN_INTERNAL',
      });
      throw err;
    }
    this.audit.riskControl(op, by, reason, source, 'ok');
    return reply;
  }

  /** Graceful stop: workers hand over what they hold, the store flushes. Safe twice. */
  close(): Promise<void> {
    this.closing ??= this.shutdown(false);
    return this.closing;
  }

  /** Immediate stop: workers terminated, buffered rows spilled by the store. Safe twice. */
  destroy(err?: unknown): Promise<void> {
    if (err !== undefined) this.log.error({ err }, 'kernel destroyed');
    this.closing ??= this.shutdown(true);
    return this.closing;
  }

  /** Resolves once close() or destroy() has finished. */
  get closed(): Promise<void> {
    return this.closing ?? new Promise(() => undefined);
  }

  private async shutdown(now: boolean): Promise<void> {
    this.state = 'closing';
    for (const t of this.timers) clearInterval(t);
    this.loopDelay.disable();
    poolChannels.restart.unsubscribe(this.onRestart);
    const step = (name: string, work: () => Promise<void> | void): Promise<void> =>
      this.shutdownStep(name, work);
    await step('jobs', () => this.jobs?.close()); // jobs: running ones back to the queue
    await step('job queue', () => this.jobQueue?.close());
    await step('models', () => this.models.close());
    await step('workers', () => (now ? this.pool.destroy() : this.pool.close()));
    await step('control', () => this.control?.close());
    this.pipeline?.close();
    await step('sink', () => this.sink?.close());
    await step('audit', () => this.audit.close());
    await step('store', () => this.store.close());
    const mainState = this.mainState;
    if (mainState !== undefined) {
      await step('main state', async () => {
        await this.savingMain;
        await this.saveMainState();
        await mainState.close();
      });
    }
    this.fanout?.close();
    await step('websocket', () => this.ws?.close());
    await step('ops http', () => this.ops?.close());
    await step('api keys', () => this.keyStore?.close());
    const nc = this.nc;
    if (nc !== undefined) await step('nats drain', () => drainNats(nc));
    await step('kill switch', () => this.killSwitch.close());
    // Last: the partitions stay ours until the workers have handed over what they hold.
    await step('partition claims', () => this.claims?.close());
    this.metrics.close();
    this.state = 'closed';
  }

  /**
   * One step of the shutdown, timed: debug-logged when done, and a warning
   * every SHUTDOWN_WARN_MS while it has not finished, naming the step an
   * operator waits on.
   */
  private async shutdownStep(name: string, work: () => Promise<void> | void): Promise<void> {
    const t0 = performance.now();
    const warn = setInterval(() => {
      this.log.warn(
        { step: name, ms: Math.round(performance.now() - t0) },
        'shutdown step still running',
      );
    }, SHUTDOWN_WARN_MS);
    try {
      await work();
    } finally {
      clearInterval(warn);
      this.log.debug({ step: name, ms: Math.round(performance.now() - t0) }, 'shutdown step done');
    }
  }

  /**
   * Warm restart, main thread (docs/adr/0006-warm-restart.md): the risk
   * actor's positions and the WebSocket last values from Redis. A failure
   * is logged and the kernel starts without them.
   */
  private async restoreMainState(): Promise<void> {
    const st = this.mainState;
    if (st === undefined) return;
    try {
      await st.connect();
      const positions = await st.loadPositions(this.account);
      if (positions.size > 0) this.risk.restorePositions(positions);
      this.savedFills = this.risk.fillCount;
      const frames = await st.loadLastValues();
      let seeded = 0;
      for (const [topic, frame] of frames) if (this.ws!.seedSnapshot(topic, frame)) seeded++;
      this.log.info(
        { positions: positions.size, lastValues: seeded },
        'positions and WebSocket last values restored from Redis',
      );
    } catch (err) {
      this.log.warn({ err }, 'positions and last values not restored: starting without them');
    }
  }

  /** Write what changed: positions after fills, the last values of topics published since. */
  private async saveMainState(): Promise<void> {
    const st = this.mainState!;
    const fills = this.risk.fillCount;
    for (const [topic, frame] of this.ws?.takeChangedSnapshots() ?? []) {
      this.lvcPending.set(topic, frame);
    }
    const frames = this.lvcPending;
    this.lvcPending = new Map();
    try {
      if (fills !== this.savedFills) {
        await st.savePositions(this.account, this.risk.positions());
        this.savedFills = fills;
      }
      // In slices, yielding between them: one big HSET would hold the main
      // thread (the fan-out's) for tens of ms with thousands of topics.
      let slice = new Map<string, Buffer>();
      for (const [topic, frame] of frames) {
        slice.set(topic, frame);
        if (slice.size === LVC_SLICE) {
          await st.saveLastValues(slice);
          slice = new Map();
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      await st.saveLastValues(slice);
    } catch (err) {
      // Kept for the next round (newer frames of the same topic win).
      for (const [topic, frame] of frames) {
        if (!this.lvcPending.has(topic)) this.lvcPending.set(topic, frame);
      }
      this.log.debug({ err }, 'positions / last values not saved (Redis away): retried');
    }
  }

  /**
   * Claim this kernel's partitions in Redis before anything else starts: a
   * partition claimed by another kernel fails the start (QLN_PARTITION_CLAIMED),
   * so two kernels never process the same symbols by accident.
   */
  private async claimPartitions(): Promise<void> {
    const { config, log } = this.opts;
    if (this.partitions.length === 0 && !config.partitionTakeover) return;
    const claims = new PartitionClaims({
      url: config.redisUrl,
      prefix: config.claimPrefix,
      partitions: this.partitions,
      leaseMs: config.partitionLeaseMs,
      bestEffort: config.partitionTakeover,
      owner: {
        id: kernelIdOf(config),
        host: hostname(),
        pid: process.pid,
        port: config.httpPort,
        since: Date.now(),
      },
      log: log.child({ part: 'claims' }),
      onLost: (partitions, other) =>
        this.episodes.raise(
          'partition_claim_lost',
          'claims:lost',
          ErrorCodes.PARTITION_CLAIMED,
          `partitions ${partitions.join(',')} of this kernel are claimed by ${other === undefined ? 'another kernel' : `kernel ${other.id} (host ${other.host}, pid ${other.pid}, port ${other.port})`}: both process these symbols; divide them with kernelPartitions or stop one`,
        ),
    });
    try {
      await claims.claim();
    } catch (err) {
      await claims.close();
      throw err;
    }
    this.claims = claims;
    // Failover mode may have started without partitions others adopted meanwhile.
    if (this.sourceOptions !== undefined)
      this.sourceOptions.kernelPartitions = [...claims.partitions];
  }

  /**
   * Failover (partitionTakeover): adopt the partitions no kernel has claimed
   * for a whole lease, and hand them to the workers (restore from their
   * snapshots, replay, resume their durables). Bound: a dead kernel's claims
   * expire within partitionLeaseMs, are seen free within a third of it, and
   * adopted a lease later: at most ~2.7 × partitionLeaseMs.
   */
  private async takeover(): Promise<void> {
    const claims = this.claims;
    if (claims === undefined || this.state !== 'running') return;
    const { config, log } = this.opts;
    const held = new Set(claims.partitions);
    const others: number[] = [];
    for (let p = 0; p < config.natsPartitions; p++) if (!held.has(p)) others.push(p);
    const free = new Set(await claims.free(others));
    const now = Date.now();
    const due: number[] = [];
    for (const p of others) {
      if (!free.has(p)) {
        this.freeSince.delete(p);
        continue;
      }
      const since = this.freeSince.get(p);
      if (since === undefined) this.freeSince.set(p, now);
      else if (now - since >= config.partitionLeaseMs) due.push(p);
    }
    if (due.length === 0) return;
    const won = await claims.adopt(due);
    if (won.length === 0) return;
    for (const p of won) this.freeSince.delete(p);
    this.pool.takePartitions(won);
    this.metrics.partitionsAdopted.inc(won.length);
    log.warn(
      { partitions: won, held: claims.partitions.length },
      'adopted market partitions no kernel claimed for a lease (failover)',
    );
  }

  private decoderOptions(): OutputDecoderOptions {
    return {
      strategy: this.strategy,
      account: this.account,
      model: { ...BASELINE_MODEL },
      models: this.modelRefs,
      features: predictionFeatures(this.opts.config.actor),
    };
  }

  // ─────────────────────────────── workers ───────────────────────────────

  private onWorkerMessage(msg: FromWorker, shard: number): void {
    if (msg.type === 'reject') {
      this.rejects.add({
        at: Date.now(),
        reason: msg.reason,
        subject: msg.subject,
        detail: msg.detail,
        raw: msg.raw,
      });
      return;
    }
    if (msg.type !== 'source-event') return;
    const e = msg.event;
    const key = `${shard}:${e.type}`;
    this.sourceEvents.set(key, (this.sourceEvents.get(key) ?? 0) + 1);
    const ep = `nats:shard${shard}`;
    switch (e.type) {
      case 'disconnected':
        this.episodes.raise(
          'nats_disconnect',
          ep,
          ErrorCodes.BUS_UNAVAILABLE,
          `shard ${shard} lost its NATS connection (${e.detail}); core market ticks published meanwhile are lost — JetStream input (--jetstream) does not lose them`,
          true,
        );
        return;
      case 'reconnected':
        this.episodes.end(ep);
        this.log.info({ shard, detail: e.detail }, 'shard NATS connection back');
        return;
      case 'slow_consumer':
        this.episodes.raise(
          'nats_slow_consumer',
          `slow:shard${shard}`,
          ErrorCodes.BUS_UNAVAILABLE,
          `shard ${shard} is a slow NATS consumer (${e.detail}): the server may drop its ticks`,
        );
        return;
      case 'error':
        this.episodes.raise(
          'nats_error',
          `error:shard${shard}`,
          ErrorCodes.BUS_UNAVAILABLE,
          `shard ${shard}: ${e.detail}`,
        );
        return;
    }
  }

  /** Drops and lagging workers since the last check become episodes (logged once, in health). */
  private checkOverload(): void {
    const stats = this.pool.stats();
    let out = 0;
    let store = 0;
    let tooLarge = 0;
    for (const s of stats) {
      out += s.outDropped;
      store += s.storeDropped;
      tooLarge += s.encodeFailed;
      if (s.loopLagMs > LAG_EPISODE_MS) {
        this.episodes.raise(
          'worker_lag',
          `lag:shard${s.shard}`,
          ErrorCodes.RING_FULL,
          `shard ${s.shard} is falling behind: its event loop lagged ${s.loopLagMs} ms (more ticks than it can process)`,
        );
      }
    }
    const d = this.lastDrops;
    if (out > d.out) {
      this.episodes.raise(
        'outputs_dropped',
        'drop:out',
        ErrorCodes.RING_FULL,
        `${out - d.out} outputs dropped in the last second: the main thread does not keep up with the workers (out rings full)`,
      );
    }
    if (store > d.store) {
      this.episodes.raise(
        'store_dropped',
        'drop:store',
        ErrorCodes.RING_FULL,
        `${store - d.store} store rows dropped in the last second: the store worker does not keep up (store rings full)`,
      );
    }
    if (tooLarge > d.tooLarge) {
      this.episodes.raise(
        'outputs_too_large',
        'drop:too_large',
        ErrorCodes.INTERNAL,
        `${tooLarge - d.tooLarge} outputs did not fit a frame and were dropped`,
      );
    }
    this.lastDrops = { out, store, tooLarge };
    this.checkServices();
    // The histogram records the timer's whole period: the lag is what exceeds it.
    this.mainLagMs = Math.max(0, this.loopDelay.max / 1e6 - LOOP_RESOLUTION_MS);
    this.loopDelay.reset();
    if (this.mainLagMs > LAG_EPISODE_MS) {
      this.episodes.raise(
        'main_lag',
        'lag:main',
        ErrorCodes.RING_FULL,
        `the main thread is falling behind: its event loop lagged ${Math.round(this.mainLagMs)} ms (outputs, signals or HTTP queue up)`,
      );
    }
    this.episodes.sweep();
  }

  // ─────────────────────────────── outages ───────────────────────────────

  /**
   * A service went down or came back. Down: counted once per outage
   * (`qilin_outages_total{service}`), an open episode with `reason` (logged
   * once, `/health/ready` degraded). Back: the episode ends (it stays listed
   * for the episode hold time).
   */
  private outage(service: OutageService, isDown: boolean, reason = ''): void {
    const key = `outage:${service}`;
    if (isDown) {
      if (this.down.has(service)) return;
      this.down.add(service);
      this.outageCounts.set(service, (this.outageCounts.get(service) ?? 0) + 1);
      this.episodes.raise(`${service}_down`, key, OUTAGE_CODE[service], reason, true);
    } else if (this.down.delete(service)) {
      this.episodes.end(key);
      this.log.info({ service }, `${service} is back`);
    }
  }

  /** Redis and the store, polled (NATS reports its own status). */
  private checkServices(): void {
    if (this.state !== 'running') return;
    const redis = this.killSwitch.unavailable();
    this.outage(
      'redis',
      redis !== undefined,
      `${redis ?? 'Redis is down'}: the kill switch runs on its in-memory state (changes are not persisted until Redis is back); trading continues`,
    );
    const store = this.store.stats();
    if (store.storeUp) this.storeSeenUp = true;
    if (!this.storeSeenUp) return;
    this.outage(
      'clickhouse',
      !store.storeUp,
      'the store (ClickHouse) is down: rows spill to disk and are replayed when it is back; JetStream ticks are acked once spilled',
    );
  }

  // ─────────────────────────────── status & health ───────────────────────────────

  private statusBody(): Record<string, unknown> {
    const now = Date.now();
    const stats = this.pool.stats();
    const received = stats.reduce((n, s) => n + s.accepted, 0);
    const dt = (now - this.lastStatusAt) / 1000;
    if (dt >= 0.5) {
      this.ticksPerSec = Math.round((received - this.lastStatusTicks) / dt);
      this.lastStatusTicks = received;
      this.lastStatusAt = now;
    }
    const store = this.store.stats();
    return {
      ts: now * 1000,
      state: this.state,
      breaker: this.pipeline?.breakerState() ?? 'closed',
      killed: this.risk.killed,
      ticksReceived: received,
      ticksPerSec: this.ticksPerSec,
      symbols: stats.reduce((n, s) => n + s.actors, 0),
      workers: stats.map((s) => ({
        shard: s.shard,
        alive: s.alive,
        restarts: s.restarts,
        outRingBytes: s.out.used,
        storeRingBytes: s.store.used,
        dropped: s.outDropped + s.storeDropped,
        loopLagMs: s.loopLagMs,
      })),
      wsClients: this.ws?.stats().clients ?? 0,
      store: { up: store.storeUp, lagMs: store.lagMs, spilledRows: store.spilledRows },
      degraded: this.episodes.reasons(),
      model: this.models.status(),
      latencyUs: this.metrics.recentLatency.summary(nowMs(), STATUS_LATENCY_WINDOW_MS),
    };
  }

  private publishStatus(): void {
    if (this.ws === undefined || this.state !== 'running') return;
    this.ws.publish('status', this.statusBody());
  }

  private health(kind: 'live' | 'ready' | 'startup'): HttpRouteResult {
    const reasons: string[] = [];
    let degraded = false;
    if (kind !== 'live' && this.state !== 'running') reasons.push(`kernel is ${this.state}`);
    if (kind === 'ready') {
      if (this.nc === undefined || this.nc.isClosed()) reasons.push('NATS connection closed');
      if (!this.pool.healthy()) reasons.push('a worker shard is down or failed');
      // Redis and ClickHouse outages degrade (the kernel keeps trading): episodes.
      this.checkServices();
      const episodes = this.episodes.reasons();
      const model = this.models.degradedReason();
      if (model !== undefined) episodes.push(model);
      if (episodes.length > 0 && reasons.length === 0) degraded = true;
      reasons.push(...episodes);
    }
    const ok = reasons.length === 0;
    return json(ok ? 200 : 503, {
      status: ok ? 'ok' : degraded ? 'degraded' : 'unavailable',
      check: kind,
      reasons,
      store: this.store.stats().storeUp ? 'up' : 'down (spilling to disk)',
    });
  }

  private async snapshotMetrics(): Promise<void> {
    try {
      this.store.writeMetrics(await this.metrics.snapshot(nowUs()));
    } catch (err) {
      this.log.warn({ err }, 'metric snapshot failed');
    }
  }
}

/** Services whose outages the kernel rides out and counts. */
/** Last-value topics written to Redis per event-loop turn. */
const LVC_SLICE = 256;

/** This kernel's name in its partition claims and cluster fan-out (config kernelId, or host:port). */
export function kernelIdOf(config: QilinConfig): string {
  // An ephemeral port (0) names no kernel: the pid does, so two such kernels never share an id.
  return (
    config.kernelId ??
    (config.httpPort === 0
      ? `${hostname()}:pid-${process.pid}`
      : `${hostname()}:${config.httpPort}`)
  );
}

/** Where and how often the workers snapshot their actors (docs/adr/0006-warm-restart.md). */
export function snapshotOptions(config: QilinConfig): WorkerSnapshotOptions {
  const options: RedisSnapshotStoreOptions = {
    url: config.redisUrl,
    prefix: config.snapshotPrefix ?? `qilin:snapshot:${config.clickhouseDb}:`,
  };
  return {
    intervalMs: config.snapshotIntervalMs,
    dir: resolve(config.stateDir, 'snapshots'),
    module: new URL('../adapters/redis/redis-snapshot-store.js', import.meta.url).href,
    options,
  };
}

type OutageService = 'nats' | 'redis' | 'clickhouse';

const OUTAGE_CODE: Readonly<Record<OutageService, string>> = {
  nats: ErrorCodes.BUS_UNAVAILABLE,
  redis: ErrorCodes.BUS_UNAVAILABLE,
  clickhouse: ErrorCodes.STORE_FAILED,
};

/** `status.latencyUs` covers the signals published in this many milliseconds. */
const STATUS_LATENCY_WINDOW_MS = 10_000;

function json(status: number, body: unknown): HttpRouteResult {
  return { status, contentType: 'application/json', body: JSON.stringify(body) };
}

/**
 * uWS listens with SO_REUSEPORT: a second kernel on the same port would
 * start silently and share the connections. Bind the port once without it
 * first: taken means another process is there, and start fails saying so.
 */
async function assertPortFree(port: number): Promise<void> {
  const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => resolve(e));
    srv.listen({ port, host: '0.0.0.0', exclusive: true }, () =>
      srv.close(() => resolve(undefined)),
    );
  });
  if (err === undefined) return;
  if (err.code !== 'EADDRINUSE') {
    throw new QilinError(
      ErrorCodes.SERVICE_PORT_IN_USE,
      `cannot bind HTTP/WebSocket port ${port}: ${err.message}`,
      { cause: err, details: { port } },
    );
  }
  const owner = (await findPortOwners([port]).catch(() => undefined))?.get(port);
  const who =
    owner?.pid === undefined
      ? 'another process'
      : `pid ${owner.pid}${owner.command === undefined ? '' : ` (${owner.command})`}`;
  throw new QilinError(
    ErrorCodes.SERVICE_PORT_IN_USE,
    `HTTP/WebSocket port ${port} is already in use by ${who} (another qilin start?); stop it or set QILIN_HTTP_PORT`,
    { cause: err, details: { port, pid: owner?.pid, command: owner?.command } },
  );
}

/** Routes that move to the operations port when there is one. */
const OPS_ROUTES: readonly KernelHttpRoute[] = [
  '/metrics',
  '/health/live',
  '/health/ready',
  '/health/startup',
];

/**
 * Split the kernel routes between the public port and the operations port:
 * with an operations port, metrics and health are served only there.
 */
export function splitOpsRoutes(
  routes: Readonly<Record<KernelHttpRoute, HttpRoute>>,
  separate: boolean,
): { publicRoutes: Record<string, HttpRoute>; opsRoutes: Record<string, HttpRoute> } {
  const publicRoutes: Record<string, HttpRoute> = {};
  const opsRoutes: Record<string, HttpRoute> = {};
  for (const [path, route] of Object.entries(routes)) {
    if (separate && OPS_ROUTES.includes(path as KernelHttpRoute)) opsRoutes[path] = route;
    else publicRoutes[path] = route;
  }
  return { publicRoutes, opsRoutes };
}
