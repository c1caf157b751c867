/**
 * A job survives a kernel restart (issue 10 items 6-7): a kernel process
 * (`qilin start`, jobs on) runs a backtest job, its events come out on NATS
 * `job.<id>`; the kernel is SIGKILLed mid-run and started again; the job's
 * lock expires, the stalled check puts it back in the queue, the restarted
 * kernel runs it again from the start and it completes with its report.
 *
 * Real NATS and Redis (and ClickHouse for the kernel); the kernel is a child process.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import WebSocket from 'ws';
import { JobQueue } from '../../jobs/job-queue.js';
import type { JobEvent } from '../../jobs/job-types.js';
import { dropDatabase } from '../helpers/drop-database.js';
import {
  kernelReady,
  startKernelProcess,
  stopKernelProcess,
  type KernelProcess,
} from '../helpers/kernel-process.js';
import { connectAs, ensureServices } from '../helpers/services.js';
import { freePort } from '../helpers/test-kernel.js';
import { until } from '../helpers/wait.js';
import { opened } from '../helpers/ws.js';

const run = randomBytes(3).toString('hex');
const db = `qilin_jobs_${run}`;
const MESSAGES = 150_000;
const ADMIN_KEY = `jobs-admin-${run}`;
const READ_KEY = `jobs-read-${run}`;

void t.test('a job survives a kernel restart', async (t) => {
  const urls = await ensureServices();
  const stateDir = mkdtempSync(join(tmpdir(), 'qilin-jobs-'));
  const httpPort = await freePort();
  const start = (): KernelProcess =>
    startKernelProcess({
      urls,
      db,
      subject: `md.jobs${run}.>`,
      stateDir,
      logFile: join(stateDir, 'kernel.log'),
      httpPort,
      args: ['--duration', '0'],
      env: {
        QILIN_JOBS_LOCK_MS: '2000',
        QILIN_WORKERS: '1',
        QILIN_API_KEYS: `${ADMIN_KEY}:admin,${READ_KEY}:read`,
      },
    });
  const nc = await connectAs('admin');
  const events: JobEvent[] = [];
  const sub = nc.subscribe('job.>');
  void (async () => {
    for await (const m of sub) events.push(m.json<JobEvent>());
  })();
  const queue = new JobQueue({ redisUrl: urls.redisUrl, prefix: `qilin:jobs:${db}` });
  let k: KernelProcess | undefined = start();
  t.teardown(async () => {
    await stopKernelProcess(k);
    await queue.queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await nc.drain();
    await dropDatabase(urls.clickhouseUrl, db);
    rmSync(stateDir, { recursive: true, force: true });
  });
  await kernelReady(k);

  const v = await queue.submit({
    type: 'backtest',
    params: { messages: MESSAGES, symbols: 4, seed: 3 },
  });
  const of = (): JobEvent[] => events.filter((e) => e.id === v.id);
  await until(
    'the job past 10 % on NATS job.<id>',
    () => of().some((e) => e.event === 'progress' && e.progress.done >= MESSAGES / 10),
    30_000,
  );
  await stopKernelProcess(k, 'SIGKILL');
  const killedAt = Math.max(...of().map((e) => e.progress.done));
  t.ok(killedAt < MESSAGES, `killed mid-run (at ${killedAt} of ${MESSAGES})`);
  t.equal(
    (await queue.show(v.id)).state,
    'active',
    'still active in Redis: its lock not expired yet',
  );

  k = start();
  await kernelReady(k);
  // WebSocket job/* on the restarted kernel: an admin key gets the frames, a read key is refused.
  const wsEvents: JobEvent[] = [];
  const admin = new WebSocket(`ws://127.0.0.1:${httpPort}/ws?key=${ADMIN_KEY}`);
  const reader = new WebSocket(`ws://127.0.0.1:${httpPort}/ws?key=${READ_KEY}`);
  t.teardown(() => {
    admin.close();
    reader.close();
  });
  await Promise.all([opened(admin), opened(reader)]);
  const refusals: string[] = [];
  admin.on('message', (raw: Buffer) => {
    const f = JSON.parse(raw.toString()) as { topic?: string; data?: JobEvent };
    if (f.topic === `job/${v.id}` && f.data !== undefined) wsEvents.push(f.data);
  });
  reader.on('message', (raw: Buffer) => {
    const f = JSON.parse(raw.toString()) as { type?: string; code?: string };
    if (f.type === 'error' && f.code !== undefined) refusals.push(f.code);
  });
  admin.send(JSON.stringify({ op: 'subscribe', topics: ['job/*'] }));
  reader.send(JSON.stringify({ op: 'subscribe', topics: ['job/*'] }));
  await until('the read key refused job/*', () => refusals.length > 0, 10_000);
  t.same(refusals, ['forbidden'], 'a read key may not subscribe job/*');
  await until(
    'the job completed after the restart',
    () => of().at(-1)?.event === 'completed',
    40_000,
  );
  const evs = of();
  t.equal(
    evs.filter((e) => e.event === 'active').length,
    2,
    'ran twice: before and after the kill',
  );
  t.equal(evs.filter((e) => e.event === 'completed').length, 1, 'completed once');
  // Each run's progress increases; the second run starts again from the beginning.
  const secondStart = evs.findLastIndex((e) => e.event === 'active');
  const second = evs.slice(secondStart + 1).filter((e) => e.event === 'progress');
  t.ok(second.length >= 50, `the second run reported progress (${second.length})`);
  t.ok(
    second.every((e, i) => i === 0 || e.progress.done > second[i - 1]!.progress.done),
    'monotonic within the second run',
  );
  t.equal(second.at(-1)?.progress.done, MESSAGES, 'to the end');
  await until('the completed frame on the WebSocket', () => wsEvents.at(-1)?.event === 'completed');
  const wsProgress = wsEvents.filter((e) => e.event === 'progress');
  t.ok(wsProgress.length >= 20, `progress frames on job/<id> (${wsProgress.length})`);
  t.ok(
    wsProgress.every((e, i) => i === 0 || e.progress.done > wsProgress[i - 1]!.progress.done),
    'monotonic on the WebSocket',
  );
  t.same(
    wsProgress.slice(-10).map((e) => e.progress.done),
    second.slice(-10).map((e) => e.progress.done),
    'the same progress steps as on NATS',
  );
  const shown = await queue.show(v.id);
  t.equal(shown.state, 'completed');
  t.equal(shown.attempts.started, 2, 'two attempts started');
  t.equal(shown.attempts.stalled, 1, 'found stalled once');
  t.equal(shown.summary?.['ticks'], MESSAGES, 'the whole run');
  const r = await queue.result(v.id);
  t.equal((r?.result as { meta: { id: string } }).meta.id, 'bt-momentum-3', 'the report');

  // The HTTP routes of the same queue on the kernel's port (admin keys only).
  const base = `http://127.0.0.1:${httpPort}`;
  const auth = (key: string): Record<string, string> => ({ Authorization: `Bearer ${key}` });
  const shownHttp = await fetch(`${base}/jobs/${v.id}`, { headers: auth(ADMIN_KEY) });
  t.equal(shownHttp.status, 200, 'GET /jobs/<id>');
  t.equal(((await shownHttp.json()) as { state: string }).state, 'completed');
  t.equal(
    (await fetch(`${base}/jobs/${v.id}`, { headers: auth(READ_KEY) })).status,
    403,
    'read key: 403',
  );
  t.equal((await fetch(`${base}/jobs`)).status, 401, 'no key: 401');
  const listed = (await (await fetch(`${base}/jobs`, { headers: auth(ADMIN_KEY) })).json()) as {
    jobs: Array<{ id: string }>;
  };
  t.ok(
    listed.jobs.some((j) => j.id === v.id),
    'GET /jobs lists it',
  );
  t.equal(
    (await fetch(`${base}/jobs/nope`, { headers: auth(ADMIN_KEY) })).status,
    404,
    'unknown id: 404',
  );
  const post = (path: string, body: string): Promise<Response> =>
    fetch(`${base}${path}`, { method: 'POST', headers: auth(ADMIN_KEY), body });
  const bad = await post('/jobs', JSON.stringify({ type: 'backtest', params: { messages: -1 } }));
  t.equal(bad.status, 400, 'bad params: 400');
  t.equal(((await bad.json()) as { error: { code: string } }).error.code, 'QLN_JOB_INVALID');
  t.equal((await post('/jobs', '{not json')).status, 400, 'bad JSON: 400');
  t.equal((await post(`/jobs/${v.id}/cancel`, '')).status, 400, 'cancel a completed job: 400');
  const created = await post(
    '/jobs',
    JSON.stringify({ type: 'backtest', params: { messages: 2000 } }),
  );
  t.equal(created.status, 201, 'POST /jobs: 201');
  const id = ((await created.json()) as { id: string }).id;
  await until(
    'the job submitted over HTTP completed',
    async () => (await queue.show(id)).state === 'completed',
    30_000,
  );
  t.equal(
    (await fetch(`${base}/metrics`, { method: 'POST' })).status,
    405,
    'POST elsewhere: still 405',
  );
  const metrics = await (await fetch(`${base}/metrics`)).text();
  t.match(metrics, /^qilin_jobs_refused_total 3$/m, 'the three refused requests counted');
  t.match(
    metrics,
    /^qilin_job_events_total\{type="backtest",event="completed"\} [1-9]/m,
    'completed jobs counted by type',
  );
});
