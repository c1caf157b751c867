/**
 * Model fixtures: small ONNX models whose outputs the tests know in advance,
 * with a manifest that passes the registry's checks.
 */
import { denseModelToOnnx, type DenseModel } from '../../adapters/onnx/dense-model.js';
import {
  parseManifest,
  sha256Hex,
  type ModelManifest,
} from '../../adapters/onnx/model-manifest.js';

export interface ModelFixture {
  bytes: Uint8Array;
  manifest: ModelManifest;
}

/**
 * A model that ignores its inputs: sigmoid(bias) whatever the features
 * (weights 0), so its score is known. With `interval`, three outputs:
 * score, lower = sigmoid(bias − 1), upper = sigmoid(bias + 1). Thresholds
 * buy 0.6 / sell 0.4: bias +3 always buys, −3 always sells; NaN gives NaN.
 */
export function constantModel(
  name: string,
  version: string,
  features: readonly string[],
  bias: number,
  interval = false,
): ModelFixture {
  const outs = interval ? 3 : 1;
  const m: DenseModel = {
    name,
    version,
    features,
    layers: [
      {
        inputs: features.length,
        outputs: outs,
        weights: new Float32Array(features.length * outs),
        bias: Float32Array.from(interval ? [bias, bias - 1, bias + 1] : [bias]),
        activation: 'sigmoid',
      },
    ],
  };
  const bytes = denseModelToOnnx(m);
  const manifest = parseManifest({
    name,
    version,
    features,
    outputs: interval
      ? [
          { name: 'p_up', role: 'score' },
          { name: 'p_lo', role: 'lower' },
          { name: 'p_hi', role: 'upper' },
        ]
      : [{ name: 'p_up', role: 'score' }],
    thresholds: { buy: 0.6, sell: 0.4 },
    sha256: sha256Hex(bytes),
  });
  return { bytes, manifest };
}

/**
 * A model that scores NaN for any positive input (its first layer overflows
 * float32 to +Inf on both units, the second subtracts them): the "NaN model"
 * of the fallback tests. Reads one feature (e.g. `ema12`, a price).
 */
export function nanModel(name: string, version: string, feature: string): ModelFixture {
  const m: DenseModel = {
    name,
    version,
    features: [feature],
    layers: [
      {
        inputs: 1,
        outputs: 2,
        weights: Float32Array.from([3e38, 3e38]),
        bias: Float32Array.from([0, 0]),
        activation: 'identity',
      },
      {
        inputs: 2,
        outputs: 1,
        weights: Float32Array.from([1, -1]),
        bias: Float32Array.from([0]),
        activation: 'sigmoid',
      },
    ],
  };
  const bytes = denseModelToOnnx(m);
  const manifest = parseManifest({
    name,
    version,
    features: [feature],
    outputs: [{ name: 'p_up', role: 'score' }],
    thresholds: { buy: 0.6, sell: 0.4 },
    sha256: sha256Hex(bytes),
  });
  return { bytes, manifest };
}
