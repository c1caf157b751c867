import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * CPU time and resident memory of a process from Linux /proc:
 * `/proc/<pid>/stat` fields utime + stime (all threads of the process, in
 * clock ticks) and starttime (to tell a pid apart from a later one with the
 * same number), `/proc/<pid>/status` VmRSS. CPU% over an interval is the
 * CPU-seconds delta over the wall-clock delta (100% = one core busy).
 */

/** One reading of a process. */
export interface ProcSample {
  /** User + system CPU seconds since the process started. */
  cpuSeconds: number;
  /** Resident set size, bytes. */
  rssBytes: number;
  /** Start time after boot, clock ticks (identifies the process with its pid). */
  startTicks: number;
  /** One-letter state (R, S, D, Z …); Z is a zombie: dead, not yet reaped. */
  state: string;
}

let clockTicks: number | undefined;

/** `sysconf(_SC_CLK_TCK)` (via getconf, once); 100 where it cannot be read. */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      const v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      clockTicks = Number.isInteger(v) && v > 0 ? v : 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * Fields of a `/proc/<pid>/stat` line after the `(comm)` (which may itself
 * hold spaces and parentheses): index 0 is the state (field 3).
 */
export function parseProcStat(
  line: string,
): { state: string; cpuTicks: number; startTicks: number } | undefined {
  const close = line.lastIndexOf(')');
  if (close < 0) return undefined;
  const f = line.slice(close + 2).split(' ');
  // utime is field 14, stime 15, starttime 22 (1-based, proc(5)) → indexes 11, 12, 19.
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  const start = Number(f[19]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime) || !Number.isFinite(start)) {
    return undefined;
  }
  return { state: f[0] ?? '?', cpuTicks: utime + stime, startTicks: start };
}

/** VmRSS of a `/proc/<pid>/status` text, bytes; NaN when absent. */
export function parseVmRss(status: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return m === null ? Number.NaN : Number(m[1]) * 1024;
}

/** Read a process; undefined when it is gone (or `pid` is undefined). */
export function readProc(pid: number | undefined): ProcSample | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    if (stat === undefined) return undefined;
    // A zombie has no status VmRSS line: NaN.
    const rss = parseVmRss(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return {
      cpuSeconds: stat.cpuTicks / clockTicksPerSecond(),
      rssBytes: rss,
      startTicks: stat.startTicks,
      state: stat.state,
    };
  } catch {
    return undefined;
  }
}

/** CPU% (100 = one core) between two readings `wallSeconds` apart; NaN if either is missing. */
export function cpuPercent(
  a: ProcSample | undefined,
  b: ProcSample | undefined,
  wallSeconds: number,
): number {
  if (a === undefined || b === undefined || !(wallSeconds > 0)) return Number.NaN;
  return ((b.cpuSeconds - a.cpuSeconds) / wallSeconds) * 100;
}

/** True while `pid` is a running (not zombie) process. */
export function isAlive(pid: number): boolean {
  const p = readProc(pid);
  return p !== undefined && p.state !== 'Z' && p.state !== 'X';
}
