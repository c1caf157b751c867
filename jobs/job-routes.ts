import type { ApiKeyTable } from '../adapters/ws/api-keys.js';
import { requireAdmin, type HttpRoute, type HttpRouteResult } from '../adapters/ws/uws-server.js';
import { ErrorCodes } from '../kernel/errors.js';
import type { JobQueue } from './job-queue.js';
import type { JobSubmission } from './job-types.js';

/** The documented paths of the job routes (docs/api/openapi.yaml). */
export const JOB_HTTP_PATHS = ['/jobs', '/jobs/{id}', '/jobs/{id}/cancel'] as const;

/**
 * The job routes of the kernel's HTTP port, admin keys only (as `/audit`):
 *
 * | route                     | what                                               |
 * | ------------------------- | -------------------------------------------------- |
 * | `GET /jobs`               | `{paused, jobs: JobView[]}` (`?limit=` per state)  |
 * | `GET /jobs/<id>`          | the JobView (`?result=1`: with the full result)    |
 * | `POST /jobs`              | submit `JobSubmission` JSON → 201 and the JobView  |
 * | `POST /jobs/<id>/cancel`  | cancel → the JobView                               |
 *
 * Errors: `{"error":{"code","message"}}` with 400 (QLN_JOB_INVALID, bad
 * JSON), 404 (QLN_JOB_NOT_FOUND), 503 (QLN_JOB_QUEUE_UNAVAILABLE).
 */
export function jobRoutes(
  apiKeys: ApiKeyTable,
  queue: () => JobQueue,
  /** A request refused as bad input (400), for the kernel's counter. */
  onRefused?: () => void,
): { get: Record<string, HttpRoute>; post: Record<string, HttpRoute> } {
  const list: HttpRoute = async (req) => {
    const limit = Number(req.query.get('limit') ?? '50');
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
      return error(400, ErrorCodes.JOB_INVALID, 'limit: an integer from 1 to 10000');
    }
    const q = queue();
    return json(200, { paused: await q.isPaused(), jobs: await q.list(limit) });
  };
  const show: HttpRoute = async (req) => {
    const id = req.path.slice('/jobs/'.length);
    const q = queue();
    const v = await q.show(id);
    return json(
      200,
      req.query.get('result') === '1' ? { ...v, result: (await q.result(id))?.result ?? null } : v,
    );
  };
  const submit: HttpRoute = async (req) => {
    let body: unknown;
    try {
      body = JSON.parse(req.body ?? '');
    } catch {
      return error(400, ErrorCodes.JOB_INVALID, 'the body must be a JSON object (JobSubmission)');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return error(400, ErrorCodes.JOB_INVALID, 'the body must be a JSON object (JobSubmission)');
    }
    const b = body as Record<string, unknown>;
    if (typeof b['type'] !== 'string') {
      return error(400, ErrorCodes.JOB_INVALID, 'type: a job type name (backtest, sweep, train)');
    }
    const params = b['params'];
    if (
      params !== undefined &&
      (typeof params !== 'object' || params === null || Array.isArray(params))
    ) {
      return error(400, ErrorCodes.JOB_INVALID, 'params: a JSON object');
    }
    const opt = (k: string): Record<string, number> => {
      const v = b[k];
      return v === undefined ? {} : { [k]: v as number };
    };
    const s: JobSubmission = {
      type: b['type'],
      ...(params === undefined ? {} : { params: params as Record<string, unknown> }),
      ...opt('priority'),
      ...opt('timeoutMs'),
      ...opt('attempts'),
      ...opt('backoffMs'),
    };
    return json(201, await queue().submit(s));
  };
  const cancel: HttpRoute = async (req) => {
    const m = /^\/jobs\/([^/]+)\/cancel$/.exec(req.path);
    if (m === null)
      return error(404, ErrorCodes.JOB_NOT_FOUND, `no route ${req.path.slice(0, 80)}`);
    return json(200, await queue().cancel(m[1]!));
  };
  const guard = (r: HttpRoute): HttpRoute =>
    requireAdmin(apiKeys, async (req) => {
      const res = await failures(r, req);
      if (res.status === 400) onRefused?.();
      return res;
    });
  return {
    get: { '/jobs': guard(list), '/jobs/*': guard(show) },
    post: { '/jobs': guard(submit), '/jobs/*': guard(cancel) },
  };
}

/** Catalogue errors as HTTP statuses; anything else is the server's 500. */
async function failures(r: HttpRoute, req: Parameters<HttpRoute>[0]): Promise<HttpRouteResult> {
  try {
    return await r(req);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const message = (err as Error).message;
    if (code === ErrorCodes.JOB_INVALID) return error(400, code, message);
    if (code === ErrorCodes.JOB_NOT_FOUND) return error(404, code, message);
    if (code === ErrorCodes.JOB_QUEUE_UNAVAILABLE) return error(503, code, message);
    throw err;
  }
}

function json(status: number, body: unknown): HttpRouteResult {
  return { status, contentType: 'application/json', body: JSON.stringify(body) };
}

function error(status: number, code: string, message: string): HttpRouteResult {
  return json(status, { error: { code, message } });
}
