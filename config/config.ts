import { readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { resolveRiskLimits } from '../actors/risk-rules.js';
import { resolveSymbolActorOptions } from '../actors/symbol-actor-module.js';
import { checkTtlDays } from '../adapters/clickhouse/schema.js';
import { ErrorCodes, QilinError } from '../kernel/errors.js';
import { PARTITION_SET_ALLOWED, parsePartitionSet } from '../kernel/partition-set.js';

/**
 * Qilin configuration: defaults, then a JSON file (`--config FILE` or
 * QILIN_CONFIG), then `QILIN_*` environment variables. Validated once at start;
 * a bad value fails with QLN_CONFIG_INVALID naming the key, the value, where
 * it came from and what is allowed.
 */

const port = (allowed = 'a TCP port from 1 to 65535') =>
  z.coerce
    .number({ error: allowed })
    .int({ error: allowed })
    .min(1, { error: allowed })
    .max(65535, { error: allowed });

const url = (schemes: readonly string[]) => {
  const allowed = `a URL with scheme ${schemes.map((s) => `${s}://`).join(' or ')}`;
  return z.string({ error: allowed }).refine(
    (v) => {
      try {
        return schemes.includes(new URL(v).protocol.replace(/:$/, ''));
      } catch {
        return false;
      }
    },
    { error: allowed },
  );
};

const apiKeyScope = /^(read|admin|read=[A-Za-z0-9_*/.-]+)$/;
const apiKeysAllowed =
  'comma-separated key:scope pairs, key [A-Za-z0-9_-]{8,}, scope read | admin | read=<topic pattern>';

/**
 * An object option checked by the resolver of its owner (the one place that
 * knows its keys and bounds), given as an object in a file or as JSON text in
 * the environment; the result has every default filled in.
 */
function jsonObject<T>(resolve: (raw: unknown) => T, key: string) {
  return z
    .unknown()
    .optional()
    .transform((raw, ctx): T => {
      let value = raw;
      if (typeof raw === 'string') {
        try {
          value = JSON.parse(raw) as unknown;
        } catch (err) {
          ctx.addIssue({
            code: 'custom',
            message: `JSON text of an object (${(err as Error).message})`,
          });
          return z.NEVER;
        }
      }
      try {
        return resolve(value);
      } catch (err) {
        // QLN_INVALID_ARGUMENT names the option (details.name); a formula
        // error names its feature (details.feature) in its own message.
        const e = err as { message?: string; details?: { name?: string; feature?: string } };
        const where =
          e.details?.name ?? (e.details?.feature === undefined ? undefined : 'formulas');
        ctx.addIssue({
          code: 'custom',
          message: `${where === undefined ? key : `${key}.${where}`}: ${e.message ?? String(err)}`,
        });
        return z.NEVER;
      }
    });
}

export const ConfigSchema = z.object({
  /** NATS server URL(s) for market data in and signals out. */
  natsUrl: url(['nats', 'tls', 'ws', 'wss']).default('nats://127.0.0.1:14222'),
  // --- NATS credentials (docs/security.md "NATS roles") ---
  /**
   * NATS nkey seed file this process connects with, whatever its role
   * (wins over natsAuthDir). Unset with natsAuthDir unset: no credentials.
   */
  natsSeedFile: z.string({ error: 'a path to an nkey seed file' }).min(1).optional(),
  /**
   * Folder of per-role nkey seed files (`<dir>/<role>.nk`, as written by
   * `qilin services up`); each component takes the file of its role.
   */
  natsAuthDir: z.string({ error: 'a folder of <role>.nk seed files' }).min(1).optional(),
  // --- end NATS credentials ---
  /** NATS subject filter for market data (a partition may narrow it, e.g. md.nyse.>). */
  marketSubject: z
    .string({ error: 'a NATS subject starting with md. (wildcards * and > allowed)' })
    .regex(/^md(\.([A-Za-z0-9_-]+|\*))*(\.>)?$/, {
      error: 'a NATS subject starting with md. (wildcards * and > allowed)',
    })
    .default('md.>'),
  /** Redis URL: actor snapshots, last-value cache, kill switch. */
  redisUrl: url(['redis', 'rediss']).default('redis://127.0.0.1:16379'),
  /** ClickHouse HTTP URL; unset means the embedded chdb store. */
  clickhouseUrl: url(['http', 'https']).optional(),
  /** ClickHouse database name. */
  clickhouseDb: z
    .string({ error: 'a database name [A-Za-z_][A-Za-z0-9_]*' })
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'a database name [A-Za-z_][A-Za-z0-9_]*' })
    .default('qilin'),
  /**
   * Days of history kept per store table, `{"ticks": 90, "metrics": 30}`
   * (tables: adapters/clickhouse/schema.ts TTL_TABLES); set as TTL clauses
   * by `migrate` on servers that support them (ClickHouse 19.6+, chdb), not
   * on 18.16. Default: none (keep everything). Env: JSON text.
   */
  storeTtlDays: jsonObject(checkTtlDays, 'storeTtlDays'),
  /** HTTP + WebSocket port (metrics, health, /ws). */
  httpPort: port().default(9470),
  /**
   * Operations port: when set, `/metrics` and `/health/*` are served here
   * (plain HTTP on `opsHost`) and no longer on `httpPort`, so the public
   * port carries only `/ws`, the dashboard and admin routes. 0: an
   * ephemeral port. Unset (default): everything on `httpPort`.
   */
  opsPort: z.coerce
    .number({ error: 'a TCP port from 0 to 65535' })
    .int({ error: 'a TCP port from 0 to 65535' })
    .min(0, { error: 'a TCP port from 0 to 65535' })
    .max(65535, { error: 'a TCP port from 0 to 65535' })
    .optional(),
  /** Interface of the operations port (default 127.0.0.1; `0.0.0.0` in a pod so probes reach it). */
  opsHost: z
    .string({ error: 'an IP address or host name' })
    .min(1, { error: 'an IP address or host name' })
    .default('127.0.0.1'),
  /** Worker threads for symbol actors (default: one per core). */
  workers: z.coerce
    .number({ error: 'an integer from 1 to 64' })
    .int({ error: 'an integer from 1 to 64' })
    .min(1, { error: 'an integer from 1 to 64' })
    .max(64, { error: 'an integer from 1 to 64' })
    .default(() => availableParallelism()),
  /**
   * Bytes of each frame ring (per worker: market in, outputs to the main
   * thread, rows to the store worker); a power of two. 4 MiB holds ~6,000
   * encoded outputs or ~50,000 ticks.
   */
  ringBytes: z.coerce
    .number({ error: 'a power of two from 65536 to 1073741824 (bytes)' })
    .int({ error: 'a power of two from 65536 to 1073741824 (bytes)' })
    .refine((n) => n >= 1 << 16 && n <= 1 << 30 && (n & (n - 1)) === 0, {
      error: 'a power of two from 65536 to 1073741824 (bytes)',
    })
    .default(1 << 22),
  /**
   * SymbolActor options (window sizes, feature periods, quality checks,
   * model weights, strategy thresholds): actors/symbol-actor.ts
   * SymbolActorOptions; unset keys keep their defaults. Env: JSON text.
   */
  actor: jsonObject(resolveSymbolActorOptions, 'actor'),
  /** Risk limits of the account (actors/risk-rules.ts RiskLimits). Env: JSON text. */
  risk: jsonObject(resolveRiskLimits, 'risk'),
  /** API keys for the WebSocket server, `key:scope` pairs. */
  apiKeys: z
    .string({ error: apiKeysAllowed })
    .refine(
      (v) =>
        v === '' ||
        v.split(',').every((pair) => {
          const i = pair.indexOf(':');
          return (
            i > 0 &&
            /^[A-Za-z0-9_-]{8,}$/.test(pair.slice(0, i)) &&
            apiKeyScope.test(pair.slice(i + 1))
          );
        }),
      { error: apiKeysAllowed },
    )
    .default(''),
  /**
   * Redis key prefix of the API keys managed by `qilin keys` (a hash per key
   * id, `<prefix>ids`, `<prefix>version`, channel `<prefix>changed`); they
   * merge with apiKeys. Kernels and `qilin keys` that must agree share it.
   */
  apiKeyPrefix: z
    .string({ error: 'a Redis key prefix of 1 to 100 printable characters' })
    .regex(/^[\x21-\x7e]{1,100}$/, {
      error: 'a Redis key prefix of 1 to 100 printable characters',
    })
    .default('qilin:apikey:'),
  /** WebSockets one API key may hold open at once per kernel; the next is closed with 4029. */
  wsMaxConnectionsPerKey: z.coerce
    .number({ error: 'an integer from 1 to 1000000' })
    .int({ error: 'an integer from 1 to 1000000' })
    .min(1, { error: 'an integer from 1 to 1000000' })
    .max(1_000_000, { error: 'an integer from 1 to 1000000' })
    .default(10_000),
  /** Subscribe/unsubscribe frames per second per WebSocket connection (token bucket); over it: closed with 4029. */
  wsSubscribeRatePerSec: z.coerce
    .number({ error: 'an integer from 1 to 1000000' })
    .int({ error: 'an integer from 1 to 1000000' })
    .min(1, { error: 'an integer from 1 to 1000000' })
    .max(1_000_000, { error: 'an integer from 1 to 1000000' })
    .default(20),
  /** Topic patterns one WebSocket connection may hold; a subscribe over it closes it with 4029. */
  wsMaxTopicsPerConnection: z.coerce
    .number({ error: 'an integer from 1 to 1000000' })
    .int({ error: 'an integer from 1 to 1000000' })
    .min(1, { error: 'an integer from 1 to 1000000' })
    .max(1_000_000, { error: 'an integer from 1 to 1000000' })
    .default(1024),
  // ── WebSocket subscriber sessions (docs/adr/0007-subscriber-sessions.md) ──
  /**
   * Bytes of published WebSocket frames kept so that a client reconnecting
   * with its last offsets gets what it missed (allocated once at start; the
   * oldest frames are overwritten). 0 disables history. Default 64 MiB.
   */
  wsHistoryBytes: z.coerce
    .number({ error: 'an integer number of bytes from 0 (off) to 1073741824 (1 GiB)' })
    .int({ error: 'an integer number of bytes from 0 (off) to 1073741824 (1 GiB)' })
    .min(0, { error: 'an integer number of bytes from 0 (off) to 1073741824 (1 GiB)' })
    .max(1 << 30, { error: 'an integer number of bytes from 0 (off) to 1073741824 (1 GiB)' })
    .default(64 << 20),
  /** Interval of the WebSocket `heartbeat` frames a client asks for with `{"op":"heartbeat"}`, ms. */
  wsHeartbeatMs: z.coerce
    .number({ error: 'an integer number of milliseconds from 50 to 3600000' })
    .int({ error: 'an integer number of milliseconds from 50 to 3600000' })
    .min(50, { error: 'an integer number of milliseconds from 50 to 3600000' })
    .max(3_600_000, { error: 'an integer number of milliseconds from 50 to 3600000' })
    .default(1000),
  // ── end of WebSocket subscriber sessions ──
  // ── models (issue 8; adapters/onnx/README.md, docs/models.md) ──
  /**
   * Name of the model whose promoted version scores the trades (the model
   * registry's; `qilin model promote`). Unset: the built-in baseline model.
   */
  model: z
    .string({ error: 'a model name [A-Za-z0-9][A-Za-z0-9_.-]{0,63}' })
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, {
      error: 'a model name [A-Za-z0-9][A-Za-z0-9_.-]{0,63}',
    })
    .optional(),
  /** How often the kernel checks the registry for a promotion or a rollback, ms. */
  modelPollMs: z.coerce
    .number({ error: 'an integer number of milliseconds from 50 to 600000' })
    .int({ error: 'an integer number of milliseconds from 50 to 600000' })
    .min(50, { error: 'an integer number of milliseconds from 50 to 600000' })
    .max(600_000, { error: 'an integer number of milliseconds from 50 to 600000' })
    .default(1000),
  /** Most rows per model run (the symbols of a worker that traded in one drain). */
  modelMaxBatch: z.coerce
    .number({ error: 'an integer from 1 to 65536' })
    .int({ error: 'an integer from 1 to 65536' })
    .min(1, { error: 'an integer from 1 to 65536' })
    .max(65_536, { error: 'an integer from 1 to 65536' })
    .default(512),
  /** A model run longer than this counts as a failure for the model's breaker, µs. */
  modelBudgetUs: z.coerce
    .number({ error: 'a number of microseconds > 0' })
    .positive({ error: 'a number of microseconds > 0' })
    .default(5000),
  /** After the model's breaker opens, the time before it tries the model again, ms. */
  modelResetMs: z.coerce
    .number({ error: 'an integer number of milliseconds ≥ 10' })
    .int({ error: 'an integer number of milliseconds ≥ 10' })
    .min(10, { error: 'an integer number of milliseconds ≥ 10' })
    .default(5000),
  /** Live rows per drift window (PSI of the raw score against the manifest's reference). */
  modelDriftRows: z.coerce
    .number({ error: 'an integer ≥ 100' })
    .int({ error: 'an integer ≥ 100' })
    .min(100, { error: 'an integer ≥ 100' })
    .default(5000),
  /** A drift window's PSI above this fails the live version's batches (the breaker's input). */
  modelDriftPsi: z.coerce
    .number({ error: 'a number > 0' })
    .positive({ error: 'a number > 0' })
    .default(0.25),
  /** The last step of the fallback chain: the rule on features (baseline model), or no signal. */
  modelLastResort: z.enum(['rule', 'none'], { error: 'rule or none' }).default('rule'),
  // ── end of models ──
  /** Folder for local service data, logs and spill files (git-ignored). */
  stateDir: z
    .string({ error: 'a folder path' })
    .min(1, { error: 'a folder path' })
    .default('.qilin'),
  /** Log level. */
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /**
   * Market partitions: the NATS server maps `md.<venue>.<symbol>` to
   * `md.<venue>.<symbol>.<p>`, p = partition(natsPartitions, symbol), and each
   * worker subscribes to its share (p mod workers). Must equal the server's
   * mapping (`qilin services up` writes it from this value). 0: the server has
   * no mapping; every worker subscribes to marketSubject and keeps its own
   * symbols (each message is delivered once per worker).
   */
  natsPartitions: z.coerce
    .number({ error: 'an integer from 0 to 1024' })
    .int({ error: 'an integer from 0 to 1024' })
    .min(0, { error: 'an integer from 0 to 1024' })
    .max(1024, { error: 'an integer from 0 to 1024' })
    .default(16),
  /**
   * Which of the natsPartitions this kernel takes: `all`, or partitions and
   * ranges like `0-7`, `8-15`, `0,2,4-6`. Kernels sharing a NATS server divide
   * the market this way; each claims its partitions in Redis at start and a
   * claim held by another kernel fails the start (docs/operations.md
   * "Several kernels"). Checked against natsPartitions when loaded.
   */
  kernelPartitions: z
    .string({ error: PARTITION_SET_ALLOWED })
    .min(1, { error: PARTITION_SET_ALLOWED })
    .default('all'),
  /**
   * This kernel's name in its partition claims; a kernel restarted with the
   * same id takes its claims over. Default `<hostname>:<httpPort>` (`<hostname>:pid-<pid>` on an ephemeral port).
   */
  kernelId: z
    .string({ error: 'a name of 1 to 200 printable characters' })
    .regex(/^[\x21-\x7e]{1,200}$/, { error: 'a name of 1 to 200 printable characters' })
    .optional(),
  /**
   * Lease of the partition claims, ms: refreshed every third of it; a
   * kernel that died without releasing them holds them this long.
   */
  partitionLeaseMs: z.coerce
    .number({ error: 'an integer from 1000 to 600000 (ms)' })
    .int({ error: 'an integer from 1000 to 600000 (ms)' })
    .min(1000, { error: 'an integer from 1000 to 600000 (ms)' })
    .max(600_000, { error: 'an integer from 1000 to 600000 (ms)' })
    .default(15_000),
  /** Redis key prefix of the partition claims (`<prefix><p>`); kernels that must not overlap share it. */
  claimPrefix: z
    .string({ error: 'a Redis key prefix of 1 to 100 printable characters' })
    .regex(/^[\x21-\x7e]{1,100}$/, {
      error: 'a Redis key prefix of 1 to 100 printable characters',
    })
    .default('qilin:partition:'),
  /**
   * Failover: a partition no kernel has claimed for a whole lease is adopted
   * by this kernel (its durable, snapshots and stream position included),
   * and the start takes the free ones of kernelPartitions instead of failing
   * on those held by others. docs/operations.md "Several kernels".
   */
  partitionTakeover: z
    .union([z.boolean(), z.enum(['true', 'false', '1', '0'])], { error: 'true or false' })
    .transform((v) => v === true || v === 'true' || v === '1')
    .default(false),
  /**
   * Cluster fan-out: publish this kernel's WebSocket frames on NATS
   * `qilin.fan.<kernel>` and send other kernels' frames to its own
   * subscribers, so a subscriber on any node sees every symbol.
   */
  clusterFanout: z
    .union([z.boolean(), z.enum(['true', 'false', '1', '0'])], { error: 'true or false' })
    .transform((v) => v === true || v === 'true' || v === '1')
    .default(false),
  /**
   * JetStream market input (`--jetstream`): how long the server waits for a
   * tick's ack before redelivering it, ms, set when the kernel creates a
   * durable. Ticks are acked once stored (about a second); after a crash the
   * unacked ones come back after this long (docs/adr/0005-exactly-once-ticks.md).
   */
  jetstreamAckWaitMs: z.coerce
    .number({ error: 'an integer from 1000 to 3600000 (ms)' })
    .int({ error: 'an integer from 1000 to 3600000 (ms)' })
    .min(1000, { error: 'an integer from 1000 to 3600000 (ms)' })
    .max(3_600_000, { error: 'an integer from 1000 to 3600000 (ms)' })
    .default(30_000),
  /**
   * Warm restart (docs/adr/0006-warm-restart.md): every this many ms each
   * worker snapshots the actors that changed (windows, bars, indicators,
   * quality, strategy and gate state) to Redis, or to files under
   * `<stateDir>/snapshots` while Redis is away; always once on a graceful
   * stop. 0: only on stop.
   */
  snapshotIntervalMs: z.coerce
    .number({ error: 'an integer from 0 to 3600000 (ms)' })
    .int({ error: 'an integer from 0 to 3600000 (ms)' })
    .min(0, { error: 'an integer from 0 to 3600000 (ms)' })
    .max(3_600_000, { error: 'an integer from 0 to 3600000 (ms)' })
    .default(30_000),
  /** Snapshot the actors (snapshotIntervalMs) and restore them at start and after a worker restart; false: cold starts, no snapshots. */
  warmRestart: z
    .union([z.boolean(), z.enum(['true', 'false', '1', '0'])], { error: 'true or false' })
    .transform((v) => v === true || v === 'true' || v === '1')
    .default(true),
  /**
   * Redis key prefix of the snapshots (`<prefix><unit>`). Default
   * `qilin:snapshot:<clickhouseDb>:`, so kernels writing to different
   * databases never restore each other's state.
   */
  snapshotPrefix: z
    .string({ error: 'a Redis key prefix of 1 to 100 printable characters' })
    .regex(/^[\x21-\x7e]{1,100}$/, {
      error: 'a Redis key prefix of 1 to 100 printable characters',
    })
    .optional(),
  // ── model registry (issue 8 item 2; adapters/onnx/README.md "Registry in NATS") ──
  /**
   * Where models live: `local` (a directory, `<stateDir>/models`; one node)
   * or `nats` (JetStream KV + Object Store on natsUrl; every node sees one
   * state). `qilin model --registry` overrides it.
   */
  modelRegistry: z
    .enum(['local', 'nats'], {
      error: 'local (a directory, <stateDir>/models) or nats (JetStream KV + Object Store)',
    })
    .default('local'),
  // ── end model registry ──
  // ── jobs (issue 10 item 6; jobs/README.md) ──
  /** Run the job worker (backtests, training) in `qilin start`; false: this kernel takes no jobs. */
  jobsEnabled: z
    .union([z.boolean(), z.enum(['true', 'false', '1', '0'])], { error: 'true or false' })
    .transform((v) => v === true || v === 'true' || v === '1')
    .default(true),
  /** Jobs one kernel runs at once, each on a worker thread of its own (default 1: the hot path keeps a core). */
  jobsConcurrency: z.coerce
    .number({ error: 'an integer from 1 to 64' })
    .int({ error: 'an integer from 1 to 64' })
    .min(1, { error: 'an integer from 1 to 64' })
    .max(64, { error: 'an integer from 1 to 64' })
    .default(1),
  /**
   * Redis key prefix of the job queue (BullMQ `prefix`). Default
   * `qilin:jobs:<clickhouseDb>`, so stacks on one Redis keep their own queues.
   */
  jobsPrefix: z
    .string({ error: 'a Redis key prefix of 1 to 100 printable characters' })
    .regex(/^[\x21-\x7e]{1,100}$/, {
      error: 'a Redis key prefix of 1 to 100 printable characters',
    })
    .optional(),
  /**
   * Lock of a running job, ms: renewed every half of it while the kernel
   * lives; a kernel that died leaves its job stalled this long, then another
   * kernel (or itself after a restart) takes it again.
   */
  jobsLockMs: z.coerce
    .number({ error: 'an integer from 1000 to 600000 (ms)' })
    .int({ error: 'an integer from 1000 to 600000 (ms)' })
    .min(1000, { error: 'an integer from 1000 to 600000 (ms)' })
    .max(600_000, { error: 'an integer from 1000 to 600000 (ms)' })
    .default(30_000),
  // ── end jobs ──
  /** Local service ports used by `qilin services`. */
  natsPort: port().default(14222),
  natsMonitorPort: port().default(18222),
  redisPort: port().default(16379),
  clickhouseHttpPort: port().default(18123),
  clickhouseTcpPort: port().default(19000),
});

export type QilinConfig = z.infer<typeof ConfigSchema>;
export type ConfigKey = keyof QilinConfig;

/**
 * Where this host reaches a kernel's `/metrics` and `/health/*`: the
 * operations port when one is set (`opsPort`), else the HTTP port.
 */
export function opsBaseUrl(
  config: Pick<QilinConfig, 'httpPort' | 'opsPort' | 'opsHost'>,
  port?: number,
): string {
  if (config.opsPort === undefined) return `http://127.0.0.1:${port ?? config.httpPort}`;
  const host =
    config.opsHost === '0.0.0.0' || config.opsHost === '::' ? '127.0.0.1' : config.opsHost;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port ?? config.opsPort}`;
}

/** Environment variable for each key: natsUrl → QILIN_NATS_URL. */
export function envName(key: string): string {
  return `QILIN_${key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}`;
}

const KEYS = Object.keys(ConfigSchema.shape) as ConfigKey[];

export interface LoadConfigOptions {
  /** JSON config file; keys as in QilinConfig. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Highest-priority overrides (CLI flags). */
  overrides?: Partial<Record<ConfigKey, unknown>>;
}

function readFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new QilinError(
      ErrorCodes.CONFIG_FILE,
      `cannot read config file ${file}: ${(cause as Error).message}`,
      {
        cause,
        details: { file },
      },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new QilinError(
      ErrorCodes.CONFIG_FILE,
      `config file ${file} is not valid JSON: ${(cause as Error).message}`,
      {
        cause,
        details: { file },
      },
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new QilinError(ErrorCodes.CONFIG_FILE, `config file ${file} must hold a JSON object`, {
      details: { file },
    });
  }
  checkSecretFileMode(file, parsed as Record<string, unknown>);
  const unknownKeys = Object.keys(parsed).filter((k) => !(KEYS as string[]).includes(k));
  if (unknownKeys.length > 0) {
    throw new QilinError(
      ErrorCodes.CONFIG_INVALID,
      `config file ${file}: unknown key ${JSON.stringify(unknownKeys[0])} (known keys: ${KEYS.join(', ')})`,
      { details: { file, key: unknownKeys[0], allowed: KEYS } },
    );
  }
  return parsed as Record<string, unknown>;
}

/** Keys whose values are secrets (API keys, passwords in URLs). */
const SECRET_KEYS = ['apiKeys'] as const;
/** URL keys: a secret when they carry a password (`redis://:pw@host`). */
const URL_KEYS = ['natsUrl', 'redisUrl', 'clickhouseUrl'] as const;

/**
 * A config file holding a secret (apiKeys, or a URL with a password) must
 * not be readable by other users: refused with QLN_CONFIG_INVALID naming the
 * file, its mode and the fix. Not checked on Windows (no POSIX modes).
 */
function checkSecretFileMode(file: string, parsed: Record<string, unknown>): void {
  if (process.platform === 'win32') return;
  const secrets: string[] = SECRET_KEYS.filter((k) => {
    const v = parsed[k];
    return typeof v === 'string' && v !== '';
  });
  for (const k of URL_KEYS) {
    const v = parsed[k];
    if (typeof v !== 'string') continue;
    try {
      if (new URL(v).password !== '') secrets.push(k);
    } catch {
      // Not a URL: the schema says so later.
    }
  }
  if (secrets.length === 0) return;
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o004) === 0) return;
  const octal = `0${mode.toString(8)}`;
  throw new QilinError(
    ErrorCodes.CONFIG_INVALID,
    `config file ${file} holds secrets (${secrets.join(', ')}) but is world-readable (mode ${octal}): run chmod o-r ${file} (or 600), or pass the secrets in QILIN_* variables`,
    { details: { file, mode: octal, keys: secrets } },
  );
}

/** A config value as it may appear in an error or a log: secrets masked. */
export function redact(key: string, value: unknown): unknown {
  if ((SECRET_KEYS as readonly string[]).includes(key) && value !== undefined) return '<redacted>';
  if ((URL_KEYS as readonly string[]).includes(key) && typeof value === 'string') {
    try {
      const u = new URL(value);
      if (u.password !== '') {
        u.password = 'redacted';
        return u.toString();
      }
    } catch {
      return value;
    }
  }
  return value;
}

/** Load and validate the configuration; throws QLN_CONFIG_INVALID / QLN_CONFIG_FILE. */
export function loadConfig(options: LoadConfigOptions = {}): QilinConfig {
  const env = options.env ?? process.env;
  const file = options.file ?? env['QILIN_CONFIG'];
  const raw: Record<string, unknown> = {};
  const source: Record<string, string> = {};
  if (file !== undefined && file !== '') {
    for (const [k, v] of Object.entries(readFile(file))) {
      raw[k] = v;
      source[k] = `file ${file}`;
    }
  }
  for (const key of KEYS) {
    const name = envName(key);
    const v = env[name];
    if (v !== undefined && v !== '') {
      raw[key] = v;
      source[key] = `env ${name}`;
    }
  }
  for (const [k, v] of Object.entries(options.overrides ?? {})) {
    if (v !== undefined) {
      raw[k] = v;
      source[k] = 'command line';
    }
  }
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const key = String(issue?.path[0] ?? '?');
    // Errors end up in logs: a secret's value is never shown.
    const value = redact(key, raw[key]);
    throw new QilinError(
      ErrorCodes.CONFIG_INVALID,
      `config key ${key} (${source[key] ?? 'default'}) = ${JSON.stringify(value)} is invalid: expected ${issue?.message ?? 'a valid value'}`,
      { details: { key, value, source: source[key], allowed: issue?.message } },
    );
  }
  const set = parsePartitionSet(result.data.kernelPartitions, result.data.natsPartitions);
  if (typeof set === 'string') {
    const key = 'kernelPartitions';
    throw new QilinError(
      ErrorCodes.CONFIG_INVALID,
      `config key ${key} (${source[key] ?? 'default'}) = ${JSON.stringify(raw[key])} is invalid: ${set}; expected ${PARTITION_SET_ALLOWED}`,
      { details: { key, value: raw[key], source: source[key], allowed: PARTITION_SET_ALLOWED } },
    );
  }
  return result.data;
}
