/**
 * Resolve (defaults + validation) an options object once and remember the
 * result for that object. Actors are created per new symbol, all with the
 * same options object: resolving it for every actor part (a spread of ~30
 * keys and the checks, four times) was ~50 µs of each new symbol's first
 * tick. Options objects are treated as immutable once passed in.
 */
export function resolvedOnce<I extends object, O>(
  cache: WeakMap<I, O>,
  input: I,
  resolve: (input: I) => O,
): O {
  let o = cache.get(input);
  if (o === undefined) {
    o = resolve(input);
    cache.set(input, o);
  }
  return o;
}
