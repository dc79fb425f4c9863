// Rounding modes and saturation, the two steps every quantizer takes after scaling.
//
//   nearest     round(v), ties to even (IEEE 754 roundTiesToEven): 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -2.5 -> -2.
//               Ties to even, not away from zero, so that ties do not bias a sum upwards.
//   stochastic  Gupta, Agrawal, Gopalakrishnan & Narayanan, "Deep Learning with Limited Numerical
//               Precision", ICML 2015, eq. (5):
//                 round(v) = floor(v)      with probability 1 - (v - floor(v))
//                            floor(v) + 1  with probability      v - floor(v)
//               so E[round(v)] = v (unbiased). Implemented as floor(v) + [u < frac(v)] with u uniform in
//               [0, 1) from the engine's counter-based generator (24-bit resolution), keyed by a seed.
//   floor       floor(v): truncation towards -inf, what a right shift of a two's complement value does.
//   saturate    clamp(v, lo, hi) to the representable range (no wrap-around), as Gupta et al.'s Convert().
//
// Each is one or a few tensor ops; none has a gradient (quantizers put a straight-through estimator around
// them).

import { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/engine.js';
import * as ops from '../autograd/index.js';

export type RoundingMode = 'nearest' | 'stochastic' | 'floor';
export const ROUNDING_MODES: readonly RoundingMode[] = ['nearest', 'stochastic', 'floor'];

/** round(x), ties to even. */
export function roundNearest(x: Tensor): Tensor {
  return ops.round(x);
}

/** floor(x) + 1 with probability x - floor(x) (Gupta et al. 2015): unbiased. Same seed, same result. */
export function roundStochastic(x: Tensor, seed: number): Tensor {
  return tidy(() => {
    const down = ops.floor(x);
    const frac = ops.sub(x, down); // exact in f32
    const u = ops.randomUniform(x.shape, 0, 1, seed);
    return ops.add(down, ops.greater(frac, u));
  });
}

export function roundFloor(x: Tensor): Tensor {
  return ops.floor(x);
}

/** Round with the given mode (seed used by stochastic rounding only). */
export function roundWith(mode: RoundingMode, x: Tensor, seed = 0): Tensor {
  switch (mode) {
    case 'nearest': return roundNearest(x);
    case 'stochastic': return roundStochastic(x, seed);
    case 'floor': return roundFloor(x);
  }
}

/** clamp(x, lo, hi): saturation to the representable range. */
export function saturate(x: Tensor, lo: number, hi: number): Tensor {
  return ops.clamp(x, lo, hi);
}

/** The scalar rule of roundNearest, for parameters and tests. */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Wellons' lowbias32 integer hash. */
function hash32(x: number): number {
  x = x >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * The seeds of a quantizer's random draws (stochastic rounding, stochastic binarization, DoReFa's gradient
 * noise): draw i uses hash(seed, i), so a run is reproducible from its seed, and `state` can be saved in a
 * checkpoint and restored to resume bit for bit.
 */
export class SeedStream {
  private counter = 0;
  constructor(private seed = 0) {}

  next(): number {
    return hash32(this.seed ^ hash32(this.counter++ + 0x9e3779b9));
  }

  get state(): [number, number] {
    return [this.seed, this.counter];
  }

  set state([seed, counter]: [number, number]) {
    this.seed = seed >>> 0;
    this.counter = counter;
  }

  /** Start again from a seed. */
  reset(seed: number): void {
    this.seed = seed >>> 0;
    this.counter = 0;
  }
}
