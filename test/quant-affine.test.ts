// Uniform affine intN (Jacob et al. 2018): scale and zero point, symmetric / asymmetric, per-channel, the
// straight-through estimator, and the integer requantization against gemmlowp's reference formulas.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy, backward, sum, mul } from '../src/index.js';
import { LowbitError } from '../src/errors.js';
import {
  AffineQuantizer, chooseAffineParams, affineRange, quantizeMultiplier, saturatingRoundingDoublingHighMul,
  roundingDivideByPOT, multiplyByQuantizedMultiplier, requantize, requantizationMultiplier, parseDatatype,
} from '../src/quant/index.js';
import { assertClose, randomTensor, rng } from './helpers.js';

const rand = rng(2018);
const arr = (t: Tensor) => Array.from(t.toArray());
const INT32_MIN = -2147483648, INT32_MAX = 2147483647;

// gemmlowp's fixedpoint.h formulas, in exact BigInt arithmetic (C++ integer division truncates toward 0).
function srdhmReference(a: number, b: number): number {
  if (a === INT32_MIN && b === INT32_MIN) return INT32_MAX;
  const ab = BigInt(a) * BigInt(b);
  const nudge = ab >= 0n ? 1n << 30n : 1n - (1n << 30n);
  return Number((ab + nudge) / (1n << 31n));
}
/** RoundingDivideByPOT rounds to nearest with ties away from zero. */
function rdbpotReference(x: number, e: number): number {
  const d = 1n << BigInt(e), ax = BigInt(Math.abs(x));
  const q = (ax + d / 2n) / d;
  return Number(x < 0 ? -q : q);
}
function randomInt32(): number {
  const r = rand();
  if (r < 0.05) return [INT32_MIN, INT32_MAX, 0, 1, -1, INT32_MIN + 1][Math.floor(rand() * 6)];
  if (r < 0.5) return Math.floor((rand() * 2 - 1) * 70000); // accumulator-sized
  return (Math.floor(rand() * 2 ** 32) - 2 ** 31) | 0;
}

describe('uniform affine quantization', () => {
  it('ranges: symmetric signed uses the narrow range', () => {
    assert.deepEqual(affineRange(8, true, true), { qmin: -127, qmax: 127 });
    assert.deepEqual(affineRange(8, true, false), { qmin: -128, qmax: 127 });
    assert.deepEqual(affineRange(8, false, false), { qmin: 0, qmax: 255 });
    assert.deepEqual(affineRange(4, true, true), { qmin: -7, qmax: 7 });
    assert.deepEqual(affineRange(16, true, false), { qmin: -32768, qmax: 32767 });
  });

  it('worked example, uint8 on [-1, 3]: S = 4/255, nudged Z = round(63.75) = 64', () => tidy(() => {
    const p = chooseAffineParams([-1], [3], { qmin: 0, qmax: 255, symmetric: false });
    assert.deepEqual(p.scale, [Math.fround(4 / 255)]);
    assert.deepEqual(p.zeroPoint, [64]);
    const q = new AffineQuantizer({ bits: 8, signed: false, role: 'activation' });
    const x = Tensor.from([-1, 0, 3, 1, -5, 10]);
    const { codes, params } = q.quantize(x, p);
    assert.equal(codes.dtype, 'u8');
    assert.deepEqual(arr(codes), [0, 64, 255, 128, 0, 255]);
    const S = p.scale[0];
    assertClose(q.dequantize({ codes, params }).toFloat32Array(), [-64 * S, 0, 191 * S, 64 * S, -64 * S, 191 * S], 1e-6);
    // the range must contain 0 (so that zero padding is exact): [2, 5] becomes [0, 5]
    assert.deepEqual(chooseAffineParams([2], [5], { qmin: 0, qmax: 255, symmetric: false }).zeroPoint, [0]);
  }));

  it('worked example, int8 activations (asymmetric): Z from the more exact end, 0 exactly representable', () => tidy(() => {
    const q = new AffineQuantizer({ bits: 8, role: 'activation' });
    const x = Tensor.from([-0.5, 1.5, 0, 0.7]);
    const p = q.params(x);
    assert.deepEqual(p.scale, [Math.fround(2 / 255)]);
    assert.deepEqual(p.zeroPoint, [-64]); // -128 + 63.75
    assert.equal(q.fakeQuantize(x, p).toFloat32Array()[2], 0);
    assert.equal(q.spec, 'int8');
    assert.equal(new AffineQuantizer({ bits: 8, role: 'weight' }).spec, 'int8');
    assert.equal(new AffineQuantizer({ bits: 8, role: 'activation', symmetric: true }).spec, 'int8:sym');
  }));

  it('worked example, int8 weights (symmetric): S = max|W| / 127, Z = 0, ties to even', () => tidy(() => {
    const q = new AffineQuantizer({ bits: 8 });
    const x = Tensor.from([1.984375, -1, 0.5]);
    const p = q.params(x);
    assert.deepEqual(p, { scale: [0.015625], zeroPoint: [0], axis: null, qmin: -127, qmax: 127 });
    const y = Tensor.from([1.984375, -1.984375, 2 ** -7, 3 * 2 ** -7, -(2 ** -7), 5, -5]);
    assert.deepEqual(arr(q.quantize(y, p).codes), [127, -127, 0, 2, 0, 127, -127]);
    assert.deepEqual(arr(q.fakeQuantize(y, p)), [1.984375, -1.984375, 0, 0.03125, 0, 1.984375, -1.984375]);
  }));

  it('per-channel scales along the output channels', () => tidy(() => {
    const w = Tensor.from([0.5, -1, 0.25, 10, -2, 3], [2, 3]);
    const q = new AffineQuantizer({ bits: 8, perChannel: true });
    const p = q.params(w);
    assert.equal(p.axis, 0);
    assert.deepEqual(p.scale, [Math.fround(1 / 127), Math.fround(10 / 127)]);
    const codes = arr(q.quantize(w, p).codes);
    assert.deepEqual([codes[1], codes[3]], [-127, 127]);
    assert.equal(q.spec, 'int8:per-channel');
    assert.throws(() => q.params(Tensor.scalar(1)), /per-channel axis 0 does not exist/);
    assert.throws(() => q.quantize(Tensor.from([1, 2, 3], [3, 1]), p), /2 per-channel parameters/);
  }));

  it('properties: codes in range, error <= S/2 in range, idempotent, monotone, for 2 to 16 bits', () => tidy(() => {
    for (const [bits, signed, role] of [[2, true, 'weight'], [4, true, 'weight'], [8, true, 'activation'], [8, false, 'activation'], [16, true, 'weight'], [3, false, 'weight']] as const) {
      const q = new AffineQuantizer({ bits, signed, role });
      const x = randomTensor([3000], rand, -3, 5);
      const p = q.params(x);
      const S = p.scale[0], Z = p.zeroPoint[0];
      const lo = S * (p.qmin - Z), hi = S * (p.qmax - Z);
      for (const c of arr(q.quantize(x, p).codes)) assert.ok(c >= p.qmin && c <= p.qmax);
      const xs = x.toFloat32Array(), ys = q.fakeQuantize(x, p).toFloat32Array();
      xs.forEach((v, i) => {
        if (v >= lo && v <= hi) assert.ok(Math.abs(ys[i] - v) <= S / 2 + 1e-6, `${q.spec}: |${ys[i]} - ${v}| > S/2 = ${S / 2}`);
      });
      assert.deepEqual(q.fakeQuantize(Tensor.from(ys), p).toFloat32Array(), ys, `${q.spec} idempotent`);
      const sorted = q.fakeQuantize(Tensor.from(Float32Array.from(xs).sort()), p).toFloat32Array();
      for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i] >= sorted[i - 1], `${q.spec} monotone`);
    }
  }));

  it('backward: straight-through where qmin <= round(x/S) + Z <= qmax', () => tidy(() => {
    const q = new AffineQuantizer({ bits: 4 }); // [-7, 7]
    const p = { scale: [0.5], zeroPoint: [0], axis: null, qmin: -7, qmax: 7 };
    const x = Tensor.from([-4, -3.76, -3.74, 0, 3.5, 3.74, 3.76, 9]);
    x.requiresGrad = true;
    backward(sum(mul(q.fakeQuantize(x, p), Tensor.from([1, 2, 3, 4, 5, 6, 7, 8]))));
    assert.deepEqual(arr(x.grad!), [0, 0, 3, 4, 5, 6, 0, 0]);
  }));

  it('bad input: bit widths, options, ranges, NaN', () => tidy(() => {
    for (const bad of ['int0', 'int1', 'int17', 'int33', 'int-4', 'int8.5', 'int', 'uint8:sym', 'int8:foo', 'uint', 'intx']) {
      assert.throws(() => parseDatatype(bad), LowbitError, bad);
    }
    assert.throws(() => parseDatatype('int33'), /bit width must be an integer from 2 to 16, got "33"/);
    assert.throws(() => parseDatatype('int8:foo'), /unknown option "foo".*int<N>/);
    assert.throws(() => new AffineQuantizer({ bits: 0 }), /from 2 to 16, got 0/);
    assert.throws(() => new AffineQuantizer({ bits: 4.5 }), /got 4.5/);
    assert.throws(() => new AffineQuantizer({ bits: -8 }), /got -8/);
    assert.throws(() => chooseAffineParams([NaN], [1], { qmin: 0, qmax: 255, symmetric: false }), /invalid range/);
    const x = Tensor.from([0.5, NaN]);
    x.name = 'conv2.input';
    assert.throws(() => new AffineQuantizer({ bits: 8 }).fakeQuantize(x), /conv2\.input .*NaN or Inf/);
  }));
});

describe('integer requantization (Jacob et al. sec. 2.2, gemmlowp)', () => {
  it('quantizeMultiplier: M = M0 2^(shift-31), M0 in [2^30, 2^31)', () => {
    assert.deepEqual(quantizeMultiplier(0.5), { multiplier: 2 ** 30, shift: 0 });
    assert.deepEqual(quantizeMultiplier(0.25), { multiplier: 2 ** 30, shift: -1 });
    assert.deepEqual(quantizeMultiplier(0.75), { multiplier: 1610612736, shift: 0 });
    assert.deepEqual(quantizeMultiplier(1 / 3), { multiplier: 1431655765, shift: -1 });
    assert.deepEqual(quantizeMultiplier(1), { multiplier: 2 ** 30, shift: 1 });
    assert.deepEqual(quantizeMultiplier(1 - 2 ** -40), { multiplier: 2 ** 30, shift: 1 }); // rounds up to 2^31: renormalized
    for (const m of [0.0072474273, 0.000123, 0.9999, 0.3, 1.7, 37.5]) {
      const { multiplier, shift } = quantizeMultiplier(m);
      assert.ok(multiplier >= 2 ** 30 && multiplier < 2 ** 31);
      assert.ok(Math.abs(multiplier * 2 ** (shift - 31) - m) <= 2 ** (shift - 32), `M = ${m}`);
    }
    assert.deepEqual(quantizeMultiplier(0), { multiplier: 0, shift: 0 });
    assert.throws(() => quantizeMultiplier(-0.5), /finite number > 0/);
    assert.throws(() => quantizeMultiplier(NaN), /finite number > 0/);
    const r = requantizationMultiplier(0.02, 0.005, 0.1);
    const real = (Math.fround(0.02) * Math.fround(0.005)) / Math.fround(0.1); // the scales are f32
    assert.ok(Math.abs(r.multiplier * 2 ** (r.shift - 31) - real) <= 2 ** (r.shift - 32));
    assert.ok(Math.abs(real - 0.001) < 1e-9);
  });

  it('SaturatingRoundingDoublingHighMul equals the gemmlowp formula (exact, 20000 random pairs and edges)', () => {
    assert.equal(saturatingRoundingDoublingHighMul(INT32_MIN, INT32_MIN), INT32_MAX);
    assert.equal(saturatingRoundingDoublingHighMul(1000, 2 ** 30), 500); // 500.5 truncated after the nudge
    assert.equal(saturatingRoundingDoublingHighMul(5, 2 ** 30), 3); // 2.5 -> 3
    assert.equal(saturatingRoundingDoublingHighMul(-5, 2 ** 30), -2); // -2.5 -> -2
    for (let i = 0; i < 20000; i++) {
      const a = randomInt32(), b = randomInt32();
      assert.equal(saturatingRoundingDoublingHighMul(a, b), srdhmReference(a, b), `SRDHM(${a}, ${b})`);
    }
  });

  it('RoundingDivideByPOT rounds to nearest, ties away from zero, for every exponent 0..31', () => {
    assert.equal(roundingDivideByPOT(5, 1), 3);
    assert.equal(roundingDivideByPOT(-5, 1), -3);
    assert.equal(roundingDivideByPOT(-6, 2), -2);
    assert.equal(roundingDivideByPOT(6, 2), 2);
    assert.equal(roundingDivideByPOT(-7, 2), -2);
    for (let i = 0; i < 5000; i++) {
      const x = randomInt32(), e = Math.floor(rand() * 32);
      assert.equal(roundingDivideByPOT(x, e), rdbpotReference(x, e), `RDBPOT(${x}, ${e})`);
    }
  });

  it('MultiplyByQuantizedMultiplier is within one unit of x * M and matches the reference composition', () => {
    for (const m of [0.0072474273, 0.25, 0.5, 0.9999, 1 / 3, 1.5, 3.25]) {
      const qm = quantizeMultiplier(m);
      for (let i = 0; i < 2000; i++) {
        const x = Math.floor((rand() * 2 - 1) * 1e6);
        const got = multiplyByQuantizedMultiplier(x, qm);
        const left = Math.max(qm.shift, 0), right = Math.max(-qm.shift, 0);
        assert.equal(got, rdbpotReference(srdhmReference(x * 2 ** left, qm.multiplier), right));
        assert.ok(Math.abs(got - x * m) <= 1 + Math.abs(x * m) * 1e-8, `${x} * ${m} = ${got}`);
      }
    }
    assert.equal(multiplyByQuantizedMultiplier(1000, quantizeMultiplier(0.25)), 250);
    assert.equal(multiplyByQuantizedMultiplier(-1000, quantizeMultiplier(0.25)), -250);
  });

  it('requantize: int32 accumulators to output codes, per channel, clamped, with the output zero point', () => tidy(() => {
    const acc = Tensor.from(Int32Array.from([1000, -1000, 40000, 7, 1000, -1000, 40000, 7]), [1, 2, 2, 2], 'i32');
    const ms = [quantizeMultiplier(0.01), quantizeMultiplier(0.002)];
    const out = requantize(acc, ms, 10, 0, 255, 1);
    assert.equal(out.dtype, 'u8');
    assert.deepEqual(arr(out), [20, 0, 255, 10, 12, 8, 90, 10]);
    const single = requantize(acc, quantizeMultiplier(0.01), -5, -128, 127);
    assert.equal(single.dtype, 'i8');
    assert.deepEqual(arr(single), [5, -15, 127, -5, 5, -15, 127, -5]);
    assert.throws(() => requantize(Tensor.from([1.5]), ms[0], 0, 0, 255), /must be i32/);
    assert.throws(() => requantize(acc, [ms[0]], 0, 0, 255, 1), /1 multipliers for 2 channels/);
  }));
});
