import type { Command } from 'commander';
import type { QilinConfig } from '../config/config.js';
import { ErrorCodes, QilinError, type ErrorCode } from '../kernel/errors.js';
import type { Logger } from '../kernel/logger.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { JobView } from '../jobs/job-types.js';

/** How often `--wait` reads the job, ms. */
const WAIT_POLL_MS = 250;

/**
 * `qilin jobs submit|list|show|cancel|pause|resume`: the job queue on the
 * configured Redis (jobs/README.md). Kernels started with jobsEnabled run the
 * jobs; this command only queues, reads and cancels them.
 */
export function registerJobsCommand(
  program: Command,
  context: () => { config: QilinConfig; log: Logger },
): void {
  const jobs = program
    .command('jobs')
    .description(
      'long work as jobs on the queue (backtest, sweep, train): submit, list, show, cancel, pause, resume',
    );

  /** Open the queue, run `fn`, close it. */
  const withQueue = async <T>(fn: (q: JobQueue) => Promise<T>): Promise<T> => {
    const { config } = context();
    const { JobQueue, jobsPrefixOf } = await import('../jobs/job-queue.js');
    const q = new JobQueue({ redisUrl: config.redisUrl, prefix: jobsPrefixOf(config) });
    try {
      return await fn(q);
    } finally {
      await q.close();
    }
  };
  const print = (v: unknown, json: boolean | undefined, text: () => string): void => {
    process.stdout.write(json === true ? `${JSON.stringify(v, null, 2)}\n` : text());
  };

  jobs
    .command('submit <type>')
    .description(
      'queue a job: type backtest, sweep or train; params as `qilin backtest` (sweep: sweep=k=a..b:step;…) / `model train`',
    )
    .option(
      '--param <k=v>',
      'a param of the job type (repeatable; objects as JSON text)',
      (text: string, into: Record<string, string>) => {
        const eq = text.indexOf('=');
        if (eq <= 0) {
          throw new QilinError(
            ErrorCodes.CLI_USAGE,
            `invalid --param: ${JSON.stringify(text)} (allowed: key=value, e.g. messages=20000)`,
            { details: { option: '--param', value: text } },
          );
        }
        into[text.slice(0, eq)] = text.slice(eq + 1);
        return into;
      },
      {} as Record<string, string>,
    )
    .option('--priority <n>', '1 (first) to 2097152; unset: before prioritised jobs')
    .option('--timeout <seconds>', 'wall time one attempt may run', '3600')
    .option('--attempts <n>', 'attempts in all (1: no retry)', '1')
    .option('--backoff-ms <ms>', 'delay before a retry, doubled each further retry', '1000')
    .option('--wait', 'wait for the job to finish (a progress bar on a terminal)')
    .option('--json', 'print JSON')
    .action(
      async (
        type: string,
        o: {
          param: Record<string, string>;
          priority?: string;
          timeout: string;
          attempts: string;
          backoffMs: string;
          wait?: boolean;
          json?: boolean;
        },
      ) => {
        const int = (name: string, v: string, scale = 1): number => {
          const n = Number(v) * scale;
          if (v.trim() === '' || !Number.isInteger(n)) {
            throw new QilinError(
              ErrorCodes.CLI_USAGE,
              `invalid ${name}: ${JSON.stringify(v)} (allowed: an integer)`,
              { details: { option: name, value: v } },
            );
          }
          return n;
        };
        await withQueue(async (q) => {
          let v = await q.submit({
            type,
            params: o.param,
            ...(o.priority === undefined ? {} : { priority: int('--priority', o.priority) }),
            timeoutMs: int('--timeout', o.timeout, 1000),
            attempts: int('--attempts', o.attempts),
            backoffMs: int('--backoff-ms', o.backoffMs),
          });
          if (o.wait === true) v = await waitFor(q, v, o.json !== true);
          print(v, o.json, () => `${formatJob(v)}\n`);
          if (o.wait === true && v.state !== 'completed') {
            throw new QilinError(
              (v.error?.code ?? ErrorCodes.INTERNAL) as ErrorCode,
              `job ${v.id} ${v.state}: ${v.error?.message ?? ''}`,
            );
          }
        });
      },
    );

  jobs
    .command('list')
    .description('the newest jobs of each state (active, waiting, delayed, completed, failed)')
    .option('--limit <n>', 'at most this many per state', '50')
    .option('--json', 'print JSON')
    .action(async (o: { limit: string; json?: boolean }) => {
      const limit = Number(o.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
        throw new QilinError(
          ErrorCodes.CLI_USAGE,
          `invalid --limit: ${JSON.stringify(o.limit)} (allowed: an integer from 1 to 10000)`,
        );
      }
      await withQueue(async (q) => {
        const list = await q.list(limit);
        const paused = await q.isPaused();
        print({ paused, jobs: list }, o.json, () =>
          [
            `queue ${paused ? 'paused' : 'running'}; ${list.length} job(s)`,
            ...list.map(formatJob),
            '',
          ].join('\n'),
        );
      });
    });

  jobs
    .command('show <id>')
    .description('one job: state, progress, attempts, summary or error')
    .option('--result', 'also the full result (the backtest report, …)')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { result?: boolean; json?: boolean }) => {
      await withQueue(async (q) => {
        const v = await q.show(id);
        const out = o.result === true ? { ...v, result: (await q.result(id))?.result ?? null } : v;
        print(out, o.json, () =>
          [
            formatJob(v),
            `  params   ${JSON.stringify(v.params)}`,
            `  attempts ${v.attempts.started} started, ${v.attempts.made} made of ${v.attempts.max}, stalled ${v.attempts.stalled}`,
            ...(v.summary === null ? [] : [`  summary  ${JSON.stringify(v.summary)}`]),
            ...(v.error === null ? [] : [`  error    ${v.error.code}: ${v.error.message}`]),
            ...(o.result === true ? [JSON.stringify((out as { result: unknown }).result)] : []),
            '',
          ].join('\n'),
        );
      });
    });

  jobs
    .command('cancel <id>')
    .description('cancel a job: a waiting one never runs, a running one stops at its next step')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      await withQueue(async (q) => {
        const v = await q.cancel(id);
        print(v, o.json, () => `cancel of job ${id} asked (was ${v.state})\n`);
      });
    });

  for (const op of ['pause', 'resume'] as const) {
    jobs
      .command(op)
      .description(
        op === 'pause'
          ? 'stop handing out jobs (running ones finish)'
          : 'hand out jobs again after a pause',
      )
      .option('--json', 'print JSON')
      .action(async (o: { json?: boolean }) => {
        await withQueue(async (q) => {
          await (op === 'pause' ? q.pause() : q.resume());
          print({ paused: op === 'pause' }, o.json, () => `job queue ${op}d\n`);
        });
      });
  }
}

/** Read the job until it finishes; a progress bar on a terminal (stderr). */
async function waitFor(q: JobQueue, first: JobView, bar: boolean): Promise<JobView> {
  const { default: cliProgress } = await import('cli-progress');
  const b =
    bar && process.stderr.isTTY === true
      ? new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: ` job ${first.id} {bar} {percentage}% | {state} {message}`,
            hideCursor: true,
            clearOnComplete: true,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  b?.start(100, 0, { state: first.state, message: '' });
  try {
    for (let v = first; ;) {
      if (v.state === 'completed' || v.state === 'failed' || v.state === 'cancelled') return v;
      const p = v.progress;
      b?.update(p.total > 0 ? Math.floor((100 * p.done) / p.total) : 0, {
        state: v.state,
        message: p.message,
      });
      await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
      v = await q.show(v.id);
    }
  } finally {
    b?.stop();
  }
}

/** One line: id, type, state, progress, priority, created. */
export function formatJob(v: JobView): string {
  const pct =
    v.progress.total > 0 ? `${Math.floor((100 * v.progress.done) / v.progress.total)}%` : '-';
  return [
    v.id.padEnd(6),
    v.type.padEnd(9),
    v.state.padEnd(10),
    pct.padStart(4),
    `prio ${v.priority || '-'}`,
    new Date(v.timestamps.created).toISOString(),
    v.error === null ? '' : v.error.code,
  ]
    .join('  ')
    .trimEnd();
}
