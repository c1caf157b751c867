/**
 * The main thread's pipeline with fakes for every effect: no NATS, Redis or
 * ClickHouse. Frames are encoded by the real OutputEncoder into a real
 * FrameRing, exactly as a shard worker writes them.
 */
import t from 'tap';
import { pino } from 'pino';
import type { KillSwitchState, KillSwitchStore } from '../../actors/kill-switch.js';
import { OutputEncoder } from '../../actors/output-encoder.js';
import { OutputLayout, SignalSideCode } from '../../actors/output-layout.js';
import { OutputPipeline } from '../../actors/output-pipeline.js';
import { RiskActor } from '../../actors/risk-actor.js';
import { FrameRing } from '../../kernel/frame-ring.js';
import {
  RiskRejectReasons,
  type RiskRejection,
  type SignalMessage,
} from '../../kernel/messages.js';
import { OutputKind, newOutputEvent, type OutputKindValue } from '../../kernel/output-record.js';
import {
  OUTPUT_FRAME_HEAD,
  commitOutputFrame,
  newFrameInfo,
  newOutputFrameView,
  readOutputFrame,
  readOutputRecord,
  type SignalDecision,
} from '../../kernel/shard-frames.js';
import type { PoolOutput } from '../../kernel/worker-pool.js';

const log = pino({ level: 'silent' });
const opts = { strategy: 'mom', account: 'acc', model: { name: 'baseline', version: '1' } };
const encoder = new OutputEncoder(opts);
const T0 = 1_732_300_000_000_000;

/** One output frame written and read back through a ring, as the pool hands it over. */
function frame(
  ring: FrameRing,
  kind: OutputKindValue,
  sym: string,
  seq: number,
  fill?: (p: Float64Array) => void,
): PoolOutput {
  const ev = newOutputEvent();
  ev.kind = kind;
  ev.symId = 7;
  ev.srcSeq = seq;
  ev.srcTs = T0 + seq;
  ev.recv = T0 + seq + 10;
  ev.feat = T0 + seq + 20;
  ev.infer = T0 + seq + 21;
  const p = ev.payload;
  if (kind === OutputKind.SIGNAL) {
    p[OutputLayout.signal.SIDE] = SignalSideCode.BUY;
    p[OutputLayout.signal.STRENGTH] = 0.5;
    p[OutputLayout.signal.REF_PX] = 100;
    p[OutputLayout.signal.QTY] = 1;
    p[OutputLayout.signal.PRED_SCORE] = 0.4;
    p[OutputLayout.signal.QUALITY] = 1;
  } else {
    p[0] = 0.25;
  }
  fill?.(p);
  const at = ring.reserve(OUTPUT_FRAME_HEAD + 2048);
  const info = newFrameInfo();
  if (
    !encoder.encode(
      ev,
      encoder.symbol(sym),
      ring.buf,
      at + OUTPUT_FRAME_HEAD,
      at + OUTPUT_FRAME_HEAD + 2048,
      info,
    )
  )
    throw new Error('frame does not fit');
  commitOutputFrame(ring, at, ev, info);
  ring.flush();
  const got = ring.peek();
  const out: PoolOutput = {
    event: newOutputEvent(),
    symbol: sym,
    view: newOutputFrameView(),
    ring,
  };
  readOutputFrame(ring, got, out.view);
  readOutputRecord(ring, got, out.event, true);
  return out;
}

class Fakes {
  published: Array<{ topic: string; frame: string }> = [];
  signals: Array<{ sig: SignalMessage; payload: string }> = [];
  rejections: RiskRejection[] = [];
  rows: Array<{ seq: number; symbol: string } & SignalDecision> = [];
  saved: KillSwitchState[] = [];
  failPublish = false;
  loaded: KillSwitchState | undefined;
  fanout = {
    topic: (name: string): string => name,
    publishFrame: (topic: unknown, frame: Uint8Array): void => {
      this.published.push({ topic: topic as string, frame: Buffer.from(frame).toString() });
    },
  };
  sink = {
    publishSignal: (sig: SignalMessage, payload?: Uint8Array): Promise<void> => {
      this.signals.push({ sig, payload: Buffer.from(payload!).toString() });
      return this.failPublish ? Promise.reject(new Error('no ack')) : Promise.resolve();
    },
    publishRejection: (r: RiskRejection): void => {
      this.rejections.push(r);
    },
    close: (): Promise<void> => Promise.resolve(),
  };
  killSwitch: KillSwitchStore = {
    load: () => Promise.resolve(this.loaded),
    save: (_account, s) => {
      this.saved.push(s);
      return Promise.resolve();
    },
    unavailable: () => undefined,
    close: () => Promise.resolve(),
  };
}

function pipeline(
  f: Fakes,
  risk = new RiskActor({ maxSignalsPerSec: 1000 }, { log }),
): OutputPipeline {
  return new OutputPipeline({
    decoder: opts,
    risk,
    account: 'acc',
    fanout: f.fanout,
    signals: f.sink,
    rows: { writeSignal: (ev, symbol, d) => f.rows.push({ seq: ev.srcSeq, symbol, ...d }) },
    killSwitch: f.killSwitch,
    log,
    breaker: { volumeThreshold: 2, resetTimeoutMs: 60_000 },
  });
}

void t.test('predictions and quality events go out as the frames the worker encoded', (t) => {
  const f = new Fakes();
  const p = pipeline(f);
  t.teardown(() => p.close());
  const ring = FrameRing.create(1 << 16);
  const pred = frame(ring, OutputKind.PREDICTION, 'BTC-USD', 1);
  const bytes = ring.buf.toString('latin1', pred.view.frameStart, pred.view.frameEnd);
  p.onOutput(pred);
  ring.release();
  p.onOutput(frame(ring, OutputKind.QUALITY, 'BTC-USD', 2));
  ring.release();
  t.same(
    f.published.map((x) => x.topic),
    ['prediction/BTC-USD', 'quality/BTC-USD'],
  );
  t.equal(f.published[0]!.frame, bytes, 'byte for byte');
  const quality = JSON.parse(f.published[1]!.frame) as { data: { src: { seq: number } } };
  t.equal(quality.data.src.seq, 2);
  t.same(p.counters, {
    predictions: 1,
    quality: 1,
    qualityEvents: { window: 1 },
    qualityIssues: {},
    signals: 0,
    approved: 0,
    rejected: {},
  });
  t.end();
});

void t.test(
  'an approved signal: lat stamped in place, WebSocket, store and JetStream agree',
  async (t) => {
    const f = new Fakes();
    const p = pipeline(f);
    t.teardown(() => p.close());
    const ring = FrameRing.create(1 << 16);
    p.onOutput(frame(ring, OutputKind.SIGNAL, 'ETH-USD', 9));
    await Promise.resolve();
    t.equal(f.published.length, 1);
    const ws = JSON.parse(f.published[0]!.frame) as { topic: string; data: SignalMessage };
    t.equal(ws.topic, 'signal/ETH-USD');
    t.equal(ws.data.id, 'mom:ETH-USD:9');
    t.type(ws.data.lat.risk, 'number');
    t.type(ws.data.lat.pub, 'number');
    t.ok(ws.data.lat.pub! >= ws.data.lat.risk!, 'pub after risk');
    t.equal(f.signals.length, 1, 'one JetStream publish');
    t.same(JSON.parse(f.signals[0]!.payload), ws.data, 'NATS payload = WebSocket data');
    t.equal(f.rows.length, 1);
    t.match(f.rows[0], { seq: 9, symbol: 'ETH-USD', approved: true, reason: 0 });
    t.equal(f.rows[0]!.risk, ws.data.lat.risk, 'the stored lat.risk equals the published bytes');
    t.equal(f.rows[0]!.pub, ws.data.lat.pub, 'the stored lat.pub equals the published bytes');
    t.equal(p.counters.approved, 1);
  },
);

void t.test('kill switch: rejected with kill_switch, saved, resumed', (t) => {
  const f = new Fakes();
  const p = pipeline(f);
  t.teardown(() => p.close());
  const ring = FrameRing.create(1 << 16);
  const reply = p.riskControl('kill', 'ops', 'drill');
  t.match(reply, { killed: true, by: 'ops', reason: 'drill' });
  t.match(f.saved.at(-1), { killed: true, by: 'ops', reason: 'drill' });
  p.onOutput(frame(ring, OutputKind.SIGNAL, 'ETH-USD', 1));
  ring.release();
  t.equal(f.signals.length, 0, 'nothing published while killed');
  t.equal(f.published.length, 0, 'nothing on the WebSocket either');
  t.equal(f.rejections[0]?.reason, 'kill_switch');
  t.match(f.rows[0], { approved: false, reason: 1 + RiskRejectReasons.indexOf('kill_switch') });
  t.same(p.counters.rejected, { kill_switch: 1 });
  p.riskControl('resume', 'ops', 'done');
  t.match(f.saved.at(-1), { killed: false });
  p.onOutput(frame(ring, OutputKind.SIGNAL, 'ETH-USD', 2));
  ring.release();
  t.equal(f.signals.length, 1, 'published again after resume');
  t.end();
});

void t.test('a saved kill switch is restored at start', async (t) => {
  const f = new Fakes();
  f.loaded = { killed: true, by: 'night-ops', reason: 'maintenance', at: 1 };
  const risk = new RiskActor({}, { log });
  const p = pipeline(f, risk);
  t.teardown(() => p.close());
  await p.restoreKillSwitch();
  t.equal(risk.killed, true);
  t.match(risk.audit().at(-1), { decision: 'kill', by: 'night-ops' });
});

void t.test(
  'failed publishes open the breaker: later signals are rejected breaker_open',
  async (t) => {
    const f = new Fakes();
    f.failPublish = true;
    const p = pipeline(f);
    t.teardown(() => p.close());
    const ring = FrameRing.create(1 << 16);
    for (let i = 1; i <= 3; i++) {
      p.onOutput(frame(ring, OutputKind.SIGNAL, `S${i}`, i));
      ring.release();
      await new Promise((r) => setImmediate(r));
    }
    t.equal(p.breakerState(), 'open');
    t.equal(p.counters.rejected.publish_failed, 2, 'two failures before it opened');
    t.equal(p.counters.rejected.breaker_open, 1);
    t.same(
      f.rejections.map((r) => r.reason),
      ['publish_failed', 'publish_failed', 'breaker_open'],
    );
  },
);

void t.test(
  "an id a restarted worker gives another symbol publishes on that symbol's topics",
  (t) => {
    const f = new Fakes();
    const p = pipeline(f);
    t.teardown(() => p.close());
    const ring = FrameRing.create(1 << 16);
    p.onOutput(frame(ring, OutputKind.PREDICTION, 'OLD', 1));
    ring.release();
    // Same symbol id 7 (frame() always uses it), now another name.
    p.onOutput(frame(ring, OutputKind.PREDICTION, 'NEW', 2));
    ring.release();
    t.same(
      f.published.map((x) => x.topic),
      ['prediction/OLD', 'prediction/NEW'],
    );
    t.end();
  },
);

void t.test('predictions feed the risk actor: mid and interval, read from the slots', (t) => {
  const f = new Fakes();
  const risk = new RiskActor({ maxSignalsPerSec: 1000 }, { log });
  const p = pipeline(f, risk);
  t.teardown(() => p.close());
  const ring = FrameRing.create(1 << 16);
  const L = OutputLayout.prediction;
  for (const [seq, mid] of [
    [1, 100],
    [2, 110],
    [3, 0], // no quote yet: refused, counted
  ] as const) {
    p.onOutput(
      frame(ring, OutputKind.PREDICTION, 'BTC-USD', seq, (x) => {
        x[L.MID] = mid;
        x[L.LOWER] = 0.1;
        x[L.UPPER] = 0.6;
      }),
    );
    ring.release();
  }
  t.match(risk.counters, { observations: 2, observationsRejected: 1 });
  t.equal(f.published.length, 3, 'every prediction still published');
  t.end();
});

void t.test(
  'a signal resized by the prediction interval: WebSocket, JetStream and store carry the new qty and strength',
  async (t) => {
    const f = new Fakes();
    const risk = new RiskActor(
      { maxSignalsPerSec: 1000, maxIntervalWidth: 1, minSizeFactor: 0.25 },
      { log },
    );
    const stored: Array<{ qty: number; strength: number }> = [];
    const rows = f.rows;
    // The store reads the record's slots: capture them as the row is written.
    const p = new OutputPipeline({
      decoder: opts,
      risk,
      account: 'acc',
      fanout: f.fanout,
      signals: f.sink,
      rows: {
        writeSignal: (ev, symbol, d) => {
          rows.push({ seq: ev.srcSeq, symbol, ...d });
          stored.push({
            qty: ev.payload[OutputLayout.signal.QTY]!,
            strength: ev.payload[OutputLayout.signal.STRENGTH]!,
          });
        },
      },
      killSwitch: f.killSwitch,
      log,
    });
    t.teardown(() => p.close());
    const ring = FrameRing.create(1 << 16);
    const L = OutputLayout.prediction;
    p.onOutput(
      frame(ring, OutputKind.PREDICTION, 'ETH-USD', 1, (x) => {
        x[L.MID] = 100;
        x[L.LOWER] = -0.1;
        x[L.UPPER] = 0.5; // width 0.6 → factor 0.4
      }),
    );
    ring.release();
    const sig = frame(ring, OutputKind.SIGNAL, 'ETH-USD', 2, (x) => {
      x[OutputLayout.signal.QTY] = 10;
    });
    p.onOutput(sig);
    ring.release();
    await Promise.resolve();
    const ws = JSON.parse(f.published.at(-1)!.frame) as { topic: string; data: SignalMessage };
    t.equal(ws.topic, 'signal/ETH-USD');
    t.equal(ws.data.qty, 4, '10 × 0.4');
    t.equal(ws.data.strength, 0.2, '0.5 × 0.4');
    t.equal(ws.data.id, 'mom:ETH-USD:2');
    t.type(ws.data.lat.pub, 'number');
    t.equal(f.signals.length, 1);
    t.equal(f.signals[0]!.payload, JSON.stringify(ws.data), 'NATS payload = WebSocket data');
    t.same(stored, [{ qty: 4, strength: 0.2 }], 'the stored row agrees');
    t.match(rows.at(-1), { approved: true, risk: ws.data.lat.risk, pub: ws.data.lat.pub });
    // Same keys in the same order as an encoder-written (unresized) signal.
    p.onOutput(frame(ring, OutputKind.SIGNAL, 'BTC-USD', 3));
    ring.release();
    const plain = JSON.parse(f.published.at(-1)!.frame) as { data: SignalMessage };
    t.equal(plain.data.qty, 1, 'no interval for BTC-USD: unchanged');
    t.same(Object.keys(ws.data), Object.keys(plain.data), 'key order');
    t.same(Object.keys(ws.data.lat), Object.keys(plain.data.lat), 'lat key order');
    t.equal(risk.counters.resized, 1);
  },
);
