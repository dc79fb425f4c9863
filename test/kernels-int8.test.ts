// The int8 kernels: the reference against independent definitions (the f32 convolution, worked values of
// the fixed-point requantization), then the WebAssembly kernels against the reference bit for bit, on random
// codes and shapes (odd channel counts, batches, stride, asymmetric padding, dilation, groups, depthwise,
// 1x1, linear, the integer Winograd paths F(4x4) and F(2x2) with tiles over the edges and at their overflow
// bounds), u8 and i8
// inputs, every epilogue, at 1 and 2 threads. Outputs are compared as raw bytes,
// including 64 guard bytes after them (nothing may be written past the end).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EngineMemory, type Ptr } from '../src/kernels/memory.js';
import { createRefKernels } from '../src/kernels/ref/index.js';
import { int8Winograd4Applies, int8WinogradApplies } from '../src/kernels/ref/int8.js';
import { int8ConvPaths } from '../src/kernels/wasm/int8.js';
import type { ConvGeometry, IntEpilogue, Kernels, PoolGeometry, WeightBits } from '../src/kernels/types.js';
import { createWasmKernels, type WasmKernels } from '../src/kernels/wasm/index.js';
import { rng } from './rng.js';

const mem = new EngineMemory({ shared: true, initialBytes: 32 * 2 ** 20 });
const ref = createRefKernels(mem);
let wasm: WasmKernels;
const rand = rng(20260311);
const GUARD = 64;
const THREADS = [1, 2];

before(async () => {
  wasm = await createWasmKernels(mem, { threads: 2 });
});
after(async () => {
  await wasm.dispose();
});

// ---- buffers --------------------------------------------------------------------------------------------

const randInt = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1)); // inclusive

type CodeType = 'u8' | 'i8';
const codeRange = (t: CodeType): [number, number] => (t === 'u8' ? [0, 255] : [-128, 127]);

function alloc(bytes: number): Ptr {
  const p = mem.alloc(bytes + GUARD);
  mem.u8.fill(0xab, p, p + bytes + GUARD);
  return p;
}
/** Random codes of a type, or signed weights of `bits` bits (8: all of i8). */
function codesBuffer(n: number, t: CodeType, bits: WeightBits = 8): { p: Ptr; values: number[] } {
  const [lo, hi] = bits === 8 ? codeRange(t) : [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1];
  const values = Array.from({ length: n }, () => randInt(lo, hi));
  const p = alloc(n);
  (t === 'u8' ? mem.u8 : mem.i8).set(values, p);
  return { p, values };
}
/** i64 values (the requantization bias) in engine memory. */
function i64Buffer(values: bigint[]): Ptr {
  const p = alloc(values.length * 8);
  new BigInt64Array(mem.memory.buffer, p, values.length).set(values);
  return p;
}

function i32Buffer(values: number[]): Ptr {
  const p = alloc(values.length * 4);
  mem.i32.set(values, p >> 2);
  return p;
}
function f32Buffer(values: number[]): Ptr {
  const p = alloc(values.length * 4);
  mem.f32.set(values, p >> 2);
  return p;
}
const bytes = (p: Ptr, n: number) => mem.u8.slice(p, p + n);

/** Bytes equal (output plus guard), else fail naming the first differing byte. */
function assertBytesEqual(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++)
    if (actual[i] !== expected[i]) assert.fail(`${what}: byte ${i} of ${actual.length}: got ${actual[i]}, expected ${expected[i]}`);
}

/** Run `op(kernels, y)` on ref and on wasm (1 and 2 threads) into fresh buffers; all outputs must be equal. */
function compareBackends(outBytes: number, op: (k: Kernels, y: Ptr) => void, what: string): Uint8Array {
  const yRef = alloc(outBytes);
  op(ref, yRef);
  const expected = bytes(yRef, outBytes + GUARD);
  mem.free(yRef);
  for (const t of THREADS) {
    wasm.setThreads(t);
    const y = alloc(outBytes);
    op(wasm, y);
    const got = bytes(y, outBytes + GUARD);
    mem.free(y);
    assertBytesEqual(got, expected, `${what} (wasm, ${t} thread${t > 1 ? 's' : ''})`);
  }
  wasm.setThreads(2);
  return expected;
}

// ---- geometry and epilogues -----------------------------------------------------------------------------

function conv(n: number, inC: number, inH: number, inW: number, outC: number, k: number | [number, number],
  opts: { stride?: number | [number, number]; pad?: [number, number, number, number] | number; dilation?: number | [number, number]; groups?: number } = {}): ConvGeometry {
  const [kH, kW] = typeof k === 'number' ? [k, k] : k;
  const [strideH, strideW] = typeof opts.stride === 'object' ? opts.stride : [opts.stride ?? 1, opts.stride ?? 1];
  const [dilationH, dilationW] = typeof opts.dilation === 'object' ? opts.dilation : [opts.dilation ?? 1, opts.dilation ?? 1];
  const pd = opts.pad ?? 0;
  const [padTop, padLeft, padBottom, padRight] = typeof pd === 'number' ? [pd, pd, pd, pd] : pd;
  const outH = Math.floor((inH + padTop + padBottom - dilationH * (kH - 1) - 1) / strideH) + 1;
  const outW = Math.floor((inW + padLeft + padRight - dilationW * (kW - 1) - 1) / strideW) + 1;
  return { n, inC, inH, inW, outC, kH, kW, strideH, strideW, padTop, padLeft, padBottom, padRight, dilationH, dilationW, groups: opts.groups ?? 1, outH, outW };
}

/** Random epilogue parameters for c channels; `relu` fuses the ReLU into the clamp. */
function randomEpilogue(kind: IntEpilogue['kind'], c: number, out: CodeType, relu: boolean, K: number): { ep: IntEpilogue; outBytes: (count: number, hw: number, n: number) => number; ptrs: Ptr[] } {
  if (kind === 'int32') return { ep: { kind }, outBytes: (count) => count * 4, ptrs: [] };
  if (kind === 'requant') {
    // scale the accumulators (|acc| ~ sqrt(K) * 128 * 74) into tens of codes, some channels saturating
    const target = Math.log2(Math.sqrt(K) * 128 * 74 / 40);
    // bias in units of 2^-s codes: about +-20000 accumulator steps at the channel's multiplier
    const bias = rand() < 0.25 ? 0 : i64Buffer(Array.from({ length: c }, () => BigInt(randInt(-20000, 20000)) * BigInt(randInt(2 ** 30, 2 ** 31 - 1))));
    const multiplier = i32Buffer(Array.from({ length: c }, () => randInt(2 ** 30, 2 ** 31 - 1)));
    const shift = i32Buffer(Array.from({ length: c }, () => Math.max(-30, Math.round(target) - 1 + randInt(-2, 2))));
    const [lo, hi] = codeRange(out);
    const zeroPoint = randInt(lo + 20, hi - 20);
    const ep: IntEpilogue = { kind, bias, multiplier, shift, zeroPoint, lo: relu ? zeroPoint : lo, hi, out };
    return { ep, outBytes: (count) => count, ptrs: [bias, multiplier, shift].filter((p) => p !== 0) };
  }
  const scale = f32Buffer(Array.from({ length: c }, () => (rand() < 0.5 ? -1 : 1) * (0.5 + rand()) / (Math.sqrt(K) * 128 * 74)));
  const offset = f32Buffer(Array.from({ length: c }, () => rand() - 0.5));
  if (kind === 'float') {
    const ep: IntEpilogue = relu ? { kind, scale, offset, lo: 0, hi: 0.75 } : { kind, scale, offset, lo: -Infinity, hi: Infinity };
    return { ep, outBytes: (count) => count * 4, ptrs: [scale, offset] };
  }
  return { ep: { kind: 'bits', scale, offset }, outBytes: (_count, hw, n) => n * hw * Math.ceil(c / 64) * 8, ptrs: [scale, offset] };
}

const KINDS: IntEpilogue['kind'][] = ['requant', 'float', 'int32', 'bits'];

// ---- the reference against independent definitions ------------------------------------------------------

describe('int8 reference', () => {
  it('convInt8 (int32) equals the f32 convolution of (x - xZero) and w', () => {
    const cases: ConvGeometry[] = [
      conv(2, 5, 7, 6, 3, 3, { pad: [1, 0, 2, 1], stride: [2, 1] }),
      conv(1, 4, 9, 9, 6, 3, { dilation: 2, groups: 2, pad: 2 }),
      conv(3, 5, 5, 5, 5, 3, { groups: 5, pad: 1 }),
      conv(3, 7, 1, 1, 4, 1),
    ];
    for (const g of cases)
      for (const [xType, bits] of [['u8', 8], ['i8', 8], ['u8', 4], ['i8', 2]] as const) {
        const cinG = g.inC / g.groups;
        const x = codesBuffer(g.n * g.inC * g.inH * g.inW, xType);
        const w = codesBuffer(g.outC * cinG * g.kH * g.kW, 'i8', bits);
        const xZero = randInt(...codeRange(xType));
        const packed = alloc(ref.int8PackedWeightBytes(g, bits));
        ref.int8PackWeights(g, w.p, packed, bits);
        const outLen = g.n * g.outC * g.outH * g.outW;
        const acc = alloc(outLen * 4);
        ref.convInt8(g, x.p, xType, xZero, packed, { kind: 'int32' }, acc, bits);
        const xf = f32Buffer(x.values.map((v) => v - xZero)), wf = f32Buffer(w.values), yf = alloc(outLen * 4);
        ref.conv2d(g, xf, wf, 0, yf);
        assert.deepStrictEqual(Array.from(mem.i32.subarray(acc >> 2, (acc >> 2) + outLen)), Array.from(mem.f32.subarray(yf >> 2, (yf >> 2) + outLen)),
          `${JSON.stringify(g)} ${xType} x, ${bits}-bit weights`);
        for (const p of [x.p, w.p, packed, acc, xf, wf, yf]) mem.free(p);
      }
  });

  it('requant: worked values (single rounding, half up, 64-bit product, clamp)', () => {
    // [acc, bias, multiplier, shift, zeroPoint, lo, hi, expected]
    const cases: number[][] = [
      [100, 0, 2 ** 30, 0, 0, -128, 127, 50], // 100 * 0.5
      [3, 0, 2 ** 30, 0, 0, -128, 127, 2], // 1.5 rounds half up
      [-3, 0, 2 ** 30, 0, 0, -128, 127, -1], // -1.5 rounds half up to -1
      [-1, 0, 2 ** 30, 0, 0, -128, 127, 0], // -0.5 -> 0
      [10, -4 * 2 ** 30, 2 ** 30, 0, 0, -128, 127, 3], // 10 * 0.5 - 2 (the bias in units of 2^-31 codes)
      [10, -(2 ** 29), 2 ** 30, 0, 0, -128, 127, 5], // 5 - 0.25 -> 5: a bias finer than one accumulator step
      [3, 0, 2 ** 30, -1, 0, -128, 127, 3], // s = 30: 3 * 1 exactly
      [1000, 0, 2 ** 30, 0, 10, -128, 127, 127], // 500 + 10 clamps
      [-1000, 0, 2 ** 30, 0, 10, 10, 127, 10], // fused ReLU: lo = zeroPoint
      [7, 0, 2 ** 30, 2, 3, 0, 255, 4], // 7 / 8 = 0.875 -> 1, + 3
      // 64-bit exactness: (2^30 + 1)(2^30 - 1) = 2^60 - 1; + 2^60 >> 61 is 0 (a double product rounds to 2^60: 1)
      [2 ** 30 + 1, 0, 2 ** 30 - 1, 30, 0, -128, 127, 0],
      [2 ** 31 - 1, 0, 2 ** 31 - 1, 31, 0, -128, 127, 1], // (2^62 - 2^32 + 1 + 2^61) >> 62
      [-(2 ** 31 - 1), 0, 2 ** 31 - 1, 31, 0, -128, 127, -1],
      [2 ** 31 - 1, 2 ** 30, 2 ** 30, 0, 0, -128, 127, 127], // 64-bit: no wrap-around, (2^31 - 1) / 2 + 0.5 clamps
    ];
    for (const [acc, bias, m, shift, zp, lo, hi, expected] of cases) {
      const a = i32Buffer([acc]), b = i64Buffer([BigInt(bias)]), mp = i32Buffer([m]), sp = i32Buffer([shift]), y = alloc(4);
      const out = lo >= 0 ? 'u8' : 'i8';
      ref.requantize(a, 1, 1, 1, { kind: 'requant', bias: b, multiplier: mp, shift: sp, zeroPoint: zp, lo, hi, out }, y);
      assert.equal((out === 'u8' ? mem.u8 : mem.i8)[y], expected, `acc ${acc} bias ${bias} M ${m} shift ${shift}`);
      for (const p of [a, b, mp, sp, y]) mem.free(p);
    }
  });

  it('float and bits epilogues: worked values', () => {
    const acc = i32Buffer([3, -5, 0, 7]); // [n=1, c=2, hw=2]
    const scale = f32Buffer([0.5, -0.25]), offset = f32Buffer([0.25, 1]);
    const y = alloc(16);
    ref.requantize(acc, 1, 2, 2, { kind: 'float', scale, offset, lo: -Infinity, hi: Infinity }, y);
    assert.deepStrictEqual(Array.from(mem.f32.subarray(y >> 2, (y >> 2) + 4)), [1.75, -2.25, 1, -0.75]);
    ref.requantize(acc, 1, 2, 2, { kind: 'float', scale, offset, lo: 0, hi: 1.5 }, y);
    assert.deepStrictEqual(Array.from(mem.f32.subarray(y >> 2, (y >> 2) + 4)), [1.5, 0, 1, 0]);
    // bits [n, hw, words]: pixel 0: ch0 1.75 >= 0, ch1 1 >= 0 -> 0b11; pixel 1: -2.25, -0.75 -> 0
    ref.requantize(acc, 1, 2, 2, { kind: 'bits', scale, offset }, y);
    assert.deepStrictEqual(Array.from(mem.u32.subarray(y >> 2, (y >> 2) + 4)), [3, 0, 0, 0]);
    // 70 channels: two words, bit 69 % 64 = 5 of word 1
    const c = 70, a70 = i32Buffer(Array.from({ length: c }, (_, i) => (i === 69 || i === 0 ? 1 : -1)));
    const s70 = f32Buffer(new Array(c).fill(1)), o70 = f32Buffer(new Array(c).fill(0)), y70 = alloc(16);
    ref.requantize(a70, 1, c, 1, { kind: 'bits', scale: s70, offset: o70 }, y70);
    assert.deepStrictEqual(Array.from(mem.u32.subarray(y70 >> 2, (y70 >> 2) + 4)), [1, 0, 32, 0]);
    for (const p of [acc, scale, offset, y, a70, s70, o70, y70]) mem.free(p);
  });

  it('addInt8: worked values', () => {
    const a = i32Buffer([0]), b = i32Buffer([0]), y = alloc(4);
    const cases: [number, number, number, number, number, number, number, number, number, number, number][] = [
      // a, aZero, aM, b, bZero, bM, shift, yZero, lo, hi, expected
      [10, 0, 2 ** 30, 20, 0, 2 ** 30, 31, 0, 0, 255, 15], // (10 + 20) / 2
      [11, 0, 2 ** 30, 0, 0, 2 ** 30, 31, 0, 0, 255, 6], // 5.5 half up
      [100, 128, 2 ** 30, 128, 128, 2 ** 30, 31, 128, 0, 255, 114], // -14 + 128
      [200, 0, 2 ** 30, 200, 0, -(2 ** 30), 31, 5, 0, 255, 5], // cancels
      [255, 0, 2 ** 31 - 1, 255, 0, 2 ** 31 - 1, 30, 0, 0, 255, 255], // saturates
    ];
    for (const [av, aZ, aM, bv, bZ, bM, s, yZ, lo, hi, expected] of cases) {
      mem.u8[a] = av; mem.u8[b] = bv;
      ref.addInt8(1, a, 'u8', aZ, aM, b, 'u8', bZ, bM, s, yZ, lo, hi, y, 'u8');
      assert.equal(mem.u8[y], expected, `${av} ${bv}`);
    }
    for (const p of [a, b, y]) mem.free(p);
  });

  it('maxPoolInt8 equals the f32 max pool of the codes; sumPlanesInt8 equals a plain sum', () => {
    for (const xType of ['u8', 'i8'] as const) {
      const g: PoolGeometry = { planes: 3, inH: 7, inW: 8, kH: 3, kW: 2, strideH: 2, strideW: 1, padTop: 1, padLeft: 0, padBottom: 1, padRight: 1, dilationH: 1, dilationW: 2, outH: 4, outW: 7, countIncludePad: false };
      const x = codesBuffer(g.planes * g.inH * g.inW, xType);
      const y = alloc(g.planes * g.outH * g.outW);
      ref.maxPoolInt8(g, x.p, xType, y);
      const xf = f32Buffer(x.values), yf = alloc(g.planes * g.outH * g.outW * 4);
      ref.maxPool2d(g, xf, yf, 0);
      const codes = xType === 'u8' ? mem.u8 : mem.i8;
      assert.deepStrictEqual(Array.from(codes.subarray(y, y + g.planes * g.outH * g.outW)), Array.from(mem.f32.subarray(yf >> 2, (yf >> 2) + g.planes * g.outH * g.outW)));
      const acc = alloc(3 * 4);
      ref.sumPlanesInt8(x.p, xType, 5, 3, 56, acc);
      for (let p = 0; p < 3; p++) {
        const expected = x.values.slice(p * 56, p * 56 + 56).reduce((s, v) => s + v - 5, 0);
        assert.equal(mem.i32[(acc >> 2) + p], expected);
      }
      for (const p of [x.p, y, xf, yf, acc]) mem.free(p);
    }
  });
});

// ---- wasm against the reference ---------------------------------------------------------------------------

describe('int8 wasm == ref', () => {
  const cases: [string, ConvGeometry][] = [
    ['3x3 pad 1, 8 -> 9, two images', conv(2, 8, 9, 11, 9, 3, { pad: 1 })],
    ['3x3 odd channels 5 -> 7, stride 2, asymmetric padding', conv(1, 5, 10, 9, 7, 3, { stride: 2, pad: [0, 1, 2, 1] })],
    ['3x3 dilation 2, padding 2', conv(2, 6, 9, 8, 5, 3, { dilation: 2, pad: 2 })],
    ['groups 2 (6 -> 4), 3 images', conv(3, 6, 6, 7, 4, 3, { groups: 2, pad: [1, 0, 1, 2] })],
    ['depthwise 7 channels, stride 2', conv(2, 7, 9, 9, 7, 3, { groups: 7, stride: 2, pad: 1 })],
    ['1x1 conv, 13 -> 11', conv(2, 13, 6, 5, 11, 1)],
    ['1x1 conv stride 2', conv(1, 9, 7, 7, 6, 1, { stride: 2 })],
    ['linear 37 -> 10, batch 3', conv(3, 37, 1, 1, 10, 1)],
    ['linear 64 -> 5, batch 1', conv(1, 64, 1, 1, 5, 1)],
    ['5x5 1 -> 6 (LeNet), batch 2', conv(2, 1, 12, 12, 6, 5)],
    ['3x3 33 -> 70, wide', conv(1, 33, 5, 21, 70, 3, { pad: 1 })],
    ['2x3 kernel, stride (1, 3), pad (2, 1)', conv(2, 3, 8, 13, 5, [2, 3], { stride: [1, 3], pad: [2, 1, 2, 1] })],
    // big enough to be split into units over both threads
    ['3x3 32 -> 24, 24x24, 2 images', conv(2, 32, 24, 24, 24, 3, { pad: 1 })],
    ['1x1 64 -> 40, 28x28', conv(1, 64, 28, 28, 40, 1)],
    // exact integer Winograd: 3x3, stride 1, >= 8 channels; tiles hanging over the edges. F(2x2, 3x3) below 16
    // output columns
    ['Winograd 8 -> 8, 7x9, pad 1', conv(1, 8, 7, 9, 8, 3, { pad: 1 })],
    ['Winograd 13 -> 13, 13x13, pad 0, two images', conv(2, 13, 13, 13, 13, 3)],
    ['Winograd 8 -> 13, 9x7, pad 1, three images', conv(3, 8, 9, 7, 13, 3, { pad: 1 })],
    ['Winograd 13 -> 8, asymmetric padding', conv(2, 13, 8, 11, 8, 3, { pad: [1, 0, 2, 1] })],
    ['Winograd 64 -> 64, 13x13, pad 1', conv(1, 64, 13, 13, 64, 3, { pad: 1 })],
    ['Winograd 9 -> 70, 2x3 output', conv(2, 9, 4, 5, 70, 3)],
    ['Winograd 16 -> 24, 22x22, 2 images (channels shared out over the threads)', conv(2, 16, 22, 22, 24, 3, { pad: 1 })],
    ['Winograd 64 -> 8, 32x30 (two bands of tile rows)', conv(1, 64, 32, 30, 8, 3, { pad: 1 })],
    // F(4x4, 3x3) from 16 columns of output on
    ['Winograd F(4x4) 8 -> 8, 5x18 (one tile row, the last group of 4 tiles partly outside)', conv(1, 8, 5, 18, 8, 3, { pad: [0, 1, 1, 0] })],
    ['Winograd F(4x4) 8 -> 13, 9x17, pad 1, three images', conv(3, 8, 9, 17, 13, 3, { pad: 1 })],
    ['Winograd F(4x4) 13 -> 8, 8x19, asymmetric padding, two images', conv(2, 13, 8, 19, 8, 3, { pad: [1, 0, 2, 1] })],
    ['Winograd F(4x4) 64 -> 64, 13x21, pad 1', conv(1, 64, 13, 21, 64, 3, { pad: 1 })],
    ['Winograd F(2x2) 113 -> 9, 7x9, pad 1', conv(1, 113, 7, 9, 9, 3, { pad: 1 })],
    // F(4x4, 3x3) over more than 112 input channels: chunks of 112 summed
    ['Winograd F(4x4) 120 -> 12, 6x17, two images, asymmetric padding (2 chunks)', conv(2, 120, 6, 17, 12, 3, { pad: [1, 0, 2, 1] })],
    ['Winograd F(4x4) 128 -> 8, 5x20, pad 1 (2 chunks, the last of 16 channels)', conv(1, 128, 5, 20, 8, 3, { pad: 1 })],
    ['Winograd F(2x2) 129 -> 8, 5x20, pad 1 (above 128 channels)', conv(1, 129, 5, 20, 8, 3, { pad: 1 })],
    ['3x3 stride 1, 8 -> 8, 1-pixel-high output (direct)', conv(2, 8, 3, 9, 8, 3)],
  ];
  for (const [index, [name, g]] of cases.entries()) {
    const bits = ([8, 4, 2] as const)[index % 3]; // every width on direct and Winograd shapes
    it(`convInt8 ${name}, ${bits}-bit weights`, () => {
      const cinG = g.inC / g.groups;
      const K = cinG * g.kH * g.kW;
      const w = codesBuffer(g.outC * cinG * g.kH * g.kW, 'i8', bits);
      const nb = ref.int8PackedWeightBytes(g, bits);
      assert.equal(wasm.int8PackedWeightBytes(g, bits), nb);
      const packed = compareBackends(nb, (k, dst) => k.int8PackWeights(g, w.p, dst, bits), `${name}: int8PackWeights`);
      const wp = alloc(nb);
      mem.u8.set(packed.subarray(0, nb), wp);
      const P = g.outH * g.outW;
      for (const xType of ['u8', 'i8'] as const) {
        const x = codesBuffer(g.n * g.inC * g.inH * g.inW, xType);
        const xZero = randInt(...codeRange(xType));
        for (const kind of KINDS)
          for (const relu of kind === 'requant' || kind === 'float' ? [false, true] : [false]) {
            const out: CodeType = rand() < 0.5 ? 'u8' : 'i8';
            const { ep, outBytes, ptrs } = randomEpilogue(kind, g.outC, out, relu, K);
            compareBackends(outBytes(g.n * g.outC * P, P, g.n), (k, y) => k.convInt8(g, x.p, xType, xZero, wp, ep, y, bits),
              `${name}: ${xType} x, zero ${xZero}, ${kind}${relu ? ' relu' : ''}`);
            for (const p of ptrs) mem.free(p);
          }
        mem.free(x.p);
      }
      mem.free(w.p);
      mem.free(wp);
    });
  }

  it('convInt8 Winograd at the overflow bounds (extreme codes; F(4x4) to 128 input channels, F(2x2) to 1827)', () => {
    // |x - xZero| = 255 everywhere, weights -128 or +-127: the largest accumulators (F(2x2): 4 * acc must fit an
    // i32 up to 1827 input channels; F(4x4), up to 128 channels: each chunk's acc is recovered from 576 * acc
    // modulo 2^32 while |acc| < 2^25, 112 channels, and the chunks are summed; the transformed products' channel
    // sums wrap in i32 on the way, harmlessly). 17 output columns take F(4x4), 4 take F(2x2).
    // [name, input channels, code type, x (NaN: -128 or 127 at random), xZero, weights, largest accumulator, width]
    const cases: [string, number, CodeType, number, number, () => number, boolean, number][] = [
      ['F(2x2): u8 0 - 255, w -128', 1827, 'u8', 0, 255, () => -128, true, 5],
      ['F(2x2): i8 -128 - 127, w -128', 1827, 'i8', -128, 127, () => -128, true, 5],
      ['F(2x2): u8 255 - 0, w +-127', 1827, 'u8', 255, 0, () => (rand() < 0.5 ? -127 : 127), false, 5],
      ['F(2x2): i8 127 - (-128), w -128 or 127', 1827, 'i8', 127, -128, () => (rand() < 0.5 ? -128 : 127), false, 5],
      ['u8 0 - 255, w -128, 1828 channels (direct)', 1828, 'u8', 0, 255, () => -128, true, 18],
      ['F(2x2): i8 mixed +-255, w +-127, 64 channels', 64, 'i8', NaN, 0, () => (rand() < 0.5 ? -127 : 127), false, 5],
      ['F(4x4): u8 0 - 255, w -128, 112 channels (one chunk)', 112, 'u8', 0, 255, () => -128, true, 18],
      ['F(4x4): i8 -128 - 127, w -128, 112 channels', 112, 'i8', -128, 127, () => -128, true, 18],
      ['F(4x4): i8 127 - (-128), w -128, 112 channels (the most negative accumulators)', 112, 'i8', 127, -128, () => -128, false, 18],
      ['F(4x4): u8 255 - 0, w +-127, 112 channels', 112, 'u8', 255, 0, () => (rand() < 0.5 ? -127 : 127), false, 18],
      ['F(4x4): u8 0 - 255, w -128, 128 channels (2 chunks)', 128, 'u8', 0, 255, () => -128, true, 18],
      ['F(4x4): i8 127 - (-128), w -128, 128 channels', 128, 'i8', 127, -128, () => -128, false, 18],
      ['F(4x4): i8 mixed +-255, w +-127, 113 channels', 113, 'i8', NaN, 0, () => (rand() < 0.5 ? -127 : 127), false, 18],
      ['F(2x2): u8 0 - 255, w -128, 129 channels, 17 columns', 129, 'u8', 0, 255, () => -128, true, 18],
    ];
    for (const [name, inC, xType, xv, xZero, wv, largest, width] of cases) {
      const g = conv(2, inC, 4, width, 9, 3, { pad: [0, 1, 1, 0] }); // width - 1 output columns
      const w = alloc(g.outC * inC * 9);
      for (let i = 0; i < g.outC * inC * 9; i++) mem.i8[w + i] = wv();
      const x = alloc(g.n * inC * g.inH * g.inW);
      for (let i = 0; i < g.n * inC * g.inH * g.inW; i++)
        (xType === 'u8' ? mem.u8 : mem.i8)[x + i] = Number.isNaN(xv) ? (rand() < 0.5 ? -128 : 127) : xv;
      const mixedZero = Number.isNaN(xv) ? (rand() < 0.5 ? -128 : 127) : xZero;
      const nb = ref.int8PackedWeightBytes(g);
      const packed = compareBackends(nb, (k, dst) => k.int8PackWeights(g, w, dst), `${name}: int8PackWeights`);
      const wp = alloc(nb);
      mem.u8.set(packed.subarray(0, nb), wp);
      const P = g.outH * g.outW, count = g.n * g.outC * P;
      const paths = { ...int8ConvPaths };
      const acc = compareBackends(count * 4, (k, y) => k.convInt8(g, x, xType, mixedZero, wp, { kind: 'int32' }, y), `${name}: int32`);
      const path = inC > 1827 ? 'direct' : g.outW >= 16 && inC <= 128 ? 'winograd4' : 'winograd';
      assert.equal(int8ConvPaths[path], paths[path] + THREADS.length, `${name}: the ${path} path ran`);
      if (largest) {
        // output (0, 1), whose 3 x 3 window lies inside: 9 * inC * 255 * 128 (> 2^29 for 1828 channels)
        assert.equal(new DataView(acc.buffer, acc.byteOffset).getInt32(4, true), 9 * inC * 255 * 128, `${name}: largest accumulator`);
      }
      for (const kind of KINDS) {
        const { ep, outBytes, ptrs } = randomEpilogue(kind, g.outC, rand() < 0.5 ? 'u8' : 'i8', false, inC * 9);
        compareBackends(outBytes(count, P, g.n), (k, y) => k.convInt8(g, x, xType, mixedZero, wp, ep, y), `${name}: ${kind}`);
        for (const p of ptrs) mem.free(p);
      }
      for (const p of [w, x, wp]) mem.free(p);
    }
  });

  it('convInt8 where a Winograd band of one tile row exceeds the scratch: the direct kernel, same result', () => {
    // 200 input channels, 1000 output columns: one tile row of transformed input is ~3.2 MB > the 3 MiB scratch
    const g = conv(1, 200, 4, 1002, 8, 3);
    assert.ok(int8WinogradApplies(g));
    const w = codesBuffer(g.outC * g.inC * 9, 'i8');
    const nb = ref.int8PackedWeightBytes(g);
    const packed = compareBackends(nb, (k, dst) => k.int8PackWeights(g, w.p, dst), 'int8PackWeights');
    const wp = alloc(nb);
    mem.u8.set(packed.subarray(0, nb), wp);
    const x = codesBuffer(g.n * g.inC * g.inH * g.inW, 'u8');
    const count = g.n * g.outC * g.outH * g.outW;
    const paths = { ...int8ConvPaths };
    const acc = compareBackends(count * 4, (k, y) => k.convInt8(g, x.p, 'u8', 3, wp, { kind: 'int32' }, y), 'int32');
    assert.deepStrictEqual(int8ConvPaths, { ...paths, direct: paths.direct + THREADS.length }, 'the direct kernel ran');
    // one accumulator by hand from the original weights: output channel 5, pixel (1, 700)
    let a = 0;
    for (let c = 0; c < g.inC; c++)
      for (let t = 0; t < 9; t++) a += (x.values[(c * g.inH + 1 + Math.floor(t / 3)) * g.inW + 700 + (t % 3)] - 3) * w.values[(5 * g.inC + c) * 9 + t];
    assert.equal(new DataView(acc.buffer, acc.byteOffset).getInt32(4 * (5 * 2000 + 1000 + 700), true), a);
    for (const p of [w.p, wp, x.p]) mem.free(p);
  });

  it('convInt8 takes the Winograd paths where they apply (F(4x4) to 128 input channels, from 16 output columns on), the direct one elsewhere', () => {
    const cases: [ConvGeometry, keyof typeof int8ConvPaths][] = [
      [conv(1, 16, 9, 16, 8, 3, { pad: 1 }), 'winograd4'],
      [conv(1, 128, 9, 16, 8, 3, { pad: 1 }), 'winograd4'],
      [conv(1, 129, 9, 16, 8, 3, { pad: 1 }), 'winograd'],
      [conv(1, 1828, 3, 16, 8, 3, { pad: 1 }), 'direct'], // more input channels than the Winograd paths take
      [conv(1, 16, 9, 15, 8, 3, { pad: 1 }), 'winograd'], // narrower than 16
      [conv(1, 16, 9, 9, 8, 3, { pad: 1, stride: 2 }), 'direct'],
      [conv(1, 7, 9, 9, 8, 3, { pad: 1 }), 'direct'], // fewer than 8 input channels
      [conv(1, 16, 3, 3, 8, 3, { pad: 0 }), 'direct'], // a 1 x 1 output
    ];
    for (const [g, path] of cases) {
      assert.equal(int8WinogradApplies(g), path !== 'direct');
      assert.equal(int8Winograd4Applies(g), path === 'winograd4');
      const w = codesBuffer(g.outC * g.inC * 9, 'i8');
      const wp = alloc(wasm.int8PackedWeightBytes(g));
      wasm.int8PackWeights(g, w.p, wp);
      const x = codesBuffer(g.n * g.inC * g.inH * g.inW, 'u8');
      const y = alloc(g.n * g.outC * g.outH * g.outW * 4);
      const before = { ...int8ConvPaths };
      wasm.convInt8(g, x.p, 'u8', 77, wp, { kind: 'int32' }, y);
      assert.deepStrictEqual(int8ConvPaths, { ...before, [path]: before[path] + 1 });
      for (const p of [w.p, wp, x.p, y]) mem.free(p);
    }
  });

  it('packed weights take their bits per weight (pairs of input channels, blocks of 4 output channels)', () => {
    for (const bits of [8, 4, 2] as const)
      for (const [g, weights] of [[conv(1, 16, 9, 9, 8, 3, { pad: 1 }), 8 * 16 * 9], [conv(1, 7, 5, 5, 6, 1), 8 * 8], [conv(1, 6, 5, 5, 6, 3, { groups: 3 }), 3 * 4 * 2 * 9]] as const)
        assert.equal(ref.int8PackedWeightBytes(g, bits), (weights * bits) / 8);
  });

  it('packing refuses weights outside the signed range of the width', () => {
    const g = conv(1, 4, 3, 3, 4, 1);
    for (const [bits, bad] of [[4, 8], [4, -9], [2, 2], [2, -3]] as const) {
      const w = codesBuffer(16, 'i8', bits);
      mem.i8[w.p + 5] = bad;
      const dst = alloc(ref.int8PackedWeightBytes(g, bits));
      for (const k of [ref, wasm]) assert.throws(() => k.int8PackWeights(g, w.p, dst, bits), new RegExp(`weight ${bad} \\(element 5\\) does not fit ${bits} bits`));
      for (const p of [w.p, dst]) mem.free(p);
    }
  });

  it('requantize: every shift (-30 .. 32), extreme accumulators and clamps (vector and scalar paths)', () => {
    const c = 63, hw = 13;
    const accVals = Array.from({ length: c * hw }, (_, i) => (i % 7 === 0 ? (i % 2 ? 2 ** 31 - 1 : -(2 ** 31)) : randInt(-(2 ** 31), 2 ** 31 - 1)));
    const acc = i32Buffer(accVals);
    for (const [lo, hi, zp, out] of [[-128, 127, 3, 'i8'], [0, 255, 200, 'u8'], [10, 5, 7, 'u8'], [-(2 ** 31), 2 ** 31 - 1, -(2 ** 31), 'i8'], [-5, 300, 2 ** 31 - 1, 'u8']] as const) {
      const bias = i64Buffer(Array.from({ length: c }, () => BigInt(randInt(-(2 ** 31), 2 ** 31 - 1)) * BigInt(randInt(0, 2 ** 20))));
      const multiplier = i32Buffer(Array.from({ length: c }, () => randInt(2 ** 30, 2 ** 31 - 1)));
      const shift = i32Buffer(Array.from({ length: c }, (_, i) => i - 30)); // s = 31 + shift: 1 .. 63
      const ep: IntEpilogue = { kind: 'requant', bias, multiplier, shift, zeroPoint: zp, lo, hi, out };
      compareBackends(c * hw, (k, y) => k.requantize(acc, 1, c, hw, ep, y), `requantize clamp [${lo}, ${hi}] zero ${zp}`);
      for (const p of [bias, multiplier, shift]) mem.free(p);
    }
    mem.free(acc);
  });

  it('requantize: every epilogue over random accumulators', () => {
    for (const [n, c, hw] of [[1, 3, 17], [2, 70, 5], [3, 1, 1], [1, 130, 2], [2, 64, 200]]) {
      const accVals = Array.from({ length: n * c * hw }, () => randInt(-300000, 300000));
      accVals[0] = 2 ** 31 - 1; // wraps with a positive bias
      accVals[accVals.length - 1] = -(2 ** 31);
      const acc = i32Buffer(accVals);
      for (const kind of KINDS)
        for (const relu of [false, true]) {
          const { ep, outBytes, ptrs } = randomEpilogue(kind, c, rand() < 0.5 ? 'u8' : 'i8', relu, 25);
          compareBackends(outBytes(n * c * hw, hw, n), (k, y) => k.requantize(acc, n, c, hw, ep, y), `requantize [${n}, ${c}, ${hw}] ${kind}`);
          for (const p of ptrs) mem.free(p);
        }
      mem.free(acc);
    }
  });

  it('sumPlanesInt8', () => {
    for (const xType of ['u8', 'i8'] as const)
      for (const [planes, hw] of [[5, 49], [3, 1], [2, 3136], [7, 16], [70, 4000]]) {
        const x = codesBuffer(planes * hw, xType);
        const z = randInt(...codeRange(xType));
        compareBackends(planes * 4, (k, acc) => k.sumPlanesInt8(x.p, xType, z, planes, hw, acc), `sumPlanesInt8 ${xType} ${planes}x${hw}`);
        mem.free(x.p);
      }
  });

  it('maxPoolInt8', () => {
    const pool = (planes: number, inH: number, inW: number, k: number, s: number, pad: [number, number, number, number], d = 1): PoolGeometry => ({
      planes, inH, inW, kH: k, kW: k, strideH: s, strideW: s, padTop: pad[0], padLeft: pad[1], padBottom: pad[2], padRight: pad[3],
      dilationH: d, dilationW: d, outH: Math.floor((inH + pad[0] + pad[2] - d * (k - 1) - 1) / s) + 1,
      outW: Math.floor((inW + pad[1] + pad[3] - d * (k - 1) - 1) / s) + 1, countIncludePad: false,
    });
    const cases = [pool(6, 8, 8, 2, 2, [0, 0, 0, 0]), pool(5, 9, 7, 3, 2, [1, 1, 1, 0]), pool(3, 7, 7, 3, 1, [2, 1, 2, 1], 2), pool(2, 4, 5, 1, 1, [1, 1, 1, 1]), pool(64, 56, 56, 3, 2, [1, 1, 1, 1])];
    for (const g of cases)
      for (const xType of ['u8', 'i8'] as const) {
        const x = codesBuffer(g.planes * g.inH * g.inW, xType);
        compareBackends(g.planes * g.outH * g.outW, (k, y) => k.maxPoolInt8(g, x.p, xType, y), `maxPoolInt8 ${JSON.stringify(g)} ${xType}`);
        mem.free(x.p);
      }
  });

  it('addInt8', () => {
    for (const n of [1, 17, 1000, 70001]) {
      const aType: CodeType = rand() < 0.5 ? 'u8' : 'i8', bType: CodeType = rand() < 0.5 ? 'u8' : 'i8', yType: CodeType = rand() < 0.5 ? 'u8' : 'i8';
      const a = codesBuffer(n, aType), b = codesBuffer(n, bType);
      const aM = randInt(-(2 ** 31) + 1, 2 ** 31 - 1), bM = randInt(-(2 ** 31) + 1, 2 ** 31 - 1);
      const shift = randInt(30, 40);
      const [lo, hi] = codeRange(yType);
      const yZero = randInt(lo, hi), yLo = rand() < 0.5 ? yZero : lo;
      const aZero = randInt(...codeRange(aType)), bZero = randInt(...codeRange(bType));
      compareBackends(n, (k, y) => k.addInt8(n, a.p, aType, aZero, aM, b.p, bType, bZero, bM, shift, yZero, yLo, hi, y, yType),
        `addInt8 n=${n}`);
      mem.free(a.p);
      mem.free(b.p);
    }
  });
});
