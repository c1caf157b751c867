import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkPartitions,
  marketMapping,
  natsConfigText,
  writeNatsConfig,
} from '../../ops/services/nats-config.js';

const base = {
  confDir: '',
  storeDir: '/var/qilin/js',
  port: 14222,
  monitorPort: 18222,
  partitions: 16,
};

void t.test('the mapping hashes the symbol token only, into the configured partitions', (t) => {
  t.same(marketMapping(16), {
    from: 'md.*.*',
    to: 'md.{{wildcard(1)}}.{{wildcard(2)}}.{{partition(16,2)}}',
  });
  const text = natsConfigText(base);
  t.match(
    text,
    /mappings = \{ "md\.\*\.\*": "md\.\{\{wildcard\(1\)\}\}\.\{\{wildcard\(2\)\}\}\.\{\{partition\(16,2\)\}\}" \}/,
  );
  t.match(text, /^port: 14222$/m);
  t.match(text, /^http_port: 18222$/m);
  t.match(text, /jetstream \{ store_dir: "\/var\/qilin\/js" \}/);
  t.end();
});

void t.test('bad partition counts are refused naming the value', (t) => {
  for (const bad of [0, -1, 1.5, 1025, Number.NaN]) {
    t.throws(() => checkPartitions(bad), { code: 'QLN_INVALID_ARGUMENT' }, String(bad));
  }
  t.equal(checkPartitions(1), 1);
  t.equal(checkPartitions(1024), 1024);
  t.end();
});

void t.test('writeNatsConfig reports whether the file changed', async (t) => {
  const confDir = mkdtempSync(join(tmpdir(), 'qilin-nats-conf-'));
  const first = await writeNatsConfig({ ...base, confDir });
  t.equal(first.changed, true);
  t.equal(readFileSync(first.path, 'utf8'), natsConfigText({ ...base, confDir }));
  const same = await writeNatsConfig({ ...base, confDir });
  t.equal(same.changed, false);
  const other = await writeNatsConfig({ ...base, confDir, partitions: 8 });
  t.equal(other.changed, true);
  t.match(readFileSync(other.path, 'utf8'), /partition\(8,2\)/);
});
