/**
 * The bench's reaper: a small process of its own (forked detached by
 * child-processes.ts) that kills the bench's children when the bench can no
 * longer do it itself (SIGKILLed, crashed in native code), and any child
 * whose hard deadline passed.
 *
 * ```
 *  bench ◄─ IPC {type:'ready'} (listening; the bench queued everything before) ─ reaper
 *  bench ── IPC {type:'add', pid, startTicks, deadlineAt} ──► reaper
 *        ── IPC {type:'remove', pid}                     ──►
 *        ── channel closes (bench ended or died)        ──► SIGTERM every registered
 *                                                          pid, SIGKILL after 3 s, remove
 *                                                          the temp dirs, exit
 *  every 500 ms: SIGKILL registered pids past their deadline
 * ```
 * A pid is signalled only while its /proc start time still equals the one
 * registered, so a recycled pid is never hit. No busy loop: one 500 ms timer.
 * argv[2] is the bench's pid (for the log line only).
 */
import { rmSync } from 'node:fs';
import { isAlive, readProc } from './proc-stats.js';

/** Messages from the bench to the reaper. */
export type ReaperMessage =
  | { type: 'add'; pid: number; name: string; startTicks: number; deadlineAt: number }
  | { type: 'remove'; pid: number }
  | { type: 'cleanup'; dir: string };

interface Entry {
  name: string;
  startTicks: number;
  deadlineAt: number;
}

const SWEEP_MS = 500;
const KILL_GRACE_MS = 3000;

function isMain(): boolean {
  return process.send !== undefined && process.argv[1]?.endsWith('reaper.js') === true;
}

/** Still the same process we registered? */
function same(pid: number, e: Entry): boolean {
  const p = readProc(pid);
  return (
    p !== undefined &&
    p.state !== 'Z' &&
    p.state !== 'X' &&
    (e.startTicks < 0 || p.startTicks === e.startTicks)
  );
}

function signal(pid: number, e: Entry, sig: NodeJS.Signals): void {
  if (!same(pid, e)) return;
  try {
    process.kill(pid, sig);
  } catch {
    // gone meanwhile
  }
}

function main(): void {
  const bench = process.argv[2] ?? '?';
  const benchPid = Number(bench);
  const entries = new Map<number, Entry>();
  const dirs = new Set<string>();
  process.on('message', (m: ReaperMessage) => {
    if (m.type === 'add') {
      entries.set(m.pid, { name: m.name, startTicks: m.startTicks, deadlineAt: m.deadlineAt });
    } else if (m.type === 'remove') {
      entries.delete(m.pid);
    } else {
      dirs.add(m.dir);
    }
  });
  /** Remove the bench's temp dirs (its children are gone by now), then exit. */
  const exit = (): never => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    process.exit(0);
  };
  let reaping = false;
  const reap = (): void => {
    if (reaping) return;
    reaping = true;
    clearInterval(sweep);
    const left = [...entries].filter(([pid, e]) => same(pid, e));
    if (left.length === 0) exit();
    process.stderr.write(
      `qilin bench reaper: bench ${bench} is gone; stopping ${left.map(([pid, e]) => `${e.name} (pid ${pid})`).join(', ')}\n`,
    );
    for (const [pid, e] of left) signal(pid, e, 'SIGTERM');
    const until = Date.now() + KILL_GRACE_MS;
    setInterval(() => {
      const alive = left.filter(([pid, e]) => same(pid, e));
      if (alive.length > 0 && Date.now() < until) return;
      for (const [pid, e] of alive) signal(pid, e, 'SIGKILL');
      exit();
    }, 100);
  };
  const sweep = setInterval(() => {
    // The IPC channel closing is the normal sign the bench is gone; its pid
    // disappearing is the fallback.
    if (Number.isInteger(benchPid) && !isAlive(benchPid)) {
      reap();
      return;
    }
    const now = Date.now();
    for (const [pid, e] of entries) {
      if (now < e.deadlineAt) continue;
      process.stderr.write(
        `qilin bench reaper: ${e.name} (pid ${pid}) passed its deadline: SIGKILL\n`,
      );
      signal(pid, e, 'SIGKILL');
      entries.delete(pid);
    }
  }, SWEEP_MS);
  process.once('disconnect', reap);
  // Ctrl-C reaches the whole terminal group; the reaper is in its own, but
  // ignore both anyway: it must outlive the bench to do its job.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
  // Listening now: the bench may send (it queues until this arrives).
  process.send?.({ type: 'ready' });
}

if (isMain()) main();
