import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';
import {
  type ModelManifest,
  checkModelName,
  modelLabel,
  parseManifest,
  verifyModel,
} from './model-manifest.js';

/** Who did a registry operation and why (kept in the model's history). */
export interface RegistryActor {
  by: string;
  reason?: string;
}

/** One line of a model's history. */
export interface RegistryEvent {
  op: 'push' | 'promote' | 'rollback' | 'shadow' | 'unshadow';
  version: string;
  at: string;
  by: string;
  reason: string;
}

/** What runs for a model name: the promoted version, the ones before it, a shadow candidate. */
export interface ModelState {
  name: string;
  promoted: string | undefined;
  /** Versions promoted before, newest last (rollback pops it). */
  previous: string[];
  shadow: string | undefined;
  history: RegistryEvent[];
}

/** A stored model version. */
export interface ModelVersion {
  manifest: ModelManifest;
  bytes: Uint8Array;
}

/**
 * The model registry: versions (file + manifest), immutable once pushed,
 * and per model name which version is promoted (live), which were before,
 * and which runs as a shadow. Implemented by a local directory (the
 * single-node default) and JetStream KV + Object Store (every node).
 */
export interface ModelRegistry {
  /** Verify and store a version. The same bytes again: no-op; other bytes under a pushed version: refused. */
  push(
    manifest: ModelManifest,
    bytes: Uint8Array,
    who: RegistryActor,
  ): Promise<'stored' | 'unchanged'>;
  get(name: string, version: string): Promise<ModelVersion>;
  /** Every model name with its versions (oldest first). */
  list(): Promise<Array<{ name: string; versions: ModelManifest[]; state: ModelState }>>;
  state(name: string): Promise<ModelState>;
  /** Make `version` the live one (the current one goes onto `previous`). */
  promote(name: string, version: string, who: RegistryActor): Promise<ModelState>;
  /** Make the previous version live again. Refused when there is none. */
  rollback(name: string, who: RegistryActor): Promise<ModelState>;
  /** Run `version` beside the live one (undefined: stop shadowing). */
  shadow(name: string, version: string | undefined, who: RegistryActor): Promise<ModelState>;
}

const HISTORY_KEPT = 200;

/**
 * QLN_MODEL_INVALID: `what` is not in the registry.
 * Shared by the registries so they fail alike.
 */
export const modelNotFound = (what: string): QilinError =>
  new QilinError(ErrorCodes.MODEL_INVALID, `${what} is not in the registry`, { details: { what } });

/** QLN_MODEL_INVALID: a version pushed again with other bytes (versions are immutable). */
export const versionImmutable = (manifest: ModelManifest, storedSha256: string): QilinError =>
  new QilinError(
    ErrorCodes.MODEL_INVALID,
    `${modelLabel(manifest)} is already pushed with another file (sha256 ${storedSha256.slice(0, 12)}…): versions are immutable, push a new version`,
    { details: { model: modelLabel(manifest), sha256: storedSha256 } },
  );

/** The state of a name nothing was recorded for. */
export const emptyModelState = (name: string): ModelState => ({
  name,
  promoted: undefined,
  previous: [],
  shadow: undefined,
  history: [],
});

/** A stored state (JSON text parsed by the caller), missing fields defaulted. */
export function modelStateFrom(name: string, s: Partial<ModelState>): ModelState {
  return {
    name,
    promoted: s.promoted ?? undefined,
    previous: s.previous ?? [],
    shadow: s.shadow ?? undefined,
    history: s.history ?? [],
  };
}

/**
 * The state transitions, one place for every registry: each changes `s` in
 * place and records the event, or returns false when there is nothing to
 * change (promoting the live version again). Rollback throws when there is
 * nothing to roll back to.
 */
export const stateChanges = {
  push(s: ModelState, version: string, who: RegistryActor): boolean {
    recordEvent(s, 'push', version, who);
    return true;
  },
  promote(s: ModelState, version: string, who: RegistryActor): boolean {
    if (s.promoted === version) return false;
    if (s.promoted !== undefined) s.previous.push(s.promoted);
    s.promoted = version;
    if (s.shadow === version) s.shadow = undefined;
    recordEvent(s, 'promote', version, who);
    return true;
  },
  rollback(s: ModelState, who: RegistryActor): boolean {
    const back = s.previous.pop();
    if (back === undefined) {
      throw new QilinError(
        ErrorCodes.MODEL_INVALID,
        `${s.name}: nothing to roll back to (${s.promoted === undefined ? 'no version was promoted' : `only ${s.promoted} was ever promoted`})`,
        { details: { model: s.name } },
      );
    }
    s.promoted = back;
    recordEvent(s, 'rollback', back, who);
    return true;
  },
  shadow(s: ModelState, version: string | undefined, who: RegistryActor): boolean {
    const before = s.shadow;
    s.shadow = version;
    recordEvent(s, version === undefined ? 'unshadow' : 'shadow', version ?? before ?? '', who);
    return true;
  },
} as const;

function recordEvent(
  s: ModelState,
  op: RegistryEvent['op'],
  version: string,
  who: RegistryActor,
): void {
  s.history.push({
    op,
    version,
    at: new Date().toISOString(),
    by: who.by,
    reason: who.reason ?? '',
  });
  if (s.history.length > HISTORY_KEPT) s.history.splice(0, s.history.length - HISTORY_KEPT);
}

/** Versions in listing order: oldest `createdAt` first, then by version. */
export const byCreation = (a: ModelManifest, b: ModelManifest): number =>
  a.createdAt.localeCompare(b.createdAt) || a.version.localeCompare(b.version);

/**
 * The registry in a local directory (default `<stateDir>/models`):
 *
 * ```
 *  <root>/<name>/<version>/model.onnx      the file
 *  <root>/<name>/<version>/manifest.json   its manifest (sha256 checked on push and load)
 *  <root>/<name>/state.json                promoted, previous, shadow, history
 * ```
 * Every write is a temp file renamed into place, so a crash leaves the old
 * or the new content, never half of one. One writer at a time per
 * directory (the CLI); kernels read.
 */
export class LocalModelRegistry implements ModelRegistry {
  constructor(private readonly root: string) {}

  async push(
    manifest: ModelManifest,
    bytes: Uint8Array,
    who: RegistryActor,
  ): Promise<'stored' | 'unchanged'> {
    await verifyModel(bytes, manifest);
    const dir = join(this.root, manifest.name, manifest.version);
    const existing = await this.readManifest(manifest.name, manifest.version).catch(
      () => undefined,
    );
    if (existing !== undefined) {
      if (existing.sha256 === manifest.sha256) return 'unchanged';
      throw versionImmutable(manifest, existing.sha256);
    }
    await mkdir(dir, { recursive: true });
    await atomicWrite(join(dir, 'model.onnx'), bytes);
    // The manifest last: a version without one is not listed.
    await atomicWrite(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    const state = await this.state(manifest.name);
    stateChanges.push(state, manifest.version, who);
    await this.writeState(state);
    return 'stored';
  }

  async get(name: string, version: string): Promise<ModelVersion> {
    checkModelName('name', name);
    checkModelName('version', version);
    const manifest = await this.readManifest(name, version);
    const bytes = await readFile(join(this.root, name, version, 'model.onnx')).catch(() => {
      throw modelNotFound(`the file of ${name}@${version}`);
    });
    await verifyModel(bytes, manifest);
    return { manifest, bytes };
  }

  async list(): Promise<Array<{ name: string; versions: ModelManifest[]; state: ModelState }>> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    const out: Array<{ name: string; versions: ModelManifest[]; state: ModelState }> = [];
    for (const name of names.sort()) {
      const versions: ModelManifest[] = [];
      const dirs = await readdir(join(this.root, name), { withFileTypes: true }).catch(() => []);
      for (const d of dirs) {
        if (!d.isDirectory()) continue;
        const m = await this.readManifest(name, d.name).catch(() => undefined);
        if (m !== undefined) versions.push(m);
      }
      if (versions.length === 0) continue;
      versions.sort(byCreation);
      out.push({ name, versions, state: await this.state(name) });
    }
    return out;
  }

  async state(name: string): Promise<ModelState> {
    checkModelName('name', name);
    const text = await readFile(join(this.root, name, 'state.json'), 'utf8').catch(() => undefined);
    if (text === undefined) return emptyModelState(name);
    return modelStateFrom(name, JSON.parse(text) as Partial<ModelState>);
  }

  async promote(name: string, version: string, who: RegistryActor): Promise<ModelState> {
    await this.get(name, version);
    const s = await this.state(name);
    if (stateChanges.promote(s, version, who)) await this.writeState(s);
    return s;
  }

  async rollback(name: string, who: RegistryActor): Promise<ModelState> {
    const s = await this.state(name);
    stateChanges.rollback(s, who);
    await this.writeState(s);
    return s;
  }

  async shadow(name: string, version: string | undefined, who: RegistryActor): Promise<ModelState> {
    if (version !== undefined) await this.get(name, version);
    const s = await this.state(name);
    stateChanges.shadow(s, version, who);
    await this.writeState(s);
    return s;
  }

  private async readManifest(name: string, version: string): Promise<ModelManifest> {
    const path = join(this.root, name, version, 'manifest.json');
    const text = await readFile(path, 'utf8').catch(() => {
      throw modelNotFound(`${name}@${version}`);
    });
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      throw new QilinError(ErrorCodes.MODEL_INVALID, `${path} is not JSON`, {
        cause,
        details: { path },
      });
    }
    return parseManifest(json, path);
  }

  private async writeState(s: ModelState): Promise<void> {
    await mkdir(join(this.root, s.name), { recursive: true });
    await atomicWrite(join(this.root, s.name, 'state.json'), `${JSON.stringify(s, null, 2)}\n`);
  }
}

async function atomicWrite(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}
