// Differentiable elementwise ops: unary functions, broadcasting binary arithmetic, scalar helpers.

import { engine } from '../../tensor/engine.js';
import { Tensor } from '../../tensor/tensor.js';
import type { BinaryOp, UnaryOp } from '../../kernels/types.js';
import { noGrad, record, contiguousStrides } from '../graph.js';
import { broadcastShapes, broadcastStrides, collapseDims, sumToShape } from './broadcast.js';

function requireF32(op: string, ...ts: Tensor[]): void {
  for (const t of ts) {
    if (t.dtype !== 'f32') throw new TypeError(`lowbit: ${op} needs f32 tensors, got ${t.describe()}; cast() it first`);
  }
}

/** The derivative of these ops is computed from the output y. */
const NEEDS_OUTPUT = new Set<UnaryOp>(['exp', 'sqrt', 'reciprocal', 'sigmoid', 'tanh']);

export function unaryOp(op: UnaryOp, x: Tensor, a = 0, b = 0): Tensor {
  requireF32(op, x);
  const k = engine.kernels;
  const y = Tensor.empty(x.shape);
  k.unary(op, x.ptr, y.ptr, x.size, a, b);
  return record(op, y, [x], (g) => {
    const dx = Tensor.empty(x.shape);
    k.unaryBackward(op, x.ptr, NEEDS_OUTPUT.has(op) ? y.ptr : 0, g.ptr, dx.ptr, x.size, a, b);
    return [dx];
  }, { a, b });
}

export const neg = (x: Tensor) => unaryOp('neg', x);
export const abs = (x: Tensor) => unaryOp('abs', x);
export const exp = (x: Tensor) => unaryOp('exp', x);
export const log = (x: Tensor) => unaryOp('log', x);
export const sqrt = (x: Tensor) => unaryOp('sqrt', x);
export const square = (x: Tensor) => unaryOp('square', x);
export const reciprocal = (x: Tensor) => unaryOp('reciprocal', x);
export const relu = (x: Tensor) => unaryOp('relu', x);
export const relu6 = (x: Tensor) => unaryOp('relu6', x);
/** clamp to [-1, 1]; gradient 1 inside, 0 outside (BNN's straight-through window). */
export const hardtanh = (x: Tensor) => unaryOp('hardtanh', x);
/** sign(x) in {-1, 0, 1}; zero gradient (use a quantizer's straight-through estimator to train through it). */
export const sign = (x: Tensor) => unaryOp('sign', x);
export const sigmoid = (x: Tensor) => unaryOp('sigmoid', x);
export const tanh = (x: Tensor) => unaryOp('tanh', x);
export const clamp = (x: Tensor, lo: number, hi: number) => unaryOp('clamp', x, lo, hi);
export const leakyRelu = (x: Tensor, slope = 0.01) => unaryOp('leakyRelu', x, slope);
/** Round half to even; zero gradient. */
export const round = (x: Tensor) => unaryOp('round', x);
export const floor = (x: Tensor) => unaryOp('floor', x);
/** 1 where x > threshold, else 0; zero gradient. */
export const step = (x: Tensor, threshold = 0) => unaryOp('step', x, threshold);
export const mulScalar = (x: Tensor, s: number) => unaryOp('affine', x, s, 0);
export const addScalar = (x: Tensor, s: number) => unaryOp('affine', x, 1, s);

/** out = a op b with broadcasting; the kernel reads both through strides, nothing is materialized. */
function binaryForward(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  requireF32(op, a, b);
  const shape = broadcastShapes(op, a.shape, b.shape);
  const out = Tensor.empty(shape);
  const [cs, [sa, sb]] = collapseDims(shape, broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape));
  if (out.size > 0) engine.kernels.binary(op, a.ptr, sa, b.ptr, sb, out.ptr, cs);
  return out;
}


export function add(a: Tensor, b: Tensor): Tensor {
  const out = binaryForward('add', a, b);
  return record('add', out, [a, b], (g) => [sumToShape(g, a.shape), sumToShape(g, b.shape)]);
}

export function sub(a: Tensor, b: Tensor): Tensor {
  const out = binaryForward('sub', a, b);
  return record('sub', out, [a, b], (g) => {
    const nb = Tensor.empty(g.shape);
    engine.kernels.unary('neg', g.ptr, nb.ptr, g.size, 0, 0);
    return [sumToShape(g, a.shape), sumToShape(nb, b.shape)];
  });
}

export function mul(a: Tensor, b: Tensor): Tensor {
  const out = binaryForward('mul', a, b);
  return record('mul', out, [a, b], (g) => [sumToShape(binaryForward('mul', g, b), a.shape), sumToShape(binaryForward('mul', g, a), b.shape)]);
}

export function div(a: Tensor, b: Tensor): Tensor {
  const out = binaryForward('div', a, b);
  return record('div', out, [a, b], (g) => {
    const ga = binaryForward('div', g, b);
    // d(a/b)/db = -a/b^2 = -out/b
    const t = binaryForward('div', binaryForward('mul', g, out), b);
    engine.kernels.unary('neg', t.ptr, t.ptr, t.size, 0, 0);
    return [sumToShape(ga, a.shape), sumToShape(t, b.shape)];
  });
}

/** Elementwise maximum; the gradient goes to a where a >= b, else to b. */
export function maximum(a: Tensor, b: Tensor): Tensor {
  const out = binaryForward('max', a, b);
  return record('maximum', out, [a, b], (g) => {
    const maskA = binaryForward('ge', a, b);
    const maskB = Tensor.empty(maskA.shape);
    engine.kernels.unary('affine', maskA.ptr, maskB.ptr, maskA.size, -1, 1);
    return [sumToShape(binaryForward('mul', g, maskA), a.shape), sumToShape(binaryForward('mul', g, maskB), b.shape)];
  });
}

/** Elementwise minimum; the gradient goes to a where a <= b, else to b. */
export function minimum(a: Tensor, b: Tensor): Tensor {
  const out = binaryForward('min', a, b);
  return record('minimum', out, [a, b], (g) => {
    const maskA = binaryForward('ge', b, a);
    const maskB = Tensor.empty(maskA.shape);
    engine.kernels.unary('affine', maskA.ptr, maskB.ptr, maskA.size, -1, 1);
    return [sumToShape(binaryForward('mul', g, maskA), a.shape), sumToShape(binaryForward('mul', g, maskB), b.shape)];
  });
}

/** a^b elementwise (a > 0 where b is not an integer). */
export function pow(a: Tensor, b: Tensor): Tensor {
  const out = binaryForward('pow', a, b);
  return record('pow', out, [a, b], (g) => {
    const k = engine.kernels;
    // d/da = b * a^(b-1) = b * out / a;  d/db = out * log(a)
    const ga = binaryForward('div', binaryForward('mul', binaryForward('mul', g, b), out), a);
    const loga = Tensor.empty(a.shape);
    k.unary('log', a.ptr, loga.ptr, a.size, 0, 0);
    const gb = binaryForward('mul', binaryForward('mul', g, out), loga);
    return [sumToShape(ga, a.shape), sumToShape(gb, b.shape)];
  });
}

/** Comparisons give 1 or 0 and have no gradient. */
export const greater = (a: Tensor, b: Tensor) => noGrad(() => binaryForward('gt', a, b));
export const greaterEqual = (a: Tensor, b: Tensor) => noGrad(() => binaryForward('ge', a, b));
export const equal = (a: Tensor, b: Tensor) => noGrad(() => binaryForward('eq', a, b));

/** A copy of x as dtype (float to int rounds half to even and saturates). No gradient through integers. */
export function cast(x: Tensor, dtype: Tensor['dtype']): Tensor {
  const out = Tensor.empty(x.shape, dtype);
  engine.kernels.cast(x.ptr, x.dtype, out.ptr, dtype, x.size);
  if (dtype === 'f32' && x.dtype === 'f32') return record('cast', out, [x], (g) => [g]);
  return out;
}

/** A contiguous copy (gradient flows through). */
export function clone(x: Tensor): Tensor {
  const out = Tensor.empty(x.shape, x.dtype).assign(x);
  return record('clone', out, [x], (g) => [g]);
}

export { contiguousStrides };
