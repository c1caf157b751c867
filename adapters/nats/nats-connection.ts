import {
  connect,
  nkeyAuthenticator,
  type NatsConnection,
  type Status,
} from '@nats-io/transport-node';
import { ErrorCodes, QilinError, invalidArgument } from '../../kernel/errors.js';
import type { Logger } from '../../kernel/logger.js';
import { readNatsSeed, readNatsSeedSync } from './nats-credentials.js';

/**
 * Error code for "the bus could not be reached". The catalogue has no NATS
 * code yet; QLN_BUS_CONNECT is requested. Until it exists this placeholder
 * keeps every raise site in one place.
 */
const BUS_CONNECT_CODE = ErrorCodes.BUS_UNAVAILABLE;

/** Options of {@link connectNats}. */
export interface NatsConnectOptions {
  /** Server URL(s), e.g. `nats://127.0.0.1:14222` (config `natsUrl`). */
  servers: string | string[];
  /** Client name shown by the server (`nats-server` connz, logs). */
  name: string;
  log: Logger;
  /** Deadline of the first connect in ms (default 5000). */
  timeoutMs?: number;
  /** Pause between reconnect attempts in ms (default 1000, with jitter). */
  reconnectTimeWaitMs?: number;
  /**
   * Keep retrying the first connect too (default false: a wrong URL at start
   * fails fast; once connected, reconnects never stop).
   */
  waitOnFirstConnect?: boolean;
  /**
   * nkey seed file to authenticate with (adapters/nats/nats-credentials.ts
   * `natsSeedFileFor` picks it by role); unset: no credentials. Read once
   * here; a missing, world-readable or invalid file throws
   * QLN_NATS_CREDENTIALS naming the file. The seed is never logged.
   */
  seedFile?: string | undefined;
  /** Every status the client reports (disconnect, reconnect, slow consumer, …), after logging. */
  onStatus?: (status: Status) => void;
}

/**
 * Connect to NATS the way every Qilin component does: named, reconnecting
 * forever (a kernel must ride out a bus restart), every status change logged.
 * Throws a QilinError naming the servers when the first connect fails.
 * Close with {@link drainNats}.
 */
export async function connectNats(opts: NatsConnectOptions): Promise<NatsConnection> {
  const servers = opts.servers;
  if ((Array.isArray(servers) && servers.length === 0) || servers === '') {
    invalidArgument('servers', servers, 'one or more nats:// URLs');
  }
  if (opts.name === '') invalidArgument('name', opts.name, 'a non-empty client name');
  const log = opts.log.child({ nats: opts.name });
  const seedFile = opts.seedFile;
  // Checked now (a bad file fails the start); then read again on every
  // reconnect, so a rotated seed (file replaced, server reloaded, which
  // disconnects the old user) is taken without a restart. A file gone bad
  // meanwhile keeps the last good seed, logged.
  let seed = seedFile === undefined ? undefined : await readNatsSeed(seedFile);
  const currentSeed = (): Uint8Array => {
    try {
      seed = readNatsSeedSync(seedFile!);
    } catch (err) {
      log.error({ err }, 'nats seed file unusable; reconnecting with the last good seed');
    }
    return seed!;
  };
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers,
      name: opts.name,
      timeout: opts.timeoutMs ?? 5000,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: opts.reconnectTimeWaitMs ?? 1000,
      waitOnFirstConnect: opts.waitOnFirstConnect ?? false,
      ...(seed === undefined ? {} : { authenticator: nkeyAuthenticator(currentSeed) }),
    });
  } catch (cause) {
    const auth =
      opts.seedFile === undefined ? 'without credentials' : `with seed file ${opts.seedFile}`;
    throw new QilinError(
      BUS_CONNECT_CODE,
      `cannot connect to NATS at ${JSON.stringify(servers)} (${auth}): ${(cause as Error).message}`,
      { cause, details: { servers, name: opts.name, seedFile: opts.seedFile } },
    );
  }
  log.info({ server: nc.getServer(), seedFile: opts.seedFile ?? null }, 'nats connected');
  void watchStatus(nc, log, opts.onStatus);
  void nc.closed().then((err) => {
    if (err) log.error({ err }, 'nats connection closed with an error');
    else log.info('nats connection closed');
  });
  return nc;
}

/** Log what the client reports; pings and heartbeats are too chatty for info. */
async function watchStatus(
  nc: NatsConnection,
  log: Logger,
  onStatus: ((s: Status) => void) | undefined,
): Promise<void> {
  try {
    for await (const s of nc.status()) {
      try {
        onStatus?.(s);
      } catch (err) {
        log.error({ err }, 'nats status handler threw');
      }
      switch (s.type) {
        case 'disconnect':
          log.warn({ server: s.server }, 'nats disconnected');
          break;
        case 'reconnecting':
          log.debug('nats reconnecting');
          break;
        case 'reconnect':
          log.info({ server: s.server }, 'nats reconnected');
          break;
        case 'error':
          log.error({ err: s.error }, 'nats server error');
          break;
        case 'slowConsumer':
          log.warn(
            { subject: s.sub.getSubject(), pending: s.pending },
            'nats slow consumer: the server may drop messages',
          );
          break;
        case 'staleConnection':
          log.warn('nats connection stale');
          break;
        case 'ldm':
          log.warn({ server: s.server }, 'nats server entering lame duck mode');
          break;
        default:
          log.trace({ status: s.type }, 'nats status');
      }
    }
  } catch (err) {
    log.debug({ err }, 'nats status stream ended');
  }
}

/**
 * Clean shutdown: drain (subscriptions finish what they hold, pending
 * publishes are flushed) and wait until closed. Safe to call twice and on an
 * already closed connection.
 */
export async function drainNats(nc: NatsConnection): Promise<void> {
  if (!nc.isClosed() && !nc.isDraining()) {
    try {
      await nc.drain();
    } catch {
      // Closed concurrently (or lost): closed() below is the real answer.
    }
  }
  await nc.closed();
}
