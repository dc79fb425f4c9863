// Reference binary (XNOR-popcount) kernels: the readable spec the WebAssembly kernels (assembly/binary.ts)
// are tested against, bit for bit.
//
// Bits (types.ts): binarized activations [n, h, w, words] of u64 words, words = ceil(C / 64); bit c % 64 of
// word c / 64 is 1 for +1 and 0 for -1, unused high bits 0. JS has no u64 view, so a word is read as two u32
// halves (little-endian: the low half holds channels 0..31 of the word).
//
// Packed weights (shared with assembly/binary.ts, which depends on it): the signs of w [outC, inC, kH, kW]
// as u64 words, output channels interleaved in blocks of BINARY_CB so that the microkernel loads the
// BINARY_CB weight words of one (tap, word) side by side:
//   word index ((block * taps + tap) * words + k) * BINARY_CB + (oc % BINARY_CB),  block = oc / BINARY_CB,
//   tap = ky * kW + kx;  channels of the last block beyond outC are all-zero words (computed, discarded).
//
// The convolution: with x, w in {-1, +1} per channel, sum_c x_c w_c = inC - 2 popcount(x xor w) over the inC
// real channels (the unused bits are 0 in both operands so they never count). A tap outside the image is a
// zero (the float convolution zero-pads the binarized input), so it is skipped, not counted as -1.

import type { EngineMemory, Ptr } from '../memory.js';
import type { BinarizeOptions, ConvGeometry, IntEpilogue, IntKernels } from '../types.js';

export type BinaryKernels = Pick<IntKernels, 'binarizePack' | 'binaryPackedWeightBytes' | 'binaryPackWeights' | 'convBinary'>;

/** Output channels per interleaved block of the packed weights (must equal CB in assembly/binary.ts). */
export const BINARY_CB = 8;

const words64 = (c: number): number => Math.ceil(c / 64);

function popcount32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** Set bit `bit` (0..63) of the u64 word at byte address p (the word must be zeroed beforehand). */
function setBit(u32: Uint32Array, p: Ptr, bit: number): void {
  const i = (p >>> 2) + (bit >> 5);
  u32[i] = (u32[i] | (1 << (bit & 31))) >>> 0;
}

export function checkBinaryGeometry(g: ConvGeometry): void {
  if (g.groups !== 1) throw new Error(`lowbit: convBinary supports groups = 1 only (got groups = ${g.groups})`);
}

export function binaryPackedWeightBytes(g: ConvGeometry): number {
  return Math.ceil(g.outC / BINARY_CB) * BINARY_CB * g.kH * g.kW * words64(g.inC) * 8;
}

export function binarizePack(mem: EngineMemory, x: Ptr, n: number, c: number, h: number, w: number, y: Ptr, opts: BinarizeOptions = {}): void {
  const f = mem.f32, u32 = mem.u32;
  const words = words64(c), hw = h * w;
  const { norm, absMean } = opts;
  u32.fill(0, y >>> 2, (y >>> 2) + n * hw * words * 2);
  for (let b = 0; b < n; b++)
    for (let p = 0; p < hw; p++) {
      let sum = 0;
      for (let ch = 0; ch < c; ch++) {
        let v = f[(x >>> 2) + (b * c + ch) * hw + p];
        if (norm) v = Math.fround(Math.fround(v * f[(norm.scale >>> 2) + ch]) + f[(norm.shift >>> 2) + ch]);
        // v >= 0 is +1 (so -0 is +1 and NaN is -1)
        if (v >= 0) setBit(u32, y + ((b * hw + p) * words + (ch >> 6)) * 8, ch & 63);
        sum = Math.fround(sum + Math.abs(v));
      }
      if (absMean) f[(absMean >>> 2) + b * hw + p] = Math.fround(sum / c);
    }
}

export function binaryPackWeights(mem: EngineMemory, g: ConvGeometry, w: Ptr, dst: Ptr): void {
  checkBinaryGeometry(g);
  const f = mem.f32, u32 = mem.u32;
  const words = words64(g.inC), taps = g.kH * g.kW;
  u32.fill(0, dst >>> 2, (dst + binaryPackedWeightBytes(g)) >>> 2);
  for (let oc = 0; oc < g.outC; oc++)
    for (let ic = 0; ic < g.inC; ic++)
      for (let tap = 0; tap < taps; tap++) {
        if (!(f[(w >>> 2) + (oc * g.inC + ic) * taps + tap] >= 0)) continue;
        const block = Math.floor(oc / BINARY_CB);
        const word = ((block * taps + tap) * words + (ic >> 6)) * BINARY_CB + (oc % BINARY_CB);
        setBit(u32, dst + word * 8, ic & 63);
      }
}

/** acc[oc] at output pixel (b, oy, ox): the exact integer sum over the taps inside the image. */
function accumulator(mem: EngineMemory, g: ConvGeometry, x: Ptr, w: Ptr, b: number, oy: number, ox: number, oc: number): number {
  const u32 = mem.u32;
  const words = words64(g.inC), taps = g.kH * g.kW;
  const block = Math.floor(oc / BINARY_CB);
  let acc = 0;
  for (let ky = 0; ky < g.kH; ky++) {
    const iy = oy * g.strideH - g.padTop + ky * g.dilationH;
    if (iy < 0 || iy >= g.inH) continue;
    for (let kx = 0; kx < g.kW; kx++) {
      const ix = ox * g.strideW - g.padLeft + kx * g.dilationW;
      if (ix < 0 || ix >= g.inW) continue;
      const tap = ky * g.kW + kx;
      let ones = 0;
      for (let k = 0; k < words; k++) {
        const xi = (x >>> 2) + (((b * g.inH + iy) * g.inW + ix) * words + k) * 2;
        const wi = (w >>> 2) + (((block * taps + tap) * words + k) * BINARY_CB + (oc % BINARY_CB)) * 2;
        ones += popcount32(u32[xi] ^ u32[wi]) + popcount32(u32[xi + 1] ^ u32[wi + 1]);
      }
      acc += g.inC - 2 * ones;
    }
  }
  return acc;
}

/** round((v * m + bias) / 2^s) with half up: (v * m + bias + 2^(s-1)) >> s in exact (BigInt) arithmetic. */
export function requantizeValue(v: number, multiplier: number, bias: bigint, s: number): number {
  return Number((BigInt(v) * BigInt(multiplier) + bias + (1n << BigInt(s - 1))) >> BigInt(s));
}

export function convBinary(mem: EngineMemory, g: ConvGeometry, x: Ptr, w: Ptr, ep: IntEpilogue, y: Ptr): void {
  checkBinaryGeometry(g);
  const plane = g.outH * g.outW;
  const outWords = words64(g.outC);
  if (ep.kind === 'bits') mem.u32.fill(0, y >>> 2, (y >>> 2) + g.n * plane * outWords * 2);
  for (let b = 0; b < g.n; b++)
    for (let oy = 0; oy < g.outH; oy++)
      for (let ox = 0; ox < g.outW; ox++)
        for (let oc = 0; oc < g.outC; oc++) {
          const acc = accumulator(mem, g, x, w, b, oy, ox, oc);
          const yi = ((b * g.outC + oc) * g.outH + oy) * g.outW + ox; // NCHW element index
          switch (ep.kind) {
            case 'int32':
              mem.i32[(y >>> 2) + yi] = acc;
              break;
            case 'float': {
              const v = Math.fround(Math.fround(Math.fround(acc) * mem.f32[(ep.scale >>> 2) + oc]) + mem.f32[(ep.offset >>> 2) + oc]);
              let out = Math.min(Math.max(v, ep.lo), ep.hi);
              if (ep.pixelScale) out = Math.fround(out * mem.f32[(ep.pixelScale >>> 2) + (b * g.outH + oy) * g.outW + ox]);
              if (ep.bias) out = Math.fround(out + mem.f32[(ep.bias >>> 2) + oc]);
              if (ep.post) {
                out = Math.fround(Math.fround(out * mem.f32[(ep.post.scale >>> 2) + oc]) + mem.f32[(ep.post.shift >>> 2) + oc]);
                if (ep.post.residual) out = Math.fround(out + mem.f32[(ep.post.residual >>> 2) + yi]);
                if (ep.post.relu) out = out > 0 ? out : 0;
              }
              mem.f32[(y >>> 2) + yi] = out;
              break;
            }
            case 'bits': {
              const v = Math.fround(Math.fround(Math.fround(acc) * mem.f32[(ep.scale >>> 2) + oc]) + mem.f32[(ep.offset >>> 2) + oc]);
              if (v >= 0) setBit(mem.u32, y + (((b * g.outH + oy) * g.outW + ox) * outWords + (oc >> 6)) * 8, oc & 63);
              break;
            }
            case 'requant': {
              const bias = ep.bias ? new BigInt64Array(mem.memory.buffer, ep.bias + 8 * oc, 1)[0] : 0n;
              const r = requantizeValue(acc, mem.i32[(ep.multiplier >>> 2) + oc], bias, 31 + mem.i32[(ep.shift >>> 2) + oc]);
              const code = Math.min(Math.max(r + ep.zeroPoint, ep.lo), ep.hi);
              if (ep.out === 'u8') mem.u8[y + yi] = code;
              else mem.i8[y + yi] = code;
              break;
            }
          }
        }
}

export function createRefBinaryKernels(mem: EngineMemory): BinaryKernels {
  return {
    binarizePack: (x, n, c, h, w, y, opts) => binarizePack(mem, x, n, c, h, w, y, opts),
    binaryPackedWeightBytes: (g) => binaryPackedWeightBytes(g),
    binaryPackWeights: (g, w, dst) => binaryPackWeights(mem, g, w, dst),
    convBinary: (g, x, w, ep, y) => convBinary(mem, g, x, w, ep, y),
  };
}
