import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, drainNats } from '../nats/nats-connection.js';
import { natsSeedFileFor, type NatsRole } from '../nats/nats-credentials.js';
import { NatsModelRegistry, type NatsModelRegistryOptions } from '../nats/nats-model-registry.js';
import type { QilinConfig } from '../../config/config.js';
import { invalidArgument } from '../../kernel/errors.js';
import { createLogger, type Logger } from '../../kernel/logger.js';
import { LocalModelRegistry, type ModelRegistry } from './model-registry.js';

/** The two registry kinds (config `modelRegistry`, `qilin model --registry`). */
export const MODEL_REGISTRY_KINDS = ['local', 'nats'] as const;
export type ModelRegistryKind = (typeof MODEL_REGISTRY_KINDS)[number];

/** A registry opened by {@link openModelRegistry}: use it, then `close()` it. */
export type OpenedModelRegistry = ModelRegistry & {
  readonly kind: ModelRegistryKind;
  /** Where it lives: the directory, or `nats <buckets>`. */
  readonly where: string;
  /** Release what the open made (the NATS connection it opened itself); safe twice. */
  close(): Promise<void>;
};

/** Options of {@link openModelRegistry}. */
export interface OpenModelRegistryOptions {
  /** Overrides config `modelRegistry` (e.g. `qilin model --registry`). */
  kind?: ModelRegistryKind;
  /** Local registry directory (default `<stateDir>/models`). */
  dir?: string;
  /** NATS role whose credentials a connection opened here uses (default `operator`; kernels: `kernel`). */
  role?: NatsRole;
  /** Bucket names and limits of the NATS registry. */
  nats?: NatsModelRegistryOptions;
  log?: Logger;
}

type RegistryConfig = Pick<
  QilinConfig,
  'modelRegistry' | 'stateDir' | 'natsUrl' | 'natsSeedFile' | 'natsAuthDir' | 'logLevel'
>;

/**
 * The model registry the configuration names: `local` (a directory, one
 * node) or `nats` (JetStream, every node). With `nats`, `nc` is used when
 * given (and left open by `close()`); otherwise a connection is opened with
 * the credentials of `opts.role` and closed by `close()`.
 */
export async function openModelRegistry(
  config: RegistryConfig,
  nc?: NatsConnection,
  opts: OpenModelRegistryOptions = {},
): Promise<OpenedModelRegistry> {
  const kind = opts.kind ?? config.modelRegistry;
  if (!(MODEL_REGISTRY_KINDS as readonly string[]).includes(kind)) {
    invalidArgument('modelRegistry', kind, MODEL_REGISTRY_KINDS.join(' or '));
  }
  if (kind === 'local') {
    const dir = opts.dir ?? join(config.stateDir, 'models');
    return Object.assign(new LocalModelRegistry(dir), {
      kind,
      where: dir,
      close: () => Promise.resolve(),
    });
  }
  if (opts.dir !== undefined) {
    invalidArgument('dir', opts.dir, 'no directory with the nats registry (it lives in JetStream)');
  }
  const own = nc === undefined;
  const conn =
    nc ??
    (await connectNats({
      servers: config.natsUrl,
      name: 'qilin-model-registry',
      log: opts.log ?? createLogger('model-registry', config.logLevel),
      seedFile: natsSeedFileFor(config, opts.role ?? 'operator'),
    }));
  const registry = new NatsModelRegistry(conn, opts.nats);
  let closed: Promise<void> | undefined;
  return Object.assign(registry, {
    kind,
    where: `nats ${registry.stateBucket} + ${registry.filesBucket}`,
    close: (): Promise<void> => (closed ??= own ? drainNats(conn) : Promise.resolve()),
  });
}
