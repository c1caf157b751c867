import t from 'tap';
import { loadConfig } from '../../config/config.js';
import { QilinError } from '../../kernel/errors.js';

function configError(env: Record<string, string>): QilinError {
  try {
    loadConfig({ env });
  } catch (e) {
    if (e instanceof QilinError) return e;
    throw e;
  }
  throw new Error('expected a QilinError');
}

void t.test('wsHistoryBytes and wsHeartbeatMs: defaults, environment, clear errors', (t) => {
  const d = loadConfig({ env: {} });
  t.equal(d.wsHistoryBytes, 64 * 1024 * 1024, 'history: 64 MiB by default');
  t.equal(d.wsHeartbeatMs, 1000, 'heartbeat: 1 s by default');
  const c = loadConfig({ env: { QILIN_WS_HISTORY_BYTES: '0', QILIN_WS_HEARTBEAT_MS: '250' } });
  t.equal(c.wsHistoryBytes, 0, '0 disables history');
  t.equal(c.wsHeartbeatMs, 250);
  for (const [env, value, allowed] of [
    ['QILIN_WS_HISTORY_BYTES', '-1', /0 \(off\) to 1073741824/],
    ['QILIN_WS_HISTORY_BYTES', '2147483648', /0 \(off\) to 1073741824/],
    ['QILIN_WS_HISTORY_BYTES', 'lots', /0 \(off\) to 1073741824/],
    ['QILIN_WS_HEARTBEAT_MS', '10', /50 to 3600000/],
    ['QILIN_WS_HEARTBEAT_MS', '1.5', /50 to 3600000/],
  ] as const) {
    const e = configError({ [env]: value });
    t.equal(e.code, 'QLN_CONFIG_INVALID', `${env}=${value} refused`);
    t.match(e.message, env, 'names the variable');
    t.match(e.message, allowed, 'says what is allowed');
  }
  t.end();
});
