/**
 * Risk that uses the market, end to end on the real local NATS, Redis and
 * ClickHouse: the kernel's predictions feed the risk actor (RiskActor.observe
 * through the output pipeline), and once a symbol has varMinObservations
 * returns a signal whose position VaR is over maxSymbolVar is rejected with
 * `var_symbol` on risk.rejected.<sym>; before that, signals pass and the
 * skip is counted.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import t from 'tap';
import { KernelApp } from '../../cli/kernel-app.js';
import type { RiskRejection, SignalMessage } from '../../kernel/messages.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { MarketFeed } from '../helpers/market-feed.js';
import { ensureServices, connectAs } from '../helpers/services.js';
import { SIGNAL_EVERY_TRADE, testKernelConfig } from '../helpers/test-kernel.js';
import { until } from '../helpers/wait.js';

const run = randomBytes(3).toString('hex');
const READ_KEY = `rv-read-${run}`;
const SYM = `RV${run}`;

void t.test('var_symbol rejects once the symbol has enough observed returns', async (t) => {
  const urls = await ensureServices();
  const db = `qilin_rv_${run}`;
  const config = await testKernelConfig(urls, db, READ_KEY, {
    actor: { ...SIGNAL_EVERY_TRADE.actor, predictionIntervalUs: 0 },
    risk: {
      ...SIGNAL_EVERY_TRADE.risk,
      // 1 unit at ~100 moving ±1 % per observation: VaR ≈ 1 ≫ 0.01
      maxSymbolVar: 0.01,
      varWindow: 16,
      varMinObservations: 8,
    },
  });
  const app = new KernelApp({
    config,
    log: pino({ level: 'silent' }),
    strategy: `rv${run}`,
    account: `rv${run}`,
  });
  await app.start();
  const nc = await connectAs('admin', { name: 'risk-var-test' });
  t.teardown(async () => {
    await nc.drain();
    await app.close();
    await app.store.close();
    await dropDatabase(urls.clickhouseUrl, db);
  });
  const signals: SignalMessage[] = [];
  const rejected: RiskRejection[] = [];
  nc.subscribe(`sig.rv${run}.${SYM}`, {
    callback: (err, m) => {
      if (err === null) signals.push(m.json<SignalMessage>());
    },
  });
  nc.subscribe(`risk.rejected.${SYM}`, {
    callback: (err, m) => {
      if (err === null) rejected.push(m.json<RiskRejection>());
    },
  });
  await nc.flush();
  const feed = new MarketFeed(nc, `rv${run}`);
  // A zigzag around 100: each quote's mid moves ±1 %, the trades between them.
  let px = 100;
  for (let i = 0; i < 60; i++) {
    px *= i % 2 === 0 ? 1.01 : 0.99;
    feed.trade(SYM, px);
    feed.quote(SYM, px - 0.01, px + 0.01);
  }
  await nc.flush();
  await until('a var_symbol rejection', () => rejected.some((r) => r.reason === 'var_symbol'));
  const r = rejected.find((x) => x.reason === 'var_symbol')!;
  t.match(
    r.detail,
    /^historical VaR 0\.99 of position \S+ × \S+ over (\d+) returns = \S+ > maxSymbolVar 0\.01$/,
  );
  const n = Number(/over (\d+) returns/.exec(r.detail)![1]);
  t.ok(n >= 8 && n <= 16, `VaR over ${n} returns: between varMinObservations and varWindow`);
  t.ok(app.risk.counters.observations >= 9, `observations ${app.risk.counters.observations}`);
  t.equal(
    app.risk.counters.observationsRejected,
    1,
    'only the first trade: before any quote its mid is 0, refused and counted',
  );
  t.ok(
    app.risk.counters.varSkipped.symbol >= 1,
    `early signals passed for want of returns (${app.risk.counters.varSkipped.symbol})`,
  );
  t.ok(signals.length >= 1, `the early signals were published (${signals.length})`);
  t.equal(rejected.filter((x) => x.reason !== 'var_symbol').length, 0, 'no other reason in play');
});
