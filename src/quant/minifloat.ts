// Minifloat: a floating-point format with E exponent bits and M mantissa bits (1 + E + M bits), simulated
// exactly in f32: round to nearest (ties to even), gradual underflow through subnormals, and saturation to the
// largest finite value instead of overflow to infinity.
//
// Gysel, Motamedi & Ghiasi, "Hardware-oriented Approximation of Convolutional Neural Networks" (Ristretto),
// ICLR 2016 workshop, section "Minifloat"; the 8-bit formats as specified by the OCP "OCP 8-bit Floating Point
// Specification (OFP8)" 2023 (Micikevicius et al., "FP8 Formats for Deep Learning", 2022); IEEE 754-2008
// binary16; Google's bfloat16.
//
//   bias b = 2^(E-1) - 1 (default), emin = 1 - b
//   value of (s, e, m): (-1)^s * 2^(e-b) * (1 + m/2^M)      for 0 < e     (normal)
//                       (-1)^s * 2^emin * (m/2^M)            for e = 0     (subnormal)
//   q(x) = clamp(round(x / 2^(k-M)) * 2^(k-M), -maxFinite, maxFinite),   k = max(floor(log2|x|), emin)
//   dq/dx = 1 if |x| <= maxFinite else 0    (straight-through; saturated values pass no gradient)
//
// Styles (which top-exponent codes are finite):
//   ieee       the top exponent is reserved for Inf/NaN:       emax = 2^E - 2 - b, maxFinite = (2 - 2^-M) 2^emax
//              (e5m2 = OCP E5M2: max 57344; e5m10 = fp16: max 65504; e8m7 = bfloat16: max 3.3895e38)
//   fn         "finite, NaN only": only S.1..1.1..1 is NaN:   emax = 2^E - 1 - b, maxFinite = (2 - 2^(1-M)) 2^emax
//              (e4m3 = OCP E4M3FN: max 448, min subnormal 2^-9)   <- the default for e4m3
//   ristretto  every exponent code is finite and subnormals flush to zero, as Ristretto's Trim2MiniFloat.
// lowbit never produces Inf or NaN codes: inputs beyond maxFinite saturate (the OCP "saturating" conversion).
//
// The codes are the format's bit patterns (sign | exponent | mantissa) as unsigned integers, so that an exported
// e4m3 tensor is real FP8.

import { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/engine.js';
import * as ops from '../autograd/index.js';
import { LowbitError } from '../errors.js';
import {
  type Quantized, type Quantizer, type QuantizerDescription, type Role,
  checkFinite, checkInteger, codesToFloat, exp2Tensor, floorLog2Tensor, straightThrough, toCodes, windowMask,
} from './quantizer.js';

export type MinifloatStyle = 'ieee' | 'fn' | 'ristretto';
export const MINIFLOAT_STYLES: readonly MinifloatStyle[] = ['ieee', 'fn', 'ristretto'];

export interface MinifloatFormat {
  exponentBits: number;
  mantissaBits: number;
  bias: number;
  style: MinifloatStyle;
  subnormals: boolean;
  /** Smallest normal exponent (unbiased), 1 - bias. */
  emin: number;
  /** Largest finite exponent (unbiased). */
  emax: number;
  maxFinite: number;
  minNormal: number;
  /** Smallest positive value: the least subnormal, or the least normal without subnormals. */
  minPositive: number;
  /** 1 + E + M. */
  bits: number;
}

/** The format e<E>m<M> in a style; e4m3 defaults to OCP E4M3FN ('fn'), everything else to 'ieee'. */
export function minifloatFormat(exponentBits: number, mantissaBits: number, style?: MinifloatStyle, bias?: number): MinifloatFormat {
  const name = `minifloat:e${exponentBits}m${mantissaBits}`;
  checkInteger(`${name}: exponent bits`, exponentBits, 2, 8, 'f32 holds at most 8 exponent bits');
  checkInteger(`${name}: mantissa bits`, mantissaBits, 0, 15, 'a code must fit 24 bits to stay exact in f32');
  const s = style ?? (exponentBits === 4 && mantissaBits === 3 ? 'fn' : 'ieee');
  if (s === 'fn' && mantissaBits < 1) throw new LowbitError(`${name}:fn needs at least 1 mantissa bit (the all-ones mantissa is NaN)`);
  const b = bias ?? 2 ** (exponentBits - 1) - 1;
  checkInteger(`${name}: bias`, b, -200, 200);
  const E = exponentBits, M = mantissaBits;
  const emin = 1 - b;
  const emax = (s === 'ieee' ? 2 ** E - 2 : 2 ** E - 1) - b;
  const maxFinite = (s === 'fn' ? 2 - 2 ** (1 - M) : 2 - 2 ** -M) * 2 ** emax;
  if (!Number.isFinite(Math.fround(maxFinite)) || emin - M < -149) {
    throw new LowbitError(`${name}:${s} with bias ${b} has values outside f32, which lowbit simulates it in; use the ieee style or a smaller bias`);
  }
  const subnormals = s !== 'ristretto';
  const minNormal = 2 ** emin;
  return {
    exponentBits: E, mantissaBits: M, bias: b, style: s, subnormals, emin, emax, maxFinite, minNormal,
    minPositive: subnormals ? 2 ** (emin - M) : minNormal, bits: 1 + E + M,
  };
}

export const E4M3 = minifloatFormat(4, 3, 'fn');
export const E5M2 = minifloatFormat(5, 2, 'ieee');
export const FP16 = minifloatFormat(5, 10, 'ieee');
export const BF16 = minifloatFormat(8, 7, 'ieee');

/** The exponent k of the binade holding |x| in the format (emin for zero and subnormals), as f32 values. */
function binade(absX: Tensor, f: MinifloatFormat): Tensor {
  return ops.clamp(floorLog2Tensor(absX), f.emin, f.emax);
}

/** x rounded to the nearest value of the format (ties to even), saturated to +-maxFinite. No gradient. */
export function minifloatRound(x: Tensor, f: MinifloatFormat): Tensor {
  return tidy(() => {
    const stepSize = exp2Tensor(ops.addScalar(binade(ops.abs(x), f), -f.mantissaBits));
    let q = ops.clamp(ops.mul(ops.round(ops.div(x, stepSize)), stepSize), -f.maxFinite, f.maxFinite);
    if (!f.subnormals) q = ops.mul(q, ops.greaterEqual(ops.abs(q), Tensor.scalar(f.minNormal)));
    return q;
  });
}

/** Bit patterns (sign | biased exponent | mantissa) of values already in the format, as f32 integers. */
export function minifloatEncode(q: Tensor, f: MinifloatFormat): Tensor {
  const M = f.mantissaBits;
  return tidy(() => {
    const negative = ops.step(ops.neg(ops.reciprocal(q)), 0); // 1/q keeps the sign of -0 (IEEE: -0 is 1.00..0)
    const a = ops.abs(q);
    const k = binade(a, f);
    const normal = ops.greaterEqual(a, Tensor.scalar(f.minNormal));
    const biased = ops.mul(normal, ops.addScalar(k, f.bias));
    // a / 2^(k-M) is 2^M + m for normals and m for subnormals (k = emin)
    const mantissa = ops.sub(ops.div(a, exp2Tensor(ops.addScalar(k, -M))), ops.mulScalar(normal, 2 ** M));
    return ops.add(ops.add(ops.mulScalar(negative, 2 ** (f.exponentBits + M)), ops.mulScalar(biased, 2 ** M)), mantissa);
  });
}

/** Values of bit patterns (any tensor of integer values). */
export function minifloatDecode(codes: Tensor, f: MinifloatFormat): Tensor {
  const M = f.mantissaBits, signBit = 2 ** (f.exponentBits + M);
  return tidy(() => {
    const c = codesToFloat(codes);
    const s = ops.floor(ops.mulScalar(c, 1 / signBit));
    const rest = ops.sub(c, ops.mulScalar(s, signBit));
    const biased = ops.floor(ops.mulScalar(rest, 2 ** -M));
    const m = ops.sub(rest, ops.mulScalar(biased, 2 ** M));
    const normal = ops.step(biased, 0);
    const k = ops.clamp(ops.addScalar(biased, -f.bias), f.emin, Infinity);
    const significand = ops.add(m, ops.mulScalar(normal, 2 ** M));
    const magnitude = ops.mul(significand, exp2Tensor(ops.addScalar(k, -M)));
    return ops.mul(ops.addScalar(ops.mulScalar(s, -2), 1), magnitude);
  });
}

/** Every finite value of the format in code order (for tests, tables and nearest-value checks). */
export function minifloatValues(f: MinifloatFormat): Float64Array {
  const out: number[] = [];
  const M = f.mantissaBits;
  for (let s = 0; s < 2; s++) {
    for (let e = 0; e < 2 ** f.exponentBits; e++) {
      for (let m = 0; m < 2 ** M; m++) {
        const k = e === 0 ? f.emin : e - f.bias;
        if (k > f.emax || (k === f.emax && f.style === 'fn' && e > 0 && m === 2 ** M - 1)) continue;
        let v = e === 0 ? (f.subnormals ? m * 2 ** (f.emin - M) : 0) : (1 + m / 2 ** M) * 2 ** k;
        if (s) v = -v;
        out.push(v);
      }
    }
  }
  return Float64Array.from(out);
}

function minifloatPaper(f: MinifloatFormat): string {
  const ristretto = 'Gysel et al., Ristretto minifloat, ICLR-W 2016';
  const E = f.exponentBits, M = f.mantissaBits;
  if ((E === 4 && M === 3) || (E === 5 && M === 2)) return `${ristretto}; Micikevicius et al., FP8 Formats for Deep Learning (OCP OFP8), 2022`;
  if (E === 5 && M === 10) return `${ristretto}; IEEE 754-2008 binary16`;
  if (E === 8 && M === 7) return `${ristretto}; Wang & Kanwar, bfloat16 (Google Brain), 2019`;
  return ristretto;
}

/** Number of distinct finite values (+0 and -0 counted once). */
export function minifloatLevels(f: MinifloatFormat): number {
  const E = f.exponentBits, M = f.mantissaBits;
  const magnitudes = f.style === 'ieee' ? (2 ** E - 1) * 2 ** M : f.style === 'fn' ? 2 ** (E + M) - 1 : (2 ** E - 1) * 2 ** M + 1;
  return 2 * magnitudes - 1;
}

export interface MinifloatParams {
  format: MinifloatFormat;
}

/** `minifloat:e<E>m<M>[:ieee|:fn|:ristretto][:bias<B>]`, `fp16`, `bf16`. */
export class MinifloatQuantizer implements Quantizer<MinifloatParams> {
  readonly format: MinifloatFormat;
  readonly role: Role;

  constructor(format: MinifloatFormat, opts: { role?: Role } = {}) {
    this.format = format;
    this.role = opts.role ?? 'weight';
  }

  get bits(): number {
    return this.format.bits;
  }

  get spec(): string {
    const f = this.format;
    const defaultStyle = f.exponentBits === 4 && f.mantissaBits === 3 ? 'fn' : 'ieee';
    const base = f.exponentBits === 5 && f.mantissaBits === 10 && f.style === 'ieee' ? 'fp16'
      : f.exponentBits === 8 && f.mantissaBits === 7 && f.style === 'ieee' ? 'bf16'
      : `minifloat:e${f.exponentBits}m${f.mantissaBits}${f.style === defaultStyle ? '' : `:${f.style}`}`;
    return base + (f.bias === 2 ** (f.exponentBits - 1) - 1 ? '' : `:bias${f.bias}`);
  }

  params(x: Tensor): MinifloatParams {
    checkFinite(x, this.spec);
    return { format: this.format };
  }

  quantize(x: Tensor, params?: MinifloatParams): Quantized<MinifloatParams> {
    checkFinite(x, this.spec);
    const f = params?.format ?? this.format;
    const codes = tidy(() => toCodes(minifloatEncode(minifloatRound(x, f), f), f.bits <= 8 ? 'u8' : 'i32'));
    return { codes, params: { format: f } };
  }

  dequantize(q: Quantized<MinifloatParams>): Tensor {
    return minifloatDecode(q.codes, q.params.format);
  }

  fakeQuantize(x: Tensor, params?: MinifloatParams): Tensor {
    checkFinite(x, this.spec);
    const f = params?.format ?? this.format;
    return straightThrough(this.spec, x, (wantMask) => ({
      y: minifloatRound(x, f),
      mask: wantMask ? windowMask(x, -f.maxFinite, f.maxFinite) : null,
    }));
  }

  describe(): QuantizerDescription {
    const f = this.format;
    const styleName = { ieee: 'IEEE-style (top exponent reserved)', fn: 'finite/NaN-only (OCP FN)', ristretto: 'Ristretto (no subnormals, no Inf)' }[f.style];
    return {
      spec: this.spec,
      name: `minifloat e${f.exponentBits}m${f.mantissaBits}, bias ${f.bias}, ${styleName}, saturating`,
      technique: 'minifloat',
      role: this.role,
      bits: f.bits,
      values: `0, +-[${f.minPositive}, ${f.maxFinite}] (${f.subnormals ? 'subnormals from ' + f.minPositive : 'no subnormals'}, normals from ${f.minNormal})`,
      levels: minifloatLevels(f),
      params: 'none',
      paper: minifloatPaper(f),
      forward: `q(x) = clamp(round(x / 2^(k-${f.mantissaBits})) * 2^(k-${f.mantissaBits}), -${f.maxFinite}, ${f.maxFinite}), k = max(floor(log2|x|), ${f.emin})`,
      backward: `dq/dx = 1 if |x| <= ${f.maxFinite} else 0 (straight-through; saturated values get no gradient)`,
    };
  }
}
