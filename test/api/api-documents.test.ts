/**
 * The machine-readable API documents (docs/api/asyncapi.yaml, docs/api/openapi.yaml),
 * without services: both parse with maintained parsers, every schema compiles,
 * every example validates, the lists they enumerate equal the code's, and
 * broken messages are refused. The conformance test against a running kernel
 * is test/integration/api-conformance.test.ts.
 */
import { readFileSync } from 'node:fs';
import { DiagnosticSeverity, Parser } from '@asyncapi/parser';
import { Validator } from '@seriousme/openapi-schema-validator';
import fc from 'fast-check';
import t from 'tap';
import { QUALITY_EVENT_KIND_NAMES, QUALITY_ISSUE_NAMES } from '../../actors/output-layout.js';
import { isToken } from '../../adapters/nats/tick-json-decoder.js';
import { TopicPattern } from '../../adapters/ws/topic-pattern.js';
import { WS_ERROR_CODES } from '../../adapters/ws/uws-server.js';
import { DASHBOARD_PATHS } from '../../cli/dashboard.js';
import { KERNEL_HTTP_ROUTES } from '../../cli/kernel-app.js';
import { JOB_HTTP_PATHS } from '../../jobs/job-routes.js';
import { RejectReasons } from '../../kernel/market-source.js';
import { RiskRejectReasons, SIGNAL_SIDES } from '../../kernel/messages.js';
import {
  ASYNCAPI_PATH,
  apiSchemas,
  field,
  isObject,
  resolveLocal,
  type Doc,
} from '../helpers/api-schemas.js';

const api = apiSchemas();
const asyncSchemas = field(field(api.asyncapi, 'components'), 'schemas');
const openSchemas = field(field(api.openapi, 'components'), 'schemas');
const messages = field(field(api.asyncapi, 'components'), 'messages');

/** The `enum` of a components/schemas entry. */
function enumOf(schemas: Doc, key: string): unknown[] {
  const e = field(schemas, key)['enum'];
  return Array.isArray(e) ? e : [];
}

void t.test('asyncapi.yaml parses with @asyncapi/parser without errors', async (t) => {
  const { document, diagnostics } = await new Parser().parse(readFileSync(ASYNCAPI_PATH, 'utf8'));
  const errors = diagnostics.filter(
    (d) => (d.severity as number) === (DiagnosticSeverity.Error as number),
  );
  t.equal(
    errors.length,
    0,
    `${errors.length} error diagnostics${errors.map((d) => `\n  ${d.code} ${d.path.join('/')}: ${d.message}`).join('')}`,
  );
  t.ok(document !== undefined, 'a document');
  t.equal(document?.version(), '3.0.0');
  t.ok((document?.messages().length ?? 0) >= 20, `${document?.messages().length} messages`);
  t.ok((document?.operations().length ?? 0) >= 10, `${document?.operations().length} operations`);
});

void t.test('openapi.yaml is valid OpenAPI 3.1', async (t) => {
  const validator = new Validator();
  const result = await validator.validate(api.openapi);
  t.equal(validator.version, '3.1');
  t.ok(result.valid, `OpenAPI errors: ${JSON.stringify(result.errors, null, 2)}`);
});

void t.test('every schema compiles and every example validates', (t) => {
  const names = api.names();
  t.ok(names.length > 60, `${names.length} schemas`);
  for (const name of names) t.doesNotThrow(() => api.validator(name), `${name} compiles`);
  const examples = api.examples();
  t.ok(examples.length > 30, `${examples.length} examples`);
  for (const ex of examples) {
    t.equal(api.validator(ex.validator).errors(ex.value), undefined, ex.where);
  }
  t.end();
});

void t.test('every message is complete', (t) => {
  const entries = Object.entries(messages);
  t.ok(entries.length >= 20, `${entries.length} messages`);
  const names = new Set<string>();
  for (const [key, msg] of entries) {
    for (const f of ['name', 'title', 'contentType']) {
      t.type(field(messages, key)[f], 'string', `${key} has a ${f}`);
    }
    const name = String(field(messages, key)['name']);
    t.notOk(names.has(name), `${key}: name ${name} is unique`);
    names.add(name);
    t.ok(isObject(field(msg, 'payload')) && Object.keys(field(msg, 'payload')).length > 0, key);
    const examples = isObject(msg) ? msg['examples'] : undefined;
    if (field(msg, 'payload')['format'] !== 'binary') {
      t.ok(Array.isArray(examples) && examples.length > 0, `${key} has an example`);
    }
  }
  t.end();
});

void t.test('object schemas list only defined properties as required', (t) => {
  let checked = 0;
  const walk = (where: string, s: unknown): void => {
    if (Array.isArray(s)) return s.forEach((x, i) => walk(`${where}[${i}]`, x));
    if (!isObject(s)) return;
    const props = s['properties'];
    const req = s['required'];
    if (isObject(props) && Array.isArray(req)) {
      checked++;
      for (const r of req) t.ok(typeof r === 'string' && r in props, `${where}: ${String(r)}`);
    }
    for (const [k, v] of Object.entries(s)) if (k !== 'examples') walk(`${where}.${k}`, v);
  };
  walk('asyncapi', field(api.asyncapi, 'components'));
  walk('openapi', field(api.openapi, 'components'));
  t.ok(checked > 30, `${checked} object schemas checked`);
  t.end();
});

void t.test('enumerations equal the code', (t) => {
  t.same(enumOf(asyncSchemas, 'wsErrorCode'), [...WS_ERROR_CODES], 'WebSocket error codes');
  t.same(enumOf(asyncSchemas, 'signalSide'), [...SIGNAL_SIDES], 'signal sides');
  t.same(
    enumOf(asyncSchemas, 'qualityKind'),
    QUALITY_EVENT_KIND_NAMES.filter((k) => k !== ''),
    'quality event kinds',
  );
  t.same(
    enumOf(asyncSchemas, 'qualityIssue'),
    QUALITY_ISSUE_NAMES.map(([, n]) => n),
    'quality issue codes, in the order they are written',
  );
  t.same(enumOf(asyncSchemas, 'riskRejectReason'), [...RiskRejectReasons], 'risk reject reasons');
  t.same(
    field(field(field(openSchemas, 'auditEntry'), 'properties'), 'reason')['enum'],
    ['', ...RiskRejectReasons],
    'audit reasons',
  );
  t.same(enumOf(openSchemas, 'rejectReason'), [...RejectReasons], 'market reject reasons');
  t.end();
});

void t.test('the documented HTTP routes are the kernel route table', (t) => {
  const paths = field(api.openapi, 'paths');
  const served = Object.keys(paths).filter((p) => p !== '/ws' && p !== '/{path}');
  t.same(
    served.sort(),
    [...KERNEL_HTTP_ROUTES, ...DASHBOARD_PATHS, ...JOB_HTTP_PATHS].sort(),
    'documented routes = the kernel routes + the dashboard and API document routes + the job routes',
  );
  for (const [p, m] of [
    ['/jobs', 'get'],
    ['/jobs', 'post'],
    ['/jobs/{id}', 'get'],
    ['/jobs/{id}/cancel', 'post'],
  ] as const) {
    t.ok(
      Object.keys(field(field(field(paths, p), m), 'responses')).length > 0,
      `${m} ${p} documented`,
    );
  }
  for (const p of [...KERNEL_HTTP_ROUTES, ...DASHBOARD_PATHS, '/ws']) {
    const get = field(field(paths, p), 'get');
    t.ok(Object.keys(field(get, 'responses')).length > 0, `${p}: GET has responses`);
  }
  const other = field(paths, '/{path}');
  for (const m of ['post', 'put', 'patch', 'delete']) {
    const r = resolveLocal(api.openapi, field(field(other, m), 'responses')['405']);
    t.ok(isObject(r) && 'content' in r, `${m.toUpperCase()} → 405 documented`);
  }
  t.ok(isObject(field(field(field(paths, '/ws'), 'get'), 'responses')['426']), 'GET /ws → 426');
  t.end();
});

void t.test('patterns agree with the code', (t) => {
  const topic = api.validator('async.topicPattern');
  const token = api.validator('async.token');
  const candidates = fc.oneof(
    fc.constantFrom(
      '*',
      'status',
      'signal/*',
      'quality/*',
      'prediction/BTC-USD',
      'status/*',
      'job/*',
      'job/17',
    ),
    fc.stringMatching(/^(signal|prediction|quality|status|trade|\*)?\/?[A-Za-z0-9_* ./-]{0,70}$/),
  );
  fc.assert(
    fc.property(candidates, (s) => topic.valid(s) === (TopicPattern.parse(s) !== undefined)),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(
      fc.stringMatching(/^[A-Za-z0-9_. *>-]{0,12}$/),
      (s) => token.valid(s) === isToken(s),
    ),
    { numRuns: 2000 },
  );
  t.pass('topic patterns and tokens as the code parses them');
  t.end();
});

/** Paths to the scalar leaves of a JSON value (the root itself when it is a scalar). */
function leaves(v: unknown, path: Array<string | number> = []): Array<Array<string | number>> {
  if (Array.isArray(v)) return v.flatMap((x, i) => leaves(x, [...path, i]));
  if (isObject(v)) return Object.entries(v).flatMap(([k, x]) => leaves(x, [...path, k]));
  return v === null ? [] : [path];
}

/** A copy of `v` with the value at `path` replaced. */
function setAt(v: unknown, path: Array<string | number>, value: unknown): unknown {
  if (path.length === 0) return value;
  const copy: unknown = structuredClone(v);
  let cur = copy as Record<string | number, unknown>;
  for (const p of path.slice(0, -1)) cur = cur[p] as Record<string | number, unknown>;
  cur[path[path.length - 1]!] = value;
  return copy;
}

void t.test('mutated messages are refused', (t) => {
  const examples = api.examples().filter((e) => !e.validator.endsWith(':headers'));
  // Drop each required field of every message example (top level, and of a frame's data).
  let dropped = 0;
  for (const [key, msg] of Object.entries(messages)) {
    const name = String(field(messages, key)['name']);
    const resolved = resolveLocal(api.asyncapi, field(msg, 'payload'));
    const payload = isObject(resolved) ? resolved : {};
    const required = payload['required'];
    const dataSchema = resolveLocal(api.asyncapi, field(payload, 'properties')['data']);
    const dataRequired = isObject(dataSchema) ? dataSchema['required'] : undefined;
    for (const ex of examples.filter((e) => e.validator === name)) {
      for (const r of Array.isArray(required) ? required : []) {
        const copy = structuredClone(ex.value) as Doc;
        delete copy[String(r)];
        t.notOk(api.validator(name).valid(copy), `${ex.where} without ${String(r)}`);
        dropped++;
      }
      for (const r of Array.isArray(dataRequired) ? dataRequired : []) {
        const copy = structuredClone(ex.value) as Doc;
        delete field(copy, 'data')[String(r)];
        t.notOk(api.validator(name).valid(copy), `${ex.where} without data.${String(r)}`);
        dropped++;
      }
    }
  }
  t.ok(dropped > 100, `${dropped} required fields dropped`);

  // A scalar of the wrong JSON type anywhere in any example.
  const wrongFor = (v: unknown): fc.Arbitrary<unknown> =>
    typeof v === 'number'
      ? fc.oneof(fc.string(), fc.boolean(), fc.constant({}), fc.constant([]))
      : typeof v === 'string'
        ? fc.oneof(fc.double(), fc.boolean(), fc.constant({}))
        : fc.oneof(fc.string(), fc.integer(), fc.constant({}));
  const cases = examples.flatMap((ex) => leaves(ex.value).map((path) => ({ ex, path })));
  t.ok(cases.length > 300, `${cases.length} leaves to mutate`);
  fc.assert(
    fc.property(
      fc.constantFrom(...cases).chain(({ ex, path }) => {
        let cur: unknown = ex.value;
        for (const p of path) cur = (cur as Record<string | number, unknown>)[p];
        return wrongFor(cur).map((bad) => ({ ex, path, bad }));
      }),
      ({ ex, path, bad }) => {
        const mutated = setAt(ex.value, path, bad);
        if (api.validator(ex.validator).valid(mutated)) {
          throw new Error(
            `${ex.where}: ${path.join('.') || '(root)'} = ${JSON.stringify(bad)} was accepted`,
          );
        }
      },
    ),
    { numRuns: 3000 },
  );
  t.end();
});
