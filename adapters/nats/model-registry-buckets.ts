/**
 * The JetStream buckets of the model registry (adapters/nats/nats-model-registry.ts),
 * in a file of their own so the NATS permissions (ops/services/nats-auth.ts)
 * can name them without loading the registry (and onnxruntime with it).
 */

/** Object Store bucket of the ONNX files, one object `<name>/<version>` per version. */
export const MODEL_FILES_BUCKET = 'QILIN_MODELS';

/** KV bucket of the manifests (`manifest.<name>.<version>`) and per-name state (`state.<name>`). */
export const MODEL_STATE_BUCKET = 'QILIN_MODEL_STATE';

/** The JetStream stream behind an Object Store bucket. */
export const objectStoreStream = (bucket: string): string => `OBJ_${bucket}`;

/** The JetStream stream behind a KV bucket. */
export const kvStream = (bucket: string): string => `KV_${bucket}`;
