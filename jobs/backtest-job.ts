import { JobParams } from './job-params.js';
import type { JobContext, JobResult, JobTypeSpec } from './job-types.js';

/** The params of a `backtest` job (backtest/backtest-run.ts BacktestRunOptions, as plain data). */
export interface BacktestJobParams {
  symbols: number;
  messages: number;
  seed: number;
  stepUs: number;
  strategy: string;
  /** SymbolActor options over the defaults (`--param actor='{"…":…}'`). */
  actor: Record<string, unknown>;
  risk: Record<string, unknown>;
  fill: 'next-tick' | 'quote-touch';
  latencyUs: number;
  feeBps: number;
  cash: number;
  sampleMs: number;
}

/**
 * `backtest`: runBacktest on a generated market, in the job's worker thread.
 * Progress is runBacktest's own (100 steps); a cancel or a timeout throws
 * from its onProgress, which stops the run between two steps.
 */
export const backtestJob: JobTypeSpec<BacktestJobParams> = {
  describe:
    'a backtest on a generated market (params as `qilin backtest`: symbols, messages, seed, …)',
  parse(raw) {
    const p = new JobParams('backtest', raw);
    const params: BacktestJobParams = {
      symbols: p.num('symbols', 8, 1, 10_000),
      messages: p.num('messages', 200_000, 1, 1_000_000_000),
      seed: p.num('seed', 1, 0, Number.MAX_SAFE_INTEGER),
      stepUs: p.num('stepUs', 1000, 1, 3_600_000_000, false),
      strategy: p.name('strategy', 'momentum'),
      actor: p.object('actor'),
      risk: p.object('risk'),
      fill: p.oneOf('fill', 'next-tick', ['next-tick', 'quote-touch'] as const),
      latencyUs: p.num('latencyUs', 0, 0, 3_600_000_000, false),
      feeBps: p.num('feeBps', 1, 0, 10_000, false),
      cash: p.num('cash', 1_000_000, 1, 1e15, false),
      sampleMs: p.num('sampleMs', 1000, 1, 86_400_000, false),
    };
    p.finish();
    return params;
  },
  async run(p: BacktestJobParams, ctx: JobContext): Promise<JobResult> {
    const { runBacktest } = await import('../backtest/backtest-run.js');
    ctx.checkAborted();
    const r = runBacktest({
      symbols: p.symbols,
      messages: p.messages,
      seed: p.seed,
      stepUs: p.stepUs,
      strategy: p.strategy,
      account: 'backtest',
      actor: p.actor,
      risk: p.risk,
      fill: { model: p.fill, latencyUs: p.latencyUs, feeBps: p.feeBps },
      initialCash: p.cash,
      sampleIntervalUs: p.sampleMs * 1000,
      codeVersion: process.env['npm_package_version'] ?? '0.1.0',
      onProgress: (done, total) => ctx.progress(done, total, 'messages'),
    });
    const t = r.report.total;
    return {
      summary: {
        ticks: r.ticks,
        signals: r.signals,
        approved: r.approved,
        fills: r.fills,
        pnl: t.pnl,
        totalReturn: t.totalReturn,
        maxDrawdown: t.maxDrawdown,
        ...(t.sharpe === null ? {} : { sharpe: t.sharpe }),
        ticksPerSec: Math.round(r.ticksPerSec),
      },
      result: r.report,
    };
  },
};
