// The one kernel interface. Two implementations: ref/ (plain TypeScript, the readable spec that tests
// trust) and wasm/ (WebAssembly SIMD, split over worker threads). Every argument is a number: pointers
// are byte offsets into the engine memory (memory.ts), sizes are element counts. All tensors are dense,
// row-major (NCHW for images). Outputs never alias inputs unless a kernel says so.

import type { Ptr } from './memory.js';

export type DType = 'f32' | 'i32' | 'i8' | 'u8';

export const UNARY_OPS = [
  'neg', 'abs', 'exp', 'log', 'sqrt', 'square', 'reciprocal',
  'relu', 'relu6', 'hardtanh', 'sign', 'sigmoid', 'tanh',
  'clamp', // y = min(max(x, a), b)
  'affine', // y = a * x + b
  'leakyRelu', // y = x >= 0 ? x : a * x
  'round', // round half to even
  'floor',
  'step', // y = x > a ? 1 : 0  (masks)
] as const;
export type UnaryOp = (typeof UNARY_OPS)[number];

export const BINARY_OPS = ['add', 'sub', 'mul', 'div', 'max', 'min', 'pow', 'gt', 'ge', 'eq'] as const;
export type BinaryOp = (typeof BINARY_OPS)[number];

export const REDUCE_OPS = ['sum', 'max', 'min'] as const;
export type ReduceOp = (typeof REDUCE_OPS)[number];

/** Geometry of a 2-D convolution, NCHW input, weights [outC, inC/groups, kH, kW]. */
export interface ConvGeometry {
  n: number;
  inC: number;
  inH: number;
  inW: number;
  outC: number;
  kH: number;
  kW: number;
  strideH: number;
  strideW: number;
  padTop: number;
  padLeft: number;
  padBottom: number;
  padRight: number;
  dilationH: number;
  dilationW: number;
  groups: number;
  outH: number;
  outW: number;
}

/** Geometry of a 2-D pooling window over NCHW (channels = n*c planes). */
export interface PoolGeometry {
  planes: number; // n * c
  inH: number;
  inW: number;
  kH: number;
  kW: number;
  strideH: number;
  strideW: number;
  padTop: number;
  padLeft: number;
  padBottom: number;
  padRight: number;
  dilationH: number;
  dilationW: number;
  outH: number;
  outW: number;
  /** avg pool only: divide by the full window (true) or by the number of in-bounds elements (false). */
  countIncludePad: boolean;
}

export interface Kernels {
  readonly name: 'ref' | 'wasm';

  /** dst[i] = value for i < n (f32 elements). */
  fill(dst: Ptr, n: number, value: number): void;
  /** Element conversion; float -> int rounds to nearest even and saturates to the target range. */
  cast(src: Ptr, srcType: DType, dst: Ptr, dstType: DType, n: number): void;

  /** y = f(x; a, b) elementwise over n f32 values. x and y may be the same pointer. */
  unary(op: UnaryOp, x: Ptr, y: Ptr, n: number, a: number, b: number): void;
  /**
   * dx = dy * f'(x) for the differentiable unary ops (y = f(x) is given for ops whose derivative is
   * cheaper from y: exp, sigmoid, tanh, sqrt, reciprocal). `sign`, `round`, `floor`, `step` have zero
   * derivative. dx may alias dy.
   */
  unaryBackward(op: UnaryOp, x: Ptr, y: Ptr, dy: Ptr, dx: Ptr, n: number, a: number, b: number): void;

  /**
   * out[idx] = a[idx . aStrides] op b[idx . bStrides] over the dense f32 output of `shape` (rank <= 6).
   * A stride of 0 broadcasts. Comparison ops write 1 or 0.
   */
  binary(op: BinaryOp, a: Ptr, aStrides: number[], b: Ptr, bStrides: number[], out: Ptr, shape: number[]): void;

  /** Strided copy of elements of `elemBytes` (1 or 4): dst[idx . dstStrides] = src[idx . srcStrides]. */
  copy(elemBytes: number, src: Ptr, srcStrides: number[], dst: Ptr, dstStrides: number[], shape: number[]): void;

  /** y[o, i] = reduce over r of x[o, r, i], x viewed as [outer, r, inner] (f32). */
  reduce(op: ReduceOp, x: Ptr, y: Ptr, outer: number, r: number, inner: number): void;
  /** y[o, i] = argmax over r of x[o, r, i] (first index on ties), written as i32. */
  argmax(x: Ptr, y: Ptr, outer: number, r: number, inner: number): void;

  /** Row-wise softmax (or log-softmax) of x[rows, cols]. */
  softmax(x: Ptr, y: Ptr, rows: number, cols: number, log: boolean): void;
  /** Given y = softmax(x) (or log-softmax), dx = dL/dx from dy. */
  softmaxBackward(y: Ptr, dy: Ptr, dx: Ptr, rows: number, cols: number, log: boolean): void;

  /**
   * C = op(A) op(B) (+ C if accumulate), f32, row-major with leading dimensions.
   * op(A) is M x K (A stored K x M when transA), op(B) is K x N (B stored N x K when transB).
   */
  gemm(
    transA: boolean, transB: boolean, m: number, n: number, k: number,
    a: Ptr, lda: number, b: Ptr, ldb: number, c: Ptr, ldc: number, accumulate: boolean,
  ): void;

  /** y = conv(x, w) + bias (bias = 0 for none). x [n,inC,inH,inW], w [outC,inC/g,kH,kW], y [n,outC,outH,outW]. */
  conv2d(g: ConvGeometry, x: Ptr, w: Ptr, bias: Ptr, y: Ptr): void;
  /** dx = dL/dx from dy (dx overwritten). */
  conv2dBackwardInput(g: ConvGeometry, dy: Ptr, w: Ptr, dx: Ptr): void;
  /** dw = dL/dw from x and dy (dw overwritten). */
  conv2dBackwardWeight(g: ConvGeometry, x: Ptr, dy: Ptr, dw: Ptr): void;

  /** Max pool; `argmax` (i32, one per output) receives the flat index within the input plane. */
  maxPool2d(g: PoolGeometry, x: Ptr, y: Ptr, argmax: Ptr): void;
  /** dx (overwritten) scattered from dy through argmax. */
  maxPool2dBackward(g: PoolGeometry, dy: Ptr, argmax: Ptr, dx: Ptr): void;
  avgPool2d(g: PoolGeometry, x: Ptr, y: Ptr): void;
  avgPool2dBackward(g: PoolGeometry, dy: Ptr, dx: Ptr): void;

  /**
   * Per-channel sums over x viewed as [n, c, hw]: sum[c] = sum x, and, if sumSq != 0, sumSq[c] = sum x^2;
   * if `other` != 0, sums of the product x * other instead of x^2 (for batch-norm backward).
   */
  channelSums(x: Ptr, other: Ptr, n: number, c: number, hw: number, sum: Ptr, sumSq: Ptr): void;
  /** y[n, c, :] = x[n, c, :] * scale[c] + shift[c]  (shift = 0 for none). */
  channelAffine(x: Ptr, scale: Ptr, shift: Ptr, y: Ptr, n: number, c: number, hw: number): void;

  /** Cross-entropy pieces: loss[r] = -logp[r, label[r]] (labels i32). */
  nllLoss(logp: Ptr, labels: Ptr, loss: Ptr, rows: number, cols: number): void;

  /** mask[i] = (uniform(seed, i) >= p) ? 1/(1-p) : 0, a counter-based generator: same seed, same mask. */
  dropoutMask(mask: Ptr, n: number, p: number, seed: number): void;
  /** dst[i] = lo + (hi - lo) * uniform(seed, i), the same generator as dropoutMask (stochastic rounding). */
  randomUniform(dst: Ptr, n: number, lo: number, hi: number, seed: number): void;
}
