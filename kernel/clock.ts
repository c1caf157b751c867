import { performance } from 'node:perf_hooks';

/**
 * Microseconds since the Unix epoch, derived from the monotonic clock.
 *
 * `performance.timeOrigin` is fixed per thread at its start and
 * `performance.now()` is monotonic, so the sum never goes backwards within a
 * thread and is comparable across the threads of one process (both are based
 * on the same monotonic source). Every stage timestamp (`lat`) uses it.
 * Returns a double; no allocation.
 */
export function nowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

/** Milliseconds since the Unix epoch from the monotonic clock. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * An event's stage stamp (`lat.*`, `recv`): `nowUs()` rounded to whole µs.
 * Sub-µs digits mean nothing across threads, and a whole number is written
 * digit by digit by the output encoder (no `String()` of a double per stamp).
 */
export function stampUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}
