// k-means weight sharing (Han et al. 2016): linear initialization, Lloyd iterations, the paper's Figure 3
// (indices, centroids and the centroid gradient), and bad input.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy, backward, sum, mul } from '../src/index.js';
import { LowbitError } from '../src/errors.js';
import {
  KMeansQuantizer, kmeans1d, linearInitCentroids, nearestCentroidCodes, gatherCentroids, parseDatatype,
} from '../src/quant/index.js';
import { assertClose, randomTensor, rng } from './helpers.js';

const rand = rng(1510);
const arr = (t: Tensor) => Array.from(t.toArray());

// Han et al. 2016, Figure 3: a 4x4 weight matrix shared by 4 clusters.
const FIG3_WEIGHTS = [2.09, -0.98, 1.48, 0.09, 0.05, -0.14, -1.08, 2.12, -0.91, 1.92, 0, -1.03, 1.87, 0, 1.53, 1.49];
const FIG3_INDICES = [3, 0, 2, 1, 1, 1, 0, 3, 0, 3, 1, 0, 3, 1, 2, 2];
const FIG3_CENTROIDS = [-1, 0, 1.5, 2];
const FIG3_GRADIENT = [-0.03, -0.01, 0.03, 0.02, -0.01, 0.01, -0.02, 0.12, -0.01, 0.02, 0.04, 0.01, -0.07, -0.02, 0.01, -0.02];
const FIG3_CENTROID_GRADIENT = [-0.03, 0.04, 0.02, 0.04]; // "group by, reduce"

describe('k-means weight sharing', () => {
  it('linear initialization spaces 2^b centroids over [min W, max W]', () => {
    assertClose(linearInitCentroids(-1, 1, 4), [-1, -1 / 3, 1 / 3, 1], 1e-6);
    assert.deepEqual(linearInitCentroids(2, 2, 2), [2, 2]);
  });

  it("Figure 3: k-means from the linear init finds the paper's centroids and indices", () => tidy(() => {
    const w = Tensor.from(FIG3_WEIGHTS, [4, 4]);
    const { centroids, iterations } = kmeans1d(w, 4);
    assertClose(centroids, FIG3_CENTROIDS, 1e-5, 1e-6);
    assert.ok(iterations <= 3);
    assert.deepEqual(arr(nearestCentroidCodes(w, FIG3_CENTROIDS)), FIG3_INDICES);
    const q = new KMeansQuantizer(4);
    const { codes, params } = q.quantize(w);
    assert.equal(codes.dtype, 'u8');
    assert.deepEqual(arr(codes), FIG3_INDICES);
    assertClose(q.dequantize({ codes, params }).toFloat32Array(), FIG3_INDICES.map((i) => FIG3_CENTROIDS[i]), 1e-5, 1e-6);
  }));

  it("Figure 3: fine-tuning sums each cluster's gradients into its centroid (eq. 3); indices stay fixed", () => tidy(() => {
    const w = Tensor.from(FIG3_WEIGHTS, [4, 4]);
    const centroids = Tensor.from(FIG3_CENTROIDS);
    centroids.requiresGrad = true;
    const assignment = Tensor.from(FIG3_INDICES, [4, 4], 'u8');
    w.requiresGrad = true;
    const q = new KMeansQuantizer(4);
    const y = q.fakeQuantize(w, { centroids, assignment });
    assert.deepEqual(arr(y), FIG3_INDICES.map((i) => FIG3_CENTROIDS[i]));
    backward(sum(mul(y, Tensor.from(FIG3_GRADIENT, [4, 4]))));
    assertClose(centroids.grad!.toFloat32Array(), FIG3_CENTROID_GRADIENT, 1e-5, 1e-7);
    assert.equal(w.grad, null); // the paper trains the shared values only
    const ste = new KMeansQuantizer(4, { weightGradient: 'ste' });
    centroids.grad!.dispose();
    centroids.grad = null;
    backward(sum(mul(ste.fakeQuantize(w, { centroids, assignment }), Tensor.from(FIG3_GRADIENT, [4, 4]))));
    assertClose(w.grad!.toFloat32Array(), FIG3_GRADIENT, 1e-6, 1e-8);
  }));

  it('params() gives a trainable codebook and the fixed assignment', () => tidy(() => {
    const w = randomTensor([8, 3, 3, 3], rand);
    w.name = 'conv2.weight';
    const q = new KMeansQuantizer(16);
    const p = q.params(w);
    assert.equal(p.centroids.requiresGrad, true);
    assert.equal(p.centroids.name, 'conv2.weight.codebook');
    assert.deepEqual(p.assignment!.shape, [8, 3, 3, 3]);
    const codes = arr(p.assignment!);
    for (const c of codes) assert.ok(c >= 0 && c < 16);
    assert.ok(new Set(codes).size > 8);
    // without params: k-means now, straight-through gradient
    w.requiresGrad = true;
    const y = q.fakeQuantize(w);
    backward(sum(y));
    assert.deepEqual(arr(w.grad!), new Array(w.size).fill(1));
    assertClose(y.toFloat32Array(), gatherCentroids(p.assignment!, p.centroids).toFloat32Array(), 1e-6, 1e-7);
    p.centroids.dispose();
    p.assignment!.dispose();
  }));

  it('Lloyd iterations never increase the error of the linear initialization; nearest assignment property', () => tidy(() => {
    const w = randomTensor([2000], rand, -1, 1);
    const v = w.toFloat32Array();
    const sse = (c: number[]) => v.reduce((s, x) => s + Math.min(...c.map((ci) => (x - ci) ** 2)), 0);
    const init = linearInitCentroids(Math.min(...v), Math.max(...v), 8);
    const { centroids } = kmeans1d(w, 8);
    assert.ok(sse(centroids) <= sse(init) + 1e-9, `${sse(centroids)} > ${sse(init)}`);
    const codes = arr(nearestCentroidCodes(w, centroids));
    v.forEach((x, i) => {
      const best = Math.min(...centroids.map((c) => Math.abs(x - c)));
      assert.ok(Math.abs(x - centroids[codes[i]]) <= best + 1e-7);
    });
  }));

  it('bad input: 2^b centroids from 2 to 256, matching codebooks, NaN', () => tidy(() => {
    for (const bad of ['kmeans:3', 'kmeans:512', 'kmeans:1', 'kmeans:0', 'kmeans:16.5', 'kmeans', 'kmeans:16:x', 'a=kmeans:16']) {
      assert.throws(() => parseDatatype(bad), LowbitError, bad);
    }
    assert.throws(() => new KMeansQuantizer(3), /power of two/);
    assert.throws(() => parseDatatype('kmeans:512'), /from 2 to 256, got "512"/);
    const q = new KMeansQuantizer(4);
    assert.throws(() => q.fakeQuantize(Tensor.from([1, 2]), { centroids: Tensor.from([1, 2]), assignment: null }), /2 centroids/);
    const x = Tensor.from([1, NaN]);
    x.name = 'fc1.weight';
    assert.throws(() => q.params(x), /fc1\.weight/);
  }));
});
