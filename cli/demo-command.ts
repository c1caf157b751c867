import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { QilinConfig } from '../config/config.js';
import { ErrorCodes, QilinError } from '../kernel/errors.js';
import type { Logger } from '../kernel/logger.js';
import type { DemoView } from './demo-view.js';
import { serviceOptions, servicePorts } from './services-command.js';

/**
 * `qilin demo`: the whole live path on one machine. Local services up, the
 * kernel, a simulated market on NATS, and a WebSocket subscriber drawing the
 * signals as they arrive. Ends after --duration (or Ctrl-C) with a summary.
 * The kernel, NATS and the services are imported when the action runs
 * (cli/main.ts: start-up).
 */
export function registerDemoCommand(
  program: Command,
  context: () => { config: QilinConfig; log: Logger },
): void {
  program
    .command('demo')
    .description(
      'services up, simulated market, kernel, and a live view of signals arriving over the WebSocket',
    )
    .option('--duration <seconds>', 'run this long (0: until Ctrl-C)', '60')
    .option('--symbols <n>', 'simulated symbols', '8')
    .option('--rate <msgs/s>', 'simulated messages per second', '400')
    .option('--no-services', 'do not start the local services (use QILIN_* URLs as they are)')
    .option(
      '--no-model',
      `score with the built-in baseline instead of the demo's trained ONNX model (${DEMO_MODEL}, trained on a generated market and promoted on first use)`,
    )
    .option(
      '--nodes <n>',
      'kernel processes sharing the market: 1, or 2 (node B is a child `qilin start` on the next port taking half the partitions; failover and cluster fan-out on; needs the ClickHouse server)',
      '1',
    )
    .action(
      async (o: {
        duration: string;
        symbols: string;
        rate: string;
        services: boolean;
        model: boolean;
        nodes: string;
      }) => {
        const { config: given, log } = context();
        let base = given;
        const nodes = Number(o.nodes);
        if (nodes !== 1 && nodes !== 2) {
          throw new QilinError(
            ErrorCodes.CLI_USAGE,
            `invalid --nodes: ${o.nodes} (allowed: 1 or 2)`,
          );
        }
        const [
          { connectNats, drainNats },
          { natsSeedFileFor },
          { exportLines, natsAuthDir, servicesUp },
          { MarketSimulator },
          { DemoView, percentiles },
          { KernelApp },
          { runUntilSignal },
        ] = await Promise.all([
          import('../adapters/nats/nats-connection.js'),
          import('../adapters/nats/nats-credentials.js'),
          import('../ops/services/service-manager.js'),
          import('../ops/sim/market-simulator.js'),
          import('./demo-view.js'),
          import('./kernel-app.js'),
          import('./run-until-signal.js'),
        ]);
        if (o.services) {
          process.stderr.write('demo: starting local NATS (JetStream), Redis and ClickHouse…\n');
          const opts = serviceOptions(base, log);
          await servicesUp(opts);
          process.stderr.write(`${exportLines(servicePorts(base), natsAuthDir(opts.root))}\n`);
          // The services just started require credentials: the kernel and the
          // simulator take their roles' seeds unless the config names others.
          if (base.natsSeedFile === undefined && base.natsAuthDir === undefined) {
            base = { ...base, natsAuthDir: natsAuthDir(opts.root) };
          }
          // And the kernel talks to the services just started, on the ports
          // they were started on (QILIN_NATS_PORT, QILIN_REDIS_PORT), not to
          // whatever natsUrl / redisUrl default to.
          const ports = servicePorts(base);
          base = {
            ...base,
            natsUrl: `nats://127.0.0.1:${ports.nats}`,
            redisUrl: `redis://127.0.0.1:${ports.redis}`,
          };
        }
        if (o.model && base.model === undefined) {
          await ensureDemoModel(base);
          base = { ...base, model: DEMO_MODEL };
        }
        const demoKey = `demo-${randomBytes(6).toString('hex')}`;
        const config: QilinConfig = {
          ...base,
          apiKeys: base.apiKeys === '' ? `${demoKey}:read` : `${base.apiKeys},${demoKey}:read`,
        };
        const two = nodes === 2 ? twoNodes(config, o.services) : undefined;
        const app = new KernelApp({ config: two?.a ?? config, log });
        const sim = new MarketSimulator({ symbols: Number(o.symbols), rate: Number(o.rate) });
        const abort = new AbortController();
        let simNc: Awaited<ReturnType<typeof connectNats>> | undefined;
        let view: DemoView | undefined;
        let nodeB: NodeB | undefined;
        try {
          if (two !== undefined) {
            process.stderr.write(
              `demo: node B (partitions ${two.b.kernelPartitions}) on :${two.b.httpPort}, log ${two.b.logFile}\n`,
            );
            nodeB = startNodeB(two.b);
            await nodeB.ready;
          }
          await app.start();
          process.stderr.write(
            `demo: dashboard  http://127.0.0.1:${app.port}/?key=${demoKey}  (open it in a browser)\n` +
              `demo: kernel on ws://127.0.0.1:${app.port}/ws  metrics http://127.0.0.1:${app.port}/metrics\n` +
              `demo: API key for this run: ${demoKey}  (try: websocat -H 'Authorization: Bearer ${demoKey}' ws://127.0.0.1:${app.port}/ws)\n`,
          );
          view = new DemoView(`ws://127.0.0.1:${app.port}/ws`, demoKey);
          await view.start();
          simNc = await connectNats({
            servers: config.natsUrl,
            seedFile: natsSeedFileFor(config, 'publisher'),
            name: 'qilin-demo-sim',
            log,
          });
          const simRun = sim.run(simNc, undefined, abort.signal);
          await runUntilSignal(Number(o.duration) * 1000);
          abort.abort();
          const simStats = await simRun;
          const lat = percentiles(view.stats.latenciesUs);
          const status = view.statusLine();
          view.close();
          await app.store.flush();
          const ticks = await app.store.count('ticks').catch(() => -1);
          process.stdout.write(
            `\ndemo summary\n  ${status}\n  simulated messages: ${simStats.sent} (${simStats.bad} deliberately bad, ${simStats.gaps} seq gaps)\n` +
              `  signals received over WebSocket: ${view.stats.signals}; tick→ws latency p50 ${lat.p50} ms, p99 ${lat.p99} ms\n` +
              `  ticks stored: ${ticks}  (qilin sql "SELECT sym, count() FROM ticks FINAL GROUP BY sym")\n`,
          );
          if (nodeB !== undefined) {
            const symbols = async (port: number): Promise<number> =>
              metricSum(
                await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
                'qilin_symbols',
              );
            process.stdout.write(
              `  nodes: A (this process, partitions ${two!.a.kernelPartitions}) ${await symbols(app.port)} symbols; ` +
                `B (pid ${nodeB.child.pid}, partitions ${two!.b.kernelPartitions}) ${await symbols(two!.b.httpPort)} symbols; ` +
                `the view above is A's WebSocket: B's signals reach it through cluster fan-out\n`,
            );
          }
          if (view.stats.signals === 0) process.exitCode = 4;
        } finally {
          abort.abort();
          view?.close();
          if (simNc !== undefined) await drainNats(simNc);
          await app.close();
          await nodeB?.stop();
        }
      },
    );
}

interface NodeBConfig {
  env: NodeJS.ProcessEnv;
  kernelPartitions: string;
  httpPort: number;
  logFile: string;
}

/**
 * `--nodes 2`: this process is node A (the first half of the partitions),
 * node B a child `qilin start` with the second half, on the next port. Both
 * with failover and cluster fan-out, on the ClickHouse server (chdb is one
 * process's).
 */
function twoNodes(config: QilinConfig, services: boolean): { a: QilinConfig; b: NodeBConfig } {
  const clickhouseUrl =
    config.clickhouseUrl ??
    (services ? `http://127.0.0.1:${config.clickhouseHttpPort}` : undefined);
  if (clickhouseUrl === undefined) {
    throw new QilinError(
      ErrorCodes.CLI_USAGE,
      '--nodes 2 needs the ClickHouse server (QILIN_CLICKHOUSE_URL, or let the demo start the services): the embedded chdb store belongs to one process',
    );
  }
  const p = config.natsPartitions;
  if (p < 2) {
    throw new QilinError(ErrorCodes.CLI_USAGE, `--nodes 2 needs natsPartitions ≥ 2 (it is ${p})`);
  }
  if (config.httpPort === 0) {
    throw new QilinError(
      ErrorCodes.CLI_USAGE,
      '--nodes 2 needs a fixed httpPort (node B takes the next one)',
    );
  }
  const half = p >> 1;
  const tag = `demo-${process.pid}`;
  const httpPort = config.httpPort + 1;
  const b: NodeBConfig = {
    kernelPartitions: `${half}-${p - 1}`,
    httpPort,
    logFile: resolve(config.stateDir, 'logs', 'demo-node-b.log'),
    env: {
      ...process.env,
      QILIN_NATS_URL: config.natsUrl,
      ...(config.natsAuthDir === undefined ? {} : { QILIN_NATS_AUTH_DIR: config.natsAuthDir }),
      ...(config.natsSeedFile === undefined ? {} : { QILIN_NATS_SEED_FILE: config.natsSeedFile }),
      QILIN_REDIS_URL: config.redisUrl,
      QILIN_CLICKHOUSE_URL: clickhouseUrl,
      QILIN_CLICKHOUSE_DB: config.clickhouseDb,
      QILIN_STATE_DIR: config.stateDir,
      ...(config.model === undefined ? {} : { QILIN_MODEL: config.model }),
      QILIN_HTTP_PORT: String(httpPort),
      QILIN_KERNEL_PARTITIONS: `${half}-${p - 1}`,
      QILIN_KERNEL_ID: `${tag}-b`,
      QILIN_PARTITION_TAKEOVER: 'true',
      QILIN_CLUSTER_FANOUT: 'true',
      QILIN_API_KEYS: config.apiKeys,
      QILIN_LOG_LEVEL: 'warn',
    },
  };
  const a: QilinConfig = {
    ...config,
    clickhouseUrl,
    kernelPartitions: `0-${half - 1}`,
    kernelId: `${tag}-a`,
    partitionTakeover: true,
    clusterFanout: true,
  };
  return { a, b };
}

interface NodeB {
  child: ChildProcess;
  ready: Promise<void>;
  stop(): Promise<void>;
}

function startNodeB(b: NodeBConfig): NodeB {
  mkdirSync(dirname(b.logFile), { recursive: true });
  const fd = openSync(b.logFile, 'a');
  const child = spawn(
    process.execPath,
    [fileURLToPath(new URL('../../bin/qilin.js', import.meta.url)), 'start', '--duration', '0'],
    { env: b.env, stdio: ['ignore', fd, fd] },
  );
  closeSync(fd);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const ready = (async () => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const done = await Promise.race([exited.then(() => 'exit' as const), pause(200)]);
      if (done === 'exit' || child.exitCode !== null) {
        throw new QilinError(
          ErrorCodes.SERVICE_START_FAILED,
          `demo node B exited with ${child.exitCode}: see ${b.logFile}`,
        );
      }
      const ok = await fetch(`http://127.0.0.1:${b.httpPort}/health/ready`)
        .then((r) => r.status === 200)
        .catch(() => false);
      if (ok) return;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new QilinError(
          ErrorCodes.SERVICE_START_TIMEOUT,
          `demo node B not ready after 60 s: see ${b.logFile}`,
        );
      }
    }
  })();
  return {
    child,
    ready,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

function pause(ms: number): Promise<'pause'> {
  return new Promise((r) => setTimeout(() => r('pause'), ms));
}

/** Sum of a metric's samples in Prometheus text. */
function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return sum;
}

/** The model the demo trains and runs (`--no-model`: the built-in baseline). */
export const DEMO_MODEL = 'demo-lr';

/**
 * The demo's model in the configured registry: trained on a generated market
 * (logistic regression on the scale-free default features, checked against
 * onnxruntime within 1e-5), pushed and promoted — once; later demos reuse the
 * promoted version.
 */
async function ensureDemoModel(config: QilinConfig): Promise<void> {
  const { openModelRegistry } = await import('../adapters/onnx/open-registry.js');
  const registry = await openModelRegistry(config, undefined, { role: 'operator' });
  try {
    const state = await registry.state(DEMO_MODEL);
    if (state.promoted !== undefined) {
      process.stderr.write(`demo: model ${DEMO_MODEL}@${state.promoted} (promoted earlier)\n`);
      return;
    }
    process.stderr.write(`demo: training ${DEMO_MODEL}@1 on a generated market…\n`);
    const { trainModel } = await import('./model-train.js');
    const trained = await trainModel({
      name: DEMO_MODEL,
      version: '1',
      symbols: 8,
      messages: 60_000,
      horizon: 20,
      epochs: 150,
      learningRate: 0.5,
      l2: 0.001,
      seed: 1,
      outDir: resolve(config.stateDir, 'trained'),
      progress: process.stderr.isTTY === true,
    });
    const who = { by: 'qilin demo', reason: 'the demo model' };
    await registry.push(trained.manifest, trained.bytes, who);
    await registry.promote(DEMO_MODEL, '1', who);
    const auc = trained.manifest.metrics['validAuc'];
    process.stderr.write(
      `demo: ${DEMO_MODEL}@1 trained (validation AUC ${auc === undefined ? '?' : auc.toFixed(3)}), pushed and promoted\n`,
    );
  } finally {
    await registry.close();
  }
}
