/**
 * The EventStore contract, run by the ClickHouse and the chdb store tests
 * against the real engines: migrations, a batch of every table read back, and
 * every example query of docs/sql.md with known answers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import type { EventStore, StoreBatch, TickRow } from '../../../kernel/event-store.js';
import type { SignalMessage } from '../../../kernel/messages.js';
import { MIGRATIONS, type Migration } from '../../../adapters/clickhouse/schema.js';
import { repoRoot } from '../../helpers/services.js';

/** A minute boundary: 2024-11-22 18:27:00 UTC, in µs. */
export const T0 = 1_732_300_020_000_000;
const S = 1_000_000;

/** `<!-- query: name -->` + the ```sql block after it, from docs/sql.md. */
export function docQueries(): Map<string, string> {
  const md = readFileSync(join(repoRoot, 'docs', 'sql.md'), 'utf8');
  const out = new Map<string, string>();
  const re = /<!-- query: ([a-z0-9_]+) -->\s*```sql\n([\s\S]*?)```/g;
  for (const m of md.matchAll(re)) out.set(m[1]!, m[2]!.trim());
  return out;
}

export function trade(seq: number, tsUs: number, px: number, qty = 1, sym = 'AAA'): TickRow {
  return {
    type: 'trade',
    sym,
    venue: 'sim',
    seq,
    tsUs,
    recvUs: tsUs + 150.25,
    px,
    qty,
    side: 1,
    bid: 0,
    bidQty: 0,
    ask: 0,
    askQty: 0,
  };
}

function signal(id: string, side: 'buy' | 'sell', tsUs: number, latPub: number): SignalMessage {
  return {
    id,
    strategy: 'mom',
    sym: 'AAA',
    ts: tsUs,
    side,
    strength: 0.7,
    refPx: 100,
    qty: 1,
    account: 'acc1',
    model: { name: 'm', version: '1' },
    prediction: { score: 0.4 },
    quality: { score: 0.99 },
    src: { seq: 1, ts: tsUs },
    lat: { recv: 1000, feat: 1010, infer: 1050.6, risk: 1060, pub: 1000 + latPub },
  };
}

/** The per-check counts quality windows carry beside the original six, all zero. */
const NEW_CHECKS_CLEAN = {
  badValues: 0,
  locked: 0,
  outsideBand: 0,
  timeGaps: 0,
  skew: 0,
  duplicates: 0,
  resets: 0,
  quarantined: 0,
  nonfinite: 0,
};

/** The fixture: bars, hit rate, quality and latency answers are worked out by hand below. */
export function fixtureBatch(): StoreBatch {
  return {
    ticks: [
      trade(1, T0, 100),
      trade(2, T0 + 10 * S, 105),
      trade(3, T0 + 20 * S, 95),
      trade(4, T0 + 30 * S, 101),
      trade(5, T0 + 61 * S, 110, 2),
      {
        type: 'quote',
        sym: 'AAA',
        venue: 'sim',
        seq: 6,
        tsUs: T0 + 62 * S,
        recvUs: T0 + 62 * S,
        px: 0,
        qty: 0,
        side: 0,
        bid: 109.5,
        bidQty: 1.2,
        ask: 110.5,
        askQty: 0.8,
      },
    ],
    predictions: [
      {
        sym: 'AAA',
        ts: T0,
        model: { name: 'm', version: '1' },
        score: -0.25,
        features: { rsi_14: 55.5, ema_10: 100.1 },
        src: { seq: 1, ts: T0 },
        lat: { recv: 1000, feat: 1010, infer: 1050 },
      },
    ],
    signals: [
      // buy at 100; first trade ≥ T0+60 s is 110 → hit
      { signal: signal('s1', 'buy', T0, 100), status: 'approved', reason: '' },
      // sell at 100; first trade ≥ T0+61 s is 110 → miss
      { signal: signal('s2', 'sell', T0 + 1 * S, 200), status: 'approved', reason: '' },
      // rejected: not counted anywhere
      {
        signal: { ...signal('s3', 'buy', T0, 999), lat: { recv: 1, feat: 2, infer: 3 } },
        status: 'rejected',
        reason: 'max_position',
      },
    ],
    quality: [
      {
        sym: 'AAA',
        ts: T0,
        kind: 'window',
        session: 0,
        score: 1,
        issues: [],
        window: {
          ticks: 10,
          gaps: 0,
          crossed: 0,
          outOfOrder: 0,
          stale: 0,
          spikes: 0,
          ...NEW_CHECKS_CLEAN,
        },
        src: { seq: 1, ts: T0 },
        lat: { recv: 1000, feat: 1001, infer: 0 },
      },
      {
        sym: 'AAA',
        ts: T0 + 30 * S,
        kind: 'window',
        session: 0,
        score: 0.5,
        issues: ['seq_gap', 'spike'],
        window: {
          ticks: 10,
          gaps: 2,
          crossed: 0,
          outOfOrder: 0,
          stale: 0,
          spikes: 1,
          ...NEW_CHECKS_CLEAN,
        },
        src: { seq: 4, ts: T0 + 30 * S },
        lat: { recv: 2000, feat: 2001, infer: 0 },
      },
    ],
    metrics: [{ tsUs: T0, name: 'qilin_ticks_total', labels: 'venue=sim', value: 6 }],
    audit: [
      {
        id: 'a-fixture-1',
        ts_us: T0 + 40 * S,
        actor: 'nats:ops',
        action: 'risk.kill',
        target: 'risk',
        outcome: 'ok',
        reason: 'fixture',
        source: 'nats:ctl.risk.kill',
        detail: '{}',
      },
    ],
  };
}

/** Runs the contract as subtests of `t` against a migrated-on-demand store. */
export async function storeContract(t: Test, store: EventStore): Promise<void> {
  await t.test('migrate is idempotent', async (t) => {
    await store.migrate();
    await store.migrate();
    const rows = await store.query(
      'SELECT version, count() AS n FROM schema_migrations GROUP BY version ORDER BY version',
    );
    t.same(
      rows,
      [
        { version: 1, n: 1 },
        { version: 2, n: 1 },
        { version: 3, n: 1 },
        { version: 4, n: 1 },
        { version: 5, n: 1 },
        { version: 6, n: 1 },
        { version: 7, n: 1 },
      ],
      'versions 1 to 7 recorded once each',
    );
    t.same(
      await store.query(
        "SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'ticks'",
      ),
      [{ engine: 'ReplacingMergeTree' }],
      'ticks is keyed by the tick (migration 3)',
    );
    const tables = await store.query('SHOW TABLES');
    const names = tables.map((r) => r['name']).sort();
    t.same(names, [
      'audit',
      'backtest_trades',
      'backtests',
      'bars_1m_agg',
      'bars_1m_mv',
      'metrics',
      'predictions',
      'quality_daily_agg',
      'quality_daily_mv',
      'quality_events',
      'schema_migrations',
      'signals',
      'ticks',
    ]);
    t.same(
      await store.query(
        "SELECT name, engine FROM system.tables WHERE database = currentDatabase() AND name LIKE '%\\_agg' ORDER BY name",
      ),
      [
        { name: 'bars_1m_agg', engine: 'AggregatingMergeTree' },
        { name: 'quality_daily_agg', engine: 'AggregatingMergeTree' },
      ],
      'migration 4: aggregating tables',
    );
  });

  await t.test('a batch of every table reads back', async (t) => {
    await store.insert(fixtureBatch());
    const ticks = await store.query('SELECT * FROM ticks ORDER BY seq');
    t.equal(ticks.length, 6);
    t.match(ticks[0], {
      type: 'trade',
      sym: 'AAA',
      venue: 'sim',
      seq: 1,
      ts_us: T0,
      recv_us: T0 + 150,
      date: '2024-11-22',
      px: 100,
      qty: 1,
      side: 1,
    });
    t.match(ticks[5], { type: 'quote', bid: 109.5, bid_qty: 1.2, ask: 110.5, ask_qty: 0.8, px: 0 });
    const secs = await store.query('SELECT toUInt32(ts) AS s FROM ticks WHERE seq = 1');
    t.same(secs, [{ s: T0 / S }], 'ts is the second of ts_us');

    const preds = await store.query('SELECT * FROM predictions');
    t.equal(preds.length, 1);
    t.match(preds[0], {
      model: 'm',
      model_version: '1',
      score: -0.25,
      src_seq: 1,
      lat_infer_us: 1050,
    });
    t.same(JSON.parse(String(preds[0]!['features'])), { rsi_14: 55.5, ema_10: 100.1 });

    const sigs = await store.query(
      'SELECT id, status, reason, lat_infer_us, lat_risk_us, lat_pub_us FROM signals ORDER BY id',
    );
    t.same(sigs, [
      {
        id: 's1',
        status: 'approved',
        reason: '',
        lat_infer_us: 1051,
        lat_risk_us: 1060,
        lat_pub_us: 1100,
      },
      {
        id: 's2',
        status: 'approved',
        reason: '',
        lat_infer_us: 1051,
        lat_risk_us: 1060,
        lat_pub_us: 1200,
      },
      {
        id: 's3',
        status: 'rejected',
        reason: 'max_position',
        lat_infer_us: 3,
        lat_risk_us: 0,
        lat_pub_us: 0,
      },
    ]);

    const q = await store.query(
      'SELECT score, issues, gaps, spikes FROM quality_events ORDER BY ts_us',
    );
    t.same(q, [
      { score: 1, issues: [], gaps: 0, spikes: 0 },
      { score: 0.5, issues: ['seq_gap', 'spike'], gaps: 2, spikes: 1 },
    ]);
    // Migration 2's columns, which this writer does not send: the DEFAULT on
    // chdb and current ClickHouse, the type's zero ('' for kind) on 18.16.
    const q2 = await store.query(
      'SELECT kind, session, locked, outside_band, nonfinite, raw FROM quality_events ORDER BY ts_us',
    );
    t.equal(q2.length, 2);
    for (const r of q2) {
      t.ok(['window', ''].includes(String(r['kind'])), `kind ${JSON.stringify(r['kind'])}`);
      t.match(r, { session: 0, locked: 0, outside_band: 0, nonfinite: 0, raw: '' });
    }
    const m = await store.query('SELECT name, labels, value FROM metrics');
    t.same(m, [{ name: 'qilin_ticks_total', labels: 'venue=sim', value: 6 }]);
  });

  await t.test('the documented example queries run and give the worked answers', async (t) => {
    const qs = docQueries();
    t.same([...qs.keys()].sort(), [
      'audit_by_action',
      // Run against saved backtests by test/backtest/backtest-store.test.ts.
      'backtest_best_runs',
      'backtest_trades_by_symbol',
      'bars_1m',
      'bars_1m_fast',
      'quality_daily',
      'quality_daily_fast',
      'quality_report_days',
      'quality_report_worst',
      'signal_hit_rate',
      'signal_latency',
      'tick_count',
      'tick_count_grouped',
      'tick_duplicates',
    ]);

    t.same(
      await store.query(qs.get('audit_by_action')!),
      [{ action: 'risk.kill', outcome: 'ok', events: 1, actors: 1 }],
      'the audit summary',
    );

    const bars = await store.query(qs.get('bars_1m')!);
    t.equal(bars.length, 2, 'two minutes');
    t.match(bars[0], {
      sym: 'AAA',
      open: 100,
      high: 105,
      low: 95,
      close: 101,
      volume: 4,
      trades: 4,
    });
    t.match(bars[1], {
      sym: 'AAA',
      open: 110,
      high: 110,
      low: 110,
      close: 110,
      volume: 2,
      trades: 1,
    });

    // The materialized view (migration 4) gives the same bars, plus VWAP.
    const fast = await store.query(qs.get('bars_1m_fast')!);
    t.same(fast.map(withoutVwap), bars, 'bars_1m_fast: the view equals the exact bars');
    t.same(
      fast.map((r) => r['vwap']),
      [(100 + 105 + 95 + 101) / 4, 110],
      'vwap = sum(px*qty) / sum(qty)',
    );

    const hit = await store.query(qs.get('signal_hit_rate')!);
    t.same(hit, [{ strategy: 'mom', signals: 2, hits: 1, hit_rate: 0.5 }]);

    const qd = await store.query(qs.get('quality_daily')!);
    t.match(qd, [
      {
        date: '2024-11-22',
        sym: 'AAA',
        windows: 2,
        avg_score: 0.75,
        min_score: 0.5,
        gaps: 2,
        spikes: 1,
      },
    ]);

    t.same(
      await store.query(qs.get('quality_daily_fast')!),
      qd,
      'quality_daily_fast: the view equals the aggregate over quality_events',
    );

    const lat = await store.query(qs.get('signal_latency')!);
    t.equal(lat.length, 1);
    t.match(lat[0], { strategy: 'mom', signals: 2 });
    const pub = lat[0]!['pub_us'] as number[];
    t.equal(pub.length, 2, 'p50 and p99');
    t.ok(
      pub[0]! >= 100 && pub[0]! <= 200 && pub[1]! >= pub[0]! && pub[1]! <= 200,
      `pub_us ${JSON.stringify(pub)}`,
    );

    t.same(await store.query(qs.get('tick_duplicates')!), [], 'no duplicates yet');
    t.same(await store.query(qs.get('tick_count')!), [{ ticks: 6, distinct_ticks: 6 }]);
    // A tick stored again (a replayed batch, a JetStream redelivery): same key.
    await store.insert({
      ticks: [trade(3, T0 + 20 * S, 95)],
      predictions: [],
      signals: [],
      quality: [],
      metrics: [],
      audit: [],
    });
    const dups = await store.query(qs.get('tick_duplicates')!);
    t.ok(
      dups.length === 0 ||
        JSON.stringify(dups) ===
          JSON.stringify([{ sym: 'AAA', venue: 'sim', seq: 3, type: 'trade', copies: 2 }]),
      `the copy, unless merged away already: ${JSON.stringify(dups)}`,
    );
    t.same(
      await store.query(qs.get('tick_count')!),
      [{ ticks: 6, distinct_ticks: 6 }],
      'FINAL: every tick once',
    );
    t.same(await store.query(qs.get('tick_count_grouped')!), [{ ticks: 6 }], 'GROUP BY the key');
    t.same(await store.query(qs.get('bars_1m')!), bars, 'bars unchanged by the copy (FINAL)');
    // The documented caveat: the view counted the copy (docs/sql.md).
    const fast2 = await store.query(qs.get('bars_1m_fast')!);
    t.same(
      fast2.map(withoutVwap),
      [{ ...bars[0], volume: 5, trades: 5 }, bars[1]],
      'bars_1m_fast counts the copy: one more trade, same OHLC',
    );
  });

  await t.test('a bad query fails with QLN_STORE_FAILED naming the server error', async (t) => {
    await t.rejects(store.query('SELECT nope FROM ticks'), {
      code: 'QLN_STORE_FAILED',
      message: /nope/,
    });
  });

  await t.test('ping answers', async (t) => {
    t.equal(await store.ping(), true);
  });
}

/** A store that can stop at an older schema (the upgrade test). */
export type MigratableStore = EventStore & {
  migrate(migrations?: readonly Migration[]): Promise<void>;
};

/**
 * Migration 3 on a store at version 2 holding rows, one tick twice: every
 * row is copied into the ReplacingMergeTree, the copy reads once under
 * FINAL, the other tables are untouched, no `_new` / `_old` table is left.
 */
export async function upgradeContract(t: Test, store: MigratableStore): Promise<void> {
  await store.migrate(MIGRATIONS.filter((m) => m.version <= 2));
  // Audit rows have a table from version 5 on, and prediction rows carry
  // columns from version 6 on: not part of this older schema.
  const batch = { ...fixtureBatch(), audit: [], predictions: [] };
  await store.insert(batch);
  await store.insert({ ...emptyRows(), ticks: [batch.ticks[2]!] });
  const ticks = 'SELECT count() AS n FROM ticks';
  t.same(await store.query(ticks), [{ n: 7 }], 'version 2: the copy is a second row');
  await store.migrate();
  await store.migrate();
  t.same(
    await store.query(
      "SELECT name, engine FROM system.tables WHERE database = currentDatabase() AND name LIKE 'ticks%'",
    ),
    [{ name: 'ticks', engine: 'ReplacingMergeTree' }],
    'ticks rebuilt, nothing left beside it',
  );
  const raw = Number((await store.query(ticks))[0]!['n']);
  t.ok(raw === 6 || raw === 7, `every row copied (${raw}: 7, or 6 once merged)`);
  t.same(await store.query(`${ticks} FINAL`), [{ n: 6 }], 'FINAL: each tick once');
  t.same(
    await store.query('SELECT sum(seq) AS s FROM ticks FINAL'),
    [{ s: batch.ticks.reduce((n, r) => n + r.seq, 0) }],
    'the same ticks',
  );
  t.same(await store.query('SELECT count() AS n FROM signals'), [{ n: batch.signals.length }]);
  t.same(
    await store.query('SELECT version FROM schema_migrations GROUP BY version ORDER BY version'),
    [
      { version: 1 },
      { version: 2 },
      { version: 3 },
      { version: 4 },
      { version: 5 },
      { version: 6 },
      { version: 7 },
    ],
  );
  // Migration 4 backfilled the views' tables from `ticks FINAL`: the copy once.
  const qs = docQueries();
  const exact = await store.query(qs.get('bars_1m')!);
  t.equal(exact.length, 2);
  t.same(
    (await store.query(qs.get('bars_1m_fast')!)).map(withoutVwap),
    exact,
    'backfilled bars equal the exact bars',
  );
  t.same(
    await store.query(qs.get('quality_daily_fast')!),
    await store.query(qs.get('quality_daily')!),
    'backfilled daily quality equals the aggregate',
  );
  // Then the views take new rows: a trade in a third minute.
  await store.insert({ ...emptyRows(), ticks: [trade(7, T0 + 125 * S, 120, 3)] });
  const after = await store.query(qs.get('bars_1m_fast')!);
  t.equal(after.length, 3, 'a third minute');
  t.match(after[2], { open: 120, close: 120, volume: 3, trades: 1, vwap: 120 });
  await store.migrate();
  t.same(
    (await store.query(qs.get('bars_1m_fast')!)).map(withoutVwap),
    await store.query(qs.get('bars_1m')!),
    'migrate again: no second backfill',
  );
}

function withoutVwap(r: Record<string, unknown>): Record<string, unknown> {
  const { vwap: _vwap, ...rest } = r;
  return rest;
}

function emptyRows(): StoreBatch {
  return { ticks: [], predictions: [], signals: [], quality: [], metrics: [], audit: [] };
}
