import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MetricRow } from '../kernel/event-store.js';
import type { RejectReason } from '../kernel/market-source.js';
import type { StageTimes } from '../kernel/messages.js';
import type { ShardStats } from '../kernel/worker-pool.js';

/**
 * prom-client metrics of a running kernel. The kernel publishes named
 * diagnostics_channel events and exposes stats(); this adapter turns them
 * into Prometheus series, so kernel code never imports prom-client.
 */
export interface KernelGaugeSources {
  shards(): ShardStats[];
  breakerState(): 'closed' | 'open' | 'half_open';
  wsClients(): number;
  store(): {
    lagMs: number;
    spilledRows: number;
    buffered: number;
    storeUp: boolean;
    tickRingDropped: number;
  };
  killed(): boolean;
}

const BREAKER_CODE = { closed: 0, half_open: 1, open: 2 } as const;

/** Latency buckets in seconds: 10 µs … 1 s. */
const LATENCY_BUCKETS = [
  1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 1,
];

export class KernelMetrics {
  readonly registry = new Registry();
  /** Accepted ticks: a plain number on the hot path, folded into the counter at scrape. */
  received = 0;
  private receivedReported = 0;
  readonly ticksRejected: Counter<'reason'>;
  readonly ticksDropped: Counter<'ring'>;
  readonly signals: Counter<'decision' | 'reason'>;
  readonly outputs: Counter<'kind'>;
  readonly stageLatency: Histogram<'stage'>;
  readonly controlRejected: Counter;
  readonly workerRestarts: Counter;
  private readonly unsubscribers: Array<() => void> = [];
  private readonly stages: Record<
    'recvFeat' | 'featInfer' | 'inferRisk' | 'riskPub' | 'total',
    { observe(v: number): void }
  >;
  private readonly outputChildren: Record<'prediction' | 'signal' | 'quality', { inc(): void }>;
  private readonly approvedChild: { inc(): void };

  constructor(sources: KernelGaugeSources) {
    collectDefaultMetrics({ register: this.registry, prefix: 'qilin_process_' });
    const registers = [this.registry];
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    new Counter({
      name: 'qilin_ticks_received_total',
      help: 'Market messages accepted by the ingest stage',
      registers,
      collect() {
        this.inc(self.received - self.receivedReported);
        self.receivedReported = self.received;
      },
    });
    this.ticksRejected = new Counter({
      name: 'qilin_ticks_rejected_total',
      help: 'Market messages refused, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.ticksDropped = new Counter({
      name: 'qilin_ticks_dropped_total',
      help: 'Accepted messages dropped by the full-ring policy (ring=worker|store)',
      labelNames: ['ring'],
      registers,
    });
    this.signals = new Counter({
      name: 'qilin_signals_total',
      help: 'Candidate signals by risk decision and reason',
      labelNames: ['decision', 'reason'],
      registers,
    });
    this.outputs = new Counter({
      name: 'qilin_actor_outputs_total',
      help: 'Actor outputs (prediction, signal, quality) received from workers',
      labelNames: ['kind'],
      registers,
    });
    this.stageLatency = new Histogram({
      name: 'qilin_stage_latency_seconds',
      help: 'Per-stage latency of signals: recv→feat, feat→infer, infer→risk, risk→pub, and total recv→pub',
      labelNames: ['stage'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const h = this.stageLatency;
    this.stages = {
      recvFeat: h.labels({ stage: 'recv_feat' }),
      featInfer: h.labels({ stage: 'feat_infer' }),
      inferRisk: h.labels({ stage: 'infer_risk' }),
      riskPub: h.labels({ stage: 'risk_pub' }),
      total: h.labels({ stage: 'total' }),
    };
    this.outputChildren = {
      prediction: this.outputs.labels({ kind: 'prediction' }),
      signal: this.outputs.labels({ kind: 'signal' }),
      quality: this.outputs.labels({ kind: 'quality' }),
    };
    this.approvedChild = this.signals.labels({ decision: 'approved', reason: '' });
    this.controlRejected = new Counter({
      name: 'qilin_control_rejected_total',
      help: 'Fill or control messages that failed validation',
      registers,
    });
    this.workerRestarts = new Counter({
      name: 'qilin_worker_restarts_total',
      help: 'Worker threads restarted by the supervisor',
      registers,
    });
    new Gauge({
      name: 'qilin_ring_occupancy',
      help: 'Records held in each ring (dir=in: main→worker, out: worker→main)',
      labelNames: ['shard', 'dir'],
      registers,
      collect() {
        for (const s of sources.shards()) {
          this.set({ shard: String(s.shard), dir: 'in' }, s.in.size);
          this.set({ shard: String(s.shard), dir: 'out' }, s.out.size);
        }
      },
    });
    new Gauge({
      name: 'qilin_ring_capacity',
      help: 'Capacity of each ring in records',
      registers,
      collect() {
        const s = sources.shards()[0];
        if (s !== undefined) this.set(s.in.capacity);
      },
    });
    new Gauge({
      name: 'qilin_worker_alive',
      help: '1 when the shard has a live worker',
      labelNames: ['shard'],
      registers,
      collect() {
        for (const s of sources.shards()) this.set({ shard: String(s.shard) }, s.alive ? 1 : 0);
      },
    });
    new Gauge({
      name: 'qilin_actor_errors',
      help: 'Records an actor threw on (skipped), per shard',
      labelNames: ['shard'],
      registers,
      collect() {
        for (const s of sources.shards()) this.set({ shard: String(s.shard) }, s.actorErrors);
      },
    });
    new Gauge({
      name: 'qilin_breaker_state',
      help: 'Outbound signal publish circuit breaker: 0 closed, 1 half-open, 2 open',
      registers,
      collect() {
        this.set(BREAKER_CODE[sources.breakerState()]);
      },
    });
    new Gauge({
      name: 'qilin_risk_killed',
      help: '1 while the kill switch stops all signals',
      registers,
      collect() {
        this.set(sources.killed() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'qilin_ws_clients',
      help: 'Connected WebSocket clients',
      registers,
      collect() {
        this.set(sources.wsClients());
      },
    });
    new Gauge({
      name: 'qilin_store_lag_seconds',
      help: 'Age of the oldest row not yet in the store',
      registers,
      collect() {
        this.set(sources.store().lagMs / 1000);
      },
    });
    new Gauge({
      name: 'qilin_store_spilled_rows',
      help: 'Rows spilled to disk while the store is down (replayed when it is back)',
      registers,
      collect() {
        this.set(sources.store().spilledRows);
      },
    });
    new Gauge({
      name: 'qilin_store_up',
      help: '1 when the store answers',
      registers,
      collect() {
        this.set(sources.store().storeUp ? 1 : 0);
      },
    });
    const onRestart = (): void => this.workerRestarts.inc();
    subscribe('qilin:worker:restart', onRestart);
    this.unsubscribers.push(() => unsubscribe('qilin:worker:restart', onRestart));
  }

  reject(reason: RejectReason): void {
    this.ticksRejected.inc({ reason });
  }

  /** Observe the stages of one published signal (label children resolved once, not per call). */
  observeStages(lat: StageTimes): void {
    const st = this.stages;
    st.recvFeat.observe((lat.feat - lat.recv) / 1e6);
    st.featInfer.observe((lat.infer - lat.feat) / 1e6);
    if (lat.risk !== undefined) st.inferRisk.observe((lat.risk - lat.infer) / 1e6);
    if (lat.risk !== undefined && lat.pub !== undefined)
      st.riskPub.observe((lat.pub - lat.risk) / 1e6);
    if (lat.pub !== undefined) st.total.observe((lat.pub - lat.recv) / 1e6);
  }

  /** Count one actor output of a kind. */
  output(kind: 'prediction' | 'signal' | 'quality'): void {
    this.outputChildren[kind].inc();
  }

  /** Count one approved signal. */
  approved(): void {
    this.approvedChild.inc();
  }

  /** Prometheus text. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** A snapshot of every counter and gauge as rows for the `metrics` table. */
  async snapshot(tsUs: number): Promise<MetricRow[]> {
    const rows: MetricRow[] = [];
    for (const m of await this.registry.getMetricsAsJSON()) {
      if (m.name.startsWith('qilin_process_')) continue;
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
}
