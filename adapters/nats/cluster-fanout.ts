/**
 * Cluster fan-out (config clusterFanout): every kernel's WebSocket
 * subscribers see every symbol, whichever kernel processes it.
 *
 * ```
 *  output pipeline ─► publishFrame(topic, frame) ─┬─► local uWS subscribers
 *                                                 └─► NATS qilin.fan.<this kernel> (a copy)
 *  NATS qilin.fan.* (other kernels) ─► topic from the frame ─► local uWS subscribers
 * ```
 * The frames are the exact WebSocket frames (`{"topic":…,"data":…}`), so a
 * subscriber cannot tell which kernel made one. Own frames are not echoed.
 * A frame whose topic cannot be read is dropped and counted.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { FrameFanout } from '../../actors/output-pipeline.js';
import type { Logger } from '../../kernel/logger.js';

/** What the fan-out publishes to locally: the uWS server. */
export interface LocalFanout<H> extends FrameFanout<H> {
  topic(name: string): H;
}

export const FANOUT_PREFIX = 'qilin.fan.';

/** A kernel id as one NATS subject token. */
export function fanoutToken(kernelId: string): string {
  return kernelId.replace(/[^A-Za-z0-9_-]/g, '_');
}

const TOPIC_HEAD = Buffer.from('{"topic":"');

/** The topic of a WebSocket frame (`{"topic":"signal/X","data":…}`), or undefined. */
export function frameTopic(frame: Uint8Array): string | undefined {
  if (frame.length < TOPIC_HEAD.length + 2) return undefined;
  for (let i = 0; i < TOPIC_HEAD.length; i++) if (frame[i] !== TOPIC_HEAD[i]) return undefined;
  const end = frame.indexOf(0x22, TOPIC_HEAD.length);
  if (end <= TOPIC_HEAD.length || end - TOPIC_HEAD.length > 200) return undefined;
  return Buffer.from(
    frame.buffer,
    frame.byteOffset + TOPIC_HEAD.length,
    end - TOPIC_HEAD.length,
  ).toString('latin1');
}

export interface ClusterFanoutOptions<H> {
  local: LocalFanout<H>;
  nc: NatsConnection;
  kernelId: string;
  log: Logger;
  /** A frame of another kernel was sent to local subscribers. */
  onReceived?: () => void;
}

export class ClusterFanout<H> implements FrameFanout<H> {
  readonly subject: string;
  private sub: Subscription | undefined;
  private bad = 0;

  constructor(private readonly o: ClusterFanoutOptions<H>) {
    this.subject = FANOUT_PREFIX + fanoutToken(o.kernelId);
  }

  topic(name: string): H {
    return this.o.local.topic(name);
  }

  publishFrame(topic: H, frame: Uint8Array): void {
    this.o.local.publishFrame(topic, frame);
    // The view is reused after the call: the client keeps what it is given until its next flush.
    this.o.nc.publish(this.subject, frame.slice());
  }

  /** Subscribe to the other kernels' frames. */
  async start(): Promise<void> {
    this.sub = this.o.nc.subscribe(`${FANOUT_PREFIX}*`, {
      callback: (err, msg) => {
        if (err !== null || msg.subject === this.subject) return;
        const topic = frameTopic(msg.data);
        let h: H;
        try {
          if (topic === undefined) throw new Error('no topic');
          h = this.o.local.topic(topic);
        } catch {
          if (this.bad++ % 1000 === 0) {
            this.o.log.warn(
              { subject: msg.subject, bad: this.bad },
              'fan-out frame without a valid topic dropped',
            );
          }
          return;
        }
        this.o.local.publishFrame(h, msg.data);
        this.o.onReceived?.();
      },
    });
    await this.o.nc.flush();
  }

  close(): void {
    this.sub?.unsubscribe();
    this.sub = undefined;
  }
}
