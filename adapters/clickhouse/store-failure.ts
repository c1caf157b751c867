import { ErrorCodes, QilinError } from '../../kernel/errors.js';

/**
 * The QLN_STORE_FAILED error both store adapters (ClickHouse over HTTP, the
 * embedded chdb) raise: what failed, the engine's own message, the cause.
 */
export function storeFailed(
  store: 'clickhouse' | 'chdb',
  what: string,
  cause: unknown,
  details: Record<string, unknown> = {},
): QilinError {
  const msg = cause instanceof Error ? cause.message : String(cause);
  return new QilinError(ErrorCodes.STORE_FAILED, `${what}: ${msg}`, {
    cause,
    details: { ...details, store },
  });
}

/** First line of a statement, shortened, for error messages and logs. */
export function firstLine(sql: string): string {
  const line = sql.trim().split('\n', 1)[0] ?? '';
  return line.length > 120 ? `${line.slice(0, 117)}...` : line;
}
