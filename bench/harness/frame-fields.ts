/**
 * Allocation-free field extraction from the bytes the bench receives, so the
 * receiving side costs the same for every subject and never parses JSON:
 *
 * ```
 *  kernel prediction  {"topic":"prediction/B0042","data":{…,"src":{"seq":1042,"ts":…},…}}
 *                                 └ symbol index ┘               └ src.seq ┘
 *  relay / ws frame   {"topic":"prediction/B0042","data":{"type":"trade",…,"seq":1042}}
 *                                                          last "seq": ┘
 *  raw NATS tick      {"type":"trade","sym":"B0042",…,"seq":1042}
 * ```
 * Bench symbols are `B` + 4 digits (`B0000` … `B9999`): the index is the
 * number after the `B`. Every function returns -1 when the field is not
 * there.
 */

const ZERO = 48;

/** Frames on `prediction/B<digits>` start with this. */
export const PREDICTION_TOPIC_PREFIX = Buffer.from('{"topic":"prediction/B');
const SRC = Buffer.from('"src":{');
const SEQ = Buffer.from('"seq":');
/** Raw ticks from the bench's generator start `{"type":"trade","sym":"B`. */
const TICK_SYM_PREFIX = Buffer.from('{"type":"trade","sym":"B');

/** Unsigned decimal integer at `at` (no allocation); -1 when no digit is there. */
export function readUint(buf: Uint8Array, at: number): number {
  let v = 0;
  let i = at;
  for (; i < buf.length; i++) {
    const c = buf[i]! - ZERO;
    if (c < 0 || c > 9) break;
    v = v * 10 + c;
  }
  return i === at ? -1 : v;
}

function startsWith(buf: Buffer, prefix: Buffer): boolean {
  return (
    buf.length >= prefix.length && buf.compare(prefix, 0, prefix.length, 0, prefix.length) === 0
  );
}

/** Symbol index of a `prediction/B<digits>` frame; -1 for any other topic. */
export function predictionSymbol(frame: Buffer): number {
  return startsWith(frame, PREDICTION_TOPIC_PREFIX)
    ? readUint(frame, PREDICTION_TOPIC_PREFIX.length)
    : -1;
}

/**
 * `src.seq` of a kernel frame: the `"seq":` inside the first `"src":{`
 * object (PROTOCOL: `src: {"seq":…,"ts":…}`, seq normally first).
 */
export function srcSeq(frame: Buffer): number {
  const src = frame.indexOf(SRC);
  if (src < 0) return -1;
  const at = frame.indexOf(SEQ, src + SRC.length);
  // Within the src object: its fields are seq and ts, a few dozen bytes.
  if (at < 0 || at > src + SRC.length + 48) return -1;
  return readUint(frame, at + SEQ.length);
}

/** The tick's `seq` in a relayed frame or a raw tick body: the last `"seq":` of the bytes. */
export function lastSeq(bytes: Buffer): number {
  const at = bytes.lastIndexOf(SEQ);
  return at < 0 ? -1 : readUint(bytes, at + SEQ.length);
}

/** Symbol index of a raw tick body written by the bench generator; -1 otherwise. */
export function tickSymbol(body: Buffer): number {
  return startsWith(body, TICK_SYM_PREFIX) ? readUint(body, TICK_SYM_PREFIX.length) : -1;
}

/** The bench's name of symbol `i`: `B0042`. */
export function symbolName(i: number): string {
  return `B${String(i).padStart(4, '0')}`;
}
