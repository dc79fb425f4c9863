// ONNX import: a float ONNX model (opset 11..21; older opsets' attribute forms too) becomes a GraphModule.
// Conv, Gemm/MatMul with constant weights and BatchNormalization with constant statistics become Conv2d,
// Linear and BatchNorm layers (trainable and quantizable like zoo layers); every other node becomes a graph
// op (ConvTranspose: the convTranspose2d op). 1-D Conv / ConvTranspose run as 2-D ones over [N, C, 1, L]. The import runs the graph once on a zero input of the static input shape: that gives every value's
// shape (auto_pad, Reshape's 0 and -1) and folds whatever only depends on constants (Shape -> Gather ->
// Concat -> Reshape chains, Constant nodes) into constants.
// Already-quantized models (QDQ, QLinearConv/QLinearMatMul, ConvInteger/MatMulInteger) import as an exact
// float simulation: DequantizeLinear of an initializer folds to a float constant, QuantizeLinear ->
// DequantizeLinear on an activation becomes one fakeQuant op, a lone QuantizeLinear gives integer codes held
// as f32, and the QLinear / Integer ops become dequantize -> Conv2d/Linear layer (or conv/matmul op) -> quantize.

import { dirname } from 'node:path';
import { LowbitError } from '../../errors.js';
import { checkFinite } from '../finite.js';
import { noGrad } from '../../autograd/index.js';
import * as ops from '../../autograd/index.js';
import { GraphModule, runGraphOp, type GraphOp } from '../../nn/graph-module.js';
import type { Conv2d, Linear } from '../../nn/layers.js';
import { tidy } from '../../tensor/engine.js';
import { Random } from '../../tensor/random.js';
import { Tensor, formatShape, type DType } from '../../tensor/tensor.js';
import { OutOfMemoryError } from '../../kernels/memory.js';
import {
  Attributes, decodeModel, decodeTensor, defaultOpset, dtypeOfOnnx, inputDims, onnxTypeName, readModelFile,
  type ModelProto, type NodeProto, type TensorValue,
} from './read.js';

export const MIN_OPSET = 1;
export const MAX_OPSET = 21;

/** Every ONNX op type the importer maps, with what it becomes and its limits (the README table is generated from this). */
export const SUPPORTED_OPS: Record<string, string> = {
  Conv: 'Conv2d layer (constant weights) or conv op; 1-D (as 2-D over [N, C, 1, L]) and 2-D; groups, dilations, pads, strides, auto_pad',
  ConvTranspose: 'convTranspose op; 1-D (as 2-D over [N, C, 1, L]) and 2-D; groups, dilations, pads, strides, output_padding, output_shape, auto_pad',
  Gemm: 'Linear layer (constant B) or matmul; transA/transB, alpha/beta',
  MatMul: 'Linear layer (2-D input, constant 2-D B) or batched matmul with broadcasting',
  Add: 'broadcasting add; by a per-channel constant after a conv/linear layer: folded into its bias',
  Sub: 'broadcasting sub; by a per-channel constant after a conv/linear layer: folded into its bias',
  Mul: 'broadcasting mul; by a per-channel constant after a conv/linear layer: folded into its weights and bias',
  Div: 'broadcasting div (integer division truncates); by a per-channel constant after a conv/linear layer: folded into its weights and bias',
  Relu: 'relu', LeakyRelu: 'leakyRelu', Clip: 'clamp (min/max attributes or constant inputs)',
  Sigmoid: 'sigmoid', Tanh: 'tanh', HardSigmoid: 'clamp(alpha x + beta, 0, 1)', HardSwish: 'x hardSigmoid(x)',
  BatchNormalization: 'BatchNorm layer (constant statistics) or batchNorm op; inference mode',
  MaxPool: 'maxPool over 1, 2 or 3 axes; pads, strides, dilations, ceil_mode, auto_pad (no Indices output)',
  AveragePool: 'avgPool over 1, 2 or 3 axes; count_include_pad, ceil_mode, auto_pad',
  GlobalAveragePool: 'globalAvgPool',
  Flatten: 'reshape', Reshape: 'reshape to a constant shape (0, -1, allowzero)',
  Transpose: 'permute', Squeeze: 'reshape', Unsqueeze: 'reshape', Concat: 'concat',
  Pad: 'constant, edge, reflect and wrap padding with constant pads',
  Identity: 'identity', Dropout: 'identity (inference)', Softmax: 'softmax over one axis (opset >= 13) or flattened axes (< 13)',
  Constant: 'folded at import', Shape: 'folded at import (static shapes)', Gather: 'gather with constant indices',
  QuantizeLinear: 'integer codes as f32 (uint8/int8, per-tensor or per-axis); QuantizeLinear -> DequantizeLinear becomes one fakeQuant op (no block_size, no 16-bit/4-bit/float8 types)',
  DequantizeLinear: '(q - zp) scale in f32, folded to a float constant for initializers (uint8/int8/int32, per-tensor or per-axis; no block_size)',
  QLinearConv: 'dequantize -> Conv2d layer (constant weights, bias int32 of scale x_scale w_scale) or conv op -> quantize; 2-D',
  QLinearMatMul: 'dequantize -> Linear layer (2-D input, constant 2-D B) or matmul -> quantize',
  ConvInteger: 'conv of (x - x_zp) and (w - w_zp) as f32 (exact while sums < 2^24); 2-D',
  MatMulInteger: 'matmul of (A - a_zp) and (B - b_zp) as f32 (exact while sums < 2^24)',
};

/** Inputs each op requires (ONNX operator schemas, the opsets imported; ops not listed: 1, Constant 0). */
const REQUIRED_INPUTS: Record<string, number> = {
  Constant: 0, Conv: 2, ConvTranspose: 2, Gemm: 2, MatMul: 2, Add: 2, Sub: 2, Mul: 2, Div: 2, BatchNormalization: 5,
  Gather: 2, QuantizeLinear: 2, DequantizeLinear: 2, QLinearConv: 8, QLinearMatMul: 8, ConvInteger: 2, MatMulInteger: 2,
};

export interface ImportOptions {
  /** Static shape of the first graph input (overrides its dims; needed when a dimension other than the batch is dynamic). */
  inputShape?: number[];
  /** Static shapes of graph inputs by name (like inputShape, for any input). */
  inputShapes?: Record<string, number[]>;
  /** Graph inputs bound to fixed values at import (they become constants). */
  bind?: Record<string, TensorValue>;
  /** Folder of external data files (defaults to the model file's folder). */
  baseDir?: string;
  /** Name of the model in messages. */
  what?: string;
}

export interface ImportedModel {
  module: GraphModule;
  /** Shape of the first input and output at import (batch first). */
  inputShape: number[];
  outputShape: number[];
  inputs: { name: string; shape: number[]; dtype: DType }[];
  outputs: { name: string; shape: number[]; dtype: DType }[];
  opset: number;
  producer: string;
}

/** The op types of a model that the importer does not map, with the names of their nodes. */
export function unsupportedOps(model: ModelProto): { opType: string; nodes: string[] }[] {
  const bad = new Map<string, string[]>();
  (model.graph?.node ?? []).forEach((n, i) => {
    const domain = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.` : '';
    const type = `${domain}${n.opType ?? ''}`;
    if (!domain && SUPPORTED_OPS[n.opType ?? '']) return;
    const list = bad.get(type) ?? [];
    list.push(n.name || `#${i}`);
    bad.set(type, list);
  });
  return [...bad].map(([opType, nodes]) => ({ opType, nodes }));
}

const SUPPORTED_HINT = 'see the supported list with `lowbit onnx-ops` (README, "ONNX import")';

class UnsupportedError extends LowbitError {}

function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9_]+/g, '_').replace(/^_+|_+$/g, '');
}

/** The largest graph input the import traces (elements): 64 MB of float32, far above a CNN for weak hardware. */
const MAX_TRACE_INPUT = 2 ** 24;

/** Import an ONNX model from bytes or a file path. */
export function importOnnx(src: Uint8Array | string, opts: ImportOptions = {}): ImportedModel {
  const what = opts.what ?? (typeof src === 'string' ? src : 'the ONNX model');
  const model = typeof src === 'string' ? readModelFile(src) : decodeModel(src, what);
  const baseDir = opts.baseDir ?? (typeof src === 'string' ? dirname(src) : undefined);
  const importer = new Importer(model, what, baseDir, opts);
  try {
    return noGrad(() => tidy(() => importer.run()));
  } catch (e) {
    importer.dispose(); // the layers and constants made before the failure
    if (e instanceof OutOfMemoryError) {
      throw new LowbitError(`${what}: the import traces the graph once at batch 1 and ran out of WebAssembly memory (4 GiB): ${e.message.replace(/^lowbit: /, '')}; if the input is large, trace a smaller one with --input-shape`);
    }
    throw e;
  }
}

/** The geometry attributes of a conv / convTranspose op (2-D). */
type ConvAttrs = {
  stride: [number, number];
  padding: [number, number, number, number];
  dilation: [number, number];
  groups: number;
};

interface Value {
  t: Tensor;
  constant: boolean;
}

class Importer {
  private readonly values = new Map<string, Value>();
  private readonly module = new GraphModule();
  private readonly rng = new Random(0);
  private readonly opset: number;
  private readonly usedNames = new Set<string>();
  private readonly buffered = new Set<string>();
  private batch = -1;
  /** Nodes reading each value, and the graph outputs (for fusing QuantizeLinear -> DequantizeLinear). */
  private readonly readers = new Map<string, NodeProto[]>();
  private readonly graphOutputs = new Set<string>();
  /** QuantizeLinear outputs read only by matching DequantizeLinear nodes: not computed, each reader becomes a fakeQuant. */
  private readonly pendingQuantize = new Map<string, GraphOp>();
  /** The conv / linear layer that writes each value. */
  private readonly layerOf = new Map<string, string>();

  constructor(private readonly model: ModelProto, private readonly what: string, private readonly baseDir: string | undefined, private readonly opts: ImportOptions) {
    this.opset = defaultOpset(model);
    this.module.eval(); // the import trace must not update batch-norm statistics
  }

  dispose(): void {
    this.module.dispose();
  }

  run(): ImportedModel {
    const g = this.model.graph!;
    if (this.opset > MAX_OPSET) {
      throw new LowbitError(`${this.what} uses ONNX opset ${this.opset}; lowbit imports opsets up to ${MAX_OPSET}: export it with opset_version=17`);
    }
    const bad = unsupportedOps(this.model);
    if (bad.length) {
      throw new LowbitError(
        `${this.what} uses ONNX ops lowbit does not import: ${bad.map((b) => `${b.opType} (${b.nodes.slice(0, 5).join(', ')}${b.nodes.length > 5 ? `, ... ${b.nodes.length} nodes` : ''})`).join('; ')}; ${SUPPORTED_HINT}`,
      );
    }
    for (const init of g.initializer ?? []) {
      const v = decodeTensor(init, { baseDir: this.baseDir, what: `initializer ${init.name} of ${this.what}` });
      this.values.set(init.name ?? '', { t: Tensor.from(v.data, v.dims, v.dtype), constant: true });
    }
    const inputs: ImportedModel['inputs'] = [];
    for (const vi of g.input ?? []) {
      const name = vi.name ?? '';
      if (this.values.has(name)) continue; // an initializer listed as an input (IR < 4)
      const bound = this.opts.bind?.[name];
      if (bound) {
        this.values.set(name, { t: Tensor.from(bound.data, bound.dims, bound.dtype), constant: true });
        continue;
      }
      if (!vi.type?.tensorType) {
        throw new LowbitError(`${this.what}: input ${name} is not a tensor (a sequence, map or optional); lowbit imports models whose inputs are tensors`);
      }
      const elem = vi.type.tensorType.elemType ?? 0;
      const dtype = dtypeOfOnnx(elem);
      if (!dtype) throw new LowbitError(`${this.what}: input ${name} has element type ${onnxTypeName(elem)}; lowbit takes FLOAT (or integer) tensor inputs`);
      const shape = this.staticShape(name, inputDims(vi), this.opts.inputShapes?.[name] ?? (inputs.length === 0 ? this.opts.inputShape : undefined));
      const elements = shape.reduce((a, b) => a * b, 1);
      if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
        throw new LowbitError(`${this.what}: input ${name} has shape ${formatShape(shape)}; dimensions must be integers >= 0 (give the shape with --input-shape)`);
      }
      if (elements > MAX_TRACE_INPUT) {
        throw new LowbitError(`${this.what}: input ${name} has shape ${formatShape(shape)}; the import traces the graph with one such input and takes inputs of at most ${MAX_TRACE_INPUT} elements: give a smaller shape with --input-shape (e.g. --input-shape 1,3,224,224)`);
      }
      if (inputs.length === 0) this.batch = shape.length ? shape[0] : -1;
      inputs.push({ name, shape, dtype });
      this.module.addInput(name, shape, dtype);
      this.values.set(name, { t: Tensor.zeros(shape, dtype), constant: false });
    }

    for (const n of g.node ?? []) {
      for (const name of n.input ?? []) if (name) this.readers.set(name, [...(this.readers.get(name) ?? []), n]);
    }
    for (const o of g.output ?? []) this.graphOutputs.add(o.name ?? '');
    (g.node ?? []).forEach((n, i) => this.node(n, i));

    const outputs: ImportedModel['outputs'] = [];
    const names: string[] = [];
    for (const o of g.output ?? []) {
      const name = o.name ?? '';
      const v = this.get(name, 'graph output');
      if (v.constant) this.buffer(name);
      names.push(name);
      outputs.push({ name, shape: [...v.t.shape], dtype: v.t.dtype });
    }
    this.module.setOutputs(names);
    this.module.eval();
    return {
      module: this.module, inputShape: inputs[0]?.shape ?? [], outputShape: outputs[0]?.shape ?? [], inputs, outputs,
      opset: this.opset, producer: `${this.model.producerName ?? ''} ${this.model.producerVersion ?? ''}`.trim(),
    };
  }

  private staticShape(name: string, dims: (number | string | null)[] | null, given?: number[]): number[] {
    if (given) {
      if (dims && given.length !== dims.length) {
        throw new LowbitError(`--input-shape ${given.join(',')} has ${given.length} dimensions, input ${name} of ${this.what} has ${dims.length}`);
      }
      return [...given];
    }
    if (!dims) throw new LowbitError(`${this.what}: input ${name} has no shape; give it with --input-shape (e.g. --input-shape 1,3,32,32)`);
    return dims.map((d, i) => {
      if (typeof d === 'number') return d;
      if (i === 0) return 1; // the batch: any size runs, the import traces batch 1
      const example = dims.map((e, j) => (typeof e === 'number' ? e : j === 0 ? 1 : '<size>')).join(',');
      throw new LowbitError(
        `${this.what}: input ${name} has a dynamic dimension ${i}${d ? ` (${d})` : ''}; lowbit needs static sizes: give them with --input-shape (e.g. --input-shape ${example})`,
      );
    });
  }

  private get(name: string, reader: string): Value {
    const v = this.values.get(name);
    if (!v) throw new LowbitError(`${this.what}: ${reader} reads ${name}, which no node or initializer produces; the model is malformed`);
    return v;
  }

  /** The values of a constant input as numbers; a clear error if it is computed at run time. */
  private constant(n: NodeProto, index: number, what: string): { data: number[]; dims: number[] } | null {
    const name = n.input?.[index];
    if (!name) return null;
    const v = this.get(name, `node ${this.nodeName(n)}`);
    if (!v.constant) {
      throw new UnsupportedError(
        `${this.what}: node ${this.nodeName(n)} (${n.opType}) takes its ${what} from ${name}, which is computed at run time; lowbit needs it constant (static shapes): export the model with a fixed input size, or give one with --input-shape`,
      );
    }
    return { data: Array.from(v.t.toArray()), dims: [...v.t.shape] };
  }

  private nodeName(n: NodeProto): string {
    return n.name || n.output?.[0] || n.opType || '?';
  }

  private unsupported(n: NodeProto, why: string): never {
    throw new UnsupportedError(`${this.what}: node ${this.nodeName(n)} (${n.opType}): ${why}; ${SUPPORTED_HINT}`);
  }

  private layerName(n: NodeProto, index: number): string {
    let base = sanitize(n.name || '') || `${(n.opType ?? 'layer').toLowerCase()}${index}`;
    if (/^[0-9]/.test(base)) base = `n${base}`;
    let name = base, k = 1;
    while (this.usedNames.has(name)) name = `${base}_${k++}`;
    this.usedNames.add(name);
    return name;
  }

  /** NaN/Inf in a layer's constant parameters: an error naming the layer (not a model that outputs NaN). */
  private finite(layer: string, params: Record<string, Tensor | undefined>): void {
    for (const [what, t] of Object.entries(params)) {
      if (t && t.dtype === 'f32') checkFinite(t.toFloat32Array(), `${this.what}: layer ${layer} ${what}`, 'the ONNX file is damaged or was exported from a diverged model; export it again');
    }
  }

  /** Make a constant value a buffer of the module (once). */
  private buffer(value: string): void {
    if (this.buffered.has(value)) return;
    this.buffered.add(value);
    let buf = `const_${sanitize(value) || 'v'}`, k = 1;
    while (this.usedNames.has(buf)) buf = `const_${sanitize(value)}_${k++}`;
    this.usedNames.add(buf);
    this.module.addConstant(value, this.values.get(value)!.t, buf);
  }

  /** Run an op on the traced values; fold it when every input is constant, else add it to the module. */
  private emit(op: GraphOp): void {
    const ins = op.inputs.map((name) => (name ? this.get(name, `op ${op.op}`) : null));
    const folded = op.op !== 'layer' && ins.every((v) => !v || v.constant);
    let out: Tensor[];
    try {
      out = op.op === 'layer' ? this.module.runOp(op, ins.map((v) => v?.t ?? null)) : runGraphOp(op, ins.map((v) => v?.t ?? null));
    } catch (e) {
      if (e instanceof LowbitError) throw e;
      throw new LowbitError(`${this.what}: ${op.op} producing ${op.outputs.join(', ')}: ${(e as Error).message.replace(/^lowbit: /, '')}`);
    }
    op.outputs.forEach((name, i) => { if (name) this.values.set(name, { t: out[i], constant: folded }); });
    if (folded) return;
    for (const name of op.inputs) if (name && this.values.get(name)!.constant) this.buffer(name);
    this.module.addOp(op);
    if (op.op === 'layer') this.layerOf.set(op.outputs[0], op.attrs!.layer as string);
  }

  /** A fresh value name derived from `base`. */
  private freshName(base: string): string {
    let name = `${base}__t`, k = 1;
    while (this.values.has(name)) name = `${base}__t${k++}`;
    return name;
  }

  /** A new constant value (e.g. a scaled bias) under a fresh name. */
  private newConstant(base: string, t: Tensor): string {
    let name = `${base}__c`, k = 1;
    while (this.values.has(name)) name = `${base}__c${k++}`;
    this.values.set(name, { t, constant: true });
    return name;
  }

  private autoPads(n: NodeProto, a: Attributes, inSpatial: number[], kernel: number[], strides: number[], dilations: number[]): number[] {
    const mode = a.string('auto_pad', 'NOTSET');
    const r = kernel.length;
    if (mode === 'NOTSET') {
      const pads = a.ints('pads', new Array<number>(2 * r).fill(0));
      if (pads.length !== 2 * r) this.unsupported(n, `pads has ${pads.length} values for ${r} spatial axes`);
      return pads;
    }
    if (mode === 'VALID') return new Array<number>(2 * r).fill(0);
    if (mode !== 'SAME_UPPER' && mode !== 'SAME_LOWER') this.unsupported(n, `auto_pad ${mode}`);
    const pads = new Array<number>(2 * r).fill(0);
    for (let i = 0; i < r; i++) {
      const out = Math.ceil(inSpatial[i] / strides[i]);
      const total = Math.max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - inSpatial[i]);
      const small = Math.floor(total / 2), big = total - small;
      pads[i] = mode === 'SAME_UPPER' ? small : big;
      pads[r + i] = mode === 'SAME_UPPER' ? big : small;
    }
    return pads;
  }

  private node(n: NodeProto, index: number): void {
    const a = new Attributes(n, this.baseDir);
    const input = (i: number) => n.input?.[i] ?? '';
    const output = (i: number) => n.output?.[i] ?? '';
    const x = () => this.get(input(0), `node ${this.nodeName(n)}`).t;
    const simple = (op: string, attrs: Record<string, unknown> = {}, inputs = [input(0)]) => this.emit({ op, inputs, outputs: [output(0)], attrs });
    const opset = this.opset;
    const required = REQUIRED_INPUTS[n.opType ?? ''] ?? 1;
    if ((n.input ?? []).slice(0, required).some((name) => !name) || (n.input ?? []).length < required || !output(0)) {
      const given = (n.input ?? []).filter((name) => name).length;
      throw new LowbitError(`${this.what}: node ${this.nodeName(n)} (${n.opType}) has ${given} input(s) and ${(n.output ?? []).length} output(s); ${n.opType} needs ${required} input(s) and an output: the model is malformed`);
    }
    switch (n.opType) {
      case 'Identity': return simple('identity');
      case 'Relu': return simple('relu');
      case 'Sigmoid': return simple('sigmoid');
      case 'Tanh': return simple('tanh');
      case 'LeakyRelu': return simple('leakyRelu', { alpha: a.float('alpha', 0.01) });
      case 'HardSigmoid': return simple('hardSigmoid', { alpha: a.float('alpha', 0.2), beta: a.float('beta', 0.5) });
      case 'HardSwish': return simple('hardSwish');
      case 'Add': case 'Sub': case 'Mul': case 'Div':
        if (opset < 7 && a.has('broadcast')) this.unsupported(n, 'legacy broadcast attribute (opset < 7); export with opset >= 11');
        if (this.foldIntoLayer(n)) return;
        return simple(n.opType.toLowerCase(), {}, [input(0), input(1)]);
      case 'Clip': {
        if (opset < 11) {
          const lo = a.float('min', -Infinity), hi = a.float('max', Infinity);
          return simple('clamp', { min: lo === -Infinity ? null : lo, max: hi === Infinity ? null : hi });
        }
        // Constant bounds clamp; bounds computed at run time become maximum / minimum.
        const bound = (i: number) => (input(i) && !this.get(input(i), `node ${this.nodeName(n)}`).constant ? input(i) : null);
        const cmin = bound(1) ? null : this.constant(n, 1, 'min'), cmax = bound(2) ? null : this.constant(n, 2, 'max');
        let cur = input(0);
        const step = (op: string, attrs: Record<string, unknown>, inputs: string[], last: boolean) => {
          const out = last ? output(0) : this.freshName(output(0));
          this.emit({ op, inputs, outputs: [out], attrs });
          cur = out;
        };
        const needMin = !!bound(1), needMax = !!bound(2);
        step('clamp', { min: cmin ? cmin.data[0] : null, max: cmax ? cmax.data[0] : null }, [cur], !needMin && !needMax);
        if (needMin) step('maximum', {}, [cur, input(1)], !needMax);
        if (needMax) step('minimum', {}, [cur, input(2)], true);
        return;
      }
      case 'Conv': return this.conv(n, a, index);
      case 'ConvTranspose': return this.convTranspose(n, a);
      case 'Gemm': return this.gemm(n, a, index);
      case 'MatMul': return this.matmul(n, index);
      case 'BatchNormalization': return this.batchNorm(n, a, index);
      case 'MaxPool': case 'AveragePool': {
        if (output(1)) this.unsupported(n, 'the Indices output');
        if (a.int('storage_order', 0) !== 0) this.unsupported(n, 'storage_order 1');
        const t = x();
        const kernel = a.ints('kernel_shape', []);
        const r = kernel.length;
        if (r < 1 || r > 3 || t.rank !== r + 2) this.unsupported(n, `pooling over ${r} axes of a ${formatShape(t.shape)} input (lowbit pools over 1, 2 or 3)`);
        const strides = a.ints('strides', new Array<number>(r).fill(1));
        const dilations = a.ints('dilations', new Array<number>(r).fill(1));
        const pads = this.autoPads(n, a, t.shape.slice(2), kernel, strides, dilations);
        const attrs: Record<string, unknown> = { kernel, strides, pads, dilations, ceilMode: a.int('ceil_mode', 0) === 1 };
        if (n.opType === 'AveragePool') attrs.countIncludePad = a.int('count_include_pad', 0) === 1;
        return simple(n.opType === 'MaxPool' ? 'maxPool' : 'avgPool', attrs);
      }
      case 'GlobalAveragePool': return simple('globalAvgPool');
      case 'Flatten': return simple('flatten', { axis: a.int('axis', 1) });
      case 'Reshape': {
        const t = x();
        const target = opset < 5 ? { data: a.ints('shape', []), dims: [] } : this.constant(n, 1, 'shape');
        if (!target) this.unsupported(n, 'no shape input');
        const allowZero = a.int('allowzero', 0) === 1;
        const shape = target.data.map((d, i) => (d === 0 && !allowZero ? t.shape[i] : d));
        const free = shape.indexOf(-1);
        if (free >= 0) {
          const known = shape.reduce((p, d, i) => (i === free ? p : p * d), 1);
          shape[free] = known === 0 ? 0 : t.size / known;
        }
        const v = this.values.get(input(0))!;
        const batch = !v.constant && this.batch > 0 && t.rank > 0 && t.shape[0] === this.batch && shape[0] === this.batch;
        return simple('reshape', { shape, batch });
      }
      case 'Transpose': return simple('transpose', a.has('perm') ? { perm: a.ints('perm', []) } : {});
      case 'Squeeze': case 'Unsqueeze': {
        const axes = opset < 13 ? a.ints('axes') : this.constant(n, 1, 'axes')?.data;
        if (n.opType === 'Unsqueeze' && !axes) this.unsupported(n, 'no axes');
        return simple(n.opType.toLowerCase(), axes ? { axes } : {});
      }
      case 'Concat': return this.emit({ op: 'concat', inputs: [...(n.input ?? [])], outputs: [output(0)], attrs: { axis: a.int('axis', 0) } });
      case 'Pad': {
        const t = x();
        const mode = a.string('mode', 'constant');
        if (!['constant', 'edge', 'reflect', 'wrap'].includes(mode)) this.unsupported(n, `mode ${mode}`);
        let pads: number[], value = 0, runtimeValue = '';
        if (opset < 11) {
          pads = a.ints('pads', []); value = a.float('value', 0);
        } else {
          pads = this.constant(n, 1, 'pads')!.data;
          if (input(2) && !this.get(input(2), `node ${this.nodeName(n)}`).constant) runtimeValue = input(2);
          else value = this.constant(n, 2, 'constant_value')?.data[0] ?? 0;
          const axes = this.constant(n, 3, 'axes')?.data;
          if (axes) {
            const full = new Array<number>(2 * t.rank).fill(0);
            axes.forEach((ax, i) => {
              const k = ax < 0 ? ax + t.rank : ax;
              full[k] = pads[i]; full[t.rank + k] = pads[axes.length + i];
            });
            pads = full;
          }
        }
        if (pads.length !== 2 * t.rank) this.unsupported(n, `${pads.length} pads for a rank-${t.rank} input`);
        if (runtimeValue && mode === 'constant') {
          return this.emit({ op: 'padValue', inputs: [input(0), runtimeValue], outputs: [output(0)], attrs: { pads } });
        }
        return simple('pad', { pads, mode, value });
      }
      case 'Dropout': {
        let ratio = a.float('ratio', 0.5), training = false;
        if (opset >= 12) {
          training = (this.constant(n, 2, 'training_mode')?.data[0] ?? 0) !== 0;
          if (training && n.input?.[1] && !this.get(n.input[1], `node ${this.nodeName(n)}`).constant) {
            this.unsupported(n, 'dropout in training mode (random output); export the model in evaluation mode');
          }
          if (training) ratio = this.constant(n, 1, 'ratio')?.data[0] ?? 0.5;
        } else if (opset < 7) {
          training = a.int('is_test', 0) === 0;
        }
        if (training && ratio !== 0) this.unsupported(n, 'dropout in training mode (random output); export the model in evaluation mode');
        simple('identity');
        if (output(1)) this.emit({ op: 'onesMask', inputs: [input(0)], outputs: [output(1)] });
        return;
      }
      case 'Softmax': return simple('softmax', opset < 13 ? { axis: a.int('axis', 1), legacy: true } : { axis: a.int('axis', -1) });
      case 'Constant': {
        let v: { data: ArrayLike<number>; dims: number[]; dtype: DType } | undefined = a.tensor('value');
        if (!v && a.has('value_float')) v = { data: [a.float('value_float', 0)], dims: [], dtype: 'f32' };
        if (!v && a.has('value_floats')) { const f = a.floats('value_floats')!; v = { data: f, dims: [f.length], dtype: 'f32' }; }
        if (!v && a.has('value_int')) v = { data: [a.int('value_int', 0)], dims: [], dtype: 'i32' };
        if (!v && a.has('value_ints')) { const f = a.ints('value_ints')!; v = { data: f, dims: [f.length], dtype: 'i32' }; }
        if (!v) this.unsupported(n, `constant of kind ${a.names().join(', ')}`);
        this.values.set(output(0), { t: Tensor.from(v.data, v.dims, v.dtype), constant: true });
        return;
      }
      case 'Shape': {
        const t = x();
        const clampAxis = (i: number) => Math.min(Math.max(i < 0 ? i + t.rank : i, 0), t.rank);
        const dims = t.shape.slice(clampAxis(a.int('start', 0)), clampAxis(a.int('end', t.rank)));
        this.values.set(output(0), { t: Tensor.from(Int32Array.from(dims), [dims.length], 'i32'), constant: true });
        return;
      }
      case 'Gather': {
        const idx = this.constant(n, 1, 'indices')!;
        return simple('gather', { axis: a.int('axis', 0), indices: idx.data, indicesShape: idx.dims });
      }
      case 'QuantizeLinear': return this.quantizeLinear(n, a);
      case 'DequantizeLinear': return this.dequantizeLinear(n, a);
      case 'QLinearConv': case 'ConvInteger': return this.quantizedConv(n, a, index);
      case 'QLinearMatMul': case 'MatMulInteger': return this.quantizedMatMul(n, index);
      default:
        this.unsupported(n, 'op not mapped');
    }
  }

  /** The code range of a quantized value from its zero point's type (or QuantizeLinear's output_dtype; default uint8). */
  private codeRange(n: NodeProto, zpName: string, outputDtype = 0): { qmin: number; qmax: number } {
    let dtype: DType | 'other' = 'u8';
    if (zpName) dtype = this.get(zpName, `node ${this.nodeName(n)}`).t.dtype;
    else if (outputDtype === 3) dtype = 'i8';
    else if (outputDtype !== 0 && outputDtype !== 2) dtype = 'other';
    if (dtype === 'u8') return { qmin: 0, qmax: 255 };
    if (dtype === 'i8') return { qmin: -128, qmax: 127 };
    this.unsupported(n, `quantized type ${zpName ? dtype : onnxTypeName(outputDtype)} (lowbit imports uint8 and int8 codes)`);
  }

  /** The axis of a scale / zero point: per-tensor (size 1) or along `axis` of the quantized value, checked. */
  private quantAxis(n: NodeProto, a: Attributes, x: Tensor, params: string[], dflt = 1): number {
    if (a.int('block_size', 0) !== 0) this.unsupported(n, 'blocked quantization (block_size)');
    const axis = a.int('axis', dflt);
    const ax = axis < 0 ? axis + x.rank : axis;
    for (const name of params) {
      if (!name) continue;
      const t = this.get(name, `node ${this.nodeName(n)}`).t;
      if (t.size === 1 && t.rank <= 1) continue;
      if (t.rank !== 1 || !(ax >= 0 && ax < x.rank) || t.shape[0] !== x.shape[ax]) {
        this.unsupported(n, `scale/zero point ${name} of shape ${formatShape(t.shape)} for a ${formatShape(x.shape)} value with axis ${axis} (lowbit: per-tensor or per-axis)`);
      }
    }
    return ax;
  }

  private quantizeLinear(n: NodeProto, a: Attributes): void {
    const [x, scale, zp = ''] = n.input!;
    const out = n.output![0];
    const t = this.get(x, `node ${this.nodeName(n)}`).t;
    const axis = this.quantAxis(n, a, t, [scale, zp]);
    const op: GraphOp = { op: 'quantize', inputs: [x, scale, zp], outputs: [out], attrs: { axis, ...this.codeRange(n, zp, a.int('output_dtype', 0)) } };
    // read only by DequantizeLinear nodes with the same scale and zero point: each of them becomes a fakeQuant
    const readers = this.readers.get(out) ?? [];
    const same = (r: NodeProto) => r.opType === 'DequantizeLinear' && (r.domain ?? '') === '' && r.input?.[0] === out && r.input?.[1] === scale
      && (r.input?.[2] ?? '') === zp && new Attributes(r, this.baseDir).int('axis', 1) === a.int('axis', 1);
    if (readers.length && !this.graphOutputs.has(out) && readers.every(same)) {
      this.pendingQuantize.set(out, op);
      return;
    }
    this.emit(op);
  }

  private dequantizeLinear(n: NodeProto, a: Attributes): void {
    const [x, scale, zp = ''] = n.input!;
    const out = n.output![0];
    const q = this.pendingQuantize.get(x);
    if (q) return this.emit({ ...q, op: 'fakeQuant', outputs: [out] });
    const t = this.get(x, `node ${this.nodeName(n)}`).t;
    const axis = this.quantAxis(n, a, t, [scale, zp]);
    this.emit({ op: 'dequantize', inputs: [x, scale, zp], outputs: [out], attrs: { axis } });
  }

  /** A fresh value computed by `op` from `inputs` (a step of a decomposed node). */
  private step(base: string, op: string, inputs: string[], attrs: Record<string, unknown> = {}): string {
    const out = this.freshName(base);
    this.emit({ op, inputs, outputs: [out], attrs });
    return out;
  }

  /** QLinearConv = quantize(conv(dequant x, dequant w) + dequant B); ConvInteger = conv(x - x_zp, w - w_zp). */
  private quantizedConv(n: NodeProto, a: Attributes, index: number): void {
    const inp = (i: number) => n.input?.[i] ?? '';
    const out = n.output![0];
    const qlinear = n.opType === 'QLinearConv';
    const [x, xs, xzp, w, ws, wzp] = qlinear ? [0, 1, 2, 3, 4, 5].map(inp) : [inp(0), '', inp(2), inp(1), '', inp(3)];
    const xt = this.get(x, `node ${this.nodeName(n)}`).t, wt = this.get(w, `node ${this.nodeName(n)}`).t;
    if (xt.rank !== 4 || wt.rank !== 4) this.unsupported(n, `convolution over ${wt.rank - 2} spatial axes (lowbit convolves 2-D NCHW inputs)`);
    this.quantParams(n, xt, [xs, xzp], 1);
    this.quantParams(n, wt, [ws, wzp], 0);
    const xf = this.step(out, 'dequantize', [x, xs, xzp], { axis: 1 });
    const wf = this.step(out, 'dequantize', [w, ws, wzp], { axis: 0 });
    let bf = '';
    if (qlinear && inp(8)) {
      const bs = this.step(out, 'mul', [xs, ws]); // the bias's scale: x_scale w_scale, zero point 0
      bf = this.step(out, 'dequantize', [inp(8), bs, ''], { axis: 0 });
    }
    if (!qlinear) return this.conv({ ...n, opType: 'Conv', input: [xf, wf], output: [out] }, a, index);
    const yf = this.freshName(out);
    this.conv({ ...n, opType: 'Conv', input: [xf, wf, bf], output: [yf] }, a, index);
    const [ys, yzp] = [inp(6), inp(7)];
    this.quantParams(n, this.get(yf, `node ${this.nodeName(n)}`).t, [ys, yzp], 1);
    this.emit({ op: 'quantize', inputs: [yf, ys, yzp], outputs: [out], attrs: { axis: 1, ...this.codeRange(n, yzp) } });
  }

  /** QLinearMatMul = quantize(matmul(dequant a, dequant b)); MatMulInteger = matmul(a - a_zp, b - b_zp). */
  private quantizedMatMul(n: NodeProto, index: number): void {
    const inp = (i: number) => n.input?.[i] ?? '';
    const out = n.output![0];
    const qlinear = n.opType === 'QLinearMatMul';
    const [A, as, azp, B, bs, bzp] = qlinear ? [0, 1, 2, 3, 4, 5].map(inp) : [inp(0), '', inp(2), inp(1), '', inp(3)];
    const at = this.get(A, `node ${this.nodeName(n)}`).t, bt = this.get(B, `node ${this.nodeName(n)}`).t;
    if (at.rank < 2 || bt.rank < 2) this.unsupported(n, 'a rank-1 operand');
    // per-row parameters of A (axis -2), per-column of B (axis -1)
    const aAxis = this.quantParams(n, at, [as, azp], at.rank - 2);
    const bAxis = this.quantParams(n, bt, [bs, bzp], bt.rank - 1);
    const af = this.step(out, 'dequantize', [A, as, azp], { axis: aAxis });
    const bf = this.step(out, 'dequantize', [B, bs, bzp], { axis: bAxis });
    if (!qlinear) return this.matmul({ ...n, opType: 'MatMul', input: [af, bf], output: [out] }, index);
    const yf = this.freshName(out);
    this.matmul({ ...n, opType: 'MatMul', input: [af, bf], output: [yf] }, index);
    const [ys, yzp] = [inp(6), inp(7)];
    const yt = this.get(yf, `node ${this.nodeName(n)}`).t;
    const yAxis = this.quantParams(n, yt, [ys, yzp], yt.rank - 1);
    this.emit({ op: 'quantize', inputs: [yf, ys, yzp], outputs: [out], attrs: { axis: yAxis, ...this.codeRange(n, yzp) } });
  }

  /** Check the scale / zero point of an operand of a QLinear / Integer op: per-tensor or along `axis`; returns the axis. */
  private quantParams(n: NodeProto, x: Tensor, params: string[], axis: number): number {
    for (const name of params) {
      if (!name) continue;
      const t = this.get(name, `node ${this.nodeName(n)}`).t;
      if (t.size === 1 && t.rank <= 1) continue;
      if (t.rank !== 1 || t.shape[0] !== x.shape[axis]) {
        this.unsupported(n, `scale/zero point ${name} of shape ${formatShape(t.shape)} for a ${formatShape(x.shape)} operand (lowbit: per-tensor or along axis ${axis})`);
      }
      if (t.dtype !== 'f32' && t.dtype !== 'u8' && t.dtype !== 'i8') this.unsupported(n, `zero point ${name} of type ${t.dtype} (lowbit imports uint8 and int8 codes)`);
    }
    return axis;
  }

  /** The input, weight and spatial rank of a convolution node: 1-D ([N, C, L]) or 2-D (NCHW); 3-D is refused. */
  private convOperands(n: NodeProto): { x: Tensor; w: Value; r: number } {
    const x = this.get(n.input![0], `node ${this.nodeName(n)}`).t;
    const w = this.get(n.input![1], `node ${this.nodeName(n)}`);
    const r = w.t.rank - 2;
    if ((r !== 1 && r !== 2) || x.rank !== r + 2) {
      this.unsupported(n, `convolution of a ${formatShape(x.shape)} input with a ${formatShape(w.t.shape)} weight (lowbit convolves 1-D [N, C, L] and 2-D [N, C, H, W] inputs, not 3-D)`);
    }
    return { x, w, r };
  }

  /**
   * A 1-D convolution runs as a 2-D one over [N, C, 1, L]: unsqueeze the input (and the weight, to
   * [., ., 1, k]), convolve with `run` (given the lifted input, weight and output names), squeeze the result.
   */
  private lift1d(n: NodeProto, run: (x: string, w: string, out: string) => void): void {
    const out = n.output![0], wName = n.input![1];
    const w = this.get(wName, `node ${this.nodeName(n)}`);
    const x2 = this.step(out, 'unsqueeze', [n.input![0]], { axes: [2] });
    const w2 = w.constant
      ? this.newConstant(wName, ops.reshape(w.t, [w.t.shape[0], w.t.shape[1], 1, w.t.shape[2]]))
      : this.step(out, 'unsqueeze', [wName], { axes: [2] });
    const y2 = this.freshName(out);
    run(x2, w2, y2);
    this.emit({ op: 'squeeze', inputs: [y2], outputs: [out], attrs: { axes: [2] } });
  }

  private conv(n: NodeProto, a: Attributes, index: number): void {
    const { x, w, r } = this.convOperands(n);
    const ones = new Array<number>(r).fill(1);
    const kernel = a.ints('kernel_shape', w.t.shape.slice(2));
    const strides = a.ints('strides', ones), dilations = a.ints('dilations', ones);
    const groups = a.int('group', 1);
    const pads = this.autoPads(n, a, x.shape.slice(2), kernel, strides, dilations);
    if (r === 2) {
      return this.conv2d(n, index, n.input![0], n.input![1], n.output![0], {
        stride: [strides[0], strides[1]], padding: [pads[0], pads[1], pads[2], pads[3]], dilation: [dilations[0], dilations[1]], groups,
      });
    }
    this.lift1d(n, (x2, w2, y2) => this.conv2d(n, index, x2, w2, y2, {
      stride: [1, strides[0]], padding: [0, pads[0], 0, pads[1]], dilation: [1, dilations[0]], groups,
    }));
  }

  /** A Conv2d layer when the weights (and bias) are constant, else a conv op. */
  private conv2d(n: NodeProto, index: number, xName: string, wName: string, out: string, geometry: ConvAttrs): void {
    const bName = n.input?.[2] ?? '';
    const w = this.get(wName, `node ${this.nodeName(n)}`);
    const b = bName ? this.get(bName, `node ${this.nodeName(n)}`) : null;
    if (w.constant && (!b || b.constant)) {
      const name = this.layerName(n, index);
      const [outC, cPerGroup, kH, kW] = w.t.shape;
      const layer = this.module.addLayer({ kind: 'conv', name, inChannels: cPerGroup * geometry.groups, outChannels: outC, kernel: [kH, kW], ...geometry, bias: !!b }, this.rng);
      this.finite(name, { weights: w.t, bias: b?.t });
      layer.weight.assign(w.t);
      if (b) layer.bias!.assign(b.t);
      return this.emit({ op: 'layer', inputs: [xName], outputs: [out], attrs: { layer: name } });
    }
    this.emit({ op: 'conv', inputs: [xName, wName, bName], outputs: [out], attrs: geometry });
  }

  /**
   * ConvTranspose (1-D or 2-D) becomes a convTranspose op. Pads follow the ONNX spec: explicit, VALID, or
   * derived from output_shape / SAME_* (output = input * stride) as total = stride (in - 1) +
   * output_padding + dilation (k - 1) + 1 - out split begin/end; a negative total (an output larger than
   * the kernels' reach) becomes extra output padding, as onnxruntime does.
   */
  private convTranspose(n: NodeProto, a: Attributes): void {
    const { x, w, r } = this.convOperands(n);
    const ones = new Array<number>(r).fill(1), zeros = new Array<number>(r).fill(0);
    const kernel = w.t.shape.slice(2);
    const given = a.ints('kernel_shape', kernel);
    if (given.join() !== kernel.join()) this.unsupported(n, `kernel_shape ${given.join('x')} differs from the weight's ${kernel.join('x')}`);
    const strides = a.ints('strides', ones), dilations = a.ints('dilations', ones);
    const outputPadding = [...a.ints('output_padding', zeros)];
    const groups = a.int('group', 1);
    if (w.t.shape[0] !== x.shape[1] || x.shape[1] % groups !== 0) {
      this.unsupported(n, `weight ${formatShape(w.t.shape)} for a ${formatShape(x.shape)} input with group ${groups} (the weight is [C, M / group, k...])`);
    }
    for (const [what, v] of [['strides', strides], ['dilations', dilations], ['output_padding', outputPadding]] as const) {
      if (v.length !== r) this.unsupported(n, `${what} has ${v.length} values for ${r} spatial axes`);
    }
    const mode = a.string('auto_pad', 'NOTSET');
    const inSize = x.shape.slice(2);
    let pads: number[];
    const outShape = a.ints('output_shape');
    if (outShape || mode === 'SAME_UPPER' || mode === 'SAME_LOWER') {
      // output_shape may list N and C too: its last r values are the spatial sizes
      const target = outShape ? outShape.slice(-r) : inSize.map((d, i) => d * strides[i]);
      if (target.length !== r) this.unsupported(n, `output_shape ${outShape!.join(',')} for ${r} spatial axes`);
      pads = new Array<number>(2 * r).fill(0);
      for (let i = 0; i < r; i++) {
        let total = strides[i] * (inSize[i] - 1) + outputPadding[i] + dilations[i] * (kernel[i] - 1) + 1 - target[i];
        if (total < 0) { outputPadding[i] -= total; total = 0; }
        const half = Math.floor(total / 2);
        pads[i] = mode === 'SAME_UPPER' ? half : total - half;
        pads[r + i] = total - pads[i];
      }
    } else if (mode === 'VALID') {
      pads = new Array<number>(2 * r).fill(0);
    } else if (mode === 'NOTSET') {
      pads = a.ints('pads', new Array<number>(2 * r).fill(0));
      if (pads.length !== 2 * r) this.unsupported(n, `pads has ${pads.length} values for ${r} spatial axes`);
      if (pads.some((p) => p < 0)) this.unsupported(n, `negative pads ${pads.join(',')}`);
    } else {
      this.unsupported(n, `auto_pad ${mode}`);
    }
    inSize.forEach((d, i) => {
      const out = strides[i] * (d - 1) + outputPadding[i] + dilations[i] * (kernel[i] - 1) + 1 - pads[i] - pads[r + i];
      if (out < 1) this.unsupported(n, `pads ${pads.join(',')} crop the whole output (axis ${i + 2})`);
    });
    const bName = n.input?.[2] ?? '';
    const run = (xName: string, wName: string, out: string, attrs: ConvAttrs & { outputPadding: [number, number] }) =>
      this.emit({ op: 'convTranspose', inputs: [xName, wName, bName], outputs: [out], attrs });
    if (r === 2) {
      return run(n.input![0], n.input![1], n.output![0], {
        stride: [strides[0], strides[1]], padding: [pads[0], pads[1], pads[2], pads[3]], dilation: [dilations[0], dilations[1]], groups,
        outputPadding: [outputPadding[0], outputPadding[1]],
      });
    }
    this.lift1d(n, (x2, w2, y2) => run(x2, w2, y2, {
      stride: [1, strides[0]], padding: [0, pads[0], 0, pads[1]], dilation: [1, dilations[0]], groups, outputPadding: [0, outputPadding[0]],
    }));
  }

  private gemm(n: NodeProto, a: Attributes, index: number): void {
    const [aName, bName] = n.input!;
    const cName = n.input?.[2] ?? '';
    const A = this.get(aName, `node ${this.nodeName(n)}`), B = this.get(bName, `node ${this.nodeName(n)}`);
    const C = cName ? this.get(cName, `node ${this.nodeName(n)}`) : null;
    const transA = a.int('transA', 0) === 1, transB = a.int('transB', 0) === 1;
    const alpha = a.float('alpha', 1), beta = a.float('beta', 1);
    if (B.constant && !transA && A.t.rank === 2 && !A.constant && (!C || C.constant)) {
      const w = transB ? B.t : ops.transpose(B.t);
      const [outF, inF] = w.shape;
      // C broadcasts to [M, N]: a per-output vector becomes the bias; anything else stays an add.
      const cVector = C && (C.t.size === outF && (C.t.rank <= 1 || (C.t.rank === 2 && C.t.shape[0] === 1)) || C.t.size === 1);
      const name = this.layerName(n, index);
      this.finite(name, { weights: B.t, bias: C?.t });
      const layer = this.module.addLayer({ kind: 'linear', name, inFeatures: inF, outFeatures: outF, bias: !!cVector }, this.rng);
      layer.weight.assign(alpha !== 1 ? ops.mulScalar(w, alpha) : w);
      if (cVector) {
        const c = C!.t.size === 1 ? Tensor.full([outF], C!.t.item()) : ops.reshape(C!.t, [outF]);
        layer.bias!.assign(beta !== 1 ? ops.mulScalar(c, beta) : c);
      }
      const out = n.output![0];
      if (!C || cVector) return this.emit({ op: 'layer', inputs: [aName], outputs: [out], attrs: { layer: name } });
      const mid = `${out}__gemm`;
      this.emit({ op: 'layer', inputs: [aName], outputs: [mid], attrs: { layer: name } });
      const c = this.newConstant(cName, beta !== 1 ? ops.mulScalar(C!.t, beta) : C!.t);
      return this.emit({ op: 'add', inputs: [mid, c], outputs: [out] });
    }
    this.emit({ op: 'gemm', inputs: [aName, bName, cName], outputs: [n.output![0]], attrs: { transA, transB, alpha, beta } });
  }

  private matmul(n: NodeProto, index: number): void {
    const [aName, bName] = n.input!;
    const A = this.get(aName, `node ${this.nodeName(n)}`), B = this.get(bName, `node ${this.nodeName(n)}`);
    if (B.constant && !A.constant && A.t.rank === 2 && B.t.rank === 2) {
      const name = this.layerName(n, index);
      const [inF, outF] = B.t.shape;
      this.finite(name, { weights: B.t });
      const layer = this.module.addLayer({ kind: 'linear', name, inFeatures: inF, outFeatures: outF, bias: false }, this.rng);
      layer.weight.assign(ops.transpose(B.t));
      return this.emit({ op: 'layer', inputs: [aName], outputs: [n.output![0]], attrs: { layer: name } });
    }
    this.emit({ op: 'matmul', inputs: [aName, bName], outputs: [n.output![0]] });
  }

  /**
   * Fold a Mul, Div, Add or Sub by a per-channel (or scalar) constant into the conv or linear layer whose
   * output it alone reads: scale its weights and bias, or shift its bias (as onnxruntime's ConvMulFusion and
   * ConvAddFusion). Exporters write batch norms (Caffe's Scale, Keras) and biases (MatMul + Add) this way;
   * folded, the layer quantizes with its real output range and the integer runtime adds the bias on its
   * int32 grid instead of running a float op after it. Returns false where the pattern does not apply.
   */
  private foldIntoLayer(n: NodeProto): boolean {
    const [in0, in1] = n.input!;
    const op = n.opType!;
    const sides = op === 'Add' || op === 'Mul' ? [[in0, in1], [in1, in0]] : [[in0, in1]];
    for (const [xName, cName] of sides) {
      const layerName = this.layerOf.get(xName);
      const c = this.values.get(cName);
      if (!layerName || !c?.constant || c.t.dtype !== 'f32') continue;
      if ((this.readers.get(xName) ?? []).length !== 1 || this.graphOutputs.has(xName)) continue;
      const x = this.values.get(xName)!.t, channels = x.shape[1];
      // broadcast over [N, C, ...] as one value per channel, without changing the output's shape
      const perChannel = c.t.rank <= x.rank && c.t.shape.every((d, i) => d === 1 || (d === channels && c.t.rank - i === x.rank - 1));
      if (!perChannel) continue;
      const v = Array.from(c.t.toFloat32Array());
      const at = (ch: number) => (v.length === 1 ? v[0] : v[ch]);
      if (!v.every(Number.isFinite) || (op === 'Div' && v.some((k) => k === 0))) continue;
      const layer = this.module.layer(layerName) as Conv2d | Linear;
      if (op === 'Mul' || op === 'Div') {
        const factor = Array.from({ length: channels }, (_, ch) => (op === 'Mul' ? at(ch) : 1 / at(ch)));
        const w = layer.weight.toFloat32Array(), per = w.length / channels;
        for (let i = 0; i < w.length; i++) w[i] *= factor[Math.floor(i / per)];
        layer.weight.assign(Tensor.from(w, layer.weight.shape));
        if (layer.bias) layer.bias.assign(Tensor.from(layer.bias.toFloat32Array().map((b, ch) => b * factor[ch]), [channels]));
      } else {
        const bias = this.module.ensureLayerBias(layerName);
        bias.assign(Tensor.from(bias.toFloat32Array().map((b, ch) => (op === 'Add' ? b + at(ch) : b - at(ch))), [channels]));
      }
      const out = n.output![0];
      this.module.renameOutput(xName, out);
      this.layerOf.delete(xName);
      this.layerOf.set(out, layerName);
      this.values.set(out, { t: runGraphOp({ op: op.toLowerCase(), inputs: [xName, cName], outputs: [out] }, [x, c.t])[0], constant: false });
      return true;
    }
    return false;
  }

  private batchNorm(n: NodeProto, a: Attributes, index: number): void {
    if (a.int('training_mode', 0) === 1 || (n.output ?? []).slice(1).some((o) => o)) {
      this.unsupported(n, 'training mode (running statistics as outputs); export the model in evaluation mode');
    }
    const names = n.input!.slice(0, 5);
    const [x, ...params] = names.map((name) => this.get(name, `node ${this.nodeName(n)}`));
    if (x.t.rank !== 4 && x.t.rank !== 2) this.unsupported(n, `batch normalization of a rank-${x.t.rank} input (lowbit: [N, C, H, W] or [N, C])`);
    const eps = a.float('epsilon', 1e-5);
    if (params.every((p) => p.constant)) {
      const name = this.layerName(n, index);
      this.finite(name, { scale: params[0].t, bias: params[1].t, mean: params[2].t, variance: params[3].t });
      const layer = this.module.addLayer({ kind: 'batchNorm', name, channels: params[0].t.size, eps, momentum: 1 - a.float('momentum', 0.9) }, this.rng);
      layer.gamma.assign(params[0].t); layer.beta.assign(params[1].t);
      layer.runningMean.assign(params[2].t); layer.runningVar.assign(params[3].t);
      return this.emit({ op: 'layer', inputs: [names[0]], outputs: [n.output![0]], attrs: { layer: name } });
    }
    this.emit({ op: 'batchNorm', inputs: names, outputs: [n.output![0]], attrs: { eps } });
  }
}

/**
 * If the graph starts with a per-channel normalization of its image input, (x - mean) / std with constant
 * [1, C, 1, 1] (or [C, 1, 1]) tensors — what `lowbit export` and many exporters put first — return the
 * graph without it and the mean and std, so that the model takes normalized input like a zoo model (the
 * runtime's graph capture and the first layer's input quantizer then see what they see for zoo models).
 */
export function extractInputNormalization(module: GraphModule): { module: GraphModule; mean: number[]; std: number[] } | null {
  const desc = module.graph;
  if (desc.inputs.length !== 1 || desc.inputs[0].shape.length !== 4 || desc.ops.length < 2) return null;
  const input = desc.inputs[0].name, C = desc.inputs[0].shape[1];
  const [sub, div] = desc.ops;
  const constant = (name: string) => desc.constants.find((c) => c.value === name);
  const perChannel = (name: string) => {
    const c = constant(name);
    if (!c || c.dtype !== 'f32' || c.shape.reduce((a, b) => a * b, 1) !== C) return null;
    const dims = c.shape.length === 4 ? c.shape.slice(1) : c.shape;
    if (dims.length !== 3 || dims[0] !== C || dims[1] !== 1 || dims[2] !== 1) return null;
    return Array.from(module.stateDict().get(c.buffer)!.toFloat32Array());
  };
  if (sub.op !== 'sub' || sub.inputs[0] !== input || div.op !== 'div' || div.inputs[0] !== sub.outputs[0]) return null;
  const mean = perChannel(sub.inputs[1]), std = perChannel(div.inputs[1]);
  if (!mean || !std || std.some((s) => !(s > 0))) return null;
  const rest = desc.ops.slice(2);
  const normalized = div.outputs[0];
  const readers = (name: string) => rest.some((o) => o.inputs.includes(name)) || desc.outputs.includes(name);
  if (readers(sub.outputs[0]) || readers(input) || desc.outputs.includes(normalized)) return null;
  const dropped = new Set([sub.inputs[1], div.inputs[1]].filter((v) => !rest.some((o) => o.inputs.includes(v))));
  const next = {
    ...desc,
    constants: desc.constants.filter((c) => !dropped.has(c.value)),
    ops: rest.map((o) => ({ ...o, inputs: o.inputs.map((i) => (i === normalized ? input : i)) })),
  };
  const out = GraphModule.fromDescription(next, new Random(0));
  const state = module.stateDict();
  out.loadStateDict(new Map([...out.stateDict().keys()].map((k) => [k, state.get(k)!])));
  out.train(module.training);
  return { module: out, mean, std };
}
