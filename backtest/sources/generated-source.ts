/**
 * The generated market as a TickSource: the `qilin sim` simulator by seed,
 * decoded by the kernel's own `TickJsonDecoder` (one message every `stepUs`
 * from a fixed start, `recv` = `ts`): the market of `qilin backtest` (its
 * `runBacktest` reads this source), so a replay of `sim:seed=S` sees the very
 * ticks `qilin backtest --seed S` does.
 *
 * Nothing is kept: each `next` generates the ticks it returns.
 */
import { TickJsonDecoder } from '../../adapters/nats/tick-json-decoder.js';
import { invalidArgument } from '../../kernel/errors.js';
import { newMarketEvent } from '../../kernel/market-record.js';
import { MarketSimulator } from '../../ops/sim/market-simulator.js';
import { SymbolIds, appendTick, type TickChunk, type TickSource } from '../tick-chunk.js';

/**
 * 2026-01-01T00:00:00Z in µs: the start of the generated market (a fixed
 * start, so runs repeat exactly).
 */
export const GENERATED_T0_US = 1_767_225_600_000_000;

/** Options of {@link GeneratedTickSource}: those of `qilin backtest`'s market. */
export interface GeneratedSourceOptions {
  /** Symbols (default 8). */
  symbols?: number;
  /** Messages, all symbols together (default 200 000). */
  messages?: number;
  /** Simulator seed (default 1). */
  seed?: number;
  /** µs of exchange time between messages (default 1000). */
  stepUs?: number;
}

export class GeneratedTickSource implements TickSource {
  readonly description: string;
  /** The messages; each becomes a tick or a `rejected` one (none with the options used). */
  readonly total: number;
  read = 0;
  rejected = 0;
  private readonly ids = new SymbolIds();
  private readonly sim: MarketSimulator;
  private readonly decoder = new TickJsonDecoder();
  private readonly ev = newMarketEvent();
  private readonly stepUs: number;
  private now = GENERATED_T0_US;
  private m = 0;

  constructor(o: GeneratedSourceOptions = {}) {
    const symbols = o.symbols ?? 8;
    const messages = o.messages ?? 200_000;
    const seed = o.seed ?? 1;
    const stepUs = o.stepUs ?? 1000;
    if (!Number.isInteger(symbols) || symbols < 1) {
      invalidArgument('symbols', symbols, 'an integer ≥ 1');
    }
    if (!Number.isInteger(messages) || messages < 1) {
      invalidArgument('messages', messages, 'an integer ≥ 1');
    }
    if (!Number.isInteger(seed)) invalidArgument('seed', seed, 'an integer');
    if (!(stepUs > 0) || !Number.isFinite(stepUs)) {
      invalidArgument('stepUs', stepUs, 'a number of µs > 0');
    }
    this.total = messages;
    this.stepUs = stepUs;
    this.sim = new MarketSimulator({ symbols, rate: 1, seed, badRate: 0, gapRate: 0 });
    this.description = `generated market (${symbols} symbols, ${messages} messages, seed ${seed}, step ${stepUs} µs)`;
  }

  get symbols(): readonly string[] {
    return this.ids.names;
  }

  /** Messages generated so far (ticks and refused ones). */
  get produced(): number {
    return this.m;
  }

  next(into: TickChunk): Promise<number> {
    return Promise.resolve(this.fill(into));
  }

  /** `next`, synchronously: the market is computed, nothing to wait for (`runBacktest`). */
  fill(into: TickChunk): number {
    into.length = 0;
    const ev = this.ev;
    while (into.length < into.capacity && this.m < this.total) {
      this.m++;
      this.now += this.stepUs;
      const msg = this.sim.nextMessage(this.now);
      const r = this.decoder.decode(msg.subject, msg.data, ev);
      if (!r.ok) {
        this.rejected++;
        continue;
      }
      ev.symId = this.ids.id(r.sym);
      ev.recv = ev.ts;
      appendTick(into, ev);
    }
    this.read += into.length;
    return into.length;
  }

  close(): Promise<void> {
    this.m = this.total;
    return Promise.resolve();
  }
}
