import { readFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { InferenceSession } from 'onnxruntime-node';
import type { ModelManifest } from '../adapters/onnx/model-manifest.js';
import type { ModelState } from '../adapters/onnx/model-registry.js';
import type { OpenedModelRegistry } from '../adapters/onnx/open-registry.js';
import type { QilinConfig } from '../config/config.js';
import { ErrorCodes, QilinError } from '../kernel/errors.js';
import type { Logger } from '../kernel/logger.js';

const defaultBy = (): string => {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return `uid-${process.getuid?.() ?? '?'}@${hostname()}`;
  }
};

async function readBytes(path: string, what: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (cause) {
    throw new QilinError(
      ErrorCodes.CLI_USAGE,
      `cannot read the ${what} ${path}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`,
      {
        cause,
        details: { path },
      },
    );
  }
}

function stateLine(s: ModelState): string {
  return `live ${s.promoted ?? '—'}${s.shadow === undefined ? '' : `, shadow ${s.shadow}`}${s.previous.length === 0 ? '' : `, rollback to ${s.previous[s.previous.length - 1]}`}`;
}

/**
 * `qilin model list|push|promote|rollback|shadow|inspect`: the model
 * registry (config `modelRegistry` or `--registry`: a local directory
 * `<stateDir>/models` or `--dir`; or NATS JetStream with the operator's
 * credentials). Every
 * operation checks the file against its manifest (sha256, features,
 * shapes) and records who did it and why.
 */
export function registerModelCommand(
  program: Command,
  context: () => { config: QilinConfig; log: Logger },
): void {
  const model = program
    .command('model')
    .description(
      'model registry: push, promote, roll back, shadow and inspect ONNX models (adapters/onnx/README.md)',
    )
    .option('--dir <path>', 'local registry directory (default <stateDir>/models)')
    .option(
      '--registry <kind>',
      'local (a directory) or nats (JetStream KV + Object Store, every node); default: config modelRegistry',
    );

  // onnxruntime (a large native library) loads only when a model command runs, not with every `qilin`.
  const manifests = () => import('../adapters/onnx/model-manifest.js');
  /** Run `fn` on the chosen registry, closed afterwards (a NATS one holds a connection). */
  const withRegistry = async <T>(fn: (r: OpenedModelRegistry) => Promise<T>): Promise<T> => {
    const { openModelRegistry, MODEL_REGISTRY_KINDS } =
      await import('../adapters/onnx/open-registry.js');
    const { config, log } = context();
    const o = model.opts<{ dir?: string; registry?: string }>();
    const kind = o.registry ?? (o.dir !== undefined ? 'local' : config.modelRegistry);
    if (kind !== 'local' && kind !== 'nats') {
      throw new QilinError(
        ErrorCodes.CLI_USAGE,
        `invalid --registry: ${JSON.stringify(kind)} (allowed: ${MODEL_REGISTRY_KINDS.join(', ')})`,
        { details: { option: '--registry', value: kind } },
      );
    }
    if (kind === 'nats' && o.dir !== undefined) {
      throw new QilinError(
        ErrorCodes.CLI_USAGE,
        '--dir names a local registry directory; the nats registry lives in JetStream (drop --dir or use --registry local)',
      );
    }
    const r = await openModelRegistry(config, undefined, {
      kind,
      ...(kind === 'local' ? { dir: o.dir ?? join(config.stateDir, 'models') } : {}),
      role: 'operator',
      log,
    });
    try {
      return await fn(r);
    } finally {
      await r.close();
    }
  };
  const out = (json: boolean, value: unknown, text: string): void => {
    process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text}\n`);
  };

  model
    .command('list')
    .description('every model with its versions, the live one, the shadow and the rollback target')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const all = await withRegistry((r) => r.list());
      const lines = all.length === 0 ? ['no models (qilin model push --file … --manifest …)'] : [];
      for (const m of all) {
        lines.push(`${m.name}  (${stateLine(m.state)})`);
        for (const v of m.versions) {
          const tag =
            v.version === m.state.promoted ? 'live' : v.version === m.state.shadow ? 'shadow' : '';
          const metrics = Object.entries(v.metrics)
            .map(([k, x]) => `${k}=${x}`)
            .join(' ');
          lines.push(
            `  ${v.version.padEnd(12)} ${tag.padEnd(6)} ${v.features.length} features  sha256 ${v.sha256.slice(0, 12)}…  ${metrics}`,
          );
        }
      }
      out(
        o.json === true,
        all.map((m) => ({ name: m.name, state: m.state, versions: m.versions })),
        lines.join('\n'),
      );
    });

  model
    .command('push')
    .description(
      'check a file against its manifest (sha256, features, shapes) and store it as a new version',
    )
    .requiredOption('--file <model.onnx>', 'the ONNX file')
    .requiredOption('--manifest <manifest.json>', 'its manifest (docs: adapters/onnx/README.md)')
    .option('--by <who>', 'who pushes (default user@host)')
    .option('--reason <text>', 'why', '')
    .option('--json', 'print JSON')
    .action(
      async (o: {
        file: string;
        manifest: string;
        by?: string;
        reason: string;
        json?: boolean;
      }) => {
        const bytes = await readBytes(o.file, 'model file');
        const text = Buffer.from(await readBytes(o.manifest, 'manifest')).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch (cause) {
          throw new QilinError(
            ErrorCodes.MODEL_INVALID,
            `${o.manifest} is not JSON: ${(cause as Error).message}`,
            { cause },
          );
        }
        const { parseManifest, modelLabel } = await manifests();
        const manifest = parseManifest(json, o.manifest);
        const result = await withRegistry((r) =>
          r.push(manifest, bytes, { by: o.by ?? defaultBy(), reason: o.reason }),
        );
        out(
          o.json === true,
          { model: modelLabel(manifest), result },
          `${modelLabel(manifest)}: ${result === 'stored' ? 'pushed' : 'already pushed with these bytes'}`,
        );
      },
    );

  for (const [op, describe] of [
    ['promote', 'make a version live (every kernel switches between two batches)'],
    ['shadow', 'run a version beside the live one (predictions stored and compared, never traded)'],
  ] as const) {
    model
      .command(`${op} <name> <version>`)
      .description(describe)
      .option('--by <who>', 'who (default user@host)')
      .option('--reason <text>', 'why', '')
      .option('--json', 'print JSON')
      .action(
        async (
          name: string,
          version: string,
          o: { by?: string; reason: string; json?: boolean },
        ) => {
          const who = { by: o.by ?? defaultBy(), reason: o.reason };
          const s = await withRegistry((r) =>
            op === 'promote' ? r.promote(name, version, who) : r.shadow(name, version, who),
          );
          out(o.json === true, s, `${name}: ${stateLine(s)}`);
        },
      );
  }

  for (const [op, describe] of [
    ['unshadow', 'stop running a shadow version'],
    ['rollback', 'make the previously live version live again'],
  ] as const) {
    model
      .command(`${op} <name>`)
      .description(describe)
      .option('--by <who>', 'who (default user@host)')
      .option('--reason <text>', 'why', '')
      .option('--json', 'print JSON')
      .action(async (name: string, o: { by?: string; reason: string; json?: boolean }) => {
        const who = { by: o.by ?? defaultBy(), reason: o.reason };
        const s = await withRegistry((r) =>
          op === 'rollback' ? r.rollback(name, who) : r.shadow(name, undefined, who),
        );
        out(o.json === true, s, `${name}: ${stateLine(s)}`);
      });
  }

  model
    .command('train')
    .description(
      "train a logistic regression on a generated market through the kernel's FeatureSet, export ONNX, check onnxruntime against the TypeScript forward pass (1e-5), optionally push",
    )
    .requiredOption('--name <name>', 'model name')
    .requiredOption('--version <version>', 'model version')
    .option(
      '--features <list>',
      'comma-separated feature names (default: rsi14,zscore50,imbalance,relSpread)',
    )
    .option('--symbols <n>', 'symbols of the generated market', '8')
    .option('--messages <n>', 'messages generated, all symbols together', '200000')
    .option('--horizon <n>', "label: the symbol's mid higher this many of its messages later", '20')
    .option('--epochs <n>', 'gradient descent epochs', '300')
    .option('--learning-rate <x>', 'step size', '0.5')
    .option('--l2 <x>', 'L2 penalty', '0.001')
    .option('--seed <n>', 'market seed', '1')
    .option('--out <dir>', 'where to write <name>-<version>.onnx and .json', '.')
    .option('--push', 'push the result to the registry')
    .option('--json', 'print JSON')
    .action(
      async (o: {
        name: string;
        version: string;
        features?: string;
        symbols: string;
        messages: string;
        horizon: string;
        epochs: string;
        learningRate: string;
        l2: string;
        seed: string;
        out: string;
        push?: boolean;
        json?: boolean;
      }) => {
        const int = (flag: string, v: string, min: number): number => {
          const n = Number(v);
          if (!Number.isInteger(n) || n < min) {
            throw new QilinError(
              ErrorCodes.CLI_USAGE,
              `invalid ${flag}: ${JSON.stringify(v)} (allowed: an integer ≥ ${min})`,
            );
          }
          return n;
        };
        const num = (flag: string, v: string): number => {
          const n = Number(v);
          if (!Number.isFinite(n) || n < 0) {
            throw new QilinError(
              ErrorCodes.CLI_USAGE,
              `invalid ${flag}: ${JSON.stringify(v)} (allowed: a number ≥ 0)`,
            );
          }
          return n;
        };
        const { checkModelName } = await manifests();
        checkModelName('name', o.name);
        checkModelName('version', o.version);
        const opts = {
          symbols: int('--symbols', o.symbols, 1),
          messages: int('--messages', o.messages, 100),
          horizon: int('--horizon', o.horizon, 1),
          epochs: int('--epochs', o.epochs, 1),
          seed: int('--seed', o.seed, 0),
          learningRate: num('--learning-rate', o.learningRate),
          l2: num('--l2', o.l2),
        };
        const { trainModel } = await import('./model-train.js');
        const result = await trainModel({
          ...opts,
          name: o.name,
          version: o.version,
          ...(o.features === undefined
            ? {}
            : { features: o.features.split(',').map((x) => x.trim()) }),
          outDir: o.out,
          progress: o.json !== true,
        });
        let pushed: string | undefined;
        if (o.push === true) {
          pushed = await withRegistry((r) =>
            r.push(result.manifest, result.bytes, {
              by: defaultBy(),
              reason: `qilin model train (${opts.messages} messages, seed ${opts.seed})`,
            }),
          );
        }
        const m = result.manifest.metrics;
        out(
          o.json === true,
          { manifest: result.manifest, files: result.files, maxAbsDiff: result.maxAbsDiff, pushed },
          [
            `${o.name}@${o.version}: ${result.manifest.training.rows} rows (${result.manifest.features.join(', ')})`,
            `  train      logloss ${m['trainLogloss']!.toFixed(4)}  auc ${m['trainAuc']!.toFixed(4)}  hit ${m['trainHitRate']!.toFixed(4)}`,
            `  validation logloss ${m['validLogloss']!.toFixed(4)}  auc ${m['validAuc']!.toFixed(4)}  hit ${m['validHitRate']!.toFixed(4)}  (base rate ${m['validBaseRate']!.toFixed(4)})`,
            `  onnxruntime vs TypeScript forward pass: max |diff| ${result.maxAbsDiff.toExponential(2)} over ${result.checkedRows} rows (limit 1e-5)`,
            `  wrote ${result.files.model} and ${result.files.manifest}`,
            ...(pushed === undefined
              ? []
              : [
                  `  registry: ${pushed === 'stored' ? 'pushed' : 'already there'} (qilin model promote ${o.name} ${o.version})`,
                ]),
          ].join('\n'),
        );
      },
    );

  model
    .command('compare <name>')
    .description(
      "the live and shadow versions of a model on stored predictions: each one's hit rate against the realised move, and how often the shadow agreed with the live one",
    )
    .option('--since <when>', 'predictions since a duration ago (15m, 1h, 7d) or an ISO time', '1h')
    .option('--horizon-ms <ms>', "the realised move: the symbol's mid this long after", '1000')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { since: string; horizonMs: string; json?: boolean }) => {
      const { config } = context();
      const horizonMs = Number(o.horizonMs);
      if (!(horizonMs > 0) || !Number.isFinite(horizonMs)) {
        throw new QilinError(
          ErrorCodes.CLI_USAGE,
          `invalid --horizon-ms: ${JSON.stringify(o.horizonMs)} (allowed: a number of ms > 0)`,
          { details: { option: '--horizon-ms', value: o.horizonMs } },
        );
      }
      const { parseSince } = await import('./audit-command.js');
      const { compareModels, formatComparison } = await import('./model-compare.js');
      const { createStore } = await import('./store-factory.js');
      const { resolveSymbolActorOptions } = await import('../actors/symbol-actor-module.js');
      const store = await createStore(config, { readonly: true });
      try {
        const c = await compareModels((sql) => store.query(sql), config.clickhouseDb, {
          name,
          sinceUs: parseSince(o.since),
          horizonMs,
          threshold: resolveSymbolActorOptions(config.actor).threshold,
        });
        out(o.json === true, c, formatComparison(c).trimEnd());
      } finally {
        await store.close();
      }
    });

  model
    .command('inspect [model]')
    .description(
      'a stored version (name@version, or name: the live one) with its manifest and history, or an ONNX file (--file)',
    )
    .option('--file <model.onnx>', 'inspect a file instead: sha256, inputs, outputs, metadata')
    .option('--json', 'print JSON')
    .action(async (ref: string | undefined, o: { file?: string; json?: boolean }) => {
      if (o.file !== undefined) {
        const bytes = await readBytes(o.file, 'model file');
        const { default: ort } = await import('onnxruntime-node');
        const { sha256Hex, onnxMetadata } = await manifests();
        let session: InferenceSession;
        try {
          session = await ort.InferenceSession.create(bytes);
        } catch (cause) {
          throw new QilinError(
            ErrorCodes.MODEL_INVALID,
            `${o.file}: onnxruntime cannot load it: ${(cause as Error).message}`,
            { cause },
          );
        }
        const info = {
          file: o.file,
          bytes: bytes.byteLength,
          sha256: sha256Hex(bytes),
          inputs: session.inputMetadata,
          outputs: session.outputMetadata,
          metadata: onnxMetadata(bytes),
        };
        await session.release();
        const shape = (m: (typeof info.inputs)[number]): string =>
          m.isTensor ? `${m.type}[${m.shape.join(', ')}]` : 'non-tensor';
        out(
          o.json === true,
          info,
          [
            `${info.file}: ${info.bytes} bytes, sha256 ${info.sha256}`,
            ...info.inputs.map((m) => `  input  ${m.name} ${shape(m)}`),
            ...info.outputs.map((m) => `  output ${m.name} ${shape(m)}`),
            ...Object.entries(info.metadata).map(([k, v]) => `  ${k} = ${v}`),
          ].join('\n'),
        );
        return;
      }
      if (ref === undefined) {
        throw new QilinError(
          ErrorCodes.CLI_USAGE,
          'name a model (name or name@version) or pass --file (see --help)',
        );
      }
      const [name, at] = ref.split('@') as [string, string | undefined];
      const { modelLabel } = await manifests();
      const { state, manifest } = await withRegistry(async (r) => {
        const state = await r.state(name);
        const version = at ?? state.promoted;
        if (version === undefined) {
          throw new QilinError(
            ErrorCodes.MODEL_INVALID,
            `${name} has no live version: name one (${name}@<version>)`,
            { details: { model: name } },
          );
        }
        return { state, manifest: (await r.get(name, version)).manifest };
      });
      const m: ModelManifest = manifest;
      out(
        o.json === true,
        { manifest: m, state },
        [
          `${modelLabel(m)}  (${stateLine(state)})`,
          `  features (${m.features.length}): ${m.features.join(', ')}`,
          `  outputs: ${m.outputs.map((x) => `${x.name} (${x.role})`).join(', ')}`,
          `  thresholds: buy > ${m.thresholds.buy}, sell < ${m.thresholds.sell}`,
          `  sha256 ${m.sha256}`,
          `  training: ${m.training.from || '?'} .. ${m.training.to || '?'}, ${m.training.rows} rows${m.training.source === '' ? '' : `, ${m.training.source}`}`,
          `  metrics: ${
            Object.entries(m.metrics)
              .map(([k, x]) => `${k}=${x}`)
              .join(' ') || '—'
          }`,
          '  history:',
          ...state.history
            .slice(-10)
            .map(
              (e) =>
                `    ${e.at} ${e.op} ${e.version} by ${e.by}${e.reason === '' ? '' : ` (${e.reason})`}`,
            ),
        ].join('\n'),
      );
    });
}
