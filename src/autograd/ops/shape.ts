// Differentiable shape ops: reshape, flatten, permute/transpose, slice, concat, pad, broadcastTo.
// All but reshape copy through the strided copy kernel.

import { engine } from '../../tensor/engine.js';
import { Tensor, formatShape, shapeSize, BYTES_PER_ELEMENT, type Shape } from '../../tensor/tensor.js';
import { record, contiguousStrides } from '../graph.js';
import { broadcastShapes, broadcastStrides, collapseDims, sumToShape } from './broadcast.js';

function elemBytes(t: Tensor): number {
  return BYTES_PER_ELEMENT[t.dtype];
}

/** Copy `src` (read through srcStrides over `shape`) into dst at element offset dstOffset with dstStrides. */
function stridedCopy(src: Tensor, srcOffset: number, srcStrides: number[], dst: Tensor, dstOffset: number, dstStrides: number[], shape: number[]): void {
  if (shapeSize(shape) === 0) return;
  const eb = elemBytes(src);
  const [cs, [ss, ds]] = collapseDims(shape, srcStrides, dstStrides);
  engine.kernels.copy(eb, src.ptr + srcOffset * eb, ss, dst.ptr + dstOffset * eb, ds, cs);
}

/** Same elements, new shape (one dim may be -1). Shares storage with x. */
export function reshape(x: Tensor, shape: number[]): Tensor {
  const free = shape.indexOf(-1);
  const resolved = [...shape];
  if (free >= 0) {
    const known = shape.reduce((p, d, i) => (i === free ? p : p * d), 1);
    resolved[free] = known === 0 ? 0 : x.size / known;
  }
  if (shapeSize(resolved) !== x.size || resolved.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new RangeError(`lowbit: reshape: cannot view ${formatShape(x.shape)} (${x.size} elements) as ${formatShape(shape)}`);
  }
  const out = x.reshapeView(resolved);
  return record('reshape', out, [x], (g) => [g.reshapeView(x.shape)]);
}

/** [N, ...] -> [N, prod(...)] */
export function flatten(x: Tensor, startAxis = 1): Tensor {
  const lead = x.shape.slice(0, startAxis);
  return reshape(x, [...lead, shapeSize(x.shape.slice(startAxis))]);
}

export function permute(x: Tensor, perm: number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    throw new RangeError(`lowbit: permute: ${formatShape(perm)} is not a permutation of the axes of ${formatShape(x.shape)}`);
  }
  const shape = perm.map((p) => x.shape[p]);
  const own = contiguousStrides(x.shape);
  const out = Tensor.empty(shape, x.dtype);
  stridedCopy(x, 0, perm.map((p) => own[p]), out, 0, contiguousStrides(shape), shape);
  const inverse = new Array<number>(perm.length);
  perm.forEach((p, i) => (inverse[p] = i));
  return record('permute', out, [x], (g) => [permute(g, inverse)]);
}

/** Swap two axes (default: the last two). */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const perm = x.shape.map((_, i) => i);
  const ia = a < 0 ? a + x.rank : a, ib = b < 0 ? b + x.rank : b;
  [perm[ia], perm[ib]] = [perm[ib], perm[ia]];
  return permute(x, perm);
}

/** x[starts[i] : ends[i]] along each axis (missing axes are taken whole); step 1. */
export function slice(x: Tensor, starts: number[], ends: number[]): Tensor {
  const begin = x.shape.map((d, i) => clampIndex(starts[i] ?? 0, d));
  const end = x.shape.map((d, i) => clampIndex(ends[i] ?? d, d));
  const shape = begin.map((s, i) => Math.max(0, end[i] - s));
  const own = contiguousStrides(x.shape);
  const offset = begin.reduce((p, s, i) => p + s * own[i], 0);
  const out = Tensor.empty(shape, x.dtype);
  stridedCopy(x, offset, own, out, 0, contiguousStrides(shape), shape);
  return record('slice', out, [x], (g) => {
    const dx = Tensor.zeros(x.shape);
    stridedCopy(g, 0, contiguousStrides(shape), dx, offset, own, shape);
    return [dx];
  });
}

function clampIndex(i: number, dim: number): number {
  const r = i < 0 ? i + dim : i;
  return Math.min(Math.max(r, 0), dim);
}

export function concat(xs: Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new RangeError('lowbit: concat of no tensors');
  const first = xs[0];
  const a = axis < 0 ? axis + first.rank : axis;
  for (const t of xs) {
    if (t.rank !== first.rank || t.dtype !== first.dtype || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new RangeError(`lowbit: concat along axis ${axis}: ${first.describe()} and ${t.describe()} do not match`);
    }
  }
  const shape = [...first.shape];
  shape[a] = xs.reduce((p, t) => p + t.shape[a], 0);
  const out = Tensor.empty(shape, first.dtype);
  const outStrides = contiguousStrides(shape);
  let offset = 0;
  const offsets: number[] = [];
  for (const t of xs) {
    offsets.push(offset);
    stridedCopy(t, 0, contiguousStrides(t.shape), out, offset * outStrides[a], outStrides, [...t.shape]);
    offset += t.shape[a];
  }
  return record('concat', out, xs, (g) =>
    xs.map((t, i) => {
      const part = Tensor.empty(t.shape);
      stridedCopy(g, offsets[i] * outStrides[a], outStrides, part, 0, contiguousStrides(t.shape), [...t.shape]);
      return part;
    }),
    { axis: a },
  );
}

/** Constant padding: pads[i] = [before, after] for axis i (missing axes unpadded). */
export function pad(x: Tensor, pads: [number, number][], value = 0): Tensor {
  const p = x.shape.map((_, i) => pads[i] ?? [0, 0]);
  if (p.some(([b, a]) => b < 0 || a < 0)) throw new RangeError('lowbit: pad: negative padding; use slice()');
  const shape = x.shape.map((d, i) => d + p[i][0] + p[i][1]);
  const out = Tensor.full(shape, value);
  const outStrides = contiguousStrides(shape);
  const offset = p.reduce((acc, [b], i) => acc + b * outStrides[i], 0);
  stridedCopy(x, 0, contiguousStrides(x.shape), out, offset, outStrides, [...x.shape]);
  return record('pad', out, [x], (g) => {
    const dx = Tensor.empty(x.shape);
    stridedCopy(g, offset, outStrides, dx, 0, contiguousStrides(x.shape), [...x.shape]);
    return [dx];
  }, { pads: p, value });
}

/** Materialize x broadcast to `shape`. */
export function broadcastTo(x: Tensor, shape: Shape): Tensor {
  const target = broadcastShapes('broadcastTo', x.shape, shape);
  if (target.length !== shape.length || target.some((d, i) => d !== shape[i])) {
    throw new RangeError(`lowbit: broadcastTo: ${formatShape(x.shape)} cannot broadcast to ${formatShape(shape)}`);
  }
  const out = Tensor.empty(shape, x.dtype);
  stridedCopy(x, 0, broadcastStrides(x.shape, shape), out, 0, contiguousStrides(shape), [...shape]);
  return record('broadcastTo', out, [x], (g) => [sumToShape(g, x.shape)]);
}
