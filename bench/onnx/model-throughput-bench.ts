/**
 * bench/onnx: what a model costs a shard worker. The worker's per-tick work
 * — the kernel's actor module (SymbolActor: quality, windows, the default 23
 * features, strategy, gate) and its frame encoder — over 1,000 symbols, in
 * drains like the worker's, with the built-in model (off) and with an ONNX
 * model scored in batches at the end of each drain (on), interleaved run by
 * run in the same process.
 *
 * ```
 *  ticks (trades and quotes, --symbols round robin) ─► drain of --drain ticks:
 *     SymbolActor.onMarket(ev, sink) … ─► endOfDrain() (model on: one runSync of the drain's trades)
 *     sink: OutputEncoder.encode into a scratch buffer (the worker's emit, minus the ring)
 *  off: baseline model (the default configuration)   on: --model lr | mlp through ModelBatch
 * ```
 * Reported per model: ticks/s off and on (median of --runs), on/off, the
 * model's cost (1 − on/off; the target: under 25% at 1,000 symbols),
 * and HDR percentiles of the drain time, µs.
 * `node dist/bench/onnx/model-throughput-bench.js [--symbols 1000] [--ticks 400000] [--drain 64] [--runs 5] [--model lr,mlp] [--json] [--out]`
 */
import { performance } from 'node:perf_hooks';
import type { OutputSink } from '../../kernel/actor.js';
import {
  control,
  createActorFactory,
  createOutputEncoder,
  endOfDrain,
  type ModelControl,
} from '../../actors/symbol-actor-module.js';
import { featurePlan, DEFAULT_SYMBOL_ACTOR_OPTIONS } from '../../actors/symbol-actor.js';
import type { SymbolText } from '../../actors/output-encoder.js';
import { denseModelToOnnx, type DenseModel } from '../../adapters/onnx/dense-model.js';
import { DEFAULT_TRAIN_FEATURES } from '../../adapters/onnx/train.js';
import { invalidArgument } from '../../kernel/errors.js';
import {
  MarketKind,
  newMarketEvent,
  Side,
  type MarketKindValue,
} from '../../kernel/market-record.js';
import type { OutputEvent } from '../../kernel/output-record.js';
import { newFrameInfo } from '../../kernel/shard-frames.js';
import { emitBenchDocument, parseBenchArgs, runBench } from '../bench-output.js';
import { formatSummary, LatencyRecorder, type LatencySummary } from '../hdr-report.js';

const HELP = `usage: node dist/bench/onnx/model-throughput-bench.js [options]

  --symbols N   symbols, ticks round robin (default 1000)
  --ticks N     timed ticks per run, half trades, half quotes, after 120 warm-up trades a symbol (default 400000)
  --drain N     ticks per drain: the rows of one model batch are the drain's trades (default 64)
  --runs N      runs of each configuration, interleaved; figures are medians (default 5)
  --model LIST  lr (the 4 scale-free features) and/or mlp (all 23 → 16 relu → 1) (default lr,mlp)
  --json        print the JSON document
  --out         write it to bench/results/model-throughput-<date>.json
`;

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32;
  };
}

function model(kind: 'lr' | 'mlp', names: readonly string[]): DenseModel {
  const rnd = seeded(kind === 'lr' ? 7 : 11);
  const w = (n: number, scale: number): Float32Array =>
    Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * scale);
  if (kind === 'lr') {
    const f = DEFAULT_TRAIN_FEATURES;
    return {
      name: 'bench-lr',
      version: '1',
      features: f,
      layers: [
        {
          inputs: f.length,
          outputs: 1,
          weights: w(f.length, 0.05),
          bias: w(1, 0.1),
          activation: 'sigmoid',
        },
      ],
    };
  }
  const h = 16;
  return {
    name: 'bench-mlp',
    version: '1',
    features: names,
    layers: [
      {
        inputs: names.length,
        outputs: h,
        weights: w(names.length * h, 1e-3),
        bias: w(h, 0.1),
        activation: 'relu',
      },
      { inputs: h, outputs: 1, weights: w(h, 0.5), bias: w(1, 0.1), activation: 'sigmoid' },
    ],
  };
}

interface Ticks {
  kind: Uint8Array;
  sym: Int32Array;
  px: Float64Array;
  qty: Float64Array;
}

/** Random walks per symbol: a trade, then a quote around it. */
function makeTicks(n: number, symbols: number): Ticks {
  const rnd = seeded(42);
  const mid = Float64Array.from({ length: symbols }, () => 50 + rnd() * 100);
  const t: Ticks = {
    kind: new Uint8Array(n),
    sym: new Int32Array(n),
    px: new Float64Array(n),
    qty: new Float64Array(n),
  };
  for (let i = 0; i < n; i++) {
    const s = (i >> 1) % symbols;
    if ((i & 1) === 0) mid[s]! *= 1 + (rnd() - 0.5) * 0.002;
    t.kind[i] = (i & 1) === 0 ? MarketKind.TRADE : MarketKind.QUOTE;
    t.sym[i] = s;
    t.px[i] = mid[s]!;
    t.qty[i] = 0.5 + rnd() * 2;
  }
  return t;
}

interface RunResult {
  ticksPerSec: number;
  drains: LatencyRecorder;
  outputs: number;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function main(): Promise<void> {
  const { values } = parseBenchArgs(process.argv.slice(2), {
    symbols: { type: 'string', default: '1000' },
    ticks: { type: 'string', default: '400000' },
    drain: { type: 'string', default: '64' },
    runs: { type: 'string', default: '5' },
    model: { type: 'string', default: 'lr,mlp' },
    json: { type: 'boolean', default: false },
    out: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const int = (name: string, v: string, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) invalidArgument(`--${name}`, v, `an integer ≥ ${min}`);
    return n;
  };
  const symbols = int('symbols', values.symbols, 1);
  const nTicks = int('ticks', values.ticks, 1000);
  const drain = int('drain', values.drain, 1);
  const runs = int('runs', values.runs, 1);
  const kinds = values.model.split(',');
  for (const k of kinds) {
    if (k !== 'lr' && k !== 'mlp') invalidArgument('--model', k, 'lr and/or mlp');
  }
  const say = (line: string): void => {
    if (!values.json) process.stdout.write(`${line}\n`);
  };

  const ctx = { shard: 0, shards: 1, options: { strategy: 'bench', account: 'bench' } };
  const factory = createActorFactory(ctx);
  const encoder = createOutputEncoder(ctx);
  const names = featurePlan(DEFAULT_SYMBOL_ACTOR_OPTIONS).names;
  const texts: SymbolText[] = Array.from({ length: symbols }, (_, i) => encoder.symbol(`S${i}`));
  const buf = Buffer.alloc(64 * 1024);
  const info = newFrameInfo();
  let outputs = 0;
  const sink: OutputSink = {
    emit(ev: OutputEvent): void {
      encoder.encode(ev, texts[ev.symId]!, buf, 0, buf.length, info);
      outputs++;
    },
  };
  // 120 trades (and quotes) a symbol of warm-up before the timed ticks.
  const warm = symbols * 240;
  const ticks = makeTicks(warm + nTicks, symbols);
  const ev = newMarketEvent();
  let clock = 1_700_000_000_000_000;
  let seq = 0;

  /**
   * One run over fresh actors: first `warm` ticks untimed (every indicator
   * the models read warm: zscore50 needs 50 trades a symbol, and a cold row
   * gets no score, hence no prediction to encode, which would flatter the
   * model), then the timed ticks. Same ticks every run.
   */
  const run = (): RunResult => {
    const actors = Array.from({ length: symbols }, (_, i) => factory(i, `S${i}`));
    feed(actors, 0, warm, undefined);
    const drains = new LatencyRecorder();
    outputs = 0;
    const t0 = performance.now();
    feed(actors, warm, warm + nTicks, drains);
    const secs = (performance.now() - t0) / 1000;
    return { ticksPerSec: nTicks / secs, drains, outputs };
  };
  function feed(
    actors: Array<ReturnType<typeof factory>>,
    from: number,
    to: number,
    drains: LatencyRecorder | undefined,
  ): void {
    for (let i = from; i < to;) {
      const d0 = performance.now();
      const end = Math.min(to, i + drain);
      for (; i < end; i++) {
        const s = ticks.sym[i]!;
        clock += 100;
        ev.kind = ticks.kind[i] as MarketKindValue;
        ev.symId = s;
        ev.seq = ++seq;
        ev.ts = clock;
        ev.recv = clock;
        if (ev.kind === MarketKind.TRADE) {
          ev.px = ticks.px[i]!;
          ev.qty = ticks.qty[i]!;
          ev.side = Side.BUY;
        } else {
          ev.bid = ticks.px[i]! * 0.9999;
          ev.ask = ticks.px[i]! * 1.0001;
          ev.bidQty = ticks.qty[i]!;
          ev.askQty = ticks.qty[i]! * 1.1;
        }
        actors[s]!.onMarket(ev, sink);
      }
      endOfDrain();
      drains?.record((performance.now() - d0) * 1000);
    }
  }

  say(
    `model cost in a shard worker: ${symbols} symbols, ${nTicks} ticks (half trades) per run, drains of ${drain}, median of ${runs} interleaved runs`,
  );
  say('model   off ticks/s   on ticks/s   on/off   cost   drain µs off → on (p50 / p99)');
  const rows: Array<{
    model: string;
    offTicksPerSec: number;
    onTicksPerSec: number;
    ratio: number;
    cost: number;
    drainOffUs: LatencySummary;
    drainOnUs: LatencySummary;
  }> = [];
  let id = 1;
  for (const kind of kinds as Array<'lr' | 'mlp'>) {
    const m = model(kind, names);
    const load: ModelControl = {
      op: 'model',
      id: id++,
      name: m.name,
      version: m.version,
      bytes: denseModelToOnnx(m),
      features: m.features,
      outputs: [{ name: 'p_up', role: 'score' }],
      thresholds: { buy: 0.6, sell: 0.4 },
      maxBatch: 512,
    };
    // Warm-up: both paths compiled before anything is timed.
    await control({ op: 'model-off' } satisfies ModelControl);
    run();
    await control(load);
    run();
    const off: number[] = [];
    const on: number[] = [];
    let offRun: RunResult | undefined;
    let onRun: RunResult | undefined;
    for (let r = 0; r < runs; r++) {
      await control({ op: 'model-off' } satisfies ModelControl);
      offRun = run();
      off.push(offRun.ticksPerSec);
      await control(load);
      onRun = run();
      on.push(onRun.ticksPerSec);
    }
    await control({ op: 'model-off' } satisfies ModelControl);
    const row = {
      model: kind,
      offTicksPerSec: median(off),
      onTicksPerSec: median(on),
      ratio: median(on) / median(off),
      cost: 1 - median(on) / median(off),
      drainOffUs: offRun!.drains.summary(),
      drainOnUs: onRun!.drains.summary(),
    };
    rows.push(row);
    say(
      `${kind.padEnd(5)}   ${row.offTicksPerSec.toFixed(0).padStart(11)}   ${row.onTicksPerSec.toFixed(0).padStart(10)}   ${row.ratio.toFixed(2).padStart(5)}×   ${(row.cost * 100).toFixed(1).padStart(4)}%   ${row.drainOffUs.p50.toFixed(0)} / ${row.drainOffUs.p99.toFixed(0)} → ${row.drainOnUs.p50.toFixed(0)} / ${row.drainOnUs.p99.toFixed(0)}`,
    );
    say(
      `        outputs per run: off ${offRun!.outputs}, on ${onRun!.outputs} (predictions, signals, quality)`,
    );
    say(`        on: ${formatSummary('drain', row.drainOnUs).trim()}`);
  }
  const doc = {
    date: new Date().toISOString(),
    scenario: 'model-throughput',
    symbols,
    ticks: nTicks,
    drain,
    runs,
    models: rows,
  };
  emitBenchDocument('model-throughput', doc, { json: values.json, out: values.out }, say);
}

runBench('model throughput bench', main);
