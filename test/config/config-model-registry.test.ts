import t from 'tap';
import { loadConfig } from '../../config/config.js';

void t.test(
  'modelRegistry: local by default, nats from the environment, a clear error else',
  (t) => {
    t.equal(loadConfig({ env: {} }).modelRegistry, 'local');
    t.equal(loadConfig({ env: { QILIN_MODEL_REGISTRY: 'nats' } }).modelRegistry, 'nats');
    t.throws(() => loadConfig({ env: { QILIN_MODEL_REGISTRY: 'redis' } }), {
      code: 'QLN_CONFIG_INVALID',
      message:
        /config key modelRegistry \(env QILIN_MODEL_REGISTRY\) = "redis" is invalid: expected local \(a directory.*\) or nats/,
    });
    t.end();
  },
);
