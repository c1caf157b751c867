import { createHash } from 'node:crypto';
import onnxProto from 'onnx-proto';
import { z } from 'zod';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';
import { OnnxScorer } from './onnx-scorer.js';

const { onnx } = onnxProto;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const FEATURE = /^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$/;

/** What an output column means. */
export const OUTPUT_ROLES = ['score', 'lower', 'upper', 'other'] as const;

const ManifestSchema = z
  .object({
    /** Model name: `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`. */
    name: z.string().regex(NAME, { error: 'a name [A-Za-z0-9][A-Za-z0-9_.-]{0,63}' }),
    /** Version, same alphabet; immutable once pushed. */
    version: z.string().regex(NAME, { error: 'a version [A-Za-z0-9][A-Za-z0-9_.-]{0,63}' }),
    /** Input columns in order: feature names of the actor's feature window. */
    features: z
      .array(z.string().regex(FEATURE, { error: 'a feature name' }))
      .min(1, { error: 'at least one feature' })
      .refine((f) => new Set(f).size === f.length, { error: 'distinct feature names' }),
    /** Output columns in order (the model's one output is `[batch, outputs.length]`). */
    outputs: z
      .array(
        z.object({
          name: z.string().regex(FEATURE, { error: 'an output name' }),
          role: z.enum(OUTPUT_ROLES),
          meaning: z.string().max(500).default(''),
        }),
      )
      .min(1, { error: 'at least one output' })
      .refine((o) => o.filter((x) => x.role === 'score').length === 1, {
        error: 'exactly one output with role "score"',
      }),
    /** Score thresholds of the signal: buy above `buy`, sell below `sell`. */
    thresholds: z
      .object({ buy: z.number().finite(), sell: z.number().finite() })
      .refine((t) => t.sell <= t.buy, { error: 'sell ≤ buy' }),
    /** sha256 of the ONNX file, hex. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/, { error: '64 lowercase hex digits' }),
    /** Where the training data came from. */
    training: z
      .object({
        from: z.string().default(''),
        to: z.string().default(''),
        rows: z.number().int().min(0).default(0),
        source: z.string().max(500).default(''),
      })
      .default({ from: '', to: '', rows: 0, source: '' }),
    /** Training / validation metrics by name (auc, logloss, hitRate …). */
    metrics: z.record(z.string(), z.number().finite()).default({}),
    /**
     * Reference distribution of the score on the training data (quantile
     * edges), for drift checks; optional.
     */
    reference: z.object({ scoreQuantiles: z.array(z.number().finite()).min(2) }).optional(),
    createdAt: z.string().default(''),
  })
  .strict();

/** A model's manifest: what it reads, what it outputs, how it was made. */
export type ModelManifest = z.infer<typeof ManifestSchema>;

/** Parse and validate a manifest; QLN_MODEL_INVALID naming each bad field. */
export function parseManifest(value: unknown, source = 'manifest'): ModelManifest {
  const r = ManifestSchema.safeParse(value);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new QilinError(
    ErrorCodes.MODEL_INVALID,
    `${source} is not a valid model manifest: ${problems.join('; ')}`,
    {
      details: { source, problems },
    },
  );
}

/** Throw QLN_MODEL_INVALID unless `value` is a model name or version (no path separators, no `..`). */
export function checkModelName(what: 'name' | 'version', value: string): string {
  if (!NAME.test(value)) {
    throw new QilinError(
      ErrorCodes.MODEL_INVALID,
      `invalid model ${what} ${JSON.stringify(value)} (allowed: [A-Za-z0-9][A-Za-z0-9_.-]{0,63})`,
      { details: { [what]: value } },
    );
  }
  return value;
}

/** `name@version`. */
export const modelLabel = (m: Pick<ModelManifest, 'name' | 'version'>): string =>
  `${m.name}@${m.version}`;

/** sha256 of bytes, hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The `qilin.*` metadata a file carries (denseModelToOnnx writes it); {} when none or unreadable. */
export function onnxMetadata(bytes: Uint8Array): Record<string, string> {
  try {
    const m = onnx.ModelProto.decode(bytes);
    const out: Record<string, string> = {};
    for (const p of m.metadataProps ?? []) {
      if (typeof p.key === 'string' && typeof p.value === 'string') out[p.key] = p.value;
    }
    return out;
  } catch {
    return {};
  }
}

/**
 * Check a file against its manifest before it may be pushed or loaded:
 * sha256, the feature names the file was exported with (when it carries
 * them), and that onnxruntime loads it with an input `[batch, features]`
 * and an output `[batch, outputs]`. Throws QLN_MODEL_INVALID naming what
 * differs.
 */
export async function verifyModel(bytes: Uint8Array, m: ModelManifest): Promise<void> {
  const label = modelLabel(m);
  const sha = sha256Hex(bytes);
  if (sha !== m.sha256) {
    throw new QilinError(
      ErrorCodes.MODEL_INVALID,
      `${label}: the file's sha256 is ${sha}, the manifest says ${m.sha256} (wrong or damaged file)`,
      { details: { model: label, sha256: sha, expected: m.sha256 } },
    );
  }
  const meta = onnxMetadata(bytes);
  const exported = meta['qilin.features'];
  if (exported !== undefined) {
    let names: unknown;
    try {
      names = JSON.parse(exported);
    } catch {
      names = undefined;
    }
    if (!Array.isArray(names)) {
      throw new QilinError(
        ErrorCodes.MODEL_INVALID,
        `${label}: the file's qilin.features metadata is not a JSON list`,
        {
          details: { model: label },
        },
      );
    }
    const diff = firstDifference(names as unknown[], m.features);
    if (diff !== undefined) {
      throw new QilinError(
        ErrorCodes.MODEL_INVALID,
        `${label}: the file was exported with other features than the manifest lists: ${diff}`,
        {
          details: { model: label, file: names, manifest: m.features },
        },
      );
    }
  }
  const scorer = await OnnxScorer.create(bytes, {
    features: m.features,
    outputs: m.outputs.length,
    maxBatch: 1,
    label,
  });
  await scorer.release();
}

function firstDifference(
  file: readonly unknown[],
  manifest: readonly string[],
): string | undefined {
  const n = Math.max(file.length, manifest.length);
  for (let i = 0; i < n; i++) {
    if (file[i] !== manifest[i]) {
      return `column ${i} is ${JSON.stringify(file[i] ?? null)} in the file, ${JSON.stringify(manifest[i] ?? null)} in the manifest (${file.length} vs ${manifest.length} features)`;
    }
  }
  return undefined;
}
