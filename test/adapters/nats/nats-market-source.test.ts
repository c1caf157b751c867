import { randomUUID } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import t from 'tap';
import { connectNats, drainNats } from '../../../adapters/nats/nats-connection.js';
import { NatsMarketSource } from '../../../adapters/nats/nats-market-source.js';
import {
  TICK_BINARY_CONTENT_TYPE,
  TickBinaryCodec,
} from '../../../adapters/nats/tick-binary-codec.js';
import { createLogger } from '../../../kernel/logger.js';
import type { MarketEvent } from '../../../kernel/market-record.js';
import type { MarketIngest, RejectReason } from '../../../kernel/market-source.js';
import type { TickMessage } from '../../../kernel/messages.js';
import { ensureServices, natsSeedFile } from '../../helpers/services.js';

const log = createLogger('nats-market-source-test', process.env['QILIN_LOG_LEVEL'] ?? 'warn');
const DEADLINE_MS = 15_000;

interface Accepted {
  sym: string;
  venue: string;
  ev: MarketEvent;
}
interface Rejected {
  reason: RejectReason;
  subject: string;
  detail: string;
}

/** Records what a source feeds it; `until` resolves when a condition holds (or fails at a deadline). */
class RecordingIngest implements MarketIngest {
  readonly names: string[] = [];
  readonly accepted: Accepted[] = [];
  readonly rejected: Rejected[] = [];
  private waiters: { pred: () => boolean; resolve: () => void }[] = [];
  constructor(private readonly acceptIf: (n: number) => boolean = () => true) {}

  intern(symbol: string): number {
    let id = this.names.indexOf(symbol);
    if (id === -1) id = this.names.push(symbol) - 1;
    return id;
  }
  accept(event: MarketEvent, venue: string): boolean {
    if (!this.acceptIf(this.accepted.length)) return false;
    this.accepted.push({ sym: this.names[event.symId]!, venue, ev: { ...event } });
    this.check();
    return true;
  }
  reject(reason: RejectReason, subject: string, detail: string): void {
    this.rejected.push({ reason, subject, detail });
    this.check();
  }
  until(what: string, pred: () => boolean): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${what}`)),
        DEADLINE_MS,
      );
      this.waiters.push({
        pred,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
  private check(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred()) return true;
      w.resolve();
      return false;
    });
  }
}

const nowUs = () => Math.floor(Date.now() * 1000);
const tradeOf = (sym: string, seq: number): TickMessage => ({
  type: 'trade',
  sym,
  ts: nowUs(),
  px: 100 + seq,
  qty: 1,
  side: 'buy',
  seq,
});

async function connectTest(name: string): Promise<NatsConnection> {
  const { natsUrl } = await ensureServices();
  return connectNats({ servers: natsUrl, seedFile: await natsSeedFile('admin'), name, log });
}

void t.test(
  'core: good ticks arrive decoded; each malformed kind is rejected with its reason',
  async (t) => {
    const nc = await connectTest('test-market-core');
    t.teardown(() => drainNats(nc));
    const venue = `v${randomUUID().slice(0, 8)}`;
    const source = new NatsMarketSource({ nc, log, subject: `md.${venue}.>`, maxPayload: 1024 });
    const ingest = new RecordingIngest();
    await source.start(ingest);

    const enc = new TextEncoder();
    const bin = new TickBinaryCodec();
    const binHdr = headers();
    binHdr.set('Content-Type', TICK_BINARY_CONTENT_TYPE);
    const textHdr = headers();
    textHdr.set('Content-Type', 'text/plain');
    const jsonHdr = headers();
    jsonHdr.set('Content-Type', 'application/json');

    const bad: [string, string | Uint8Array, RejectReason, ReturnType<typeof headers>?][] = [
      ['GARBAGE', '{"type":', 'malformed_json'],
      ['ARRAY', '[1,2]', 'not_an_object'],
      ['NEG', JSON.stringify({ ...tradeOf('NEG', 1), px: -5 }), 'bad_number'],
      ['WRONG', JSON.stringify(tradeOf('OTHER', 1)), 'symbol_mismatch'],
      ['NOSEQ', JSON.stringify({ ...tradeOf('NOSEQ', 1), seq: undefined }), 'missing_field'],
      ['BIG', JSON.stringify({ ...tradeOf('BIG', 1), pad: 'x'.repeat(2000) }), 'oversized'],
      ['TEXT', JSON.stringify(tradeOf('TEXT', 1)), 'unsupported_content_type', textHdr],
      ['BINBAD', bin.encodeTick(tradeOf('BINBAD', 1)).subarray(0, 20), 'malformed_binary', binHdr],
      ['KIND', JSON.stringify({ ...tradeOf('KIND', 1), type: 'book' }), 'unknown_type'],
      ['OLD', JSON.stringify({ ...tradeOf('OLD', 1), ts: 5 }), 'bad_timestamp'],
    ];
    const goodPerSym = 20;
    for (let i = 0; i < goodPerSym; i++) {
      nc.publish(`md.${venue}.BTC-USD`, JSON.stringify(tradeOf('BTC-USD', i)));
      nc.publish(`md.${venue}.ETH-USD`, bin.encodeTick(tradeOf('ETH-USD', i)), { headers: binHdr });
      nc.publish(
        `md.${venue}.SOL-USD`,
        JSON.stringify({
          ...tradeOf('SOL-USD', i),
          type: 'quote',
          bid: 1,
          bidQty: 1,
          ask: 2,
          askQty: 0,
        }),
        {
          headers: jsonHdr,
        },
      );
      const b = bad[i % bad.length];
      if (i < bad.length && b !== undefined) {
        const [sym, body, , h] = b;
        nc.publish(
          `md.${venue}.${sym}`,
          typeof body === 'string' ? enc.encode(body) : body,
          h ? { headers: h } : undefined,
        );
      }
    }
    await ingest.until(
      'all good ticks and all rejects',
      () => ingest.accepted.length === 3 * goodPerSym && ingest.rejected.length === bad.length,
    );

    for (const sym of ['BTC-USD', 'ETH-USD', 'SOL-USD']) {
      const got = ingest.accepted.filter((a) => a.sym === sym);
      t.same(
        got.map((a) => a.ev.seq),
        [...Array(goodPerSym).keys()],
        `${sym}: every seq, in order`,
      );
      t.ok(
        got.every((a) => a.venue === venue),
        `${sym}: venue from the subject`,
      );
      t.ok(
        got.every((a) => a.ev.recv > 0 && a.ev.symId === ingest.names.indexOf(sym)),
        `${sym}: recv and symId set`,
      );
    }
    const eth = ingest.accepted.find((a) => a.sym === 'ETH-USD')!;
    t.match(eth.ev, { kind: 1, px: 100, qty: 1, side: 1 }, 'binary tick decoded');
    for (const [sym, , reason] of bad) {
      const r = ingest.rejected.find((x) => x.subject.startsWith(`md.${venue}.${sym}.`));
      t.equal(r?.reason, reason, `${sym} rejected as ${reason}`);
    }
    t.same(source.stats(), {
      received: 3 * goodPerSym + bad.length,
      accepted: 3 * goodPerSym,
      rejected: bad.length,
      dropped: 0,
      naked: 0,
      acked: 0,
      ackWaiting: 0,
      redelivered: 0,
      replayed: 0,
    });

    // Bad subjects under the filter are rejected too.
    nc.publish(`md.${venue}.A.B`, JSON.stringify(tradeOf('A', 1)));
    await ingest.until('bad subject', () => ingest.rejected.length === bad.length + 1);
    t.equal(ingest.rejected.at(-1)?.reason, 'bad_subject');

    await source.close();
    await source.close(); // safe twice
    t.ok(true, 'closed twice');
  },
);

void t.test('core: a full ring counts the loss', async (t) => {
  const nc = await connectTest('test-market-full');
  t.teardown(() => drainNats(nc));
  const venue = `v${randomUUID().slice(0, 8)}`;
  const source = new NatsMarketSource({ nc, log, subject: `md.${venue}.>` });
  const ingest = new RecordingIngest((n) => n < 3);
  await source.start(ingest);
  for (let i = 0; i < 5; i++) nc.publish(`md.${venue}.X`, JSON.stringify(tradeOf('X', i)));
  await nc.flush();
  await ingest.until('3 accepted', () => ingest.accepted.length === 3);
  await source.close(); // drain: everything delivered is handled before close resolves
  t.equal(source.stats().dropped, 2);
  t.equal(source.stats().received, 5);
});

void t.test(
  'JetStream durable: 100 published, 50 consumed, restart resumes with the other 50',
  async (t) => {
    const nc = await connectTest('test-market-js');
    const id = randomUUID().slice(0, 8);
    const venue = `js${id}`;
    const stream = `QTEST_MD_${id}`;
    const durable = `qtest-${id}`;
    const jsm = await jetstreamManager(nc);
    t.teardown(async () => {
      await jsm.streams.delete(stream).catch(() => undefined);
      await drainNats(nc);
    });
    const jsOpts = { stream, durable, nakDelayMs: 20, ackWaitMs: 2000, batch: 30 };
    const subject = `md.${venue}.>`;

    // The source creates the stream and the durable.
    const first = new NatsMarketSource({ nc, log, subject, jetstream: jsOpts });
    const ingest1 = new RecordingIngest((n) => n < 50);
    await first.start(ingest1);
    const info = await jsm.streams.info(stream);
    t.same(info.config.subjects, [subject]);
    t.equal(info.config.storage, 'file');

    const js = jetstream(nc);
    for (let i = 0; i < 100; i++) {
      const sym = i % 2 === 0 ? 'AAA' : 'BBB';
      await js.publish(`md.${venue}.${sym}`, JSON.stringify(tradeOf(sym, i)));
    }
    await ingest1.until('50 accepted by the first source', () => ingest1.accepted.length === 50);
    await first.close();
    t.ok(first.stats().naked > 0, "ring-full ticks were nak'd, not lost");

    const second = new NatsMarketSource({ nc, log, subject, jetstream: jsOpts });
    const ingest2 = new RecordingIngest();
    await second.start(ingest2);
    await ingest2.until('the other 50', () => ingest2.accepted.length >= 50);

    // Nothing left in flight or pending: no further (duplicate) delivery can come.
    const deadline = Date.now() + DEADLINE_MS;
    for (;;) {
      const ci = await jsm.consumers.info(stream, durable);
      if (ci.num_ack_pending === 0 && ci.num_pending === 0) break;
      if (Date.now() > deadline) throw new Error(`consumer not settled: ${JSON.stringify(ci)}`);
      await new Promise<void>((r) => setImmediate(r));
    }
    await second.close();
    const seqs = [...ingest1.accepted, ...ingest2.accepted]
      .map((a) => a.ev.seq)
      .sort((a, b) => a - b);
    t.equal(ingest2.accepted.length, 50, 'exactly the remaining 50');
    t.same(seqs, [...Array(100).keys()], 'no loss, no duplicate');
  },
);
