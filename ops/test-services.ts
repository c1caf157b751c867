/**
 * The services `npm test` runs against (ops/test.sh): this checkout's own
 * services on the project ports; or, when a project port is held by another
 * process (typically another checkout's running stack), this checkout's own
 * test stack on free ports under `<state>/test-stack/`, so `npm test` runs
 * beside a running stack instead of failing on it. Prints `export QILIN_…`
 * lines for `eval`; progress and the reason for the fallback on stderr.
 *
 *   node dist/ops/test-services.js
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { servicePorts, serviceOptions } from '../cli/services-command.js';
import { loadConfig } from '../config/config.js';
import { findPortOwners } from './services/port-owner.js';
import {
  SERVICE_PORT_ENV,
  exportLines,
  natsAuthDir,
  servicesStatus,
  servicesUp,
  type ServicePorts,
  type ServicesOptions,
} from './services/service-manager.js';

const PORT_KEYS = ['nats', 'natsMonitor', 'redis', 'clickhouseHttp', 'clickhouseTcp'] as const;

function isPorts(x: unknown): x is ServicePorts {
  if (typeof x !== 'object' || x === null) return false;
  const o = x as Record<string, unknown>;
  return PORT_KEYS.every((k) => Number.isInteger(o[k]) && (o[k] as number) > 0);
}

async function readPorts(file: string): Promise<ServicePorts | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
    return isPorts(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Five consecutive free ports from a random base in 20000-40000: never the
 * project ports, and below the kernel's ephemeral range, so a stack kept
 * across runs does not meet a port some client was given meanwhile.
 */
export async function freeServicePorts(): Promise<ServicePorts> {
  for (;;) {
    const base = 20000 + Math.floor(Math.random() * 19990);
    const list = [base, base + 1, base + 2, base + 3, base + 4];
    if ((await findPortOwners(list)).size > 0) continue;
    const [nats, natsMonitor, redis, clickhouseHttp, clickhouseTcp] = list as [
      number,
      number,
      number,
      number,
      number,
    ];
    return { nats, natsMonitor, redis, clickhouseHttp, clickhouseTcp };
  }
}

/** Choose where the tests' services run; start them; return their ports. */
export async function testServices(
  base: ServicesOptions,
  say: (line: string) => void,
): Promise<{ ports: ServicePorts; root: string; own: boolean }> {
  const foreign = (await servicesStatus(base)).filter((s) => s.state === 'foreign');
  if (foreign.length === 0) {
    await servicesUp(base);
    return { ports: base.ports, root: base.root, own: false };
  }
  const root = join(base.root, 'test-stack');
  const file = join(root, 'ports.json');
  await mkdir(root, { recursive: true });
  // The ports of this checkout's previous test stack, unless something else took them since.
  let ports = await readPorts(file);
  if (
    ports === undefined ||
    (await servicesStatus({ ...base, root, ports })).some((s) => s.state === 'foreign')
  ) {
    ports = await freeServicePorts();
    await writeFile(file, `${JSON.stringify(ports)}\n`);
  }
  for (const f of foreign) say(`test services: ${f.name}: ${f.detail ?? 'port taken'}`);
  say(
    `test services: the project ports are taken by another process: this checkout's tests use ` +
      `their own NATS ${ports.nats}, Redis ${ports.redis}, ClickHouse ${ports.clickhouseHttp} ` +
      `(state ${root}; stop them with: QILIN_STATE_DIR=${root} ` +
      PORT_KEYS.map((k) => `${SERVICE_PORT_ENV[k]}=${ports[k]}`).join(' ') +
      ` npx qilin services down)`,
  );
  await servicesUp({ ...base, root, ports });
  return { ports, root, own: true };
}

async function main(): Promise<void> {
  const config = loadConfig({ env: process.env });
  const log = pino({ level: 'warn' }, pino.destination(2));
  const base = serviceOptions({ ...config, stateDir: resolve(config.stateDir) }, log);
  const { ports, root } = await testServices({ ...base, ports: servicePorts(config) }, (line) =>
    process.stderr.write(`${line}\n`),
  );
  // The per-role NATS seeds of the stack the tests use (the server requires them).
  process.stdout.write(`${exportLines(ports, natsAuthDir(root))}\n`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`test services: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
