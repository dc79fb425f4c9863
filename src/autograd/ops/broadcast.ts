// Broadcasting (NumPy rules) and the reduction of a broadcast gradient back to its input's shape.

import { engine } from '../../tensor/engine.js';
import { Tensor, formatShape, type Shape } from '../../tensor/tensor.js';
import { contiguousStrides } from '../graph.js';

export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(`lowbit: ${op}: shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides that read a contiguous tensor of `shape` as if it had `outShape` (0 on broadcast dims). */
export function broadcastStrides(shape: Shape, outShape: Shape): number[] {
  const own = contiguousStrides(shape);
  const rank = outShape.length;
  const s = new Array<number>(rank).fill(0);
  for (let i = 0; i < shape.length; i++) {
    const j = rank - shape.length + i;
    s[j] = shape[i] === 1 && outShape[j] !== 1 ? 0 : own[i];
  }
  return s;
}

/** Merge adjacent dims that are contiguous in every operand, so kernels see the fewest, longest loops. */
export function collapseDims(shape: number[], ...strides: number[][]): [number[], number[][]] {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1 && shape.length > 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, k) => outStrides[k][last] === s[d] * shape[d])) {
      outShape[last] *= shape[d];
      strides.forEach((s, k) => (outStrides[k][last] = s[d]));
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, k) => outStrides[k].push(s[d]));
    }
  }
  if (outShape.length === 0) return [[1], strides.map(() => [1])];
  return [outShape, outStrides];
}

/** Sum `g` over the dimensions along which `shape` was broadcast to g's shape; returns a tensor of `shape`. */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const k = engine.kernels;
  let cur = g;
  let curShape = [...g.shape];
  // Leading dims that `shape` lacks, then dims where it has 1: reduce each as [outer, r, inner].
  const lead = curShape.length - shape.length;
  const target = [...new Array<number>(lead).fill(1), ...shape];
  for (let d = 0; d < curShape.length; d++) {
    if (target[d] === 1 && curShape[d] !== 1) {
      const outer = curShape.slice(0, d).reduce((p, x) => p * x, 1);
      const inner = curShape.slice(d + 1).reduce((p, x) => p * x, 1);
      const nextShape = [...curShape];
      nextShape[d] = 1;
      const next = Tensor.empty(nextShape);
      k.reduce('sum', cur.ptr, next.ptr, outer, curShape[d], inner);
      if (cur !== g) cur.dispose();
      cur = next;
      curShape = nextShape;
    }
  }
  if (cur === g) return g.reshapeView(shape);
  const out = cur.reshapeView(shape);
  cur.dispose();
  return out;
}
