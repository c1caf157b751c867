/**
 * The backtest side of a replay (backtest/replay-engine.ts consumer): per
 * chunk, each tick in source order first fills the open orders of earlier
 * signals and marks the portfolio, then the signals that tick made go to the
 * RiskActor; approved ones become orders (never filled on their own tick).
 * Fills go to the RiskActor (as live `fill.<account>` messages) and the
 * portfolio. The same order of events as one thread running every actor.
 */
import { OutputDecoder } from '../actors/output-decoder.js';
import { RiskActor } from '../actors/risk-actor.js';
import type { RiskLimits } from '../actors/risk-rules.js';
import { MarketKind } from '../kernel/market-record.js';
import { OutputKind, newOutputEvent, type OutputEvent } from '../kernel/output-record.js';
import type { ModelRef } from '../kernel/messages.js';
import { FillModel, orderFromSignal, type FillModelOptions, type SimFill } from './fill-model.js';
import { Portfolio } from './portfolio.js';
import type { ChunkOutputs, ReplayConsumer } from './replay-engine.js';
import type { TickChunk } from './tick-chunk.js';

export interface BacktestConsumerOptions {
  strategy: string;
  account: string;
  /** The actors' built-in model name/version (signals name it). */
  model: ModelRef;
  risk: Partial<RiskLimits>;
  fill: Partial<FillModelOptions>;
  initialCash: number;
  sampleIntervalUs: number;
}

export class BacktestConsumer implements ReplayConsumer {
  readonly portfolio: Portfolio;
  readonly risk: RiskActor;
  readonly fillModel: FillModel;
  private readonly decoder: OutputDecoder;
  private readonly ev: OutputEvent = newOutputEvent();
  signals = 0;
  approved = 0;
  fills = 0;
  lastTs = 0;

  constructor(private readonly o: BacktestConsumerOptions) {
    this.decoder = new OutputDecoder({ strategy: o.strategy, account: o.account, model: o.model });
    this.risk = new RiskActor(o.risk);
    this.portfolio = new Portfolio({
      accounts: [o.account],
      initialCash: o.initialCash,
      sampleIntervalUs: o.sampleIntervalUs,
    });
    this.fillModel = new FillModel(o.fill, (f: SimFill) => {
      this.fills++;
      this.risk.onFill(f);
      this.portfolio.onFill(f);
    });
  }

  onChunk(c: TickChunk, symbols: readonly string[], outs: ChunkOutputs): void {
    const fillModel = this.fillModel;
    const portfolio = this.portfolio;
    const count = outs.count;
    let k = 0;
    let next = count > 0 ? outs.src(0) : -1;
    for (let i = 0; i < c.length; i++) {
      const sym = symbols[c.symId[i]!]!;
      const ts = c.ts[i]!;
      if (c.kind[i] === MarketKind.TRADE) {
        fillModel.onTrade(sym, ts, c.px[i]!, c.qty[i]!);
        portfolio.mark(sym, c.px[i]!, ts);
      } else {
        fillModel.onQuote(sym, ts, c.bid[i]!, c.bidQty[i]!, c.ask[i]!, c.askQty[i]!);
        portfolio.advance(ts);
      }
      while (next === i) {
        // Only signals matter here: predictions and quality events are not decoded.
        if (outs.kind(k) === OutputKind.SIGNAL) this.output(outs.decode(k, this.ev), sym, ts);
        next = ++k < count ? outs.src(k) : -1;
      }
      this.lastTs = ts;
    }
  }

  private output(ev: OutputEvent, sym: string, now: number): void {
    if (this.decoder.isShadow(ev)) return;
    this.signals++;
    const sig = this.decoder.toSignal(ev, sym);
    const d = this.risk.check(sig, now);
    if (!d.approved) return;
    this.approved++;
    const order = orderFromSignal(sig, this.portfolio.position(sig.sym, this.o.account));
    if (order !== null) this.fillModel.submit(order);
  }

  /** Close the run at the last tick's time. */
  finish(): void {
    this.portfolio.finish(this.lastTs);
  }
}
