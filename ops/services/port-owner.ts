import { readFile, readdir, readlink } from 'node:fs/promises';

/** A process listening on a TCP port, as far as /proc tells. */
export interface PortOwner {
  port: number;
  /** Inode of the listening socket. */
  inode: number;
  /** Owning process, when its /proc/<pid>/fd is readable. */
  pid?: number;
  /** /proc/<pid>/comm of the owner. */
  command?: string;
}

const LISTEN = '0A';

/** Listening sockets (port → inodes) from one /proc/net/tcp* table. */
async function listeningInodes(
  table: string,
  ports: ReadonlySet<number>,
  into: Map<number, number[]>,
): Promise<void> {
  let text: string;
  try {
    text = await readFile(table, 'utf8');
  } catch {
    return; // no IPv6 table, or no /proc: nothing listens that we can see
  }
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const local = fields[1];
    const state = fields[3];
    const inode = Number(fields[9]);
    if (local === undefined || state !== LISTEN || !Number.isInteger(inode)) continue;
    const port = parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
    if (!ports.has(port)) continue;
    const list = into.get(port) ?? [];
    list.push(inode);
    into.set(port, list);
  }
}

/**
 * Which of `ports` have a LISTEN socket, and which process holds each: reads
 * /proc/net/tcp and /proc/net/tcp6 for the socket inode, then scans
 * /proc/<pid>/fd for `socket:[inode]`. Ports nobody listens on are absent from
 * the result; a port whose owner cannot be seen has no `pid`.
 */
export async function findPortOwners(ports: readonly number[]): Promise<Map<number, PortOwner>> {
  const wanted = new Set(ports);
  const inodesByPort = new Map<number, number[]>();
  await listeningInodes('/proc/net/tcp', wanted, inodesByPort);
  await listeningInodes('/proc/net/tcp6', wanted, inodesByPort);
  const owners = new Map<number, PortOwner>();
  if (inodesByPort.size === 0) return owners;

  const portByInode = new Map<string, number>();
  for (const [port, inodes] of inodesByPort) {
    owners.set(port, { port, inode: inodes[0] ?? 0 });
    for (const inode of inodes) portByInode.set(`socket:[${inode}]`, port);
  }

  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d));
  } catch {
    return owners;
  }
  let unresolved = owners.size;
  for (const pid of pids) {
    if (unresolved === 0) break;
    let fds: string[];
    try {
      fds = await readdir(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to look at
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = await readlink(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const port = portByInode.get(target);
      if (port === undefined) continue;
      const owner = owners.get(port);
      if (owner === undefined || owner.pid !== undefined) continue;
      owner.pid = Number(pid);
      owner.inode = Number(target.slice(8, -1));
      try {
        owner.command = (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
      } catch {
        // exited meanwhile: keep the pid
      }
      unresolved -= 1;
    }
  }
  return owners;
}
