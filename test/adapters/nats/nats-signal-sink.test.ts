import { randomUUID } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import t from 'tap';
import { connectNats, drainNats } from '../../../adapters/nats/nats-connection.js';
import { NatsSignalSink } from '../../../adapters/nats/nats-signal-sink.js';
import { createLogger } from '../../../kernel/logger.js';
import type { RiskRejection, SignalMessage } from '../../../kernel/messages.js';
import { ensureServices, natsSeedFile } from '../../helpers/services.js';

const log = createLogger('nats-signal-sink-test', process.env['QILIN_LOG_LEVEL'] ?? 'warn');

function signal(strategy: string, id: string): SignalMessage {
  return {
    id,
    strategy,
    sym: 'BTC-USD',
    ts: 1732300000123456,
    side: 'buy',
    strength: 0.73,
    refPx: 97012.5,
    qty: 0.1,
    account: 'acct1',
    model: { name: 'm', version: '1' },
    prediction: { score: 0.5 },
    quality: { score: 0.98 },
    src: { seq: 1042, ts: 1732300000123456 },
    lat: { recv: 1, feat: 2, infer: 3, risk: 4 },
  };
}

void t.test('signals reach JetStream as the exact JSON, deduplicated by id', async (t) => {
  const { natsUrl } = await ensureServices();
  const nc = await connectNats({
    servers: natsUrl,
    seedFile: await natsSeedFile('admin'),
    name: 'test-signal-sink',
    log,
  });
  t.teardown(() => drainNats(nc));
  const sink = new NatsSignalSink({ nc, log });
  await sink.ensureStream();
  await sink.ensureStream(); // tolerant when it exists

  // A unique strategy isolates this run inside the shared stream.
  const strategy = `t${randomUUID().slice(0, 8)}`;
  const sig = signal(strategy, `${strategy}:BTC-USD:1042`);
  await sink.publishSignal(sig);
  await sink.publishSignal(sig); // a retry: stored once

  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info('QILIN_SIGNALS', { subjects_filter: `sig.${strategy}.>` });
  t.same(info.state.subjects, { [`sig.${strategy}.BTC-USD`]: 1 }, 'one message for the id');
  t.equal(info.config.duplicate_window > 0, true);

  const consumer = await jetstream(nc).consumers.get('QILIN_SIGNALS', {
    filter_subjects: `sig.${strategy}.>`,
  });
  const m = await consumer.next({ expires: 5000 });
  t.ok(m, 'a consumer on sig.> receives it');
  t.equal(m?.string(), JSON.stringify(sig), 'exact JSON');
  t.equal(m?.headers?.get('Nats-Msg-Id'), sig.id, 'Nats-Msg-Id is the signal id');

  await sink.close();
  await sink.close();
  await t.rejects(sink.publishSignal(signal(strategy, 'after-close')), {
    code: 'QLN_PUBLISH_FAILED',
  });
});

void t.test('publishSignal rejects with a QilinError when the bus fails', async (t) => {
  const { natsUrl } = await ensureServices();
  const nc = await connectNats({
    servers: natsUrl,
    seedFile: await natsSeedFile('admin'),
    name: 'test-signal-sink-fail',
    log,
  });
  const sink = new NatsSignalSink({ nc, log, ackTimeoutMs: 500 });
  await sink.ensureStream();
  await drainNats(nc);
  const err = await sink.publishSignal(signal('tfail', 'x1')).then(
    () => undefined,
    (e: unknown) => e as { code?: string; message: string },
  );
  t.ok(err, 'rejected');
  t.equal(err?.code, 'QLN_PUBLISH_FAILED');
  t.match(err?.message, /x1.*sig\.tfail\.BTC-USD/);
  t.throws(() => new NatsSignalSink({ nc, log, ackTimeoutMs: 0 }), {
    code: 'QLN_INVALID_ARGUMENT',
  });
  await t.rejects(sink.publishSignal({ ...signal('bad.strategy', 'x2') }), {
    code: 'QLN_INVALID_ARGUMENT',
  });
});

void t.test('rejections go out on risk.rejected.<symbol>', async (t) => {
  const { natsUrl } = await ensureServices();
  const nc = await connectNats({
    servers: natsUrl,
    seedFile: await natsSeedFile('admin'),
    name: 'test-signal-sink-rej',
    log,
  });
  t.teardown(() => drainNats(nc));
  const sink = new NatsSignalSink({ nc, log });
  const sym = `R${randomUUID().slice(0, 8)}`;
  const sub = nc.subscribe(`risk.rejected.${sym}`, { max: 1 });
  await nc.flush();
  const rej: RiskRejection = {
    signal: { ...signal('s1', 'r1'), sym },
    reason: 'kill_switch',
    detail: 'killed by ops',
    ts: 5,
  };
  sink.publishRejection(rej);
  sink.publishRejection({ ...rej, signal: { ...rej.signal, sym: 'bad sym' } }); // logged, not thrown
  for await (const m of sub) {
    t.same(m.json(), rej);
  }
});
