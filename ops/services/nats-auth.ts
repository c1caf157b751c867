import { chmod, link, mkdir, open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createUser, fromSeed } from '@nats-io/nkeys';
import { ErrorCodes, QilinError, invalidArgument } from '../../kernel/errors.js';
import {
  MODEL_FILES_BUCKET,
  MODEL_STATE_BUCKET,
  kvStream,
  objectStoreStream,
} from '../../adapters/nats/model-registry-buckets.js';

/**
 * NATS users per role (docs/security.md "NATS roles"): one nkey user per
 * role, its seed in `<authDir>/<role>.nk` (folder 700, file 600), only its
 * public key in nats.conf, with the subjects the role may publish and
 * subscribe to.
 *
 * ```
 *  publisher ── md.> ──────────────► kernel ── sig.> (JetStream) ──► executor-<acct>
 *                                     ▲  ▲                              │
 *  operator ── ctl.> (request) ───────┘  └──────── fill.<acct> ─────────┘
 *  admin: everything (services tooling, test setup, benches)
 * ```
 * A message on a subject its sender may not publish is refused by the
 * server (`Permissions Violation`) and never reaches a subscriber.
 */

/** The fixed roles; executors are `executor-<account>`. */
export const FIXED_NATS_ROLES = ['admin', 'kernel', 'operator', 'publisher'] as const;

/** Roles `qilin services up` creates when missing. */
export const DEFAULT_NATS_ROLES: readonly string[] = [...FIXED_NATS_ROLES, 'executor-demo'];

/** Stream of the audit log (adapters/nats/audit-stream.ts). */
export const AUDIT_STREAM = 'AUDIT';

/** Stream the kernel publishes approved signals to (adapters/nats/nats-signal-sink.ts). */
export const SIGNAL_STREAM = 'QILIN_SIGNALS';

const ACCOUNT_RE = /^[A-Za-z0-9_-]{1,64}$/;
const ROLE_ALLOWED = `${FIXED_NATS_ROLES.join(', ')} or executor-<account> (account [A-Za-z0-9_-]{1,64})`;

/** Check a role name; returns it. */
export function checkNatsRole(role: string): string {
  if ((FIXED_NATS_ROLES as readonly string[]).includes(role)) return role;
  const acct = role.startsWith('executor-') ? role.slice('executor-'.length) : undefined;
  if (acct !== undefined && ACCOUNT_RE.test(acct)) return role;
  return invalidArgument('role', role, ROLE_ALLOWED);
}

/** What a role may do; `undefined` for admin (no restriction). */
export interface NatsPermissions {
  publish: string[];
  subscribe: string[];
  /** May publish to the reply subject of a request it received (once, within the server's default TTL). */
  allowResponses: boolean;
  /** Subjects refused even where `publish` allows them (a wildcard's exceptions). */
  denyPublish?: string[];
}

/**
 * JetStream API subjects an executor needs to consume `stream` (consumer
 * create / next / ack / info), and nothing that administers streams.
 */
function consumeSubjects(stream: string): string[] {
  return [
    `$JS.API.CONSUMER.CREATE.${stream}`, // server < 2.9 style, no name
    `$JS.API.CONSUMER.CREATE.${stream}.>`, // named (and filtered) consumer create
    `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.*`,
    `$JS.API.CONSUMER.INFO.${stream}.*`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.*`,
    `$JS.API.STREAM.INFO.${stream}`, // consumers look the stream up first
    '$JS.API.INFO', // account info: jetstreamManager() checks the API is there
    `$JS.ACK.${stream}.>`,
  ];
}

// ── model registry (adapters/nats/nats-model-registry.ts; issue 8 item 2) ──
const MODEL_STREAMS = [kvStream(MODEL_STATE_BUCKET), objectStoreStream(MODEL_FILES_BUCKET)];

/**
 * What `qilin model push|promote|rollback|shadow` needs on the registry's
 * two streams: create them when missing, read (message get, ordered
 * consumers for keys and files, flow control), write KV keys and object
 * chunks, purge the chunks of a failed or replaced file. Nothing else.
 */
function modelRegistryWriteSubjects(): string[] {
  return [
    `$KV.${MODEL_STATE_BUCKET}.>`,
    `$O.${MODEL_FILES_BUCKET}.>`,
    ...MODEL_STREAMS.flatMap((s) => [
      `$JS.API.STREAM.INFO.${s}`,
      `$JS.API.STREAM.CREATE.${s}`,
      `$JS.API.STREAM.MSG.GET.${s}`,
      `$JS.API.DIRECT.GET.${s}`,
      `$JS.API.DIRECT.GET.${s}.>`,
      `$JS.API.CONSUMER.CREATE.${s}`,
      `$JS.API.CONSUMER.CREATE.${s}.>`,
      `$JS.API.CONSUMER.INFO.${s}.*`,
      `$JS.API.CONSUMER.DELETE.${s}.*`,
      `$JS.FC.${s}.>`,
    ]),
    `$JS.API.STREAM.PURGE.${objectStoreStream(MODEL_FILES_BUCKET)}`,
  ];
}

/**
 * The kernel reads the registry through its `$JS.API.>`; it must not change
 * it: writes to the buckets and stream administration are refused.
 */
function modelRegistryKernelDenied(): string[] {
  return [
    `$KV.${MODEL_STATE_BUCKET}.>`,
    `$O.${MODEL_FILES_BUCKET}.>`,
    ...MODEL_STREAMS.flatMap((s) => [
      `$JS.API.STREAM.CREATE.${s}`,
      `$JS.API.STREAM.UPDATE.${s}`,
      `$JS.API.STREAM.DELETE.${s}`,
      `$JS.API.STREAM.PURGE.${s}`,
      `$JS.API.STREAM.MSG.DELETE.${s}`,
    ]),
  ];
}
// ── end model registry ──

/** The permissions of a role (see the table in docs/security.md). */
export function natsRolePermissions(role: string): NatsPermissions | undefined {
  checkNatsRole(role);
  switch (role) {
    case 'admin':
      return undefined;
    case 'publisher':
      // The simulator publishes core messages; `_INBOX.>` would only serve
      // a JetStream publish's ack, which needs $JS.API nothing else.
      return { publish: ['md.>'], subscribe: ['_INBOX.>'], allowResponses: false };
    case 'kernel':
      return {
        publish: [
          'sig.>',
          'risk.rejected.>',
          'quality.>',
          'audit.>',
          'qilin.>',
          'job.>',
          '$JS.API.>',
          '$JS.ACK.>',
          '$KV.>',
          '$O.>',
          '_INBOX.>',
        ],
        subscribe: ['md.>', 'fill.>', 'ctl.>', 'qilin.>', 'audit.>', '_INBOX.>'],
        allowResponses: true,
        denyPublish: modelRegistryKernelDenied(),
      };
    case 'operator':
      return {
        // audit.>: `qilin keys` audits its changes on the AUDIT stream, which it checks (or creates) first.
        publish: [
          'ctl.>',
          'audit.>',
          '$JS.API.INFO',
          `$JS.API.STREAM.INFO.${AUDIT_STREAM}`,
          `$JS.API.STREAM.CREATE.${AUDIT_STREAM}`,
          ...modelRegistryWriteSubjects(),
        ],
        subscribe: ['_INBOX.>', 'audit.>'],
        allowResponses: true,
      };
    default: {
      const account = role.slice('executor-'.length);
      return {
        publish: [`fill.${account}`, ...consumeSubjects(SIGNAL_STREAM)],
        subscribe: ['sig.>', '_INBOX.>'],
        allowResponses: false,
      };
    }
  }
}

/** One user of nats.conf: its role (a comment) and its public nkey. */
export interface NatsUser {
  role: string;
  /** Public user nkey (`U…`); never the seed. */
  nkey: string;
}

const q = (s: string): string => JSON.stringify(s);
const list = (xs: readonly string[]): string => `[${xs.map(q).join(', ')}]`;

/**
 * The `authorization { users = [...] }` block for nats.conf, users sorted by
 * role so the same users give the same bytes.
 */
export function authorizationLines(users: readonly NatsUser[]): string[] {
  const sorted = [...users].sort((a, b) => (a.role < b.role ? -1 : a.role > b.role ? 1 : 0));
  const out = ['# NATS users per role (ops/services/nats-auth.ts; docs/security.md "NATS roles").'];
  out.push('authorization {', '  users = [');
  for (const u of sorted) {
    if (!/^U[A-Z2-7]{55}$/.test(u.nkey)) invalidArgument('nkey', u.nkey, 'a public user nkey U…');
    const p = natsRolePermissions(u.role);
    out.push(`    # ${u.role}`);
    if (p === undefined) {
      out.push(`    { nkey: ${q(u.nkey)} }`);
      continue;
    }
    const deny = p.denyPublish === undefined ? '' : `, deny: ${list(p.denyPublish)}`;
    out.push(
      `    { nkey: ${q(u.nkey)}, permissions: {`,
      `        publish: { allow: ${list(p.publish)}${deny} }`,
      `        subscribe: { allow: ${list(p.subscribe)} }`,
      ...(p.allowResponses ? ['        allow_responses: true'] : []),
      '    } }',
    );
  }
  out.push('  ]', '}');
  return out;
}

/** `<authDir>/<role>.nk` */
export function seedPath(authDir: string, role: string): string {
  return join(authDir, `${checkNatsRole(role)}.nk`);
}

/** Create the folder (700) when missing; tighten it when it exists. */
async function ensureAuthDir(authDir: string): Promise<void> {
  await mkdir(authDir, { recursive: true, mode: 0o700 });
  await chmod(authDir, 0o700);
}

/**
 * Create `<authDir>/<role>.nk` with a new user seed when it is missing
 * (mode 600, written to a temp file and linked into place, so a reader never
 * sees half a seed and two concurrent callers keep one seed). Returns whether
 * it was created.
 */
export async function ensureSeed(authDir: string, role: string): Promise<boolean> {
  const file = seedPath(authDir, role);
  await ensureAuthDir(authDir);
  if (
    await stat(file).then(
      () => true,
      () => false,
    )
  )
    return false;
  const tmp = join(authDir, `.${role}.${randomBytes(6).toString('hex')}.tmp`);
  const seed = createUser().getSeed();
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(seed);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await rm(tmp, { force: true });
  }
}

/** The public key of a seed file's user (the seed itself never leaves this function). */
async function publicKeyOf(file: string): Promise<string> {
  let seed: Uint8Array;
  try {
    seed = new Uint8Array(await readFile(file));
  } catch (cause) {
    throw new QilinError(
      ErrorCodes.NATS_CREDENTIALS,
      `cannot read NATS seed file ${file}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`,
      { cause, details: { file } },
    );
  }
  try {
    const text = new TextDecoder().decode(seed).trim();
    if (!text.startsWith('SU')) throw new Error('not a user seed');
    return fromSeed(new TextEncoder().encode(text)).getPublicKey();
  } catch {
    throw new QilinError(
      ErrorCodes.NATS_CREDENTIALS,
      `NATS seed file ${file} does not hold an nkey user seed (SU…)`,
      { details: { file } },
    );
  } finally {
    seed.fill(0);
  }
}

/**
 * The users of every `<role>.nk` in `authDir` (files of unknown role names
 * are skipped), sorted by role. An empty list when the folder is missing.
 */
export async function readNatsUsers(authDir: string): Promise<NatsUser[]> {
  let names: string[];
  try {
    names = await readdir(authDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const users: NatsUser[] = [];
  for (const name of names.sort()) {
    if (!name.endsWith('.nk') || name.startsWith('.')) continue;
    const role = name.slice(0, -3);
    try {
      checkNatsRole(role);
    } catch {
      continue;
    }
    users.push({ role, nkey: await publicKeyOf(join(authDir, name)) });
  }
  return users;
}

/** Create the seeds of `roles` that are missing; return every user of the folder. */
export async function ensureNatsUsers(
  authDir: string,
  roles: readonly string[],
): Promise<NatsUser[]> {
  for (const role of roles) await ensureSeed(authDir, role);
  return readNatsUsers(authDir);
}
