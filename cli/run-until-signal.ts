/**
 * Resolves on SIGINT/SIGTERM or after `ms` (0 = only on a signal). Long-running
 * commands await it, then close what they started, so Ctrl-C always drains.
 */
export function runUntilSignal(
  ms: number,
  signal?: AbortSignal,
): Promise<'signal' | 'timeout' | 'aborted'> {
  return new Promise((resolve) => {
    const done = (why: 'signal' | 'timeout' | 'aborted'): void => {
      process.off('SIGINT', onSig);
      process.off('SIGTERM', onSig);
      if (timer !== undefined) clearTimeout(timer);
      resolve(why);
    };
    const onSig = (): void => done('signal');
    process.once('SIGINT', onSig);
    process.once('SIGTERM', onSig);
    const timer = ms > 0 ? setTimeout(() => done('timeout'), ms) : undefined;
    signal?.addEventListener('abort', () => done('aborted'), { once: true });
  });
}
