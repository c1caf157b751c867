import { spawn, type ChildProcess } from 'node:child_process';
import { until } from './wait.js';

/** A server process of a test's own (a Debian binary), stopped and started again by the test. */
export interface PrivateProcess {
  /** Stop it (SIGKILL when `crash`, else SIGTERM); resolves when it exited. */
  stop(crash?: boolean): Promise<void>;
  /** Start it again with the same arguments (after stop); resolves once it answers. */
  restart(): Promise<void>;
}

/**
 * Start `bin args` and wait until `answers()` is true (15 s); killed when the
 * test process exits, after which `cleanup` runs. The private NATS and Redis
 * helpers are built on it.
 */
export async function startPrivateProcess(
  bin: string,
  args: string[],
  answers: () => Promise<boolean>,
  cleanup: () => void = () => undefined,
): Promise<PrivateProcess> {
  const name = bin.split('/').at(-1)!;
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    const c = spawn(bin, args, { stdio: 'ignore' });
    child = c;
    await until(
      `${name} ${args.join(' ')}`,
      async () => {
        if (c.exitCode !== null) throw new Error(`${name} exited with ${c.exitCode}`);
        return answers();
      },
      15_000,
      50,
    );
  };
  const stop = async (crash = false): Promise<void> => {
    const c = child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(crash ? 'SIGKILL' : 'SIGTERM');
    await exited;
  };
  await launch();
  process.once('exit', () => {
    child?.kill('SIGKILL');
    cleanup();
  });
  return { stop, restart: launch };
}
