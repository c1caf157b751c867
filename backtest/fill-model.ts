import { ErrorCodes, QilinError, invalidArgument } from '../kernel/errors.js';
import type { FillMessage, SignalMessage } from '../kernel/messages.js';

/**
 * The simulated execution of a backtest: orders from approved signals are
 * filled against the ticks that FOLLOW them, never against the tick that made
 * the signal, at prices that traded (or were quoted) on the tick they fill
 * against.
 *
 * One ring of open orders per symbol, columnar typed arrays, power-of-two
 * capacity, bitmask wrap (like kernel/spsc-ring.ts and undici's FixedQueue):
 *
 * ```
 *   slot:    0     1     2     3     4     5     6     7      (capacity 8, mask 7)
 *          ┌─────┬─────┬─────┬─────┬─────┬─────┬─────┬─────┐
 *   side   │     │     │ +1  │ -1  │ +1  │     │     │     │  Int8Array
 *   remain │     │     │ 3.0 │ 0 ✓ │ 1.5 │     │     │     │  Float64Array (0 = done)
 *   active │     │     │ t+L │ t+L │ t+L │     │     │     │  Float64Array (signal ts + latency)
 *   …      └─────┴─────┴─────┴─────┴─────┴─────┴─────┴─────┘
 *                       ▲ head = 2        ▲ tail = 5 (next free)
 * ```
 *
 * Each tick walks the open slots head → tail in submission order (earlier
 * orders take the tick's volume first); a slot filled in the middle is marked
 * done (remaining 0) and skipped; done slots at the head are popped. `head` and
 * `tail` are free-running counters: `tail - head` is the count, `i & mask` the
 * slot.
 *
 * Prices. A fill's price is the tick's price (next-tick: the trade price, or a
 * bar's open; quote-touch: the ask for a buy, the bid for a sell), moved
 * against the order by the slippage (bps of the price, or ticks of
 * `tickSize`), then CLAMPED to the range the tick traded or quoted in: a trade
 * is the range [px, px], a bar [low, high], a quote [bid, ask]. A fill is
 * therefore never at a price that did not trade (the complaint about engines
 * that fill at prices that never existed). The cost of this rule: on single
 * trades and quotes the slippage is clamped away entirely, and it bites only
 * on bars; the amount clamped away is reported on each fill
 * (`slippageClamped`) and summed in `stats.slippageClamped`, so a run can see
 * what the rule hid. With tick data the costs that remain are latency, the
 * volume cap and fees.
 *
 * The hot path (`onTrade`, `onBar`, `onQuote`) allocates nothing: the fill
 * handed to the callback is ONE reused object (copy what you keep).
 */

/** How orders meet the market. */
export type FillModelKind = 'next-tick' | 'quote-touch';

/** How `slippage` is expressed. */
export type SlippageUnit = 'bps' | 'ticks';

/** Options of {@link FillModel}; every field is validated by {@link resolveFillModelOptions}. */
export interface FillModelOptions {
  /**
   * `next-tick`: a market order filled by the first trade (or bar) at or after
   * signal time + `latencyUs`, at its price. `quote-touch`: a marketable order
   * that takes the touch of the first quote at or after that time — a buy at
   * the ask, a sell at the bid — against the size shown there.
   */
  model: FillModelKind;
  /** Time between the signal and the order reaching the market, µs of exchange time (≥ 0). */
  latencyUs: number;
  /** Fee in basis points of the fill's notional (≥ 0). */
  feeBps: number;
  /** Fixed fee per fill, in account currency (≥ 0); a partial fill pays it each time. */
  feePerFill: number;
  /** Slippage against the order, in `slippageUnit` (≥ 0); clamped to the tick's range (see above). */
  slippage: number;
  /** `bps` of the fill price, or `ticks` of `tickSize`. */
  slippageUnit: SlippageUnit;
  /** Price increment for `slippageUnit: 'ticks'` (> 0). */
  tickSize: number;
  /**
   * Largest share of a tick's volume (trade qty, bar volume, or the quoted
   * size at the touch) that this simulator's orders may take, in (0, 1]. What
   * is left stays open: partial fills.
   */
  maxVolumeShare: number;
  /**
   * Quote-touch only: a buy fills only while ask ≤ refPx × (1 + limitBps/1e4),
   * a sell only while bid ≥ refPx × (1 − limitBps/1e4). `null`: no limit.
   */
  limitBps: number | null;
  /** Open orders per symbol, a power of two (the ring's capacity). */
  maxOpenOrders: number;
}

export const DEFAULT_FILL_MODEL_OPTIONS: Readonly<FillModelOptions> = Object.freeze({
  model: 'next-tick',
  latencyUs: 0,
  feeBps: 0,
  feePerFill: 0,
  slippage: 0,
  slippageUnit: 'bps',
  tickSize: 0.01,
  maxVolumeShare: 1,
  limitBps: null,
  maxOpenOrders: 1024,
});

function nonNegative(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    invalidArgument(name, v, 'a finite number ≥ 0');
  }
  return v;
}

/** Defaults filled in, every field checked (names the key and what is allowed). */
export function resolveFillModelOptions(raw: Partial<FillModelOptions> = {}): FillModelOptions {
  const o = { ...DEFAULT_FILL_MODEL_OPTIONS, ...raw };
  if (o.model !== 'next-tick' && o.model !== 'quote-touch') {
    invalidArgument('fill.model', o.model, "'next-tick' or 'quote-touch'");
  }
  if (o.slippageUnit !== 'bps' && o.slippageUnit !== 'ticks') {
    invalidArgument('fill.slippageUnit', o.slippageUnit, "'bps' or 'ticks'");
  }
  nonNegative('fill.latencyUs', o.latencyUs);
  nonNegative('fill.feeBps', o.feeBps);
  nonNegative('fill.feePerFill', o.feePerFill);
  nonNegative('fill.slippage', o.slippage);
  if (typeof o.tickSize !== 'number' || !Number.isFinite(o.tickSize) || o.tickSize <= 0) {
    invalidArgument('fill.tickSize', o.tickSize, 'a finite number > 0');
  }
  const share = o.maxVolumeShare;
  if (typeof share !== 'number' || !Number.isFinite(share) || share <= 0 || share > 1) {
    invalidArgument('fill.maxVolumeShare', share, 'a number in (0, 1]');
  }
  if (o.limitBps !== null) nonNegative('fill.limitBps', o.limitBps);
  const cap = o.maxOpenOrders;
  if (!Number.isInteger(cap) || cap < 1 || cap > 1 << 20 || (cap & (cap - 1)) !== 0) {
    invalidArgument('fill.maxOpenOrders', cap, 'a power of two in [1, 1048576]');
  }
  return o;
}

/**
 * A simulated fill. It IS a live {@link FillMessage} (`signalId`, `sym`,
 * `side`, `qty`, `px`, `ts`) with extra fields, so the risk actor's
 * `onFill` and the portfolio's take it exactly as they take a fill from
 * `fill.<account>`.
 */
export interface SimFill extends FillMessage {
  account: string;
  strategy: string;
  /** Fee of this fill: notional × feeBps / 1e4 + feePerFill. */
  fee: number;
  /** The signal's reference price and time (µs), for implementation shortfall. */
  refPx: number;
  signalTs: number;
  /** Price the slippage asked for minus the price the clamp allowed (≥ 0, in price units). */
  slippageClamped: number;
  /** What is still open of the order after this fill. */
  remaining: number;
}

/** An order from an approved signal. */
export interface SimOrder {
  signalId: string;
  account: string;
  strategy: string;
  sym: string;
  side: 'buy' | 'sell';
  qty: number;
  /** Signal time, µs of exchange time (the tick that made it). */
  ts: number;
  refPx: number;
}

/**
 * The order an approved signal asks for. `buy` / `sell`: the signal's `qty`
 * (a quantity to trade, as the risk rules read it). `flat`: close the
 * account's current `position` in the symbol (null when already flat). The
 * signal time is the exchange time of the tick that made it (`src.ts`), so
 * replay and live agree. Null too when the quantity is 0.
 */
export function orderFromSignal(
  signal: Pick<
    SignalMessage,
    'id' | 'strategy' | 'account' | 'sym' | 'side' | 'qty' | 'refPx' | 'src'
  >,
  position: number,
): SimOrder | null {
  let side: 'buy' | 'sell';
  let qty: number;
  if (signal.side === 'flat') {
    if (position === 0 || !Number.isFinite(position)) return null;
    side = position > 0 ? 'sell' : 'buy';
    qty = Math.abs(position);
  } else {
    side = signal.side;
    qty = signal.qty;
  }
  if (qty === 0) return null;
  return {
    signalId: signal.id,
    account: signal.account,
    strategy: signal.strategy,
    sym: signal.sym,
    side,
    qty,
    ts: signal.src.ts,
    refPx: signal.refPx,
  };
}

/** Counts since construction. */
export interface FillModelStats {
  submitted: number;
  fills: number;
  filledQty: number;
  /** Orders refused: bad values, or the symbol's ring full. */
  rejectedInvalid: number;
  rejectedFull: number;
  /** Ticks that met open orders but could not fill: a price not finite > 0, a bar with low > high, a crossed book. */
  skippedTicks: number;
  /** Σ slippage clamped away by the traded-range rule, price units × qty. */
  slippageClamped: number;
  fees: number;
}

/** The callback that receives each fill (a reused object: copy what you keep). */
export type FillHandler = (fill: SimFill) => void;

/** One symbol's ring of open orders (columnar, preallocated). */
class OrderRing {
  readonly side: Int8Array;
  readonly remaining: Float64Array;
  readonly activeTs: Float64Array;
  readonly signalTs: Float64Array;
  readonly refPx: Float64Array;
  /** Index into the model's order-identity table (signal id, account, strategy). */
  readonly ident: Int32Array;
  head = 0;
  tail = 0;

  constructor(
    readonly sym: string,
    capacity: number,
  ) {
    this.side = new Int8Array(capacity);
    this.remaining = new Float64Array(capacity);
    this.activeTs = new Float64Array(capacity);
    this.signalTs = new Float64Array(capacity);
    this.refPx = new Float64Array(capacity);
    this.ident = new Int32Array(capacity);
  }
}

/** See the file comment. */
export class FillModel {
  readonly options: Readonly<FillModelOptions>;
  private readonly mask: number;
  private readonly rings = new Map<string, OrderRing>();
  /** Order identities by slot of a free list; strings are set at submit, not per tick. */
  private readonly identSignal: string[] = [];
  private readonly identAccount: string[] = [];
  private readonly identStrategy: string[] = [];
  private readonly freeIdents: number[] = [];
  private readonly out: SimFill = {
    signalId: '',
    sym: '',
    side: 'buy',
    qty: 0,
    px: 0,
    ts: 0,
    account: '',
    strategy: '',
    fee: 0,
    refPx: 0,
    signalTs: 0,
    slippageClamped: 0,
    remaining: 0,
  };
  private readonly st: FillModelStats = {
    submitted: 0,
    fills: 0,
    filledQty: 0,
    rejectedInvalid: 0,
    rejectedFull: 0,
    skippedTicks: 0,
    slippageClamped: 0,
    fees: 0,
  };

  constructor(
    options: Partial<FillModelOptions>,
    private readonly onFill: FillHandler,
  ) {
    this.options = Object.freeze(resolveFillModelOptions(options));
    this.mask = this.options.maxOpenOrders - 1;
  }

  get stats(): Readonly<FillModelStats> {
    return this.st;
  }

  /** Open orders of one symbol (0 for a symbol never seen). */
  openOrders(sym: string): number {
    const r = this.rings.get(sym);
    if (r === undefined) return 0;
    let n = 0;
    for (let i = r.head; i !== r.tail; i++) if (r.remaining[i & this.mask]! > 0) n++;
    return n;
  }

  /** Open quantity of one symbol, signed (buy +, sell −). */
  openQty(sym: string): number {
    const r = this.rings.get(sym);
    if (r === undefined) return 0;
    let q = 0;
    for (let i = r.head; i !== r.tail; i++) {
      const s = i & this.mask;
      q += r.side[s]! * r.remaining[s]!;
    }
    return q;
  }

  /**
   * Queue an order. Throws QLN_BACKTEST_ORDER_REJECTED (and counts it) for a
   * bad side, quantity, price or time, or when the symbol already holds
   * `maxOpenOrders` open orders. A quantity of 0 is accepted and does nothing.
   */
  submit(order: SimOrder): void {
    const { side, qty, refPx, ts } = order;
    let bad: string | null = null;
    if (side !== 'buy' && side !== 'sell')
      bad = `side ${JSON.stringify(side)} (allowed: buy, sell)`;
    else if (typeof qty !== 'number' || !Number.isFinite(qty) || qty < 0)
      bad = `qty ${String(qty)} (allowed: a finite number ≥ 0)`;
    else if (typeof refPx !== 'number' || !Number.isFinite(refPx) || refPx <= 0)
      bad = `refPx ${String(refPx)} (allowed: a finite number > 0)`;
    else if (typeof ts !== 'number' || !Number.isFinite(ts))
      bad = `ts ${String(ts)} (allowed: a finite number of µs)`;
    if (bad !== null) {
      this.st.rejectedInvalid++;
      throw new QilinError(
        ErrorCodes.BACKTEST_ORDER_REJECTED,
        `order ${order.signalId} for ${order.sym}: invalid ${bad}`,
        { details: { signalId: order.signalId, sym: order.sym } },
      );
    }
    if (qty === 0) return;
    let r = this.rings.get(order.sym);
    if (r === undefined) {
      r = new OrderRing(order.sym, this.options.maxOpenOrders);
      this.rings.set(order.sym, r);
    }
    this.popDone(r);
    if (r.tail - r.head >= this.options.maxOpenOrders) {
      this.st.rejectedFull++;
      throw new QilinError(
        ErrorCodes.BACKTEST_ORDER_REJECTED,
        `order ${order.signalId} for ${order.sym}: ${this.options.maxOpenOrders} orders already open (fill.maxOpenOrders)`,
        {
          details: { signalId: order.signalId, sym: order.sym, limit: this.options.maxOpenOrders },
        },
      );
    }
    const id = this.freeIdents.pop() ?? this.identSignal.length;
    this.identSignal[id] = order.signalId;
    this.identAccount[id] = order.account;
    this.identStrategy[id] = order.strategy;
    const s = r.tail & this.mask;
    r.side[s] = side === 'buy' ? 1 : -1;
    r.remaining[s] = qty;
    r.signalTs[s] = ts;
    r.activeTs[s] = ts + this.options.latencyUs;
    r.refPx[s] = refPx;
    r.ident[s] = id;
    r.tail++;
    this.st.submitted++;
  }

  /** Cancel every open order of a symbol (e.g. at the end of a run); returns how many. */
  cancelAll(sym: string): number {
    const r = this.rings.get(sym);
    if (r === undefined) return 0;
    let n = 0;
    for (let i = r.head; i !== r.tail; i++) {
      const s = i & this.mask;
      if (r.remaining[s]! > 0) {
        n++;
        r.remaining[s] = 0;
        this.freeIdents.push(r.ident[s]!);
      }
    }
    r.head = r.tail;
    return n;
  }

  /** A trade: next-tick orders fill at `px`, up to `qty × maxVolumeShare` in all. */
  onTrade(sym: string, ts: number, px: number, qty: number): void {
    if (this.options.model !== 'next-tick') return;
    const r = this.rings.get(sym);
    if (r === undefined || r.head === r.tail) return;
    if (!(px > 0 && px < Number.POSITIVE_INFINITY)) {
      this.st.skippedTicks++;
      return;
    }
    this.match(r, ts, px, px, px, px, 0, qty, qty);
  }

  /**
   * A bar (OHLCV) as one tick: next-tick orders fill at its open, moved by the
   * slippage and clamped to [low, high], up to `volume × maxVolumeShare`.
   */
  onBar(sym: string, ts: number, open: number, high: number, low: number, volume: number): void {
    if (this.options.model !== 'next-tick') return;
    const r = this.rings.get(sym);
    if (r === undefined || r.head === r.tail) return;
    if (!(open > 0 && low > 0 && low <= high && high < Number.POSITIVE_INFINITY)) {
      this.st.skippedTicks++;
      return;
    }
    this.match(r, ts, open, open, low, high, 0, volume, volume);
  }

  /** A top-of-book quote: quote-touch buys take the ask (size `askQty`), sells the bid (`bidQty`). */
  onQuote(sym: string, ts: number, bid: number, bidQty: number, ask: number, askQty: number): void {
    if (this.options.model !== 'quote-touch') return;
    const r = this.rings.get(sym);
    if (r === undefined || r.head === r.tail) return;
    // A crossed or empty book is no price to trade at.
    if (!(bid > 0 && ask >= bid && ask < Number.POSITIVE_INFINITY)) {
      this.st.skippedTicks++;
      return;
    }
    this.match(r, ts, ask, bid, bid, ask, 1, askQty, bidQty);
  }

  /**
   * Fill the ring's active orders against one tick. Buys fill at `buyPx`,
   * sells at `sellPx`, both clamped to [lo, hi]. `sepSides` = 1 (quote): buys
   * and sells draw on separate sizes (ask side, bid side); otherwise they draw
   * on one volume (a trade or bar is one pool of traded quantity).
   */
  private match(
    r: OrderRing,
    ts: number,
    buyPx: number,
    sellPx: number,
    lo: number,
    hi: number,
    sepSides: number,
    buyVol: number,
    sellVol: number,
  ): void {
    const o = this.options;
    const share = o.maxVolumeShare;
    let buyLeft = buyVol > 0 ? buyVol * share : 0;
    let sellLeft = sepSides === 1 ? (sellVol > 0 ? sellVol * share : 0) : 0;
    const limit = o.model === 'quote-touch' && o.limitBps !== null ? o.limitBps / 1e4 : -1;
    for (let i = r.head; i !== r.tail; i++) {
      const s = i & this.mask;
      const rem = r.remaining[s]!;
      // ts > signalTs: the tick that made the signal never fills it, even at latency 0.
      if (rem <= 0 || ts < r.activeTs[s]! || ts <= r.signalTs[s]!) continue;
      const buy = r.side[s]! > 0;
      const avail = buy || sepSides !== 1 ? buyLeft : sellLeft;
      if (avail <= 0) continue;
      const base = buy ? buyPx : sellPx;
      if (limit >= 0) {
        const ref = r.refPx[s]!;
        if (buy ? base > ref * (1 + limit) : base < ref * (1 - limit)) continue;
      }
      const slip = o.slippageUnit === 'bps' ? (base * o.slippage) / 1e4 : o.slippage * o.tickSize;
      const wanted = buy ? base + slip : base - slip;
      const px = wanted < lo ? lo : wanted > hi ? hi : wanted;
      const qty = rem < avail ? rem : avail;
      if (buy || sepSides !== 1) buyLeft -= qty;
      else sellLeft -= qty;
      const left = rem - qty <= rem * 1e-12 ? 0 : rem - qty;
      r.remaining[s] = left;
      const fee = (px * qty * o.feeBps) / 1e4 + o.feePerFill;
      const clamped = Math.abs(wanted - px);
      const id = r.ident[s]!;
      const f = this.out;
      f.signalId = this.identSignal[id]!;
      f.account = this.identAccount[id]!;
      f.strategy = this.identStrategy[id]!;
      f.sym = r.sym;
      f.side = buy ? 'buy' : 'sell';
      f.qty = qty;
      f.px = px;
      f.ts = ts;
      f.fee = fee;
      f.refPx = r.refPx[s]!;
      f.signalTs = r.signalTs[s]!;
      f.slippageClamped = clamped;
      f.remaining = left;
      this.st.fills++;
      this.st.filledQty += qty;
      this.st.fees += fee;
      this.st.slippageClamped += clamped * qty;
      if (left === 0) this.freeIdents.push(id);
      this.onFill(f);
    }
    this.popDone(r);
  }

  private popDone(r: OrderRing): void {
    while (r.head !== r.tail && r.remaining[r.head & this.mask]! <= 0) r.head++;
  }
}
