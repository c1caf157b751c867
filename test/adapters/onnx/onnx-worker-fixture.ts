/**
 * Worker body of the multi-thread session test (onnx-scorer.test.ts): load
 * the model given in workerData, score a batch, post the scores, exit.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OnnxScorer } from '../../../adapters/onnx/onnx-scorer.js';

const { model, features, rows, x } = workerData as {
  model: Uint8Array;
  features: string[];
  rows: number;
  x: Float32Array;
};
const scorer = await OnnxScorer.create(model, { features, outputs: 1, maxBatch: rows });
scorer.input.set(x);
const out = await scorer.run(rows);
parentPort!.postMessage(Array.from(out.subarray(0, rows)));
await scorer.release();
