import { readFile, readlink } from 'node:fs/promises';

/** A live (not zombie) process as seen in /proc. */
export interface ProcessInfo {
  pid: number;
  /** /proc/<pid>/comm (at most 15 characters). */
  command: string;
  /** Resolved /proc/<pid>/exe, when readable. */
  exe?: string;
}

/**
 * The live process `pid`, or undefined when it does not exist or is a zombie
 * (exited, not yet reaped: it holds no ports and answers nothing).
 */
export async function inspectProcess(pid: number): Promise<ProcessInfo | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const close = stat.lastIndexOf(')');
  const state = stat.slice(close + 2, close + 3);
  if (state === 'Z' || state === 'X' || state === 'x') return undefined;
  const command = stat.slice(stat.indexOf('(') + 1, close);
  const info: ProcessInfo = { pid, command };
  try {
    info.exe = (await readlink(`/proc/${pid}/exe`)).replace(/ \(deleted\)$/, '');
  } catch {
    // another user's process: exe is not readable, comm is
  }
  return info;
}
