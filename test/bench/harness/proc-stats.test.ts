/**
 * Unit tests of the /proc readings: the stat line parser (a comm with spaces
 * and parentheses), VmRSS, CPU% between two readings, and a real reading of
 * this process and of one that burns a known amount of CPU.
 */
import { spawn } from 'node:child_process';
import t from 'tap';
import {
  clockTicksPerSecond,
  cpuPercent,
  isAlive,
  parseProcStat,
  parseVmRss,
  readProc,
} from '../../../bench/harness/proc-stats.js';

void t.test('parses a stat line whose comm holds spaces and parentheses', (t) => {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime prio nice threads itreal starttime …
  const line =
    '4242 (node (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 11 0 123456 1000000 2000 18446744073709551615';
  t.same(parseProcStat(line), { state: 'S', cpuTicks: 300, startTicks: 123456 });
  t.equal(parseProcStat('garbage'), undefined);
  t.equal(parseProcStat('1 (x) S 1 2'), undefined, 'too few fields');
  t.end();
});

void t.test('VmRSS in bytes', (t) => {
  t.equal(parseVmRss('Name:\tnode\nVmRSS:\t  123456 kB\nThreads:\t11\n'), 123456 * 1024);
  t.ok(Number.isNaN(parseVmRss('Name:\tzombie\n')));
  t.end();
});

void t.test('cpuPercent', (t) => {
  const a = { cpuSeconds: 1, rssBytes: 0, startTicks: 0, state: 'S' };
  const b = { cpuSeconds: 1.5, rssBytes: 0, startTicks: 0, state: 'S' };
  t.equal(cpuPercent(a, b, 1), 50);
  t.ok(Number.isNaN(cpuPercent(a, undefined, 1)));
  t.ok(Number.isNaN(cpuPercent(a, b, 0)));
  t.end();
});

void t.test('reads this process, and a gone pid reads undefined', (t) => {
  const me = readProc(process.pid);
  t.ok(me !== undefined && me.rssBytes > 10 * 1024 * 1024, 'RSS over 10 MiB');
  t.ok(me !== undefined && me.cpuSeconds > 0);
  t.ok(isAlive(process.pid));
  t.equal(readProc(undefined), undefined);
  t.equal(readProc(2 ** 22 + 12345), undefined, 'beyond pid_max');
  t.ok(clockTicksPerSecond() >= 100);
  t.end();
});

void t.test('CPU of a child that burns 300 ms of CPU is counted', async (t) => {
  // Burn 300 ms of CPU (not of wall time: the machine is shared), then idle
  // for 400 ms so the last reading sees all of it.
  const burn =
    'const c = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e3; };' +
    'const s = c(); while (c() - s < 300); setTimeout(() => {}, 400);';
  const child = spawn(process.execPath, ['-e', burn], { stdio: 'ignore' });
  const pid = child.pid!;
  let last = readProc(pid);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Poll while it runs (a zombie keeps its stat until reaped by us).
  const poll = setInterval(() => {
    const s = readProc(pid);
    if (s !== undefined) last = s;
  }, 20);
  await exited;
  clearInterval(poll);
  t.ok(last !== undefined && last.cpuSeconds >= 0.29, `cpu ${last?.cpuSeconds} s of ≥ 0.3 s`);
  t.notOk(isAlive(pid), 'gone after exit');
});
