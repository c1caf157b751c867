import { createHash } from 'node:crypto';
import { invalidArgument } from '../../kernel/errors.js';
import { TopicPattern } from './topic-pattern.js';

/**
 * What one API key may do. `read` entries combine: a key listed as
 * `k:read=signal/*,k:read=status` may read both.
 */
export interface Scope {
  /** True for `admin`: reads every topic and may use control operations. */
  readonly admin: boolean;
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

const KEY = /^[A-Za-z0-9_-]{8,}$/;
const KEY_ALLOWED = '8 or more characters of [A-Za-z0-9_-]';
const ENTRY_ALLOWED =
  'comma-separated key:scope pairs; scope read | admin | read=<topic pattern> (signal/*, signal/BTC-USD, status, *)';

class KeyScope implements Scope {
  readonly keyId: string;
  admin = false;
  private readonly readable: TopicPattern[] = [];

  constructor(keyId: string) {
    this.keyId = keyId;
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
    for (const p of this.readable) if (p.covers(wanted)) return true;
    return false;
  }
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/**
 * The configured API keys, looked up by the SHA-256 of the presented key.
 *
 * Why a hash map of digests rather than comparing keys: a `Map` lookup on the
 * raw key would compare strings with an early exit, and how long that takes
 * leaks how many leading characters matched. The digest of an attacker's
 * guess is unrelated to the digest of any real key, so the timing of the
 * lookup tells nothing about the keys. The table never stores a key in clear.
 */
export class ApiKeyTable {
  private readonly byDigest = new Map<string, Scope>();

  /** @internal Use {@link parseApiKeys}. */
  constructor(entries: ReadonlyMap<string, Scope>) {
    for (const [d, s] of entries) this.byDigest.set(d, s);
  }

  /** Number of distinct keys. */
  get size(): number {
    return this.byDigest.size;
  }

  /** The key's scope, or `undefined` for an unknown, empty or missing key. */
  authorize(key: string | undefined): Scope | undefined {
    if (key === undefined || key === '') return undefined;
    return this.byDigest.get(digest(key).toString('hex'));
  }
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
      scope = new KeyScope(d.slice(0, 12));
      scopes.set(d, scope);
    }
    if (admin) scope.admin = true;
    if (pattern !== undefined) scope.grant(pattern);
  }
  return new ApiKeyTable(scopes);
}
