import { ErrorCodes, QilinError } from '../kernel/errors.js';
import { backtestJob, type BacktestJobParams } from './backtest-job.js';
import type { JobContext, JobResult, JobTypeSpec } from './job-types.js';

/** The params of a `sweep` job: a backtest's, plus the grid. */
export interface SweepJobParams extends BacktestJobParams {
  /** `k=a..b:step`, several separated by `;` (the grid is their product). */
  sweep: string[];
  rankBy: string;
  /** Worker threads of the sweep (0: the sweep's default). */
  workers: number;
}

const SWEEP_KEYS = ['sweep', 'rankBy', 'workers'] as const;

function invalid(name: string, value: unknown, allowed: string): never {
  throw new QilinError(
    ErrorCodes.JOB_INVALID,
    `job type sweep: invalid param ${name}: ${JSON.stringify(value)} (allowed: ${allowed})`,
    { details: { type: 'sweep', param: name, value, allowed } },
  );
}

/**
 * `sweep`: `qilin backtest --sweep` as a job — the grid's points run in
 * worker threads of the job's thread (backtest/sweep.ts), progress per point,
 * the ranked points as the result. A cancel or a timeout aborts the sweep
 * (its workers are terminated) within a quarter of a second.
 */
export const sweepJob: JobTypeSpec<SweepJobParams> = {
  describe:
    'a parameter grid of backtests (sweep="threshold=0.0005..0.003:0.0005;…", rankBy, workers, and the backtest params)',
  parse(raw) {
    const rest: Record<string, unknown> = { ...raw };
    for (const k of SWEEP_KEYS) delete rest[k];
    const base = backtestJob.parse(rest);
    // Text at submit ("k=a..b:step;…"), the parsed list when the worker parses it again.
    const text = raw['sweep'];
    const list =
      typeof text === 'string'
        ? text.split(';')
        : Array.isArray(text) && text.every((x) => typeof x === 'string')
          ? text
          : [];
    const sweep = list.map((s) => s.trim()).filter((s) => s !== '');
    if (sweep.length === 0) invalid('sweep', text, 'k=a..b:step, several separated by ;');
    const rankBy = raw['rankBy'] === undefined ? 'sharpe' : raw['rankBy'];
    if (typeof rankBy !== 'string') invalid('rankBy', rankBy, 'a metric name, e.g. sharpe');
    const w = raw['workers'] === undefined ? 0 : Number(raw['workers']);
    if (!Number.isInteger(w) || w < 0 || w > 64)
      invalid('workers', raw['workers'], 'an integer 0..64');
    return { ...base, sweep, rankBy, workers: w };
  },
  async run(p: SweepJobParams, ctx: JobContext): Promise<JobResult> {
    const { parseSweep, checkStrategy } = await import('../backtest/sweep-grid.js');
    const { runSweep } = await import('../backtest/sweep.js');
    const { parseRankBy } = await import('../backtest/sweep-report.js');
    const { pino } = await import('pino');
    let axes;
    let rankBy;
    let strategy;
    try {
      axes = p.sweep.map((s) => parseSweep(s));
      rankBy = parseRankBy(p.rankBy);
      strategy = checkStrategy(p.strategy);
    } catch (e) {
      invalid('sweep', p.sweep.join(';'), e instanceof Error ? e.message : String(e));
    }
    const abort = new AbortController();
    const poll = setInterval(() => {
      try {
        ctx.checkAborted();
      } catch (e) {
        abort.abort(e);
      }
    }, 250);
    try {
      const r = await runSweep({
        base: {
          symbols: p.symbols,
          messages: p.messages,
          seed: p.seed,
          stepUs: p.stepUs,
          account: 'backtest',
          risk: p.risk,
          fill: { model: p.fill, latencyUs: p.latencyUs, feeBps: p.feeBps },
          initialCash: p.cash,
          sampleIntervalUs: p.sampleMs * 1000,
          codeVersion: process.env['npm_package_version'] ?? '0.1.0',
        },
        strategy,
        actor: p.actor,
        params: {},
        axes,
        ...(p.workers > 0 ? { workers: p.workers } : {}),
        rankBy,
        lean: true,
        log: pino({ level: 'silent' }),
        onPoint: (done, total) => ctx.progress(done, total, 'grid points'),
        signal: abort.signal,
      });
      ctx.checkAborted();
      const ranked = r.points.map((pt) => ({
        index: pt.index,
        params: pt.params,
        pnl: pt.report.total.pnl,
        sharpe: pt.report.total.sharpe,
        maxDrawdown: pt.report.total.maxDrawdown,
        fills: pt.fills,
      }));
      return {
        summary: {
          sweep: r.id,
          points: r.points.length,
          rankBy: r.rankBy,
          best: JSON.stringify(ranked[0]?.params ?? {}),
          workers: r.workers,
        },
        result: { id: r.id, rankBy: r.rankBy, points: ranked },
      };
    } finally {
      clearInterval(poll);
    }
  },
};
