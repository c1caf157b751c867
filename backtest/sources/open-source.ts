/**
 * `openTickSource(spec, ctx)`: one string names the history to replay (the
 * CLI's `--from`), and comes back as an opened TickSource:
 *
 * ```
 *  sim[:symbols=8,messages=200000,seed=1,stepUs=1000]    the generated market
 *  store[:since=T,until=T,symbols=A|B,pageRows=N,final=true]
 *                                                        the configured store's ticks
 *  jetstream[:stream=QILIN_MD,since=T,seq=N,subjects=md.x.>|md.y.>]
 *                                                        the JetStream market stream
 *  path/to/file.csv                                      CSV with a header
 *  path/to/file.arrow | .arrows | .ipc                   Arrow IPC file or stream
 * ```
 * T: µs since epoch, or an ISO date-time (`2026-01-02T09:30:00Z`). A spec
 * that does not parse throws QLN_REPLAY_SOURCE_SPEC naming the part that is
 * wrong and what is allowed; a source that cannot be opened throws
 * QLN_REPLAY_SOURCE_FAILED (missing file, bad header, store or stream
 * unreachable, the embedded store held by a running kernel).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import type { QilinConfig } from '../../config/config.js';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';
import type { EventStore } from '../../kernel/event-store.js';
import type { Logger } from '../../kernel/logger.js';
import type { TickSource } from '../tick-chunk.js';
import { ArrowTickSource } from './arrow-source.js';
import { CsvTickSource } from './csv-source.js';
import { GeneratedTickSource } from './generated-source.js';
import { JetStreamTickSource } from './jetstream-source.js';
import { StoreTickSource } from './store-source.js';
import { sourceFailed } from './tick-fields.js';

export { writeTicksCsv } from './csv-source.js';
export { writeTicksArrow } from './arrow-source.js';
export { sourceRows } from './tick-rows.js';

/** What the sources may need; each kind uses its own part. */
export interface TickSourceContext {
  /** The kernel config: the store (`clickhouseUrl` / `stateDir`, `clickhouseDb`) and NATS (`natsUrl`, credentials). */
  config?: QilinConfig;
  /** Use this store instead of opening the configured one (not closed with the source). */
  store?: Pick<EventStore, 'query' | 'close'>;
  /** Use this connection instead of connecting (not closed with the source). */
  nc?: NatsConnection;
  log?: Logger;
}

const USAGE =
  'sim[:symbols=N,messages=N,seed=N,stepUs=N], store[:since=T,until=T,symbols=A|B,pageRows=N,final=true|false], jetstream[:stream=NAME,since=T,seq=N,subjects=S|S], FILE.csv, FILE.arrow, FILE.arrows or FILE.ipc';

const OPTIONS = {
  sim: ['symbols', 'messages', 'seed', 'stepUs'],
  store: ['since', 'until', 'symbols', 'pageRows', 'final'],
  jetstream: ['stream', 'since', 'seq', 'subjects'],
} as const;
type Kind = keyof typeof OPTIONS;

function specError(spec: string, what: string): QilinError {
  return new QilinError(
    ErrorCodes.REPLAY_SOURCE_SPEC,
    `replay source ${JSON.stringify(spec)}: ${what} (allowed: ${USAGE})`,
    { details: { spec } },
  );
}

/** A parsed spec: a kind with its options, or a file. */
export type TickSourceSpec =
  { kind: Kind; options: Record<string, string> } | { kind: 'csv' | 'arrow'; path: string };

/** Parse a spec without opening anything (QLN_REPLAY_SOURCE_SPEC when it is wrong). */
export function parseTickSourceSpec(spec: string): TickSourceSpec {
  const s = spec.trim();
  if (s === '') throw specError(spec, 'empty');
  const colon = s.indexOf(':');
  const head = colon < 0 ? s : s.slice(0, colon);
  if (head in OPTIONS) {
    const kind = head as Kind;
    const options: Record<string, string> = {};
    const rest = colon < 0 ? '' : s.slice(colon + 1);
    if (rest !== '') {
      for (const part of rest.split(',')) {
        const eq = part.indexOf('=');
        const k = eq < 0 ? part : part.slice(0, eq);
        if (eq < 1 || eq === part.length - 1)
          throw specError(spec, `${JSON.stringify(part)} is not key=value`);
        if (!(OPTIONS[kind] as readonly string[]).includes(k)) {
          throw specError(
            spec,
            `${kind} has no option ${JSON.stringify(k)} (${kind} takes ${OPTIONS[kind].join(', ')})`,
          );
        }
        if (k in options) throw specError(spec, `option ${k} given twice`);
        options[k] = part.slice(eq + 1);
      }
    }
    return { kind, options };
  }
  if (/\.csv$/i.test(s)) return { kind: 'csv', path: s };
  if (/\.(arrow|arrows|ipc)$/i.test(s)) return { kind: 'arrow', path: s };
  throw specError(spec, `neither a source kind nor a .csv / .arrow / .arrows / .ipc file`);
}

function int(spec: string, key: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) {
    throw specError(spec, `${key}=${v} is not an integer ≥ ${min}`);
  }
  return n;
}

/** µs since epoch, or an ISO date-time → µs. */
function time(spec: string, key: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (/^\d+$/.test(v)) return int(spec, key, v, 0);
  const ms = Date.parse(v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(ms)) {
    throw specError(spec, `${key}=${v} is neither µs since epoch nor an ISO date-time`);
  }
  return ms * 1000;
}

function list(spec: string, key: string, v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const xs = v.split('|');
  if (xs.some((x) => x === '')) throw specError(spec, `${key}=${v} has an empty item (A|B|…)`);
  return xs;
}

/** Open the source a spec names (see the header); the caller closes it. */
export async function openTickSource(
  spec: string,
  ctx: TickSourceContext = {},
): Promise<TickSource> {
  const p = parseTickSourceSpec(spec);
  switch (p.kind) {
    case 'sim': {
      const o = p.options;
      const stepUs = o['stepUs'] === undefined ? undefined : Number(o['stepUs']);
      if (stepUs !== undefined && !(stepUs > 0 && Number.isFinite(stepUs))) {
        throw specError(spec, `stepUs=${o['stepUs']} is not a number of µs > 0`);
      }
      return new GeneratedTickSource({
        ...defined('symbols', int(spec, 'symbols', o['symbols'], 1)),
        ...defined('messages', int(spec, 'messages', o['messages'], 1)),
        ...defined('seed', int(spec, 'seed', o['seed'], -(2 ** 31))),
        ...defined('stepUs', stepUs),
      });
    }
    case 'csv':
    case 'arrow': {
      const src = p.kind === 'csv' ? new CsvTickSource(p.path) : new ArrowTickSource(p.path);
      try {
        await src.open();
      } catch (e) {
        await src.close().catch(() => undefined);
        throw e;
      }
      return src;
    }
    case 'store':
      return openStore(spec, p.options, ctx);
    case 'jetstream':
      return openJetStream(spec, p.options, ctx);
  }
}

function defined<K extends string, V>(k: K, v: V | undefined): Partial<Record<K, V>> {
  return v === undefined ? {} : ({ [k]: v } as Record<K, V>);
}

async function openStore(
  spec: string,
  o: Record<string, string>,
  ctx: TickSourceContext,
): Promise<TickSource> {
  const final = o['final'];
  if (final !== undefined && final !== 'true' && final !== 'false') {
    throw specError(spec, `final=${final} is not true or false`);
  }
  const filters = {
    ...defined('since', time(spec, 'since', o['since'])),
    ...defined('until', time(spec, 'until', o['until'])),
    ...defined('symbols', list(spec, 'symbols', o['symbols'])),
    ...defined('pageRows', int(spec, 'pageRows', o['pageRows'], 1)),
    ...(final !== undefined ? { final: final === 'true' } : {}),
  };
  let src: StoreTickSource;
  if (ctx.store !== undefined) {
    src = new StoreTickSource({ store: ctx.store, ...filters });
  } else {
    if (ctx.config === undefined)
      throw specError(spec, 'store needs the kernel config (ctx.config)');
    const { createStore, storeKind, chdbPath } = await import('../../cli/store-factory.js');
    const kind = storeKind(ctx.config);
    const where = kind === 'chdb' ? `chdb ${chdbPath(ctx.config)}` : 'clickhouse';
    let store: EventStore;
    try {
      store = await createStore(ctx.config, { readonly: true });
    } catch (cause) {
      throw sourceFailed(`store ${where}`, 'cannot open the store', cause);
    }
    src = new StoreTickSource({
      store,
      table: `${ctx.config.clickhouseDb}.ticks`,
      ownsStore: true,
      label: `${where} ${ctx.config.clickhouseDb}.ticks`,
      ...filters,
    });
  }
  try {
    await src.open();
  } catch (e) {
    await src.close().catch(() => undefined);
    const holder =
      ctx.store === undefined && ctx.config !== undefined
        ? await chdbHolder(ctx.config)
        : undefined;
    if (holder !== undefined) {
      // The engine's own message ("Failed to create connection") says nothing useful: not appended.
      throw new QilinError(
        ErrorCodes.REPLAY_SOURCE_FAILED,
        `${src.description}: the embedded store ${holder.path} is in use by another process (pid ${holder.pid}: a running kernel?); stop it, or replay from a ClickHouse server (clickhouseUrl)`,
        { cause: e, details: { source: src.description, pid: holder.pid, path: holder.path } },
      );
    }
    throw e;
  }
  return src;
}

/**
 * The process holding the embedded store's lock, when another live one does:
 * chdb (like clickhouse-server) writes `PID: n` into `<path>/status` and
 * locks it; its own open error only says "Failed to create connection".
 */
async function chdbHolder(config: QilinConfig): Promise<{ pid: number; path: string } | undefined> {
  const { storeKind, chdbPath } = await import('../../cli/store-factory.js');
  if (storeKind(config) !== 'chdb') return undefined;
  const path = chdbPath(config);
  let text: string;
  try {
    text = await readFile(join(path, 'status'), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(/PID:\s*(\d+)/.exec(text)?.[1]);
  if (!Number.isSafeInteger(pid) || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: alive, someone else's; ESRCH: a stale file.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  return { pid, path };
}

async function openJetStream(
  spec: string,
  o: Record<string, string>,
  ctx: TickSourceContext,
): Promise<TickSource> {
  const stream = o['stream'];
  if (stream !== undefined && !/^[A-Za-z0-9_-]+$/.test(stream)) {
    throw specError(spec, `stream=${stream} is not a stream name [A-Za-z0-9_-]+`);
  }
  const since = time(spec, 'since', o['since']);
  const startSeq = int(spec, 'seq', o['seq'], 1);
  if (since !== undefined && startSeq !== undefined)
    throw specError(spec, 'since and seq together');
  let nc = ctx.nc;
  const owns = nc === undefined;
  if (nc === undefined) {
    const config = ctx.config;
    if (config === undefined)
      throw specError(spec, 'jetstream needs the kernel config (ctx.config)');
    const { connectNats } = await import('../../adapters/nats/nats-connection.js');
    const { natsSeedFileFor } = await import('../../adapters/nats/nats-credentials.js');
    try {
      nc = await connectNats({
        servers: config.natsUrl,
        name: 'qilin-replay',
        log: ctx.log ?? pino({ level: 'silent' }),
        seedFile: natsSeedFileFor(config, 'kernel'),
      });
    } catch (cause) {
      throw sourceFailed(`jetstream ${stream ?? 'QILIN_MD'}`, 'cannot connect to NATS', cause);
    }
  }
  const src = new JetStreamTickSource({
    nc,
    ownsConnection: owns,
    ...defined('stream', stream),
    ...defined('since', since),
    ...defined('startSeq', startSeq),
    ...defined('subjects', list(spec, 'subjects', o['subjects'])),
  });
  try {
    await src.open();
  } catch (e) {
    await src.close().catch(() => undefined);
    throw e;
  }
  return src;
}
