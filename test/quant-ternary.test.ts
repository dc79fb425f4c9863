// TWN (Li & Liu 2016) and TTQ (Zhu et al. 2017): thresholds, scales, codes and the papers' gradients.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy, backward, sum, mul } from '../src/index.js';
import {
  TwnQuantizer, TtqQuantizer, twnThreshold, twnAlpha, ttqThreshold, ttqTernarize, ternarize, parseDatatype,
} from '../src/quant/index.js';
import { assertClose, gradcheck, randomTensor, rng } from './helpers.js';

const rand = rng(1612);
const arr = (t: Tensor) => Array.from(t.toArray());

describe('TWN', () => {
  it('worked example: Delta = 0.7 mean|W|, alpha = mean of |W| above Delta', () => tidy(() => {
    const w = Tensor.from([0.9, -0.05, 0.3, -0.6, 0.1, 0.0, -0.2, 0.45]);
    // mean|W| = 2.6 / 8 = 0.325 -> Delta = 0.2275; above: 0.9, 0.3, 0.6, 0.45 -> alpha = 2.25 / 4 = 0.5625
    assertClose(twnThreshold(w), [0.2275], 1e-6);
    assertClose(twnAlpha(w, twnThreshold(w)), [0.5625], 1e-6);
    const q = new TwnQuantizer();
    const p = q.params(w);
    assert.equal(p.axis, null);
    const { codes } = q.quantize(w);
    assert.equal(codes.dtype, 'i8');
    assert.deepEqual(arr(codes), [1, 0, 1, -1, 0, 0, 0, 1]);
    assertClose(q.fakeQuantize(w).toFloat32Array(), [0.5625, 0, 0.5625, -0.5625, 0, 0, 0, 0.5625], 1e-6);
    assertClose(q.dequantize(q.quantize(w)).toFloat32Array(), [0.5625, 0, 0.5625, -0.5625, 0, 0, 0, 0.5625], 1e-6);
  }));

  it('per output channel, straight-through gradient, idempotent codes', () => tidy(() => {
    const w = Tensor.from([1, -1, 0.1, 0, 10, -4, 2, 0.5], [2, 4]);
    const q = new TwnQuantizer(0);
    const p = q.params(w);
    assertClose(p.delta, [0.7 * 0.525, 0.7 * 4.125], 1e-6); // channel means 2.1/4, 16.5/4
    assertClose(p.alpha, [1, 7], 1e-6); // above: {1, 1} and {10, 4}
    assert.deepEqual(arr(q.quantize(w, p).codes), [1, -1, 0, 0, 1, -1, 0, 0]);
    w.requiresGrad = true;
    backward(sum(mul(q.fakeQuantize(w, p), Tensor.from([1, 2, 3, 4, 5, 6, 7, 8], [2, 4]))));
    assert.deepEqual(arr(w.grad!), [1, 2, 3, 4, 5, 6, 7, 8]);
    const y = q.fakeQuantize(w, p);
    assert.deepEqual(arr(ternarize(y, Tensor.from(p.delta, [2, 1]))), [1, -1, 0, 0, 1, -1, 0, 0]);
    assert.equal(parseDatatype('twn:per-channel').scheme.weight!.create().describe().name.includes('output channel'), true);
  }));
});

describe('TTQ', () => {
  it('worked example: Delta = t max|W|; W^p above, -W^n below, 0 between', () => tidy(() => {
    const w = Tensor.from([0.9, -0.05, 0.3, -0.6, 0.1, 0.0, -0.2, 0.45]);
    assert.equal(ttqThreshold(w, 0.2), Math.fround(0.2 * Math.fround(0.9)));
    const wp = Tensor.from([1.5]), wn = Tensor.from([0.7]);
    const y = ttqTernarize(w, wp, wn, ttqThreshold(w, 0.2));
    assertClose(y.toFloat32Array(), [1.5, 0, 1.5, -0.7, 0, 0, -0.7, 1.5], 1e-6);
    const q = new TtqQuantizer(0.2);
    const { codes } = q.quantize(w, { t: 0.2, wp, wn });
    assert.deepEqual(arr(codes), [1, 0, 1, -1, 0, 0, -1, 1]);
    assertClose(q.dequantize({ codes, params: { t: 0.2, wp, wn } }).toFloat32Array(), [1.5, 0, 1.5, -0.7, 0, 0, -0.7, 1.5], 1e-6);
  }));

  it("gradients (eqs. 7-8): dL/dW^p = sum over I_p, dL/dW^n = -sum over I_n, latent W^p g / g / W^n g", () => tidy(() => {
    const w = Tensor.from([0.9, -0.05, 0.3, -0.6, 0.1, 0.0, -0.2, 0.45]);
    const g = [1, 2, 3, 4, 5, 6, 7, 8];
    const wp = Tensor.from([1.5]), wn = Tensor.from([0.7]);
    for (const t of [w, wp, wn]) t.requiresGrad = true;
    backward(sum(mul(ttqTernarize(w, wp, wn, Math.fround(0.18)), Tensor.from(g))));
    assertClose(wp.grad!.toFloat32Array(), [1 + 3 + 8], 1e-6);
    assertClose(wn.grad!.toFloat32Array(), [-(4 + 7)], 1e-6);
    assertClose(w.grad!.toFloat32Array(), [1.5 * 1, 2, 1.5 * 3, 0.7 * 4, 5, 6, 0.7 * 7, 1.5 * 8], 1e-6);
  }));

  it('the scale gradients are true gradients (finite differences)', () => tidy(() => {
    const w = randomTensor([4, 9], rand);
    const delta = ttqThreshold(w, 0.05);
    // keep weights away from the threshold so that finite differences in W^p, W^n see the same partition
    gradcheck((x, wp, wn) => ttqTernarize(x, wp, wn, delta), [w, Tensor.from([0.8]), Tensor.from([1.1])], { check: [false, true, true] });
  }));

  it('params() initializes W^p, W^n as trainable scalars from the mean magnitudes of each part', () => tidy(() => {
    const w = Tensor.from([1, 0.5, -2, -0.01, 0.02, -1]);
    w.name = 'fc.weight';
    const q = new TtqQuantizer(); // Delta = 0.05 * 2 = 0.1
    const p = q.params(w);
    assert.equal(p.wp.requiresGrad && p.wn.requiresGrad, true);
    assert.equal(p.wp.name, 'fc.weight.ttq_wp');
    assertClose(p.wp.toFloat32Array(), [0.75], 1e-6);
    assertClose(p.wn.toFloat32Array(), [1.5], 1e-6);
    assertClose(q.fakeQuantize(w, p).toFloat32Array(), [0.75, 0.75, -1.5, 0, 0, -1.5], 1e-6);
    p.wp.dispose();
    p.wn.dispose();
    assert.equal(q.spec, 'ttq');
    assert.equal(new TtqQuantizer(0.1).spec, 'ttq:0.1');
    assert.throws(() => new TtqQuantizer(0), /threshold factor t must be in \(0, 1\)/);
    assert.throws(() => parseDatatype('ttq:1.5'), /threshold factor/);
    assert.throws(() => parseDatatype('ttq:abc'), /threshold factor/);
    assert.equal(parseDatatype('ttq:0.1').spec, 'ttq:0.1');
  }));
});
