/**
 * Whole networks as in-memory ONNX models, for the peer side of `lowbit bench runtime`.
 *
 *   conv3x3-64-56  one conv 3x3 64->64, pad 1, on 1x64x56x56 (no bias, no activation)
 *   lenet5         1x1x28x28: conv5x5(1->6, pad 2)-relu-maxpool2-conv5x5(6->16)-relu-maxpool2-flatten-
 *                  fc400->120-relu-fc120->84-relu-fc84->10
 *   resnet20       CIFAR ResNet-20 (He et al. 2016) on 1x3x32x32: conv3x3 3->16-relu, 3 stages x 3 basic
 *                  blocks (16, 32, 64 channels; first block of stages 2 and 3 has stride 2 and a 1x1
 *                  stride-2 projection shortcut), global average pool, fc 64->10
 *   resnet18       ImageNet ResNet-18 on 1x3x224x224: conv7x7/2 64-relu, maxpool 3x3/2 pad 1, 4 stages x 2
 *                  basic blocks (64, 128, 256, 512; 1x1 stride-2 projection shortcuts), GAP, fc 512->1000
 *
 * Batch norm is folded into the conv biases (there are no BatchNormalization nodes). Weights are
 * deterministic pseudo-random, Kaiming-scaled (uniform in ±sqrt(6 / fan_in)), and the last conv of
 * each residual branch is scaled by 0.5 (as a folded BN with gamma 0.5 would) so that activations
 * stay in a sane range through the residual additions without BN.
 *
 * A network is first built as a `NetworkSpec` (a list of layers with their float weights), then
 * emitted as
 *   - a float graph (Conv / Relu / MaxPool / Add / GlobalAveragePool / Flatten / Gemm), see
 *     `floatNetworkModel`; and
 *   - an int8 QDQ graph, see `int8NetworkModel`: the float input is quantized (QuantizeLinear, uint8)
 *     and every activation tensor goes through QuantizeLinear -> DequantizeLinear (uint8, per-tensor
 *     scale and zero point from calibration ranges); conv and fc weights are int8 initializers,
 *     symmetric per output channel (zero point 0), behind DequantizeLinear(axis 0); biases are int32
 *     with scale x_scale * w_scale[c]. onnxruntime's QDQ transformers (graph optimization level
 *     'all', CPU EP, also in onnxruntime-web) fuse this into QLinearConv, QLinearAdd, QGemm, uint8
 *     MaxPool, QLinearGlobalAveragePool; Relu followed by a zero-point-0 uint8 QuantizeLinear is
 *     removed. Inputs and outputs stay float.
 *
 * Calibration ranges come from a float run: `floatNetworkModel(spec, { exposeActivations: true })`
 * makes every quantized activation tensor a graph output; `rangesFromActivations` turns their values
 * into ranges (bench/runtime-peers.ts runs it with onnxruntime-node).
 *
 * MACs count the multiply-adds of the convs and fully-connected layers only (pools and additions are
 * not counted), the usual convention (ResNet-18: 1.81 G).
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { encodeModel, intsAttr, pseudoRandom, type OnnxIO, type OnnxModel } from './onnx-builders.js';

const { onnx } = onnxProto;
const DT = onnx.TensorProto.DataType;

export const NETWORK_NAMES = ['conv3x3-64-56', 'lenet5', 'resnet20', 'resnet18'] as const;
export type NetworkName = (typeof NETWORK_NAMES)[number];
export type NetworkDtype = 'fp32' | 'int8';

export interface ConvLayer {
  op: 'conv';
  input: string;
  output: string;
  inC: number;
  outC: number;
  k: number;
  stride: number;
  pad: number;
  relu: boolean;
  /** [outC, inC, k, k] */
  w: Float32Array;
  /** [outC], or null for no bias */
  b: Float32Array | null;
}
export interface FcLayer {
  op: 'fc';
  input: string;
  output: string;
  inF: number;
  outF: number;
  relu: boolean;
  /** [outF, inF] (Gemm with transB = 1) */
  w: Float32Array;
  b: Float32Array;
}
export interface MaxPoolLayer {
  op: 'maxpool';
  input: string;
  output: string;
  k: number;
  stride: number;
  pad: number;
}
export interface AddLayer {
  op: 'add';
  a: string;
  b: string;
  output: string;
  relu: boolean;
}
export interface UnaryLayer {
  op: 'gap' | 'flatten';
  input: string;
  output: string;
}
export type NetLayer = ConvLayer | FcLayer | MaxPoolLayer | AddLayer | UnaryLayer;

export interface NetworkSpec {
  name: NetworkName;
  /** Graph input 'X' (NCHW, batch 1). */
  input: OnnxIO;
  /** Graph output 'Y'. */
  output: OnnxIO;
  layers: NetLayer[];
  /** Shape of every tensor, by name (the input, and every layer output). */
  shapes: Record<string, number[]>;
  /** Multiply-adds of one inference (convs + fully-connected layers). */
  macs: number;
}

/** Calibration range of one activation tensor (float values). */
export interface ActivationRange {
  min: number;
  max: number;
}
export type ActivationRanges = Record<string, ActivationRange>;

// ---------------------------------------------------------------------------------------------
// Network specs

const INPUT = 'X';
const OUTPUT = 'Y';

/** Accumulates layers, shapes and MACs; `withWeights: false` skips drawing the weights (MACs only). */
class SpecBuilder {
  readonly layers: NetLayer[] = [];
  readonly shapes: Record<string, number[]> = {};
  macs = 0;
  private seed: number;
  private count = 0;

  constructor(
    readonly name: NetworkName,
    inputDims: number[],
    private readonly withWeights: boolean,
    seedBase: number,
  ) {
    this.shapes[INPUT] = inputDims;
    this.seed = seedBase;
  }

  private fresh(prefix: string): string {
    return `${prefix}${this.count++}`;
  }

  private draw(n: number, scale: number): Float32Array {
    const seed = this.seed++;
    if (!this.withWeights) return new Float32Array(0);
    const v = pseudoRandom(n, seed);
    for (let i = 0; i < n; i++) v[i]! *= scale;
    return v;
  }

  conv(input: string, outC: number, k: number, stride: number, pad: number, o: { relu: boolean; bias?: boolean; gain?: number; out?: string }): string {
    const [n, inC, h, w] = this.shapes[input]!;
    const oh = Math.floor((h! + 2 * pad - k) / stride) + 1;
    const ow = Math.floor((w! + 2 * pad - k) / stride) + 1;
    const output = o.out ?? this.fresh('conv');
    const fanIn = inC! * k * k;
    const wv = this.draw(outC * fanIn, (o.gain ?? 1) * Math.sqrt(6 / fanIn));
    const bv = o.bias === false ? null : this.draw(outC, 0.05);
    this.layers.push({ op: 'conv', input, output, inC: inC!, outC, k, stride, pad, relu: o.relu, w: wv, b: bv });
    this.shapes[output] = [n!, outC, oh, ow];
    this.macs += n! * outC * oh * ow * fanIn;
    return output;
  }

  fc(input: string, outF: number, relu: boolean, out?: string): string {
    const [n, inF] = this.shapes[input]!;
    const output = out ?? this.fresh('fc');
    const wv = this.draw(outF * inF!, Math.sqrt(6 / inF!));
    const bv = this.draw(outF, 0.05);
    this.layers.push({ op: 'fc', input, output, inF: inF!, outF, relu, w: wv, b: bv });
    this.shapes[output] = [n!, outF];
    this.macs += n! * outF * inF!;
    return output;
  }

  maxpool(input: string, k: number, stride: number, pad: number): string {
    const [n, c, h, w] = this.shapes[input]!;
    const output = this.fresh('pool');
    this.layers.push({ op: 'maxpool', input, output, k, stride, pad });
    this.shapes[output] = [n!, c!, Math.floor((h! + 2 * pad - k) / stride) + 1, Math.floor((w! + 2 * pad - k) / stride) + 1];
    return output;
  }

  add(a: string, b: string, relu: boolean): string {
    const output = this.fresh('add');
    this.layers.push({ op: 'add', a, b, output, relu });
    this.shapes[output] = this.shapes[a]!;
    return output;
  }

  gap(input: string): string {
    const [n, c] = this.shapes[input]!;
    const output = this.fresh('gap');
    this.layers.push({ op: 'gap', input, output });
    this.shapes[output] = [n!, c!, 1, 1];
    return output;
  }

  flatten(input: string): string {
    const dims = this.shapes[input]!;
    const output = this.fresh('flat');
    this.layers.push({ op: 'flatten', input, output });
    this.shapes[output] = [dims[0]!, dims.slice(1).reduce((a, b) => a * b, 1)];
    return output;
  }

  /** Basic block: conv3x3-relu-conv3x3 (+ identity or 1x1 projection shortcut), add, relu. */
  basicBlock(input: string, outC: number, stride: number): string {
    const inC = this.shapes[input]![1]!;
    const h = this.conv(input, outC, 3, stride, 1, { relu: true });
    const r = this.conv(h, outC, 3, 1, 1, { relu: false, gain: 0.5 });
    const sc = stride !== 1 || inC !== outC ? this.conv(input, outC, 1, stride, 0, { relu: false }) : input;
    return this.add(r, sc, true);
  }

  finish(last: string): NetworkSpec {
    // Rename the last layer's output to the graph output.
    const lastLayer = this.layers[this.layers.length - 1]!;
    if (lastLayer.output !== last) throw new Error('finish: not the last layer');
    lastLayer.output = OUTPUT;
    this.shapes[OUTPUT] = this.shapes[last]!;
    delete this.shapes[last];
    return {
      name: this.name,
      input: { name: INPUT, dims: this.shapes[INPUT]! },
      output: { name: OUTPUT, dims: this.shapes[OUTPUT]! },
      layers: this.layers,
      shapes: this.shapes,
      macs: this.macs,
    };
  }
}

/** Conv 3x3 64->64, pad 1, stride 1, on 1x64x56x56; no bias, no activation (the `bench kernels` layer). */
export function conv3x3Layer(o: { withWeights?: boolean } = {}): NetworkSpec {
  const b = new SpecBuilder('conv3x3-64-56', [1, 64, 56, 56], o.withWeights ?? true, 100);
  return b.finish(b.conv(INPUT, 64, 3, 1, 1, { relu: false, bias: false }));
}

/** LeNet-5 on 1x1x28x28 (MNIST), 10 classes. */
export function lenet5(o: { withWeights?: boolean } = {}): NetworkSpec {
  const b = new SpecBuilder('lenet5', [1, 1, 28, 28], o.withWeights ?? true, 200);
  let t = b.conv(INPUT, 6, 5, 1, 2, { relu: true });
  t = b.maxpool(t, 2, 2, 0);
  t = b.conv(t, 16, 5, 1, 0, { relu: true });
  t = b.maxpool(t, 2, 2, 0);
  t = b.flatten(t);
  t = b.fc(t, 120, true);
  t = b.fc(t, 84, true);
  return b.finish(b.fc(t, 10, false));
}

/** ResNet-20 for CIFAR-10 on 1x3x32x32, 10 classes. */
export function resnet20(o: { withWeights?: boolean } = {}): NetworkSpec {
  const b = new SpecBuilder('resnet20', [1, 3, 32, 32], o.withWeights ?? true, 300);
  let t = b.conv(INPUT, 16, 3, 1, 1, { relu: true });
  [16, 32, 64].forEach((c, stage) => {
    for (let i = 0; i < 3; i++) t = b.basicBlock(t, c, stage > 0 && i === 0 ? 2 : 1);
  });
  t = b.flatten(b.gap(t));
  return b.finish(b.fc(t, 10, false));
}

/** ResNet-18 for ImageNet on 1x3x224x224, 1000 classes. */
export function resnet18(o: { withWeights?: boolean } = {}): NetworkSpec {
  const b = new SpecBuilder('resnet18', [1, 3, 224, 224], o.withWeights ?? true, 400);
  let t = b.conv(INPUT, 64, 7, 2, 3, { relu: true });
  t = b.maxpool(t, 3, 2, 1);
  [64, 128, 256, 512].forEach((c, stage) => {
    for (let i = 0; i < 2; i++) t = b.basicBlock(t, c, stage > 0 && i === 0 ? 2 : 1);
  });
  t = b.flatten(b.gap(t));
  return b.finish(b.fc(t, 1000, false));
}

const BUILDERS: Record<NetworkName, (o?: { withWeights?: boolean }) => NetworkSpec> = {
  'conv3x3-64-56': conv3x3Layer,
  lenet5,
  resnet20,
  resnet18,
};

/** The spec of a network by name (with its deterministic weights). */
export function networkSpec(name: NetworkName): NetworkSpec {
  const f = BUILDERS[name];
  if (!f) throw new Error(`unknown network '${name}' (known: ${NETWORK_NAMES.join(', ')})`);
  return f();
}

/** Multiply-adds of one batch-1 inference of a network (convs + fc); gops = 2 * MACs / (ms * 1e6). */
export function networkMacs(name: NetworkName): number {
  const f = BUILDERS[name];
  if (!f) throw new Error(`unknown network '${name}' (known: ${NETWORK_NAMES.join(', ')})`);
  return f({ withWeights: false }).macs;
}

/** The activation tensors the int8 graph quantizes: the input and every layer output (incl. 'Y'). */
export function activationTensors(spec: NetworkSpec): string[] {
  return [spec.input.name, ...spec.layers.map((l) => l.output)];
}

// ---------------------------------------------------------------------------------------------
// ONNX emission

interface Init {
  name: string;
  dims: number[];
  dataType: number;
  raw: Uint8Array;
}

function bytesOf(v: Float32Array | Int8Array | Uint8Array | Int32Array): Uint8Array {
  const raw = new Uint8Array(v.byteLength);
  raw.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  return raw;
}

function int(name: string, v: number): OnnxTypes.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i: v };
}

function convAttrs(l: ConvLayer): OnnxTypes.IAttributeProto[] {
  return [
    intsAttr('kernel_shape', [l.k, l.k]),
    intsAttr('pads', [l.pad, l.pad, l.pad, l.pad]),
    intsAttr('strides', [l.stride, l.stride]),
    intsAttr('dilations', [1, 1]),
    int('group', 1),
  ];
}

function encode(graphName: string, nodes: OnnxTypes.INodeProto[], inputs: OnnxIO[], outputs: OnnxIO[], inits: Init[], floatInits: Record<string, Float32Array>): OnnxModel {
  return encodeModel(graphName, nodes, inputs, outputs, inits.map((t) => ({ name: t.name, dims: t.dims, dataType: t.dataType, rawData: t.raw })), floatInits);
}

/**
 * The float graph of a network. With `exposeActivations`, every tensor of `activationTensors(spec)`
 * except the input is also a graph output (for calibration), after 'Y'.
 */
export function floatNetworkModel(spec: NetworkSpec, o: { exposeActivations?: boolean } = {}): OnnxModel {
  const nodes: OnnxTypes.INodeProto[] = [];
  const inits: Init[] = [];
  const floatInits: Record<string, Float32Array> = {};
  const addInit = (name: string, dims: number[], v: Float32Array) => {
    if (v.length === 0) throw new Error(`${spec.name}: spec built without weights`);
    inits.push({ name, dims, dataType: DT.FLOAT, raw: bytesOf(v) });
    floatInits[name] = v;
  };
  const withRelu = (l: { output: string; relu: boolean }, opNode: (out: string) => OnnxTypes.INodeProto) => {
    if (!l.relu) return void nodes.push(opNode(l.output));
    nodes.push(opNode(`${l.output}_pre`));
    nodes.push({ name: `${l.output}_relu`, opType: 'Relu', input: [`${l.output}_pre`], output: [l.output] });
  };
  for (const l of spec.layers) {
    switch (l.op) {
      case 'conv': {
        addInit(`${l.output}_w`, [l.outC, l.inC, l.k, l.k], l.w);
        const ins = [l.input, `${l.output}_w`];
        if (l.b) {
          addInit(`${l.output}_b`, [l.outC], l.b);
          ins.push(`${l.output}_b`);
        }
        withRelu(l, (out) => ({ name: `${l.output}_conv`, opType: 'Conv', input: ins, output: [out], attribute: convAttrs(l) }));
        break;
      }
      case 'fc':
        addInit(`${l.output}_w`, [l.outF, l.inF], l.w);
        addInit(`${l.output}_b`, [l.outF], l.b);
        withRelu(l, (out) => ({
          name: `${l.output}_gemm`,
          opType: 'Gemm',
          input: [l.input, `${l.output}_w`, `${l.output}_b`],
          output: [out],
          attribute: [int('transB', 1)],
        }));
        break;
      case 'add':
        withRelu(l, (out) => ({ name: `${l.output}_add`, opType: 'Add', input: [l.a, l.b], output: [out] }));
        break;
      case 'maxpool':
        nodes.push(maxPoolNode(l, l.input, l.output));
        break;
      case 'gap':
        nodes.push({ name: `${l.output}_gap`, opType: 'GlobalAveragePool', input: [l.input], output: [l.output] });
        break;
      case 'flatten':
        nodes.push({ name: `${l.output}_flatten`, opType: 'Flatten', input: [l.input], output: [l.output], attribute: [int('axis', 1)] });
        break;
    }
  }
  const outputs: OnnxIO[] = [spec.output];
  if (o.exposeActivations) {
    for (const t of activationTensors(spec)) if (t !== spec.input.name && t !== spec.output.name) outputs.push({ name: t, dims: spec.shapes[t]! });
  }
  return encode(`${spec.name}_fp32`, nodes, [spec.input], outputs, inits, floatInits);
}

function maxPoolNode(l: MaxPoolLayer, input: string, output: string): OnnxTypes.INodeProto {
  return {
    name: `${l.output}_maxpool`,
    opType: 'MaxPool',
    input: [input],
    output: [output],
    attribute: [intsAttr('kernel_shape', [l.k, l.k]), intsAttr('pads', [l.pad, l.pad, l.pad, l.pad]), intsAttr('strides', [l.stride, l.stride])],
  };
}

/** uint8 affine parameters of an activation range (the range is widened to include 0). */
export function uint8Params(r: ActivationRange): { scale: number; zeroPoint: number } {
  const lo = Math.min(0, r.min);
  const hi = Math.max(0, r.max);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new Error(`non-finite activation range [${r.min}, ${r.max}]`);
  const span = hi - lo;
  if (span <= 0) return { scale: 1 / 255, zeroPoint: 0 };
  const scale = span / 255;
  return { scale, zeroPoint: Math.min(255, Math.max(0, Math.round(-lo / scale))) };
}

/** Symmetric int8 quantization per output channel (axis 0): q = round(w / s), s = max|w| / 127. */
export function quantizeWeightsPerChannel(w: Float32Array, channels: number): { q: Int8Array; scales: Float32Array } {
  const per = w.length / channels;
  const q = new Int8Array(w.length);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let m = 0;
    for (let i = 0; i < per; i++) m = Math.max(m, Math.abs(w[c * per + i]!));
    const s = m > 0 ? m / 127 : 1;
    scales[c] = s;
    for (let i = 0; i < per; i++) q[c * per + i] = Math.max(-127, Math.min(127, Math.round(w[c * per + i]! / s)));
  }
  return { q, scales };
}

/**
 * Ranges from a calibration run of `floatNetworkModel(spec, { exposeActivations: true })`: `values`
 * maps tensor names (the input and the graph outputs) to their float values. Every tensor of
 * `activationTensors(spec)` must be present.
 */
export function rangesFromActivations(spec: NetworkSpec, values: Record<string, ArrayLike<number>>): ActivationRanges {
  const out: ActivationRanges = {};
  for (const t of activationTensors(spec)) {
    const v = values[t];
    if (!v) throw new Error(`${spec.name}: no calibration values for tensor '${t}'`);
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < v.length; i++) {
      const x = v[i]!;
      if (x < min) min = x;
      if (x > max) max = x;
    }
    out[t] = { min, max };
  }
  return out;
}

/**
 * The int8 QDQ graph of a network (see the module comment). `ranges` must cover
 * `activationTensors(spec)`; maxpool and flatten outputs reuse their input's parameters (onnxruntime
 * then runs them on uint8 directly) whatever their range says.
 */
export function int8NetworkModel(spec: NetworkSpec, ranges: ActivationRanges): OnnxModel {
  const nodes: OnnxTypes.INodeProto[] = [];
  const inits: Init[] = [];
  const floatInits: Record<string, Float32Array> = {};
  const params = new Map<string, { scale: number; zeroPoint: number }>();
  const scalarInit = (name: string, scale: number, zp: number) => {
    const s = Float32Array.of(scale);
    inits.push({ name: `${name}_scale`, dims: [], dataType: DT.FLOAT, raw: bytesOf(s) });
    inits.push({ name: `${name}_zp`, dims: [], dataType: DT.UINT8, raw: Uint8Array.of(zp) });
    floatInits[`${name}_scale`] = s;
  };
  /** Float tensor `t` (just produced) -> Q -> DQ -> `${t}_dq` (or 'Y' for the graph output). */
  const qdq = (t: string, p: { scale: number; zeroPoint: number }) => {
    params.set(t, p);
    scalarInit(t, p.scale, p.zeroPoint);
    const src = t === spec.output.name ? `${t}_f` : t;
    const dst = t === spec.output.name ? t : `${t}_dq`;
    nodes.push({ name: `${t}_quant`, opType: 'QuantizeLinear', input: [src, `${t}_scale`, `${t}_zp`], output: [`${t}_q`] });
    nodes.push({ name: `${t}_dequant`, opType: 'DequantizeLinear', input: [`${t}_q`, `${t}_scale`, `${t}_zp`], output: [dst] });
  };
  const dqName = (t: string) => `${t}_dq`;
  const rangeParams = (t: string) => {
    const r = ranges[t];
    if (!r) throw new Error(`${spec.name}: no calibration range for tensor '${t}'`);
    return uint8Params(r);
  };
  /** The float tensor a layer writes before its Q: 'Y' is renamed so that the DQ can be 'Y'. */
  const floatOut = (t: string) => (t === spec.output.name ? `${t}_f` : t);
  /** int8 per-channel weights + int32 bias behind DequantizeLinear. Returns [w_dq, b_dq]. */
  const weights = (name: string, dims: number[], w: Float32Array, b: Float32Array | null, inScale: number): string[] => {
    if (w.length === 0) throw new Error(`${spec.name}: spec built without weights`);
    const outC = dims[0]!;
    const { q, scales } = quantizeWeightsPerChannel(w, outC);
    inits.push({ name: `${name}_wq`, dims, dataType: DT.INT8, raw: bytesOf(q) });
    inits.push({ name: `${name}_wscale`, dims: [outC], dataType: DT.FLOAT, raw: bytesOf(scales) });
    inits.push({ name: `${name}_wzp`, dims: [outC], dataType: DT.INT8, raw: new Uint8Array(outC) });
    floatInits[`${name}_wscale`] = scales;
    nodes.push({
      name: `${name}_wdequant`,
      opType: 'DequantizeLinear',
      input: [`${name}_wq`, `${name}_wscale`, `${name}_wzp`],
      output: [`${name}_w`],
      attribute: [int('axis', 0)],
    });
    const res = [`${name}_w`];
    if (b) {
      const bs = new Float32Array(outC);
      const bq = new Int32Array(outC);
      for (let c = 0; c < outC; c++) {
        bs[c] = inScale * scales[c]!;
        bq[c] = Math.round(b[c]! / bs[c]!);
      }
      inits.push({ name: `${name}_bq`, dims: [outC], dataType: DT.INT32, raw: bytesOf(bq) });
      inits.push({ name: `${name}_bscale`, dims: [outC], dataType: DT.FLOAT, raw: bytesOf(bs) });
      inits.push({ name: `${name}_bzp`, dims: [outC], dataType: DT.INT32, raw: bytesOf(new Int32Array(outC)) });
      floatInits[`${name}_bscale`] = bs;
      nodes.push({
        name: `${name}_bdequant`,
        opType: 'DequantizeLinear',
        input: [`${name}_bq`, `${name}_bscale`, `${name}_bzp`],
        output: [`${name}_b`],
        attribute: [int('axis', 0)],
      });
      res.push(`${name}_b`);
    }
    return res;
  };
  const withRelu = (l: { output: string; relu: boolean }, opNode: (out: string) => OnnxTypes.INodeProto) => {
    const out = floatOut(l.output);
    if (!l.relu) return void nodes.push(opNode(out));
    nodes.push(opNode(`${l.output}_pre`));
    nodes.push({ name: `${l.output}_relu`, opType: 'Relu', input: [`${l.output}_pre`], output: [out] });
  };

  qdq(spec.input.name, rangeParams(spec.input.name));
  for (const l of spec.layers) {
    switch (l.op) {
      case 'conv': {
        const [w, b] = weights(l.output, [l.outC, l.inC, l.k, l.k], l.w, l.b, params.get(l.input)!.scale);
        const ins = [dqName(l.input), w!];
        if (b) ins.push(b);
        withRelu(l, (out) => ({ name: `${l.output}_conv`, opType: 'Conv', input: ins, output: [out], attribute: convAttrs(l) }));
        qdq(l.output, rangeParams(l.output));
        break;
      }
      case 'fc': {
        const [w, b] = weights(l.output, [l.outF, l.inF], l.w, l.b, params.get(l.input)!.scale);
        withRelu(l, (out) => ({
          name: `${l.output}_gemm`,
          opType: 'Gemm',
          input: [dqName(l.input), w!, b!],
          output: [out],
          attribute: [int('transB', 1)],
        }));
        qdq(l.output, rangeParams(l.output));
        break;
      }
      case 'add':
        withRelu(l, (out) => ({ name: `${l.output}_add`, opType: 'Add', input: [dqName(l.a), dqName(l.b)], output: [out] }));
        qdq(l.output, rangeParams(l.output));
        break;
      case 'maxpool':
        nodes.push(maxPoolNode(l, dqName(l.input), floatOut(l.output)));
        qdq(l.output, params.get(l.input)!);
        break;
      case 'gap':
        nodes.push({ name: `${l.output}_gap`, opType: 'GlobalAveragePool', input: [dqName(l.input)], output: [floatOut(l.output)] });
        qdq(l.output, rangeParams(l.output));
        break;
      case 'flatten':
        nodes.push({
          name: `${l.output}_flatten`,
          opType: 'Flatten',
          input: [dqName(l.input)],
          output: [floatOut(l.output)],
          attribute: [int('axis', 1)],
        });
        qdq(l.output, params.get(l.input)!);
        break;
    }
  }
  return encode(`${spec.name}_int8`, nodes, [spec.input], [spec.output], inits, floatInits);
}

/** Both forms of a network: fp32, or int8 QDQ with the given calibration ranges. */
export function networkModel(spec: NetworkSpec, dtype: NetworkDtype, ranges?: ActivationRanges): OnnxModel {
  if (dtype === 'fp32') return floatNetworkModel(spec);
  if (!ranges) throw new Error(`${spec.name}: the int8 model needs calibration ranges`);
  return int8NetworkModel(spec, ranges);
}
