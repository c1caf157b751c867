import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ApiKeyTable } from '../adapters/ws/api-keys.js';
import type { HttpRoute, HttpRouteResult } from '../adapters/ws/uws-server.js';

/** Repository root, from dist/cli/ (compiled) — the page's files are read from here. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The dashboard page's response headers. The key travels in the URL
 * (`/?key=…`: a browser cannot set a header on a WebSocket upgrade), so no
 * referrer leaves the page; scripts, styles and connections are same-origin
 * only (uPlot is served by the kernel, never a CDN); the page cannot be framed.
 */
const PAGE_HEADERS = {
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
} as const;

const ASSET_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-cache',
} as const;

/** Paths the dashboard serves, documented in docs/api/openapi.yaml. */
export const DASHBOARD_PATHS = [
  '/',
  '/dashboard/app.js',
  '/dashboard/dashboard.css',
  '/dashboard/vendor/uPlot.esm.js',
  '/dashboard/vendor/uPlot.min.css',
  '/api/asyncapi.yaml',
  '/api/openapi.yaml',
] as const;

interface StaticFile {
  contentType: string;
  /** undefined when the file is missing (not built): served as 503 saying so. */
  body: Buffer | undefined;
  source: string;
}

function load(path: string, contentType: string): StaticFile {
  return {
    contentType,
    body: existsSync(path) ? readFileSync(path) : undefined,
    source: path,
  };
}

function serve(f: StaticFile): HttpRouteResult {
  if (f.body === undefined) {
    return {
      status: 503,
      contentType: 'application/json',
      body: JSON.stringify({
        error: {
          code: 'not_built',
          message: `${f.source} is missing: run npm run build`,
        },
      }),
    };
  }
  return { status: 200, contentType: f.contentType, body: f.body, headers: ASSET_HEADERS };
}

/** uPlot's dist/ folder as npm installed it; a path that does not exist when it is not installed (served as 503). */
function uplotDist(root: string): string {
  try {
    return join(createRequire(join(root, 'package.json')).resolve('uplot/dist/uPlot.esm.js'), '..');
  } catch {
    return join(root, 'node_modules', 'uplot', 'dist');
  }
}

/** The page shown without a valid key: says how to get in, offers a form. */
function refusal(reason: string): HttpRouteResult {
  const body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Qilin: API key needed</title>
<link rel="stylesheet" href="/dashboard/dashboard.css"></head>
<body class="refused"><main>
<h1>Qilin dashboard: API key needed</h1>
<p id="reason">${reason}</p>
<p>Open <code>/?key=&lt;read key&gt;</code>. <code>npm run demo</code> prints the URL with its key;
keys are the <code>QILIN_API_KEYS</code> entries with scope <code>read</code>, <code>read=…</code> or <code>admin</code>.</p>
<form method="get" action="/"><label>API key <input name="key" type="password" autocomplete="off" required></label>
<button type="submit">Open</button></form>
</main></body></html>
`;
  return {
    status: 401,
    contentType: 'text/html; charset=utf-8',
    body,
    headers: { ...PAGE_HEADERS, 'WWW-Authenticate': 'Bearer' },
  };
}

/**
 * The live dashboard (`/`, needs a key that may read) and its static files,
 * plus the API documents (`/api/asyncapi.yaml`, `/api/openapi.yaml`). Files
 * are read once, at kernel start; the page talks to the kernel only through
 * the public WebSocket protocol.
 */
export function dashboardRoutes(apiKeys: ApiKeyTable, root = ROOT): Record<string, HttpRoute> {
  const uplotDir = uplotDist(root);
  const page = load(join(root, 'dashboard', 'index.html'), 'text/html; charset=utf-8');
  const files: Record<string, StaticFile> = {
    '/dashboard/app.js': load(
      join(root, 'dist', 'dashboard', 'app.js'),
      'text/javascript; charset=utf-8',
    ),
    '/dashboard/dashboard.css': load(
      join(root, 'dashboard', 'dashboard.css'),
      'text/css; charset=utf-8',
    ),
    '/dashboard/vendor/uPlot.esm.js': load(
      join(uplotDir, 'uPlot.esm.js'),
      'text/javascript; charset=utf-8',
    ),
    '/dashboard/vendor/uPlot.min.css': load(
      join(uplotDir, 'uPlot.min.css'),
      'text/css; charset=utf-8',
    ),
    '/api/asyncapi.yaml': load(join(root, 'docs', 'api', 'asyncapi.yaml'), 'application/yaml'),
    '/api/openapi.yaml': load(join(root, 'docs', 'api', 'openapi.yaml'), 'application/yaml'),
  };
  const routes: Record<string, HttpRoute> = {
    '/': (req) => {
      const key = req.query.get('key') ?? /^Bearer\s+(\S+)\s*$/i.exec(req.authorization)?.[1];
      if (key === undefined || key === '') {
        return refusal('No API key was given.');
      }
      if (apiKeys.authorize(key) === undefined) return refusal('That API key is not valid.');
      const r = serve(page);
      return r.status === 200 ? { ...r, headers: PAGE_HEADERS } : r;
    },
  };
  for (const [path, f] of Object.entries(files)) routes[path] = () => serve(f);
  return routes;
}
