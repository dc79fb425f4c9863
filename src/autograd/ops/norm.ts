// Differentiable batch normalization over NCHW (or [N, C]) in training and evaluation mode
// (Ioffe & Szegedy 2015). Per-channel arithmetic on C values happens in JavaScript; every loop over the
// N*C*H*W elements is a kernel.

import { engine } from '../../tensor/engine.js';
import { Tensor, formatShape } from '../../tensor/tensor.js';
import { record } from '../graph.js';

export interface BatchNormState {
  gamma: Tensor;
  beta: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
}

export interface BatchNormOptions {
  training: boolean;
  /** Weight of the new batch in the running statistics (PyTorch's convention). */
  momentum?: number;
  eps?: number;
}

function channelTensor(values: Float32Array): Tensor {
  return Tensor.from(values, [values.length]);
}

function batchNormInvStd(p: BatchNormState, eps: number): Float32Array {
  return p.runningVar.toFloat32Array().map((v) => 1 / Math.sqrt(v + eps));
}

/**
 * Batch norm in evaluation as y = scale x + shift per channel, in the f32 values the op itself uses (the
 * runtime folds and applies exactly these).
 */
export function batchNormEvalAffine(p: BatchNormState, eps = 1e-5): { scale: Float32Array; shift: Float32Array } {
  const gamma = p.gamma.toFloat32Array(), beta = p.beta.toFloat32Array(), rm = p.runningMean.toFloat32Array();
  const invStd = batchNormInvStd(p, eps);
  const scale = gamma.map((g, i) => g * invStd[i]);
  const shift = beta.map((b, i) => b - rm[i] * scale[i]);
  return { scale, shift };
}

export function batchNorm(x: Tensor, p: BatchNormState, opts: BatchNormOptions): Tensor {
  if (x.rank !== 4 && x.rank !== 2) throw new RangeError(`lowbit: batchNorm needs [N, C, H, W] or [N, C], got ${formatShape(x.shape)}`);
  const n = x.shape[0], c = x.shape[1], hw = x.rank === 4 ? x.shape[2] * x.shape[3] : 1;
  if (p.gamma.size !== c || p.beta.size !== c || p.runningMean.size !== c || p.runningVar.size !== c) {
    throw new RangeError(`lowbit: batchNorm: input ${formatShape(x.shape)} has ${c} channels but the parameters have ${p.gamma.size}`);
  }
  const eps = opts.eps ?? 1e-5;
  const k = engine.kernels;
  const gamma = p.gamma.toFloat32Array(), beta = p.beta.toFloat32Array();
  const count = n * hw;
  const mean = new Float32Array(c), invStd = new Float32Array(c);

  if (opts.training) {
    if (count < 2) throw new RangeError(`lowbit: batchNorm in training needs more than one value per channel, got ${formatShape(x.shape)}`);
    const sums = Tensor.empty([c]);
    k.channelSums(x.ptr, 0, n, c, hw, sums.ptr, 0);
    const s = sums.toFloat32Array();
    for (let i = 0; i < c; i++) mean[i] = s[i] / count;
    // Two passes (centre, then square) keep the variance accurate when |mean| >> std.
    const centred = Tensor.empty(x.shape);
    const negMean = channelTensor(mean.map((m) => -m)), ones = channelTensor(new Float32Array(c).fill(1));
    k.channelAffine(x.ptr, ones.ptr, negMean.ptr, centred.ptr, n, c, hw);
    const sq = Tensor.empty([c]);
    k.channelSums(centred.ptr, 0, n, c, hw, sums.ptr, sq.ptr);
    const sqv = sq.toFloat32Array();
    const momentum = opts.momentum ?? 0.1;
    const rm = p.runningMean.view() as Float32Array;
    const rmCopy = rm.slice();
    const rv = (p.runningVar.view() as Float32Array).slice();
    for (let i = 0; i < c; i++) {
      const variance = sqv[i] / count;
      invStd[i] = 1 / Math.sqrt(variance + eps);
      rmCopy[i] = (1 - momentum) * rmCopy[i] + momentum * mean[i];
      rv[i] = (1 - momentum) * rv[i] + momentum * variance * (count / (count - 1)); // unbiased, as PyTorch
    }
    (p.runningMean.view() as Float32Array).set(rmCopy);
    (p.runningVar.view() as Float32Array).set(rv);
    const xhat = Tensor.empty(x.shape);
    const invStdT = channelTensor(invStd);
    k.channelAffine(centred.ptr, invStdT.ptr, 0, xhat.ptr, n, c, hw);
    const y = Tensor.empty(x.shape);
    k.channelAffine(xhat.ptr, p.gamma.ptr, p.beta.ptr, y.ptr, n, c, hw);
    for (const t of [sums, negMean, ones, sq, centred]) t.dispose();

    return record('batchNorm', y, [x, p.gamma, p.beta], (g) => {
      // dbeta = sum g;  dgamma = sum g * xhat;
      // dx = gamma * invStd / M * (M g - dbeta - xhat * dgamma)
      const dbeta = Tensor.empty([c]), dgamma = Tensor.empty([c]);
      k.channelSums(g.ptr, xhat.ptr, n, c, hw, dbeta.ptr, dgamma.ptr);
      const db = dbeta.toFloat32Array(), dgm = dgamma.toFloat32Array();
      const scale = new Float32Array(c), shift = new Float32Array(c), xhatScale = new Float32Array(c);
      for (let i = 0; i < c; i++) {
        scale[i] = gamma[i] * invStd[i];
        shift[i] = (-scale[i] * db[i]) / count;
        xhatScale[i] = (-scale[i] * dgm[i]) / count;
      }
      const dx = Tensor.empty(x.shape), tmp = Tensor.empty(x.shape);
      const scaleT = channelTensor(scale), shiftT = channelTensor(shift), xsT = channelTensor(xhatScale);
      k.channelAffine(g.ptr, scaleT.ptr, shiftT.ptr, dx.ptr, n, c, hw);
      k.channelAffine(xhat.ptr, xsT.ptr, 0, tmp.ptr, n, c, hw);
      const strides = [1];
      k.binary('add', dx.ptr, strides, tmp.ptr, strides, dx.ptr, [dx.size]);
      for (const t of [tmp, scaleT, shiftT, xsT]) t.dispose();
      return [dx, dgamma, dbeta];
    });
  }

  // Evaluation: y = x * scale + shift with the running statistics.
  const rm = p.runningMean.toFloat32Array();
  const { scale, shift } = batchNormEvalAffine(p, eps);
  invStd.set(batchNormInvStd(p, eps));
  const scaleT = channelTensor(scale), shiftT = channelTensor(shift);
  const y = Tensor.empty(x.shape);
  k.channelAffine(x.ptr, scaleT.ptr, shiftT.ptr, y.ptr, n, c, hw);
  return record('batchNorm', y, [x, p.gamma, p.beta], (g) => {
    const dx = Tensor.empty(x.shape);
    k.channelAffine(g.ptr, scaleT.ptr, 0, dx.ptr, n, c, hw);
    // dgamma = sum g * (x - mean) * invStd = (sum g*x - mean * sum g) * invStd
    const sg = Tensor.empty([c]), sgx = Tensor.empty([c]);
    k.channelSums(g.ptr, x.ptr, n, c, hw, sg.ptr, sgx.ptr);
    const a = sg.toFloat32Array(), b = sgx.toFloat32Array();
    const dgamma = channelTensor(a.map((s, i) => (b[i] - rm[i] * s) * invStd[i]));
    return [dx, dgamma, sg];
  });
}
