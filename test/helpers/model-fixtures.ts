import { type DenseModel, denseModelToOnnx } from '../../adapters/onnx/dense-model.js';
import {
  type ModelManifest,
  parseManifest,
  sha256Hex,
} from '../../adapters/onnx/model-manifest.js';

/**
 * Tiny models for the registry tests (local and NATS): a logistic
 * regression over three features, its ONNX bytes and a manifest for them.
 */

/** The fixture models' features, in order. */
export const FEATURES = ['ret1', 'zscore', 'rsi'];

/** A one-layer sigmoid model named `lr` with these weights. */
export function lr(weights: number[], features = FEATURES): DenseModel {
  return {
    name: 'lr',
    version: '1',
    features,
    layers: [
      {
        inputs: features.length,
        outputs: 1,
        weights: Float32Array.from(weights),
        bias: Float32Array.from([0]),
        activation: 'sigmoid',
      },
    ],
  };
}

/** ONNX bytes of `lr(weights)`. */
export const lrBytes = (weights: number[]): Uint8Array => denseModelToOnnx(lr(weights));

/** A valid manifest of model `lr` (or `over.name`) version `version` for these bytes. */
export function manifestFor(
  bytes: Uint8Array,
  version: string,
  over: Partial<ModelManifest> = {},
): ModelManifest {
  return parseManifest({
    name: 'lr',
    version,
    features: FEATURES,
    outputs: [{ name: 'p_up', role: 'score', meaning: 'P(price up in 10 ticks)' }],
    thresholds: { buy: 0.6, sell: 0.4 },
    sha256: sha256Hex(bytes),
    metrics: { auc: 0.61 },
    createdAt: `2026-12-0${version}T00:00:00Z`,
    ...over,
  });
}

/** Who the tests say did a registry operation. */
export const who = { by: 'alice', reason: 'test' };

// ── models whose outputs the kernel tests know in advance (test/integration/models.test.ts) ──

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
