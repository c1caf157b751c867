import {
  fork,
  spawn,
  type ChildProcess,
  type ForkOptions,
  type SpawnOptions,
} from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';
import { readProc } from './proc-stats.js';
import type { ReaperMessage } from './reaper.js';

/**
 * Every process the bench starts (nats-server, the kernel, the relay, the
 * load generator …) goes through one `ChildProcesses`, so none outlives the
 * bench, whatever way the bench ends:
 *
 * ```
 *  bench ──spawn/fork──► child (hard deadline: SIGKILL when it passes)
 *    │                     ▲
 *    │ IPC {add pid, start time, deadline} / {remove pid}
 *    ▼                     │ SIGTERM, then SIGKILL
 *  reaper (own process group, survives the bench)
 *
 *  normal end / error      close(): SIGTERM each child, SIGKILL after its grace
 *  Ctrl-C / SIGTERM        the same, then exit 130 / 143
 *  process.exit, crash     'exit' hook: SIGKILL what is still alive (synchronous)
 *  bench SIGKILLed         the reaper's IPC channel closes: it kills every child
 *                          still registered, checking the pid's start time first
 *                          (never a recycled pid), then exits
 * ```
 * Forked Node children of the bench also exit on their own when their IPC
 * channel closes and at their own deadline (see load-process.ts).
 */

/** A child under supervision. */
export interface TrackedChild {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves once the process exited (never rejects). */
  readonly exited: Promise<ChildExit>;
  /** Set when it exited. */
  exit: ChildExit | undefined;
}

/** How a child ended. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when its deadline passed and it was killed for it. */
  deadline: boolean;
}

/** Options of {@link ChildProcesses}. */
export interface ChildProcessesOptions {
  /** Start the reaper process (default true). Tests of the supervisor itself may turn it off. */
  reaper?: boolean;
  /** Called with every child started (name, pid): the bench prints it on stderr. */
  onStart?: (name: string, pid: number) => void;
  /** Handle SIGINT/SIGTERM by stopping every child and exiting (default true). */
  handleSignals?: boolean;
}

const REAPER = fileURLToPath(new URL('./reaper.js', import.meta.url));

/** Spawns, tracks and stops the bench's child processes. */
export class ChildProcesses {
  private readonly live = new Set<TrackedChild>();
  private readonly timers = new Map<TrackedChild, NodeJS.Timeout>();
  private reaper: ChildProcess | undefined;
  private readonly onStart: ((name: string, pid: number) => void) | undefined;
  private readonly handleSignals: boolean;
  private closing: Promise<void> | undefined;
  private toReaper: Promise<void> = Promise.resolve();
  private readonly onExit = (): void => this.killAllNow();
  private readonly onSignal = (sig: NodeJS.Signals): void => {
    const code = sig === 'SIGINT' ? 130 : 143;
    void this.close(2000).finally(() => process.exit(code));
  };

  constructor(opts: ChildProcessesOptions = {}) {
    this.onStart = opts.onStart;
    this.handleSignals = opts.handleSignals ?? true;
    if (opts.reaper ?? true) {
      // Detached: its own process group, so a Ctrl-C to the bench's group
      // does not take it down before it has done its job.
      // No execArgv and no NODE_OPTIONS: a test runner's loaders must not
      // keep it alive or change how it exits.
      const env = { ...process.env };
      delete env['NODE_OPTIONS'];
      const reaper = fork(REAPER, [String(process.pid)], {
        detached: true,
        execArgv: [],
        env,
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      });
      reaper.unref();
      reaper.on('error', () => undefined);
      this.reaper = reaper;
      // Messages sent before the reaper listens would be lost (its module
      // loads asynchronously): queue them behind its 'ready', or 5 s.
      this.toReaper = new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          reaper.off('message', onMessage);
          reaper.channel?.unref();
          resolve();
        };
        const onMessage = (m: { type?: string }): void => {
          if (m.type === 'ready') done();
        };
        const timer = setTimeout(done, 5000);
        timer.unref();
        reaper.on('message', onMessage);
        reaper.once('exit', done);
      });
    }
    process.on('exit', this.onExit);
    if (this.handleSignals) {
      process.once('SIGINT', this.onSignal);
      process.once('SIGTERM', this.onSignal);
    }
  }

  /** Children still running. */
  get running(): readonly TrackedChild[] {
    return [...this.live];
  }

  /** Pid of the reaper (tests). */
  get reaperPid(): number | undefined {
    return this.reaper?.pid;
  }

  /** Spawn `command` with a hard deadline (ms from now). */
  spawn(
    name: string,
    command: string,
    args: readonly string[],
    options: SpawnOptions,
    deadlineMs: number,
  ): TrackedChild {
    this.assertOpen(name);
    return this.track(name, spawn(command, args, options), deadlineMs);
  }

  /** Fork a Node module with a hard deadline (ms from now). */
  fork(
    name: string,
    modulePath: string,
    args: readonly string[],
    options: ForkOptions,
    deadlineMs: number,
  ): TrackedChild {
    this.assertOpen(name);
    return this.track(name, fork(modulePath, args, options), deadlineMs);
  }

  private assertOpen(name: string): void {
    if (this.closing !== undefined) {
      throw new QilinError(ErrorCodes.INTERNAL, `cannot start ${name}: the bench is shutting down`);
    }
  }

  private track(name: string, child: ChildProcess, deadlineMs: number): TrackedChild {
    if (child.pid === undefined) {
      // spawn failed (ENOENT, EACCES …): the reason arrives as an 'error' event later.
      child.once('error', () => undefined);
      throw new QilinError(
        ErrorCodes.SERVICE_START_FAILED,
        `could not start ${name} (${child.spawnfile}): no process was created`,
      );
    }
    const pid = child.pid;
    let deadlineHit = false;
    let resolveExit!: (e: ChildExit) => void;
    const exited = new Promise<ChildExit>((r) => (resolveExit = r));
    const tracked: TrackedChild = { name, child, pid, exited, exit: undefined };
    this.live.add(tracked);
    child.on('error', () => undefined);
    child.once('exit', (code, signal) => {
      const e = { code, signal, deadline: deadlineHit };
      (tracked as { exit: ChildExit | undefined }).exit = e;
      this.live.delete(tracked);
      clearTimeout(this.timers.get(tracked));
      this.timers.delete(tracked);
      this.tellReaper({ type: 'remove', pid });
      resolveExit(e);
    });
    const timer = setTimeout(() => {
      deadlineHit = true;
      child.kill('SIGKILL');
    }, deadlineMs);
    timer.unref();
    this.timers.set(tracked, timer);
    const start = readProc(pid)?.startTicks ?? -1;
    this.tellReaper({
      type: 'add',
      pid,
      name,
      startTicks: start,
      deadlineAt: Date.now() + deadlineMs,
    });
    this.onStart?.(name, pid);
    return tracked;
  }

  private tellReaper(msg: ReaperMessage): void {
    const r = this.reaper;
    if (r === undefined) return;
    this.toReaper = this.toReaper.then(
      () =>
        new Promise<void>((resolve) => {
          if (r.connected) r.send(msg, () => resolve());
          else resolve();
        }),
    );
  }

  /**
   * Have `dir` removed when the bench is gone, by the reaper (after the
   * children that may write into it): the bench removes its temp dir itself
   * when it ends normally, but not when it is SIGKILLed.
   */
  removeAtEnd(dir: string): void {
    this.tellReaper({ type: 'cleanup', dir });
  }

  /**
   * Resolves once the reaper has been told about every child started so
   * far (IPC writes are asynchronous: a bench killed in the same tick as a
   * spawn could otherwise leave that child unregistered).
   */
  registered(): Promise<void> {
    return this.toReaper;
  }

  /**
   * Stop one child: SIGTERM (or `signal`; null: none, it was asked to exit
   * another way), then SIGKILL after `graceMs`. Resolves once it exited.
   * Safe on a child that already exited.
   */
  async stop(
    c: TrackedChild,
    graceMs = 10_000,
    signal: NodeJS.Signals | null = 'SIGTERM',
  ): Promise<ChildExit> {
    if (c.exit !== undefined) return c.exit;
    if (signal !== null) c.child.kill(signal);
    const timer = setTimeout(() => c.child.kill('SIGKILL'), graceMs);
    const e = await c.exited;
    clearTimeout(timer);
    return e;
  }

  /** SIGKILL every live child now (synchronous: safe in an 'exit' hook). */
  killAllNow(): void {
    for (const c of this.live) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /**
   * Stop every child (in reverse start order, each with `graceMs`), then let
   * the reaper go. Safe to call twice (returns the same promise).
   */
  close(graceMs = 10_000): Promise<void> {
    this.closing ??= (async () => {
      for (const c of [...this.live].reverse()) await this.stop(c, graceMs);
      process.off('exit', this.onExit);
      if (this.handleSignals) {
        process.off('SIGINT', this.onSignal);
        process.off('SIGTERM', this.onSignal);
      }
      await this.toReaper;
      if (this.reaper?.connected === true) this.reaper.disconnect();
    })();
    return this.closing;
  }
}
