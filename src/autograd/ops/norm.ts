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
    // One pass for the statistics (variance from centred values), one for y = (x - mean) * gamma * invStd + beta.
    const meanT = Tensor.empty([c]), varT = Tensor.empty([c]);
    k.channelMeanVar(x.ptr, n, c, hw, meanT.ptr, varT.ptr);
    mean.set(meanT.toFloat32Array());
    const variance = varT.toFloat32Array();
    varT.dispose();
    const momentum = opts.momentum ?? 0.1;
    const rm = p.runningMean.toFloat32Array(), rv = p.runningVar.toFloat32Array();
    const scale = new Float32Array(c);
    for (let i = 0; i < c; i++) {
      invStd[i] = 1 / Math.sqrt(variance[i] + eps);
      scale[i] = gamma[i] * invStd[i];
      rm[i] = (1 - momentum) * rm[i] + momentum * mean[i];
      rv[i] = (1 - momentum) * rv[i] + momentum * variance[i] * (count / (count - 1)); // unbiased, as PyTorch
    }
    (p.runningMean.view() as Float32Array).set(rm);
    (p.runningVar.view() as Float32Array).set(rv);
    const scaleT = channelTensor(scale);
    const y = Tensor.empty(x.shape);
    k.channelNormalize(x.ptr, meanT.ptr, scaleT.ptr, p.beta.ptr, y.ptr, n, c, hw);

    return record('batchNorm', y, [x, p.gamma, p.beta], (g) => {
      // With xhat = (x - mean) * invStd (recomputed from x rather than stored):
      //   dbeta = sum g;  dgamma = sum g * xhat;  dx = gamma * invStd / M * (M g - dbeta - xhat * dgamma)
      // so dx = a g + b (x - mean) + d with a = gamma * invStd, b = -a * invStd * dgamma / M, d = -a * dbeta / M.
      const dbeta = Tensor.empty([c]), sumGXc = Tensor.empty([c]);
      k.batchNormBackwardSums(g.ptr, x.ptr, meanT.ptr, n, c, hw, dbeta.ptr, sumGXc.ptr);
      const db = dbeta.toFloat32Array(), dgm = sumGXc.toFloat32Array().map((v, i) => v * invStd[i]);
      sumGXc.dispose();
      const b = new Float32Array(c), d = new Float32Array(c);
      for (let i = 0; i < c; i++) {
        b[i] = (-scale[i] * invStd[i] * dgm[i]) / count;
        d[i] = (-scale[i] * db[i]) / count;
      }
      const dgamma = channelTensor(dgm), bT = channelTensor(b), dT = channelTensor(d);
      const dx = Tensor.empty(x.shape);
      k.batchNormBackwardInput(g.ptr, x.ptr, meanT.ptr, scaleT.ptr, bT.ptr, dT.ptr, dx.ptr, n, c, hw);
      bT.dispose();
      dT.dispose();
      return [dx, dgamma, dbeta];
    });
  }

  // Evaluation: y = x * scale + shift with the running statistics.
  const rmT = channelTensor(p.runningMean.toFloat32Array()); // the statistics this forward used
  const { scale, shift } = batchNormEvalAffine(p, eps);
  invStd.set(batchNormInvStd(p, eps));
  const scaleT = channelTensor(scale), shiftT = channelTensor(shift);
  const y = Tensor.empty(x.shape);
  k.channelAffine(x.ptr, scaleT.ptr, shiftT.ptr, y.ptr, n, c, hw);
  return record('batchNorm', y, [x, p.gamma, p.beta], (g) => {
    const dx = Tensor.empty(x.shape);
    k.channelAffine(g.ptr, scaleT.ptr, 0, dx.ptr, n, c, hw);
    // dgamma = sum g * (x - mean) * invStd, summed from centred values
    const sg = Tensor.empty([c]), sgx = Tensor.empty([c]);
    k.batchNormBackwardSums(g.ptr, x.ptr, rmT.ptr, n, c, hw, sg.ptr, sgx.ptr);
    const dgamma = channelTensor(sgx.toFloat32Array().map((v, i) => v * invStd[i]));
    sgx.dispose();
    return [dx, dgamma, sg];
  });
}
