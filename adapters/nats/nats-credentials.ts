import { readFileSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { fromSeed } from '@nats-io/nkeys';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';

/**
 * Which NATS credentials a component connects with (docs/security.md
 * "NATS roles"). One rule everywhere:
 *
 * 1. config `natsSeedFile` (env QILIN_NATS_SEED_FILE): that file, whatever the role;
 * 2. else config `natsAuthDir` (env QILIN_NATS_AUTH_DIR): `<dir>/<role>.nk`;
 * 3. neither: no credentials (a server without authorization still works).
 */

/** A component's NATS role: what its user may publish and subscribe to. */
export type NatsRole = 'admin' | 'kernel' | 'operator' | 'publisher' | `executor-${string}`;

/** The two config keys the resolver reads (QilinConfig has both). */
export interface NatsCredentialConfig {
  natsSeedFile?: string | undefined;
  natsAuthDir?: string | undefined;
}

/** The seed file a component of `role` connects with, or undefined: no credentials. */
export function natsSeedFileFor(config: NatsCredentialConfig, role: NatsRole): string | undefined {
  if (config.natsSeedFile !== undefined && config.natsSeedFile !== '') return config.natsSeedFile;
  if (config.natsAuthDir !== undefined && config.natsAuthDir !== '') {
    return join(config.natsAuthDir, `${role}.nk`);
  }
  return undefined;
}

function credentialError(file: string, why: string, cause?: unknown): QilinError {
  return new QilinError(ErrorCodes.NATS_CREDENTIALS, `NATS seed file ${file} ${why}`, {
    ...(cause === undefined ? {} : { cause }),
    details: { file },
  });
}

/**
 * Read and check an nkey user seed file: it must exist, be a regular file
 * that others cannot read (mode & 0o004 clear) and hold a user seed (`SU…`).
 * Errors (QLN_NATS_CREDENTIALS) name the file, never its content.
 */
export function readNatsSeed(file: string): Promise<Uint8Array> {
  try {
    return Promise.resolve(readNatsSeedSync(file));
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

/**
 * {@link readNatsSeed}, synchronously: what the client's authenticator calls
 * on every (re)connect, so a rotated seed (replaced file + server reload) is
 * picked up without a restart.
 */
export function readNatsSeedSync(file: string): Uint8Array {
  let st: Stats;
  try {
    st = statSync(file);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw credentialError(
      file,
      code === 'ENOENT'
        ? 'does not exist (run `qilin services up`, or `qilin services nats-user add <role>`)'
        : `cannot be read (${code ?? 'error'})`,
      cause,
    );
  }
  if (!st.isFile()) throw credentialError(file, 'is not a regular file');
  if ((st.mode & 0o004) !== 0) {
    throw credentialError(
      file,
      `is readable by everyone (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
    );
  }
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (cause) {
    throw credentialError(
      file,
      `cannot be read (${(cause as NodeJS.ErrnoException).code ?? 'error'})`,
      cause,
    );
  }
  // The seed without surrounding whitespace (a trailing newline is common).
  let start = 0;
  let end = raw.length;
  while (start < end && raw[start]! <= 0x20) start++;
  while (end > start && raw[end - 1]! <= 0x20) end--;
  const seed = new Uint8Array(raw.subarray(start, end));
  raw.fill(0);
  try {
    // 'S' then 'U': a user seed; fromSeed checks the checksum and length.
    if (seed[0] !== 0x53 || seed[1] !== 0x55) throw new Error('not a user seed');
    fromSeed(seed);
  } catch {
    seed.fill(0);
    throw credentialError(file, 'does not hold a valid nkey user seed (SU…)');
  }
  return seed;
}
