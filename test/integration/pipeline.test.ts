/**
 * The live pipeline end to end, on the real local NATS (JetStream), Redis and
 * ClickHouse: ticks published on md.<venue>.<sym> → kernel → signals on NATS
 * sig.<strategy>.<sym> and on the WebSocket, ticks in ClickHouse, rejects
 * counted, kill switch, circuit breaker.
 */
import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { headers, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { pino } from 'pino';
import t from 'tap';
import WebSocket from 'ws';
import { KernelApp } from '../../cli/kernel-app.js';
import type { RiskRejection, SignalMessage } from '../../kernel/messages.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { ensureServices, connectAs } from '../helpers/services.js';
import { SIGNAL_EVERY_TRADE, testKernelConfig } from '../helpers/test-kernel.js';
import { until } from '../helpers/wait.js';

const run = randomBytes(3).toString('hex');
const strategy = `e2e${run}`;
const account = `acct${run}`;
const venue = `v${run}`;
const READ_KEY = `e2e-read-${run}`;
const ADMIN_KEY = `e2e-admin-${run}`;

const baseTs = Date.now() * 1000;
const seqs = new Map<string, number>();
const tickTs = new Map<string, number>(); // `${sym}:${seq}` → ts, to check src

function publishTrade(nc: NatsConnection, sym: string, px: number): number {
  const seq = (seqs.get(sym) ?? 0) + 1;
  seqs.set(sym, seq);
  const ts = baseTs + seq * 10_000;
  tickTs.set(`${sym}:${seq}`, ts);
  nc.publish(
    `md.${venue}.${sym}`,
    JSON.stringify({ type: 'trade', sym, ts, px, qty: 1, side: 'buy', seq }),
  );
  return seq;
}

function publishQuote(nc: NatsConnection, sym: string, mid: number): number {
  const seq = (seqs.get(sym) ?? 0) + 1;
  seqs.set(sym, seq);
  const ts = baseTs + seq * 10_000;
  nc.publish(
    `md.${venue}.${sym}`,
    JSON.stringify({
      type: 'quote',
      sym,
      ts,
      bid: mid - 0.01,
      bidQty: 2,
      ask: mid + 0.01,
      askQty: 3,
      seq,
    }),
  );
  return seq;
}

/** A trending series: trades and quotes, price × (1 ± 0.2%) per trade. */
function publishTrend(
  nc: NatsConnection,
  sym: string,
  n: number,
  dir: 1 | -1,
  start = 100,
): number {
  let px = start;
  let count = 0;
  for (let i = 0; i < n; i++) {
    px *= 1 + dir * 0.002;
    publishTrade(nc, sym, px);
    publishQuote(nc, sym, px);
    count += 2;
  }
  return count;
}

interface Collected<T> {
  items: T[];
  sub: Subscription;
}

function collect<T>(nc: NatsConnection, subject: string): Collected<T> {
  const items: T[] = [];
  const sub = nc.subscribe(subject, {
    callback: (err, msg) => {
      if (err === null) items.push(msg.json<T>());
    },
  });
  return { items, sub };
}

void t.test('live pipeline', async (t) => {
  const urls = await ensureServices();
  const db = `qilin_e2e_${run}`;
  const config = await testKernelConfig(urls, db, READ_KEY, {
    ...SIGNAL_EVERY_TRADE,
    apiKeys: `${READ_KEY}:read,${ADMIN_KEY}:admin`,
  });
  const app = new KernelApp({
    config,
    log: pino({ level: 'silent' }),
    strategy,
    account,
    breaker: {
      timeoutMs: 1000,
      resetTimeoutMs: 300,
      volumeThreshold: 2,
      errorThresholdPercentage: 50,
    },
    statusIntervalMs: 200,
  });
  await app.start();
  const nc = await connectAs('admin', { name: 'e2e-test' });
  t.teardown(async () => {
    await nc.drain();
    await app.close();
    const admin = await connectAs('admin');
    const jsm = await jetstreamManager(admin);
    await jsm.streams
      .info('QILIN_SIGNALS')
      .catch(() => jsm.streams.add({ name: 'QILIN_SIGNALS', subjects: ['sig.>'] }));
    await admin.drain();
    await app.store.close();
    await dropDatabase(urls.clickhouseUrl, db);
  });
  const signals = collect<SignalMessage>(nc, `sig.${strategy}.>`);
  const rejected = collect<RiskRejection>(nc, `risk.rejected.>`);
  await nc.flush();

  const ws = new WebSocket(`ws://127.0.0.1:${app.port}/ws?key=${READ_KEY}`);
  const wsSignals: SignalMessage[] = [];
  const wsStatus: Array<Record<string, unknown>> = [];
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('message', (raw: Buffer) => {
    const m = JSON.parse(raw.toString('utf8')) as { topic?: string; data?: unknown; type?: string };
    if (m.topic?.startsWith('signal/')) wsSignals.push(m.data as SignalMessage);
    if (m.topic === 'status') wsStatus.push(m.data as Record<string, unknown>);
  });
  ws.send(JSON.stringify({ op: 'subscribe', topics: ['signal/*', 'status'] }));
  t.teardown(() => ws.close());

  const UP = `UP${run}`;
  const DN = `DN${run}`;
  let accepted = 0;

  await t.test(
    'ticks in → signals on NATS and WebSocket with every PROTOCOL field and monotonic lat',
    async (t) => {
      accepted += publishTrend(nc, UP, 60, 1);
      accepted += publishTrend(nc, DN, 60, -1);
      await until(
        'buy signals for UP and sell signals for DN on NATS',
        () =>
          signals.items.some((s) => s.sym === UP && s.side === 'buy') &&
          signals.items.some((s) => s.sym === DN && s.side === 'sell'),
      );
      await until('the same signals on the WebSocket', () => {
        const ids = new Set(wsSignals.map((s) => s.id));
        return signals.items.every((s) => ids.has(s.id));
      });
      const sig = signals.items.find((s) => s.sym === UP && s.side === 'buy')!;
      for (const k of [
        'id',
        'strategy',
        'sym',
        'ts',
        'side',
        'strength',
        'refPx',
        'model',
        'prediction',
        'quality',
        'src',
        'lat',
      ] as const) {
        t.ok(sig[k] !== undefined, `signal has ${k}`);
      }
      t.equal(sig.strategy, strategy);
      t.type(sig.model.name, 'string');
      t.type(sig.model.version, 'string');
      t.type(sig.prediction.score, 'number');
      t.ok(sig.quality.score >= 0 && sig.quality.score <= 1, 'quality score in [0,1]');
      t.ok(sig.strength >= 0 && sig.strength <= 1, 'strength in [0,1]');
      t.equal(
        sig.src.ts,
        tickTs.get(`${UP}:${sig.src.seq}`),
        'src names the triggering tick (seq and its ts)',
      );
      for (const s of [...signals.items, ...wsSignals]) {
        const l = s.lat;
        if (!(l.recv <= l.feat && l.feat <= l.infer && l.infer <= l.risk! && l.risk! <= l.pub!)) {
          t.fail(`lat not monotonic for ${s.id}: ${JSON.stringify(l)}`);
          return;
        }
      }
      t.pass('lat recv ≤ feat ≤ infer ≤ risk ≤ pub on every signal (NATS and WS)');
      const onUp = signals.items.filter((s) => s.sym === UP && s.side !== 'flat');
      t.ok(
        onUp.filter((s) => s.side === 'buy').length > onUp.length / 2,
        'momentum: rising prices mostly buy',
      );
      const onDn = signals.items.filter((s) => s.sym === DN && s.side !== 'flat');
      t.ok(
        onDn.filter((s) => s.side === 'sell').length > onDn.length / 2,
        'momentum: falling prices mostly sell',
      );
    },
  );

  await t.test(
    'malformed input is rejected by reason and counted while good symbols keep flowing',
    async (t) => {
      const GOOD = `GOOD${run}`;
      const bad: Array<[string, string | Uint8Array, string]> = [
        [`md.${venue}.BAD${run}`, '{not json', 'malformed_json'],
        [
          `md.${venue}.BAD${run}`,
          JSON.stringify({ type: 'trade', sym: `BAD${run}`, ts: baseTs, px: -1, qty: 1, seq: 1 }),
          'bad_number',
        ],
        [
          `md.${venue}.BAD${run}`,
          JSON.stringify({ type: 'trade', sym: `OTHER${run}`, ts: baseTs, px: 1, qty: 1, seq: 1 }),
          'symbol_mismatch',
        ],
        [
          `md.${venue}.BAD${run}`,
          JSON.stringify({ type: 'trade', sym: `BAD${run}`, ts: baseTs, qty: 1, seq: 1 }),
          'missing_field',
        ],
        [
          `md.${venue}.BAD${run}`,
          JSON.stringify({ type: 'candle', sym: `BAD${run}`, ts: baseTs, seq: 1 }),
          'unknown_type',
        ],
        [`md.${venue}.BAD${run}`, 'x'.repeat(5000), 'oversized'],
        [
          `md.${venue}`,
          JSON.stringify({ type: 'trade', sym: 'X', ts: baseTs, px: 1, qty: 1, seq: 1 }),
          'bad_subject',
        ],
      ];
      const before = await app.metrics.registry
        .getSingleMetric('qilin_ticks_rejected_total')!
        .get();
      const count = (vals: typeof before.values, reason: string): number =>
        vals.filter((v) => v.labels['reason'] === reason).reduce((a, v) => a + v.value, 0);
      for (let i = 0; i < 20; i++) {
        publishTrade(nc, GOOD, 50 + i);
        accepted++;
        const [subject, body] = bad[i % bad.length]!;
        nc.publish(subject, body);
      }
      const h = headers();
      h.set('Content-Type', 'text/csv');
      nc.publish(`md.${venue}.BAD${run}`, 'a,b,c', { headers: h });
      await nc.flush();
      await until('all rejects counted', async () => {
        const after = (
          await app.metrics.registry.getSingleMetric('qilin_ticks_rejected_total')!.get()
        ).values;
        return (
          bad.every(([, , reason]) => count(after, reason) > count(before.values, reason)) &&
          count(after, 'unsupported_content_type') >
            count(before.values, 'unsupported_content_type')
        );
      });
      const after = (
        await app.metrics.registry.getSingleMetric('qilin_ticks_rejected_total')!.get()
      ).values;
      // NATS delivers one subscription in order, so once the last message
      // (unsupported content type) is counted, every earlier one is too.
      // Message i used bad[i % bad.length]: kind k was sent ceil((20 - k) / len) times.
      for (const [k, [, , reason]] of bad.entries()) {
        const expected = Math.ceil((20 - k) / bad.length);
        t.equal(
          count(after, reason) - count(before.values, reason),
          expected,
          `${reason} counted ${expected}×`,
        );
      }
      // /rejects needs an admin key (docs/security.md).
      const res = await fetch(`http://127.0.0.1:${app.port}/rejects`, {
        headers: { authorization: `Bearer ${ADMIN_KEY}` },
      });
      const sample = (await res.json()) as Array<{ reason: string; subject: string }>;
      t.ok(
        sample.some(
          (s) => s.reason === 'malformed_json' && s.subject.startsWith(`md.${venue}.BAD${run}.`),
        ),
        'reject sample keeps reason and subject',
      );
      const metricsText = await (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();
      t.match(
        metricsText,
        /qilin_ticks_rejected_total\{reason="malformed_json"\} \d+/,
        '/metrics exposes rejects by reason',
      );
      t.match(metricsText, /qilin_stage_latency_seconds_bucket/, '/metrics has per-stage latency');
      t.match(
        metricsText,
        /qilin_ring_used_bytes\{shard="0",ring="out"\}/,
        '/metrics has ring occupancy',
      );
      t.match(metricsText, /qilin_breaker_state 0/, 'breaker closed');
      await until('every GOOD tick stored', async () => {
        await app.store.flush();
        const rows = await app.store.query(`SELECT count() AS n FROM ticks WHERE sym = '${GOOD}'`);
        return Number(rows[0]?.['n']) === 20;
      });
      t.pass('good symbol flowed in between the bad messages');
    },
  );

  await t.test('every accepted tick is stored exactly once', async (t) => {
    const syms = [UP, DN, `GOOD${run}`];
    const list = syms.map((s) => `'${s}'`).join(',');
    await until(`${accepted} ticks in ClickHouse`, async () => {
      await app.store.flush();
      const rows = await app.store.query(`SELECT count() AS n FROM ticks WHERE sym IN (${list})`);
      return Number(rows[0]?.['n']) >= accepted;
    });
    const rows = await app.store.query(
      `SELECT count() AS n, uniqExact(sym, seq, type) AS u FROM ticks WHERE sym IN (${list})`,
    );
    t.equal(Number(rows[0]?.['n']), accepted, 'row count = accepted ticks');
    t.equal(Number(rows[0]?.['u']), accepted, 'no (sym, seq, type) twice');
    const sigRows = await app.store.query(
      `SELECT count() AS n FROM signals WHERE strategy = '${strategy}'`,
    );
    t.ok(Number(sigRows[0]?.['n']) > 0, 'signals are stored too');
  });

  await t.test('unauthorised WebSocket is refused at upgrade with 401', async (t) => {
    const status = await new Promise<number>((resolve) => {
      const bad = new WebSocket(`ws://127.0.0.1:${app.port}/ws?key=wrong-key-123`);
      bad.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      bad.on('open', () => resolve(101));
      bad.on('error', () => undefined);
    });
    t.equal(status, 401);
  });

  await t.test('kill switch stops all signals; resume restarts them', async (t) => {
    const K = `KILL${run}`;
    publishTrend(nc, K, 10, 1);
    await until('signals before the kill', () => signals.items.some((s) => s.sym === K));
    const reply = await nc.request('ctl.risk.kill', JSON.stringify({ by: 'e2e', reason: 'test' }), {
      timeout: 3000,
    });
    t.match(reply.json(), { killed: true, by: 'e2e', reason: 'test' });
    const lastSeqBefore = seqs.get(K)!;
    publishTrend(nc, K, 10, 1);
    const lastSeq = seqs.get(K)!;
    await until('kill_switch rejection of the last tick', () =>
      rejected.items.some(
        (r) => r.signal.sym === K && r.reason === 'kill_switch' && r.signal.src.seq >= lastSeq - 1,
      ),
    );
    t.equal(
      signals.items.filter((s) => s.sym === K && s.src.seq > lastSeqBefore).length,
      0,
      'no signal published while killed',
    );
    await until('status topic shows killed', () => wsStatus.some((s) => s['killed'] === true));
    const back = await nc.request(
      'ctl.risk.resume',
      JSON.stringify({ by: 'e2e', reason: 'done' }),
      { timeout: 3000 },
    );
    t.match(back.json(), { killed: false });
    publishTrend(nc, K, 10, 1);
    await until('signals again after resume', () =>
      signals.items.some((s) => s.sym === K && s.src.seq > lastSeq),
    );
    t.ok(
      app.risk.audit().some((a) => a.decision === 'kill' && a.by === 'e2e'),
      'audit says who killed it',
    );
  });

  await t.test('fills move positions; the max position limit rejects', async (t) => {
    const F = `FILL${run}`;
    nc.publish(
      `fill.${account}`,
      JSON.stringify({ signalId: 'x', sym: F, side: 'buy', qty: 2_000_000, px: 1, ts: baseTs }),
    );
    await until(
      'position updated from the fill',
      () => (app.risk.positions().get(F) ?? 0) === 2_000_000,
    );
    publishTrend(nc, F, 15, 1);
    await until('max_position rejection', () =>
      rejected.items.some((r) => r.signal.sym === F && r.reason === 'max_position'),
    );
    t.pass('a buy on top of a position over the limit is rejected with max_position');
  });

  await t.test(
    'executor outage trips the breaker (breaker_open), recovery closes it',
    async (t) => {
      const B = `BRK${run}`;
      const admin = await connectAs('admin');
      const jsm = await jetstreamManager(admin);
      const info = await jsm.streams.info('QILIN_SIGNALS');
      await jsm.streams.delete('QILIN_SIGNALS');
      let px = 100;
      const pump = setInterval(() => {
        px *= 1.002;
        publishTrade(nc, B, px);
      }, 10);
      t.teardown(() => clearInterval(pump));
      await until(
        'breaker_open rejections',
        () => rejected.items.some((r) => r.signal.sym === B && r.reason === 'breaker_open'),
        30_000,
      );
      await until('status topic shows the breaker open', () =>
        wsStatus.some((s) => s['breaker'] === 'open'),
      );
      await jsm.streams.add({
        name: 'QILIN_SIGNALS',
        subjects: info.config.subjects,
        duplicate_window: info.config.duplicate_window,
      });
      const sinceRecovery = signals.items.length;
      await until(
        'signals published again and the breaker closed',
        async () => {
          const text = await (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();
          return (
            signals.items.slice(sinceRecovery).some((s) => s.sym === B) &&
            /qilin_breaker_state 0/.test(text)
          );
        },
        30_000,
      );
      clearInterval(pump);
      await admin.drain();
      t.pass('breaker closed after the probe succeeded');
    },
  );

  await t.test('health endpoints say why', async (t) => {
    for (const path of ['/health/live', '/health/ready', '/health/startup']) {
      const res = await fetch(`http://127.0.0.1:${app.port}${path}`);
      t.equal(res.status, 200, `${path} 200`);
      t.match(await res.json(), { status: 'ok' });
    }
  });
  signals.sub.unsubscribe();
  rejected.sub.unsubscribe();
});
