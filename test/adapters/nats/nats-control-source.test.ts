import { randomUUID } from 'node:crypto';
import t from 'tap';
import { connectNats, drainNats } from '../../../adapters/nats/nats-connection.js';
import { NatsControlSource } from '../../../adapters/nats/nats-control-source.js';
import { createLogger } from '../../../kernel/logger.js';
import type {
  FillMessage,
  RiskControlMessage,
  RiskControlReply,
} from '../../../kernel/messages.js';
import type { ControlHandlers } from '../../../kernel/signal-sink.js';
import { ensureServices, natsSeedFile } from '../../helpers/services.js';

const log = createLogger('nats-control-source-test', process.env['QILIN_LOG_LEVEL'] ?? 'warn');

void t.test('fills and risk control over NATS', async (t) => {
  const { natsUrl } = await ensureServices();
  const nc = await connectNats({
    servers: natsUrl,
    seedFile: await natsSeedFile('admin'),
    name: 'test-control',
    log,
  });
  t.teardown(() => drainNats(nc));
  // Private subjects so a kernel running on the shared dev server never answers.
  const id = randomUUID().slice(0, 8);
  const fills: [FillMessage, string][] = [];
  const bad: [string, string][] = [];
  const controls: [string, RiskControlMessage][] = [];
  let killed = false;
  let onEvent = (): void => undefined;
  const handlers: ControlHandlers = {
    onFill: (fill, account) => {
      fills.push([fill, account]);
      onEvent();
    },
    onRiskControl: (op, msg): RiskControlReply => {
      if (msg.reason === 'explode') throw new Error('handler failed');
      controls.push([op, msg]);
      killed = op === 'kill';
      return { killed, by: msg.by, reason: msg.reason, at: 1234 };
    },
    onBadControl: (subject, detail) => {
      bad.push([subject, detail]);
      onEvent();
    },
  };
  const source = new NatsControlSource({
    nc,
    log,
    fillSubject: `fill${id}.*`,
    killSubject: `ctl${id}.risk.kill`,
    resumeSubject: `ctl${id}.risk.resume`,
  });
  await source.start(handlers);

  const req = async (op: string, body: string) =>
    (await nc.request(`ctl${id}.risk.${op}`, body, { timeout: 5000 })).json<unknown>();

  t.same(await req('kill', JSON.stringify({ by: 'alice', reason: 'drill' })), {
    killed: true,
    by: 'alice',
    reason: 'drill',
    at: 1234,
  });
  t.same(await req('resume', JSON.stringify({ by: 'bob', reason: 'done' })), {
    killed: false,
    by: 'bob',
    reason: 'done',
    at: 1234,
  });
  t.same(controls, [
    ['kill', { by: 'alice', reason: 'drill' }],
    ['resume', { by: 'bob', reason: 'done' }],
  ]);
  for (const body of [
    'nope',
    '{"by":"a"}',
    '{"by":"","reason":"x"}',
    JSON.stringify({ by: 'a', reason: 'x'.repeat(201) }),
    '[]',
  ]) {
    const r = (await req('kill', body)) as { error?: { code: string; message: string } };
    t.equal(r.error?.code, 'QLN_INVALID_ARGUMENT', `bad body ${body.slice(0, 20)} refused`);
    t.ok((r.error?.message.length ?? 0) > 0);
  }
  t.equal(bad.length, 5, 'bad control bodies reported');
  t.notOk(killed, 'bad bodies changed nothing');
  const failed = (await req('kill', JSON.stringify({ by: 'a', reason: 'explode' }))) as {
    error?: { code: string; message: string };
  };
  t.match(failed.error, { code: 'QLN_INTERNAL', message: 'handler failed' });

  // Fills: two good, three bad; wait for all five.
  const done = new Promise<void>((resolve) => {
    onEvent = () => {
      if (fills.length + bad.length === 2 + 5 + 3) resolve();
    };
  });
  const fill: FillMessage = {
    signalId: 's1',
    sym: 'BTC-USD',
    side: 'buy',
    qty: 0.5,
    px: 97000,
    ts: 1,
  };
  nc.publish(`fill${id}.acct1`, JSON.stringify(fill));
  nc.publish(`fill${id}.acct2`, JSON.stringify({ ...fill, side: 'sell', extra: true }));
  nc.publish(`fill${id}.acct1`, JSON.stringify({ ...fill, qty: 0 }));
  nc.publish(`fill${id}.acct1`, JSON.stringify({ ...fill, side: 'hold' }));
  nc.publish(`fill${id}.acct1`, '{oops');
  await done;
  t.same(fills, [
    [fill, 'acct1'],
    [{ ...fill, side: 'sell' }, 'acct2'],
  ]);
  t.match(
    bad.slice(5).map((b) => b[1]),
    [/qty = 0/, /side = "hold"/, /not UTF-8 JSON/],
  );

  await source.close();
  await source.close();
});

void t.test('account option narrows fills to fill.<account>', (t) => {
  t.throws(() => new NatsControlSource({ nc: {} as never, log, account: 'a.b' }), {
    code: 'QLN_INVALID_ARGUMENT',
  });
  t.end();
});
