import { ErrorCodes, QilinError } from '../kernel/errors.js';
import { backtestJob } from './backtest-job.js';
import type { JobTypeSpec } from './job-types.js';
import { sweepJob } from './sweep-job.js';
import { trainJob } from './train-job.js';

/**
 * The job types, by name. A new type is one file implementing JobTypeSpec
 * and one line here (e.g. `sweep: sweepJob,`); the queue, the worker, the
 * CLI and the HTTP routes take it from this table. Each type's `run`
 * imports its heavy code itself, so this table is cheap to import.
 */
const JOB_TYPES = {
  backtest: backtestJob,
  sweep: sweepJob,
  train: trainJob,
} satisfies Record<string, JobTypeSpec<unknown>>;

/** The registered type names. */
export const JOB_TYPE_NAMES: readonly string[] = Object.keys(JOB_TYPES);

/** The spec of a type; QLN_JOB_INVALID naming the known types otherwise. */
export function jobType(name: string): JobTypeSpec<unknown> {
  if (!Object.hasOwn(JOB_TYPES, name)) {
    throw new QilinError(
      ErrorCodes.JOB_INVALID,
      `unknown job type ${JSON.stringify(name)} (known: ${JOB_TYPE_NAMES.join(', ')})`,
      { details: { type: name, allowed: JOB_TYPE_NAMES } },
    );
  }
  return JOB_TYPES[name as keyof typeof JOB_TYPES];
}

/** One line per type, for help texts. */
export function describeJobTypes(): string {
  return Object.entries(JOB_TYPES)
    .map(([name, spec]) => `${name}: ${spec.describe}`)
    .join('\n');
}
