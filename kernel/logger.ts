import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The process logger: structured JSON on stderr (stdout belongs to CLI output
 * such as `export` lines and query results). Level from QILIN_LOG_LEVEL.
 */
export function createLogger(
  name: string,
  level = process.env['QILIN_LOG_LEVEL'] ?? 'info',
): Logger {
  return pino(
    { name, level, base: { pid: process.pid } },
    pino.destination({ dest: 2, sync: false }),
  );
}
