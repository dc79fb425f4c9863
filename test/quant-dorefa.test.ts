// DoReFa-Net (Zhou et al. 2016): quantize_k, tanh-normalized weights, clipped activations, noisy gradients.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as lb from '../src/index.js';
import { Tensor, tidy, backward, sum, mul } from '../src/index.js';
import {
  quantizeK, dorefaWeights, dorefaActivations, dorefaGradients, quantizeGradient, DorefaWeightQuantizer,
  DorefaActivationQuantizer, DorefaGradientQuantizer, parseDatatype, parseSpec,
} from '../src/quant/index.js';
import { assertClose, randomTensor, rng } from './helpers.js';
import { LowbitError } from '../src/errors.js';

const rand = rng(1606);
const arr = (t: Tensor) => Array.from(t.toArray());

describe('DoReFa-Net', () => {
  it('quantize_k(r) = round((2^k - 1) r) / (2^k - 1), straight-through', () => tidy(() => {
    const r = Tensor.from([0, 0.1, 0.2, 0.5, 0.84, 1]);
    r.requiresGrad = true;
    const y = quantizeK(r, 2);
    assertClose(y.toFloat32Array(), [0, 0, 1 / 3, 2 / 3, 1, 1], 1e-6);
    backward(sum(mul(y, Tensor.from([1, 2, 3, 4, 5, 6]))));
    assert.deepEqual(arr(r.grad!), [1, 2, 3, 4, 5, 6]);
  }));

  it('k-bit weights: 2 quantize_k(tanh(w) / (2 max|tanh w|) + 1/2) - 1; codes and values', () => tidy(() => {
    const w = Tensor.from([-1, 0, 0.5, 2]);
    assertClose(dorefaWeights(w, 2).toFloat32Array(), [-1, 1 / 3, 1 / 3, 1], 1e-6);
    const q = new DorefaWeightQuantizer(2);
    const { codes, params } = q.quantize(w);
    assert.deepEqual(arr(codes), [0, 2, 2, 3]);
    assertClose(q.dequantize({ codes, params }).toFloat32Array(), [-1, 1 / 3, 1 / 3, 1], 1e-6);
    assert.equal(q.describe().values, '{2i/3 - 1 : i = 0..3}');
  }));

  it('k-bit weights: the gradient is exact through tanh and the max, straight-through at quantize_k', () => tidy(() => {
    const w = randomTensor([5, 7], rand, -2, 2);
    const g = randomTensor([5, 7], rand);
    w.requiresGrad = true;
    backward(sum(mul(dorefaWeights(w, 3), g)));
    const got = w.grad!.toFloat32Array();
    w.grad!.dispose();
    w.grad = null;
    // with quantize_k replaced by the identity: 2 (tanh w / (2 max|tanh w|) + 1/2) - 1 = tanh w / max|tanh w|
    const t = lb.tanh(w);
    backward(sum(mul(lb.div(t, lb.max(lb.abs(t))), g)));
    assertClose(got, w.grad!.toFloat32Array(), 1e-5, 1e-6, 'dorefa weight gradient');
  }));

  it('1-bit weights: sign(w) E(|w|), identity gradient', () => tidy(() => {
    const w = Tensor.from([0.5, -1.5, 0, 2]);
    w.requiresGrad = true;
    const y = dorefaWeights(w, 1);
    assert.deepEqual(arr(y), [1, -1, 1, 1]);
    backward(sum(mul(y, Tensor.from([1, 2, 3, 4]))));
    assert.deepEqual(arr(w.grad!), [1, 2, 3, 4]);
    const q = new DorefaWeightQuantizer(1);
    const { codes, params } = q.quantize(w);
    assert.deepEqual(arr(codes), [1, 0, 1, 1]);
    assert.deepEqual(params, { scale: 1 });
    assert.deepEqual(arr(q.dequantize({ codes, params })), [1, -1, 1, 1]);
  }));

  it('activations: quantize_k(clip(x, 0, 1)), gradient only inside (0, 1)', () => tidy(() => {
    const x = Tensor.from([-0.5, 0, 0.2, 0.5, 0.9, 1.3]);
    x.requiresGrad = true;
    const y = dorefaActivations(x, 2);
    assertClose(y.toFloat32Array(), [0, 0, 1 / 3, 2 / 3, 1, 1], 1e-6);
    backward(sum(mul(y, Tensor.from([1, 2, 3, 4, 5, 6]))));
    assert.deepEqual(arr(x.grad!), [0, 0, 3, 4, 5, 0]);
    const q = new DorefaActivationQuantizer(2);
    assert.deepEqual(arr(q.quantize(x).codes), [0, 0, 1, 2, 3, 3]);
  }));

  it('gradients (eq. 12): values on the k-bit grid of 2 max0|dr|, unbiased thanks to the noise', () => tidy(() => {
    const n = 50_000, k = 4, levels = 15;
    const g = Tensor.from(Float32Array.from({ length: 2 * n }, (_, i) => (i < n ? 1 : 100) * Math.sin(i * 0.37)), [2, n]);
    const gv = g.toFloat32Array();
    const q = quantizeGradient(g, k, 77).toFloat32Array();
    for (let row = 0; row < 2; row++) {
      let m = 0;
      for (let i = row * n; i < (row + 1) * n; i++) m = Math.max(m, Math.abs(gv[i]));
      const stepSize = (2 * m) / levels;
      let err = 0;
      for (let i = row * n; i < (row + 1) * n; i++) {
        const level = (q[i] / (2 * m) + 0.5) * levels;
        assert.ok(Math.abs(level - Math.round(level)) < 1e-3 && level > -0.01 && level < levels + 0.01, `row ${row}: ${q[i]} is not a level`);
        err += q[i] - gv[i];
      }
      assert.ok(Math.abs(err / n) < 0.02 * stepSize, `row ${row}: mean error ${err / n} (step ${stepSize})`);
    }
    // the same seed gives the same noise
    assert.deepEqual(quantizeGradient(g, k, 77).toFloat32Array(), q);
  }));

  it('dorefaGradients is the identity forward and quantizes dL/dx backward', () => tidy(() => {
    const x = randomTensor([3, 10], rand);
    x.requiresGrad = true;
    const y = dorefaGradients(x, 2, 5);
    assert.deepEqual(y.toFloat32Array(), x.toFloat32Array());
    const g = randomTensor([3, 10], rand);
    backward(y, g);
    assert.deepEqual(x.grad!.toFloat32Array(), quantizeGradient(g, 2, 5).toFloat32Array());
    const gq = new DorefaGradientQuantizer(8, { seed: 1 });
    const { codes, params } = gq.quantize(g);
    assert.equal(codes.dtype, 'u8');
    assert.equal(params.maxAbs.length, 3);
    const back = gq.dequantize({ codes, params }).toFloat32Array();
    const gv = g.toFloat32Array();
    back.forEach((v, i) => assert.ok(Math.abs(v - gv[i]) <= (2 * params.maxAbs[Math.floor(i / 10)]) / 255 + 1e-6));
  }));

  it('specs: dorefa:w2a2g8 gives all three roles; bad bit widths are errors', () => {
    const d = parseDatatype('dorefa:w2a2g8');
    assert.deepEqual([d.scheme.weight!.spec, d.scheme.activation!.spec, d.scheme.gradient!.spec], ['dorefa:w2', 'dorefa:a2', 'dorefa:g8']);
    const w1a2 = parseDatatype('dorefa:w1a2');
    assert.equal(w1a2.scheme.gradient, null);
    assert.equal(parseDatatype('dorefa:w32a4').scheme.weight, null);
    assert.equal(parseSpec('w=dorefa:3,a=dorefa:w2a4').global.activation!.spec, 'dorefa:a4');
    for (const bad of ['dorefa', 'dorefa:', 'dorefa:w0', 'dorefa:w17a2', 'dorefa:w2x', 'dorefa:w2w3', 'dorefa:a2:g8', 'dorefa:w2.5']) {
      assert.throws(() => parseDatatype(bad), LowbitError, bad);
    }
    assert.throws(() => parseSpec('a=dorefa:w2'), /no activation quantizer/);
    assert.throws(() => parseDatatype('dorefa:w17a2'), /1 to 16 bits, or 32/);
  });
});
