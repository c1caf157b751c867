import type WebSocket from 'ws';
import { within } from './wait.js';

/** Resolves once `ws` is open; rejects on its first error or after `deadlineMs`. */
export function opened(ws: WebSocket, deadlineMs = 10_000): Promise<void> {
  return within(
    'WebSocket open',
    new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    }),
    deadlineMs,
  );
}
