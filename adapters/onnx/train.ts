import {
  DEFAULT_FEATURE_SPECS,
  FeatureSet,
  type FeatureSpec,
} from '../../actors/indicators/feature-set.js';
import { invalidArgument } from '../../kernel/errors.js';
import { MarketSimulator } from '../../ops/sim/market-simulator.js';
import type { DenseModel } from './dense-model.js';

/**
 * Training a small model in TypeScript (no Python): a labelled data set
 * from a generated market through the kernel's own FeatureSet, a logistic
 * regression by gradient descent, and its metrics. `qilin model train`
 * exports the result with denseModelToOnnx and checks onnxruntime against
 * denseForward.
 */

/** Scale-free features of the actor's default set: comparable across symbols of any price. */
export const DEFAULT_TRAIN_FEATURES: readonly string[] = [
  'rsi14',
  'zscore50',
  'imbalance',
  'relSpread',
];

/** A labelled data set: `rows × features` values, labels 0/1, in time order. */
export interface Dataset {
  features: readonly string[];
  x: Float64Array;
  y: Uint8Array;
  rows: number;
}

export interface GeneratedDatasetOptions {
  symbols: number;
  /** Good messages (trades and quotes) generated, all symbols together. */
  messages: number;
  /** Label horizon: the row's label is 1 when the symbol's mid is higher this many of its messages later. */
  horizon: number;
  seed: number;
  features?: readonly string[];
  specs?: readonly FeatureSpec[];
  /** Called about every 1% with messages done. */
  onProgress?: (done: number, total: number) => void;
}

interface Pending {
  /** Row values, then the mid it was taken at. */
  values: Float64Array;
  mid: number;
  due: number;
}

/** Rows from the market simulator (ops/sim): each message updates its symbol's FeatureSet; a row is taken when every feature is warm. */
export function generatedDataset(o: GeneratedDatasetOptions): Dataset {
  const names = o.features ?? DEFAULT_TRAIN_FEATURES;
  if (!Number.isInteger(o.horizon) || o.horizon < 1)
    invalidArgument('horizon', o.horizon, 'an integer ≥ 1');
  if (!Number.isInteger(o.messages) || o.messages < 1)
    invalidArgument('messages', o.messages, 'an integer ≥ 1');
  const sim = new MarketSimulator({
    symbols: o.symbols,
    rate: 1,
    seed: o.seed,
    badRate: 0,
    gapRate: 0,
  });
  const syms = sim.symbols();
  const sets = new Map<
    string,
    { fs: FeatureSet; idx: number[]; count: number; queue: Pending[] }
  >();
  for (const s of syms) {
    const fs = new FeatureSet(o.specs ?? DEFAULT_FEATURE_SPECS);
    const idx = names.map((n) => {
      const i = fs.indexOf(n);
      if (i < 0) invalidArgument('features', n, `names of the feature set: ${fs.names.join(', ')}`);
      return i;
    });
    sets.set(s, { fs, idx, count: 0, queue: [] });
  }
  const x: number[] = [];
  const y: number[] = [];
  const text = new TextDecoder();
  const step = Math.max(1, Math.floor(o.messages / 100));
  let ts = 1_700_000_000_000_000;
  for (let m = 0; m < o.messages; m++) {
    ts += 1000;
    const msg = sim.nextMessage(ts);
    if (msg.bad !== false) continue;
    const st = sets.get(msg.sym)!;
    const tick = JSON.parse(text.decode(msg.data)) as Record<string, number>;
    if (msg.type === 'trade') st.fs.onTrade(tick['px']!, tick['qty']!);
    else st.fs.onQuote(tick['bid']!, tick['bidQty']!, tick['ask']!, tick['askQty']!);
    st.count++;
    // Label the rows whose horizon has come.
    while (st.queue.length > 0 && st.queue[0]!.due <= st.count) {
      const p = st.queue.shift()!;
      for (const v of p.values) x.push(v);
      y.push(msg.mid > p.mid ? 1 : 0);
    }
    const values = new Float64Array(st.idx.length);
    let warm = true;
    for (let i = 0; i < st.idx.length; i++) {
      const v = st.fs.values[st.idx[i]!]!;
      if (!Number.isFinite(v)) warm = false;
      values[i] = v;
    }
    if (warm) st.queue.push({ values, mid: msg.mid, due: st.count + o.horizon });
    if (o.onProgress !== undefined && m % step === 0) o.onProgress(m, o.messages);
  }
  o.onProgress?.(o.messages, o.messages);
  return { features: names, x: Float64Array.from(x), y: Uint8Array.from(y), rows: y.length };
}

/** Metrics of a model's scores against labels. */
export interface BinaryMetrics {
  rows: number;
  logloss: number;
  /** Area under the ROC curve (0.5: no skill). */
  auc: number;
  /** Share of rows where score > 0.5 agrees with the label. */
  hitRate: number;
  /** Share of label 1. */
  baseRate: number;
}

/** Logloss, AUC (rank statistic, ties averaged), hit rate and base rate. */
export function binaryMetrics(scores: ArrayLike<number>, y: ArrayLike<number>): BinaryMetrics {
  const n = y.length;
  if (n === 0) return { rows: 0, logloss: NaN, auc: NaN, hitRate: NaN, baseRate: NaN };
  let ll = 0;
  let hits = 0;
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const p = Math.min(1 - 1e-12, Math.max(1e-12, scores[i]!));
    ll -= y[i]! === 1 ? Math.log(p) : Math.log(1 - p);
    if ((scores[i]! > 0.5 ? 1 : 0) === y[i]) hits++;
    pos += y[i]!;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let rankSumPos = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (y[order[k]!] === 1) rankSumPos += rank;
    i = j + 1;
  }
  const neg = n - pos;
  const auc = pos === 0 || neg === 0 ? NaN : (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
  return { rows: n, logloss: ll / n, auc, hitRate: hits / n, baseRate: pos / n };
}

export interface TrainOptions {
  epochs: number;
  /** Step size of gradient descent. */
  learningRate: number;
  /** L2 penalty on the weights (not the bias). */
  l2: number;
  onEpoch?: (epoch: number, loss: number) => void;
}

/**
 * Logistic regression by full-batch gradient descent on standardised
 * features; the standardisation is folded into the weights, so the model
 * takes the raw features: w' = w / σ, b' = b − Σ w μ / σ.
 */
export function trainLogistic(
  d: Dataset,
  o: TrainOptions,
  meta: { name: string; version: string },
): DenseModel {
  const f = d.features.length;
  const n = d.rows;
  if (n < 2)
    invalidArgument('rows', n, 'at least 2 labelled rows (a longer run or a shorter horizon)');
  const mu = new Float64Array(f);
  const sd = new Float64Array(f);
  for (let r = 0; r < n; r++) for (let j = 0; j < f; j++) mu[j]! += d.x[r * f + j]! / n;
  for (let r = 0; r < n; r++)
    for (let j = 0; j < f; j++) sd[j]! += (d.x[r * f + j]! - mu[j]!) ** 2 / n;
  for (let j = 0; j < f; j++) sd[j] = Math.sqrt(sd[j]!) || 1;
  const w = new Float64Array(f);
  let b = 0;
  const g = new Float64Array(f);
  const z = new Float64Array(f);
  for (let e = 0; e < o.epochs; e++) {
    g.fill(0);
    let gb = 0;
    let loss = 0;
    for (let r = 0; r < n; r++) {
      let s = b;
      for (let j = 0; j < f; j++) {
        z[j] = (d.x[r * f + j]! - mu[j]!) / sd[j]!;
        s += w[j]! * z[j]!;
      }
      const p = 1 / (1 + Math.exp(-s));
      const err = p - d.y[r]!;
      for (let j = 0; j < f; j++) g[j]! += err * z[j]!;
      gb += err;
      const pc = Math.min(1 - 1e-12, Math.max(1e-12, p));
      loss -= d.y[r]! === 1 ? Math.log(pc) : Math.log(1 - pc);
    }
    for (let j = 0; j < f; j++) w[j]! -= o.learningRate * (g[j]! / n + o.l2 * w[j]!);
    b -= (o.learningRate * gb) / n;
    o.onEpoch?.(e + 1, loss / n);
  }
  const weights = new Float32Array(f);
  let bias = b;
  for (let j = 0; j < f; j++) {
    weights[j] = w[j]! / sd[j]!;
    bias -= (w[j]! * mu[j]!) / sd[j]!;
  }
  return {
    name: meta.name,
    version: meta.version,
    features: [...d.features],
    layers: [
      { inputs: f, outputs: 1, weights, bias: Float32Array.from([bias]), activation: 'sigmoid' },
    ],
  };
}

/** The first `share` of the rows (time order) and the rest. */
export function splitByTime(d: Dataset, share: number): [Dataset, Dataset] {
  const cut = Math.floor(d.rows * share);
  const f = d.features.length;
  const part = (a: number, b: number): Dataset => ({
    features: d.features,
    x: d.x.slice(a * f, b * f),
    y: d.y.slice(a, b),
    rows: b - a,
  });
  return [part(0, cut), part(cut, d.rows)];
}
