import { ErrorCodes, QilinError } from '../kernel/errors.js';

/**
 * Reads a job type's params (given as JSON, or as `k=v` text from the
 * command line, so numbers may come as strings): each read names the param
 * and what is allowed on a bad value (QLN_JOB_INVALID), and `finish` refuses
 * a param the type does not know, so a typo never runs a default job.
 */
export class JobParams {
  private readonly seen = new Set<string>();

  constructor(
    private readonly type: string,
    private readonly raw: Readonly<Record<string, unknown>>,
  ) {}

  /** A number in [min, max] (an integer when `int`); `dflt` when absent. */
  num(name: string, dflt: number, min: number, max: number, int = true): number {
    this.seen.add(name);
    const v = this.raw[name];
    if (v === undefined) return dflt;
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n) || n < min || n > max) {
      return this.fail(name, v, `${int ? 'an integer' : 'a number'} from ${min} to ${max}`);
    }
    if (int && !Number.isInteger(n)) return this.fail(name, v, `an integer from ${min} to ${max}`);
    return n;
  }

  /** A name `[A-Za-z0-9_-]{1,64}`; `dflt` when absent. */
  name(name: string, dflt: string): string {
    this.seen.add(name);
    const v = this.raw[name];
    if (v === undefined) return dflt;
    if (typeof v !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(v)) {
      return this.fail(name, v, 'a name of 1 to 64 characters [A-Za-z0-9_-]');
    }
    return v;
  }

  /** A file or folder path (no NUL, at most 1000 characters); `dflt` when absent. */
  path(name: string, dflt: string): string {
    this.seen.add(name);
    const v = this.raw[name];
    if (v === undefined) return dflt;
    if (typeof v !== 'string' || v === '' || v.length > 1000 || v.includes('\0')) {
      return this.fail(name, v, 'a path of 1 to 1000 characters');
    }
    return v;
  }

  /** One of `allowed`; `dflt` when absent. */
  oneOf<T extends string>(name: string, dflt: T, allowed: readonly T[]): T {
    this.seen.add(name);
    const v = this.raw[name];
    if (v === undefined) return dflt;
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      return this.fail(name, v, allowed.join(', '));
    }
    return v as T;
  }

  /** A JSON object (or its JSON text); `{}` when absent. */
  object(name: string): Record<string, unknown> {
    this.seen.add(name);
    let v = this.raw[name];
    if (v === undefined) return {};
    if (typeof v === 'string') {
      try {
        v = JSON.parse(v) as unknown;
      } catch {
        return this.fail(name, v, 'a JSON object');
      }
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      return this.fail(name, v, 'a JSON object');
    }
    return v as Record<string, unknown>;
  }

  /** Refuse params nobody read. */
  finish(): void {
    for (const k of Object.keys(this.raw)) {
      if (!this.seen.has(k)) {
        throw new QilinError(
          ErrorCodes.JOB_INVALID,
          `job type ${this.type}: unknown param ${JSON.stringify(k)} (known: ${[...this.seen].join(', ')})`,
          { details: { type: this.type, param: k, allowed: [...this.seen] } },
        );
      }
    }
  }

  private fail(name: string, value: unknown, allowed: string): never {
    throw new QilinError(
      ErrorCodes.JOB_INVALID,
      `job type ${this.type}: invalid param ${name}: ${JSON.stringify(value)} (allowed: ${allowed})`,
      { details: { type: this.type, param: name, value, allowed } },
    );
  }
}
