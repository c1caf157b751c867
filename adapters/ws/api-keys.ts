import { createHash, timingSafeEqual } from 'node:crypto';
import { invalidArgument } from '../../kernel/errors.js';
import { ADMIN_TOPIC_KIND, TopicPattern } from './topic-pattern.js';

/**
 * What one API key may do. `read` entries combine: a key listed as
 * `k:read=signal/*,k:read=status` may read both.
 */
export interface Scope {
  /** True for `admin`: reads every topic and may use control operations. */
  readonly admin: boolean;
  /** The key's role: `viewer` (reads its patterns), `trader` (viewer + fills of `account`), `admin`. */
  readonly role: ApiKeyRole;
  /** The account of a `trader` key; undefined for the others. */
  readonly account: string | undefined;
  /** Label given at creation (stored keys); '' for config keys. */
  readonly label: string;
  /** When the key stops working, ms since the epoch; undefined: never. */
  readonly expiresAt: number | undefined;
  /** Where the key comes from: `config` (QILIN_API_KEYS) or `store` (`qilin keys`). */
  readonly source: 'config' | 'store';
  /** The readable patterns as configured (`['*']` for `read` and `admin`). */
  readonly patterns: readonly string[];
  /**
   * Short, non-secret identifier of the key for logs: the first 12 hex
   * digits of its SHA-256. Never log the key itself.
   */
  readonly keyId: string;
  /**
   * True when the key may read `topicOrPattern`: an exact topic, or a whole
   * pattern (`signal/*` is readable only if every signal topic is).
   */
  canRead(topicOrPattern: string | TopicPattern): boolean;
}

/** Roles of API keys (docs/security.md). */
export const API_KEY_ROLES = ['viewer', 'trader', 'admin'] as const;
export type ApiKeyRole = (typeof API_KEY_ROLES)[number];

/**
 * One stored key as kept in Redis by `qilin keys` (adapters/redis/redis-api-keys.ts):
 * never the key, only its SHA-256.
 */
export interface ApiKeyRecord {
  /** keyId: the first 12 hex digits of the digest; what `qilin keys` and logs show. */
  readonly id: string;
  /** SHA-256 of the key, hex. */
  readonly digest: string;
  readonly role: ApiKeyRole;
  /** Readable topic patterns (`['*']` for admin). */
  readonly patterns: readonly string[];
  /** The account of a trader key. */
  readonly account?: string | undefined;
  readonly label: string;
  /** Created, ms since the epoch. */
  readonly created: number;
  /** Expiry, ms since the epoch (rotation sets it to the end of the grace period). */
  readonly expires?: number | undefined;
  /** Revoked at, ms since the epoch: the key no longer works. */
  readonly revokedAt?: number | undefined;
  /** Set by rotation: the old key works until then. */
  readonly graceUntil?: number | undefined;
  /** Set by rotation on the old key: the id of the key that replaced it. */
  readonly rotatedTo?: string | undefined;
}

/** What the table says of a key a connection was opened with. */
export type KeyValidity = 'valid' | 'revoked' | 'expired';

const KEY = /^[A-Za-z0-9_-]{8,1024}$/;
const KEY_ALLOWED = '8 to 1024 characters of [A-Za-z0-9_-]';
const ENTRY_ALLOWED =
  'comma-separated key:scope pairs; scope read | admin | read=<topic pattern> (signal/*, signal/BTC-USD, status, *)';

class KeyScope implements Scope {
  readonly keyId: string;
  admin = false;
  role: ApiKeyRole = 'viewer';
  account: string | undefined = undefined;
  label = '';
  expiresAt: number | undefined = undefined;
  source: 'config' | 'store' = 'config';
  /** SHA-256 of the key, hex: how the table finds the key again (validity). */
  readonly digestHex: string;
  private readonly readable: TopicPattern[] = [];

  constructor(digestHex: string) {
    this.digestHex = digestHex;
    this.keyId = digestHex.slice(0, 12);
  }

  get patterns(): readonly string[] {
    return this.readable.map((p) => p.text);
  }

  grant(pattern: TopicPattern): void {
    // Keep the list minimal: a later `read` (= `*`) subsumes earlier entries.
    if (this.readable.some((p) => p.covers(pattern))) return;
    for (let i = this.readable.length - 1; i >= 0; i--) {
      if (pattern.covers(this.readable[i]!)) this.readable.splice(i, 1);
    }
    this.readable.push(pattern);
  }

  canRead(topicOrPattern: string | TopicPattern): boolean {
    const wanted =
      typeof topicOrPattern === 'string' ? TopicPattern.parse(topicOrPattern) : topicOrPattern;
    if (wanted === undefined) return false;
    // Job topics: admin keys only (`*` does not cover them; TopicPattern).
    if (wanted.kind === ADMIN_TOPIC_KIND) return this.admin;
    for (const p of this.readable) if (p.covers(wanted)) return true;
    return false;
  }
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/**
 * The API keys the kernel accepts, looked up by the SHA-256 of the presented
 * key: the configured ones (QILIN_API_KEYS, fixed) merged with the stored ones
 * (`qilin keys`, replaced whole by {@link ApiKeyTable.setStored} whenever the
 * store changes).
 *
 * Why a hash map of digests rather than comparing keys: a `Map` lookup on the
 * raw key would compare strings with an early exit, and how long that takes
 * leaks how many leading characters matched. The digest of an attacker's
 * guess is unrelated to the digest of any real key, so the timing of the
 * lookup tells nothing about the keys; the final check of the digest found is
 * constant-time (`timingSafeEqual`) all the same. The table never stores a
 * key in clear.
 */
export class ApiKeyTable {
  private readonly fixed = new Map<string, Scope>();
  private stored = new Map<string, Scope>();
  private readonly listeners = new Set<() => void>();
  private version = 0;

  /** @internal Use {@link parseApiKeys}. */
  constructor(entries: ReadonlyMap<string, Scope>) {
    for (const [d, s] of entries) this.fixed.set(d, s);
  }

  /** Number of distinct keys. */
  get size(): number {
    let n = this.fixed.size;
    for (const d of this.stored.keys()) if (!this.fixed.has(d)) n++;
    return n;
  }

  /** Bumped by every {@link setStored}: what changed can be re-checked. */
  get generation(): number {
    return this.version;
  }

  /**
   * The key's scope, or `undefined` for an unknown, empty, missing, revoked
   * or expired key.
   */
  authorize(key: string | undefined, now = Date.now()): Scope | undefined {
    if (key === undefined || key === '' || key.length > MAX_KEY_LENGTH) return undefined;
    const d = digest(key);
    const hex = d.toString('hex');
    const scope = this.fixed.get(hex) ?? this.stored.get(hex);
    if (scope === undefined) return undefined;
    // The map hit already implies equality; compare in constant time anyway.
    if (!timingSafeEqual(Buffer.from(hex, 'hex'), d)) return undefined;
    if (scope.expiresAt !== undefined && scope.expiresAt <= now) return undefined;
    return scope;
  }

  /**
   * Whether a scope handed out by {@link authorize} is still good: `revoked`
   * when its key is no longer in the table (revoked, or deleted), `expired`
   * when its expiry passed.
   */
  validity(scope: Scope, now = Date.now()): KeyValidity {
    const d = scope instanceof KeyScope ? scope.digestHex : undefined;
    const current = d === undefined ? undefined : (this.fixed.get(d) ?? this.stored.get(d));
    if (current === undefined) return 'revoked';
    if (current.expiresAt !== undefined && current.expiresAt <= now) return 'expired';
    if (scope.expiresAt !== undefined && scope.expiresAt <= now) return 'expired';
    return 'valid';
  }

  /**
   * Replace the stored keys (the configured ones stay): revoked records are
   * left out, so their keys stop working at once. Listeners run after.
   */
  setStored(records: readonly ApiKeyRecord[]): void {
    const next = new Map<string, Scope>();
    for (const r of records) {
      if (r.revokedAt !== undefined) continue;
      const scope = scopeOfRecord(r);
      if (scope !== undefined) next.set(r.digest, scope);
    }
    this.stored = next;
    this.version++;
    for (const l of this.listeners) l();
  }

  /** Call `listener` after every {@link setStored}; returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** Longer presented keys are refused before hashing (generated keys have 35 characters). */
const MAX_KEY_LENGTH = 1024;

/** The scope of a stored record; undefined for a record that does not parse (logged by the store). */
export function scopeOfRecord(r: ApiKeyRecord): Scope | undefined {
  if (!/^[0-9a-f]{64}$/.test(r.digest) || !(API_KEY_ROLES as readonly string[]).includes(r.role)) {
    return undefined;
  }
  const scope = new KeyScope(r.digest);
  scope.role = r.role;
  scope.source = 'store';
  scope.label = r.label;
  scope.expiresAt = r.expires;
  if (r.role === 'admin') {
    scope.admin = true;
    scope.grant(TopicPattern.parse('*')!);
  } else {
    for (const text of r.patterns) {
      const p = TopicPattern.parse(text);
      if (p === undefined) return undefined;
      scope.grant(p);
    }
    if (r.role === 'trader') scope.account = r.account;
  }
  return scope;
}

/** SHA-256 of a key, hex: what the store keeps. */
export function keyDigest(key: string): string {
  return digest(key).toString('hex');
}

/** The keyId of a key: the first 12 hex digits of its SHA-256 (safe to log and show). */
export function keyIdOf(key: string): string {
  return keyDigest(key).slice(0, 12);
}

/**
 * Parse `QILIN_API_KEYS`: comma-separated `key:scope` entries where scope is
 *
 * - `read`             every topic
 * - `read=<pattern>`   only topics the pattern matches (`signal/*`, `signal/BTC-USD`, `status`, `*`);
 *                      several `read=` entries for one key combine
 * - `admin`            every topic, plus control operations
 *
 * An empty string gives an empty table (every connection is refused). A bad
 * entry throws QLN_INVALID_ARGUMENT naming the entry (with the key masked).
 */
export function parseApiKeys(s: string): ApiKeyTable {
  const scopes = new Map<string, KeyScope>();
  if (s.trim() === '') return new ApiKeyTable(scopes);
  const entries = s.split(',');
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!.trim();
    const where = `QILIN_API_KEYS entry ${i + 1}`;
    const colon = entry.indexOf(':');
    const key = colon < 0 ? entry : entry.slice(0, colon);
    // The message names the entry but masks the key: config errors end up in logs.
    const shown = `${key.length > 4 ? `${key.slice(0, 2)}…` : '…'}${colon < 0 ? '' : entry.slice(colon)}`;
    if (colon < 0) invalidArgument(where, shown, ENTRY_ALLOWED);
    if (!KEY.test(key)) invalidArgument(`${where} key`, shown, KEY_ALLOWED);
    const scopeText = entry.slice(colon + 1);
    let pattern: TopicPattern | undefined;
    let admin = false;
    if (scopeText === 'read') pattern = TopicPattern.parse('*');
    else if (scopeText === 'admin') {
      admin = true;
      pattern = TopicPattern.parse('*');
    } else if (scopeText.startsWith('read=')) {
      pattern = TopicPattern.parse(scopeText.slice('read='.length));
      if (pattern === undefined) invalidArgument(`${where} scope`, shown, ENTRY_ALLOWED);
    } else invalidArgument(`${where} scope`, shown, ENTRY_ALLOWED);
    const d = digest(key).toString('hex');
    let scope = scopes.get(d);
    if (scope === undefined) {
      scope = new KeyScope(d);
      scopes.set(d, scope);
    }
    if (admin) {
      scope.admin = true;
      scope.role = 'admin';
    }
    if (pattern !== undefined) scope.grant(pattern);
  }
  return new ApiKeyTable(scopes);
}
