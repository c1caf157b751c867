/**
 * Strategies and data quality end to end, on the real local NATS, Redis and
 * ClickHouse, with the kernel's default gating (not a signal per tick):
 * kill/resume re-sends the current view, a venue sequence reset starts a new
 * session, hard failures are quarantined with the tick, and signals from a
 * low-quality window are suppressed with reason low_quality.
 */
import { randomBytes } from 'node:crypto';
import { type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { pino } from 'pino';
import t from 'tap';
import { KernelApp } from '../../cli/kernel-app.js';
import type { QualityMessage, RiskRejection, SignalMessage } from '../../kernel/messages.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { MarketFeed } from '../helpers/market-feed.js';
import { ensureServices, connectAs } from '../helpers/services.js';
import { testKernelConfig } from '../helpers/test-kernel.js';
import { until } from '../helpers/wait.js';

const run = randomBytes(3).toString('hex');
const strategy = `sq${run}`;
const account = `acct${run}`;
const READ_KEY = `sq-read-${run}`;

function collect<T>(nc: NatsConnection, subject: string): { items: T[]; sub: Subscription } {
  const items: T[] = [];
  const sub = nc.subscribe(subject, {
    callback: (err, msg) => {
      if (err === null) items.push(msg.json<T>());
    },
  });
  return { items, sub };
}

void t.test('strategies and data quality, live', async (t) => {
  const urls = await ensureServices();
  const db = `qilin_sq_${run}`;
  const config = await testKernelConfig(urls, db, READ_KEY, {
    actor: {
      warmup: 10,
      // exchange time: ticks are 10 ms apart in this test
      minIntervalUs: 20_000,
      retryMaxUs: 80_000,
      qualityWindowTicks: 20,
      // The feed's exchange clock runs ahead of the wall clock (10 ms a tick,
      // published in bursts): not clock skew here (the check has unit tests).
      maxSkewUs: 3_600_000_000,
    },
    risk: { maxSignalsPerSec: 100_000, maxPosition: 1_000_000, maxNotional: 1e12 },
  });
  const app = new KernelApp({ config, log: pino({ level: 'silent' }), strategy, account });
  await app.start();
  const nc = await connectAs('admin', { name: 'strategy-quality-test' });
  t.teardown(async () => {
    await nc.drain();
    await app.close();
    await app.store.close();
    await dropDatabase(urls.clickhouseUrl, db);
  });
  const signals = collect<SignalMessage>(nc, `sig.${strategy}.>`);
  const rejected = collect<RiskRejection>(nc, 'risk.rejected.>');
  const quality = collect<QualityMessage>(nc, 'quality.>');
  await nc.flush();
  const feed = new MarketFeed(nc, `v${run}`);
  const of = <T extends { sym: string }>(xs: T[], sym: string): T[] =>
    xs.filter((x) => x.sym === sym);

  await t.test('a second kernel on the same port is refused, naming the owner', async (t) => {
    const second = new KernelApp({
      config: { ...config, httpPort: app.port },
      log: pino({ level: 'silent' }),
      strategy: `${strategy}b`,
      account,
    });
    await t.rejects(second.start(), {
      code: 'QLN_SERVICE_PORT_IN_USE',
      message: new RegExp(`port ${app.port} is already in use by pid ${process.pid}`),
    });
    await second.close();
  });

  await t.test('a signal rejected while killed is sent after resume', async (t) => {
    const K = `KR${run}`;
    const killed = await nc.request('ctl.risk.kill', JSON.stringify({ by: 'sq', reason: 'test' }), {
      timeout: 3000,
    });
    t.match(killed.json(), { killed: true });
    const px = feed.trend(K, 40, 1);
    await until('a buy rejected with kill_switch', () =>
      rejected.items.some(
        (r) => r.signal.sym === K && r.reason === 'kill_switch' && r.signal.side === 'buy',
      ),
    );
    t.equal(of(signals.items, K).length, 0, 'nothing published while killed');
    const resumed = await nc.request(
      'ctl.risk.resume',
      JSON.stringify({ by: 'sq', reason: 'done' }),
      { timeout: 3000 },
    );
    t.match(resumed.json(), { killed: false });
    const lastKilledSeq = feed.seqs.get(K)!;
    // The trend keeps its direction: the strategy's view (buy) never changes.
    feed.trend(K, 5, 1, px);
    await until('the buy is sent after resume', () =>
      of(signals.items, K).some((s) => s.side === 'buy' && s.src.seq > lastKilledSeq),
    );
    const sent = of(signals.items, K);
    t.equal(sent[0]!.side, 'buy');
    t.ok(
      sent[0]!.src.seq <= lastKilledSeq + 4,
      `sent on the first trades after resume (seq ${sent[0]!.src.seq})`,
    );
    // Once approved, the same view is not sent again.
    const n = sent.length;
    const after = feed.trend(K, 10, 1, px * 1.01);
    t.ok(after > px);
    await nc.flush();
    await until('the later trend ticks are processed', () =>
      quality.items.some((q) => q.sym === K && q.src.seq >= feed.seqs.get(K)! - 20),
    );
    t.ok(of(signals.items, K).length - n <= 1, 'no repeated buy (at most a strength refresh)');
  });

  await t.test('a venue sequence reset starts a new session, reported once', async (t) => {
    const R = `RS${run}`;
    feed.seqs.set(R, 5000);
    const px = feed.trend(R, 20, 1);
    feed.seqs.set(R, 0); // the venue restarts from seq 1, with newer exchange times
    feed.trend(R, 30, 1, px);
    await until('a reset quality event on NATS', () =>
      of(quality.items, R).some((q) => q.kind === 'reset'),
    );
    const resets = of(quality.items, R).filter((q) => q.kind === 'reset');
    t.equal(resets.length, 1, 'reported once');
    t.equal(resets[0]!.src.seq, 1, 'on the first tick of the new session');
    t.equal(resets[0]!.session, 1);
    await until('a window end of the new session', () =>
      of(quality.items, R).some((q) => q.kind === 'window' && q.session === 1 && q.src.seq > 20),
    );
    const win = of(quality.items, R).find(
      (q) => q.kind === 'window' && q.session === 1 && q.src.seq > 20,
    )!;
    t.equal(win.window.outOfOrder, 0, 'the new session is not out of order');
    t.equal(win.window.quarantined, 0, 'nothing held out');
    t.equal(win.score, 1, `clean: ${JSON.stringify(win.issues)}`);
    await until('predictions of the new session stored', async () => {
      await app.store.flush();
      const rows = await app.store.query(
        `SELECT count() AS n FROM predictions WHERE sym = '${R}' AND src_seq <= 60`,
      );
      return Number(rows[0]?.['n']) > 0;
    });
    const rows = await app.store.query(
      `SELECT count() AS n, max(session) AS s FROM quality_events WHERE sym = '${R}' AND kind = 'reset'`,
    );
    t.equal(Number(rows[0]?.['n']), 1, 'one reset row in quality_events');
    t.equal(Number(rows[0]?.['s']), 1);
  });

  await t.test('a crossed quote is quarantined and stored with the tick', async (t) => {
    const Q = `QR${run}`;
    const px = feed.trend(Q, 12, 1);
    const bad = feed.quote(Q, px + 1, px - 1);
    feed.trend(Q, 3, 1, px);
    await until('a quarantine event on NATS', () =>
      of(quality.items, Q).some((q) => q.kind === 'quarantine'),
    );
    const q = of(quality.items, Q).find((x) => x.kind === 'quarantine')!;
    t.match(q.tick, { type: 'quote', seq: bad, bid: px + 1, ask: px - 1 });
    t.ok(q.issues.includes('crossed_quote'));
    t.equal(q.window.quarantined, 1);
    await until('the quarantine row', async () => {
      await app.store.flush();
      const rows = await app.store.query(
        `SELECT count() AS n FROM quality_events WHERE sym = '${Q}' AND kind = 'quarantine'`,
      );
      return Number(rows[0]?.['n']) === 1;
    });
    const rows = await app.store.query(
      `SELECT raw FROM quality_events WHERE sym = '${Q}' AND kind = 'quarantine'`,
    );
    const raw = JSON.parse(String(rows[0]?.['raw'])) as Record<string, unknown>;
    t.match(raw, { type: 'quote', sym: Q, seq: bad, bid: px + 1, ask: px - 1 });
  });

  await t.test('signals from a low-quality window are suppressed as low_quality', async (t) => {
    const L = `LQ${run}`;
    let px = 100;
    for (let i = 0; i < 40; i++) {
      px *= 1.002;
      const seq = feed.trade(L, px);
      // two duplicates of every trade: a third of the window is clean
      feed.trade(L, px, { seq });
      feed.trade(L, px, { seq });
    }
    await until('a low_quality suppression', () =>
      rejected.items.some((r) => r.signal.sym === L && r.reason === 'low_quality'),
    );
    const r = rejected.items.find((x) => x.signal.sym === L && x.reason === 'low_quality')!;
    t.ok(r.signal.quality.score < 0.5, `window score ${r.signal.quality.score}`);
    t.equal(of(signals.items, L).length, 0, 'nothing published for the symbol');
    await until('metrics count the duplicates by check', async () => {
      const text = await (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();
      const m = /qilin_quality_issues_total\{check="duplicate"\} (\d+)/.exec(text);
      return m !== null && Number(m[1]) >= 40;
    });
    const text = await (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();
    t.match(text, /qilin_signals_total\{decision="rejected",reason="low_quality"\} [1-9]/);
    t.match(text, /qilin_quality_events_total\{kind="quarantine"\} [1-9]/);
  });
});
