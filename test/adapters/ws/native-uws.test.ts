import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { assertNativeUws, nativeUwsInfo } from '../../../adapters/ws/native-uws.js';
import { ErrorCodes } from '../../../kernel/errors.js';

const moduleUrl = new URL('../../../adapters/ws/native-uws.js', import.meta.url).href;

void t.test('the native binary is in use here', (t) => {
  t.doesNotThrow(() => assertNativeUws());
  const info = nativeUwsInfo();
  t.equal(info.native, true);
  t.equal(info.abi, process.versions.modules);
  t.equal(info.binary, `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
  t.match(info.version ?? '', /uws-js-unofficial@20\./);
  t.end();
});

void t.test('UWS_USE_FALLBACK makes the check fail, naming the binary', (t) => {
  const saved = process.env['UWS_USE_FALLBACK'];
  process.env['UWS_USE_FALLBACK'] = '1';
  try {
    t.throws(() => assertNativeUws(), { code: ErrorCodes.UWS_NATIVE_MISSING });
    try {
      assertNativeUws();
    } catch (err) {
      t.match(
        (err as Error).message,
        `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`,
      );
      t.match((err as Error).message, /UWS_USE_FALLBACK/);
    }
  } finally {
    if (saved === undefined) delete process.env['UWS_USE_FALLBACK'];
    else process.env['UWS_USE_FALLBACK'] = saved;
  }
  t.end();
});

void t.test('the JS fallback module itself is detected (env unset after loading it)', (t) => {
  // Load the module with the fallback forced, then clear the variable so only
  // the shape of the loaded module can give it away.
  const script = `
    process.env.UWS_USE_FALLBACK = '1';
    const m = await import(${JSON.stringify(moduleUrl)});
    delete process.env.UWS_USE_FALLBACK;
    try { m.assertNativeUws(); console.log('PASSED'); }
    catch (err) { console.log('CODE=' + err.code); console.log(err.message); }
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    cwd: fileURLToPath(new URL('.', import.meta.url)),
  });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, `CODE=${ErrorCodes.UWS_NATIVE_MISSING}`);
  t.match(r.stdout, /did not load/);
  t.end();
});
