// Differentiable reductions over any set of axes.

import { engine } from '../../tensor/engine.js';
import { Tensor, formatShape, type Shape } from '../../tensor/tensor.js';
import type { ReduceOp } from '../../kernels/types.js';
import { record } from '../graph.js';
import { broadcastStrides, collapseDims } from './broadcast.js';
import { equal, mul, div } from './elementwise.js';

/** Normalize axes (negative allowed; undefined = all) to sorted unique non-negative ints. */
export function normalizeAxes(op: string, shape: Shape, axes?: number | number[]): number[] {
  const list = axes === undefined ? shape.map((_, i) => i) : Array.isArray(axes) ? axes : [axes];
  const out = list.map((a) => {
    const r = a < 0 ? a + shape.length : a;
    if (!Number.isInteger(r) || r < 0 || r >= shape.length) {
      throw new RangeError(`lowbit: ${op}: axis ${a} out of range for shape ${formatShape(shape)}`);
    }
    return r;
  });
  return [...new Set(out)].sort((x, y) => x - y);
}

function reducedShape(shape: Shape, axes: number[], keepDims: boolean): number[] {
  return keepDims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

/** Reduce x over axes with one kernel call per run of adjacent axes. Returns shape with kept (size-1) dims. */
function reduceRaw(op: ReduceOp, x: Tensor, axes: number[]): Tensor {
  let cur = x;
  let shape = [...x.shape];
  // Go from the last axis down so that earlier axis indices stay valid.
  for (let i = axes.length - 1; i >= 0; ) {
    let j = i;
    while (j > 0 && axes[j - 1] === axes[j] - 1) j--;
    const first = axes[j], last = axes[i];
    const outer = shape.slice(0, first).reduce((p, d) => p * d, 1);
    const r = shape.slice(first, last + 1).reduce((p, d) => p * d, 1);
    const inner = shape.slice(last + 1).reduce((p, d) => p * d, 1);
    const nextShape = shape.map((d, k) => (k >= first && k <= last ? 1 : d));
    const next = Tensor.empty(nextShape);
    engine.kernels.reduce(op, cur.ptr, next.ptr, outer, r, inner);
    if (cur !== x) cur.dispose();
    cur = next;
    shape = nextShape;
    i = j - 1;
  }
  return cur === x ? Tensor.empty(shape).assign(x) : cur;
}

/** Broadcast g (of x's shape with reduced dims kept as 1) to x's full shape. */
function expandTo(g: Tensor, shape: Shape): Tensor {
  const out = Tensor.empty(shape);
  const [cs, [sg, so]] = collapseDims([...shape], broadcastStrides(g.shape, shape), broadcastStrides(shape, shape));
  engine.kernels.copy(4, g.ptr, sg, out.ptr, so, cs);
  return out;
}

export function sum(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const ax = normalizeAxes('sum', x.shape, axes);
  const kept = reduceRaw('sum', x, ax);
  const out = keepDims ? kept : reshapeNoGrad(kept, reducedShape(x.shape, ax, false));
  return record('sum', out, [x], (g) => [expandTo(g.reshapeView(kept.shape), x.shape)]);
}

export function mean(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const ax = normalizeAxes('mean', x.shape, axes);
  const count = ax.reduce((p, a) => p * x.shape[a], 1);
  const kept = reduceRaw('sum', x, ax);
  engine.kernels.unary('affine', kept.ptr, kept.ptr, kept.size, 1 / count, 0);
  const out = keepDims ? kept : reshapeNoGrad(kept, reducedShape(x.shape, ax, false));
  return record('mean', out, [x], (g) => {
    const dx = expandTo(g.reshapeView(kept.shape), x.shape);
    engine.kernels.unary('affine', dx.ptr, dx.ptr, dx.size, 1 / count, 0);
    return [dx];
  });
}

function extremum(op: 'max' | 'min', x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const ax = normalizeAxes(op, x.shape, axes);
  const kept = reduceRaw(op, x, ax); // stays alive: the backward rule compares x with it
  const out = keepDims ? kept : kept.reshapeView(reducedShape(x.shape, ax, false));
  // The gradient is shared equally by the elements that attain the extremum.
  return record(op, out, [x], (g) => {
    const mask = equal(x, kept);
    const ties = reduceRaw('sum', mask, ax);
    return [mul(mask, div(g.reshapeView(kept.shape), ties))];
  });
}

export const max = (x: Tensor, axes?: number | number[], keepDims = false) => extremum('max', x, axes, keepDims);
export const min = (x: Tensor, axes?: number | number[], keepDims = false) => extremum('min', x, axes, keepDims);

/** Index of the maximum along one axis (i32, first on ties). */
export function argmax(x: Tensor, axis = -1): Tensor {
  const [a] = normalizeAxes('argmax', x.shape, axis);
  const outer = x.shape.slice(0, a).reduce((p, d) => p * d, 1);
  const inner = x.shape.slice(a + 1).reduce((p, d) => p * d, 1);
  const out = Tensor.empty(x.shape.filter((_, i) => i !== a), 'i32');
  engine.kernels.argmax(x.ptr, out.ptr, outer, x.shape[a], inner);
  return out;
}

function reshapeNoGrad(t: Tensor, shape: number[]): Tensor {
  const v = t.reshapeView(shape);
  t.dispose();
  return v;
}
