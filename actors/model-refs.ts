import { invalidArgument } from '../kernel/errors.js';
import type { ModelRef } from '../kernel/messages.js';

/** Id of the actor module's built-in model (the baseline) in every table. */
export const BUILTIN_MODEL_ID = 0;
/** Most model versions a kernel names in one run (ids are never reused). */
export const MAX_MODEL_IDS = 4096;

/** One loaded model version as records name it: its ref and whether it outputs an interval. */
export interface ModelRefEntry {
  readonly ref: Readonly<ModelRef>;
  readonly interval: boolean;
}

/**
 * Which model made a record: PREDICTION and SIGNAL records carry a model id
 * (OutputLayout `MODEL`), not the name, and every side that turns records
 * into messages holds this table. The main thread assigns ids when it loads
 * a version (never reused in a run) and tells each side before any record
 * can carry the id: the store worker first (acknowledged), then the shard
 * workers, whose encoders add the entry when the model arrives. Id 0 is the
 * module's built-in model.
 */
export class ModelRefTable {
  private readonly entries: Array<ModelRefEntry | undefined> = [];

  constructor(builtin: Readonly<ModelRef>) {
    this.entries[BUILTIN_MODEL_ID] = { ref: Object.freeze({ ...builtin }), interval: false };
  }

  /** The entry of `id`; the built-in one for an unknown id (counted by the caller if it cares). */
  get(id: number): ModelRefEntry {
    return this.entries[id] ?? this.entries[BUILTIN_MODEL_ID]!;
  }

  has(id: number): boolean {
    return this.entries[id] !== undefined;
  }

  /** Add `id` (idempotent for the same entry; another entry under a taken id is refused). */
  set(id: number, e: ModelRefEntry): void {
    if (!Number.isInteger(id) || id <= BUILTIN_MODEL_ID || id >= MAX_MODEL_IDS) {
      invalidArgument('model id', id, `an integer in [1, ${MAX_MODEL_IDS})`);
    }
    const had = this.entries[id];
    if (had !== undefined) {
      if (sameEntry(had, e)) return;
      invalidArgument('model id', id, `an id not taken by ${had.ref.name}@${had.ref.version}`);
    }
    const entry: ModelRefEntry = { ref: Object.freeze({ ...e.ref }), interval: e.interval };
    this.entries[id] = entry;
  }

  /** Ids in use, ascending. */
  ids(): number[] {
    const out: number[] = [];
    this.entries.forEach((e, i) => {
      if (e !== undefined) out.push(i);
    });
    return out;
  }
}

function sameEntry(a: ModelRefEntry, b: ModelRefEntry): boolean {
  return (
    a.interval === b.interval &&
    a.ref.name === b.ref.name &&
    a.ref.version === b.ref.version &&
    a.ref.role === b.ref.role
  );
}
