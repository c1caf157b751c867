import { spawn } from 'node:child_process';
import { repoRoot } from './services.js';
import { within } from './wait.js';

/** What a `qilin …` run printed and how it ended. */
export interface CliRun {
  code: number | null;
  out: string;
  err: string;
}

/**
 * Run `node bin/qilin.js <args>` from the repository root with the test's
 * environment plus `env`, within `deadlineMs` (default 60 s).
 */
export function runQilin(
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
  deadlineMs = 60_000,
): Promise<CliRun> {
  return within(
    `qilin ${args.join(' ')}`,
    new Promise<CliRun>((resolve, reject) => {
      const p = spawn(process.execPath, ['bin/qilin.js', ...args], {
        cwd: repoRoot,
        env: { ...process.env, QILIN_LOG_LEVEL: 'warn', ...env },
      });
      let out = '';
      let err = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
      p.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
      p.on('error', reject);
      p.on('close', (code) => resolve({ code, out, err }));
    }),
    deadlineMs,
  );
}
