// Minifloat: e4m3 (OCP E4M3FN), e5m2 (OCP E5M2), fp16 (IEEE binary16), bfloat16; subnormals, the largest
// value, saturation, ties to even, bit patterns, and the nearest-value property against every value.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy, backward, sum, mul } from '../src/index.js';
import { LowbitError } from '../src/errors.js';
import {
  MinifloatQuantizer, minifloatFormat, minifloatValues, minifloatDecode, minifloatLevels, E4M3, E5M2, FP16, BF16,
  parseDatatype, type MinifloatFormat,
} from '../src/quant/index.js';
import { rng } from './helpers.js';

const rand = rng(99);

function same(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < actual.length; i++) assert.ok(actual[i] === expected[i], `${what}: element ${i}: got ${actual[i]}, expected ${expected[i]}`);
}

function fq(f: MinifloatFormat, xs: number[]): number[] {
  return tidy(() => Array.from(new MinifloatQuantizer(f).fakeQuantize(Tensor.from(xs)).toFloat32Array()));
}

function codes(f: MinifloatFormat, xs: number[]): number[] {
  return tidy(() => Array.from(new MinifloatQuantizer(f).quantize(Tensor.from(xs)).codes.toArray()));
}

/** bfloat16 by rounding the f32 bit pattern to its top 16 bits, ties to even (the usual reference). */
function bf16Reference(v: number): number {
  const b = new Float32Array([v]), u = new Uint32Array(b.buffer);
  u[0] = ((u[0] + 0x7fff + ((u[0] >>> 16) & 1)) >>> 16) << 16;
  return b[0];
}

describe('minifloat formats', () => {
  it('constants: e4m3 = OCP E4M3FN (max 448), e5m2 (max 57344), fp16 (max 65504), bf16', () => {
    assert.deepEqual([E4M3.maxFinite, E4M3.minNormal, E4M3.minPositive, E4M3.bias, E4M3.style], [448, 2 ** -6, 2 ** -9, 7, 'fn']);
    assert.deepEqual([E5M2.maxFinite, E5M2.minNormal, E5M2.minPositive, E5M2.bias], [57344, 2 ** -14, 2 ** -16, 15]);
    assert.deepEqual([FP16.maxFinite, FP16.minNormal, FP16.minPositive], [65504, 2 ** -14, 2 ** -24]);
    assert.deepEqual([BF16.maxFinite, BF16.minNormal, BF16.minPositive], [3.3895313892515355e38, 2 ** -126, 2 ** -133]);
    assert.equal(minifloatFormat(4, 3, 'ieee').maxFinite, 240);
    assert.equal(minifloatFormat(4, 3, 'ristretto').maxFinite, 480);
    // 8-bit formats: 256 codes minus NaN/Inf codes, +-0 counted once
    assert.equal(minifloatLevels(E4M3), 253);
    assert.equal(minifloatLevels(E5M2), 247);
    assert.equal(new Set(minifloatValues(E4M3)).size, 253);
  });

  it('e4m3: worked values, subnormals, saturation, ties to even, bit patterns', () => {
    const xs = [1, 448, -448, 1000, -1e9, 464, 470, 2 ** -9, 2 ** -10, 1.5 * 2 ** -9, 0.3, 0, 17];
    same(fq(E4M3, xs), [1, 448, -448, 448, -448, 448, 448, 2 ** -9, 0, 2 ** -8, 0.3125, 0, 16], 'e4m3 values');
    same(codes(E4M3, [1, 448, -448, 2 ** -9, 0, 0.3125, -2]), [0x38, 0x7e, 0xfe, 0x01, 0x00, 0x2a, 0xc0], 'e4m3 codes');
  });

  it('e5m2 and fp16: largest value, subnormals, saturation instead of Inf', () => {
    same(fq(E5M2, [57344, 61440, 1e6, 2 ** -16, 2 ** -17, 3 * 2 ** -17, 1.1]), [57344, 57344, 57344, 2 ** -16, 0, 2 ** -15, 1], 'e5m2 values');
    same(codes(E5M2, [1, 57344, 2 ** -16]), [0x3c, 0x7b, 0x01], 'e5m2 codes');
    same(fq(FP16, [65504, 65519, 65520, 1e6, -1e6, 1 / 3, 2 ** -24, 2 ** -25, 1.5 * 2 ** -25, 1e-8]),
      [65504, 65504, 65504, 65504, -65504, 0.333251953125, 2 ** -24, 0, 2 ** -24, 0], 'fp16 values');
    same(codes(FP16, [65504, 1 / 3, 2 ** -24, -2]), [0x7bff, 0x3555, 0x0001, 0xc000], 'fp16 codes');
  });

  it('bfloat16 equals rounding the f32 bits, saturating at 3.3895e38', () => tidy(() => {
    const xs: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const e = Math.floor(rand() * 250) - 140; // includes f32 (and bf16) subnormals
      xs.push(Math.fround((rand() < 0.5 ? -1 : 1) * (1 + rand()) * 2 ** e));
    }
    xs.push(3.4e38, -3.4e38, 1.17549435e-38, 0);
    const got = fq(BF16, xs);
    xs.forEach((v, i) => {
      const want = Math.abs(v) > BF16.maxFinite ? Math.sign(v) * BF16.maxFinite : bf16Reference(v);
      assert.ok(got[i] === want, `bf16(${v}) = ${got[i]}, expected ${want}`);
    });
  }));

  it('every value is encoded and decoded exactly; decoding every code gives the value table', () => tidy(() => {
    for (const f of [E4M3, E5M2, minifloatFormat(3, 2, 'ieee'), minifloatFormat(4, 3, 'ristretto'), FP16]) {
      const values = minifloatValues(f);
      const q = new MinifloatQuantizer(f);
      const { codes: c } = q.quantize(Tensor.from(Float32Array.from(values)));
      same(q.dequantize({ codes: c, params: { format: f } }).toFloat32Array(), Float32Array.from(values), `${q.spec} round trip`);
      if (f.bits <= 8 && f.subnormals) {
        const all = Array.from({ length: 2 ** f.bits }, (_, i) => i).filter((i) => {
          const e = (i >> f.mantissaBits) & (2 ** f.exponentBits - 1), m = i & (2 ** f.mantissaBits - 1);
          return f.style === 'fn' ? !(e === 2 ** f.exponentBits - 1 && m === 2 ** f.mantissaBits - 1) : e !== 2 ** f.exponentBits - 1;
        });
        same(minifloatDecode(Tensor.from(all, [all.length], 'i32'), f).toFloat32Array(), Float32Array.from(values), `${q.spec} decode table`);
        same(Array.from(c.toArray()), all, `${q.spec} codes are the bit patterns`);
      }
    }
  }));

  it('properties: nearest value (half a step), ties to even, idempotent, monotone', () => tidy(() => {
    for (const f of [E4M3, E5M2, minifloatFormat(3, 2)]) {
      const values = Array.from(new Set(minifloatValues(f))).sort((a, b) => a - b);
      const xs = Array.from({ length: 5000 }, () => Math.fround((rand() * 2 - 1) * f.maxFinite * (rand() < 0.2 ? 1e-3 : 1.05)));
      const got = fq(f, xs);
      xs.forEach((x, i) => {
        if (Math.abs(x) > f.maxFinite) return assert.equal(got[i], Math.sign(x) * f.maxFinite);
        let best = Infinity;
        for (const v of values) best = Math.min(best, Math.abs(v - x));
        assert.ok(Math.abs(got[i] - x) <= best * (1 + 1e-12), `e${f.exponentBits}m${f.mantissaBits}(${x}) = ${got[i]}, nearest is ${best} away`);
        assert.ok(values.includes(got[i]) || got[i] === 0);
      });
      same(fq(f, got), got, 'idempotent');
      const sorted = [...xs].sort((a, b) => a - b);
      const ys = fq(f, sorted);
      for (let i = 1; i < ys.length; i++) assert.ok(ys[i] >= ys[i - 1], 'monotone');
    }
    // ties between two values go to the even mantissa
    same(fq(E4M3, [1.0625, 1.1875, 2 ** -9 * 2.5]), [1, 1.25, 2 ** -9 * 2], 'ties to even');
  }));

  it('Ristretto style flushes subnormals to zero; ieee style reserves the top exponent', () => {
    const r = minifloatFormat(4, 3, 'ristretto');
    same(fq(r, [0.01, 0.015, 479, 1000]), [0, 0.015625, 480, 480], 'ristretto');
    same(fq(minifloatFormat(4, 3, 'ieee'), [250, 1e4]), [240, 240], 'ieee e4m3');
  });

  it('backward: straight-through up to the largest value, zero where saturated', () => tidy(() => {
    const x = Tensor.from([-500, -448, 0.3, 447.9, 449]);
    x.requiresGrad = true;
    backward(sum(mul(new MinifloatQuantizer(E4M3).fakeQuantize(x), Tensor.from([1, 2, 3, 4, 5]))));
    assert.deepEqual([...x.grad!.toArray()], [0, 2, 3, 4, 0]);
  }));

  it('specs and bad input', () => {
    assert.equal(parseDatatype('minifloat:e4m3').spec, 'minifloat:e4m3');
    assert.equal(parseDatatype('minifloat:e4m3:ieee').spec, 'minifloat:e4m3:ieee');
    assert.equal(parseDatatype('minifloat:e5m10').spec, 'fp16');
    assert.equal(parseDatatype('minifloat:bf16').spec, 'bf16');
    assert.equal(parseDatatype('minifloat:e5m2:bias16').spec, 'minifloat:e5m2:bias16');
    for (const bad of ['minifloat:e1m3', 'minifloat:e9m3', 'minifloat:e4m16', 'minifloat:e4m3.5', 'minifloat:x', 'minifloat:e4m3:fast', 'minifloat:e4m0:fn', 'minifloat:e8m7:fn', 'minifloat']) {
      assert.throws(() => parseDatatype(bad), LowbitError, bad);
    }
    assert.throws(() => parseDatatype('minifloat:e4m16'), /mantissa bits must be an integer from 0 to 15, got "16"/);
    assert.throws(() => parseDatatype('minifloat:e8m7:fn'), /outside f32/);
  });
});
