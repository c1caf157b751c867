import { randomBytes } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import uws from 'uWebSockets.js';
import type {
  HttpRequest,
  HttpResponse,
  TemplatedApp,
  WebSocket,
  us_listen_socket,
  us_socket_context_t,
} from 'uWebSockets.js';
import { ErrorCodes, QilinError, invalidArgument } from '../../kernel/errors.js';
import type { Logger } from '../../kernel/logger.js';
import type { ApiKeyTable, Scope } from './api-keys.js';
import { FrameHistory } from './frame-history.js';
import { assertNativeUws, nativeUwsInfo } from './native-uws.js';
import { OffsetFrameWriter } from './offset-frame.js';
import { ADMIN_TOPIC_KIND, ALL_TOPICS, TopicPattern } from './topic-pattern.js';

/** What an HTTP route returns; served for GET on the WebSocket port. */
export interface HttpRouteResult {
  status: number;
  contentType: string;
  body: string | Uint8Array;
  /** Extra response headers (security headers of the dashboard page, cache policy…). */
  headers?: Readonly<Record<string, string>>;
}

/**
 * What a route may read of its request, copied out of uWS's stack-bound
 * request before the handler runs (so async handlers can use it).
 */
export interface HttpRequestInfo {
  readonly path: string;
  /** The query string, parsed. */
  readonly query: URLSearchParams;
  /** The `Authorization` header, '' when absent. */
  readonly authorization: string;
  /** `post` for a {@link UwsServerOptions.postRoutes} route; absent or `get` otherwise. */
  readonly method?: 'get' | 'post';
  /** A POST's body (UTF-8, at most {@link MAX_POST_BODY} bytes); '' for GET. */
  readonly body?: string;
}

/** Largest POST body accepted; a bigger one gets 413. */
export const MAX_POST_BODY = 64 * 1024;

/** An HTTP GET handler (`/metrics`, `/health/live`, …). May be async. */
export type HttpRoute = (req: HttpRequestInfo) => Promise<HttpRouteResult> | HttpRouteResult;

/** Options of {@link UwsServer}. */
export interface UwsServerOptions {
  /** TCP port; 0 binds an ephemeral port (see the value `start()` resolves to). */
  port: number;
  /** Interface to bind. Default `0.0.0.0` (all IPv4 interfaces). */
  host?: string;
  /** The API keys that may connect. */
  apiKeys: ApiKeyTable;
  log: Logger;
  /** Largest client frame accepted; uWS drops the connection on a bigger one. Default 16 KiB. */
  maxPayloadBytes?: number;
  /**
   * Send buffer a client may hold before it is disconnected with close code
   * 4008 `backpressure`. Default 1 MiB. Must exceed the largest burst the
   * server publishes within one event-loop turn, and the snapshot a client
   * can ask for (see README).
   */
  maxBackpressureBytes?: number;
  /** Bad frames a client may send; the next one closes it with 1008. Default 10. */
  maxBadFrames?: number;
  /** Seconds without traffic before uWS closes a socket (it pings before that). 0 or 8–960; default 120. */
  idleTimeoutSec?: number;
  /** Most exact topics whose last message is kept for snapshots. Default 100 000. */
  maxSnapshotTopics?: number;
  /** GET routes on the same port, by exact path (`/metrics`). `/ws` is reserved. */
  routes?: Record<string, HttpRoute>;
  /**
   * POST routes (the job routes, jobs/README.md), by exact path; a path
   * ending in `/*` serves every path under it (`/jobs/*`), also in `routes`.
   * POST to any other path stays 405.
   */
  postRoutes?: Record<string, HttpRoute>;
  /**
   * WebSockets one API key may hold open at once (in this kernel); the next
   * gets a `too_many_connections` error frame and close 4029. Default 10,000 (a fan-out of thousands of subscribers on one key must fit).
   */
  maxConnectionsPerKey?: number;
  /**
   * Subscribe and unsubscribe frames a connection may send per second
   * (a token bucket of this size, refilled at this rate); over it: a
   * `rate_limited` error frame and close 4029. Default 20.
   */
  subscribeRatePerSec?: number;
  /**
   * Topic patterns one connection may hold subscribed; a subscribe that would
   * go over gets a `too_many_topics` error frame and close 4029. Default 1024.
   */
  maxTopicsPerConnection?: number;
  // ── subscriber sessions (docs/adr/0007-subscriber-sessions.md) ──
  /**
   * Bytes of published frames kept for clients that resume with their last
   * offsets (one arena allocated at construction; oldest overwritten). 0
   * disables history: a resume then only works when nothing was missed.
   * Default 64 MiB.
   */
  historyBytes?: number;
  /** Interval of the `heartbeat` frames a client asks for with `{"op":"heartbeat"}`, ms. Default 1000. */
  heartbeatMs?: number;
  /**
   * Audit hook (docs/security.md "Audit"): called at every refusal: 401 at
   * upgrade, 401 / 403 of an HTTP route, a `forbidden` subscribe, a 4029
   * limit cut-off. Runs on the server's thread: keep it cheap (the kernel
   * rate-limits and queues). Never given the key.
   */
  onSecurityEvent?: (ev: SecurityEvent) => void;
}

/** A refusal the server reports to `onSecurityEvent` (the key itself never). */
export interface SecurityEvent {
  kind: 'auth.failure' | 'permission.denied';
  /** The client's remote address. */
  remote: string;
  /** The key's scope when the key was valid (permission.denied); undefined otherwise. */
  scope: Scope | undefined;
  /** What was refused: `/ws`, an HTTP path, a topic pattern, a limit (`too_many_topics`). */
  target: string;
  /** Why, in words (what the client was told). */
  reason: string;
}

/** Counters of {@link UwsServer.stats}. */
export interface UwsServerStats {
  /** Connected WebSocket clients. */
  clients: number;
  /** Messages given to `publish()`. */
  published: number;
  /** Upgrades refused with 401. */
  authFailures: number;
  /** Client frames answered with an error frame, plus oversized frames. */
  badFrames: number;
  /** Clients disconnected because their send buffer went over the limit. */
  slowDisconnects: number;
  /** Clients disconnected (1008) for sending too many bad frames. */
  badFrameDisconnects: number;
  /** Clients whose connection uWS dropped for a frame over `maxPayloadBytes`. */
  oversizeDisconnects: number;
  /** Clients closed because their key was revoked (4001) or expired (4002). */
  keyDisconnects: number;
  /** Clients closed (4029) for going over a per-key limit. */
  limitDisconnects: number;
  /** Subscribe frames that carried `resume` offsets. */
  resumes: number;
  /** Frames sent from history to resuming clients. */
  replayedFrames: number;
  /** `history_lost` markers sent. */
  historyLost: number;
  /** `heartbeat` frames sent. */
  heartbeats: number;
  /** Bytes of frames held in the resume history. */
  historyBytes: number;
  /** Frames held in the resume history. */
  historyFrames: number;
  /** Age of the oldest frame held in the history, ms (0 when empty). */
  historyOldestAgeMs: number;
}

/** Close code for a client whose send buffer went over the limit (private-use range). */
export const CLOSE_BACKPRESSURE = 4008;
/** Close code for a client that sent too many bad frames (RFC 6455 policy violation). */
export const CLOSE_BAD_FRAMES = 1008;
/** Close code on server shutdown (RFC 6455 going away). */
export const CLOSE_SHUTDOWN = 1001;
/** Close code for a client whose API key was revoked (or deleted) while it was connected. */
export const CLOSE_KEY_REVOKED = 4001;
/** Close code for a client whose API key expired while it was connected (end of a rotation's grace). */
export const CLOSE_KEY_EXPIRED = 4002;
/** Close code for a client over a per-key limit (connections, subscribe rate, topics); like HTTP 429. */
export const CLOSE_LIMIT = 4029;

/** Error codes of `{"type":"error","code":…}` frames (docs/api/asyncapi.yaml lists the same). */
export const WS_ERROR_CODES = [
  'bad_json',
  'bad_frame',
  'unknown_op',
  'bad_topic',
  'forbidden',
  'too_many_connections',
  'rate_limited',
  'too_many_topics',
] as const;
export type WsErrorCode = (typeof WS_ERROR_CODES)[number];

/** A subscribe frame's resume request, validated. */
interface Resume {
  readonly epoch: string;
  /** Exact topic → the last offset the client got. */
  readonly offsets: Map<string, number>;
}

/** Resume offsets one connection may give (staged and inline together); bounds its memory. */
export const MAX_RESUME_OFFSETS = 10_000;
const RESUME_SHAPE = 'use "resume":{"epoch":"<epoch>","offsets":{"<topic>":<last offset>,…}}';

function isEpoch(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 64;
}

/** Topics per subscribe/unsubscribe frame; bounds the work one frame can cause. */
const MAX_TOPICS_PER_FRAME = 256;
/** uWS reports a frame over maxPayloadLength with this close message (code 1006). */
const UWS_TOO_BIG = 'Received too big message';
/** How often buffers are checked when nothing is being published. */
const IDLE_SWEEP_MS = 250;

/** Per-connection state, held by uWS as the socket's user data. */
interface Client {
  readonly id: number;
  readonly scope: Scope;
  readonly remote: string;
  /** Patterns the client subscribed to, by text. */
  readonly patterns: Map<string, TopicPattern>;
  /** uWS topics the socket holds (derived from `patterns`, see `uwsTopicsFor`). */
  readonly held: Set<string>;
  badFrames: number;
  /** Subscribe-rate token bucket: tokens left, refilled at `subscribeRatePerSec` from `tokensAt`. */
  tokens: number;
  tokensAt: number;
  /** Counted in `perKey` (opened and not yet closed). */
  counted: boolean;
  /** Set before we end the socket ourselves, so the close handler counts it right. */
  closeReason: 'backpressure' | 'bad_frames' | 'shutdown' | 'key' | 'limit' | undefined;
  /** A check saw bytes buffered: a later bare 1006 close is uWS's own backpressure cut. */
  pressured: boolean;
  /** Set by the close handler: the uWS socket must not be touched any more. */
  closed: boolean;
  /** Next heartbeat counter; undefined until the client asks for heartbeats. */
  heartbeatN?: number;
  /** Offsets staged by `{"op":"offsets"}` frames (and their epoch) for the next resuming subscribe. */
  staged?: Map<string, number> | undefined;
  stagedEpoch?: string;
}

/**
 * Per exact topic: the serialised frame prefix and the last frame (snapshot).
 * Callers on the hot path hold it as an opaque handle (`topic()`), so a
 * publish does no lookup.
 */
export interface TopicEntry {
  readonly topic: string;
  /** The topic and its wildcard as bytes: uWS takes them without a UTF-8 conversion per publish. */
  readonly topicBytes: Buffer;
  readonly wildcardBytes: Buffer | undefined;
  /** `{"topic":"<topic>","data":` — built once per topic. */
  readonly prefix: string;
  /** The kind's wildcard uWS topic (`signal/*`), undefined for `status`. */
  readonly wildcard: string | undefined;
  readonly pattern: TopicPattern;
  /** Snapshot buffer (reused, grown as needed) and the length of the last frame in it. */
  snap: Buffer | undefined;
  snapLen: number;
  /** The snapshot changed since the last `takeChangedSnapshots` (last-value cache). */
  changed: boolean;
  /** Index in `topicsById` (the history records topics by it). */
  readonly id: number;
  /** Offset of the last frame published on the topic this epoch (0: none yet). */
  lastOff: number;
  /** Oldest offset from which every frame up to `lastOff` is still in the history. */
  histFrom: number;
  /** Offset of the snapshot frame; 0 for a snapshot seeded from an earlier run (sent without `off`). */
  snapOff: number;
}

const EMPTY_HEADER = '';
const ALL_TOPICS_BYTES = Buffer.from(ALL_TOPICS);
/** `job/*`: job topics are not part of `*` (admins only; adapters/ws/topic-pattern.ts). */
const ADMIN_WILDCARD = `${ADMIN_TOPIC_KIND}/*`;

/**
 * The WebSocket fan-out server (uWebSockets.js) and the HTTP routes on the
 * same port.
 *
 * ```
 *  publish('signal/BTC-USD', data)
 *     │  serialise once: {"topic":"signal/BTC-USD","data":…}  → Buffer, kept as snapshot
 *     ├─ app.publish('signal/BTC-USD') ──► sockets holding the exact topic
 *     ├─ app.publish('signal/*')       ──► sockets holding the kind wildcard
 *     └─ app.publish('*')              ──► sockets holding everything
 * ```
 * This uWS version has no wildcard subscriptions (verified: a socket
 * subscribed to `signal/*` gets nothing published on `signal/X`), so each
 * message goes out on up to three uWS topics, and each socket holds at most
 * one uWS topic that covers any given message: a socket subscribed to `*`
 * holds only `*`; one subscribed to `signal/*` holds no exact `signal/…`
 * topics (its exact subscriptions are remembered in `patterns` and restored
 * if it unsubscribes the wildcard). So nobody receives a message twice, and
 * fan-out is three native calls per message whatever the number of clients.
 *
 * Slow consumers: uWS's own `maxBackpressure` is set to twice the limit with
 * `closeOnBackpressureLimit` (a hard memory ceiling per socket, but it closes
 * without a close frame, code 1006). Before that, the server itself ends
 * sockets buffering more than the limit with 4008 `backpressure`: it checks
 * every socket each time another `limit` bytes have been published (a socket
 * receives each message at most once, so no socket can go from under the
 * limit to over twice the limit between two checks), after direct sends, and
 * on a timer. Memory per client stays under 2 × limit.
 */
export class UwsServer {
  private readonly host: string;
  private readonly port: number;
  private readonly apiKeys: ApiKeyTable;
  private readonly onSecurityEvent: ((ev: SecurityEvent) => void) | undefined;
  private readonly log: Logger;
  private readonly maxPayloadBytes: number;
  private readonly limit: number;
  private readonly maxBadFrames: number;
  private readonly idleTimeoutSec: number;
  private readonly maxSnapshotTopics: number;
  private readonly maxConnectionsPerKey: number;
  private readonly subscribeRate: number;
  private readonly maxTopicsPerConnection: number;
  private readonly routes = new Map<string, HttpRoute>();
  private readonly postRoutes = new Map<string, HttpRoute>();
  /** Open connections per keyId. */
  private readonly perKey = new Map<string, number>();
  private unwatchKeys: (() => void) | undefined;

  private readonly app: TemplatedApp;
  private readonly clients = new Set<WebSocket<Client>>();
  private readonly topics = new Map<string, TopicEntry>();
  private listenSocket: us_listen_socket | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private starting: Promise<number> | undefined;
  private closing: Promise<void> | undefined;
  private nextClientId = 1;
  private bytesSinceSweep = 0;
  private snapshotCapWarned = false;
  // ── subscriber sessions ──
  /** Id of this server's history: random per start, so a client can tell history was lost. */
  readonly epoch = randomBytes(9).toString('base64url');
  private readonly history: FrameHistory;
  private readonly offsetWriter = new OffsetFrameWriter();
  private readonly topicsById: TopicEntry[] = [];
  private readonly heartbeatMs: number;
  private readonly heartbeatClients = new Set<WebSocket<Client>>();
  private heartbeatTimer: NodeJS.Timeout | undefined;

  private readonly counters = {
    published: 0,
    authFailures: 0,
    badFrames: 0,
    slowDisconnects: 0,
    badFrameDisconnects: 0,
    oversizeDisconnects: 0,
    keyDisconnects: 0,
    limitDisconnects: 0,
    resumes: 0,
    replayedFrames: 0,
    historyLost: 0,
    heartbeats: 0,
  };

  constructor(opts: UwsServerOptions) {
    const o = opts;
    if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
      invalidArgument('port', o.port, 'an integer from 0 to 65535 (0 = ephemeral)');
    }
    this.port = o.port;
    this.host = o.host ?? '0.0.0.0';
    if (typeof this.host !== 'string' || this.host === '') {
      invalidArgument('host', o.host, 'an interface address such as 0.0.0.0 or 127.0.0.1');
    }
    this.apiKeys = o.apiKeys;
    this.log = o.log;
    this.onSecurityEvent = o.onSecurityEvent;
    this.maxPayloadBytes = intOption(
      'maxPayloadBytes',
      o.maxPayloadBytes,
      16 * 1024,
      256,
      16 << 20,
    );
    this.limit = intOption('maxBackpressureBytes', o.maxBackpressureBytes, 1 << 20, 4096, 1 << 30);
    this.maxBadFrames = intOption('maxBadFrames', o.maxBadFrames, 10, 0, 1_000_000);
    this.idleTimeoutSec = intOption('idleTimeoutSec', o.idleTimeoutSec, 120, 0, 960);
    if (this.idleTimeoutSec !== 0 && this.idleTimeoutSec < 8) {
      // uWS terminates the process for 1..7 (its timer granularity is 4 s).
      invalidArgument('idleTimeoutSec', o.idleTimeoutSec, '0 (off) or 8 to 960');
    }
    this.maxSnapshotTopics = intOption(
      'maxSnapshotTopics',
      o.maxSnapshotTopics,
      100_000,
      1,
      10_000_000,
    );
    this.maxConnectionsPerKey = intOption(
      'maxConnectionsPerKey',
      o.maxConnectionsPerKey,
      10_000,
      1,
      1_000_000,
    );
    this.subscribeRate = intOption('subscribeRatePerSec', o.subscribeRatePerSec, 20, 1, 1_000_000);
    this.maxTopicsPerConnection = intOption(
      'maxTopicsPerConnection',
      o.maxTopicsPerConnection,
      1024,
      1,
      1_000_000,
    );
    this.heartbeatMs = intOption('heartbeatMs', o.heartbeatMs, 1000, 50, 3_600_000);
    this.history = new FrameHistory(
      intOption('historyBytes', o.historyBytes, 64 << 20, 0, 1 << 30),
      (topicId, off) => {
        const e = this.topicsById[topicId];
        if (e !== undefined && e.histFrom <= off) e.histFrom = off + 1;
      },
    );
    for (const [path, route] of Object.entries(o.routes ?? {})) {
      if (!path.startsWith('/') || path === '/ws' || typeof route !== 'function') {
        invalidArgument(
          `routes[${JSON.stringify(path)}]`,
          path,
          'a path starting with / other than /ws, mapped to a function',
        );
      }
      this.routes.set(path, route);
    }
    for (const [path, route] of Object.entries(o.postRoutes ?? {})) {
      if (!path.startsWith('/') || path === '/ws' || typeof route !== 'function') {
        invalidArgument(
          `postRoutes[${JSON.stringify(path)}]`,
          path,
          'a path starting with / other than /ws, mapped to a function',
        );
      }
      this.postRoutes.set(path, route);
    }
    this.app = uws.App();
  }

  /**
   * Check the native uWS is in use, register handlers and listen. Resolves to
   * the bound port (useful with port 0). Calling it again returns the same
   * promise.
   */
  start(): Promise<number> {
    if (this.closing !== undefined) {
      return Promise.reject(
        new QilinError(ErrorCodes.INVALID_ARGUMENT, 'UwsServer.start() called after close()'),
      );
    }
    this.starting ??= new Promise<number>((resolve, reject) => {
      assertNativeUws();
      this.register();
      this.app.listen(this.host, this.port, (socket) => {
        if (socket === false) {
          reject(
            new QilinError(
              ErrorCodes.SERVICE_PORT_IN_USE,
              `uWebSockets.js could not listen on ${this.host}:${this.port} (port in use or address not available)`,
              { details: { host: this.host, port: this.port } },
            ),
          );
          return;
        }
        this.listenSocket = socket;
        const port = uws.us_socket_local_port(socket);
        this.sweepTimer = setInterval(() => {
          this.sweep();
          this.revalidate();
        }, IDLE_SWEEP_MS);
        this.sweepTimer.unref();
        // A revoked key's sockets close as soon as the table learns of it.
        this.unwatchKeys = this.apiKeys.onChange(() => this.revalidate());
        this.log.info({ host: this.host, port, uws: nativeUwsInfo() }, 'ws server listening');
        resolve(port);
      });
    });
    return this.starting;
  }

  /**
   * Stop listening and close every client with 1001. Safe to call twice
   * (returns the same promise) and before `start()`.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
      if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
      this.heartbeatTimer = undefined;
      this.unwatchKeys?.();
      if (this.listenSocket !== undefined) uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = undefined;
      for (const ws of Array.from(this.clients)) {
        ws.getUserData().closeReason = 'shutdown';
        ws.end(CLOSE_SHUTDOWN, 'server shutdown');
      }
      // Let the close frames go out, then drop whatever is left (idle HTTP
      // keep-alive sockets, clients that never answer the close): otherwise
      // they hold the event loop open until their timeouts.
      await new Promise<void>((resolve) => setImmediate(resolve));
      (this.app as TemplatedApp & { close?: () => void }).close?.();
      this.log.info(this.stats(), 'ws server closed');
    })();
    return this.closing;
  }

  /**
   * Publish `data` on an exact topic (`signal/<sym>`, `prediction/<sym>`,
   * `quality/<sym>`, `status`). `data` is serialised once; pass a string to
   * hand over JSON text you already serialised (it is embedded verbatim, so it
   * must be valid JSON). The frame becomes the topic's snapshot. Throws
   * QLN_INVALID_ARGUMENT for a topic that is not an exact topic.
   */
  publish(topic: string, data: unknown): void {
    if (this.closing !== undefined) return;
    const entry = this.topic(topic);
    const body = typeof data === 'string' ? data : JSON.stringify(data);
    if (body === undefined)
      invalidArgument(`data for ${topic}`, String(data), 'a JSON-serialisable value');
    this.publishFrame(entry, Buffer.from(entry.prefix + body + '}', 'utf8'));
  }

  /**
   * The handle of an exact topic (created on first use), for publishFrame.
   * Throws QLN_INVALID_ARGUMENT for a topic that is not an exact topic.
   */
  topic(topic: string): TopicEntry {
    return this.topics.get(topic) ?? this.addTopic(topic);
  }

  /**
   * Publish a frame that is already serialised, `{"topic":"<topic>","data":…}`
   * exactly (the shard workers encode them): no parsing, no copy but the
   * snapshot's. `frame` may be a view of a SharedArrayBuffer that is reused
   * after the call: uWS copies it into each socket's buffer.
   */
  publishFrame(entry: TopicEntry, frame: Uint8Array): void {
    if (this.closing !== undefined) return;
    const off = ++entry.lastOff;
    if (entry.snap !== undefined || this.topics.size <= this.maxSnapshotTopics) {
      if (entry.snap === undefined || entry.snap.length < frame.length) {
        entry.snap = Buffer.allocUnsafe(Math.max(256, frame.length * 2));
      }
      entry.snap.set(frame);
      entry.snapLen = frame.length;
      entry.snapOff = off;
      entry.changed = true;
    }
    this.counters.published++;
    // The frame clients get carries the topic's offset; written into a reused
    // scratch buffer (uWS copies it into each socket), then into the history.
    const out = this.offsetWriter.write(frame, off) ?? frame;
    if (!this.history.append(entry.id, off, out, out.length)) entry.histFrom = off + 1;
    this.app.publish(entry.topicBytes, out, false);
    if (entry.wildcardBytes !== undefined) this.app.publish(entry.wildcardBytes, out, false);
    // Job topics (admins only) are not part of `*` (adapters/ws/topic-pattern.ts).
    if (entry.wildcard !== ADMIN_WILDCARD) this.app.publish(ALL_TOPICS_BYTES, out, false);
    this.bytesSinceSweep += out.length;
    if (this.bytesSinceSweep >= this.limit) this.sweep();
  }

  /**
   * Copies of the snapshots that changed since the last call (topic →
   * frame), `status` excepted: what the last-value cache stores.
   */
  takeChangedSnapshots(): Map<string, Buffer> {
    const out = new Map<string, Buffer>();
    for (const e of this.topics.values()) {
      if (!e.changed || e.snap === undefined || e.wildcard === undefined) continue;
      e.changed = false;
      out.set(e.topic, Buffer.from(e.snap.subarray(0, e.snapLen)));
    }
    return out;
  }

  /**
   * Install a topic's snapshot without publishing it (the last-value cache
   * of a restarted kernel): subscribers get it until the topic's next
   * frame. Ignores topics that are not exact topics or already have one.
   */
  seedSnapshot(topic: string, frame: Uint8Array): boolean {
    if (!TopicPattern.isTopic(topic) || TopicPattern.kindOf(topic) === 'status') return false;
    const entry = this.topic(topic);
    if (entry.snap !== undefined || this.topics.size > this.maxSnapshotTopics) return false;
    entry.snap = Buffer.from(frame);
    entry.snapLen = frame.length;
    return true;
  }

  /** Counters since construction. */
  stats(): UwsServerStats {
    const oldestAt = this.history.oldestAt;
    return {
      clients: this.clients.size,
      ...this.counters,
      historyBytes: this.history.bytes,
      historyFrames: this.history.records,
      historyOldestAgeMs: oldestAt === undefined ? 0 : Math.max(0, Date.now() - oldestAt),
    };
  }

  /**
   * The offsets of a topic this epoch: `last` published (0: none) and the
   * `oldest` still held in history (`last + 1` when none is held).
   */
  offsets(topic: string): { last: number; oldest: number } {
    const e = this.topics.get(topic);
    return e === undefined ? { last: 0, oldest: 1 } : { last: e.lastOff, oldest: e.histFrom };
  }

  /**
   * Close the sockets whose key is no longer valid: 4001 `key revoked`, 4002
   * `key expired`. Runs when the key table changes and on the sweep timer
   * (expiry), so a change applies within a second. O(clients) map lookups.
   */
  revalidate(now = Date.now()): void {
    if (this.clients.size === 0 || this.closing !== undefined) return;
    for (const ws of Array.from(this.clients)) {
      const c = ws.getUserData();
      if (c.closeReason !== undefined || c.closed) continue;
      const v = this.apiKeys.validity(c.scope, now);
      if (v === 'valid') continue;
      c.closeReason = 'key';
      this.counters.keyDisconnects++;
      this.log.info(
        {
          client: c.id,
          remote: c.remote,
          keyId: c.scope.keyId,
          validity: v,
          code: ErrorCodes.AUTH_REQUIRED,
        },
        'ws client closed: its API key is no longer valid',
      );
      if (v === 'revoked') ws.end(CLOSE_KEY_REVOKED, 'key revoked');
      else ws.end(CLOSE_KEY_EXPIRED, 'key expired');
    }
  }

  // ── topics ────────────────────────────────────────────────────────────

  private addTopic(topic: string): TopicEntry {
    if (!TopicPattern.isTopic(topic)) {
      invalidArgument(
        'topic',
        topic,
        'signal/<sym>, prediction/<sym>, quality/<sym>, job/<id> or status',
      );
    }
    const kind = TopicPattern.kindOf(topic);
    const wildcard = kind === 'status' ? undefined : TopicPattern.wildcardOf(kind);
    const entry: TopicEntry = {
      topic,
      topicBytes: Buffer.from(topic),
      wildcardBytes: wildcard === undefined ? undefined : Buffer.from(wildcard),
      prefix: `{"topic":${JSON.stringify(topic)},"data":`,
      wildcard: kind === 'status' ? undefined : TopicPattern.wildcardOf(kind),
      pattern: TopicPattern.parse(topic)!,
      snap: undefined,
      snapLen: 0,
      changed: false,
      id: this.topicsById.length,
      lastOff: 0,
      histFrom: 1,
      snapOff: 0,
    };
    this.topicsById.push(entry);
    // Entries are tiny; only the snapshot buffers are capped (see publish).
    this.topics.set(topic, entry);
    if (this.topics.size > this.maxSnapshotTopics && !this.snapshotCapWarned) {
      this.snapshotCapWarned = true;
      this.log.warn(
        { maxSnapshotTopics: this.maxSnapshotTopics, topic },
        'snapshot topic cap reached; new topics get no snapshot',
      );
    }
    return entry;
  }

  /**
   * The uWS topics a client must hold for its patterns, such that each
   * published message reaches it through exactly one of them.
   */
  private static uwsTopicsFor(patterns: Map<string, TopicPattern>): Set<string> {
    const out = new Set<string>();
    if (patterns.has(ALL_TOPICS)) {
      // `*` holds everything but the job topics, asked for by name (admins only).
      out.add(ALL_TOPICS);
      for (const p of patterns.values()) {
        if (p.kind !== ADMIN_TOPIC_KIND) continue;
        if (p.isWildcard || !patterns.has(ADMIN_WILDCARD)) out.add(p.text);
      }
      return out;
    }
    for (const p of patterns.values()) {
      if (p.isWildcard) out.add(p.text);
      else if (
        p.kind === 'status' ||
        p.kind === '*' ||
        !patterns.has(TopicPattern.wildcardOf(p.kind))
      )
        out.add(p.text);
    }
    return out;
  }

  private static covered(patterns: Map<string, TopicPattern>, topic: string): boolean {
    for (const p of patterns.values()) if (p.matches(topic)) return true;
    return false;
  }

  private applySubscriptions(ws: WebSocket<Client>, client: Client): void {
    const want = UwsServer.uwsTopicsFor(client.patterns);
    for (const t of Array.from(client.held)) {
      if (!want.has(t)) {
        ws.unsubscribe(t);
        client.held.delete(t);
      }
    }
    for (const t of want) {
      if (!client.held.has(t)) {
        ws.subscribe(t);
        client.held.add(t);
      }
    }
  }

  // ── uWS handlers ──────────────────────────────────────────────────────

  private register(): void {
    this.app.ws<Client>('/ws', {
      maxPayloadLength: this.maxPayloadBytes,
      // Hard ceiling; the server's own check at `limit` normally acts first.
      maxBackpressure: this.limit * 2,
      // The d.ts types this as a number; the addon reads it as a boolean.
      closeOnBackpressureLimit: 1,
      idleTimeout: this.idleTimeoutSec,
      sendPingsAutomatically: this.idleTimeoutSec > 0,
      compression: uws.DISABLED,
      upgrade: (res, req, context) => this.onUpgrade(res, req, context),
      open: (ws) => this.onOpen(ws),
      message: (ws, message, isBinary) => this.onMessage(ws, message, isBinary),
      drain: (ws) => {
        ws.getUserData().pressured = ws.getBufferedAmount() > 0;
      },
      close: (ws, code, message) => this.onClose(ws, code, message),
    });
    this.app.get('/*', (res, req) => this.onHttp(res, req));
    if (this.postRoutes.size > 0) this.app.post('/*', (res, req) => this.onPost(res, req));
    this.app.any('/*', (res, req) => {
      const method = req.getMethod();
      res.cork(() => {
        res
          .writeStatus(statusLine(405))
          .writeHeader('Allow', 'GET')
          .writeHeader('Content-Type', 'application/json')
          .end(
            errorBody(
              'method_not_allowed',
              `method ${method.toUpperCase()} is not allowed; use GET`,
            ),
          );
      });
    });
  }

  private onUpgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    // uWS's req lives on the stack of this call: copy everything out first.
    const authorization = req.getHeader('authorization');
    const queryKey = (req.getQuery('key') as string | undefined) ?? '';
    const secKey = req.getHeader('sec-websocket-key');
    const secProtocol = req.getHeader('sec-websocket-protocol');
    const secExtensions = req.getHeader('sec-websocket-extensions');
    const remote = Buffer.from(res.getRemoteAddressAsText()).toString('utf8');

    let key: string | undefined;
    if (authorization !== EMPTY_HEADER) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      key = m?.[1];
    } else if (queryKey !== '') key = queryKey;
    const scope = this.apiKeys.authorize(key);
    if (scope === undefined || this.closing !== undefined) {
      this.counters.authFailures++;
      const reason =
        authorization === EMPTY_HEADER && queryKey === ''
          ? 'missing API key: send Authorization: Bearer <key> or ?key=<key>'
          : key === undefined
            ? 'malformed Authorization header: expected Bearer <key>'
            : 'unknown API key';
      // Never log the key, not even a part of it.
      this.log.warn({ remote, reason, code: ErrorCodes.AUTH_REQUIRED }, 'ws auth failure');
      this.security({ kind: 'auth.failure', remote, scope: undefined, target: '/ws', reason });
      res.cork(() => {
        res
          .writeStatus(statusLine(401))
          .writeHeader('WWW-Authenticate', 'Bearer')
          .writeHeader('Content-Type', 'application/json')
          .end(errorBody('unauthorized', reason));
      });
      return;
    }
    const client: Client = {
      id: this.nextClientId++,
      scope,
      remote,
      patterns: new Map(),
      held: new Set(),
      badFrames: 0,
      tokens: this.subscribeRate,
      tokensAt: Date.now(),
      counted: false,
      closeReason: undefined,
      pressured: false,
      closed: false,
    };
    res.upgrade(client, secKey, secProtocol, secExtensions, context);
  }

  private onOpen(ws: WebSocket<Client>): void {
    this.clients.add(ws);
    const c = ws.getUserData();
    this.log.debug({ client: c.id, remote: c.remote, keyId: c.scope.keyId }, 'ws client connected');
    const open = this.perKey.get(c.scope.keyId) ?? 0;
    if (open >= this.maxConnectionsPerKey) {
      this.overLimit(
        ws,
        c,
        'too_many_connections',
        `this API key already holds ${open} connections (limit ${this.maxConnectionsPerKey})`,
      );
      return;
    }
    this.perKey.set(c.scope.keyId, open + 1);
    c.counted = true;
  }

  private onClose(ws: WebSocket<Client>, code: number, message: ArrayBuffer): void {
    this.clients.delete(ws);
    this.heartbeatClients.delete(ws);
    const c = ws.getUserData();
    c.closed = true;
    c.staged = undefined;
    if (c.counted) {
      c.counted = false;
      const n = (this.perKey.get(c.scope.keyId) ?? 1) - 1;
      if (n <= 0) this.perKey.delete(c.scope.keyId);
      else this.perKey.set(c.scope.keyId, n);
    }
    const reason = Buffer.from(message).toString('utf8');
    if (c.closeReason === 'backpressure') this.counters.slowDisconnects++;
    else if (c.closeReason === 'bad_frames') this.counters.badFrameDisconnects++;
    else if (code === 1006 && reason === UWS_TOO_BIG) {
      this.counters.oversizeDisconnects++;
      this.counters.badFrames++;
      this.log.warn(
        { client: c.id, remote: c.remote, maxPayloadBytes: this.maxPayloadBytes },
        'ws client sent an oversized frame; uWS dropped the connection (1006)',
      );
    } else if (code === 1006 && reason === '' && c.pressured) {
      // uWS's hard ceiling (2 × limit) cut it before our own check did.
      this.counters.slowDisconnects++;
      this.log.warn(
        { client: c.id, remote: c.remote },
        'ws client dropped by uWS at the backpressure ceiling',
      );
    }
    c.held.clear();
    this.log.debug(
      { client: c.id, remote: c.remote, code, reason, closeReason: c.closeReason },
      'ws client disconnected',
    );
  }

  private onMessage(ws: WebSocket<Client>, message: ArrayBuffer, isBinary: boolean): void {
    const c = ws.getUserData();
    if (isBinary) {
      this.badFrame(ws, c, 'bad_frame', 'binary frames are not accepted; send JSON text');
      return;
    }
    // `message` is neutered when this handler returns; decode now.
    const text = Buffer.from(message).toString('utf8');
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      this.badFrame(ws, c, 'bad_json', `frame is not JSON: ${preview(text)}`);
      return;
    }
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
      this.badFrame(
        ws,
        c,
        'bad_frame',
        `frame must be a JSON object with an "op", got ${preview(text)}`,
      );
      return;
    }
    const op = (frame as { op?: unknown }).op;
    switch (op) {
      case 'ping':
        ws.send('{"type":"pong"}', false);
        break;
      case 'heartbeat':
        this.startHeartbeat(ws, c);
        break;
      case 'offsets':
        if (!this.takeToken(c)) {
          this.overLimit(
            ws,
            c,
            'rate_limited',
            `more than ${this.subscribeRate} subscribe/unsubscribe/offsets frames per second`,
          );
          return;
        }
        this.stageOffsets(ws, c, frame);
        break;
      case 'subscribe':
      case 'unsubscribe': {
        if (!this.takeToken(c)) {
          this.overLimit(
            ws,
            c,
            'rate_limited',
            `more than ${this.subscribeRate} subscribe/unsubscribe frames per second`,
          );
          return;
        }
        const patterns = this.parseTopics(ws, c, (frame as { topics?: unknown }).topics, op);
        if (patterns === undefined) return;
        if (op === 'subscribe') {
          const raw = (frame as { resume?: unknown }).resume;
          let resume: Resume | undefined;
          if (raw !== undefined) {
            resume = this.parseResume(ws, c, raw);
            if (resume === undefined) return;
          }
          this.subscribe(ws, c, patterns, resume);
        } else this.unsubscribe(ws, c, patterns);
        break;
      }
      default:
        if (typeof op !== 'string') {
          this.badFrame(
            ws,
            c,
            'bad_frame',
            `frame has no string "op" (one of subscribe, unsubscribe, ping)`,
          );
        } else {
          this.badFrame(
            ws,
            c,
            'unknown_op',
            `unknown op ${preview(JSON.stringify(op))}; use subscribe, unsubscribe, ping, heartbeat or offsets`,
          );
        }
        return;
    }
    this.checkBackpressure(ws, c);
  }

  /** Validate a frame's topics; answers with an error frame and returns undefined when bad. */
  private parseTopics(
    ws: WebSocket<Client>,
    c: Client,
    topics: unknown,
    op: string,
  ): TopicPattern[] | undefined {
    if (!Array.isArray(topics) || topics.length === 0 || topics.length > MAX_TOPICS_PER_FRAME) {
      this.badFrame(
        ws,
        c,
        'bad_frame',
        `"${op}" needs "topics": an array of 1 to ${MAX_TOPICS_PER_FRAME} topic patterns`,
      );
      return undefined;
    }
    const out: TopicPattern[] = [];
    for (const t of topics as unknown[]) {
      const p = TopicPattern.parse(t);
      if (p === undefined) {
        this.badFrame(
          ws,
          c,
          'bad_topic',
          `bad topic ${preview(JSON.stringify(t) ?? String(t))}: use signal/<sym>, prediction/<sym>, quality/<sym>, status, <kind>/* or *`,
        );
        return undefined;
      }
      // Unsubscribing from something you may not read is harmless; only subscribe is checked.
      if (op === 'subscribe' && !c.scope.canRead(p)) {
        this.security({
          kind: 'permission.denied',
          remote: c.remote,
          scope: c.scope,
          target: p.text,
          reason: 'forbidden: this API key may not read it',
        });
        this.badFrame(
          ws,
          c,
          'forbidden',
          `this API key may not read ${p.text} (allowed: ${c.scope.patterns.join(', ')})`,
        );
        return undefined;
      }
      out.push(p);
    }
    return out;
  }

  private subscribe(
    ws: WebSocket<Client>,
    c: Client,
    patterns: TopicPattern[],
    resume?: Resume,
  ): void {
    let added = 0;
    for (const p of new Set(patterns.map((q) => q.text))) if (!c.patterns.has(p)) added++;
    if (c.patterns.size + added > this.maxTopicsPerConnection) {
      this.overLimit(
        ws,
        c,
        'too_many_topics',
        `subscribing would hold ${c.patterns.size + added} topic patterns (limit ${this.maxTopicsPerConnection} per connection)`,
      );
      return;
    }
    const before = new Map(c.patterns);
    for (const p of patterns) c.patterns.set(p.text, p);
    ws.send(
      JSON.stringify({
        type: 'subscribed',
        topics: patterns.map((p) => p.text),
        epoch: this.epoch,
      }),
      false,
    );
    if (resume !== undefined) this.counters.resumes++;
    const sameEpoch = resume?.epoch === this.epoch;
    /** Topics to replay from history: topic id → the client's last offset. */
    let replay: Map<number, number> | undefined;
    // Snapshot (or, for a resumed topic, what was missed): the last frame of
    // every topic newly covered, before any live frame (publish runs on this
    // same thread, so nothing interleaves).
    for (const [topic, entry] of this.topics) {
      // uWS closes a socket inside send() at its hard backpressure ceiling.
      if (c.closed) return;
      if (!UwsServer.covered(c.patterns, topic) || UwsServer.covered(before, topic)) continue;
      const have = resume?.offsets.get(topic);
      if (have !== undefined) {
        if (sameEpoch && have === entry.lastOff) {
          // Nothing missed; a topic not yet published this epoch may still
          // have a snapshot seeded from an earlier run (sent without `off`).
          if (have === 0) this.sendSnapshot(ws, entry);
          continue;
        }
        if (sameEpoch && have < entry.lastOff && have + 1 >= entry.histFrom) {
          (replay ??= new Map()).set(entry.id, have);
          continue;
        }
        const reason = !sameEpoch ? 'epoch' : have > entry.lastOff ? 'ahead' : 'too_old';
        this.historyLost(ws, topic, have, entry, reason);
      }
      this.sendSnapshot(ws, entry);
    }
    if (resume !== undefined) {
      // Offsets of topics not published this epoch (a restarted kernel).
      for (const [topic, have] of resume.offsets) {
        if (c.closed) return;
        if (this.topics.has(topic) || (sameEpoch && have === 0)) continue;
        if (!UwsServer.covered(c.patterns, topic) || UwsServer.covered(before, topic)) continue;
        this.historyLost(ws, topic, have, undefined, sameEpoch ? 'ahead' : 'epoch');
      }
    }
    if (replay !== undefined && !c.closed) this.replay(ws, c, replay);
    if (c.closed) return;
    this.applySubscriptions(ws, c);
  }

  // ── subscriber sessions (docs/adr/0007-subscriber-sessions.md) ───────

  /** The topic's snapshot frame, with its offset unless it was seeded from an earlier run. */
  private sendSnapshot(ws: WebSocket<Client>, entry: TopicEntry): void {
    if (entry.snap === undefined || entry.snapLen === 0) return;
    const raw = entry.snap.subarray(0, entry.snapLen);
    const out = entry.snapOff > 0 ? this.offsetWriter.write(raw, entry.snapOff) : undefined;
    ws.send(out ?? raw, false);
  }

  private historyLost(
    ws: WebSocket<Client>,
    topic: string,
    have: number,
    entry: TopicEntry | undefined,
    reason: 'epoch' | 'too_old' | 'ahead' | 'too_large',
  ): void {
    this.counters.historyLost++;
    ws.send(
      JSON.stringify({
        type: 'history_lost',
        topic,
        epoch: this.epoch,
        reason,
        from: have + 1,
        oldest: entry?.histFrom ?? 1,
        last: entry?.lastOff ?? 0,
      }),
      false,
    );
  }

  /**
   * Send, in publish order, every held frame of the topics in `want` after
   * the client's offset. The whole replay must fit in what the client's send
   * buffer may still take (`maxBackpressureBytes` minus what it holds):
   * topics that would not fit, in turn, get `history_lost` (`too_large`) and
   * their snapshot instead, so a huge resume never breaks the memory bound.
   */
  private replay(ws: WebSocket<Client>, c: Client, want: Map<number, number>): void {
    const bytes = new Map<number, number>();
    this.history.scan((id, off, len) => {
      const have = want.get(id);
      if (have !== undefined && off > have) bytes.set(id, (bytes.get(id) ?? 0) + len);
    });
    let budget = this.limit - ws.getBufferedAmount();
    for (const [id, have] of Array.from(want)) {
      const b = bytes.get(id) ?? 0;
      if (b <= budget) {
        budget -= b;
        continue;
      }
      want.delete(id);
      const e = this.topicsById[id]!;
      this.historyLost(ws, e.topic, have, e, 'too_large');
      this.sendSnapshot(ws, e);
    }
    this.history.scan((id, off, _len, i) => {
      if (c.closed) return false;
      const have = want.get(id);
      if (have === undefined || off <= have) return true;
      ws.send(this.history.frameAt(i), false);
      this.counters.replayedFrames++;
      return true;
    });
  }

  /** `resume` of a subscribe frame (merged with staged offsets); undefined after an error frame. */
  private parseResume(ws: WebSocket<Client>, c: Client, raw: unknown): Resume | undefined {
    const staged = c.staged;
    const stagedEpoch = c.stagedEpoch;
    c.staged = undefined;
    c.stagedEpoch = undefined;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      this.badFrame(ws, c, 'bad_frame', RESUME_SHAPE);
      return undefined;
    }
    const { epoch, offsets } = raw as { epoch?: unknown; offsets?: unknown };
    if (!isEpoch(epoch)) {
      this.badFrame(
        ws,
        c,
        'bad_frame',
        `"resume.epoch" must be a string of 1 to 64 characters (the epoch of "subscribed" or "heartbeat"); ${RESUME_SHAPE}`,
      );
      return undefined;
    }
    if (staged !== undefined && stagedEpoch !== epoch) {
      this.badFrame(
        ws,
        c,
        'bad_frame',
        `offsets were staged for epoch ${preview(String(stagedEpoch))} but "resume.epoch" is ${preview(epoch)}`,
      );
      return undefined;
    }
    const into = staged ?? new Map<string, number>();
    if (offsets !== undefined && !this.readOffsets(ws, c, offsets, into)) return undefined;
    return { epoch, offsets: into };
  }

  /** `{"op":"offsets","epoch":…,"offsets":{…}}`: offsets for the next resuming subscribe. */
  private stageOffsets(
    ws: WebSocket<Client>,
    c: Client,
    f: { epoch?: unknown; offsets?: unknown },
  ): void {
    if (!isEpoch(f.epoch)) {
      c.staged = undefined;
      this.badFrame(ws, c, 'bad_frame', '"offsets" needs "epoch": a string of 1 to 64 characters');
      return;
    }
    if (c.staged !== undefined && c.stagedEpoch !== f.epoch) {
      c.staged = undefined;
      this.badFrame(
        ws,
        c,
        'bad_frame',
        'offsets already staged for another epoch: staging dropped',
      );
      return;
    }
    const into = c.staged ?? new Map<string, number>();
    if (!this.readOffsets(ws, c, f.offsets, into)) {
      c.staged = undefined;
      return;
    }
    c.staged = into;
    c.stagedEpoch = f.epoch;
    ws.send(JSON.stringify({ type: 'offsets', epoch: f.epoch, staged: into.size }), false);
  }

  /** Add `{"<topic>":<offset>,…}` to `into`; false after an error frame. */
  private readOffsets(
    ws: WebSocket<Client>,
    c: Client,
    offsets: unknown,
    into: Map<string, number>,
  ): boolean {
    if (typeof offsets !== 'object' || offsets === null || Array.isArray(offsets)) {
      this.badFrame(ws, c, 'bad_frame', `"offsets" must be an object {"<topic>":<offset>,…}`);
      return false;
    }
    for (const [topic, off] of Object.entries(offsets)) {
      if (!TopicPattern.isTopic(topic)) {
        this.badFrame(
          ws,
          c,
          'bad_frame',
          `offsets: ${preview(JSON.stringify(topic))} is not a topic (signal/<sym>, prediction/<sym>, quality/<sym> or status)`,
        );
        return false;
      }
      if (typeof off !== 'number' || !Number.isSafeInteger(off) || off < 0) {
        this.badFrame(
          ws,
          c,
          'bad_frame',
          `offsets: ${topic} must be a non-negative integer, got ${preview(JSON.stringify(off) ?? String(off))}`,
        );
        return false;
      }
      into.set(topic, off);
      if (into.size > MAX_RESUME_OFFSETS) {
        this.badFrame(
          ws,
          c,
          'bad_frame',
          `more than ${MAX_RESUME_OFFSETS} resume offsets on one connection`,
        );
        return false;
      }
    }
    return true;
  }

  /** `{"op":"heartbeat"}`: a heartbeat now, then one every `heartbeatMs`. */
  private startHeartbeat(ws: WebSocket<Client>, c: Client): void {
    c.heartbeatN ??= 0;
    this.heartbeatClients.add(ws);
    this.sendHeartbeat(ws, c, Date.now());
    if (this.heartbeatTimer === undefined && this.closing === undefined) {
      this.heartbeatTimer = setInterval(() => this.heartbeatTick(), this.heartbeatMs);
      this.heartbeatTimer.unref();
    }
  }

  private heartbeatTick(): void {
    const now = Date.now();
    for (const ws of Array.from(this.heartbeatClients)) {
      const c = ws.getUserData();
      if (c.closed || c.closeReason !== undefined) continue;
      this.sendHeartbeat(ws, c, now);
    }
  }

  private sendHeartbeat(ws: WebSocket<Client>, c: Client, now: number): void {
    const n = c.heartbeatN ?? 0;
    c.heartbeatN = n + 1;
    this.counters.heartbeats++;
    ws.send(`{"type":"heartbeat","n":${n},"epoch":"${this.epoch}","ts":${now}}`, false);
  }

  private unsubscribe(ws: WebSocket<Client>, c: Client, patterns: TopicPattern[]): void {
    for (const p of patterns) c.patterns.delete(p.text);
    this.applySubscriptions(ws, c);
    ws.send(JSON.stringify({ type: 'unsubscribed', topics: patterns.map((p) => p.text) }), false);
  }

  private badFrame(ws: WebSocket<Client>, c: Client, code: WsErrorCode, message: string): void {
    this.counters.badFrames++;
    c.badFrames++;
    ws.send(JSON.stringify({ type: 'error', code, message }), false);
    this.log.debug({ client: c.id, code, badFrames: c.badFrames }, 'ws bad frame');
    if (c.badFrames > this.maxBadFrames && c.closeReason === undefined && !c.closed) {
      c.closeReason = 'bad_frames';
      this.log.warn(
        { client: c.id, remote: c.remote, badFrames: c.badFrames },
        'ws client closed for too many bad frames',
      );
      ws.end(CLOSE_BAD_FRAMES, `too many bad frames (${c.badFrames})`);
    }
  }

  /** One subscribe-rate token, refilled continuously; false when none is left. */
  private takeToken(c: Client): boolean {
    const now = Date.now();
    c.tokens = Math.min(
      this.subscribeRate,
      c.tokens + ((now - c.tokensAt) * this.subscribeRate) / 1000,
    );
    c.tokensAt = now;
    if (c.tokens < 1) return false;
    c.tokens -= 1;
    return true;
  }

  /** A limit was hit: an error frame saying which, then close 4029. */
  private overLimit(ws: WebSocket<Client>, c: Client, code: WsErrorCode, message: string): void {
    if (c.closeReason !== undefined || c.closed) return;
    this.counters.limitDisconnects++;
    c.closeReason = 'limit';
    this.security({
      kind: 'permission.denied',
      remote: c.remote,
      scope: c.scope,
      target: code,
      reason: `closed 4029: ${message}`,
    });
    ws.send(JSON.stringify({ type: 'error', code, message }), false);
    this.log.warn(
      {
        client: c.id,
        remote: c.remote,
        keyId: c.scope.keyId,
        limit: code,
        code: ErrorCodes.WS_LIMIT,
      },
      'ws client over a limit: closed (4029)',
    );
    ws.end(CLOSE_LIMIT, code);
  }

  /** The audit hook; a hook that throws is logged, never let into uWS. */
  private security(ev: SecurityEvent): void {
    if (this.onSecurityEvent === undefined) return;
    try {
      this.onSecurityEvent(ev);
    } catch (err) {
      this.log.error({ err, kind: ev.kind }, 'onSecurityEvent threw');
    }
  }

  // ── backpressure ──────────────────────────────────────────────────────

  private checkBackpressure(ws: WebSocket<Client>, c: Client): void {
    if (c.closeReason !== undefined || c.closed) return;
    const buffered = ws.getBufferedAmount();
    c.pressured = buffered > 0;
    if (buffered <= this.limit) return;
    c.closeReason = 'backpressure';
    this.log.warn(
      { client: c.id, remote: c.remote, buffered, limit: this.limit },
      'ws slow client disconnected',
    );
    ws.end(CLOSE_BACKPRESSURE, 'backpressure');
  }

  /** Check every client; O(clients), run once per `limit` bytes published and on a timer. */
  private sweep(): void {
    this.bytesSinceSweep = 0;
    this.history.tick(Date.now());
    if (this.clients.size === 0) return;
    // ws.end() fires the close handler synchronously, which edits the set.
    for (const ws of Array.from(this.clients)) this.checkBackpressure(ws, ws.getUserData());
  }

  // ── HTTP ──────────────────────────────────────────────────────────────

  /**
   * POST to a postRoutes path: the body is read (≤ MAX_POST_BODY, else 413),
   * then the route runs as a GET route does. Any other path: 405 as before.
   */
  private onPost(res: HttpResponse, req: HttpRequest): void {
    const path = req.getUrl();
    const route = routeFor(this.postRoutes, path);
    if (route === undefined) {
      res.cork(() => {
        res
          .writeStatus(statusLine(405))
          .writeHeader('Allow', 'GET')
          .writeHeader('Content-Type', 'application/json')
          .end(errorBody('method_not_allowed', 'method POST is not allowed; use GET'));
      });
      return;
    }
    const head = {
      path,
      query: new URLSearchParams(req.getQuery() ?? ''),
      authorization: req.getHeader('authorization'),
    };
    const chunks: Buffer[] = [];
    let size = 0;
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    res.onData((chunk, isLast) => {
      if (aborted || size > MAX_POST_BODY) return;
      size += chunk.byteLength;
      if (size > MAX_POST_BODY) {
        res.cork(() => {
          res
            .writeStatus(statusLine(413))
            .writeHeader('Content-Type', 'application/json')
            .end(
              errorBody('payload_too_large', `a POST body is at most ${MAX_POST_BODY} bytes`),
              true,
            );
        });
        return;
      }
      // uWS reuses the chunk's memory after the callback: copy it.
      chunks.push(Buffer.from(new Uint8Array(chunk)));
      if (!isLast) return;
      const info: HttpRequestInfo = {
        ...head,
        method: 'post',
        body: Buffer.concat(chunks).toString('utf8'),
      };
      this.serve(res, info, route, () => aborted);
    });
  }

  private onHttp(res: HttpResponse, req: HttpRequest): void {
    const path = req.getUrl();
    const route = routeFor(this.routes, path);
    if (route === undefined) {
      const [status, code, message] =
        path === '/ws'
          ? [426, 'upgrade_required', '/ws is the WebSocket endpoint: send a WebSocket upgrade']
          : [404, 'not_found', `no route ${preview(path)}`];
      res.cork(() => {
        res
          .writeStatus(statusLine(status))
          .writeHeader('Content-Type', 'application/json')
          .end(errorBody(code, message));
      });
      return;
    }
    const info: HttpRequestInfo = {
      path,
      query: new URLSearchParams(req.getQuery() ?? ''),
      authorization: req.getHeader('authorization'),
    };
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    this.serve(res, info, route, () => aborted);
  }

  /** Run a route and write its result (or a 500), unless the request was aborted. */
  private serve(
    res: HttpResponse,
    info: HttpRequestInfo,
    route: HttpRoute,
    isAborted: () => boolean,
  ): void {
    const path = info.path;
    const send = (r: HttpRouteResult): void => {
      if (isAborted()) return;
      if (r.status === 401 || r.status === 403) {
        // Refused by a route's key check (requireAdmin): worth a line, never the key.
        const remote = Buffer.from(res.getRemoteAddressAsText()).toString('utf8');
        this.security({
          kind: r.status === 401 ? 'auth.failure' : 'permission.denied',
          remote,
          scope:
            r.status === 403
              ? this.apiKeys.authorize(/^Bearer\s+(\S+)\s*$/i.exec(info.authorization)?.[1])
              : undefined,
          target: path,
          reason: r.status === 401 ? 'HTTP 401: no valid API key' : 'HTTP 403: not an admin key',
        });
        this.log.warn(
          {
            path,
            remote,
            status: r.status,
            code: r.status === 401 ? ErrorCodes.AUTH_REQUIRED : ErrorCodes.AUTH_FORBIDDEN,
          },
          'http request refused',
        );
      }
      res.cork(() => {
        res.writeStatus(statusLine(r.status)).writeHeader('Content-Type', r.contentType);
        let cache = false;
        for (const [name, value] of Object.entries(r.headers ?? {})) {
          if (name.toLowerCase() === 'cache-control') cache = true;
          res.writeHeader(name, value);
        }
        if (!cache) res.writeHeader('Cache-Control', 'no-store');
        res.end(r.body);
      });
    };
    const fail = (err: unknown): void => {
      this.log.error({ err, path }, 'http route failed');
      send({
        status: 500,
        contentType: 'application/json',
        body: errorBody('internal', `route ${path} failed`),
      });
    };
    try {
      const r = route(info);
      if (r instanceof Promise) r.then(send, fail);
      else send(r);
    } catch (err) {
      fail(err);
    }
  }
}

/**
 * Wrap an HTTP route so that it needs an admin API key in `Authorization:
 * Bearer <key>`: 401 (with `WWW-Authenticate: Bearer`) without a valid key,
 * 403 with a key whose role is not admin. The key is never echoed.
 */
export function requireAdmin(apiKeys: ApiKeyTable, route: HttpRoute): HttpRoute {
  return (req) => {
    const key = /^Bearer\s+(\S+)\s*$/i.exec(req.authorization)?.[1];
    const scope = apiKeys.authorize(key);
    if (scope === undefined) {
      return {
        status: 401,
        contentType: 'application/json',
        headers: { 'WWW-Authenticate': 'Bearer' },
        body: errorBody(
          'unauthorized',
          req.authorization === EMPTY_HEADER
            ? `${req.path} needs an admin API key: send Authorization: Bearer <key>`
            : key === undefined
              ? 'malformed Authorization header: expected Bearer <key>'
              : 'unknown, revoked or expired API key',
        ),
      };
    }
    if (!scope.admin) {
      return {
        status: 403,
        contentType: 'application/json',
        body: errorBody(
          'forbidden',
          `${req.path} needs an admin API key; this key (${scope.keyId}) has role ${scope.role}`,
        ),
      };
    }
    return route(req);
  };
}

function intOption(
  name: string,
  value: number | undefined,
  dflt: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return dflt;
  if (!Number.isInteger(value) || value < min || value > max) {
    invalidArgument(name, value, `an integer from ${min} to ${max}`);
  }
  return value;
}

/** The route of an exact path, else of the longest `<prefix>/*` path it is under. */
function routeFor(routes: ReadonlyMap<string, HttpRoute>, path: string): HttpRoute | undefined {
  const exact = routes.get(path);
  if (exact !== undefined) return exact;
  let best: HttpRoute | undefined;
  let bestLen = -1;
  for (const [p, r] of routes) {
    if (!p.endsWith('/*')) continue;
    const prefix = p.slice(0, -1);
    if (path.length > prefix.length && path.startsWith(prefix) && prefix.length > bestLen) {
      best = r;
      bestLen = prefix.length;
    }
  }
  return best;
}

function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
}

function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

/** At most 80 characters of client input, for error messages. */
function preview(s: string): string {
  return s.length <= 80 ? s : `${s.slice(0, 77)}...`;
}
