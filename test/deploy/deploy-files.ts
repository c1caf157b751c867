/**
 * Shared by the deploy/ tests: the files under deploy/, their YAML, the
 * external checkers (docker-compose, promtool, kustomize) and a kustomize
 * renderer for machines without one.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync, readdirSync, statSync } from 'node:fs';
import { delimiter, join, relative, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../helpers/services.js';

export { repoRoot };
export const DEPLOY_DIR = join(repoRoot, 'deploy');

export type Doc = Record<string, unknown>;

export function isObject(v: unknown): v is Doc {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every file under `dir`, recursively, as absolute paths. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

/** Path relative to the repository root, for messages. */
export function rel(path: string): string {
  return relative(repoRoot, path);
}

/** Every document of a YAML file; throws on the first syntax error or warning. */
export function yamlDocs(path: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'), { merge: true });
  const out: unknown[] = [];
  for (const d of docs) {
    const problem = d.errors[0] ?? d.warnings[0];
    if (problem !== undefined) throw new Error(`${rel(path)}: ${problem.message}`);
    const js: unknown = d.toJS();
    if (js !== null) out.push(js);
  }
  return out;
}

/** The one document of a YAML file, an object. */
export function yamlDoc(path: string): Doc {
  const docs = yamlDocs(path);
  const d = docs[0];
  if (docs.length !== 1 || !isObject(d)) throw new Error(`${rel(path)}: expected one mapping`);
  return d;
}

/** A command on PATH, or undefined. */
export function which(command: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, command);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command to completion (bounded by a timeout), capturing its output. */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): RunResult {
  const r = spawnSync(command, args, {
    cwd: options.cwd ?? repoRoot,
    env: options.env ?? process.env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return {
    status: r.status,
    stdout: r.stdout ?? '',
    stderr: (r.stderr ?? '') + (r.error === undefined ? '' : String(r.error)),
  };
}

export const MISSING_TOOL = 'missing: run `bash ops/ensure-deploy-tools.sh` (ops/test.sh does)';

// ---------------------------------------------------------------------------
// Kustomize
// ---------------------------------------------------------------------------

/**
 * How the overlays are rendered here: a kustomize binary, `kubectl
 * kustomize` (kubectl ships kustomize), or, on a machine with neither (Debian
 * packages none), `renderKustomization` below.
 */
export function kustomizeCommand(): { command: string; args: string[] } | undefined {
  if (which('kustomize') !== undefined) return { command: 'kustomize', args: ['build'] };
  if (which('kubectl') !== undefined) return { command: 'kubectl', args: ['kustomize'] };
  return undefined;
}

/** Render a kustomization folder with the real kustomize (see kustomizeCommand). */
export function kustomizeBuild(dir: string): Doc[] {
  const k = kustomizeCommand();
  if (k === undefined) throw new Error('no kustomize binary');
  const r = run(k.command, [...k.args, dir]);
  if (r.status !== 0) throw new Error(`${k.command} ${k.args.join(' ')} ${rel(dir)}: ${r.stderr}`);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as Doc);
}

/**
 * Strategic merge as kustomize applies it to the patches under deploy/k8s:
 * mappings merge key by key, lists of mappings with a `name` (containers,
 * env, volumes) merge item by item on it, any other list is replaced.
 */
export function strategicMerge(target: unknown, patch: unknown): unknown {
  if (isObject(target) && isObject(patch)) {
    const out: Doc = { ...target };
    for (const [k, v] of Object.entries(patch)) {
      out[k] = k in target ? strategicMerge(target[k], v) : v;
    }
    return out;
  }
  const named = (l: unknown): l is Doc[] =>
    Array.isArray(l) &&
    l.length > 0 &&
    l.every((x) => isObject(x) && typeof x['name'] === 'string');
  if (named(target) && named(patch)) {
    const out = target.map((x) => ({ ...x }));
    for (const p of patch) {
      const i = out.findIndex((x) => x['name'] === p['name']);
      if (i < 0) out.push(p);
      else out[i] = strategicMerge(out[i], p) as Doc;
    }
    return out;
  }
  return patch;
}

function kindName(d: Doc): string {
  const m = isObject(d['metadata']) ? d['metadata'] : {};
  return `${String(d['kind'])}/${String(m['name'])}`;
}

function containersOf(d: Doc): Doc[] {
  const spec = d['spec'];
  if (!isObject(spec) || !isObject(spec['template'])) return [];
  const podSpec = spec['template']['spec'];
  if (!isObject(podSpec) || !Array.isArray(podSpec['containers'])) return [];
  return podSpec['containers'].filter(isObject);
}

/**
 * The subset of kustomize that deploy/k8s uses: `resources` (files and
 * kustomization folders), `patches` with a `path` (strategic merge, target
 * found by kind and name), `namespace`, `images` (newName / newTag) and
 * `labels` on metadata. Anything else fails loudly rather than being ignored.
 */
export function renderKustomization(dir: string): Doc[] {
  const k = yamlDoc(join(dir, 'kustomization.yaml'));
  const known = new Set([
    'apiVersion',
    'kind',
    'resources',
    'patches',
    'namespace',
    'images',
    'labels',
  ]);
  for (const key of Object.keys(k)) {
    if (!known.has(key)) throw new Error(`${rel(dir)}: kustomization field ${key} not supported`);
  }
  let docs: Doc[] = [];
  for (const r of (k['resources'] as string[] | undefined) ?? []) {
    const p = resolve(dir, r);
    if (statSync(p).isDirectory()) docs.push(...renderKustomization(p));
    else docs.push(...yamlDocs(p).filter(isObject));
  }
  for (const patch of (k['patches'] as Doc[] | undefined) ?? []) {
    if (typeof patch['path'] !== 'string' || Object.keys(patch).length !== 1) {
      throw new Error(`${rel(dir)}: only patches with a path are supported`);
    }
    for (const p of yamlDocs(resolve(dir, patch['path'])).filter(isObject)) {
      const i = docs.findIndex((d) => kindName(d) === kindName(p));
      if (i < 0) throw new Error(`${rel(dir)}: patch target ${kindName(p)} not found`);
      docs[i] = strategicMerge(docs[i], p) as Doc;
    }
  }
  for (const l of (k['labels'] as Doc[] | undefined) ?? []) {
    if (l['includeSelectors'] === true || l['includeTemplates'] === true) {
      throw new Error(`${rel(dir)}: labels on selectors or templates not supported`);
    }
    docs = docs.map((d) => {
      const m = isObject(d['metadata']) ? d['metadata'] : {};
      const labels = isObject(m['labels']) ? m['labels'] : {};
      return { ...d, metadata: { ...m, labels: { ...labels, ...(l['pairs'] as Doc) } } };
    });
  }
  const ns = k['namespace'];
  if (typeof ns === 'string') {
    docs = docs.map((d) => ({ ...d, metadata: { ...(d['metadata'] as Doc), namespace: ns } }));
  }
  for (const img of (k['images'] as Doc[] | undefined) ?? []) {
    for (const d of docs) {
      for (const c of containersOf(d)) {
        const image = String(c['image']);
        const [name, tag] = image.split(':');
        if (name !== img['name']) continue;
        const newTag = typeof img['newTag'] === 'string' ? img['newTag'] : tag;
        const newName = typeof img['newName'] === 'string' ? img['newName'] : name;
        c['image'] = newTag === undefined ? newName : `${newName}:${newTag}`;
      }
    }
  }
  return docs;
}

/** Rendered overlay: the real kustomize when there is one, else renderKustomization. */
export function renderOverlay(dir: string): { docs: Doc[]; by: string } {
  const k = kustomizeCommand();
  if (k !== undefined) return { docs: kustomizeBuild(dir), by: `${k.command} ${k.args.join(' ')}` };
  return { docs: renderKustomization(dir), by: 'test/deploy/deploy-files.ts renderKustomization' };
}
