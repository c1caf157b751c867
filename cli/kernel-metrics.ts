import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { RiskCounters } from '../actors/risk-actor.js';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { PipelineCounters } from '../actors/output-pipeline.js';
import type { MetricRow } from '../kernel/event-store.js';
import type { StageTimes } from '../kernel/messages.js';
import type { ShardStats } from '../kernel/worker-pool.js';
import { LatencyWindow } from './latency-window.js';
import { StageLatency } from './stage-latency.js';

/**
 * prom-client metrics of a running kernel. The kernel keeps plain counters
 * (per-shard Float64 words the workers write, the pipeline's numbers,
 * episode counts) and publishes diagnostics_channel events; this adapter
 * turns them into Prometheus series at scrape time, so kernel code never
 * imports prom-client and the hot path never touches a metric object.
 */
export interface KernelMetricSources {
  shards(): ShardStats[];
  pipeline(): PipelineCounters;
  /** Overload / outage occurrences by kind (kernel/episodes.ts). */
  episodes(): ReadonlyMap<string, number>;
  /** Outages (down → up cycles started) by service: nats, redis, clickhouse. */
  outages?(): ReadonlyMap<string, number>;
  /** NATS connection events per shard worker. */
  sourceEvents(): ReadonlyMap<string, number>;
  breakerState(): 'closed' | 'open' | 'half_open';
  wsClients(): number;
  /** WebSocket subscriber sessions (resume, history, heartbeats; docs/adr/0007). */
  wsSessions?(): WsSessionStats;
  store(): { lagMs: number; spilledRows: number; storeUp: boolean };
  killed(): boolean;
  /** The risk actor's VaR and sizing counters (actors/risk-actor.ts). */
  riskCounters?(): RiskCounters;
  /** Ticks the in-process feed could not queue (full in-ring). */
  feedDropped(): number;
  /** Worst event-loop lag of the main thread over the last second, ms. */
  mainLoopLagMs(): number;
}

/** The WebSocket server's session counters and history gauges (UwsServer.stats()). */
export interface WsSessionStats {
  resumes: number;
  replayedFrames: number;
  historyLost: number;
  heartbeats: number;
  historyBytes: number;
  historyFrames: number;
  historyOldestAgeMs: number;
}

/** Session stats before the WebSocket server exists. */
export const NO_WS_SESSIONS: WsSessionStats = Object.freeze({
  resumes: 0,
  replayedFrames: 0,
  historyLost: 0,
  heartbeats: 0,
  historyBytes: 0,
  historyFrames: 0,
  historyOldestAgeMs: 0,
});

/** Name prefixes of prom-client's default process metrics: not kept in the `metrics` table. */
export const DEFAULT_METRIC_PREFIXES = ['process_', 'nodejs_'] as const;

const BREAKER_CODE = { closed: 0, half_open: 1, open: 2 } as const;

type Labels = Record<string, string>;

/**
 * A counter whose value lives elsewhere (a plain number that only grows):
 * at scrape time it adds the increase since the last scrape, per label set.
 */
/** A prom-client counter that follows an absolute count read at scrape time (a reset is not a decrease). */
export function mirrorCounter(
  registers: Registry[],
  name: string,
  help: string,
  labelNames: string[],
  read: () => Array<[Labels, number]>,
): void {
  const last = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames,
    registers,
    collect() {
      for (const [labels, value] of read()) {
        const key = JSON.stringify(labels);
        const delta = value - (last.get(key) ?? 0);
        if (delta > 0) this.inc(labels, delta);
        else if (!last.has(key)) this.inc(labels, 0);
        last.set(key, value);
      }
    },
  });
}

export class KernelMetrics {
  readonly registry = new Registry();
  readonly workerRestarts: Counter;
  readonly controlRejected: Counter;
  /** Failover: market partitions adopted from kernels that stopped (config partitionTakeover). */
  readonly partitionsAdopted: Counter;
  /** Cluster fan-out: frames received from other kernels and published to this one's WebSocket clients. */
  readonly fanoutReceived: Counter;
  readonly jobEvents: Counter<'type' | 'event'>;
  readonly jobsRefused: Counter;
  private readonly unsubscribers: Array<() => void> = [];
  readonly stages: StageLatency;
  /** recv→pub of the latest published signals, for `status.latencyUs` (exact, sliding). */
  readonly recentLatency = new LatencyWindow();

  constructor(src: KernelMetricSources) {
    // Node's default metrics keep their standard names (process_*, nodejs_*)
    // so stock dashboards and alerts work on them.
    collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    const perShard = (f: (s: ShardStats) => number) => (): Array<[Labels, number]> =>
      src.shards().map((s) => [{ shard: String(s.shard) }, f(s)]);
    const sum = (f: (s: ShardStats) => number) => (): number =>
      src.shards().reduce((n, s) => n + f(s), 0);

    mirrorCounter(
      registers,
      'qilin_ticks_received_total',
      'Market messages accepted (decoded and valid)',
      [],
      () => [[{}, sum((s) => s.accepted)()]],
    );
    mirrorCounter(
      registers,
      'qilin_ticks_rejected_total',
      'Market messages refused, by reason',
      ['reason'],
      () => {
        const by = new Map<string, number>();
        for (const s of src.shards())
          for (const [r, n] of Object.entries(s.rejected)) by.set(r, (by.get(r) ?? 0) + n);
        return [...by].map(([reason, n]) => [{ reason }, n]);
      },
    );
    mirrorCounter(
      registers,
      'qilin_ticks_dropped_total',
      'Ticks lost: ring=store (store ring full: not stored), ring=announce (their symbol could not be announced: not processed), ring=feed (in-process feed full)',
      ['ring'],
      () => [
        [{ ring: 'store' }, sum((s) => s.storeDropped)()],
        [{ ring: 'announce' }, sum((s) => s.unannounced)()],
        [{ ring: 'feed' }, src.feedDropped()],
      ],
    );
    mirrorCounter(
      registers,
      'qilin_ticks_missing_total',
      "Ticks missing by sequence number (a gap in a symbol's seq): lost before the kernel (bus, slow-consumer cut, venue)",
      [],
      () => [[{}, sum((s) => s.missing)()]],
    );
    mirrorCounter(
      registers,
      'qilin_ticks_refused_total',
      'JetStream ticks handed back for redelivery because the store ring was full (not lost)',
      [],
      () => [[{}, sum((s) => s.refused)()]],
    );
    mirrorCounter(
      registers,
      'qilin_jetstream_acked_total',
      "JetStream market messages acknowledged once their store rows were durable (inserted, or spilled and fsync'd)",
      [],
      () => [[{}, sum((s) => s.ackedDurable)()]],
    );
    mirrorCounter(
      registers,
      'qilin_jetstream_redelivered_total',
      'JetStream market messages delivered again (not acknowledged in time, or after a restart); stored once: the ticks key dedups them',
      [],
      () => [[{}, sum((s) => s.redelivered)()]],
    );
    // Warm restart (docs/adr/0006-warm-restart.md).
    mirrorCounter(
      registers,
      'qilin_snapshots_total',
      'Unit snapshots of the actors: result=written (to Redis), fallback (to local files: Redis refused), failed (nowhere: retried next round)',
      ['result'],
      () => [
        [{ result: 'written' }, sum((s) => s.snapshots - s.snapshotFallback)()],
        [{ result: 'fallback' }, sum((s) => s.snapshotFallback)()],
        [{ result: 'failed' }, sum((s) => s.snapshotFailed)()],
      ],
    );
    mirrorCounter(
      registers,
      'qilin_snapshot_restored_symbols_total',
      'Symbols whose actors were restored from a snapshot (at start or after a worker restart)',
      [],
      () => [[{}, sum((s) => s.restored)()]],
    );
    mirrorCounter(
      registers,
      'qilin_snapshot_refused_total',
      'Snapshots not used (other actor options or code, damaged, unreadable): their units started cold',
      [],
      () => [[{}, sum((s) => s.snapshotRefused)()]],
    );
    mirrorCounter(
      registers,
      'qilin_replayed_total',
      'JetStream messages replayed into restored actors (state only: their rows and outputs were made before the restart)',
      [],
      () => [[{}, sum((s) => s.replayed)()]],
    );
    mirrorCounter(
      registers,
      'qilin_already_applied_total',
      'Redelivered JetStream messages their restored actor already had: stored (the key dedups), not processed again',
      [],
      () => [[{}, sum((s) => s.alreadyApplied)()]],
    );
    new Gauge({
      name: 'qilin_snapshot_bytes',
      help: 'Compressed bytes of the last snapshot round, all shards',
      registers,
      collect() {
        this.set(sum((s) => s.snapshotBytes)());
      },
    });
    new Gauge({
      name: 'qilin_snapshot_duration_ms',
      help: 'Duration of the last snapshot round, slowest shard, ms',
      registers,
      collect() {
        let worst = 0;
        for (const s of src.shards()) worst = Math.max(worst, s.snapshotMs);
        this.set(worst);
      },
    });
    new Gauge({
      name: 'qilin_snapshot_block_ms',
      help: 'Longest synchronous encode of one snapshot unit in the last round, ms: how long a worker took no tick',
      registers,
      collect() {
        let worst = 0;
        for (const s of src.shards()) worst = Math.max(worst, s.snapshotBlockMs);
        this.set(worst);
      },
    });
    new Gauge({
      name: 'qilin_jetstream_ack_waiting',
      help: 'JetStream market messages accepted and waiting for their store rows to be durable before the ack',
      registers,
      collect() {
        this.set(sum((s) => s.ackWaiting)());
      },
    });
    const risk = src.riskCounters?.bind(src);
    if (risk !== undefined) {
      mirrorCounter(
        registers,
        'qilin_risk_observations_total',
        'Prices the risk actor took for its VaR windows (accepted), and refused (not a finite price > 0)',
        ['outcome'],
        () => [
          [{ outcome: 'accepted' }, risk().observations],
          [{ outcome: 'refused' }, risk().observationsRejected],
        ],
      );
      mirrorCounter(
        registers,
        'qilin_risk_resized_total',
        'Approved signals whose quantity the interval sizing reduced',
        [],
        () => [[{}, risk().resized]],
      );
      mirrorCounter(
        registers,
        'qilin_risk_var_skipped_total',
        'VaR checks passed for want of varMinObservations returns, by rule (symbol, account)',
        ['rule'],
        () => [
          [{ rule: 'symbol' }, risk().varSkipped.symbol],
          [{ rule: 'account' }, risk().varSkipped.account],
        ],
      );
    }
    mirrorCounter(
      registers,
      'qilin_outputs_dropped_total',
      'Actor outputs dropped: the out ring stayed full (reason=ring_full) or the frame did not fit (reason=too_large)',
      ['reason'],
      () => [
        [{ reason: 'ring_full' }, sum((s) => s.outDropped)()],
        [{ reason: 'too_large' }, sum((s) => s.encodeFailed)()],
      ],
    );
    mirrorCounter(
      registers,
      'qilin_actor_outputs_total',
      'Actor outputs (prediction, signal, quality) routed by the main thread',
      ['kind'],
      () => {
        const p = src.pipeline();
        return [
          [{ kind: 'prediction' }, p.predictions],
          [{ kind: 'signal' }, p.signals],
          [{ kind: 'quality' }, p.quality],
        ];
      },
    );
    mirrorCounter(
      registers,
      'qilin_quality_events_total',
      'Quality records by kind: window (window end), change (quality state changed), quarantine (a tick held out), reset (venue sequence reset)',
      ['kind'],
      () => Object.entries(src.pipeline().qualityEvents).map(([kind, n]) => [{ kind }, n]),
    );
    mirrorCounter(
      registers,
      'qilin_quality_issues_total',
      'Data quality issues by check, counted at each quality window end (seq_gap counts missing ticks)',
      ['check'],
      () => Object.entries(src.pipeline().qualityIssues).map(([check, n]) => [{ check }, n]),
    );
    mirrorCounter(
      registers,
      'qilin_signals_total',
      'Candidate signals by risk decision and reason',
      ['decision', 'reason'],
      () => {
        const p = src.pipeline();
        const rows: Array<[Labels, number]> = [[{ decision: 'approved', reason: '' }, p.approved]];
        for (const [reason, n] of Object.entries(p.rejected)) {
          rows.push([
            { decision: reason === 'publish_failed' ? 'publish_failed' : 'rejected', reason },
            n,
          ]);
        }
        return rows;
      },
    );
    mirrorCounter(
      registers,
      'qilin_actor_errors_total',
      'Records an actor threw on (skipped), per shard',
      ['shard'],
      perShard((s) => s.actorErrors),
    );
    mirrorCounter(
      registers,
      'qilin_nats_disconnects_total',
      'NATS connections of the shard workers lost (market ticks published meanwhile are lost on core subjects)',
      ['shard'],
      () => this.sourceCounts(src, 'disconnected'),
    );
    mirrorCounter(
      registers,
      'qilin_nats_slow_consumer_total',
      "Slow-consumer reports on the shard workers' NATS connections",
      ['shard'],
      () => this.sourceCounts(src, 'slow_consumer'),
    );
    mirrorCounter(
      registers,
      'qilin_overload_episodes_total',
      'Occurrences of overload / outage conditions by kind (each logged once per episode)',
      ['kind'],
      () => [...src.episodes()].map(([kind, n]) => [{ kind }, n]),
    );
    mirrorCounter(
      registers,
      'qilin_outages_total',
      'Outages of a service the kernel depends on (NATS, Redis, ClickHouse), counted once each when it goes down',
      ['service'],
      () => [...(src.outages?.() ?? [])].map(([service, n]) => [{ service }, n]),
    );
    this.workerRestarts = new Counter({
      name: 'qilin_worker_restarts_total',
      help: 'Worker threads restarted by the supervisor',
      registers,
    });
    this.controlRejected = new Counter({
      name: 'qilin_control_rejected_total',
      help: 'Fill or control messages that failed validation',
      registers,
    });
    this.partitionsAdopted = new Counter({
      name: 'qilin_partitions_adopted_total',
      help: 'Market partitions this kernel adopted from a kernel whose claim expired (failover)',
      registers,
    });
    this.jobEvents = new Counter({
      name: 'qilin_job_events_total',
      help: 'State changes of the jobs this kernel ran (event: active, completed, failed, cancelled, retrying), by job type',
      labelNames: ['type', 'event'],
      registers,
    });
    this.jobsRefused = new Counter({
      name: 'qilin_jobs_refused_total',
      help: 'Job HTTP requests refused as bad input (400: unknown type, bad params or options, bad JSON)',
      registers,
    });
    this.fanoutReceived = new Counter({
      name: 'qilin_fanout_received_total',
      help: "Frames of other kernels (signals, predictions, quality) received over NATS and sent to this kernel's WebSocket subscribers",
      registers,
    });
    this.stages = new StageLatency(this.registry);
    new Gauge({
      name: 'qilin_ring_used_bytes',
      help: 'Bytes held in each shard ring (ring=in: feed → worker, out: worker → main, store: worker → store)',
      labelNames: ['shard', 'ring'],
      registers,
      collect() {
        for (const s of src.shards()) {
          this.set({ shard: String(s.shard), ring: 'in' }, s.in.used);
          this.set({ shard: String(s.shard), ring: 'out' }, s.out.used);
          this.set({ shard: String(s.shard), ring: 'store' }, s.store.used);
        }
      },
    });
    new Gauge({
      name: 'qilin_ring_capacity_bytes',
      help: 'Capacity of each shard ring in bytes',
      registers,
      collect() {
        const s = src.shards()[0];
        if (s !== undefined) this.set(s.out.capacity);
      },
    });
    new Gauge({
      name: 'qilin_worker_alive',
      help: '1 when the shard has a live worker',
      labelNames: ['shard'],
      registers,
      collect() {
        for (const s of src.shards()) this.set({ shard: String(s.shard) }, s.alive ? 1 : 0);
      },
    });
    new Gauge({
      name: 'qilin_worker_loop_lag_seconds',
      help: 'Worst event-loop lag of each shard worker over the last second',
      labelNames: ['shard'],
      registers,
      collect() {
        for (const s of src.shards()) this.set({ shard: String(s.shard) }, s.loopLagMs / 1000);
      },
    });
    new Gauge({
      name: 'qilin_main_loop_lag_seconds',
      help: 'Worst event-loop lag of the main thread over the last second',
      registers,
      collect() {
        this.set(src.mainLoopLagMs() / 1000);
      },
    });
    new Gauge({
      name: 'qilin_symbols',
      help: 'Symbols (actors) per shard',
      labelNames: ['shard'],
      registers,
      collect() {
        for (const s of src.shards()) this.set({ shard: String(s.shard) }, s.actors);
      },
    });
    new Gauge({
      name: 'qilin_breaker_state',
      help: 'Outbound signal publish circuit breaker: 0 closed, 1 half-open, 2 open',
      registers,
      collect() {
        this.set(BREAKER_CODE[src.breakerState()]);
      },
    });
    new Gauge({
      name: 'qilin_risk_killed',
      help: '1 while the kill switch stops all signals',
      registers,
      collect() {
        this.set(src.killed() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'qilin_ws_clients',
      help: 'Connected WebSocket clients',
      registers,
      collect() {
        this.set(src.wsClients());
      },
    });
    // ── WebSocket subscriber sessions (docs/adr/0007) ──
    const sessions = src.wsSessions?.bind(src);
    if (sessions !== undefined) {
      const counters: Array<[string, string, keyof WsSessionStats]> = [
        ['qilin_ws_resumes_total', 'Subscribe frames that resumed with offsets', 'resumes'],
        [
          'qilin_ws_replayed_frames_total',
          'Frames sent from the history to resuming WebSocket clients',
          'replayedFrames',
        ],
        [
          'qilin_ws_history_lost_total',
          'history_lost markers sent (offsets too old, other epoch, replay too large)',
          'historyLost',
        ],
        ['qilin_ws_heartbeats_total', 'heartbeat frames sent to WebSocket clients', 'heartbeats'],
      ];
      for (const [name, help, field] of counters)
        mirrorCounter(registers, name, help, [], () => [[{}, sessions()[field]]]);
      new Gauge({
        name: 'qilin_ws_history_bytes',
        help: 'Bytes of WebSocket frames held for resuming clients',
        registers,
        collect() {
          this.set(sessions().historyBytes);
        },
      });
      new Gauge({
        name: 'qilin_ws_history_frames',
        help: 'WebSocket frames held for resuming clients',
        registers,
        collect() {
          this.set(sessions().historyFrames);
        },
      });
      new Gauge({
        name: 'qilin_ws_history_oldest_age_seconds',
        help: 'Age of the oldest WebSocket frame held for resuming clients (0 when empty)',
        registers,
        collect() {
          this.set(sessions().historyOldestAgeMs / 1000);
        },
      });
    }
    new Gauge({
      name: 'qilin_store_lag_seconds',
      help: 'Age of the oldest row not yet in the store',
      registers,
      collect() {
        this.set(src.store().lagMs / 1000);
      },
    });
    new Gauge({
      name: 'qilin_store_spilled_rows',
      help: 'Rows spilled to disk while the store is down (replayed when it is back)',
      registers,
      collect() {
        this.set(src.store().spilledRows);
      },
    });
    new Gauge({
      name: 'qilin_store_up',
      help: '1 when the store answers',
      registers,
      collect() {
        this.set(src.store().storeUp ? 1 : 0);
      },
    });
    const onRestart = (): void => this.workerRestarts.inc();
    subscribe('qilin:worker:restart', onRestart);
    this.unsubscribers.push(() => unsubscribe('qilin:worker:restart', onRestart));
  }

  /** Observe the stages of one published signal (label children resolved once, not per call). */
  observeStages(lat: StageTimes): void {
    const st = this.stages;
    st.observe(0, (lat.feat - lat.recv) / 1e6);
    st.observe(1, (lat.infer - lat.feat) / 1e6);
    if (lat.risk !== undefined) st.observe(2, (lat.risk - lat.infer) / 1e6);
    if (lat.risk !== undefined && lat.pub !== undefined) st.observe(3, (lat.pub - lat.risk) / 1e6);
    if (lat.pub !== undefined) {
      st.observe(4, (lat.pub - lat.recv) / 1e6);
      this.recentLatency.record(lat.pub - lat.recv, lat.pub / 1000);
    }
  }

  /** Prometheus text. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** A snapshot of every counter and gauge as rows for the `metrics` table. */
  async snapshot(tsUs: number): Promise<MetricRow[]> {
    const rows: MetricRow[] = [];
    for (const m of await this.registry.getMetricsAsJSON()) {
      if (DEFAULT_METRIC_PREFIXES.some((p) => m.name.startsWith(p))) continue;
      for (const v of m.values) {
        const labels = Object.entries(v.labels)
          .map(([k, x]) => `${k}=${String(x)}`)
          .join(',');
        rows.push({
          tsUs,
          name: 'metricName' in v && typeof v.metricName === 'string' ? v.metricName : m.name,
          labels,
          value: v.value,
        });
      }
    }
    return rows;
  }

  close(): void {
    for (const u of this.unsubscribers) u();
  }

  private sourceCounts(src: KernelMetricSources, type: string): Array<[Labels, number]> {
    const rows: Array<[Labels, number]> = [];
    for (const [key, n] of src.sourceEvents()) {
      const [shard, t] = key.split(':');
      if (t === type) rows.push([{ shard: shard! }, n]);
    }
    return rows;
  }
}
