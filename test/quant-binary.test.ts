// BinaryConnect (deterministic, stochastic), BNN's hardtanh-window estimator, XNOR-Net / BWN scales and
// gradients, XNOR-Net's input scale K.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy, backward, sum, mul, noGrad } from '../src/index.js';
import {
  BinaryConnectQuantizer, SignQuantizer, ScaledBinaryQuantizer, binarize, steSign, clipLatentWeights, xnorAlpha,
  xnorInputScale, parseDatatype,
} from '../src/quant/index.js';
import { assertClose, randomTensor, rng } from './helpers.js';

const rand = rng(2016);
const arr = (t: Tensor) => Array.from(t.toArray());

describe('BinaryConnect', () => {
  it('deterministic: +1 for w >= 0, -1 otherwise; codes +-1 in i8; identity straight-through', () => tidy(() => {
    const q = new BinaryConnectQuantizer();
    const w = Tensor.from([-0.5, 0, 0.3, -3, 2]);
    assert.deepEqual(arr(binarize(w)), [-1, 1, 1, -1, 1]);
    const { codes } = q.quantize(w);
    assert.equal(codes.dtype, 'i8');
    assert.deepEqual(arr(codes), [-1, 1, 1, -1, 1]);
    w.requiresGrad = true;
    backward(sum(mul(q.fakeQuantize(w), Tensor.from([1, 2, 3, 4, 5]))));
    assert.deepEqual(arr(w.grad!), [1, 2, 3, 4, 5]);
  }));

  it('stochastic: P(+1) = clip((w + 1) / 2, 0, 1) over 2e4 seeded draws per value, so E[w_b] = w in [-1, 1]', () => tidy(() => {
    const values = [0.5, -2, 1.5, 0, -0.4];
    const n = 20_000;
    const w = Tensor.from(Float32Array.from({ length: values.length * n }, (_, i) => values[Math.floor(i / n)]), [values.length, n]);
    const q = new BinaryConnectQuantizer(true, { seed: 11 });
    const b = q.fakeQuantize(w).toFloat32Array();
    values.forEach((v, r) => {
      let plus = 0;
      for (let i = 0; i < n; i++) plus += b[r * n + i] === 1 ? 1 : 0;
      const p = Math.min(1, Math.max(0, (v + 1) / 2));
      assert.ok(Math.abs(plus / n - p) <= 5 * Math.sqrt((p * (1 - p)) / n) + 1e-9, `w = ${v}: P(+1) ${plus / n} vs ${p}`);
    });
    for (const x of b) assert.ok(x === 1 || x === -1);
  }));

  it('latent weights are clipped to [-1, 1] after an update', () => tidy(() => {
    const w = Tensor.from([-3, -0.5, 0.2, 1.7]);
    clipLatentWeights(w);
    assert.deepEqual(arr(w), [-1, -0.5, 0.20000000298023224, 1]);
  }));
});

describe('BNN', () => {
  it('sign with the hardtanh window: g_r = g_q 1_{|r| <= 1} (Hubara et al. eq. 4)', () => tidy(() => {
    const x = Tensor.from([-2, -1, -0.5, 0, 0.5, 1, 2]);
    x.requiresGrad = true;
    const y = steSign(x);
    assert.deepEqual(arr(y), [-1, -1, -1, 1, 1, 1, 1]);
    backward(sum(mul(y, Tensor.from([1, 2, 3, 4, 5, 6, 7]))));
    assert.deepEqual(arr(x.grad!), [0, 2, 3, 4, 5, 6, 0]);
    const a = new SignQuantizer('bnn');
    assert.deepEqual(arr(a.quantize(Tensor.from([-0.1, 0, 4])).codes), [-1, 1, 1]);
    const bnn = parseDatatype('bnn');
    assert.equal(bnn.scheme.weight!.create().describe().bits, 1);
    assert.equal(bnn.scheme.activation!.create().describe().role, 'activation');
  }));
});

describe('XNOR-Net and BWN', () => {
  it('alpha = mean|W| per output channel (Rastegari et al. eq. 6)', () => tidy(() => {
    const w = Tensor.from([0.5, -1.5, 0.25, -0.75, 2, -0.1, 0, 0.3], [2, 1, 2, 2]);
    assertClose(xnorAlpha(w), [0.75, 0.6], 1e-6, 1e-7);
    const q = new ScaledBinaryQuantizer('xnor');
    const p = q.params(w);
    assertClose(p.alpha, [0.75, 0.6], 1e-6, 1e-7);
    assert.equal(p.axis, 0);
    assertClose(q.fakeQuantize(w).toFloat32Array(), [0.75, -0.75, 0.75, -0.75, 0.6, -0.6, 0.6, 0.6], 1e-6, 1e-7);
    const { codes, params } = q.quantize(w);
    assert.deepEqual(arr(codes), [1, -1, 1, -1, 1, -1, 1, 1]);
    assertClose(q.dequantize({ codes, params }).toFloat32Array(), [0.75, -0.75, 0.75, -0.75, 0.6, -0.6, 0.6, 0.6], 1e-6, 1e-7);
    assert.equal(new ScaledBinaryQuantizer('bwn').describe().paper, q.describe().paper);
  }));

  it("gradient: alpha g 1_{|W| <= 1} + sign(W) (1/n) sum_j g_j sign(W_j), the paper's rule", () => tidy(() => {
    const w = randomTensor([3, 2, 3, 3], rand, -1.3, 1.3);
    const g = randomTensor([3, 2, 3, 3], rand);
    w.requiresGrad = true;
    backward(sum(mul(new ScaledBinaryQuantizer('xnor').fakeQuantize(w), g)));
    const wv = w.toFloat32Array(), gv = g.toFloat32Array(), got = w.grad!.toFloat32Array();
    const n = 18;
    for (let c = 0; c < 3; c++) {
      let alpha = 0, dot = 0;
      for (let i = c * n; i < (c + 1) * n; i++) {
        alpha += Math.abs(wv[i]) / n;
        dot += gv[i] * (wv[i] >= 0 ? 1 : -1);
      }
      for (let i = c * n; i < (c + 1) * n; i++) {
        const expected = alpha * gv[i] * (Math.abs(wv[i]) <= 1 ? 1 : 0) + Math.sign(wv[i]) * dot / n;
        assert.ok(Math.abs(got[i] - expected) < 1e-5, `element ${i}: ${got[i]} vs ${expected}`);
      }
    }
  }));

  it('the alpha part of the gradient is the true gradient (finite differences; sign is locally constant)', () => tidy(() => {
    const w = randomTensor([2, 8], rand, 0.2, 0.9);
    const wv = w.view() as Float32Array;
    for (let i = 0; i < wv.length; i += 2) wv[i] = -wv[i];
    const v = randomTensor([2, 8], rand);
    const q = new ScaledBinaryQuantizer('bwn');
    w.requiresGrad = true;
    backward(sum(mul(q.fakeQuantize(w), v)));
    const analytic = w.grad!.toFloat32Array();
    const alpha = xnorAlpha(w);
    const loss = () => noGrad(() => tidy(() => sum(mul(q.fakeQuantize(w), v)).item()));
    const eps = 1e-3;
    for (let i = 0; i < wv.length; i++) {
      const orig = wv[i];
      (w.view() as Float32Array)[i] = orig + eps;
      const up = loss();
      (w.view() as Float32Array)[i] = orig - eps;
      const down = loss();
      (w.view() as Float32Array)[i] = orig;
      const numeric = (up - down) / (2 * eps);
      const steTerm = alpha[Math.floor(i / 8)] * v.toFloat32Array()[i];
      assert.ok(Math.abs(analytic[i] - steTerm - numeric) < 2e-3, `element ${i}: ${analytic[i] - steTerm} vs ${numeric}`);
    }
  }));

  it('input scale K = A * k: mean over channels of |I|, averaged over each window', () => tidy(() => {
    const x = Tensor.from(Float32Array.from({ length: 18 }, (_, i) => (i < 9 ? -1 : 3)), [1, 2, 3, 3]);
    const K = xnorInputScale(x, { kernel: 3, padding: 1 });
    assert.deepEqual(K.shape, [1, 1, 3, 3]);
    assertClose(K.toFloat32Array(), [8 / 9, 12 / 9, 8 / 9, 12 / 9, 2, 12 / 9, 8 / 9, 12 / 9, 8 / 9], 1e-6, 1e-6);
    const xa = new SignQuantizer('xnor');
    assert.deepEqual(arr(xa.fakeQuantize(x)).slice(8, 10), [-1, 1]);
    const xnor = parseDatatype('xnor');
    assert.equal(xnor.scheme.weight!.create().describe().params, 'alpha per output channel (f32)');
    assert.equal(parseDatatype('bwn').scheme.activation, null);
  }));

  it('bad input: per-channel axis beyond the tensor, NaN', () => tidy(() => {
    assert.throws(() => new ScaledBinaryQuantizer('xnor', 2).params(Tensor.from([1, 2])), /per-channel axis 2 does not exist/);
    const x = Tensor.from([1, Infinity]);
    x.name = 'layer1.0.conv1.weight';
    assert.throws(() => new ScaledBinaryQuantizer('xnor').fakeQuantize(x), /layer1\.0\.conv1\.weight/);
    assert.throws(() => new BinaryConnectQuantizer().fakeQuantize(x), /NaN or Inf/);
    assert.throws(() => parseDatatype('binary:maybe'), /unknown option/);
    assert.throws(() => parseDatatype('bnn:2'), /unknown option/);
  }));
});
