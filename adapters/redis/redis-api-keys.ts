import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { closeRedis, failFastRedis } from './redis-client.js';
import {
  API_KEY_ROLES,
  keyDigest,
  type ApiKeyRecord,
  type ApiKeyRole,
  type ApiKeyTable,
} from '../ws/api-keys.js';
import { TopicPattern } from '../ws/topic-pattern.js';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';
import type { Logger } from '../../kernel/logger.js';

/** Default Redis key prefix of the stored API keys (config `apiKeyPrefix`). */
export const API_KEY_PREFIX = 'qilin:apikey:';

/** Options of {@link RedisApiKeys}. */
export interface RedisApiKeysOptions {
  /** `redis://host:port` (config `redisUrl`). */
  url: string;
  /** Key prefix (config `apiKeyPrefix`); tests use one of their own. */
  prefix?: string;
  log?: Logger;
  /** Poll period of the change counter, ms (the fallback of pub/sub). Default 1000. */
  pollMs?: number;
}

/** What `create` is given. */
export interface NewApiKey {
  role: ApiKeyRole;
  /** Readable patterns (viewer, trader); ignored for admin. Default `['*']`. */
  patterns?: readonly string[];
  /** Required for a trader key. */
  account?: string;
  label?: string;
  /** Expiry, ms since the epoch. */
  expires?: number;
}

/** `list` rows: a record and its state now. */
export type ApiKeyState = 'active' | 'grace' | 'expired' | 'revoked';

/**
 * The API keys as data (`qilin keys`), in Redis:
 *
 * ```
 *  <prefix><id>       hash: digest role patterns account label created expires revokedAt graceUntil rotatedTo
 *  <prefix>ids        set of ids
 *  <prefix>version    counter, INCR on every change
 *  <prefix>changed    pub/sub channel, a message on every change
 * ```
 * The id is the keyId (first 12 hex digits of the key's SHA-256); the key
 * itself is never stored, only shown once by `create` / `rotate`.
 *
 * In a kernel, {@link watch} keeps an {@link ApiKeyTable} current: it
 * reloads on a `changed` message and, should a message be lost (a
 * reconnect), when the version counter polled every second moved. So a
 * change reaches every kernel within about a second. Redis away: the table
 * keeps the last keys it loaded (and the configured ones), and ioredis
 * reconnects by itself.
 */
export class RedisApiKeys {
  readonly prefix: string;
  private readonly redis: Redis;
  private sub: Redis | undefined;
  private readonly log: Logger | undefined;
  private readonly pollMs: number;
  private timer: NodeJS.Timeout | undefined;
  private seenVersion: string | null | undefined;
  private loading: Promise<void> | undefined;
  private again = false;
  private failedOnce = false;
  private closing: Promise<void> | undefined;

  constructor(opts: RedisApiKeysOptions) {
    this.prefix = opts.prefix ?? API_KEY_PREFIX;
    this.log = opts.log;
    this.pollMs = opts.pollMs ?? 1000;
    this.redis = failFastRedis(opts.url);
  }

  /** Connect; rejects with QLN_API_KEY_STORE naming the address when Redis does not answer. */
  async connect(): Promise<void> {
    if (this.redis.status === 'ready') return;
    try {
      await this.redis.connect();
    } catch (cause) {
      throw new QilinError(
        ErrorCodes.API_KEY_STORE,
        `cannot connect to Redis at ${this.redis.options.host}:${this.redis.options.port} (API keys): ${(cause as Error).message}`,
        { cause },
      );
    }
  }

  /**
   * Create a key; returns the key (shown once, never stored) and its record.
   * Throws QLN_INVALID_ARGUMENT for a bad role, pattern, account or expiry.
   */
  async create(k: NewApiKey): Promise<{ key: string; record: ApiKeyRecord }> {
    const record0 = checkNewKey(k);
    const key = `qk_${randomBytes(24).toString('base64url')}`;
    const digest = keyDigest(key);
    const record: ApiKeyRecord = { ...record0, id: digest.slice(0, 12), digest };
    await this.redis
      .multi()
      .hset(this.prefix + record.id, encode(record))
      .sadd(this.prefix + 'ids', record.id)
      .exec();
    await this.changed();
    return { key, record };
  }

  /** Every stored key, oldest first (revoked and expired ones too). */
  async list(): Promise<ApiKeyRecord[]> {
    const ids = await this.redis.smembers(this.prefix + 'ids');
    if (ids.length === 0) return [];
    const p = this.redis.pipeline();
    for (const id of ids) p.hgetall(this.prefix + id);
    const res = (await p.exec()) ?? [];
    const out: ApiKeyRecord[] = [];
    for (let i = 0; i < ids.length; i++) {
      const [err, h] = res[i] ?? [null, {}];
      if (err !== null) throw err;
      const r = decode(ids[i]!, h as Record<string, string>);
      if (r === undefined) {
        this.log?.warn({ keyId: ids[i] }, 'stored API key record is unreadable; ignored');
      } else out.push(r);
    }
    return out.sort((a, b) => a.created - b.created || a.id.localeCompare(b.id));
  }

  /** One record; throws QLN_API_KEY_STORE naming the id when there is none. */
  async get(id: string): Promise<ApiKeyRecord> {
    const h = await this.redis.hgetall(this.prefix + checkId(id));
    const r = decode(id, h);
    if (r === undefined) {
      throw new QilinError(
        ErrorCodes.API_KEY_STORE,
        `no API key with id ${id} (see qilin keys list)`,
        {
          details: { keyId: id },
        },
      );
    }
    return r;
  }

  /** Revoke a key now: every kernel closes its sockets (4001) within a second. */
  async revoke(id: string, now = Date.now()): Promise<ApiKeyRecord> {
    const r = await this.get(id);
    if (r.revokedAt === undefined) {
      await this.redis.hset(this.prefix + id, 'revokedAt', String(now));
      await this.changed();
    }
    return { ...r, revokedAt: r.revokedAt ?? now };
  }

  /**
   * A new key with the same grants; the old one keeps working for `graceMs`
   * (its expiry becomes now + grace, or stays if sooner). Returns the new key
   * (shown once) and both records.
   */
  async rotate(
    id: string,
    graceMs: number,
    now = Date.now(),
  ): Promise<{ key: string; record: ApiKeyRecord; old: ApiKeyRecord }> {
    if (!Number.isInteger(graceMs) || graceMs < 0) {
      throw new QilinError(
        ErrorCodes.INVALID_ARGUMENT,
        `invalid grace: ${graceMs} (allowed: a duration of 0 or more, e.g. 10m)`,
      );
    }
    const old = await this.get(id);
    if (old.revokedAt !== undefined) {
      throw new QilinError(
        ErrorCodes.API_KEY_STORE,
        `API key ${id} is revoked: nothing to rotate`,
        {
          details: { keyId: id },
        },
      );
    }
    const { key, record } = await this.create({
      role: old.role,
      patterns: old.patterns,
      ...(old.account === undefined ? {} : { account: old.account }),
      label: old.label,
      ...(old.expires === undefined ? {} : { expires: old.expires }),
    });
    const graceUntil = now + graceMs;
    const expires = old.expires === undefined ? graceUntil : Math.min(old.expires, graceUntil);
    await this.redis.hset(this.prefix + id, {
      expires: String(expires),
      graceUntil: String(graceUntil),
      rotatedTo: record.id,
    });
    await this.changed();
    return { key, record, old: { ...old, expires, graceUntil, rotatedTo: record.id } };
  }

  /**
   * Keep `table`'s stored keys current (load now, then on every change, at
   * most a poll period late). Resolves after the first load; a Redis that is
   * away is logged, not thrown: the configured keys work meanwhile.
   */
  async watch(table: ApiKeyTable): Promise<void> {
    const reload = (): Promise<void> => this.reload(table);
    try {
      await this.connect();
      const sub = this.redis.duplicate({ enableOfflineQueue: true, lazyConnect: false });
      sub.on('error', () => undefined);
      sub.on('message', () => void reload());
      // After a reconnect, messages sent meanwhile are lost: reload.
      sub.on('ready', () => void reload());
      await sub.subscribe(this.prefix + 'changed');
      this.sub = sub;
    } catch (err) {
      this.log?.warn({ err }, 'API key store unavailable: configured keys only until it is back');
    }
    await reload();
    this.timer = setInterval(() => void this.poll(table), this.pollMs);
    this.timer.unref();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.timer !== undefined) clearInterval(this.timer);
      this.timer = undefined;
      await this.loading?.catch(() => undefined);
      // The subscriber queues commands while away: QUIT could wait for a
      // reconnect. Nothing to flush on it, so just drop it.
      this.sub?.disconnect();
      await closeRedis(this.redis);
    })();
    return this.closing;
  }

  private async poll(table: ApiKeyTable): Promise<void> {
    if (this.closing !== undefined) return;
    try {
      if (this.redis.status === 'wait') await this.connect();
      const v = await this.redis.get(this.prefix + 'version');
      if (v !== this.seenVersion) await this.reload(table);
    } catch {
      // Redis away: logged once by reload; the table keeps its keys.
    }
  }

  /** Load every record into the table; concurrent calls coalesce (one more load after). */
  private reload(table: ApiKeyTable): Promise<void> {
    if (this.loading !== undefined) {
      this.again = true;
      return this.loading;
    }
    this.loading = (async () => {
      do {
        this.again = false;
        try {
          const v = await this.redis.get(this.prefix + 'version');
          const records = await this.list();
          this.seenVersion = v;
          table.setStored(records);
          if (this.failedOnce) this.log?.info({ keys: records.length }, 'API key store back');
          this.failedOnce = false;
        } catch (err) {
          if (!this.failedOnce) {
            this.log?.warn({ err }, 'API keys not reloaded (Redis away): keeping the last ones');
          }
          this.failedOnce = true;
          return;
        }
      } while (this.again && this.closing === undefined);
    })().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async changed(): Promise<void> {
    await this.redis.incr(this.prefix + 'version');
    await this.redis.publish(this.prefix + 'changed', '1');
  }
}

/** The state of a record at `now`. */
export function keyState(r: ApiKeyRecord, now = Date.now()): ApiKeyState {
  if (r.revokedAt !== undefined) return 'revoked';
  if (r.expires !== undefined && r.expires <= now) return 'expired';
  if (r.graceUntil !== undefined) return 'grace';
  return 'active';
}

const ID = /^[0-9a-f]{12}$/;

function checkId(id: string): string {
  if (!ID.test(id)) {
    throw new QilinError(
      ErrorCodes.INVALID_ARGUMENT,
      `invalid key id: ${JSON.stringify(id)} (allowed: 12 hex digits, as qilin keys list shows)`,
      { details: { name: 'id', allowed: '12 hex digits' } },
    );
  }
  return id;
}

function checkNewKey(k: NewApiKey): Omit<ApiKeyRecord, 'id' | 'digest'> {
  const bad = (name: string, value: unknown, allowed: string): never => {
    throw new QilinError(
      ErrorCodes.INVALID_ARGUMENT,
      `invalid ${name}: ${JSON.stringify(value)} (allowed: ${allowed})`,
      { details: { name, value, allowed } },
    );
  };
  if (!(API_KEY_ROLES as readonly string[]).includes(k.role)) {
    bad('role', k.role, API_KEY_ROLES.join(' | '));
  }
  const patterns = k.role === 'admin' ? ['*'] : [...(k.patterns ?? ['*'])];
  if (patterns.length === 0) bad('read', patterns, 'one or more topic patterns');
  for (const p of patterns) {
    if (TopicPattern.parse(p) === undefined) {
      bad('read', p, 'a topic pattern: signal/*, signal/BTC-USD, status, *');
    }
  }
  if (
    k.role === 'trader' &&
    (k.account === undefined || !/^[A-Za-z0-9_-]{1,64}$/.test(k.account))
  ) {
    bad('account', k.account, 'a trader key needs an account, [A-Za-z0-9_-]{1,64}');
  }
  if (k.role !== 'trader' && k.account !== undefined) {
    bad('account', k.account, 'only trader keys have an account');
  }
  const label = k.label ?? '';
  if (label.length > 200 || !/^[^\p{Cc}]*$/u.test(label)) {
    bad('label', label, 'up to 200 printable characters');
  }
  const created = Date.now();
  if (k.expires !== undefined && (!Number.isFinite(k.expires) || k.expires <= created)) {
    bad('expires', k.expires, 'a time in the future');
  }
  return {
    role: k.role,
    patterns,
    ...(k.role === 'trader' ? { account: k.account } : {}),
    label,
    created,
    ...(k.expires === undefined ? {} : { expires: k.expires }),
  };
}

function encode(r: ApiKeyRecord): Record<string, string> {
  const h: Record<string, string> = {
    digest: r.digest,
    role: r.role,
    patterns: JSON.stringify(r.patterns),
    label: r.label,
    created: String(r.created),
  };
  if (r.account !== undefined) h['account'] = r.account;
  if (r.expires !== undefined) h['expires'] = String(r.expires);
  if (r.revokedAt !== undefined) h['revokedAt'] = String(r.revokedAt);
  if (r.graceUntil !== undefined) h['graceUntil'] = String(r.graceUntil);
  if (r.rotatedTo !== undefined) h['rotatedTo'] = r.rotatedTo;
  return h;
}

function decode(id: string, h: Record<string, string>): ApiKeyRecord | undefined {
  const digest = h['digest'];
  const role = h['role'];
  if (digest === undefined || !/^[0-9a-f]{64}$/.test(digest) || digest.slice(0, 12) !== id) {
    return undefined;
  }
  if (role === undefined || !(API_KEY_ROLES as readonly string[]).includes(role)) return undefined;
  let patterns: unknown;
  try {
    patterns = JSON.parse(h['patterns'] ?? '[]');
  } catch {
    return undefined;
  }
  if (!Array.isArray(patterns) || !patterns.every((p) => typeof p === 'string')) return undefined;
  const num = (k: string): number | undefined => {
    const v = h[k];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  };
  return {
    id,
    digest,
    role: role as ApiKeyRole,
    patterns: patterns,
    account: h['account'],
    label: h['label'] ?? '',
    created: num('created') ?? 0,
    expires: num('expires'),
    revokedAt: num('revokedAt'),
    graceUntil: num('graceUntil'),
    rotatedTo: h['rotatedTo'],
  };
}
