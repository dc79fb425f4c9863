// Power-of-two weights with INQ's window, INQ's partition schedule, and Miyashita et al.'s log quantization.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy, backward, sum, mul } from '../src/index.js';
import { LowbitError } from '../src/errors.js';
import {
  PowerOfTwoQuantizer, InqQuantizer, LogQuantizer, powerOfTwoWindow, nearestPowerOfTwoExponent, inqPartition, inqFreeze,
  INQ_SCHEDULE, logFsr, parseDatatype,
} from '../src/quant/index.js';
import { randomTensor, rng } from './helpers.js';

const rand = rng(2017);
const arr = (t: Tensor) => Array.from(t.toArray());

describe('power-of-two weights', () => {
  it("INQ's window: n1 = floor(log2(4 max|W| / 3)), n2 = n1 + 1 - 2^(b-1)/2", () => {
    assert.deepEqual(powerOfTwoWindow(0.9, 5), { n1: 0, n2: -7 }); // log2(1.2) = 0.26
    assert.deepEqual(powerOfTwoWindow(0.7, 5), { n1: -1, n2: -8 }); // log2(0.933) = -0.1
    assert.deepEqual(powerOfTwoWindow(0.75, 4), { n1: 0, n2: -3 }); // 4 * 0.75 / 3 = 1 exactly
    assert.deepEqual(powerOfTwoWindow(3, 3), { n1: 2, n2: 1 });
    for (const s of [0.001, 0.3, 0.7499, 0.75, 1.4999, 1.5, 7, 123.4]) {
      assert.equal(nearestPowerOfTwoExponent(s), Math.floor(Math.log2((4 * s) / 3) + 1e-12), `s = ${s}`);
    }
  });

  it('worked example: pow2:4 rounds to the nearest of {0, +-1/8, +-1/4, +-1/2, +-1} in the linear domain', () => tidy(() => {
    const q = new PowerOfTwoQuantizer(4);
    const x = Tensor.from([1.0, 0.74, 0.76, 0.3, 0.0624, 0.0626, -0.2, 1.3, 0.75, -0.375]);
    assert.deepEqual(q.params(x), { n1: 0, n2: -3 });
    assert.deepEqual(arr(q.fakeQuantize(x)), [1, 0.5, 1, 0.25, 0, 0.125, -0.25, 1, 1, -0.5]);
    const { codes, params } = q.quantize(x);
    assert.equal(codes.dtype, 'i8');
    assert.deepEqual(arr(codes), [4, 3, 4, 2, 0, 1, -2, 4, 4, -3]);
    assert.deepEqual(arr(q.dequantize({ codes, params })), [1, 0.5, 1, 0.25, 0, 0.125, -0.25, 1, 1, -0.5]);
    assert.equal(q.describe().levels, 9);
  }));

  it('properties: codes in range, nearest in the linear domain, idempotent, monotone; straight-through gradient', () => tidy(() => {
    const q = new PowerOfTwoQuantizer(5);
    const x = randomTensor([4000], rand, -2, 2);
    const p = q.params(x);
    const values = [0];
    for (let k = p.n2; k <= p.n1; k++) values.push(2 ** k, -(2 ** k));
    const xs = x.toFloat32Array(), ys = q.fakeQuantize(x, p).toFloat32Array();
    xs.forEach((v, i) => {
      const best = Math.min(...values.map((c) => Math.abs(c - v)));
      assert.ok(Math.abs(ys[i] - v) <= best + 1e-7, `pow2(${v}) = ${ys[i]}`);
    });
    for (const c of arr(q.quantize(x, p).codes)) assert.ok(Math.abs(c) <= 8);
    assert.deepEqual(q.fakeQuantize(Tensor.from(ys), p).toFloat32Array(), ys);
    const sorted = q.fakeQuantize(Tensor.from(Float32Array.from(xs).sort()), p).toFloat32Array();
    for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i] >= sorted[i - 1]);
    const w = Tensor.from([0.3, -0.9, 5]);
    w.requiresGrad = true;
    backward(sum(mul(q.fakeQuantize(w), Tensor.from([1, 2, 3]))));
    assert.deepEqual(arr(w.grad!), [1, 2, 3]);
  }));
});

describe('INQ', () => {
  it('partition 50 / 75 / 87.5 / 100 %: largest magnitudes first, frozen weights stay frozen', () => tidy(() => {
    assert.deepEqual(INQ_SCHEDULE, [0.5, 0.75, 0.875, 1]);
    const w = Tensor.from([0.1, -0.8, 0.35, 0.05, -0.6, 0.2, 0.9, -0.45]);
    const q = new InqQuantizer(5);
    const window = q.params(w);
    assert.deepEqual({ n1: window.n1, n2: window.n2 }, { n1: 0, n2: -7 }); // 4 * 0.9 / 3 = 1.2
    const expected = [
      [0, 1, 0, 0, 1, 0, 1, 1],
      [0, 1, 1, 0, 1, 1, 1, 1],
      [1, 1, 1, 0, 1, 1, 1, 1],
      [1, 1, 1, 1, 1, 1, 1, 1],
    ];
    let mask: Tensor | null = null;
    INQ_SCHEDULE.forEach((fraction, step) => {
      const next = inqPartition(w, fraction, mask);
      assert.deepEqual(arr(next), expected[step], `step ${step + 1} (${fraction * 100} %)`);
      mask?.dispose();
      mask = next;
      inqFreeze(w, { ...window, mask }); // quantize and freeze this step's part
    });
    // after the last step every weight is a power of two (or 0) of the window
    assert.deepEqual(arr(w), [0.125, -1, 0.25, 0.0625, -0.5, 0.25, 1, -0.5]);
    (mask as Tensor | null)?.dispose();
  }));

  it('retraining step: W = T q(W) + (1-T) W, and frozen weights get no gradient', () => tidy(() => {
    const q = new InqQuantizer(5);
    const w = Tensor.from([0.1, -0.8, 0.35, 0.9]);
    const p = q.params(w);
    const mask = inqPartition(w, 0.5);
    assert.deepEqual(arr(mask), [0, 1, 0, 1]);
    w.requiresGrad = true;
    const y = q.fakeQuantize(w, { ...p, mask });
    assert.deepEqual(arr(y), [0.10000000149011612, -1, 0.3499999940395355, 1]);
    backward(sum(mul(y, Tensor.from([1, 2, 3, 4]))));
    assert.deepEqual(arr(w.grad!), [1, 0, 3, 0]);
    mask.dispose();
  }));

  it('partition with ties fills exactly the asked fraction; bad fractions are errors', () => tidy(() => {
    const w = Tensor.from([0.5, 0.5, 0.5, 0.5, 0.1, 0.1]);
    const m = inqPartition(w, 0.5);
    assert.equal(sum(m).item(), 3);
    m.dispose();
    assert.throws(() => inqPartition(w, 1.5), /in \[0, 1\]/);
    assert.throws(() => new InqQuantizer(5, { schedule: [0.5, 0.4, 1] }), /increasing/);
    assert.throws(() => new InqQuantizer(1), /from 2 to 8, got 1/);
  }));
});

describe('logarithmic quantization (Miyashita et al.)', () => {
  it('worked example: log2:3 activations, FSR = round(log2 max) + 1, rounding in the log domain', () => tidy(() => {
    const q = new LogQuantizer(3); // activations: unsigned, 7 exponents + zero
    const x = Tensor.from([6, 0.1, 0.08, 2.9, 2.8, -1, 0, 1]);
    assert.deepEqual(q.params(x), { fsr: 4 }); // round(log2 6 = 2.58) = 3
    assert.deepEqual(arr(q.fakeQuantize(x)), [8, 0.125, 0, 4, 2, 0, 0, 1]);
    const { codes, params } = q.quantize(x);
    assert.equal(codes.dtype, 'u8');
    assert.deepEqual(arr(codes), [7, 1, 0, 6, 5, 0, 0, 4]);
    assert.deepEqual(arr(q.dequantize({ codes, params })), [8, 0.125, 0, 4, 2, 0, 0, 1]);
    // saturation above 2^(FSR-1)
    assert.deepEqual(arr(q.fakeQuantize(Tensor.from([20, 1000]), { fsr: 4 })), [8, 8]);
    assert.equal(logFsr(6), 4);
    assert.equal(logFsr(5.6), 3); // below sqrt(2) * 4
  }));

  it('signed for weights: sign bit plus 2^(b-1) - 1 exponents', () => tidy(() => {
    const q = new LogQuantizer(4, { role: 'weight' });
    assert.equal(q.signed, true);
    const x = Tensor.from([-1, 0.5, 0.012, -0.0078125, 0.3]);
    const p = q.params(x); // max 1 -> FSR 1: exponents -6..0
    assert.deepEqual(p, { fsr: 1 });
    assert.deepEqual(arr(q.fakeQuantize(x, p)), [-1, 0.5, 0.015625, 0, 0.25]); // log2 0.012 = -6.4 -> -6; 2^-7 is below the window; log2 0.3 = -1.74 -> -2
    assert.deepEqual(arr(q.quantize(x, p).codes), [-7, 6, 1, 0, 5]);
    assert.equal(q.describe().levels, 15);
  }));

  it('properties and backward (straight-through up to the largest level)', () => tidy(() => {
    const q = new LogQuantizer(4);
    const x = randomTensor([3000], rand, 0, 10);
    const p = q.params(x);
    const y = q.fakeQuantize(x, p).toFloat32Array();
    assert.deepEqual(q.fakeQuantize(Tensor.from(y), p).toFloat32Array(), y, 'idempotent');
    const sorted = q.fakeQuantize(Tensor.from(x.toFloat32Array().sort()), p).toFloat32Array();
    for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i] >= sorted[i - 1], 'monotone');
    for (const c of arr(q.quantize(x, p).codes)) assert.ok(c >= 0 && c <= 15);
    const v = Tensor.from([-1, 0.5, 7.9, 8, 9]);
    v.requiresGrad = true;
    backward(sum(mul(q.fakeQuantize(v, { fsr: 4 }), Tensor.from([1, 2, 3, 4, 5]))));
    assert.deepEqual(arr(v.grad!), [0, 2, 3, 4, 0]);
  }));

  it('bad input', () => {
    for (const bad of ['pow2:1', 'pow2:9', 'pow2', 'pow2:4.5', 'log2:0', 'log2:-3', 'log2:4:wide', 'inq:33', 'inq:x']) {
      assert.throws(() => parseDatatype(bad), LowbitError, bad);
    }
    assert.throws(() => parseDatatype('pow2:9'), /bits must be an integer from 2 to 8, got "9"/);
    assert.throws(() => parseDatatype('a=pow2:4'), LowbitError);
    const x = Tensor.from([NaN]);
    x.name = 'fc.weight';
    assert.throws(() => new PowerOfTwoQuantizer(4).fakeQuantize(x), /fc\.weight/);
    assert.throws(() => new LogQuantizer(4).fakeQuantize(x), /fc\.weight/);
  });
});
