import type { ClickHouseClient } from '@clickhouse/client';

/**
 * The `n` of a `SELECT count() AS n …` (or any one-row query naming its
 * value `n`), or 0 while the database or table is not there yet, or
 * ClickHouse is down: for `until` loops that wait for rows to arrive.
 */
export async function countRows(ch: ClickHouseClient, sql: string): Promise<number> {
  try {
    const rows = await (
      await ch.query({ query: sql, format: 'JSONEachRow' })
    ).json<{ n: number | string }>();
    return Number(rows[0]?.n ?? 0);
  } catch {
    return 0;
  }
}
