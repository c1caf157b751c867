/** Messages between the replay engine and its shard workers (one per chunk each way). */
import type { SharedOutput } from './shard-runner.js';
import type { SharedTickChunk } from './tick-chunk.js';

export interface ReplayWorkerInit {
  shard: number;
  shards: number;
  /** The actor module's URL (the live workers' module by default). */
  actorModule: string;
  options: unknown;
  /** Control messages (e.g. load a model version) applied before the first chunk. */
  controls: unknown[];
  slots: SharedTickChunk[];
  /** This shard's output buffer per slot. */
  outputs: SharedOutput[];
}

export type ReplayToWorker =
  { t: 'chunk'; slot: number; length: number; names: string[] } | { t: 'end' };

export type ReplayFromWorker =
  | { t: 'ready' }
  | { t: 'done'; slot: number; count: number; output: SharedOutput; ticks: number }
  | { t: 'error'; message: string };
