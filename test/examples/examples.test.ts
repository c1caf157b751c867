/**
 * The user examples (examples/executor.ts, examples/ws-subscriber.ts) run as
 * users run them — child processes of `node dist/examples/….js` — against a
 * live KernelApp on the real local NATS (JetStream), Redis and ClickHouse:
 *
 * ```
 *  test ─ md.<venue>.UP<run> (rising trend) ─► KernelApp ─┬─ WS signal/* ─► ws-subscriber --count 3 → exit 0
 *                                                         └─ JetStream sig.<strategy>.> ─► executor
 *  KernelApp RiskActor positions ◄─ fill.<account> ◄──────────────────────────────────────────┘
 * ```
 * The signal stream QILIN_SIGNALS is shared with other tests (the pipeline
 * test deletes and recreates it): it is used as found, never deleted here.
 * Only this run's durable consumer is removed at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import t from 'tap';
import WebSocket from 'ws';
import { KernelApp } from '../../cli/kernel-app.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { MarketFeed } from '../helpers/market-feed.js';
import { connectAs, ensureServices, natsSeedFile } from '../helpers/services.js';
import { SIGNAL_EVERY_TRADE, testKernelConfig } from '../helpers/test-kernel.js';
import { until, within } from '../helpers/wait.js';

const run = randomBytes(3).toString('hex');
const strategy = `ex${run}`;
const account = `exacct${run}`;
const venue = `exv${run}`;
const READ_KEY = `ex-read-${run}`;
const UP = `EXUP${run}`;
const RS = `EXRS${run}`;

const examplePath = (name: string): string =>
  fileURLToPath(new URL(`../../examples/${name}.js`, import.meta.url));

/** A running example: its stdout/stderr lines as they arrive, and its exit. */
interface Example {
  child: ChildProcess;
  out: string[];
  err: string[];
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Resolves with the first stdout line matching `re` (already seen or future); rejects after `ms`. */
  line(re: RegExp, ms?: number): Promise<string>;
}

function startExample(name: string, args: string[], env: Record<string, string>): Example {
  const child = spawn(process.execPath, [examplePath(name), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  const err: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  createInterface({ input: child.stdout }).on('line', (l) => {
    out.push(l);
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!;
      if (w.re.test(l)) {
        waiters.splice(i, 1);
        w.resolve(l);
      }
    }
  });
  createInterface({ input: child.stderr }).on('line', (l) => err.push(l));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const line = (re: RegExp, ms = 20_000): Promise<string> => {
    const seen = out.find((l) => re.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(`${name}: no line matching ${re} within ${ms} ms; stderr: ${err.join('\n')}`),
        );
      }, ms);
      waiters.push({
        re,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      // A child that dies first will never print it: fail now, with its stderr.
      void exited.then((code) => {
        clearTimeout(timer);
        reject(
          new Error(`${name} exited ${code} before printing ${re}; stderr: ${err.join('\n')}`),
        );
      });
    });
  };
  return { child, out, err, exited, line };
}

/** A rising series of trades and quotes on md.<venue>.<sym>, +0.2 % per trade. */
function publishRisingTrend(nc: NatsConnection, sym: string, n: number, firstSeq: number): number {
  let px = 100;
  let seq = firstSeq;
  let ts = 0;
  for (let i = 0; i < n; i++) {
    px *= 1.002;
    // Exchange time = now, strictly increasing: tick→here is then the real path.
    ts = Math.max(Math.floor((performance.timeOrigin + performance.now()) * 1000), ts + 2);
    nc.publish(
      `md.${venue}.${sym}`,
      JSON.stringify({ type: 'trade', sym, ts, px, qty: 1, side: 'buy', seq: seq++ }),
    );
    nc.publish(
      `md.${venue}.${sym}`,
      JSON.stringify({
        type: 'quote',
        sym,
        ts: ts + 1,
        bid: px - 0.01,
        bidQty: 2,
        ask: px + 0.01,
        askQty: 3,
        seq: seq++,
      }),
    );
  }
  return seq;
}

void t.test('examples: executor and ws-subscriber against a live kernel', async (t) => {
  const urls = await ensureServices();
  const config = await testKernelConfig(urls, `qilin_ex_${run}`, READ_KEY, SIGNAL_EVERY_TRADE);
  const app = new KernelApp({
    config,
    log: pino({ level: 'silent' }),
    strategy,
    account,
  });
  await app.start(); // creates QILIN_SIGNALS if it is missing, keeps it as it is otherwise
  const nc = await connectAs('admin', { name: 'examples-test' });
  // This run's account has no executor user on the shared server: the
  // executor takes the admin seed (the executor role's own limits are
  // tested in test/integration/nats-auth.test.ts).
  const seedFile = await natsSeedFile('admin');
  const executor = startExample('executor', ['--account', account, '--strategy', strategy], {
    QILIN_NATS_URL: urls.natsUrl,
    ...(seedFile === undefined ? {} : { QILIN_NATS_SEED_FILE: seedFile }),
  });
  t.teardown(async () => {
    if (executor.child.exitCode === null && executor.child.signalCode === null) {
      executor.child.kill('SIGKILL');
      await executor.exited;
    }
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.delete('QILIN_SIGNALS', `executor-${account}`).catch(() => false);
    await nc.drain();
    await app.close();
    await dropDatabase(urls.clickhouseUrl, `qilin_ex_${run}`);
  });

  // The durable consumer exists once this line is out: signals from now on reach it.
  await executor.line(/^executor: account /);

  const subscriber = startExample(
    'ws-subscriber',
    ['--count', '3', '--url', `ws://127.0.0.1:${app.port}/ws`],
    { QILIN_API_KEY: READ_KEY },
  );
  await subscriber.line(/^subscribed signal\/\*$/);

  publishRisingTrend(nc, UP, 40, 1);
  await nc.flush();

  await t.test('ws-subscriber prints 3 signals with latencies and exits 0', async (t) => {
    const code = await within('ws-subscriber to exit', subscriber.exited, 30_000);
    t.equal(code, 0, `exit code 0 (stderr: ${subscriber.err.join(' | ')})`);
    const signals = subscriber.out.filter((l) => l.startsWith('signal '));
    t.equal(signals.length, 3, 'exactly --count 3 signal lines printed');
    for (const l of signals) {
      const m =
        /^signal (\S+) (buy|sell|flat) strength \S+ refPx \S+ id \S+ \| tick→here (-?[\d.]+) ms \(incl\. feed delay\) \| recv→here ([\d.]+) ms \| kernel recv→pub ([\d.]+) ms$/.exec(
          l,
        );
      if (m === null) {
        t.fail(`unexpected line: ${l}`);
        continue;
      }
      t.ok(Number.isFinite(Number(m[4])) && Number(m[5]) <= Number(m[4]), `latencies: ${l}`);
    }
  });

  await t.test('the executor fills approved signals and the kernel sees them', async (t) => {
    await executor.line(new RegExp(`^fill buy \\S+ ${UP} @ `));
    await until(
      'a position from the executor fills',
      () => (app.risk.positions().get(UP) ?? 0) > 0,
    );
    t.ok((app.risk.positions().get(UP) ?? 0) > 0, `position of ${UP} is long after buy fills`);
    const fills = executor.out.filter((l) => l.startsWith(`fill `) && l.includes(` ${UP} @ `));
    t.ok(fills.length > 0, `${fills.length} fills printed`);
    t.notOk(
      executor.out.some((l) => / flat /.test(l)),
      'no fill for a flat signal',
    );
  });

  await t.test('the executor stops cleanly on SIGTERM', async (t) => {
    executor.child.kill('SIGTERM');
    const code = await within('executor to exit after SIGTERM', executor.exited, 10_000);
    t.equal(code, 0, `exit code 0 (stderr: ${executor.err.join(' | ')})`);
  });

  await t.test(
    'ws-resume-subscriber: dropped, it resumes with its offsets and misses nothing',
    async (t) => {
      const topic = `signal/${RS}`;
      // A watcher connected throughout: what the kernel published on the topic.
      const watcher = new WebSocket(`ws://127.0.0.1:${app.port}/ws`, {
        headers: { authorization: `Bearer ${READ_KEY}` },
      });
      const published: Array<{ off: number; seq: number }> = [];
      watcher.on('message', (raw: Buffer) => {
        const f = JSON.parse(raw.toString('utf8')) as {
          topic?: string;
          off?: number;
          data?: { src: { seq: number } };
        };
        if (f.topic === topic) published.push({ off: f.off!, seq: f.data!.src.seq });
      });
      await within(
        'watcher open',
        new Promise((resolve, reject) => {
          watcher.once('open', resolve);
          watcher.once('error', reject);
        }),
        10_000,
      );
      watcher.send(JSON.stringify({ op: 'subscribe', topics: [topic] }));
      t.teardown(() => watcher.close());
      const feed = new MarketFeed(nc, venue);
      const signalOf = (seq: number): Promise<void> =>
        until(`the signal of trade ${seq}`, () => published.some((p) => p.seq === seq), 30_000);

      const sub = startExample(
        'ws-resume-subscriber',
        [
          '--url',
          `ws://127.0.0.1:${app.port}/ws`,
          '--topics',
          topic,
          '--drop-after',
          '3',
          '--drop-ms',
          '4000',
        ],
        { QILIN_API_KEY: READ_KEY },
      );
      t.teardown(() => {
        if (sub.child.exitCode === null) sub.child.kill('SIGKILL');
      });
      await sub.line(/^subscribed signal\/EXRS\S+ epoch \S+$/);
      feed.trend(RS, 10, 1); // warm-up, then signals: the 3rd one makes it drop
      await sub.line(/^dropping the connection \(simulated\) after 3 frames$/);
      await signalOf(feed.seqs.get(RS)! - 1);
      feed.trend(RS, 10, 1, 102); // published while it is away
      await signalOf(feed.seqs.get(RS)! - 1);
      const resumedEarly = sub.out.some((l) => l.startsWith('resumed '));
      const last = published.at(-1)!.off;
      t.ok(published.length >= 10, `${published.length} signals published in all`);
      t.same(
        published.map((p) => p.off),
        Array.from({ length: last }, (_, k) => k + 1),
        'the watcher saw offsets 1..n',
      );
      await sub.line(new RegExp(`^resumed ${topic} epoch \\S+$`));
      const resumedAt = sub.out.findIndex((l) => l.startsWith('resumed '));
      await until('the caught-up line after the resume', () =>
        sub.out.slice(resumedAt).some((l) => l.startsWith('caught up: ')),
      );
      const caught = sub.out.slice(resumedAt).find((l) => l.startsWith('caught up: '))!;
      if (resumedEarly)
        t.comment('it reconnected before the away batch was out: replay size not checked');
      else
        t.ok(
          Number(/^caught up: (\d+)/.exec(caught)![1]) >= 1,
          `the frames published while it was away came as a replay (${caught})`,
        );
      await sub.line(new RegExp(`^${topic} off ${last} `));
      sub.child.kill('SIGTERM');
      const code = await within('ws-resume-subscriber to exit', sub.exited, 10_000);
      t.equal(code, 0, `exit 0 on SIGTERM (stderr: ${sub.err.join(' | ')})`);
      const offs = sub.out
        .filter((l) => l.startsWith(`${topic} off `))
        .map((l) => Number(l.split(' ')[2]));
      t.same(
        offs,
        Array.from({ length: last }, (_, k) => k + 1),
        'every offset once, in order',
      );
      t.notOk(
        sub.out.some((l) => /^(gap|duplicate|history_lost) /.test(l)),
        'no gap, duplicate or history_lost reported',
      );
    },
  );
});
