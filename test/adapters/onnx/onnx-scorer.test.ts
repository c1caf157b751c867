import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import t from 'tap';
import {
  type Activation,
  type DenseLayer,
  type DenseModel,
  checkDenseModel,
  denseForward,
  denseModelToOnnx,
  denseOutputs,
} from '../../../adapters/onnx/dense-model.js';
import { OnnxScorer } from '../../../adapters/onnx/onnx-scorer.js';

const f32 = (v: number[]): Float32Array => Float32Array.from(v);

/** A logistic regression over four features. */
const LR: DenseModel = {
  name: 'lr',
  version: '1',
  features: ['ret1', 'zscore', 'rsi', 'spread'],
  layers: [
    {
      inputs: 4,
      outputs: 1,
      weights: f32([0.5, -0.25, 1, 0.1]),
      bias: f32([0.05]),
      activation: 'sigmoid',
    },
  ],
};

const arbLayerWidths = fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 2, maxLength: 4 });
const arbActivation = fc.constantFrom<Activation>('identity', 'relu', 'sigmoid', 'tanh');
const arbWeight = fc.float({ min: -2, max: 2, noNaN: true, noDefaultInfinity: true });

/** A random small MLP: widths[0] features, then one dense layer per further width. */
const arbModel = arbLayerWidths.chain((widths) =>
  fc
    .tuple(
      ...widths.slice(1).map((out, i) =>
        fc.record({
          weights: fc.array(arbWeight, {
            minLength: widths[i]! * out,
            maxLength: widths[i]! * out,
          }),
          bias: fc.array(arbWeight, { minLength: out, maxLength: out }),
          activation: arbActivation,
        }),
      ),
    )
    .map((layers): DenseModel => ({
      name: 'mlp',
      version: '1',
      features: Array.from({ length: widths[0]! }, (_, i) => `f${i}`),
      layers: layers.map((l, i): DenseLayer => ({
        inputs: widths[i]!,
        outputs: widths[i + 1]!,
        weights: f32(l.weights),
        bias: f32(l.bias),
        activation: l.activation,
      })),
    })),
);

void t.test('onnxruntime equals the TypeScript forward pass within 1e-5 (property)', async (t) => {
  let checked = 0;
  await fc.assert(
    fc.asyncProperty(
      arbModel,
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      async (model, rows, seed) => {
        const f = model.features.length;
        const outs = denseOutputs(model);
        // Inputs from the seed: a deterministic spread over [-5, 5].
        const x = new Float32Array(rows * f);
        let s = seed;
        for (let i = 0; i < x.length; i++) {
          s = (Math.imul(s, 1103515245) + 12345) >>> 0;
          x[i] = (s / 2 ** 32) * 10 - 5;
        }
        const want = new Float32Array(rows * outs);
        denseForward(model, x, rows, want);
        const scorer = await OnnxScorer.create(denseModelToOnnx(model), {
          features: model.features,
          outputs: outs,
          maxBatch: 64,
        });
        try {
          scorer.input.set(x);
          const got = await scorer.run(rows);
          for (let i = 0; i < rows * outs; i++) {
            if (!(Math.abs(got[i]! - want[i]!) <= 1e-5)) {
              throw new Error(
                `row ${Math.floor(i / outs)} col ${i % outs}: onnx ${got[i]} vs ts ${want[i]}`,
              );
            }
          }
          checked += rows * outs;
        } finally {
          await scorer.release();
        }
      },
    ),
    { numRuns: 40 },
  );
  t.ok(checked >= 40, `compared ${checked} outputs`);
});

void t.test(
  'a logistic regression scores as computed by hand; batches of any size reuse the buffers',
  async (t) => {
    const scorer = await OnnxScorer.create(denseModelToOnnx(LR), {
      features: LR.features,
      outputs: 1,
      maxBatch: 8,
    });
    t.teardown(() => scorer.release());
    scorer.input.set([1, 2, 3, 4, 0, 0, 0, 0]);
    const out = await scorer.run(2);
    // z = 0.5 − 0.5 + 3 + 0.4 + 0.05 = 3.45; the zero row is the bias alone.
    t.ok(Math.abs(out[0]! - 1 / (1 + Math.exp(-3.45))) < 1e-6);
    t.ok(Math.abs(out[1]! - 1 / (1 + Math.exp(-0.05))) < 1e-6);
    scorer.input[0] = 0;
    const again = await scorer.run(1);
    t.equal(again, out, 'the same output buffer every run');
    t.ok(Math.abs(again[0]! - 1 / (1 + Math.exp(-2.95))) < 1e-6, 'reads the rows as they are now');
    t.equal(scorer.output.length, 8);
    t.equal(scorer.input.length, 32);
  },
);

void t.test('the same model gives the same bytes; metadata names it', (t) => {
  const a = denseModelToOnnx(LR);
  const b = denseModelToOnnx(LR);
  t.same(Buffer.from(a), Buffer.from(b));
  const text = Buffer.from(a).toString('latin1');
  t.match(text, /qilin\.features/);
  t.match(text, /\["ret1","zscore","rsi","spread"\]/);
  t.end();
});

void t.test(
  'models that do not fit what the kernel feeds are refused, naming what differs',
  async (t) => {
    const bytes = denseModelToOnnx(LR);
    await t.rejects(
      OnnxScorer.create(bytes, { features: ['a', 'b', 'c', 'd', 'e'], outputs: 1, label: 'lr@1' }),
      {
        code: 'QLN_MODEL_INVALID',
        message: /lr@1: input features has shape \[batch, 4\]; the manifest's 5 features/,
      },
    );
    await t.rejects(OnnxScorer.create(bytes, { features: LR.features, outputs: 3 }), {
      code: 'QLN_MODEL_INVALID',
      message: /output score has shape \[batch, 1\]; the manifest declares \[batch, 3\]/,
    });
    await t.rejects(
      OnnxScorer.create(Uint8Array.from([1, 2, 3, 4]), { features: ['a'], outputs: 1 }),
      {
        code: 'QLN_MODEL_INVALID',
        message: /cannot load the model \(4 bytes\)/,
      },
    );
    const cut = bytes.subarray(0, bytes.length >> 1);
    await t.rejects(OnnxScorer.create(cut, { features: LR.features, outputs: 1 }), {
      code: 'QLN_MODEL_INVALID',
    });
    t.throws(() => checkDenseModel({ ...LR, layers: [{ ...LR.layers[0]!, inputs: 3 }] }), {
      code: 'QLN_INVALID_ARGUMENT',
      message: /layers\[0\]\.inputs/,
    });
    t.throws(
      () =>
        checkDenseModel({ ...LR, layers: [{ ...LR.layers[0]!, weights: f32([1, 2, NaN, 4]) }] }),
      { message: /finite numbers/ },
    );
    t.throws(() => checkDenseModel({ ...LR, features: ['a', 'a', 'b', 'c'] }), {
      message: /distinct feature names/,
    });
  },
);

void t.test('run bounds: batch size, synchronous runs, not after release', async (t) => {
  const scorer = await OnnxScorer.create(denseModelToOnnx(LR), {
    features: LR.features,
    outputs: 1,
    maxBatch: 4,
  });
  await t.rejects(scorer.run(0), { code: 'QLN_INVALID_ARGUMENT' });
  await t.rejects(scorer.run(5), { code: 'QLN_INVALID_ARGUMENT', message: /from 1 to 4/ });
  t.throws(() => scorer.runSync(5), { code: 'QLN_INVALID_ARGUMENT' });
  // Synchronous: the scores are there when runSync returns, in the same buffer every run.
  const x = Float32Array.from({ length: 4 * LR.features.length }, (_, i) => (i % 7) - 3);
  const want = new Float32Array(4);
  denseForward(LR, x, 4, want);
  scorer.input.set(x);
  const got = scorer.runSync(4);
  t.equal(got, scorer.output, 'scores land in the preallocated output');
  t.ok(
    [0, 1, 2, 3].every((r) => Math.abs(got[r]! - want[r]!) <= 1e-5),
    `runSync scores equal the TypeScript forward pass: ${[...got.subarray(0, 4)].join(', ')} vs ${[...want].join(', ')}`,
  );
  await scorer.release();
  await scorer.release();
  await t.rejects(scorer.run(1), { message: /not released/ });
});

void t.test(
  'sessions in several worker threads at once load, score and exit cleanly (onnxruntime #24486)',
  async (t) => {
    const model = denseModelToOnnx(LR);
    const rows = 16;
    const x = new Float32Array(rows * 4).map((_, i) => (i % 7) - 3);
    const want = new Float32Array(rows);
    denseForward(LR, x, rows, want);
    const fixture = new URL('./onnx-worker-fixture.js', import.meta.url);
    const runs = Array.from({ length: 4 }, () => {
      const w = new Worker(fixture, { workerData: { model, features: LR.features, rows, x } });
      return new Promise<{ scores: number[]; code: number }>((resolve, reject) => {
        let scores: number[] = [];
        w.on('message', (m: number[]) => (scores = m));
        w.once('error', reject);
        w.once('exit', (code) => resolve({ scores, code }));
      });
    });
    const results = await Promise.all(runs);
    t.equal(results.length, 4);
    for (const [i, r] of results.entries()) {
      t.equal(r.code, 0, `worker ${i} exited cleanly`);
      t.equal(r.scores.length, rows, `worker ${i} scored every row`);
      t.ok(
        r.scores.every((s, j) => Math.abs(s - want[j]!) <= 1e-5),
        `worker ${i} matches the reference`,
      );
    }
  },
);
