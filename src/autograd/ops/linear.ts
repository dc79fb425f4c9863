// Differentiable matrix products: matmul (2-D, or batched over leading dims) and linear (x W^T + b).

import { engine } from '../../tensor/engine.js';
import { Tensor, formatShape } from '../../tensor/tensor.js';
import type { Ptr } from '../../kernels/memory.js';
import { record, tracksGrad } from '../graph.js';
import { sumToShape } from './broadcast.js';

/** c = op(a) op(b) on pointers (dense row-major operands), handling the empty cases. */
function gemmInto(c: Ptr, a: Ptr, b: Ptr, transA: boolean, transB: boolean, m: number, n: number, k: number, accumulate = false): void {
  const lda = transA ? m : k, ldb = transB ? k : n;
  if (m === 0 || n === 0) return;
  if (k === 0) {
    if (!accumulate) engine.kernels.fill(c, m * n, 0);
    return;
  }
  engine.kernels.gemm(transA, transB, m, n, k, a, lda, b, ldb, c, n, accumulate);
}

/** a [M, K] x b [K, N] -> [M, N]; with leading batch dims on both (equal), a batched product. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.rank < 2 || b.rank < 2 || a.rank !== b.rank || a.shape[a.rank - 1] !== b.shape[b.rank - 2] ||
      a.shape.slice(0, -2).some((d, i) => d !== b.shape[i])) {
    throw new RangeError(`lowbit: matmul: shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} do not multiply`);
  }
  const m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], n = b.shape[b.rank - 1];
  const batch = a.size / (m * k);
  const out = Tensor.empty([...a.shape.slice(0, -2), m, n]);
  const eachBatch = (fn: (i: number) => void) => { for (let i = 0; i < batch; i++) fn(i); };
  // Pointer to matrix i of a batch of rows x cols matrices.
  const at = (t: Tensor, i: number, rows: number, cols: number) => t.ptr + i * rows * cols * 4;
  eachBatch((i) => gemmInto(at(out, i, m, n), at(a, i, m, k), at(b, i, k, n), false, false, m, n, k));
  return record('matmul', out, [a, b], (g) => {
    const da = Tensor.empty(a.shape), db = Tensor.empty(b.shape);
    eachBatch((i) => {
      gemmInto(at(da, i, m, k), at(g, i, m, n), at(b, i, k, n), false, true, m, k, n); // dA = dC B^T
      gemmInto(at(db, i, k, n), at(a, i, m, k), at(g, i, m, n), true, false, k, n, m); // dB = A^T dC
    });
    return [da, db];
  });
}

/** y = x W^T + b for x [N, in], weight [out, in], bias [out]. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  if (x.rank !== 2 || weight.rank !== 2 || x.shape[1] !== weight.shape[1]) {
    throw new RangeError(`lowbit: linear: input ${formatShape(x.shape)} and weight ${formatShape(weight.shape)} do not match (need [N, in] and [out, in])`);
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== weight.shape[0])) {
    throw new RangeError(`lowbit: linear: bias ${formatShape(bias.shape)} does not match ${weight.shape[0]} outputs`);
  }
  const [n, inF] = x.shape, outF = weight.shape[0];
  const y = Tensor.empty([n, outF]);
  if (bias) {
    engine.kernels.copy(4, bias.ptr, [0, 1], y.ptr, [outF, 1], [n, outF]);
    gemmInto(y.ptr, x.ptr, weight.ptr, false, true, n, outF, inF, true);
  } else {
    gemmInto(y.ptr, x.ptr, weight.ptr, false, true, n, outF, inF);
  }
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record('linear', y, inputs, (g) => {
    let dx: Tensor | null = null;
    if (tracksGrad(x)) {
      dx = Tensor.empty(x.shape);
      gemmInto(dx.ptr, g.ptr, weight.ptr, false, false, n, inF, outF); // dX = dY W
    }
    const dw = Tensor.empty(weight.shape);
    gemmInto(dw.ptr, g.ptr, x.ptr, true, false, outF, inF, n); // dW = dY^T X
    return bias ? [dx, dw, sumToShape(g, bias.shape)] : [dx, dw];
  });
}
