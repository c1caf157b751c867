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
