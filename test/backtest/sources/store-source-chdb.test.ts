/**
 * StoreTickSource on the embedded chdb store (the same contract as on the
 * ClickHouse server), and the clear error when the store is held by another
 * process (a running kernel): a child process opening the directory this
 * test holds gets QLN_REPLAY_SOURCE_FAILED saying so.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ChdbStore } from '../../../adapters/chdb/chdb-store.js';
import { loadFixture, storeSourceContract } from './store-source-contract.js';

// chdb binds one data directory per process: this file uses one.
const stateDir = mkdtempSync(join(tmpdir(), 'qilin-chdb-src-'));
t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
const database = 'qilin_src';

void t.test('StoreTickSource on chdb', async (t) => {
  const store = new ChdbStore({ path: join(stateDir, 'chdb'), database });
  t.teardown(() => store.close());
  const rows = await loadFixture(store);
  await storeSourceContract(t, store, rows, `${database}.ticks`);

  await t.test('held by another process: a clear QLN_REPLAY_SOURCE_FAILED', async (t) => {
    // This process holds the store (as a kernel would); another opens it through the spec.
    const openSource = fileURLToPath(
      new URL('../../../backtest/sources/open-source.js', import.meta.url),
    );
    const script = `
      const { openTickSource } = await import(${JSON.stringify(openSource)});
      const config = { stateDir: ${JSON.stringify(stateDir)}, clickhouseDb: ${JSON.stringify(database)} };
      try {
        const s = await openTickSource('store', { config });
        console.log(JSON.stringify({ opened: true, total: s.total }));
        await s.close();
      } catch (e) {
        console.log(JSON.stringify({ code: e.code, message: e.message }));
      }`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    t.equal(code, 0, `the child exited normally ${err.slice(0, 500)}`);
    const line = out.trim().split('\n').at(-1) ?? '{}';
    const r = JSON.parse(line) as { code?: string; message?: string };
    t.equal(r.code, 'QLN_REPLAY_SOURCE_FAILED', line);
    t.match(
      r.message,
      new RegExp(
        `in use by another process \\(pid ${process.pid}: a running kernel\\?\\); stop it`,
      ),
      'names the holder: this process',
    );
  });
});
