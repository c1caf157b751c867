import { ErrorCodes, QilinError } from './errors.js';

/**
 * Interns symbol names to dense integer ids (0, 1, 2, …) so records, windows
 * and maps on the hot path carry a number, never a string. Ids are stable for
 * the life of the process; the table is bounded so a feed of random symbol
 * names cannot grow memory without limit.
 */
export class SymbolTable {
  private readonly ids = new Map<string, number>();
  private readonly names: string[] = [];

  constructor(readonly maxSymbols = 1 << 20) {}

  /** Id of `name`, interning it on first sight. Throws QLN_SYMBOL_TABLE_FULL past the bound. */
  intern(name: string): number {
    const id = this.ids.get(name);
    if (id !== undefined) return id;
    if (this.names.length >= this.maxSymbols) {
      throw new QilinError(
        ErrorCodes.SYMBOL_TABLE_FULL,
        `symbol table is full (${this.maxSymbols} symbols); cannot intern ${JSON.stringify(name)}`,
        { details: { name, maxSymbols: this.maxSymbols } },
      );
    }
    const next = this.names.length;
    this.ids.set(name, next);
    this.names.push(name);
    return next;
  }

  /** Id of `name` or -1 when it has never been interned. */
  lookup(name: string): number {
    return this.ids.get(name) ?? -1;
  }

  /** Name of `id`; throws on an id never handed out. */
  name(id: number): string {
    const n = this.names[id];
    if (n === undefined)
      throw new QilinError(ErrorCodes.INVALID_ARGUMENT, `unknown symbol id ${id}`);
    return n;
  }

  /** Name of `id`, or undefined. */
  lookupName(id: number): string | undefined {
    return this.names[id];
  }

  get size(): number {
    return this.names.length;
  }

  /** All interned names, id order. */
  entries(): readonly string[] {
    return this.names;
  }
}
