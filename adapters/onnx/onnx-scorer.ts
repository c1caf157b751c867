import ort from 'onnxruntime-node';
import { ErrorCodes, QilinError, invalidArgument } from '../../kernel/errors.js';
import {
  NATIVE_FLOAT32,
  SESSION_OPTIONS,
  nativeBinding,
  type NativeSession,
  type NativeValueMetadata,
} from './native-session.js';

/** Options of {@link OnnxScorer.create}. */
export interface OnnxScorerOptions {
  /** The feature names the input rows hold, in order (the manifest's). */
  features: readonly string[];
  /** Output columns per row the caller reads (the manifest's output width). */
  outputs: number;
  /** Largest batch (rows per run). Default 512. */
  maxBatch?: number;
  /** Name used in errors (`name@version`). */
  label?: string;
}

/** Largest `maxBatch` accepted. */
export const MAX_BATCH = 65_536;

/**
 * One onnxruntime (CPU) session with its input and output memory allocated
 * once: the caller writes feature rows straight into `input` (row r at
 * `r × features`), calls `runSync(n)`, and reads `n × outputs` scores from
 * `output`. No per-row allocation; per batch size a pair of tensor views is
 * made on first use and kept, so a steady state allocates only what the
 * runtime itself does per run (its result object). `runSync` uses the
 * native binding's synchronous run (native-session.ts): the kernel scores a
 * drain's rows at its end, in the same task.
 *
 * Threads: one intra-op and one inter-op thread, sequential execution: the
 * kernel runs one session per worker thread and gets its parallelism from
 * the workers, not from a thread pool per session competing for the same
 * cores.
 *
 * One run at a time per scorer (runs are synchronous; `run` is the same
 * run behind a promise, for callers that want one).
 */
export class OnnxScorer {
  /** `maxBatch × features` floats; fill rows before `run`. */
  readonly input: Float32Array;
  /** `maxBatch × outputs` floats; valid for the `n` rows of the last run until the next. */
  readonly output: Float32Array;
  readonly features: number;
  readonly outputs: number;
  readonly maxBatch: number;
  private readonly inputName: string;
  private readonly outputName: string;
  private readonly feeds: Array<Record<string, ort.Tensor> | undefined>;
  private readonly fetches: Array<Record<string, ort.Tensor> | undefined>;
  private released = false;
  private static readonly RUN_OPTIONS: ort.InferenceSession.RunOptions = {};

  private constructor(
    private readonly session: NativeSession,
    private readonly label: string,
    features: number,
    outputs: number,
    maxBatch: number,
  ) {
    this.features = features;
    this.outputs = outputs;
    this.maxBatch = maxBatch;
    this.inputName = session.inputMetadata[0]!.name;
    this.outputName = session.outputMetadata[0]!.name;
    this.input = new Float32Array(maxBatch * features);
    this.output = new Float32Array(maxBatch * outputs);
    this.feeds = new Array<Record<string, ort.Tensor> | undefined>(maxBatch + 1).fill(undefined);
    this.fetches = new Array<Record<string, ort.Tensor> | undefined>(maxBatch + 1).fill(undefined);
  }

  /**
   * Load a model and check it against what the caller will feed it: exactly
   * one float32 input `[batch, F]` with F = `features.length`, and a float32
   * output `[batch, outputs]`. A file that does not load, or a shape that
   * differs, is refused with QLN_MODEL_INVALID naming what differs.
   */
  static async create(model: Uint8Array, opts: OnnxScorerOptions): Promise<OnnxScorer> {
    const label = opts.label ?? 'model';
    const maxBatch = opts.maxBatch ?? 512;
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > MAX_BATCH) {
      invalidArgument('maxBatch', maxBatch, `an integer from 1 to ${MAX_BATCH}`);
    }
    if (opts.features.length === 0) invalidArgument('features', '[]', 'at least one feature');
    if (!Number.isInteger(opts.outputs) || opts.outputs < 1) {
      invalidArgument('outputs', opts.outputs, 'an integer ≥ 1');
    }
    const { binding } = nativeBinding();
    const session = new binding.InferenceSession();
    try {
      await session.loadModel(model.buffer, model.byteOffset, model.byteLength, SESSION_OPTIONS);
    } catch (cause) {
      // A session that failed to load holds nothing (dispose would throw "not initialized").
      throw new QilinError(
        ErrorCodes.MODEL_INVALID,
        `${label}: onnxruntime cannot load the model (${model.byteLength} bytes): ${(cause as Error).message}`,
        { cause, details: { model: label, bytes: model.byteLength } },
      );
    }
    try {
      checkShapes(session, label, opts.features.length, opts.outputs);
    } catch (err) {
      session.dispose();
      throw err;
    }
    return new OnnxScorer(session, label, opts.features.length, opts.outputs, maxBatch);
  }

  /**
   * Score the first `n` rows of `input` into `output`, synchronously.
   * Throws QLN_MODEL_FAILED when the runtime throws (the model is still usable).
   */
  runSync(n: number): Float32Array {
    if (this.released) invalidArgument('run', this.label, 'a scorer that was not released');
    if (!Number.isInteger(n) || n < 1 || n > this.maxBatch) {
      invalidArgument('n', n, `an integer from 1 to ${this.maxBatch}`);
    }
    try {
      this.session.run(this.feedsOf(n), this.fetchesOf(n), OnnxScorer.RUN_OPTIONS);
    } catch (cause) {
      throw new QilinError(
        ErrorCodes.MODEL_FAILED,
        `${this.label}: inference failed on a batch of ${n}: ${(cause as Error).message}`,
        { cause, details: { model: this.label, rows: n } },
      );
    }
    return this.output;
  }

  /** `runSync` behind a promise (rejects instead of throwing). */
  async run(n: number): Promise<Float32Array> {
    await Promise.resolve();
    return this.runSync(n);
  }

  /** Free the native session; safe twice. */
  release(): Promise<void> {
    if (!this.released) {
      this.released = true;
      this.session.dispose();
    }
    return Promise.resolve();
  }

  private feedsOf(n: number): Record<string, ort.Tensor> {
    let f = this.feeds[n];
    if (f === undefined) {
      const view = this.input.subarray(0, n * this.features);
      f = { [this.inputName]: new ort.Tensor('float32', view, [n, this.features]) };
      this.feeds[n] = f;
    }
    return f;
  }

  private fetchesOf(n: number): Record<string, ort.Tensor> {
    let f = this.fetches[n];
    if (f === undefined) {
      const view = this.output.subarray(0, n * this.outputs);
      f = { [this.outputName]: new ort.Tensor('float32', view, [n, this.outputs]) };
      this.fetches[n] = f;
    }
    return f;
  }
}

function checkShapes(
  session: NativeSession,
  label: string,
  features: number,
  outputs: number,
): void {
  const refuse = (what: string, details: Record<string, unknown>): never => {
    throw new QilinError(ErrorCodes.MODEL_INVALID, `${label}: ${what}`, {
      details: { model: label, ...details },
    });
  };
  const inputs = session.inputMetadata;
  if (inputs.length !== 1) {
    const names = inputs.map((m) => m.name);
    refuse(
      `expects ${inputs.length} inputs (${names.join(', ')}); Qilin feeds one: [batch, ${features}] float32`,
      { inputs: names },
    );
  }
  const inMeta = inputs[0]!;
  if (!inMeta.isTensor || inMeta.type !== NATIVE_FLOAT32) {
    refuse(`input ${inMeta.name} is not a float32 tensor`, { input: inMeta.name });
  }
  const inShape = shapeOf(inMeta);
  const inWidth = inShape[1];
  if (inShape.length !== 2 || (typeof inWidth === 'number' && inWidth !== features)) {
    refuse(
      `input ${inMeta.name} has shape [${inShape.join(', ')}]; the manifest's ${features} features need [batch, ${features}]`,
      { input: inMeta.name, shape: inShape, features },
    );
  }
  const outMeta = session.outputMetadata[0];
  if (outMeta === undefined) refuse('has no output', {});
  if (!outMeta!.isTensor || outMeta!.type !== NATIVE_FLOAT32) {
    refuse(`output ${outMeta!.name} is not a float32 tensor`, { output: outMeta!.name });
  }
  const outShape = shapeOf(outMeta!);
  const outWidth = outShape[1];
  if (outShape.length !== 2 || (typeof outWidth === 'number' && outWidth !== outputs)) {
    refuse(
      `output ${outMeta!.name} has shape [${outShape.join(', ')}]; the manifest declares [batch, ${outputs}]`,
      { output: outMeta!.name, shape: outShape, outputs },
    );
  }
}

/** A shape as the public API reports it: a symbolic dimension by its name, others as numbers. */
function shapeOf(m: NativeValueMetadata): Array<number | string> {
  if (!m.isTensor) return [];
  return m.shape.map((d, i) => (d === -1 ? (m.symbolicDimensions[i] ?? '') : d));
}
