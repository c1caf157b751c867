/**
 * GeneratedTickSource: the very ticks backtest-run.ts's loop feeds its
 * actors (same sequence of events, same counts as `runBacktest`), any chunk
 * size, and flat memory over 600k ticks.
 */
import t from 'tap';
import { TickJsonDecoder } from '../../../adapters/nats/tick-json-decoder.js';
import { runBacktest } from '../../../backtest/backtest-run.js';
import { GeneratedTickSource } from '../../../backtest/sources/generated-source.js';
import { newTickChunk, readTick } from '../../../backtest/tick-chunk.js';
import { newMarketEvent, type MarketEvent } from '../../../kernel/market-record.js';
import { MarketSimulator } from '../../../ops/sim/market-simulator.js';
import { heapAfterGc } from './source-fixtures.js';

type Ev = Omit<MarketEvent, 'streamSeq' | 'unit'> & { sym: string };

/** backtest-run.ts's loop, as it stands, with the actors replaced by a list. */
function backtestRunEvents(o: {
  symbols: number;
  messages: number;
  seed: number;
  stepUs: number;
}): {
  events: Ev[];
  rejected: number;
} {
  const T0_US = 1_767_225_600_000_000;
  const sim = new MarketSimulator({
    symbols: o.symbols,
    rate: 1,
    seed: o.seed,
    badRate: 0,
    gapRate: 0,
  });
  const decoder = new TickJsonDecoder();
  const ids = new Map<string, number>();
  const names: string[] = [];
  const ev = newMarketEvent();
  const events: Ev[] = [];
  let rejected = 0;
  let now = T0_US;
  for (let m = 0; m < o.messages; m++) {
    now += o.stepUs;
    const msg = sim.nextMessage(now);
    const r = decoder.decode(msg.subject, msg.data, ev);
    if (!r.ok) {
      rejected++;
      continue;
    }
    let id = ids.get(r.sym);
    if (id === undefined) {
      id = names.length;
      ids.set(r.sym, id);
      names.push(r.sym);
    }
    ev.symId = id;
    ev.recv = ev.ts;
    events.push(comparable(ev, r.sym));
  }
  return { events, rejected };
}

/** The fields a tick carries (a trade's quote fields and a quote's trade fields do not count). */
function comparable(e: MarketEvent, sym: string): Ev {
  const trade = e.kind === 1;
  return {
    kind: e.kind,
    sym,
    symId: e.symId,
    seq: e.seq,
    ts: e.ts,
    recv: e.recv,
    px: trade ? e.px : 0,
    qty: trade ? e.qty : 0,
    side: trade ? e.side : 0,
    bid: trade ? 0 : e.bid,
    bidQty: trade ? 0 : e.bidQty,
    ask: trade ? 0 : e.ask,
    askQty: trade ? 0 : e.askQty,
  };
}

const opts = { symbols: 5, messages: 20_000, seed: 3, stepUs: 750 };

void t.test("the same sequence of events as backtest-run's loop, chunk 7 and 4096", async (t) => {
  const ref = backtestRunEvents(opts);
  t.ok(ref.events.length > 19_000, `${ref.events.length} events in the reference`);
  for (const cap of [7, 4096]) {
    const src = new GeneratedTickSource(opts);
    t.equal(src.total, opts.messages, 'total = messages');
    const c = newTickChunk(cap);
    const ev = newMarketEvent();
    const got: Ev[] = [];
    for (let n = await src.next(c); n > 0; n = await src.next(c)) {
      for (let i = 0; i < n; i++) {
        readTick(c, i, ev);
        got.push(comparable(ev, src.symbols[ev.symId]!));
      }
    }
    t.equal(got.length, ref.events.length, `chunk ${cap}: as many ticks`);
    t.same(got, ref.events, `chunk ${cap}: identical events in the same order`);
    t.equal(src.read, got.length);
    t.equal(src.rejected, ref.rejected);
    t.equal(src.read + src.rejected, opts.messages, 'every message accounted for');
    await src.close();
  }
});

void t.test('as many ticks and rejects as runBacktest itself counts', async (t) => {
  const r = runBacktest({
    ...opts,
    messages: 5_000,
    strategy: 'momentum',
    account: 'bt',
    actor: {},
    risk: {},
    fill: {},
    initialCash: 1_000_000,
    sampleIntervalUs: 1_000_000,
    codeVersion: 'test',
  });
  const src = new GeneratedTickSource({ ...opts, messages: 5_000 });
  const c = newTickChunk(1000);
  while ((await src.next(c)) > 0);
  t.equal(src.read, r.ticks, `${r.ticks} ticks`);
  t.equal(src.rejected, r.rejectedTicks);
});

void t.test('another seed, another market; bad options refused', async (t) => {
  const a = new GeneratedTickSource({ ...opts, messages: 50 });
  const b = new GeneratedTickSource({ ...opts, messages: 50, seed: 4 });
  const ca = newTickChunk(50);
  const cb = newTickChunk(50);
  await a.next(ca);
  await b.next(cb);
  t.not(Array.from(ca.px).join(), Array.from(cb.px).join());
  t.throws(() => new GeneratedTickSource({ messages: 0 }), { code: 'QLN_INVALID_ARGUMENT' });
  t.throws(() => new GeneratedTickSource({ stepUs: -1 }), { code: 'QLN_INVALID_ARGUMENT' });
  t.throws(() => new GeneratedTickSource({ symbols: 1.5 }), { code: 'QLN_INVALID_ARGUMENT' });
});

void t.test('memory stays flat: 600k ticks in chunks of 10k', async (t) => {
  const n = 600_000;
  const src = new GeneratedTickSource({ symbols: 8, messages: n, seed: 11 });
  const c = newTickChunk(10_000);
  await src.next(c);
  const before = heapAfterGc();
  let peak = 0;
  let chunks = 1;
  let last = 0;
  while ((await src.next(c)) > 0) {
    last = c.ts[c.length - 1]!;
    if (++chunks % 40 === 0) peak = Math.max(peak, heapAfterGc() - before);
  }
  peak = Math.max(peak, heapAfterGc() - before);
  t.equal(src.read + src.rejected, n, `${src.read} ticks in ${chunks} chunks`);
  t.ok(last > 0, 'the last chunk was filled');
  // 600k ticks kept in any form would be ≥ 52 MB (88 B each in columns); one column alone 4.8 MB.
  t.ok(peak < 4e6, `memory grew ${(peak / 1e6).toFixed(1)} MB over 600k ticks (bound 4 MB)`);
});
