import { invalidArgument } from '../../kernel/errors.js';
import { MarketKind, Side, type MarketEvent } from '../../kernel/market-record.js';
import type { TickMessage } from '../../kernel/messages.js';
import {
  TickRules,
  showValue,
  type DecodeResult,
  type TickDecodeOptions,
} from './tick-json-decoder.js';

/** `Content-Type` header value that selects this encoding on `md.<venue>.<symbol>`. */
export const TICK_BINARY_CONTENT_TYPE = 'application/x-qilin-tick';

/**
 * Byte 0: high nibble is the magic 0xB ("binary tick"), low nibble the layout
 * version. A new layout bumps the version, so an old decoder refuses it
 * instead of misreading it.
 */
export const TICK_BINARY_MAGIC_V1 = 0xb1;

/** Fixed part of a record; the symbol's bytes follow. */
export const TICK_BINARY_HEADER_BYTES = 56;
/** Symbols are at most 255 bytes (one length byte). */
export const TICK_BINARY_MAX_BYTES = TICK_BINARY_HEADER_BYTES + 255;

/*
 * Compact tick encoding, all numbers little-endian. The f64 fields start at
 * byte 8 so a reader could map them as a Float64Array; the record length is
 * exactly 56 + symbol length (anything else is `malformed_binary`).
 *
 *  offset  size  field
 *  ------  ----  -----------------------------------------------------------
 *     0     1    u8  magic/version 0xB1
 *     1     1    u8  kind          1 trade, 2 quote
 *     2     1    u8  side          0 none, 1 buy, 2 sell (quotes: 0)
 *     3     1    u8  symbol length n, 1..255
 *     4     4    reserved, zero
 *     8     8    f64 seq           venue sequence number
 *    16     8    f64 ts            exchange time, integer µs since epoch
 *    24     8    f64 px     | bid
 *    32     8    f64 qty    | bidQty
 *    40     8    f64 0      | ask
 *    48     8    f64 0      | askQty
 *    56     n    symbol, UTF-8 (valid symbols are ASCII tokens [A-Za-z0-9_-])
 */

const OFF_MAGIC = 0;
const OFF_KIND = 1;
const OFF_SIDE = 2;
const OFF_SYMLEN = 3;
const OFF_SEQ = 8;
const OFF_TS = 16;
const OFF_A = 24;
const OFF_B = 32;
const OFF_C = 40;
const OFF_D = 48;

/**
 * Encoder and decoder of `application/x-qilin-tick`. `decode` applies the
 * same rules and reasons as the JSON decoder (plus `malformed_binary` for a
 * bad layout), never throws on input, and allocates nothing on success: the
 * fixed header is copied into a scratch buffer read through one DataView, and
 * the symbol bytes are compared with the subject's symbol in place.
 */
export class TickBinaryCodec {
  readonly rules: TickRules;
  private readonly scratch = new Uint8Array(TICK_BINARY_HEADER_BYTES);
  private readonly view = new DataView(this.scratch.buffer);
  private readonly text = new TextDecoder('utf-8');
  private readonly utf8 = new TextEncoder();
  private readonly res: DecodeResult = {
    ok: true,
    venue: '',
    sym: '',
    reason: 'bad_subject',
    detail: '',
  };

  constructor(opts: TickDecodeOptions = {}) {
    this.rules = new TickRules(opts);
  }

  /**
   * Encode `msg` into `buf` (when given and large enough: the result is a view
   * of it) or into a new array. Does not validate values, so tests can encode
   * corrupt ticks; throws QLN_INVALID_ARGUMENT only when the symbol does not
   * fit the layout.
   */
  encodeTick(msg: TickMessage, buf?: Uint8Array): Uint8Array {
    const symBytes = this.utf8.encode(msg.sym);
    const n = symBytes.byteLength;
    if (n < 1 || n > 255) invalidArgument('sym', msg.sym, 'a symbol of 1 to 255 UTF-8 bytes');
    const len = TICK_BINARY_HEADER_BYTES + n;
    const out =
      buf !== undefined && buf.byteLength >= len ? buf.subarray(0, len) : new Uint8Array(len);
    const dv = new DataView(out.buffer, out.byteOffset, len);
    dv.setUint8(OFF_MAGIC, TICK_BINARY_MAGIC_V1);
    dv.setUint32(4, 0, true);
    dv.setUint8(OFF_SYMLEN, n);
    dv.setFloat64(OFF_SEQ, msg.seq, true);
    dv.setFloat64(OFF_TS, msg.ts, true);
    if (msg.type === 'trade') {
      dv.setUint8(OFF_KIND, MarketKind.TRADE);
      dv.setUint8(
        OFF_SIDE,
        msg.side === 'buy' ? Side.BUY : msg.side === 'sell' ? Side.SELL : Side.NONE,
      );
      dv.setFloat64(OFF_A, msg.px, true);
      dv.setFloat64(OFF_B, msg.qty, true);
      dv.setFloat64(OFF_C, 0, true);
      dv.setFloat64(OFF_D, 0, true);
    } else {
      dv.setUint8(OFF_KIND, MarketKind.QUOTE);
      dv.setUint8(OFF_SIDE, Side.NONE);
      dv.setFloat64(OFF_A, msg.bid, true);
      dv.setFloat64(OFF_B, msg.bidQty, true);
      dv.setFloat64(OFF_C, msg.ask, true);
      dv.setFloat64(OFF_D, msg.askQty, true);
    }
    out.set(symBytes, TICK_BINARY_HEADER_BYTES);
    return out;
  }

  /** Decode `data` received on `subject` into `out` (fields other than symId and recv). */
  decode(subject: string, data: Uint8Array, out: MarketEvent): DecodeResult {
    const res = this.res;
    const rules = this.rules;
    rules.reset(res);
    if (!rules.size(data.byteLength, res)) return res;
    if (!rules.subject(subject, res)) return res;

    const total = data.byteLength;
    if (total < TICK_BINARY_HEADER_BYTES) {
      return rules.refuse(
        res,
        'malformed_binary',
        `record of ${total} bytes is shorter than the ${TICK_BINARY_HEADER_BYTES}-byte header`,
      );
    }
    const h = this.scratch;
    for (let i = 0; i < TICK_BINARY_HEADER_BYTES; i++) h[i] = data[i]!;
    const dv = this.view;
    const magic = dv.getUint8(OFF_MAGIC);
    if (magic !== TICK_BINARY_MAGIC_V1) {
      return rules.refuse(
        res,
        'malformed_binary',
        `magic/version byte 0x${magic.toString(16)} is not 0x${TICK_BINARY_MAGIC_V1.toString(16)}`,
      );
    }
    const n = dv.getUint8(OFF_SYMLEN);
    if (n === 0 || total !== TICK_BINARY_HEADER_BYTES + n) {
      return rules.refuse(
        res,
        'malformed_binary',
        `record of ${total} bytes does not match symbol length ${n} (expected ${TICK_BINARY_HEADER_BYTES + n})`,
      );
    }
    if (dv.getUint32(4, true) !== 0) {
      return rules.refuse(res, 'malformed_binary', 'reserved bytes 4..7 are not zero');
    }
    const kind = dv.getUint8(OFF_KIND);
    if (kind !== MarketKind.TRADE && kind !== MarketKind.QUOTE) {
      return rules.refuse(res, 'unknown_type', `kind byte ${kind} is not 1 (trade) or 2 (quote)`);
    }
    const side = dv.getUint8(OFF_SIDE);
    if (side > Side.SELL || (kind === MarketKind.QUOTE && side !== Side.NONE)) {
      return rules.refuse(
        res,
        'bad_side',
        `side byte ${side} is not 0 (none), 1 (buy) or 2 (sell)${kind === MarketKind.QUOTE ? ' / must be 0 on a quote' : ''}`,
      );
    }
    if (!this.symbolMatches(data, n, res)) return res;

    const ts = dv.getFloat64(OFF_TS, true);
    if (!rules.timestamp(ts, res)) return res;
    const seq = dv.getFloat64(OFF_SEQ, true);
    if (!rules.seq(seq, res)) return res;
    const a = dv.getFloat64(OFF_A, true);
    const b = dv.getFloat64(OFF_B, true);
    if (kind === MarketKind.TRADE) {
      if (!rules.positive('px', a, res) || !rules.positive('qty', b, res)) return res;
      out.kind = MarketKind.TRADE;
      out.px = a;
      out.qty = b;
      out.side = side as MarketEvent['side'];
      out.bid = out.bidQty = out.ask = out.askQty = 0;
    } else {
      const c = dv.getFloat64(OFF_C, true);
      const d = dv.getFloat64(OFF_D, true);
      if (
        !rules.positive('bid', a, res) ||
        !rules.nonNegative('bidQty', b, res) ||
        !rules.positive('ask', c, res) ||
        !rules.nonNegative('askQty', d, res)
      ) {
        return res;
      }
      out.kind = MarketKind.QUOTE;
      out.bid = a;
      out.bidQty = b;
      out.ask = c;
      out.askQty = d;
      out.px = out.qty = 0;
      out.side = Side.NONE;
    }
    out.ts = ts;
    out.seq = seq;
    return res;
  }

  /**
   * Compare the record's symbol bytes with the subject's symbol (an ASCII
   * token, already validated) without decoding them to a string.
   */
  private symbolMatches(data: Uint8Array, n: number, res: DecodeResult): boolean {
    const want = res.sym;
    let same = want.length === n;
    let ascii = true;
    for (let i = 0; i < n; i++) {
      const c = data[TICK_BINARY_HEADER_BYTES + i]!;
      const tokenChar =
        (c >= 0x61 && c <= 0x7a) ||
        (c >= 0x41 && c <= 0x5a) ||
        (c >= 0x30 && c <= 0x39) ||
        c === 0x5f ||
        c === 0x2d;
      if (!tokenChar) ascii = false;
      if (same && c !== want.charCodeAt(i)) same = false;
    }
    if (!ascii) {
      const got = this.text.decode(data.subarray(TICK_BINARY_HEADER_BYTES));
      return this.rules.fail(
        res,
        'bad_symbol',
        `symbol ${showValue(got)} is not a token [A-Za-z0-9_-]+`,
      );
    }
    if (!same) {
      const got = this.text.decode(data.subarray(TICK_BINARY_HEADER_BYTES));
      return this.rules.fail(
        res,
        'symbol_mismatch',
        `symbol ${showValue(got)} differs from subject symbol ${showValue(want)}`,
      );
    }
    return true;
  }
}
