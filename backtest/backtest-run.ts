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
import type { OutputSink } from '../kernel/actor.js';
import { newMarketEvent, MarketKind } from '../kernel/market-record.js';
import { OutputKind, type OutputEvent } from '../kernel/output-record.js';
import { TickJsonDecoder } from '../adapters/nats/tick-json-decoder.js';
import { MarketSimulator } from '../ops/sim/market-simulator.js';
import { createActorFactory, BASELINE_MODEL } from '../actors/symbol-actor-module.js';
import { OutputDecoder } from '../actors/output-decoder.js';
import { RiskActor } from '../actors/risk-actor.js';
import type { RiskLimits } from '../actors/risk-rules.js';
import { invalidArgument } from '../kernel/errors.js';
import { FillModel, orderFromSignal, type FillModelOptions, type SimFill } from './fill-model.js';
import { Portfolio, type Execution } from './portfolio.js';
import { buildReport, type BacktestReport } from './report.js';

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
  /** The portfolio's fills (the `backtest_trades` rows; sweep: `qilin backtest --save`). */
  executions: Execution[];
}

const T0_US = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z: a fixed start, so runs repeat exactly

export function runBacktest(o: BacktestRunOptions): BacktestRunResult {
  if (!Number.isInteger(o.messages) || o.messages < 1) {
    invalidArgument('messages', o.messages, 'an integer ≥ 1');
  }
  if (!(o.stepUs > 0)) invalidArgument('stepUs', o.stepUs, 'a number of µs > 0');
  const sim = new MarketSimulator({
    symbols: o.symbols,
    rate: 1,
    seed: o.seed,
    badRate: 0,
    gapRate: 0,
  });
  const decoder = new TickJsonDecoder();
  const options = { ...o.actor, strategy: o.strategy, account: o.account };
  const factory = createActorFactory({ shard: 0, shards: 1, options });
  const outDecoder = new OutputDecoder({
    strategy: o.strategy,
    account: o.account,
    model: BASELINE_MODEL,
  });
  const risk = new RiskActor(o.risk);
  const portfolio = new Portfolio({
    accounts: [o.account],
    initialCash: o.initialCash,
    sampleIntervalUs: o.sampleIntervalUs,
  });
  let fills = 0;
  const fillModel = new FillModel(o.fill, (f: SimFill) => {
    fills++;
    risk.onFill(f);
    portfolio.onFill(f);
  });
  const ids = new Map<string, number>();
  const names: string[] = [];
  const actors: Array<ReturnType<typeof factory>> = [];
  let signals = 0;
  let approved = 0;
  let now = T0_US;
  const sink: OutputSink = {
    emit(ev: OutputEvent): void {
      if (ev.kind !== OutputKind.SIGNAL) return;
      signals++;
      const sig = outDecoder.toSignal(ev, names[ev.symId]!);
      const d = risk.check(sig, now);
      if (!d.approved) return;
      approved++;
      const order = orderFromSignal(sig, portfolio.position(sig.sym, o.account));
      if (order !== null) fillModel.submit(order);
    },
  };
  const ev = newMarketEvent();
  let ticks = 0;
  let rejected = 0;
  const step = Math.max(1, Math.floor(o.messages / 100));
  const t0 = performance.now();
  for (let m = 0; m < o.messages; m++) {
    now += o.stepUs;
    const msg = sim.nextMessage(now);
    const r = decoder.decode(msg.subject, msg.data, ev);
    if (!r.ok) {
      rejected++;
      continue;
    }
    let id = ids.get(r.sym);
    if (id === undefined) {
      id = names.length;
      ids.set(r.sym, id);
      names.push(r.sym);
      actors.push(factory(id, r.sym));
    }
    ev.symId = id;
    ev.recv = ev.ts;
    ticks++;
    if (ev.kind === MarketKind.TRADE) {
      fillModel.onTrade(r.sym, ev.ts, ev.px, ev.qty);
      portfolio.mark(r.sym, ev.px, ev.ts);
    } else {
      fillModel.onQuote(r.sym, ev.ts, ev.bid, ev.bidQty, ev.ask, ev.askQty);
      portfolio.advance(ev.ts);
    }
    actors[id]!.onMarket(ev, sink);
    if (o.onProgress !== undefined && m % step === 0) o.onProgress(m, o.messages);
  }
  portfolio.finish(now);
  const ms = performance.now() - t0;
  o.onProgress?.(o.messages, o.messages);
  const result = portfolio.result(); // sweep: kept for its executions
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
    signals,
    approved,
    fills,
    ms,
    ticksPerSec: ticks / (ms / 1000),
    executions: result.executions,
  };
}
