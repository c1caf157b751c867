import { spawn } from 'node:child_process';
import {
  access,
  constants,
  mkdir,
  open,
  readFile,
  realpath,
  rm,
  writeFile,
} from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../../kernel/logger.js';
import { ErrorCodes, QilinError, invalidArgument } from '../../kernel/errors.js';
import { installPackages } from './apt-install.js';
import { writeClickhouseConfig } from './clickhouse-config.js';
import { checkPartitions, writeNatsConfig } from './nats-config.js';
import { DEFAULT_NATS_ROLES, checkNatsRole, ensureNatsUsers, ensureSeed } from './nats-auth.js';
import { tailFile } from './log-tail.js';
import { findPortOwners, type PortOwner } from './port-owner.js';
import { probeHttp, probeRedis, type Probe } from './probes.js';
import { inspectProcess } from './process-info.js';

/**
 * Local NATS (JetStream), Redis and ClickHouse for development and tests,
 * started from the Debian packages as detached processes on the project's own
 * ports, with data, logs, pid files and generated configs under `root`.
 * Idempotent: what already runs from our pid files is left alone; a port held
 * by anyone else is an error naming the port and its owner, never a kill.
 */

export interface ServicePorts {
  nats: number;
  natsMonitor: number;
  redis: number;
  clickhouseHttp: number;
  clickhouseTcp: number;
}

export const DEFAULT_SERVICE_PORTS: ServicePorts = {
  nats: 14222,
  natsMonitor: 18222,
  redis: 16379,
  clickhouseHttp: 18123,
  clickhouseTcp: 19000,
};

/** Environment variable that overrides each port (named in port-conflict errors). */
export const SERVICE_PORT_ENV: Readonly<Record<keyof ServicePorts, string>> = {
  nats: 'QILIN_NATS_PORT',
  natsMonitor: 'QILIN_NATS_MONITOR_PORT',
  redis: 'QILIN_REDIS_PORT',
  clickhouseHttp: 'QILIN_CLICKHOUSE_HTTP_PORT',
  clickhouseTcp: 'QILIN_CLICKHOUSE_TCP_PORT',
};

export interface ServicesOptions {
  /** Project state folder, e.g. <repo>/.qilin: data/<svc>, logs/<svc>.log, run/<svc>.pid, conf/. */
  root: string;
  ports: ServicePorts;
  log: Logger;
  /** apt-get install missing Debian packages (default true). */
  install?: boolean;
  /** Start-up deadline per service (default 60000). */
  startTimeoutMs?: number;
  /**
   * Market partitions in the NATS subject mapping (ops/services/nats-config.ts;
   * the kernel's `natsPartitions`). Default 16.
   */
  natsPartitions?: number;
  /**
   * NATS users per role (ops/services/nats-auth.ts): seeds in
   * `<root>/nats-auth/<role>.nk`, created when missing, and an
   * `authorization` block in nats.conf. Default true; false: no NATS auth.
   */
  natsAuth?: boolean;
  /** Roles whose seeds are created when missing (default DEFAULT_NATS_ROLES); existing seed files stay users too. */
  natsRoles?: readonly string[];
}

/** Folder of the per-role NATS seed files of a service root. */
export function natsAuthDir(root: string): string {
  return join(root, 'nats-auth');
}

/** Default number of market partitions (config `natsPartitions`). */
export const DEFAULT_NATS_PARTITIONS = 16;

export type ServiceName = 'nats' | 'redis' | 'clickhouse';

export interface ServiceStatus {
  name: ServiceName;
  state: 'running' | 'stopped' | 'foreign';
  pid?: number;
  url: string;
  detail?: string;
}

const DEFAULT_START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;
const KILL_TIMEOUT_MS = 5_000;
const POLL_MS = 150;

interface ServicePaths {
  dataDir: string;
  logFile: string;
  pidFile: string;
  confDir: string;
}

interface ServiceSpec {
  name: ServiceName;
  /** Debian package providing `bin`. */
  pkg: string;
  bin: string;
  /** The ports this service listens on. */
  ports(p: ServicePorts): { key: keyof ServicePorts; port: number }[];
  url(p: ServicePorts): string;
  /** Write configs, return the command-line arguments and whether a config changed. */
  prepare(
    paths: ServicePaths,
    p: ServicePorts,
    opts: ServicesOptions,
  ): Promise<{ args: string[]; changed: boolean }>;
  /** One readiness check. */
  probe(p: ServicePorts): Promise<Probe>;
}

const SERVICES: readonly ServiceSpec[] = [
  {
    name: 'nats',
    pkg: 'nats-server',
    bin: '/usr/sbin/nats-server',
    ports: (p) => [
      { key: 'nats', port: p.nats },
      { key: 'natsMonitor', port: p.natsMonitor },
    ],
    url: (p) => `nats://127.0.0.1:${p.nats}`,
    async prepare(paths, p, opts) {
      // A config file (not flags): the partition mapping can only be set there,
      // and a file can be reloaded (SIGHUP) when it changes.
      const users =
        opts.natsAuth === false
          ? []
          : await ensureNatsUsers(natsAuthDir(opts.root), opts.natsRoles ?? DEFAULT_NATS_ROLES);
      const { path, changed } = await writeNatsConfig({
        confDir: paths.confDir,
        storeDir: paths.dataDir,
        port: p.nats,
        monitorPort: p.natsMonitor,
        partitions: opts.natsPartitions ?? DEFAULT_NATS_PARTITIONS,
        logFile: paths.logFile,
        pidFile: paths.pidFile,
        users,
      });
      return { args: ['-c', path], changed };
    },
    async probe(p) {
      const health = await probeHttp(`http://127.0.0.1:${p.natsMonitor}/healthz`);
      if (health.ok || !health.detail.includes(' 404 ')) return health;
      return probeHttp(`http://127.0.0.1:${p.natsMonitor}/varz`); // server without /healthz
    },
  },
  {
    name: 'redis',
    pkg: 'redis-server',
    bin: '/usr/bin/redis-server',
    ports: (p) => [{ key: 'redis', port: p.redis }],
    url: (p) => `redis://127.0.0.1:${p.redis}`,
    prepare: (paths, p) =>
      Promise.resolve({ changed: false, args: [
        '--port', String(p.redis),
        '--bind', '127.0.0.1',
        '--dir', paths.dataDir,
        '--daemonize', 'no',
        '--logfile', paths.logFile,
        '--pidfile', paths.pidFile,
        '--save', '',
        '--appendonly', 'no',
      ] }), // prettier-ignore
    probe: (p) => probeRedis(p.redis),
  },
  {
    name: 'clickhouse',
    pkg: 'clickhouse-server',
    bin: '/usr/sbin/clickhouse-server',
    ports: (p) => [
      { key: 'clickhouseHttp', port: p.clickhouseHttp },
      { key: 'clickhouseTcp', port: p.clickhouseTcp },
    ],
    url: (p) => `http://127.0.0.1:${p.clickhouseHttp}`,
    async prepare(paths, p) {
      const configFile = await writeClickhouseConfig({
        confDir: paths.confDir,
        dataDir: paths.dataDir,
        logFile: paths.logFile,
        httpPort: p.clickhouseHttp,
        tcpPort: p.clickhouseTcp,
      });
      return { args: [`--config-file=${configFile}`], changed: false };
    },
    async probe(p) {
      const base = `http://127.0.0.1:${p.clickhouseHttp}`;
      const ping = await probeHttp(`${base}/ping`, (body) => body.trim() === 'Ok.');
      if (!ping.ok) return ping;
      return probeHttp(`${base}/?query=${encodeURIComponent('SELECT 1')}`, (b) => b.trim() === '1');
    },
  },
];

function pathsOf(root: string, name: ServiceName): ServicePaths {
  return {
    dataDir: join(root, 'data', name),
    logFile: join(root, 'logs', `${name}.log`),
    pidFile: join(root, 'run', `${name}.pid`),
    confDir: join(root, 'conf', name),
  };
}

/** A word for a POSIX shell: as is when plain, otherwise single-quoted. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * `export QILIN_NATS_URL=nats://127.0.0.1:14222` etc., one per line, for
 * `eval`; with `authDir`, also `export QILIN_NATS_AUTH_DIR=…` (the folder of
 * the per-role seed files, never a seed).
 */
export function exportLines(ports: ServicePorts, authDir?: string): string {
  return [
    `export QILIN_NATS_URL=nats://127.0.0.1:${ports.nats}`,
    `export QILIN_REDIS_URL=redis://127.0.0.1:${ports.redis}`,
    `export QILIN_CLICKHOUSE_URL=http://127.0.0.1:${ports.clickhouseHttp}`,
    ...(authDir === undefined ? [] : [`export QILIN_NATS_AUTH_DIR=${shellWord(authDir)}`]),
  ].join('\n');
}

async function readPidFile(pidFile: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** True when `pid` is alive and runs `bin` (guards against pid reuse). */
async function runsBinary(pid: number, bin: string): Promise<boolean> {
  const info = await inspectProcess(pid);
  if (info === undefined) return false;
  if (info.exe !== undefined) {
    const want = await realpath(bin).catch(() => bin);
    return info.exe === want || info.exe === bin;
  }
  return info.command === basename(bin).slice(0, 15);
}

interface Observed {
  spec: ServiceSpec;
  paths: ServicePaths;
  /** Live pid from our pid file, running our binary. */
  pid?: number;
  /** Pid file present but its process is gone (or is something else now). */
  stalePid?: number;
}

async function observe(spec: ServiceSpec, root: string): Promise<Observed> {
  const paths = pathsOf(root, spec.name);
  const pid = await readPidFile(paths.pidFile);
  if (pid === undefined) return { spec, paths };
  if (await runsBinary(pid, spec.bin)) return { spec, paths, pid };
  return { spec, paths, stalePid: pid };
}

function describeOwner(owner: PortOwner): string {
  if (owner.pid === undefined) return 'an unknown process';
  return `pid ${owner.pid}${owner.command === undefined ? '' : ` (${owner.command})`}`;
}

/** Ports of `spec` that someone other than `ourPid` listens on. */
async function foreignPorts(
  spec: ServiceSpec,
  ports: ServicePorts,
  ourPid: number | undefined,
): Promise<{ key: keyof ServicePorts; owner: PortOwner }[]> {
  const wanted = spec.ports(ports);
  const owners = await findPortOwners(wanted.map((w) => w.port));
  const out: { key: keyof ServicePorts; owner: PortOwner }[] = [];
  for (const { key, port } of wanted) {
    const owner = owners.get(port);
    if (owner !== undefined && (owner.pid === undefined || owner.pid !== ourPid))
      out.push({ key, owner });
  }
  return out;
}

async function binaryMissing(bin: string): Promise<boolean> {
  try {
    await access(bin, constants.X_OK);
    return false;
  } catch {
    return true;
  }
}

async function ensureInstalled(
  specs: readonly ServiceSpec[],
  opts: ServicesOptions,
): Promise<void> {
  const missingSpecs = async () => {
    const out: ServiceSpec[] = [];
    for (const s of specs) if (await binaryMissing(s.bin)) out.push(s);
    return out;
  };
  const missing = await missingSpecs();
  if (missing.length === 0) return;
  const packages = missing.map((s) => s.pkg);
  if (opts.install === false) {
    throw new QilinError(
      ErrorCodes.SERVICE_INSTALL,
      `missing ${missing.map((s) => s.bin).join(', ')} and install is disabled; run: apt-get install -y ${packages.join(' ')}`,
      { details: { packages } },
    );
  }
  await installPackages(packages, opts.log, async () => (await missingSpecs()).map((s) => s.bin));
}

async function waitReady(
  spec: ServiceSpec,
  paths: ServicePaths,
  ports: ServicePorts,
  pid: number,
  timeoutMs: number,
  exited: () => string | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const port = spec.ports(ports)[0]?.port;
  for (;;) {
    const probe = await spec.probe(ports);
    if (probe.ok) return;
    const gone = exited() ?? ((await inspectProcess(pid)) === undefined ? 'exited' : undefined);
    if (gone !== undefined || Date.now() >= deadline) {
      const why =
        gone !== undefined
          ? `${spec.name} (pid ${pid}) ${gone} before answering on port ${port}`
          : `${spec.name} (pid ${pid}) did not answer on port ${port} within ${timeoutMs} ms`;
      const tail = await tailFile(paths.logFile, 20);
      throw new QilinError(
        gone !== undefined ? ErrorCodes.SERVICE_START_FAILED : ErrorCodes.SERVICE_START_TIMEOUT,
        `${why} (last probe: ${probe.detail}); last lines of ${paths.logFile}:\n${tail}`,
        { details: { service: spec.name, port, pid, probe: probe.detail, logFile: paths.logFile } },
      );
    }
    await delay(POLL_MS);
  }
}

async function start(obs: Observed, opts: ServicesOptions, timeoutMs: number): Promise<number> {
  const { spec, paths } = obs;
  await mkdir(paths.dataDir, { recursive: true });
  const { args } = await spec.prepare(paths, opts.ports, opts);
  const logHandle = await open(paths.logFile, 'a');
  let exitInfo: string | undefined;
  let pid: number | undefined;
  try {
    const child = spawn(spec.bin, args, {
      detached: true,
      stdio: ['ignore', logHandle.fd, logHandle.fd],
      cwd: paths.dataDir,
    });
    child.on('error', (err) => {
      exitInfo = `failed to start (${err.message})`;
    });
    child.on('exit', (code, signal) => {
      exitInfo = signal === null ? `exited with code ${code}` : `was killed by ${signal}`;
    });
    child.unref();
    pid = child.pid;
  } finally {
    await logHandle.close();
  }
  if (pid === undefined) {
    await delay(0); // let the 'error' event land
    throw new QilinError(
      ErrorCodes.SERVICE_START_TIMEOUT,
      `${spec.name} ${exitInfo ?? 'failed to start'}: ${spec.bin}`,
      { details: { service: spec.name, bin: spec.bin } },
    );
  }
  await writeFile(paths.pidFile, `${pid}\n`);
  opts.log.info({ service: spec.name, pid, args }, 'spawned');
  try {
    await waitReady(spec, paths, opts.ports, pid, timeoutMs, () => exitInfo);
  } catch (err) {
    // do not leave a half-started service behind: the next `up` starts afresh
    await stopPid(spec.name, pid, opts.log);
    await rm(paths.pidFile, { force: true });
    throw err;
  }
  opts.log.info({ service: spec.name, port: spec.ports(opts.ports)[0]?.port, pid }, 'started');
  return pid;
}

/** Every port an integer 1-65535, no two the same. */
function validatePorts(ports: ServicePorts): void {
  const seen = new Map<number, string>();
  for (const [key, port] of Object.entries(ports) as [keyof ServicePorts, number][]) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      invalidArgument(`ports.${key}`, port, 'a TCP port from 1 to 65535');
    }
    const other = seen.get(port);
    if (other !== undefined)
      invalidArgument(`ports.${key}`, port, `a port other than ports.${other}`);
    seen.set(port, key);
  }
}

async function prepareRoot(root: string): Promise<void> {
  for (const sub of ['data', 'logs', 'run', 'conf'])
    await mkdir(join(root, sub), { recursive: true });
}

/**
 * Install what is missing, then start NATS, Redis and ClickHouse in parallel
 * and wait until each answers. Services already running from our pid files
 * are left alone. Throws SERVICE_PORT_IN_USE (before starting anything) when
 * another process holds one of the ports, SERVICE_INSTALL when apt fails,
 * SERVICE_START_TIMEOUT when a service does not answer in time.
 */
export async function servicesUp(opts: ServicesOptions): Promise<ServiceStatus[]> {
  const { log, ports } = opts;
  const timeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  validatePorts(ports);
  checkPartitions(opts.natsPartitions ?? DEFAULT_NATS_PARTITIONS);
  await prepareRoot(opts.root);
  const observed = await Promise.all(SERVICES.map((s) => observe(s, opts.root)));

  for (const obs of observed) {
    if (obs.stalePid === undefined) continue;
    log.info({ service: obs.spec.name, pid: obs.stalePid }, 'removing stale pid file');
    await rm(obs.paths.pidFile, { force: true });
  }

  const toStart = observed.filter((o) => o.pid === undefined);
  const conflicts: string[] = [];
  const conflictDetails: Record<string, unknown>[] = [];
  for (const obs of toStart) {
    for (const { key, owner } of await foreignPorts(obs.spec, ports, undefined)) {
      conflicts.push(
        `port ${owner.port} (${obs.spec.name}) is in use by ${describeOwner(owner)}; stop it or set ${SERVICE_PORT_ENV[key]} to a free port`,
      );
      conflictDetails.push({
        service: obs.spec.name,
        port: owner.port,
        pid: owner.pid,
        command: owner.command,
      });
    }
  }
  if (conflicts.length > 0) {
    throw new QilinError(ErrorCodes.SERVICE_PORT_IN_USE, conflicts.join('; '), {
      details: { conflicts: conflictDetails },
    });
  }

  await ensureInstalled(
    toStart.map((o) => o.spec),
    opts,
  );

  const results = await Promise.allSettled(
    observed.map(async (obs): Promise<ServiceStatus> => {
      const url = obs.spec.url(ports);
      if (obs.pid !== undefined && obs.spec.name === 'nats') {
        // A server started before the config changed (partitions, or an older
        // release without the mapping) must not keep running without it.
        const { changed } = await obs.spec.prepare(obs.paths, ports, opts);
        if (changed) {
          log.warn({ service: 'nats', pid: obs.pid }, 'config changed; restarting nats-server');
          await stopPid(obs.spec.name, obs.pid, log);
          await rm(obs.paths.pidFile, { force: true });
          const pid = await start({ spec: obs.spec, paths: obs.paths }, opts, timeoutMs);
          return {
            name: obs.spec.name,
            state: 'running',
            pid,
            url,
            detail: 'restarted (config changed)',
          };
        }
      }
      if (obs.pid !== undefined) {
        await waitReady(obs.spec, obs.paths, ports, obs.pid, timeoutMs, () => undefined);
        log.info({ service: obs.spec.name, pid: obs.pid }, 'already running');
        return {
          name: obs.spec.name,
          state: 'running',
          pid: obs.pid,
          url,
          detail: 'already running',
        };
      }
      const pid = await start(obs, opts, timeoutMs);
      return { name: obs.spec.name, state: 'running', pid, url, detail: 'started' };
    }),
  );
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  for (const f of failed.slice(1))
    log.error({ err: f.reason as unknown }, 'service failed to start');
  if (failed[0] !== undefined) throw failed[0].reason;
  return results.map((r) => (r as PromiseFulfilledResult<ServiceStatus>).value);
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while ((await inspectProcess(pid)) !== undefined) {
    if (Date.now() >= deadline) return false;
    await delay(POLL_MS / 3);
  }
  return true;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** SIGTERM `pid`, wait until it is gone, SIGKILL after the deadline. */
async function stopPid(service: ServiceName, pid: number, log: Logger): Promise<void> {
  signal(pid, 'SIGTERM');
  if (!(await waitGone(pid, STOP_TIMEOUT_MS))) {
    log.warn({ service, pid, timeoutMs: STOP_TIMEOUT_MS }, 'did not stop; SIGKILL');
    signal(pid, 'SIGKILL');
    await waitGone(pid, KILL_TIMEOUT_MS);
  }
  log.info({ service, pid }, 'stopped');
}

/**
 * Regenerate nats.conf (the users of `<root>/nats-auth`) and, when it
 * changed and our nats-server runs, make it reload the file (SIGHUP: users
 * and permissions change without dropping connections).
 */
export async function reloadNats(
  opts: ServicesOptions,
): Promise<{ changed: boolean; reloaded: boolean; pid?: number }> {
  const spec = SERVICES.find((s) => s.name === 'nats')!;
  const paths = pathsOf(opts.root, 'nats');
  await prepareRoot(opts.root);
  const { changed } = await spec.prepare(paths, opts.ports, opts);
  const obs = await observe(spec, opts.root);
  if (!changed || obs.pid === undefined) return { changed, reloaded: false };
  signal(obs.pid, 'SIGHUP');
  opts.log.info({ service: 'nats', pid: obs.pid }, 'config changed; reload (SIGHUP)');
  return { changed, reloaded: true, pid: obs.pid };
}

/**
 * `qilin services nats-user add`: create `<root>/nats-auth/<role>.nk` when
 * missing, regenerate nats.conf and reload a running server. Returns the
 * seed file's path (the seed is never printed).
 */
export async function addNatsUser(
  opts: ServicesOptions,
  role: string,
): Promise<{ seedFile: string; created: boolean; reloaded: boolean }> {
  checkNatsRole(role);
  if (opts.natsAuth === false) {
    invalidArgument('natsAuth', false, 'true (NATS users need the authorization block)');
  }
  const dir = natsAuthDir(opts.root);
  const created = await ensureSeed(dir, role);
  const { reloaded } = await reloadNats(opts);
  return { seedFile: join(dir, `${role}.nk`), created, reloaded };
}

/** Stop the services started from our pid files (SIGTERM, then SIGKILL after a deadline). */
export async function servicesDown(opts: ServicesOptions): Promise<ServiceStatus[]> {
  const { log } = opts;
  await Promise.all(
    SERVICES.map(async (spec) => {
      const obs = await observe(spec, opts.root);
      if (obs.pid !== undefined) await stopPid(spec.name, obs.pid, log);
      if (obs.pid !== undefined || obs.stalePid !== undefined)
        await rm(obs.paths.pidFile, { force: true });
    }),
  );
  return servicesStatus(opts);
}

/** What runs where: running (ours, with pid), stopped, or foreign (a port held by another process). */
export async function servicesStatus(opts: ServicesOptions): Promise<ServiceStatus[]> {
  const { ports } = opts;
  return Promise.all(
    SERVICES.map(async (spec): Promise<ServiceStatus> => {
      const obs = await observe(spec, opts.root);
      const url = spec.url(ports);
      if (obs.pid !== undefined) {
        const probe = await spec.probe(ports);
        const detail = probe.ok ? 'answers' : `not answering (${probe.detail})`;
        return { name: spec.name, state: 'running', pid: obs.pid, url, detail };
      }
      const foreign = await foreignPorts(spec, ports, undefined);
      const first = foreign[0];
      if (first !== undefined) {
        const detail = foreign
          .map(({ owner }) => `port ${owner.port} held by ${describeOwner(owner)}`)
          .join('; ');
        const status: ServiceStatus = { name: spec.name, state: 'foreign', url, detail };
        if (first.owner.pid !== undefined) status.pid = first.owner.pid;
        return status;
      }
      const detail =
        obs.stalePid === undefined ? undefined : `stale pid file (pid ${obs.stalePid} is gone)`;
      return detail === undefined
        ? { name: spec.name, state: 'stopped', url }
        : { name: spec.name, state: 'stopped', url, detail };
    }),
  );
}
