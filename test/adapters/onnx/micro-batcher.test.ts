import fc from 'fast-check';
import t from 'tap';
import {
  type DenseModel,
  denseForward,
  denseModelToOnnx,
} from '../../../adapters/onnx/dense-model.js';
import { type BatchScorer, MicroBatcher } from '../../../adapters/onnx/micro-batcher.js';
import { OnnxScorer } from '../../../adapters/onnx/onnx-scorer.js';

const F = 3;

/**
 * A scorer whose runs complete when the test says: it records each batch's
 * rows at call time and answers each row with the sum of its values.
 */
class StepScorer implements BatchScorer {
  readonly input: Float32Array;
  readonly out: Float32Array;
  batchSizes: number[] = [];
  private pending:
    | { n: number; sums: number[]; resolve: (s: Float32Array) => void; reject: (e: Error) => void }
    | undefined;
  constructor(maxBatch: number) {
    this.input = new Float32Array(maxBatch * F);
    this.out = new Float32Array(maxBatch);
  }
  run(n: number): Promise<Float32Array> {
    if (this.pending !== undefined) throw new Error('overlapping runs');
    this.batchSizes.push(n);
    const sums: number[] = [];
    for (let r = 0; r < n; r++)
      sums.push(this.input[r * F]! + this.input[r * F + 1]! + this.input[r * F + 2]!);
    return new Promise((resolve, reject) => (this.pending = { n, sums, resolve, reject }));
  }
  get busy(): boolean {
    return this.pending !== undefined;
  }
  /** Complete the run in flight; then let the batcher's continuation run. */
  async complete(fail: boolean): Promise<void> {
    const p = this.pending;
    if (p === undefined) return;
    this.pending = undefined;
    if (fail) p.reject(new Error('model down'));
    else {
      p.sums.forEach((s, i) => (this.out[i] = s));
      p.resolve(this.out);
    }
    // Two turns: the promise reaction, then the batcher's handler.
    await Promise.resolve();
    await Promise.resolve();
  }
}

type Cmd = { add: number } | { flush: true } | { complete: boolean };

const arbCmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 5 }).map((s) => ({ add: s })) },
  { weight: 2, arbitrary: fc.constant({ flush: true as const }) },
  { weight: 3, arbitrary: fc.boolean().map((fail) => ({ complete: fail })) },
);

void t.test(
  'every accepted row is answered exactly once, in its symbol order (property)',
  async (t) => {
    let rowsChecked = 0;
    let refusedSeen = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(arbCmd, { minLength: 1, maxLength: 300 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 3 }),
        async (cmds, maxBatch, staged) => {
          const scorer = new StepScorer(maxBatch);
          const answers = new Map<number, number>();
          const order = new Map<number, number[]>();
          const errors = new Set<number>();
          const b = new MicroBatcher({
            scorer,
            features: F,
            outputs: 1,
            maxBatch,
            maxWaitMs: 0,
            maxStagedBatches: staged,
            onResult: (tag, s, at) => {
              answers.set(tag, (answers.get(tag) ?? 0) + 1);
              const sym = Math.floor(tag / 1e6);
              const seq = tag % 1e6;
              if (s[at] !== sym + seq + 1)
                throw new Error(`tag ${tag}: score ${s[at]}, want ${sym + seq + 1}`);
              (order.get(sym) ?? order.set(sym, []).get(sym)!).push(seq);
            },
            onError: (tag) => {
              answers.set(tag, (answers.get(tag) ?? 0) + 1);
              errors.add(tag);
              const sym = Math.floor(tag / 1e6);
              (order.get(sym) ?? order.set(sym, []).get(sym)!).push(tag % 1e6);
            },
          });
          const seqs = new Map<number, number>();
          const accepted: number[] = [];
          let refused = 0;
          const row = new Float32Array(F);
          for (const c of cmds) {
            if ('add' in c) {
              const seq = seqs.get(c.add) ?? 0;
              seqs.set(c.add, seq + 1);
              row[0] = c.add;
              row[1] = seq;
              row[2] = 1;
              if (b.add(c.add * 1e6 + seq, row)) accepted.push(c.add * 1e6 + seq);
              else refused++;
            } else if ('flush' in c) b.flush();
            else await scorer.complete(c.complete);
          }
          const idle = b.idle();
          while (scorer.busy) await scorer.complete(false);
          await idle;
          if (b.pending !== 0) throw new Error(`${b.pending} rows still pending`);
          if (b.refused !== refused) throw new Error(`refused ${b.refused}, seen ${refused}`);
          if (b.answered !== accepted.length)
            throw new Error(`answered ${b.answered} of ${accepted.length}`);
          for (const tag of accepted) {
            if (answers.get(tag) !== 1)
              throw new Error(`tag ${tag} answered ${answers.get(tag) ?? 0} times`);
          }
          if (answers.size !== accepted.length) throw new Error('a refused row was answered');
          for (const [sym, got] of order) {
            const want = accepted
              .filter((tag) => Math.floor(tag / 1e6) === sym)
              .map((tag) => tag % 1e6);
            if (got.join() !== want.join())
              throw new Error(`symbol ${sym}: answered ${got.join()}, added ${want.join()}`);
          }
          if (scorer.batchSizes.some((n) => n < 1 || n > maxBatch))
            throw new Error(`batch sizes ${scorer.batchSizes.join()}`);
          rowsChecked += accepted.length;
          refusedSeen += refused;
        },
      ),
      { numRuns: 300 },
    );
    t.ok(rowsChecked > 1000, `${rowsChecked} rows answered across the runs`);
    t.ok(refusedSeen > 0, `the runs exercised refusal (${refusedSeen} rows refused)`);
  },
);

void t.test(
  'a full batch runs at once; a partial one after maxWaitMs without a flush',
  async (t) => {
    const scorer = new StepScorer(4);
    const got: number[] = [];
    const b = new MicroBatcher({
      scorer,
      features: F,
      outputs: 1,
      maxBatch: 4,
      maxWaitMs: 5,
      onResult: (tag) => got.push(tag),
      onError: () => t.fail('no error expected'),
    });
    const row = Float32Array.from([1, 2, 3]);
    for (let i = 0; i < 4; i++) b.add(i, row);
    t.same(scorer.batchSizes, [4], 'the fourth row started the run');
    await scorer.complete(false);
    t.same(got, [0, 1, 2, 3]);
    b.add(4, row);
    t.same(scorer.batchSizes, [4], 'one row waits');
    await new Promise<void>((resolve) => {
      const poll = (): void => (scorer.busy ? resolve() : void setImmediate(poll));
      poll();
    });
    t.same(scorer.batchSizes, [4, 1], 'the timer ran the partial batch');
    await scorer.complete(false);
    t.same(got, [0, 1, 2, 3, 4]);
    t.equal(b.batches, 2);
  },
);

void t.test('through onnxruntime: 1,000 rows of 100 symbols equal the TS reference', async (t) => {
  const model: DenseModel = {
    name: 'mlp',
    version: '1',
    features: ['a', 'b', 'c'],
    layers: [
      {
        inputs: 3,
        outputs: 4,
        weights: Float32Array.from([0.1, -0.2, 0.3, 0.4, 0.5, -0.6, 0.7, 0.8, -0.9, 1, 0.2, 0.1]),
        bias: new Float32Array(4).fill(0.1),
        activation: 'tanh',
      },
      {
        inputs: 4,
        outputs: 1,
        weights: Float32Array.from([0.5, -0.5, 0.25, 1]),
        bias: Float32Array.from([0]),
        activation: 'sigmoid',
      },
    ],
  };
  const scorer = await OnnxScorer.create(denseModelToOnnx(model), {
    features: model.features,
    outputs: 1,
    maxBatch: 64,
  });
  t.teardown(() => scorer.release());
  const rows = new Float32Array(1000 * F).map((_, i) => Math.sin(i));
  const want = new Float32Array(1000);
  denseForward(model, rows, 1000, want);
  const got = new Float32Array(1000).fill(NaN);
  let answered = 0;
  const b = new MicroBatcher({
    scorer,
    features: F,
    outputs: 1,
    maxBatch: 64,
    maxStagedBatches: 32,
    onResult: (tag, s, at) => {
      got[tag] = s[at]!;
      answered++;
    },
    onError: (_tag, err) => t.fail(String(err)),
  });
  let accepted = 0;
  for (let i = 0; i < 1000; i++) if (b.add(i, rows, i * F)) accepted++;
  t.equal(accepted, 1000, 'every row accepted');
  await b.idle();
  t.equal(answered, 1000);
  t.equal(b.refused, 0);
  let worst = 0;
  for (let i = 0; i < 1000; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  t.ok(worst <= 1e-5, `largest difference ${worst}`);
  t.ok(b.batches >= 16, `${b.batches} runs of at most 64 rows`);
});

void t.test('bad options are refused', (t) => {
  const scorer = new StepScorer(4);
  const base = { scorer, features: F, outputs: 1, onResult: () => {}, onError: () => {} };
  t.throws(() => new MicroBatcher({ ...base, maxBatch: 8 }), { message: /scorer\.input/ });
  t.throws(() => new MicroBatcher({ ...base, maxBatch: 0 }), { code: 'QLN_INVALID_ARGUMENT' });
  t.throws(() => new MicroBatcher({ ...base, maxBatch: 4, maxWaitMs: -1 }), {
    message: /maxWaitMs/,
  });
  t.end();
});
