/**
 * The job queue and worker against the real Redis (issue 10 items 6-7):
 * submit → progress (monotonic) → completed with the report; bad params
 * refused at submit; cancel mid-run (the run really stops); a timeout
 * retried with backoff then failed; priorities with concurrency 1; pause.
 * Queue and worker in this process, under a key prefix of their own.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ErrorCodes } from '../../kernel/errors.js';
import { createLogger } from '../../kernel/logger.js';
import { JobQueue } from '../../jobs/job-queue.js';
import type { JobEvent } from '../../jobs/job-types.js';
import { JobWorker } from '../../jobs/job-worker.js';
import { ensureServices } from '../helpers/services.js';
import { until } from '../helpers/wait.js';

const log = createLogger('jobs-test', process.env['QILIN_LOG_LEVEL'] ?? 'warn');
const prefix = `qilin:test:jobs:${randomBytes(3).toString('hex')}`;
const { redisUrl } = await ensureServices();

const queue = new JobQueue({ redisUrl, prefix });
const events: JobEvent[] = [];
const worker = new JobWorker({
  redisUrl,
  prefix,
  concurrency: 1,
  lockMs: 5000,
  log,
  onEvent: (ev) => events.push(ev),
});
t.teardown(async () => {
  await worker.close();
  await queue.queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
});
await worker.start();

const of = (id: string): JobEvent[] => events.filter((e) => e.id === id);
const last = (id: string): JobEvent | undefined => of(id).at(-1);
const finished = (id: string): boolean =>
  ['completed', 'failed', 'cancelled'].includes(last(id)?.event ?? '');

void t.test('bad type, param or option: QLN_JOB_INVALID at submit, nothing queued', async (t) => {
  const before = await queue.queue.count();
  const bad = [
    { type: 'nope' },
    { type: 'backtest', params: { messages: 'many' } },
    { type: 'backtest', params: { messages: 0 } },
    { type: 'backtest', params: { mesages: 1000 } },
    { type: 'backtest', params: { fill: 'magic' } },
    { type: 'train', params: { epochs: -1 } },
    { type: 'backtest', priority: 0 },
    { type: 'backtest', attempts: 1.5 },
    { type: 'backtest', timeoutMs: 10 },
  ];
  for (const s of bad) {
    await t.rejects(queue.submit(s), { code: ErrorCodes.JOB_INVALID }, JSON.stringify(s));
  }
  await t.rejects(
    queue.submit({ type: 'backtest', params: { mesages: 1000 } }),
    /unknown param "mesages"/,
    'the message names the param',
  );
  t.equal(await queue.queue.count(), before, 'nothing was queued');
  await t.rejects(queue.show('424242'), { code: ErrorCodes.JOB_NOT_FOUND });
});

void t.test('a backtest job: progress monotonic, completed with the report', async (t) => {
  const v = await queue.submit({
    type: 'backtest',
    params: { messages: 20_000, symbols: 4, seed: 7 },
  });
  t.equal(v.type, 'backtest');
  t.equal(v.params['messages'], 20_000, 'params stored as parsed');
  t.equal(v.params['strategy'], 'momentum', 'defaults filled in');
  await until('the backtest job finished', () => finished(v.id), 20_000);
  const evs = of(v.id);
  t.equal(evs[0]?.event, 'active', 'first event: active');
  t.equal(evs.at(-1)?.event, 'completed', 'last event: completed');
  const progress = evs.filter((e) => e.event === 'progress').map((e) => e.progress.done);
  t.ok(progress.length >= 50, `≥ 50 progress events (${progress.length})`);
  t.ok(
    progress.every((d, i) => i === 0 || d > progress[i - 1]!),
    'progress strictly increasing',
  );
  t.equal(progress.at(-1), 20_000, 'progress ends at the total');
  const shown = await queue.show(v.id);
  t.equal(shown.state, 'completed');
  t.equal(shown.attempts.started, 1);
  t.equal(shown.summary?.['ticks'], 20_000, 'summary: every message a tick');
  t.ok(shown.timestamps.finished! >= shown.timestamps.started!, 'timestamps');
  const r = await queue.result(v.id);
  const report = r?.result as { version: number; total: { pnl: number }; meta: { id: string } };
  t.equal(report.version, 1, 'the report');
  t.equal(report.meta.id, 'bt-momentum-7');
  t.equal(r?.summary['pnl'], report.total.pnl, 'summary pnl = report pnl');
});

void t.test('a train job: progress through both stages, the model written', async (t) => {
  const outDir = mkdtempSync(join(tmpdir(), 'qilin-train-job-'));
  t.teardown(() => rmSync(outDir, { recursive: true, force: true }));
  const v = await queue.submit({
    type: 'train',
    params: { messages: 20_000, epochs: 5, name: 'jobtest', outDir },
  });
  await until('the train job finished', () => finished(v.id), 30_000);
  t.equal(last(v.id)?.event, 'completed', `completed (${JSON.stringify(last(v.id)?.error)})`);
  const stages = new Set(
    of(v.id)
      .filter((e) => e.event === 'progress')
      .map((e) => (e.progress.done < 100 ? 'data' : 'epochs')),
  );
  t.same([...stages].sort(), ['data', 'epochs'], 'progress from the data set and the epochs');
  t.equal(last(v.id)?.summary?.['model'], 'jobtest@1');
  t.ok(existsSync(join(outDir, 'jobtest-1.onnx')), 'the model file written');
});

void t.test(
  'a sweep job: the grid in worker threads, progress per point, ranked points',
  async (t) => {
    await t.rejects(
      queue.submit({ type: 'sweep', params: { messages: 1000 } }),
      { code: ErrorCodes.JOB_INVALID, message: /invalid param sweep/ },
      'a sweep without a grid is refused at submit',
    );
    const v = await queue.submit({
      type: 'sweep',
      params: { messages: 6000, symbols: 2, sweep: 'threshold=0.001..0.002:0.001', workers: 1 },
    });
    await until('the sweep job finished', () => finished(v.id), 60_000);
    t.equal(last(v.id)?.event, 'completed', `completed (${JSON.stringify(last(v.id)?.error)})`);
    const steps = of(v.id).filter((e) => e.event === 'progress');
    t.same(
      steps.map((e) => `${e.progress.done}/${e.progress.total}`),
      ['1/2', '2/2'],
      'one progress event per grid point',
    );
    const r = await queue.result(v.id);
    const res = r?.result as { points: Array<{ params: Record<string, number> }> };
    t.equal(res.points.length, 2, 'both points ranked');
    t.same(
      res.points.map((p) => p.params['threshold']).sort(),
      [0.001, 0.002],
      'each point its own threshold',
    );
  },
);

void t.test('cancel mid-run: cancelled, not retried, and the run really stopped', async (t) => {
  const v = await queue.submit({
    type: 'backtest',
    params: { messages: 1_000_000, symbols: 4 },
    attempts: 3,
  });
  await until(
    'the long job past 2 %',
    () => of(v.id).some((e) => e.event === 'progress' && e.progress.done >= 20_000),
    20_000,
  );
  t.equal((await queue.cancel(v.id)).state, 'active', 'still active when asked');
  await until('the job cancelled', () => finished(v.id), 10_000);
  const end = last(v.id)!;
  t.equal(end.event, 'cancelled');
  t.equal(end.error?.code, ErrorCodes.JOB_CANCELLED);
  const shown = await queue.show(v.id);
  t.equal(shown.state, 'cancelled');
  t.equal(shown.error?.code, ErrorCodes.JOB_CANCELLED);
  t.equal(shown.attempts.made, 1, 'not retried (3 attempts allowed)');
  t.ok(shown.progress.done < 1_000_000, `stopped before the end (${shown.progress.done})`);
  // The only slot (concurrency 1) is free again: the cancelled run's thread is gone.
  const n = of(v.id).length;
  const next = await queue.submit({ type: 'backtest', params: { messages: 2000 } });
  await until('the next job completed', () => finished(next.id), 20_000);
  t.equal(last(next.id)?.event, 'completed', 'the next job ran');
  t.equal(of(v.id).length, n, 'no event of the cancelled job after it was cancelled');
  await t.rejects(queue.cancel(v.id), { code: ErrorCodes.JOB_INVALID }, 'cancel twice: refused');
});

void t.test('a job cancelled before it runs never runs', async (t) => {
  await queue.pause();
  t.equal(await queue.isPaused(), true);
  const v = await queue.submit({ type: 'backtest', params: { messages: 2000 } });
  t.equal((await queue.cancel(v.id)).state, 'cancelled', 'shown cancelled at once');
  await queue.resume();
  await until('the job failed as cancelled', () => finished(v.id), 10_000);
  t.equal(last(v.id)?.event, 'cancelled');
  t.notOk(
    of(v.id).some((e) => e.event === 'active'),
    'never active',
  );
});

void t.test(
  'timeout: stopped, retried with backoff, then failed with QLN_JOB_TIMEOUT',
  async (t) => {
    const v = await queue.submit({
      type: 'backtest',
      params: { messages: 1_000_000, symbols: 4 },
      timeoutMs: 1000,
      attempts: 2,
      backoffMs: 100,
    });
    await until('the job failed', () => finished(v.id), 20_000);
    const evs = of(v.id);
    t.equal(evs.filter((e) => e.event === 'active').length, 2, 'two attempts ran');
    t.equal(evs.filter((e) => e.event === 'retrying').length, 1, 'one retry');
    t.equal(evs.at(-1)?.event, 'failed');
    t.equal(evs.at(-1)?.error?.code, ErrorCodes.JOB_TIMEOUT);
    const shown = await queue.show(v.id);
    t.equal(shown.state, 'failed');
    t.equal(shown.attempts.made, 2);
  },
);

void t.test(
  'priorities: with concurrency 1 the higher priority (lower number) runs first',
  async (t) => {
    await queue.pause();
    const ids: Record<string, string> = {};
    for (const p of [2, 1]) {
      ids[p] = (
        await queue.submit({ type: 'backtest', params: { messages: 500 }, priority: p })
      ).id;
    }
    const listed = await queue.list();
    t.equal(listed.filter((j) => Object.values(ids).includes(j.id)).length, 2, 'list shows both');
    await queue.resume();
    await until('both jobs finished', () => Object.values(ids).every(finished), 20_000);
    const order = events
      .filter((e) => e.event === 'active' && Object.values(ids).includes(e.id))
      .map((e) => e.id);
    t.same(order, [ids[1], ids[2]], 'run in priority order, not submission order');
  },
);
