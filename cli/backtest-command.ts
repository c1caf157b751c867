import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { QilinConfig } from '../config/config.js';
import { ErrorCodes, QilinError } from '../kernel/errors.js';
import type { Logger } from '../kernel/logger.js';

/** `--param k=v` (repeatable): a SymbolActor option; numbers and booleans parsed. */
export function parseParam(text: string, into: Record<string, unknown>): Record<string, unknown> {
  const eq = text.indexOf('=');
  if (eq <= 0) {
    throw new QilinError(
      ErrorCodes.CLI_USAGE,
      `invalid --param: ${JSON.stringify(text)} (allowed: key=value, e.g. threshold=0.3)`,
      { details: { option: '--param', value: text } },
    );
  }
  const key = text.slice(0, eq);
  const raw = text.slice(eq + 1);
  const num = Number(raw);
  into[key] =
    raw === 'true'
      ? true
      : raw === 'false'
        ? false
        : raw !== '' && Number.isFinite(num)
          ? num
          : raw;
  return into;
}

/**
 * `qilin backtest`: the kernel's actors, risk actor, a fill model and a
 * portfolio over a generated market, in one process on a simulated clock;
 * a report as a table, JSON and a self-contained HTML page
 * (backtest/README.md).
 */
export function registerBacktestCommand(
  program: Command,
  context: () => { config: QilinConfig; log: Logger },
): void {
  program
    .command('backtest')
    .description(
      'replay a generated market through the same actors, risk and strategy code that trades live; fills, PnL and a report (table, --json, --html)',
    )
    .option('--symbols <n>', 'symbols of the generated market', '8')
    .option('--messages <n>', 'market messages (trades and quotes), all symbols together', '200000')
    .option('--seed <n>', 'market seed: the same seed and options give the same report', '1')
    .option('--step-us <µs>', 'exchange time between two messages', '1000')
    .option('--strategy <name>', 'strategy name (signal ids, the report)', 'momentum')
    .option(
      '--param <k=v>',
      'an actor option (repeatable), e.g. threshold=0.3, minIntervalUs=50000 (config/README.md "actor")',
      (v: string, acc: Record<string, unknown>) => parseParam(v, acc),
      {},
    )
    .option('--fill <model>', 'fill model: next-tick or quote-touch', 'next-tick')
    .option('--latency-us <µs>', 'between a signal and the first tick that may fill it', '0')
    .option('--fee-bps <bps>', 'fee in basis points of the notional', '1')
    .option('--cash <amount>', 'initial cash', '1000000')
    .option('--sample-ms <ms>', 'equity sample interval (exchange time)', '1000')
    .option('--html <file>', 'write the report as one self-contained HTML page')
    .option('--json', 'print the report as JSON')
    .action(
      async (o: {
        symbols: string;
        messages: string;
        seed: string;
        stepUs: string;
        strategy: string;
        param: Record<string, unknown>;
        fill: string;
        latencyUs: string;
        feeBps: string;
        cash: string;
        sampleMs: string;
        html?: string;
        json?: boolean;
      }) => {
        const { config } = context();
        const num = (name: string, v: string, min: number, int = false): number => {
          const n = Number(v);
          if (!Number.isFinite(n) || n < min || (int && !Number.isInteger(n))) {
            throw new QilinError(
              ErrorCodes.CLI_USAGE,
              `invalid ${name}: ${JSON.stringify(v)} (allowed: ${int ? 'an integer' : 'a number'} ≥ ${min})`,
              { details: { option: name, value: v } },
            );
          }
          return n;
        };
        if (o.fill !== 'next-tick' && o.fill !== 'quote-touch') {
          throw new QilinError(
            ErrorCodes.CLI_USAGE,
            `invalid --fill: ${JSON.stringify(o.fill)} (allowed: next-tick, quote-touch)`,
            { details: { option: '--fill', value: o.fill } },
          );
        }
        const { runBacktest } = await import('../backtest/backtest-run.js');
        const { renderHtmlReport, renderTextReport } = await import('../backtest/report.js');
        const { default: cliProgress } = await import('cli-progress');
        const messages = num('--messages', o.messages, 1, true);
        const bar =
          process.stderr.isTTY === true && o.json !== true
            ? new cliProgress.SingleBar(
                {
                  stream: process.stderr,
                  format: ' {bar} {percentage}% | {value}/{total} messages | eta {eta_formatted}',
                  hideCursor: true,
                  clearOnComplete: true,
                },
                cliProgress.Presets.shades_classic,
              )
            : undefined;
        bar?.start(messages, 0);
        let r;
        try {
          r = runBacktest({
            symbols: num('--symbols', o.symbols, 1, true),
            messages,
            seed: num('--seed', o.seed, 0, true),
            stepUs: num('--step-us', o.stepUs, 1),
            strategy: o.strategy,
            account: 'backtest',
            actor: { ...config.actor, ...o.param },
            risk: config.risk,
            fill: {
              model: o.fill,
              latencyUs: num('--latency-us', o.latencyUs, 0),
              feeBps: num('--fee-bps', o.feeBps, 0),
            },
            initialCash: num('--cash', o.cash, 1),
            sampleIntervalUs: num('--sample-ms', o.sampleMs, 1) * 1000,
            codeVersion: process.env['npm_package_version'] ?? '0.1.0',
            onProgress: (done) => bar?.update(done),
          });
        } finally {
          bar?.stop();
        }
        if (o.html !== undefined) writeFileSync(o.html, renderHtmlReport(r.report));
        if (o.json === true) {
          process.stdout.write(`${JSON.stringify(r.report, null, 2)}\n`);
          return;
        }
        process.stdout.write(renderTextReport(r.report));
        process.stdout.write(
          `\n${r.ticks} ticks through the actors in ${(r.ms / 1000).toFixed(2)} s (${Math.round(r.ticksPerSec)} ticks/s); ` +
            `${r.signals} signals, ${r.approved} approved by risk, ${r.fills} fills` +
            (o.html === undefined ? '\n' : `; report: ${o.html}\n`),
        );
      },
    );
}
