/**
 * WebSocket topics and the patterns clients subscribe with.
 *
 * ```
 *  topic (what the server publishes)     pattern (what a client asks for)
 *  ─────────────────────────────────     ─────────────────────────────────
 *  signal/<sym>                          signal/<sym>      exactly that topic
 *  prediction/<sym>                      prediction/*      every prediction topic
 *  quality/<sym>                         quality/*, signal/*
 *  status                                status            exactly `status`
 *  job/<id>  (jobs, admins only)         job/<id>, job/*
 *                                        *                 every topic but job/…
 * ```
 *
 * Job topics (jobs/README.md) are read by admin keys only, so `*` does not
 * include them: an admin asks for `job/*` or `job/<id>` by name.
 *
 * `<sym>` is a NATS token (`[A-Za-z0-9_-]+`, PROTOCOL.md), capped at
 * {@link MAX_SYMBOL_LENGTH} characters so a client cannot make the server hold
 * arbitrarily long topic strings. Nothing else is a pattern: no `signal/BTC*`,
 * no `*\/BTC-USD`, no MQTT `#`.
 */

/** The kinds of per-symbol topic. `status` is a topic of its own without a symbol. */
export const TOPIC_KINDS = ['signal', 'prediction', 'quality', 'job'] as const;

/** The kind whose topics only admin keys read, and that `*` does not include. */
export const ADMIN_TOPIC_KIND = 'job';

/** A per-symbol topic kind. */
export type TopicKind = (typeof TOPIC_KINDS)[number];

/** Longest symbol accepted in a topic. */
export const MAX_SYMBOL_LENGTH = 64;

/** The topic without a symbol. */
export const STATUS_TOPIC = 'status';

/** The pattern that matches every topic. */
export const ALL_TOPICS = '*';

const SYMBOL = /^[A-Za-z0-9_-]+$/;

function isKind(s: string): s is TopicKind {
  return s === 'signal' || s === 'prediction' || s === 'quality' || s === 'job';
}

function isSymbol(s: string): boolean {
  return s.length > 0 && s.length <= MAX_SYMBOL_LENGTH && SYMBOL.test(s);
}

/**
 * A validated subscription pattern. Construct with {@link TopicPattern.parse}
 * (returns `undefined` for a bad pattern, so the caller decides how to report
 * it: the server answers with a `bad_topic` error frame, the key parser throws).
 *
 * | text             | kind        | sym         |
 * |------------------|-------------|-------------|
 * | `*`              | `'*'`       | `undefined` |
 * | `status`         | `'status'`  | `undefined` |
 * | `signal/*`       | `'signal'`  | `'*'`       |
 * | `signal/BTC-USD` | `'signal'`  | `'BTC-USD'` |
 */
export class TopicPattern {
  private constructor(
    /** The pattern as the client wrote it (already canonical: there is one spelling per pattern). */
    readonly text: string,
    /** `'*'` for everything, `'status'`, or the per-symbol kind. */
    readonly kind: TopicKind | 'status' | '*',
    /** The symbol, `'*'` for every symbol of the kind, `undefined` for `*` and `status`. */
    readonly sym: string | undefined,
  ) {}

  /** Parse a pattern; `undefined` when `text` is not one of the accepted forms. */
  static parse(text: unknown): TopicPattern | undefined {
    if (typeof text !== 'string') return undefined;
    if (text === ALL_TOPICS) return new TopicPattern(text, '*', undefined);
    if (text === STATUS_TOPIC) return new TopicPattern(text, 'status', undefined);
    const slash = text.indexOf('/');
    if (slash < 0) return undefined;
    const kind = text.slice(0, slash);
    const sym = text.slice(slash + 1);
    if (!isKind(kind)) return undefined;
    if (sym !== '*' && !isSymbol(sym)) return undefined;
    return new TopicPattern(text, kind, sym);
  }

  /**
   * True when `topic` is a topic the server can publish on (`<kind>/<sym>` or
   * `status`), as opposed to a wildcard pattern.
   */
  static isTopic(topic: string): boolean {
    if (topic === STATUS_TOPIC) return true;
    const slash = topic.indexOf('/');
    return slash > 0 && isKind(topic.slice(0, slash)) && isSymbol(topic.slice(slash + 1));
  }

  /** The kind of a valid topic (`'status'` for the status topic). Assumes {@link isTopic}. */
  static kindOf(topic: string): TopicKind | 'status' {
    if (topic === STATUS_TOPIC) return 'status';
    const kind = topic.slice(0, topic.indexOf('/'));
    return isKind(kind) ? kind : 'status';
  }

  /** The wildcard pattern text that covers every topic of `kind` (`signal/*`). */
  static wildcardOf(kind: TopicKind): string {
    return `${kind}/*`;
  }

  /** True for `*` and `<kind>/*`. */
  get isWildcard(): boolean {
    return this.kind === '*' || this.sym === '*';
  }

  /** True when this pattern matches the (valid) topic. */
  matches(topic: string): boolean {
    if (this.kind === '*') return !topic.startsWith('job/');
    if (this.sym !== '*') return topic === this.text;
    // `<kind>/*`: same kind prefix followed by a slash.
    return (
      topic.length > this.kind.length + 1 &&
      topic.charCodeAt(this.kind.length) === 0x2f &&
      topic.startsWith(this.kind)
    );
  }

  /** True when every topic this pattern's `other` matches is matched by this one. */
  covers(other: TopicPattern): boolean {
    if (this.kind === '*') return other.kind !== ADMIN_TOPIC_KIND;
    if (other.kind === '*') return false;
    if (this.sym === '*') return other.kind === this.kind;
    return other.text === this.text;
  }
}
