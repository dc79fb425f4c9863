// Power-of-two weights, logarithmic activations, and Incremental Network Quantization (INQ).
//
// Power-of-two weights (`pow2:b`): values {0, +-2^n2, ..., +-2^n1}, so a multiply becomes a shift (Ristretto's
// "multiplier-free" arithmetic: Gysel et al., ICLR-W 2016). The exponent window comes from the largest weight
// with INQ's rule (Zhou, Yao, Guo, Xu & Chen, "Incremental Network Quantization: Towards Lossless CNNs with
// Low-Precision Weights", ICLR 2017, eqs. 2-3):
//   n1 = floor(log2(4 s / 3)),  s = max|W|;      n2 = n1 + 1 - 2^(b-1) / 2
// (one bit of the b is spent on zero: 2^(b-2) magnitudes, each with a sign, and 0). Weights round to the
// nearest value in the linear domain (INQ eq. 3):
//   q(w) = sign(w) 2^k  if (2^(k-1) + 2^k)/2 <= |w| < 3 * 2^k / 2   (k in [n2, n1]; 0 below 2^(n2-1))
//   dq/dw = 1 (straight-through)
//
// INQ (`inq:b`): the same value set, reached incrementally. At step i a fraction sigma_i of the weights
// (default 50 %, 75 %, 87.5 %, 100 %), the largest in magnitude among those not yet frozen, is quantized and
// frozen; the others stay float and are retrained: W = T * q(W) + (1 - T) * W, dL/dW = (1 - T) * dL/dW_q
// (T the 0/1 partition mask, eq. 4-5). The schedule lives here; the retraining loop is the trainer's.
//
// Logarithmic quantization (`log2:b`): Miyashita, Lee & Murmann, "Convolutional Neural Networks using
// Logarithmic Data Representation", 2016, eq. (3): rounding in the log domain,
//   LogQuant(x) = 0 if x = 0, else 2^x~,   x~ = Clip(Round(log2|x|), FSR - 2^b, FSR)
// where Clip gives 0 (the value zero) at or below FSR - 2^b and FSR - 1 at or above FSR: 2^b - 1 exponents plus
// zero in b bits (activations, >= 0 after ReLU). Signed tensors (weights) spend one of the b bits on the sign.
// FSR (full scale range) is chosen so that the largest level is max|x| rounded in the log domain:
// FSR = round(log2 max|x|) + 1. The log-domain rounding boundary between 2^k and 2^(k+1) is fl32(sqrt 2) 2^k.
//   dq/dx = 1 if |x| <= 2^(FSR-1) else 0 (straight-through, saturated values pass nothing)

import { Tensor } from '../tensor/tensor.js';
import { tidy, keep } from '../tensor/engine.js';
import * as ops from '../autograd/index.js';
import { customGrad } from '../autograd/graph.js';
import { LowbitError } from '../errors.js';
import {
  type Quantized, type Quantizer, type QuantizerDescription, type Role,
  checkFinite, checkInteger, codesToFloat, exp2Tensor, floorLog2, floorLog2Tensor, maxAbsPerChannel,
  straightThrough, toCodes, windowMask,
} from './quantizer.js';

export const ZHOU_2017_INQ = 'Zhou et al., Incremental Network Quantization, ICLR 2017';
export const MIYASHITA_2016 = 'Miyashita et al., CNNs using Logarithmic Data Representation, arXiv 2016';

// ---------------------------------------------------------------------------------------------------------
// Power-of-two weights

export interface PowerOfTwoParams {
  /** Largest exponent: the biggest magnitude is 2^n1. */
  n1: number;
  /** Smallest exponent: the smallest non-zero magnitude is 2^n2. */
  n2: number;
}

/** The nearest power of two to s in the linear domain: floor(log2(4 s / 3)), exactly. */
export function nearestPowerOfTwoExponent(s: number): number {
  const k = floorLog2(s);
  return s >= 1.5 * 2 ** k ? k + 1 : k;
}

/** INQ's exponent window for b-bit power-of-two weights with largest magnitude maxAbs. */
export function powerOfTwoWindow(maxAbs: number, bits: number): PowerOfTwoParams {
  const n1 = maxAbs > 0 ? nearestPowerOfTwoExponent(maxAbs) : 0;
  return { n1, n2: n1 + 1 - 2 ** (bits - 1) / 2 };
}

/** Signed codes sign(w) * (k - n2 + 1) (0 for zero) as f32 integers. No gradient. */
export function powerOfTwoCodes(x: Tensor, p: PowerOfTwoParams): Tensor {
  return tidy(() => {
    const a = ops.abs(x);
    const k0 = floorLog2Tensor(a);
    // round up to 2^(k0+1) from 1.5 * 2^k0 (exact comparison)
    const k = ops.clamp(ops.add(k0, ops.greaterEqual(a, ops.mulScalar(exp2Tensor(k0), 1.5))), p.n2, p.n1);
    const nonzero = ops.greaterEqual(a, Tensor.scalar(2 ** (p.n2 - 1)));
    return ops.mul(ops.mul(ops.sign(x), nonzero), ops.addScalar(k, 1 - p.n2));
  });
}

/** Values of power-of-two codes. */
export function powerOfTwoDecode(codes: Tensor, p: PowerOfTwoParams): Tensor {
  return tidy(() => {
    const c = codesToFloat(codes);
    const magnitude = exp2Tensor(ops.addScalar(ops.abs(c), p.n2 - 1));
    return ops.mul(ops.sign(c), magnitude);
  });
}

/** q(w): w rounded to {0, +-2^n2..+-2^n1} (no gradient). */
export function powerOfTwoRound(x: Tensor, p: PowerOfTwoParams): Tensor {
  return tidy(() => powerOfTwoDecode(powerOfTwoCodes(x, p), p));
}

function checkPow2Bits(who: string, bits: number): void {
  checkInteger(`${who}: bits`, bits, 2, 8, 'b bits give 2^(b-2) exponents per sign and zero; 8 bits already span 64 octaves');
}

function describePow2(spec: string, role: Role, bits: number, name: string, paper: string, backward: string): QuantizerDescription {
  const m = 2 ** (bits - 2);
  return {
    spec, name, technique: 'log2', role, bits,
    values: `{0, +-2^n2, ..., +-2^n1}, n1 = floor(log2(4 max|W| / 3)), n2 = n1 - ${m - 1}`,
    levels: 2 * m + 1,
    params: 'n1 per tensor (one integer)',
    paper,
    forward: 'q(w) = sign(w) 2^k for 3*2^k/4 <= |w| < 3*2^k/2, k clamped to [n2, n1]; 0 for |w| < 2^(n2-1)',
    backward,
  };
}

/** `pow2:b`: power-of-two weights with INQ's exponent window. */
export class PowerOfTwoQuantizer implements Quantizer<PowerOfTwoParams> {
  readonly role: Role;
  constructor(readonly bits: number, opts: { role?: Role } = {}) {
    checkPow2Bits(`pow2:${bits}`, bits);
    this.role = opts.role ?? 'weight';
  }

  get spec(): string {
    return `pow2:${this.bits}`;
  }

  params(x: Tensor): PowerOfTwoParams {
    checkFinite(x, this.spec);
    return powerOfTwoWindow(maxAbsPerChannel(x, null)[0], this.bits);
  }

  quantize(x: Tensor, params?: PowerOfTwoParams): Quantized<PowerOfTwoParams> {
    checkFinite(x, this.spec);
    const p = params ?? powerOfTwoWindow(maxAbsPerChannel(x, null)[0], this.bits);
    return { codes: tidy(() => toCodes(powerOfTwoCodes(x, p), 'i8')), params: p };
  }

  dequantize(q: Quantized<PowerOfTwoParams>): Tensor {
    return powerOfTwoDecode(q.codes, q.params);
  }

  fakeQuantize(x: Tensor, params?: PowerOfTwoParams): Tensor {
    checkFinite(x, this.spec);
    const p = params ?? powerOfTwoWindow(maxAbsPerChannel(x, null)[0], this.bits);
    return straightThrough(this.spec, x, () => ({ y: powerOfTwoRound(x, p), mask: null }));
  }

  describe(): QuantizerDescription {
    return describePow2(this.spec, this.role, this.bits, `power-of-two weights, ${this.bits} bits (multiplier-free)`,
      `Gysel et al., Ristretto multiplier-free arithmetic, ICLR-W 2016; ${ZHOU_2017_INQ}`,
      'dq/dw = 1 (straight-through)');
  }
}

// ---------------------------------------------------------------------------------------------------------
// INQ

/** Zhou et al.'s accumulated portions of quantized weights: 50 %, 75 %, 87.5 %, 100 %. */
export const INQ_SCHEDULE: readonly number[] = [0.5, 0.75, 0.875, 1];

export interface InqParams extends PowerOfTwoParams {
  /** The partition T: 1 where a weight is quantized and frozen, 0 where it is still float and trained. null = all frozen. */
  mask: Tensor | null;
}

/**
 * The partition of INQ step with accumulated fraction `fraction`: the weights already frozen stay frozen, and
 * the largest-magnitude others are added until round(fraction * N) are frozen (ties broken by position).
 * Returns a new 0/1 mask (kept: it outlives tidy scopes; dispose it when the step is over).
 */
export function inqPartition(w: Tensor, fraction: number, frozen: Tensor | null = null): Tensor {
  if (!(fraction >= 0 && fraction <= 1)) throw new LowbitError(`INQ: the fraction of weights to quantize must be in [0, 1], got ${fraction}`);
  if (frozen && frozen.size !== w.size) throw new LowbitError(`INQ: partition mask ${frozen.describe()} does not match weights ${w.describe()}`);
  checkFinite(w, 'inq');
  const n = w.size;
  return keep(tidy(() => {
    const f = frozen ?? Tensor.zeros(w.shape);
    const already = n === 0 ? 0 : ops.sum(f).item();
    const need = Math.round(fraction * n) - already;
    if (need <= 0) return Tensor.empty(w.shape).assign(f);
    // Candidates: |w| where not frozen, -1 where frozen (below every candidate).
    const score = ops.sub(ops.mul(ops.abs(w), ops.addScalar(ops.neg(f), 1)), f);
    // TODO(kernel): selection of the need-th largest score (nth_element) and the tie fill below loop in JS.
    const sorted = score.toFloat32Array().sort();
    const threshold = sorted[n - need];
    const mask = ops.add(f, ops.greater(score, Tensor.scalar(threshold)));
    let ties = need - (ops.sum(mask).item() - already);
    const sv = score.view(), mv = mask.view();
    for (let i = 0; i < n && ties > 0; i++) {
      if (sv[i] === threshold && mv[i] === 0) {
        mv[i] = 1;
        ties--;
      }
    }
    return mask;
  }));
}

/** Write q(w) into the frozen part of w, in place (INQ's "quantize and freeze" of a step). */
export function inqFreeze(w: Tensor, params: InqParams): void {
  ops.noGrad(() => tidy(() => {
    const q = powerOfTwoRound(w, params);
    const out = params.mask ? ops.add(ops.mul(params.mask, q), ops.mul(ops.addScalar(ops.neg(params.mask), 1), w)) : q;
    w.assign(out);
  }));
}

/** `inq:b`: power-of-two weights reached by INQ's incremental partition; float weights outside the mask. */
export class InqQuantizer implements Quantizer<InqParams> {
  readonly role: Role;
  readonly schedule: readonly number[];

  constructor(readonly bits: number, opts: { role?: Role; schedule?: readonly number[] } = {}) {
    checkPow2Bits(`inq:${bits}`, bits);
    this.role = opts.role ?? 'weight';
    this.schedule = opts.schedule ?? INQ_SCHEDULE;
    if (this.schedule.length === 0 || this.schedule.some((s, i) => !(s > 0 && s <= 1) || (i > 0 && s <= this.schedule[i - 1])) || this.schedule[this.schedule.length - 1] !== 1) {
      throw new LowbitError(`inq: the schedule must be increasing fractions in (0, 1] ending at 1, got [${this.schedule.join(', ')}]`);
    }
  }

  get spec(): string {
    return `inq:${this.bits}`;
  }

  /** The window from x (call once on the pre-trained weights and keep it through every step); mask null. */
  params(x: Tensor): InqParams {
    checkFinite(x, this.spec);
    return { ...powerOfTwoWindow(maxAbsPerChannel(x, null)[0], this.bits), mask: null };
  }

  quantize(x: Tensor, params?: InqParams): Quantized<InqParams> {
    checkFinite(x, this.spec);
    const p = params ?? this.params(x);
    return { codes: tidy(() => toCodes(powerOfTwoCodes(x, p), 'i8')), params: { n1: p.n1, n2: p.n2, mask: null } };
  }

  dequantize(q: Quantized<InqParams>): Tensor {
    return powerOfTwoDecode(q.codes, q.params);
  }

  /** T q(w) + (1 - T) w; gradient (1 - T) g: frozen weights do not move. */
  fakeQuantize(x: Tensor, params?: InqParams): Tensor {
    checkFinite(x, this.spec);
    const p = params ?? this.params(x);
    const mask = p.mask;
    return customGrad(
      this.spec,
      [x],
      () => tidy(() => {
        const q = powerOfTwoRound(x, p);
        return mask ? ops.add(ops.mul(mask, q), ops.mul(ops.addScalar(ops.neg(mask), 1), x)) : q;
      }),
      (g) => [mask ? ops.mul(g, ops.addScalar(ops.neg(mask), 1)) : ops.mulScalar(g, 0)],
    );
  }

  describe(): QuantizerDescription {
    return describePow2(this.spec, this.role, this.bits,
      `INQ power-of-two weights, ${this.bits} bits, partition ${this.schedule.map((s) => `${s * 100}%`).join('/')}`,
      ZHOU_2017_INQ,
      'W = T q(W) + (1-T) W; dL/dW = (1 - T) dL/dW~ (frozen weights get no update)');
  }
}

// ---------------------------------------------------------------------------------------------------------
// Logarithmic (Miyashita et al.)

export interface LogParams {
  /** Full scale range: the largest level is 2^(fsr-1). */
  fsr: number;
}

/** FSR = round(log2 max|x|) + 1 (log-domain rounding of the largest magnitude). */
export function logFsr(maxAbs: number): number {
  if (!(maxAbs > 0)) return 1;
  const k = floorLog2(maxAbs);
  return (maxAbs >= Math.fround(Math.SQRT2) * 2 ** k ? k + 1 : k) + 1;
}

/** Number of exponents of b-bit log codes (2^b - 1 unsigned; 2^(b-1) - 1 signed). */
function logExponents(bits: number, signed: boolean): number {
  return 2 ** (signed ? bits - 1 : bits) - 1;
}

/** Codes of Miyashita's LogQuant: (signed) index of the exponent, 0 for zero, as f32 integers. */
export function logCodes(x: Tensor, bits: number, fsr: number, signed: boolean): Tensor {
  const hi = fsr - 1, lo = fsr - logExponents(bits, signed);
  return tidy(() => {
    const a = signed ? ops.abs(x) : ops.relu(x);
    const k0 = floorLog2Tensor(a);
    const e = ops.add(k0, ops.greaterEqual(a, ops.mulScalar(exp2Tensor(k0), Math.fround(Math.SQRT2))));
    const nonzero = ops.greaterEqual(e, Tensor.scalar(lo)); // -Inf for 0 -> 0
    const idx = ops.mul(nonzero, ops.addScalar(ops.clamp(e, lo, hi), 1 - lo));
    return signed ? ops.mul(ops.sign(x), idx) : idx;
  });
}

export function logDecode(codes: Tensor, bits: number, fsr: number, signed: boolean): Tensor {
  const lo = fsr - logExponents(bits, signed);
  return tidy(() => {
    const c = codesToFloat(codes);
    return ops.mul(ops.sign(c), exp2Tensor(ops.addScalar(ops.abs(c), lo - 1)));
  });
}

/** `log2:b`: Miyashita et al.'s logarithmic quantization; signed for weights, unsigned for activations. */
export class LogQuantizer implements Quantizer<LogParams> {
  readonly role: Role;
  readonly signed: boolean;

  constructor(readonly bits: number, opts: { role?: Role; signed?: boolean } = {}) {
    this.role = opts.role ?? 'activation';
    this.signed = opts.signed ?? this.role !== 'activation';
    checkInteger(`log2:${bits}: bits`, bits, 2, 8, this.signed ? 'one bit is the sign' : '');
  }

  get spec(): string {
    const defaultSigned = this.role !== 'activation';
    return `log2:${this.bits}${this.signed === defaultSigned ? '' : this.signed ? ':signed' : ':unsigned'}`;
  }

  params(x: Tensor): LogParams {
    checkFinite(x, this.spec);
    return { fsr: logFsr(maxAbsPerChannel(x, null)[0]) };
  }

  quantize(x: Tensor, params?: LogParams): Quantized<LogParams> {
    const p = params ?? this.params(x);
    if (params) checkFinite(x, this.spec);
    return { codes: tidy(() => toCodes(logCodes(x, this.bits, p.fsr, this.signed), this.signed ? 'i8' : 'u8')), params: { fsr: p.fsr } };
  }

  dequantize(q: Quantized<LogParams>): Tensor {
    return logDecode(q.codes, this.bits, q.params.fsr, this.signed);
  }

  fakeQuantize(x: Tensor, params?: LogParams): Tensor {
    const p = params ?? this.params(x);
    if (params) checkFinite(x, this.spec);
    const top = 2 ** (p.fsr - 1);
    return straightThrough(this.spec, x, (wantMask) => ({
      y: logDecode(logCodes(x, this.bits, p.fsr, this.signed), this.bits, p.fsr, this.signed),
      mask: wantMask ? windowMask(x, this.signed ? -top : 0, top) : null,
    }));
  }

  describe(): QuantizerDescription {
    const L = logExponents(this.bits, this.signed);
    return {
      spec: this.spec,
      name: `logarithmic, ${this.bits} bits, ${this.signed ? 'signed' : 'unsigned'}`,
      technique: 'log2',
      role: this.role,
      bits: this.bits,
      values: `{0${this.signed ? ', +-' : ', '}2^(FSR-${L}), ..., ${this.signed ? '+-' : ''}2^(FSR-1)}, FSR = round(log2 max|x|) + 1`,
      levels: this.signed ? 2 * L + 1 : L + 1,
      params: 'FSR per tensor (one integer)',
      paper: MIYASHITA_2016,
      forward: `q(x) = ${this.signed ? 'sign(x) ' : ''}2^clip(round(log2|x|), FSR-${L}, FSR-1); 0 when round(log2|x|) < FSR-${L}`,
      backward: `dq/dx = 1 if ${this.signed ? '|x|' : '0 <= x'} <= 2^(FSR-1) else 0 (straight-through)`,
    };
  }
}
