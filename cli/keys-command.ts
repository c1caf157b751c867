import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { makeAuditEvent, type AuditAction } from '../kernel/audit-event.js';
import type { RedisApiKeys, NewApiKey } from '../adapters/redis/redis-api-keys.js';
import { API_KEY_ROLES, type ApiKeyRecord, type ApiKeyRole } from '../adapters/ws/api-keys.js';
import type { QilinConfig } from '../config/config.js';
import { ErrorCodes, QilinError } from '../kernel/errors.js';
import type { Logger } from '../kernel/logger.js';

const UNITS: Readonly<Record<string, number>> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/** `30d`, `10m`, `1h`, `45s`, `2w` → ms; throws QLN_CLI_USAGE naming the option. */
export function parseDuration(option: string, text: string): number {
  const m = /^(\d{1,9})([smhdw])$/.exec(text.trim());
  if (m === null) {
    throw new QilinError(
      ErrorCodes.CLI_USAGE,
      `invalid ${option}: ${JSON.stringify(text)} (allowed: a number and a unit s, m, h, d or w, e.g. 30d, 10m)`,
      { details: { option, value: text } },
    );
  }
  return Number(m[1]) * UNITS[m[2]!]!;
}

/**
 * `qilin keys create|list|revoke|rotate`: API keys as data in Redis
 * (adapters/redis/redis-api-keys.ts). Running kernels pick a change up
 * within a second. The key itself is printed once, by create and rotate;
 * nothing else ever shows or logs it. Redis and NATS are imported when an
 * action runs (cli/main.ts: start-up).
 */
export function registerKeysCommand(
  program: Command,
  context: () => { config: QilinConfig; log: Logger },
): void {
  const keys = program
    .command('keys')
    .description(
      'API keys of the WebSocket and HTTP API (stored hashed in Redis; docs/security.md)',
    );

  /**
   * A key change, audited (docs/security.md "Audit"): the audit stream is
   * checked first (unreachable: QLN_AUDIT_UNAVAILABLE, no change made), then
   * the change, then its event on `audit.<action>` (ok, or error with why).
   */
  const audited = async <T>(
    action: AuditAction,
    target: string,
    reason: string,
    fn: (store: RedisApiKeys) => Promise<T>,
    describe: (r: T) => { target: string; detail: Record<string, unknown> },
  ): Promise<T> => {
    const { config, log } = context();
    const [{ AuditClient }, { natsSeedFileFor }] = await Promise.all([
      import('../adapters/nats/audit-client.js'),
      import('../adapters/nats/nats-credentials.js'),
    ]);
    const client = await AuditClient.open({
      natsUrl: config.natsUrl,
      seedFile: natsSeedFileFor(config, 'operator'),
      log,
      outboxDir: join(config.stateDir, 'audit-outbox'),
      name: 'qilin-keys-cli',
    });
    const who = {
      actor: `cli:${userInfo().username}@${hostname()}`,
      source: `cli:${hostname()}`,
    };
    try {
      let r: T;
      try {
        r = await withStore(fn);
      } catch (err) {
        await client.emit(
          makeAuditEvent({
            action,
            ...who,
            target,
            outcome: 'error',
            reason: `${reason === '' ? '' : `${reason}: `}${(err as Error).message}`,
            detail: { code: (err as { code?: unknown }).code ?? 'unknown' },
          }),
        );
        throw err;
      }
      const d = describe(r);
      const sent = await client.emit(
        makeAuditEvent({
          action,
          ...who,
          target: d.target,
          outcome: 'ok',
          reason,
          detail: d.detail,
        }),
      );
      if (sent === 'queued') {
        process.stderr.write(
          `qilin: warning: the audit event of this change is queued in ${join(config.stateDir, 'audit-outbox')} (NATS did not acknowledge it); the next qilin keys command sends it\n`,
        );
      }
      return r;
    } finally {
      await client.close();
    }
  };

  const withStore = async <T>(fn: (store: RedisApiKeys) => Promise<T>): Promise<T> => {
    const { config, log } = context();
    const { RedisApiKeys } = await import('../adapters/redis/redis-api-keys.js');
    const store = new RedisApiKeys({ url: config.redisUrl, prefix: config.apiKeyPrefix, log });
    try {
      await store.connect();
      return await fn(store);
    } finally {
      await store.close();
    }
  };

  keys
    .command('create')
    .description('create a key and print it (once: it is stored only as a hash)')
    .requiredOption('--role <role>', `role: ${API_KEY_ROLES.join(' | ')}`)
    .option(
      '--read <pattern...>',
      'topic patterns a viewer or trader key may read (signal/*, signal/BTC-USD, status, *); default *',
    )
    .option('--account <account>', 'the account of a trader key (its fills)')
    .option('--label <text>', 'what the key is for (shown by list)', '')
    .option('--expires <duration>', 'expire after this long: 30d, 12h, 10m')
    .option('--reason <text>', 'why (recorded in the audit log)', '')
    .option('--json', 'print JSON')
    .action(
      async (o: {
        role: string;
        read?: string[];
        account?: string;
        label: string;
        expires?: string;
        reason: string;
        json?: boolean;
      }) => {
        if (!(API_KEY_ROLES as readonly string[]).includes(o.role)) {
          throw new QilinError(
            ErrorCodes.CLI_USAGE,
            `invalid --role: ${JSON.stringify(o.role)} (allowed: ${API_KEY_ROLES.join(', ')})`,
          );
        }
        const spec: NewApiKey = {
          role: o.role as ApiKeyRole,
          label: o.label,
          ...(o.read === undefined ? {} : { patterns: o.read.flatMap((p) => p.split(',')) }),
          ...(o.account === undefined ? {} : { account: o.account }),
          ...(o.expires === undefined
            ? {}
            : { expires: Date.now() + parseDuration('--expires', o.expires) }),
        };
        const { key, record } = await audited(
          'key.create',
          'key:new',
          o.reason,
          (s) => s.create(spec),
          ({ record: r }) => ({ target: `key:${r.id}`, detail: auditDetail(r) }),
        );
        printCreated(key, record, o.json === true);
      },
    );

  keys
    .command('list')
    .description(
      'list the stored keys: id, role, grants, label, created, expires, state (never the key)',
    )
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const records = await withStore((s) => s.list());
      const { keyState } = await import('../adapters/redis/redis-api-keys.js');
      const now = Date.now();
      if (o.json === true) {
        const rows = records.map((r) => ({ ...publicRecord(r), state: keyState(r, now) }));
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      const rows = records.map((r) => [
        r.id,
        r.role,
        r.role === 'admin' ? '*' : r.patterns.join(','),
        r.account ?? '',
        r.label,
        iso(r.created),
        r.expires === undefined ? 'never' : iso(r.expires),
        keyState(r, now),
      ]);
      printTable(['id', 'role', 'read', 'account', 'label', 'created', 'expires', 'state'], rows);
    });

  keys
    .command('revoke <id>')
    .description('revoke a key now: running kernels close its WebSockets (4001) within a second')
    .option('--reason <text>', 'why (recorded in the audit log)', '')
    .action(async (id: string, o: { reason: string }) => {
      const r = await audited(
        'key.revoke',
        `key:${id}`,
        o.reason,
        (s) => s.revoke(id),
        (rec) => ({ target: `key:${rec.id}`, detail: auditDetail(rec) }),
      );
      process.stdout.write(`revoked ${r.id} (${r.role}${r.label === '' ? '' : `, ${r.label}`})\n`);
    });

  keys
    .command('rotate <id>')
    .description('a new key with the same grants; the old one keeps working for the grace period')
    .option('--grace <duration>', 'how long the old key keeps working: 10m, 1h, 0s', '10m')
    .option('--reason <text>', 'why (recorded in the audit log)', '')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { grace: string; reason: string; json?: boolean }) => {
      const graceMs = parseDuration('--grace', o.grace);
      const { key, record, old } = await audited(
        'key.rotate',
        `key:${id}`,
        o.reason,
        (s) => s.rotate(id, graceMs),
        ({ record: r, old: prev }) => ({
          target: `key:${prev.id}`,
          detail: { ...auditDetail(r), old: prev.id, graceMs },
        }),
      );
      printCreated(key, record, o.json === true, old);
    });
}

function printCreated(key: string, r: ApiKeyRecord, json: boolean, old?: ApiKeyRecord): void {
  if (json) {
    const out: Record<string, unknown> = { key, ...publicRecord(r) };
    if (old !== undefined) out['old'] = publicRecord(old);
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  const lines = [
    `key:     ${key}`,
    `id:      ${r.id}`,
    `role:    ${r.role}${r.account === undefined ? '' : ` (account ${r.account})`}`,
    `read:    ${r.patterns.join(', ')}`,
    `expires: ${r.expires === undefined ? 'never' : iso(r.expires)}`,
  ];
  if (old !== undefined) {
    lines.push(`old key ${old.id} keeps working until ${iso(old.expires ?? Date.now())}`);
  }
  lines.push('Store the key now: it is shown only this once (only its SHA-256 is kept).');
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** What the audit log keeps of a key: its id and grants, never the key or its digest. */
function auditDetail(r: ApiKeyRecord): Record<string, unknown> {
  return {
    keyId: r.id,
    role: r.role,
    label: r.label,
    patterns: r.patterns,
    ...(r.account === undefined ? {} : { account: r.account }),
    ...(r.expires === undefined ? {} : { expires: r.expires }),
  };
}

/** A record without its digest (the digest is not secret, but no one needs it). */
function publicRecord(r: ApiKeyRecord): Record<string, unknown> {
  const { digest: _digest, ...rest } = r;
  return Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function printTable(head: string[], rows: string[][]): void {
  if (rows.length === 0) {
    process.stdout.write('no stored keys (qilin keys create --role viewer …)\n');
    return;
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${[line(head), ...rows.map(line)].join('\n')}\n`);
}
