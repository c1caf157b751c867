/**
 * Tests of the bench's process supervision with real (tiny) processes, no
 * services: a child past its hard deadline is killed; stop() escalates from
 * SIGTERM to SIGKILL; close() stops everything; and when the bench itself is
 * SIGKILLed, the reaper kills its children (no orphans).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import t from 'tap';
import { ChildProcesses } from '../../../bench/harness/child-processes.js';
import { isAlive } from '../../../bench/harness/proc-stats.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/orphan-maker.js', import.meta.url));

/** Poll until none of `pids` is alive (true) or `ms` passed (false). */
async function allGone(pids: number[], ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (pids.some(isAlive)) {
    if (Date.now() > until) return false;
    await delay(50);
  }
  return true;
}

void t.test('a child past its deadline is killed', async (t) => {
  const children = new ChildProcesses({ reaper: false, handleSignals: false });
  const c = children.spawn('sleeper', 'sleep', ['30'], { stdio: 'ignore' }, 300);
  t.same(
    children.running.map((x) => x.pid),
    [c.pid],
  );
  const e = await c.exited;
  t.equal(e.signal, 'SIGKILL');
  t.ok(e.deadline, 'reported as a deadline kill');
  t.same(children.running, []);
  await children.close();
});

void t.test('stop escalates to SIGKILL for a child that ignores SIGTERM', async (t) => {
  const children = new ChildProcesses({ reaper: false, handleSignals: false });
  const stubborn = children.spawn(
    'stubborn',
    process.execPath,
    [
      '-e',
      "process.on('SIGTERM', () => {}); process.stdout.write('ready'); setInterval(() => {}, 1000);",
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
    60_000,
  );
  await new Promise<void>((resolve) => stubborn.child.stdout!.once('data', () => resolve()));
  const e = await children.stop(stubborn, 300);
  t.equal(e.signal, 'SIGKILL');
  t.notOk(e.deadline);
  const polite = children.spawn('polite', 'sleep', ['30'], { stdio: 'ignore' }, 60_000);
  t.equal((await children.stop(polite, 5000)).signal, 'SIGTERM');
  t.equal((await children.stop(polite)).signal, 'SIGTERM', 'stopping twice is fine');
  await children.close();
});

void t.test('close stops every child; nothing starts after it', async (t) => {
  const children = new ChildProcesses({ reaper: false, handleSignals: false });
  const pids = [1, 2, 3].map(
    (i) => children.spawn(`s${i}`, 'sleep', ['30'], { stdio: 'ignore' }, 60_000).pid,
  );
  await children.close();
  t.ok(await allGone(pids, 5000), 'all gone');
  t.throws(() => children.spawn('late', 'sleep', ['1'], {}, 1000), { code: 'QLN_INTERNAL' });
  t.throws(
    () =>
      new ChildProcesses({ reaper: false, handleSignals: false }).spawn(
        'nope',
        '/nonexistent/binary',
        [],
        {},
        1000,
      ),
    { code: 'QLN_SERVICE_START_FAILED' },
  );
});

void t.test('the reaper kills the children of a SIGKILLed bench', async (t) => {
  const bench = spawn(process.execPath, [FIXTURE], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    bench.stdout.on('data', (b: Buffer) => {
      out += b.toString('utf8');
      if (out.includes('\n')) resolve(out.trim());
    });
    bench.once('exit', (code) => reject(new Error(`fixture exited ${code} before printing pids`)));
  });
  const [, reaper, a, b] = line.split(' ').map(Number);
  t.ok(reaper! > 0 && isAlive(reaper!), 'reaper running');
  t.ok(isAlive(a!) && isAlive(b!), 'children running');
  bench.kill('SIGKILL');
  t.ok(await allGone([a!, b!], 10_000), 'children killed after the bench died');
  t.ok(await allGone([reaper!], 10_000), 'and the reaper exited');
});
