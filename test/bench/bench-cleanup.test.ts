/**
 * No orphans when a bench fails: a real `qilin bench` run (soak --smoke,
 * stretched so there is time to break it) whose kernel is SIGKILLed mid-step
 * ends with exit 1 and a message naming the kernel, and takes every process
 * it started down with it; and a bench that is itself SIGKILLed mid-step
 * leaves nothing behind either, not even its temp dir (the reaper and the
 * children's own IPC watch). Needs the local Redis (the kernel's kill switch).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import t from 'tap';
import { isAlive } from '../../bench/harness/proc-stats.js';
import { ensureServices, repoRoot } from '../helpers/services.js';

interface Started {
  bench: ChildProcess;
  /** name → pid, as the bench reports them on stderr. */
  pids: Map<string, number[]>;
  stderr: () => string;
  exit: Promise<number | null>;
}

/** Start a bench and resolve once it reported a load process (a step is running). */
async function startBench(env: NodeJS.ProcessEnv): Promise<Started> {
  const bench = spawn(
    process.execPath,
    [
      'bin/qilin.js',
      'bench',
      'soak',
      '--smoke',
      '--seconds',
      '30',
      '--baselines',
      'none',
      '--no-write',
    ],
    { cwd: repoRoot, env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const pids = new Map<string, number[]>();
  let err = '';
  const exit = new Promise<number | null>((resolve) => bench.once('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    bench.stderr.on('data', (b: Buffer) => {
      err += b.toString('utf8');
      for (const m of err.matchAll(/started ([\w-]+) pid (\d+)/g)) {
        const list = pids.get(m[1]!) ?? [];
        if (!list.includes(Number(m[2]))) list.push(Number(m[2]));
        pids.set(m[1]!, list);
      }
      if (pids.has('loadgen')) resolve();
    });
    void exit.then((code) =>
      reject(new Error(`bench exited ${code} before a step started:\n${err}`)),
    );
  });
  return { bench, pids, stderr: () => err, exit };
}

/** Poll `cond` every 100 ms; false when it still does not hold after `ms`. */
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await delay(100);
  }
  return true;
}

const allGone = (pids: number[], ms: number): Promise<boolean> =>
  until(() => !pids.some(isAlive), ms);

void t.test('bench failures leave no process behind', async (t) => {
  const services = await ensureServices();
  const env = { ...process.env, QILIN_REDIS_URL: services.redisUrl };

  await t.test('the kernel dies mid-step: exit 1, everything stopped', async (t) => {
    const s = await startBench(env);
    const kernel = s.pids.get('kernel')?.[0];
    t.ok(kernel !== undefined && isAlive(kernel), 'kernel running');
    const all = [...s.pids.values()].flat();
    t.ok(
      s.pids.has('nats-server') && s.pids.has('loadgen'),
      'nats-server and load process running',
    );
    process.kill(kernel!, 'SIGKILL');
    t.equal(await s.exit, 1, 'the bench fails with exit 1');
    t.match(
      s.stderr(),
      /qilin bench soak failed: QLN_WORKER_DIED: kernel \(pid \d+\) exited during the bench/,
    );
    t.ok(await allGone(all, 10_000), `none of ${all.join(', ')} left`);
  });

  await t.test('the bench is SIGKILLed mid-step: the reaper stops its children', async (t) => {
    const s = await startBench(env);
    const all = [...s.pids.values()].flat();
    t.ok(all.length >= 3, `children ${all.join(', ')}`);
    t.ok(all.every(isAlive), 'all running');
    const dir = /temp dir (\S+)/.exec(s.stderr())?.[1];
    t.ok(dir !== undefined && existsSync(dir), `temp dir ${dir}`);
    s.bench.kill('SIGKILL');
    await s.exit;
    t.ok(await allGone(all, 15_000), `none of ${all.join(', ')} left`);
    t.ok(await until(() => !existsSync(dir!), 10_000), 'and its temp dir removed');
  });
});
