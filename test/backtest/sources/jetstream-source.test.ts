/**
 * JetStreamTickSource against the real NATS: the stream's ticks in stream
 * order through chunks of 7, decoded as the kernel does (bad messages
 * counted), recv = the JetStream timestamp, a bounded replay (messages
 * published after the start are not read), start by sequence and by time,
 * an empty stream, a missing one. Reads as the `kernel` NATS role, the one
 * `openTickSource` connects with.
 */
import { randomBytes } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import {
  TICK_BINARY_CONTENT_TYPE,
  TickBinaryCodec,
} from '../../../adapters/nats/tick-binary-codec.js';
import t from 'tap';
import { JetStreamTickSource } from '../../../backtest/sources/jetstream-source.js';
import { openTickSource } from '../../../backtest/sources/open-source.js';
import { newTickChunk } from '../../../backtest/tick-chunk.js';
import { ErrorCodes } from '../../../kernel/errors.js';
import { connectAs, ensureServices } from '../../helpers/services.js';
import { testKernelConfig } from '../../helpers/test-kernel.js';
import { until } from '../../helpers/wait.js';
import { readAll, type ReadTick } from './source-fixtures.js';

const run = randomBytes(4).toString('hex');
const venue = `src${run}`;
const stream = `QILIN_MD_SRC_${run}`;
const T0 = 1_767_225_600_000_000;

void t.test('JetStreamTickSource on a real stream', async (t) => {
  const admin = await connectAs('admin');
  const nc = await connectAs('kernel');
  const jsm = await jetstreamManager(admin);
  const js = jetstream(admin);
  t.teardown(async () => {
    await jsm.streams.delete(stream).catch(() => false);
    await jsm.streams.delete(`${stream}_EMPTY`).catch(() => false);
    await nc.close();
    await admin.close();
  });
  await jsm.streams.add({ name: stream, subjects: [`md.${venue}.>`] });
  await jsm.streams.add({ name: `${stream}_EMPTY`, subjects: [`mdempty.${venue}.>`] });

  const sent: ReadTick[] = [];
  const times: Array<[number, number]> = [];
  let seq = 0;
  const publish = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      seq++;
      const sym = seq % 3 === 0 ? 'BBB' : 'AAA';
      const ts = T0 + seq * 1000;
      const trade = seq % 4 !== 0;
      const body = trade
        ? {
            type: 'trade',
            sym,
            ts,
            px: 100 + seq / 4,
            qty: 1 + (seq % 5),
            side: seq % 2 ? 'buy' : 'sell',
            seq,
          }
        : {
            type: 'quote',
            sym,
            ts,
            bid: 99 + seq / 4,
            bidQty: 2,
            ask: 101 + seq / 4,
            askQty: 3,
            seq,
          };
      const before = Date.now() * 1000;
      await js.publish(`md.${venue}.${sym}`, JSON.stringify(body));
      times.push([before, Date.now() * 1000]);
      sent.push({
        type: trade ? 'trade' : 'quote',
        sym,
        seq,
        tsUs: ts,
        recvUs: 0,
        px: trade ? 100 + seq / 4 : 0,
        qty: trade ? 1 + (seq % 5) : 0,
        side: trade ? (seq % 2 ? 1 : -1) : 0,
        bid: trade ? 0 : 99 + seq / 4,
        bidQty: trade ? 0 : 2,
        ask: trade ? 0 : 101 + seq / 4,
        askQty: trade ? 0 : 3,
      });
    }
  };
  await publish(12);
  // Two messages the kernel's decoder refuses: stream seqs 13 and 14.
  await js.publish(`md.${venue}.AAA`, '{"type":"trade",');
  await js.publish(
    `md.${venue}.AAA`,
    JSON.stringify({ type: 'trade', sym: 'ZZZ', ts: T0, px: 1, qty: 1, seq: 1 }),
  );
  times.push([0, 0], [0, 0]);
  await publish(13); // stream seqs 15..27

  await t.test('every tick in stream order through chunks of 7; bad ones counted', async (t) => {
    const src = new JetStreamTickSource({ nc, stream });
    await src.open();
    t.equal(src.total, 27, 'total: the pending messages at the start');
    t.equal(src.lastSeq, 27);
    const got = await readAll(src, 7);
    t.equal(got.ticks.length, 25);
    t.same(
      got.ticks.map((r) => ({ ...r, recvUs: 0 })),
      sent,
      'every field as published, in order',
    );
    const streamTimes = times.filter(([a]) => a > 0);
    const inWindow = got.ticks.filter(
      (r, i) => r.recvUs >= streamTimes[i]![0] - 2000 && r.recvUs <= streamTimes[i]![1] + 2000,
    );
    t.equal(inWindow.length, 25, 'recv = when JetStream stored it (µs)');
    t.equal(src.read, 25);
    t.equal(src.rejected, 2);
    t.same(
      src.rejections.map((r) => r.at),
      [13, 14],
      'the stream sequences of the refused messages',
    );
    t.match(src.rejections[1]!.reason, /ZZZ/);
    t.same(src.symbols, ['AAA', 'BBB']);
    await src.close();
    t.equal(await src.next(newTickChunk(3)), 0, 'closed: nothing more');
  });

  await t.test('bounded: what is published after the start is not replayed', async (t) => {
    const src = new JetStreamTickSource({ nc, stream, startSeq: 20 });
    await src.open();
    await publish(5); // stream seqs 28..32
    const got = await readAll(src, 4);
    t.same(
      got.ticks.map((r) => r.seq),
      sent.slice(17, 25).map((r) => r.seq),
      'stream seqs 20..27 only',
    );
    await src.close();
  });

  await t.test('since: from the first message stored at or after a time', async (t) => {
    const mark = Date.now();
    await until('the clock moved past the mark', () => Date.now() > mark + 1);
    const since = Date.now() * 1000;
    await until('the clock moved past since', () => Date.now() * 1000 > since + 1000);
    await publish(3); // stream seqs 33..35
    const src = await openTickSource(`jetstream:stream=${stream},since=${since}`, { nc });
    t.equal(src.total, 3);
    const got = await readAll(src, 2);
    t.same(
      got.ticks.map((r) => r.seq),
      sent.slice(-3).map((r) => r.seq),
    );
    await src.close();
  });

  await t.test('since is exact to the µs (the server starts at a millisecond)', async (t) => {
    const all = (await readAll(new JetStreamTickSource({ nc, stream }), 50)).ticks;
    for (const k of [1, 5, 20]) {
      const since = all[k]!.recvUs;
      const src = new JetStreamTickSource({ nc, stream, since });
      const got = (await readAll(src, 6)).ticks;
      t.same(
        got.map((r) => r.seq),
        all.filter((r) => r.recvUs >= since).map((r) => r.seq),
        `since the ${k}th tick's stored time`,
      );
      await src.close();
    }
  });

  await t.test('from the kernel config: connects as the kernel role', async (t) => {
    const config = await testKernelConfig(
      await ensureServices(),
      `qilin_src_${run}`,
      run.repeat(4),
    );
    const src = await openTickSource(`jetstream:stream=${stream},seq=2`, { config });
    const got = await readAll(src, 8);
    t.equal(got.ticks[0]!.seq, 2, 'from stream seq 2');
    t.equal(got.ticks.length + src.rejected, src.total!, 'every pending message read or refused');
    await src.close();
  });

  await t.test(
    'subjects filter (stored subjects carry the partition: md.<venue>.<sym>.<p>)',
    async (t) => {
      const src = new JetStreamTickSource({ nc, stream, subjects: [`md.${venue}.BBB.>`] });
      const got = await readAll(src, 5);
      t.same(
        got.ticks.map((r) => r.sym),
        sent.filter((r) => r.sym === 'BBB').map(() => 'BBB'),
      );
      t.equal(got.ticks.length, sent.filter((r) => r.sym === 'BBB').length);
      await src.close();
    },
  );

  await t.test('binary ticks (by Content-Type) decode as the kernel decodes them', async (t) => {
    const h = headers();
    h.set('Content-Type', TICK_BINARY_CONTENT_TYPE);
    const codec = new TickBinaryCodec();
    const trade = {
      type: 'trade',
      sym: 'AAA',
      ts: T0 + 7,
      px: 12.5,
      qty: 3,
      side: 'sell',
      seq: 9,
    } as const;
    const ack = await js.publish(`md.${venue}.AAA`, codec.encodeTick(trade), { headers: h });
    const src = new JetStreamTickSource({ nc, stream, startSeq: ack.seq });
    const got = await readAll(src, 2);
    t.same(
      got.ticks.map((r) => [r.type, r.sym, r.seq, r.tsUs, r.px, r.qty, r.side]),
      [['trade', 'AAA', 9, T0 + 7, 12.5, 3, -1]],
    );
    t.equal(src.rejected, 0);
  });

  await t.test(
    'an empty stream ends at once; a missing one is QLN_REPLAY_SOURCE_FAILED',
    async (t) => {
      const empty = new JetStreamTickSource({ nc, stream: `${stream}_EMPTY` });
      t.equal(await empty.next(newTickChunk(4)), 0);
      t.equal(empty.total, 0);
      await empty.close();
      await t.rejects(openTickSource(`jetstream:stream=${stream}_NOPE`, { nc }), {
        code: ErrorCodes.REPLAY_SOURCE_FAILED,
        message: new RegExp(`no stream ${stream}_NOPE`),
      });
      t.ok(!nc.isClosed(), 'a connection it was given stays open');
    },
  );
});
