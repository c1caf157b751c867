/**
 * A kernel as a child process (`node bin/qilin.js start …`) against the
 * test services, for tests that SIGKILL and restart it. Its QILIN_*
 * environment is only what is given here (the test's own exports are not
 * inherited), its output goes to `logFile`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { repoRoot, type ServiceUrls } from './services.js';
import { until } from './wait.js';

export interface KernelProcess {
  child: ChildProcess;
  exited: Promise<void>;
  httpPort: number;
}

export interface KernelProcessOptions {
  urls: ServiceUrls;
  /** ClickHouse database (also names the claim and snapshot prefixes). */
  db: string;
  /** Market filter, e.g. `md.<venue>.>`. */
  subject: string;
  stateDir: string;
  logFile: string;
  httpPort: number;
  /** Arguments after `start` (e.g. `--jetstream S:d --duration 0`). */
  args: string[];
  /** More QILIN_* settings. */
  env?: Record<string, string>;
}

export function startKernelProcess(o: KernelProcessOptions): KernelProcess {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('QILIN_') && k !== 'NODE_OPTIONS') env[k] = v;
  }
  Object.assign(env, {
    QILIN_NATS_URL: o.urls.natsUrl,
    ...(o.urls.natsAuthDir === undefined ? {} : { QILIN_NATS_AUTH_DIR: o.urls.natsAuthDir }),
    QILIN_REDIS_URL: o.urls.redisUrl,
    QILIN_CLICKHOUSE_URL: o.urls.clickhouseUrl,
    QILIN_CLICKHOUSE_DB: o.db,
    QILIN_MARKET_SUBJECT: o.subject,
    QILIN_WORKERS: '2',
    QILIN_STATE_DIR: o.stateDir,
    QILIN_LOG_LEVEL: 'warn',
    QILIN_HTTP_PORT: String(o.httpPort),
    // Partition claims under a prefix of its own (the shared Redis); a
    // restart keeps the port, hence the kernelId, and takes the claims over.
    QILIN_CLAIM_PREFIX: `qilin:test:${o.db}:partition:`,
    ...o.env,
  });
  const fd = openSync(o.logFile, 'a');
  const child = spawn(process.execPath, ['bin/qilin.js', 'start', ...o.args], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, exited, httpPort: o.httpPort };
}

/** Resolves once the kernel answers GET /health/ready with 200 (60 s deadline). */
export function kernelReady(k: KernelProcess): Promise<void> {
  return until(
    `the kernel on :${k.httpPort} ready (GET /health/ready 200)`,
    async () =>
      (await fetch(`http://127.0.0.1:${k.httpPort}/health/ready`).catch(() => undefined))
        ?.status === 200,
    60_000,
    100,
  );
}

/** The value of a metric (summed over its label sets) from the kernel's /metrics. */
export async function kernelMetric(k: KernelProcess, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${k.httpPort}/metrics`)).text();
  let sum = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      seen = true;
    }
  }
  if (!seen) throw new Error(`metric ${name} not exported by the kernel on :${k.httpPort}`);
  return sum;
}

/** SIGKILL (or `signal`) the kernel if it runs, and wait for it to exit. */
export async function stopKernelProcess(
  k: KernelProcess | undefined,
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<void> {
  if (k === undefined || k.child.exitCode !== null || k.child.signalCode !== null) return;
  k.child.kill(signal);
  await k.exited;
}
