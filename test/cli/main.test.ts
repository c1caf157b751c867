/**
 * cli/main.ts start-up cost: `qilin --help` imports no package but commander
 * (each command imports what its action needs when the action runs), the
 * config is imported before an action that reads it, and not for
 * `bench compare`, which never does. Packages are recorded by
 * a resolve hook (fixtures/record-imports.ts) in the spawned CLI.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import t from 'tap';
import { runQilin, type CliRun } from '../helpers/cli.js';

const HOOK = pathToFileURL(fileURLToPath(new URL('./fixtures/record-imports.js', import.meta.url)));

const COMMANDS = [
  'services',
  'start',
  'sim',
  'demo',
  'sql',
  'migrate',
  'store',
  'quality',
  'risk',
  'keys',
  'audit',
  'model',
  'backtest',
  'bench',
  'jobs',
];

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

const dir = mkdtempSync(join(tmpdir(), 'qilin-cli-imports-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let runs = 0;

/** Run `qilin <args>`; what it printed and the packages dist/ code imported. */
async function withImports(args: string[]): Promise<{ run: CliRun; packages: string[] }> {
  const file = join(dir, `imports-${++runs}.txt`);
  writeFileSync(file, '');
  const run = await runQilin(args, {
    NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --import=${HOOK.href}`,
    QILIN_TEST_IMPORTS_FILE: file,
  });
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  return { run, packages: [...new Set(lines.map(packageName))].sort() };
}

// main.ts imports every command module to register it: what `qilin --help`
// imports is what any command imports before its action runs.
void t.test('qilin --help lists every command and imports only commander', async (t) => {
  const top = await withImports(['--help']);
  t.equal(top.run.code, 0, top.run.err);
  for (const c of COMMANDS) t.match(top.run.out, new RegExp(`\\n  ${c} `), `--help lists ${c}`);
  t.same(top.packages, ['commander'], 'qilin --help imports only commander');
});

void t.test('an action imports the config first; bench compare does not', async (t) => {
  const [list, compare] = await Promise.all([
    withImports(['model', '--dir', join(dir, 'registry'), 'list', '--json']),
    withImports(['bench', 'compare', join(dir, 'nope.json'), join(dir, 'nope.json')]),
  ]);
  t.equal(list.run.code, 0, list.run.err);
  t.same(JSON.parse(list.run.out), [], 'an empty registry');
  t.ok(
    list.packages.includes('zod'),
    `model list imported the config (${list.packages.join(' ')})`,
  );
  t.equal(compare.run.code, 2);
  t.match(compare.run.err, /QLN_CLI_USAGE: cannot read .*nope\.json/);
  t.same(compare.packages, ['commander'], 'bench compare imports only commander');
});
