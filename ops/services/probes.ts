import { connect } from 'node:net';

/** Outcome of one readiness probe. */
export interface Probe {
  ok: boolean;
  /** What was seen: a status line, an error message. */
  detail: string;
}

const PROBE_TIMEOUT_MS = 2000;

/** GET `url`; ok when the status is 200 and the body passes `expect`. */
export async function probeHttp(
  url: string,
  expect: (body: string) => boolean = () => true,
): Promise<Probe> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    const body = await res.text();
    const ok = res.status === 200 && expect(body);
    return { ok, detail: `GET ${url} → ${res.status} ${JSON.stringify(body.slice(0, 80))}` };
  } catch (err) {
    return { ok: false, detail: `GET ${url} → ${(err as Error).message}` };
  }
}

/** Raw RESP `PING` on 127.0.0.1:`port`; ok when the answer is `+PONG`. */
export function probeRedis(port: number): Promise<Probe> {
  return new Promise((resolve) => {
    let answer = '';
    const socket = connect({ host: '127.0.0.1', port });
    const done = (probe: Probe) => {
      socket.destroy();
      resolve(probe);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () =>
      done({ ok: false, detail: `PING :${port} timed out` }),
    );
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('utf8');
      if (answer.includes('\r\n')) {
        const reply = answer.slice(0, answer.indexOf('\r\n'));
        done({ ok: reply === '+PONG', detail: `PING :${port} → ${reply}` });
      }
    });
    socket.on('error', (err) => done({ ok: false, detail: `PING :${port} → ${err.message}` }));
    socket.on('end', () => done({ ok: false, detail: `PING :${port} → connection closed` }));
  });
}
