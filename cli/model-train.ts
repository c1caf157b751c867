import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { denseForward, denseModelToOnnx } from '../adapters/onnx/dense-model.js';
import { type ModelManifest, parseManifest, sha256Hex } from '../adapters/onnx/model-manifest.js';
import { OnnxScorer } from '../adapters/onnx/onnx-scorer.js';
import {
  binaryMetrics,
  DEFAULT_TRAIN_FEATURES,
  generatedDataset,
  splitByTime,
  trainLogistic,
} from '../adapters/onnx/train.js';
import { ErrorCodes, QilinError } from '../kernel/errors.js';

/** Largest |onnxruntime − TypeScript| accepted per output. */
export const EXPORT_TOLERANCE = 1e-5;
/** Validation rows scored through onnxruntime for the export check, at most. */
const CHECK_ROWS = 10_000;

export interface TrainModelOptions {
  name: string;
  version: string;
  features?: readonly string[];
  symbols: number;
  messages: number;
  horizon: number;
  epochs: number;
  learningRate: number;
  l2: number;
  seed: number;
  outDir: string;
  /** A progress bar on stderr (when it is a terminal). */
  progress: boolean;
  /**
   * Progress out (jobs/train-job.ts): 200 steps, the data set then the
   * epochs. It may throw to stop the training (a cancelled job).
   */
  onProgress?: (done: number, total: number, stage: string) => void;
}

export interface TrainModelResult {
  manifest: ModelManifest;
  bytes: Uint8Array;
  files: { model: string; manifest: string };
  maxAbsDiff: number;
  checkedRows: number;
}

/**
 * `qilin model train`: data set (generated market → FeatureSet → labels),
 * 80/20 split in time order, logistic regression, ONNX export, the export
 * check (onnxruntime's outputs on validation rows equal denseForward within
 * 1e-5, else QLN_MODEL_INVALID and nothing written), manifest with the
 * metrics and the score quantiles of the training rows (the drift reference).
 */
export async function trainModel(o: TrainModelOptions): Promise<TrainModelResult> {
  const bar =
    o.progress && process.stderr.isTTY === true
      ? new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: ' {bar} {percentage}% | {stage} | eta {eta_formatted}',
            hideCursor: true,
            clearOnComplete: true,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  // Two stages of 100 steps each: the data set, then the epochs.
  bar?.start(200, 0, { stage: 'generating the market' });
  try {
    const data = generatedDataset({
      symbols: o.symbols,
      messages: o.messages,
      horizon: o.horizon,
      seed: o.seed,
      features: o.features ?? DEFAULT_TRAIN_FEATURES,
      onProgress: (done, total) => {
        bar?.update(Math.floor((100 * done) / total), { stage: 'features and labels' });
        o.onProgress?.(Math.floor((100 * done) / total), 200, 'features and labels');
      },
    });
    const [train, valid] = splitByTime(data, 0.8);
    if (train.rows < 100 || valid.rows < 20) {
      throw new QilinError(
        ErrorCodes.CLI_USAGE,
        `only ${data.rows} labelled rows: generate more messages (--messages) or shorten --horizon`,
      );
    }
    const model = trainLogistic(
      train,
      {
        epochs: o.epochs,
        learningRate: o.learningRate,
        l2: o.l2,
        onEpoch: (e, loss) => {
          bar?.update(100 + Math.floor((100 * e) / o.epochs), {
            stage: `epoch ${e}, loss ${loss.toFixed(4)}`,
          });
          o.onProgress?.(100 + Math.floor((100 * e) / o.epochs), 200, `epoch ${e}`);
        },
      },
      { name: o.name, version: o.version },
    );
    const score = (d: typeof train): Float32Array => {
      const x = Float32Array.from(d.x);
      const out = new Float32Array(d.rows);
      denseForward(model, x, d.rows, out);
      return out;
    };
    const trainScores = score(train);
    const mt = binaryMetrics(trainScores, train.y);
    const mv = binaryMetrics(score(valid), valid.y);
    const bytes = denseModelToOnnx(model);

    // The export check: onnxruntime on the validation rows against the TypeScript pass.
    const n = Math.min(CHECK_ROWS, valid.rows);
    const f = model.features.length;
    const scorer = await OnnxScorer.create(bytes, {
      features: model.features,
      outputs: 1,
      maxBatch: n,
      label: `${o.name}@${o.version}`,
    });
    const xs = Float32Array.from(valid.x.subarray(0, n * f));
    scorer.input.set(xs);
    const got = await scorer.run(n);
    const want = new Float32Array(n);
    denseForward(model, xs, n, want);
    let maxAbsDiff = 0;
    for (let i = 0; i < n; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(got[i]! - want[i]!));
    await scorer.release();
    if (!(maxAbsDiff <= EXPORT_TOLERANCE)) {
      throw new QilinError(
        ErrorCodes.MODEL_INVALID,
        `${o.name}@${o.version}: onnxruntime differs from the TypeScript forward pass by ${maxAbsDiff} (limit ${EXPORT_TOLERANCE}); nothing written`,
        { details: { maxAbsDiff } },
      );
    }
    const sorted = Float64Array.from(trainScores).sort();
    const quantiles = Array.from(
      { length: 11 },
      (_, i) => sorted[Math.min(sorted.length - 1, Math.floor((i / 10) * (sorted.length - 1)))]!,
    );
    const manifest = parseManifest({
      name: o.name,
      version: o.version,
      features: model.features,
      outputs: [
        { name: 'p_up', role: 'score', meaning: `P(mid higher ${o.horizon} messages later)` },
      ],
      thresholds: { buy: 0.55, sell: 0.45 },
      sha256: sha256Hex(bytes),
      training: {
        from: '',
        to: '',
        rows: train.rows,
        source: `generated market: ${o.symbols} symbols, ${o.messages} messages, seed ${o.seed}, horizon ${o.horizon}`,
      },
      metrics: {
        trainLogloss: mt.logloss,
        trainAuc: mt.auc,
        trainHitRate: mt.hitRate,
        validLogloss: mv.logloss,
        validAuc: mv.auc,
        validHitRate: mv.hitRate,
        validBaseRate: mv.baseRate,
        validRows: mv.rows,
      },
      reference: { scoreQuantiles: quantiles },
      createdAt: new Date().toISOString(),
    });
    await mkdir(o.outDir, { recursive: true });
    const files = {
      model: join(o.outDir, `${o.name}-${o.version}.onnx`),
      manifest: join(o.outDir, `${o.name}-${o.version}.json`),
    };
    await writeAtomic(files.model, bytes);
    await writeAtomic(files.manifest, `${JSON.stringify(manifest, null, 2)}\n`);
    return { manifest, bytes, files, maxAbsDiff, checkedRows: n };
  } finally {
    bar?.stop();
  }
}

async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}
