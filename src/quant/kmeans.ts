// k-means weight sharing: Han, Mao & Dally, "Deep Compression: Compressing Deep Neural Networks with Pruning,
// Trained Quantization and Huffman Coding", ICLR 2016, section 3.
//
//   clusters:   argmin_C sum_{i=1..k} sum_{w in c_i} |w - c_i|^2    over the weights of one layer     (eq. 1)
//               k = 2^b centroids; each weight stores its b-bit cluster index, the layer a codebook of k f32
//   init:       linear: c_i spaced evenly over [min W, max W] (the best of the paper's three initializations,
//               because it keeps the rare large weights represented)
//   iterations: Lloyd's algorithm in 1-D (assign to the nearest centroid, move centroids to their clusters' means)
//   fine-tune:  dL/dC_k = sum_ij dL/dW_ij 1(I_ij = k)                                             (eq. 3)
//               the cluster indices stay fixed; only the centroids learn
//   q(w) = C[I(w)]
//
// Everything runs as tensor ops over chunks of the flattened weights ([chunk, k] comparisons and one-hot
// products), so no loop touches the elements.

import { Tensor } from '../tensor/tensor.js';
import { tidy, keep } from '../tensor/engine.js';
import * as ops from '../autograd/index.js';
import { customGrad, tracksGrad } from '../autograd/graph.js';
import { LowbitError } from '../errors.js';
import {
  type Quantized, type Quantizer, type QuantizerDescription, type Role,
  checkFinite, checkInteger, codesToFloat, minMaxPerChannel, toCodes,
} from './quantizer.js';

export const HAN_2016 = 'Han et al., Deep Compression, ICLR 2016';

/** Elements per chunk times k stays under this, to bound the [chunk, k] temporaries. */
const CHUNK_CELLS = 1 << 22;

function chunkRanges(n: number, k: number): [number, number][] {
  const size = Math.max(1, Math.floor(CHUNK_CELLS / k));
  const out: [number, number][] = [];
  for (let s = 0; s < n; s += size) out.push([s, Math.min(n, s + size)]);
  return out;
}

/** Elements [start, end) of x flattened, as a column [len, 1]. */
function column(x: Tensor, start: number, end: number): Tensor {
  return ops.reshape(ops.slice(ops.reshape(x, [x.size]), [start], [end]), [end - start, 1]);
}

/** k centroids evenly spaced over [min, max] (Han et al.'s linear initialization). */
export function linearInitCentroids(min: number, max: number, k: number): number[] {
  if (k === 1 || max === min) return Array.from({ length: k }, () => Math.fround(min));
  return Array.from({ length: k }, (_, i) => Math.fround(min + ((max - min) * i) / (k - 1)));
}

/** Index of the nearest of the ascending `centroids` for every element (ties to the lower one), as f32 values. */
export function nearestCentroidCodes(x: Tensor, centroids: readonly number[]): Tensor {
  for (let i = 1; i < centroids.length; i++) {
    if (!(centroids[i] >= centroids[i - 1])) throw new LowbitError('kmeans: centroids must be sorted ascending for nearest assignment');
  }
  const k = centroids.length;
  if (k === 1 || x.size === 0) return Tensor.zeros(x.shape);
  return tidy(() => ops.noGrad(() => {
    const mids = Tensor.from(Float32Array.from(centroids.slice(1), (c, i) => (centroids[i] + c) / 2), [1, k - 1]);
    const parts = chunkRanges(x.size, k).map(([s, e]) => ops.sum(ops.greater(column(x, s, e), mids), 1));
    return ops.reshape(parts.length === 1 ? parts[0] : ops.concat(parts), [...x.shape]);
  }));
}

/** Per-cluster sums of `values` and element counts, for codes in [0, k). */
export function clusterSums(values: Tensor, codes: Tensor, k: number): { sums: number[]; counts: number[] } {
  const sums = new Array<number>(k).fill(0), counts = new Array<number>(k).fill(0);
  tidy(() => ops.noGrad(() => {
    const ids = Tensor.from(Float32Array.from({ length: k }, (_, i) => i), [1, k]);
    const c = codesToFloat(codes);
    for (const [s, e] of chunkRanges(values.size, k)) {
      const onehot = ops.equal(column(c, s, e), ids);
      const sv = ops.sum(ops.mul(onehot, column(values, s, e)), 0).toFloat32Array();
      const cv = ops.sum(onehot, 0).toFloat32Array();
      for (let j = 0; j < k; j++) {
        sums[j] += sv[j];
        counts[j] += cv[j];
      }
    }
  }));
  return { sums, counts };
}

/** C[codes]: the centroid of every element (codes of any shape, centroids [k]). No gradient. */
export function gatherCentroids(codes: Tensor, centroids: Tensor): Tensor {
  const k = centroids.size;
  return tidy(() => ops.noGrad(() => {
    const ids = Tensor.from(Float32Array.from({ length: k }, (_, i) => i), [1, k]);
    const c = codesToFloat(codes);
    const table = ops.reshape(centroids, [k, 1]);
    const parts = chunkRanges(codes.size, k).map(([s, e]) => ops.reshape(ops.matmul(ops.equal(column(c, s, e), ids), table), [e - s]));
    if (parts.length === 0) return Tensor.zeros(codes.shape);
    return ops.reshape(parts.length === 1 ? parts[0] : ops.concat(parts), [...codes.shape]);
  }));
}

/** Lloyd's k-means on the elements of x, from the linear initialization. Centroids ascending. */
export function kmeans1d(x: Tensor, k: number, opts: { maxIterations?: number } = {}): { centroids: number[]; iterations: number } {
  return ops.noGrad(() => lloyd(x, k, opts.maxIterations ?? 30));
}

function lloyd(x: Tensor, k: number, maxIterations: number): { centroids: number[]; iterations: number } {
  const { min, max } = minMaxPerChannel(x, null);
  let centroids = linearInitCentroids(min[0], max[0], k);
  let it = 0;
  while (it < maxIterations) {
    it++;
    const next = tidy(() => {
      const { sums, counts } = clusterSums(x, nearestCentroidCodes(x, centroids), k);
      return centroids.map((c, j) => (counts[j] > 0 ? Math.fround(sums[j] / counts[j]) : c)).sort((a, b) => a - b);
    });
    const moved = next.some((c, j) => c !== centroids[j]);
    centroids = next;
    if (!moved) break;
  }
  return { centroids, iterations: it };
}

export interface KMeansParams {
  /** The codebook, f32 [k]; a trainable parameter (requiresGrad) when made by params(). */
  centroids: Tensor;
  /** The fixed cluster index of every weight (u8, same shape as the weights), or null to assign by nearest. */
  assignment: Tensor | null;
}

/** `kmeans:<k>`: k = 2^b shared weights per layer. */
export class KMeansQuantizer implements Quantizer<KMeansParams> {
  readonly role: Role;
  readonly bits: number;
  readonly maxIterations: number;
  /** Gradient to the latent weights when fine-tuning with fixed assignments: none (the paper) or straight-through. */
  readonly weightGradient: 'none' | 'ste';

  constructor(readonly clusters: number, opts: { role?: Role; maxIterations?: number; weightGradient?: 'none' | 'ste' } = {}) {
    checkInteger(`kmeans:${clusters}: number of centroids`, clusters, 2, 256, 'use 2^b centroids for b-bit indices: 2, 4, 8, 16, 32, 64, 128 or 256');
    const bits = Math.log2(clusters);
    if (!Number.isInteger(bits)) {
      throw new LowbitError(`kmeans:${clusters}: the number of centroids must be a power of two (2^b for b-bit indices): 2, 4, 8, 16, 32, 64, 128 or 256`);
    }
    this.bits = bits;
    this.role = opts.role ?? 'weight';
    this.maxIterations = opts.maxIterations ?? 30;
    this.weightGradient = opts.weightGradient ?? 'none';
  }

  get spec(): string {
    return `kmeans:${this.clusters}`;
  }

  /**
   * Cluster x: the codebook (a kept [k] tensor with requiresGrad, to train with the paper's rule) and the
   * fixed assignment (kept). Dispose both with the layer.
   */
  params(x: Tensor): KMeansParams {
    checkFinite(x, this.spec);
    const { centroids } = kmeans1d(x, this.clusters, { maxIterations: this.maxIterations });
    const c = keep(Tensor.from(Float32Array.from(centroids), [this.clusters]));
    c.requiresGrad = true;
    if (x.name) c.name = `${x.name}.codebook`;
    const assignment = keep(tidy(() => toCodes(nearestCentroidCodes(x, centroids), 'u8')));
    return { centroids: c, assignment };
  }

  quantize(x: Tensor, params?: KMeansParams): Quantized<KMeansParams> {
    if (!params) {
      const p = this.params(x);
      p.centroids.requiresGrad = false;
      return { codes: p.assignment!, params: p };
    }
    checkFinite(x, this.spec);
    this.checkParams(x, params);
    if (params.assignment) return { codes: tidy(() => toCodes(params.assignment!, 'u8')), params };
    // Nearest assignment against the given codebook, sorted (the result carries the sorted codebook).
    const sorted = Array.from(params.centroids.toFloat32Array()).sort((a, b) => a - b);
    const codes = tidy(() => toCodes(nearestCentroidCodes(x, sorted), 'u8'));
    return { codes, params: { centroids: Tensor.from(Float32Array.from(sorted), [sorted.length]), assignment: null } };
  }

  dequantize(q: Quantized<KMeansParams>): Tensor {
    return gatherCentroids(q.codes, q.params.centroids);
  }

  /**
   * Without params: k-means of x now, straight-through gradient to x. With params: C[assignment] with the
   * paper's gradient to the centroids (and to x only when weightGradient is 'ste').
   */
  fakeQuantize(x: Tensor, params?: KMeansParams): Tensor {
    checkFinite(x, this.spec);
    if (!params) {
      const { centroids } = kmeans1d(x, this.clusters, { maxIterations: this.maxIterations });
      return customGrad(this.spec, [x], () => tidy(() => {
        const c = Tensor.from(Float32Array.from(centroids), [centroids.length]);
        return gatherCentroids(nearestCentroidCodes(x, centroids), c);
      }), (g) => [g]);
    }
    this.checkParams(x, params);
    const codes = params.assignment ?? this.quantize(x, params).codes;
    const k = params.centroids.size;
    const ste = this.weightGradient === 'ste';
    return customGrad(
      this.spec,
      [x, params.centroids],
      () => gatherCentroids(codes, params.centroids),
      (g) => {
        const gc = tracksGrad(params.centroids) ? Tensor.from(Float32Array.from(clusterSums(g, codes, k).sums), [k]) : null;
        return [ste ? g : null, gc];
      },
    );
  }

  private checkParams(x: Tensor, p: KMeansParams): void {
    if (p.centroids.size !== this.clusters) {
      throw new LowbitError(`${this.spec}: the codebook has ${p.centroids.size} centroids, the datatype ${this.clusters}`);
    }
    if (p.assignment && p.assignment.size !== x.size) {
      throw new LowbitError(`${this.spec}: the assignment ${p.assignment.describe()} does not match tensor ${x.describe()}`);
    }
  }

  describe(): QuantizerDescription {
    return {
      spec: this.spec,
      name: `k-means weight sharing, ${this.clusters} centroids (${this.bits}-bit indices)`,
      technique: 'kmeans', role: this.role, bits: this.bits,
      values: `{C_0, ..., C_${this.clusters - 1}}: a codebook of ${this.clusters} f32 per layer`,
      levels: this.clusters,
      params: `codebook of ${this.clusters} f32 per layer`,
      paper: HAN_2016,
      forward: 'q(w) = C[I(w)], C from k-means (linear init, Lloyd), I(w) = nearest centroid, fixed when fine-tuning',
      backward: 'dL/dC_k = sum_{I(w) = k} dL/dq(w) (eq. 3); latent weights: none (fixed indices) or straight-through',
    };
  }
}
