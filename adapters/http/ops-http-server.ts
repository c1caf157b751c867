import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCodes, QilinError, invalidArgument } from '../../kernel/errors.js';
import type { Logger } from '../../kernel/logger.js';
import type { HttpRoute, HttpRequestInfo } from '../ws/uws-server.js';

/** Options of {@link OpsHttpServer}. */
export interface OpsHttpServerOptions {
  /** TCP port; 0 binds an ephemeral one (see what `start()` resolves to). */
  port: number;
  /** Interface to bind. Default `127.0.0.1`: scrapers and probes on the host or its pod. */
  host?: string;
  /** GET routes by exact path (`/metrics`, `/health/live`, …). */
  routes: Readonly<Record<string, HttpRoute>>;
  log: Logger;
  /** Longest a request may take to arrive (headers and body), ms. Default 5000. */
  requestTimeoutMs?: number;
}

const MAX_HEADER_BYTES = 8 * 1024;

const errorBody = (code: string, message: string): string =>
  JSON.stringify({ error: { code, message } });

/**
 * The operations port: `/metrics` and `/health/*` on a port of their own
 * (config `opsPort`), so the public WebSocket port can sit behind a load
 * balancer while scrapers and probes reach the kernel on an internal
 * interface.
 *
 * ```
 *  :httpPort  (public)   /ws, dashboard, admin routes      UwsServer
 *  :opsPort   (internal) /metrics, /health/{live,ready,startup}   this
 * ```
 *
 * A plain `node:http` server, not uWS: it answers a scrape every few
 * seconds, and Node's listen fails with EADDRINUSE where uWS's SO_REUSEPORT
 * would silently share the port with a second kernel. Bounded: GET only,
 * 8 KiB of headers, a request deadline, no keep-alive pile-up.
 */
export class OpsHttpServer {
  private readonly server: Server;
  private readonly routes: Map<string, HttpRoute>;
  private started: Promise<number> | undefined;

  constructor(private readonly opts: OpsHttpServerOptions) {
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
      invalidArgument('port', opts.port, 'an integer from 0 to 65535');
    }
    this.routes = new Map(Object.entries(opts.routes));
    this.server = createServer(
      {
        maxHeaderSize: MAX_HEADER_BYTES,
        requestTimeout: opts.requestTimeoutMs ?? 5000,
        headersTimeout: opts.requestTimeoutMs ?? 5000,
      },
      (req, res) => void this.onRequest(req, res),
    );
    this.server.keepAliveTimeout = 5000;
  }

  /** Listen; resolves to the bound port. Throws QLN_SERVICE_PORT_IN_USE when the port is taken. */
  start(): Promise<number> {
    this.started ??= new Promise<number>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(
          new QilinError(
            ErrorCodes.SERVICE_PORT_IN_USE,
            `cannot bind the operations port ${this.opts.port} (opsPort, QILIN_OPS_PORT): ${err.code ?? err.message}`,
            { cause: err, details: { port: this.opts.port, host: this.opts.host ?? '127.0.0.1' } },
          ),
        );
      };
      this.server.once('error', onError);
      this.server.listen(
        { port: this.opts.port, host: this.opts.host ?? '127.0.0.1', exclusive: true },
        () => {
          this.server.off('error', onError);
          this.server.on('error', (err) => this.opts.log.error({ err }, 'ops http server error'));
          const port = (this.server.address() as AddressInfo).port;
          this.opts.log.info({ port, host: this.opts.host ?? '127.0.0.1' }, 'ops http listening');
          resolve(port);
        },
      );
    });
    return this.started;
  }

  /** Stop listening and drop idle connections; safe twice and before start. */
  async close(): Promise<void> {
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://ops');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(
        res,
        405,
        errorBody('method_not_allowed', `method ${req.method ?? '?'} is not allowed; use GET`),
        {
          Allow: 'GET',
        },
      );
      return;
    }
    const route = this.routes.get(url.pathname);
    if (route === undefined) {
      send(
        res,
        404,
        errorBody('not_found', `no route ${url.pathname.slice(0, 64)} on the operations port`),
      );
      return;
    }
    const info: HttpRequestInfo = {
      path: url.pathname,
      query: url.searchParams,
      authorization: req.headers.authorization ?? '',
    };
    try {
      const out = await route(info);
      send(res, out.status, out.body, { 'Content-Type': out.contentType, ...out.headers });
    } catch (err) {
      this.opts.log.error({ err, path: url.pathname }, 'ops route failed');
      send(res, 500, errorBody('internal', `route ${url.pathname} failed`));
    }
  }
}

function send(
  res: ServerResponse,
  status: number,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
): void {
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(body);
}
