import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { denseForward } from '../../../adapters/onnx/dense-model.js';
import { parseManifest, sha256Hex } from '../../../adapters/onnx/model-manifest.js';
import {
  binaryMetrics,
  type Dataset,
  generatedDataset,
  splitByTime,
  trainLogistic,
} from '../../../adapters/onnx/train.js';
import { runQilin } from '../../helpers/cli.js';

/** AUC by its definition: P(score of a positive > score of a negative), ties counted half. */
function naiveAuc(s: number[], y: number[]): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < s.length; i++) {
    for (let j = 0; j < s.length; j++) {
      if (y[i] === 1 && y[j] === 0) {
        den++;
        num += s[i]! > s[j]! ? 1 : s[i] === s[j] ? 0.5 : 0;
      }
    }
  }
  return num / den;
}

void t.test('metrics against hand-computed references', (t) => {
  const m = binaryMetrics([0.9, 0.8, 0.3, 0.2], [1, 0, 1, 0]);
  t.equal(m.auc, 0.75, 'pairs (0.9>0.8, 0.9>0.2, 0.3<0.8, 0.3>0.2): 3 of 4');
  t.equal(m.hitRate, 0.5);
  t.equal(m.baseRate, 0.5);
  t.ok(
    Math.abs(m.logloss - -(Math.log(0.9) + Math.log(0.2) + Math.log(0.3) + Math.log(0.8)) / 4) <
      1e-12,
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 1 })), {
        minLength: 2,
        maxLength: 40,
      }),
      (rows) => {
        const s = rows.map(([v]) => v / 5);
        const y = rows.map(([, l]) => l);
        const want = naiveAuc(s, y);
        const got = binaryMetrics(s, y).auc;
        return Number.isNaN(want) ? Number.isNaN(got) : Math.abs(got - want) < 1e-12;
      },
    ),
    { numRuns: 300 },
  );
  t.end();
});

void t.test(
  'logistic regression learns a separable rule; standardisation folded into the weights',
  (t) => {
    // y = 1 when 3·a − b > 100, with a on a scale of hundreds and b of ones.
    const rows = 2000;
    const x = new Float64Array(rows * 2);
    const y = new Uint8Array(rows);
    let s = 7;
    for (let r = 0; r < rows; r++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const a = 20 + (s / 2 ** 32) * 30;
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const b = (s / 2 ** 32) * 10;
      x[r * 2] = a;
      x[r * 2 + 1] = b;
      y[r] = 3 * a - b > 100 ? 1 : 0;
    }
    const d: Dataset = { features: ['a', 'b'], x, y, rows };
    const model = trainLogistic(
      d,
      { epochs: 400, learningRate: 1, l2: 0 },
      { name: 'sep', version: '1' },
    );
    const out = new Float32Array(rows);
    denseForward(model, Float32Array.from(x), rows, out);
    const m = binaryMetrics(out, y);
    t.ok(m.auc > 0.99, `auc ${m.auc}`);
    t.ok(m.hitRate > 0.95, `hit rate ${m.hitRate}`);
    const w = model.layers[0]!.weights;
    t.ok(w[0]! > 0 && w[1]! < 0, 'signs of the rule on the raw features');
    t.ok(Math.abs(w[0]! / w[1]! + 3) < 0.6, `ratio of the weights near −3 (${w[0]! / w[1]!})`);
    const [a, b] = splitByTime(d, 0.75);
    t.same([a.rows, b.rows], [1500, 500]);
    t.same(
      Array.from(b.x.subarray(0, 2)),
      Array.from(x.subarray(3000, 3002)),
      'the split keeps time order',
    );
    t.end();
  },
);

void t.test(
  'the generated data set is the same for the same seed, and labels follow the horizon',
  (t) => {
    const a = generatedDataset({ symbols: 3, messages: 6000, horizon: 10, seed: 5 });
    const b = generatedDataset({ symbols: 3, messages: 6000, horizon: 10, seed: 5 });
    const c = generatedDataset({ symbols: 3, messages: 6000, horizon: 10, seed: 6 });
    t.ok(a.rows > 1000, `${a.rows} rows`);
    t.same(a.x, b.x);
    t.same(a.y, b.y);
    t.not(
      sha256Hex(new Uint8Array(a.x.buffer)),
      sha256Hex(new Uint8Array(c.x.buffer)),
      'another seed, other rows',
    );
    t.ok(
      a.x.every((v) => Number.isFinite(v)),
      'only warm rows',
    );
    t.throws(
      () =>
        generatedDataset({ symbols: 1, messages: 100, horizon: 1, seed: 1, features: ['nope'] }),
      {
        message: /names of the feature set/,
      },
    );
    t.end();
  },
);

void t.test('qilin model train: files, the export check, the manifest, the push', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qilin-train-'));
  const r = await runQilin([
    'model',
    '--dir',
    join(dir, 'reg'),
    'train',
    '--name',
    'lr',
    '--version',
    '7',
    '--messages',
    '30000',
    '--epochs',
    '60',
    '--out',
    dir,
    '--push',
    '--json',
  ]);
  t.equal(r.code, 0, r.err);
  const doc = JSON.parse(r.out) as {
    maxAbsDiff: number;
    pushed: string;
    files: { model: string; manifest: string };
  };
  t.ok(doc.maxAbsDiff <= 1e-5, `onnxruntime within 1e-5 of the TS pass (${doc.maxAbsDiff})`);
  t.equal(doc.pushed, 'stored');
  t.ok(existsSync(doc.files.model));
  const manifest = parseManifest(JSON.parse(readFileSync(doc.files.manifest, 'utf8')));
  t.equal(manifest.sha256, sha256Hex(readFileSync(doc.files.model)));
  t.same(manifest.features, ['rsi14', 'zscore50', 'imbalance', 'relSpread']);
  t.ok(manifest.metrics['validAuc']! > 0.5, `validation auc ${manifest.metrics['validAuc']}`);
  t.equal(manifest.reference?.scoreQuantiles.length, 11);
  const list = await runQilin(['model', '--dir', join(dir, 'reg'), 'list', '--json']);
  t.match(list.out, /"version": "7"/);
  const bad = await runQilin([
    'model',
    '--dir',
    join(dir, 'reg'),
    'train',
    '--name',
    'x/y',
    '--version',
    '1',
  ]);
  t.equal(bad.code, 2);
  t.match(bad.err, /invalid model name "x\/y"/);
  const few = await runQilin([
    'model',
    'train',
    '--name',
    'x',
    '--version',
    '1',
    '--messages',
    'many',
  ]);
  t.match(few.err, /invalid --messages: "many"/);
});
