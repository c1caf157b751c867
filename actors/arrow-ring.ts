import { Float64, RecordBatch, Table, makeData, tableToIPC, type Data } from 'apache-arrow';

/**
 * Ring columns → arrow, shared by RollingWindow and BarWindow (not for the
 * hot path: it allocates the batch, and copies when it must).
 *
 * ```
 *  capacity 8, total 11 (head = 11 & 7 = 3), optional extra row X
 *
 *  slot     0    1    2    3    4    5    6    7
 *  ring  [ r8 | r9 | r10| r3 | r4 | r5 | r6 | r7 ]
 *
 *  total ≤ capacity, or head = 0, no extra → ring.subarray(0, n)  (zero-copy)
 *  otherwise → one copy per column:  [ r3 r4 r5 r6 r7 | r8 r9 r10 | X ]
 *                                      ring[head..)     ring[..head)  extra
 * ```
 * A zero-copy column is a view of the ring: the batch sees later writes, so
 * use (or serialise) it before pushing more rows.
 */
export function ringToRecordBatch<K extends string>(
  names: readonly K[],
  columns: Readonly<Record<K, Float64Array>>,
  total: number,
  extra?: Readonly<Record<K, number>>,
): RecordBatch<Record<K, Float64>> {
  const capacity = columns[names[0]!].length;
  const held = total < capacity ? total : capacity;
  const head = total > capacity ? total & (capacity - 1) : 0;
  const n = extra === undefined ? held : held + 1;
  const contiguous = head === 0 && extra === undefined;
  const children = {} as Record<K, Data<Float64>>;
  for (const name of names) {
    const ring = columns[name];
    let values: Float64Array;
    if (contiguous) {
      values = ring.subarray(0, n);
    } else {
      values = new Float64Array(n);
      values.set(ring.subarray(head, held)); // head > 0 only when held = capacity
      if (head > 0) values.set(ring.subarray(0, head), capacity - head);
      if (extra !== undefined) values[held] = extra[name];
    }
    children[name] = makeData({ type: new Float64(), length: n, nullCount: 0, data: values });
  }
  return new RecordBatch<Record<K, Float64>>(children);
}

/**
 * One RecordBatch as Arrow IPC **stream** format (schema message, one record
 * batch message, end-of-stream marker): the format to send over a socket or
 * NATS, read back with `tableFromIPC(bytes)`. The file format adds a footer
 * for random access, which a single batch does not need.
 */
export function recordBatchToIPC(batch: RecordBatch): Uint8Array {
  return tableToIPC(new Table(batch), 'stream');
}
