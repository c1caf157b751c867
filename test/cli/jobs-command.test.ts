/**
 * `qilin jobs` (cli/jobs-command.ts) against the real Redis, with a job
 * worker in this process under a key prefix of its own (QILIN_JOBS_PREFIX):
 * submit --wait --json, list, show, cancel, pause / resume, and the clear
 * errors (exit 2, the catalogue code and the bad param in the message).
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { JobQueue } from '../../jobs/job-queue.js';
import type { JobView } from '../../jobs/job-types.js';
import { JobWorker } from '../../jobs/job-worker.js';
import { createLogger } from '../../kernel/logger.js';
import { runQilin } from '../helpers/cli.js';
import { ensureServices } from '../helpers/services.js';

const prefix = `qilin:test:jobs-cli:${randomBytes(3).toString('hex')}`;
const { redisUrl } = await ensureServices();
const env = { QILIN_REDIS_URL: redisUrl, QILIN_JOBS_PREFIX: prefix };
const queue = new JobQueue({ redisUrl, prefix });
const worker = new JobWorker({
  redisUrl,
  prefix,
  concurrency: 1,
  lockMs: 5000,
  log: createLogger('jobs-cli-test', 'warn'),
});
await worker.start();
t.teardown(async () => {
  await worker.close();
  await queue.queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
});

void t.test('qilin jobs', async (t) => {
  const done = await runQilin(
    [
      'jobs',
      'submit',
      'backtest',
      '--param',
      'messages=2000',
      '--param',
      'seed=5',
      '--wait',
      '--json',
    ],
    env,
  );
  t.equal(done.code, 0, `submit --wait exits 0 (${done.err})`);
  const v = JSON.parse(done.out) as JobView;
  t.equal(v.state, 'completed', 'waited until completed');
  t.equal(v.summary?.['ticks'], 2000, 'summary printed');
  t.equal(v.params['seed'], 5, 'the param as a number');

  const bad = await runQilin(['jobs', 'submit', 'backtest', '--param', 'mesages=2000'], env);
  t.equal(bad.code, 2, 'a bad param exits 2');
  t.match(bad.err, /QLN_JOB_INVALID: .*unknown param "mesages"/, 'names the code and the param');
  const shown = await runQilin(['jobs', 'show', v.id, '--result', '--json'], env);
  t.equal(shown.code, 0);
  const s = JSON.parse(shown.out) as JobView & { result: { version: number } };
  t.equal(s.state, 'completed');
  t.equal(s.result.version, 1, 'show --result: the report');
  const listed = await runQilin(['jobs', 'list', '--json'], env);
  const l = JSON.parse(listed.out) as { paused: boolean; jobs: JobView[] };
  t.equal(l.paused, false);
  t.ok(
    l.jobs.some((j) => j.id === v.id),
    'list shows it',
  );

  const again = await runQilin(['jobs', 'cancel', v.id], env);
  t.equal(again.code, 2, 'cancel of a completed job exits 2');
  t.match(again.err, /QLN_JOB_INVALID: job \S+ has already completed/);
  t.equal((await runQilin(['jobs', 'pause'], env)).code, 0);
  t.equal(await queue.isPaused(), true, 'paused');
  t.equal((await runQilin(['jobs', 'resume'], env)).code, 0);
  t.equal(await queue.isPaused(), false, 'resumed');
});
