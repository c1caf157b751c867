import fc from 'fast-check';
import t from 'tap';
import { loadConfig } from '../../config/config.js';
import { QilinError } from '../../kernel/errors.js';
import { formatPartitionSet, parsePartitionSet, shareOf } from '../../kernel/partition-set.js';

void t.test('parse(format(set)) = set, for any set of any partition count', (t) => {
  fc.assert(
    fc.property(
      fc
        .integer({ min: 1, max: 1024 })
        .chain((total) =>
          fc.tuple(
            fc.constant(total),
            fc.uniqueArray(fc.integer({ min: 0, max: total - 1 }), { minLength: 1 }),
          ),
        ),
      ([total, set]) => {
        const text = formatPartitionSet(set, total);
        const back = parsePartitionSet(text, total);
        return JSON.stringify(back) === JSON.stringify([...set].sort((a, b) => a - b));
      },
    ),
  );
  t.end();
});

void t.test('the forms an operator writes', (t) => {
  t.same(parsePartitionSet('all', 4), [0, 1, 2, 3]);
  t.same(parsePartitionSet('0-7', 16), [0, 1, 2, 3, 4, 5, 6, 7]);
  t.same(parsePartitionSet(' 8 - 9 , 15 ', 16), [8, 9, 15]);
  t.same(parsePartitionSet('4,0,2', 16), [0, 2, 4], 'sorted');
  t.same(parsePartitionSet('all', 0), [], 'no mapping: all is nothing to claim');
  t.equal(formatPartitionSet([0, 1, 2, 3], 4), 'all');
  t.equal(formatPartitionSet([0, 1, 2, 5, 7, 8], 16), '0-2,5,7-8');
  t.end();
});

void t.test('bad sets are refused saying why', (t) => {
  t.match(parsePartitionSet('', 16), /empty/);
  t.match(
    parsePartitionSet('0-16', 16),
    /partition 16 is out of range \(natsPartitions 16: 0 to 15\)/,
  );
  t.match(parsePartitionSet('3-1', 16), /backwards/);
  t.match(parsePartitionSet('0-3,2', 16), /partition 2 is listed twice/);
  t.match(parsePartitionSet('a', 16), /neither a partition nor a range/);
  t.match(parsePartitionSet('1,,2', 16), /neither/);
  t.match(parsePartitionSet('-1', 16), /neither/);
  t.match(parsePartitionSet('0', 0), /natsPartitions is 0/);
  // Any text that parses gives partitions in range, each once.
  fc.assert(
    fc.property(fc.string(), fc.integer({ min: 0, max: 64 }), (text, total) => {
      const r = parsePartitionSet(text, total);
      return (
        typeof r === 'string' ||
        (new Set(r).size === r.length && r.every((p) => Number.isInteger(p) && p >= 0 && p < total))
      );
    }),
  );
  t.end();
});

void t.test('the workers share the set: each partition to exactly one worker', (t) => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.integer({ min: 0, max: 63 })),
      fc.integer({ min: 1, max: 8 }),
      (set, shards) => {
        const all = Array.from({ length: shards }, (_, k) => shareOf(set, k, shards)).flat();
        return (
          JSON.stringify(all.sort((a, b) => a - b)) ===
          JSON.stringify([...set].sort((a, b) => a - b))
        );
      },
    ),
  );
  t.end();
});

function err(fn: () => unknown): QilinError {
  try {
    fn();
  } catch (e) {
    if (e instanceof QilinError) return e;
    throw e;
  }
  throw new Error('expected a QilinError');
}

void t.test('config: kernelPartitions, kernelId, partitionLeaseMs, claimPrefix', (t) => {
  const d = loadConfig({ env: {} });
  t.equal(d.kernelPartitions, 'all');
  t.equal(d.kernelId, undefined, 'default: <hostname>:<httpPort>, set by the kernel');
  t.equal(d.partitionLeaseMs, 15_000);
  t.equal(d.claimPrefix, 'qilin:partition:');
  const c = loadConfig({
    env: {
      QILIN_KERNEL_PARTITIONS: '8-15',
      QILIN_KERNEL_ID: 'k2',
      QILIN_PARTITION_LEASE_MS: '3000',
      QILIN_CLAIM_PREFIX: 'x:',
    },
  });
  t.match(c, {
    kernelPartitions: '8-15',
    kernelId: 'k2',
    partitionLeaseMs: 3000,
    claimPrefix: 'x:',
  });
  const e = err(() => loadConfig({ env: { QILIN_KERNEL_PARTITIONS: '8-16' } }));
  t.equal(e.code, 'QLN_CONFIG_INVALID');
  t.match(
    e.message,
    /config key kernelPartitions \(env QILIN_KERNEL_PARTITIONS\) = "8-16" is invalid: partition 16 is out of range/,
  );
  t.match(e.message, /expected "all" or comma-separated partitions/);
  t.match(e.details, {
    key: 'kernelPartitions',
    value: '8-16',
    source: 'env QILIN_KERNEL_PARTITIONS',
  });
  t.match(
    err(() => loadConfig({ env: { QILIN_KERNEL_PARTITIONS: '0-3', QILIN_NATS_PARTITIONS: '2' } }))
      .message,
    /partition 3 is out of range \(natsPartitions 2/,
    'checked against natsPartitions',
  );
  t.match(err(() => loadConfig({ env: { QILIN_KERNEL_PARTITIONS: '1,1' } })).message, /twice/);
  t.match(
    err(() => loadConfig({ env: { QILIN_PARTITION_LEASE_MS: '10' } })).message,
    /1000 to 600000/,
  );
  t.match(err(() => loadConfig({ env: { QILIN_KERNEL_ID: 'a b' } })).message, /printable/);
  t.end();
});
