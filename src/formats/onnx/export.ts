// ONNX export of lowbit models, float or quantized, from the graph the runtime captures (src/runtime/trace.ts).
//
// What the exported model takes and gives (any ONNX runtime):
//   input  'input'  float32 [N, C, H, W], pixels / 255 (values in [0, 1]), N dynamic
//   output 'output' float32 [N, classes] (the logits)
//   The model's normalization (metadata.preprocess {mean, std}) is the graph's first two nodes: Sub, Div.
//
// Two forms:
//   onnx      float weights: what the model computes (a quantized model's dequantized weights, bit for bit:
//             W[c, i] = scale[c] * table[index], the f32 values its fake quantizer uses), and every activation
//             quantizer written as float ops (Div, Round, Add, Clip, Sub, Mul: the arithmetic lowbit does), so
//             that any runtime computes the simulation. Not QuantizeLinear/DequantizeLinear: onnxruntime's
//             optimizer (WeightBiasQuantization, on by default) quantizes the float weights of a Conv/Gemm
//             whose input comes from a DequantizeLinear to per-tensor int8 itself (LeNet-5 int8: logits off by
//             0.29 instead of 0.07 with the float form).
//   onnx-qdq  weights that are int8 codes (affine int8/int4, fixed point, binary, ternary, power-of-two with a
//             small span, DoReFa <= 7 bits) as int8 initializers behind DequantizeLinear (per output channel,
//             axis 0), the layer's activation quantizer as QuantizeLinear -> DequantizeLinear (uint8/int8 with
//             the calibrated scale and zero point), a batch norm that follows such a layer folded into its
//             weight scales (negative gammas negate the codes) and bias: onnxruntime's QDQ transformers (graph
//             optimizations on) fuse DQ -> Conv/Gemm -> Q into QLinearConv / QGemm. The bias goes as int32 codes
//             of scale s_x s_w[c] when the output is quantized next and that rounding moves it by under 1% of
//             a step of those 8-bit codes (0.1% for lower bit widths), else as a float Add after the layer
//             (exact; onnxruntime then runs that conv in float). Weights of other datatypes (TTQ, k-means,
//             minifloat, wide power-of-two) stay exact float values with float-op activation quantizers, as in onnx.
// Activation quantizers, exactly as lowbit simulates them:
//   affine uintN/intN       value = S (clamp(round(x / S) + Z, qmin, qmax) - Z), round half to even; as QDQ
//                           a narrower code range than the 8-bit type is a Clip before the QuantizeLinear
//                           (exact: quantization is monotone); wider codes (int16) always as float ops
//   fixed:W.F, dfp:W        the same with S = 2^-F, Z = 0 (stochastic rounding evaluates as nearest; floor
//                           rounding as float ops with Floor)
//   dorefa:aK               Clip(x, 0, s_a), then S = s_a / (2^K - 1), codes 0..2^K - 1 (uint8 as QDQ)
//   bnn, xnor               the layer's input batch norm (Mul, Add with its evaluation scale and shift), then
//                           lowbit's sign (+1 at 0; ONNX Sign gives 0 there): Where(Less(x, 0), -1, 1);
//                           XNOR-Net's K = the box-filtered channel mean of |x|: ReduceMean, AveragePool
//                           (count_include_pad), and the output (y - b) K + b
//   minifloat, log2         no exact ONNX form: an error that names the layers and the datatype.
// Batch norms of a float model are BatchNormalization nodes with their statistics (what other tools write and
// read: imported back, they are batch-norm layers again, which fine-tune and fold); in a quantized model they
// are Mul and Add with lowbit's f32 evaluation scale and shift, what its simulation computes (identity ones,
// left by PTQ's folding, are dropped); ReLU, clamps, pools, reshapes (batch dimension -1), add/sub/mul/div,
// concat and pad map to their ONNX ops.

import type { BatchNorm, Module } from '../../nn/index.js';
import { LowbitError } from '../../errors.js';
import type { Pool2dOptions } from '../../autograd/ops/pool.js';
import { pads4, pair } from '../../autograd/ops/conv.js';
import type { ConvTranspose2dOptions } from '../../autograd/ops/conv-transpose.js';
import { AffineQuantizer } from '../../quant/affine.js';
import { DynamicFixedPointQuantizer, FixedPointQuantizer, fixedCodeRange } from '../../quant/fixed.js';
import { DorefaActivationQuantizer } from '../../quant/dorefa.js';
import { SignQuantizer } from '../../quant/binary.js';
import type { FakeQuantLayer } from '../../quant/fakequant.js';
import type { ModelSource, QuantizedModel } from '../../quant/quantized.js';
import { describeModel, type LayerSpec } from '../../runtime/index.js';
import { foldedNorm } from '../../runtime/plan.js';
import { readerCounts, type GraphNode } from '../../runtime/trace.js';
import { tableToFloat, tableToInt8 } from '../../runtime/weights.js';
import { DataType, GraphBuilder, encodeOnnxModel, floatAttr, intAttr, intsAttr, valueInfo } from './write.js';

export type OnnxFormat = 'onnx' | 'onnx-qdq';
export const ONNX_FORMATS: readonly OnnxFormat[] = ['onnx', 'onnx-qdq'];

/** Ops of the captured graph the exporter writes (besides input, conv, linear, batchNorm). */
const UNARY: Record<string, (b: GraphBuilder, x: string, base: string, a: number, bb: number) => string> = {
  relu: (g, x, base) => g.op('Relu', [x], base),
  relu6: (g, x, base) => g.op('Clip', [x, g.scalar(0), g.scalar(6)], base),
  hardtanh: (g, x, base) => g.op('Clip', [x, g.scalar(-1), g.scalar(1)], base),
  clamp: (g, x, base, a, b) => g.op('Clip', [x, g.scalar(a), g.scalar(b)], base),
  leakyRelu: (g, x, base, a) => g.op('LeakyRelu', [x], base, [floatAttr('alpha', a)]),
  sigmoid: (g, x, base) => g.op('Sigmoid', [x], base),
  tanh: (g, x, base) => g.op('Tanh', [x], base),
  neg: (g, x, base) => g.op('Neg', [x], base),
  abs: (g, x, base) => g.op('Abs', [x], base),
  affine: (g, x, base, a, b) => {
    let y = a === 1 ? x : g.op('Mul', [x, g.scalar(a)], base);
    if (b !== 0) y = g.op('Add', [y, g.scalar(b)], base);
    return y === x ? g.op('Identity', [x], base) : y;
  },
};
const BINARY: Record<string, string> = { add: 'Add', sub: 'Sub', mul: 'Mul', div: 'Div' };
const OTHER = new Set(['constant', 'input', 'conv', 'linear', 'batchNorm', 'convTranspose2d', 'reshape', 'maxPool2d', 'avgPool2d', 'globalAvgPool2d', 'concat', 'pad']);

export function isQuantizedModel(m: QuantizedModel | ModelSource): m is QuantizedModel {
  return Array.isArray((m as QuantizedModel).layers) && (m as QuantizedModel).spec !== undefined;
}

/** Integer codes of a layer's input in the exported graph (per tensor): value = scale (code - zero). */
interface InputCodes {
  scale: number;
  zero: number;
}

/**
 * The model as an encoded ONNX ModelProto (see the header). Throws a LowbitError naming the layer when a
 * datatype has no exact ONNX form, or the op when the graph has one ONNX export does not write.
 */
export function exportOnnx(src: QuantizedModel | ModelSource, format: OnnxFormat): Uint8Array {
  if (!ONNX_FORMATS.includes(format)) throw new LowbitError(`unknown ONNX format ${format}; use ${ONNX_FORMATS.join(' or ')}`);
  const quantized = isQuantizedModel(src);
  if (format === 'onnx-qdq' && !quantized) {
    throw new LowbitError(`${src.name} is a float model: onnx-qdq writes quantized models; quantize it first (\`lowbit quantize --spec int8 ...\`) or export it with --format onnx`);
  }
  const fqs = quantized ? src.layers : [];
  checkActivations(fqs);
  const c = src.config;
  const { graph, specs } = describeModel(src.model, fqs, [1, c.inChannels, c.inputSize, c.inputSize]);
  try {
    const unsupported = graph.nodes.filter((n) => !OTHER.has(n.op) && !UNARY[n.op] && !BINARY[n.op]);
    if (unsupported.length) {
      throw new LowbitError(`ONNX export does not write op${unsupported.length > 1 ? 's' : ''} ${[...new Set(unsupported.map((n) => n.op))].join(', ')}; it writes conv, linear, batchNorm, constant, convTranspose2d, reshape, maxPool2d, avgPool2d, globalAvgPool2d, concat, pad, ${[...Object.keys(UNARY), ...Object.keys(BINARY)].join(', ')}`);
    }
    const metadata = quantized ? src.sourceMetadata : (src.metadata ?? {});
    const exporter = new Exporter(format, quantized, graph.nodes, graph.output, specs, new Map(fqs.map((l) => [l.layer as Module, l])));
    const props = exporter.build(metadata, c.classes);
    return encodeOnnxModel({
      name: `${src.name}${quantized ? `_${src.spec.text.replace(/[^A-Za-z0-9_.:-]/g, '_')}` : ''}`,
      nodes: exporter.g.nodes,
      initializers: exporter.g.initializers,
      inputs: [valueInfo('input', ['N', c.inChannels, c.inputSize, c.inputSize])],
      outputs: [valueInfo('output', ['N', ...graph.nodes[graph.output].shape.slice(1)])],
      docString: `lowbit ${src.name}${quantized ? ` quantized ${src.spec.text} (${src.mode})` : ' (float)'}, exported as ${format}. Input: float32 NCHW pixels / 255 in [0, 1], dynamic batch; the normalization is inside the graph. Output: [N, classes] logits.`,
      metadata: props,
    });
  } finally {
    for (const s of specs.values()) for (const t of s.quantTensors.values()) t.dispose();
  }
}

/** Every quantized activation must have an exact ONNX form; the error lists every layer that has none. */
function checkActivations(fqs: FakeQuantLayer[]): void {
  const bad: string[] = [];
  for (const l of fqs) {
    const q = l.activation;
    if (!q) continue;
    if (q instanceof AffineQuantizer || q instanceof FixedPointQuantizer || q instanceof DynamicFixedPointQuantizer || q instanceof DorefaActivationQuantizer || q instanceof SignQuantizer) continue;
    bad.push(`layer ${l.name}: ${q.spec} activations`);
  }
  if (bad.length) {
    throw new LowbitError(
      `${bad.join('; ')}: no exact ONNX form (ONNX has no operator that computes this quantizer), nothing was written. ` +
        'Export the model with --format lowbit (lowbit\'s runtime runs it), or quantize these activations to int8, uint8, fixed, dfp, dorefa, bnn or xnor ' +
        '(per layer: `--spec "w=...,a=...;<layer>:a=int8"`)',
    );
  }
}

class Exporter {
  readonly g = new GraphBuilder();
  private readonly values = new Map<number, string>();
  private readonly readers: number[];
  /** Batch-norm nodes folded into the layer before them (onnx-qdq): their value is the layer's. */
  private readonly folded = new Set<number>();

  constructor(
    private readonly format: OnnxFormat,
    private readonly quantized: boolean,
    private readonly nodes: GraphNode[],
    private readonly output: number,
    private readonly specs: Map<string, LayerSpec>,
    private readonly fqOf: Map<Module, FakeQuantLayer>,
  ) {
    this.readers = readerCounts({ nodes, output });
  }

  /** Write the nodes; returns the model's metadata_props. */
  build(metadata: Record<string, unknown>, classes: number): Record<string, string> {
    const g = this.g;
    let x = g.reserve('input');
    const pre = metadata.preprocess as { mean?: number[]; std?: number[] } | undefined;
    const C = this.nodes[0].shape[1];
    if (pre?.mean && pre.std) {
      if (pre.mean.length !== C || pre.std.length !== C) throw new LowbitError(`the model's preprocess metadata has ${pre.mean.length} means and ${pre.std.length} stds for ${C} input channels`);
      x = g.op('Sub', [x, g.constant('preprocess.mean', [1, C, 1, 1], Float32Array.from(pre.mean))], 'normalized');
      x = g.op('Div', [x, g.constant('preprocess.std', [1, C, 1, 1], Float32Array.from(pre.std, (s) => (s > 0 ? s : 1)))], 'normalized');
    }
    this.values.set(0, x);
    for (const n of this.nodes) {
      if (n.op === 'input' || this.folded.has(n.id)) continue;
      this.values.set(n.id, this.emit(n));
    }
    g.opTo('Identity', [this.values.get(this.output)!], g.reserve('output'));
    const out: Record<string, string> = {
      'lowbit.input': 'float32 NCHW, pixels / 255 in [0, 1], dynamic batch N',
      'lowbit.output': `float32 [N, ${classes}] logits`,
      'lowbit.format': this.format,
    };
    if (pre?.mean && pre.std) out['lowbit.preprocess'] = JSON.stringify({ mean: pre.mean, std: pre.std });
    for (const k of ['dataset', 'classes']) if (metadata[k] !== undefined) out[`lowbit.${k}`] = JSON.stringify(metadata[k]);
    return out;
  }

  private value(id: number): string {
    const v = this.values.get(id);
    if (v === undefined) throw new Error(`lowbit: ONNX export: value of node ${id} is missing`);
    return v;
  }

  /** [C, 1, 1] for NCHW values, [C] for [N, C] ones: the shape that broadcasts per channel. */
  private channelDims(rank: number, C: number): number[] {
    return rank === 4 ? [C, 1, 1] : [C];
  }

  private emit(n: GraphNode): string {
    const g = this.g;
    const base = n.name ?? `${n.op}${n.id}`;
    const x = () => this.value(n.inputs[0]);
    switch (n.op) {
      case 'conv':
      case 'linear':
        return this.layer(n);
      case 'batchNorm': {
        if (!this.quantized) return this.batchNormalization(x(), n.module as BatchNorm, base);
        const { g: scale, h: shift } = foldedNorm(n.module as BatchNorm);
        if (scale.every((s) => s === 1) && shift.every((s) => s === 0)) return x(); // folded by PTQ: identity
        return this.channelAffine(x(), scale, shift, n.shape.length, base);
      }
      case 'constant': // a tensor the model holds (an imported graph's operand): float, as the trace keeps it
        return g.initializer(base, n.shape, n.attrs.value as Float32Array);
      case 'convTranspose2d': { // float, weights from a constant input (the bias is a later add)
        const o = n.attrs.opts as ConvTranspose2dOptions;
        const w = this.nodes[n.inputs[1]].shape;
        return g.op('ConvTranspose', [x(), this.value(n.inputs[1])], base, [
          intsAttr('kernel_shape', [w[2], w[3]]), intsAttr('strides', pair(o.stride, 1)), intsAttr('pads', pads4(o.padding)),
          intsAttr('dilations', pair(o.dilation, 1)), intAttr('group', o.groups ?? 1), intsAttr('output_padding', pair(o.outputPadding, 0)),
        ]);
      }
      case 'reshape':
        return g.op('Reshape', [x(), g.constant(`${base}.shape`, [n.shape.length], BigInt64Array.from([-1, ...n.shape.slice(1)], BigInt))], base);
      case 'maxPool2d':
      case 'avgPool2d': {
        const o = n.attrs.opts as Pool2dOptions;
        const [kh, kw] = pair(o.kernel, 1);
        const stride = pair(o.stride, 0).map((s, i) => s || [kh, kw][i]);
        const dilation = pair(o.dilation, 1);
        const attrs = [intsAttr('kernel_shape', [kh, kw]), intsAttr('strides', stride), intsAttr('pads', pads4(o.padding)), intAttr('ceil_mode', o.ceilMode ? 1 : 0)];
        if (n.op === 'maxPool2d') return g.op('MaxPool', [x()], base, [...attrs, intsAttr('dilations', dilation)]);
        if (dilation[0] !== 1 || dilation[1] !== 1) throw new LowbitError(`ONNX export: dilated average pooling (node ${n.id}) needs opset 19; lowbit writes opset 17`);
        return g.op('AveragePool', [x()], base, [...attrs, intAttr('count_include_pad', o.countIncludePad ? 1 : 0)]);
      }
      case 'globalAvgPool2d':
        return g.op('GlobalAveragePool', [x()], base);
      case 'concat':
        return g.op('Concat', n.inputs.map((i) => this.value(i)), base, [intAttr('axis', n.attrs.axis as number)]);
      case 'pad': {
        const p = n.attrs.pads as [number, number][];
        const pads = BigInt64Array.from([...p.map((q) => q[0]), ...p.map((q) => q[1])], BigInt);
        return g.op('Pad', [x(), g.constant(`${base}.pads`, [pads.length], pads), g.scalar((n.attrs.value as number) ?? 0)], base, []);
      }
      default:
        if (BINARY[n.op]) return g.op(BINARY[n.op], n.inputs.map((i) => this.value(i)), base);
        return UNARY[n.op](g, x(), base, (n.attrs.a as number) ?? 0, (n.attrs.b as number) ?? 0);
    }
  }

  /** A float model's batch norm, with its statistics, as other tools write it. */
  private batchNormalization(x: string, bn: BatchNorm, base: string): string {
    const C = bn.channels, g = this.g;
    const inputs = [x, ...(['gamma', 'beta', 'runningMean', 'runningVar'] as const).map((k) => g.initializer(`${base}.${k}`, [C], bn[k].toFloat32Array()))];
    return g.op('BatchNormalization', inputs, base, [floatAttr('epsilon', bn.opts.eps ?? 1e-5)]);
  }

  /** y = x scale + shift per channel (a batch norm in evaluation, lowbit's f32 scale and shift). */
  private channelAffine(x: string, scale: Float32Array, shift: Float32Array, rank: number, base: string): string {
    const dims = this.channelDims(rank, scale.length);
    const y = this.g.op('Mul', [x, this.g.initializer(`${base}.scale`, dims, Float32Array.from(scale))], base);
    return this.g.op('Add', [y, this.g.initializer(`${base}.shift`, dims, Float32Array.from(shift))], base);
  }

  /** A conv or linear layer with its activation quantizer, weights and bias (and a folded batch norm). */
  private layer(n: GraphNode): string {
    const g = this.g;
    const spec = this.specs.get(n.name!)!;
    const fq = n.module ? this.fqOf.get(n.module) ?? null : null;
    const inRank = this.nodes[n.inputs[0]].shape.length;
    const name = spec.name;
    let h = this.value(n.inputs[0]);
    // int8 weight codes behind DequantizeLinear (onnx-qdq)
    const int8Weights = this.format === 'onnx-qdq' && !!spec.weights && spec.weights.integer && spec.weights.table[0] >= -128 && spec.weights.table[spec.weights.table.length - 1] <= 127;
    let codes: InputCodes | null = null;
    let K: string | null = null;
    if (fq?.inputNorm) {
      const { g: s, h: t } = foldedNorm(fq.inputNorm);
      h = this.channelAffine(h, s, t, inRank, `${name}.inputNorm`);
    }
    const act = fq?.activation ?? null;
    let xin = h;
    if (act instanceof SignQuantizer) {
      // lowbit's sign: +1 at 0 (ONNX Sign gives 0 there)
      xin = g.op('Where', [g.op('Less', [h, g.scalar(0)], `${name}.negative`), g.scalar(-1), g.scalar(1)], `${name}.sign`);
      if (fq!.xnorScale) K = this.xnorK(h, spec, name);
    } else if (act) {
      // QuantizeLinear -> DequantizeLinear only in front of int8 weights: onnxruntime's optimizer
      // (WeightBiasQuantization) would quantize float weights behind a DequantizeLinear to int8 itself
      ({ value: xin, codes } = this.quantizeActivation(h, fq!, inRank, int8Weights));
    }
    // a batch norm that reads only this layer's output folds into the int8 weight scales when onnxruntime can
    // fuse the layer (QDQ input); otherwise it stays Mul, Add: exact (a sign after it sees lowbit's values)
    let fold: { g: Float32Array; h: Float32Array } | null = null;
    let foldNode: GraphNode | null = null;
    if (int8Weights && codes && this.readers[n.id] === 1 && n.id !== this.output) {
      const r = this.nodes.find((m) => m.inputs.includes(n.id));
      if (r?.op === 'batchNorm') {
        const f = foldedNorm(r.module as BatchNorm);
        const identity = f.g.every((s) => s === 1) && f.h.every((s) => s === 0);
        const codes8 = tableToInt8(spec.weights!);
        const per = codes8.length / spec.outChannels;
        const negatable = (c: number) => f.g[c] >= 0 || !codes8.subarray(c * per, (c + 1) * per).includes(-128);
        if (!identity && f.g.every((s, c) => s !== 0 && Number.isFinite(s) && negatable(c))) {
          fold = f;
          foldNode = r;
        }
      }
    }

    const wDims = spec.kind === 'conv'
      ? [spec.outChannels, spec.inChannels / (spec.config?.groups ?? 1), ...spec.kernel!]
      : [spec.outChannels, spec.inChannels];
    const outC = spec.outChannels;
    let W: string;
    let wScale: Float32Array | null = null;
    if (int8Weights) {
      const t = spec.weights!;
      const q = tableToInt8(t);
      wScale = Float32Array.from(t.scale);
      if (fold) {
        const per = q.length / outC;
        for (let c = 0; c < outC; c++) {
          const gc = fold.g[c];
          wScale[c] = Math.fround(wScale[c] * Math.abs(gc));
          if (gc < 0) for (let i = c * per; i < (c + 1) * per; i++) q[i] = -q[i];
        }
      }
      W = g.op('DequantizeLinear', [
        g.initializer(`${name}.weight_quantized`, wDims, q),
        g.initializer(`${name}.weight_scale`, [outC], wScale),
        g.initializer(`${name}.weight_zero_point`, [outC], new Int8Array(outC)),
      ], `${name}.weight`, [intAttr('axis', 0)]);
    } else {
      W = g.initializer(`${name}.weight`, wDims, Float32Array.from(spec.weights ? tableToFloat(spec.weights) : spec.floatWeight!));
    }

    let bias: Float32Array | null = spec.bias ? Float32Array.from(spec.bias) : null;
    if (fold) bias = Float32Array.from({ length: outC }, (_, c) => (bias ? bias[c] : 0) * fold!.g[c] + fold!.h[c]);
    let B: string | null = null;
    /** A float bias added after the layer (see below). */
    let lateBias: Float32Array | null = null;
    if (bias) {
      // int32 codes (what QLinearConv/QGemm add to their accumulators) only when rounding the bias to the
      // accumulator step s_x s_w[c] moves the output by under 1% of a step of the 8-bit codes it is quantized
      // to next (0.1% for fewer levels: a low-bit layer's accumulator step can be a sizeable part of its output
      // step, 16% in 2-bit DoReFa, and a flipped low-bit code is a large change). Else a float bias, exact,
      // and onnxruntime runs the conv in float (a Gemm still becomes a QGemm with float output). A layer whose
      // output is not quantized next (it feeds a residual add, an imported model's Mul/Add, the logits) has no
      // QLinearConv to gain: its bias stays exact (rounded, the shifts compounded through an imported
      // ResNet-20's float stream until 16% of its last layer's input codes differed from lowbit's).
      const next = this.consumerCodes(n);
      const bq = wScale && codes && next ? quantizeBias(bias, codes.scale, wScale, (next.levels >= 255 ? 0.01 : 0.001) * next.step) : null;
      if (bq) {
        B = g.op('DequantizeLinear', [
          g.initializer(`${name}.bias_quantized`, [outC], bq.codes),
          g.initializer(`${name}.bias_scale`, [outC], bq.scale),
          g.initializer(`${name}.bias_zero_point`, [outC], new Int32Array(outC)),
        ], `${name}.bias`, [intAttr('axis', 0)]);
      } else if (wScale && codes) {
        // Not as the Conv's/Gemm's bias: onnxruntime (WeightBiasQuantization) would round a float bias of a
        // layer with DequantizeLinear input and weights to int32 itself
        lateBias = bias;
      } else {
        B = g.initializer(`${name}.bias`, [outC], bias);
      }
    }

    const inputs = B ? [xin, W, B] : [xin, W];
    let y: string;
    if (spec.kind === 'conv') {
      const cfg = spec.config ?? {};
      y = g.op('Conv', inputs, foldNode ? `${name}+bn` : name, [
        intsAttr('kernel_shape', spec.kernel!),
        intsAttr('strides', pair(cfg.stride, 1)),
        intsAttr('pads', pads4(cfg.padding)),
        intsAttr('dilations', pair(cfg.dilation, 1)),
        intAttr('group', cfg.groups ?? 1),
      ]);
    } else {
      if (inRank !== 2) throw new LowbitError(`ONNX export: linear layer ${name} reads a rank-${inRank} value; lowbit writes Gemm for [N, features] inputs`);
      y = g.op('Gemm', inputs, foldNode ? `${name}+bn` : name, [intAttr('transB', 1)]);
    }
    if (lateBias) y = g.op('Add', [y, g.initializer(`${name}.bias`, this.channelDims(n.shape.length, outC), lateBias)], `${name}.biased`);
    if (K) {
      // XNOR-Net: (y - b) K + b, as the simulation computes it
      if (B && bias) {
        const b = g.initializer(`${name}.bias_broadcast`, this.channelDims(n.shape.length, outC), bias);
        y = g.op('Add', [g.op('Mul', [g.op('Sub', [y, b], `${name}.unbiased`), K], `${name}.scaled`), b], `${name}.xnor`);
      } else {
        y = g.op('Mul', [y, K], `${name}.xnor`);
      }
    }
    if (foldNode) {
      this.folded.add(foldNode.id);
      this.values.set(foldNode.id, y);
    }
    return y;
  }

  /**
   * The step of the codes a layer's output is quantized to next: the input step of the one layer it flows into
   * through batch norm, ReLU, max pooling and reshapes only (what onnxruntime fuses into QLinearConv's output).
   */
  private consumerCodes(n: GraphNode): { step: number; levels: number } | null {
    let id = n.id;
    for (;;) {
      if (this.readers[id] !== 1 || id === this.output) return null;
      const r = this.nodes.find((m) => m.inputs.includes(id));
      if (!r) return null;
      if (r.op === 'conv' || r.op === 'linear') return r.inputs.length === 1 && r.module ? inputCodesOf(this.fqOf.get(r.module) ?? null) : null;
      if (!['batchNorm', 'relu', 'maxPool2d', 'reshape'].includes(r.op)) return null;
      id = r.id;
    }
  }

  /** XNOR-Net's K: the channel mean of |h|, box-filtered like the convolution (zeros outside the image). */
  private xnorK(h: string, spec: LayerSpec, name: string): string {
    const g = this.g;
    const A = g.op('ReduceMean', [g.op('Abs', [h], `${name}.abs`)], `${name}.xnor_A`, [intsAttr('axes', [1]), intAttr('keepdims', 1)]);
    if (spec.kind === 'linear') return A;
    const c = spec.config ?? {};
    const d = pair(c.dilation, 1);
    if (d[0] !== 1 || d[1] !== 1) throw new LowbitError(`layer ${name}: xnor input scaling needs an undilated convolution`);
    return g.op('AveragePool', [A], `${name}.xnor_K`, [
      intsAttr('kernel_shape', spec.kernel!),
      intsAttr('strides', pair(c.stride, 1)),
      intsAttr('pads', pads4(c.padding)),
      intAttr('count_include_pad', 1),
    ]);
  }

  /** The layer's activation quantizer applied to h; the codes when they are per tensor. */
  private quantizeActivation(h: string, fq: FakeQuantLayer, rank: number, qdq: boolean): { value: string; codes: InputCodes | null } {
    const q = fq.activation!;
    const name = fq.name;
    if (q instanceof AffineQuantizer) {
      const p = fq.activationParams as { scale: number[]; zeroPoint: number[] } | undefined;
      if (!p) throw new LowbitError(`layer ${name}: its ${q.spec} activations are not calibrated (no scale); quantize the model again`);
      return this.affine(h, p.scale, p.zeroPoint, q.qmin, q.qmax, 'nearest', rank, name, qdq);
    }
    if (q instanceof FixedPointQuantizer || q instanceof DynamicFixedPointQuantizer) {
      const F = q instanceof FixedPointQuantizer ? q.fracLength : (fq.activationParams as { fracLength?: number } | undefined)?.fracLength;
      if (typeof F !== 'number') throw new LowbitError(`layer ${name}: its ${q.spec} activations have no fractional length; quantize the model again`);
      const r = fixedCodeRange(q.wordLength, q.signed);
      return this.affine(h, [2 ** -F], [0], r.min, r.max, q.rounding === 'floor' ? 'floor' : 'nearest', rank, name, qdq);
    }
    if (q instanceof DorefaActivationQuantizer) {
      const s = fq.activationScale, n = 2 ** q.bits - 1;
      const clipped = this.g.op('Clip', [h, this.g.scalar(0), this.g.scalar(s)], `${name}.input_clipped`);
      return this.affine(clipped, [s / n], [0], 0, n, 'nearest', rank, name, qdq);
    }
    throw new LowbitError(`layer ${name}: ${q.spec} activations have no exact ONNX form`);
  }

  /**
   * value = S (clamp(round(h / S) + Z, qmin, qmax) - Z): QuantizeLinear -> DequantizeLinear when the codes fit
   * 8 bits and round to nearest (a narrower range clips first), else the same arithmetic in float ops.
   */
  private affine(h: string, scale: number[], zero: number[], qmin: number, qmax: number, rounding: 'nearest' | 'floor', rank: number, name: string, qdq: boolean): { value: string; codes: InputCodes | null } {
    const g = this.g;
    const perTensor = scale.length === 1;
    const type = qmin >= 0 && qmax <= 255 ? 'u8' : qmin >= -128 && qmax <= 127 ? 'i8' : null;
    const [tmin, tmax] = type === 'u8' ? [0, 255] : [-128, 127];
    const full = qmin === tmin && qmax === tmax;
    const codes = perTensor ? { scale: Math.fround(scale[0]), zero: zero[0] } : null;
    if (qdq && type && rounding === 'nearest' && (full || perTensor)) {
      let x = h;
      if (!full) {
        // clamp(round(h / S) + Z) = round(clip(h, S (qmin - Z), S (qmax - Z)) / S) + Z: quantization is monotone
        x = g.op('Clip', [h, g.scalar(Math.fround(scale[0] * (qmin - zero[0]))), g.scalar(Math.fround(scale[0] * (qmax - zero[0])))], `${name}.input_clipped`);
      }
      const dims = perTensor ? [] : [scale.length];
      const S = g.initializer(`${name}.input_scale`, dims, Float32Array.from(scale));
      const Z = g.initializer(`${name}.input_zero_point`, dims, type === 'u8' ? Uint8Array.from(zero) : Int8Array.from(zero));
      const attrs = perTensor ? [] : [intAttr('axis', 1)];
      const qv = g.op('QuantizeLinear', [x, S, Z], `${name}.input_quantized`, attrs);
      return { value: g.op('DequantizeLinear', [qv, S, Z], `${name}.input_dequantized`, attrs), codes };
    }
    const dims = perTensor ? [] : this.channelDims(rank, scale.length);
    const S = g.constant(`${name}.input_scale`, dims, Float32Array.from(scale));
    const Z = g.constant(`${name}.input_zero_point_f`, dims, Float32Array.from(zero));
    let t = g.op('Div', [h, S], `${name}.input_scaled`);
    t = g.op(rounding === 'floor' ? 'Floor' : 'Round', [t], `${name}.input_rounded`);
    t = g.op('Add', [t, Z], `${name}.input_codes`);
    t = g.op('Clip', [t, g.scalar(qmin), g.scalar(qmax)], `${name}.input_codes`);
    t = g.op('Sub', [t, Z], `${name}.input_centred`);
    return { value: g.op('Mul', [t, S], `${name}.input_dequantized`), codes: null };
  }
}

/**
 * Bias as int32 codes of scale s_x s_w[c] (what QLinearConv adds to its accumulators); null if a code is out
 * of range or rounds a bias by more than `tolerance`.
 */
function quantizeBias(b: Float32Array, inScale: number, wScale: Float32Array, tolerance: number): { codes: Int32Array; scale: Float32Array } | null {
  const scale = Float32Array.from(wScale, (s) => inScale * s);
  const codes = new Int32Array(b.length);
  for (let c = 0; c < b.length; c++) {
    if (!(scale[c] > 0)) return null;
    const v = Math.round(b[c] / scale[c]);
    if (!(Math.abs(v) < 2 ** 31 - 1) || !(Math.abs(v * scale[c] - b[c]) <= tolerance)) return null;
    codes[c] = v;
  }
  return { codes, scale };
}

/** The per-tensor step and the number of steps of a layer's quantized inputs (affine, fixed point, DoReFa). */
function inputCodesOf(fq: FakeQuantLayer | null): { step: number; levels: number } | null {
  const q = fq?.activation;
  if (!q || fq.inputNorm) return null;
  if (q instanceof AffineQuantizer) {
    const p = fq.activationParams as { scale?: number[] } | undefined;
    return p?.scale?.length === 1 ? { step: p.scale[0], levels: q.qmax - q.qmin } : null;
  }
  if (q instanceof FixedPointQuantizer || q instanceof DynamicFixedPointQuantizer) {
    const F = q instanceof FixedPointQuantizer ? q.fracLength : (fq.activationParams as { fracLength?: number } | undefined)?.fracLength;
    const r = fixedCodeRange(q.wordLength, q.signed);
    return typeof F === 'number' ? { step: 2 ** -F, levels: r.max - r.min } : null;
  }
  if (q instanceof DorefaActivationQuantizer) return { step: fq.activationScale / (2 ** q.bits - 1), levels: 2 ** q.bits - 1 };
  return null;
}
