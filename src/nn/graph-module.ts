// GraphModule: a model defined by data — a list of ops over named values — instead of code. What the ONNX
// importer builds. Its conv, linear and batch-norm layers are ordinary child modules (Conv2d, Linear,
// BatchNorm), so training, PTQ/QAT hooks, graph capture and the state dict treat it like a zoo model;
// every other op calls an autograd op. Constants (non-weight tensors read by Add, Mul, ...) are buffers, so
// they are saved with the weights. The description (`graph`) is JSON and `fromDescription` rebuilds the
// module from it: a saved model reloads without code from the file.

import * as ops from '../autograd/index.js';
import type { Random } from '../tensor/random.js';
import { Tensor, formatShape, shapeSize, type DType } from '../tensor/tensor.js';
import { BatchNorm, Conv2d, Linear } from './layers.js';
import { Module } from './module.js';
import { tidy } from '../tensor/engine.js';

/** One op: reads named values, writes named values. `attrs` are JSON. Empty input names are absent optional inputs. */
export interface GraphOp {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, unknown>;
}

export type LayerSpec =
  | { kind: 'conv'; name: string; inChannels: number; outChannels: number; kernel: [number, number]; stride: [number, number]; padding: [number, number, number, number]; dilation: [number, number]; groups: number; bias: boolean }
  | { kind: 'linear'; name: string; inFeatures: number; outFeatures: number; bias: boolean }
  | { kind: 'batchNorm'; name: string; channels: number; eps: number; momentum: number };

export interface GraphDescription {
  format: 1;
  /** Graph inputs with the static shape the graph was imported for (dimension 0 is the batch). */
  inputs: { name: string; shape: number[]; dtype: DType }[];
  outputs: string[];
  layers: LayerSpec[];
  /** Values held as buffers: value name -> buffer name in the state dict. */
  constants: { value: string; buffer: string; shape: number[]; dtype: DType }[];
  ops: GraphOp[];
}

export const GRAPH_FORMAT = 1;

type OpImpl = (inputs: (Tensor | null)[], attrs: Record<string, unknown>) => Tensor[];

const asF32 = (x: Tensor) => (x.dtype === 'f32' ? x : ops.cast(x, 'f32'));
const back = (y: Tensor, dtype: DType) => (dtype === 'f32' ? y : ops.cast(y, dtype));

/** f32 arithmetic; integer tensors go through f32 and back (exact for the small integers shapes and images hold). */
function binary(fn: (a: Tensor, b: Tensor) => Tensor, truncate = false): OpImpl {
  return ([a, b]) => {
    if (a!.dtype === 'f32') return [fn(a!, asF32(b!))];
    let y = fn(asF32(a!), asF32(b!));
    if (truncate) y = ops.mul(ops.sign(y), ops.floor(ops.abs(y)));
    return [back(y, a!.dtype)];
  };
}

function unary(fn: (x: Tensor, attrs: Record<string, unknown>) => Tensor): OpImpl {
  return ([x], attrs) => [back(fn(asF32(x!), attrs), x!.dtype)];
}

const num = (v: unknown, dflt: number) => (typeof v === 'number' ? v : v === null ? dflt : (v as number | undefined) ?? dflt);

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Pool over the last 1, 2 or 3 axes, as separable 2-D pools (max and box averages factor over axes). */
function poolNd(x: Tensor, kind: 'max' | 'avg', a: Record<string, unknown>): Tensor {
  const kernel = a.kernel as number[], strides = a.strides as number[], pads = a.pads as number[], dil = a.dilations as number[];
  const n = kernel.length;
  const opts = (axes: number[]): ops.Pool2dOptions => ({
    kernel: [kernel[axes[0]] ?? 1, kernel[axes[1]] ?? 1] as [number, number],
    stride: [strides[axes[0]] ?? 1, strides[axes[1]] ?? 1] as [number, number],
    padding: [pads[axes[0]] ?? 0, pads[axes[1]] ?? 0, pads[n + axes[0]] ?? 0, pads[n + axes[1]] ?? 0],
    dilation: [dil[axes[0]] ?? 1, dil[axes[1]] ?? 1] as [number, number],
    ceilMode: !!a.ceilMode,
    countIncludePad: !!a.countIncludePad,
  });
  const pool = (t: Tensor, o: ops.Pool2dOptions) => (kind === 'max' ? ops.maxPool2d(t, o) : ops.avgPool2d(t, o));
  const dtype = x.dtype;
  const xf = asF32(x);
  const [N, C] = xf.shape;
  let y: Tensor;
  if (n === 2) y = pool(xf, opts([0, 1]));
  else if (n === 1) {
    const o = opts([-1, 0]);
    y = pool(ops.reshape(xf, [N, C, 1, xf.shape[2]]), o);
    y = ops.reshape(y, [N, C, y.shape[3]]);
  } else if (n === 3) {
    const [D, H, W] = xf.shape.slice(2);
    const hw = pool(ops.reshape(xf, [N, C * D, H, W]), opts([1, 2]));
    const [H2, W2] = hw.shape.slice(2);
    const d = pool(ops.reshape(hw, [N, C, D, H2 * W2]), opts([0, -1]));
    y = ops.reshape(d, [N, C, d.shape[2], H2, W2]);
  } else {
    throw new RangeError(`lowbit: ${kind} pooling over ${n} axes; lowbit pools over 1, 2 or 3`);
  }
  return back(y, dtype);
}

/** Pads [begin..., end...] per axis in constant, edge, reflect or wrap mode (negative pads crop). */
function padNd(x: Tensor, pads: number[], mode: string, value: number): Tensor {
  const r = x.rank;
  let y = x;
  // Crop first (negative pads).
  if (pads.some((p) => p < 0)) {
    y = ops.slice(y, y.shape.map((_, i) => Math.max(0, -pads[i])), y.shape.map((d, i) => d - Math.max(0, -pads[r + i])));
  }
  const pos = pads.map((p) => Math.max(0, p));
  if (mode === 'constant') {
    const dtype = y.dtype;
    return back(ops.pad(asF32(y), y.shape.map((_, i) => [pos[i], pos[r + i]] as [number, number]), value), dtype);
  }
  for (let axis = 0; axis < r; axis++) {
    const before = pos[axis], after = pos[r + axis];
    if (!before && !after) continue;
    const d = y.shape[axis];
    const at = (i: number) => {
      const s = y.shape.map(() => 0), e = [...y.shape];
      s[axis] = i; e[axis] = i + 1;
      return ops.slice(y, s, e);
    };
    const source = (i: number): number => { // index of the input element that padded position i (may be < 0 or >= d) copies
      if (mode === 'edge') return Math.min(Math.max(i, 0), d - 1);
      if (mode === 'wrap') return ((i % d) + d) % d;
      // reflect (without repeating the edge)
      const period = 2 * (d - 1);
      if (period === 0) return 0;
      const m = ((i % period) + period) % period;
      return m < d ? m : period - m;
    };
    const parts: Tensor[] = [];
    for (let i = -before; i < 0; i++) parts.push(at(source(i)));
    parts.push(y);
    for (let i = d; i < d + after; i++) parts.push(at(source(i)));
    y = ops.concat(parts, axis);
  }
  return y;
}

function matmulNumpy(a: Tensor, b: Tensor): Tensor {
  const a2 = a.rank === 1 ? ops.reshape(a, [1, a.shape[0]]) : a;
  const b2 = b.rank === 1 ? ops.reshape(b, [b.shape[0], 1]) : b;
  const batch = ops.broadcastShapes('matmul', a2.shape.slice(0, -2), b2.shape.slice(0, -2));
  const full = (t: Tensor) => {
    const want = [...batch, ...t.shape.slice(-2)];
    if (want.length === t.rank && want.every((d, i) => d === t.shape[i])) return t;
    return ops.broadcastTo(t, want);
  };
  let y = ops.matmul(full(a2), full(b2));
  const shape = [...batch, ...(a.rank === 1 ? [] : [a2.shape[a2.rank - 2]]), ...(b.rank === 1 ? [] : [b2.shape[b2.rank - 1]])];
  if (shape.length !== y.rank || shape.some((d, i) => d !== y.shape[i])) y = ops.reshape(y, shape);
  return y;
}

function softmaxAxis(x: Tensor, axis: number, legacy: boolean): Tensor {
  const a = normAxis(axis, x.rank);
  if (legacy) { // opset < 13: softmax over the flattened axes a..end
    const rows = shapeSize(x.shape.slice(0, a));
    return ops.reshape(ops.softmax(ops.reshape(x, [rows, x.size / Math.max(rows, 1)])), [...x.shape]);
  }
  if (a === x.rank - 1) return ops.softmax(x);
  const perm = x.shape.map((_, i) => i);
  [perm[a], perm[x.rank - 1]] = [perm[x.rank - 1], perm[a]];
  return ops.permute(ops.softmax(ops.permute(x, perm)), perm);
}

function gather(x: Tensor, axis: number, indices: number[], indicesShape: number[]): Tensor {
  const a = normAxis(axis, x.rank);
  const d = x.shape[a];
  const parts = indices.map((i) => {
    const j = i < 0 ? i + d : i;
    if (!(j >= 0 && j < d)) throw new RangeError(`lowbit: gather: index ${i} is outside an axis of size ${d}`);
    const s = x.shape.map(() => 0), e = [...x.shape];
    s[a] = j; e[a] = j + 1;
    return ops.slice(x, s, e);
  });
  const shape = [...x.shape.slice(0, a), ...indicesShape, ...x.shape.slice(a + 1)];
  if (parts.length === 0) return Tensor.zeros(shape, x.dtype);
  return ops.reshape(parts.length === 1 ? parts[0] : ops.concat(parts, a), shape);
}

/** A scale or zero point laid along `axis` of a rank-`rank` value (per-axis quantization); scalars and size-1 tensors broadcast as they are. */
function alongAxis(t: Tensor, axis: unknown, rank: number): Tensor {
  const f = asF32(t);
  if (f.size === 1 || f.rank !== 1 || rank <= 1) return f.size === 1 && f.rank > 0 ? ops.reshape(f, []) : f;
  const a = normAxis(num(axis, 1), rank);
  const shape = new Array<number>(rank).fill(1);
  shape[a] = f.size;
  return ops.reshape(f, shape);
}

/** ONNX QuantizeLinear's codes (as f32): clamp(round_half_even(x / scale) + zp, qmin, qmax). */
function quantizeCodes(x: Tensor, scale: Tensor, zp: Tensor | null, a: Record<string, unknown>): Tensor {
  let q = ops.round(ops.div(asF32(x), alongAxis(scale, a.axis, x.rank)));
  if (zp) q = ops.add(q, alongAxis(zp, a.axis, x.rank));
  return ops.clamp(q, num(a.qmin, 0), num(a.qmax, 255));
}

/** ONNX DequantizeLinear: (x - zp) * scale in f32 (no scale: x - zp, the integer ops' centring). */
function dequantize(x: Tensor, scale: Tensor | null, zp: Tensor | null, a: Record<string, unknown>): Tensor {
  let y = asF32(x);
  if (zp) y = ops.sub(y, alongAxis(zp, a.axis, x.rank));
  return scale ? ops.mul(y, alongAxis(scale, a.axis, x.rank)) : y;
}

/** The ops a GraphModule runs, by name. Layers (conv/linear/batchNorm modules) run through op 'layer'. */
export const GRAPH_OPS: Record<string, OpImpl> = {
  identity: ([x]) => [x!],
  add: binary(ops.add),
  sub: binary(ops.sub),
  mul: binary(ops.mul),
  div: binary(ops.div, true),
  maximum: binary(ops.maximum),
  minimum: binary(ops.minimum),
  relu: unary((x) => ops.relu(x)),
  sigmoid: unary((x) => ops.sigmoid(x)),
  tanh: unary((x) => ops.tanh(x)),
  leakyRelu: unary((x, a) => ops.leakyRelu(x, num(a.alpha, 0.01))),
  clamp: unary((x, a) => ops.clamp(x, num(a.min, -Infinity), num(a.max, Infinity))),
  hardSigmoid: unary((x, a) => ops.clamp(ops.unaryOp('affine', x, num(a.alpha, 0.2), num(a.beta, 0.5)), 0, 1)),
  hardSwish: unary((x) => ops.mul(x, ops.clamp(ops.unaryOp('affine', x, 1 / 6, 0.5), 0, 1))),
  matmul: ([a, b]) => [matmulNumpy(a!, b!)],
  gemm: ([a, b, c], attrs) => {
    let y = ops.matmul(attrs.transA ? ops.transpose(a!) : a!, attrs.transB ? ops.transpose(b!) : b!);
    const alpha = num(attrs.alpha, 1), beta = num(attrs.beta, 1);
    if (alpha !== 1) y = ops.mulScalar(y, alpha);
    if (c) y = ops.add(y, beta !== 1 ? ops.mulScalar(c, beta) : c);
    return [y];
  },
  conv: ([x, w, b], a) => [ops.conv2d(x!, w!, b, {
    stride: a.stride as [number, number], padding: a.padding as [number, number, number, number],
    dilation: a.dilation as [number, number], groups: a.groups as number,
  })],
  convTranspose: ([x, w, b], a) => [ops.convTranspose2d(x!, w!, b, {
    stride: a.stride as [number, number], padding: a.padding as [number, number, number, number],
    dilation: a.dilation as [number, number], groups: a.groups as number, outputPadding: a.outputPadding as [number, number],
  })],
  batchNorm: ([x, gamma, beta, mean, variance], a) => [ops.batchNorm(x!, { gamma: gamma!, beta: beta!, runningMean: mean!, runningVar: variance! }, { training: false, eps: num(a.eps, 1e-5) })],
  maxPool: ([x], a) => [poolNd(x!, 'max', a)],
  avgPool: ([x], a) => [poolNd(x!, 'avg', a)],
  globalAvgPool: ([x]) => [x!.rank === 4 ? ops.globalAvgPool2d(x!) : ops.mean(x!, x!.shape.slice(2).map((_, i) => i + 2), true)],
  flatten: ([x], a) => {
    const axis = normAxis(num(a.axis, 1), x!.rank);
    return [ops.reshape(x!, [shapeSize(x!.shape.slice(0, axis)), shapeSize(x!.shape.slice(axis))])];
  },
  /** A static shape; with `batch`, dimension 0 follows the input's (so a model imported at batch 1 runs any batch). */
  reshape: ([x], a) => {
    const shape = [...(a.shape as number[])];
    if (a.batch) {
      shape[0] = x!.shape[0];
      const rest = shapeSize(shape.slice(1));
      if (rest * shape[0] !== x!.size) throw new RangeError(`lowbit: reshape ${formatShape(x!.shape)} to ${formatShape(a.shape as number[])} with the batch kept`);
    }
    return [ops.reshape(x!, shape)];
  },
  squeeze: ([x], a) => {
    const axes = (a.axes as number[] | undefined)?.map((v) => normAxis(v, x!.rank));
    return [ops.reshape(x!, x!.shape.filter((d, i) => (axes ? !axes.includes(i) : d !== 1)))];
  },
  unsqueeze: ([x], a) => {
    const rank = x!.rank + (a.axes as number[]).length;
    const axes = (a.axes as number[]).map((v) => normAxis(v, rank));
    const shape: number[] = [];
    let k = 0;
    for (let i = 0; i < rank; i++) shape.push(axes.includes(i) ? 1 : x!.shape[k++]);
    return [ops.reshape(x!, shape)];
  },
  transpose: ([x], a) => [ops.permute(x!, (a.perm as number[] | undefined) ?? x!.shape.map((_, i) => x!.rank - 1 - i))],
  concat: (xs, a) => {
    const ts = xs.filter((t): t is Tensor => !!t);
    const dtype = ts[0].dtype;
    return [ops.concat(ts.map((t) => (t.dtype === dtype ? t : ops.cast(t, dtype))), num(a.axis, 0))];
  },
  pad: ([x], a) => [padNd(x!, a.pads as number[], (a.mode as string) ?? 'constant', num(a.value, 0))],
  softmax: unary((x, a) => softmaxAxis(x, num(a.axis, -1), !!a.legacy)),
  /** Constant padding with the value read at run time: pad(x, 0) + pad(0, 1) * value. */
  padValue: ([x, v], a) => {
    const pads = a.pads as number[], r = x!.rank;
    const pairs = x!.shape.map((_, i) => [pads[i], pads[r + i]] as [number, number]);
    const mask = ops.pad(Tensor.zeros(x!.shape), pairs, 1);
    return [back(ops.add(ops.pad(asF32(x!), pairs, 0), ops.mul(mask, asF32(v!))), x!.dtype)];
  },
  gather: ([x], a) => [gather(x!, num(a.axis, 0), a.indices as number[], a.indicesShape as number[])],
  slice: ([x], a) => [ops.slice(x!, a.starts as number[], a.ends as number[])],
  /** QuantizeLinear: integer codes held as f32. attrs: axis (per-axis scale/zero point), qmin, qmax. */
  quantize: ([x, scale, zp], a) => [quantizeCodes(x!, scale!, zp, a)],
  /** DequantizeLinear (and the zero-point centring of ConvInteger / MatMulInteger, without scale). attrs: axis. */
  dequantize: ([x, scale, zp], a) => [dequantize(x!, scale, zp, a)],
  /** QuantizeLinear -> DequantizeLinear: (clamp(round_half_even(x / s) + zp, qmin, qmax) - zp) * s. attrs: axis, qmin, qmax. */
  fakeQuant: ([x, scale, zp], a) => [dequantize(quantizeCodes(x!, scale!, zp, a), scale, zp, a)],
  /** Dropout's mask output in inference: all true. */
  onesMask: ([x]) => {
    const m = Tensor.empty(x!.shape, 'u8');
    m.view().fill(1);
    return [m];
  },
};

/** Run one op (layers excluded). */
export function runGraphOp(op: GraphOp, inputs: (Tensor | null)[]): Tensor[] {
  const impl = GRAPH_OPS[op.op];
  if (!impl) throw new RangeError(`lowbit: unknown graph op ${op.op}`);
  return impl(inputs, op.attrs ?? {});
}

export class GraphModule extends Module {
  private readonly desc: GraphDescription = { format: GRAPH_FORMAT, inputs: [], outputs: [], layers: [], constants: [], ops: [] };
  private readonly layerByName = new Map<string, Conv2d | Linear | BatchNorm>();
  private readonly constantByValue = new Map<string, Tensor>();

  /** Rebuild a module from its description (weights and constants are then loaded from the state dict). */
  static fromDescription(desc: GraphDescription, rng: Random): GraphModule {
    if (desc?.format !== GRAPH_FORMAT) throw new RangeError(`lowbit: graph description format ${desc?.format}; this lowbit reads format ${GRAPH_FORMAT}`);
    const g = new GraphModule();
    for (const i of desc.inputs) g.addInput(i.name, i.shape, i.dtype);
    for (const l of desc.layers) g.addLayer(l, rng);
    for (const c of desc.constants) g.addConstant(c.value, Tensor.zeros(c.shape, c.dtype), c.buffer);
    for (const op of desc.ops) {
      if (op.op !== 'layer' && !GRAPH_OPS[op.op]) throw new RangeError(`lowbit: the graph description has an unknown op ${JSON.stringify(op.op)}`);
      g.addOp(op);
    }
    g.setOutputs(desc.outputs);
    return g;
  }

  /** The JSON description (a copy). */
  get graph(): GraphDescription {
    return JSON.parse(JSON.stringify(this.desc)) as GraphDescription;
  }

  get inputNames(): string[] {
    return this.desc.inputs.map((i) => i.name);
  }

  addInput(name: string, shape: number[], dtype: DType = 'f32'): void {
    this.desc.inputs.push({ name, shape: [...shape], dtype });
  }

  /** Create a layer from its spec (random weights from rng; assign the real ones after). */
  addLayer(spec: Extract<LayerSpec, { kind: 'conv' }>, rng: Random): Conv2d;
  addLayer(spec: Extract<LayerSpec, { kind: 'linear' }>, rng: Random): Linear;
  addLayer(spec: Extract<LayerSpec, { kind: 'batchNorm' }>, rng: Random): BatchNorm;
  addLayer(spec: LayerSpec, rng: Random): Conv2d | Linear | BatchNorm;
  addLayer(spec: LayerSpec, rng: Random): Conv2d | Linear | BatchNorm {
    if (this.layerByName.has(spec.name)) throw new RangeError(`lowbit: graph layer ${spec.name} defined twice`);
    let m: Conv2d | Linear | BatchNorm;
    if (spec.kind === 'conv') {
      m = new Conv2d(spec.inChannels, spec.outChannels, spec.kernel, rng, {
        stride: spec.stride, padding: spec.padding, dilation: spec.dilation, groups: spec.groups, bias: spec.bias,
      });
    } else if (spec.kind === 'linear') {
      m = new Linear(spec.inFeatures, spec.outFeatures, rng, { bias: spec.bias });
    } else {
      m = new BatchNorm(spec.channels, { eps: spec.eps, momentum: spec.momentum });
    }
    m.training = this.training; // a layer added to an evaluating graph evaluates (no batch statistics)
    this.addChild(spec.name, m);
    this.layerByName.set(spec.name, m);
    this.desc.layers.push(JSON.parse(JSON.stringify(spec)) as LayerSpec);
    return m;
  }

  layer(name: string): Conv2d | Linear | BatchNorm {
    const m = this.layerByName.get(name);
    if (!m) throw new RangeError(`lowbit: the graph has no layer ${name}`);
    return m;
  }

  /** Hold a constant value as a buffer (saved in the state dict). */
  addConstant(value: string, t: Tensor, buffer = value): Tensor {
    this.addBuffer(buffer, t);
    this.constantByValue.set(value, t);
    this.desc.constants.push({ value, buffer, shape: [...t.shape], dtype: t.dtype });
    return t;
  }

  addOp(op: GraphOp): void {
    this.desc.ops.push(JSON.parse(JSON.stringify(op)) as GraphOp);
  }

  /** Give a conv or linear layer a zero bias if it has none, and say so in its spec (so it saves and loads). */
  ensureLayerBias(name: string): Tensor {
    const spec = this.desc.layers.find((l) => l.name === name);
    const layer = this.layer(name);
    if (!spec || spec.kind === 'batchNorm' || layer instanceof BatchNorm) throw new RangeError(`lowbit: graph layer ${name} has no bias`);
    spec.bias = true;
    return layer.ensureBias();
  }

  /** Rename the value an op writes (the op that fused a following op takes over that op's output name). */
  renameOutput(from: string, to: string): void {
    const op = this.desc.ops.find((o) => o.outputs.includes(from));
    if (!op) throw new RangeError(`lowbit: no graph op writes ${from}`);
    op.outputs = op.outputs.map((name) => (name === from ? to : name));
  }

  setOutputs(names: string[]): void {
    this.desc.outputs = [...names];
  }

  /** Run one op of this graph (a layer op uses this module's child). */
  runOp(op: GraphOp, inputs: (Tensor | null)[]): Tensor[] {
    if (op.op === 'layer') {
      // A layer that reads its optional bias through the ONNX graph does not exist: layers take one input.
      return [this.layer(op.attrs!.layer as string).forward(inputs[0]!)];
    }
    return runGraphOp(op, inputs);
  }

  /** Run the graph on every input; returns every output. */
  run(inputs: Tensor[]): Tensor[] {
    if (inputs.length !== this.desc.inputs.length) {
      throw new RangeError(`lowbit: the graph takes ${this.desc.inputs.length} inputs (${this.inputNames.join(', ')}), got ${inputs.length}`);
    }
    const values = new Map<string, Tensor>(this.constantByValue);
    this.desc.inputs.forEach((d, i) => values.set(d.name, inputs[i]));
    const get = (name: string): Tensor | null => {
      if (!name) return null;
      const t = values.get(name);
      if (!t) throw new RangeError(`lowbit: graph value ${name} is read before it is computed`);
      return t;
    };
    if (ops.isGradEnabled()) {
      for (const op of this.desc.ops) {
        const out = this.runOp(op, op.inputs.map(get));
        op.outputs.forEach((name, i) => { if (name && out[i]) values.set(name, out[i]); });
      }
      return this.desc.outputs.map((n) => get(n)!);
    }
    // Without a tape a value is freed after its last reader (with the op's temporaries), so the pass holds the
    // live activations only. The graph's inputs, constants and outputs stay; a tensor known by several names (an
    // op that passes its input through) is freed when the last of them is read.
    const lastRead = new Map<string, number>();
    this.desc.ops.forEach((op, i) => op.inputs.forEach((name) => { if (name) lastRead.set(name, i); }));
    const kept = new Set<Tensor>([...this.constantByValue.values(), ...inputs]);
    const outputs = new Set(this.desc.outputs);
    const names = new Map<Tensor, number>(); // live names per computed tensor
    this.desc.ops.forEach((op, i) => {
      const out = tidy(() => this.runOp(op, op.inputs.map(get)));
      op.outputs.forEach((name, j) => {
        if (!name || !out[j]) return;
        values.set(name, out[j]);
        names.set(out[j], (names.get(out[j]) ?? 0) + 1);
      });
      for (const name of new Set([...op.inputs, ...op.outputs])) {
        const t = values.get(name);
        // an output nobody reads (an op's second output) is dead at once
        if (!t || outputs.has(name) || (lastRead.get(name) ?? -1) > i) continue;
        values.delete(name);
        const left = (names.get(t) ?? 0) - 1;
        names.set(t, left);
        if (left <= 0 && !kept.has(t)) t.dispose();
      }
    });
    return this.desc.outputs.map((n) => get(n)!);
  }

  forward(x: Tensor): Tensor {
    return this.run([x])[0];
  }

  describe(): string {
    return `GraphModule(${this.desc.ops.length} ops, ${this.desc.layers.length} layers)`;
  }
}
