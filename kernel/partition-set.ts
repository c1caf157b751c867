/**
 * Which market partitions a kernel takes (config `kernelPartitions`): `all`,
 * or a comma-separated list of partitions and inclusive ranges, `0-7`,
 * `8-15`, `0,2,4-6`. Several kernels against one NATS divide the
 * `natsPartitions` between them this way (docs/operations.md "Several kernels").
 */

/** The allowed form, for error messages. */
export const PARTITION_SET_ALLOWED =
  '"all" or comma-separated partitions and ranges like "0-7" or "0,2,4-6", each from 0 to natsPartitions-1, none twice';

/**
 * Parse a partition set of `total` partitions; sorted ascending. Returns a
 * string saying what is wrong instead of a set when the text is refused.
 */
export function parsePartitionSet(text: string, total: number): number[] | string {
  const t = text.trim();
  if (t === 'all') return Array.from({ length: total }, (_, i) => i);
  if (t === '') return 'an empty set';
  const seen = new Set<number>();
  for (const part of t.split(',')) {
    const m = /^\s*(\d{1,4})\s*(?:-\s*(\d{1,4})\s*)?$/.exec(part);
    if (m === null) return `${JSON.stringify(part)} is neither a partition nor a range a-b`;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) return `range ${part.trim()} runs backwards`;
    if (hi >= total) {
      return total === 0
        ? 'natsPartitions is 0 (no partition mapping): only "all"'
        : `partition ${hi} is out of range (natsPartitions ${total}: 0 to ${total - 1})`;
    }
    for (let p = lo; p <= hi; p++) {
      if (seen.has(p)) return `partition ${p} is listed twice`;
      seen.add(p);
    }
  }
  return [...seen].sort((a, b) => a - b);
}

/** The shortest text of a set: `all` when it is every partition, else ranges `0-3,5,8-9`. */
export function formatPartitionSet(set: readonly number[], total: number): string {
  const s = [...set].sort((a, b) => a - b);
  if (s.length === total && s.every((p, i) => p === i)) return 'all';
  const out: string[] = [];
  for (let i = 0; i < s.length;) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    out.push(j === i ? String(s[i]) : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

/** Partitions of worker `shard` out of `shards`, from the kernel's set: every shards-th one. */
export function shareOf(set: readonly number[], shard: number, shards: number): number[] {
  return set.filter((_, i) => i % shards === shard);
}
