// What every quantizer is, and the few helpers they share.
//
// A quantizer is data (its configuration: bits, rounding, per-channel axis...) plus pure functions, in the
// spirit of Larq's quantizers.py and of torch.ao's split between choosing parameters (observers), simulating
// (fake quantization) and running (integer codes):
//
//   params(x)            choose the shared parameters from a tensor (scale, zero point, exponent window,
//                        alpha, fractional length...). PTQ observers may compute them instead and pass them in.
//   quantize(x, p?)      float tensor -> integer codes (i8/u8/i32) + parameters
//   dequantize(q)        codes + parameters -> float tensor
//   fakeQuantize(x, p?)  dequantize(quantize(x)) as one differentiable op whose backward is the paper's
//                        rule (straight-through estimator, hardtanh window, TTQ's scale gradients, ...)
//   describe()           bits per value, value set, paper, forward and backward equations
//
// Everything is composed from tensor ops (one kernel pass each); per-channel or per-tensor statistics (a few
// numbers) are computed in JavaScript.

import { Tensor, type DType } from '../tensor/tensor.js';
import { tidy } from '../tensor/engine.js';
import { customGrad, hasNonFinite, isGradEnabled, tracksGrad } from '../autograd/graph.js';
import * as ops from '../autograd/index.js';
import { LowbitError } from '../errors.js';

/** What a quantizer is applied to in a layer. */
export type Role = 'weight' | 'activation' | 'gradient';

export interface QuantizerDescription {
  /** The spec-language form of this quantizer (for its role). */
  spec: string;
  /** Human name, e.g. "uniform affine int8, symmetric, per-channel". */
  name: string;
  /** The file of src/quant that implements it: affine, fixed, minifloat, log2, binary, ternary, dorefa, kmeans. */
  technique: string;
  role: Role;
  /** Bits per stored value (the codes), not counting the shared parameters. */
  bits: number;
  /** The set of values a code can stand for. */
  values: string;
  /** Number of distinct values (codes) it can produce. */
  levels: number;
  /** Shared parameters stored next to the codes. */
  params: string;
  /** The paper(s), as a short citation. */
  paper: string;
  /** Forward rule q(x). */
  forward: string;
  /** Backward rule dq/dx used in training. */
  backward: string;
}

/** Integer codes with the parameters that give them values. */
export interface Quantized<P> {
  /** One integer code per element of the input, same shape (i8, u8 or i32). */
  codes: Tensor;
  params: P;
}

export interface Quantizer<P = unknown> {
  readonly spec: string;
  readonly role: Role;
  /** Bits per stored value. */
  readonly bits: number;
  /** Choose the shared parameters from x. */
  params(x: Tensor): P;
  /** x -> codes; parameters chosen from x unless given. */
  quantize(x: Tensor, params?: P): Quantized<P>;
  dequantize(q: Quantized<P>): Tensor;
  /** dequantize(quantize(x)) with the paper's backward rule. */
  fakeQuantize(x: Tensor, params?: P): Tensor;
  describe(): QuantizerDescription;
}

// ---------------------------------------------------------------------------------------------------------
// Validation

/** An integer in [min, max], or a LowbitError that says what was given and what is valid. */
export function checkInteger(what: string, value: number, min: number, max: number, hint = ''): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new LowbitError(`${what} must be an integer from ${min} to ${max}, got ${value}${hint ? `; ${hint}` : ''}`);
  }
  return value;
}

/** Throws a LowbitError naming the tensor if x is not f32 or holds NaN or Inf. */
export function checkFinite(x: Tensor, who: string): void {
  if (x.dtype !== 'f32') {
    throw new LowbitError(`${who}: tensor ${x.describe()} is ${x.dtype}; quantizers take f32 tensors (cast it first)`);
  }
  if (hasNonFinite(x)) {
    throw new LowbitError(
      `${who}: tensor ${x.name ?? '(unnamed)'} ${x.describe()} contains NaN or Inf, which no datatype can represent. ` +
        'Find where it came from (set lb.engine.options.checkNumerics = true to name the op), lower the learning rate, or check the input data.',
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// Codes

/** The narrowest integer dtype holding every code in [min, max]. */
export function codeDtype(min: number, max: number): DType {
  if (min >= -128 && max <= 127) return 'i8';
  if (min >= 0 && max <= 255) return 'u8';
  return 'i32';
}

/** An f32 tensor of integer values as codes of the given dtype (exact: values are integers in range). */
export function toCodes(values: Tensor, dtype: DType): Tensor {
  return ops.cast(values, dtype);
}

/** Codes as f32 values, for composing dequantization from float ops. */
export function codesToFloat(codes: Tensor): Tensor {
  return codes.dtype === 'f32' ? codes : ops.cast(codes, 'f32');
}

// ---------------------------------------------------------------------------------------------------------
// Per-channel statistics

/** The axes to reduce over to get one value per channel of `axis` (all axes when axis is null). */
export function axesExcept(rank: number, axis: number | null): number[] {
  const all = Array.from({ length: rank }, (_, i) => i);
  return axis === null ? all : all.filter((a) => a !== axis);
}

/** Check a per-channel axis against a tensor and normalize it (negative counts from the end). */
export function channelAxis(x: Tensor, axis: number | null, who: string): number | null {
  if (axis === null) return null;
  const a = axis < 0 ? axis + x.rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= x.rank) {
    throw new LowbitError(`${who}: per-channel axis ${axis} does not exist in tensor ${x.describe()}; use a per-tensor spec for tensors without channels`);
  }
  return a;
}

/** max |x| per channel of `axis` (one value when axis is null), as JavaScript numbers. */
export function maxAbsPerChannel(x: Tensor, axis: number | null): number[] {
  if (x.size === 0) return [0];
  return tidy(() => Array.from(ops.max(ops.abs(x), axesExcept(x.rank, axis)).toFloat32Array()));
}

/** mean |x| per channel of `axis` (one value when axis is null). */
export function meanAbsPerChannel(x: Tensor, axis: number | null): number[] {
  if (x.size === 0) return [0];
  return tidy(() => Array.from(ops.mean(ops.abs(x), axesExcept(x.rank, axis)).toFloat32Array()));
}

/** min and max of x per channel of `axis`. */
export function minMaxPerChannel(x: Tensor, axis: number | null): { min: number[]; max: number[] } {
  if (x.size === 0) return { min: [0], max: [0] };
  return tidy(() => {
    const axes = axesExcept(x.rank, axis);
    return { min: Array.from(ops.min(x, axes).toFloat32Array()), max: Array.from(ops.max(x, axes).toFloat32Array()) };
  });
}

/** A tensor holding one value per channel, shaped to broadcast against x ([1, .., C, .., 1], or [] per-tensor). */
export function perChannel(values: readonly number[], rank: number, axis: number | null): Tensor {
  if (axis === null) return Tensor.scalar(values[0]);
  const shape = Array.from({ length: rank }, (_, i) => (i === axis ? values.length : 1));
  return Tensor.from(Float32Array.from(values), shape);
}

/** Check that given per-channel parameters match the channels of x. */
export function checkChannels(values: readonly number[], x: Tensor, axis: number | null, who: string): void {
  const want = axis === null ? 1 : x.shape[axis];
  if (values.length !== want) {
    throw new LowbitError(`${who}: ${values.length} per-channel parameters for tensor ${x.describe()}, which has ${want} channel(s) on axis ${axis}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Straight-through estimators

/** True when an op applied to x now will record a gradient. */
export function needsGrad(...xs: Tensor[]): boolean {
  return isGradEnabled() && xs.some(tracksGrad);
}

/**
 * y = forward(x) with the straight-through estimator dL/dx = dL/dy * mask: `forward` returns the output and
 * the 0/1 mask of positions where the gradient passes (null: everywhere, the identity STE). The mask is
 * computed in the forward pass only when a gradient will be needed.
 */
export function straightThrough(
  name: string,
  x: Tensor,
  forward: (wantMask: boolean) => { y: Tensor; mask: Tensor | null },
): Tensor {
  const want = needsGrad(x);
  let mask: Tensor | null = null;
  return customGrad(
    name,
    [x],
    () => {
      const r = tidy(() => forward(want));
      mask = r.mask;
      return r.y;
    },
    (g) => [mask ? ops.mul(g, mask) : g],
  );
}

/** 1 where lo <= x <= hi, else 0 (no gradient). */
export function windowMask(x: Tensor, lo: number, hi: number): Tensor {
  return tidy(() => ops.mul(ops.greaterEqual(x, Tensor.scalar(lo)), ops.greaterEqual(Tensor.scalar(hi), x)));
}

/** floor(log2 v) for v > 0, exact at powers of two (Math.log2 alone may be off by one near them). */
export function floorLog2(v: number): number {
  let k = Math.floor(Math.log2(v));
  while (2 ** k > v) k--;
  while (2 ** (k + 1) <= v) k++;
  return k;
}

/** ceil(log2 v) for v > 0, exact at powers of two. */
export function ceilLog2(v: number): number {
  let k = Math.ceil(Math.log2(v));
  while (2 ** (k - 1) >= v) k--;
  while (2 ** k < v) k++;
  return k;
}

/**
 * floor(log2 |x|) elementwise (-Inf for 0), exact: a first guess from log(), then corrected by comparing |x|
 * with the power of two, which is exact in f32. No gradient.
 */
export function floorLog2Tensor(absX: Tensor): Tensor {
  return tidy(() => {
    const guess = ops.floor(ops.mulScalar(ops.log(absX), 1 / Math.LN2));
    const p = ops.pow(Tensor.scalar(2), guess);
    return ops.sub(ops.add(guess, ops.greaterEqual(absX, ops.mulScalar(p, 2))), ops.greater(p, absX));
  });
}

/** 2^e elementwise. */
export function exp2Tensor(e: Tensor): Tensor {
  return ops.pow(Tensor.scalar(2), e);
}
