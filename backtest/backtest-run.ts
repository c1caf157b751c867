/**
 * A backtest through the kernel's own code: history (the generated market of
 * `qilin sim` by seed, or any TickSource: stored ticks, JetStream, CSV,
 * Arrow) in chunks through the same SymbolActors (the worker's actor module:
 * quality, windows, features, model, strategy, gate), their signals decoded
 * as the output pipeline does and checked by the same RiskActor; approved
 * signals become orders for the fill model, fills go to the risk actor (as
 * live `fill.<account>` messages) and to the portfolio (BacktestConsumer).
 *
 * ```
 *  source ─► chunk ─► ShardRunner(s): SymbolActor.onMarket … ─► outputs by source tick
 *        ─► BacktestConsumer, per tick in order:
 *             FillModel.onTrade / onQuote   (orders of earlier signals fill first: never on their own tick)
 *             Portfolio.mark / advance
 *             the tick's SIGNALs ─► OutputDecoder.toSignal ─► RiskActor.check ─► approved ─► FillModel.submit
 *  FillModel fill ─► RiskActor.onFill + Portfolio.onFill
 *  end ─► Portfolio.finish ─► buildReport ─► JSON, text table, HTML page
 * ```
 * `runBacktest`: one shard on this thread, synchronous (sweeps and jobs run
 * it in their own threads). `runBacktestReplay`: the replay engine's shard
 * workers; the same report, bit for bit, whatever the number of workers.
 */
import { createActorFactory, endOfDrain, BASELINE_MODEL } from '../actors/symbol-actor-module.js';
import type { RiskLimits } from '../actors/risk-rules.js';
import type { FillModelOptions } from './fill-model.js';
import type { Execution } from './portfolio.js';
import { buildReport, type BacktestReport } from './report.js';
import { BacktestConsumer } from './backtest-consumer.js';
import { replay } from './replay-engine.js';
import { OutputBuffer, OutputOrder, ShardRunner, newSharedOutput } from './shard-runner.js';
import { newTickChunk, type TickSource } from './tick-chunk.js';
import { GeneratedTickSource } from './sources/generated-source.js';

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

const CHUNK = 8192;

function generatedMarket(o: BacktestRunOptions): GeneratedTickSource {
  return new GeneratedTickSource({
    symbols: o.symbols,
    messages: o.messages,
    seed: o.seed,
    stepUs: o.stepUs,
  });
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
  from?: string,
): BacktestRunResult {
  consumer.finish();
  const result = consumer.portfolio.result();
  const market =
    from === undefined
      ? { symbols: o.symbols, messages: o.messages, seed: o.seed, stepUs: o.stepUs }
      : { from };
  const report = buildReport(result, {
    id: `bt-${o.strategy}-${o.seed}`,
    name:
      from === undefined
        ? `${o.strategy} on a generated market (${o.symbols} symbols, seed ${o.seed})`
        : `${o.strategy} on ${from}`,
    config: {
      ...market,
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
  const market = generatedMarket(o);
  const options = { ...o.actor, strategy: o.strategy, account: o.account };
  const runner = new ShardRunner(
    createActorFactory({ shard: 0, shards: 1, options }),
    0,
    1,
    endOfDrain,
  );
  const consumer = consumerFor(o);
  // About 100 progress steps (a job's cancel is checked at each), chunks of 256 to 8192 ticks:
  // the chunking changes nothing in the result (test/backtest/replay-engine.test.ts).
  const size = Math.min(CHUNK, Math.max(256, Math.ceil(o.messages / 100)));
  const chunk = newTickChunk(size);
  const out = [new OutputBuffer(newSharedOutput(size))];
  const order = new OutputOrder(size);
  let ticks = 0;
  const t0 = performance.now();
  for (let n = market.fill(chunk); n > 0; n = market.fill(chunk)) {
    runner.run(chunk, market.symbols, out[0]!);
    order.sort(out, n);
    consumer.onChunk(chunk, market.symbols, order);
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
  const source = o.source ?? generatedMarket(o);
  const consumer = consumerFor(o);
  const stats = await replay(source, consumer, {
    workers: o.workers,
    chunkTicks: CHUNK,
    actorOptions: { ...o.actor, strategy: o.strategy, account: o.account },
    onProgress: (done, total) => o.onProgress?.(done, total ?? o.messages),
  });
  return resultOf(
    o,
    consumer,
    stats.ticks,
    source.rejected,
    stats.ms,
    o.source === undefined ? undefined : source.description,
  );
}
