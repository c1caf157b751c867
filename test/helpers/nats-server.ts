import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { writeNatsConfig } from '../../ops/services/nats-config.js';
import { freePort } from './test-kernel.js';
import { startPrivateProcess, type PrivateProcess } from './private-process.js';

/** A nats-server of a test's own (the Debian binary), with the kernel's partition mapping. */
export interface PrivateNats extends PrivateProcess {
  url: string;
  port: number;
}

/**
 * Start a private nats-server (JetStream on, partitions 16, plus `extra`
 * config lines such as `max_pending: 65536`) on free ports; resolves once a
 * client can connect. For tests that break the bus without touching the
 * shared one.
 */
export async function startPrivateNats(extra: string[] = []): Promise<PrivateNats> {
  const dir = mkdtempSync(join(tmpdir(), 'qilin-nats-'));
  const port = await freePort();
  const { path } = await writeNatsConfig({
    confDir: dir,
    storeDir: join(dir, 'js'),
    port,
    monitorPort: await freePort(),
    partitions: 16,
    logFile: join(dir, 'nats.log'),
    extra,
  });
  const url = `nats://127.0.0.1:${port}`;
  const proc = await startPrivateProcess(
    '/usr/sbin/nats-server',
    ['-c', path],
    async () => {
      try {
        await (await connect({ servers: url, reconnect: false, timeout: 500 })).close();
        return true;
      } catch {
        return false;
      }
    },
    () => rmSync(dir, { recursive: true, force: true }),
  );
  return { url, port, ...proc };
}
