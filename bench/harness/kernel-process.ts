import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';
import type { ChildProcesses, TrackedChild } from './child-processes.js';
import { MetricsSnapshot } from './prometheus-text.js';

/**
 * The subject under test, started exactly as a user starts it:
 * `node bin/qilin.js start --duration 0 --account bench-<pid>` from the repo
 * root, default configuration, with only the environment for ports, URLs,
 * keys and state. Every other QILIN_* variable of the bench's own
 * environment is removed (so the user's QILIN_WORKERS or QILIN_CONFIG cannot
 * turn it into a special configuration), and so is NODE_OPTIONS (a test
 * runner's loaders would instrument it). Ready when `GET /health/ready`
 * answers 200.
 */
export interface KernelProcessOptions {
  repoRoot: string;
  natsUrl: string;
  redisUrl: string;
  httpPort: number;
  /** Read key for the WebSocket (QILIN_API_KEYS=<key>:read). */
  apiKey: string;
  /** QILIN_STATE_DIR: the embedded chdb store lives here. */
  stateDir: string;
  /** `--account`: keeps the Redis kill-switch key apart from other users'. */
  account: string;
  /** Set for `--store clickhouse`: QILIN_CLICKHOUSE_URL and QILIN_CLICKHOUSE_DB. */
  clickhouse?: { url: string; database: string };
  /** stdout and stderr of the kernel go here. */
  logFile: string;
  deadlineMs: number;
  readyTimeoutMs: number;
  /** More QILIN_* settings (`--nodes 2`: partitions, fan-out, kernel id). */
  env?: Readonly<Record<string, string>>;
}

/** The environment of a bench child: the bench's own, minus QILIN_* and NODE_OPTIONS. */
export function childEnv(extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('QILIN_') || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** The Redis snapshot prefix of a bench kernel (unique per port and state dir). */
export function snapshotPrefixOf(httpPort: number, stateDir: string): string {
  return `qilin:bench:${httpPort}:${createHash('sha256').update(stateDir).digest('hex').slice(0, 12)}:snapshot:`;
}

/** A running kernel child process. */
export class KernelProcess {
  readonly child: TrackedChild;
  readonly port: number;
  readonly logFile: string;
  /** Seconds from spawn to /health/ready 200. */
  readonly readySeconds: number;

  private constructor(child: TrackedChild, port: number, logFile: string, readySeconds: number) {
    this.child = child;
    this.port = port;
    this.logFile = logFile;
    this.readySeconds = readySeconds;
  }

  get pid(): number {
    return this.child.pid;
  }

  /** The command line the bench uses (for the report). */
  static command(account: string): string[] {
    return ['bin/qilin.js', 'start', '--duration', '0', '--account', account];
  }

  /** Spawn the kernel and wait until it is ready. */
  static async start(children: ChildProcesses, o: KernelProcessOptions): Promise<KernelProcess> {
    const env: Record<string, string> = {
      QILIN_NATS_URL: o.natsUrl,
      QILIN_REDIS_URL: o.redisUrl,
      QILIN_HTTP_PORT: String(o.httpPort),
      QILIN_API_KEYS: `${o.apiKey}:read`,
      QILIN_STATE_DIR: o.stateDir,
      QILIN_LOG_LEVEL: 'warn',
      // Partition claims of its own: a developer's kernel on the same Redis
      // does not stop the bench (docs/operations.md "Several kernels").
      QILIN_CLAIM_PREFIX: `qilin:bench:${o.httpPort}:partition:`,
      // Snapshots of its own too: every bench kernel starts like a fresh
      // deployment, never warm from an earlier run (the keys are deleted at stop).
      QILIN_SNAPSHOT_PREFIX: snapshotPrefixOf(o.httpPort, o.stateDir),
    };
    if (o.clickhouse !== undefined) {
      env['QILIN_CLICKHOUSE_URL'] = o.clickhouse.url;
      env['QILIN_CLICKHOUSE_DB'] = o.clickhouse.database;
    }
    Object.assign(env, o.env);
    const fd = openSync(o.logFile, 'a');
    const t0 = Date.now();
    let child: TrackedChild;
    try {
      child = children.spawn(
        'kernel',
        process.execPath,
        KernelProcess.command(o.account),
        { cwd: o.repoRoot, env: childEnv(env), stdio: ['ignore', fd, fd] },
        o.deadlineMs,
      );
    } finally {
      closeSync(fd);
    }
    const url = `http://127.0.0.1:${o.httpPort}/health/ready`;
    const until = t0 + o.readyTimeoutMs;
    let last = 'no answer';
    for (;;) {
      if (child.exit !== undefined) {
        throw new QilinError(
          ErrorCodes.SERVICE_START_FAILED,
          `kernel exited (code ${child.exit.code}, signal ${child.exit.signal}) before it was ready; its log:\n${tail(o.logFile)}`,
        );
      }
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
        if (res.status === 200) break;
        last = `HTTP ${res.status} ${await res.text()}`;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      if (Date.now() > until) {
        throw new QilinError(
          ErrorCodes.BENCH_TIMEOUT,
          `kernel not ready within ${o.readyTimeoutMs / 1000} s (${url}: ${last}); its log:\n${tail(o.logFile)}`,
        );
      }
      await delay(100);
    }
    return new KernelProcess(child, o.httpPort, o.logFile, (Date.now() - t0) / 1000);
  }

  /** GET /metrics, parsed. Generous timeout: an overloaded kernel answers late, not never. */
  async scrape(timeoutMs = 30_000): Promise<MetricsSnapshot> {
    if (this.child.exit !== undefined) throw this.died();
    let res: Response;
    try {
      res = await fetch(`http://127.0.0.1:${this.port}/metrics`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      if (this.child.exit !== undefined) throw this.died();
      throw new QilinError(
        ErrorCodes.BENCH_TIMEOUT,
        `kernel /metrics did not answer within ${timeoutMs / 1000} s`,
        { cause: err },
      );
    }
    if (!res.ok) {
      throw new QilinError(ErrorCodes.BENCH_INTEGRITY, `kernel /metrics answered ${res.status}`);
    }
    return MetricsSnapshot.parse(await res.text());
  }

  /** The error for a kernel that exited under the bench. */
  died(): QilinError {
    const e = this.child.exit;
    return new QilinError(
      ErrorCodes.WORKER_DIED,
      `kernel (pid ${this.pid}) exited during the bench (code ${e?.code ?? '?'}, signal ${e?.signal ?? '?'}${e?.deadline === true ? ', killed at its deadline' : ''}); its log:\n${tail(this.logFile)}`,
    );
  }

  /** Warn/error lines the kernel logged (it runs at QILIN_LOG_LEVEL=warn). */
  logLines(): string[] {
    try {
      return readFileSync(this.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'));
    } catch {
      return [];
    }
  }
}

/** Last lines of a log file. */
export function tail(file: string, lines = 20): string {
  try {
    const text = readFileSync(file, 'utf8').trimEnd();
    return text === '' ? '(empty)' : text.split('\n').slice(-lines).join('\n');
  } catch {
    return `(cannot read ${file})`;
  }
}

/** A per-kernel log file name in `dir`. */
export function kernelLogFile(dir: string, label: string): string {
  return join(dir, `kernel-${label}.log`);
}
