// Uniform affine quantization (intN / uintN, N = 2..16) and integer-only requantization.
//
// Jacob, Kligys, Chen, Zhu, Tang, Howard, Adam & Kalenichenko, "Quantization and Training of Neural Networks
// for Efficient Integer-Arithmetic-Only Inference", CVPR 2018; per-channel scales as in Krishnamoorthi,
// "Quantizing deep convolutional networks for efficient inference: A whitepaper", 2018.
//
//   r = S (q - Z)                                                                     (eq. 1)
//   q = clamp(round(r / S) + Z, qmin, qmax)            round: nearest, ties to even
//   asymmetric:  [rmin, rmax] widened to contain 0;  S = (rmax - rmin) / (qmax - qmin);
//                Z = the "nudged" zero point: round(qmin - rmin / S) (or from rmax, whichever is more
//                exact), clamped to [qmin, qmax], so that real 0 is exactly representable (sec. 2.1)
//   symmetric:   Z = 0, S = max|r| / qmax with the narrow range qmin = -qmax = -(2^(N-1) - 1)
//   dq/dr = 1 if qmin <= round(r / S) + Z <= qmax else 0     (straight-through inside the range, sec. 3)
//
// Requantization (sec. 2.2, eqs. 5-6, and gemmlowp's fixedpoint.h): an int32 accumulator is scaled by the
// real multiplier M = S1 S2 / S3, written M = 2^-n M0 with M0 in [0.5, 1) held as the int32 Q31 number
// round(M0 2^31):
//   SaturatingRoundingDoublingHighMul(a, b) = (a b + nudge) / 2^31 (truncating), nudge = 2^30 if a b >= 0
//                                             else 1 - 2^30; INT32_MAX for a = b = INT32_MIN
//   RoundingDivideByPOT(x, n) = (x >> n) + (remainder > threshold), remainder = x & (2^n - 1),
//                               threshold = (2^n - 1) >> 1 + (x < 0)   (round to nearest, ties away from 0)
//   q3 = clamp(Z3 + RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc, M0), n), qmin, qmax)
// Multipliers >= 1 shift left first (saturating), as TensorFlow Lite's MultiplyByQuantizedMultiplier.

import { Tensor, type DType } from '../tensor/tensor.js';
import { tidy } from '../tensor/engine.js';
import * as ops from '../autograd/index.js';
import { LowbitError } from '../errors.js';
import {
  type Quantized, type Quantizer, type QuantizerDescription, type Role,
  channelAxis, checkChannels, checkFinite, checkInteger, codeDtype, codesToFloat, floorLog2, minMaxPerChannel,
  perChannel, straightThrough, toCodes,
} from './quantizer.js';

export const JACOB_2018 = 'Jacob et al., Quantization and Training of NNs for Efficient Integer-Arithmetic-Only Inference, CVPR 2018';

export interface AffineParams {
  /** S per channel (one value per tensor when axis is null), f32. */
  scale: number[];
  /** Z per channel, an integer in [qmin, qmax]. */
  zeroPoint: number[];
  axis: number | null;
  qmin: number;
  qmax: number;
}

/** The code range of N-bit signed/unsigned integers; signed symmetric uses the narrow range [-(2^(N-1)-1), 2^(N-1)-1]. */
export function affineRange(bits: number, signed: boolean, symmetric: boolean): { qmin: number; qmax: number } {
  if (!signed) return { qmin: 0, qmax: 2 ** bits - 1 };
  const qmax = 2 ** (bits - 1) - 1;
  return { qmin: symmetric ? -qmax : -qmax - 1, qmax };
}

function roundHalfAway(v: number): number {
  return Math.sign(v) * Math.round(Math.abs(v));
}

/**
 * Scale and zero point per channel from observed ranges (gemmlowp's ChooseQuantizationParams, with the range
 * widened to contain 0). Observers (min-max, percentile, entropy, MSE) call this with their ranges.
 */
export function chooseAffineParams(
  min: readonly number[], max: readonly number[],
  opts: { qmin: number; qmax: number; symmetric: boolean; axis?: number | null },
): AffineParams {
  if (min.length !== max.length) throw new LowbitError(`affine: ${min.length} minima but ${max.length} maxima`);
  const { qmin, qmax, symmetric } = opts;
  const scale: number[] = [], zeroPoint: number[] = [];
  for (let c = 0; c < min.length; c++) {
    if (!Number.isFinite(min[c]) || !Number.isFinite(max[c]) || min[c] > max[c]) {
      throw new LowbitError(`affine: invalid range [${min[c]}, ${max[c]}] for channel ${c}; the range must be finite with min <= max`);
    }
    const lo = Math.min(min[c], 0), hi = Math.max(max[c], 0);
    if (symmetric) {
      const m = Math.max(-lo, hi);
      scale.push(m > 0 ? Math.fround(m / qmax) : 1);
      zeroPoint.push(0);
      continue;
    }
    if (hi === lo) {
      scale.push(1);
      zeroPoint.push(Math.min(qmax, Math.max(qmin, 0)));
      continue;
    }
    const S = Math.fround((hi - lo) / (qmax - qmin));
    const fromMin = qmin - lo / S, fromMax = qmax - hi / S;
    const errMin = Math.abs(qmin) + Math.abs(lo / S), errMax = Math.abs(qmax) + Math.abs(hi / S);
    const z = errMin < errMax ? fromMin : fromMax;
    scale.push(S);
    zeroPoint.push(z < qmin ? qmin : z > qmax ? qmax : roundHalfAway(z));
  }
  return { scale, zeroPoint, axis: opts.axis ?? null, qmin, qmax };
}

/** Codes clamp(round(x / S) + Z, qmin, qmax) as f32 integers, and (if asked) the in-range mask. No gradient. */
export function affineCodes(x: Tensor, p: AffineParams, wantMask = false): { codes: Tensor; mask: Tensor | null } {
  return tidy(() => {
    const S = perChannel(p.scale, x.rank, p.axis), Z = perChannel(p.zeroPoint, x.rank, p.axis);
    const unclamped = ops.add(ops.round(ops.div(x, S)), Z);
    const mask = wantMask
      ? ops.mul(ops.greaterEqual(unclamped, Tensor.scalar(p.qmin)), ops.greaterEqual(Tensor.scalar(p.qmax), unclamped))
      : null;
    return { codes: ops.clamp(unclamped, p.qmin, p.qmax), mask };
  });
}

/** S (q - Z). */
export function affineDequantize(codes: Tensor, p: AffineParams): Tensor {
  return tidy(() => {
    const S = perChannel(p.scale, codes.rank, p.axis), Z = perChannel(p.zeroPoint, codes.rank, p.axis);
    return ops.mul(ops.sub(codesToFloat(codes), Z), S);
  });
}

export interface AffineOptions {
  bits: number;
  /** intN (true) or uintN (false). */
  signed?: boolean;
  /** Z = 0 with the narrow range. Default: symmetric for weights, asymmetric for activations (signed only). */
  symmetric?: boolean;
  /** One scale per channel: weights along axis 0 (output channels), activations along axis 1 (NCHW). */
  perChannel?: boolean;
  role?: Role;
}

/** `int<N>`, `uint<N>` with `:sym`/`:asym` and `:per-channel`. */
export class AffineQuantizer implements Quantizer<AffineParams> {
  readonly bits: number;
  readonly signed: boolean;
  readonly symmetric: boolean;
  readonly perChannel: boolean;
  readonly role: Role;
  readonly qmin: number;
  readonly qmax: number;

  constructor(opts: AffineOptions) {
    this.signed = opts.signed ?? true;
    this.role = opts.role ?? 'weight';
    this.bits = checkInteger(`${this.signed ? 'int' : 'uint'}${opts.bits}: bits`, opts.bits, 2, 16,
      'uniform affine quantization takes 2 to 16 bits (1 bit: use binary, bnn, xnor or bwn)');
    this.symmetric = opts.symmetric ?? (this.signed && this.role === 'weight');
    if (this.symmetric && !this.signed) {
      throw new LowbitError(`uint${this.bits}:sym is not a datatype: unsigned codes are asymmetric (use int${this.bits}:sym for a zero point of 0)`);
    }
    this.perChannel = opts.perChannel ?? false;
    ({ qmin: this.qmin, qmax: this.qmax } = affineRange(this.bits, this.signed, this.symmetric));
  }

  get spec(): string {
    const defaultSym = this.signed && this.role === 'weight';
    return `${this.signed ? 'int' : 'uint'}${this.bits}${this.symmetric === defaultSym ? '' : this.symmetric ? ':sym' : ':asym'}${this.perChannel ? ':per-channel' : ''}`;
  }

  /** The channel axis of this quantizer: 0 for weights, 1 for activations, null per-tensor. */
  get axis(): number | null {
    return this.perChannel ? (this.role === 'weight' ? 0 : 1) : null;
  }

  /** Scale and zero point from the min and max of x. */
  params(x: Tensor): AffineParams {
    checkFinite(x, this.spec);
    const axis = channelAxis(x, this.axis, this.spec);
    const { min, max } = minMaxPerChannel(x, axis);
    return chooseAffineParams(min, max, { qmin: this.qmin, qmax: this.qmax, symmetric: this.symmetric, axis });
  }

  private resolve(x: Tensor, params?: AffineParams): AffineParams {
    if (!params) return this.params(x);
    checkFinite(x, this.spec);
    checkChannels(params.scale, x, params.axis, this.spec);
    return params;
  }

  quantize(x: Tensor, params?: AffineParams): Quantized<AffineParams> {
    const p = this.resolve(x, params);
    const codes = tidy(() => toCodes(affineCodes(x, p).codes, codeDtype(p.qmin, p.qmax)));
    return { codes, params: { ...p, scale: [...p.scale], zeroPoint: [...p.zeroPoint] } };
  }

  dequantize(q: Quantized<AffineParams>): Tensor {
    return affineDequantize(q.codes, q.params);
  }

  fakeQuantize(x: Tensor, params?: AffineParams): Tensor {
    const p = this.resolve(x, params);
    return straightThrough(this.spec, x, (wantMask) => {
      const { codes, mask } = affineCodes(x, p, wantMask);
      return { y: affineDequantize(codes, p), mask };
    });
  }

  describe(): QuantizerDescription {
    const ch = this.perChannel ? (this.role === 'weight' ? 'per output channel' : 'per channel') : 'per tensor';
    return {
      spec: this.spec,
      name: `uniform affine ${this.signed ? 'int' : 'uint'}${this.bits}, ${this.symmetric ? 'symmetric' : 'asymmetric'}, ${ch}`,
      technique: 'affine',
      role: this.role,
      bits: this.bits,
      values: this.symmetric ? `S * {${this.qmin}, ..., ${this.qmax}}` : `S * ({${this.qmin}, ..., ${this.qmax}} - Z)`,
      levels: this.qmax - this.qmin + 1,
      params: `scale S (f32)${this.symmetric ? '' : ' and zero point Z (integer)'} ${ch}`,
      paper: this.perChannel ? `${JACOB_2018}; Krishnamoorthi 2018 (per-channel)` : JACOB_2018,
      forward: `q(r) = S (clamp(round(r / S) + Z, ${this.qmin}, ${this.qmax}) - Z)${this.symmetric ? ', Z = 0, S = max|r| / ' + this.qmax : ', S = (max - min) / ' + (this.qmax - this.qmin)}`,
      backward: `dq/dr = 1 if ${this.qmin} <= round(r / S) + Z <= ${this.qmax} else 0 (straight-through inside the range)`,
    };
  }
}

// ---------------------------------------------------------------------------------------------------------
// Integer requantization (gemmlowp / TensorFlow Lite reference arithmetic)

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
const TWO31 = 2147483648;

/** A real multiplier M as M0 (int32, Q31, in [2^30, 2^31)) and a power of two: M = M0 2^(shift - 31). */
export interface QuantizedMultiplier {
  multiplier: number;
  /** Left shift (> 0) or right shift n = -shift (<= 0, Jacob et al.'s M = 2^-n M0). */
  shift: number;
}

/** M0 and the shift for a real multiplier M > 0 (TensorFlow Lite's QuantizeMultiplier). */
export function quantizeMultiplier(real: number): QuantizedMultiplier {
  if (real === 0) return { multiplier: 0, shift: 0 };
  if (!(real > 0) || !Number.isFinite(real)) {
    throw new LowbitError(`requantization: the real multiplier must be a finite number > 0, got ${real}; it is S_in * S_w / S_out`);
  }
  let e = floorLog2(real) + 1; // real = m 2^e, m in [0.5, 1)
  let q = Math.round((real / 2 ** e) * TWO31);
  if (q === TWO31) {
    q /= 2;
    e++;
  }
  if (e < -31) return { multiplier: 0, shift: 0 };
  if (e > 30) throw new LowbitError(`requantization: multiplier ${real} is too large for int32 arithmetic (at most 2^30)`);
  return { multiplier: q, shift: e };
}

/** The real multiplier M = S_in S_w / S_out of a quantized layer. */
export function requantizationMultiplier(inputScale: number, weightScale: number, outputScale: number): QuantizedMultiplier {
  return quantizeMultiplier((Math.fround(inputScale) * Math.fround(weightScale)) / Math.fround(outputScale));
}

/**
 * gemmlowp's SaturatingRoundingDoublingHighMul for int32 a, b: the high 32 bits of 2ab, rounded to nearest.
 * Exact in double precision: b is split into 16-bit halves so that no partial product exceeds 2^53.
 */
export function saturatingRoundingDoublingHighMul(a: number, b: number): number {
  if (a === INT32_MIN && b === INT32_MIN) return INT32_MAX;
  const bh = b >> 16, bl = b & 0xffff; // b = bh 2^16 + bl, bl >= 0
  const hi = a * bh, lo = a * bl; // |hi| < 2^46, |lo| < 2^47: exact
  const nonNegative = a === 0 || b === 0 || (a > 0) === (b > 0);
  const nudge = nonNegative ? 1 << 30 : 1 - (1 << 30);
  // ab + nudge = q 2^31 + R with q = floor(hi / 2^15), R = (hi mod 2^15) 2^16 + lo + nudge (|R| < 2^48)
  const q = Math.floor(hi / 32768);
  const R = (hi - q * 32768) * 65536 + lo + nudge;
  const f = Math.floor(R / TWO31);
  const rem = R - f * TWO31;
  const floorQuotient = q + f; // floor((ab + nudge) / 2^31)
  return floorQuotient < 0 && rem !== 0 ? floorQuotient + 1 : floorQuotient; // C++ division truncates toward 0
}

/** gemmlowp's RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero (0 <= exponent <= 31). */
export function roundingDivideByPOT(x: number, exponent: number): number {
  if (exponent === 0) return x | 0;
  const mask = exponent === 31 ? 0x7fffffff : (1 << exponent) - 1;
  const remainder = x & mask;
  const threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/** x * M for int32 x and M = multiplier 2^(shift-31), in int32 arithmetic (TensorFlow Lite's MultiplyByQuantizedMultiplier). */
export function multiplyByQuantizedMultiplier(x: number, m: QuantizedMultiplier): number {
  const left = m.shift > 0 ? m.shift : 0, right = m.shift > 0 ? 0 : -m.shift;
  const shifted = Math.min(INT32_MAX, Math.max(INT32_MIN, x * 2 ** left));
  return roundingDivideByPOT(saturatingRoundingDoublingHighMul(shifted, m.multiplier), right);
}

/**
 * Requantize int32 accumulators to output codes: clamp(Z + acc * M, qmin, qmax), with one multiplier or one
 * per channel along `axis` (1 for NCHW conv outputs, -1 / last for [N, C] linear outputs).
 */
export function requantize(
  acc: Tensor,
  multiplier: QuantizedMultiplier | readonly QuantizedMultiplier[],
  outZeroPoint: number,
  qmin: number,
  qmax: number,
  axis = 1,
): Tensor {
  if (acc.dtype !== 'i32') throw new LowbitError(`requantize: accumulators must be i32, got ${acc.describe()}`);
  const ms = Array.isArray(multiplier) ? (multiplier as readonly QuantizedMultiplier[]) : null;
  const a = axis < 0 ? axis + acc.rank : axis;
  const channels = ms ? acc.shape[a] : 1;
  if (ms && ms.length !== channels) throw new LowbitError(`requantize: ${ms.length} multipliers for ${channels} channels of ${acc.describe()}`);
  const inner = ms ? acc.shape.slice(a + 1).reduce((p, d) => p * d, 1) : 1;
  const dtype: DType = codeDtype(qmin, qmax);
  const out = Tensor.empty(acc.shape, dtype);
  const src = acc.view(), dst = out.view();
  const single = ms ? null : (multiplier as QuantizedMultiplier);
  // TODO(kernel): requantize belongs in src/kernels (int32 high multiply + rounding shift, SIMD); this is the reference loop.
  for (let i = 0; i < src.length; i++) {
    const m = single ?? ms![Math.floor(i / inner) % channels];
    const v = outZeroPoint + multiplyByQuantizedMultiplier(src[i], m);
    dst[i] = v < qmin ? qmin : v > qmax ? qmax : v;
  }
  return out;
}
