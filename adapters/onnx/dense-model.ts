import onnxProto, { type onnx as OnnxTypes } from 'onnx-proto';
import { invalidArgument } from '../../kernel/errors.js';

// CommonJS package: its named export is not visible to ESM import.
const { onnx } = onnxProto;

/** Activation after a dense layer. */
export type Activation = 'identity' | 'relu' | 'sigmoid' | 'tanh';

const ACTIVATIONS: ReadonlySet<string> = new Set<Activation>([
  'identity',
  'relu',
  'sigmoid',
  'tanh',
]);

/** One fully connected layer: `y = act(x · W + b)`. */
export interface DenseLayer {
  /** Input width. */
  readonly inputs: number;
  /** Output width. */
  readonly outputs: number;
  /** `inputs × outputs`, row-major (row i: the weights of input i). */
  readonly weights: Float32Array;
  /** `outputs` biases. */
  readonly bias: Float32Array;
  readonly activation: Activation;
}

/**
 * A small feed-forward model (logistic regression is one sigmoid layer, a
 * small MLP a few): what `qilin model train` makes and what the kernel's
 * ONNX path is tested with.
 */
export interface DenseModel {
  readonly name: string;
  readonly version: string;
  /** Input columns, in order: the feature names the rows are filled from. */
  readonly features: readonly string[];
  readonly layers: readonly DenseLayer[];
}

/** Name of the model's one input (`[batch, features]`, float32). */
export const DENSE_INPUT = 'features';
/** Name of the model's one output (`[batch, outputs of the last layer]`, float32). */
export const DENSE_OUTPUT = 'score';

/** Check a model's shapes; throws QLN_INVALID_ARGUMENT naming the layer and what differs. */
export function checkDenseModel(m: DenseModel): void {
  if (m.name === '' || m.version === '') {
    invalidArgument('model name/version', `${m.name}@${m.version}`, 'a non-empty name and version');
  }
  if (m.features.length === 0) invalidArgument('features', '[]', 'at least one feature');
  if (new Set(m.features).size !== m.features.length) {
    invalidArgument('features', m.features.join(','), 'distinct feature names');
  }
  if (m.layers.length === 0) invalidArgument('layers', '[]', 'at least one layer');
  let width = m.features.length;
  m.layers.forEach((l, i) => {
    const where = `layers[${i}]`;
    if (l.inputs !== width) {
      invalidArgument(`${where}.inputs`, l.inputs, `${width} (the width of what feeds it)`);
    }
    if (!Number.isInteger(l.outputs) || l.outputs < 1) {
      invalidArgument(`${where}.outputs`, l.outputs, 'an integer ≥ 1');
    }
    if (l.weights.length !== l.inputs * l.outputs) {
      invalidArgument(`${where}.weights`, l.weights.length, `${l.inputs} × ${l.outputs} values`);
    }
    if (l.bias.length !== l.outputs) {
      invalidArgument(`${where}.bias`, l.bias.length, `${l.outputs} values`);
    }
    if (!ACTIVATIONS.has(l.activation)) {
      invalidArgument(`${where}.activation`, l.activation, [...ACTIVATIONS].join(' | '));
    }
    for (const v of l.weights) {
      if (!Number.isFinite(v)) invalidArgument(`${where}.weights`, v, 'finite numbers');
    }
    for (const v of l.bias) {
      if (!Number.isFinite(v)) invalidArgument(`${where}.bias`, v, 'finite numbers');
    }
    width = l.outputs;
  });
}

/** Output width of the model (the last layer's). */
export function denseOutputs(m: DenseModel): number {
  return m.layers[m.layers.length - 1]!.outputs;
}

const FLOAT = onnx.TensorProto.DataType.FLOAT;

function initializer(name: string, dims: number[], data: Float32Array): OnnxTypes.ITensorProto {
  // A copy: rawData must be exactly these bytes, not the rest of a shared buffer.
  const bytes = new Uint8Array(data.byteLength);
  bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return onnx.TensorProto.create({ name, dims, dataType: FLOAT, rawData: bytes });
}

function valueInfo(name: string, width: number): OnnxTypes.IValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: FLOAT,
        shape: onnx.TensorShapeProto.create({
          dim: [
            onnx.TensorShapeProto.Dimension.create({ dimParam: 'batch' }),
            onnx.TensorShapeProto.Dimension.create({ dimValue: width }),
          ],
        }),
      }),
    }),
  });
}

const OP: Record<Exclude<Activation, 'identity'>, string> = {
  relu: 'Relu',
  sigmoid: 'Sigmoid',
  tanh: 'Tanh',
};

/**
 * The model as ONNX bytes (IR 8, opset 17, operators MatMul, Add and the
 * activations only): input `features` `[batch, F]`, output `score`
 * `[batch, outputs]`, float32. Name, version and the feature order go into
 * the model's metadata, so a file can be checked against its manifest.
 * Deterministic: the same model gives the same bytes.
 */
export function denseModelToOnnx(m: DenseModel): Uint8Array {
  checkDenseModel(m);
  const nodes: OnnxTypes.INodeProto[] = [];
  const inits: OnnxTypes.ITensorProto[] = [];
  let x = DENSE_INPUT;
  m.layers.forEach((l, i) => {
    const last = i === m.layers.length - 1;
    const w = `w${i}`;
    const b = `b${i}`;
    inits.push(initializer(w, [l.inputs, l.outputs], l.weights));
    inits.push(initializer(b, [l.outputs], l.bias));
    const mm = `mm${i}`;
    const z = l.activation === 'identity' && last ? DENSE_OUTPUT : `z${i}`;
    nodes.push(
      onnx.NodeProto.create({ name: `matmul${i}`, opType: 'MatMul', input: [x, w], output: [mm] }),
    );
    nodes.push(
      onnx.NodeProto.create({ name: `add${i}`, opType: 'Add', input: [mm, b], output: [z] }),
    );
    if (l.activation === 'identity') {
      x = z;
      return;
    }
    const y = last ? DENSE_OUTPUT : `y${i}`;
    nodes.push(
      onnx.NodeProto.create({
        name: `${l.activation}${i}`,
        opType: OP[l.activation],
        input: [z],
        output: [y],
      }),
    );
    x = y;
  });
  const graph = onnx.GraphProto.create({
    name: m.name,
    node: nodes,
    initializer: inits,
    input: [valueInfo(DENSE_INPUT, m.features.length)],
    output: [valueInfo(DENSE_OUTPUT, denseOutputs(m))],
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: 17 })],
    producerName: 'qilin',
    modelVersion: 1,
    graph,
    metadataProps: [
      onnx.StringStringEntryProto.create({ key: 'qilin.name', value: m.name }),
      onnx.StringStringEntryProto.create({ key: 'qilin.version', value: m.version }),
      onnx.StringStringEntryProto.create({
        key: 'qilin.features',
        value: JSON.stringify(m.features),
      }),
    ],
  });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * The model's forward pass in TypeScript, in float32 like onnxruntime
 * (each layer's output rounded to float32): the reference the ONNX file is
 * checked against (`qilin model train` refuses a file whose outputs differ
 * by more than 1e-5). `x` holds `rows × F` values, `out` receives
 * `rows × outputs`. Allocates per call: not for the hot path.
 */
export function denseForward(
  m: DenseModel,
  x: Float32Array,
  rows: number,
  out: Float32Array,
): void {
  const f = m.features.length;
  if (x.length < rows * f) invalidArgument('x', x.length, `at least ${rows} × ${f} values`);
  if (out.length < rows * denseOutputs(m)) {
    invalidArgument('out', out.length, `at least ${rows} × ${denseOutputs(m)} values`);
  }
  let cur = x.subarray(0, rows * f);
  for (const l of m.layers) {
    const next = new Float32Array(rows * l.outputs);
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < l.outputs; o++) {
        let s = 0;
        for (let i = 0; i < l.inputs; i++)
          s += cur[r * l.inputs + i]! * l.weights[i * l.outputs + o]!;
        next[r * l.outputs + o] = activate(l.activation, Math.fround(Math.fround(s) + l.bias[o]!));
      }
    }
    cur = next;
  }
  out.set(cur);
}

function activate(a: Activation, z: number): number {
  switch (a) {
    case 'identity':
      return z;
    case 'relu':
      return z > 0 ? z : 0;
    case 'sigmoid':
      return 1 / (1 + Math.exp(-z));
    case 'tanh':
      return Math.tanh(z);
  }
}
