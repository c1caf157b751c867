/**
 * Tick decode benchmark: JSON (the baseline every venue speaks) against the
 * binary `application/x-qilin-tick` encoding, in the same process and the same
 * run, interleaved round by round so machine noise hits both alike.
 *
 * Method: N distinct ticks (trades and quotes over 100 symbols) are encoded
 * once in both encodings. Each round decodes all N with one codec, then all N
 * with the other (the order alternates between rounds), timing batches of 64
 * decodes with `process.hrtime.bigint()`; each batch's ns/op goes into that
 * codec's HDR histogram. A warm-up round is discarded. Decoding is exactly
 * what NatsMarketSource does per message (validation included, into one
 * reused MarketEvent), minus the NATS client.
 *
 * Run: `npm run build && node dist/bench/codec/tick-codec-bench.js [--messages 10000] [--rounds 30] [--json]`
 */
import { parseArgs } from 'node:util';
import { build, type Histogram } from 'hdr-histogram-js';
import { TickBinaryCodec } from '../../adapters/nats/tick-binary-codec.js';
import { TickJsonDecoder, type DecodeResult } from '../../adapters/nats/tick-json-decoder.js';
import { newMarketEvent, type MarketEvent } from '../../kernel/market-record.js';
import type { TickMessage } from '../../kernel/messages.js';

const BATCH = 64;

interface Codec {
  name: string;
  decode(subject: string, data: Uint8Array, out: MarketEvent): DecodeResult;
  payloads: Uint8Array[];
  hist: Histogram;
  totalNs: number;
  ops: number;
  failures: number;
}

interface CodecReport {
  codec: string;
  bytesPerMsg: number;
  nsPerOp: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  msgsPerSec: number;
}

function ticks(n: number): { subjects: string[]; msgs: TickMessage[] } {
  const subjects: string[] = [];
  const msgs: TickMessage[] = [];
  const ts = Math.floor(Date.now() * 1000) - 60_000_000;
  let x = 12345;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296;
  for (let i = 0; i < n; i++) {
    const sym = `SYM${String(i % 100).padStart(4, '0')}`;
    const px = Math.round((100 + 50 * rnd()) * 100) / 100;
    subjects.push(`md.sim.${sym}`);
    msgs.push(
      i % 2 === 0
        ? {
            type: 'trade',
            sym,
            ts: ts + i,
            px,
            qty: Math.round(rnd() * 1e4) / 1e3 + 0.001,
            side: rnd() < 0.5 ? 'buy' : 'sell',
            seq: i,
          }
        : {
            type: 'quote',
            sym,
            ts: ts + i,
            bid: px - 0.01,
            bidQty: Math.round(rnd() * 1e4) / 1e3,
            ask: px + 0.01,
            askQty: Math.round(rnd() * 1e4) / 1e3,
            seq: i,
          },
    );
  }
  return { subjects, msgs };
}

function round(c: Codec, subjects: string[], out: MarketEvent, record: boolean): void {
  const n = subjects.length;
  for (let start = 0; start < n; start += BATCH) {
    const end = Math.min(n, start + BATCH);
    const t0 = process.hrtime.bigint();
    for (let i = start; i < end; i++) {
      if (!c.decode(subjects[i]!, c.payloads[i]!, out).ok) c.failures++;
    }
    const ns = Number(process.hrtime.bigint() - t0);
    if (!record) continue;
    const perOp = ns / (end - start);
    c.hist.recordValue(Math.max(1, Math.round(perOp)));
    c.totalNs += ns;
    c.ops += end - start;
  }
}

function report(c: Codec): CodecReport {
  const nsPerOp = c.totalNs / c.ops;
  const bytes = c.payloads.reduce((s, p) => s + p.byteLength, 0) / c.payloads.length;
  return {
    codec: c.name,
    bytesPerMsg: Math.round(bytes),
    nsPerOp: Math.round(nsPerOp),
    p50: c.hist.getValueAtPercentile(50),
    p90: c.hist.getValueAtPercentile(90),
    p99: c.hist.getValueAtPercentile(99),
    max: c.hist.maxValue,
    msgsPerSec: Math.round(1e9 / nsPerOp),
  };
}

function main(): void {
  const { values } = parseArgs({
    options: {
      messages: { type: 'string', default: '10000' },
      rounds: { type: 'string', default: '30' },
      json: { type: 'boolean', default: false },
    },
  });
  const n = Number(values.messages);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(n) || n < BATCH)
    throw new Error(`--messages ${values.messages}: need an integer >= ${BATCH}`);
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new Error(`--rounds ${values.rounds}: need an integer >= 1`);

  const { subjects, msgs } = ticks(n);
  const jsonDec = new TickJsonDecoder({ fastPath: false });
  const scanDec = new TickJsonDecoder();
  const binCodec = new TickBinaryCodec();
  const enc = new TextEncoder();
  const hist = () => build({ lowestDiscernibleValue: 1, numberOfSignificantValueDigits: 3 });
  const jsonPayloads = msgs.map((m) => enc.encode(JSON.stringify(m)));
  const codec = (name: string, decode: Codec['decode'], payloads: Uint8Array[]): Codec => ({
    name,
    decode,
    payloads,
    hist: hist(),
    totalNs: 0,
    ops: 0,
    failures: 0,
  });
  const json = codec(
    'json, JSON.parse (baseline)',
    (s, d, o) => jsonDec.decode(s, d, o),
    jsonPayloads,
  );
  const scan = codec('json, scanner (default)', (s, d, o) => scanDec.decode(s, d, o), jsonPayloads);
  const binary = codec(
    'binary',
    (s, d, o) => binCodec.decode(s, d, o),
    msgs.map((m) => binCodec.encodeTick(m)),
  );
  const out = newMarketEvent();
  const codecs = [json, scan, binary];
  for (const c of codecs) round(c, subjects, out, false);
  for (let r = 0; r < rounds; r++) {
    // Interleaved, rotating the order so drift hits every codec alike.
    for (let k = 0; k < codecs.length; k++) {
      round(codecs[(r + k) % codecs.length]!, subjects, out, true);
    }
  }
  const failures = codecs.reduce((a, c) => a + c.failures, 0);
  if (failures > 0) {
    throw new Error(`decode failures: ${codecs.map((c) => `${c.name} ${c.failures}`).join(', ')}`);
  }
  const rows = codecs.map(report);
  const ratio = rows[0]!.nsPerOp / rows[2]!.nsPerOp;
  const scanRatio = rows[0]!.nsPerOp / rows[1]!.nsPerOp;
  if (values.json) {
    const doc = {
      messages: n,
      rounds,
      batch: BATCH,
      rows,
      speedup: ratio,
      scannerSpeedup: scanRatio,
    };
    process.stdout.write(`${JSON.stringify(doc)}\n`);
    return;
  }
  const cols = ['codec', 'bytes/msg', 'ns/op', 'p50', 'p90', 'p99', 'max', 'msgs/s'];
  const lines = rows.map((r) => [
    r.codec,
    String(r.bytesPerMsg),
    String(r.nsPerOp),
    String(r.p50),
    String(r.p90),
    String(r.p99),
    String(r.max),
    r.msgsPerSec.toLocaleString('en-US'),
  ]);
  const widths = cols.map((c, i) => Math.max(c.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  process.stdout.write(
    [
      `tick decode, ${n} messages x ${rounds} rounds, ns/op per batch of ${BATCH} (percentiles over batches)`,
      fmt(cols),
      ...lines.map(fmt),
      `json scanner vs JSON.parse: ${scanRatio.toFixed(2)}x the throughput (JSON.parse ns/op / scanner ns/op)`,
      `binary vs JSON.parse: ${ratio.toFixed(2)}x the throughput`,
    ].join('\n') + '\n',
  );
}

main();
