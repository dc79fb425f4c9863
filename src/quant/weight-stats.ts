// What quantization did to the weights, for the comparison report: the signal-to-quantization-noise ratio of
// every layer whose weights are quantized, and a histogram of one layer's weights before and after.
//
//   SQNR(W) = 10 log10( sum w^2 / sum (w - q(w))^2 )  dB        (q: the layer's evaluation weights)
//
// "Before" is the layer's own float weights in the quantized model (after batch-norm folding for PTQ, the
// fine-tuned latent weights for QAT): the values q was applied to, so the SQNR measures the datatype alone.

import { noGrad } from '../autograd/graph.js';
import { tidy } from '../tensor/engine.js';
import type { FakeQuantLayer } from './fakequant.js';
import type { LayerInfo } from './graph.js';

export interface LayerSqnr {
  name: string;
  /** null when q(w) = w exactly (no noise: the ratio is infinite). */
  sqnr_db: number | null;
}

export interface WeightHistogram {
  layer: string;
  /** bins + 1 edges, shared by both counts. */
  edges: number[];
  float: number[];
  quantized: number[];
}

export const HISTOGRAM_BINS = 60;

/** 10 log10(sum w^2 / sum (w - q)^2), or null when q = w. */
export function sqnrDb(w: ArrayLike<number>, q: ArrayLike<number>): number | null {
  let signal = 0, noise = 0;
  for (let i = 0; i < w.length; i++) {
    signal += w[i] * w[i];
    const d = w[i] - q[i];
    noise += d * d;
  }
  if (noise === 0) return null;
  return 10 * Math.log10(signal / noise);
}

/** Counts of a and b in `bins` equal bins spanning both (the top edge belongs to the last bin). */
export function sharedHistogram(a: ArrayLike<number>, b: ArrayLike<number>, bins = HISTOGRAM_BINS): { edges: number[]; a: number[]; b: number[] } {
  let lo = Infinity, hi = -Infinity;
  for (const xs of [a, b]) {
    for (let i = 0; i < xs.length; i++) {
      if (xs[i] < lo) lo = xs[i];
      if (xs[i] > hi) hi = xs[i];
    }
  }
  if (!(lo < hi)) { // empty or constant: one unit-wide span around the value
    lo = Number.isFinite(lo) ? lo - 0.5 : 0;
    hi = lo + 1;
  }
  const width = (hi - lo) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, i) => (i === bins ? hi : lo + i * width));
  const count = (xs: ArrayLike<number>) => {
    const c = new Array<number>(bins).fill(0);
    for (let i = 0; i < xs.length; i++) c[Math.min(bins - 1, Math.max(0, Math.floor((xs[i] - lo) / width)))]++;
    return c;
  };
  return { edges, a: count(a), b: count(b) };
}

/** The float weights of a fake-quantized layer and the weights evaluation uses. */
function weightPair(fq: FakeQuantLayer): { float: Float32Array; quantized: Float32Array } {
  const float = fq.layer.weight.toFloat32Array();
  const quantized = tidy(() => noGrad(() => fq.evalWeight().toFloat32Array()));
  return { float, quantized };
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** SQNR of every layer with a weight quantizer, in execution order (the others are left out). */
export function layerSqnr(layers: readonly FakeQuantLayer[]): LayerSqnr[] {
  return layers.filter((l) => l.weight).map((l) => {
    const { float, quantized } = weightPair(l);
    const s = sqnrDb(float, quantized);
    return { name: l.name, sqnr_db: s === null ? null : round(s, 3) };
  });
}

/** The histogram of one layer's weights before and after quantization; undefined when its weights stay float. */
export function weightHistogram(layers: readonly FakeQuantLayer[], name: string, bins = HISTOGRAM_BINS): WeightHistogram | undefined {
  const l = layers.find((x) => x.name === name && x.weight);
  if (!l) return undefined;
  const { float, quantized } = weightPair(l);
  const h = sharedHistogram(float, quantized, bins);
  return { layer: name, edges: h.edges.map((e) => +e.toPrecision(6)), float: h.a, quantized: h.b };
}

/** The layer whose histogram the comparison records by default: the conv layer with the most weights, else the largest layer. */
export function defaultHistogramLayer(info: readonly LayerInfo[]): string {
  const convs = info.filter((l) => l.kind === 'conv');
  const pool = convs.length ? convs : info;
  return pool.reduce((m, l) => (l.params > m.params ? l : m), pool[0]).name;
}
