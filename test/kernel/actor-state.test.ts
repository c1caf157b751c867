/**
 * Warm restart, in process (docs/adr/0006-warm-restart.md): an actor's state
 * written at any tick and read into a fresh actor continues exactly like
 * the actor that never stopped; unit snapshots round-trip and refuse what
 * is torn or of another configuration; a ShardHost restores a unit from a
 * StateKeeper over files and skips what its actors already applied.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import fc from 'fast-check';
import t from 'tap';
import { FULL_FEATURE_SPECS } from '../../actors/indicators/feature-set.js';
import {
  createActorFactory,
  createOutputEncoder,
  resolveSymbolActorOptions,
} from '../../actors/symbol-actor-module.js';
import { SymbolActor } from '../../actors/symbol-actor.js';
import type { OutputSink } from '../../kernel/actor.js';
import { StateReader, StateWriter, readState, writeState } from '../../kernel/actor-state.js';
import { FrameRing } from '../../kernel/frame-ring.js';
import { createLogger } from '../../kernel/logger.js';
import { MarketKind, Side, newMarketEvent } from '../../kernel/market-record.js';
import type { OutputEvent } from '../../kernel/output-record.js';
import { ShardHost } from '../../kernel/shard-host.js';
import {
  FallbackSnapshotStore,
  FileSnapshotStore,
  type SnapshotStore,
} from '../../kernel/snapshot-store.js';
import { StateKeeper, stateFingerprint } from '../../kernel/state-keeper.js';
import {
  beginUnitSnapshot,
  parseUnitSnapshot,
  writeUnitEntry,
} from '../../kernel/unit-snapshot.js';
import { WORKER_COUNTER_WORDS, WorkerCounter } from '../../kernel/worker-protocol.js';

const T0 = 1_700_000_000_000_000;

/** Every indicator kind, a formula, a non-default strategy: as much state as the actor can hold. */
const RICH = resolveSymbolActorOptions({
  features: FULL_FEATURE_SPECS,
  formulas: [{ name: 'trend', expr: '(ema12 - ema26) / ema26' }],
  rule: { kind: 'maCross' },
  warmup: 5,
  windowCapacity: 64,
});

interface Tick {
  trade: boolean;
  px: number;
  dtUs: number;
  seqStep: number;
}

const tick: fc.Arbitrary<Tick> = fc.record({
  trade: fc.boolean(),
  // Mostly sane prices, sometimes a bad one (quarantined) or a spike.
  px: fc.oneof(
    { weight: 20, arbitrary: fc.double({ min: 90, max: 110, noNaN: true }) },
    { weight: 1, arbitrary: fc.constantFrom(0, -1, 1e6) },
  ),
  dtUs: fc.integer({ min: 0, max: 2_000_000 }),
  // 1: in order; 0: a duplicate; −1: out of order; 5: a gap.
  seqStep: fc.constantFrom(1, 1, 1, 1, 0, -1, 5),
});

/** What an output says, without the wall-clock stamps (feat, infer, emit). */
function outputKey(e: OutputEvent): string {
  return `${e.kind}:${e.srcSeq}:${e.srcTs}:${Array.from(e.payload).join(',')}`;
}

class Keys implements OutputSink {
  readonly keys: string[] = [];
  emit(e: OutputEvent): void {
    this.keys.push(outputKey(e));
  }
}

/** Feed `ticks[from, to)` to `actor`; state of the feed (seq, ts) carried in `clock`. */
function feed(
  actor: SymbolActor,
  ticks: readonly Tick[],
  from: number,
  to: number,
  clock: { seq: number; ts: number },
  sink: OutputSink,
): void {
  const ev = newMarketEvent();
  for (let i = from; i < to; i++) {
    const k = ticks[i]!;
    clock.seq += k.seqStep;
    clock.ts += k.dtUs;
    ev.symId = actor.symId;
    ev.seq = clock.seq;
    ev.ts = clock.ts;
    ev.recv = clock.ts + 300;
    if (k.trade) {
      ev.kind = MarketKind.TRADE;
      ev.px = k.px;
      ev.qty = 1 + (i % 3);
      ev.side = i % 2 === 0 ? Side.BUY : Side.SELL;
    } else {
      ev.kind = MarketKind.QUOTE;
      ev.bid = k.px - 0.05;
      ev.ask = k.px + 0.05;
      ev.bidQty = 2;
      ev.askQty = 3;
    }
    actor.onMarket(ev, sink);
  }
}

function stateBytes(a: SymbolActor): Buffer {
  const w = new StateWriter();
  a.writeState(w);
  return Buffer.from(w.bytes());
}

void t.test('state written at any tick and read into a fresh actor continues exactly', (t) => {
  let runs = 0;
  fc.assert(
    fc.property(fc.array(tick, { minLength: 1, maxLength: 400 }), fc.nat(), (ticks, cut) => {
      const k = cut % (ticks.length + 1);
      const straight = new SymbolActor(0, RICH);
      const a = new Keys();
      const ca = { seq: 0, ts: T0 };
      feed(straight, ticks, 0, k, ca, new Keys());
      const before = new SymbolActor(7, RICH);
      const cb = { seq: 0, ts: T0 };
      feed(before, ticks, 0, k, cb, new Keys());
      // "Restart": a fresh actor (another symbol id, as after a restart) reads the state.
      const after = new SymbolActor(3, RICH);
      after.readState(new StateReader(stateBytes(before)));
      const b = new Keys();
      feed(straight, ticks, k, ticks.length, ca, a);
      feed(after, ticks, k, ticks.length, cb, b);
      t.strictSame(b.keys, a.keys);
      t.ok(stateBytes(after).equals(stateBytes(straight)), 'same state at the end');
      t.strictSame(Array.from(after.featureValues), Array.from(straight.featureValues));
      runs++;
      return true;
    }),
    { numRuns: 60 },
  );
  t.equal(runs, 60, 'every run compared');
  t.end();
});

void t.test('the state holds what matters, and not the configuration or the symbol id', (t) => {
  const a = new SymbolActor(5, RICH);
  const shape = a.stateShape();
  for (const part of [
    '$.trades.columns.px:Float64Array:512',
    '$.quotes.columns.bid:Float64Array:512',
    '$.featureSet.values:Float64Array',
    '$.gate.lastTs:f64',
    '$.strategy.',
    '$.quality.',
    '$.bars.0.',
  ]) {
    t.ok(shape.includes(part), `shape names ${part}`);
  }
  for (const absent of [
    '$.symId',
    '$.options',
    '$.plan',
    '$.decisions',
    '$.out',
    '$.featureSet.index',
  ]) {
    t.notOk(
      shape.split('\n').some((l) => l.startsWith(`${absent}.`) || l.startsWith(`${absent}:`)),
      `no ${absent}`,
    );
  }
  // The aliased bar columns (bar window and its ring) are written once.
  t.notOk(shape.includes('$.bars.0.ring.columns'), 'aliased columns once');
  t.end();
});

void t.test('readState refuses a state of another shape, naming the path', (t) => {
  const small = new SymbolActor(0, { ...RICH, windowCapacity: 32 });
  const big = new SymbolActor(0, RICH);
  t.throws(() => big.readState(new StateReader(stateBytes(small))), {
    code: 'QLN_SNAPSHOT_INVALID',
    message: /\$\.trades\.columns\.ts: 256 bytes in the snapshot, 512 in the actor/,
  });
  t.throws(() => big.readState(new StateReader(stateBytes(big).subarray(0, 100))), {
    code: 'QLN_SNAPSHOT_INVALID',
    message: /truncated/,
  });
  t.throws(
    () => writeState({ m: new Map() }, new StateWriter(), new Set()),
    { code: 'QLN_INVALID_ARGUMENT', message: /\$\.m is a Map/ },
    'a Map in the state is refused, not silently lost',
  );
  const o = { a: 1, b: true, c: new Float64Array([1, 2]), d: [{ e: 3 }], s: 'config' };
  const w = new StateWriter(4);
  writeState(o, w, new Set());
  const back = { a: 0, b: false, c: new Float64Array(2), d: [{ e: 0 }], s: 'other' };
  readState(back, new StateReader(Buffer.from(w.bytes())), new Set());
  t.strictSame(
    back,
    { ...o, s: 'other' },
    'numbers, booleans, typed arrays, nested arrays; strings untouched',
  );
  t.end();
});

const entry = fc.record({
  name: fc.string({ minLength: 1, maxLength: 40 }),
  streamSeq: fc.nat(),
  lastSeq: fc.oneof(fc.nat(), fc.constant(Number.NaN)),
  state: fc.uint8Array({ maxLength: 300 }),
});

void t.test('unit snapshots round-trip; any truncation is refused, never half-read', (t) => {
  let torn = 0;
  fc.assert(
    fc.property(
      fc.array(entry, { maxLength: 8 }),
      fc.string({ maxLength: 30 }),
      fc.nat(),
      fc.nat(),
      (entries, unit, position, cut) => {
        const w = new StateWriter(8);
        const count = beginUnitSnapshot(w, {
          fingerprint: 'f'.repeat(64),
          unit,
          takenAtMs: 17,
          position,
        });
        for (const e of entries) {
          writeUnitEntry(w, e.name, e.streamSeq, e.lastSeq, (sw) => sw.raw(e.state));
        }
        w.patchU32(count, entries.length);
        const bytes = Buffer.from(w.bytes());
        const back = parseUnitSnapshot(bytes);
        t.equal(back.header.unit, unit);
        t.equal(back.header.position, position);
        t.equal(back.entries.length, entries.length);
        back.entries.forEach((b, i) => {
          const e = entries[i]!;
          t.equal(b.name, e.name);
          t.equal(b.streamSeq, e.streamSeq);
          t.ok(Object.is(b.lastSeq, e.lastSeq));
          t.ok(Buffer.from(e.state).equals(b.state));
        });
        const at = cut % bytes.length;
        t.throws(() => parseUnitSnapshot(bytes.subarray(0, at)), { code: 'QLN_SNAPSHOT_INVALID' });
        torn++;
        return true;
      },
    ),
    { numRuns: 200 },
  );
  t.equal(torn, 200);
  t.end();
});

void t.test('the fingerprint changes with the options and the state shape', (t) => {
  const a = stateFingerprint({ warmup: 5 }, new SymbolActor(0, RICH));
  t.match(a, /^[0-9a-f]{64}$/);
  t.equal(stateFingerprint({ warmup: 5 }, new SymbolActor(9, RICH)), a, 'not the symbol id');
  t.not(stateFingerprint({ warmup: 6 }, new SymbolActor(0, RICH)), a, 'options');
  t.not(
    stateFingerprint({ warmup: 5 }, new SymbolActor(0, { ...RICH, windowCapacity: 128 })),
    a,
    'shape',
  );
  t.equal(stateFingerprint({}, { onMarket: () => undefined }), undefined, 'stateless actors: none');
  t.end();
});

/** A shard host over real rings, the symbol actor module, and a StateKeeper over `store`. */
function hostWith(
  options: unknown,
  store: SnapshotStore,
): { host: ShardHost; keeper: StateKeeper; counters: Float64Array } {
  const ctx = { shard: 0, shards: 1, options };
  const counters = new Float64Array(new SharedArrayBuffer(WORKER_COUNTER_WORDS * 8));
  const host = new ShardHost({
    shard: 0,
    shards: 1,
    out: FrameRing.create(1 << 20),
    store: FrameRing.create(1 << 20),
    counters,
    factory: createActorFactory(ctx),
    encoder: createOutputEncoder(ctx),
    outFullWaitMs: 0,
  });
  const probe = createActorFactory(ctx)(0, 'probe');
  const keeper = new StateKeeper({
    host,
    store,
    fingerprint: stateFingerprint(options, probe)!,
    intervalMs: 0,
    counters,
    log: createLogger('test', 'silent'),
  });
  host.restorer = (name) => keeper.restore(name);
  return { host, keeper, counters };
}

/** Trades of `syms` with stream sequences 1.., through `fn` (accept or replay). */
function trades(
  host: ShardHost,
  unit: number,
  syms: string[],
  from: number,
  to: number,
  fn: 'accept' | 'replay',
): void {
  const ev = newMarketEvent();
  for (let seq = from; seq <= to; seq++) {
    const sym = syms[seq % syms.length]!;
    ev.symId = host.intern(sym);
    ev.kind = MarketKind.TRADE;
    ev.seq = seq;
    ev.ts = T0 + seq * 1000;
    ev.recv = ev.ts;
    ev.px = 100 + Math.sin(seq);
    ev.qty = 1;
    ev.unit = unit;
    ev.streamSeq = seq;
    if (fn === 'accept') host.accept(ev, 'v');
    else host.replay(ev, 'v');
  }
}

void t.test(
  'a shard host restores a unit from its snapshot file and skips what it already applied',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'qilin-snap-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const syms = ['A', 'B', 'C'];
    const options = { warmup: 3 };

    // Run 1: 300 messages, snapshot, then 50 more that the snapshot does not hold.
    const one = hostWith(options, new FileSnapshotStore(dir));
    const r1 = await one.host.restore('js/S/d-p0');
    t.same(r1, { unit: 1, position: 0, symbols: 0 }, 'no snapshot yet: cold');
    trades(one.host, r1.unit, syms, 1, 300, 'accept');
    await one.keeper.snapshot();
    t.equal(one.counters[WorkerCounter.SNAPSHOTS], 1, 'one unit written');
    trades(one.host, r1.unit, syms, 301, 350, 'accept');

    // The uninterrupted reference: all 350.
    const ref = hostWith(options, new FileSnapshotStore(join(dir, 'unused')));
    trades(ref.host, (await ref.host.restore('js/S/d-p0')).unit, syms, 1, 350, 'accept');

    // Run 2: restore (position 300), replay 301..350 from the "stream", then the
    // durable redelivers 290..350 (unacked): stored, not applied twice.
    const two = hostWith(options, new FileSnapshotStore(dir));
    const r2 = await two.host.restore('js/S/d-p0');
    t.same(r2, { unit: 1, position: 300, symbols: 3 });
    t.equal(two.counters[WorkerCounter.RESTORED], 3);
    trades(two.host, r2.unit, syms, 301, 350, 'replay');
    t.equal(two.counters[WorkerCounter.REPLAYED], 50);
    trades(two.host, r2.unit, syms, 290, 350, 'accept');
    t.equal(two.counters[WorkerCounter.ALREADY_APPLIED], 61, 'redeliveries not applied twice');
    trades(two.host, r2.unit, syms, 351, 400, 'accept');
    trades(ref.host, 1, syms, 351, 400, 'accept');

    // Same indicator values and windows as the run that never stopped.
    await two.keeper.snapshot();
    await ref.keeper.snapshot();
    const read = async (d: string): Promise<ReturnType<typeof parseUnitSnapshot>> =>
      parseUnitSnapshot(inflateSync((await new FileSnapshotStore(d).get('js/S/d-p0'))!));
    const a = await read(dir);
    const b = await read(join(dir, 'unused'));
    t.equal(a.entries.length, 3);
    t.equal(a.header.position, 400);
    t.strictSame(
      a.entries.map((e) => [e.name, e.streamSeq]),
      b.entries.map((e) => [e.name, e.streamSeq]),
    );
    for (let i = 0; i < a.entries.length; i++) {
      const x = new SymbolActor(0, resolveSymbolActorOptions(options));
      const y = new SymbolActor(0, resolveSymbolActorOptions(options));
      x.readState(new StateReader(a.entries[i]!.state));
      y.readState(new StateReader(b.entries[i]!.state));
      t.strictSame(
        Array.from(x.featureSet.values),
        Array.from(y.featureSet.values),
        `${a.entries[i]!.name} indicators`,
      );
      t.strictSame(
        Array.from(x.trades.columns.px),
        Array.from(y.trades.columns.px),
        'trade window',
      );
    }
    t.end();
  },
);

void t.test('a snapshot of other options is refused: the unit starts cold, counted', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qilin-snap-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const one = hostWith({ warmup: 3 }, new FileSnapshotStore(dir));
  const u = (await one.host.restore('core/x')).unit;
  trades(one.host, u, ['A'], 1, 10, 'accept');
  await one.keeper.close();
  const two = hostWith({ warmup: 4 }, new FileSnapshotStore(dir));
  const r = await two.host.restore('core/x');
  t.same(r, { unit: 1, position: 0, symbols: 0 });
  t.equal(two.counters[WorkerCounter.SNAPSHOT_REFUSED], 1);
  t.equal(two.host.symbols, 0, 'nothing half-restored');
  t.end();
});

void t.test(
  'Redis refusing writes: snapshots go to files, and reads take the newer copy',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'qilin-snap-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const saved = new Map<string, Buffer>();
    let up = true;
    const redisLike: SnapshotStore = {
      where: 'fake redis',
      get: (u) => (up ? Promise.resolve(saved.get(u)) : Promise.reject(new Error('down'))),
      put: (u, b) => {
        if (!up) return Promise.reject(new Error('down'));
        saved.set(u, b);
        return Promise.resolve();
      },
      close: () => Promise.resolve(),
    };
    const log = createLogger('test', 'silent');
    const one = hostWith({}, new FallbackSnapshotStore(redisLike, new FileSnapshotStore(dir), log));
    const u = (await one.host.restore('core/y')).unit;
    trades(one.host, u, ['A'], 1, 10, 'accept');
    await one.keeper.snapshot();
    t.equal(saved.size, 1, 'in Redis');
    up = false;
    trades(one.host, u, ['A'], 11, 20, 'accept');
    await one.keeper.snapshot();
    t.equal(one.counters[WorkerCounter.SNAPSHOTS], 2);
    t.equal(one.counters[WorkerCounter.SNAPSHOT_FALLBACK], 1, 'second one to files');
    up = true;
    const two = hostWith({}, new FallbackSnapshotStore(redisLike, new FileSnapshotStore(dir), log));
    const r = await two.host.restore('core/y');
    t.equal(r.symbols, 1);
    t.equal(two.counters[WorkerCounter.RESTORED], 1);
    // The file copy (after 20 ticks) is newer than Redis's (after 10): replaying 11..20 applies nothing.
    trades(two.host, r.unit, ['A'], 11, 20, 'replay');
    t.equal(two.counters[WorkerCounter.REPLAYED], 0, 'restored from the newer (file) copy');
    trades(two.host, r.unit, ['A'], 21, 25, 'replay');
    t.equal(two.counters[WorkerCounter.REPLAYED], 5, 'and it goes on from there');
    t.end();
  },
);

void t.test(
  'restored without replay (core input), the live feed continues as a new session',
  (t) => {
    const a = new SymbolActor(0, RICH);
    const ticks: Tick[] = Array.from({ length: 50 }, (_, i) => ({
      trade: true,
      px: 100 + i / 10,
      dtUs: 1000,
      seqStep: 1,
    }));
    const clock = { seq: 0, ts: T0 };
    feed(a, ticks, 0, 50, clock, new Keys());
    const folded = a.features.trades;
    t.equal(folded, 50);
    const again = { seq: 0, ts: clock.ts };
    // The feed restarted at seq 1 while the kernel was down.
    const stale = new SymbolActor(1, RICH);
    stale.readState(new StateReader(stateBytes(a)));
    feed(stale, ticks, 0, 1, { ...again }, new Keys());
    t.equal(
      stale.features.trades,
      folded,
      'without resumeLive: seq 1 after 50 is out of order, quarantined',
    );
    const live = new SymbolActor(2, RICH);
    live.readState(new StateReader(stateBytes(a)));
    live.resumeLive();
    feed(live, ticks, 0, 1, { ...again }, new Keys());
    t.equal(live.features.trades, folded + 1, 'with resumeLive: folded in, a new session');
    t.end();
  },
);
