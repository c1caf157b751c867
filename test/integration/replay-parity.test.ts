/**
 * Parity: a live session recorded by a real kernel (NATS in, shard workers,
 * risk, the store), then replayed from the store's `ticks` (arrival order)
 * through the replay engine, reproduces the live session's signals exactly:
 * same ids, sides, strengths and prices, whatever the number of replay
 * workers.
 *
 * The actors run with `emitEveryTick` (SIGNAL_EVERY_TRADE): every trade past
 * the warm-up proposes the strategy's target, so the live signals do not
 * depend on when the main thread's approvals reach the workers (the decision
 * board, which a replay replaces by the actor's own approvals; see
 * backtest/README.md "Parity").
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import t from 'tap';
import { KernelApp } from '../../cli/kernel-app.js';
import { BASELINE_MODEL } from '../../actors/symbol-actor-module.js';
import { OutputDecoder } from '../../actors/output-decoder.js';
import { replay, type ReplayConsumer } from '../../backtest/replay-engine.js';
import { openTickSource } from '../../backtest/sources/open-source.js';
import { OutputKind, newOutputEvent } from '../../kernel/output-record.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { MarketFeed } from '../helpers/market-feed.js';
import { ensureServices, connectAs } from '../helpers/services.js';
import { SIGNAL_EVERY_TRADE, testKernelConfig } from '../helpers/test-kernel.js';
import { until } from '../helpers/wait.js';

const run = randomBytes(3).toString('hex');
const strategy = `rp${run}`;
const account = `acct${run}`;

interface Sig {
  id: string;
  side: string;
  strength: number;
  ref_px: number;
}

const key = (s: Sig): string => `${s.id} ${s.side} ${s.strength} ${s.ref_px}`;

void t.test('a replay of a recorded live session reproduces its signals exactly', async (t) => {
  const urls = await ensureServices();
  const db = `qilin_rp_${run}`;
  const config = await testKernelConfig(urls, db, `rp-read-${run}`, { ...SIGNAL_EVERY_TRADE });
  const app = new KernelApp({ config, log: pino({ level: 'silent' }), strategy, account });
  await app.start();
  const nc = await connectAs('admin', { name: 'replay-parity-test' });
  t.teardown(async () => {
    await nc.drain();
    await app.close();
    await app.store.close();
    await dropDatabase(urls.clickhouseUrl, db);
  });

  // The live session: four symbols trending up, down, up again, with quotes between trades.
  const feed = new MarketFeed(nc, `v${run}`);
  const syms = ['AAA', 'BBB', 'CCC', 'DDD'].map((s) => `${s}${run}`);
  let sent = 0;
  for (const [i, s] of syms.entries()) {
    let px = 50 + i * 10;
    for (const dir of [1, -1, 1, -1] as const) {
      px = feed.trend(s, 25, dir, px);
      sent += 50;
    }
  }
  const accepted = (): number => app.pool.stats().reduce((n, s) => n + s.accepted, 0);
  await until('every tick accepted', () => accepted() >= sent, 60_000);
  const stored = async (table: string): Promise<number> =>
    Number(
      (
        (await app.store.query(`SELECT count() AS n FROM ${db}.${table}`)) as Array<{ n: string }>
      )[0]!.n,
    );
  await until(
    'the session stored',
    async () => {
      await app.store.flush();
      return (await stored('ticks')) >= sent;
    },
    60_000,
  );
  let live: Sig[] = [];
  await until(
    'the live signals stored (stable)',
    async () => {
      await app.store.flush();
      const rows = (await app.store.query(
        `SELECT id, side, strength, ref_px FROM ${db}.signals WHERE strategy = '${strategy}' ORDER BY id`,
      )) as unknown as Sig[];
      const same = rows.length > 0 && rows.length === live.length;
      live = rows.map((r) => ({ ...r, strength: Number(r.strength), ref_px: Number(r.ref_px) }));
      return same;
    },
    60_000,
    300,
  );
  t.equal(await stored('ticks'), sent, `${sent} ticks recorded`);
  t.ok(live.length > 100, `${live.length} live signals`);
  t.ok(live.some((s) => s.side === 'buy') && live.some((s) => s.side === 'sell'), 'buys and sells');

  // The replay: the stored ticks in arrival order through the same actors.
  const replayStore = async (workers: number, actor: Record<string, unknown>): Promise<Sig[]> => {
    const source = await openTickSource('store', { config, store: app.store });
    const decoder = new OutputDecoder({ strategy, account, model: BASELINE_MODEL });
    const ev = newOutputEvent();
    const replayed: Sig[] = [];
    const consumer: ReplayConsumer = {
      onChunk(_c, symbols, outs) {
        for (let k = 0; k < outs.count; k++) {
          const e = outs.decode(k, ev);
          if (e.kind !== OutputKind.SIGNAL) continue;
          const s = decoder.toSignal(e, symbols[e.symId]!);
          replayed.push({ id: s.id, side: s.side, strength: s.strength, ref_px: s.refPx });
        }
      },
    };
    const stats = await replay(source, consumer, {
      workers,
      chunkTicks: 97,
      actorOptions: { ...actor, strategy, account },
    });
    await source.close();
    t.equal(stats.ticks, sent, `${workers} workers: every stored tick replayed`);
    return replayed.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  };
  const liveKeys = live.map(key);
  for (const workers of [1, 2]) {
    const replayed = await replayStore(workers, { ...config.actor });
    t.equal(replayed.length, live.length, `${workers} workers: as many signals as live`);
    const replayKeys = replayed.map(key);
    const differ = liveKeys.filter((k, i) => replayKeys[i] !== k);
    t.same(differ, [], `${workers} workers: same ids, sides, strengths and prices`);
    t.same(replayKeys, liveKeys);
  }
  // The comparison can fail: other actor options (a longer warm-up) give other signals.
  const other = await replayStore(1, { ...config.actor, warmup: 40 });
  t.not(other.map(key).join('\n'), liveKeys.join('\n'), 'another configuration: other signals');
});
