// Softmax, log-softmax (last axis), cross-entropy from logits, and dropout.

import { engine } from '../../tensor/engine.js';
import { Tensor, formatShape } from '../../tensor/tensor.js';
import { record } from '../graph.js';
import { mul, mulScalar } from './elementwise.js';
import { sum } from './reduce.js';

function rowsCols(op: string, x: Tensor): [number, number] {
  if (x.rank < 1) throw new RangeError(`lowbit: ${op} of a scalar`);
  const cols = x.shape[x.rank - 1];
  return [x.size / Math.max(cols, 1), cols];
}

function softmaxOp(x: Tensor, log: boolean): Tensor {
  const op = log ? 'logSoftmax' : 'softmax';
  const [rows, cols] = rowsCols(op, x);
  const k = engine.kernels;
  const y = Tensor.empty(x.shape);
  k.softmax(x.ptr, y.ptr, rows, cols, log);
  return record(op, y, [x], (g) => {
    const dx = Tensor.empty(x.shape);
    k.softmaxBackward(y.ptr, g.ptr, dx.ptr, rows, cols, log);
    return [dx];
  });
}

/** Softmax over the last axis. */
export const softmax = (x: Tensor) => softmaxOp(x, false);
/** log(softmax(x)) over the last axis, computed stably. */
export const logSoftmax = (x: Tensor) => softmaxOp(x, true);

/** One-hot rows for integer labels: [N] i32 -> [N, classes] f32. */
export function oneHot(labels: Tensor, classes: number): Tensor {
  if (labels.rank !== 1 || labels.dtype !== 'i32') throw new TypeError(`lowbit: oneHot needs i32 labels of shape [N], got ${labels.describe()}`);
  const out = Tensor.zeros([labels.size, classes]);
  const l = labels.view(), f = out.view();
  for (let i = 0; i < l.length; i++) {
    if (!(l[i] >= 0 && l[i] < classes)) throw new RangeError(`lowbit: label ${l[i]} at row ${i} is outside [0, ${classes})`);
    f[i * classes + l[i]] = 1;
  }
  return out;
}

/** Mean cross-entropy of logits [N, C] against i32 labels [N]. */
export function crossEntropy(logits: Tensor, labels: Tensor): Tensor {
  if (logits.rank !== 2 || labels.rank !== 1 || labels.shape[0] !== logits.shape[0]) {
    throw new RangeError(`lowbit: crossEntropy needs logits [N, C] and labels [N], got ${formatShape(logits.shape)} and ${formatShape(labels.shape)}`);
  }
  const target = oneHot(labels, logits.shape[1]);
  return mulScalar(sum(mul(logSoftmax(logits), target)), -1 / logits.shape[0]);
}

/**
 * Inverted dropout: in training, zero each element with probability p and scale the rest by 1/(1-p).
 * The mask comes from a counter-based generator keyed by `seed`, so a run is reproducible.
 */
export function dropout(x: Tensor, p: number, training: boolean, seed: number): Tensor {
  if (!(p >= 0 && p < 1)) throw new RangeError(`lowbit: dropout probability ${p} is outside [0, 1)`);
  if (!training || p === 0) return x;
  const mask = Tensor.empty(x.shape);
  engine.kernels.dropoutMask(mask.ptr, x.size, p, seed >>> 0);
  const y = Tensor.empty(x.shape);
  const s = [1];
  engine.kernels.binary('mul', x.ptr, s, mask.ptr, s, y.ptr, [x.size]);
  return record('dropout', y, [x], (g) => {
    const dx = Tensor.empty(x.shape);
    engine.kernels.binary('mul', g.ptr, s, mask.ptr, s, dx.ptr, [x.size]);
    return [dx];
  });
}

/** Uniform random values in [lo, hi) from the counter-based generator keyed by `seed` (no gradient). */
export function randomUniform(shape: readonly number[], lo: number, hi: number, seed: number): Tensor {
  const t = Tensor.empty(shape);
  engine.kernels.randomUniform(t.ptr, t.size, lo, hi, seed >>> 0);
  return t;
}
