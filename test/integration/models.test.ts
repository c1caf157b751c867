/**
 * Models in the loop, end to end on the real NATS, Redis and ClickHouse
 * (issue 8): a promoted version changes the live signals without a restart,
 * a rollback brings the previous one back, every signal names its version,
 * no tick is lost or signal duplicated across the swaps, and a NaN model
 * trips the model breaker onto the previous version (degraded, counted),
 * recovered by promoting a good one.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { LocalModelRegistry } from '../../adapters/onnx/model-registry.js';
import { KernelApp } from '../../cli/kernel-app.js';
import type { SignalMessage } from '../../kernel/messages.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { MarketFeed } from '../helpers/market-feed.js';
import { constantModel, nanModel } from '../helpers/model-fixtures.js';
import { ensureServices, connectAs } from '../helpers/services.js';
import { SIGNAL_EVERY_TRADE, testKernelConfig } from '../helpers/test-kernel.js';
import { until } from '../helpers/wait.js';

const run = randomBytes(3).toString('hex');
const strategy = `md${run}`;
const account = `acct${run}`;
const MODEL = 'mtest';
const who = { by: 'models-test', reason: 'test' };

interface Status {
  model: {
    name: string;
    version: string;
    step: string;
    degradedShards: number[];
    shadow?: { version: string; rows: number; agreement: number | null };
  };
}

void t.test('models in the loop, live', async (t) => {
  const urls = await ensureServices();
  const db = `qilin_md_${run}`;
  const config = await testKernelConfig(urls, db, `md-read-${run}`, {
    ...SIGNAL_EVERY_TRADE,
    model: MODEL,
    modelPollMs: 100,
    modelResetMs: 60_000,
  });
  const registry = new LocalModelRegistry(join(config.stateDir, 'models'));
  const buy = constantModel(MODEL, '1', ['ema12'], 3, true);
  const sell = constantModel(MODEL, '2', ['ema12'], -3);
  await registry.push(buy.manifest, buy.bytes, who);
  await registry.push(sell.manifest, sell.bytes, who);
  await registry.promote(MODEL, '1', who);

  const app = new KernelApp({ config, log: pino({ level: 'silent' }), strategy, account });
  await app.start();
  const nc = await connectAs('admin', { name: 'models-test' });
  t.teardown(async () => {
    await nc.drain();
    await app.close();
    await app.store.close();
    await dropDatabase(urls.clickhouseUrl, db);
  });
  const signals: SignalMessage[] = [];
  nc.subscribe(`sig.${strategy}.>`, {
    callback: (err, m) => {
      if (err === null) signals.push(m.json<SignalMessage>());
    },
  });
  await nc.flush();
  const feed = new MarketFeed(nc, `v${run}`);
  const status = (): Status => (app as unknown as { statusBody(): Status }).statusBody();
  const accepted = (): number => app.pool.stats().reduce((n, s) => n + s.accepted, 0);
  let sent = 0;
  const syms = ['AAA', 'BBB', 'CCC'].map((s) => `${s}${run}`);
  /** n trades per symbol, flat prices (the constant models ignore them). */
  const trade = (n: number): void => {
    for (let i = 0; i < n; i++) {
      for (const s of syms) {
        feed.trade(s, 100 + (i % 3) * 0.01);
        sent++;
      }
    }
  };
  const restartsBefore = app.pool.stats().reduce((n, s) => n + s.restarts, 0);

  await t.test('the promoted version scores from the first tick, and names itself', async (t) => {
    t.match(status().model, { name: MODEL, version: '1', step: 'live' });
    trade(20);
    await until('buy signals from version 1 for every symbol', () =>
      syms.every((s) => signals.some((x) => x.sym === s && x.model.version === '1')),
    );
    const v1 = signals.filter((x) => x.model.version === '1');
    t.ok(v1.length >= 3, `${v1.length} signals from version 1`);
    t.ok(
      v1.every((x) => x.side === 'buy' && x.model.name === MODEL && x.model.role === 'live'),
      'each a buy named mtest@1 (live)',
    );
    t.ok(
      v1.every((x) => x.prediction.score > 0.9),
      'scores on the strategy scale: sigmoid(3) = 0.95 is far above buy 0.6',
    );
    await app.store.flush();
    const rows = (await app.store.query(
      `SELECT model, model_version AS v, count() AS n FROM ${db}.predictions WHERE sym = '${syms[0]}' GROUP BY model, model_version`,
    )) as Array<{ model: string; v: string; n: number | string }>;
    t.ok(
      rows.some((r) => r.model === MODEL && r.v === '1' && Number(r.n) > 0),
      `stored predictions name mtest@1: ${JSON.stringify(rows)}`,
    );
  });

  await t.test('promote: the live signals change to version 2, no restart', async (t) => {
    await registry.promote(MODEL, '2', who);
    await until('status names version 2', () => status().model.version === '2');
    trade(20);
    await until('sell signals from version 2 for every symbol', () =>
      syms.every((s) => signals.some((x) => x.sym === s && x.model.version === '2')),
    );
    t.ok(
      signals.filter((x) => x.model.version === '2').every((x) => x.side === 'sell'),
      'version 2 only sells',
    );
    t.equal(
      app.pool.stats().reduce((n, s) => n + s.restarts, 0),
      restartsBefore,
      'no worker restarted',
    );
  });

  await t.test('rollback: version 1 again, the same way', async (t) => {
    await registry.rollback(MODEL, who);
    await until('status names version 1', () => status().model.version === '1');
    const mark = signals.length;
    trade(20);
    await until('buy signals from version 1 again', () =>
      syms.every((s) => signals.slice(mark).some((x) => x.sym === s && x.model.version === '1')),
    );
    t.ok(
      signals.slice(mark).every((x) => x.model.version === '1' && x.side === 'buy'),
      'after the rollback every signal is a version-1 buy',
    );
  });

  await t.test('no tick lost, no signal duplicated, each symbol in order', async (t) => {
    await until('every tick accepted', () => accepted() >= sent);
    t.equal(accepted(), sent, `${sent} ticks published, as many accepted`);
    const ids = signals.map((s) => s.id);
    t.equal(new Set(ids).size, ids.length, `${ids.length} signals, no id twice`);
    for (const s of syms) {
      const seqs = signals.filter((x) => x.sym === s).map((x) => x.src.seq);
      t.same(
        seqs,
        [...seqs].sort((a, b) => a - b),
        `${s}: signals in tick order`,
      );
      // Versions follow the promotions: 1, then 2, then 1 — never interleaved.
      const versions = signals.filter((x) => x.sym === s).map((x) => x.model.version);
      const runs = versions.filter((v, i) => i === 0 || versions[i - 1] !== v);
      t.same(runs, ['1', '2', '1'], `${s}: versions 1 → 2 → 1, not mixed`);
    }
  });

  await t.test(
    'a shadow version is scored beside the live one, stored, compared, never trades',
    async (t) => {
      const cand = constantModel(MODEL, '5', ['ema12'], -3);
      await registry.push(cand.manifest, cand.bytes, who);
      await registry.shadow(MODEL, '5', who);
      await until('status names the shadow', () => status().model.shadow?.version === '5');
      const mark = signals.length;
      trade(20);
      await until('the shadow scored trades', () => (status().model.shadow?.rows ?? 0) >= 30);
      const sh = status().model.shadow!;
      t.equal(sh.agreement, 0, 'live buys, shadow sells: they never agree');
      // The signals come over the WebSocket: they may land after the status counted the rows.
      await until('the live version still trades', () => signals.length > mark);
      t.ok(
        signals.length > mark,
        `the live version still trades (${signals.length - mark} signals)`,
      );
      t.ok(
        signals.slice(mark).every((x) => x.model.version === '1' && x.model.role === 'live'),
        'every signal is the live version’s: the shadow never trades',
      );
      await app.store.flush();
      const rows = (await app.store.query(
        `SELECT model_role AS role, model_version AS v, count() AS n, countIf(lower IS NULL) AS nolow FROM ${db}.predictions WHERE model = '${MODEL}' GROUP BY role, v ORDER BY role, v`,
      )) as Array<{ role: string; v: string; n: number | string; nolow: number | string }>;
      const shadowRows = rows.find((r) => r.role === 'shadow' && r.v === '5');
      t.ok(
        shadowRows !== undefined && Number(shadowRows.n) > 0,
        `shadow predictions stored: ${JSON.stringify(rows)}`,
      );
      t.equal(
        Number(shadowRows?.nolow),
        Number(shadowRows?.n),
        'version 5 has no interval: NULL bounds',
      );
      const live1 = rows.find((r) => r.role === 'live' && r.v === '1');
      t.equal(Number(live1?.nolow), 0, 'version 1 stores its interval');
      const { compareModels } = await import('../../cli/model-compare.js');
      const c = await compareModels((sql) => app.store.query(sql), db, {
        name: MODEL,
        sinceUs: 0,
        horizonMs: 1,
        threshold: 0.2,
      });
      t.ok(c.paired > 0, `${c.paired} trades scored by both`);
      t.equal(c.agreement, 0);
      t.ok(
        c.versions.some((v) => v.role === 'shadow' && v.version === '5' && v.rows > 0),
        'the comparison lists the shadow version',
      );
      await registry.shadow(MODEL, undefined, who);
      await until('the shadow stops', () => status().model.shadow === undefined);
    },
  );

  await t.test(
    'a NaN model opens the breaker: previous version, degraded; a good one recovers',
    async (t) => {
      const bad = nanModel(MODEL, '3', 'ema12');
      await registry.push(bad.manifest, bad.bytes, who);
      await registry.promote(MODEL, '3', who);
      await until('status names version 3', () => status().model.version === '3');
      const mark = signals.length;
      // Enough batches (one per drain) for the breaker's volume threshold.
      for (let k = 0; k < 12; k++) {
        trade(2);
        await until('the batch is processed', () => accepted() >= sent);
      }
      await until('the breaker opened on a worker (status step previous)', () => {
        return status().model.step === 'previous';
      });
      const ready = (await fetch(`http://127.0.0.1:${app.port}/health/ready`).then((r) =>
        r.json(),
      )) as { status: string; reasons: string[] };
      t.equal(ready.status, 'degraded');
      t.ok(
        ready.reasons.some((r) => r.includes('model mtest@3 fallback: previous')),
        `ready names the fallback: ${ready.reasons.join('; ')}`,
      );
      trade(10);
      await until('signals scored by the previous version (1) after the breaker opened', () =>
        signals.slice(mark).some((x) => x.model.version === '1'),
      );
      t.notOk(
        signals.slice(mark).some((x) => x.model.version === '3'),
        'no signal from the NaN model',
      );
      const metrics = await fetch(`http://127.0.0.1:${app.port}/metrics`).then((r) => r.text());
      t.match(metrics, /qilin_model_breaker_opened_total [1-9]/);
      t.match(metrics, /qilin_model_failed_batches_total [1-9]/);
      await registry.promote(MODEL, '2', who);
      await until('recovered: version 2 live', () => {
        const m = status().model;
        return m.version === '2' && m.step === 'live';
      });
      const after = signals.length;
      trade(10);
      await until('version 2 signals again', () =>
        signals.slice(after).some((x) => x.model.version === '2'),
      );
    },
  );

  await t.test('a damaged version is refused; the running one stays', async (t) => {
    const v4 = constantModel(MODEL, '4', ['ema12'], 3);
    await registry.push(v4.manifest, v4.bytes, who);
    // Damage the stored file after the push: its sha256 no longer matches.
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(config.stateDir, 'models', MODEL, '4', 'model.onnx'), 'garbage');
    await t.rejects(registry.promote(MODEL, '4', who), { code: 'QLN_MODEL_INVALID' });
    t.equal(status().model.version, '2', 'still version 2');
  });
});
