/**
 * A minimal Qilin trading executor: approved signals in from JetStream, fills
 * out on core NATS. Copy it and replace `execute` with a real order.
 *
 * ```
 *  kernel ─► JetStream QILIN_SIGNALS (sig.<strategy>.<symbol>)
 *                 │ durable pull consumer "executor-<account>" (explicit ack)
 *                 ▼
 *            this process: buy/sell → fill at refPx × qty; flat → nothing
 *                 │
 *                 ▼ core publish
 *            fill.<account> ─► kernel RiskActor positions
 * ```
 * Usage: `node dist/examples/executor.js [--account main] [--strategy momentum] [--durable NAME]`
 * Env: QILIN_NATS_URL (default nats://127.0.0.1:14222), QILIN_ACCOUNT (default main),
 * and the credentials: QILIN_NATS_SEED_FILE, or QILIN_NATS_AUTH_DIR with the seed of
 * this account's executor user in `<dir>/executor-<account>.nk` (`qilin services
 * nats-user add executor --account <account>`); neither: no credentials.
 *
 * Only the public npm packages are imported: this file is what a user copies.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import { connect, nkeyAuthenticator } from '@nats-io/transport-node';

/** The fields of a Qilin signal this executor reads (docs/protocol.md has them all). */
interface Signal {
  id: string;
  strategy: string;
  sym: string;
  side: 'buy' | 'sell' | 'flat';
  qty: number;
  refPx: number;
  account: string;
}

const STREAM = 'QILIN_SIGNALS';
const { values: args } = parseArgs({
  options: {
    account: { type: 'string' },
    strategy: { type: 'string' },
    durable: { type: 'string' },
  },
});
const account = args.account ?? process.env['QILIN_ACCOUNT'] ?? 'main';
const filter = args.strategy === undefined ? 'sig.>' : `sig.${args.strategy}.>`;
const durable = args.durable ?? `executor-${account}`;

// The executor user may subscribe sig.>, consume QILIN_SIGNALS and publish
// only fill.<account> (docs/security.md "NATS roles").
const authDir = process.env['QILIN_NATS_AUTH_DIR'];
const seedFile =
  process.env['QILIN_NATS_SEED_FILE'] ||
  (authDir ? join(authDir, `executor-${account}.nk`) : undefined);
const nc = await connect({
  servers: process.env['QILIN_NATS_URL'] ?? 'nats://127.0.0.1:14222',
  name: durable,
  ...(seedFile === undefined
    ? {}
    : {
        authenticator: nkeyAuthenticator(
          new TextEncoder().encode(readFileSync(seedFile, 'utf8').trim()),
        ),
      }),
});

// A durable consumer resumes where it stopped after a restart; "new" on first
// creation, so an executor never trades a backlog of stale signals.
const jsm = await jetstreamManager(nc);
try {
  await jsm.consumers.info(STREAM, durable);
} catch (err) {
  if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) {
    throw err; // StreamNotFound: no kernel has run on this NATS yet
  }
  await jsm.consumers.add(STREAM, {
    durable_name: durable,
    filter_subject: filter,
    deliver_policy: DeliverPolicy.New,
    ack_policy: AckPolicy.Explicit,
  });
}
const messages = await (await jetstream(nc).consumers.get(STREAM, durable)).consume();
const stop = (): void => void messages.close();
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
console.log(`executor: account ${account}, consuming ${filter} from ${STREAM} as ${durable}`);

for await (const m of messages) {
  const sig = m.json<Signal>();
  // Other accounts' signals share the stream; flat means "no position wanted".
  if (sig.account === account && sig.side !== 'flat' && sig.qty > 0) {
    const fill = {
      signalId: sig.id,
      sym: sig.sym,
      side: sig.side,
      qty: sig.qty,
      px: sig.refPx,
      ts: Date.now() * 1000, // µs since epoch
    };
    nc.publish(`fill.${account}`, JSON.stringify(fill));
    console.log(`fill ${fill.side} ${fill.qty} ${fill.sym} @ ${fill.px} (signal ${sig.id})`);
  }
  // Ack after the fill is handed to the client: a crash before this line
  // redelivers the signal (at-least-once; a real executor dedups by sig.id).
  m.ack();
}
await nc.drain();
