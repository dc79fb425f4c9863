// Fixed point and dynamic fixed point.
//
// Fixed point Q(I.F): a W-bit two's complement integer c (or unsigned) read as c * 2^-F, with F fractional
// bits and I = W - F integer bits (the sign bit counted in I). Gupta, Agrawal, Gopalakrishnan & Narayanan,
// "Deep Learning with Limited Numerical Precision", ICML 2015 (their <IL, FL>, WL = IL + FL, trained with
// stochastic rounding); Lin, Talathi & Annapureddy, "Fixed Point Quantization of Deep Convolutional
// Networks", ICML 2016.
//
//   c    = clamp(round(x * 2^F), cmin, cmax)      cmin = -2^(W-1), cmax = 2^(W-1) - 1   (signed)
//                                                 cmin = 0,        cmax = 2^W - 1       (unsigned)
//   q(x) = c * 2^-F            step 2^-F, range [cmin * 2^-F, cmax * 2^-F]
//   dq/dx = 1 if cmin * 2^-F <= x <= cmax * 2^-F else 0  (straight-through inside the range)
//   round: nearest (ties to even), stochastic (Gupta et al. eq. 5) or floor; see rounding.ts.
//
// Dynamic fixed point (Ristretto: Gysel, Motamedi & Ghiasi, "Hardware-oriented Approximation of
// Convolutional Neural Networks", ICLR 2016 workshop; Gysel et al., IEEE TNNLS 2018): every tensor (a
// layer's weights, a layer's outputs) has its own fractional length, chosen from its range so that the
// largest magnitude does not overflow:
//   IL = ceil(log2 max|x|) + 1 (the sign bit; + 0 unsigned),   FL = W - IL
// During training the fractional length follows the overflow rate instead (Courbariaux, David & Bengio,
// "Training deep neural networks with low precision multiplications", ICLR 2015 workshop, Algorithm 1):
//   if overflowRate(x) > r_max:          FL <- FL - 1     (scale x2: one more integer bit)
//   else if overflowRate(2x) <= r_max:   FL <- FL + 1     (scale /2: one more fractional bit)
// where overflowRate(x) is the fraction of elements outside the representable range, r_max = 0.01 %.
// Differences from Ristretto's code: ties round to even (Ristretto: half away from zero); activations get the
// same integer length rule as weights (Ristretto takes one bit less for layer outputs and lets their largest
// values saturate).

import { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/engine.js';
import * as ops from '../autograd/index.js';
import { LowbitError } from '../errors.js';
import {
  type Quantized, type Quantizer, type QuantizerDescription, type Role,
  checkFinite, checkInteger, codeDtype, codesToFloat, ceilLog2, maxAbsPerChannel, straightThrough, toCodes, windowMask,
} from './quantizer.js';
import { roundWith, saturate, SeedStream, type RoundingMode } from './rounding.js';

export const GUPTA_2015 = 'Gupta et al., Deep Learning with Limited Numerical Precision, ICML 2015';
export const RISTRETTO = 'Gysel et al., Ristretto: Hardware-oriented Approximation of CNNs, ICLR-W 2016';
export const COURBARIAUX_2014 = 'Courbariaux et al., Training deep neural networks with low precision multiplications, arXiv 2014';

export interface FixedParams {
  /** Fractional length F: the value of code c is c * 2^-F. */
  fracLength: number;
}

/** The integer code range of a W-bit word. */
export function fixedCodeRange(wordLength: number, signed: boolean): { min: number; max: number } {
  return signed ? { min: -(2 ** (wordLength - 1)), max: 2 ** (wordLength - 1) - 1 } : { min: 0, max: 2 ** wordLength - 1 };
}

/** Smallest and largest representable values and the step of Q(W-F . F). */
export function fixedRange(wordLength: number, fracLength: number, signed: boolean): { min: number; max: number; step: number } {
  const c = fixedCodeRange(wordLength, signed);
  const step = 2 ** -fracLength;
  return { min: c.min * step, max: c.max * step, step };
}

/** Codes clamp(round(x * 2^F)) as f32 integer values. */
export function fixedPointCodes(x: Tensor, wordLength: number, fracLength: number, signed: boolean, rounding: RoundingMode, seed = 0): Tensor {
  const c = fixedCodeRange(wordLength, signed);
  return tidy(() => saturate(roundWith(rounding, ops.mulScalar(x, 2 ** fracLength), seed), c.min, c.max));
}

function checkWordLength(who: string, wordLength: number, signed: boolean): void {
  checkInteger(`${who}: word length`, wordLength, signed ? 2 : 1, 32, signed ? 'a signed word needs a sign bit and at least one more' : '');
}

interface FixedOptions {
  role?: Role;
  signed?: boolean;
  rounding?: RoundingMode;
  /** Seed of the stochastic rounding draws. */
  seed?: number;
}

/** Shared by fixed and dynamic fixed point: codes, values and the straight-through estimator for a given F. */
abstract class FixedBase implements Quantizer<FixedParams> {
  readonly role: Role;
  readonly signed: boolean;
  readonly rounding: RoundingMode;
  readonly seeds: SeedStream;
  abstract readonly spec: string;

  constructor(readonly wordLength: number, opts: FixedOptions) {
    this.role = opts.role ?? 'weight';
    this.signed = opts.signed ?? true;
    this.rounding = opts.rounding ?? 'nearest';
    this.seeds = new SeedStream(opts.seed ?? 0);
  }

  get bits(): number {
    return this.wordLength;
  }

  /** Parameters for x (x already checked). */
  protected abstract choose(x: Tensor): FixedParams;

  params(x: Tensor): FixedParams {
    checkFinite(x, this.spec);
    return this.choose(x);
  }

  quantize(x: Tensor, params?: FixedParams): Quantized<FixedParams> {
    checkFinite(x, this.spec);
    const p = params ?? this.choose(x);
    const c = fixedCodeRange(this.wordLength, this.signed);
    const codes = tidy(() => toCodes(fixedPointCodes(x, this.wordLength, p.fracLength, this.signed, this.rounding, this.seeds.next()), codeDtype(c.min, c.max)));
    return { codes, params: { fracLength: p.fracLength } };
  }

  dequantize(q: Quantized<FixedParams>): Tensor {
    return tidy(() => ops.mulScalar(codesToFloat(q.codes), 2 ** -q.params.fracLength));
  }

  fakeQuantize(x: Tensor, params?: FixedParams): Tensor {
    checkFinite(x, this.spec);
    const F = (params ?? this.choose(x)).fracLength;
    const r = fixedRange(this.wordLength, F, this.signed);
    const seed = this.seeds.next();
    return straightThrough(this.spec, x, (wantMask) => ({
      y: ops.mulScalar(fixedPointCodes(x, this.wordLength, F, this.signed, this.rounding, seed), 2 ** -F),
      mask: wantMask ? windowMask(x, r.min, r.max) : null,
    }));
  }

  abstract describe(): QuantizerDescription;

  protected describeWith(name: string, paper: string, F: string, perTensor: boolean): QuantizerDescription {
    const c = fixedCodeRange(this.wordLength, this.signed);
    return {
      spec: this.spec,
      name,
      technique: 'fixed',
      role: this.role,
      bits: this.wordLength,
      values: `{${c.min}, ..., ${c.max}} * 2^-${F}`,
      levels: 2 ** this.wordLength,
      params: perTensor ? 'fractional length FL per tensor (one integer)' : 'none (F is part of the datatype)',
      paper,
      forward: `q(x) = clamp(round_${this.rounding}(x * 2^${F}), ${c.min}, ${c.max}) * 2^-${F}`,
      backward: `dq/dx = 1 if ${c.min}*2^-${F} <= x <= ${c.max}*2^-${F} else 0 (straight-through inside the range)`,
    };
  }
}

/** Fixed point Q(W-F . F): `fixed:W.F[:unsigned][:stochastic|:floor]`. */
export class FixedPointQuantizer extends FixedBase {
  readonly fracLength: number;

  constructor(wordLength: number, fracLength: number, opts: FixedOptions = {}) {
    super(wordLength, opts);
    checkWordLength('fixed', wordLength, this.signed);
    checkInteger(`fixed:${wordLength}.${fracLength}: fractional length`, fracLength, 0, wordLength,
      `the fractional length cannot exceed the word length ${wordLength}`);
    this.fracLength = fracLength;
  }

  get spec(): string {
    return `fixed:${this.wordLength}.${this.fracLength}${this.signed ? '' : ':unsigned'}${this.rounding === 'nearest' ? '' : `:${this.rounding}`}`;
  }

  protected choose(): FixedParams {
    return { fracLength: this.fracLength };
  }

  describe(): QuantizerDescription {
    const d = this.describeWith(
      `fixed point Q${this.wordLength - this.fracLength}.${this.fracLength}${this.signed ? '' : ' unsigned'}, ${this.rounding} rounding`,
      this.rounding === 'stochastic' ? GUPTA_2015 : `${GUPTA_2015}; Lin et al., ICML 2016`,
      String(this.fracLength),
      false,
    );
    return d;
  }
}

/** The Ristretto fractional length for a tensor whose largest magnitude is maxAbs. */
export function rangeFracLength(maxAbs: number, wordLength: number, signed = true): number {
  if (!(maxAbs > 0)) return signed ? wordLength - 1 : wordLength;
  const il = ceilLog2(maxAbs) + (signed ? 1 : 0);
  return clampFracLength(wordLength - il, wordLength);
}

/** Keep 2^F and 2^-F finite and normal in f32. */
function clampFracLength(fl: number, wordLength: number): number {
  return Math.min(126, Math.max(wordLength - 127, fl));
}

/** Fraction of the elements of x outside the range of Q(W-F . F) (overflowing in a saturating format). */
export function overflowRate(x: Tensor, wordLength: number, fracLength: number, signed = true, scale = 1): number {
  if (x.size === 0) return 0;
  const r = fixedRange(wordLength, fracLength, signed);
  return tidy(() => {
    const above = ops.sum(ops.step(x, r.max / scale)).item();
    const below = ops.sum(ops.step(ops.neg(x), -r.min / scale)).item();
    return (above + below) / x.size;
  });
}

/**
 * Courbariaux et al.'s scale update for dynamic fixed point during training: the fractional length follows
 * the overflow rate of the tensors it quantizes. `update(x)` applies Algorithm 1 once.
 */
export class OverflowRateScaler {
  fracLength: number | null = null;

  constructor(readonly wordLength: number, readonly signed = true, readonly maxOverflowRate = 1e-4) {
    if (!(maxOverflowRate >= 0 && maxOverflowRate < 1)) {
      throw new LowbitError(`dynamic fixed point: maximum overflow rate must be in [0, 1), got ${maxOverflowRate}`);
    }
  }

  /** Update the fractional length from x (the first call starts from x's range) and return it. */
  update(x: Tensor): number {
    if (this.fracLength === null) {
      this.fracLength = rangeFracLength(maxAbsPerChannel(x, null)[0], this.wordLength, this.signed);
      return this.fracLength;
    }
    const F = this.fracLength;
    if (overflowRate(x, this.wordLength, F, this.signed) > this.maxOverflowRate) this.fracLength = F - 1;
    else if (overflowRate(x, this.wordLength, F, this.signed, 2) <= this.maxOverflowRate) this.fracLength = F + 1;
    this.fracLength = clampFracLength(this.fracLength, this.wordLength);
    return this.fracLength;
  }
}

export interface DynamicFixedOptions extends FixedOptions {
  /** 'range': FL from max|x| at every call (Ristretto); 'overflow': Courbariaux et al.'s update rule. */
  scaleUpdate?: 'range' | 'overflow';
  maxOverflowRate?: number;
}

/** Dynamic fixed point: `dfp:W[:unsigned][:stochastic|:floor][:overflow]`. */
export class DynamicFixedPointQuantizer extends FixedBase {
  readonly scaleUpdate: 'range' | 'overflow';
  readonly scaler: OverflowRateScaler;

  constructor(wordLength: number, opts: DynamicFixedOptions = {}) {
    super(wordLength, opts);
    checkWordLength('dfp', wordLength, this.signed);
    this.scaleUpdate = opts.scaleUpdate ?? 'range';
    this.scaler = new OverflowRateScaler(wordLength, this.signed, opts.maxOverflowRate ?? 1e-4);
  }

  get spec(): string {
    return `dfp:${this.wordLength}${this.signed ? '' : ':unsigned'}${this.rounding === 'nearest' ? '' : `:${this.rounding}`}${this.scaleUpdate === 'overflow' ? ':overflow' : ''}`;
  }

  /** The fractional length for x: from its range, or (scaleUpdate 'overflow') the scaler's next value. */
  protected choose(x: Tensor): FixedParams {
    if (this.scaleUpdate === 'overflow') return { fracLength: this.scaler.update(x) };
    return { fracLength: rangeFracLength(maxAbsPerChannel(x, null)[0], this.wordLength, this.signed) };
  }

  describe(): QuantizerDescription {
    return this.describeWith(
      `dynamic fixed point, ${this.wordLength}-bit word, fractional length per tensor${this.scaleUpdate === 'overflow' ? ' (overflow-rate update)' : ''}, ${this.rounding} rounding`,
      this.scaleUpdate === 'overflow' ? `${RISTRETTO}; ${COURBARIAUX_2014}` : RISTRETTO,
      'FL',
      true,
    );
  }
}
