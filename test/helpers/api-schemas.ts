/**
 * The machine-readable API documents (docs/api/asyncapi.yaml, docs/api/openapi.yaml)
 * as compiled JSON Schema validators, for the unit test of the documents and
 * the conformance test against a running kernel.
 *
 * Names (`validator(name)`):
 * - every AsyncAPI message by its `name`: `nats.signal`, `nats.quality`,
 *   `ws.signal`, `ws.error`, … (its payload schema); `<name>:headers` for a
 *   message that documents headers (`nats.signal:headers`);
 * - every AsyncAPI `components/schemas` entry as `async.<key>` (`async.signal`);
 * - every OpenAPI `components/schemas` entry as `http.<key>` (`http.health`,
 *   `http.error`, `http.rejects`, `http.audit`, `http.metrics`).
 *
 * `$ref`s are resolved by ajv: each document's components are registered
 * under the document's file name, and every local `#/…` reference of a
 * compiled fragment is rebased onto it. AsyncAPI schemas are JSON Schema
 * draft-07 (AsyncAPI's default schema format); OpenAPI 3.1 schemas are
 * JSON Schema 2020-12.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type AnySchema, type Options, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';
import { parse } from 'yaml';
import { repoRoot } from './services.js';

export const ASYNCAPI_PATH = join(repoRoot, 'docs/api/asyncapi.yaml');
export const OPENAPI_PATH = join(repoRoot, 'docs/api/openapi.yaml');

const ASYNC_ID = 'asyncapi.yaml';
const OPEN_ID = 'openapi.yaml';

/** A JSON object read from YAML. */
export type Doc = Record<string, unknown>;

/** A compiled schema of one document. */
export interface SchemaValidator {
  readonly name: string;
  /** undefined when `value` is valid; otherwise every error, readable (ajv errorsText). */
  errors(value: unknown): string | undefined;
  /** True when valid. */
  valid(value: unknown): boolean;
}

/** One `examples` entry of a document, with the validator it must pass. */
export interface DocExample {
  /** Where it is, e.g. `asyncapi components/messages/signal examples[0] payload`. */
  readonly where: string;
  readonly validator: string;
  readonly value: unknown;
}

export interface ApiSchemas {
  readonly asyncapi: Doc;
  readonly openapi: Doc;
  /** The validator named `name`; throws listing the known names when there is none. */
  validator(name: string): SchemaValidator;
  /** Every name `validator` knows, sorted. */
  names(): string[];
  /** Every example of both documents (message examples, media-type examples, schema `examples`). */
  examples(): DocExample[];
}

export function isObject(v: unknown): v is Doc {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `obj[key]` as an object, or `{}`. */
export function field(obj: unknown, key: string): Doc {
  const v = isObject(obj) ? obj[key] : undefined;
  return isObject(v) ? v : {};
}

/** Parse a YAML file into a JSON object (throws naming the file). */
export function loadYaml(path: string): Doc {
  const doc: unknown = parse(readFileSync(path, 'utf8'));
  if (!isObject(doc)) throw new Error(`${path} is not a YAML mapping`);
  return doc;
}

/** A deep copy of `schema` with every local `#/…` reference pointing into document `id`. */
function rebase(schema: unknown, id: string): unknown {
  if (Array.isArray(schema)) return schema.map((s) => rebase(s, id));
  if (!isObject(schema)) return schema;
  const out: Doc = {};
  for (const [k, v] of Object.entries(schema)) {
    out[k] =
      k === '$ref' && typeof v === 'string' && v.startsWith('#') ? `${id}${v}` : rebase(v, id);
  }
  return out;
}

const AJV_OPTIONS: Options = {
  allErrors: true,
  // Unknown keywords are errors (a typo such as `requird` must not pass silently).
  strictSchema: true,
  strictTypes: false,
  strictTuples: false,
  strictRequired: false,
};

function makeAjv(kind: 'draft7' | '2020'): Ajv {
  const ajv = kind === 'draft7' ? new Ajv(AJV_OPTIONS) : new Ajv2020(AJV_OPTIONS);
  formats.default(ajv);
  // AsyncAPI / OpenAPI annotation for a binary payload: anything goes.
  ajv.addFormat('binary', true);
  // The registered documents hold their schemas under `components` (see build).
  ajv.addKeyword('components');
  return ajv;
}

function wrap(ajv: Ajv, name: string, fn: ValidateFunction): SchemaValidator {
  return {
    name,
    valid: (value) => fn(value),
    errors: (value) =>
      fn(value) ? undefined : ajv.errorsText(fn.errors, { dataVar: name, separator: '; ' }),
  };
}

function build(): ApiSchemas {
  const asyncapi = loadYaml(ASYNCAPI_PATH);
  const openapi = loadYaml(OPENAPI_PATH);
  const asyncAjv = makeAjv('draft7');
  const openAjv = makeAjv('2020');
  asyncAjv.addSchema(
    { components: { schemas: rebase(field(field(asyncapi, 'components'), 'schemas'), ASYNC_ID) } },
    ASYNC_ID,
  );
  openAjv.addSchema(
    { components: { schemas: rebase(field(field(openapi, 'components'), 'schemas'), OPEN_ID) } },
    OPEN_ID,
  );

  const sources = new Map<string, () => SchemaValidator>();
  const compiled = new Map<string, SchemaValidator>();
  const add = (name: string, ajv: Ajv, id: string, schema: unknown): void => {
    if (sources.has(name)) throw new Error(`two schemas are named ${name}`);
    sources.set(name, () => wrap(ajv, name, ajv.compile(rebase(schema, id) as AnySchema)));
  };

  const examples: DocExample[] = [];
  const messages = field(field(asyncapi, 'components'), 'messages');
  for (const [key, msg] of Object.entries(messages)) {
    const name = isObject(msg) && typeof msg['name'] === 'string' ? msg['name'] : `message.${key}`;
    add(name, asyncAjv, ASYNC_ID, field(msg, 'payload'));
    const headers = isObject(msg) ? msg['headers'] : undefined;
    if (headers !== undefined) add(`${name}:headers`, asyncAjv, ASYNC_ID, headers);
    const list =
      isObject(msg) && Array.isArray(msg['examples']) ? (msg['examples'] as unknown[]) : [];
    list.forEach((ex, i) => {
      const where = `asyncapi components/messages/${key} examples[${i}]`;
      if (isObject(ex) && 'payload' in ex) {
        examples.push({ where: `${where} payload`, validator: name, value: ex['payload'] });
      }
      if (isObject(ex) && 'headers' in ex) {
        examples.push({
          where: `${where} headers`,
          validator: `${name}:headers`,
          value: ex['headers'],
        });
      }
    });
  }
  const schemaExamples = (doc: 'asyncapi' | 'openapi', prefix: string, schemas: Doc): void => {
    for (const [key, s] of Object.entries(schemas)) {
      const list = isObject(s) && Array.isArray(s['examples']) ? (s['examples'] as unknown[]) : [];
      list.forEach((value, i) =>
        examples.push({
          where: `${doc} components/schemas/${key} examples[${i}]`,
          validator: `${prefix}.${key}`,
          value,
        }),
      );
    }
  };
  const asyncSchemas = field(field(asyncapi, 'components'), 'schemas');
  for (const [key, s] of Object.entries(asyncSchemas)) add(`async.${key}`, asyncAjv, ASYNC_ID, s);
  schemaExamples('asyncapi', 'async', asyncSchemas);
  const openSchemas = field(field(openapi, 'components'), 'schemas');
  for (const [key, s] of Object.entries(openSchemas)) add(`http.${key}`, openAjv, OPEN_ID, s);
  schemaExamples('openapi', 'http', openSchemas);

  // OpenAPI media types: responses of every operation and of components/responses.
  let mediaN = 0;
  const mediaExamples = (where: string, response: unknown): void => {
    const resolved = resolveLocal(openapi, response);
    for (const [type, media] of Object.entries(field(resolved, 'content'))) {
      const exs = field(media, 'examples');
      if (Object.keys(exs).length === 0) continue;
      const name = `openapi.media.${mediaN++}`;
      add(name, openAjv, OPEN_ID, field(media, 'schema'));
      for (const [exName, ex] of Object.entries(exs)) {
        examples.push({
          where: `openapi ${where} content[${type}] examples.${exName}`,
          validator: name,
          value: isObject(ex) ? ex['value'] : undefined,
        });
      }
    }
  };
  for (const [path, item] of Object.entries(field(openapi, 'paths'))) {
    for (const [method, op] of Object.entries(isObject(item) ? item : {})) {
      if (!isObject(op)) continue;
      for (const [status, response] of Object.entries(field(op, 'responses'))) {
        // A response that is a $ref is checked once, under components/responses.
        if (isObject(response) && '$ref' in response) continue;
        mediaExamples(`paths.${path}.${method}.responses.${status}`, response);
      }
    }
  }
  for (const [key, response] of Object.entries(field(field(openapi, 'components'), 'responses'))) {
    mediaExamples(`components/responses/${key}`, response);
  }

  return {
    asyncapi,
    openapi,
    validator(name) {
      let v = compiled.get(name);
      if (v !== undefined) return v;
      const make = sources.get(name);
      if (make === undefined) {
        throw new Error(`no schema named ${name}; known: ${[...sources.keys()].sort().join(', ')}`);
      }
      v = make();
      compiled.set(name, v);
      return v;
    },
    names: () => [...sources.keys()].sort(),
    examples: () => examples.slice(),
  };
}

/** Follow one local `$ref` (`#/components/responses/x`) in `doc`; anything else as is. */
export function resolveLocal(doc: Doc, value: unknown): unknown {
  if (!isObject(value) || typeof value['$ref'] !== 'string') return value;
  const ref = value['$ref'];
  if (!ref.startsWith('#/')) return value;
  let cur: unknown = doc;
  for (const part of ref.slice(2).split('/')) {
    const key = decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~');
    cur = isObject(cur) ? cur[key] : undefined;
  }
  return cur;
}

let cached: ApiSchemas | undefined;

/** Both documents, parsed and ready (loaded once per process). */
export function apiSchemas(): ApiSchemas {
  cached ??= build();
  return cached;
}

/** Shorthand: `validator('ws.signal').errors(frame)`. */
export function validator(name: string): SchemaValidator {
  return apiSchemas().validator(name);
}
