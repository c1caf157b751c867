import { nowUs } from '../../kernel/clock.js';
import { invalidArgument } from '../../kernel/errors.js';
import type { RejectReason } from '../../kernel/market-source.js';
import { MarketKind, Side, type MarketEvent } from '../../kernel/market-record.js';
import { TickScanner, newScannedTick } from './tick-json-scanner.js';

/**
 * Outcome of decoding one market message. The decoder owns one instance and
 * returns it from every call (no allocation per tick): read it before the next
 * `decode`. `venue` and `sym` come from the subject (validated and cached per
 * subject), so accepted messages cost no string slicing.
 */
export interface DecodeResult {
  ok: boolean;
  /** Venue token of the subject; '' when the subject was refused. */
  venue: string;
  /** Symbol token of the subject (equal to the body's `sym` when ok); '' when refused. */
  sym: string;
  /** Why the message was refused; meaningless when `ok`. */
  reason: RejectReason;
  /** Human detail naming the field and the value; '' when `ok`. */
  detail: string;
}

/** Options shared by the JSON decoder and the binary codec. */
export interface TickDecodeOptions {
  /** Largest accepted payload in bytes; bigger ones are `oversized` before parsing (default 4096). */
  maxBytes?: number;
  /** Latest accepted `ts`, as an offset from now in µs (default one day). */
  maxFutureUs?: number;
  /** Clock for the `ts` upper bound, µs since epoch (default kernel/clock nowUs). */
  clockUs?: () => number;
  /** JSON only: try the allocation-free scanner first (default true; false for comparisons). */
  fastPath?: boolean;
}

/** 2000-01-01T00:00:00Z in µs: anything earlier is not a live tick. */
export const MIN_TICK_TS_US = 946_684_800_000_000;
const DAY_US = 86_400_000_000;
/** Validated subjects kept before the cache is cleared (bounds memory under a flood of names). */
const SUBJECT_CACHE_MAX = 1 << 17;

const CH_DOT = 0x2e;

/** True for `[A-Za-z0-9_-]`: the characters of a NATS token as PROTOCOL.md allows them. */
function isTokenChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x5f || // _
    c === 0x2d // -
  );
}

/** True when `s` is a non-empty `[A-Za-z0-9_-]+` token (no regex: called per tick). */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!isTokenChar(s.charCodeAt(i))) return false;
  return true;
}

/**
 * `[venue, symbol]` of `md.<venue>.<symbol>` or `md.<venue>.<symbol>.<digits>`
 * (the partitioned form), or undefined when the subject is neither.
 */
export function parseMarketSubject(subject: string): readonly [string, string] | undefined {
  const n = subject.length;
  if (
    n < 6 ||
    subject.charCodeAt(0) !== 0x6d || // m
    subject.charCodeAt(1) !== 0x64 || // d
    subject.charCodeAt(2) !== CH_DOT
  ) {
    return undefined;
  }
  // dots[k] = index of the k-th dot after "md."; at most two more.
  let d1 = -1;
  let d2 = -1;
  let start = 3;
  for (let i = 3; i <= n; i++) {
    const c = i === n ? CH_DOT : subject.charCodeAt(i);
    if (c === CH_DOT) {
      if (i === start) return undefined; // empty token
      if (d1 === -1 && i < n) d1 = i;
      else if (d2 === -1 && i < n) d2 = i;
      else if (i < n) return undefined; // a fifth token
      start = i + 1;
    } else if (!isTokenChar(c)) return undefined;
  }
  if (d1 === -1) return undefined;
  if (d2 !== -1) {
    for (let i = d2 + 1; i < n; i++) {
      const c = subject.charCodeAt(i);
      if (c < 0x30 || c > 0x39) return undefined; // partition: digits only
    }
    return [subject.slice(3, d1), subject.slice(d1 + 1, d2)] as const;
  }
  return [subject.slice(3, d1), subject.slice(d1 + 1)] as const;
}

/** JSON of a value for a reject detail, short enough for a log line. */
export function showValue(v: unknown): string {
  let s: string;
  try {
    // JSON.stringify gives undefined for undefined, functions and symbols.
    const json: string | undefined = JSON.stringify(v);
    s = json ?? typeof v;
  } catch {
    s = typeof v; // BigInt or a cycle: the type is all a detail needs
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * The validation rules both tick encodings share: subject shape, timestamp
 * range, sequence and number bounds. Each check fills the result and returns
 * false on failure, so a decoder reads as a chain of `if (!rule) return`.
 * Exported for the binary codec; not a public API.
 */
export class TickRules {
  readonly maxBytes: number;
  private readonly maxFutureUs: number;
  private readonly clockUs: () => number;
  /** subject → [venue, sym]; only valid subjects are cached. */
  private readonly subjects = new Map<string, readonly [string, string]>();

  constructor(opts: TickDecodeOptions = {}) {
    this.maxBytes = opts.maxBytes ?? 4096;
    if (!Number.isInteger(this.maxBytes) || this.maxBytes < 64) {
      invalidArgument('maxBytes', opts.maxBytes, 'an integer >= 64');
    }
    this.maxFutureUs = opts.maxFutureUs ?? DAY_US;
    if (!(this.maxFutureUs >= 0)) {
      invalidArgument('maxFutureUs', opts.maxFutureUs, 'a number of µs >= 0');
    }
    this.clockUs = opts.clockUs ?? nowUs;
  }

  /** Clear `res` to a fresh success state. */
  reset(res: DecodeResult): void {
    res.ok = true;
    res.venue = '';
    res.sym = '';
    res.reason = 'bad_subject';
    res.detail = '';
  }

  fail(res: DecodeResult, reason: RejectReason, detail: string): false {
    res.ok = false;
    res.reason = reason;
    res.detail = detail;
    return false;
  }

  /** `fail`, returning the result itself (for decode functions). */
  refuse(res: DecodeResult, reason: RejectReason, detail: string): DecodeResult {
    this.fail(res, reason, detail);
    return res;
  }

  size(bytes: number, res: DecodeResult): boolean {
    if (bytes <= this.maxBytes) return true;
    return this.fail(
      res,
      'oversized',
      `payload of ${bytes} bytes exceeds maxBytes ${this.maxBytes}`,
    );
  }

  /**
   * `md.<venue>.<symbol>`, or `md.<venue>.<symbol>.<partition>` as the NATS
   * server's partition mapping delivers it (ops/services/nats-config.ts; the
   * partition is decimal digits), into res.venue / res.sym.
   */
  subject(subject: string, res: DecodeResult): boolean {
    const hit = this.subjects.get(subject);
    if (hit !== undefined) {
      res.venue = hit[0];
      res.sym = hit[1];
      return true;
    }
    const entry = parseMarketSubject(subject);
    if (entry === undefined) {
      return this.fail(
        res,
        'bad_subject',
        `subject ${showValue(subject)} is not md.<venue>.<symbol> (optionally .<partition>) with tokens [A-Za-z0-9_-]+`,
      );
    }
    if (this.subjects.size >= SUBJECT_CACHE_MAX) this.subjects.clear();
    this.subjects.set(subject, entry);
    res.venue = entry[0];
    res.sym = entry[1];
    return true;
  }

  /** The timestamp rule without a verdict: integer µs, after 2000-01-01, not too far ahead. */
  okTimestamp(ts: number): boolean {
    return Number.isInteger(ts) && ts >= MIN_TICK_TS_US && ts <= this.clockUs() + this.maxFutureUs;
  }

  /** The seq rule without a verdict: a non-negative safe integer. */
  okSeq(seq: number): boolean {
    return Number.isSafeInteger(seq) && seq >= 0;
  }

  /** Integer µs after 2000-01-01 and at most maxFutureUs ahead of now. */
  timestamp(ts: number, res: DecodeResult): boolean {
    if (this.okTimestamp(ts)) return true;
    return this.fail(
      res,
      'bad_timestamp',
      `field ts = ${showValue(ts)} is not integer µs between 2000-01-01 and now + ${this.maxFutureUs} µs`,
    );
  }

  seq(seq: number, res: DecodeResult): boolean {
    if (this.okSeq(seq)) return true;
    return this.fail(
      res,
      'bad_seq',
      `field seq = ${showValue(seq)} is not a non-negative safe integer`,
    );
  }

  /** A finite number > 0 (prices, trade quantity). */
  positive(field: string, v: number, res: DecodeResult): boolean {
    if (Number.isFinite(v) && v > 0) return true;
    return this.fail(
      res,
      'bad_number',
      `field ${field} = ${showValue(v)} is not a finite number > 0`,
    );
  }

  /** A finite number >= 0 (book sizes). */
  nonNegative(field: string, v: number, res: DecodeResult): boolean {
    if (Number.isFinite(v) && v >= 0) return true;
    return this.fail(
      res,
      'bad_number',
      `field ${field} = ${showValue(v)} is not a finite number >= 0`,
    );
  }
}

/**
 * Decodes the JSON tick encoding of PROTOCOL.md into a caller-owned, reused
 * `MarketEvent`. Plain valid ticks take the scanner (tick-json-scanner.ts:
 * no allocation); anything else goes through `JSON.parse`, and every field
 * is validated in place and copied, so a refused tick gets its reason. The decoder does not intern: the caller sets
 * `out.symId` from `ingest.intern(result.sym)`.
 *
 * Crossed quotes (bid >= ask) are accepted on purpose: they are real market
 * states whose frequency the quality stage measures.
 */
export class TickJsonDecoder {
  readonly rules: TickRules;
  private readonly text = new TextDecoder('utf-8', { fatal: true });
  private readonly scanned = newScannedTick();
  private readonly scanner = new TickScanner();
  private readonly res: DecodeResult = {
    ok: true,
    venue: '',
    sym: '',
    reason: 'bad_subject',
    detail: '',
  };

  private readonly fastPath: boolean;

  constructor(opts: TickDecodeOptions = {}) {
    this.rules = new TickRules(opts);
    this.fastPath = opts.fastPath ?? true;
  }

  /** Decode `data` received on `subject` into `out` (fields other than symId and recv). */
  decode(subject: string, data: Uint8Array, out: MarketEvent): DecodeResult {
    const res = this.res;
    const rules = this.rules;
    rules.reset(res);
    if (!rules.size(data.byteLength, res)) return res;
    if (!rules.subject(subject, res)) return res;
    if (this.fastPath && this.fast(data, res.sym, out)) return res;
    return this.full(data, res, out);
  }

  /**
   * The allocation-free path (tick-json-scanner.ts): true when the tick is
   * a plain, valid one and `out` holds it. False leaves `out` to `full()`,
   * which decides (and names the reason) for everything else.
   */
  private fast(data: Uint8Array, sym: string, out: MarketEvent): boolean {
    const sc = this.scanned;
    if (!this.scanner.scan(data, sc)) return false;
    const n = sc.symEnd - sc.symStart;
    if (n !== sym.length) return false;
    for (let i = 0; i < n; i++) if (data[sc.symStart + i] !== sym.charCodeAt(i)) return false;
    const rules = this.rules;
    if (!rules.okTimestamp(sc.ts) || !rules.okSeq(sc.seq)) return false;
    if (sc.kind === MarketKind.TRADE) {
      if (!(sc.px > 0 && Number.isFinite(sc.px) && sc.qty > 0 && Number.isFinite(sc.qty))) {
        return false;
      }
      out.kind = MarketKind.TRADE;
      out.px = sc.px;
      out.qty = sc.qty;
      out.side = sc.side === 1 ? Side.BUY : sc.side === 2 ? Side.SELL : Side.NONE;
      out.bid = out.bidQty = out.ask = out.askQty = 0;
    } else {
      if (
        !(sc.bid > 0 && Number.isFinite(sc.bid) && sc.ask > 0 && Number.isFinite(sc.ask)) ||
        !(
          sc.bidQty >= 0 &&
          Number.isFinite(sc.bidQty) &&
          sc.askQty >= 0 &&
          Number.isFinite(sc.askQty)
        )
      ) {
        return false;
      }
      out.kind = MarketKind.QUOTE;
      out.bid = sc.bid;
      out.bidQty = sc.bidQty;
      out.ask = sc.ask;
      out.askQty = sc.askQty;
      out.px = out.qty = 0;
      out.side = Side.NONE;
    }
    out.ts = sc.ts;
    out.seq = sc.seq;
    return true;
  }

  /** TextDecoder + JSON.parse, every rule with its reason. */
  private full(data: Uint8Array, res: DecodeResult, out: MarketEvent): DecodeResult {
    const rules = this.rules;

    let body: unknown;
    try {
      body = JSON.parse(this.text.decode(data));
    } catch (err) {
      return rules.refuse(
        res,
        'malformed_json',
        `body is not UTF-8 JSON: ${(err as Error).message}`,
      );
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return rules.refuse(res, 'not_an_object', `body ${showValue(body)} is not a JSON object`);
    }
    const o = body as Record<string, unknown>;

    const type = o['type'];
    if (type === undefined) return rules.refuse(res, 'missing_field', 'field type is missing');
    if (typeof type !== 'string') return badType(rules, res, 'type', type, 'a string');
    if (type !== 'trade' && type !== 'quote') {
      return rules.refuse(
        res,
        'unknown_type',
        `field type = ${showValue(type)} is not trade or quote`,
      );
    }

    const sym = o['sym'];
    if (sym === undefined) return rules.refuse(res, 'missing_field', 'field sym is missing');
    if (typeof sym !== 'string') return badType(rules, res, 'sym', sym, 'a string');
    if (!isToken(sym)) {
      return rules.refuse(
        res,
        'bad_symbol',
        `field sym = ${showValue(sym)} is not a token [A-Za-z0-9_-]+`,
      );
    }
    if (sym !== res.sym) {
      return rules.refuse(
        res,
        'symbol_mismatch',
        `field sym = ${showValue(sym)} differs from subject symbol ${showValue(res.sym)}`,
      );
    }

    const ts = num(rules, res, o, 'ts');
    if (ts === undefined || !rules.timestamp(ts, res)) return res;
    const seq = num(rules, res, o, 'seq');
    if (seq === undefined || !rules.seq(seq, res)) return res;

    if (type === 'trade') {
      const px = num(rules, res, o, 'px');
      if (px === undefined || !rules.positive('px', px, res)) return res;
      const qty = num(rules, res, o, 'qty');
      if (qty === undefined || !rules.positive('qty', qty, res)) return res;
      const side = o['side'];
      let sideValue: MarketEvent['side'] = Side.NONE;
      if (side === 'buy') sideValue = Side.BUY;
      else if (side === 'sell') sideValue = Side.SELL;
      else if (side !== undefined) {
        return rules.refuse(res, 'bad_side', `field side = ${showValue(side)} is not buy or sell`);
      }
      out.kind = MarketKind.TRADE;
      out.px = px;
      out.qty = qty;
      out.side = sideValue;
      out.bid = out.bidQty = out.ask = out.askQty = 0;
    } else {
      const bid = num(rules, res, o, 'bid');
      if (bid === undefined || !rules.positive('bid', bid, res)) return res;
      const bidQty = num(rules, res, o, 'bidQty');
      if (bidQty === undefined || !rules.nonNegative('bidQty', bidQty, res)) return res;
      const ask = num(rules, res, o, 'ask');
      if (ask === undefined || !rules.positive('ask', ask, res)) return res;
      const askQty = num(rules, res, o, 'askQty');
      if (askQty === undefined || !rules.nonNegative('askQty', askQty, res)) return res;
      out.kind = MarketKind.QUOTE;
      out.bid = bid;
      out.bidQty = bidQty;
      out.ask = ask;
      out.askQty = askQty;
      out.px = out.qty = 0;
      out.side = Side.NONE;
    }
    out.ts = ts;
    out.seq = seq;
    return res;
  }
}

function badType(
  rules: TickRules,
  res: DecodeResult,
  field: string,
  v: unknown,
  want: string,
): DecodeResult {
  rules.fail(res, 'bad_field_type', `field ${field} = ${showValue(v)} is not ${want}`);
  return res;
}

/** A required numeric field, or undefined with `res` failed (missing / not a number). */
function num(
  rules: TickRules,
  res: DecodeResult,
  o: Record<string, unknown>,
  field: string,
): number | undefined {
  const v = o[field];
  if (typeof v === 'number') return v;
  if (v === undefined) rules.fail(res, 'missing_field', `field ${field} is missing`);
  else badType(rules, res, field, v, 'a number');
  return undefined;
}
