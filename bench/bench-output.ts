import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ErrorCodes, QilinError } from '../kernel/errors.js';

/**
 * What every bench does with its JSON document: print it with `--json`,
 * write it to `bench/results/<name>-<date>.json` with `--out`.
 */
export function emitBenchDocument(
  name: string,
  doc: { date: string },
  opts: { json: boolean; out: boolean },
  say: (line: string) => void,
): void {
  const text = `${JSON.stringify(doc, null, 2)}\n`;
  if (opts.json) process.stdout.write(text);
  if (opts.out) {
    const dir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
    mkdirSync(dir, { recursive: true });
    const file = `${dir}${name}-${doc.date.slice(0, 19).replace(/:/g, '-')}Z.json`;
    writeFileSync(file, text);
    say(`\nwrote ${file}`);
  }
}

/**
 * Run a bench's main; on failure print `<name> failed: QLN_CODE: message`
 * and exit 1 (a consumer thread may still be parked: exit rather than hang).
 */
export function runBench(name: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    const e = err as { code?: unknown; message?: unknown };
    process.stderr.write(
      `${name} failed: ${typeof e?.code === 'string' ? `${e.code}: ` : ''}${String(e?.message ?? err)}\n`,
    );
    process.exit(1);
  });
}

/** `parseArgs` (strict, no positionals) with a bad flag as QLN_CLI_USAGE. */
export function parseBenchArgs<O extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: O,
): ReturnType<
  typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>
> {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new QilinError(
      ErrorCodes.CLI_USAGE,
      `${err instanceof Error ? err.message : String(err)} (see --help)`,
      { cause: err },
    );
  }
}
