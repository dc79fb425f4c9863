// Calibration observers: they watch the tensors a layer receives and choose the range [min, max] its
// quantizer should cover (the "observer" role of torch.ao.quantization; the quantizer then turns the range into
// its parameters: scale and zero point, fractional length, FSR...).
//
//   minmax          the smallest and largest value seen (per tensor, or per channel of an axis)
//   moving-average  min and max of each batch, averaged: r <- r + c (r_batch - r), c = 0.01 (Jacob et al.,
//                   CVPR 2018, sec. 3.1: exponential moving averages of the ranges; torch's
//                   MovingAverageMinMaxObserver); the first batch initializes r
//   percentile      |x| clipped at the p-th percentile (default 99.99 %) of the |x| histogram (McKinstry et
//                   al. 2018; Wu et al., "Integer Quantization for Deep Learning Inference", 2020, sec. 4.2)
//   entropy         TensorRT's calibration (Migacz, "8-bit Inference with TensorRT", GTC 2017): the threshold
//                   T that minimizes KL(P || Q), P the |x| histogram clipped at T (outliers added to the last
//                   bin), Q the same quantized to the datatype's levels and expanded back (empty bins stay
//                   empty, each level's mass spread evenly over its non-empty bins)
//   mse             the threshold T that minimizes the mean squared error between x and q_T(x) over the
//                   histogram (bin centres weighted by their counts), q_T the layer's own quantizer with the
//                   range clipped at T (Wu et al. 2020, sec. 4.2; Banner et al., ACIQ, 2019, for the idea)
//
// The histogram methods keep one histogram of |x| with 2048 bins over [0, R]. R starts at the first batch's
// max|x| and doubles whenever a batch exceeds it, merging pairs of bins (so one pass suffices and nothing is
// stored but the counts); signed min and max are tracked exactly beside it. The chosen T clips both ends:
// [max(min, -T), min(max, T)].

import { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/engine.js';
import * as ops from '../autograd/index.js';
import { LowbitError, UsageError } from '../errors.js';
import { axesExcept, minMaxPerChannel } from './quantizer.js';

export const CALIBRATION_METHODS = ['minmax', 'moving-average', 'percentile', 'entropy', 'mse'] as const;
export type CalibrationMethod = (typeof CALIBRATION_METHODS)[number];

/** A range per channel of `axis` (one entry when axis is null). */
export interface Range {
  min: number[];
  max: number[];
  axis: number | null;
}

export interface Observer {
  readonly method: CalibrationMethod;
  observe(x: Tensor): void;
  /** Batches seen. */
  readonly batches: number;
  /**
   * The chosen range. Histogram observers take the number of quantization levels available for |x| (entropy)
   * or a function giving the quantization error of a threshold (mse).
   */
  range(opts?: RangeOptions): Range;
}

export interface RangeOptions {
  /** Levels the datatype has for the magnitudes |x| (entropy). Default 128 (int8, symmetric). */
  levels?: number;
  /** q_T applied to values: the layer's quantizer with the range clipped at T (mse). Default: uniform with `levels`. */
  simulate?: (threshold: number, range: Range, values: Float32Array) => Float32Array;
}

function checkObserved(o: Observer): void {
  if (o.batches === 0) throw new LowbitError(`${o.method} observer: no data was observed; calibrate with at least one sample`);
}

/** The smallest and largest values seen. */
export class MinMaxObserver implements Observer {
  readonly method: CalibrationMethod = 'minmax';
  batches = 0;
  private min: number[] = [];
  private max: number[] = [];
  constructor(readonly axis: number | null = null) {}

  observe(x: Tensor): void {
    const r = minMaxPerChannel(x, this.axis);
    if (this.batches++ === 0) {
      this.min = r.min;
      this.max = r.max;
      return;
    }
    if (r.min.length !== this.min.length) throw new LowbitError(`minmax observer: ${r.min.length} channels after ${this.min.length}`);
    this.min = this.min.map((v, i) => Math.min(v, r.min[i]));
    this.max = this.max.map((v, i) => Math.max(v, r.max[i]));
  }

  range(): Range {
    checkObserved(this);
    return { min: [...this.min], max: [...this.max], axis: this.axis };
  }
}

/** Exponential moving averages of each batch's min and max (c = 0.01 by default). */
export class MovingAverageMinMaxObserver implements Observer {
  readonly method: CalibrationMethod = 'moving-average';
  batches = 0;
  private min: number[] = [];
  private max: number[] = [];
  constructor(readonly axis: number | null = null, readonly averagingConstant = 0.01) {
    if (!(averagingConstant > 0 && averagingConstant <= 1)) throw new LowbitError(`moving-average observer: the averaging constant must be in (0, 1], got ${averagingConstant}`);
  }

  observe(x: Tensor): void {
    const r = minMaxPerChannel(x, this.axis);
    if (this.batches++ === 0) {
      this.min = r.min;
      this.max = r.max;
      return;
    }
    const c = this.averagingConstant;
    this.min = this.min.map((v, i) => v + c * (r.min[i] - v));
    this.max = this.max.map((v, i) => v + c * (r.max[i] - v));
  }

  range(): Range {
    checkObserved(this);
    return { min: [...this.min], max: [...this.max], axis: this.axis };
  }

  /** Save and restore the averages (QAT keeps them in the quantized model file). */
  get state(): { min: number[]; max: number[]; batches: number } {
    return { min: [...this.min], max: [...this.max], batches: this.batches };
  }
  set state(s: { min: number[]; max: number[]; batches: number }) {
    this.min = [...s.min];
    this.max = [...s.max];
    this.batches = s.batches;
  }
}

export const HISTOGRAM_BINS = 2048;

/** A histogram of |x| over [0, R] with R doubling as needed; the percentile, entropy and mse methods read it. */
export class HistogramObserver implements Observer {
  batches = 0;
  readonly counts = new Float64Array(HISTOGRAM_BINS);
  /** Upper edge of the histogram. */
  upper = 0;
  min = Infinity;
  max = -Infinity;

  constructor(readonly method: 'percentile' | 'entropy' | 'mse', readonly percentile = 99.99) {
    if (!(percentile > 0 && percentile <= 100)) throw new UsageError(`percentile calibration: the percentile must be in (0, 100], got ${percentile}`);
  }

  observe(x: Tensor): void {
    const { min, max } = minMaxPerChannel(x, null);
    this.batches++;
    this.min = Math.min(this.min, min[0]);
    this.max = Math.max(this.max, max[0]);
    const absMax = Math.max(-min[0], max[0]);
    if (!(absMax > 0)) {
      this.counts[0] += x.size;
      return;
    }
    if (this.upper === 0) this.upper = absMax;
    while (absMax > this.upper) this.grow();
    const n = HISTOGRAM_BINS, inv = n / this.upper;
    // Bin indices are computed by kernels; only the counting loops here.
    // TODO(kernel): a histogram kernel (scatter-add of ones) would replace this loop over the elements.
    tidy(() => {
      const idx = ops.clamp(ops.floor(ops.mulScalar(ops.abs(x), inv)), 0, n - 1);
      const v = idx.view() as Float32Array;
      const c = this.counts;
      for (let i = 0; i < v.length; i++) c[v[i]]++;
    });
  }

  /** Double the range: merge bin pairs. */
  private grow(): void {
    const c = this.counts, half = HISTOGRAM_BINS / 2;
    for (let i = 0; i < half; i++) c[i] = c[2 * i] + c[2 * i + 1];
    c.fill(0, half);
    this.upper *= 2;
  }

  get binWidth(): number {
    return this.upper / HISTOGRAM_BINS;
  }

  /** The threshold T for |x| chosen by this observer's method. */
  threshold(opts: RangeOptions = {}): number {
    checkObserved(this);
    if (this.upper === 0) return 0;
    switch (this.method) {
      case 'percentile': return percentileThreshold(this.counts, this.binWidth, this.percentile);
      case 'entropy': return entropyThreshold(this.counts, this.binWidth, opts.levels ?? 128);
      case 'mse': return mseThreshold(this.counts, this.binWidth, this.clip.bind(this), opts);
    }
  }

  private clip(t: number): Range {
    return { min: [this.min < 0 ? Math.max(this.min, -t) : this.min], max: [Math.min(this.max, t)], axis: null };
  }

  range(opts: RangeOptions = {}): Range {
    return this.clip(this.threshold(opts));
  }
}

/** Smallest upper bin edge below which p % of the mass lies. */
export function percentileThreshold(counts: Float64Array, binWidth: number, p: number): number {
  const total = counts.reduce((s, c) => s + c, 0);
  const want = (total * p) / 100;
  let acc = 0;
  for (let i = 0; i < counts.length; i++) {
    acc += counts[i];
    if (acc >= want) return (i + 1) * binWidth;
  }
  return counts.length * binWidth;
}

/** KL(P || Q) of two unnormalized distributions over the same bins (bins where P is 0 contribute 0). */
function klDivergence(p: Float64Array, q: Float64Array): number {
  let ps = 0, qs = 0;
  for (let i = 0; i < p.length; i++) {
    ps += p[i];
    qs += q[i];
  }
  if (ps === 0 || qs === 0) return Infinity;
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) continue;
    if (q[i] === 0) return Infinity;
    kl += (p[i] / ps) * Math.log((p[i] / ps) / (q[i] / qs));
  }
  return kl;
}

/**
 * TensorRT's entropy calibration: for each candidate i (levels <= i <= bins), P = counts[0..i) with the
 * outliers added to bin i-1, Q = counts[0..i) merged into `levels` groups and spread back over each group's
 * non-empty bins; T = (i + 0.5) bin widths for the i of least KL(P || Q).
 */
export function entropyThreshold(counts: Float64Array, binWidth: number, levels: number): number {
  const n = counts.length;
  const L = Math.max(2, Math.min(Math.floor(levels), n));
  let total = 0;
  for (let i = 0; i < n; i++) total += counts[i];
  let best = Infinity, bestI = n;
  // TensorRT starts at 128 bins (its number of levels): fewer would clip at a few percent of the range, where
  // KL's preference for a well-resolved body over the tail becomes extreme.
  const start = Math.max(L, Math.min(128, n));
  // Candidates every `step` bins keep the cost at O(bins^2 / step).
  const step = Math.max(1, Math.floor((n - start) / 512));
  for (let i = start; i <= n; i += step) {
    let inside = 0;
    for (let j = 0; j < i; j++) inside += counts[j];
    const p = counts.slice(0, i);
    p[i - 1] += total - inside;
    const q = new Float64Array(i);
    for (let g = 0; g < L; g++) {
      const start = Math.floor((g * i) / L), end = Math.floor(((g + 1) * i) / L);
      let mass = 0, nonEmpty = 0;
      for (let j = start; j < end; j++) {
        mass += counts[j];
        if (counts[j] > 0) nonEmpty++;
      }
      if (nonEmpty === 0) continue;
      for (let j = start; j < end; j++) if (counts[j] > 0) q[j] = mass / nonEmpty;
    }
    const kl = klDivergence(p, q);
    if (kl < best) {
      best = kl;
      bestI = i;
    }
  }
  return Math.min(n, bestI + 0.5) * binWidth;
}

/** Uniform quantization of values to `levels` steps over [0, T] (magnitudes; sign kept). */
function uniformSimulate(levels: number): (t: number, r: Range, v: Float32Array) => Float32Array {
  return (t, _r, v) => {
    const step = t / levels;
    return v.map((x) => Math.sign(x) * Math.min(Math.round(Math.abs(x) / step), levels) * step);
  };
}

/**
 * The threshold of least squared error sum_bins count (c - q_T(c))^2 over bin centres c, T among 128 candidates
 * spread over the histogram's upper half of resolution (from bin 16 to the last bin).
 */
export function mseThreshold(counts: Float64Array, binWidth: number, clip: (t: number) => Range, opts: RangeOptions): number {
  const n = counts.length;
  const simulate = opts.simulate ?? uniformSimulate(opts.levels ?? 128);
  const nonEmpty: number[] = [];
  for (let i = 0; i < n; i++) if (counts[i] > 0) nonEmpty.push(i);
  const centres = Float32Array.from(nonEmpty, (i) => (i + 0.5) * binWidth);
  let best = Infinity, bestT = n * binWidth;
  const candidates = 128;
  for (let k = 1; k <= candidates; k++) {
    const t = (16 + ((n - 16) * k) / candidates) * binWidth;
    const q = simulate(t, clip(t), centres);
    let err = 0;
    for (let j = 0; j < centres.length; j++) {
      const d = centres[j] - q[j];
      err += counts[nonEmpty[j]] * d * d;
    }
    if (err < best) {
      best = err;
      bestT = t;
    }
  }
  return bestT;
}

/** A new observer for a calibration method; histogram methods observe per tensor only. */
export function createObserver(method: CalibrationMethod, axis: number | null = null, opts: { percentile?: number } = {}): Observer {
  switch (method) {
    case 'minmax': return new MinMaxObserver(axis);
    case 'moving-average': return new MovingAverageMinMaxObserver(axis);
    case 'percentile': case 'entropy': case 'mse':
      if (axis !== null) {
        throw new UsageError(`--method ${method} calibrates one range per tensor; per-channel activations need --method minmax or moving-average`);
      }
      return new HistogramObserver(method, opts.percentile);
    default:
      throw new UsageError(`unknown calibration method "${method as string}"; use one of ${CALIBRATION_METHODS.join(', ')}`);
  }
}

/** Mean of x per channel of axis 1 (NCHW or [N, F]): E[x] for bias correction. */
export function channelMeans(x: Tensor): number[] {
  return tidy(() => Array.from(ops.mean(x, axesExcept(x.rank, 1)).toFloat32Array()));
}
