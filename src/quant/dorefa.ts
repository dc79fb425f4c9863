// DoReFa-Net: Zhou, Wu, Ni, Zhou, Wen & Zou, "DoReFa-Net: Training Low Bitwidth Convolutional Neural Networks
// with Low Bitwidth Gradients", arXiv 1606.06160, 2016.
//
//   quantize_k(r) = round((2^k - 1) r) / (2^k - 1),  r in [0, 1];   dc/dr = dc/dq (straight-through)   (eq. 5)
//   weights, k = 1:  r_o = sign(r_i) E(|r_i|),  dc/dr_i = dc/dr_o (E a constant per layer)              (eq. 7-8)
//   weights, k > 1:  r_o = 2 quantize_k( tanh(r_i) / (2 max|tanh(r_i)|) + 1/2 ) - 1                    (eq. 9)
//                    the gradient flows through tanh and the max exactly, through quantize_k straight
//   activations:     r_o = quantize_k(clip(r_i, 0, 1))   (the paper assumes a bounded activation; clip
//                    passes the gradient inside (0, 1) only)                                            (eq. 11)
//   gradients:       f_k(dr) = 2 max0(|dr|) [ quantize_k( dr / (2 max0(|dr|)) + 1/2 + N(k) ) - 1/2 ]     (eq. 12)
//                    N(k) = sigma / (2^k - 1), sigma ~ Uniform(-0.5, 0.5); max0 = max over every axis but the
//                    first (per sample); applied to the gradient flowing backwards through a layer's output.
//                    As the authors' code, the noisy value is clipped to [0, 1] before quantize_k.
// k = 32 means "not quantized" (the spec language's dorefa:w32a32g32 is float).

import { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/engine.js';
import * as ops from '../autograd/index.js';
import { customGrad } from '../autograd/graph.js';
import {
  type Quantized, type Quantizer, type QuantizerDescription, type Role,
  checkFinite, checkInteger, codeDtype, codesToFloat, meanAbsPerChannel, straightThrough, toCodes,
} from './quantizer.js';
import { SeedStream } from './rounding.js';
import { binarize } from './binary.js';

export const ZHOU_2016 = 'Zhou et al., DoReFa-Net, arXiv 2016';

export function checkDorefaBits(what: string, k: number): number {
  return checkInteger(`dorefa: ${what} bits`, k, 1, 16, 'or 32 for float');
}

/** round((2^k - 1) r) as f32 integers, r in [0, 1]. No gradient. */
function levelsOf(r: Tensor, k: number): Tensor {
  return ops.round(ops.mulScalar(r, 2 ** k - 1));
}

/** quantize_k(r) with the straight-through gradient (r assumed in [0, 1]). */
export function quantizeK(r: Tensor, k: number): Tensor {
  const n = 2 ** k - 1;
  return straightThrough('quantize_k', r, () => ({ y: ops.mulScalar(levelsOf(r, k), 1 / n), mask: null }));
}

/** tanh(w) / (2 max|tanh(w)|) + 1/2, in [0, 1] (differentiable). */
function normalizeWeights(w: Tensor): Tensor {
  const t = ops.tanh(w);
  const m = ops.maximum(ops.max(ops.abs(t)), Tensor.scalar(1e-30));
  return ops.addScalar(ops.div(t, ops.mulScalar(m, 2)), 0.5);
}

/** DoReFa weights (eq. 7-9), differentiable with the paper's rule. */
export function dorefaWeights(w: Tensor, k: number, scale?: number): Tensor {
  if (k === 32) return w;
  if (k === 1) {
    const E = scale ?? meanAbsPerChannel(w, null)[0];
    return straightThrough('dorefa_w1', w, () => ({ y: ops.mulScalar(binarize(w), E), mask: null }));
  }
  return ops.addScalar(ops.mulScalar(quantizeK(normalizeWeights(w), k), 2), -1);
}

/** DoReFa activations quantize_k(clip(x, 0, 1)). */
export function dorefaActivations(x: Tensor, k: number): Tensor {
  if (k === 32) return x;
  return quantizeK(ops.clamp(x, 0, 1), k);
}

/** max |g| over every axis but the first, kept as [N, 1, ...] (guarded away from 0). */
function perSampleMaxAbs(g: Tensor): Tensor {
  const axes = Array.from({ length: g.rank - 1 }, (_, i) => i + 1);
  const m = axes.length ? ops.max(ops.abs(g), axes, true) : ops.abs(g);
  return ops.maximum(m, Tensor.scalar(1e-30));
}

/** f_k of eq. 12 on a gradient tensor: codes in [0, 2^k - 1] and the per-sample max. No gradient. */
function gradientCodes(g: Tensor, k: number, seed: number): { codes: Tensor; maxAbs: Tensor } {
  const n = 2 ** k - 1;
  const maxAbs = perSampleMaxAbs(g);
  const noise = ops.randomUniform(g.shape, -0.5 / n, 0.5 / n, seed);
  const r = ops.clamp(ops.add(ops.addScalar(ops.div(g, ops.mulScalar(maxAbs, 2)), 0.5), noise), 0, 1);
  return { codes: levelsOf(r, k), maxAbs };
}

function gradientValues(codes: Tensor, maxAbs: Tensor, k: number): Tensor {
  const n = 2 ** k - 1;
  return ops.mul(ops.addScalar(ops.mulScalar(codes, 1 / n), -0.5), ops.mulScalar(maxAbs, 2));
}

/** f_k(dr) of eq. 12 (what the backward pass of dorefaGradients applies). */
export function quantizeGradient(g: Tensor, k: number, seed: number): Tensor {
  return tidy(() => ops.noGrad(() => {
    const { codes, maxAbs } = gradientCodes(g, k, seed);
    return gradientValues(codes, maxAbs, k);
  }));
}

/** Identity forward; the gradient flowing back through it is quantized to k bits with noise (eq. 12). */
export function dorefaGradients(x: Tensor, k: number, seed: number): Tensor {
  if (k === 32) return x;
  return customGrad('dorefa_g', [x], () => ops.clone(x), (g) => [quantizeGradient(g, k, seed)]);
}

// ---------------------------------------------------------------------------------------------------------
// Quantizer objects

export interface DorefaWeightParams {
  /** 1 for k > 1; E(|W|) for k = 1. Value of code i: scale (2 i / (2^k - 1) - 1). */
  scale: number;
}

export class DorefaWeightQuantizer implements Quantizer<DorefaWeightParams> {
  readonly role: Role = 'weight';
  constructor(readonly bits: number) {
    checkDorefaBits('weight', bits);
  }

  get spec(): string {
    return `dorefa:w${this.bits}`;
  }

  params(x: Tensor): DorefaWeightParams {
    checkFinite(x, this.spec);
    return { scale: this.bits === 1 ? meanAbsPerChannel(x, null)[0] : 1 };
  }

  quantize(x: Tensor, params?: DorefaWeightParams): Quantized<DorefaWeightParams> {
    const p = params ?? this.params(x);
    if (params) checkFinite(x, this.spec);
    const codes = tidy(() => ops.noGrad(() => {
      // k = 1: code 1 for sign +1 (w >= 0), 0 for -1
      const i = this.bits === 1 ? ops.addScalar(ops.mulScalar(binarize(x), 0.5), 0.5) : levelsOf(normalizeWeights(x), this.bits);
      return toCodes(i, codeDtype(0, 2 ** this.bits - 1));
    }));
    return { codes, params: { scale: p.scale } };
  }

  dequantize(q: Quantized<DorefaWeightParams>): Tensor {
    const n = 2 ** this.bits - 1;
    return tidy(() => ops.mulScalar(ops.addScalar(ops.mulScalar(codesToFloat(q.codes), 2 / n), -1), q.params.scale));
  }

  fakeQuantize(x: Tensor, params?: DorefaWeightParams): Tensor {
    checkFinite(x, this.spec);
    return dorefaWeights(x, this.bits, params?.scale);
  }

  describe(): QuantizerDescription {
    const k = this.bits, n = 2 ** k - 1;
    return {
      spec: this.spec,
      name: `DoReFa ${k}-bit weights`,
      technique: 'dorefa', role: 'weight', bits: k,
      values: k === 1 ? '{-E|W|, +E|W|}' : `{2i/${n} - 1 : i = 0..${n}}`,
      levels: n + 1,
      params: k === 1 ? 'E(|W|) per layer (f32)' : 'none',
      paper: ZHOU_2016,
      forward: k === 1 ? 'q(W) = sign(W) E(|W|)' : `q(W) = 2 quantize_${k}(tanh(W) / (2 max|tanh W|) + 1/2) - 1`,
      backward: k === 1 ? 'dq/dW = 1 (straight-through)' : 'exact through tanh and max, straight-through for quantize_k',
    };
  }
}

export class DorefaActivationQuantizer implements Quantizer<Record<string, never>> {
  readonly role: Role = 'activation';
  constructor(readonly bits: number) {
    checkDorefaBits('activation', bits);
  }

  get spec(): string {
    return `dorefa:a${this.bits}`;
  }

  params(x: Tensor): Record<string, never> {
    checkFinite(x, this.spec);
    return {};
  }

  quantize(x: Tensor): Quantized<Record<string, never>> {
    checkFinite(x, this.spec);
    return { codes: tidy(() => toCodes(levelsOf(ops.clamp(x, 0, 1), this.bits), codeDtype(0, 2 ** this.bits - 1))), params: {} };
  }

  dequantize(q: Quantized<Record<string, never>>): Tensor {
    return tidy(() => ops.mulScalar(codesToFloat(q.codes), 1 / (2 ** this.bits - 1)));
  }

  fakeQuantize(x: Tensor): Tensor {
    checkFinite(x, this.spec);
    return dorefaActivations(x, this.bits);
  }

  describe(): QuantizerDescription {
    const k = this.bits, n = 2 ** k - 1;
    return {
      spec: this.spec, name: `DoReFa ${k}-bit activations`, technique: 'dorefa', role: 'activation', bits: k,
      values: `{i/${n} : i = 0..${n}}`, levels: n + 1, params: 'none', paper: ZHOU_2016,
      forward: `q(x) = quantize_${k}(clip(x, 0, 1)) = round(${n} clip(x, 0, 1)) / ${n}`,
      backward: 'dq/dx = 1 if 0 < x < 1 else 0 (straight-through inside the clip)',
    };
  }
}

export interface DorefaGradientParams {
  /** max |g| per sample (first axis). */
  maxAbs: number[];
}

/** Quantizes the gradient that flows back through a layer's output; identity in the forward pass. */
export class DorefaGradientQuantizer implements Quantizer<DorefaGradientParams> {
  readonly role: Role = 'gradient';
  readonly seeds: SeedStream;

  constructor(readonly bits: number, opts: { seed?: number } = {}) {
    checkDorefaBits('gradient', bits);
    this.seeds = new SeedStream(opts.seed ?? 0);
  }

  get spec(): string {
    return `dorefa:g${this.bits}`;
  }

  params(g: Tensor): DorefaGradientParams {
    checkFinite(g, this.spec);
    return { maxAbs: Array.from(tidy(() => perSampleMaxAbs(g).toFloat32Array())) };
  }

  /** Quantize a gradient tensor g (with the noise of eq. 12). */
  quantize(g: Tensor): Quantized<DorefaGradientParams> {
    checkFinite(g, this.spec);
    const seed = this.seeds.next();
    return tidy(() => ops.noGrad(() => {
      const { codes, maxAbs } = gradientCodes(g, this.bits, seed);
      return { codes: toCodes(codes, codeDtype(0, 2 ** this.bits - 1)), params: { maxAbs: Array.from(maxAbs.toFloat32Array()) } };
    }));
  }

  dequantize(q: Quantized<DorefaGradientParams>): Tensor {
    const shape = q.codes.shape.map((d, i) => (i === 0 ? d : 1));
    return tidy(() => gradientValues(codesToFloat(q.codes), Tensor.from(Float32Array.from(q.params.maxAbs), shape), this.bits));
  }

  /** Identity in the forward pass; quantizes dL/dx in the backward pass. */
  fakeQuantize(x: Tensor): Tensor {
    return dorefaGradients(x, this.bits, this.seeds.next());
  }

  describe(): QuantizerDescription {
    const k = this.bits, n = 2 ** k - 1;
    return {
      spec: this.spec, name: `DoReFa ${k}-bit gradients with uniform noise`, technique: 'dorefa', role: 'gradient', bits: k,
      values: `2 max0|dr| (i/${n} - 1/2), i = 0..${n}`, levels: n + 1, params: 'max |dr| per sample (f32)', paper: ZHOU_2016,
      forward: 'identity (the quantizer acts on the gradient)',
      backward: `dr~ = 2 max0|dr| (quantize_${k}(clip(dr / (2 max0|dr|) + 1/2 + N, 0, 1)) - 1/2), N ~ U(-1/2, 1/2) / ${n}`,
    };
  }
}
