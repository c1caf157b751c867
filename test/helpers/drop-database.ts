import { createClient } from '@clickhouse/client';

/** Drop a test's own ClickHouse database (tests create one per run). */
export async function dropDatabase(clickhouseUrl: string, database: string): Promise<void> {
  if (!/^qilin_[a-z0-9_]+$/.test(database)) throw new Error(`refusing to drop ${database}`);
  const ch = createClient({ url: clickhouseUrl });
  try {
    await ch.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  } finally {
    await ch.close();
  }
}
