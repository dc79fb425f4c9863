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
  /**
   * max pool only, without argmax: ReLU applied to the input first (maxPool(relu(x)) = max(0, the window's
   * non-NaN inputs)), so that an evaluation-time ReLU + max pool is one pass over the input.
   */
  relu?: boolean;
}

// ---------------------------------------------------------------------------------------------------------
// Integer and bitwise inference (src/runtime executes quantized models with these).
//
// Integer codes: u8 or i8 NCHW tensors, value = scale * (code - zeroPoint). A convolution over codes sums
//   acc[n, c, p] = sum over taps and input channels of (x - xZero) * w       (exact, int32)
// where a padded tap reads x = xZero (it contributes 0, as the float convolution's zero padding does).
// Bits: binarized activations, one bit per channel packed along channels, layout [n, h, w, words] of u64
//   words (words = ceil(C / 64)); bit c % 64 of word c / 64 is 1 for +1 and 0 for -1; unused high bits are 0.
//   A binary convolution sums x * w (x, w in {-1, +1}) over the taps inside the image only: a padded tap is a
//   0, not a -1 (the float convolution pads the binarized input with zeros; Larq Compute Engine corrects for it
//   the same way).

/**
 * What follows a layer, applied after its epilogue: a per-channel affine map (an evaluation-time batch norm),
 * then optionally a residual added (a float tensor of the output's shape), then optionally a ReLU.
 */
export interface PostAffine {
  scale: Ptr;
  shift: Ptr;
  residual?: Ptr;
  relu: boolean;
}

/** What happens to each int32 accumulator acc[n, c, p] of a conv (c = output channel). */
export type IntEpilogue =
  /**
   * Requantization with a fixed-point multiplier (Jacob et al. 2018; single rounding as in TFLite):
   *   s = 31 + shift[c];  r = (acc * multiplier[c] + bias[c] + 2^(s-1)) >> s   (64-bit, arithmetic shift, so
   *   half rounds up);  code = clamp(r + zeroPoint, lo, hi), stored as `out`.
   * bias: i64[outC] in units of 2^-s output codes (the layer's bias kept at full precision: a bias in
   * accumulator units would be off by up to half a step of the accumulator, which coarse outputs amplify);
   * multiplier, shift: i32[outC]; multiplier in [0, 2^31); s in [1, 62]. A fused ReLU is lo = zeroPoint.
   */
  | { kind: 'requant'; bias: Ptr; multiplier: Ptr; shift: Ptr; zeroPoint: number; lo: number; hi: number; out: 'u8' | 'i8' }
  /**
   * Float output: y = clamp(f32(f32(f32(acc) * scale[c]) + offset[c]), lo, hi), f32 arithmetic, no fused
   * multiply-add. convBinary only: then y = f32(y * pixelScale[b, pixel]) with pixelScale [n, outH, outW]
   * (XNOR-Net's K), then y = f32(y + bias[c]); then with `post` (the batch norm and ReLU that follow, fused
   * into the epilogue with the arithmetic of channelAffine, add and relu) y = f32(f32(y * post.scale[c]) +
   * post.shift[c]), with post.residual y = f32(y + residual[i]) (i: the element's NCHW index), and with
   * post.relu y = y > 0 ? y : 0.
   */
  | { kind: 'float'; scale: Ptr; offset: Ptr; lo: number; hi: number; pixelScale?: Ptr; bias?: Ptr; post?: PostAffine }
  /** The raw accumulators as i32. */
  | { kind: 'int32' }
  /** Binarize for the next binary layer: bit = f32(f32(f32(acc) * scale[c]) + offset[c]) >= 0, written as bits. */
  | { kind: 'bits'; scale: Ptr; offset: Ptr };

/** What binarizePack computes besides the bits: an input batch norm applied first, the channel mean of |v|. */
export interface BinarizeOptions {
  norm?: { scale: Ptr; shift: Ptr };
  absMean?: Ptr;
}

/** Bits per packed weight of the integer convolution (the weights' codes decide: int4 and ternary take 4 and 2). */
export type WeightBits = 8 | 4 | 2;

/** The integer/bitwise kernels (part of Kernels). */
export interface IntKernels {
  /**
   * Bytes the packed form of integer conv weights [outC, inC/groups, kH, kW] takes at `bits` per weight (8, 4
   * or 2; the layout is the kernel's own).
   */
  int8PackedWeightBytes(g: ConvGeometry, bits?: WeightBits): number;
  /**
   * Pack integer weights w (i8 [outC, inC/groups, kH, kW], each within the signed range of `bits`: 8 bits
   * -128..127, 4 bits -8..7, 2 bits -2..1) for convInt8 (dst has int8PackedWeightBytes(g, bits) bytes).
   */
  int8PackWeights(g: ConvGeometry, w: Ptr, dst: Ptr, bits?: WeightBits): void;
  /**
   * Convolution of integer codes x (u8 or i8, NCHW [n, inC, inH, inW]) with packed int8 weights, int32
   * accumulation (see above; x - xZero times w), then the epilogue into y (u8/i8/f32/i32 NCHW, or bits).
   * Any stride, padding, dilation and groups; a linear layer is a 1x1 convolution over [n, inF, 1, 1].
   */
  convInt8(g: ConvGeometry, x: Ptr, xType: 'u8' | 'i8', xZero: number, w: Ptr, ep: IntEpilogue, y: Ptr, bits?: WeightBits): void;
  /** Apply an epilogue to int32 accumulators acc [n, c, hw] (i32) into y (global average pool, residual adds). */
  requantize(acc: Ptr, n: number, c: number, hw: number, ep: IntEpilogue, y: Ptr): void;
  /** acc[p] = sum over hw of (x[p, :] - xZero), x codes viewed as [planes, hw] (global average pool). */
  sumPlanesInt8(x: Ptr, xType: 'u8' | 'i8', xZero: number, planes: number, hw: number, acc: Ptr): void;
  /** Max pool over codes (u8 or i8): the max of codes is the code of the max (quantizers are monotone). */
  maxPoolInt8(g: PoolGeometry, x: Ptr, xType: 'u8' | 'i8', y: Ptr): void;
  /**
   * Residual add of two code tensors of n elements into codes of another scale (per tensor):
   *   r = ((a - aZero) * aMultiplier + (b - bZero) * bMultiplier + 2^(shift-1)) >> shift   (64-bit, arithmetic)
   *   y = clamp(r + yZero, lo, hi)
   * multipliers in (-2^31, 2^31), shift in [1, 62].
   */
  addInt8(
    n: number, a: Ptr, aType: 'u8' | 'i8', aZero: number, aMultiplier: number,
    b: Ptr, bType: 'u8' | 'i8', bZero: number, bMultiplier: number,
    shift: number, yZero: number, lo: number, hi: number, y: Ptr, yType: 'u8' | 'i8',
  ): void;

  /**
   * Binarize f32 NCHW x [n, c, h, w] into bits [n, h, w, ceil(c / 64)]: bit = v >= 0 with v = x, or with
   * `norm` v = f32(f32(x * scale[c]) + shift[c]) (a binarized layer's input batch norm). With `absMean`,
   * also absMean[b, p] = f32(sum over c, in channel order, of |v|) / c (XNOR-Net's A), in one pass.
   */
  binarizePack(x: Ptr, n: number, c: number, h: number, w: number, y: Ptr, opts?: BinarizeOptions): void;
  /** Bytes the packed form of binary conv weights takes for convBinary. */
  binaryPackedWeightBytes(g: ConvGeometry): number;
  /** Pack the signs of f32 weights w [outC, inC, kH, kW] (w >= 0 is +1) for convBinary. */
  binaryPackWeights(g: ConvGeometry, w: Ptr, dst: Ptr): void;
  /**
   * XNOR-popcount convolution (groups = 1): x bits [n, inH, inW, words], packed weights; acc = sum over the taps
   * inside the image of sum over channels of x * w (in {-1, +1}), i.e. per tap inC - 2 popcount(x xor w); then
   * the epilogue into y (f32/i32/u8/i8 NCHW, or bits [n, outH, outW, ceil(outC / 64)] for 'bits').
   */
  convBinary(g: ConvGeometry, x: Ptr, w: Ptr, ep: IntEpilogue, y: Ptr): void;
}

export interface Kernels extends IntKernels {
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
  /**
   * Batch-norm statistics in one pass: mean[c] and the biased variance[c] = mean of (x - mean[c])^2 over x
   * viewed as [n, c, hw] (computed from centred values, not as E[x^2] - E[x]^2).
   */
  channelMeanVar(x: Ptr, n: number, c: number, hw: number, mean: Ptr, variance: Ptr): void;
  /** y[n, c, :] = (x[n, c, :] - mean[c]) * scale[c] + shift[c]. */
  channelNormalize(x: Ptr, mean: Ptr, scale: Ptr, shift: Ptr, y: Ptr, n: number, c: number, hw: number): void;
  /** Batch-norm backward sums per channel: sumDy[c] = sum dy, sumDyXc[c] = sum dy * (x - mean[c]). */
  batchNormBackwardSums(dy: Ptr, x: Ptr, mean: Ptr, n: number, c: number, hw: number, sumDy: Ptr, sumDyXc: Ptr): void;
  /** Batch-norm input gradient: dx[n, c, :] = a[c] * dy + b[c] * (x - mean[c]) + d[c]. */
  batchNormBackwardInput(dy: Ptr, x: Ptr, mean: Ptr, a: Ptr, b: Ptr, d: Ptr, dx: Ptr, n: number, c: number, hw: number): void;

  /** Cross-entropy pieces: loss[r] = -logp[r, label[r]] (labels i32). */
  nllLoss(logp: Ptr, labels: Ptr, loss: Ptr, rows: number, cols: number): void;

  /** mask[i] = (uniform(seed, i) >= p) ? 1/(1-p) : 0, a counter-based generator: same seed, same mask. */
  dropoutMask(mask: Ptr, n: number, p: number, seed: number): void;
  /** dst[i] = lo + (hi - lo) * uniform(seed, i), the same generator as dropoutMask (stochastic rounding). */
  randomUniform(dst: Ptr, n: number, lo: number, hi: number, seed: number): void;

  /**
   * One SGD step over n f32 parameters p in place (PyTorch's formulation), with lr, momentum mu and
   * weightDecay rounded to f32 and every operation in f32, in this order, without fused multiply-add:
   *   g = grad (+ weightDecay * p if weightDecay != 0);  v = mu * v + g;  d = nesterov ? g + mu * v : v;
   *   p = p - lr * d
   * With `velocity` = 0 (no momentum) d = g. One pass instead of the ~9 elementwise ops it replaces.
   */
  sgdStep(p: Ptr, grad: Ptr, velocity: Ptr, n: number, lr: number, momentum: number, weightDecay: number, nesterov: boolean): void;
}
