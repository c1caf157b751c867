import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { writeNatsConfig } from '../../ops/services/nats-config.js';
import { freePort } from './test-kernel.js';
import { until } from './wait.js';

/** A nats-server of a test's own (the Debian binary), with the kernel's partition mapping. */
export interface PrivateNats {
  url: string;
  port: number;
  /** Stop it (SIGKILL when `crash`); resolves when it exited. */
  stop(crash?: boolean): Promise<void>;
  /** Start it again on the same port and store (after stop). */
  restart(): Promise<void>;
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
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    const c = spawn('/usr/sbin/nats-server', ['-c', path], { stdio: 'ignore' });
    child = c;
    await until(
      `nats-server on ${port}`,
      async () => {
        if (c.exitCode !== null) throw new Error(`nats-server exited with ${c.exitCode}`);
        try {
          await (await connect({ servers: url, reconnect: false, timeout: 500 })).close();
          return true;
        } catch {
          return false;
        }
      },
      15_000,
      50,
    );
  };
  const stop = async (crash = false): Promise<void> => {
    const c = child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(crash ? 'SIGKILL' : 'SIGTERM');
    await exited;
  };
  await launch();
  process.once('exit', () => {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return { url, port, stop, restart: launch };
}
