/**
 * A replay consumer that records what the actors said: each prediction and
 * signal as one NDJSON line, the WebSocket frame the kernel would have sent
 * (`{"topic":"signal/<sym>","data":<message>}`, PROTOCOL.md) without the
 * `lat` stage stamps (wall-clock, so not part of a deterministic replay), in
 * source order. A sha256 of the lines says whether two replays agree.
 */
import { createHash, type Hash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { OutputDecoder } from '../actors/output-decoder.js';
import type { ModelRef } from '../kernel/messages.js';
import { OutputKind, newOutputEvent } from '../kernel/output-record.js';
import type { ChunkOutputs, ReplayConsumer } from './replay-engine.js';
import type { TickChunk } from './tick-chunk.js';

export interface OutputRecorderOptions {
  strategy: string;
  account: string;
  model: ModelRef;
  /** File descriptor for the lines (undefined: count and hash only). */
  fd?: number;
  /** Record predictions too (default true). */
  predictions?: boolean;
}

export class OutputRecorder implements ReplayConsumer {
  predictions = 0;
  signals = 0;
  quality = 0;
  private readonly decoder: OutputDecoder;
  private readonly ev = newOutputEvent();
  private readonly hash: Hash = createHash('sha256');
  private hex: string | undefined;

  constructor(private readonly o: OutputRecorderOptions) {
    this.decoder = new OutputDecoder({ strategy: o.strategy, account: o.account, model: o.model });
  }

  onChunk(_c: TickChunk, symbols: readonly string[], outs: ChunkOutputs): void {
    let text = '';
    for (let k = 0; k < outs.count; k++) {
      const e = outs.decode(k, this.ev);
      const sym = symbols[e.symId]!;
      if (e.kind === OutputKind.SIGNAL) {
        const { lat: _lat, ...data } = this.decoder.toSignal(e, sym);
        text += `${JSON.stringify({ topic: `signal/${sym}`, data })}\n`;
        this.signals++;
      } else if (e.kind === OutputKind.PREDICTION) {
        if (this.o.predictions === false) continue;
        const { lat: _lat, ...data } = this.decoder.toPrediction(e, sym);
        text += `${JSON.stringify({ topic: `prediction/${sym}`, data })}\n`;
        this.predictions++;
      } else {
        this.quality++;
      }
    }
    if (text === '') return;
    this.hash.update(text);
    if (this.o.fd !== undefined) writeSync(this.o.fd, text);
  }

  /** sha256 of every line written, hex. */
  digest(): string {
    this.hex ??= this.hash.digest('hex');
    return this.hex;
  }
}
