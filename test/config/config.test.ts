import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { envName, loadConfig, opsBaseUrl } from '../../config/config.js';
import { QilinError } from '../../kernel/errors.js';

function err(fn: () => unknown): QilinError {
  try {
    fn();
  } catch (e) {
    if (e instanceof QilinError) return e;
    throw e;
  }
  throw new Error('expected a QilinError');
}

void t.test('defaults, file, then environment, then overrides', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qilin-config-'));
  const file = join(dir, 'q.json');
  writeFileSync(file, JSON.stringify({ httpPort: 9999, workers: 3 }));
  t.equal(loadConfig({ env: {} }).clickhouseDb, 'qilin');
  t.equal(loadConfig({ env: {} }).clickhouseUrl, undefined, 'no ClickHouse URL: embedded store');
  const c = loadConfig({ file, env: { QILIN_WORKERS: '4' } });
  t.equal(c.httpPort, 9999, 'from file');
  t.equal(c.workers, 4, 'env beats file');
  t.equal(
    loadConfig({ file, env: { QILIN_WORKERS: '4' }, overrides: { workers: 1 } }).workers,
    1,
    'override beats env',
  );
  t.end();
});

void t.test('a bad value names the key, the value, its source and what is allowed', (t) => {
  const e = err(() => loadConfig({ env: { QILIN_WORKERS: 'lots' } }));
  t.equal(e.code, 'QLN_CONFIG_INVALID');
  t.match(e.message, /workers/);
  t.match(e.message, /QILIN_WORKERS/);
  t.match(e.message, /"lots"/);
  t.match(e.message, /integer from 1 to 64/);
  t.match(err(() => loadConfig({ env: { QILIN_HTTP_PORT: '70000' } })).message, /TCP port/);
  t.match(err(() => loadConfig({ env: { QILIN_NATS_URL: 'http://x' } })).message, /nats:\/\//);
  t.match(err(() => loadConfig({ env: { QILIN_RING_BYTES: '100000' } })).message, /power of two/);
  t.match(err(() => loadConfig({ env: { QILIN_NATS_PARTITIONS: '-1' } })).message, /0 to 1024/);
  t.match(err(() => loadConfig({ env: { QILIN_API_KEYS: 'short:read' } })).message, /key:scope/);
  t.equal(
    loadConfig({
      env: { QILIN_API_KEYS: 'demo-key-123:read,admin-key-1:admin,sig-key-12:read=signal/*' },
    }).apiKeys.length > 0,
    true,
  );
  t.end();
});

void t.test('bad files: unreadable, not JSON, not an object, unknown key', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qilin-config-'));
  t.equal(
    err(() => loadConfig({ file: join(dir, 'missing.json'), env: {} })).code,
    'QLN_CONFIG_FILE',
  );
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{nope');
  t.equal(err(() => loadConfig({ file: bad, env: {} })).code, 'QLN_CONFIG_FILE');
  writeFileSync(bad, '[1]');
  t.equal(err(() => loadConfig({ file: bad, env: {} })).code, 'QLN_CONFIG_FILE');
  writeFileSync(bad, '{"workrs": 2}');
  const e = err(() => loadConfig({ file: bad, env: {} }));
  t.equal(e.code, 'QLN_CONFIG_INVALID');
  t.match(e.message, /workrs/);
  t.end();
});

void t.test('environment names', (t) => {
  t.equal(envName('natsUrl'), 'QILIN_NATS_URL');
  t.equal(envName('clickhouseHttpPort'), 'QILIN_CLICKHOUSE_HTTP_PORT');
  t.end();
});

void t.test(
  'actor and risk options: validated by their owners, objects in files, JSON in env',
  (t) => {
    const c = loadConfig({
      env: {
        QILIN_ACTOR: '{"threshold":0.4,"windowCapacity":512}',
        QILIN_RISK: '{"maxPosition":7}',
      },
    });
    t.equal(c.actor.threshold, 0.4);
    t.equal(c.actor.windowCapacity, 512);
    t.equal(c.actor.emaFastPeriod, 12, 'unset keys keep their defaults');
    t.equal(c.risk.maxPosition, 7);
    t.equal(c.risk.maxSignalsPerSec, 50);
    const d = loadConfig({ env: {} });
    t.equal(d.risk.maxPosition, 100, 'defaults without any source');
    t.equal(d.actor.windowCapacity, 256);
    const bad = err(() => loadConfig({ env: { QILIN_ACTOR: '{"threshold":2}' } }));
    t.equal(bad.code, 'QLN_CONFIG_INVALID');
    t.match(bad.message, /actor\.threshold/);
    t.match(bad.message, /QILIN_ACTOR/);
    t.match(err(() => loadConfig({ env: { QILIN_ACTOR: '{"nope":1}' } })).message, /actor\.nope/);
    t.match(err(() => loadConfig({ env: { QILIN_RISK: '{not json' } })).message, /JSON text/);
    t.match(
      err(() => loadConfig({ env: {}, overrides: { risk: { maxSignalsPerSec: 0 } } })).message,
      /risk\.maxSignalsPerSec/,
    );
    const v = loadConfig({
      env: { QILIN_RISK: '{"maxSymbolVar":5000,"varMethod":"parametric","varConfidence":0.95}' },
    });
    t.match(v.risk, { maxSymbolVar: 5000, varMethod: 'parametric', varConfidence: 0.95 });
    t.equal(v.risk.maxAccountVar, Infinity, 'VaR rules off unless set');
    t.match(
      err(() => loadConfig({ env: { QILIN_RISK: '{"varMethod":"montecarlo"}' } })).message,
      /risk\.varMethod.*'historical' or 'parametric'/,
    );
    t.match(
      err(() => loadConfig({ env: { QILIN_RISK: '{"varWindow":20}' } })).message,
      /risk\.varMinObservations.*varWindow \(20\)/,
      'the default minimum (30) above a smaller window is named',
    );
    t.end();
  },
);

void t.test('storeTtlDays: days per table, JSON in env, checked', (t) => {
  t.same(loadConfig({ env: {} }).storeTtlDays, {}, 'default: no TTL');
  t.same(loadConfig({ env: { QILIN_STORE_TTL_DAYS: '{"ticks":90,"metrics":30}' } }).storeTtlDays, {
    ticks: 90,
    metrics: 30,
  });
  const bad = err(() => loadConfig({ env: { QILIN_STORE_TTL_DAYS: '{"ticks":1.5}' } }));
  t.equal(bad.code, 'QLN_CONFIG_INVALID');
  t.match(bad.message, /storeTtlDays\.ticks/);
  t.match(bad.message, /QILIN_STORE_TTL_DAYS/);
  t.match(
    err(() => loadConfig({ env: { QILIN_STORE_TTL_DAYS: '{"orders":3}' } })).message,
    /storeTtlDays\.orders.*a table of ticks/,
  );
  t.end();
});

void t.test(
  'operations port: unset by default, from the environment, validated; its base URL',
  (t) => {
    const d = loadConfig({ env: {} });
    t.equal(d.opsPort, undefined, 'metrics and health share httpPort by default');
    t.equal(opsBaseUrl(d), 'http://127.0.0.1:9470');
    const c = loadConfig({ env: { QILIN_OPS_PORT: '9471', QILIN_OPS_HOST: '0.0.0.0' } });
    t.equal(c.opsPort, 9471);
    t.equal(opsBaseUrl(c), 'http://127.0.0.1:9471', 'a wildcard bind is reached on loopback');
    t.equal(opsBaseUrl({ ...c, opsHost: '10.0.0.5' }), 'http://10.0.0.5:9471');
    t.equal(opsBaseUrl({ ...c, opsHost: '::1' }, 1234), 'http://[::1]:1234');
    t.equal(loadConfig({ env: { QILIN_OPS_PORT: '0' } }).opsPort, 0, '0: an ephemeral port');
    const e = err(() => loadConfig({ env: { QILIN_OPS_PORT: '-1' } }));
    t.equal(e.code, 'QLN_CONFIG_INVALID');
    t.match(e.message, /QILIN_OPS_PORT/);
    t.match(e.message, /TCP port from 0 to 65535/);
    t.end();
  },
);
