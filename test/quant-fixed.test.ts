// Fixed point Q(I.F) (Gupta et al. 2015), dynamic fixed point (Ristretto) and Courbariaux et al.'s
// overflow-rate scale update.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy, backward, sum, mul } from '../src/index.js';
import { LowbitError } from '../src/errors.js';
import {
  FixedPointQuantizer, DynamicFixedPointQuantizer, OverflowRateScaler, rangeFracLength, overflowRate, fixedRange, parseDatatype,
} from '../src/quant/index.js';
import { randomTensor, rng } from './helpers.js';

const rand = rng(404);

describe('fixed point', () => {
  it('worked example: fixed:8.4 rounds to 1/16, ties to even, saturates at [-8, 7.9375]', () => tidy(() => {
    const q = new FixedPointQuantizer(8, 4);
    const x = Tensor.from([0.03, 1.5, -2.3, 100, -100, 0.09375, 0.15625, -0.09375]);
    const { codes, params } = q.quantize(x);
    assert.equal(codes.dtype, 'i8');
    assert.deepEqual(params, { fracLength: 4 });
    assert.deepEqual([...codes.toArray()], [0, 24, -37, 127, -128, 2, 2, -2]);
    assert.deepEqual([...q.dequantize({ codes, params }).toArray()], [0, 1.5, -2.3125, 7.9375, -8, 0.125, 0.125, -0.125]);
    assert.deepEqual([...q.fakeQuantize(x).toArray()], [0, 1.5, -2.3125, 7.9375, -8, 0.125, 0.125, -0.125]);
  }));

  it('unsigned and 16-bit words', () => tidy(() => {
    const u = new FixedPointQuantizer(8, 4, { signed: false });
    assert.deepEqual([...u.fakeQuantize(Tensor.from([-1, 3.3, 20])).toArray()], [0, 3.3125, 15.9375]);
    assert.equal(u.quantize(Tensor.from([20])).codes.dtype, 'u8');
    const q = new FixedPointQuantizer(16, 8);
    assert.deepEqual(fixedRange(16, 8, true), { min: -128, max: 127.99609375, step: 1 / 256 });
    const { codes } = q.quantize(Tensor.from([1 / 3, -200]));
    assert.equal(codes.dtype, 'i32');
    assert.deepEqual([...codes.toArray()], [85, -32768]);
  }));

  it('properties: codes in range, error <= step/2 in range, idempotent, monotone', () => tidy(() => {
    for (const [W, F, signed] of [[8, 4, true], [6, 0, true], [12, 11, false], [16, 8, true], [24, 20, true]] as const) {
      const q = new FixedPointQuantizer(W, F, { signed });
      const r = fixedRange(W, F, signed);
      const x = randomTensor([4096], rand, r.min * 1.2 - 1, r.max * 1.2 + 1);
      const xs = x.toFloat32Array();
      const { codes } = q.quantize(x);
      const y = q.fakeQuantize(x).toFloat32Array();
      for (const c of codes.toArray()) assert.ok(c >= r.min / r.step && c <= r.max / r.step, `code ${c} out of range`);
      xs.forEach((v, i) => {
        if (v >= r.min && v <= r.max) assert.ok(Math.abs(y[i] - v) <= r.step / 2 + 1e-12, `${q.spec}: |${y[i]} - ${v}| > step/2`);
        else assert.equal(y[i], v < r.min ? r.min : r.max);
      });
      assert.deepEqual(q.fakeQuantize(Tensor.from(y)).toFloat32Array(), Float32Array.from(y), `${q.spec} is idempotent`);
      const sorted = Float32Array.from(xs).sort();
      const ys = q.fakeQuantize(Tensor.from(sorted)).toFloat32Array();
      for (let i = 1; i < ys.length; i++) assert.ok(ys[i] >= ys[i - 1], `${q.spec} is monotone`);
    }
  }));

  it('stochastic rounding (Gupta et al.) is unbiased inside the range: mean error ~ 0 over 1e5 samples', () => tidy(() => {
    const q = new FixedPointQuantizer(8, 4, { rounding: 'stochastic', seed: 3 });
    const x = randomTensor([100_000], rand, -7, 7);
    const err = tidy(() => sum(q.fakeQuantize(x)).item() - sum(x).item()) / x.size;
    // each error has |e| < 1/16, sd <= 1/32: 5 sd of the mean
    assert.ok(Math.abs(err) < 5 * (1 / 32) / Math.sqrt(x.size), `mean error ${err}`);
    const nearest = new FixedPointQuantizer(8, 4);
    const y = Tensor.full([100_000], 0.03); // below half a step: nearest always gives 0, stochastic 0.03 on average
    assert.equal(sum(nearest.fakeQuantize(y)).item(), 0);
    const mean = sum(q.fakeQuantize(y)).item() / y.size;
    assert.ok(Math.abs(mean - 0.03) < 0.002, `stochastic mean ${mean}`);
    // successive calls draw fresh noise; the same seed reproduces the run
    const a = q.fakeQuantize(y).toArray(), b = q.fakeQuantize(y).toArray();
    assert.notDeepEqual(a, b);
    const again = new FixedPointQuantizer(8, 4, { rounding: 'stochastic', seed: 3 });
    again.fakeQuantize(x);
    again.fakeQuantize(y);
    assert.deepEqual(again.fakeQuantize(y).toArray(), a);
  }));

  it('backward: straight-through inside the range, zero where saturated', () => tidy(() => {
    const q = new FixedPointQuantizer(8, 4);
    const x = Tensor.from([-9, -8, -1.03, 0, 3.3, 7.9375, 7.95, 100]);
    x.requiresGrad = true;
    const g = Tensor.from([1, 2, 3, 4, 5, 6, 7, 8]);
    backward(sum(mul(q.fakeQuantize(x), g)));
    assert.deepEqual([...x.grad!.toArray()], [0, 2, 3, 4, 5, 6, 0, 0]);
  }));

  it('bad input: word and fractional lengths, NaN', () => tidy(() => {
    assert.throws(() => new FixedPointQuantizer(8, 9), /fractional length.*cannot exceed the word length 8/);
    assert.throws(() => new FixedPointQuantizer(8, -1), /fractional length must be an integer from 0 to 8, got -1/);
    assert.throws(() => new FixedPointQuantizer(0, 0), /word length must be an integer from 2 to 32, got 0/);
    assert.throws(() => new FixedPointQuantizer(33, 4), /from 2 to 32, got 33/);
    assert.throws(() => new FixedPointQuantizer(1, 0), /a signed word needs a sign bit/);
    assert.throws(() => new FixedPointQuantizer(8.5, 4), /got 8.5/);
    assert.throws(() => parseDatatype('fixed:8.9'), LowbitError);
    assert.throws(() => parseDatatype('fixed:16'), /W\.F/);
    assert.throws(() => parseDatatype('fixed:16.8:round'), /unknown option "round"/);
    assert.throws(() => parseDatatype('dfp:0'), /from 1 to 32, got "0"/);
    assert.throws(() => parseDatatype('dfp:8.5'), /got "8.5"/);
    const x = Tensor.from([1, NaN, 2]);
    x.name = 'conv1.weight';
    assert.throws(() => new FixedPointQuantizer(8, 4).fakeQuantize(x), (e: Error) => e instanceof LowbitError && /conv1\.weight/.test(e.message) && /NaN or Inf/.test(e.message));
    assert.throws(() => new DynamicFixedPointQuantizer(8).quantize(Tensor.from([Infinity])), /NaN or Inf/);
  }));
});

describe('dynamic fixed point', () => {
  it('Ristretto: IL = ceil(log2 max|x|) + 1, FL = W - IL', () => tidy(() => {
    assert.equal(rangeFracLength(5.3, 8), 4); // ceil(log2 5.3) = 3, IL 4
    assert.equal(rangeFracLength(0.2, 8), 9); // ceil(log2 0.2) = -2, IL -1: FL beyond W for small values
    assert.equal(rangeFracLength(1, 16), 15);
    assert.equal(rangeFracLength(100, 16), 8);
    assert.equal(rangeFracLength(5.3, 8, false), 5);
    const q = new DynamicFixedPointQuantizer(8);
    const x = Tensor.from([5.3, -0.7, 0.03125, 2]);
    assert.deepEqual(q.params(x), { fracLength: 4 });
    assert.deepEqual([...q.fakeQuantize(x).toArray()], [5.3125, -0.6875, 0, 2]);
    const small = Tensor.from([0.2, -0.01]);
    assert.deepEqual([...q.quantize(small).codes.toArray()], [102, -5]); // 0.2 * 2^9 = 102.4, -0.01 * 512 = -5.12
    assert.equal(q.describe().values, '{-128, ..., 127} * 2^-FL');
  }));

  it('Courbariaux et al.: the overflow rate moves the fractional length', () => tidy(() => {
    const s = new OverflowRateScaler(8, true, 1e-4);
    s.fracLength = 4; // range [-8, 7.9375]
    const v = new Float32Array(1000).fill(1);
    v.fill(20, 0, 5); // 0.5 % overflow > 0.01 %
    assert.equal(overflowRate(Tensor.from(v), 8, 4), 0.005);
    assert.equal(s.update(Tensor.from(v)), 3);
    const calm = Tensor.from(new Float32Array(1000).fill(3));
    assert.equal(s.update(calm), 4); // FL 3, range [-16, 15.875]: 2x = 6 does not overflow -> one more fractional bit
    assert.equal(s.update(calm), 5); // FL 4, range [-8, 7.9375]: 2x = 6 still fits -> 5
    assert.equal(s.update(calm), 5); // FL 5, range [-4, 3.96875]: x fits, 2x would overflow -> stay
  }));

  it('dfp:W:overflow follows the scaler during training', () => tidy(() => {
    const q = parseDatatype('dfp:8:overflow').forRole('activation')!.create() as DynamicFixedPointQuantizer;
    assert.equal(q.spec, 'dfp:8:overflow');
    const x = Tensor.from([5.3, -0.7]);
    assert.deepEqual(q.params(x), { fracLength: 4 });
    const big = Tensor.from([40, -0.7]);
    assert.deepEqual(q.params(big), { fracLength: 3 });
  }));
});
