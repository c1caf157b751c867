import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ClickHouseStore } from '../../adapters/clickhouse/clickhouse-store.js';
import { loadConfig } from '../../config/config.js';
import {
  kernelStoreStatus,
  parseStoreMetrics,
  spillFolderStatus,
  storeStatus,
  ttlSupported,
  type StoreStatus,
} from '../../cli/store-status.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { ensureServices, repoRoot } from '../helpers/services.js';
import { T0, trade } from '../adapters/clickhouse/store-contract.js';
import { MIGRATIONS } from '../../adapters/clickhouse/schema.js';

void t.test('ttlSupported: ClickHouse 19.6 and later', (t) => {
  t.equal(ttlSupported('18.16.1'), false);
  t.equal(ttlSupported('19.5.4.22'), false);
  t.equal(ttlSupported('19.6.1'), true);
  t.equal(ttlSupported('20.1.2'), true);
  t.equal(ttlSupported('26.7.2.1'), true, 'chdb 26');
  t.end();
});

void t.test('spillFolderStatus: files and bytes waiting, rejected/ and its newest file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qilin-status-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.match(spillFolderStatus(join(dir, 'none')), { exists: false, files: 0, bytes: 0 });
  writeFileSync(join(dir, '1-0.ndjson'), 'x'.repeat(100));
  writeFileSync(join(dir, '2-1.ndjson'), 'y'.repeat(50));
  writeFileSync(join(dir, '3-2.ndjson.tmp'), 'z'.repeat(7));
  mkdirSync(join(dir, 'rejected'));
  writeFileSync(join(dir, 'rejected', 'old.ndjson'), 'a'.repeat(10));
  writeFileSync(join(dir, 'rejected', 'new.ndjson'), 'b'.repeat(20));
  utimesSync(join(dir, 'rejected', 'old.ndjson'), 1_000_000, 1_000_000);
  const s = spillFolderStatus(dir);
  t.match(s, {
    dir,
    exists: true,
    files: 2,
    bytes: 150,
    rejected: { files: 2, bytes: 30, newest: { name: 'new.ndjson' } },
  });
  t.end();
});

const METRICS = `# HELP qilin_store_up 1 when the store answers
# TYPE qilin_store_up gauge
qilin_store_up 0
qilin_store_lag_seconds 2.5
qilin_store_spilled_rows 1234
qilin_store_up_other 7
`;

void t.test('parseStoreMetrics reads the three store gauges', (t) => {
  t.same(parseStoreMetrics(METRICS), { storeUp: false, lagSeconds: 2.5, spilledRows: 1234 });
  t.same(parseStoreMetrics(''), {}, 'none: nothing claimed');
  t.end();
});

void t.test('kernelStoreStatus: a kernel answering /metrics, and none', async (t) => {
  const srv = createServer((req, res) => {
    res.writeHead(req.url === '/metrics' ? 200 : 404).end(METRICS);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  const url = `http://127.0.0.1:${port}/metrics`;
  t.same(await kernelStoreStatus(url), {
    url,
    reachable: true,
    storeUp: false,
    lagSeconds: 2.5,
    spilledRows: 1234,
  });
  await new Promise<void>((r) => srv.close(() => r()));
  t.match(await kernelStoreStatus(url), { url, reachable: false, error: 'ECONNREFUSED' });
});

void t.test('storeStatus and `qilin store status` on the local ClickHouse', async (t) => {
  const { clickhouseUrl } = await ensureServices();
  const database = `qilin_status_${randomBytes(4).toString('hex')}`;
  const stateDir = mkdtempSync(join(tmpdir(), 'qilin-status-'));
  const store = new ClickHouseStore({ url: clickhouseUrl, database });
  t.teardown(async () => {
    await store.close();
    await dropDatabase(clickhouseUrl, database);
    rmSync(stateDir, { recursive: true, force: true });
  });
  // A free port for the kernel's /metrics: none answers there.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const httpPort = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    QILIN_CLICKHOUSE_URL: clickhouseUrl,
    QILIN_CLICKHOUSE_DB: database,
    QILIN_STATE_DIR: stateDir,
    QILIN_HTTP_PORT: String(httpPort),
    QILIN_LOG_LEVEL: 'warn',
  };
  delete env['QILIN_CONFIG'];
  const config = loadConfig({ env });

  const before = await storeStatus(config);
  t.match(before, {
    kind: 'clickhouse',
    location: clickhouseUrl,
    database,
    storeError: null,
    migrationVersion: null,
    migrationLatest: MIGRATIONS.at(-1)!.version,
    tables: [],
  });

  await store.migrate();
  await store.insert({
    ticks: [trade(1, T0, 100), trade(2, T0 + 1_000_000, 101), trade(3, T0 + 2_000_000, 102)],
    predictions: [],
    signals: [],
    quality: [],
    metrics: [],
    audit: [],
  });
  mkdirSync(join(stateDir, 'spill', 'store', 'rejected'), { recursive: true });
  writeFileSync(join(stateDir, 'spill', 'store', '1-0.ndjson'), '{"table":"ticks","rows":[]}\n');
  writeFileSync(join(stateDir, 'spill', 'store', 'rejected', '0-0.ndjson'), 'bad\n');

  const r = spawnSync(process.execPath, ['bin/qilin.js', 'store', 'status', '--json'], {
    cwd: repoRoot,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  t.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as StoreStatus;
  t.match(s.serverVersion, /^\d+\.\d+/);
  t.equal(s.migrationVersion, MIGRATIONS.at(-1)!.version);
  const rows = new Map(s.tables.map((x) => [x.name, x.rows]));
  t.equal(rows.get('ticks'), 3, 'three ticks');
  t.equal(rows.get('schema_migrations'), MIGRATIONS.length);
  t.equal(rows.get('bars_1m_agg'), 1, 'one partial bar row (one insert, one minute)');
  t.equal(s.ttl.supported, ttlSupported(s.serverVersion!));
  t.same(s.ttl.applied, [], 'no TTL configured');
  t.match(s.spill, { files: 1, bytes: 28, rejected: { files: 1, bytes: 4 } });
  t.match(s.kernel, { reachable: false, error: 'ECONNREFUSED' });
  t.match(s.lastError, /rejected\/0-0\.ndjson/);

  const text = spawnSync(process.execPath, ['bin/qilin.js', 'store', 'status'], {
    cwd: repoRoot,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  t.equal(text.status, 0, text.stderr);
  const latest = MIGRATIONS.at(-1)!.version;
  t.match(text.stdout, new RegExp(`schema +migration ${latest} \\(this build: ${latest}\\)`));
  t.match(text.stdout, /ticks +ReplacingMergeTree +3 rows/);
  t.match(text.stdout, /1 files, 0\.00 MB waiting for replay; rejected\/ 1 files/);
  t.match(text.stdout, /no kernel answers/);

  const help = spawnSync(process.execPath, ['bin/qilin.js', 'store', 'status', '--help'], {
    cwd: repoRoot,
    env,
    encoding: 'utf8',
  });
  t.equal(help.status, 0);
  t.match(help.stdout, /--json/);
  t.match(help.stdout, /ClickHouse 19\.6\+/);
});
