/**
 * Writes `{"topic":…,"data":…,"off":N}` from a `{"topic":…,"data":…}` frame
 * into one reused scratch buffer, allocating nothing per frame:
 *
 * ```
 *  frame    {"topic":"signal/X","data":{…}}␠␠        (trailing whitespace allowed)
 *  scratch  {"topic":"signal/X","data":{…},"off":123}
 *           └── frame copied whole ──────┘└ overwritten from its final '}' ┘
 * ```
 * `write()` returns a view of exactly the written bytes. Views are cached by
 * length (created the first time a length is seen, up to
 * {@link MAX_CACHED_VIEW} bytes), because uWS sends a whole typed-array view
 * and `subarray()` would allocate one per frame.
 */
const CLOSE_BRACE = 0x7d;
const OFF_KEY = Buffer.from(',"off":');
/** Longest decimal of an offset (Number.MAX_SAFE_INTEGER has 16 digits) plus the brace. */
const MAX_SUFFIX = OFF_KEY.length + 16 + 1;
/** Frames longer than this get a fresh view per write (rare: frames are ~0.5 KiB). */
export const MAX_CACHED_VIEW = 64 * 1024;

export class OffsetFrameWriter {
  private scratch = Buffer.allocUnsafe(4096);
  private views = new Map<number, Buffer>();

  /**
   * The frame with `,"off":<off>` before its final `}`; undefined when the
   * frame does not end with `}` (then it is sent as it is, without offset).
   * The view is valid until the next `write()`.
   */
  write(frame: Uint8Array, off: number): Buffer | undefined {
    let end = frame.length - 1;
    while (end >= 0 && frame[end]! <= 0x20) end--;
    if (end < 1 || frame[end] !== CLOSE_BRACE) return undefined;
    if (this.scratch.length < frame.length + MAX_SUFFIX) {
      this.scratch = Buffer.allocUnsafe(2 * (frame.length + MAX_SUFFIX));
      this.views = new Map();
    }
    const s = this.scratch;
    s.set(frame, 0);
    let at = end;
    s.set(OFF_KEY, at);
    at += OFF_KEY.length;
    let digits = 1;
    for (let v = off; v >= 10; v = Math.floor(v / 10)) digits++;
    let v = off;
    for (let i = at + digits - 1; i >= at; i--) {
      s[i] = 48 + (v % 10);
      v = Math.floor(v / 10);
    }
    at += digits;
    s[at++] = CLOSE_BRACE;
    return this.view(at);
  }

  private view(length: number): Buffer {
    if (length > MAX_CACHED_VIEW) return this.scratch.subarray(0, length);
    let v = this.views.get(length);
    if (v === undefined) {
      v = this.scratch.subarray(0, length);
      this.views.set(length, v);
    }
    return v;
  }
}
