/**
 * bench/onnx: the cost of one prediction row through onnxruntime-node (CPU,
 * one session, one intra-op thread: what each kernel worker runs) by batch
 * size, against the naive TypeScript forward pass of the same model in the
 * same run; and the memory of session create/release cycles (hot swap
 * creates a session per promotion; onnxruntime #25325 reports growth).
 *
 * ```
 *  model:    23 features (the full feature set) ─► dense 16, relu ─► dense 1, sigmoid
 *  subject:  OnnxScorer.run(n): rows written into its preallocated input, n ∈ --batches
 *  baseline: denseForward (adapters/onnx/dense-model.ts) on the same rows
 *  cycles:   OnnxScorer.create + one run + release, --cycles times; RSS and heap after GC
 * ```
 * Figures per batch size: median over `--runs` of ns per row, HDR
 * percentiles of the batch latency (µs), the baseline's ns per row and the
 * ratio subject / baseline. Usage:
 * `node dist/bench/onnx/inference-bench.js [--batches 1,8,64,512] [--rows 200000] [--runs 3] [--cycles 2000] [--json] [--out]`.
 */
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  type DenseModel,
  denseForward,
  denseModelToOnnx,
} from '../../adapters/onnx/dense-model.js';
import { OnnxScorer } from '../../adapters/onnx/onnx-scorer.js';
import { invalidArgument } from '../../kernel/errors.js';
import { emitBenchDocument, parseBenchArgs, runBench } from '../bench-output.js';
import { formatSummary, LatencyRecorder, type LatencySummary } from '../hdr-report.js';

const HELP = `usage: node dist/bench/onnx/inference-bench.js [options]

  --batches LIST  batch sizes (default 1,8,64,512)
  --rows N        rows scored per batch size per run (default 200000)
  --runs N        runs; figures are medians (default 3)
  --cycles N      session create/run/release cycles for the memory check (default 2000; 0 skips)
  --json          print the JSON document
  --out           write it to bench/results/onnx-inference-<date>.json
`;

const FEATURES = 23;
const HIDDEN = 16;

/** A fixed MLP: deterministic weights, so every run scores the same model. */
function benchModel(): DenseModel {
  let s = 12345;
  const rnd = (): number => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  };
  const w = (n: number): Float32Array => Float32Array.from({ length: n }, () => rnd() * 0.5);
  return {
    name: 'bench-mlp',
    version: '1',
    features: Array.from({ length: FEATURES }, (_, i) => `f${i}`),
    layers: [
      {
        inputs: FEATURES,
        outputs: HIDDEN,
        weights: w(FEATURES * HIDDEN),
        bias: w(HIDDEN),
        activation: 'relu',
      },
      { inputs: HIDDEN, outputs: 1, weights: w(HIDDEN), bias: w(1), activation: 'sigmoid' },
    ],
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

interface BatchRow {
  batch: number;
  onnxNsPerRow: number;
  baselineNsPerRow: number;
  ratio: number;
  batchLatencyUs: LatencySummary;
}

async function timeBatch(
  scorer: OnnxScorer,
  model: DenseModel,
  rowsData: Float32Array,
  batch: number,
  rows: number,
): Promise<{ onnxNs: number; baseNs: number; hist: LatencyRecorder }> {
  const batches = Math.max(1, Math.floor(rows / batch));
  const hist = new LatencyRecorder();
  const slice = rowsData.subarray(0, batch * FEATURES);
  // Warm up: JIT, the tensor views of this size, the runtime's arena.
  for (let i = 0; i < Math.min(200, batches); i++) {
    scorer.input.set(slice);
    await scorer.run(batch);
  }
  const t0 = performance.now();
  for (let i = 0; i < batches; i++) {
    const b0 = performance.now();
    scorer.input.set(slice);
    await scorer.run(batch);
    hist.record((performance.now() - b0) * 1000);
  }
  const onnxNs = ((performance.now() - t0) * 1e6) / (batches * batch);
  const out = new Float32Array(batch);
  for (let i = 0; i < Math.min(200, batches); i++) denseForward(model, slice, batch, out);
  const t1 = performance.now();
  for (let i = 0; i < batches; i++) denseForward(model, slice, batch, out);
  const baseNs = ((performance.now() - t1) * 1e6) / (batches * batch);
  return { onnxNs, baseNs, hist };
}

function gcNow(): () => void {
  v8.setFlagsFromString('--expose-gc');
  const f: unknown = runInNewContext('gc');
  if (typeof f !== 'function') throw new Error('gc is not available');
  return f as () => void;
}

async function cycles(bytes: Uint8Array, n: number): Promise<Record<string, number>> {
  const gc = gcNow();
  const features = benchModel().features;
  const mem = (): { rss: number; heap: number } => {
    gc();
    const m = process.memoryUsage();
    return { rss: m.rss, heap: m.heapUsed };
  };
  // The first cycles load the runtime's own state: measure from after them.
  for (let i = 0; i < 50; i++) {
    const s = await OnnxScorer.create(bytes, { features, outputs: 1, maxBatch: 64 });
    await s.run(64);
    await s.release();
  }
  const start = mem();
  let mid = start;
  for (let i = 0; i < n; i++) {
    const s = await OnnxScorer.create(bytes, { features, outputs: 1, maxBatch: 64 });
    await s.run(64);
    await s.release();
    if (i === (n >> 1) - 1) mid = mem();
  }
  const end = mem();
  return {
    cycles: n,
    rssGrowthFirstHalfBytes: mid.rss - start.rss,
    rssGrowthSecondHalfBytes: end.rss - mid.rss,
    rssGrowthPerCycleBytes: (end.rss - start.rss) / n,
    heapGrowthBytes: end.heap - start.heap,
  };
}

async function main(): Promise<void> {
  const { values } = parseBenchArgs(process.argv.slice(2), {
    batches: { type: 'string', default: '1,8,64,512' },
    rows: { type: 'string', default: '200000' },
    runs: { type: 'string', default: '3' },
    cycles: { type: 'string', default: '2000' },
    json: { type: 'boolean', default: false },
    out: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const batches = values.batches.split(',').map(Number);
  for (const b of batches) {
    if (!Number.isInteger(b) || b < 1 || b > 4096)
      invalidArgument('--batches', b, 'integers from 1 to 4096');
  }
  const rows = Number(values.rows);
  const runs = Number(values.runs);
  const nCycles = Number(values.cycles);
  if (!Number.isInteger(rows) || rows < 1) invalidArgument('--rows', values.rows, 'an integer ≥ 1');
  if (!Number.isInteger(runs) || runs < 1) invalidArgument('--runs', values.runs, 'an integer ≥ 1');
  if (!Number.isInteger(nCycles) || nCycles < 0)
    invalidArgument('--cycles', values.cycles, 'an integer ≥ 0');
  const say = (line: string): void => {
    if (!values.json) process.stdout.write(`${line}\n`);
  };

  const model = benchModel();
  const bytes = denseModelToOnnx(model);
  const maxBatch = Math.max(...batches);
  const scorer = await OnnxScorer.create(bytes, { features: model.features, outputs: 1, maxBatch });
  const data = Float32Array.from({ length: maxBatch * FEATURES }, (_, i) => Math.sin(i) * 2);
  say(
    `onnx inference: ${FEATURES} features → ${HIDDEN} relu → 1 sigmoid; ${rows} rows per batch size, median of ${runs} runs`,
  );
  say('batch   onnx ns/row   naive TS ns/row   onnx/naive   batch latency (µs)');
  const table: BatchRow[] = [];
  for (const batch of batches) {
    const onnx: number[] = [];
    const base: number[] = [];
    let last: LatencyRecorder | undefined;
    for (let r = 0; r < runs; r++) {
      const res = await timeBatch(scorer, model, data, batch, rows);
      onnx.push(res.onnxNs);
      base.push(res.baseNs);
      last = res.hist;
    }
    const row: BatchRow = {
      batch,
      onnxNsPerRow: median(onnx),
      baselineNsPerRow: median(base),
      ratio: median(onnx) / median(base),
      batchLatencyUs: last!.summary(),
    };
    table.push(row);
    say(
      `${String(batch).padStart(5)}   ${row.onnxNsPerRow.toFixed(0).padStart(11)}   ${row.baselineNsPerRow.toFixed(0).padStart(15)}   ${row.ratio.toFixed(2).padStart(9)}×   ${formatSummary('', row.batchLatencyUs).trim()}`,
    );
  }
  await scorer.release();
  let memory: Record<string, number> | undefined;
  if (nCycles > 0) {
    memory = await cycles(bytes, nCycles);
    say(
      `session create/run/release × ${nCycles}: RSS +${(memory['rssGrowthFirstHalfBytes']! / 1024).toFixed(0)} KiB (first half), +${(memory['rssGrowthSecondHalfBytes']! / 1024).toFixed(0)} KiB (second half), ${memory['rssGrowthPerCycleBytes']!.toFixed(0)} B per cycle; JS heap ${(memory['heapGrowthBytes']! / 1024).toFixed(0)} KiB`,
    );
  }
  const doc = {
    date: new Date().toISOString(),
    scenario: 'onnx-inference',
    model: { features: FEATURES, hidden: HIDDEN, outputs: 1 },
    rows,
    runs,
    batches: table,
    ...(memory === undefined ? {} : { memory }),
  };
  emitBenchDocument('onnx-inference', doc, { json: values.json, out: values.out }, say);
}

runBench('onnx inference bench', main);
