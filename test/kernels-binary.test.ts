// The binary (XNOR-popcount) kernels: the reference against an independent definition (the f32 reference
// convolution of the signs, and a hand-worked example), then the WebAssembly kernels against the reference,
// bit for bit, for every method and epilogue, on odd shapes, at 1 and 2 threads.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EngineMemory, type Ptr } from '../src/kernels/memory.js';
import { createRefKernels } from '../src/kernels/ref/index.js';
import type { ConvGeometry, IntEpilogue, Kernels } from '../src/kernels/types.js';
import { createWasmKernels, type WasmKernels } from '../src/kernels/wasm/index.js';
import { rng } from './rng.js';

const mem = new EngineMemory({ shared: true, initialBytes: 32 * 2 ** 20 });
const ref = createRefKernels(mem);
let wasm: WasmKernels;
const rand = rng(20260315);

before(async () => {
  wasm = await createWasmKernels(mem, { threads: 2 });
});
after(async () => {
  await wasm.dispose();
});

// ---- helpers -------------------------------------------------------------------------------------------

interface Shape {
  n: number; inC: number; inH: number; inW: number; outC: number; kH: number; kW: number;
  s?: [number, number]; pad?: [number, number, number, number]; dil?: [number, number];
}

function geometry(s: Shape): ConvGeometry {
  const [sH, sW] = s.s ?? [1, 1];
  const [pT, pL, pB, pR] = s.pad ?? [0, 0, 0, 0];
  const [dH, dW] = s.dil ?? [1, 1];
  const outH = Math.floor((s.inH + pT + pB - dH * (s.kH - 1) - 1) / sH) + 1;
  const outW = Math.floor((s.inW + pL + pR - dW * (s.kW - 1) - 1) / sW) + 1;
  return {
    n: s.n, inC: s.inC, inH: s.inH, inW: s.inW, outC: s.outC, kH: s.kH, kW: s.kW, strideH: sH, strideW: sW,
    padTop: pT, padLeft: pL, padBottom: pB, padRight: pR, dilationH: dH, dilationW: dW, groups: 1, outH, outW,
  };
}

const words = (c: number) => Math.ceil(c / 64);
const describeShape = (s: Shape) => JSON.stringify(s);

/** Random values in [-1, 1), a few of them exactly 0, -0 or NaN (x >= 0: +1, +1, -1). */
function randomValues(n: number, specials = true): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rand();
    if (specials && r < 0.02) a[i] = 0;
    else if (specials && r < 0.04) a[i] = -0;
    else if (specials && r < 0.05) a[i] = NaN;
    else a[i] = 2 * rand() - 1;
  }
  return a;
}

/** A buffer of `bytes` bytes in engine memory, filled with a garbage pattern, plus guard bytes. */
function garbage(bytes: number): Ptr {
  const p = mem.alloc(bytes + 64);
  mem.u8.fill(0xa5, p, p + bytes + 64);
  return p;
}
function f32Buffer(values: ArrayLike<number>): Ptr {
  const p = mem.alloc(values.length * 4 + 64);
  mem.f32.set(values, p >> 2);
  return p;
}
function i32Buffer(values: ArrayLike<number>): Ptr {
  const p = mem.alloc(values.length * 4 + 64);
  mem.i32.set(values, p >> 2);
  return p;
}
const bytesAt = (p: Ptr, n: number) => mem.u8.slice(p, p + n);

/** Binarized input bits for g (via the reference binarizePack of random floats). */
function randomBits(g: ConvGeometry): { xf: Float32Array; bits: Ptr } {
  const xf = randomValues(g.n * g.inC * g.inH * g.inW);
  const xp = f32Buffer(xf);
  const bits = garbage(g.n * g.inH * g.inW * words(g.inC) * 8);
  ref.binarizePack(xp, g.n, g.inC, g.inH, g.inW, bits);
  mem.free(xp);
  return { xf, bits };
}

function packedWeights(k: Kernels, g: ConvGeometry, wf: Float32Array): Ptr {
  const wp = f32Buffer(wf);
  const dst = garbage(k.binaryPackedWeightBytes(g));
  k.binaryPackWeights(g, wp, dst);
  mem.free(wp);
  return dst;
}

/** Output bytes of an epilogue. */
function outputBytes(g: ConvGeometry, ep: IntEpilogue): number {
  const count = g.n * g.outC * g.outH * g.outW;
  switch (ep.kind) {
    case 'bits': return g.n * g.outH * g.outW * words(g.outC) * 8;
    case 'requant': return count;
    default: return count * 4;
  }
}

/** The four epilogues with random per-channel parameters (each kind in a few variants). */
function epilogues(g: ConvGeometry): { name: string; ep: IntEpilogue }[] {
  const C = g.outC;
  const spread = Math.sqrt(g.kH * g.kW * g.inC);
  const scale = f32Buffer(Array.from({ length: C }, (_, c) => (c % 7 === 3 ? 0 : (rand() < 0.3 ? -1 : 1) * (0.1 + rand()))));
  const offset = f32Buffer(Array.from({ length: C }, (_, c) => (c % 7 === 3 ? 0 : (rand() - 0.5) * spread)));
  // i64 bias in units of 2^-(31 + shift) codes: about +-200 accumulator steps
  const bias = mem.alloc(C * 8 + 64);
  new BigInt64Array(mem.memory.buffer, bias, C).set(Array.from({ length: C }, () => BigInt(Math.floor((rand() - 0.5) * 400)) * BigInt(2 ** 30)));
  const multiplier = i32Buffer(Array.from({ length: C }, () => 2 ** 30 + Math.floor(rand() * (2 ** 30 - 1))));
  const shift = i32Buffer(Array.from({ length: C }, () => Math.floor(rand() * 6)));
  const pixelScale = f32Buffer(Array.from({ length: g.n * g.outH * g.outW }, () => 0.05 + rand()));
  const channelBias = f32Buffer(Array.from({ length: C }, () => rand() - 0.5));
  const postScale = f32Buffer(Array.from({ length: C }, () => (rand() < 0.3 ? -1 : 1) * (0.2 + rand())));
  const postShift = f32Buffer(Array.from({ length: C }, () => rand() - 0.5));
  const residual = f32Buffer(Array.from({ length: g.n * C * g.outH * g.outW }, () => 4 * (rand() - 0.5)));
  return [
    { name: 'int32', ep: { kind: 'int32' } },
    { name: 'bits', ep: { kind: 'bits', scale, offset } },
    { name: 'float', ep: { kind: 'float', scale, offset, lo: -Infinity, hi: Infinity } },
    { name: 'float clamped', ep: { kind: 'float', scale, offset, lo: -0.75, hi: 6.1 } },
    { name: 'float times K per pixel plus bias (XNOR-Net)', ep: { kind: 'float', scale, offset, lo: -Infinity, hi: Infinity, pixelScale, bias: channelBias } },
    { name: 'float times K plus bias, then batch norm (fused)', ep: { kind: 'float', scale, offset, lo: -Infinity, hi: Infinity, pixelScale, bias: channelBias, post: { scale: postScale, shift: postShift, relu: false } } },
    { name: 'float times K, then batch norm and ReLU (fused)', ep: { kind: 'float', scale, offset, lo: -Infinity, hi: Infinity, pixelScale, post: { scale: postScale, shift: postShift, relu: true } } },
    { name: 'float times K, then batch norm, residual add and ReLU (fused)', ep: { kind: 'float', scale, offset, lo: -Infinity, hi: Infinity, pixelScale, post: { scale: postScale, shift: postShift, residual, relu: true } } },
    { name: 'requant u8', ep: { kind: 'requant', bias, multiplier, shift, zeroPoint: 128, lo: 0, hi: 255, out: 'u8' } },
    { name: 'requant u8 relu, no bias', ep: { kind: 'requant', bias: 0, multiplier, shift, zeroPoint: 20, lo: 20, hi: 255, out: 'u8' } },
    { name: 'requant i8', ep: { kind: 'requant', bias, multiplier, shift, zeroPoint: -3, lo: -128, hi: 127, out: 'i8' } },
  ];
}

const SHAPES: Shape[] = [
  { n: 1, inC: 3, inH: 5, inW: 5, outC: 5, kH: 3, kW: 3, pad: [1, 1, 1, 1] },
  { n: 2, inC: 63, inH: 7, inW: 6, outC: 67, kH: 3, kW: 3, s: [2, 2], pad: [1, 1, 1, 1] },
  { n: 3, inC: 64, inH: 9, inW: 9, outC: 64, kH: 3, kW: 3 },
  { n: 1, inC: 65, inH: 8, inW: 11, outC: 130, kH: 3, kW: 3, pad: [2, 1, 0, 2] },
  { n: 2, inC: 130, inH: 9, inW: 10, outC: 9, kH: 3, kW: 3, pad: [2, 2, 2, 2], dil: [2, 2] },
  { n: 1, inC: 64, inH: 12, inW: 13, outC: 65, kH: 3, kW: 3, pad: [1, 1, 1, 1] },
  { n: 2, inC: 100, inH: 5, inW: 9, outC: 70, kH: 1, kW: 1 },
  { n: 3, inC: 200, inH: 1, inW: 1, outC: 71, kH: 1, kW: 1 }, // a linear layer
  { n: 1, inC: 32, inH: 11, inW: 14, outC: 12, kH: 5, kW: 3, s: [2, 1], pad: [2, 1, 2, 1] },
  { n: 2, inC: 17, inH: 8, inW: 8, outC: 66, kH: 2, kW: 2, s: [2, 2] },
  { n: 1, inC: 64, inH: 2, inW: 2, outC: 7, kH: 3, kW: 3, pad: [1, 1, 1, 1] }, // no interior pixel
  { n: 1, inC: 5, inH: 4, inW: 9, outC: 6, kH: 3, kW: 3, pad: [3, 3, 3, 3] }, // outputs with no tap inside
  { n: 1, inC: 128, inH: 10, inW: 17, outC: 33, kH: 3, kW: 3, s: [1, 2], pad: [0, 1, 1, 0], dil: [1, 2] },
];
/** Big enough that the work is split into units (both threads take part). */
const SPLIT_SHAPES: Shape[] = [
  { n: 2, inC: 64, inH: 20, inW: 21, outC: 64, kH: 3, kW: 3, pad: [1, 1, 1, 1] },
  { n: 1, inC: 96, inH: 16, inW: 16, outC: 131, kH: 3, kW: 3, s: [2, 2], pad: [1, 1, 1, 1] },
];

// ---- the reference against independent definitions ---------------------------------------------------

describe('binary kernels: reference', () => {
  it('hand-worked example: a padded tap contributes 0 (all +1, 3x3 kernel, padding 1)', () => {
    const g = geometry({ n: 1, inC: 1, inH: 3, inW: 3, outC: 1, kH: 3, kW: 3, pad: [1, 1, 1, 1] });
    const xp = f32Buffer(new Array(9).fill(1));
    const bits = garbage(9 * 8);
    ref.binarizePack(xp, 1, 1, 3, 3, bits);
    // each pixel: one word with bit 0 set
    for (let p = 0; p < 9; p++) assert.deepEqual([mem.u32[(bits >> 2) + 2 * p], mem.u32[(bits >> 2) + 2 * p + 1]], [1, 0]);
    for (const k of [ref, wasm]) {
      const w = packedWeights(k, g, new Float32Array(9).fill(1));
      const y = garbage(9 * 4);
      k.convBinary(g, bits, w, { kind: 'int32' }, y);
      assert.deepEqual(Array.from(mem.i32.slice(y >> 2, (y >> 2) + 9)), [4, 6, 4, 6, 9, 6, 4, 6, 4], k.name);
    }
  });

  it('hand-worked example: mixed signs', () => {
    // x channel 0 = +1, channel 1 = -1 everywhere (2x2 image); w 1x1 = (+1, +1) and (+1, -1):
    // outputs 1 - 1 = 0 and 1 + 1 = 2
    const g = geometry({ n: 1, inC: 2, inH: 2, inW: 2, outC: 2, kH: 1, kW: 1 });
    const xp = f32Buffer([1, 1, 1, 1, -1, -1, -1, -1]);
    const bits = garbage(4 * 8);
    ref.binarizePack(xp, 1, 2, 2, 2, bits);
    const w = packedWeights(ref, g, new Float32Array([1, 1, 1, -1]));
    const y = garbage(8 * 4);
    ref.convBinary(g, bits, w, { kind: 'int32' }, y);
    assert.deepEqual(Array.from(mem.i32.slice(y >> 2, (y >> 2) + 8)), [0, 0, 0, 0, 2, 2, 2, 2]);
  });

  it('binarizePack: bit c % 64 of word c / 64, x >= 0 is 1 (-0 too, NaN not), unused bits 0', () => {
    const C = 70;
    const xf = randomValues(C * 3);
    const xp = f32Buffer(xf);
    const bits = garbage(3 * 2 * 8);
    ref.binarizePack(xp, 1, C, 1, 3, bits);
    for (let p = 0; p < 3; p++)
      for (let c = 0; c < 128; c++) {
        const word = (bits >> 2) + (p * 2 + (c >> 6)) * 2 + ((c & 63) >> 5);
        const bit = (mem.u32[word] >>> (c & 31)) & 1;
        assert.equal(bit, c < C && xf[c * 3 + p] >= 0 ? 1 : 0, `pixel ${p} channel ${c}`);
      }
  });

  it('int32 = the f32 reference convolution of sign(x) and sign(w) with zero padding', () => {
    for (const s of [...SHAPES, SPLIT_SHAPES[1]]) {
      const g = geometry(s);
      const { xf, bits } = randomBits(g);
      const wf = randomValues(g.outC * g.inC * g.kH * g.kW);
      const sign = (a: Float32Array) => a.map((v) => (v >= 0 ? 1 : -1));
      const xs = f32Buffer(sign(xf)), ws = f32Buffer(sign(wf));
      const count = g.n * g.outC * g.outH * g.outW;
      const yf = garbage(count * 4);
      ref.conv2d(g, xs, ws, 0, yf);
      const w = packedWeights(ref, g, wf);
      const yi = garbage(count * 4);
      ref.convBinary(g, bits, w, { kind: 'int32' }, yi);
      assert.deepEqual(Array.from(mem.i32.slice(yi >> 2, (yi >> 2) + count)), Array.from(mem.f32.slice(yf >> 2, (yf >> 2) + count)), describeShape(s));
      for (const p of [xs, ws, yf, w, yi, bits]) mem.free(p);
    }
  });

  it('groups != 1 is an error', () => {
    const g = { ...geometry({ n: 1, inC: 4, inH: 3, inW: 3, outC: 4, kH: 1, kW: 1 }), groups: 2 };
    for (const k of [ref, wasm]) assert.throws(() => k.convBinary(g, 0, 0, { kind: 'int32' }, 0), /groups = 1/);
  });
});

// ---- wasm against ref ----------------------------------------------------------------------------------

describe('binary kernels: wasm = ref, bit for bit', () => {
  it('binarizePack', () => {
    for (const [n, c, h, w] of [[1, 1, 1, 1], [2, 3, 5, 7], [1, 64, 4, 4], [3, 65, 3, 5], [1, 130, 6, 9], [2, 200, 1, 1], [1, 31, 2, 13]]) {
      const xp = f32Buffer(randomValues(n * c * h * w));
      const bytes = n * h * w * words(c) * 8;
      for (const threads of [1, 2]) {
        wasm.setThreads(threads);
        const a = garbage(bytes), b = garbage(bytes);
        ref.binarizePack(xp, n, c, h, w, a);
        wasm.binarizePack(xp, n, c, h, w, b);
        assert.deepStrictEqual(bytesAt(b, bytes + 64), bytesAt(a, bytes + 64), `[${n}, ${c}, ${h}, ${w}] threads ${threads}`);
        mem.free(a); mem.free(b);
      }
      mem.free(xp);
    }
    // big enough to be split over the threads
    const [n, c, h, w] = [2, 96, 40, 41];
    const xp = f32Buffer(randomValues(n * c * h * w));
    const bytes = n * h * w * words(c) * 8;
    const a = garbage(bytes), b = garbage(bytes);
    wasm.setThreads(2);
    ref.binarizePack(xp, n, c, h, w, a);
    wasm.binarizePack(xp, n, c, h, w, b);
    assert.deepStrictEqual(bytesAt(b, bytes), bytesAt(a, bytes));
  });

  it('binarizePack with an input batch norm and the channel mean of |v| (XNOR-Net A), in one pass', () => {
    for (const [n, c, h, w] of [[1, 1, 1, 1], [2, 3, 5, 7], [1, 64, 4, 4], [3, 65, 3, 5], [1, 130, 6, 9], [2, 96, 40, 41]]) {
      const xf = randomValues(n * c * h * w);
      const scale = Float32Array.from({ length: c }, (_, i) => (i % 5 === 0 ? -1 : 1) * (0.25 + Math.random()));
      const shift = Float32Array.from({ length: c }, () => Math.random() - 0.5);
      const xp = f32Buffer(xf), sp = f32Buffer(scale), tp = f32Buffer(shift);
      const bytes = n * h * w * words(c) * 8, hw = h * w;
      // independent check of the reference: v from the definition, bits and A from v
      const a = garbage(bytes), am = garbage(n * hw * 4);
      ref.binarizePack(xp, n, c, h, w, a, { norm: { scale: sp, shift: tp }, absMean: am });
      for (let b = 0; b < n; b++)
        for (let p = 0; p < hw; p++) {
          let sum = 0;
          for (let ch = 0; ch < c; ch++) {
            const v = Math.fround(Math.fround(xf[(b * c + ch) * hw + p] * scale[ch]) + shift[ch]);
            const word = (a >> 2) + ((b * hw + p) * words(c) + (ch >> 6)) * 2 + ((ch & 63) >> 5);
            assert.equal((mem.u32[word] >>> (ch & 31)) & 1, v >= 0 ? 1 : 0);
            sum += Math.abs(v);
          }
          const got = mem.f32[(am >> 2) + b * hw + p];
          if (Number.isNaN(sum)) assert.ok(Number.isNaN(got), 'a NaN input makes A NaN');
          else assert.ok(Math.abs(got - sum / c) <= 1e-5 * (sum / c), `A = ${got}, expected ${sum / c}`);
        }
      for (const threads of [1, 2]) {
        wasm.setThreads(threads);
        const bb = garbage(bytes), bm = garbage(n * hw * 4);
        wasm.binarizePack(xp, n, c, h, w, bb, { norm: { scale: sp, shift: tp }, absMean: bm });
        assert.deepStrictEqual(bytesAt(bb, bytes + 64), bytesAt(a, bytes + 64), `bits [${n}, ${c}, ${h}, ${w}] threads ${threads}`);
        assert.deepStrictEqual(bytesAt(bm, n * hw * 4 + 64), bytesAt(am, n * hw * 4 + 64), `A [${n}, ${c}, ${h}, ${w}] threads ${threads}`);
        mem.free(bb); mem.free(bm);
      }
      for (const p of [xp, sp, tp, a, am]) mem.free(p);
    }
  });

  it('float epilogue with K and bias = f32(f32(plain float output) * K[pixel]) + bias[c]', () => {
    const g = geometry(SHAPES[3]);
    const { bits } = randomBits(g);
    const w = packedWeights(ref, g, randomValues(g.outC * g.inC * g.kH * g.kW));
    const eps = epilogues(g);
    const plain = eps.find((e) => e.name === 'float')!.ep, withK = eps.find((e) => e.name.startsWith('float times K'))!.ep;
    if (withK.kind !== 'float') throw new Error('unreachable');
    const P = g.outH * g.outW, count = g.n * g.outC * P;
    const y0 = garbage(count * 4), y1 = garbage(count * 4);
    ref.convBinary(g, bits, w, plain, y0);
    ref.convBinary(g, bits, w, withK, y1);
    for (let i = 0; i < count; i++) {
      const b = Math.floor(i / (g.outC * P)), c = Math.floor(i / P) % g.outC, p = i % P;
      const expected = Math.fround(Math.fround(mem.f32[(y0 >> 2) + i] * mem.f32[(withK.pixelScale! >> 2) + b * P + p]) + mem.f32[(withK.bias! >> 2) + c]);
      assert.equal(mem.f32[(y1 >> 2) + i], expected);
    }
    for (const p of [bits, w, y0, y1]) mem.free(p);
  });

  it('fused batch norm, residual add and ReLU = the unfused output through channelAffine, add and relu, bit for bit', () => {
    const g = geometry(SHAPES[5]);
    const { bits } = randomBits(g);
    const w = packedWeights(ref, g, randomValues(g.outC * g.inC * g.kH * g.kW));
    const P = g.outH * g.outW, count = g.n * g.outC * P;
    for (const e of epilogues(g).filter((v) => v.name.endsWith('(fused)'))) {
      const fused = e.ep;
      if (fused.kind !== 'float' || !fused.post) throw new Error('unreachable');
      const y0 = garbage(count * 4), y1 = garbage(count * 4);
      ref.convBinary(g, bits, w, { ...fused, post: undefined }, y0);
      // the runtime's unfused chain: the WebAssembly channelAffine (f32 multiply, then f32 add), add and relu
      wasm.channelAffine(y0, fused.post.scale, fused.post.shift, y0, g.n, g.outC, P);
      if (fused.post.residual) {
        const shape = [g.n, g.outC, g.outH, g.outW], strides = [g.outC * P, P, g.outW, 1];
        wasm.binary('add', y0, strides, fused.post.residual, strides, y0, shape);
      }
      if (fused.post.relu) wasm.unary('relu', y0, y0, count, 0, 0);
      for (const k of [ref, wasm]) {
        k.convBinary(g, bits, w, fused, y1);
        assert.deepStrictEqual(bytesAt(y1, count * 4), bytesAt(y0, count * 4), `${e.name}: ${k.name}`);
      }
      mem.free(y0);
      mem.free(y1);
    }
    for (const p of [bits, w]) mem.free(p);
  });

  it('binaryPackWeights', () => {
    for (const s of [...SHAPES, ...SPLIT_SHAPES]) {
      const g = geometry(s);
      assert.equal(wasm.binaryPackedWeightBytes(g), ref.binaryPackedWeightBytes(g));
      const wf = randomValues(g.outC * g.inC * g.kH * g.kW);
      for (const threads of [1, 2]) {
        wasm.setThreads(threads);
        const a = packedWeights(ref, g, wf), b = packedWeights(wasm, g, wf);
        const bytes = ref.binaryPackedWeightBytes(g);
        assert.deepStrictEqual(bytesAt(b, bytes + 64), bytesAt(a, bytes + 64), `${describeShape(s)} threads ${threads}`);
        mem.free(a); mem.free(b);
      }
    }
  });

  for (const s of [...SHAPES, ...SPLIT_SHAPES]) {
    it(`convBinary ${describeShape(s)}`, () => {
      const g = geometry(s);
      const { bits } = randomBits(g);
      const w = packedWeights(ref, g, randomValues(g.outC * g.inC * g.kH * g.kW));
      for (const { name, ep } of epilogues(g)) {
        const bytes = outputBytes(g, ep);
        const expected = garbage(bytes);
        ref.convBinary(g, bits, w, ep, expected);
        const want = bytesAt(expected, bytes + 64);
        for (const threads of [1, 2]) {
          wasm.setThreads(threads);
          const y = garbage(bytes);
          wasm.convBinary(g, bits, w, ep, y);
          const got = bytesAt(y, bytes + 64);
          if (ep.kind === 'float') {
            // compare as f32 for a readable message; bytes are compared too (-0, NaN payloads)
            assert.deepStrictEqual(new Float32Array(got.buffer, 0, bytes / 4), new Float32Array(want.buffer, 0, bytes / 4), `${name} threads ${threads}`);
          } else if (ep.kind === 'int32') {
            assert.deepStrictEqual(new Int32Array(got.buffer, 0, bytes / 4), new Int32Array(want.buffer, 0, bytes / 4), `${name} threads ${threads}`);
          }
          assert.deepStrictEqual(got, want, `${name} threads ${threads}`);
          mem.free(y);
        }
        mem.free(expected);
      }
      mem.free(bits); mem.free(w);
      wasm.setThreads(2);
    });
  }

  it('bits epilogue: some channels on, some off (the test data exercises both)', () => {
    const g = geometry(SHAPES[3]);
    const { bits } = randomBits(g);
    const w = packedWeights(ref, g, randomValues(g.outC * g.inC * g.kH * g.kW));
    const ep = epilogues(g)[1].ep;
    const bytes = outputBytes(g, ep);
    const y = garbage(bytes);
    wasm.convBinary(g, bits, w, ep, y);
    let ones = 0;
    for (let i = 0; i < bytes; i++) for (let b = 0; b < 8; b++) ones += (mem.u8[y + i] >> b) & 1;
    const total = g.n * g.outH * g.outW * g.outC;
    assert.ok(ones > total * 0.2 && ones < total * 0.8, `${ones} of ${total} bits set`);
  });
});
