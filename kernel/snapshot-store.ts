/**
 * Where unit snapshots live (docs/adr/0006-warm-restart.md): Redis when the
 * kernel has it (adapters/redis/redis-snapshot-store.ts), local files
 * otherwise, and local files while Redis refuses writes. A read takes the
 * newer of the two, so a snapshot written to a file during a Redis outage
 * is not shadowed by an older one in Redis.
 */
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { StateReader } from './actor-state.js';
import type { Logger } from './logger.js';
import { readUnitHeader } from './unit-snapshot.js';

/** A place for unit snapshots (deflated bytes, kernel/unit-snapshot.ts), keyed by unit name. */
export interface SnapshotStore {
  /** Human-readable target for logs (`redis://…/<prefix>`, a folder). */
  readonly where: string;
  /** The latest snapshot of `unit`, or undefined when there is none. Rejects when the store cannot be read. */
  get(unit: string): Promise<Buffer | undefined>;
  /** Replace the snapshot of `unit` atomically. Rejects when it could not be written. */
  put(unit: string, bytes: Buffer): Promise<void>;
  close(): Promise<void>;
}

/** What a SnapshotStore module exports (loaded by URL in the worker, like a source module). */
export interface SnapshotStoreModule {
  createSnapshotStore(options: unknown, log: Logger): SnapshotStore | Promise<SnapshotStore>;
}

/** A unit name as a file name: anything outside [A-Za-z0-9._-] is %-escaped. */
export function unitFileName(unit: string): string {
  return `${unit.replace(/[^A-Za-z0-9._-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}.qsnap`;
}

/** One file per unit, replaced atomically (write a temporary file, fsync, rename). */
export class FileSnapshotStore implements SnapshotStore {
  readonly where: string;

  constructor(private readonly dir: string) {
    this.where = dir;
  }

  async get(unit: string): Promise<Buffer | undefined> {
    try {
      return await readFile(join(this.dir, unitFileName(unit)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async put(unit: string, bytes: Buffer): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const file = join(this.dir, unitFileName(unit));
    const tmp = `${file}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, file);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** When a (deflated) snapshot was taken, or −∞ when it cannot be read. */
function takenAt(bytes: Buffer | undefined): number {
  if (bytes === undefined) return -Infinity;
  try {
    return readUnitHeader(new StateReader(inflateSync(bytes))).takenAtMs;
  } catch {
    return -Infinity;
  }
}

/** Outcome of the last FallbackSnapshotStore.put, for counters. */
export type PutOutcome = 'primary' | 'fallback';

/**
 * Redis first, local files when Redis refuses; reads take the newer copy.
 * `lastPut` says where the last successful put went.
 */
export class FallbackSnapshotStore implements SnapshotStore {
  readonly where: string;
  lastPut: PutOutcome = 'primary';

  constructor(
    private readonly primary: SnapshotStore,
    private readonly fallback: SnapshotStore,
    private readonly log: Logger,
  ) {
    this.where = `${primary.where} (else ${fallback.where})`;
  }

  async get(unit: string): Promise<Buffer | undefined> {
    const [a, b] = await Promise.allSettled([this.primary.get(unit), this.fallback.get(unit)]);
    if (a.status === 'rejected') {
      this.log.warn({ err: a.reason, unit }, 'snapshot store unreadable; trying local files');
    }
    const pa = a.status === 'fulfilled' ? a.value : undefined;
    const pb = b.status === 'fulfilled' ? b.value : undefined;
    if (a.status === 'rejected' && b.status === 'rejected') throw a.reason;
    if (pa === undefined) return pb;
    if (pb === undefined) return pa;
    return takenAt(pb) > takenAt(pa) ? pb : pa;
  }

  async put(unit: string, bytes: Buffer): Promise<void> {
    try {
      await this.primary.put(unit, bytes);
      this.lastPut = 'primary';
    } catch (err) {
      this.log.warn({ err, unit }, 'snapshot not written to Redis: written to local files');
      await this.fallback.put(unit, bytes);
      this.lastPut = 'fallback';
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.primary.close(), this.fallback.close()]);
  }
}
