/**
 * The fast path of JSON tick decoding: one pass over the bytes, no string,
 * no object, no allocation. It takes the ticks a healthy feed sends (a flat
 * object of ASCII strings, numbers, booleans and null, in any key order,
 * with any JSON whitespace) and declines everything else: escapes, non-ASCII
 * bytes, nested values, numbers it cannot convert exactly, and any tick that
 * would fail validation. The caller then runs the full decoder
 * (TickJsonDecoder: TextDecoder + JSON.parse), which gives the exact reject
 * reason, so the scanner never changes what is accepted or why something is
 * refused, only what an accepted tick costs.
 *
 * Numbers: a JSON number `-?int(.frac)?(e±exp)?` is the integer m of its
 * significant digits times 10^e. While m < 2^53 and |e| ≤ 22, `m × 10^e`
 * (or `m / 10^−e`) is one correctly rounded IEEE operation on two exact
 * values, so it equals what JSON.parse computes (Clinger's fast path);
 * outside that, the number's text goes through `Number()`, V8's own
 * conversion (one short string: the only allocation, and only then).
 */

/** What `scanTick` found; reused by the caller (one instance per decoder). */
export interface ScannedTick {
  /** 1 trade, 2 quote. */
  kind: number;
  /** Byte range of the `sym` string's content in the scanned data. */
  symStart: number;
  symEnd: number;
  ts: number;
  seq: number;
  px: number;
  qty: number;
  /** 0 absent, 1 buy, 2 sell. */
  side: number;
  bid: number;
  bidQty: number;
  ask: number;
  askQty: number;
}

export function newScannedTick(): ScannedTick {
  return {
    kind: 0,
    symStart: 0,
    symEnd: 0,
    ts: 0,
    seq: 0,
    px: 0,
    qty: 0,
    side: 0,
    bid: 0,
    bidQty: 0,
    ask: 0,
    askQty: 0,
  };
}

// Field bits: which keys were seen (a later duplicate overwrites, as JSON.parse does).
const F_TYPE = 1;
const F_SYM = 2;
const F_TS = 4;
const F_SEQ = 8;
const F_PX = 16;
const F_QTY = 32;
const F_SIDE = 64;
const F_BID = 128;
const F_BIDQTY = 256;
const F_ASK = 512;
const F_ASKQTY = 1024;

const QUOTE = 0x22;

const BACKSLASH = 0x5c;
const POW10 = [
  1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
  1e18, 1e19, 1e20, 1e21, 1e22,
];
const TWO53 = 9007199254740992;

const LITERALS = [
  Uint8Array.from(Buffer.from('true')),
  Uint8Array.from(Buffer.from('false')),
  Uint8Array.from(Buffer.from('null')),
];

/** Reads a number's text when its digits do not fit the exact fast path (a short string). */
const latin1Slice = (
  Buffer.prototype as unknown as {
    latin1Slice: (this: Uint8Array, start: number, end: number) => string;
  }
).latin1Slice;

/**
 * The scanner (one per decoder; synchronous, its fields are its state).
 * `scan(d, out)`: see the module comment.
 */
export class TickScanner {
  private d: Uint8Array = new Uint8Array(0);
  private end = 0;
  private pos = 0;
  private num = 0;
  private strStart = 0;
  private strEnd = 0;

  /**
   * Scan `d` as a tick object into `out`. True when it is a flat object the
   * scanner read completely and every field a tick needs is present with the
   * right JSON type (values are checked by the caller's rules); false means
   * "use the full decoder", never "bad input".
   */
  scan(d: Uint8Array, out: ScannedTick): boolean {
    this.d = d;
    this.end = d.length;
    this.pos = 0;
    let seen = 0;
    this.skipWs();
    if (d[this.pos] !== 0x7b) return false; // {
    this.pos++;
    this.skipWs();
    if (d[this.pos] === 0x7d) return false; // {}: let the decoder name the missing field
    for (;;) {
      if (!this.scanString()) return false;
      const bit = fieldOf(d, this.strStart, this.strEnd - this.strStart);
      this.skipWs();
      if (d[this.pos] !== 0x3a) return false; // :
      this.pos++;
      this.skipWs();
      const c = d[this.pos];
      if (bit === F_TYPE || bit === F_SYM || bit === F_SIDE) {
        if (c !== QUOTE) return false; // wrong type: the decoder says which
        if (!this.scanString()) return false;
        if (bit === F_TYPE) {
          if (this.strIs('trade')) out.kind = 1;
          else if (this.strIs('quote')) out.kind = 2;
          else return false;
        } else if (bit === F_SYM) {
          out.symStart = this.strStart;
          out.symEnd = this.strEnd;
        } else if (this.strIs('buy')) out.side = 1;
        else if (this.strIs('sell')) out.side = 2;
        else return false;
        seen |= bit;
      } else if (bit !== 0) {
        if (!(c === 0x2d || (c !== undefined && c >= 0x30 && c <= 0x39))) return false;
        if (!this.scanNumber()) return false;
        setNumber(out, bit, this.num);
        seen |= bit;
      } else if (!this.skipValue()) return false;
      this.skipWs();
      const sep = d[this.pos];
      if (sep === 0x2c) {
        this.pos++;
        this.skipWs();
        continue;
      }
      if (sep !== 0x7d) return false;
      this.pos++;
      break;
    }
    this.skipWs();
    if (this.pos !== this.end) return false; // trailing bytes: not one JSON value
    if ((seen & (F_TYPE | F_SYM | F_TS | F_SEQ)) !== (F_TYPE | F_SYM | F_TS | F_SEQ)) return false;
    if ((seen & F_SIDE) === 0) out.side = 0;
    if (out.kind === 1) return (seen & (F_PX | F_QTY)) === (F_PX | F_QTY);
    return (seen & (F_BID | F_BIDQTY | F_ASK | F_ASKQTY)) === (F_BID | F_BIDQTY | F_ASK | F_ASKQTY);
  }

  private skipWs(): void {
    const d = this.d;
    let p = this.pos;
    while (p < this.end) {
      const c = d[p]!;
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      p++;
    }
    this.pos = p;
  }

  /** A plain ASCII string without escapes at `pos` (the opening quote); false: decline. */
  private scanString(): boolean {
    const d = this.d;
    if (d[this.pos] !== QUOTE) return false;
    const start = this.pos + 1;
    let p = start;
    while (p < this.end) {
      const c = d[p]!;
      if (c === QUOTE) {
        this.strStart = start;
        this.strEnd = p;
        this.pos = p + 1;
        return true;
      }
      // Escapes, control characters and non-ASCII (UTF-8 the full decoder validates): decline.
      if (c === BACKSLASH || c < 0x20 || c >= 0x80) return false;
      p++;
    }
    return false;
  }

  /** A JSON number at `pos` into `num`, exactly as JSON.parse reads it; false: decline. */
  private scanNumber(): boolean {
    const d = this.d;
    const end = this.end;
    const start = this.pos;
    let p = start;
    let neg = false;
    if (d[p] === 0x2d) {
      neg = true;
      p++;
    }
    let m = 0;
    let digits = 0;
    let e = 0;
    const intStart = p;
    while (p < end) {
      const c = d[p]! - 0x30;
      if (c < 0 || c > 9) break;
      m = m * 10 + c;
      digits++;
      p++;
    }
    if (digits === 0) return false;
    if (digits > 1 && d[intStart] === 0x30) return false; // leading zero: not JSON
    if (p < end && d[p] === 0x2e) {
      p++;
      let frac = 0;
      while (p < end) {
        const c = d[p]! - 0x30;
        if (c < 0 || c > 9) break;
        m = m * 10 + c;
        frac++;
        p++;
      }
      if (frac === 0) return false;
      e -= frac;
    }
    if (p < end && (d[p] === 0x65 || d[p] === 0x45)) {
      p++;
      let expNeg = false;
      if (d[p] === 0x2b || d[p] === 0x2d) expNeg = d[p++] === 0x2d;
      let x = 0;
      let xd = 0;
      while (p < end) {
        const c = d[p]! - 0x30;
        if (c < 0 || c > 9) break;
        x = x * 10 + c;
        xd++;
        p++;
      }
      if (xd === 0) return false;
      e += expNeg ? -x : x;
    }
    this.pos = p;
    // Every partial m was exact while below 2^53 (each step is exact then).
    if (m < TWO53 && e >= -22 && e <= 22) {
      const v = e === 0 ? m : e > 0 ? m * POW10[e]! : m / POW10[-e]!;
      this.num = neg ? -v : v;
      return true;
    }
    // Long mantissas (prices computed in floating point print 17 digits):
    // V8's own string-to-double on just this number, the one allocation.
    this.num = Number(latin1Slice.call(d, start, p));
    return true;
  }

  /** Skip a simple value (string, number, true, false, null); false: decline (nested, escapes). */
  private skipValue(): boolean {
    const c = this.d[this.pos];
    if (c === QUOTE) return this.scanString();
    if (c === 0x2d || (c !== undefined && c >= 0x30 && c <= 0x39)) return this.scanNumber();
    for (const lit of LITERALS) {
      if (this.matches(lit)) {
        this.pos += lit.length;
        return true;
      }
    }
    return false;
  }

  private matches(lit: Uint8Array): boolean {
    if (this.pos + lit.length > this.end) return false;
    for (let i = 0; i < lit.length; i++) if (this.d[this.pos + i] !== lit[i]) return false;
    return true;
  }

  /** Compare the string just scanned with an ASCII literal. */
  private strIs(lit: string): boolean {
    if (this.strEnd - this.strStart !== lit.length) return false;
    for (let i = 0; i < lit.length; i++) {
      if (this.d[this.strStart + i] !== lit.charCodeAt(i)) return false;
    }
    return true;
  }
}

function setNumber(out: ScannedTick, bit: number, v: number): void {
  switch (bit) {
    case F_TS:
      out.ts = v;
      return;
    case F_SEQ:
      out.seq = v;
      return;
    case F_PX:
      out.px = v;
      return;
    case F_QTY:
      out.qty = v;
      return;
    case F_BID:
      out.bid = v;
      return;
    case F_BIDQTY:
      out.bidQty = v;
      return;
    case F_ASK:
      out.ask = v;
      return;
    case F_ASKQTY:
      out.askQty = v;
      return;
  }
}

/** The field bit of a key, 0 for a key a tick does not use. */
function fieldOf(d: Uint8Array, at: number, len: number): number {
  switch (len) {
    case 2:
      if (key(d, at, 'ts')) return F_TS;
      if (key(d, at, 'px')) return F_PX;
      return 0;
    case 3:
      if (key(d, at, 'sym')) return F_SYM;
      if (key(d, at, 'seq')) return F_SEQ;
      if (key(d, at, 'qty')) return F_QTY;
      if (key(d, at, 'bid')) return F_BID;
      if (key(d, at, 'ask')) return F_ASK;
      return 0;
    case 4:
      if (key(d, at, 'type')) return F_TYPE;
      if (key(d, at, 'side')) return F_SIDE;
      return 0;
    case 6:
      if (key(d, at, 'bidQty')) return F_BIDQTY;
      if (key(d, at, 'askQty')) return F_ASKQTY;
      return 0;
    default:
      return 0;
  }
}

function key(d: Uint8Array, at: number, k: string): boolean {
  for (let i = 0; i < k.length; i++) if (d[at + i] !== k.charCodeAt(i)) return false;
  return true;
}
