/**
 * A graceful kernel stop hands its running job back (jobs/job-worker.ts
 * close()): the run stops, the job is `waiting` again with no attempt
 * counted as failed, and the next worker takes it. Real Redis. And a close
 * right after a Redis restart ends (BullMQ's graceful close waited forever
 * there for its blocking fetch: a kernel's shutdown hung in CI).
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { JobQueue } from '../../jobs/job-queue.js';
import type { JobEvent } from '../../jobs/job-types.js';
import { JobWorker } from '../../jobs/job-worker.js';
import { ErrorCodes } from '../../kernel/errors.js';
import { createLogger } from '../../kernel/logger.js';
import { ensureServices } from '../helpers/services.js';
import { startPrivateRedis } from '../helpers/redis-server.js';
import { until, within } from '../helpers/wait.js';

const prefix = `qilin:test:jobs-close:${randomBytes(3).toString('hex')}`;
const { redisUrl } = await ensureServices();
const log = createLogger('jobs-close-test', 'warn');

void t.test('close() puts the running job back; the next worker runs it', async (t) => {
  const queue = new JobQueue({ redisUrl, prefix });
  const events: Array<JobEvent & { worker: string }> = [];
  const worker = (name: string): JobWorker =>
    new JobWorker({
      redisUrl,
      prefix,
      concurrency: 1,
      lockMs: 5000,
      log,
      onEvent: (ev) => events.push({ ...ev, worker: name }),
    });
  const a = worker('a');
  const b = worker('b');
  t.teardown(async () => {
    await a.close();
    await b.close();
    await queue.queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  });
  await a.start();
  const v = await queue.submit({ type: 'backtest', params: { messages: 1_000_000, symbols: 4 } });
  await until(
    'worker a past 2 %',
    () => events.some((e) => e.worker === 'a' && e.progress.done >= 20_000),
    20_000,
  );
  await a.close();
  const fromA = events.filter((e) => e.worker === 'a').length;
  const back = await queue.show(v.id);
  t.equal(back.state, 'waiting', 'back in the queue at once');
  t.equal(back.attempts.made, 0, 'no attempt counted as failed');
  t.equal(back.error, null);
  t.notOk(
    events.some((e) => e.event === 'failed' || e.event === 'retrying'),
    'no failure event',
  );

  await b.start();
  await until('worker b took it', () =>
    events.some((e) => e.worker === 'b' && e.event === 'active'),
  );
  t.equal(events.filter((e) => e.worker === 'a').length, fromA, 'worker a sent nothing more');
  t.equal((await queue.show(v.id)).attempts.started, 2, 'second attempt started');
  await queue.cancel(v.id);
  await until('cancelled on b', () => events.at(-1)?.event === 'cancelled', 10_000);
  t.equal((await queue.show(v.id)).error?.code, ErrorCodes.JOB_CANCELLED);
});

void t.test('close() right after a Redis restart ends', async (t) => {
  const redis = await startPrivateRedis();
  t.teardown(() => redis.stop());
  const events: JobEvent[] = [];
  const w = new JobWorker({
    redisUrl: redis.url,
    prefix,
    concurrency: 1,
    lockMs: 5000,
    log,
    onEvent: (ev) => events.push(ev),
  });
  await w.start();
  const queue = new JobQueue({ redisUrl: redis.url, prefix });
  const v = await queue.submit({ type: 'backtest', params: { messages: 1_000_000, symbols: 4 } });
  await until('the job running', () => events.some((e) => e.id === v.id && e.event === 'active'));
  await queue.close();
  await redis.stop();
  await redis.restart(); // empty (no persistence); the worker's connections are reconnecting
  await t.resolves(within('worker close after the restart', w.close(), 20_000), 'close ended');
  t.equal(
    events.filter((e) => e.event === 'failed' || e.event === 'retrying').length,
    0,
    'the stopped run is not reported as a failure',
  );
});
