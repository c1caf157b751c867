import { headers, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  TICK_BINARY_CONTENT_TYPE,
  TickBinaryCodec,
} from '../../adapters/nats/tick-binary-codec.js';
import { invalidArgument } from '../../kernel/errors.js';
import type { TickMessage } from '../../kernel/messages.js';

/** Options of {@link MarketSimulator}. */
export interface MarketSimulatorOptions {
  /** Symbol count (names BTC-USD, ETH-USD, … then SYM0001, …) or explicit token names. */
  symbols: number | string[];
  /** Venue token of the subjects `md.<venue>.<symbol>` (default sim). */
  venue?: string;
  /** Messages per second, all symbols together. */
  rate: number;
  /** Stop after this long (default: until the abort signal). */
  durationMs?: number;
  /** PRNG seed: the same seed gives the same message sequence (ts aside). Default 1. */
  seed?: number;
  /** Fraction of messages that are deliberately malformed (default 0.002). */
  badRate?: number;
  /** Fraction of messages after which seq numbers are skipped (default 0.001). */
  gapRate?: number;
  /** Publish the binary encoding (Content-Type application/x-qilin-tick) instead of JSON. */
  binary?: boolean;
  /** Fraction of good messages that are quotes (default 0.5). */
  quoteRatio?: number;
}

/** Counters of a run, also passed to the progress callback about once a second. */
export interface SimStats {
  /** Every published message, bad ones included. */
  sent: number;
  trades: number;
  quotes: number;
  /** Deliberately malformed messages (their count is what the kernel should reject). */
  bad: number;
  /** Seq gaps introduced (each skips 1-3 numbers). */
  gaps: number;
  elapsedMs: number;
  /** Messages published in the last whole second. */
  lastSecondRate: number;
  /** sent / elapsed. */
  avgRate: number;
}

/** Price regimes of one symbol; they switch at random after a few hundred messages. */
export type SimRegime = 'up' | 'down' | 'revert';

/** One generated message (what `run` publishes), with the generator's view for tests. */
export interface SimMessage {
  subject: string;
  data: Uint8Array;
  /** Binary encoding (needs the Content-Type header). */
  binary: boolean;
  /** Deliberately malformed, and which way. */
  bad: false | 'garbage' | 'negative_price' | 'wrong_symbol' | 'missing_field';
  /** Kind of a good message; undefined for a bad one. */
  type: 'trade' | 'quote' | undefined;
  /** Seq numbers were skipped just before this message. */
  gap: boolean;
  sym: string;
  /** Mid price after this message's step. */
  mid: number;
  regime: SimRegime;
}

const NAMED = [
  'BTC-USD',
  'ETH-USD',
  'SOL-USD',
  'XRP-USD',
  'ADA-USD',
  'DOGE-USD',
  'AVAX-USD',
  'DOT-USD',
  'LINK-USD',
  'LTC-USD',
  'BCH-USD',
  'ATOM-USD',
];
const NAMED_PX = [97000, 3400, 240, 2.4, 1.05, 0.38, 42, 8.1, 24, 105, 480, 9.5];

/*
 * Price model, per message of a symbol (log price x):
 *   up / down:  x += ±DRIFT + SIGMA·z
 *   revert:     x += KAPPA·(anchor − x) + SIGMA·z
 * DRIFT/SIGMA = 0.4: over the 26 steps of a slow EMA the drift (~10 bps) is
 * about twice the noise (~5 bps), so an EMA 12/26 crossover turns within a
 * few seconds of a regime switch at ~50 msg/s per symbol.
 */
const DRIFT = 0.00004;
const SIGMA = 0.0001;
const KAPPA = 0.02;
const REGIME_MIN = 300;
const REGIME_MAX = 1200;
const TIMER_MS = 10;
const FLUSH_EVERY_MS = 100;

/** mulberry32: tiny, fast, good enough for a deterministic synthetic market. */
class Prng {
  private s: number;
  private spare = NaN;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  /** Standard normal, Box–Muller (the second value is kept for the next call). */
  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const v = this.spare;
      this.spare = NaN;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    const th = 2 * Math.PI * this.next();
    this.spare = r * Math.sin(th);
    return r * Math.cos(th);
  }
}

interface SymbolState {
  sym: string;
  subject: string;
  x: number;
  anchor: number;
  regime: SimRegime;
  regimeLeft: number;
  seq: number;
  /** Price decimals: enough for a spread of a few bps to show. */
  decimals: number;
}

/**
 * Synthetic market for demos, tests and load: per symbol a random walk of the
 * log price whose regime (trend up, trend down, mean-reverting) switches at
 * random, trades and top-of-book quotes around it, one seq per symbol shared
 * by both, plus a controlled rate of malformed messages and seq gaps.
 * Symbols are visited round-robin, so each gets rate / symbols msg/s.
 * Deterministic for a seed (only `ts`, the wall clock, differs between runs).
 */
export class MarketSimulator {
  private readonly rng: Prng;
  private readonly syms: SymbolState[];
  private readonly rate: number;
  private readonly durationMs: number | undefined;
  private readonly badRate: number;
  private readonly gapRate: number;
  private readonly binary: boolean;
  private readonly quoteRatio: number;
  private readonly codec = new TickBinaryCodec();
  private readonly text = new TextEncoder();
  private next = 0;

  constructor(opts: MarketSimulatorOptions) {
    const venue = opts.venue ?? 'sim';
    if (!/^[A-Za-z0-9_-]+$/.test(venue)) invalidArgument('venue', venue, 'a token [A-Za-z0-9_-]+');
    if (!(opts.rate > 0) || !Number.isFinite(opts.rate)) {
      invalidArgument('rate', opts.rate, 'messages per second > 0');
    }
    this.rate = opts.rate;
    if (opts.durationMs !== undefined && !(opts.durationMs >= 0)) {
      invalidArgument('durationMs', opts.durationMs, 'ms >= 0');
    }
    this.durationMs = opts.durationMs;
    this.badRate = fraction('badRate', opts.badRate, 0.002);
    this.gapRate = fraction('gapRate', opts.gapRate, 0.001);
    this.quoteRatio = fraction('quoteRatio', opts.quoteRatio, 0.5);
    this.binary = opts.binary ?? false;
    this.rng = new Prng(opts.seed ?? 1);

    let names: string[];
    if (typeof opts.symbols === 'number') {
      if (!Number.isInteger(opts.symbols) || opts.symbols < 1 || opts.symbols > 100_000) {
        invalidArgument('symbols', opts.symbols, 'an integer from 1 to 100000 or a list of names');
      }
      names = Array.from({ length: opts.symbols }, (_, i) =>
        i < NAMED.length ? NAMED[i]! : `SYM${String(i - NAMED.length + 1).padStart(4, '0')}`,
      );
    } else {
      names = opts.symbols;
      if (names.length === 0) invalidArgument('symbols', names, 'at least one symbol');
      for (const n of names) {
        if (!/^[A-Za-z0-9_-]+$/.test(n)) invalidArgument('symbols', n, 'tokens [A-Za-z0-9_-]+');
      }
    }
    this.syms = names.map((sym) => {
      const px = NAMED_PX[NAMED.indexOf(sym)] ?? 20 + 180 * this.rng.next();
      return {
        sym,
        subject: `md.${venue}.${sym}`,
        x: Math.log(px),
        anchor: Math.log(px),
        regime: this.pickRegime(),
        regimeLeft: this.rng.int(REGIME_MIN, REGIME_MAX),
        seq: 1,
        decimals: Math.max(2, Math.ceil(4 - Math.log10(px))),
      };
    });
  }

  /** The symbol names, in round-robin order. */
  symbols(): string[] {
    return this.syms.map((s) => s.sym);
  }

  private pickRegime(): SimRegime {
    const r = this.rng.next();
    return r < 1 / 3 ? 'up' : r < 2 / 3 ? 'down' : 'revert';
  }

  /** Generate the next message (round-robin over symbols). Also what `run` publishes. */
  nextMessage(tsUs = Math.floor(Date.now() * 1000)): SimMessage {
    const rng = this.rng;
    const s = this.syms[this.next]!;
    this.next = (this.next + 1) % this.syms.length;

    if (rng.next() < this.badRate) return this.badMessage(s, tsUs);

    // Step the price.
    if (--s.regimeLeft <= 0) {
      s.regime = this.pickRegime();
      s.regimeLeft = rng.int(REGIME_MIN, REGIME_MAX);
      s.anchor = s.x;
    }
    const drift =
      s.regime === 'up' ? DRIFT : s.regime === 'down' ? -DRIFT : KAPPA * (s.anchor - s.x);
    s.x += drift + SIGMA * rng.normal();
    const mid = Math.exp(s.x);

    let gap = false;
    if (rng.next() < this.gapRate) {
      s.seq += rng.int(1, 3);
      gap = true;
    }
    const seq = s.seq++;
    const msg = this.goodTick(s, mid, seq, tsUs);
    return {
      subject: s.subject,
      data: this.encode(msg),
      binary: this.binary,
      bad: false,
      type: msg.type,
      gap,
      sym: s.sym,
      mid,
      regime: s.regime,
    };
  }

  private goodTick(s: SymbolState, mid: number, seq: number, ts: number): TickMessage {
    const rng = this.rng;
    const unit = 10 ** -s.decimals;
    const round = (v: number) => Math.round(v / unit) * unit;
    if (rng.next() < this.quoteRatio) {
      const half = mid * (1 + 2 * rng.next()) * 1e-4; // 1-3 bps each side
      const bid = Math.max(unit, round(mid - half));
      const ask = Math.max(bid + unit, round(mid + half));
      return {
        type: 'quote',
        sym: s.sym,
        ts,
        bid: +bid.toFixed(s.decimals),
        bidQty: size(rng),
        ask: +ask.toFixed(s.decimals),
        askQty: size(rng),
        seq,
      };
    }
    return {
      type: 'trade',
      sym: s.sym,
      ts,
      px: +Math.max(unit, round(mid)).toFixed(s.decimals),
      qty: Math.max(0.0001, size(rng)),
      side: rng.next() < 0.5 ? 'buy' : 'sell',
      seq,
    };
  }

  private encode(msg: TickMessage): Uint8Array {
    return this.binary ? this.codec.encodeTick(msg) : this.text.encode(JSON.stringify(msg));
  }

  private badMessage(s: SymbolState, ts: number): SimMessage {
    const rng = this.rng;
    const kinds = ['garbage', 'negative_price', 'wrong_symbol', 'missing_field'] as const;
    const bad = kinds[rng.int(0, kinds.length - 1)]!;
    const mid = Math.exp(s.x);
    // Bad messages carry the next seq but do not consume it: the accepted stream has no gap.
    const base: TickMessage = {
      type: 'trade',
      sym: s.sym,
      ts,
      px: +mid.toFixed(s.decimals),
      qty: 1,
      seq: s.seq,
    };
    let data: Uint8Array;
    if (bad === 'garbage') {
      data = this.binary
        ? Uint8Array.from({ length: rng.int(1, 40) }, () => rng.int(0, 255) & 0x7f)
        : this.text.encode(`{"type":"trade","sym":"${s.sym}","px":`);
    } else if (bad === 'negative_price') {
      data = this.encode({ ...base, px: -base.px });
    } else if (bad === 'wrong_symbol') {
      data = this.encode({ ...base, sym: `${s.sym}X` });
    } else if (this.binary) {
      // A binary record has no optional fields: "missing" is a truncated record.
      const full = this.encode(base);
      data = full.subarray(0, full.byteLength - 9);
    } else {
      const { seq: _drop, ...noSeq } = base;
      data = this.text.encode(JSON.stringify(noSeq));
    }
    return {
      subject: s.subject,
      data,
      binary: this.binary,
      bad,
      type: undefined,
      gap: false,
      sym: s.sym,
      mid,
      regime: s.regime,
    };
  }

  /**
   * Publish at `rate` msg/s until `durationMs` passes or `signal` aborts.
   * Paced by a timer (batches every ~10 ms, never a busy loop); `flush()`
   * about every 100 ms is also the back-pressure towards the server.
   */
  async run(
    nc: Pick<NatsConnection, 'publish' | 'flush'>,
    onProgress?: (stats: SimStats) => void,
    signal?: AbortSignal,
  ): Promise<SimStats> {
    const stats: SimStats = {
      sent: 0,
      trades: 0,
      quotes: 0,
      bad: 0,
      gaps: 0,
      elapsedMs: 0,
      lastSecondRate: 0,
      avgRate: 0,
    };
    const hdrs: MsgHdrs | undefined = this.binary ? headers() : undefined;
    hdrs?.set('Content-Type', TICK_BINARY_CONTENT_TYPE);
    const opts = hdrs === undefined ? undefined : { headers: hdrs };
    const t0 = performance.now();
    let lastFlush = t0;
    let secondStart = t0;
    let sentAtSecond = 0;
    // Never catch up more than a quarter second of messages in one burst after a stall.
    const maxBurst = Math.max(1, Math.ceil(this.rate / 4));
    const end = this.durationMs === undefined ? Infinity : t0 + this.durationMs;

    while (signal?.aborted !== true) {
      const now = performance.now();
      const until = Math.min(now, end);
      const due = Math.min(Math.floor(((until - t0) * this.rate) / 1000) - stats.sent, maxBurst);
      const tsUs = Math.floor(Date.now() * 1000);
      for (let i = 0; i < due; i++) {
        const m = this.nextMessage(tsUs);
        nc.publish(m.subject, m.data, opts);
        stats.sent++;
        if (m.bad !== false) stats.bad++;
        else if (m.type === 'quote') stats.quotes++;
        else stats.trades++;
        if (m.gap) stats.gaps++;
      }
      if (now - lastFlush >= FLUSH_EVERY_MS) {
        await nc.flush();
        lastFlush = performance.now();
      }
      if (now - secondStart >= 1000) {
        stats.lastSecondRate = Math.round(
          ((stats.sent - sentAtSecond) * 1000) / (now - secondStart),
        );
        sentAtSecond = stats.sent;
        secondStart = now;
        stats.elapsedMs = now - t0;
        stats.avgRate = (stats.sent * 1000) / Math.max(1, stats.elapsedMs);
        onProgress?.(stats);
      }
      if (now >= end) break;
      const wait = Math.max(1, Math.min(TIMER_MS, end - now));
      try {
        await sleep(wait, undefined, signal === undefined ? undefined : { signal });
      } catch {
        break; // aborted
      }
    }
    await nc.flush();
    stats.elapsedMs = performance.now() - t0;
    stats.avgRate = (stats.sent * 1000) / Math.max(1, stats.elapsedMs);
    return stats;
  }
}

function fraction(name: string, v: number | undefined, dflt: number): number {
  const f = v ?? dflt;
  if (!(f >= 0 && f <= 1)) invalidArgument(name, v, 'a fraction from 0 to 1');
  return f;
}

/** Lognormal size around 1, rounded to 4 decimals. */
function size(rng: Prng): number {
  return Math.round(Math.exp(0.8 * rng.normal()) * 10_000) / 10_000;
}
