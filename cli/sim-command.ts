import type { Command } from 'commander';
import type { QilinConfig } from '../config/config.js';
import type { Logger } from '../kernel/logger.js';

/**
 * `qilin sim`: publish a synthetic market to NATS. NATS and the simulator are
 * imported when the action runs (cli/main.ts: start-up).
 */
export function registerSimCommand(
  program: Command,
  context: () => { config: QilinConfig; log: Logger },
): void {
  program
    .command('sim')
    .description(
      'publish a synthetic random-walk market (trend and mean-reversion regimes, quotes, bad ticks, gaps) on md.<venue>.<symbol>',
    )
    .option('--symbols <n|list>', 'how many symbols, or a comma-separated list', '8')
    .option('--rate <msgs/s>', 'messages per second, all symbols together', '400')
    .option('--duration <seconds>', 'stop after this long (0: until Ctrl-C)', '0')
    .option('--venue <token>', 'venue token of the subjects', 'sim')
    .option('--seed <n>', 'PRNG seed (same seed, same market)', '1')
    .option('--bad-rate <fraction>', 'fraction of deliberately malformed messages', '0.002')
    .option('--gap-rate <fraction>', 'fraction of messages followed by a seq gap', '0.001')
    .option('--binary', 'publish the compact binary encoding instead of JSON')
    .action(
      async (o: {
        symbols: string;
        rate: string;
        duration: string;
        venue: string;
        seed: string;
        badRate: string;
        gapRate: string;
        binary?: boolean;
      }) => {
        const { config, log } = context();
        const [{ connectNats, drainNats }, { natsSeedFileFor }, { MarketSimulator }] =
          await Promise.all([
            import('../adapters/nats/nats-connection.js'),
            import('../adapters/nats/nats-credentials.js'),
            import('../ops/sim/market-simulator.js'),
          ]);
        const symbols = /^\d+$/.test(o.symbols) ? Number(o.symbols) : o.symbols.split(',');
        const sim = new MarketSimulator({
          symbols,
          venue: o.venue,
          rate: Number(o.rate),
          durationMs: Number(o.duration) * 1000 || undefined,
          seed: Number(o.seed),
          badRate: Number(o.badRate),
          gapRate: Number(o.gapRate),
          binary: o.binary === true,
        });
        const nc = await connectNats({
          servers: config.natsUrl,
          seedFile: natsSeedFileFor(config, 'publisher'),
          name: 'qilin-sim',
          log,
        });
        const abort = new AbortController();
        const stop = (): void => abort.abort();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        try {
          const stats = await sim.run(
            nc,
            (s) =>
              process.stderr.write(
                `\rsim: ${s.sent} sent (${s.lastSecondRate}/s), ${s.bad} bad, ${s.gaps} gaps   `,
              ),
            abort.signal,
          );
          process.stderr.write(`\nsim: done: ${JSON.stringify(stats)}\n`);
        } finally {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          await drainNats(nc);
        }
      },
    );
}
