// Binary weights and activations: BinaryConnect, BNN, XNOR-Net and BWN.
//
// BinaryConnect: Courbariaux, Bengio & David, "BinaryConnect: Training Deep Neural Networks with binary weights
// during propagations", NeurIPS 2015.
//   deterministic (eq. 1):  w_b = +1 if w >= 0 else -1
//   stochastic (eq. 2-3):   w_b = +1 with probability p = hard_sigmoid(w) = clip((w + 1) / 2, 0, 1), else -1
//   backward:               dC/dw := dC/dw_b (the gradient with respect to the binary weights updates the real
//                           ones: identity straight-through); the real weights are clipped to [-1, 1] after each
//                           update (clipLatentWeights).
//
// BNN: Hubara, Courbariaux, Soudry, El-Yaniv & Bengio, "Binarized Neural Networks", NeurIPS 2016.
//   q = sign(r) (+1 for r = 0), for activations and weights
//   backward (eq. 4, the straight-through estimator of Bengio 2013 with the hardtanh window):
//                           g_r = g_q * 1_{|r| <= 1}     (Larq's ste_sign)
//
// XNOR-Net and BWN: Rastegari, Ordonez, Redmon & Farhadi, "XNOR-Net: ImageNet Classification Using Binary
// Convolutional Neural Networks", ECCV 2016.
//   weights (eq. 6):        W ~ alpha B,  B = sign(W),  alpha = ||W||_l1 / n = mean |W| per output filter
//   backward (sec. 3.1):    dC/dW_i = dC/dW~_i (1/n + dsign/dW_i alpha), the chain rule through alpha(W) with the
//                           hardtanh-window estimator for sign:
//                           g_i = alpha g~_i 1_{|W_i| <= 1} + sign(W_i) (1/n) sum_j g~_j B_j   (sum over the filter)
//   inputs (eq. 11):        I ~ beta H, H = sign(I); the scales of all sub-tensors are K = A * k, where
//                           A = sum_c |I(c,:,:)| / c (mean over channels) and k is the w x h box filter 1/(wh):
//                           conv(I, W) ~ (sign(I) (*) sign(W)) . K alpha      (xnorInputScale computes K)
//   BWN (binary-weight networks) is XNOR-Net's weights with float inputs.

import { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/engine.js';
import * as ops from '../autograd/index.js';
import { customGrad } from '../autograd/graph.js';
import type { Pool2dOptions } from '../autograd/ops/pool.js';
import {
  type Quantized, type Quantizer, type QuantizerDescription, type Role,
  axesExcept, channelAxis, checkChannels, checkFinite, codesToFloat, meanAbsPerChannel, perChannel,
  straightThrough, toCodes, windowMask,
} from './quantizer.js';
import { SeedStream } from './rounding.js';

export const COURBARIAUX_2015 = 'Courbariaux et al., BinaryConnect, NeurIPS 2015';
export const HUBARA_2016 = 'Hubara et al., Binarized Neural Networks, NeurIPS 2016';
export const RASTEGARI_2016 = 'Rastegari et al., XNOR-Net, ECCV 2016';

/** sign with +1 at 0, as f32 values (no gradient). */
export function binarize(x: Tensor): Tensor {
  return tidy(() => ops.addScalar(ops.mulScalar(ops.step(ops.neg(x), 0), -2), 1));
}

/** +1 with probability clip((x + 1) / 2, 0, 1), else -1 (BinaryConnect eq. 2-3; no gradient). */
export function binarizeStochastic(x: Tensor, seed: number): Tensor {
  return tidy(() => {
    const p = ops.clamp(ops.addScalar(ops.mulScalar(x, 0.5), 0.5), 0, 1);
    const u = ops.randomUniform(x.shape, 0, 1, seed);
    return ops.addScalar(ops.mulScalar(ops.greater(p, u), 2), -1);
  });
}

/** BNN's sign with the hardtanh-window straight-through estimator: q = sign(x), dq/dx = 1_{|x| <= 1}. */
export function steSign(x: Tensor): Tensor {
  return straightThrough('steSign', x, (wantMask) => ({ y: binarize(x), mask: wantMask ? windowMask(x, -1, 1) : null }));
}

/** Clip latent (real-valued) weights to [lo, hi] in place, after an optimizer step (BinaryConnect, BNN). */
export function clipLatentWeights(w: Tensor, lo = -1, hi = 1): void {
  ops.noGrad(() => tidy(() => { w.assign(ops.clamp(w, lo, hi)); }));
}

/** XNOR-Net's alpha = mean |W| per output channel (axis 0). */
export function xnorAlpha(w: Tensor, axis: number | null = 0): number[] {
  return meanAbsPerChannel(w, axis);
}

/**
 * alpha(W) sign(W) with XNOR-Net's gradient (the chain rule through alpha, hardtanh window for sign).
 * alpha is computed from w here; `axis` is the output-channel axis (null: one alpha for the tensor).
 */
export function scaledSign(w: Tensor, axis: number | null = 0, alphaGiven?: readonly number[]): Tensor {
  const a = channelAxis(w, axis, 'xnor');
  const alpha = alphaGiven ?? xnorAlpha(w, a);
  checkChannels(alpha, w, a, 'xnor');
  const alphaT = perChannel(alpha, w.rank, a);
  const trainAlpha = alphaGiven === undefined;
  return customGrad(
    'scaledSign',
    [w],
    () => tidy(() => ops.mul(binarize(w), alphaT)),
    (g) => tidy(() => {
      const b = binarize(w);
      const ste = ops.mul(ops.mul(g, alphaT), windowMask(w, -1, 1));
      if (!trainAlpha) return [ste];
      // d alpha_c / d W_i = sign(W_i) / n, n = elements per channel
      const n = a === null ? w.size : w.size / w.shape[a];
      const gAlpha = ops.sum(ops.mul(g, b), axesExcept(w.rank, a), true);
      return [ops.add(ste, ops.mul(ops.sign(w), ops.mulScalar(gAlpha, 1 / n)))];
    }),
  );
}

/**
 * XNOR-Net's input scale K = A * k: A = mean over channels of |x| ([N, 1, H, W]), averaged over each
 * convolution window (the box filter k, zero padding counted): pass the convolution's kernel, stride
 * (default 1, as a convolution) and padding. Multiply the binary convolution's output by K (and alpha).
 * Differentiable.
 */
export function xnorInputScale(x: Tensor, window: Pool2dOptions): Tensor {
  if (x.rank !== 4) throw new RangeError(`lowbit: xnorInputScale needs an NCHW input, got ${x.describe()}`);
  return xnorBoxFilter(ops.mean(ops.abs(x), 1, true), window);
}

/** K = A * k: the channel mean A of |x| averaged over each convolution window (zeros outside the image). */
export function xnorBoxFilter(A: Tensor, window: Pool2dOptions): Tensor {
  return ops.avgPool2d(A, { ...window, stride: window.stride ?? 1, countIncludePad: true });
}

// ---------------------------------------------------------------------------------------------------------
// Quantizer objects

/** Binary codes (+-1) as i8; dequantize gives +-1 (times alpha for XNOR/BWN). */
function signCodes(x: Tensor): Tensor {
  return tidy(() => toCodes(binarize(x), 'i8'));
}

export type BinaryParams = Record<string, never>;

/** `binary`, `binary:stochastic`: BinaryConnect weights. */
export class BinaryConnectQuantizer implements Quantizer<BinaryParams> {
  readonly bits = 1;
  readonly role: Role;
  readonly seeds: SeedStream;

  constructor(readonly stochastic = false, opts: { role?: Role; seed?: number } = {}) {
    this.role = opts.role ?? 'weight';
    this.seeds = new SeedStream(opts.seed ?? 0);
  }

  get spec(): string {
    return this.stochastic ? 'binary:stochastic' : 'binary';
  }

  params(x: Tensor): BinaryParams {
    checkFinite(x, this.spec);
    return {};
  }

  private forward(x: Tensor): Tensor {
    return this.stochastic ? binarizeStochastic(x, this.seeds.next()) : binarize(x);
  }

  quantize(x: Tensor): Quantized<BinaryParams> {
    checkFinite(x, this.spec);
    return { codes: tidy(() => toCodes(this.forward(x), 'i8')), params: {} };
  }

  dequantize(q: Quantized<BinaryParams>): Tensor {
    return codesToFloat(q.codes);
  }

  fakeQuantize(x: Tensor): Tensor {
    checkFinite(x, this.spec);
    return straightThrough(this.spec, x, () => ({ y: this.forward(x), mask: null }));
  }

  describe(): QuantizerDescription {
    return {
      spec: this.spec,
      name: `BinaryConnect, ${this.stochastic ? 'stochastic' : 'deterministic'} binary weights`,
      technique: 'binary', role: this.role, bits: 1, values: '{-1, +1}', levels: 2, params: 'none',
      paper: COURBARIAUX_2015,
      forward: this.stochastic ? 'q(w) = +1 with probability clip((w+1)/2, 0, 1), else -1' : 'q(w) = +1 if w >= 0 else -1',
      backward: 'dq/dw = 1 (straight-through); latent weights clipped to [-1, 1] after each update',
    };
  }
}

/** `bnn` (weights and activations), and the activations of `xnor`: sign with the hardtanh window. */
export class SignQuantizer implements Quantizer<BinaryParams> {
  readonly bits = 1;
  readonly role: Role;

  constructor(readonly spec: 'bnn' | 'xnor' = 'bnn', opts: { role?: Role } = {}) {
    this.role = opts.role ?? 'activation';
  }

  params(x: Tensor): BinaryParams {
    checkFinite(x, this.spec);
    return {};
  }

  quantize(x: Tensor): Quantized<BinaryParams> {
    checkFinite(x, this.spec);
    return { codes: signCodes(x), params: {} };
  }

  dequantize(q: Quantized<BinaryParams>): Tensor {
    return codesToFloat(q.codes);
  }

  fakeQuantize(x: Tensor): Tensor {
    checkFinite(x, this.spec);
    return steSign(x);
  }

  describe(): QuantizerDescription {
    const xnor = this.spec === 'xnor';
    return {
      spec: this.spec,
      name: xnor ? 'XNOR-Net binary inputs (scaled by K after the convolution)' : `BNN binary ${this.role === 'weight' ? 'weights' : 'activations'}`,
      technique: 'binary', role: this.role, bits: 1, values: '{-1, +1}', levels: 2,
      params: xnor ? 'K = mean_c|I| averaged over each window, applied after the binary convolution' : 'none',
      paper: xnor ? RASTEGARI_2016 : HUBARA_2016,
      forward: 'q(x) = sign(x), +1 at 0',
      backward: 'dq/dx = 1 if |x| <= 1 else 0 (straight-through estimator, hardtanh window)',
    };
  }
}

export interface ScaledBinaryParams {
  /** alpha per output channel (one value when axis is null). */
  alpha: number[];
  axis: number | null;
}

/** `xnor` and `bwn` weights: alpha sign(W), alpha = mean|W| per output channel. */
export class ScaledBinaryQuantizer implements Quantizer<ScaledBinaryParams> {
  readonly bits = 1;
  readonly role: Role;

  constructor(readonly spec: 'xnor' | 'bwn' = 'xnor', readonly axis: number | null = 0, opts: { role?: Role } = {}) {
    this.role = opts.role ?? 'weight';
  }

  params(x: Tensor): ScaledBinaryParams {
    checkFinite(x, this.spec);
    const axis = channelAxis(x, this.axis, this.spec);
    return { alpha: xnorAlpha(x, axis), axis };
  }

  quantize(x: Tensor, params?: ScaledBinaryParams): Quantized<ScaledBinaryParams> {
    const p = params ?? this.params(x);
    if (params) checkFinite(x, this.spec);
    return { codes: signCodes(x), params: { alpha: [...p.alpha], axis: p.axis } };
  }

  dequantize(q: Quantized<ScaledBinaryParams>): Tensor {
    return tidy(() => ops.mul(codesToFloat(q.codes), perChannel(q.params.alpha, q.codes.rank, q.params.axis)));
  }

  /** alpha sign(W) with XNOR-Net's gradient; with given params, alpha is a constant. */
  fakeQuantize(x: Tensor, params?: ScaledBinaryParams): Tensor {
    checkFinite(x, this.spec);
    if (params) return scaledSign(x, params.axis, params.alpha);
    return scaledSign(x, channelAxis(x, this.axis, this.spec));
  }

  describe(): QuantizerDescription {
    return {
      spec: this.spec,
      name: `${this.spec === 'xnor' ? 'XNOR-Net' : 'BWN'} binary weights scaled by alpha per ${this.axis === null ? 'tensor' : 'output channel'}`,
      technique: 'binary', role: this.role, bits: 1, values: '{-alpha_c, +alpha_c}', levels: 2,
      params: 'alpha per output channel (f32)',
      paper: RASTEGARI_2016,
      forward: 'q(W) = alpha_c sign(W), alpha_c = mean |W| over output channel c',
      backward: 'dq/dW_i = alpha_c 1_{|W_i| <= 1} g_i + sign(W_i) (1/n) sum_j g_j sign(W_j) (chain rule through alpha)',
    };
  }
}
