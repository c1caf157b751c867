/**
 * Secrets in configuration: a config file holding a secret must not be
 * world-readable, and a secret never appears in a config error message.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig, redact } from '../../config/config.js';
import { ErrorCodes } from '../../kernel/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'qilin-config-secrets-'));

function file(name: string, body: unknown, mode: number): string {
  const f = join(dir, name);
  writeFileSync(f, JSON.stringify(body));
  chmodSync(f, mode);
  return f;
}

void t.test('a world-readable file with apiKeys is refused, naming the file and mode', (t) => {
  const f = file('keys.json', { apiKeys: 'secret-key-123:read' }, 0o644);
  t.throws(() => loadConfig({ file: f, env: {} }), {
    code: ErrorCodes.CONFIG_INVALID,
    message: new RegExp(`${f.replace(/[/.]/g, '\\$&')}.*world-readable \\(mode 0644\\)`),
  });
  try {
    loadConfig({ file: f, env: {} });
  } catch (err) {
    t.notOk(String((err as Error).message).includes('secret-key-123'), 'the key is not shown');
  }
  chmodSync(f, 0o600);
  t.equal(loadConfig({ file: f, env: {} }).apiKeys, 'secret-key-123:read', 'mode 600 loads');
  chmodSync(f, 0o640);
  t.equal(loadConfig({ file: f, env: {} }).apiKeys, 'secret-key-123:read', 'group-readable loads');
  t.end();
});

void t.test('a URL with a password is a secret too; a file without secrets may be 644', (t) => {
  const withPw = file('redis.json', { redisUrl: 'redis://:hunter2@127.0.0.1:6379' }, 0o604);
  t.throws(() => loadConfig({ file: withPw, env: {} }), {
    code: ErrorCodes.CONFIG_INVALID,
    message: /redisUrl.*mode 0604/,
  });
  const plain = file('plain.json', { httpPort: 9999, redisUrl: 'redis://127.0.0.1:6379' }, 0o644);
  t.equal(loadConfig({ file: plain, env: {} }).httpPort, 9999);
  t.end();
});

void t.test('config errors never show a secret', (t) => {
  try {
    loadConfig({ env: { QILIN_API_KEYS: 'short:read,my-very-secret-key:bogus' } });
    t.fail('should throw');
  } catch (err) {
    t.equal((err as { code?: string }).code, ErrorCodes.CONFIG_INVALID);
    t.match((err as Error).message, /apiKeys/);
    t.notOk((err as Error).message.includes('my-very-secret-key'), 'the keys are masked');
  }
  t.equal(redact('redisUrl', 'redis://u:pw@h:1/'), 'redis://u:redacted@h:1/');
  t.equal(redact('httpPort', 9470), 9470);
  t.end();
});
