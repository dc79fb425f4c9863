// The WebAssembly kernels against the reference kernels (the spec), on random inputs and shapes including
// odd sizes, at 1 and 2 threads. Tolerance: relative 1e-5, relative to the sum of |terms| for dot products
// (GEMM, convolutions, reductions, affine maps), to |expected| for elementwise results; bit-identical for
// the random generators, casts and masks.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EngineMemory, type Ptr } from '../src/kernels/memory.js';
import { createRefKernels } from '../src/kernels/ref/index.js';
import { BINARY_OPS, UNARY_OPS, type ConvGeometry, type DType, type Kernels, type PoolGeometry } from '../src/kernels/types.js';
import { createWasmKernels, type WasmKernels } from '../src/kernels/wasm/index.js';
import { rng } from './rng.js';

const RTOL = 1e-5;


const mem = new EngineMemory({ shared: true, initialBytes: 32 * 2 ** 20 });
const ref = createRefKernels(mem);
let wasm: WasmKernels;
/** The same kernels without Winograd (3x3 stride-1 convolutions take the direct path). */
let wasmDirect: WasmKernels;
/** The same kernels with Winograd F(2x2, 3x3) only (no F(4x4, 3x3) for wide outputs: the default). */
let wasmF2: WasmKernels;
const rand = rng(20260101);

before(async () => {
  wasm = await createWasmKernels(mem, { threads: 2, winogradF4: true }); // as training steps run (default: off)
  wasmDirect = await createWasmKernels(mem, { threads: 2, winograd: false });
  wasmF2 = await createWasmKernels(mem, { threads: 2 });
});
after(async () => {
  await wasm.dispose();
  await wasmDirect.dispose();
  await wasmF2.dispose();
});

const THREADS = [1, 2];

// ---- buffers -------------------------------------------------------------------------------------------

function randomValues(n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rand();
  return a;
}

/** A buffer in engine memory holding `values` (f32), with 64 guard bytes after it. */
function buffer(values: ArrayLike<number>): Ptr {
  const p = mem.alloc(values.length * 4 + 64);
  mem.f32.set(values, p >> 2);
  return p;
}
function read(p: Ptr, n: number): Float32Array {
  return mem.f32.slice(p >> 2, (p >> 2) + n);
}
function readI32(p: Ptr, n: number): Int32Array {
  return mem.i32.slice(p >> 2, (p >> 2) + n);
}
function write(p: Ptr, values: ArrayLike<number>): void {
  mem.f32.set(values, p >> 2);
}

/** Elementwise: |a - e| <= rtol * |e| + atol (NaN matches NaN, infinities must be equal). */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, atol = 0, rtol = RTOL): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (a === e) continue;
    if (!(Math.abs(a - e) <= rtol * Math.abs(e) + atol)) assert.fail(`${what}: element ${i}: got ${a}, expected ${e}`);
  }
}

/** Dot products: |a - e| <= rtol * scale[i] (scale = the sum of |terms| of element i). */
function assertCloseScaled(actual: ArrayLike<number>, expected: ArrayLike<number>, scale: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    if (a === e) continue;
    if (!(Math.abs(a - e) <= RTOL * scale[i] + 1e-30)) assert.fail(`${what}: element ${i}: got ${a}, expected ${e} (sum of |terms| ${scale[i]})`);
  }
}

function assertBitEqual(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    if (!(Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e)))) assert.fail(`${what}: element ${i}: got ${a}, expected ${e}`);
  }
}

/**
 * Runs `call` with the reference and with wasm at 1 and 2 threads on the same inputs. `outputs` are
 * reset to `initial` before each run (accumulating kernels read them). Returns [ref, [wasm per threads]].
 */
function both(outputs: { p: Ptr; n: number; initial?: Float32Array }[], call: (k: Kernels) => void, impl: () => WasmKernels = () => wasm): [Float32Array[], Float32Array[][]] {
  const reset = () => { for (const o of outputs) write(o.p, o.initial ?? new Float32Array(o.n).fill(NaN)); };
  reset();
  call(ref);
  const expected = outputs.map((o) => read(o.p, o.n));
  const got: Float32Array[][] = [];
  const k = impl();
  for (const t of THREADS) {
    k.setThreads(t);
    reset();
    call(k);
    got.push(outputs.map((o) => read(o.p, o.n)));
  }
  return [expected, got];
}

const abs = (a: Float32Array) => a.map(Math.abs);

// ---- GEMM ----------------------------------------------------------------------------------------------

describe('gemm', () => {
  const shapes: [number, number, number][] = [
    [1, 1, 1], [5, 7, 3], [13, 17, 1], [1, 100, 50], [100, 1, 50], [4, 8, 16], [6, 16, 8],
    [37, 129, 257], [64, 64, 64], [200, 300, 150], [30, 1100, 20], [131, 67, 300],
    [400, 300, 300], // big enough for a 2 x 2 grid of units at 2 threads
    [1, 37, 19], [1, 1000, 512], // one-row products (batch-1 linear layers) run unpacked: tails, a classifier
    [1, 2100, 600], // one row split over units
  ];
  for (const [m, n, k] of shapes)
    for (const transA of [false, true])
      for (const transB of [false, true])
        for (const accumulate of [false, true]) {
          if (m * n * k > 1e6 && (transA !== transB || accumulate)) continue; // keep big ones few
          it(`${m}x${n}x${k} transA=${transA} transB=${transB} accumulate=${accumulate}`, () => {
            const pad = 3; // leading dimensions larger than the rows
            const lda = (transA ? m : k) + pad, ldb = (transB ? k : n) + pad, ldc = n + pad;
            const aVals = randomValues((transA ? k : m) * lda), bVals = randomValues((transB ? n : k) * ldb);
            const cInit = randomValues(m * ldc);
            const a = buffer(aVals), b = buffer(bVals), c = buffer(cInit);
            const [expected, got] = both([{ p: c, n: m * ldc, initial: cInit }], (kern) =>
              kern.gemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate));
            // sum of |terms|: the same GEMM on absolute values
            write(a, abs(aVals)); write(b, abs(bVals)); write(c, abs(cInit));
            ref.gemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
            const scale = read(c, m * ldc);
            for (let i = 0; i < m; i++) for (let j = n; j < ldc; j++) scale[i * ldc + j] = 0; // padding untouched
            for (const [ti, g] of got.entries()) assertCloseScaled(g[0], expected[0], scale, `gemm t${THREADS[ti]}`);
            for (const p of [a, b, c]) mem.free(p);
          });
        }
});

// ---- convolution ------------------------------------------------------------------------------------------

function conv(n: number, inC: number, inH: number, inW: number, outC: number, kH: number, kW: number,
  o: Partial<{ sH: number; sW: number; pT: number; pL: number; pB: number; pR: number; dH: number; dW: number; groups: number }> = {}): ConvGeometry {
  const sH = o.sH ?? 1, sW = o.sW ?? 1, pT = o.pT ?? 0, pL = o.pL ?? 0, pB = o.pB ?? pT, pR = o.pR ?? pL, dH = o.dH ?? 1, dW = o.dW ?? 1;
  const outH = Math.floor((inH + pT + pB - dH * (kH - 1) - 1) / sH) + 1;
  const outW = Math.floor((inW + pL + pR - dW * (kW - 1) - 1) / sW) + 1;
  return { n, inC, inH, inW, outC, kH, kW, strideH: sH, strideW: sW, padTop: pT, padLeft: pL, padBottom: pB, padRight: pR,
    dilationH: dH, dilationW: dW, groups: o.groups ?? 1, outH, outW };
}

describe('conv2d forward and backward', () => {
  const cases: [string, ConvGeometry][] = [
    ['3x3 pad 1, batch 2', conv(2, 3, 9, 11, 5, 3, 3, { pT: 1, pL: 1 })],
    ['stride 2', conv(1, 4, 10, 9, 6, 3, 3, { sH: 2, sW: 2, pT: 1, pL: 1 })],
    ['stride 2x1, 1x3 kernel', conv(2, 3, 7, 12, 4, 1, 3, { sH: 2, sW: 1, pL: 1 })],
    ['stride 3, 2x2 kernel', conv(1, 2, 11, 10, 3, 2, 2, { sH: 3, sW: 3 })],
    ['1x1 stride 2 with padding (input phases no tap reaches)', conv(2, 3, 7, 8, 4, 1, 1, { sH: 2, sW: 2, pT: 1, pL: 1 })],
    ['3x3 stride 2 without padding (input rows the convolution never reads)', conv(2, 4, 8, 10, 5, 3, 3, { sH: 2, sW: 2 })],
    ['5x5 stride 3x2, asymmetric padding', conv(2, 3, 13, 12, 6, 5, 5, { sH: 3, sW: 2, pT: 2, pL: 1, pB: 0, pR: 2 })],
    ['dilation 2', conv(1, 4, 12, 12, 6, 3, 3, { pT: 2, pL: 2, dH: 2, dW: 2 })],
    ['dilation 2, stride 2', conv(2, 3, 13, 11, 5, 3, 3, { pT: 1, pL: 2, dH: 2, dW: 2, sH: 2, sW: 2 })],
    ['asymmetric padding', conv(2, 3, 8, 9, 5, 3, 3, { pT: 0, pL: 2, pB: 1, pR: 0 })],
    ['padding larger than the kernel reach', conv(1, 2, 5, 6, 3, 2, 2, { pT: 3, pL: 2, pB: 0, pR: 3 })],
    ['groups 2', conv(2, 4, 8, 8, 6, 3, 3, { pT: 1, pL: 1, groups: 2 })],
    ['depthwise', conv(2, 5, 8, 9, 5, 3, 3, { pT: 1, pL: 1, groups: 5 })],
    ['depthwise stride 2', conv(2, 5, 9, 8, 5, 3, 3, { pT: 1, pL: 1, sH: 2, sW: 2, groups: 5 })],
    ['depthwise multiplier 2', conv(1, 3, 7, 7, 6, 3, 3, { pT: 1, pL: 1, groups: 3 })],
    ['1x1', conv(2, 7, 6, 5, 9, 1, 1)],
    ['1x1 stride 2', conv(2, 6, 7, 7, 5, 1, 1, { sH: 2, sW: 2 })],
    ['1x1 stride 2x3, 16->32 (the subsampled input as a stride-1 convolution)', conv(3, 16, 10, 11, 32, 1, 1, { sH: 2, sW: 3 })],
    ['LeNet first layer 1->6 5x5', conv(3, 1, 12, 12, 6, 5, 5)],
    ['LeNet second layer 6->16 5x5 (narrow rows: pixel tiles)', conv(3, 6, 14, 14, 16, 5, 5)],
    ['pixel tiles across images, a partial channel tile, stride 2 (5->11, 5x5 output, batch 3)', conv(3, 5, 9, 9, 11, 3, 3, { sH: 2, sW: 2, pT: 1, pL: 1 })],
    ['pixel tiles with dilation and asymmetric padding', conv(2, 3, 12, 11, 16, 3, 3, { pT: 1, pL: 2, pB: 0, pR: 1, dH: 2, dW: 2 })],
    ['narrow rows, 24 channels (pixel panels)', conv(2, 6, 14, 14, 24, 5, 5)],
    ['pixel tiles split over threads (units start mid-image)', conv(7, 16, 19, 14, 13, 5, 5, { pT: 1, pL: 0 })],
    ['row tiles with a partial last tile (14 wide)', conv(2, 5, 14, 14, 7, 3, 3, { pT: 1, pL: 1 })],
    ['16->32 on 20x20 (threads)', conv(2, 16, 20, 20, 32, 3, 3, { pT: 1, pL: 1 })],
    ['K above the tap block (130 x 3x3)', conv(1, 130, 4, 5, 5, 3, 3, { pT: 1, pL: 1 })],
    ['1x1 input, 3x3 kernel with padding', conv(2, 4, 1, 1, 3, 3, 3, { pT: 1, pL: 1 })],
    ['ResNet downsample 3x3 stride 2', conv(2, 8, 16, 16, 16, 3, 3, { pT: 1, pL: 1, sH: 2, sW: 2 })],
    ['ResNet stem 7x7 stride 2, 3->64', conv(1, 3, 23, 21, 64, 7, 7, { pT: 3, pL: 3, sH: 2, sW: 2 })],
    ['70 output channels (two weight blocks, a partial tile)', conv(1, 6, 9, 19, 70, 3, 3, { pT: 1, pL: 1, sH: 2, sW: 2 })],
    // shapes for Winograd F(2x2, 3x3) (3x3, stride 1, >= 8 channels): odd sizes, tiles across images
    ['3x3 8->12, odd 9x7 output, batch 3', conv(3, 8, 9, 7, 12, 3, 3, { pT: 1, pL: 1 })],
    ['3x3 10->9, no padding, 11x14', conv(2, 10, 11, 14, 9, 3, 3)],
    ['3x3 9->16, asymmetric padding', conv(1, 9, 10, 13, 16, 3, 3, { pT: 2, pL: 0, pB: 0, pR: 1 })],
    ['3x3 16->8 on 2x3 (tiny output)', conv(2, 16, 2, 3, 8, 3, 3, { pT: 1, pL: 1 })],
    ['3x3 32->32 on 17x19, batch 2', conv(2, 32, 17, 19, 32, 3, 3, { pT: 1, pL: 1 })],
    // Winograd F(4x4, 3x3) for outputs >= 16 wide and 8 high with padding <= 1 and <= 128 channels (else F(2x2, 3x3), as for the
    // input gradient of an unpadded convolution): partial tiles, tile groups past the row, padding
    ['3x3 8->12, 13x21 output, batch 3 (F4)', conv(3, 8, 13, 21, 12, 3, 3, { pT: 1, pL: 1 })],
    ['3x3 10->9, no padding, 10x18 output (F4)', conv(2, 10, 12, 20, 9, 3, 3)],
    ['3x3 9->16, asymmetric padding, 10x16 output (F4)', conv(2, 9, 11, 17, 16, 3, 3, { pT: 1, pL: 0, pB: 0, pR: 1 })],
    ['3x3 16->16 on 32x32, batch 2 (F4, ResNet-20 first stage)', conv(2, 16, 32, 32, 16, 3, 3, { pT: 1, pL: 1 })],
    ['3x3 12->11 on 5x13, batch 3 (weight gradient: a last group of 3 output channels)', conv(3, 12, 5, 13, 11, 3, 3, { pT: 1, pL: 1 })],
    ['3x3 64->64 on 7x23, batch 2, pad 2x0 (Winograd blocks that start mid tile row)', conv(2, 64, 7, 23, 64, 3, 3, { pT: 2, pL: 0, pB: 1, pR: 2 })],
    ['3x3 64->66 on 8x8, batch 9 (weight gradient in two chunks of tiles, the last one partial)', conv(9, 64, 8, 8, 66, 3, 3, { pT: 1, pL: 1 })],
  ];
  for (const [name, g] of cases) for (const impl of ['winograd', 'winograd F2', 'direct'] as const) {
    const pick = () => (impl === 'winograd' ? wasm : impl === 'direct' ? wasmDirect : wasmF2);
    const applies = g.kH === 3 && g.kW === 3 && g.strideH === 1 && g.strideW === 1 && g.dilationH === 1 && g.groups === 1 && g.inC >= 8 && g.outC >= 8;
    if (impl !== 'winograd' && !applies) continue; // same path either way
    // F(4x4, 3x3) for the forward (and stride-1 input gradient) where the output is >= 16 wide and 8 high
    const pads = [g.padTop, g.padLeft, g.padBottom, g.padRight];
    const few = g.inC + g.outC <= 128;
    const f4 = applies && few && g.outW >= 16 && g.outH >= 8 && pads.every((p) => p <= 1);
    const f4Input = applies && few && g.inW >= 16 && g.inH >= 8 && pads.every((p) => p >= 1); // its padding is 2 - p
    if (impl === 'winograd F2' && !f4 && !f4Input) continue;
    const cinG = g.inC / g.groups;
    const xs = g.n * g.inC * g.inH * g.inW, ws = g.outC * cinG * g.kH * g.kW, ys = g.n * g.outC * g.outH * g.outW;
    it(`${name}${applies ? ` (${impl})` : ''}`, () => {
      const xv = randomValues(xs), wv = randomValues(ws), bv = randomValues(g.outC), dyv = randomValues(ys);
      const x = buffer(xv), w = buffer(wv), b = buffer(bv), dy = buffer(dyv), y = buffer(new Float32Array(ys));
      const dx = buffer(new Float32Array(xs)), dw = buffer(new Float32Array(ws));
      for (const bias of [b, 0]) {
        const [e, got] = both([{ p: y, n: ys }], (k) => k.conv2d(g, x, w, bias, y), pick);
        write(x, abs(xv)); write(w, abs(wv)); write(b, abs(bv));
        ref.conv2d(g, x, w, bias, y);
        const scale = read(y, ys);
        write(x, xv); write(w, wv); write(b, bv);
        for (const [ti, r] of got.entries()) assertCloseScaled(r[0], e[0], scale, `forward${bias ? '' : ' (no bias)'} t${THREADS[ti]}`);
      }
      {
        const [e, got] = both([{ p: dx, n: xs }], (k) => k.conv2dBackwardInput(g, dy, w, dx), pick);
        write(dy, abs(dyv)); write(w, abs(wv));
        ref.conv2dBackwardInput(g, dy, w, dx);
        const scale = read(dx, xs);
        write(dy, dyv); write(w, wv);
        for (const [ti, r] of got.entries()) assertCloseScaled(r[0], e[0], scale, `input gradient t${THREADS[ti]}`);
      }
      {
        const [e, got] = both([{ p: dw, n: ws }], (k) => k.conv2dBackwardWeight(g, x, dy, dw), pick);
        write(dy, abs(dyv)); write(x, abs(xv));
        ref.conv2dBackwardWeight(g, x, dy, dw);
        const scale = read(dw, ws);
        for (const [ti, r] of got.entries()) assertCloseScaled(r[0], e[0], scale, `weight gradient t${THREADS[ti]}`);
      }
      for (const p of [x, w, b, dy, y, dx, dw]) mem.free(p);
    });
  }
});

// ---- pooling ----------------------------------------------------------------------------------------------

function pool(planes: number, inH: number, inW: number, kH: number, kW: number,
  o: Partial<{ s: number; pT: number; pL: number; pB: number; pR: number; d: number; inc: boolean }> = {}): PoolGeometry {
  const s = o.s ?? kH, pT = o.pT ?? 0, pL = o.pL ?? 0, pB = o.pB ?? pT, pR = o.pR ?? pL, d = o.d ?? 1;
  const outH = Math.floor((inH + pT + pB - d * (kH - 1) - 1) / s) + 1;
  const outW = Math.floor((inW + pL + pR - d * (kW - 1) - 1) / s) + 1;
  return { planes, inH, inW, kH, kW, strideH: s, strideW: s, padTop: pT, padLeft: pL, padBottom: pB, padRight: pR,
    dilationH: d, dilationW: d, outH, outW, countIncludePad: o.inc ?? false };
}

describe('pooling', () => {
  const cases: [string, PoolGeometry][] = [
    ['2x2 stride 2', pool(6, 8, 8, 2, 2)],
    ['2x2 stride 2 odd input', pool(5, 9, 7, 2, 2)],
    ['2x2 stride 2, 28x28 (LeNet-5: 4-output steps and a tail)', pool(7, 28, 28, 2, 2)],
    ['2x2 stride 2, ceil mode (partial last windows)', { ...pool(5, 9, 7, 2, 2), outH: 5, outW: 4 }],
    ['2x2 stride 2 large (threads)', pool(96, 20, 22, 2, 2)],
    ['3x3 stride 2 pad 1', pool(4, 11, 10, 3, 3, { s: 2, pT: 1, pL: 1 })],
    ['3x3 stride 1 pad 1 count_include_pad', pool(3, 7, 9, 3, 3, { s: 1, pT: 1, pL: 1, inc: true })],
    ['3x3 stride 2 asymmetric pad count_include_pad', pool(3, 8, 9, 3, 3, { s: 2, pT: 0, pL: 2, pB: 1, pR: 1, inc: true })],
    ['2x2 dilation 2', pool(2, 9, 9, 2, 2, { s: 1, d: 2 })],
    ['2x2 stride 2 pad 1 count_include_pad', pool(3, 10, 13, 2, 2, { pT: 1, pL: 1, inc: true })],
    ['3x3 stride 2 pad 0, wide rows', pool(2, 9, 40, 3, 3, { s: 2 })],
    ['global 7x7', pool(8, 7, 7, 7, 7)],
    ['large (threads)', pool(64, 32, 32, 3, 3, { s: 2, pT: 1, pL: 1 })],
  ];
  for (const [name, g] of cases) {
    it(name, () => {
      const ins = g.planes * g.inH * g.inW, outs = g.planes * g.outH * g.outW;
      const xv = randomValues(ins);
      xv[3] = xv[4]; // a tie
      xv[g.inW * 2 + 5] = NaN; // a fault that max pooling must propagate (and its gradient route)
      const x = buffer(xv), y = buffer(new Float32Array(outs)), am = buffer(new Float32Array(outs));
      const dy = buffer(randomValues(outs)), dx = buffer(new Float32Array(ins));
      {
        const [e, got] = both([{ p: y, n: outs }, { p: am, n: outs }], (k) => k.maxPool2d(g, x, y, am));
        const eArg = readI32(am, outs);
        for (const [ti, r] of got.entries()) {
          assertBitEqual(r[0], e[0], `max t${THREADS[ti]}`);
          assertBitEqual(new Int32Array(r[1].buffer), eArg, `argmax t${THREADS[ti]}`);
        }
        ref.maxPool2d(g, x, y, am);
        const [e2, got2] = both([{ p: dx, n: ins }], (k) => k.maxPool2dBackward(g, dy, am, dx));
        for (const [ti, r] of got2.entries()) assertClose(r[0], e2[0], `max backward t${THREADS[ti]}`, 1e-7);
      }
      {
        // ReLU folded into the pool (evaluation): equals relu then pool, NaN included (the ReLU maps it to 0)
        const gr = { ...g, relu: true };
        const [e, got] = both([{ p: y, n: outs }], (k) => k.maxPool2d(gr, x, y, 0));
        for (const [ti, r] of got.entries()) assertBitEqual(r[0], e[0], `max with relu t${THREADS[ti]}`);
        const xr = buffer(xv.map((v) => (v > 0 ? v : 0)));
        ref.maxPool2d(g, xr, y, 0);
        assertBitEqual(e[0], read(y, outs), 'max with relu = relu, then max');
        assert.throws(() => ref.maxPool2d(gr, x, y, am), /without argmax/);
        mem.free(xr);
      }
      for (const inc of [false, true]) {
        const ga = { ...g, countIncludePad: inc };
        const [e, got] = both([{ p: y, n: outs }], (k) => k.avgPool2d(ga, x, y));
        for (const [ti, r] of got.entries()) assertClose(r[0], e[0], `avg include_pad=${inc} t${THREADS[ti]}`, 1e-6);
        const [e2, got2] = both([{ p: dx, n: ins }], (k) => k.avgPool2dBackward(ga, dy, dx));
        for (const [ti, r] of got2.entries()) assertClose(r[0], e2[0], `avg backward include_pad=${inc} t${THREADS[ti]}`, 1e-6);
      }
      for (const p of [x, y, am, dy, dx]) mem.free(p);
    });
  }
});

// ---- elementwise ------------------------------------------------------------------------------------------

/** Inputs for a unary op, with the domain its derivative needs and a few special values. */
function unaryInput(op: string, n: number): Float32Array {
  const v = op === 'log' || op === 'sqrt' || op === 'reciprocal' ? randomValues(n, 0.05, 4) : randomValues(n, -8, 8);
  if (op === 'round') for (let i = 0; i < n; i += 7) v[i] = Math.floor(v[i]) + 0.5; // ties
  if (op === 'tanh' || op === 'exp' || op === 'sigmoid') for (let i = 0; i < n; i += 11) v[i] *= 1e-3; // small |x|
  return v;
}

describe('unary and unaryBackward', () => {
  const n = 1031; // not a multiple of 4 or 16
  for (const op of UNARY_OPS) {
    it(op, () => {
      const xv = unaryInput(op, n);
      const [a, b] = op === 'clamp' ? [-0.3, 0.7] : op === 'affine' ? [1.7, -0.3] : op === 'leakyRelu' ? [0.1, 0] : op === 'step' ? [0.1, 0] : [0, 0];
      const x = buffer(xv), y = buffer(new Float32Array(n));
      const [e, got] = both([{ p: y, n }], (k) => k.unary(op, x, y, n, a, b));
      for (const [ti, r] of got.entries()) assertClose(r[0], e[0], `${op} t${THREADS[ti]}`, 1e-37);
      // in place
      const [e2, got2] = both([{ p: x, n, initial: xv }], (k) => k.unary(op, x, x, n, a, b));
      for (const [ti, r] of got2.entries()) assertClose(r[0], e2[0], `${op} in place t${THREADS[ti]}`, 1e-37);
      write(x, xv);
      ref.unary(op, x, y, n, a, b);
      const yv = read(y, n);
      const dy = buffer(randomValues(n)), dx = buffer(new Float32Array(n));
      const [e3, got3] = both([{ p: dx, n }], (k) => k.unaryBackward(op, x, y, dy, dx, n, a, b));
      for (const [ti, r] of got3.entries()) assertClose(r[0], e3[0], `${op} backward t${THREADS[ti]}`, 1e-37);
      const [e4, got4] = both([{ p: dx, n }], (k) => k.unaryBackward(op, x, 0, dy, dx, n, a, b));
      for (const [ti, r] of got4.entries()) assertClose(r[0], e4[0], `${op} backward without y t${THREADS[ti]}`, 1e-37);
      assert.equal(yv.length, n);
      for (const p of [x, y, dy, dx]) mem.free(p);
    });
  }
  it('large input (threads)', () => {
    const big = 300_001;
    const x = buffer(randomValues(big, -5, 5)), y = buffer(new Float32Array(big));
    for (const op of ['relu', 'exp', 'tanh', 'affine'] as const) {
      const [e, got] = both([{ p: y, n: big }], (k) => k.unary(op, x, y, big, 0.5, 0.25));
      for (const [ti, r] of got.entries()) assertClose(r[0], e[0], `${op} t${THREADS[ti]}`, 1e-37);
    }
    mem.free(x); mem.free(y);
  });
  it('special values', () => {
    const vals = [0, -0, 1, -1, 0.5, -0.5, 1.5, 2.5, -2.5, 88.7, 89, -87, -104, 1e-40, -1e-40, Infinity, -Infinity, NaN, 3.4e38, 6, -6];
    const x = buffer(vals), y = buffer(new Float32Array(vals.length));
    for (const op of UNARY_OPS) {
      const [e, got] = both([{ p: y, n: vals.length }], (k) => k.unary(op, x, y, vals.length, 0.25, 0.5));
      // exp/sigmoid/tanh/log are approximations: allow 2 ulp around subnormal results too
      for (const [ti, r] of got.entries()) assertClose(r[0], e[0], `${op} specials t${THREADS[ti]}`, 1e-37, 2e-6);
    }
    mem.free(x); mem.free(y);
  });
});

describe('binary with broadcasting', () => {
  const cases: [string, number[], number[], number[]][] = [
    // [name, shape, aStrides, bStrides]
    ['same shape', [5, 7, 3], [21, 3, 1], [21, 3, 1]],
    ['b broadcast over rows', [6, 13], [13, 1], [0, 1]],
    ['b per row', [6, 13], [13, 1], [1, 0]],
    ['a scalar', [4, 9], [0, 0], [9, 1]],
    ['both broadcast', [4, 5], [1, 0], [0, 1]],
    ['transposed a', [5, 6], [1, 5], [6, 1]],
    ['channel bias NCHW', [2, 3, 4, 5], [60, 20, 5, 1], [0, 1, 0, 0]],
    ['rank 6', [2, 1, 3, 2, 2, 3], [36, 36, 12, 6, 3, 1], [0, 0, 1, 0, 3, 0]],
    ['scalar op scalar', [], [], []],
    ['large (threads)', [300, 257], [257, 1], [0, 1]],
  ];
  for (const [name, shape, sa, sb] of cases) {
    it(name, () => {
      const total = shape.reduce((p, d) => p * d, 1);
      const span = (s: number[]) => 1 + shape.reduce((acc, d, i) => acc + (d - 1) * s[i], 0);
      const av = randomValues(span(sa), -2, 2), bv = randomValues(span(sb), 0.1, 2);
      av[0] = bv[0]; // equal values for eq/ge
      const a = buffer(av), b = buffer(bv), out = buffer(new Float32Array(total));
      for (const op of BINARY_OPS) {
        const [e, got] = both([{ p: out, n: total }], (k) => k.binary(op, a, sa, b, sb, out, shape));
        for (const [ti, r] of got.entries()) assertClose(r[0], e[0], `${op} t${THREADS[ti]}`, 1e-37);
      }
      for (const p of [a, b, out]) mem.free(p);
    });
  }
  it('NaN operands keep the reference semantics of max/min', () => {
    const av = [NaN, 1, NaN, -0, 0], bv = [1, NaN, NaN, 0, -0];
    const a = buffer(av), b = buffer(bv), out = buffer(new Float32Array(5));
    for (const op of BINARY_OPS) {
      const [e, got] = both([{ p: out, n: 5 }], (k) => k.binary(op, a, [1], b, [1], out, [5]));
      for (const [ti, r] of got.entries()) assertBitEqual(r[0], e[0], `${op} t${THREADS[ti]}`);
    }
    for (const p of [a, b, out]) mem.free(p);
  });
  it('pow: 2 to integer exponents (the exponent-field path) bit for bit as the reference, at and past its bounds', () => {
    // all-fast vectors, vectors mixing fast and Math.pow lanes, and the lanes that must leave the fast path
    const exps = [-126, -125, 0, 1, 127, 126, -3, 5, -127, 128, -149, 0.5, -Infinity, Infinity, NaN, -0, 7, -7, 2.0000002, 1e9, -Infinity, 3, -Infinity, 0];
    const base = [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, -2, 2, 2, 2, 2, 2, 2];
    const a = buffer(base), b = buffer(exps), out = buffer(new Float32Array(exps.length));
    const [e, got] = both([{ p: out, n: exps.length }], (k) => k.binary('pow', a, [1], b, [1], out, [exps.length]));
    for (const [ti, r] of got.entries()) assertBitEqual(r[0], e[0], `pow t${THREADS[ti]}`);
    // every integer exponent around the fast path, with 2 broadcast as the log-domain quantizers call it, at
    // each of the four alignments (a vector of four in-range exponents next to each bound)
    for (let shift = 0; shift < 4; shift++) {
      const all = Float32Array.from({ length: 264 }, (_, i) => i - 132 + shift);
      const two = buffer([2]), ints = buffer(all), out2 = buffer(new Float32Array(all.length));
      const [e2, got2] = both([{ p: out2, n: all.length }], (k) => k.binary('pow', two, [0], ints, [1], out2, [all.length]));
      for (const [ti, r] of got2.entries()) assertBitEqual(r[0], e2[0], `2^n shift ${shift} t${THREADS[ti]}`);
      assert.equal(e2[0][132 - shift + 127], 2 ** 127);
      assert.equal(e2[0][132 - shift - 126], 2 ** -126);
      for (const p of [two, ints, out2]) mem.free(p);
    }
    for (const p of [a, b, out]) mem.free(p);
  });
});

describe('copy', () => {
  const cases: [string, number, number[], number[], number[]][] = [
    ['contiguous f32', 4, [7, 9], [9, 1], [9, 1]],
    ['transpose f32', 4, [7, 9], [1, 7], [9, 1]],
    ['into a strided window', 4, [3, 4], [4, 1], [10, 2]],
    ['bytes transposed', 1, [5, 6, 3], [1, 5, 30], [18, 3, 1]],
    ['bytes contiguous', 1, [4, 33], [33, 1], [33, 1]],
    ['broadcast source', 4, [4, 5, 6], [0, 6, 1], [30, 6, 1]],
    ['large (threads)', 4, [400, 300], [1, 400], [300, 1]],
  ];
  for (const [name, eb, shape, ss, ds] of cases) {
    it(name, () => {
      const total = shape.reduce((p, d) => p * d, 1);
      const span = (s: number[]) => 1 + shape.reduce((acc, d, i) => acc + (d - 1) * s[i], 0);
      const srcVals = randomValues(Math.ceil((span(ss) * eb) / 4) + 1, -1e3, 1e3);
      const dstN = Math.ceil((span(ds) * eb) / 4) + 1;
      const dstInit = randomValues(dstN);
      const src = buffer(srcVals), dst = buffer(dstInit);
      const [e, got] = both([{ p: dst, n: dstN, initial: dstInit }], (k) => k.copy(eb, src, ss, dst, ds, shape));
      for (const [ti, r] of got.entries()) assertBitEqual(r[0], e[0], `copy t${THREADS[ti]}`);
      assert.ok(total > 0);
      mem.free(src); mem.free(dst);
    });
  }
});

describe('cast and fill', () => {
  const specials = [0, -0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 127.4, 127.5, 128, -128.5, -129, 255.5, 256, 300, -300,
    2147483520, 3e9, -3e9, 1e20, -1e20, Infinity, -Infinity, NaN, 3.7, -3.7, 254.5, 1.0000001];
  const dtypes: DType[] = ['f32', 'i32', 'i8', 'u8'];
  it('every pair of dtypes, special values and odd lengths', () => {
    const n = 37;
    const vals = new Float32Array(n);
    for (let i = 0; i < n; i++) vals[i] = i < specials.length ? specials[i] : (rand() - 0.5) * 600;
    for (const st of dtypes) {
      // source of each dtype, built by the reference cast from f32
      const f = buffer(vals);
      const src = mem.alloc(n * 4 + 64);
      ref.cast(f, 'f32', src, st, n);
      for (const dt of dtypes) {
        const bytes = dt === 'f32' || dt === 'i32' ? 4 : 1;
        const dst = mem.alloc(n * 4 + 64);
        const snapshot = () => mem.u8.slice(dst, dst + n * bytes + 8);
        mem.u8.fill(0xab, dst, dst + n * 4 + 64);
        ref.cast(src, st, dst, dt, n);
        const expected = snapshot();
        for (const t of THREADS) {
          wasm.setThreads(t);
          mem.u8.fill(0xab, dst, dst + n * 4 + 64);
          wasm.cast(src, st, dst, dt, n);
          assert.deepEqual(snapshot(), expected, `cast ${st} -> ${dt} t${t}`);
        }
        mem.free(dst);
      }
      mem.free(f); mem.free(src);
    }
  });
  it('large cast (threads)', () => {
    const n = 200_003;
    const src = buffer(randomValues(n, -300, 300)), dst = mem.alloc(n + 64);
    ref.cast(src, 'f32', dst, 'i8', n);
    const expected = mem.u8.slice(dst, dst + n);
    wasm.setThreads(2);
    mem.u8.fill(0, dst, dst + n);
    wasm.cast(src, 'f32', dst, 'i8', n);
    assert.deepEqual(mem.u8.slice(dst, dst + n), expected);
    mem.free(src); mem.free(dst);
  });
  it('fill', () => {
    for (const n of [0, 1, 3, 17, 1000, 500_001]) {
      const p = buffer(new Float32Array(n + 8).fill(7));
      const [e, got] = both([{ p, n: n + 8, initial: new Float32Array(n + 8).fill(7) }], (k) => k.fill(p, n, -0.375));
      for (const [ti, r] of got.entries()) assertBitEqual(r[0], e[0], `fill ${n} t${THREADS[ti]}`);
      mem.free(p);
    }
  });
});

// ---- reductions and friends --------------------------------------------------------------------------------

describe('reduce, argmax, softmax', () => {
  const shapes: [number, number, number][] = [[1, 1, 1], [3, 17, 1], [2, 5, 7], [4, 1, 9], [1, 1000, 1], [5, 0, 3], [64, 300, 1], [8, 33, 130]];
  for (const [outer, r, inner] of shapes) {
    it(`reduce [${outer}, ${r}, ${inner}]`, () => {
      const xv = randomValues(outer * r * inner, -3, 3);
      const x = buffer(xv), y = buffer(new Float32Array(outer * inner));
      for (const op of ['sum', 'max', 'min'] as const) {
        const [e, got] = both([{ p: y, n: outer * inner }], (k) => k.reduce(op, x, y, outer, r, inner));
        let scale: Float32Array = e[0].map(Math.abs);
        if (op === 'sum') {
          write(x, abs(xv));
          ref.reduce('sum', x, y, outer, r, inner);
          scale = read(y, outer * inner);
          write(x, xv);
        }
        for (const [ti, g] of got.entries()) assertCloseScaled(g[0], e[0], scale, `${op} t${THREADS[ti]}`);
      }
      if (r > 0) {
        const [e, got] = both([{ p: y, n: outer * inner }], (k) => k.argmax(x, y, outer, r, inner));
        for (const [ti, g] of got.entries()) assertBitEqual(g[0], e[0], `argmax t${THREADS[ti]}`);
      }
      mem.free(x); mem.free(y);
    });
  }
  it('max/min propagate NaN', () => {
    const x = buffer([1, NaN, 3, 2, 5, 4, 0, NaN, -1]), y = buffer([0, 0, 0]);
    for (const op of ['max', 'min'] as const) {
      const [e, got] = both([{ p: y, n: 3 }], (k) => k.reduce(op, x, y, 1, 9, 1));
      for (const g of got) assertBitEqual(g[0], e[0], op);
      const [e2, got2] = both([{ p: y, n: 3 }], (k) => k.reduce(op, x, y, 1, 3, 3));
      for (const g of got2) assertBitEqual(g[0], e2[0], `${op} inner`);
    }
    mem.free(x); mem.free(y);
  });
  for (const [rows, cols] of [[1, 1], [3, 10], [7, 33], [2, 1000], [256, 129]]) {
    it(`softmax and log-softmax [${rows}, ${cols}] with backward`, () => {
      const x = buffer(randomValues(rows * cols, -6, 6)), y = buffer(new Float32Array(rows * cols));
      const dy = buffer(randomValues(rows * cols)), dx = buffer(new Float32Array(rows * cols));
      for (const log of [false, true]) {
        const [e, got] = both([{ p: y, n: rows * cols }], (k) => k.softmax(x, y, rows, cols, log));
        for (const [ti, g] of got.entries()) assertClose(g[0], e[0], `softmax log=${log} t${THREADS[ti]}`, 1e-30);
        ref.softmax(x, y, rows, cols, log);
        const [e2, got2] = both([{ p: dx, n: rows * cols }], (k) => k.softmaxBackward(y, dy, dx, rows, cols, log));
        // scale: |dy| + |y * sum(dy*y)| (softmax) or |dy| + |exp(y) * sum(dy)| (log)
        const yv = read(y, rows * cols), dyv = read(dy, rows * cols);
        const scale = new Float32Array(rows * cols);
        for (let r = 0; r < rows; r++) {
          let s = 0;
          for (let c = 0; c < cols; c++) s += Math.abs(log ? dyv[r * cols + c] : dyv[r * cols + c] * yv[r * cols + c]);
          for (let c = 0; c < cols; c++) {
            const i = r * cols + c;
            scale[i] = log ? Math.abs(dyv[i]) + Math.exp(yv[i]) * s : Math.abs(yv[i]) * (Math.abs(dyv[i]) + s);
          }
        }
        for (const [ti, g] of got2.entries()) assertCloseScaled(g[0], e2[0], scale, `softmax backward log=${log} t${THREADS[ti]}`);
      }
      for (const p of [x, y, dy, dx]) mem.free(p);
    });
  }
});

describe('batch-norm pieces, loss, generators', () => {
  for (const [n, c, hw] of [[1, 1, 1], [2, 3, 5], [4, 16, 49], [8, 32, 1024]]) {
    it(`channelSums and channelAffine [${n}, ${c}, ${hw}]`, () => {
      const total = n * c * hw;
      const xv = randomValues(total, -2, 3), ov = randomValues(total);
      const x = buffer(xv), other = buffer(ov), sum = buffer(new Float32Array(c)), sq = buffer(new Float32Array(c));
      for (const [o, s2] of [[0, sq], [other, sq], [0, 0]] as const) {
        const [e, got] = both([{ p: sum, n: c }, { p: sq, n: c, initial: new Float32Array(c) }], (k) => k.channelSums(x, o, n, c, hw, sum, s2));
        // scales: sum |x|, sum |x * other|
        write(x, abs(xv)); write(other, abs(ov));
        ref.channelSums(x, o, n, c, hw, sum, s2 ? sq : 0);
        const sc1 = read(sum, c), sc2 = read(sq, c);
        write(x, xv); write(other, ov);
        for (const [ti, g] of got.entries()) {
          assertCloseScaled(g[0], e[0], sc1, `sum t${THREADS[ti]}`);
          if (s2) assertCloseScaled(g[1], e[1], sc2, `sum of products t${THREADS[ti]}`);
        }
      }
      const scv = randomValues(c, -2, 2), shv = randomValues(c, -2, 2);
      const scale = buffer(scv), shift = buffer(shv), y = buffer(new Float32Array(total));
      for (const sh of [shift, 0]) {
        const [e, got] = both([{ p: y, n: total }], (k) => k.channelAffine(x, scale, sh, y, n, c, hw));
        const tol = new Float32Array(total);
        for (let i = 0; i < total; i++) {
          const ch = Math.floor(i / hw) % c;
          tol[i] = Math.abs(xv[i] * scv[ch]) + (sh ? Math.abs(shv[ch]) : 0);
        }
        for (const [ti, g] of got.entries()) assertCloseScaled(g[0], e[0], tol, `channelAffine t${THREADS[ti]}`);
      }
      for (const p of [x, other, sum, sq, scale, shift, y]) mem.free(p);
    });
  }
  for (const [n, c, hw, offset] of [[1, 1, 1, 0], [5, 3, 1, 0], [2, 3, 5, 0], [3, 7, 33, 100], [4, 16, 49, -3], [8, 32, 1024, 0], [2, 5, 1031, 1000]]) {
    it(`batch-norm kernels [${n}, ${c}, ${hw}] around ${offset}`, () => {
      const total = n * c * hw;
      const xv = randomValues(total, offset - 2, offset + 3), gv = randomValues(total);
      const x = buffer(xv), g = buffer(gv), mean = buffer(new Float32Array(c)), variance = buffer(new Float32Array(c));
      const chOf = (i: number) => Math.floor(i / hw) % c;

      const [e, got] = both([{ p: mean, n: c }, { p: variance, n: c }], (k) => k.channelMeanVar(x, n, c, hw, mean, variance));
      // scales: the mean of |x| for the mean; the variance is a sum of squares (no cancellation), so relative
      const meanAbs = new Float32Array(c);
      for (let i = 0; i < total; i++) meanAbs[chOf(i)] += Math.abs(xv[i]) / (n * hw);
      for (const [ti, r] of got.entries()) {
        assertCloseScaled(r[0], e[0], meanAbs, `channelMeanVar mean t${THREADS[ti]}`);
        assertClose(r[1], e[1], `channelMeanVar variance t${THREADS[ti]}`, 1e-30);
      }
      const mv = e[0];
      write(mean, mv);
      for (let ch = 0; ch < c; ch++) {
        let q = 0, m = 0;
        for (let b = 0; b < n; b++) for (let i = 0; i < hw; i++) m += xv[(b * c + ch) * hw + i];
        m /= n * hw;
        for (let b = 0; b < n; b++) for (let i = 0; i < hw; i++) q += (xv[(b * c + ch) * hw + i] - m) ** 2;
        assert.ok(Math.abs(e[1][ch] - q / (n * hw)) <= 1e-6 * (q / (n * hw)) + 1e-30, `reference variance channel ${ch}`);
      }

      const scv = randomValues(c, -2, 2), shv = randomValues(c, -2, 2), bv = randomValues(c, -2, 2);
      const scale = buffer(scv), shift = buffer(shv), bb = buffer(bv), y = buffer(new Float32Array(total));
      const [ey, gotY] = both([{ p: y, n: total }], (k) => k.channelNormalize(x, mean, scale, shift, y, n, c, hw));
      const tolY = new Float32Array(total), tolDx = new Float32Array(total);
      for (let i = 0; i < total; i++) {
        const ch = chOf(i), xc = Math.abs(xv[i] - mv[ch]);
        tolY[i] = xc * Math.abs(scv[ch]) + Math.abs(shv[ch]);
        tolDx[i] = Math.abs(scv[ch] * gv[i]) + Math.abs(bv[ch]) * xc + Math.abs(shv[ch]);
      }
      for (const [ti, r] of gotY.entries()) assertCloseScaled(r[0], ey[0], tolY, `channelNormalize t${THREADS[ti]}`);

      const sumG = buffer(new Float32Array(c)), sumGXc = buffer(new Float32Array(c));
      const [es, gotS] = both([{ p: sumG, n: c }, { p: sumGXc, n: c }], (k) => k.batchNormBackwardSums(g, x, mean, n, c, hw, sumG, sumGXc));
      const scG = new Float32Array(c), scGX = new Float32Array(c);
      for (let i = 0; i < total; i++) {
        scG[chOf(i)] += Math.abs(gv[i]);
        scGX[chOf(i)] += Math.abs(gv[i] * (xv[i] - mv[chOf(i)]));
      }
      for (const [ti, r] of gotS.entries()) {
        assertCloseScaled(r[0], es[0], scG, `batchNormBackwardSums sum dy t${THREADS[ti]}`);
        assertCloseScaled(r[1], es[1], scGX, `batchNormBackwardSums sum dy (x - mean) t${THREADS[ti]}`);
      }

      const [ed, gotD] = both([{ p: y, n: total }], (k) => k.batchNormBackwardInput(g, x, mean, scale, bb, shift, y, n, c, hw));
      for (const [ti, r] of gotD.entries()) assertCloseScaled(r[0], ed[0], tolDx, `batchNormBackwardInput t${THREADS[ti]}`);
      for (const p of [x, g, mean, variance, scale, shift, bb, y, sumG, sumGXc]) mem.free(p);
    });
  }
  it('channelMeanVar where E[x^2] - E[x]^2 would cancel: large mean, an outlier, planes far from each other', () => {
    const n = 4, c = 2, hw = 37, total = n * c * hw;
    const xv = randomValues(total, 999.99, 1000.01);
    xv[0] = 1e4; // the first value of channel 0
    for (let i = 0; i < hw; i++) xv[2 * c * hw + i] += 50; // plane (b = 2, c = 0) far from the others; channel 1: std ~0.006
    const x = buffer(xv), mean = buffer(new Float32Array(c)), variance = buffer(new Float32Array(c));
    const [e, got] = both([{ p: mean, n: c }, { p: variance, n: c }], (k) => k.channelMeanVar(x, n, c, hw, mean, variance));
    for (const [ti, r] of got.entries()) {
      assertClose(r[0], e[0], `mean t${THREADS[ti]}`);
      assertClose(r[1], e[1], `variance t${THREADS[ti]}`);
    }
    for (const p of [x, mean, variance]) mem.free(p);
  });
  it('nllLoss, and its error on a bad label', () => {
    const rows = 9, cols = 7;
    const lp = buffer(randomValues(rows * cols, -5, 0)), loss = buffer(new Float32Array(rows));
    const labels = mem.alloc(rows * 4);
    for (let r = 0; r < rows; r++) mem.i32[(labels >> 2) + r] = Math.floor(rand() * cols);
    const [e, got] = both([{ p: loss, n: rows }], (k) => k.nllLoss(lp, labels, loss, rows, cols));
    for (const g of got) assertBitEqual(g[0], e[0], 'nll');
    mem.i32[(labels >> 2) + 4] = cols;
    assert.throws(() => wasm.nllLoss(lp, labels, loss, rows, cols), /label 7 out of range/);
    for (const p of [lp, loss, labels]) mem.free(p);
  });
  it('dropoutMask and randomUniform are bit-identical to the reference', () => {
    for (const n of [1, 5, 1000, 100_003]) {
      const m = buffer(new Float32Array(n));
      for (const [p, seed] of [[0.5, 1], [0.1, 0xdeadbeef], [0.3333333333333333, 42], [0, 7], [0.9999, 3]]) {
        const [e, got] = both([{ p: m, n }], (k) => k.dropoutMask(m, n, p, seed));
        for (const [ti, g] of got.entries()) assertBitEqual(g[0], e[0], `dropout p=${p} t${THREADS[ti]}`);
      }
      for (const [lo, hi, seed] of [[0, 1, 9], [-0.5, 0.5, 123456], [-3.3, 7.1, 0xffffffff]]) {
        const [e, got] = both([{ p: m, n }], (k) => k.randomUniform(m, n, lo, hi, seed));
        for (const [ti, g] of got.entries()) assertBitEqual(g[0], e[0], `randomUniform t${THREADS[ti]}`);
      }
      mem.free(m);
    }
  });
});

describe('optimizer', () => {
  it('sgdStep is bit-identical to the reference: momentum, Nesterov, weight decay, odd sizes, threads', () => {
    for (const n of [1, 7, 4099, 100_003]) {
      const pv = randomValues(n, -2, 2), gv = randomValues(n), vv = randomValues(n, -0.5, 0.5);
      const p = buffer(pv), g = buffer(gv), v = buffer(vv);
      for (const [lr, mu, wd, nesterov] of [[0.1, 0.9, 5e-4, true], [0.05, 0.9, 0, false], [0.3, 0, 1e-3, false], [1e-3, 0.5, 0.1, true]] as const) {
        const vel = mu ? v : 0;
        const [e, got] = both([{ p, n, initial: pv }, { p: v, n, initial: vv }], (k) => k.sgdStep(p, g, vel, n, lr, mu, wd, nesterov));
        for (const [ti, r] of got.entries()) {
          assertBitEqual(r[0], e[0], `parameters lr=${lr} mu=${mu} wd=${wd} t${THREADS[ti]}`);
          assertBitEqual(r[1], e[1], `velocity t${THREADS[ti]}`);
        }
      }
      for (const b of [p, g, v]) mem.free(b);
    }
  });
});

describe('threads', () => {
  it('reports its features and can drop to one thread and back', () => {
    assert.equal(wasm.name, 'wasm');
    assert.equal(wasm.features.simd, true);
    assert.equal(wasm.features.threads, true);
    wasm.setThreads(1);
    assert.equal(wasm.threads, 1);
    wasm.setThreads(8);
    assert.equal(wasm.threads, 2);
    assert.throws(() => wasm.setThreads(0), RangeError);
  });
  it('many small and large jobs back to back keep their results', () => {
    wasm.setThreads(2);
    const n = 1 << 17;
    const x = buffer(randomValues(n)), y = buffer(new Float32Array(n));
    for (let i = 0; i < 200; i++) {
      wasm.fill(y, n, i);
      wasm.unary('affine', y, y, n, 2, 1);
      assert.equal(mem.f32[(y >> 2) + n - 1], 2 * i + 1);
      assert.equal(mem.f32[y >> 2], 2 * i + 1);
    }
    mem.free(x); mem.free(y);
  });
});

describe('relaxed SIMD', () => {
  it('the fused multiply-add variant can be derived from the built module, and is used only where it validates', async () => {
    const { readFile } = await import('node:fs/promises');
    const { relaxedVariant } = await import('../src/kernels/wasm/relaxed.js');
    const bytes = new Uint8Array(await readFile(new URL('../../build/kernels.wasm', import.meta.url)));
    const variant = relaxedVariant(bytes);
    assert.ok(variant, 'the microkernels no longer have the mul/add shape relaxed.ts rewrites');
    assert.equal(variant.length, bytes.length);
    // the variant is used exactly when the engine accepts it (Node 20: with --experimental-wasm-relaxed-simd,
    // kernels-wasm-relaxed.test.ts) and its self-test passed
    assert.equal(wasm.features.relaxedSimd, WebAssembly.validate(variant));
  });
});
