// Ternary weights: TWN and TTQ.
//
// TWN: Li & Liu, "Ternary Weight Networks", 2016 (arXiv 1605.04711), eqs. (5)-(7):
//   t_i = +1 if W_i > Delta,  -1 if W_i < -Delta,  0 otherwise
//   Delta = 0.7 E(|W|) = 0.7 / n sum |W_i|                 (the approximation of the optimal threshold)
//   alpha = 1 / |I_Delta| sum_{i in I_Delta} |W_i|,  I_Delta = {i : |W_i| > Delta}
//   q(W) = alpha t;   dq/dW = 1 (the gradient with respect to the ternary weights updates the float ones)
//   per layer in the paper; per output channel as an option.
//
// TTQ: Zhu, Han, Mao & Dally, "Trained Ternary Quantization", ICLR 2017, eqs. (6)-(8):
//   Delta = t max|W~| (t = 0.05 by default)
//   W^t = W^p if W~ > Delta,  -W^n if W~ < -Delta,  0 otherwise     (W^p, W^n > 0 learned per layer)
//   dL/dW^p = sum_{i in I_p} dL/dW^t_i,    dL/dW^n = - sum_{i in I_n} dL/dW^t_i
//   dL/dW~_i = W^p dL/dW^t_i (i in I_p),   dL/dW^t_i (i in I_z),   W^n dL/dW^t_i (i in I_n)
// The paper prints eq. (7) for W^n without the minus sign; since W^t = -W^n on I_n the derivative carries it
// (as the authors' TensorFlow code computes). Both scale gradients are true gradients of the forward rule;
// the latent gradient (eq. 8) is an estimator. W^p and W^n start at the mean |W| of their parts (the paper's
// code starts from 1 with weights scaled to [-1, 1]; the mean keeps the initial ternary layer close to the float
// one).

import { Tensor } from '../tensor/tensor.js';
import { tidy, keep } from '../tensor/engine.js';
import * as ops from '../autograd/index.js';
import { customGrad } from '../autograd/graph.js';
import { LowbitError } from '../errors.js';
import {
  type Quantized, type Quantizer, type QuantizerDescription, type Role,
  axesExcept, channelAxis, checkChannels, checkFinite, codesToFloat, maxAbsPerChannel, meanAbsPerChannel,
  perChannel, straightThrough, toCodes,
} from './quantizer.js';

export const LI_LIU_2016 = 'Li & Liu, Ternary Weight Networks, arXiv 2016';
export const ZHU_2017 = 'Zhu et al., Trained Ternary Quantization, ICLR 2017';

/** t = [w > delta] - [w < -delta] as f32 values (delta a number or a broadcastable tensor). No gradient. */
export function ternarize(w: Tensor, delta: number | Tensor): Tensor {
  return tidy(() => {
    const d = typeof delta === 'number' ? Tensor.scalar(delta) : delta;
    return ops.sub(ops.greater(w, d), ops.greater(ops.neg(w), d));
  });
}

/** TWN's Delta = 0.7 mean|W| per channel of axis (one value when axis is null). */
export function twnThreshold(w: Tensor, axis: number | null = null): number[] {
  return meanAbsPerChannel(w, axis).map((m) => Math.fround(0.7 * m));
}

/** TWN's alpha = mean of |W| over |W| > Delta, per channel (0 where no weight passes the threshold). */
export function twnAlpha(w: Tensor, delta: readonly number[], axis: number | null = null): number[] {
  return tidy(() => {
    const above = ops.greater(ops.abs(w), perChannel(delta, w.rank, axis));
    const axes = axesExcept(w.rank, axis);
    const sums = ops.sum(ops.mul(ops.abs(w), above), axes).toFloat32Array();
    const counts = ops.sum(above, axes).toFloat32Array();
    return Array.from(sums, (s, i) => (counts[i] > 0 ? Math.fround(s / counts[i]) : 0));
  });
}

export interface TwnParams {
  delta: number[];
  alpha: number[];
  axis: number | null;
}

/** `twn` (per layer, as the paper) and `twn:per-channel`. */
export class TwnQuantizer implements Quantizer<TwnParams> {
  readonly bits = 2;
  readonly role: Role;

  constructor(readonly axis: number | null = null, opts: { role?: Role } = {}) {
    this.role = opts.role ?? 'weight';
  }

  get spec(): string {
    return this.axis === null ? 'twn' : 'twn:per-channel';
  }

  params(x: Tensor): TwnParams {
    checkFinite(x, this.spec);
    const axis = channelAxis(x, this.axis, this.spec);
    const delta = twnThreshold(x, axis);
    return { delta, alpha: twnAlpha(x, delta, axis), axis };
  }

  private resolve(x: Tensor, params?: TwnParams): TwnParams {
    if (!params) return this.params(x);
    checkFinite(x, this.spec);
    checkChannels(params.delta, x, params.axis, this.spec);
    checkChannels(params.alpha, x, params.axis, this.spec);
    return params;
  }

  quantize(x: Tensor, params?: TwnParams): Quantized<TwnParams> {
    const p = this.resolve(x, params);
    const codes = tidy(() => toCodes(ternarize(x, perChannel(p.delta, x.rank, p.axis)), 'i8'));
    return { codes, params: { delta: [...p.delta], alpha: [...p.alpha], axis: p.axis } };
  }

  dequantize(q: Quantized<TwnParams>): Tensor {
    return tidy(() => ops.mul(codesToFloat(q.codes), perChannel(q.params.alpha, q.codes.rank, q.params.axis)));
  }

  fakeQuantize(x: Tensor, params?: TwnParams): Tensor {
    const p = this.resolve(x, params);
    return straightThrough(this.spec, x, () => ({
      y: ops.mul(ternarize(x, perChannel(p.delta, x.rank, p.axis)), perChannel(p.alpha, x.rank, p.axis)),
      mask: null,
    }));
  }

  describe(): QuantizerDescription {
    return {
      spec: this.spec,
      name: `TWN ternary weights, alpha and Delta per ${this.axis === null ? 'layer' : 'output channel'}`,
      technique: 'ternary', role: this.role, bits: 2, values: '{-alpha, 0, +alpha}', levels: 3,
      params: 'alpha (f32) and Delta per ' + (this.axis === null ? 'layer' : 'output channel'),
      paper: LI_LIU_2016,
      forward: 'q(W) = alpha t, t = [W > Delta] - [W < -Delta], Delta = 0.7 mean|W|, alpha = mean_{|W| > Delta} |W|',
      backward: 'dq/dW = 1 (straight-through)',
    };
  }
}

// ---------------------------------------------------------------------------------------------------------
// TTQ

export interface TtqParams {
  /** Threshold factor: Delta = t max|W|. */
  t: number;
  /** Learned positive scale W^p (a scalar tensor, requiresGrad). */
  wp: Tensor;
  /** Learned negative scale W^n (a scalar tensor, requiresGrad). */
  wn: Tensor;
}

/** TTQ's threshold Delta = t max|W| (f32). */
export function ttqThreshold(w: Tensor, t: number): number {
  return Math.fround(t * maxAbsPerChannel(w, null)[0]);
}

/**
 * TTQ's ternary weights W^t with the paper's gradients to the latent weights w and the scales wp, wn
 * (scalar tensors).
 */
export function ttqTernarize(w: Tensor, wp: Tensor, wn: Tensor, delta: number): Tensor {
  if (wp.size !== 1 || wn.size !== 1) throw new LowbitError(`ttq: W^p and W^n are one number per layer, got ${wp.describe()} and ${wn.describe()}`);
  let pos: Tensor | null = null, neg: Tensor | null = null;
  return customGrad(
    'ttq',
    [w, wp, wn],
    () => {
      const r = tidy(() => {
        const p = ops.step(w, delta), n = ops.step(ops.neg(w), delta);
        return { p, n, y: ops.sub(ops.mul(p, wp), ops.mul(n, wn)) };
      });
      pos = r.p;
      neg = r.n;
      return r.y;
    },
    (g) => tidy(() => {
      const p = pos!, n = neg!;
      const zero = ops.addScalar(ops.neg(ops.add(p, n)), 1);
      const scale = ops.add(ops.add(ops.mul(p, wp), ops.mul(n, wn)), zero);
      const gw = ops.mul(g, scale);
      const gwp = ops.sum(ops.mul(g, p)).reshapeView(wp.shape);
      const gwn = ops.neg(ops.sum(ops.mul(g, n))).reshapeView(wn.shape);
      return [gw, gwp, gwn];
    }),
  );
}

/** `ttq` or `ttq:<t>` (threshold factor, default 0.05). */
export class TtqQuantizer implements Quantizer<TtqParams> {
  readonly bits = 2;
  readonly role: Role;

  constructor(readonly t = 0.05, opts: { role?: Role } = {}) {
    if (!(t > 0 && t < 1)) throw new LowbitError(`ttq: the threshold factor t must be in (0, 1), got ${t}; the paper uses 0.05`);
    this.role = opts.role ?? 'weight';
  }

  get spec(): string {
    return this.t === 0.05 ? 'ttq' : `ttq:${this.t}`;
  }

  /**
   * New learnable scales for weights x: W^p and W^n = mean |W| over the positive and negative parts (scalar
   * tensors with requiresGrad, kept beyond tidy scopes: give them to the optimizer, dispose them with the layer).
   */
  params(x: Tensor): TtqParams {
    checkFinite(x, this.spec);
    const delta = ttqThreshold(x, this.t);
    const [mp, mn] = tidy(() => {
      const p = ops.step(x, delta), n = ops.step(ops.neg(x), delta);
      const mean = (m: Tensor) => {
        const c = ops.sum(m).item();
        return c > 0 ? ops.sum(ops.mul(ops.abs(x), m)).item() / c : 1;
      };
      return [mean(p), mean(n)];
    });
    const wp = keep(Tensor.from([mp], [1]));
    const wn = keep(Tensor.from([mn], [1]));
    wp.requiresGrad = wn.requiresGrad = true;
    if (x.name) {
      wp.name = `${x.name}.ttq_wp`;
      wn.name = `${x.name}.ttq_wn`;
    }
    return { t: this.t, wp, wn };
  }

  quantize(x: Tensor, params?: TtqParams): Quantized<TtqParams> {
    const p = params ?? this.params(x);
    if (params) checkFinite(x, this.spec);
    const codes = tidy(() => toCodes(ternarize(x, ttqThreshold(x, p.t)), 'i8'));
    return { codes, params: p };
  }

  dequantize(q: Quantized<TtqParams>): Tensor {
    return tidy(() => {
      const c = codesToFloat(q.codes);
      return ops.sub(ops.mul(ops.relu(c), q.params.wp), ops.mul(ops.relu(ops.neg(c)), q.params.wn));
    });
  }

  fakeQuantize(x: Tensor, params?: TtqParams): Tensor {
    const p = params ?? this.params(x);
    if (params) checkFinite(x, this.spec);
    return ttqTernarize(x, p.wp, p.wn, ttqThreshold(x, p.t));
  }

  describe(): QuantizerDescription {
    return {
      spec: this.spec,
      name: `TTQ ternary weights with learned scales W^p, W^n per layer, threshold ${this.t} max|W|`,
      technique: 'ternary', role: this.role, bits: 2, values: '{-W^n, 0, +W^p}', levels: 3,
      params: 'W^p and W^n per layer (f32, trained)',
      paper: ZHU_2017,
      forward: `q(W) = W^p [W > Delta] - W^n [W < -Delta], Delta = ${this.t} max|W|`,
      backward: 'dL/dW^p = sum_{I_p} g, dL/dW^n = -sum_{I_n} g; dL/dW = W^p g on I_p, g on I_z, W^n g on I_n',
    };
  }
}
