import { randomUUID } from 'node:crypto';
import type { MsgHdrs, PublishOptions } from '@nats-io/transport-node';
import t from 'tap';
import { connectNats, drainNats } from '../../../adapters/nats/nats-connection.js';
import { TickBinaryCodec } from '../../../adapters/nats/tick-binary-codec.js';
import { TickJsonDecoder } from '../../../adapters/nats/tick-json-decoder.js';
import { createLogger } from '../../../kernel/logger.js';
import { MarketKind, newMarketEvent } from '../../../kernel/market-record.js';
import { MarketSimulator, type SimMessage } from '../../../ops/sim/market-simulator.js';
import { ensureServices, natsSeedFile } from '../../helpers/services.js';

const log = createLogger('market-simulator-test', process.env['QILIN_LOG_LEVEL'] ?? 'warn');
const TS = 1_732_300_000_000_000;

/** A publisher that keeps what it is given. */
class Collector {
  readonly got: { subject: string; data: Uint8Array; headers: MsgHdrs | undefined }[] = [];
  flushes = 0;
  publish(subject: string, data?: Uint8Array | string, opts?: Partial<PublishOptions>): void {
    this.got.push({ subject, data: data as Uint8Array, headers: opts?.headers });
  }
  flush(): Promise<void> {
    this.flushes++;
    return Promise.resolve();
  }
}

void t.test('same seed, same market', (t) => {
  const a = new MarketSimulator({ symbols: 3, rate: 100, seed: 42, badRate: 0.05 });
  const b = new MarketSimulator({ symbols: 3, rate: 100, seed: 42, badRate: 0.05 });
  const c = new MarketSimulator({ symbols: 3, rate: 100, seed: 43, badRate: 0.05 });
  const dec = new TextDecoder();
  const seqA = Array.from({ length: 500 }, () => dec.decode(a.nextMessage(TS).data));
  const seqB = Array.from({ length: 500 }, () => dec.decode(b.nextMessage(TS).data));
  const seqC = Array.from({ length: 500 }, () => dec.decode(c.nextMessage(TS).data));
  t.same(seqA, seqB);
  t.not(seqA.join(), seqC.join());
  t.same(a.symbols(), ['BTC-USD', 'ETH-USD', 'SOL-USD']);
  t.same(new MarketSimulator({ symbols: 14, rate: 1 }).symbols().slice(11), [
    'ATOM-USD',
    'SYM0001',
    'SYM0002',
  ]);
  t.end();
});

void t.test('trend regimes trend, and an EMA 12/26 crossover follows them', (t) => {
  const sim = new MarketSimulator({ symbols: 1, rate: 50, seed: 7, badRate: 0, gapRate: 0 });
  const msgs: SimMessage[] = Array.from({ length: 20_000 }, () => sim.nextMessage(TS));
  // Contiguous regime segments.
  const segments: { regime: string; mids: number[] }[] = [];
  for (const m of msgs) {
    const last = segments.at(-1);
    if (last?.regime === m.regime) last.mids.push(m.mid);
    else segments.push({ regime: m.regime, mids: [m.mid] });
  }
  const ups = segments.filter((s) => s.regime === 'up' && s.mids.length >= 250);
  const downs = segments.filter((s) => s.regime === 'down' && s.mids.length >= 250);
  t.ok(
    ups.length >= 2 && downs.length >= 2,
    `several trend segments (${ups.length} up, ${downs.length} down)`,
  );
  for (const s of ups) t.ok(s.mids.at(-1)! > s.mids[0]!, `up segment of ${s.mids.length} rises`);
  for (const s of downs)
    t.ok(s.mids.at(-1)! < s.mids[0]!, `down segment of ${s.mids.length} falls`);

  // EMA 12/26 on trade prices: after ~5 s of a regime (250 msgs at 50/s), fast above slow in up-trends.
  const alpha = (n: number) => 2 / (n + 1);
  let fast = NaN;
  let slow = NaN;
  const agree = { up: [0, 0], down: [0, 0] };
  let regimeAge = 0;
  let prev = '';
  const dec = new TextDecoder();
  for (const m of msgs) {
    regimeAge = m.regime === prev ? regimeAge + 1 : 0;
    prev = m.regime;
    const body = JSON.parse(dec.decode(m.data)) as { type: string; px?: number };
    if (body.type !== 'trade' || body.px === undefined) continue;
    fast = Number.isNaN(fast) ? body.px : fast + alpha(12) * (body.px - fast);
    slow = Number.isNaN(slow) ? body.px : slow + alpha(26) * (body.px - slow);
    if (regimeAge < 150 || m.regime === 'revert') continue;
    const bucket = agree[m.regime];
    bucket[1]!++;
    if (m.regime === 'up' ? fast > slow : fast < slow) bucket[0]!++;
  }
  t.ok(
    agree.up[0]! / agree.up[1]! > 0.8,
    `EMA12 > EMA26 in up-trends (${agree.up[0]}/${agree.up[1]})`,
  );
  t.ok(
    agree.down[0]! / agree.down[1]! > 0.8,
    `EMA12 < EMA26 in down-trends (${agree.down[0]}/${agree.down[1]})`,
  );
  t.end();
});

for (const binary of [false, true]) {
  void t.test(
    `run (${binary ? 'binary' : 'JSON'}): paced, every good message validates, bad ones count`,
    async (t) => {
      const sim = new MarketSimulator({
        symbols: 5,
        rate: 20_000,
        durationMs: 400,
        seed: 3,
        badRate: 0.03,
        gapRate: 0.02,
        binary,
      });
      const nc = new Collector();
      const progress: number[] = [];
      const stats = await sim.run(nc, (s) => progress.push(s.sent));
      t.equal(stats.sent, nc.got.length, 'sent counts every publish');
      t.ok(
        stats.sent > 2000 && stats.sent <= 8000 + 1,
        `rate roughly honoured (${stats.sent} in ${stats.elapsedMs.toFixed(0)} ms)`,
      );
      t.ok(nc.flushes >= 2, 'flushed periodically');
      t.equal(stats.trades + stats.quotes + stats.bad, stats.sent);
      const decoder = binary ? new TickBinaryCodec() : new TickJsonDecoder();
      const ev = newMarketEvent();
      let refused = 0;
      let gaps = 0;
      let quotes = 0;
      const lastSeq = new Map<string, number>();
      const wantType = binary ? 'application/x-qilin-tick' : undefined;
      t.ok(
        nc.got.every((m) => m.headers?.get('Content-Type') === wantType),
        'Content-Type header',
      );
      for (const m of nc.got) {
        const r = decoder.decode(m.subject, m.data, ev);
        if (!r.ok) {
          refused++;
          continue;
        }
        if (ev.kind === MarketKind.QUOTE) quotes++;
        const prev = lastSeq.get(r.sym);
        if (prev !== undefined) {
          if (ev.seq <= prev) throw new Error(`seq went back on ${r.sym}`);
          if (ev.seq > prev + 1) gaps++;
        }
        lastSeq.set(r.sym, ev.seq);
      }
      t.equal(refused, stats.bad, 'refused = stats.bad');
      t.ok(stats.bad > 0, 'some bad messages were sent');
      t.equal(gaps, stats.gaps, 'seq gaps = stats.gaps');
      t.equal(quotes, stats.quotes);
      t.equal(lastSeq.size, 5);
    },
  );
}

void t.test('run stops on abort', async (t) => {
  const sim = new MarketSimulator({ symbols: 2, rate: 1000, seed: 1 });
  const ac = new AbortController();
  const nc = new Collector();
  const done = sim.run(nc, undefined, ac.signal);
  setTimeout(() => ac.abort(), 100);
  const stats = await done;
  t.ok(stats.sent > 0 && stats.sent === nc.got.length);
});

void t.test('options are validated', (t) => {
  t.throws(() => new MarketSimulator({ symbols: 1, rate: 0 }), { code: 'QLN_INVALID_ARGUMENT' });
  t.throws(() => new MarketSimulator({ symbols: ['a.b'], rate: 1 }), {
    code: 'QLN_INVALID_ARGUMENT',
  });
  t.throws(() => new MarketSimulator({ symbols: 1, rate: 1, badRate: 2 }), {
    code: 'QLN_INVALID_ARGUMENT',
  });
  t.end();
});

void t.test('publishes to a real nats-server', async (t) => {
  const { natsUrl } = await ensureServices();
  const nc = await connectNats({
    servers: natsUrl,
    seedFile: await natsSeedFile('admin'),
    name: 'test-sim',
    log,
  });
  t.teardown(() => drainNats(nc));
  const venue = `sim${randomUUID().slice(0, 8)}`;
  let received = 0;
  const sub = nc.subscribe(`md.${venue}.>`, { callback: () => void received++ });
  await nc.flush();
  const sim = new MarketSimulator({ symbols: 4, venue, rate: 2000, durationMs: 300, seed: 9 });
  const stats = await sim.run(nc);
  await nc.flush(); // after the server echoed our flush, everything we sent has been delivered to us
  await sub.drain();
  t.equal(received, stats.sent);
});
