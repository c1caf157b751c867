/**
 * The market source a shard worker runs itself (kernel/market-source.ts
 * SourceModule): its own NATS connection and its own share of the market,
 * so no tick passes through the main thread.
 *
 * ```
 *  partitioned (natsPartitions P > 0; the server maps md.<v>.<s> → md.<v>.<s>.<p>):
 *    worker k subscribes md.*.*.<p> for every p < P with p ≡ k (mod workers)
 *    (with kernelPartitions: the k-th, k+workers-th … of the kernel's own set)
 *    JetStream input: one durable pull consumer per partition, <durable>-p<p>
 *    worker 0 also holds a canary on the unmapped md.*.*: a message there means
 *    the server has no partition mapping → rejected `unpartitioned`, reported
 *  unpartitioned (P = 0): every worker subscribes the filter and keeps the
 *    symbols that hash to it (FNV-1a + jump hash): each message crosses the
 *    socket once per worker, so this mode scales worse; core subjects only
 * ```
 */
import { ShardRouter } from '../../kernel/shard-router.js';
import { ErrorCodes, QilinError, invalidArgument } from '../../kernel/errors.js';
import { shareOf } from '../../kernel/partition-set.js';
import type { MarketIngest, MarketSource, SourceContext } from '../../kernel/market-source.js';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../../kernel/logger.js';
import { connectNats, drainNats } from './nats-connection.js';
import { NatsMarketSource, type NatsMarketJetStreamOptions } from './nats-market-source.js';

/** What the composition root hands each worker (structured-clone-able). */
export interface NatsShardSourceOptions {
  natsUrl: string;
  /** nkey seed file of the kernel role (a path: the worker reads it itself); unset: no credentials. */
  seedFile?: string | undefined;
  /** Market filter (config marketSubject), e.g. `md.>` or `md.nyse.>`. */
  subject: string;
  /** Partitions in the server's mapping (config natsPartitions); 0: none. */
  partitions: number;
  /**
   * The partitions this kernel takes (config kernelPartitions, parsed);
   * unset: all of them. Spread over the workers: every shards-th one.
   */
  kernelPartitions?: readonly number[] | undefined;
  /** Consume a JetStream stream (per-partition durables) instead of core subjects. */
  jetstream?: { stream: string; durable: string; ackWaitMs?: number | undefined } | undefined;
  /** Largest accepted payload in bytes (default 4096). */
  maxPayload?: number | undefined;
}

/**
 * The per-partition filter of a market filter: `md.>` → `md.*.*.<p>`,
 * `md.nyse.>` → `md.nyse.*.<p>`, `md.nyse.BTC` → `md.nyse.BTC.<p>`. Throws
 * for a filter that does not pin down the two market tokens.
 */
export function partitionSubject(filter: string, partition: number): string {
  return `${marketTokens(filter).join('.')}.${partition}`;
}

/** The unmapped form of a filter: `md.>` → `md.*.*` (the canary subject). */
export function unmappedSubject(filter: string): string {
  return marketTokens(filter).join('.');
}

function marketTokens(filter: string): [string, string, string] {
  const t = filter.split('.');
  if (t[0] !== 'md') invalidArgument('marketSubject', filter, 'a filter starting with md.');
  const rest = t.slice(1);
  if (rest.at(-1) === '>') {
    rest.pop();
    while (rest.length < 2) rest.push('*');
  }
  if (rest.length !== 2 || rest.some((x) => x === '>' || x === '')) {
    invalidArgument(
      'marketSubject',
      filter,
      'md.>, md.<venue>.>, md.<venue>.<symbol> (or with *) when natsPartitions > 0',
    );
  }
  return ['md', rest[0]!, rest[1]!];
}

/** Partitions of `shard` out of `shards`: p ≡ shard (mod shards). */
export function partitionsOf(shard: number, shards: number, partitions: number): number[] {
  const out: number[] = [];
  for (let p = shard; p < partitions; p += shards) out.push(p);
  return out;
}

class NatsShardSource implements MarketSource {
  readonly redelivers: boolean;
  private closing: Promise<void> | undefined;
  private ingest: MarketIngest | undefined;
  /** Partitions this worker takes (its own and adopted). */
  private readonly taken = new Set<number>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly sources: MarketSource[],
    private readonly o: NatsShardSourceOptions,
    private readonly log: Logger,
    own: readonly number[],
  ) {
    // JetStream input redelivers; a kernel that may adopt JetStream partitions later must say so now.
    this.redelivers = sources.some((s) => s.redelivers === true) || o.jetstream !== undefined;
    for (const p of own) this.taken.add(p);
  }

  async start(ingest: MarketIngest): Promise<void> {
    this.ingest = ingest;
    for (const s of this.sources) await s.start(ingest);
  }

  /** Failover: take partitions adopted from a dead kernel (restore, replay, consume). */
  async take(partitions: readonly number[]): Promise<void> {
    if (this.ingest === undefined || this.closing !== undefined) return;
    const fresh = partitions.filter((p) => !this.taken.has(p) && p < this.o.partitions);
    if (fresh.length === 0) return;
    for (const p of fresh) this.taken.add(p);
    const src = partitionSource(this.nc, this.o, fresh, this.log, this.o.maxPayload ?? 4096);
    this.sources.push(src);
    await src.start(this.ingest);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const s of this.sources) await s.close();
      await drainNats(this.nc);
    })();
    return this.closing;
  }
}

/** The source of partitions `mine` (one durable or subscription each, one snapshot unit each). */
function partitionSource(
  nc: NatsConnection,
  o: NatsShardSourceOptions,
  mine: readonly number[],
  log: Logger,
  maxPayload: number,
): NatsMarketSource {
  const js: NatsMarketJetStreamOptions | undefined =
    o.jetstream === undefined
      ? undefined
      : {
          stream: o.jetstream.stream,
          durable: o.jetstream.durable,
          ...(o.jetstream.ackWaitMs === undefined ? {} : { ackWaitMs: o.jetstream.ackWaitMs }),
          durables: mine.map((p) => `${o.jetstream!.durable}-p${p}`),
        };
  return new NatsMarketSource({
    nc,
    log,
    maxPayload,
    subjects: mine.map((p) => partitionSubject(o.subject, p)),
    streamSubjects: [o.subject],
    ...(js === undefined ? {} : { jetstream: js }),
    // One snapshot unit per partition: whichever worker or kernel takes
    // the partition next restores it (docs/adr/0006-warm-restart.md).
    units: mine.map((p, i) =>
      js === undefined
        ? `core/${partitionSubject(o.subject, p)}`
        : `js/${js.stream}/${js.durables![i]!}`,
    ),
  });
}

/** SourceModule entry point: connect, then subscribe this worker's share. */
export async function createMarketSource(ctx: SourceContext): Promise<MarketSource> {
  const o = ctx.options as NatsShardSourceOptions;
  if (o.jetstream !== undefined && o.partitions === 0) {
    throw new QilinError(
      ErrorCodes.CONFIG_INVALID,
      'JetStream market input needs natsPartitions > 0 (one durable consumer per partition)',
    );
  }
  const nc = await connectNats({
    servers: o.natsUrl,
    seedFile: o.seedFile,
    name: `qilin-kernel-shard-${ctx.shard}`,
    log: ctx.log,
    onStatus: (s) => {
      switch (s.type) {
        case 'disconnect':
          ctx.report({ type: 'disconnected', detail: `NATS ${s.server} lost` });
          break;
        case 'reconnect':
          ctx.report({ type: 'reconnected', detail: `NATS ${s.server} back` });
          break;
        case 'slowConsumer':
          ctx.report({ type: 'slow_consumer', detail: `${s.pending} messages pending` });
          break;
        case 'error':
          ctx.report({ type: 'error', detail: s.error.message });
          break;
      }
    },
  });
  const log = ctx.log;
  const maxPayload = o.maxPayload ?? 4096;
  const sources: MarketSource[] = [];
  if (o.partitions > 0) {
    const mine =
      o.kernelPartitions === undefined
        ? partitionsOf(ctx.shard, ctx.shards, o.partitions)
        : shareOf(o.kernelPartitions, ctx.shard, ctx.shards);
    if (mine.length > 0) sources.push(partitionSource(nc, o, mine, log, maxPayload));
    if (ctx.shard === 0 && o.jetstream === undefined) {
      sources.push(new Canary(nc, o.subject, ctx));
    }
  } else {
    const router = new ShardRouter(ctx.shards);
    sources.push(
      new NatsMarketSource({
        nc,
        log,
        maxPayload,
        subject: o.subject,
        keep: (sym) => router.shardOf(sym) === ctx.shard,
        units: [`core/${o.subject}/${ctx.shard}of${ctx.shards}`],
      }),
    );
  }
  return new NatsShardSource(
    nc,
    sources,
    o,
    log,
    o.partitions > 0
      ? o.kernelPartitions === undefined
        ? partitionsOf(ctx.shard, ctx.shards, o.partitions)
        : shareOf(o.kernelPartitions, ctx.shard, ctx.shards)
      : [],
  );
}

/**
 * Listens where nothing should arrive when the server partitions market
 * data. A message on the unmapped `md.<venue>.<symbol>` shows a missing
 * mapping: it is refused `unpartitioned` (counted, sampled) and reported
 * once, never silently lost and never processed by a worker that does not
 * own the symbol. With the default `md.>` filter it also takes the subjects
 * of the wrong shape (`md.x`, five tokens or more), which no partition
 * subscription sees, and refuses them `bad_subject`.
 */
class Canary implements MarketSource {
  private readonly subs: Subscription[] = [];

  constructor(
    private readonly nc: NatsConnection,
    private readonly filter: string,
    private readonly ctx: SourceContext,
  ) {}

  async start(ingest: MarketIngest): Promise<void> {
    let reported = false;
    this.subs.push(
      this.nc.subscribe(unmappedSubject(this.filter), {
        callback: (err, msg) => {
          if (err !== null) return;
          ingest.reject(
            'unpartitioned',
            msg.subject,
            'delivered without a partition token: the NATS server has no md.*.* partition mapping (ops/services/nats-config.ts)',
            msg.data,
          );
          if (reported) return;
          reported = true;
          this.ctx.report({
            type: 'error',
            detail: `market data arrives unpartitioned on ${msg.subject}: the NATS server lacks the md.*.* partition mapping, so these ticks are refused; restart NATS with the ops/ config (qilin services up) or set natsPartitions=0`,
          });
        },
      }),
    );
    if (this.filter === 'md.>') {
      for (const shape of ['md.*', 'md.*.*.*.*.>']) {
        this.subs.push(
          this.nc.subscribe(shape, {
            callback: (err, msg) => {
              if (err !== null) return;
              ingest.reject(
                'bad_subject',
                msg.subject,
                `subject ${JSON.stringify(msg.subject)} is not md.<venue>.<symbol>`,
                msg.data,
              );
            },
          }),
        );
      }
    }
    await this.nc.flush();
  }

  async close(): Promise<void> {
    for (const sub of this.subs) {
      if (!sub.isClosed()) await sub.drain().catch(() => undefined);
    }
  }
}
