/**
 * A Qilin WebSocket subscriber that survives reconnects: it keeps the server's
 * epoch and the last offset of every topic, and after a disconnect resubscribes
 * with them, so the kernel replays exactly what was missed (or says
 * `history_lost` when it cannot). It also asks for heartbeats, to see a silent
 * gap or a stale link. Protocol: docs/protocol.md, "Sessions"; design:
 * docs/adr/0007-subscriber-sessions.md.
 *
 * Usage: `node dist/examples/ws-resume-subscriber.js [--url ws://127.0.0.1:9470/ws]
 *   [--topics signal/*] [--count N] [--stale-ms 5000] [--drop-after N --drop-ms MS]`
 * Env: QILIN_API_KEY (required), QILIN_WS_URL.
 *
 * ```
 *  connect ─► {"op":"heartbeat"}
 *          ─► {"op":"offsets",…} × k      (only when the offsets do not fit one frame)
 *          ─► {"op":"subscribe","topics":[…],"resume":{"epoch":E,"offsets":{…}}}
 *          ─► {"op":"ping"}               (frames before the pong: the replay)
 *  ◄─ subscribed {epoch} ◄─ history_lost? ◄─ missed frames / snapshots ◄─ pong ◄─ live…
 *  close / stale heartbeat ─► backoff 250 ms × 2ⁿ (≤ 10 s, jittered) ─► connect
 * ```
 * `--drop-after N --drop-ms MS` closes the connection after N topic frames and
 * waits MS before reconnecting: a network drop on demand, to watch a resume.
 *
 * Only public npm packages are imported: this file is what a user copies.
 */
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

/** A server frame: a topic frame (with its offset) or a reply / marker. */
interface Frame {
  topic?: string;
  data?: unknown;
  off?: number;
  type?: string;
  topics?: string[];
  epoch?: string;
  n?: number;
  code?: string;
  message?: string;
  reason?: string;
  from?: number;
  oldest?: number;
  last?: number;
}

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    topics: { type: 'string' },
    count: { type: 'string' },
    'stale-ms': { type: 'string' },
    'drop-after': { type: 'string' },
    'drop-ms': { type: 'string' },
  },
});
const url = args.url ?? process.env['QILIN_WS_URL'] ?? 'ws://127.0.0.1:9470/ws';
const key = process.env['QILIN_API_KEY'];
const topics = (args.topics ?? 'signal/*').split(',');
const count = Number(args.count ?? 0); // 0: until Ctrl-C
const staleMs = Number(args['stale-ms'] ?? 5000);
let dropAfter = Number(args['drop-after'] ?? 0);
const dropMs = Number(args['drop-ms'] ?? 2000);
if (
  key === undefined ||
  key === '' ||
  !(count >= 0) ||
  !(staleMs > 0) ||
  !(dropAfter >= 0) ||
  !(dropMs >= 0)
) {
  console.error(
    'usage: QILIN_API_KEY=<key> ws-resume-subscriber [--url URL] [--topics T,…] [--count N] [--stale-ms MS] [--drop-after N --drop-ms MS]',
  );
  process.exit(2);
}

/** The server's offsets per topic fit one frame up to about 16 KiB; beyond, stage them. */
const MAX_INLINE_OFFSETS_BYTES = 12_000;
const OFFSETS_PER_STAGE_FRAME = 400;

// ── Session state: survives reconnects ──────────────────────────────────
/** Epoch of the server's history our offsets belong to ('' before the first subscribe). */
let epoch = '';
/** Last offset received per exact topic. */
const offsets = new Map<string, number>();
/** Topics whose next frame is a snapshot after history_lost: its offset jumps. */
const resync = new Set<string>();
let frames = 0;
let attempt = 0;
let stopping = false;
let current: WebSocket | undefined;
let retry: NodeJS.Timeout | undefined;

// Ctrl-C / SIGTERM: close cleanly (1000) and exit 0, also while waiting to reconnect.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    stopping = true;
    clearTimeout(retry);
    current?.close(1000, 'bye');
  });
}

function connect(): void {
  const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${key}` } });
  let lastBeat = -1;
  let beatAt = Date.now();
  /** Frames received between our subscribe and the pong that follows it: the replay. */
  let replaying = false;
  let replayed = 0;
  let lost = 0;
  const stale = setInterval(
    () => {
      if (Date.now() - beatAt > staleMs) {
        console.log(`stale link: no heartbeat for ${Date.now() - beatAt} ms, reconnecting`);
        ws.terminate();
      }
    },
    Math.min(1000, staleMs),
  );

  ws.on('open', () => {
    ws.send(JSON.stringify({ op: 'heartbeat' }));
    const resume = epoch === '' ? undefined : { epoch, offsets: Object.fromEntries(offsets) };
    if (resume !== undefined && JSON.stringify(resume.offsets).length > MAX_INLINE_OFFSETS_BYTES) {
      // Too many topics for one frame: stage them, then resume with the epoch alone.
      const all = [...offsets];
      for (let i = 0; i < all.length; i += OFFSETS_PER_STAGE_FRAME) {
        const part = Object.fromEntries(all.slice(i, i + OFFSETS_PER_STAGE_FRAME));
        ws.send(JSON.stringify({ op: 'offsets', epoch, offsets: part }));
      }
      resume.offsets = {};
    }
    ws.send(JSON.stringify({ op: 'subscribe', topics, ...(resume && { resume }) }));
    ws.send(JSON.stringify({ op: 'ping' }));
    replaying = true;
  });

  ws.on('message', (raw: Buffer) => {
    const f = JSON.parse(raw.toString('utf8')) as Frame;
    if (f.topic !== undefined) {
      onTopicFrame(f);
      if (replaying) replayed++;
      frames++;
      if (count > 0 && frames >= count) {
        stopping = true;
        ws.close(1000, 'done');
      } else if (dropAfter > 0 && frames >= dropAfter) {
        dropAfter = 0; // once
        console.log(`dropping the connection (simulated) after ${frames} frames`);
        ws.close(4000, 'simulated drop');
      }
      return;
    }
    switch (f.type) {
      case 'subscribed':
        attempt = 0;
        console.log(
          epoch === ''
            ? `subscribed ${f.topics?.join(',')} epoch ${f.epoch}`
            : `resumed ${f.topics?.join(',')} epoch ${f.epoch}` +
                (f.epoch === epoch ? '' : ` (was ${epoch}: history lost)`),
        );
        epoch = f.epoch ?? '';
        break;
      case 'pong':
        if (replaying) {
          replaying = false;
          console.log(`caught up: ${replayed} frames replayed or snapshot, ${lost} history_lost`);
        }
        break;
      case 'history_lost':
        lost++;
        console.log(
          `history_lost ${f.topic} reason ${f.reason}: missed from off ${f.from}, oldest held ${f.oldest}, last ${f.last}; resyncing from the snapshot`,
        );
        if (f.topic !== undefined) {
          offsets.delete(f.topic);
          resync.add(f.topic);
        }
        break;
      case 'heartbeat':
        beatAt = Date.now();
        if (f.n !== undefined && lastBeat >= 0 && f.n !== lastBeat + 1) {
          console.log(`heartbeat gap: n ${lastBeat} → ${f.n} (${f.n - lastBeat - 1} missing)`);
        }
        lastBeat = f.n ?? lastBeat;
        break;
      case 'offsets':
        break;
      case 'error':
        console.error(`server error ${f.code}: ${f.message}`);
        break;
      default:
        break; // a frame type this client does not know: ignore it
    }
  });

  ws.on('error', (err) => {
    console.error(`ws-resume-subscriber: ${err.message}`); // e.g. "Unexpected server response: 401"
    if (/\b401\b/.test(err.message)) {
      stopping = true;
      process.exitCode = 1;
    }
  });

  ws.on('close', (code, reason) => {
    clearInterval(stale);
    if (stopping) return;
    const delay =
      code === 4000 ? dropMs : Math.min(10_000, 250 * 2 ** attempt++) * (0.5 + Math.random() / 2);
    console.log(
      `disconnected ${code} ${reason.toString('utf8')}; reconnecting in ${Math.round(delay)} ms`,
    );
    retry = setTimeout(connect, delay);
  });

  current = ws;
}

/** Track the topic's offset: a jump is a gap, a repeat a duplicate (neither happens within history). */
function onTopicFrame(f: Frame): void {
  const topic = f.topic!;
  const prev = offsets.get(topic);
  if (f.off !== undefined) {
    if (prev !== undefined && !resync.has(topic)) {
      if (f.off <= prev) {
        console.log(`duplicate ${topic} off ${f.off} (had ${prev}): skipped`);
        return;
      }
      if (f.off !== prev + 1) console.log(`gap ${topic}: expected off ${prev + 1}, got ${f.off}`);
    }
    offsets.set(topic, f.off);
    resync.delete(topic);
  }
  const d = f.data as { side?: string; strength?: number; id?: string } | undefined;
  const what =
    d?.side !== undefined ? ` ${d.side} strength ${d.strength?.toFixed(3)} id ${d.id}` : '';
  console.log(`${topic} off ${f.off ?? '-'}${what}`);
}

connect();
