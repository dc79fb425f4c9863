// Reference elementwise kernels: unary ops and their derivatives, broadcasting binary ops, strided copy,
// casts. Plain loops over the engine memory: the readable spec the WebAssembly kernels are tested against.

import type { EngineMemory, Ptr } from '../memory.js';
import type { BinaryOp, DType, UnaryOp } from '../types.js';

/** Round half to even, as IEEE roundTiesToEven (Math.round rounds half up). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function unaryValue(op: UnaryOp, x: number, a: number, b: number): number {
  switch (op) {
    case 'neg': return -x;
    case 'abs': return Math.abs(x);
    case 'exp': return Math.exp(x);
    case 'log': return Math.log(x);
    case 'sqrt': return Math.sqrt(x);
    case 'square': return x * x;
    case 'reciprocal': return 1 / x;
    case 'relu': return x > 0 ? x : 0;
    case 'relu6': return x > 0 ? (x < 6 ? x : 6) : 0;
    case 'hardtanh': return x > -1 ? (x < 1 ? x : 1) : -1;
    case 'sign': return x > 0 ? 1 : x < 0 ? -1 : 0;
    case 'sigmoid': return 1 / (1 + Math.exp(-x));
    case 'tanh': return Math.tanh(x);
    case 'clamp': return x > a ? (x < b ? x : b) : a;
    case 'affine': return a * x + b;
    case 'leakyRelu': return x >= 0 ? x : a * x;
    case 'round': return roundHalfEven(x);
    case 'floor': return Math.floor(x);
    case 'step': return x > a ? 1 : 0;
  }
}

/** dy/dx of each unary op at x (y = f(x) given too). Where the derivative jumps, the left limit is used. */
export function unaryDerivative(op: UnaryOp, x: number, y: number, a: number, b: number): number {
  switch (op) {
    case 'neg': return -1;
    case 'abs': return x > 0 ? 1 : x < 0 ? -1 : 0;
    case 'exp': return y;
    case 'log': return 1 / x;
    case 'sqrt': return 0.5 / y;
    case 'square': return 2 * x;
    case 'reciprocal': return -y * y;
    case 'relu': return x > 0 ? 1 : 0;
    case 'relu6': return x > 0 && x < 6 ? 1 : 0;
    case 'hardtanh': return x > -1 && x < 1 ? 1 : 0;
    case 'sigmoid': return y * (1 - y);
    case 'tanh': return 1 - y * y;
    case 'clamp': return x > a && x < b ? 1 : 0;
    case 'affine': return a;
    case 'leakyRelu': return x >= 0 ? 1 : a;
    case 'sign': case 'round': case 'floor': case 'step': return 0;
  }
}

export function binaryValue(op: BinaryOp, x: number, y: number): number {
  switch (op) {
    case 'add': return x + y;
    case 'sub': return x - y;
    case 'mul': return x * y;
    case 'div': return x / y;
    case 'max': return x > y ? x : y;
    case 'min': return x < y ? x : y;
    case 'pow': return Math.pow(x, y);
    case 'gt': return x > y ? 1 : 0;
    case 'ge': return x >= y ? 1 : 0;
    case 'eq': return x === y ? 1 : 0;
  }
}

export function unary(mem: EngineMemory, op: UnaryOp, x: Ptr, y: Ptr, n: number, a: number, b: number): void {
  const f = mem.f32;
  const xi = x >>> 2, yi = y >>> 2;
  for (let i = 0; i < n; i++) f[yi + i] = unaryValue(op, f[xi + i], a, b);
}

export function unaryBackward(
  mem: EngineMemory, op: UnaryOp, x: Ptr, y: Ptr, dy: Ptr, dx: Ptr, n: number, a: number, b: number,
): void {
  const f = mem.f32;
  const xi = x >>> 2, yi = y >>> 2, dyi = dy >>> 2, dxi = dx >>> 2;
  for (let i = 0; i < n; i++) f[dxi + i] = f[dyi + i] * unaryDerivative(op, f[xi + i], y ? f[yi + i] : 0, a, b);
}

/** Calls visit(offsetA, offsetB, k) for every index of `shape` in row-major order (k = flat output index). */
function forEachIndex(shape: number[], sa: number[], sb: number[], visit: (oa: number, ob: number, k: number) => void): void {
  const rank = shape.length;
  const total = shape.reduce((p, d) => p * d, 1);
  if (total === 0) return;
  const idx = new Array<number>(rank).fill(0);
  let oa = 0, ob = 0;
  for (let k = 0; k < total; k++) {
    visit(oa, ob, k);
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      oa += sa[d];
      ob += sb[d];
      if (idx[d] < shape[d]) break;
      oa -= sa[d] * shape[d];
      ob -= sb[d] * shape[d];
      idx[d] = 0;
    }
  }
}

export function binary(
  mem: EngineMemory, op: BinaryOp, a: Ptr, aStrides: number[], b: Ptr, bStrides: number[], out: Ptr, shape: number[],
): void {
  const f = mem.f32;
  const ai = a >>> 2, bi = b >>> 2, oi = out >>> 2;
  forEachIndex(shape, aStrides, bStrides, (oa, ob, k) => {
    f[oi + k] = binaryValue(op, f[ai + oa], f[bi + ob]);
  });
}

export function copy(
  mem: EngineMemory, elemBytes: number, src: Ptr, srcStrides: number[], dst: Ptr, dstStrides: number[], shape: number[],
): void {
  if (elemBytes === 4) {
    const v = mem.i32; // bit copy: works for f32 and i32 alike
    const si = src >>> 2, di = dst >>> 2;
    forEachIndex(shape, srcStrides, dstStrides, (os, od) => { v[di + od] = v[si + os]; });
  } else if (elemBytes === 1) {
    const v = mem.u8;
    forEachIndex(shape, srcStrides, dstStrides, (os, od) => { v[dst + od] = v[src + os]; });
  } else {
    throw new Error(`lowbit: copy of ${elemBytes}-byte elements is not supported`);
  }
}

export function fill(mem: EngineMemory, dst: Ptr, n: number, value: number): void {
  mem.f32.fill(value, dst >>> 2, (dst >>> 2) + n);
}

const INT_RANGE: Record<Exclude<DType, 'f32'>, [number, number]> = {
  i32: [-2147483648, 2147483647],
  i8: [-128, 127],
  u8: [0, 255],
};

function reader(mem: EngineMemory, t: DType, p: Ptr): (i: number) => number {
  switch (t) {
    case 'f32': { const v = mem.f32, o = p >>> 2; return (i) => v[o + i]; }
    case 'i32': { const v = mem.i32, o = p >>> 2; return (i) => v[o + i]; }
    case 'i8': { const v = mem.i8; return (i) => v[p + i]; }
    case 'u8': { const v = mem.u8; return (i) => v[p + i]; }
  }
}

export function cast(mem: EngineMemory, src: Ptr, srcType: DType, dst: Ptr, dstType: DType, n: number): void {
  const read = reader(mem, srcType, src);
  if (dstType === 'f32') {
    const v = mem.f32, o = dst >>> 2;
    for (let i = 0; i < n; i++) v[o + i] = read(i);
    return;
  }
  const [lo, hi] = INT_RANGE[dstType];
  const convert = (x: number) => (Number.isNaN(x) ? 0 : Math.min(hi, Math.max(lo, roundHalfEven(x))));
  if (dstType === 'i32') {
    const v = mem.i32, o = dst >>> 2;
    for (let i = 0; i < n; i++) v[o + i] = convert(read(i));
  } else {
    const v = dstType === 'i8' ? mem.i8 : mem.u8;
    for (let i = 0; i < n; i++) v[dst + i] = convert(read(i));
  }
}

/**
 * The dropout generator, shared bit for bit by every implementation: a 32-bit integer hash (Wellons'
 * lowbias32) of the counter i mixed with the seed; uniform = top 24 bits / 2^24.
 */
export function uniformAt(seed: number, i: number): number {
  let x = (Math.imul(seed >>> 0, 0x9e3779b9) + i) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return (x >>> 8) / 16777216;
}

export function dropoutMask(mem: EngineMemory, mask: Ptr, n: number, p: number, seed: number): void {
  const f = mem.f32, o = mask >>> 2;
  const keep = 1 / (1 - p);
  for (let i = 0; i < n; i++) f[o + i] = uniformAt(seed, i) >= p ? keep : 0;
}

export function randomUniform(mem: EngineMemory, dst: Ptr, n: number, lo: number, hi: number, seed: number): void {
  const f = mem.f32, o = dst >>> 2;
  for (let i = 0; i < n; i++) f[o + i] = lo + (hi - lo) * uniformAt(seed, i);
}

export function sgdStep(mem: EngineMemory, p: Ptr, grad: Ptr, velocity: Ptr, n: number, lr: number, momentum: number, weightDecay: number, nesterov: boolean): void {
  const f = mem.f32, r = Math.fround;
  const lr32 = r(lr), mu = r(momentum), wd = r(weightDecay);
  const po = p >>> 2, go = grad >>> 2, vo = velocity >>> 2;
  for (let i = 0; i < n; i++) {
    let g = f[go + i];
    if (wd !== 0) g = r(g + r(wd * f[po + i]));
    let d = g;
    if (velocity) {
      const v = r(r(mu * f[vo + i]) + g);
      f[vo + i] = v;
      d = nesterov ? r(g + r(mu * v)) : v;
    }
    f[po + i] = r(f[po + i] - r(lr32 * d));
  }
}
