// The runtime's view of a model's conv and linear layers: what each one computes (its quantized weights as
// a value table, its bias, its fake-quantization state) and which kernel family can run it:
//
//   int8    integer input codes (affine uint8/int8/int4, fixed point and DoReFa activations of <= 8 bits)
//           times integer weight codes that fit in int8 (affine, fixed point, power-of-two with a small
//           exponent span, binary, ternary, DoReFa weights) -> int32 accumulators (convInt8)
//   binary  binarized inputs (bnn, xnor: sign of the input batch norm) times +-1 weights -> XNOR-popcount
//           (convBinary)
//   float   everything else runs as the fake-quantized float layer (the simulation): fp32 layers, float
//           activations with quantized weights (BinaryConnect, BWN, TWN, TTQ, INQ, k-means, ... as in their
//           papers), minifloat and log activations. Its weights are still stored packed.
//
// A layer is built from a quantized model in memory (fromQuantizedModel) or from a packed file (file.ts);
// both give the same RuntimeLayer, so a file runs exactly like the model it was written from.

import { Conv2d, Linear } from '../nn/index.js';
import type { Conv2dConfig } from '../nn/layers.js';
import { Tensor } from '../tensor/tensor.js';
import { keep, tidy } from '../tensor/engine.js';
import { Random } from '../tensor/random.js';
import { FakeQuantLayer, type FakeQuantState } from '../quant/fakequant.js';
import { AffineQuantizer } from '../quant/affine.js';
import { DynamicFixedPointQuantizer, FixedPointQuantizer, fixedCodeRange } from '../quant/fixed.js';
import { DorefaActivationQuantizer, DorefaWeightQuantizer } from '../quant/dorefa.js';
import { SignQuantizer } from '../quant/binary.js';
import { parseDatatype, type LayerScheme } from '../quant/spec.js';
import type { Quantizer } from '../quant/quantizer.js';
import { checkDeclaredBits, tableToFloat, tableToInt8, tableWeights, type TableWeights } from './weights.js';

export type KernelFamily = 'int8' | 'binary' | 'float';

/** Integer input codes of a layer: value = scale * (code - zero). */
export interface InputCodes {
  type: 'u8' | 'i8';
  scale: number;
  zero: number;
  lo: number;
  hi: number;
}

export interface LayerSpec {
  name: string;
  kind: 'conv' | 'linear';
  inChannels: number;
  outChannels: number;
  /** conv only */
  kernel?: [number, number];
  config?: Conv2dConfig;
  /** Quantized weights (null: float weights in `floatWeight`). */
  weights: TableWeights | null;
  floatWeight: Float32Array | null;
  bias: Float32Array | null;
  /** The fake quantizer's state (null: an fp32 layer). */
  quant: FakeQuantState | null;
  /** Tensors the state refers to (the binarized layers' input batch norm). */
  quantTensors: Map<string, Tensor>;
}

export interface RuntimeLayer {
  spec: LayerSpec;
  /** A float module with the quantized weights, and the layer's fake quantizer (activation side) installed. */
  module: Conv2d | Linear;
  fq: FakeQuantLayer | null;
  family: KernelFamily;
  /** Why the family was chosen (plan summary). */
  reason: string;
  input: InputCodes | null;
  /** Integer weight codes [outC, ...] and their per-channel scale (int8 and binary families). */
  codes: Int8Array | null;
  weightScale: Float32Array | null;
}

/** The step of a weight quantizer per channel, when it has one (see tableWeights). */
function weightScaleHint(fq: FakeQuantLayer): number[] | null {
  const q = fq.weight;
  const p = fq.weightParams as { scale?: number[]; zeroPoint?: number[]; fracLength?: number } | undefined;
  if (q instanceof AffineQuantizer && p?.scale && (p.zeroPoint ?? []).every((z) => z === 0)) return p.scale;
  if (q instanceof FixedPointQuantizer) return [2 ** -q.fracLength];
  if (q instanceof DynamicFixedPointQuantizer && typeof p?.fracLength === 'number') return [2 ** -p.fracLength];
  // k > 1: gain * (2i - (2^k - 1)) / (2^k - 1); k = 1 is sign(W) E|W|, found from the values
  if (q instanceof DorefaWeightQuantizer && q.bits > 1) return [fq.gain / (2 ** q.bits - 1)];
  return null;
}

/** Describe a conv/linear layer of a (possibly fake-quantized) model for the runtime. */
export function layerSpecOf(name: string, module: Conv2d | Linear, fq: FakeQuantLayer | null): LayerSpec {
  return tidy(() => {
    const quantTensors = new Map<string, Tensor>();
    const quant = fq ? fq.state(quantTensors, name) : null;
    for (const [k, t] of [...quantTensors]) {
      // copies: the runtime layer owns them (the model's own input norm stays with the model)
      if (k.startsWith(`${name}.inputNorm.`)) quantTensors.set(k, keep(Tensor.from(t.toFloat32Array(), [...t.shape])));
      else quantTensors.delete(k);
    }
    if (quant) {
      quant.weightParams = null; // the weights are stored quantized: their quantizer's parameters are not needed
      quant.ema = null;
    }
    let weights: TableWeights | null = null;
    let floatWeight: Float32Array | null = null;
    if (fq?.weight) {
      const w = fq.evalWeight();
      weights = tableWeights(w.toFloat32Array(), [...w.shape], weightScaleHint(fq));
      checkDeclaredBits(name, weights, fq.weight.bits, fq.weight.spec);
    } else {
      floatWeight = module.weight.toFloat32Array();
    }
    const common = { name, weights, floatWeight, bias: module.bias?.toFloat32Array() ?? null, quant, quantTensors };
    if (module instanceof Conv2d) {
      return { ...common, kind: 'conv' as const, inChannels: module.inChannels, outChannels: module.outChannels, kernel: module.kernel, config: { ...module.config } };
    }
    return { ...common, kind: 'linear' as const, inChannels: module.inFeatures, outChannels: module.outFeatures };
  });
}

function schemeOf(s: FakeQuantState): LayerScheme {
  return {
    weight: null,
    activation: s.activation ? parseDatatype(s.activation).forRole('activation') : null,
    gradient: null,
  };
}

/** The integer codes a quantizer gives its layer's input, if it has an integer form the int8 kernels take. */
function inputCodesOf(q: Quantizer | null, fq: FakeQuantLayer): InputCodes | null {
  if (!q || fq.inputNorm) return null;
  const typeOf = (lo: number, hi: number): 'u8' | 'i8' | null => (lo >= 0 && hi <= 255 ? 'u8' : lo >= -128 && hi <= 127 ? 'i8' : null);
  if (q instanceof AffineQuantizer) {
    const p = fq.activationParams as { scale: number[]; zeroPoint: number[] } | undefined;
    const type = typeOf(q.qmin, q.qmax);
    if (!p || p.scale.length !== 1 || !type) return null;
    return { type, scale: p.scale[0], zero: p.zeroPoint[0], lo: q.qmin, hi: q.qmax };
  }
  if (q instanceof FixedPointQuantizer || q instanceof DynamicFixedPointQuantizer) {
    const F = q instanceof FixedPointQuantizer ? q.fracLength : (fq.activationParams as { fracLength?: number } | undefined)?.fracLength;
    const r = fixedCodeRange(q.wordLength, q.signed);
    const type = typeOf(r.min, r.max);
    if (typeof F !== 'number' || !type) return null;
    return { type, scale: 2 ** -F, zero: 0, lo: r.min, hi: r.max };
  }
  if (q instanceof DorefaActivationQuantizer && q.bits <= 8) {
    const n = 2 ** q.bits - 1;
    return { type: 'u8', scale: fq.activationScale / n, zero: 0, lo: 0, hi: n };
  }
  return null;
}

/** Build the runtime layer: the float module, its restored fake quantizer, and the kernel family. */
export function buildRuntimeLayer(spec: LayerSpec): RuntimeLayer {
  const rng = new Random(0);
  const module = spec.kind === 'conv'
    ? new Conv2d(spec.inChannels, spec.outChannels, spec.kernel!, rng, { ...spec.config, bias: spec.bias !== null })
    : new Linear(spec.inChannels, spec.outChannels, rng, { bias: spec.bias !== null });
  module.eval(); // evaluation: the fake quantizer's deterministic path, the input norm's running statistics
  let fq: FakeQuantLayer | null = null;
  try {
    const w = spec.weights ? tableToFloat(spec.weights) : spec.floatWeight!;
    module.weight.view().set(w);
    if (spec.bias) module.bias!.view().set(spec.bias);
    if (spec.quant && spec.quant.activation) {
      fq = new FakeQuantLayer(spec.name, module, schemeOf(spec.quant));
      fq.restore(spec.quant, spec.quantTensors, spec.name, { weightsQuantized: true });
      fq.install();
      fq.inputNorm?.eval();
    }
  } catch (e) {
    // A description read from a file may not fit: free what this layer made before passing the error on.
    fq?.dispose();
    module.dispose();
    throw e;
  }
  const base = { spec, module, fq, codes: null, weightScale: null, input: null };
  const t = spec.weights;
  const intCodes = t && t.integer && t.table[0] >= -127 && t.table[t.table.length - 1] <= 127;
  const act = fq?.activation ?? null;
  // The integer families run from packed weights: free the float copy (the module keeps its bias, and the
  // fake quantizer's input side, which the runtime uses).
  const integerOnly = (l: RuntimeLayer): RuntimeLayer => {
    module.weight.dispose();
    return l;
  };
  if (act instanceof SignQuantizer && t && t.integer && t.table.every((v) => v === -1 || v === 1) && (spec.config?.groups ?? 1) === 1 && dilationOne(spec)) {
    return integerOnly({ ...base, family: 'binary', reason: `${act.spec} inputs x +-1 weights: XNOR-popcount`, codes: tableToInt8(t), weightScale: t.scale });
  }
  const input = fq ? inputCodesOf(act, fq) : null;
  if (input && intCodes) {
    return integerOnly({ ...base, family: 'int8', reason: `${act!.spec} inputs x ${spec.quant!.weight ?? 'fp32'} weights (${t!.table.length} codes): int8 x int8 -> int32`, input, codes: tableToInt8(t!), weightScale: t!.scale });
  }
  const why = !spec.quant ? 'fp32 layer'
    : !act ? `float inputs (${spec.quant.weight} quantizes weights only): float kernel, packed weights`
    : !input && !(act instanceof SignQuantizer) ? `${act.spec} inputs have no integer kernel: simulated in float`
    : !intCodes ? `${spec.quant.weight ?? 'fp32'} weights are not int8 codes: simulated in float`
    : 'binary inputs need +-1 weights, groups 1 and no dilation: simulated in float';
  return { ...base, family: 'float', reason: why };
}

function dilationOne(spec: LayerSpec): boolean {
  const d = spec.config?.dilation;
  return d === undefined || d === 1 || (Array.isArray(d) && d[0] === 1 && d[1] === 1);
}

export function disposeRuntimeLayer(l: RuntimeLayer): void {
  l.fq?.dispose();
  l.module.dispose();
  for (const t of l.spec.quantTensors.values()) t.dispose();
}
