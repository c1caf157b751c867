import t from 'tap';
import {
  createActorFactory,
  createOutputEncoder,
  resolveSymbolActorOptions,
} from '../../actors/symbol-actor-module.js';
import { SignalGate } from '../../actors/signal-gate.js';
import { warmUp } from '../../kernel/warm-up.js';

void t.test(
  'warm-up: the real actors run on synthetic ticks and emit into scratch rings only',
  (t) => {
    const ctx = { shard: 1, shards: 2, options: {} };
    const counters = new Float64Array(32);
    const stats = warmUp(createActorFactory(ctx), createOutputEncoder(ctx), 1, 2, counters.length);
    t.equal(stats.ticks, 6000, 'every synthetic tick ran');
    // 64 SYMBOL announcements, then predictions (one per tick past the model's
    // warm-up) and signals: well above the announcements alone.
    t.ok(stats.outFrames > 1000, `${stats.outFrames} frames written to the scratch out ring`);
    t.ok(stats.ms > 0);
    t.same([...counters], new Array<number>(32).fill(0), "the caller's counters are untouched");
    t.end();
  },
);

void t.test('actor options are resolved once per options object, and still validated', (t) => {
  const opts = resolveSymbolActorOptions({});
  const a = new SignalGate(opts);
  const b = new SignalGate(opts);
  t.equal(
    a.options,
    b.options,
    'one resolved object shared by every actor made with these options',
  );
  t.not(new SignalGate({ ...opts }).options, a.options, 'another options object: resolved again');
  const bad = { ...opts, threshold: 2 };
  t.throws(() => new SignalGate(bad), { code: 'QLN_INVALID_ARGUMENT' });
  t.throws(
    () => new SignalGate(bad),
    { code: 'QLN_INVALID_ARGUMENT' },
    'a bad object is never cached',
  );
  t.end();
});
