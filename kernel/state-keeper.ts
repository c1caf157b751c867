/**
 * StateKeeper: a shard worker's snapshots (docs/adr/0006-warm-restart.md).
 *
 * ```
 *  every intervalMs, and once on stop:
 *    for each unit whose actors applied something since its last snapshot:
 *      encode (synchronous: one consistent cut of the unit) ─► deflate (libuv pool) ─► store.put
 *  at start, per unit, when the source asks (MarketIngest.restore):
 *    store.get ─► inflate ─► header: unit name, fingerprint ─► each symbol: intern, readState
 *    ─► the unit's stream position, for the source to replay from
 * ```
 * A snapshot that cannot be used (other options or code: fingerprint; torn,
 * damaged, unreadable) is refused as a whole: logged with the reason,
 * counted, and the unit starts cold, never half-restored.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { deflate, inflate } from 'node:zlib';
import type { MarketActor } from './actor.js';
import { StateReader, StateWriter, snapshotInvalid } from './actor-state.js';
import type { Logger } from './logger.js';
import type { UnitRestore } from './market-source.js';
import type { ShardHost } from './shard-host.js';
import { FallbackSnapshotStore, type SnapshotStore } from './snapshot-store.js';
import {
  beginUnitSnapshot,
  readUnitEntry,
  readUnitHeader,
  writeUnitEntry,
} from './unit-snapshot.js';
import { WorkerCounter } from './worker-protocol.js';

const deflateAsync = promisify(deflate);
const inflateAsync = promisify(inflate);

/**
 * The fingerprint of an actor module's state: sha256 of the options it was
 * configured with and the shape of its state (kernel/actor-state.ts
 * shapeOf). Undefined when the actor keeps no snapshot state.
 */
export function stateFingerprint(options: unknown, probe: MarketActor): string | undefined {
  if (probe.stateShape === undefined || probe.writeState === undefined) return undefined;
  return createHash('sha256')
    .update('qilin-unit-snapshot\n')
    .update(JSON.stringify(options ?? null))
    .update('\n')
    .update(probe.stateShape())
    .digest('hex');
}

export interface StateKeeperOptions {
  host: ShardHost;
  store: SnapshotStore;
  fingerprint: string;
  /** Snapshot period, ms; 0: only on stop. */
  intervalMs: number;
  counters: Float64Array;
  log: Logger;
}

export class StateKeeper {
  private readonly o: StateKeeperOptions;
  private readonly w = new StateWriter(1 << 20);
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(opts: StateKeeperOptions) {
    this.o = opts;
  }

  /** Take snapshots every intervalMs from now on. */
  start(): void {
    if (this.o.intervalMs <= 0 || this.timer !== undefined) return;
    this.timer = setInterval(() => void this.snapshot(), this.o.intervalMs);
    this.timer.unref();
  }

  /** Restore unit `name` (MarketIngest.restore). Never rejects. */
  async restore(name: string): Promise<UnitRestore> {
    const { host, store, log, counters } = this.o;
    const unit = host.unitIndex(name);
    const cold: UnitRestore = { unit, position: 0, symbols: 0 };
    let bytes: Buffer | undefined;
    try {
      bytes = await store.get(name);
    } catch (err) {
      log.warn({ err, unit: name, store: store.where }, 'snapshot unreadable: unit starts cold');
      counters[WorkerCounter.SNAPSHOT_REFUSED]!++;
      return cold;
    }
    if (bytes === undefined) {
      log.info({ unit: name, store: store.where }, 'no snapshot: unit starts cold');
      return cold;
    }
    const t0 = Date.now();
    let symbols = 0;
    try {
      const r = new StateReader(await inflateAsync(bytes));
      const h = readUnitHeader(r);
      if (h.unit !== name) throw snapshotInvalid(`snapshot of unit ${h.unit}, not ${name}`);
      if (h.fingerprint !== this.o.fingerprint) {
        throw snapshotInvalid(
          'taken with other actor options or another code version (fingerprint differs): its state does not fit these actors',
        );
      }
      for (let i = 0; i < h.symbols; i++) {
        const e = readUnitEntry(r);
        // No stream position (core input): nothing is replayed, the live
        // feed continues as a new session (it may have restarted its seqs).
        const live = h.position === 0;
        host.restoreSymbol(unit, e.name, e.streamSeq, live ? NaN : e.lastSeq, (actor) => {
          const sr = new StateReader(e.state);
          actor.readState!(sr);
          if (sr.remaining !== 0) {
            throw snapshotInvalid(`${e.name}: ${sr.remaining} state bytes left over`);
          }
          if (live) actor.resumeLive?.();
        });
        symbols++;
      }
      host.setPosition(unit, h.position);
      counters[WorkerCounter.RESTORED]! += symbols;
      log.info(
        {
          unit: name,
          symbols,
          position: h.position,
          ageMs: Date.now() - h.takenAtMs,
          bytes: bytes.length,
          ms: Date.now() - t0,
        },
        'unit restored from its snapshot',
      );
      return { unit, position: h.position, symbols };
    } catch (err) {
      counters[WorkerCounter.SNAPSHOT_REFUSED]!++;
      counters[WorkerCounter.RESTORED]! += symbols;
      log.warn(
        { err, unit: name, restored: symbols, store: store.where },
        'snapshot refused: unit starts cold',
      );
      // Symbols restored before the bad one keep their state but not a
      // position: the stream cannot be replayed for part of a unit.
      return cold;
    }
  }

  /** Snapshot every unit that changed (one round at a time). */
  snapshot(): Promise<void> {
    this.running ??= this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Stop the timer, take a last snapshot (after any round in progress), close the store. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    await this.snapshot();
    await this.o.store.close();
  }

  private async round(): Promise<void> {
    const { host, store, counters, log } = this.o;
    const t0 = Date.now();
    let bytes = 0;
    let written = 0;
    let block = 0;
    const units = host.units;
    for (let u = 1; u < units.length; u++) {
      if (!host.dirty(u)) continue;
      host.markClean(u);
      const name = units[u]!;
      // Synchronous from here to deflate's copy: one consistent cut of the unit.
      const w = this.w;
      const e0 = performance.now();
      const count = beginUnitSnapshot(w, {
        fingerprint: this.o.fingerprint,
        unit: name,
        takenAtMs: Date.now(),
        position: host.position(u),
      });
      let n = 0;
      host.forEachOfUnit(u, (sym, actor, streamSeq, lastSeq) => {
        writeUnitEntry(w, sym, streamSeq, lastSeq, (sw) => actor.writeState!(sw));
        n++;
      });
      w.patchU32(count, n);
      block = Math.max(block, performance.now() - e0);
      try {
        // No copy: the writer is not touched again until deflate has read it.
        const z = await deflateAsync(w.bytes(), { level: 1 });
        await store.put(name, z);
        bytes += z.length;
        written++;
        counters[WorkerCounter.SNAPSHOTS]!++;
        if (store instanceof FallbackSnapshotStore && store.lastPut === 'fallback') {
          counters[WorkerCounter.SNAPSHOT_FALLBACK]!++;
        }
      } catch (err) {
        host.markDirty(u);
        counters[WorkerCounter.SNAPSHOT_FAILED]!++;
        log.error({ err, unit: name, store: store.where }, 'snapshot not written');
      }
    }
    if (written > 0) {
      counters[WorkerCounter.SNAPSHOT_BYTES] = bytes;
      counters[WorkerCounter.SNAPSHOT_MS] = Date.now() - t0;
      counters[WorkerCounter.SNAPSHOT_BLOCK_MS] = block;
      log.debug({ units: written, bytes, ms: Date.now() - t0 }, 'snapshot round');
    }
  }
}
