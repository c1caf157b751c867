import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseApiKeys } from '../../adapters/ws/api-keys.js';
import type { HttpRouteResult } from '../../adapters/ws/uws-server.js';
import { DASHBOARD_PATHS, dashboardRoutes } from '../../cli/dashboard.js';

const KEYS = parseApiKeys('dash-read-key1:read,dash-sig-key1:read=signal/*');

async function get(
  routes: ReturnType<typeof dashboardRoutes>,
  path: string,
  query = '',
  authorization = '',
): Promise<HttpRouteResult> {
  const route = routes[path];
  if (route === undefined) throw new Error(`no route ${path}`);
  return route({ path, query: new URLSearchParams(query), authorization });
}

const body = (r: HttpRouteResult): string =>
  typeof r.body === 'string' ? r.body : Buffer.from(r.body).toString('utf8');

void t.test('every documented path is a route', (t) => {
  const routes = dashboardRoutes(KEYS);
  t.same(Object.keys(routes).sort(), [...DASHBOARD_PATHS].sort());
  t.end();
});

void t.test('the page needs a valid key, from ?key= or a Bearer header', async (t) => {
  const routes = dashboardRoutes(KEYS);
  const none = await get(routes, '/');
  t.equal(none.status, 401);
  t.match(body(none), 'No API key was given.');
  t.equal(none.headers?.['WWW-Authenticate'], 'Bearer');
  const bad = await get(routes, '/', 'key=dash-nope-key1');
  t.equal(bad.status, 401);
  t.match(body(bad), 'That API key is not valid.');
  t.notMatch(body(bad), 'dash-nope-key1', 'the refused key is not echoed into the page');
  const ok = await get(routes, '/', 'key=dash-read-key1');
  t.equal(ok.status, 200);
  t.equal(ok.contentType, 'text/html; charset=utf-8');
  t.match(body(ok), '<script type="module" src="/dashboard/app.js">');
  t.match(ok.headers?.['Content-Security-Policy'], "connect-src 'self'");
  t.equal(ok.headers?.['Referrer-Policy'], 'no-referrer');
  const narrow = await get(routes, '/', 'key=dash-sig-key1');
  t.equal(
    narrow.status,
    200,
    'a key that reads some topics opens the page (it shows what it may read)',
  );
  const bearer = await get(routes, '/', '', 'Bearer dash-read-key1');
  t.equal(bearer.status, 200);
});

void t.test('static files are served with their type; the API documents too', async (t) => {
  const routes = dashboardRoutes(KEYS);
  const types: Record<string, RegExp> = {
    '/dashboard/app.js': /^text\/javascript/,
    '/dashboard/dashboard.css': /^text\/css/,
    '/dashboard/vendor/uPlot.esm.js': /^text\/javascript/,
    '/dashboard/vendor/uPlot.min.css': /^text\/css/,
  };
  for (const [path, type] of Object.entries(types)) {
    const r = await get(routes, path);
    t.equal(r.status, 200, path);
    t.match(r.contentType, type, path);
    t.ok(r.body.length > 100, `${path} has content`);
  }
  t.match(
    body(await get(routes, '/dashboard/vendor/uPlot.esm.js')),
    /export \{ uPlot as default \}/,
  );
  for (const doc of ['asyncapi', 'openapi']) {
    const r = await get(routes, `/api/${doc}.yaml`);
    t.equal(r.status, 200);
    t.equal(r.contentType, 'application/yaml');
    t.match(body(r), new RegExp(`^${doc}: 3\\.`, 'm'), `${doc} document`);
  }
});

void t.test('a missing file is a 503 that says how to build it, not a crash', async (t) => {
  const routes = dashboardRoutes(KEYS, mkdtempSync(join(tmpdir(), 'qilin-dash-')));
  const page = await get(routes, '/', 'key=dash-read-key1');
  t.equal(page.status, 503);
  t.match(body(page), 'run npm run build');
  const uplot = await get(routes, '/dashboard/vendor/uPlot.esm.js');
  t.equal(uplot.status, 503);
  const refused = await get(routes, '/');
  t.equal(refused.status, 401, 'refusal needs no file');
});
