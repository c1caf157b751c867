/**
 * JetStream input is the no-loss mode for bursts beyond capacity: a burst
 * published into the market stream far faster than the kernel processes it
 * is taken at the kernel's pace (pull consumers per partition, acks after
 * the tick is in the store ring) and every tick arrives and is stored
 * exactly once. Real NATS (JetStream) and ClickHouse.
 */
import { randomBytes } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createClient } from '@clickhouse/client';
import { pino } from 'pino';
import t from 'tap';
import { KernelApp } from '../../cli/kernel-app.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { ensureServices, connectAs } from '../helpers/services.js';
import { testKernelConfig } from '../helpers/test-kernel.js';
import { until } from '../helpers/wait.js';

const run = randomBytes(3).toString('hex');
const venue = `js${run}`;
const stream = `QILIN_MD_${run}`;
const SYMBOLS = 100;
const PER_SYMBOL = 300;
const TOTAL = SYMBOLS * PER_SYMBOL;

void t.test(
  'a JetStream burst beyond capacity: every tick received and stored exactly once',
  async (t) => {
    const urls = await ensureServices();
    const db = `qilin_jsov_${run}`;
    const config = await testKernelConfig(urls, db, `jsov-read-${run}`, {
      marketSubject: `md.${venue}.>`,
      ringBytes: 1 << 16,
    });
    const app = new KernelApp({
      config,
      log: pino({ level: 'silent' }),
      account: `jsov${run}`,
      jetstream: { stream, durable: `k${run}` },
    });
    const nc = await connectAs('admin', { name: 'jetstream-overload-test' });
    const ch = createClient({ url: urls.clickhouseUrl, database: db });
    t.teardown(async () => {
      await app.close();
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(stream).catch(() => false);
      await nc.drain();
      await ch.close();
      await dropDatabase(urls.clickhouseUrl, db);
    });
    // The burst: the first half is in the stream before the kernel starts (a
    // backlog far beyond what it holds in memory), the second half is
    // published while it drains the first.
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`md.${venue}.>`] });
    const js = jetstream(nc);
    const ts0 = Date.now() * 1000;
    const publish = async (fromSeq: number, toSeq: number): Promise<number> => {
      let n = 0;
      const pending: Array<Promise<unknown>> = [];
      for (let seq = fromSeq; seq <= toSeq; seq++) {
        for (let s = 0; s < SYMBOLS; s++) {
          const sym = `J${s}`;
          pending.push(
            js.publish(
              `md.${venue}.${sym}`,
              JSON.stringify({
                type: 'trade',
                sym,
                ts: ts0 + seq,
                px: 100 + (seq % 7),
                qty: 1,
                seq,
              }),
              // The kernel drains the stream at full speed meanwhile: on a loaded
              // 2-core machine an acknowledgement can take longer than the 5 s default.
              { timeout: 30_000 },
            ),
          );
          n++;
          if (pending.length === 1000) await Promise.all(pending.splice(0));
        }
      }
      await Promise.all(pending);
      return n;
    };
    const half = PER_SYMBOL / 2;
    t.equal(await publish(1, half), TOTAL / 2, 'first half of the burst in the stream');
    await app.start();
    const received = (): number => app.pool.stats().reduce((n, s) => n + s.accepted, 0);
    t.equal(await publish(half + 1, PER_SYMBOL), TOTAL / 2, 'second half published while draining');
    const info = await jsm.streams.info(stream);
    t.equal(info.state.messages, TOTAL, 'the stream holds every tick (mapped subjects captured)');

    await until('every tick received', () => received() === TOTAL, 120_000, 100);
    const stats = app.pool.stats();
    t.equal(
      stats.reduce((n, s) => n + s.storeDropped, 0),
      0,
      'no store row dropped',
    );
    await app.store.flush();
    const rows = await (
      await ch.query({
        query: `SELECT count() AS n, uniqExact(sym, seq) AS u FROM ticks WHERE venue = '${venue}'`,
        format: 'JSONEachRow',
      })
    ).json<{ n: string | number; u: string | number }>();
    t.same(
      rows.map((r) => [Number(r.n), Number(r.u)]),
      [[TOTAL, TOTAL]],
      `${TOTAL} rows, ${TOTAL} distinct (sym, seq): stored exactly once`,
    );
    const missing = await (
      await ch.query({
        query: `SELECT sym, count() AS n FROM ticks WHERE venue = '${venue}' GROUP BY sym HAVING n != ${PER_SYMBOL}`,
        format: 'JSONEachRow',
      })
    ).json();
    t.same(missing, [], `every symbol has its ${PER_SYMBOL} ticks`);
  },
);
