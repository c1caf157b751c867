import { ErrorCodes, QilinError, invalidArgument } from '../kernel/errors.js';
import type { FillMessage } from '../kernel/messages.js';
import { Float64Series } from './float64-series.js';

/**
 * The simulated account(s) of a backtest: cash, positions at average cost,
 * realised and unrealised PnL, fees, per symbol, per strategy and per account,
 * and equity sampled at a fixed interval of exchange time.
 *
 * Fills arrive through {@link Portfolio.onFill}, which takes the live
 * `fill.<account>` message ({@link FillMessage}: signalId, sym, side, qty, px,
 * ts) — the same object the risk actor's `onFill` takes — optionally with
 * `account`, `strategy` and `fee` (a simulated fill from fill-model.ts has
 * all three). Marks are the last trade's price ({@link Portfolio.mark}); a
 * symbol filled before any trade was seen is marked at its fill price.
 *
 * Books. A position lives in a slot per (account, strategy, symbol), so PnL is
 * attributed to the strategy whose signal made it; the per-account position of
 * a symbol (what the risk actor sees) is the sum of its strategies' slots.
 *
 * Accounting, per slot, with position p at average cost a, a fill of signed
 * quantity q (buy +) at price x and fee f:
 * - cash −= q·x + f; fees += f.
 * - same direction (or p = 0): a ← (|p|·a + |q|·x) / |p + q|.
 * - against the position: realised += min(|q|, |p|) · (x − a) · sign(p); if the
 *   fill flips the position the rest opens at a = x; flat leaves a = 0.
 * - unrealised = p · (mark − a).
 * So two independent ways to value an account agree at every step:
 *   cash + Σ p·mark  ==  initialCash + Σ realised − Σ fees + Σ unrealised
 * (the property test in test/backtest/portfolio.test.ts checks it over random
 * fill sequences). {@link Portfolio.equity} is the left side.
 *
 * Equity series. Equity is sampled at every multiple of `sampleIntervalUs`
 * (aligned to the epoch) that exchange time crosses, valued just before the
 * event that crossed it; an interval without events repeats the last value
 * (equity cannot move without a tick), so the series is regular and the
 * report annualises with intervals per year. `finish(ts)` adds the last,
 * partial interval. Storage grows by doubling, per sample, never per tick.
 *
 * Per-group series (`groupSeries`): each symbol's and strategy's curve is
 * `initialCash (all accounts) + its net PnL`, as if it had traded the whole
 * capital alone; memory is samples × groups × 8 bytes, so a run over many
 * symbols and a fine interval may turn `symbols` off.
 *
 * Round trips: a slot's position going from flat to flat (a flip closes one
 * and opens the next; the flipping fill's fee is split by quantity) is one
 * trade for hit rate, profit factor and expectancy.
 */

/** Options of {@link Portfolio}, validated by {@link resolvePortfolioOptions}. */
export interface PortfolioOptions {
  /** Accounts (the `<account>` of `fill.<account>`); a fill for another is refused. */
  accounts: readonly string[];
  /** Starting cash of each account (> 0). */
  initialCash: number;
  /** Equity sampling interval, µs of exchange time (integer ≥ 1). */
  sampleIntervalUs: number;
  /** Which per-group equity series to keep (accounts always). */
  groupSeries: { symbols: boolean; strategies: boolean };
  /** Keep every fill as an {@link Execution} (for the `backtest_trades` table). */
  keepExecutions: boolean;
}

export const DEFAULT_PORTFOLIO_OPTIONS: Readonly<PortfolioOptions> = Object.freeze({
  accounts: Object.freeze(['backtest']),
  initialCash: 1_000_000,
  sampleIntervalUs: 60_000_000,
  groupSeries: Object.freeze({ symbols: true, strategies: true }),
  keepExecutions: true,
});

export function resolvePortfolioOptions(raw: Partial<PortfolioOptions> = {}): PortfolioOptions {
  const o = { ...DEFAULT_PORTFOLIO_OPTIONS, ...raw };
  if (
    !Array.isArray(o.accounts) ||
    o.accounts.length === 0 ||
    !o.accounts.every((a) => typeof a === 'string' && /^[A-Za-z0-9_-]+$/.test(a)) ||
    new Set(o.accounts).size !== o.accounts.length
  ) {
    invalidArgument(
      'portfolio.accounts',
      o.accounts,
      'distinct NATS tokens [A-Za-z0-9_-]+, at least one',
    );
  }
  if (typeof o.initialCash !== 'number' || !Number.isFinite(o.initialCash) || o.initialCash <= 0) {
    invalidArgument('portfolio.initialCash', o.initialCash, 'a finite number > 0');
  }
  if (!Number.isSafeInteger(o.sampleIntervalUs) || o.sampleIntervalUs < 1) {
    invalidArgument('portfolio.sampleIntervalUs', o.sampleIntervalUs, 'an integer ≥ 1 (µs)');
  }
  const g = o.groupSeries as Partial<PortfolioOptions['groupSeries']> | undefined;
  if (
    typeof g !== 'object' ||
    typeof g.symbols !== 'boolean' ||
    typeof g.strategies !== 'boolean'
  ) {
    invalidArgument('portfolio.groupSeries', g, '{ symbols: boolean, strategies: boolean }');
  }
  if (typeof o.keepExecutions !== 'boolean') {
    invalidArgument('portfolio.keepExecutions', o.keepExecutions, 'true or false');
  }
  return o;
}

/** A fill as the portfolio takes it: the live message, plus what a simulated fill adds. */
export type PortfolioFill = FillMessage & { account?: string; strategy?: string; fee?: number };

/** One fill as booked (a row of `backtest_trades`). */
export interface Execution {
  seq: number;
  ts: number;
  account: string;
  strategy: string;
  sym: string;
  signalId: string;
  side: 'buy' | 'sell';
  qty: number;
  px: number;
  fee: number;
  /** PnL this fill realised (before fees). */
  realised: number;
  /** The slot's position after the fill. */
  position: number;
}

/** A flat-to-flat trade of one (account, strategy, symbol). */
export interface RoundTrip {
  account: string;
  strategy: string;
  sym: string;
  side: 'long' | 'short';
  openTs: number;
  closeTs: number;
  /** Largest |position| held. */
  maxQty: number;
  /** Realised PnL before fees. */
  gross: number;
  fees: number;
  /** gross − fees. */
  pnl: number;
}

export type GroupKind = 'account' | 'symbol' | 'strategy';

/** Totals of one group (or of the whole run), as handed to the report. */
export interface GroupResult {
  kind: GroupKind | 'total';
  name: string;
  /** The base of the group's curve: its account's cash, or all accounts' for the others. */
  initial: number;
  realised: number;
  unrealised: number;
  fees: number;
  /** Σ |qty × px| of its fills. */
  turnoverNotional: number;
  fills: number;
  /** Time with a non-zero position in the group, µs. */
  exposureUs: number;
  /** Equity (account, total) or initial + net PnL (symbol, strategy) per sample; null when not kept. */
  equity: Float64Array | null;
}

/** Everything the report needs from a run. */
export interface PortfolioResult {
  startTs: number;
  endTs: number;
  sampleIntervalUs: number;
  /** Sample times, µs (same length as every kept series). */
  sampleTs: Float64Array;
  total: GroupResult;
  groups: GroupResult[];
  roundTrips: RoundTrip[];
  executions: Execution[];
  /** Fills refused by onFill. */
  rejectedFills: number;
}

/** Per-group accumulators of one kind (accounts, symbols or strategies). */
class GroupBook {
  readonly names: string[] = [];
  readonly index = new Map<string, number>();
  readonly fees: number[] = [];
  readonly turnover: number[] = [];
  readonly fills: number[] = [];
  readonly openSlots: number[] = [];
  readonly openSince: number[] = [];
  readonly exposedUs: number[] = [];
  readonly series: Float64Series[] = [];
  /** Scratch: net PnL (or equity) per group at the current sample. */
  readonly scratch: number[] = [];

  constructor(
    readonly kind: GroupKind,
    readonly keepSeries: boolean,
  ) {}

  /** The group's index, created on first sight with a series back-filled to `samples` values of `base`. */
  id(name: string, samples: number, base: number): number {
    let i = this.index.get(name);
    if (i !== undefined) return i;
    i = this.names.length;
    this.index.set(name, i);
    this.names.push(name);
    this.fees.push(0);
    this.turnover.push(0);
    this.fills.push(0);
    this.openSlots.push(0);
    this.openSince.push(0);
    this.exposedUs.push(0);
    this.scratch.push(0);
    const s = new Float64Series();
    if (this.keepSeries) for (let k = 0; k < samples; k++) s.push(base);
    this.series.push(s);
    return i;
  }

  onFill(g: number, notional: number, fee: number): void {
    this.fees[g]! += fee;
    this.turnover[g]! += notional;
    this.fills[g]!++;
  }

  /** A slot of the group went from flat to open (+1) or from open to flat (−1). */
  openChange(g: number, delta: 1 | -1, ts: number): void {
    const before = this.openSlots[g]!;
    this.openSlots[g] = before + delta;
    if (before === 0 && delta === 1) this.openSince[g] = ts;
    else if (before === 1 && delta === -1) this.exposedUs[g]! += ts - this.openSince[g]!;
  }

  exposure(g: number, now: number): number {
    return this.exposedUs[g]! + (this.openSlots[g]! > 0 ? now - this.openSince[g]! : 0);
  }
}

/** See the file comment. */
export class Portfolio {
  readonly options: Readonly<PortfolioOptions>;
  private readonly accounts: GroupBook;
  private readonly symbols: GroupBook;
  private readonly strategies: GroupBook;
  private readonly total: GroupBook;
  private readonly cash: number[] = [];
  private readonly marks: number[] = [];
  private readonly marked: boolean[] = [];
  /** Slots: (account, strategy, symbol) → index; columns below. */
  /** Slots by account and symbol: `position()` without a scan of every book. */
  private readonly slotsOf: number[][][] = [];
  private readonly slotAcc: number[] = [];
  private readonly slotSym: number[] = [];
  private readonly slotStrat: number[] = [];
  private readonly pos: number[] = [];
  private readonly avg: number[] = [];
  private readonly realised: number[] = [];
  private readonly slotFees: number[] = [];
  private readonly rtOpenTs: number[] = [];
  private readonly rtGross: number[] = [];
  private readonly rtFees: number[] = [];
  private readonly rtMax: number[] = [];
  private readonly trips: RoundTrip[] = [];
  private readonly execs: Execution[] = [];
  private readonly sampleTs = new Float64Series();
  private readonly totalSeries = new Float64Series();
  private startTs = Number.NaN;
  private nowTs = Number.NaN;
  private nextSample = Number.NaN;
  private rejected = 0;
  private badMarks = 0;
  private seq = 0;

  constructor(options: Partial<PortfolioOptions> = {}) {
    this.options = Object.freeze(resolvePortfolioOptions(options));
    const g = this.options.groupSeries;
    this.accounts = new GroupBook('account', true);
    this.symbols = new GroupBook('symbol', g.symbols);
    this.strategies = new GroupBook('strategy', g.strategies);
    this.total = new GroupBook('account', false);
    this.total.id('total', 0, 0);
    for (const a of this.options.accounts) {
      this.accounts.id(a, 0, this.options.initialCash);
      this.cash.push(this.options.initialCash);
    }
  }

  /** Starting cash of all accounts together. */
  get initialCash(): number {
    return this.options.initialCash * this.options.accounts.length;
  }

  /** Fills refused so far (bad values, unknown account). */
  get rejectedFills(): number {
    return this.rejected;
  }

  /** Marks ignored because the price was not a finite number > 0 or the time not finite. */
  get rejectedMarks(): number {
    return this.badMarks;
  }

  /**
   * Move exchange time to `ts` (µs): samples every interval boundary crossed
   * since the last event, at the equity before this event. Called by `mark`
   * and `onFill`; call it for events that neither marks nor fills (quotes).
   */
  advance(ts: number): void {
    if (!Number.isFinite(ts)) return;
    if (Number.isNaN(this.startTs)) {
      const I = this.options.sampleIntervalUs;
      this.startTs = ts;
      this.nowTs = ts;
      const first = Math.floor(ts / I) * I;
      this.nextSample = first + I;
      this.sample(first);
      return;
    }
    if (ts > this.nowTs) this.nowTs = ts;
    while (ts >= this.nextSample) {
      this.sample(this.nextSample);
      this.nextSample += this.options.sampleIntervalUs;
    }
  }

  /** The last trade of `sym` at `px` (µs `ts`): the mark of its positions. */
  mark(sym: string, px: number, ts: number): void {
    if (!(px > 0) || !Number.isFinite(px) || !Number.isFinite(ts)) {
      // Not a price or a time: counted, the mark stays (the quality checker reports such ticks).
      this.badMarks++;
      return;
    }
    this.advance(ts);
    const s = this.symbols.id(sym, this.sampleTs.length, this.initialCash);
    this.marks[s] = px;
    this.marked[s] = true;
  }

  /**
   * Book a fill. The live message shape, plus optional `account` (default:
   * the first account), `strategy` (default: the signal id's prefix up to
   * ':', the kernel's `<strategy>:<sym>:<seq>` ids) and `fee` (default 0).
   * A bad fill is counted and refused with QLN_BACKTEST_FILL_INVALID, and
   * changes nothing.
   */
  onFill(fill: PortfolioFill): void {
    const account = fill.account ?? this.options.accounts[0]!;
    const fee = fill.fee ?? 0;
    const a = this.accounts.index.get(account);
    let bad: string | null = null;
    if (a === undefined)
      bad = `account ${JSON.stringify(account)} (allowed: ${this.options.accounts.join(', ')})`;
    else if (fill.side !== 'buy' && fill.side !== 'sell')
      bad = `side ${JSON.stringify(fill.side)} (allowed: buy, sell)`;
    else if (typeof fill.qty !== 'number' || !Number.isFinite(fill.qty) || fill.qty < 0)
      bad = `qty ${String(fill.qty)} (allowed: a finite number ≥ 0)`;
    else if (typeof fill.px !== 'number' || !Number.isFinite(fill.px) || fill.px <= 0)
      bad = `px ${String(fill.px)} (allowed: a finite number > 0)`;
    else if (typeof fee !== 'number' || !Number.isFinite(fee) || fee < 0)
      bad = `fee ${String(fee)} (allowed: a finite number ≥ 0)`;
    else if (typeof fill.ts !== 'number' || !Number.isFinite(fill.ts))
      bad = `ts ${String(fill.ts)} (allowed: a finite number of µs)`;
    else if (typeof fill.sym !== 'string' || fill.sym.length === 0)
      bad = `sym ${JSON.stringify(fill.sym)}`;
    if (bad !== null || a === undefined) {
      this.rejected++;
      throw new QilinError(
        ErrorCodes.BACKTEST_FILL_INVALID,
        `fill ${String(fill.signalId)}: invalid ${bad ?? 'account'}`,
        { details: { signalId: fill.signalId, sym: fill.sym } },
      );
    }
    this.advance(fill.ts);
    const ts = fill.ts;
    const strategy = fill.strategy ?? strategyOf(fill.signalId);
    const n = this.sampleTs.length;
    const base = this.initialCash;
    const s = this.symbols.id(fill.sym, n, base);
    const g = this.strategies.id(strategy, n, base);
    if (this.marked[s] !== true) {
      this.marks[s] = fill.px;
      this.marked[s] = true;
    }
    const slot = this.slot(a, g, s);
    const q = fill.side === 'buy' ? fill.qty : -fill.qty;
    const x = fill.px;
    const notional = Math.abs(q * x);
    this.cash[a]! -= q * x + fee;
    this.slotFees[slot]! += fee;
    this.accounts.onFill(a, notional, fee);
    this.symbols.onFill(s, notional, fee);
    this.strategies.onFill(g, notional, fee);
    this.total.onFill(0, notional, fee);

    const p = this.pos[slot]!;
    const av = this.avg[slot]!;
    let realised = 0;
    let next = p + q;
    if (Math.abs(next) <= 1e-12 * Math.max(Math.abs(p), Math.abs(q))) next = 0;
    if (q === 0) {
      // Nothing moves but the fee.
      if (p !== 0) this.rtFees[slot]! += fee;
    } else if (p === 0 || Math.sign(p) === Math.sign(q)) {
      this.avg[slot] = (Math.abs(p) * av + Math.abs(q) * x) / Math.abs(next);
      if (p === 0) this.openTrip(slot, ts, fee);
      else this.rtFees[slot]! += fee;
    } else {
      const closeQty = Math.min(Math.abs(q), Math.abs(p));
      realised = closeQty * (x - av) * Math.sign(p);
      this.realised[slot]! += realised;
      this.rtGross[slot]! += realised;
      const closeFee = (fee * closeQty) / Math.abs(q);
      this.rtFees[slot]! += closeFee;
      if (next === 0) {
        this.avg[slot] = 0;
        this.closeTrip(slot, ts, p);
      } else if (Math.sign(next) !== Math.sign(p)) {
        this.avg[slot] = x;
        this.closeTrip(slot, ts, p);
        this.openTrip(slot, ts, fee - closeFee);
      }
    }
    this.pos[slot] = next;
    const m = Math.abs(next);
    if (m > this.rtMax[slot]!) this.rtMax[slot] = m;
    if (this.options.keepExecutions) {
      this.execs.push({
        seq: this.seq++,
        ts,
        account,
        strategy,
        sym: fill.sym,
        signalId: fill.signalId,
        side: fill.side,
        qty: fill.qty,
        px: x,
        fee,
        realised,
        position: next,
      });
    }
  }

  /** Cash of an account (default: the first). */
  cashOf(account = this.options.accounts[0]!): number {
    return this.cash[this.accountId(account)]!;
  }

  /** The account's net position in `sym` (all strategies), like RiskActor.positions. */
  position(sym: string, account = this.options.accounts[0]!): number {
    const a = this.accountId(account);
    const s = this.symbols.index.get(sym);
    if (s === undefined) return 0;
    // The account's books of this symbol (one per strategy), in slot order.
    const books = this.slotsOf[a]?.[s];
    if (books === undefined) return 0;
    let p = 0;
    for (const i of books) p += this.pos[i]!;
    return p;
  }

  /** The current mark of `sym` (NaN when never traded nor filled). */
  markOf(sym: string): number {
    const s = this.symbols.index.get(sym);
    return s === undefined || this.marked[s] !== true ? Number.NaN : this.marks[s]!;
  }

  /**
   * Equity = cash + Σ position × mark, of one account or (no argument) of
   * all accounts together.
   */
  equity(account?: string): number {
    const a = account === undefined ? -1 : this.accountId(account);
    let e = 0;
    if (a < 0) for (const c of this.cash) e += c;
    else e = this.cash[a]!;
    for (let i = 0; i < this.pos.length; i++) {
      if (a >= 0 && this.slotAcc[i] !== a) continue;
      const p = this.pos[i]!;
      if (p !== 0) e += p * this.marks[this.slotSym[i]!]!;
    }
    return e;
  }

  /**
   * The PnL view: realised, unrealised and fees, of one account or all
   * (initialCash + realised + unrealised − fees is the same equity, computed
   * the other way).
   */
  pnl(account?: string): { realised: number; unrealised: number; fees: number } {
    const a = account === undefined ? -1 : this.accountId(account);
    let realised = 0;
    let unrealised = 0;
    let fees = 0;
    for (let i = 0; i < this.pos.length; i++) {
      if (a >= 0 && this.slotAcc[i] !== a) continue;
      realised += this.realised[i]!;
      fees += this.slotFees[i]!;
      const p = this.pos[i]!;
      if (p !== 0) unrealised += p * (this.marks[this.slotSym[i]!]! - this.avg[i]!);
    }
    return { realised, unrealised, fees };
  }

  /** Close the run at `ts`: the last (partial) interval's sample. */
  finish(ts: number): void {
    this.advance(ts);
    if (ts > this.sampleTs.last(Number.NEGATIVE_INFINITY)) this.sample(ts);
  }

  /** Totals, groups, series and trades, for the report. */
  result(): PortfolioResult {
    const now = Number.isNaN(this.nowTs) ? 0 : this.nowTs;
    this.groupNet();
    const groups: GroupResult[] = [];
    const unrealOf = (book: GroupBook, key: (slot: number) => number): number[] => {
      const u = book.names.map(() => 0);
      for (let i = 0; i < this.pos.length; i++) {
        const p = this.pos[i]!;
        if (p !== 0) u[key(i)]! += p * (this.marks[this.slotSym[i]!]! - this.avg[i]!);
      }
      return u;
    };
    const realOf = (book: GroupBook, key: (slot: number) => number): number[] => {
      const r = book.names.map(() => 0);
      for (let i = 0; i < this.pos.length; i++) r[key(i)]! += this.realised[i]!;
      return r;
    };
    const kinds: [GroupBook, (slot: number) => number, number][] = [
      [this.accounts, (i) => this.slotAcc[i]!, this.options.initialCash],
      [this.symbols, (i) => this.slotSym[i]!, this.initialCash],
      [this.strategies, (i) => this.slotStrat[i]!, this.initialCash],
    ];
    for (const [book, key, initial] of kinds) {
      const u = unrealOf(book, key);
      const r = realOf(book, key);
      book.names.forEach((name, i) => {
        groups.push({
          kind: book.kind,
          name,
          initial,
          realised: r[i]!,
          unrealised: u[i]!,
          fees: book.fees[i]!,
          turnoverNotional: book.turnover[i]!,
          fills: book.fills[i]!,
          exposureUs: book.exposure(i, now),
          equity: book.keepSeries ? book.series[i]!.toArray() : null,
        });
      });
    }
    const all = this.pnl();
    return {
      startTs: Number.isNaN(this.startTs) ? 0 : this.startTs,
      endTs: now,
      sampleIntervalUs: this.options.sampleIntervalUs,
      sampleTs: this.sampleTs.toArray(),
      total: {
        kind: 'total',
        name: 'total',
        initial: this.initialCash,
        realised: all.realised,
        unrealised: all.unrealised,
        fees: all.fees,
        turnoverNotional: this.total.turnover[0]!,
        fills: this.total.fills[0]!,
        exposureUs: this.total.exposure(0, now),
        equity: this.totalSeries.toArray(),
      },
      groups,
      roundTrips: this.trips.slice(),
      executions: this.execs.slice(),
      rejectedFills: this.rejected,
    };
  }

  private accountId(account: string): number {
    const a = this.accounts.index.get(account);
    if (a === undefined) {
      invalidArgument('account', account, this.options.accounts.join(', '));
    }
    return a;
  }

  /** The book of (account, strategy, symbol): found among the account's books of the symbol (one per strategy). */
  private slot(a: number, g: number, s: number): number {
    const books = ((this.slotsOf[a] ??= [])[s] ??= []);
    for (const b of books) if (this.slotStrat[b] === g) return b;
    const i = this.pos.length;
    books.push(i);
    this.slotAcc.push(a);
    this.slotSym.push(s);
    this.slotStrat.push(g);
    this.pos.push(0);
    this.avg.push(0);
    this.realised.push(0);
    this.slotFees.push(0);
    this.rtOpenTs.push(0);
    this.rtGross.push(0);
    this.rtFees.push(0);
    this.rtMax.push(0);
    return i;
  }

  private openTrip(slot: number, ts: number, fee: number): void {
    this.rtOpenTs[slot] = ts;
    this.rtGross[slot] = 0;
    this.rtFees[slot] = fee;
    this.rtMax[slot] = 0;
    this.openChange(slot, 1, ts);
  }

  private closeTrip(slot: number, ts: number, prevPos: number): void {
    const gross = this.rtGross[slot]!;
    const fees = this.rtFees[slot]!;
    this.trips.push({
      account: this.accounts.names[this.slotAcc[slot]!]!,
      strategy: this.strategies.names[this.slotStrat[slot]!]!,
      sym: this.symbols.names[this.slotSym[slot]!]!,
      side: prevPos > 0 ? 'long' : 'short',
      openTs: this.rtOpenTs[slot]!,
      closeTs: ts,
      maxQty: Math.max(this.rtMax[slot]!, Math.abs(prevPos)),
      gross,
      fees,
      pnl: gross - fees,
    });
    this.openChange(slot, -1, ts);
  }

  private openChange(slot: number, delta: 1 | -1, ts: number): void {
    this.accounts.openChange(this.slotAcc[slot]!, delta, ts);
    this.symbols.openChange(this.slotSym[slot]!, delta, ts);
    this.strategies.openChange(this.slotStrat[slot]!, delta, ts);
    this.total.openChange(0, delta, ts);
  }

  /** Fill each book's scratch with its groups' current equity (accounts) or net PnL (others). */
  private groupNet(): void {
    const { accounts, symbols, strategies } = this;
    for (let i = 0; i < accounts.scratch.length; i++) accounts.scratch[i] = this.cash[i]!;
    symbols.scratch.fill(0);
    strategies.scratch.fill(0);
    for (let i = 0; i < this.pos.length; i++) {
      const p = this.pos[i]!;
      const m = p !== 0 ? this.marks[this.slotSym[i]!]! : 0;
      accounts.scratch[this.slotAcc[i]!]! += p * m;
      const net = this.realised[i]! - this.slotFees[i]! + (p !== 0 ? p * (m - this.avg[i]!) : 0);
      symbols.scratch[this.slotSym[i]!]! += net;
      strategies.scratch[this.slotStrat[i]!]! += net;
    }
  }

  private sample(ts: number): void {
    this.groupNet();
    this.sampleTs.push(ts);
    let total = 0;
    for (let i = 0; i < this.accounts.names.length; i++) {
      const e = this.accounts.scratch[i]!;
      total += e;
      this.accounts.series[i]!.push(e);
    }
    this.totalSeries.push(total);
    const base = this.initialCash;
    for (const book of [this.symbols, this.strategies]) {
      if (!book.keepSeries) continue;
      for (let i = 0; i < book.names.length; i++) book.series[i]!.push(base + book.scratch[i]!);
    }
  }
}

/** The strategy of a kernel signal id `<strategy>:<sym>:<seq>` ('unknown' when it has no ':'). */
export function strategyOf(signalId: string): string {
  const i = typeof signalId === 'string' ? signalId.indexOf(':') : -1;
  return i > 0 ? signalId.slice(0, i) : 'unknown';
}
