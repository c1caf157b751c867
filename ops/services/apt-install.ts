import { spawn } from 'node:child_process';
import type { Logger } from '../../kernel/logger.js';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';

const TAIL_LINES = 30;

/** Run a command, streaming interesting lines to the log; resolves with exit code and output tail. */
function run(
  command: string,
  args: readonly string[],
  log: Logger,
): Promise<{ code: number; tail: string }> {
  return new Promise((resolve) => {
    const tail: string[] = [];
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    let partial = '';
    const onData = (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
        if (/^(Setting up|Unpacking|E:)/.test(line)) log.info({ apt: line.trim() }, 'apt');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (err) => resolve({ code: -1, tail: err.message }));
    child.on('close', (code) => {
      if (partial !== '') tail.push(partial);
      resolve({ code: code ?? -1, tail: tail.slice(-TAIL_LINES).join('\n') });
    });
  });
}

/**
 * `apt-get update` once, then `apt-get install -y <packages>`. Debian's
 * postinst scripts may fail to start the system services (no init system in a
 * container); `stillMissing` decides afterwards whether that matters: when the
 * binaries are there, a non-zero exit is only a warning.
 */
export async function installPackages(
  packages: readonly string[],
  log: Logger,
  stillMissing: () => Promise<string[]>,
): Promise<void> {
  if (packages.length === 0) return;
  const list = packages.join(' ');
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new QilinError(
      ErrorCodes.SERVICE_INSTALL,
      `cannot install ${list}: not running as root; run: sudo apt-get install -y ${list}`,
      { details: { packages } },
    );
  }
  log.info({ packages }, 'installing missing packages (apt-get update)');
  const update = await run('apt-get', ['update'], log);
  if (update.code !== 0) {
    throw new QilinError(
      ErrorCodes.SERVICE_INSTALL,
      `apt-get update failed with exit code ${update.code} while installing ${list}:\n${update.tail}`,
      { details: { packages, exitCode: update.code } },
    );
  }
  log.info({ packages }, 'apt-get install');
  const install = await run(
    'apt-get',
    ['install', '-y', '--no-install-recommends', ...packages],
    log,
  );
  const missing = await stillMissing();
  if (missing.length > 0 || install.code !== 0) {
    if (missing.length === 0) {
      log.warn(
        { packages, exitCode: install.code },
        'apt-get install exited non-zero but the binaries are installed',
      );
      return;
    }
    throw new QilinError(
      ErrorCodes.SERVICE_INSTALL,
      `apt-get install -y ${list} failed with exit code ${install.code} (still missing: ${missing.join(', ')}):\n${install.tail}`,
      { details: { packages, missing, exitCode: install.code } },
    );
  }
  log.info({ packages }, 'installed');
}
