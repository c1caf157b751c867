import { invalidArgument } from '../../kernel/errors.js';

/** What the batcher drives: a scorer with its own input rows (OnnxScorer, or a test double). */
export interface BatchScorer {
  /** At least `maxBatch × features` floats; read by `run`. */
  readonly input: Float32Array;
  /** Score the first `n` rows of `input`; resolves to `≥ n × outputs` scores (row r at `r × outputs`). */
  run(n: number): Promise<Float32Array>;
}

/** Options of {@link MicroBatcher}. */
export interface MicroBatcherOptions {
  scorer: BatchScorer;
  /** Floats per row. */
  features: number;
  /** Scores per row. */
  outputs: number;
  /** Rows per run at most (≤ what the scorer holds). Default 512. */
  maxBatch?: number;
  /**
   * Longest a staged row waits for more rows before its batch runs anyway,
   * ms. 0: only `flush()` (end of a drain) or a full batch start a run.
   * Default 2.
   */
  maxWaitMs?: number;
  /**
   * Batches that may be staged while one runs (each `maxBatch` rows,
   * allocated once). A row that finds them all full is refused: `add`
   * returns false and `refused` counts it. Default 4.
   */
  maxStagedBatches?: number;
  /** Each scored row: its tag, and the scores at `scores[at … at + outputs)` (valid during the call only). */
  onResult: (tag: number, scores: Float32Array, at: number) => void;
  /** Each row of a batch whose run failed (the batcher goes on with the next batch). */
  onError: (tag: number, err: unknown) => void;
}

interface Slot {
  readonly rows: Float32Array;
  readonly tags: Float64Array;
  count: number;
  /** Closed to new rows: waiting to run or running. */
  sealed: boolean;
}

/**
 * Micro-batching of prediction rows: the symbols of a worker that ticked in
 * the same drain are scored in one model run.
 *
 * ```
 *  add(tag, row) ─► staging slot (fill) ──full / flush() / maxWaitMs──► sealed
 *                                                                       │ one run at a time, oldest first
 *  onResult(tag, scores, at) ◄── scorer.run(n) ◄── copy rows into scorer.input
 * ```
 * Every accepted row is answered exactly once (onResult, or onError when
 * its batch's run failed), and rows are answered in the order they were
 * added, so each symbol's predictions come in its tick order. A row that
 * finds every staging slot full is refused (`add` returns false) rather
 * than queued without bound.
 *
 * Allocation: the slots are allocated once; a row is copied into its slot,
 * nothing per row. Per batch: the scorer's promise, and a timer when
 * `maxWaitMs` > 0.
 */
export class MicroBatcher {
  /** Rows refused because every staging slot was full. */
  refused = 0;
  /** Runs started. */
  batches = 0;
  /** Rows answered (results and errors). */
  answered = 0;
  private readonly o: Required<Omit<MicroBatcherOptions, 'onResult' | 'onError' | 'scorer'>>;
  private readonly slots: Slot[];
  /** Oldest slot holding rows (the next to run). */
  private head = 0;
  /** Slot taking new rows. */
  private fill = 0;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: MicroBatcherOptions) {
    const maxBatch = opts.maxBatch ?? 512;
    const o = {
      features: opts.features,
      outputs: opts.outputs,
      maxBatch,
      maxWaitMs: opts.maxWaitMs ?? 2,
      maxStagedBatches: opts.maxStagedBatches ?? 4,
    };
    for (const k of ['features', 'outputs', 'maxBatch', 'maxStagedBatches'] as const) {
      if (!Number.isInteger(o[k]) || o[k] < 1) invalidArgument(k, o[k], 'an integer ≥ 1');
    }
    if (!(o.maxWaitMs >= 0) || !Number.isFinite(o.maxWaitMs)) {
      invalidArgument('maxWaitMs', o.maxWaitMs, 'a number of ms ≥ 0');
    }
    if (opts.scorer.input.length < maxBatch * o.features) {
      invalidArgument(
        'scorer.input',
        opts.scorer.input.length,
        `≥ maxBatch × features = ${maxBatch * o.features} floats`,
      );
    }
    this.o = o;
    // One more slot than may be staged: the one running.
    this.slots = Array.from({ length: o.maxStagedBatches + 1 }, () => ({
      rows: new Float32Array(maxBatch * o.features),
      tags: new Float64Array(maxBatch),
      count: 0,
      sealed: false,
    }));
  }

  /** Rows staged or running, not answered yet. */
  get pending(): number {
    let n = 0;
    for (const s of this.slots) n += s.count;
    return n;
  }

  /**
   * Stage one row: `features` floats from `src` at `offset`, answered later
   * under `tag`. Returns false (and counts it in `refused`) when every
   * staging slot is full.
   */
  add(tag: number, src: ArrayLike<number>, offset = 0): boolean {
    let s = this.slots[this.fill]!;
    if (s.sealed) {
      const next = (this.fill + 1) % this.slots.length;
      const n = this.slots[next]!;
      if (n.sealed || n.count > 0) {
        this.refused++;
        return false;
      }
      this.fill = next;
      s = n;
    }
    const f = this.o.features;
    const base = s.count * f;
    for (let i = 0; i < f; i++) s.rows[base + i] = src[offset + i]!;
    s.tags[s.count] = tag;
    s.count++;
    if (s.count === this.o.maxBatch) {
      this.seal(s);
    } else if (s.count === 1 && this.o.maxWaitMs > 0 && this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.o.maxWaitMs);
    }
    return true;
  }

  /** Close the batch being filled and start it if nothing runs (end of a drain). */
  flush(): void {
    const s = this.slots[this.fill]!;
    if (!s.sealed && s.count > 0) this.seal(s);
  }

  /** Resolves once every staged row has been answered (flushes the open batch first). */
  idle(): Promise<void> {
    this.flush();
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private seal(s: Slot): void {
    s.sealed = true;
    if (this.timer !== undefined && s === this.slots[this.fill]) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.kick();
  }

  private kick(): void {
    if (this.running) return;
    const s = this.slots[this.head]!;
    if (!s.sealed) return;
    this.running = true;
    this.batches++;
    const n = s.count;
    this.opts.scorer.input.set(s.rows.subarray(0, n * this.o.features));
    let run: Promise<Float32Array>;
    try {
      run = this.opts.scorer.run(n);
    } catch (err) {
      run = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    run.then(
      (scores) => this.done(s, n, scores, undefined),
      (err: unknown) => this.done(s, n, undefined, err),
    );
  }

  private done(s: Slot, n: number, scores: Float32Array | undefined, err: unknown): void {
    const outs = this.o.outputs;
    for (let i = 0; i < n; i++) {
      const tag = s.tags[i]!;
      try {
        if (scores === undefined) this.opts.onError(tag, err);
        else this.opts.onResult(tag, scores, i * outs);
      } catch {
        // A throwing callback must not leave rows unanswered or the batcher stuck.
      }
      this.answered++;
    }
    s.count = 0;
    s.sealed = false;
    this.head = (this.head + 1) % this.slots.length;
    this.running = false;
    // The slot being filled may be the one that just ran only if it was sealed; move on from it.
    if (this.slots[this.fill] === s) this.fill = this.head;
    this.kick();
    if (!this.running && this.pending === 0 && this.idleWaiters.length > 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const r of w) r();
    }
  }
}
