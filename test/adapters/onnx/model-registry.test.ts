import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { denseModelToOnnx } from '../../../adapters/onnx/dense-model.js';
import { parseManifest, sha256Hex, verifyModel } from '../../../adapters/onnx/model-manifest.js';
import { LocalModelRegistry } from '../../../adapters/onnx/model-registry.js';
import { runQilin } from '../../helpers/cli.js';
import { lr, manifestFor, who } from '../../helpers/model-fixtures.js';

void t.test('manifests: every bad field named', (t) => {
  const e = (() => {
    try {
      parseManifest(
        {
          name: '../x',
          version: '',
          features: ['a', 'a'],
          outputs: [],
          thresholds: { buy: 0.4, sell: 0.6 },
          sha256: 'zz',
        },
        'm.json',
      );
    } catch (err) {
      return err as Error & { code: string };
    }
    return undefined;
  })();
  t.equal(e?.code, 'QLN_MODEL_INVALID');
  for (const field of ['name', 'version', 'features', 'outputs', 'thresholds', 'sha256']) {
    t.match(e?.message, new RegExp(`${field}`), `names ${field}`);
  }
  t.match(e?.message, /^m\.json is not a valid model manifest/);
  t.throws(() => parseManifest({ ...manifestFor(new Uint8Array(1), '1'), extra: 1 }), {
    message: /extra|Unrecognized/,
  });
  t.end();
});

void t.test('verify: sha256, exported features and shapes must match the manifest', async (t) => {
  const bytes = denseModelToOnnx(lr([1, 2, 3]));
  await verifyModel(bytes, manifestFor(bytes, '1'));
  await t.rejects(verifyModel(bytes, manifestFor(bytes, '1', { sha256: '0'.repeat(64) })), {
    code: 'QLN_MODEL_INVALID',
    message: /the file's sha256 is [0-9a-f]{64}, the manifest says 0{64}/,
  });
  const other = denseModelToOnnx(lr([1, 2, 3], ['ret1', 'rsi', 'zscore']));
  await t.rejects(verifyModel(other, manifestFor(other, '1')), {
    message:
      /exported with other features than the manifest lists: column 1 is "rsi" in the file, "zscore" in the manifest/,
  });
  // A file without qilin metadata is checked by its shapes alone.
  const four = denseModelToOnnx(lr([1, 2, 3, 4], ['a', 'b', 'c', 'd']));
  const stripped = Buffer.from(four);
  const idx = stripped.indexOf('qilin.features');
  stripped.write('xxxxx', idx, 'latin1');
  await t.rejects(verifyModel(stripped, manifestFor(stripped, '1')), {
    message: /input features has shape \[batch, 4\]; the manifest's 3 features/,
  });
});

void t.test('local registry: push, promote, shadow, rollback, immutability', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'qilin-models-'));
  const reg = new LocalModelRegistry(root);
  const b1 = denseModelToOnnx(lr([1, 0, 0]));
  const b2 = denseModelToOnnx(lr([0, 1, 0]));
  const b3 = denseModelToOnnx(lr([0, 0, 1]));
  t.equal(await reg.push(manifestFor(b1, '1'), b1, who), 'stored');
  t.equal(await reg.push(manifestFor(b1, '1'), b1, who), 'unchanged', 'the same bytes again');
  await t.rejects(reg.push(manifestFor(b2, '1'), b2, who), {
    message: /lr@1 is already pushed with another file/,
  });
  await reg.push(manifestFor(b2, '2'), b2, who);
  await reg.push(manifestFor(b3, '3'), b3, who);
  await t.rejects(reg.rollback('lr', who), {
    message: /nothing to roll back to \(no version was promoted\)/,
  });

  let s = await reg.promote('lr', '1', who);
  t.equal(s.promoted, '1');
  s = await reg.promote('lr', '2', who);
  t.same([s.promoted, s.previous], ['2', ['1']]);
  s = await reg.shadow('lr', '3', who);
  t.equal(s.shadow, '3');
  s = await reg.promote('lr', '3', who);
  t.same(
    [s.promoted, s.previous, s.shadow],
    ['3', ['1', '2'], undefined],
    'promoting the shadow ends the shadow',
  );
  s = await reg.rollback('lr', who);
  t.same([s.promoted, s.previous], ['2', ['1']]);
  s = await reg.rollback('lr', who);
  t.same([s.promoted, s.previous], ['1', []]);
  await t.rejects(reg.rollback('lr', who), { message: /only 1 was ever promoted/ });
  await t.rejects(reg.promote('lr', '9', who), { message: /lr@9 is not in the registry/ });
  await t.rejects(reg.get('..', '1'), { message: /invalid model name/ });
  await t.rejects(reg.get('lr', '../../etc'), { message: /invalid model version/ });

  const list = await reg.list();
  t.equal(list.length, 1);
  t.same(
    list[0]!.versions.map((v) => v.version),
    ['1', '2', '3'],
  );
  t.same(
    list[0]!.state.history.map((e) => `${e.op} ${e.version}`),
    [
      'push 1',
      'push 2',
      'push 3',
      'promote 1',
      'promote 2',
      'shadow 3',
      'promote 3',
      'rollback 2',
      'rollback 1',
    ],
  );
  t.ok(list[0]!.state.history.every((e) => e.by === 'alice' && e.reason === 'test'));

  // A file damaged on disk is refused on load, not served.
  const file = join(root, 'lr', '2', 'model.onnx');
  const bad = readFileSync(file);
  bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0xff, bad.length - 1);
  writeFileSync(file, bad);
  await t.rejects(reg.get('lr', '2'), { message: /lr@2: the file's sha256 is/ });
  await t.rejects(reg.promote('lr', '2', who), { message: /sha256/ });
  t.same(
    readdirSync(join(root, 'lr')).filter((f) => f.endsWith('.tmp')),
    [],
    'no temp files left',
  );
});

void t.test(
  'qilin model: push, list, promote, inspect, rollback from the command line',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'qilin-models-cli-'));
    const b1 = denseModelToOnnx(lr([1, 0, 0]));
    const b2 = denseModelToOnnx(lr([0, 1, 0]));
    for (const [v, b] of [
      ['1', b1],
      ['2', b2],
    ] as const) {
      writeFileSync(join(dir, `m${v}.onnx`), b);
      writeFileSync(join(dir, `m${v}.json`), JSON.stringify(manifestFor(b, v)));
    }
    const reg = join(dir, 'registry');
    const q = (...args: string[]) => runQilin(['model', '--dir', reg, ...args]);
    // Runs that never touch the registry go alongside the sequence below that
    // changes it (fewer rounds of CLI start-up); each is checked where it was.
    const aside = Promise.all([
      q('inspect', '--file', join(dir, 'm1.onnx')),
      q('push', '--file', join(dir, 'nope.onnx'), '--manifest', join(dir, 'm1.json')),
      q('--help'),
    ]);
    aside.catch(() => undefined); // awaited below; no unhandled rejection meanwhile

    const p1 = await q(
      'push',
      '--file',
      join(dir, 'm1.onnx'),
      '--manifest',
      join(dir, 'm1.json'),
      '--by',
      'bob',
    );
    t.equal(p1.code, 0, p1.err);
    t.match(p1.out, /lr@1: pushed/);
    const wrong = await q(
      'push',
      '--file',
      join(dir, 'm2.onnx'),
      '--manifest',
      join(dir, 'm1.json'),
    );
    t.equal(wrong.code, 2);
    t.match(wrong.err, /QLN_MODEL_INVALID: lr@1: the file's sha256 is/);
    t.equal(
      (await q('push', '--file', join(dir, 'm2.onnx'), '--manifest', join(dir, 'm2.json'))).code,
      0,
    );
    t.equal((await q('promote', 'lr', '1', '--reason', 'first')).code, 0);
    const pr = await q('promote', 'lr', '2', '--json');
    t.equal(pr.code, 0);
    t.same((JSON.parse(pr.out) as { promoted: string; previous: string[] }).previous, ['1']);

    // Three reads of the same state, together.
    const [list, text, ins] = await Promise.all([
      q('list', '--json'),
      q('list'),
      q('inspect', 'lr'),
    ]);
    const parsed = JSON.parse(list.out) as Array<{
      name: string;
      state: { promoted: string };
      versions: unknown[];
    }>;
    t.same(
      parsed.map((m) => [m.name, m.state.promoted, m.versions.length]),
      [['lr', '2', 2]],
    );
    t.match(text.out, /lr {2}\(live 2, rollback to 1\)/);

    t.equal(ins.code, 0, ins.err);
    t.match(ins.out, /lr@2 {2}\(live 2, rollback to 1\)/);
    t.match(ins.out, /features \(3\): ret1, zscore, rsi/);
    t.match(ins.out, /promote 1 by .* \(first\)/);
    const [file, missing, help] = await aside;
    t.match(file.out, /input {2}features float32\[batch, 3\]/);
    t.match(file.out, /output score float32\[batch, 1\]/);
    t.match(file.out, new RegExp(`sha256 ${sha256Hex(b1)}`));

    const rb = await q('rollback', 'lr');
    t.match(rb.out, /lr: live 1/);
    const none = await q('rollback', 'lr');
    t.equal(none.code, 2);
    t.match(none.err, /nothing to roll back to/);
    t.match(missing.err, /QLN_CLI_USAGE: cannot read the model file .*nope\.onnx: ENOENT/);
    t.match(help.out, /list/);
    t.match(help.out, /rollback/);
  },
);
