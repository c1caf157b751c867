import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import type { QilinConfig } from '../config/config.js';
import type { Logger } from '../kernel/logger.js';
import { connectNats, drainNats } from '../adapters/nats/nats-connection.js';
import { exportLines, servicesUp } from '../ops/services/service-manager.js';
import { MarketSimulator } from '../ops/sim/market-simulator.js';
import { DemoView, percentiles } from './demo-view.js';
import { KernelApp } from './kernel-app.js';
import { runUntilSignal } from './run-until-signal.js';
import { serviceOptions, servicePorts } from './services-command.js';

/**
 * `qilin demo`: the whole live path on one machine. Local services up, the
 * kernel, a simulated market on NATS, and a WebSocket subscriber drawing the
 * signals as they arrive. Ends after --duration (or Ctrl-C) with a summary.
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
    .action(async (o: { duration: string; symbols: string; rate: string; services: boolean }) => {
      const { config: base, log } = context();
      if (o.services) {
        process.stderr.write('demo: starting local NATS (JetStream), Redis and ClickHouse…\n');
        await servicesUp(serviceOptions(base, log));
        process.stderr.write(`${exportLines(servicePorts(base))}\n`);
      }
      const demoKey = `demo-${randomBytes(6).toString('hex')}`;
      const config: QilinConfig = {
        ...base,
        apiKeys: base.apiKeys === '' ? `${demoKey}:read` : `${base.apiKeys},${demoKey}:read`,
      };
      const app = new KernelApp({ config, log });
      const sim = new MarketSimulator({ symbols: Number(o.symbols), rate: Number(o.rate) });
      const abort = new AbortController();
      let simNc: Awaited<ReturnType<typeof connectNats>> | undefined;
      let view: DemoView | undefined;
      try {
        await app.start();
        process.stderr.write(
          `demo: dashboard  http://127.0.0.1:${app.port}/?key=${demoKey}  (open it in a browser)\n` +
            `demo: kernel on ws://127.0.0.1:${app.port}/ws  metrics http://127.0.0.1:${app.port}/metrics\n` +
            `demo: API key for this run: ${demoKey}  (try: websocat -H 'Authorization: Bearer ${demoKey}' ws://127.0.0.1:${app.port}/ws)\n`,
        );
        view = new DemoView(`ws://127.0.0.1:${app.port}/ws`, demoKey);
        await view.start();
        simNc = await connectNats({ servers: config.natsUrl, name: 'qilin-demo-sim', log });
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
        if (view.stats.signals === 0) process.exitCode = 4;
      } finally {
        abort.abort();
        view?.close();
        if (simNc !== undefined) await drainNats(simNc);
        await app.close();
      }
    });
}
