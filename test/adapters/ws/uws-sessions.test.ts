/**
 * Subscriber sessions on UwsServer (docs/adr/0007-subscriber-sessions.md):
 * per-topic offsets, resume from the frame history, `history_lost`, epoch,
 * heartbeats. Real uWS server on an ephemeral port, `ws` clients.
 */
import fc from 'fast-check';
import { pino } from 'pino';
import t from 'tap';
import WebSocket from 'ws';
import { parseApiKeys } from '../../../adapters/ws/api-keys.js';
import { UwsServer, type UwsServerOptions } from '../../../adapters/ws/uws-server.js';
import { until } from '../../helpers/wait.js';
import { opened } from '../../helpers/ws.js';

const READ_KEY = 'session-read-key-01';
const SIGNAL_KEY = 'session-signal-key-1';
const KEYS = `${READ_KEY}:read,${SIGNAL_KEY}:read=signal/*`;

type Frame = Record<string, unknown> & {
  type?: string;
  topic?: string;
  off?: number;
  data?: unknown;
};

async function startServer(
  t: { teardown(fn: () => unknown): void },
  extra: Partial<UwsServerOptions> = {},
): Promise<{ server: UwsServer; port: number }> {
  const server = new UwsServer({
    port: 0,
    host: '127.0.0.1',
    apiKeys: parseApiKeys(KEYS),
    log: pino({ level: 'silent' }),
    ...extra,
  });
  const port = await server.start();
  t.teardown(() => server.close());
  return { server, port };
}

/** A `ws` client that keeps every frame it got, in order. */
class Conn {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | undefined;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => this.frames.push(JSON.parse(d.toString('utf8')) as Frame));
    ws.on('close', (code, reason) => (this.closed = { code, reason: reason.toString('utf8') }));
  }

  static async open(port: number, key = READ_KEY): Promise<Conn> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
      headers: { Authorization: `Bearer ${key}` },
    });
    const c = new Conn(ws);
    await opened(ws, 10_000);
    return c;
  }

  send(f: unknown): void {
    this.ws.send(JSON.stringify(f));
  }

  /** Wait for a frame matching `pred` that arrived after index `from`; returns its index. */
  async waitFor(what: string, pred: (f: Frame) => boolean, from = 0): Promise<number> {
    let at = -1;
    await until(
      what,
      () => {
        at = this.frames.findIndex((f, i) => i >= from && pred(f));
        return at >= 0 || this.closed !== undefined;
      },
      10_000,
      5,
    );
    if (at < 0) throw new Error(`closed (${JSON.stringify(this.closed)}) before ${what}`);
    return at;
  }

  /** Subscribe and wait for its `subscribed` reply; returns the reply's index. */
  async subscribe(topics: string[], extra: Record<string, unknown> = {}): Promise<number> {
    const from = this.frames.length;
    this.send({ op: 'subscribe', topics, ...extra });
    return this.waitFor(
      `subscribed ${topics.join(',')}`,
      (f) => f.type === 'subscribed' || f.type === 'error',
      from,
    );
  }

  /** Ping and wait for the pong: every frame the server sent before it has arrived. */
  async sync(): Promise<number> {
    const from = this.frames.length;
    this.send({ op: 'ping' });
    return this.waitFor('pong', (f) => f.type === 'pong', from);
  }

  async close(server: UwsServer, clientsLeft = 0): Promise<void> {
    this.ws.close();
    await until('the server to see the close', () => server.stats().clients === clientsLeft);
  }
}

const topicFrames = (frames: Frame[], topic: string): Frame[] =>
  frames.filter((f) => f.topic === topic);

void t.test(
  'a subscriber that reconnects after missing 1,000 signals gets all of them, in order',
  async (t) => {
    const { server, port } = await startServer(t);
    const a = await Conn.open(port);
    const ack = await a.subscribe(['signal/X']);
    t.equal(a.frames[ack]!['epoch'], server.epoch, '`subscribed` names the epoch');
    for (let i = 1; i <= 5; i++) server.publish('signal/X', { i });
    await a.waitFor('signal 5', (f) => f.off === 5);
    t.same(
      topicFrames(a.frames, 'signal/X').map((f) => f.off),
      [1, 2, 3, 4, 5],
      'live frames carry contiguous offsets from 1',
    );
    await a.close(server);

    for (let i = 6; i <= 1005; i++) server.publish('signal/X', { i });
    const b = await Conn.open(port);
    const at = await b.subscribe(['signal/X'], {
      resume: { epoch: server.epoch, offsets: { 'signal/X': 5 } },
    });
    t.equal(b.frames[at]!.type, 'subscribed');
    server.publish('signal/X', { i: 1006 }); // live, after the replay
    await b.waitFor('the live frame', (f) => f.off === 1006);
    const got = topicFrames(b.frames, 'signal/X');
    t.equal(got.length, 1001, '1,000 missed frames and 1 live frame, no snapshot, no duplicate');
    t.same(
      got.map((f) => f.off),
      Array.from({ length: 1001 }, (_, k) => 6 + k),
      'offsets 6..1006 in order',
    );
    t.same(
      got.map((f) => (f.data as { i: number }).i),
      Array.from({ length: 1001 }, (_, k) => 6 + k),
      'the data of each frame is the one published with that offset',
    );
    t.equal(b.frames.filter((f) => f.type === 'history_lost').length, 0, 'no history_lost');
    t.equal(server.stats().resumes, 1);
    t.equal(server.stats().replayedFrames, 1000);
    await b.close(server);
  },
);

void t.test('resume from an offset no longer held: history_lost, then the snapshot', async (t) => {
  // 8 KiB of history: 400 frames of ~50 bytes push the first ones out.
  const { server, port } = await startServer(t, { historyBytes: 8192 });
  for (let i = 1; i <= 400; i++) server.publish('signal/X', { i });
  const { last, oldest } = server.offsets('signal/X');
  t.equal(last, 400);
  t.ok(oldest > 11 && oldest <= 400, `oldest held offset ${oldest} is past the client's 11`);
  const c = await Conn.open(port);
  const ack = await c.subscribe(['signal/X'], {
    resume: { epoch: server.epoch, offsets: { 'signal/X': 10 } },
  });
  await c.sync();
  const after = c.frames.slice(ack + 1, -1);
  t.same(
    after,
    [
      {
        type: 'history_lost',
        topic: 'signal/X',
        epoch: server.epoch,
        reason: 'too_old',
        from: 11,
        oldest,
        last: 400,
      },
      { topic: 'signal/X', data: { i: 400 }, off: 400 },
    ],
    'the marker says what is missing and what is held; then the snapshot, with its offset',
  );
  t.equal(server.stats().historyLost, 1);
  t.equal(server.stats().replayedFrames, 0);

  // From the oldest held offset on, the same history resumes fine.
  const d = await Conn.open(port);
  const ack2 = await d.subscribe(['signal/X'], {
    resume: { epoch: server.epoch, offsets: { 'signal/X': oldest - 1 } },
  });
  await d.sync();
  t.same(
    d.frames.slice(ack2 + 1, -1).map((f) => f.off),
    Array.from({ length: 400 - oldest + 1 }, (_, k) => oldest + k),
    'every held frame from the oldest on',
  );
});

void t.test(
  'resume with another epoch: history_lost for each named topic, snapshots',
  async (t) => {
    const { server, port } = await startServer(t);
    server.publish('signal/X', { i: 1 });
    server.publish('signal/X', { i: 2 });
    server.publish('signal/Y', { i: 1 });
    const c = await Conn.open(port);
    const ack = await c.subscribe(['signal/*'], {
      resume: { epoch: 'an-earlier-run', offsets: { 'signal/X': 7, 'signal/Z': 3 } },
    });
    await c.sync();
    t.same(
      c.frames.slice(ack + 1, -1),
      [
        {
          type: 'history_lost',
          topic: 'signal/X',
          epoch: server.epoch,
          reason: 'epoch',
          from: 8,
          oldest: 1,
          last: 2,
        },
        { topic: 'signal/X', data: { i: 2 }, off: 2 },
        { topic: 'signal/Y', data: { i: 1 }, off: 1 }, // not named: snapshot as without resume
        {
          type: 'history_lost',
          topic: 'signal/Z',
          epoch: server.epoch,
          reason: 'epoch',
          from: 4,
          oldest: 1,
          last: 0,
        },
      ],
      'marker + snapshot for X, snapshot for Y, marker for Z (never published in this epoch)',
    );
    t.equal(server.stats().historyLost, 2);
  },
);

void t.test('wildcard resume with offsets staged over several frames', async (t) => {
  const { server, port } = await startServer(t);
  const syms = Array.from({ length: 50 }, (_, i) => `S${i}`);
  for (const s of syms) server.publish(`signal/${s}`, { n: 1 });
  const a = await Conn.open(port);
  await a.subscribe(['signal/*']);
  await a.sync();
  const last = new Map<string, number>();
  for (const f of a.frames) if (f.topic !== undefined) last.set(f.topic, f.off!);
  t.equal(last.size, 50, 'a snapshot with its offset per topic');
  await a.close(server);
  // Missed: 3 more frames on every topic but S0 and S1; S49's offset is not given.
  for (const s of syms.slice(2)) for (let n = 2; n <= 4; n++) server.publish(`signal/${s}`, { n });
  const b = await Conn.open(port);
  const entries = [...last].filter(([topic]) => topic !== 'signal/S49');
  const first = Object.fromEntries(entries.slice(0, 25));
  const rest = Object.fromEntries(entries.slice(25));
  b.send({ op: 'offsets', epoch: server.epoch, offsets: first });
  const staged = await b.waitFor('offsets staged', (f) => f.type === 'offsets');
  t.same(b.frames[staged], { type: 'offsets', epoch: server.epoch, staged: 25 });
  const ack = await b.subscribe(['signal/*'], { resume: { epoch: server.epoch, offsets: rest } });
  await b.sync();
  const after = b.frames.slice(ack + 1, -1);
  t.notOk(
    after.some((f) => f.type !== undefined),
    'no marker, no error',
  );
  t.same(topicFrames(after, 'signal/S0'), [], 'up to date: nothing (no snapshot repeat)');
  t.same(
    topicFrames(after, 'signal/S49').map((f) => f.off),
    [4],
    'a topic without offset gets its snapshot',
  );
  for (const s of syms.slice(2, 49)) {
    const got = topicFrames(after, `signal/${s}`).map((f) => f.off);
    if (got.join() !== '2,3,4') t.fail(`signal/${s}: got ${got.join()}`);
  }
  t.equal(after.length, 47 * 3 + 1, 'every missed frame once, plus one snapshot');
  t.equal(server.stats().replayedFrames, 47 * 3);
});

void t.test('resume respects the key scope', async (t) => {
  const { server, port } = await startServer(t);
  server.publish('prediction/X', { secret: 1 });
  server.publish('signal/X', { ok: 1 });
  server.publish('signal/X', { ok: 2 });
  const c = await Conn.open(port, SIGNAL_KEY);
  const ack = await c.subscribe(['signal/*'], {
    resume: { epoch: server.epoch, offsets: { 'prediction/X': 0, 'signal/X': 1, status: 0 } },
  });
  await c.sync();
  t.same(
    c.frames.slice(ack + 1, -1),
    [{ topic: 'signal/X', data: { ok: 2 }, off: 2 }],
    'only the readable topic is replayed; offsets of others are ignored',
  );
  const forbidden = await c.subscribe(['prediction/*'], {
    resume: { epoch: server.epoch, offsets: { 'prediction/X': 0 } },
  });
  t.equal(c.frames[forbidden]!['code'], 'forbidden', 'a resume cannot widen the scope');
  await c.sync();
  t.notOk(
    c.frames.some((f) => f.topic === 'prediction/X'),
    'no prediction frame ever reached the client',
  );
});

void t.test(
  'a replay bigger than the send buffer limit: history_lost too_large, snapshot',
  async (t) => {
    const { server, port } = await startServer(t, { maxBackpressureBytes: 16 * 1024 });
    const pad = 'p'.repeat(200);
    for (let i = 1; i <= 200; i++) server.publish('signal/X', { i, pad }); // ~48 KB
    server.publish('signal/Y', { i: 1 });
    server.publish('signal/Y', { i: 2 });
    const c = await Conn.open(port);
    const ack = await c.subscribe(['signal/*'], {
      resume: { epoch: server.epoch, offsets: { 'signal/X': 0, 'signal/Y': 1 } },
    });
    await c.sync();
    const after = c.frames.slice(ack + 1, -1);
    t.match(after[0], { type: 'history_lost', topic: 'signal/X', reason: 'too_large', from: 1 });
    t.match(after[1], { topic: 'signal/X', off: 200 });
    t.same(after[2], { topic: 'signal/Y', data: { i: 2 }, off: 2 }, 'the small topic replays');
    t.equal(after.length, 3);
    t.equal(c.closed, undefined, 'the client stays connected');
    t.equal(server.stats().slowDisconnects, 0);
  },
);

void t.test('bad resume and offsets frames get a bad_frame error each', async (t) => {
  const { server, port } = await startServer(t);
  const c = await Conn.open(port);
  const bad: unknown[] = [
    { op: 'subscribe', topics: ['signal/X'], resume: 'E' },
    { op: 'subscribe', topics: ['signal/X'], resume: { offsets: {} } },
    { op: 'subscribe', topics: ['signal/X'], resume: { epoch: server.epoch, offsets: [] } },
    { op: 'subscribe', topics: ['signal/X'], resume: { epoch: 'E', offsets: { 'signal/*': 1 } } },
    { op: 'subscribe', topics: ['signal/X'], resume: { epoch: 'E', offsets: { 'signal/X': -1 } } },
    { op: 'subscribe', topics: ['signal/X'], resume: { epoch: 'E', offsets: { 'signal/X': 1.5 } } },
    { op: 'offsets', offsets: {} },
    { op: 'offsets', epoch: 'E', offsets: { nope: 1 } },
  ];
  for (const f of bad) {
    const from = c.frames.length;
    c.send(f);
    const at = await c.waitFor('an answer', () => true, from);
    t.match(c.frames[at], { type: 'error', code: 'bad_frame' }, JSON.stringify(f));
  }
  // Staged for one epoch, resumed with another: refused, not mixed.
  c.send({ op: 'offsets', epoch: 'E1', offsets: { 'signal/X': 1 } });
  await c.waitFor('staged', (f) => f.type === 'offsets');
  const at = await c.subscribe(['signal/X'], { resume: { epoch: 'E2' } });
  t.match(c.frames[at], { type: 'error', code: 'bad_frame', message: /staged for epoch/ });
  t.equal(server.stats().resumes, 0, 'no bad frame counted as a resume');
});

void t.test('heartbeats: opt-in, counter contiguous per connection, with the epoch', async (t) => {
  const { server, port } = await startServer(t, { heartbeatMs: 50 });
  const quiet = await Conn.open(port);
  const c = await Conn.open(port);
  await quiet.subscribe(['status']);
  c.send({ op: 'heartbeat' });
  await c.waitFor('6 heartbeats', (f) => f.type === 'heartbeat' && f['n'] === 5);
  const beats = c.frames.filter((f) => f.type === 'heartbeat');
  t.same(
    beats.map((f) => f['n']),
    [0, 1, 2, 3, 4, 5],
    'n counts 0, 1, 2… without a gap',
  );
  t.ok(
    beats.every((f) => f['epoch'] === server.epoch && typeof f['ts'] === 'number'),
    'each names the epoch and the time',
  );
  await quiet.sync();
  t.equal(
    quiet.frames.filter((f) => f.type === 'heartbeat').length,
    0,
    'a client that did not ask gets none',
  );
  t.ok(server.stats().heartbeats >= 6);
});

/**
 * Random publish / disconnect / resume interleavings over three topics with
 * a small history: per topic, the client's stream is the published one with
 * no gap and no duplicate, except right after a `history_lost` marker, which
 * comes only when the missed offsets were no longer held.
 */
void t.test(
  'property: resumed streams equal the published ones, or say history_lost',
  async (t) => {
    const topics = ['signal/A', 'signal/B', 'quality/A'];
    const { server, port } = await startServer(t, { historyBytes: 2048 });
    let run = 0;
    const op = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({
          kind: fc.constant('publish' as const),
          topic: fc.constantFrom(...topics),
          n: fc.integer({ min: 1, max: 40 }),
        }),
      },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('toggle' as const) }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (ops) => {
        run++;
        const topicsOfRun = topics.map((tp) => tp.replace('/', `/R${run}`));
        const published = new Map<string, unknown[]>(topicsOfRun.map((tp) => [tp, []]));
        const seen = new Map<string, number>(topicsOfRun.map((tp) => [tp, 0]));
        let conn = await Conn.open(port);
        await conn.subscribe(topicsOfRun);
        const check = async (c: Conn, from: number): Promise<void> => {
          await c.sync();
          for (const f of c.frames.slice(from)) {
            if (f.type === 'history_lost') {
              const tp = f.topic!;
              const have = seen.get(tp)!;
              if (f['from'] !== have + 1)
                throw new Error(`marker from ${String(f['from'])}, had ${have}`);
              if (!((f['oldest'] as number) > have + 1))
                throw new Error(`history_lost although offset ${have + 1} was held`);
              seen.set(tp, -1); // the next frame may jump
              continue;
            }
            if (f.topic === undefined || !published.has(f.topic)) continue;
            const have = seen.get(f.topic)!;
            if (have >= 0 && f.off !== have + 1)
              throw new Error(`${f.topic}: got off ${f.off} after ${have}`);
            const want = published.get(f.topic)![f.off! - 1];
            if (JSON.stringify(want) !== JSON.stringify(f.data))
              throw new Error(`${f.topic} off ${f.off}: data differs`);
            seen.set(f.topic, f.off!);
          }
        };
        let from = conn.frames.length;
        let connected = true;
        const reconnect = async (): Promise<void> => {
          conn = await Conn.open(port);
          connected = true;
          from = conn.frames.length;
          await conn.subscribe(topicsOfRun, {
            resume: { epoch: server.epoch, offsets: Object.fromEntries(seen) },
          });
        };
        try {
          for (const o of ops) {
            if (o.kind === 'publish') {
              const tp = topicsOfRun[topics.indexOf(o.topic)]!;
              for (let i = 0; i < o.n; i++) {
                const data = { v: published.get(tp)!.length + 1, pad: 'x'.repeat(i % 7) };
                published.get(tp)!.push(data);
                server.publish(tp, data);
              }
            } else if (connected) {
              // Disconnect: what is published until the next toggle is missed.
              await check(conn, from);
              await conn.close(server);
              connected = false;
            } else {
              await reconnect();
            }
          }
          if (!connected) await reconnect();
          await check(conn, from);
          for (const tp of topicsOfRun) {
            const n = published.get(tp)!.length;
            if (n > 0 && seen.get(tp) !== n)
              throw new Error(`${tp}: ends at ${seen.get(tp)} of ${n}`);
          }
        } finally {
          if (connected) await conn.close(server);
        }
      }),
      { numRuns: 40 },
    );
    t.ok(server.stats().historyLost > 0, `some runs lost history (${server.stats().historyLost})`);
    t.ok(
      server.stats().replayedFrames > 0,
      `some runs replayed (${server.stats().replayedFrames})`,
    );
  },
);

void t.test(
  'a snapshot seeded from an earlier run has no offset; resuming at 0 still gets it',
  async (t) => {
    const { server, port } = await startServer(t);
    t.ok(server.seedSnapshot('signal/OLD', Buffer.from('{"topic":"signal/OLD","data":{"v":9}}')));
    const c = await Conn.open(port);
    const ack = await c.subscribe(['signal/OLD'], {
      resume: { epoch: server.epoch, offsets: { 'signal/OLD': 0 } },
    });
    await c.sync();
    t.same(c.frames.slice(ack + 1, -1), [{ topic: 'signal/OLD', data: { v: 9 } }], 'no off');
    server.publish('signal/OLD', { v: 10 });
    await c.waitFor('the first live frame', (f) => f.off === 1);
    t.same(c.frames.at(-1), { topic: 'signal/OLD', data: { v: 10 }, off: 1 }, 'offsets start at 1');
  },
);
