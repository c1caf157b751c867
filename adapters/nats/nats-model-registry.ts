import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { ErrorCodes, QilinError, invalidArgument } from '../../kernel/errors.js';
import {
  type ModelManifest,
  checkModelName,
  modelLabel,
  parseManifest,
  verifyModel,
} from '../onnx/model-manifest.js';
import {
  type ModelRegistry,
  type ModelState,
  type ModelVersion,
  type RegistryActor,
  byCreation,
  emptyModelState,
  modelNotFound,
  modelStateFrom,
  stateChanges,
  versionImmutable,
} from '../onnx/model-registry.js';
import { MODEL_FILES_BUCKET, MODEL_STATE_BUCKET } from './model-registry-buckets.js';

/** Options of {@link NatsModelRegistry}. */
export interface NatsModelRegistryOptions {
  /** Object Store bucket of the files (default QILIN_MODELS; tests use their own). */
  filesBucket?: string;
  /** KV bucket of the manifests and states (default QILIN_MODEL_STATE). */
  stateBucket?: string;
  /** Compare-and-set attempts of one state change before QLN_MODEL_REGISTRY_CONFLICT (default 10). */
  casAttempts?: number;
  /** Deadline of each JetStream request, and of reading one file, ms (default 10000). */
  timeoutMs?: number;
}

const BUCKET_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** KV key tokens cannot hold `.`; `=` is outside the name alphabet, so the mapping is reversible. */
const token = (s: string): string => s.replace(/\./g, '=');
const untoken = (s: string): string => s.replace(/=/g, '.');
const manifestKey = (name: string, version: string): string =>
  `manifest.${token(name)}.${token(version)}`;
const stateKey = (name: string): string => `state.${token(name)}`;
const objectName = (name: string, version: string): string => `${name}/${version}`;

/** The Object Store's digest of bytes whose sha256 is `hex` (`SHA-256=` + padded base64url). */
const objectDigest = (hex: string): string =>
  `SHA-256=${Buffer.from(hex, 'hex').toString('base64').replace(/\+/g, '-').replace(/\//g, '_')}`;

const apiCode = (err: unknown): number | undefined => {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'number' ? c : undefined;
};
/** JetStream 10059 "stream not found": the bucket was never created. */
const isMissingBucket = (err: unknown): boolean =>
  apiCode(err) === 10059 || /stream not found/i.test((err as Error | null)?.message ?? '');
/** JetStream 10071 / 10164 "wrong last sequence": someone else wrote the key since we read it. */
const isCasConflict = (err: unknown): boolean =>
  apiCode(err) === 10071 ||
  apiCode(err) === 10164 ||
  /wrong last sequence/i.test((err as Error | null)?.message ?? '');

/**
 * The model registry in NATS JetStream, so every kernel node sees one state
 * (the local directory registry is the single-node default):
 *
 * ```
 *  Object Store QILIN_MODELS          <name>/<version>          the ONNX file (chunked, digest-checked)
 *  KV QILIN_MODEL_STATE               manifest.<name>.<version> its manifest (JSON, created once)
 *                                     state.<name>              promoted, previous, shadow, history
 *  (a `.` of a name or version is `=` in a key: KV keys split on dots)
 *
 *  push:    verify ─► file (CAS: absent) ─► manifest (KV create) ─► state (CAS) ; a version
 *           without a manifest is not listed, so a push cut short is invisible
 *  get:     manifest ─► file ─► verifyModel (sha256, features, shapes): damaged → refused
 *  promote / rollback / shadow:  read state@rev ─► change ─► update(key, state, rev);
 *           on "wrong last sequence" read again and redo, at most casAttempts times
 * ```
 *
 * Same semantics and errors as {@link LocalModelRegistry}: versions are
 * immutable (the same bytes again: 'unchanged'; other bytes: refused), a file
 * is checked on push and on every `get`. Readers (kernels) only open the
 * buckets; a missing bucket reads as an empty registry. Writers (operators)
 * create them on the first push. Failures of NATS itself (unreachable, a
 * permission the credential lacks) are QLN_MODEL_REGISTRY_UNAVAILABLE naming
 * the bucket and operation.
 */
export class NatsModelRegistry implements ModelRegistry {
  readonly filesBucket: string;
  readonly stateBucket: string;
  private readonly casAttempts: number;
  private readonly timeoutMs: number;
  private readonly js: JetStreamClient;
  private readonly kvm: Kvm;
  private readonly objm: Objm;
  private readHandles: Promise<{ kv: KV; os: ObjectStore }> | undefined;
  private writeHandles: Promise<{ kv: KV; os: ObjectStore }> | undefined;
  /** Compare-and-set conflicts met (and retried) so far: for tests and metrics. */
  conflicts = 0;

  constructor(nc: NatsConnection, opts: NatsModelRegistryOptions = {}) {
    this.filesBucket = opts.filesBucket ?? MODEL_FILES_BUCKET;
    this.stateBucket = opts.stateBucket ?? MODEL_STATE_BUCKET;
    for (const [k, v] of [
      ['filesBucket', this.filesBucket],
      ['stateBucket', this.stateBucket],
    ] as const) {
      if (!BUCKET_RE.test(v)) invalidArgument(k, v, 'a bucket name [A-Za-z0-9_-]{1,64}');
    }
    this.casAttempts = opts.casAttempts ?? 10;
    if (!Number.isInteger(this.casAttempts) || this.casAttempts < 1 || this.casAttempts > 1000) {
      invalidArgument('casAttempts', this.casAttempts, 'an integer from 1 to 1000');
    }
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    if (!Number.isInteger(this.timeoutMs) || this.timeoutMs < 100) {
      invalidArgument('timeoutMs', this.timeoutMs, 'an integer ≥ 100 (ms)');
    }
    this.js = jetstream(nc, { timeout: this.timeoutMs });
    this.kvm = new Kvm(this.js);
    this.objm = new Objm(this.js);
  }

  async push(
    manifest: ModelManifest,
    bytes: Uint8Array,
    who: RegistryActor,
  ): Promise<'stored' | 'unchanged'> {
    await verifyModel(bytes, manifest);
    const { kv, os } = await this.handles('write');
    const label = modelLabel(manifest);
    const { name, version } = manifest;
    const existing = await this.readManifest(kv, name, version);
    if (existing !== undefined) {
      if (existing.sha256 !== manifest.sha256) throw versionImmutable(manifest, existing.sha256);
      // The same bytes again: a no-op, unless the stored file is not these bytes
      // any more (damaged): then they are put back, which is safe, the manifest names them.
      return (await this.putFile(os, manifest, bytes)) ? 'stored' : 'unchanged';
    }
    await this.putFile(os, manifest, bytes);
    try {
      await kv.create(manifestKey(name, version), JSON.stringify(manifest));
    } catch (err) {
      if (!isCasConflict(err)) throw this.unavailable(`push ${label} (manifest)`, err);
      // Another push of this version won the race: the same file or a refusal.
      const won = await this.readManifest(kv, name, version);
      if (won === undefined || won.sha256 !== manifest.sha256) {
        throw versionImmutable(manifest, won?.sha256 ?? '?');
      }
      return 'unchanged';
    }
    await this.change(name, (s) => stateChanges.push(s, version, who));
    return 'stored';
  }

  async get(name: string, version: string): Promise<ModelVersion> {
    checkModelName('name', name);
    checkModelName('version', version);
    const { kv, os } = await this.handles('read');
    const manifest = await this.readManifest(kv, name, version);
    if (manifest === undefined) throw modelNotFound(`${name}@${version}`);
    const bytes = await this.readFile(os, manifest);
    await verifyModel(bytes, manifest);
    return { manifest, bytes };
  }

  async list(): Promise<Array<{ name: string; versions: ModelManifest[]; state: ModelState }>> {
    const { kv } = await this.handles('read');
    const keys: string[] = [];
    try {
      for await (const k of await kv.keys('manifest.>')) keys.push(k);
    } catch (err) {
      if (isMissingBucket(err)) return [];
      throw this.unavailable('list the models', err);
    }
    const byName = new Map<string, ModelManifest[]>();
    for (const k of keys) {
      const [, n, v] = k.split('.');
      if (n === undefined || v === undefined) continue;
      const m = await this.readManifest(kv, untoken(n), untoken(v)).catch(() => undefined);
      if (m === undefined) continue;
      const versions = byName.get(m.name) ?? [];
      versions.push(m);
      byName.set(m.name, versions);
    }
    const out: Array<{ name: string; versions: ModelManifest[]; state: ModelState }> = [];
    for (const name of [...byName.keys()].sort()) {
      const versions = byName.get(name)!.sort(byCreation);
      out.push({ name, versions, state: await this.state(name) });
    }
    return out;
  }

  async state(name: string): Promise<ModelState> {
    checkModelName('name', name);
    const { kv } = await this.handles('read');
    return (await this.readState(kv, name)).state;
  }

  async promote(name: string, version: string, who: RegistryActor): Promise<ModelState> {
    await this.get(name, version);
    return this.change(name, (s) => stateChanges.promote(s, version, who));
  }

  async rollback(name: string, who: RegistryActor): Promise<ModelState> {
    checkModelName('name', name);
    return this.change(name, (s) => stateChanges.rollback(s, who));
  }

  async shadow(name: string, version: string | undefined, who: RegistryActor): Promise<ModelState> {
    if (version !== undefined) await this.get(name, version);
    checkModelName('name', name);
    return this.change(name, (s) => stateChanges.shadow(s, version, who));
  }

  /**
   * Call `onState` with the state of every model name now, then on every
   * change (a kernel's alternative to polling `state(name)`), until `stop()`.
   * A stored state that is not JSON goes to `onError` (the caller logs and
   * counts it) and the watch goes on. Before the first push there is no bucket to watch:
   * QLN_MODEL_REGISTRY_UNAVAILABLE (poll `state` instead, or watch later).
   */
  async watchStates(
    onState: (s: ModelState) => void,
    onError: (err: QilinError) => void,
  ): Promise<{ stop(): void; closed: Promise<void> }> {
    const { kv } = await this.handles('read');
    let iter;
    try {
      iter = await kv.watch({ key: 'state.>' });
    } catch (err) {
      throw this.unavailable(`watch ${this.stateBucket}/state.>`, err);
    }
    const closed = (async () => {
      for await (const e of iter) {
        if (e.operation !== 'PUT') continue;
        const name = untoken(e.key.slice('state.'.length));
        let parsed: Partial<ModelState>;
        try {
          parsed = e.json<Partial<ModelState>>();
        } catch (cause) {
          onError(
            new QilinError(
              ErrorCodes.MODEL_INVALID,
              `${this.stateBucket}/${e.key} (revision ${e.revision}) is not a model state: ${(cause as Error).message}`,
              { cause, details: { bucket: this.stateBucket, key: e.key, revision: e.revision } },
            ),
          );
          continue;
        }
        onState(modelStateFrom(name, parsed));
      }
    })();
    return { stop: () => iter.stop(), closed };
  }

  /**
   * Read the state and its revision, apply `fn`, write it back only if
   * nobody wrote it meanwhile (`create` when there was none, else
   * `update(key, value, revision)`); on a conflict read again and redo, so
   * two operators changing one model at once both land, in some order.
   */
  private async change(name: string, fn: (s: ModelState) => boolean): Promise<ModelState> {
    const { kv } = await this.handles('write');
    const key = stateKey(name);
    for (let attempt = 1; ; attempt++) {
      const { state, revision } = await this.readState(kv, name);
      if (!fn(state)) return state;
      try {
        const value = JSON.stringify(state);
        if (revision === 0) await kv.create(key, value);
        else await kv.update(key, value, revision);
        return state;
      } catch (err) {
        if (!isCasConflict(err)) throw this.unavailable(`update ${this.stateBucket}/${key}`, err);
        this.conflicts++;
        if (attempt >= this.casAttempts) {
          throw new QilinError(
            ErrorCodes.MODEL_REGISTRY_CONFLICT,
            `${name}: the registry state changed under this update ${attempt} times in a row (other writers); nothing was changed, retry`,
            { cause: err, details: { model: name, attempts: attempt, bucket: this.stateBucket } },
          );
        }
        // A little jitter so two writers that collided do not collide again in step.
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 5 * attempt)));
      }
    }
  }

  private async readState(kv: KV, name: string): Promise<{ state: ModelState; revision: number }> {
    const key = stateKey(name);
    let e;
    try {
      e = await kv.get(key);
    } catch (err) {
      if (isMissingBucket(err)) return { state: emptyModelState(name), revision: 0 };
      throw this.unavailable(`read ${this.stateBucket}/${key}`, err);
    }
    if (e === null) return { state: emptyModelState(name), revision: 0 };
    // A deleted key is written over at the delete marker's revision.
    if (e.operation !== 'PUT') return { state: emptyModelState(name), revision: e.revision };
    let parsed: Partial<ModelState>;
    try {
      parsed = e.json<Partial<ModelState>>();
    } catch (cause) {
      throw new QilinError(
        ErrorCodes.MODEL_INVALID,
        `${this.stateBucket}/${key} (revision ${e.revision}) is not JSON`,
        { cause, details: { bucket: this.stateBucket, key, revision: e.revision } },
      );
    }
    return { state: modelStateFrom(name, parsed), revision: e.revision };
  }

  private async readManifest(
    kv: KV,
    name: string,
    version: string,
  ): Promise<ModelManifest | undefined> {
    const key = manifestKey(name, version);
    let e;
    try {
      e = await kv.get(key);
    } catch (err) {
      if (isMissingBucket(err)) return undefined;
      throw this.unavailable(`read ${this.stateBucket}/${key}`, err);
    }
    if (e === null || e.operation !== 'PUT') return undefined;
    const source = `${this.stateBucket}/${key}`;
    let json: unknown;
    try {
      json = e.json();
    } catch (cause) {
      throw new QilinError(ErrorCodes.MODEL_INVALID, `${source} is not JSON`, {
        cause,
        details: { source },
      });
    }
    return parseManifest(json, source);
  }

  /**
   * Store the file unless the object already holds exactly these bytes;
   * returns whether it wrote. The write is conditional on the object's
   * revision (absent, or the one just read), so a file is never replaced
   * behind a reader's back by a push that raced it.
   */
  private async putFile(
    os: ObjectStore,
    manifest: ModelManifest,
    bytes: Uint8Array,
  ): Promise<boolean> {
    const obj = objectName(manifest.name, manifest.version);
    const what = `push ${modelLabel(manifest)} (file ${this.filesBucket}/${obj})`;
    try {
      const info = await os.info(obj);
      const live = info !== null && !info.deleted;
      if (live && info.digest === objectDigest(manifest.sha256) && info.size === bytes.byteLength) {
        return false;
      }
      await os.putBlob(
        {
          name: obj,
          description: modelLabel(manifest),
          metadata: { sha256: manifest.sha256 },
        },
        bytes,
        { previousRevision: info === null ? 0 : info.revision, timeout: this.timeoutMs },
      );
      return true;
    } catch (err) {
      throw this.unavailable(what, err);
    }
  }

  /**
   * The file of a version, read within the deadline. The Object Store
   * checks its own digest while reading; a mismatch (chunks damaged or
   * replaced in the stream) is QLN_MODEL_INVALID naming the manifest's
   * sha256; a file that reads whole is checked against the manifest next.
   */
  private async readFile(os: ObjectStore, manifest: ModelManifest): Promise<Uint8Array> {
    const label = modelLabel(manifest);
    const obj = objectName(manifest.name, manifest.version);
    let r;
    try {
      r = await os.get(obj);
    } catch (err) {
      if (isMissingBucket(err)) throw modelNotFound(`the file of ${label}`);
      throw this.unavailable(`read ${this.filesBucket}/${obj}`, err);
    }
    if (r === null) throw modelNotFound(`the file of ${label}`);
    // Observed below; a rejection must not surface as unhandled when the read failed first.
    r.error.catch(() => undefined);
    const reader = r.data.getReader();
    const parts: Uint8Array[] = [];
    let size = 0;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.timeoutMs);
    });
    try {
      for (;;) {
        const next = await Promise.race([reader.read(), deadline]);
        if (next === 'timeout') {
          await reader.cancel().catch(() => undefined);
          throw new QilinError(
            ErrorCodes.MODEL_INVALID,
            `${label}: the file ${this.filesBucket}/${obj} did not arrive whole within ${this.timeoutMs} ms (${size} of ${r.info.size} bytes; chunks missing?); the manifest's sha256 is ${manifest.sha256}`,
            { details: { model: label, bytes: size, expected: r.info.size } },
          );
        }
        if (next.done) break;
        parts.push(next.value);
        size += next.value.byteLength;
      }
      const failed = await r.error;
      if (failed !== null && failed !== undefined) throw failed;
    } catch (err) {
      if (err instanceof QilinError) throw err;
      const message = (err as Error).message ?? String(err);
      if (/digest/i.test(message)) {
        const computed = /computed: SHA-256 ([0-9a-f]{64})/.exec(message)?.[1];
        throw new QilinError(
          ErrorCodes.MODEL_INVALID,
          `${label}: the stored file is damaged (${this.filesBucket}/${obj} does not match its own digest${computed === undefined ? '' : `: its sha256 is ${computed}`}, the manifest says ${manifest.sha256})`,
          {
            cause: err,
            details: { model: label, sha256: computed, expected: manifest.sha256 },
          },
        );
      }
      throw this.unavailable(`read ${this.filesBucket}/${obj}`, err);
    } finally {
      clearTimeout(timer);
    }
    return Buffer.concat(parts, size);
  }

  /**
   * The bucket handles: readers bind without creating anything (a kernel's
   * credential may only read); the first write creates the buckets when
   * missing (an existing bucket is used as it is).
   */
  private handles(mode: 'read' | 'write'): Promise<{ kv: KV; os: ObjectStore }> {
    if (this.writeHandles !== undefined) return this.writeHandles;
    if (mode === 'read') {
      this.readHandles ??= (async () => {
        try {
          return {
            kv: await this.kvm.open(this.stateBucket),
            os: await this.objm.open(this.filesBucket, false),
          };
        } catch (err) {
          this.readHandles = undefined;
          throw this.unavailable('open the buckets', err);
        }
      })();
      return this.readHandles;
    }
    const created = (async () => {
      try {
        return {
          kv: await this.kvm.create(this.stateBucket, { history: 5 }),
          os: await this.objm.create(this.filesBucket),
        };
      } catch (err) {
        this.writeHandles = undefined;
        throw this.unavailable(`create or open the buckets`, err);
      }
    })();
    this.writeHandles = created;
    return created;
  }

  private unavailable(what: string, err: unknown): QilinError {
    if (err instanceof QilinError) return err;
    const message = (err as Error | null)?.message ?? String(err);
    return new QilinError(
      ErrorCodes.MODEL_REGISTRY_UNAVAILABLE,
      `model registry in NATS (${this.stateBucket}, ${this.filesBucket}): cannot ${what}: ${message}`,
      { cause: err, details: { files: this.filesBucket, state: this.stateBucket, op: what } },
    );
  }
}
