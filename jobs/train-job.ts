import { JobParams } from './job-params.js';
import type { JobContext, JobResult, JobTypeSpec } from './job-types.js';

/** The params of a `train` job (`qilin model train`'s options, as plain data). */
export interface TrainJobParams {
  name: string;
  version: string;
  symbols: number;
  messages: number;
  horizon: number;
  epochs: number;
  learningRate: number;
  l2: number;
  seed: number;
  /** Where `<name>-<version>.onnx` and `.json` are written (relative: to the kernel's working directory). */
  outDir: string;
}

/**
 * `train`: cli/model-train.ts trainModel (the function of `qilin model
 * train`) in the job's worker thread; progress is its 200 steps (data set,
 * then epochs), and a cancel or timeout throws from them.
 */
export const trainJob: JobTypeSpec<TrainJobParams> = {
  describe: 'train a model on a generated market (params as `qilin model train`)',
  parse(raw) {
    const p = new JobParams('train', raw);
    const params: TrainJobParams = {
      name: p.name('name', 'logistic'),
      version: p.name('version', '1'),
      symbols: p.num('symbols', 8, 1, 10_000),
      messages: p.num('messages', 200_000, 1, 1_000_000_000),
      horizon: p.num('horizon', 20, 1, 100_000),
      epochs: p.num('epochs', 300, 1, 1_000_000),
      learningRate: p.num('learningRate', 0.5, 0, 100, false),
      l2: p.num('l2', 0.001, 0, 100, false),
      seed: p.num('seed', 1, 0, Number.MAX_SAFE_INTEGER),
      outDir: p.path('outDir', '.qilin/models-trained'),
    };
    p.finish();
    return params;
  },
  async run(p: TrainJobParams, ctx: JobContext): Promise<JobResult> {
    const { trainModel } = await import('../cli/model-train.js');
    ctx.checkAborted();
    const r = await trainModel({
      ...p,
      progress: false,
      onProgress: (done, total, stage) => ctx.progress(done, total, stage),
    });
    ctx.checkAborted();
    const m = r.manifest.metrics as Record<string, unknown>;
    const num = (k: string): Record<string, number> =>
      typeof m[k] === 'number' ? { [k]: m[k] } : {};
    return {
      summary: {
        model: `${r.manifest.name}@${r.manifest.version}`,
        file: r.files.model,
        ...num('validAuc'),
        ...num('validLogloss'),
        ...num('validHitRate'),
      },
      result: { manifest: r.manifest, files: r.files, maxAbsDiff: r.maxAbsDiff },
    };
  },
};
