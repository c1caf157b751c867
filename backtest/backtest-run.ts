/**
 * A backtest through the kernel's own code: the generated market (the
 * `qilin sim` simulator, by seed), decoded by the kernel's tick decoder, fed
 * in exchange-time order to the same SymbolActors (the worker's actor
 * module: quality, windows, features, model, strategy, gate), their signals
 * decoded as the output pipeline does and checked by the same RiskActor;
 * approved signals become orders for the fill model, fills go to the risk
 * actor (as live `fill.<account>` messages) and to the portfolio.
 *
 * ```
 *  MarketSimulator(seed) ─► TickJsonDecoder ─► per tick, in order:
 *     FillModel.onTrade / onQuote   (orders of earlier signals fill first: never on their own tick)
 *     Portfolio.mark / advance
 *     SymbolActor.onMarket ─► SIGNAL ─► OutputDecoder.toSignal ─► RiskActor.check
 *                                             approved ─► orderFromSignal ─► FillModel.submit
 *  FillModel fill ─► RiskActor.onFill + Portfolio.onFill
 *  end ─► Portfolio.finish ─► buildReport ─► JSON, text table, HTML page
 * ```
 * One thread, a simulated clock (the ticks' exchange times): the same seed
 * and options give the same report, bit for bit.
 */
import { newMarketEvent } from '../kernel/market-record.js';
import { TickJsonDecoder } from '../adapters/nats/tick-json-decoder.js';
import { MarketSimulator } from '../ops/sim/market-simulator.js';
import { createActorFactory, endOfDrain, BASELINE_MODEL } from '../actors/symbol-actor-module.js';
import type { RiskLimits } from '../actors/risk-rules.js';
import { invalidArgument } from '../kernel/errors.js';
import type { FillModelOptions } from './fill-model.js';
import type { Execution } from './portfolio.js';
import { buildReport, type BacktestReport } from './report.js';
import { BacktestConsumer } from './backtest-consumer.js';
import { replay } from './replay-engine.js';
import { OutputBuffer, OutputOrder, ShardRunner, newSharedOutput } from './shard-runner.js';
import {
  SymbolIds,
  appendTick,
  newTickChunk,
  type TickChunk,
  type TickSource,
} from './tick-chunk.js';

export interface BacktestRunOptions {
  /** Generated market: symbols, messages (all symbols together), seed, µs between messages. */
  symbols: number;
  messages: number;
  seed: number;
  stepUs: number;
  /** Strategy name (signal ids, the report) and account. */
  strategy: string;
  account: string;
  /** SymbolActor options (`actor` of the kernel config; `--param k=v`). */
  actor: Record<string, unknown>;
  risk: Partial<RiskLimits>;
  fill: Partial<FillModelOptions>;
  initialCash: number;
  /** Equity sample interval, µs of exchange time. */
  sampleIntervalUs: number;
  codeVersion: string;
  onProgress?: (done: number, total: number) => void;
}

export interface BacktestRunResult {
  report: BacktestReport;
  ticks: number;
  rejectedTicks: number;
  signals: number;
  approved: number;
  fills: number;
  /** Wall time of the run, ms, and ticks per second through the whole chain. */
  ms: number;
  ticksPerSec: number;
  /** The portfolio's fills (the `backtest_trades` rows; `qilin backtest --save`). */
  executions: Execution[];
}

const T0_US = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z: a fixed start, so runs repeat exactly
const CHUNK = 8192;

/**
 * The generated market as chunks, synchronously: the `qilin sim` simulator
 * by seed, each message decoded by the kernel's tick decoder (recv = ts).
 */
export class GeneratedMarket implements TickSource {
  readonly ids = new SymbolIds();
  rejected = 0;
  produced = 0;
  private readonly sim: MarketSimulator;
  private readonly decoder = new TickJsonDecoder();
  private readonly ev = newMarketEvent();
  private now = T0_US;

  constructor(
    symbols: number,
    seed: number,
    private readonly stepUs: number,
    readonly messages: number,
  ) {
    if (!Number.isInteger(messages) || messages < 1) {
      invalidArgument('messages', messages, 'an integer ≥ 1');
    }
    if (!(stepUs > 0)) invalidArgument('stepUs', stepUs, 'a number of µs > 0');
    this.sim = new MarketSimulator({ symbols, rate: 1, seed, badRate: 0, gapRate: 0 });
  }

  /** The next ticks into `c` (from index 0); 0 at the end. */
  fill(c: TickChunk): number {
    c.length = 0;
    const ev = this.ev;
    while (c.length < c.capacity && this.produced < this.messages) {
      this.produced++;
      this.now += this.stepUs;
      const msg = this.sim.nextMessage(this.now);
      const r = this.decoder.decode(msg.subject, msg.data, ev);
      if (!r.ok) {
        this.rejected++;
        continue;
      }
      ev.symId = this.ids.id(r.sym);
      ev.recv = ev.ts;
      appendTick(c, ev);
    }
    return c.length;
  }

  // ── TickSource (for `replay`) ──
  get description(): string {
    return `generated market (${this.messages} messages)`;
  }
  get symbols(): readonly string[] {
    return this.ids.names;
  }
  readonly total = undefined;
  get read(): number {
    return this.produced - this.rejected;
  }
  next(c: TickChunk): Promise<number> {
    return Promise.resolve(this.fill(c));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function consumerFor(o: BacktestRunOptions): BacktestConsumer {
  return new BacktestConsumer({
    strategy: o.strategy,
    account: o.account,
    model: BASELINE_MODEL,
    risk: o.risk,
    fill: o.fill,
    initialCash: o.initialCash,
    sampleIntervalUs: o.sampleIntervalUs,
  });
}

function resultOf(
  o: BacktestRunOptions,
  consumer: BacktestConsumer,
  ticks: number,
  rejected: number,
  ms: number,
): BacktestRunResult {
  consumer.finish();
  const result = consumer.portfolio.result();
  const report = buildReport(result, {
    id: `bt-${o.strategy}-${o.seed}`,
    name: `${o.strategy} on a generated market (${o.symbols} symbols, seed ${o.seed})`,
    config: {
      symbols: o.symbols,
      messages: o.messages,
      seed: o.seed,
      stepUs: o.stepUs,
      strategy: o.strategy,
      actor: o.actor,
      risk: o.risk,
      fill: o.fill,
      initialCash: o.initialCash,
    },
    codeVersion: o.codeVersion,
  });
  return {
    report,
    ticks,
    rejectedTicks: rejected,
    signals: consumer.signals,
    approved: consumer.approved,
    fills: consumer.fills,
    ms,
    ticksPerSec: ticks / (ms / 1000),
    executions: result.executions,
  };
}

/** A backtest on a generated market, on this thread (synchronous; jobs and sweeps call it). */
export function runBacktest(o: BacktestRunOptions): BacktestRunResult {
  const market = new GeneratedMarket(o.symbols, o.seed, o.stepUs, o.messages);
  const options = { ...o.actor, strategy: o.strategy, account: o.account };
  const runner = new ShardRunner(
    createActorFactory({ shard: 0, shards: 1, options }),
    0,
    1,
    endOfDrain,
  );
  const consumer = consumerFor(o);
  const chunk = newTickChunk(CHUNK);
  const out = [new OutputBuffer(newSharedOutput(CHUNK))];
  const order = new OutputOrder(CHUNK);
  let ticks = 0;
  const t0 = performance.now();
  for (let n = market.fill(chunk); n > 0; n = market.fill(chunk)) {
    runner.run(chunk, market.ids.names, out[0]!);
    order.sort(out, n);
    consumer.onChunk(chunk, market.ids.names, order);
    ticks += n;
    o.onProgress?.(market.produced, o.messages);
  }
  return resultOf(o, consumer, ticks, market.rejected, performance.now() - t0);
}

/**
 * The same backtest through the replay engine: the generated market (or any
 * TickSource) in shard workers. The same report as `runBacktest`, whatever
 * `workers` is.
 */
export async function runBacktestReplay(
  o: BacktestRunOptions & { workers: number; source?: TickSource },
): Promise<BacktestRunResult> {
  const market =
    o.source === undefined
      ? new GeneratedMarket(o.symbols, o.seed, o.stepUs, o.messages)
      : undefined;
  const source = o.source ?? market!;
  const consumer = consumerFor(o);
  const stats = await replay(source, consumer, {
    workers: o.workers,
    chunkTicks: CHUNK,
    actorOptions: { ...o.actor, strategy: o.strategy, account: o.account },
    onProgress: (done, total) => o.onProgress?.(done, total ?? o.messages),
  });
  return resultOf(o, consumer, stats.ticks, source.rejected, stats.ms);
}
