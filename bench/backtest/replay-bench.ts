/**
 * bench/backtest: replay throughput through the whole backtest chain — the
 * kernel's actors (quality, windows, the default features, strategy, gate) in
 * shard workers, outputs merged in source order, then the RiskActor, the fill
 * model and the portfolio on the main thread — against the same actors' pure
 * compute loop (one thread, ticks from memory, outputs dropped: no risk, no
 * portfolio, no hand-off), in the same run, over the same ticks.
 *
 * ```
 *  baseline  ticks in memory ─► SymbolActor.onMarket ─► (dropped)                        one thread
 *  subject   ticks in memory ─► replay(): chunk slots ─► shard workers (actors) ─► OutputOrder
 *                 ─► BacktestConsumer (FillModel, Portfolio, RiskActor)                  `--workers`
 * ```
 * The source copies from memory into the chunk slots, so no I/O is measured
 * on either side. Figures: ticks/s (median of --runs, interleaved), the
 * ratio to the pure loop, HDR percentiles of the per-chunk time (hand-off to
 * the consumer's end), and RSS before and after (memory stays flat).
 * `node dist/bench/backtest/replay-bench.js [--symbols 1000] [--ticks 2000000] [--workers 1,2] [--runs 5] [--json] [--out]`
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { OutputSink } from '../../kernel/actor.js';
import { createActorFactory, BASELINE_MODEL } from '../../actors/symbol-actor-module.js';
import { invalidArgument } from '../../kernel/errors.js';
import { newMarketEvent } from '../../kernel/market-record.js';
import { BacktestConsumer } from '../../backtest/backtest-consumer.js';
import { replay } from '../../backtest/replay-engine.js';
import { SyntheticSource } from '../../backtest/synthetic-source.js';
import {
  newTickChunk,
  readTick,
  type TickChunk,
  type TickSource,
} from '../../backtest/tick-chunk.js';
import { emitBenchDocument, parseBenchArgs, runBench } from '../bench-output.js';
import { formatSummary, LatencyRecorder, type LatencySummary } from '../hdr-report.js';

const HELP = `usage: node dist/bench/backtest/replay-bench.js [options]

  --symbols N     symbols (default 1000)
  --ticks N       ticks per run, half trades, half quotes (default 2000000)
  --workers LIST  shard workers of the replay, e.g. 1,2 (default: 1 and the replay's default, ${availableParallelism()})
  --chunk N       ticks per chunk (default 8192, the backtest's)
  --runs N        runs of each configuration, interleaved; figures are medians (default 5)
  --json          print the JSON document
  --out           write it to bench/results/replay-<date>.json
`;

/** The history, generated once, in memory: the sources copy from it (no I/O on either side). */
class MemorySource implements TickSource {
  readonly description = 'memory';
  readonly total: number;
  read = 0;
  readonly rejected = 0;
  constructor(
    private readonly all: TickChunk,
    readonly symbols: readonly string[],
  ) {
    this.total = all.length;
  }
  next(c: TickChunk): Promise<number> {
    const from = this.read;
    const n = Math.min(c.capacity, this.total - from);
    const to = from + n;
    c.kind.set(this.all.kind.subarray(from, to));
    c.side.set(this.all.side.subarray(from, to));
    c.symId.set(this.all.symId.subarray(from, to));
    for (const k of ['seq', 'ts', 'recv', 'px', 'qty', 'bid', 'bidQty', 'ask', 'askQty'] as const) {
      c[k].set(this.all[k].subarray(from, to));
    }
    c.length = n;
    this.read = to;
    return Promise.resolve(n);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const actorOptions = { strategy: 'bench', account: 'bench' };

async function main(): Promise<void> {
  const { values } = parseBenchArgs(process.argv.slice(2), {
    symbols: { type: 'string', default: '1000' },
    ticks: { type: 'string', default: '2000000' },
    workers: { type: 'string', default: `1,${availableParallelism()}` },
    chunk: { type: 'string', default: '8192' },
    runs: { type: 'string', default: '5' },
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
  const chunk = int('chunk', values.chunk, 64);
  const runs = int('runs', values.runs, 1);
  const workerList = [...new Set(values.workers.split(',').map((w) => int('workers', w, 1)))];
  const say = (line: string): void => {
    if (!values.json) process.stdout.write(`${line}\n`);
  };

  const gen = new SyntheticSource({ symbols, ticks: nTicks, seed: 1, stepUs: 50 });
  const all = newTickChunk(nTicks);
  await gen.next(all);
  const names = gen.symbols;

  /** The baseline: fresh actors, every tick, outputs dropped. */
  const pure = (): number => {
    const factory = createActorFactory({ shard: 0, shards: 1, options: actorOptions });
    const actors = names.map((n, i) => factory(i, n));
    let outputs = 0;
    const sink: OutputSink = {
      emit(): void {
        outputs++;
      },
    };
    const ev = newMarketEvent();
    const t0 = performance.now();
    for (let i = 0; i < all.length; i++) {
      readTick(all, i, ev);
      actors[ev.symId]!.onMarket(ev, sink);
    }
    const secs = (performance.now() - t0) / 1000;
    if (outputs === 0) throw new Error('the pure loop produced no output');
    return nTicks / secs;
  };

  interface Subject {
    ticksPerSec: number;
    chunks: LatencyRecorder;
    signals: number;
    fills: number;
    rssBeforeMiB: number;
    rssAfterMiB: number;
  }
  const subject = async (workers: number): Promise<Subject> => {
    const consumer = new BacktestConsumer({
      strategy: 'bench',
      account: 'bench',
      model: BASELINE_MODEL,
      risk: {},
      fill: { model: 'next-tick', feeBps: 1, latencyUs: 1000 },
      initialCash: 10_000_000,
      sampleIntervalUs: 1_000_000,
    });
    const chunks = new LatencyRecorder();
    const rssBefore = process.memoryUsage().rss;
    const stats = await replay(new MemorySource(all, names), consumer, {
      workers,
      chunkTicks: chunk,
      actorOptions,
      onChunkLatency: (us) => chunks.record(us),
    });
    consumer.finish();
    if (stats.ticks !== nTicks) throw new Error(`replayed ${stats.ticks} of ${nTicks} ticks`);
    return {
      ticksPerSec: stats.ticksPerSec,
      chunks,
      signals: consumer.signals,
      fills: consumer.fills,
      rssBeforeMiB: rssBefore / 2 ** 20,
      rssAfterMiB: process.memoryUsage().rss / 2 ** 20,
    };
  };

  say(
    `replay through actors, risk, fills and portfolio: ${symbols} symbols, ${nTicks} ticks per run (half trades), chunks of ${chunk}, median of ${runs} interleaved runs`,
  );
  const pureRates: number[] = [];
  const subj = new Map<number, Subject[]>(workerList.map((w) => [w, []]));
  for (let r = 0; r < runs; r++) {
    pureRates.push(pure());
    for (const w of workerList) subj.get(w)!.push(await subject(w));
    say(
      `  run ${r + 1}/${runs}: pure ${Math.round(pureRates[r]!)}/s; ` +
        workerList
          .map((w) => `${w} workers ${Math.round(subj.get(w)![r]!.ticksPerSec)}/s`)
          .join('; '),
    );
  }
  const pureMedian = median(pureRates);
  say('');
  say(
    `baseline  pure compute loop (one thread, no risk/portfolio/hand-off): ${Math.round(pureMedian)} ticks/s`,
  );
  say(
    'workers   ticks/s     vs pure   target 1M   signals   fills    chunk µs (p50 / p99)    RSS MiB',
  );
  const rows: Array<{
    workers: number;
    ticksPerSec: number;
    ratio: number;
    signals: number;
    fills: number;
    chunkUs: LatencySummary;
    rssMiB: { before: number; after: number };
  }> = [];
  for (const w of workerList) {
    const list = subj.get(w)!;
    const tps = median(list.map((s) => s.ticksPerSec));
    const mid = list.find((s) => s.ticksPerSec === tps)!;
    const chunkUs = mid.chunks.summary();
    rows.push({
      workers: w,
      ticksPerSec: tps,
      ratio: tps / pureMedian,
      signals: mid.signals,
      fills: mid.fills,
      chunkUs,
      rssMiB: { before: mid.rssBeforeMiB, after: mid.rssAfterMiB },
    });
    say(
      `${String(w).padEnd(9)} ${String(Math.round(tps)).padStart(9)}   ${(tps / pureMedian).toFixed(2).padStart(6)}×   ${(tps >= 1e6 ? 'met' : 'not met').padEnd(9)}   ${String(mid.signals).padStart(7)}   ${String(mid.fills).padStart(6)}   ${chunkUs.p50.toFixed(0).padStart(8)} / ${chunkUs.p99.toFixed(0).padEnd(8)}   ${mid.rssBeforeMiB.toFixed(0)} → ${mid.rssAfterMiB.toFixed(0)}`,
    );
    say(`          ${formatSummary('chunk', chunkUs).trim()}`);
  }
  const doc = {
    date: new Date().toISOString(),
    bench: 'replay',
    symbols,
    ticks: nTicks,
    chunk,
    runs,
    cores: availableParallelism(),
    pureTicksPerSec: pureMedian,
    rows,
  };
  emitBenchDocument('replay', doc, { json: values.json, out: values.out }, say);
}

runBench('replay bench', main);
