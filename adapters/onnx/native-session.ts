import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';

/** Tensor metadata as the native binding reports it (type 1 = float32; shape −1 = symbolic). */
export interface NativeValueMetadata {
  readonly name: string;
  readonly isTensor: boolean;
  readonly type: number;
  readonly shape: readonly number[];
  readonly symbolicDimensions: readonly string[];
}

/** The onnxruntime-node native session object: `run` is synchronous. */
export interface NativeSession {
  loadModel(
    buffer: ArrayBufferLike,
    byteOffset: number,
    byteLength: number,
    options: ort.InferenceSession.SessionOptions,
  ): Promise<void>;
  readonly inputMetadata: readonly NativeValueMetadata[];
  readonly outputMetadata: readonly NativeValueMetadata[];
  run(
    feeds: Record<string, ort.Tensor>,
    fetches: Record<string, ort.Tensor>,
    options: ort.InferenceSession.RunOptions,
  ): unknown;
  dispose(): void;
}

interface NativeBinding {
  binding: { InferenceSession: new () => NativeSession };
  initOrt: () => void;
}

let cached: NativeBinding | undefined;

/**
 * onnxruntime-node's native binding, loaded once per thread.
 *
 * Why not `ort.InferenceSession.run`: the package's public `run` calls the
 * native, synchronous `run` inside `setImmediate` and a promise — about 9 µs
 * of the 16 µs a small batch costs here (measured: 7 µs synchronous vs 16 µs
 * through the promise, batch 1–64, `bench/onnx/inference-bench.ts`), and an
 * event-loop turn between a drain and its predictions. The kernel scores a
 * drain's rows at the end of the drain, synchronously, so the binding is
 * used directly. It is internal to the package (`dist/binding.js`): its shape
 * is checked here, and a version without it is refused with a clear error
 * (test/adapters/onnx/onnx-scorer.test.ts pins it). Session creation stays
 * asynchronous (`loadModel`), off the hot path.
 */
export function nativeBinding(): NativeBinding {
  if (cached !== undefined) return cached;
  const require = createRequire(import.meta.url);
  let b: Partial<NativeBinding> | undefined;
  try {
    b = require('onnxruntime-node/dist/binding.js') as Partial<NativeBinding>;
  } catch (cause) {
    throw unsupported(`cannot load its binding: ${(cause as Error).message}`, cause);
  }
  const S = b.binding?.InferenceSession;
  if (
    typeof S !== 'function' ||
    typeof b.initOrt !== 'function' ||
    typeof (S.prototype as Partial<NativeSession>).run !== 'function' ||
    typeof (S.prototype as Partial<NativeSession>).loadModel !== 'function'
  ) {
    throw unsupported('its binding has no InferenceSession with loadModel and run');
  }
  // The Tensor class the binding builds outputs with: the one `ort` exports.
  void ort.Tensor;
  b.initOrt();
  cached = b as NativeBinding;
  return cached;
}

function unsupported(why: string, cause?: unknown): QilinError {
  return new QilinError(
    ErrorCodes.MODEL_INVALID,
    `onnxruntime-node ${ort.env.versions.common} is not supported: ${why} (Qilin is tested with 1.31.1)`,
    { cause, details: { thread: isMainThread ? 'main' : 'worker' } },
  );
}

/** Session options of every Qilin session: one thread, sequential (one session per kernel worker). */
export const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};

/** Data type code of float32 in the binding's metadata. */
export const NATIVE_FLOAT32 = 1;
