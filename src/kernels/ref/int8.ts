// The int8 kernels of IntKernels as plain TypeScript: the readable spec the WebAssembly kernels
// (assembly/int8.ts) are tested against bit for bit. Integer arithmetic is exact: accumulators wrap like
// int32 (`| 0`, the same result in any summation order), 64-bit requantization products use BigInt.
//
// Packed conv weights (the layout the WebAssembly microkernel reads; both backends pack identically so a
// packed buffer works with either), at b = 8, 4 or 2 bits per weight (two's complement fields). Input
// channels of a group are taken in pairs (2j, 2j+1); a "pair tap" k = (j * kH + ky) * kW + kx holds the two
// weights of one output channel at (ky, kx) as one 2b-bit field (low half: channel 2j; high half: channel
// 2j+1, or 0 past an odd channel count). Output channels go in blocks of INT8_MR (zero-padded past coutG):
//   packed[g][block][k][i]  (2b-bit fields, little-endian bit order)  = pair tap k of output channel
//                                                                       g*coutG + block*INT8_MR + i
// Why: the kernel widens (x - xZero) to i16 and multiplies pairs of channels with i32x4.dot_i16x8_s
// (8 exact multiply-adds per instruction), so it needs both factors as adjacent pairs; the 4 channels of a
// block's pair tap (b bytes) widen to one i16x8 vector. Weights stay b bits each in memory.
// Where the WebAssembly kernel runs an exact integer Winograd, F(4x4, 3x3) or F(2x2, 3x3) (int8Winograd4Applies,
// int8WinogradApplies), it transforms these same weights per block as it goes (assembly/int8-winograd4.ts,
// int8-winograd.ts).

import type { EngineMemory, Ptr } from '../memory.js';
import type { ConvGeometry, IntEpilogue, IntKernels, PoolGeometry, WeightBits } from '../types.js';

export type Int8Kernels = Pick<IntKernels, 'int8PackedWeightBytes' | 'int8PackWeights' | 'convInt8' | 'requantize' | 'sumPlanesInt8' | 'maxPoolInt8' | 'addInt8'>;

/** Output channels per block of packed weights. */
export const INT8_MR = 4;

/**
 * Most input channels of the Winograd path: the kernel computes 4 * acc in i32, exact while
 * |acc| <= inC * 9 * 255 * 128 < 2^29.
 */
export const INT8_WINOGRAD_MAX_IN_CHANNELS = 1827;

/** The WebAssembly kernel takes the Winograd path (a function of the geometry, not of the batch). */
export function int8WinogradApplies(g: ConvGeometry): boolean {
  return g.kH === 3 && g.kW === 3 && g.strideH === 1 && g.strideW === 1 && g.dilationH === 1 && g.dilationW === 1 &&
    g.groups === 1 && g.inC >= 8 && g.outC >= 8 && g.inC <= INT8_WINOGRAD_MAX_IN_CHANNELS && g.outH >= 2 && g.outW >= 2;
}

/**
 * Most input channels of the Winograd F(4x4, 3x3) path. The kernel computes 576 * acc modulo 2^32 and recovers
 * acc exactly while |acc| <= inC * 9 * 255 * 128 < 2^25, so over chunks of 112 channels, summed
 * (assembly/int8-winograd4.ts); each chunk repeats the output transform, and from 256 channels on F(2x2, 3x3)
 * is faster (F(2x2) time / F(4x4) time, 1 thread: 112 channels 28x28 1.34, 128 1.19, 256 0.93, 512 0.51).
 */
export const INT8_WINOGRAD4_MAX_IN_CHANNELS = 128;

/**
 * Where the Winograd path applies, the WebAssembly kernel takes F(4x4, 3x3) rather than F(2x2, 3x3) for outputs
 * at least 16 wide: narrower ones waste lanes of its groups of 4 tiles (per multiply-add, 112 channels against
 * 113 on F(2x2), 1 thread: 1.17-1.33x faster at 16-56 wide, equal at 14, 1.75x slower at 7-8).
 */
export function int8Winograd4Applies(g: ConvGeometry): boolean {
  return int8WinogradApplies(g) && g.inC <= INT8_WINOGRAD4_MAX_IN_CHANNELS && g.outW >= 16;
}

/** Sizes of the packed weight layout (see the header). */
export function int8Layout(g: ConvGeometry, bits: WeightBits = 8): {
  cinG: number; coutG: number; pairs: number; K2: number; blocks: number; winograd: boolean; bytes: number;
} {
  const cinG = g.inC / g.groups, coutG = g.outC / g.groups;
  const pairs = Math.ceil(cinG / 2);
  const K2 = pairs * g.kH * g.kW;
  const blocks = Math.ceil(coutG / INT8_MR);
  const bytes = (g.groups * blocks * K2 * INT8_MR * 2 * bits) / 8;
  return { cinG, coutG, pairs, K2, blocks, winograd: int8WinogradApplies(g), bytes };
}

/** The weights [outC, cinG, kH, kW] read back from packed ones. */
export function unpackInt8Weights(mem: EngineMemory, g: ConvGeometry, w: Ptr, bits: WeightBits = 8): Int8Array {
  const { cinG, K2, blocks } = int8Layout(g, bits);
  const out = new Int8Array(g.outC * cinG * g.kH * g.kW);
  for (let oc = 0; oc < g.outC; oc++)
    for (let c = 0; c < cinG; c++)
      for (let ky = 0; ky < g.kH; ky++)
        for (let kx = 0; kx < g.kW; kx++) {
          const bit = packedWeightBit(g, oc, c, ky, kx, K2, blocks, bits);
          const field = (mem.u8[w + (bit >>> 3)] >> (bit & 7)) & ((1 << bits) - 1);
          out[((oc * cinG + c) * g.kH + ky) * g.kW + kx] = field >= 1 << (bits - 1) ? field - (1 << bits) : field;
        }
  return out;
}

/** Bit offset, within packed weights, of the weight of output channel oc, input channel c, tap (ky, kx). */
function packedWeightBit(g: ConvGeometry, oc: number, c: number, ky: number, kx: number, K2: number, blocks: number, bits: number): number {
  const coutG = g.outC / g.groups;
  const gi = Math.floor(oc / coutG), o = oc % coutG;
  const k = ((c >> 1) * g.kH + ky) * g.kW + kx;
  const pair = ((gi * blocks + Math.floor(o / INT8_MR)) * K2 + k) * INT8_MR + (o % INT8_MR);
  return (2 * pair + (c & 1)) * bits;
}

/** Every weight within the signed range of `bits` (the packing keeps only that many bits). */
export function checkWeightBits(mem: EngineMemory, w: Ptr, count: number, bits: WeightBits, op: string): void {
  if (bits !== 8 && bits !== 4 && bits !== 2) throw new RangeError(`lowbit: ${op}: weight bits must be 8, 4 or 2, got ${bits}`);
  const lo = -(2 ** (bits - 1)), hi = 2 ** (bits - 1) - 1;
  for (let i = 0; i < count; i++) {
    const v = mem.i8[w + i];
    if (v < lo || v > hi) throw new RangeError(`lowbit: ${op}: weight ${v} (element ${i}) does not fit ${bits} bits (${lo}..${hi})`);
  }
}

export function checkConvGeometry(g: ConvGeometry, op: string): void {
  const ints = [g.n, g.inC, g.inH, g.inW, g.outC, g.kH, g.kW, g.strideH, g.strideW, g.padTop, g.padLeft, g.padBottom, g.padRight,
    g.dilationH, g.dilationW, g.groups, g.outH, g.outW];
  if (ints.some((v) => !Number.isInteger(v) || v < 0) || g.groups < 1 || g.strideH < 1 || g.strideW < 1 || g.dilationH < 1 || g.dilationW < 1)
    throw new RangeError(`lowbit: ${op}: invalid geometry ${JSON.stringify(g)}`);
  if (g.inC % g.groups !== 0 || g.outC % g.groups !== 0)
    throw new RangeError(`lowbit: ${op}: channels ${g.inC} -> ${g.outC} not divisible by groups ${g.groups}`);
}

/** x - xZero must fit an i16 (the kernels widen codes to i16): the zero point must be a code of the type. */
export function checkZero(type: 'u8' | 'i8', zero: number, op: string): void {
  const [lo, hi] = type === 'u8' ? [0, 255] : [-128, 127];
  if (!Number.isInteger(zero) || zero < lo || zero > hi)
    throw new RangeError(`lowbit: ${op}: zero point ${zero} is not a ${type} code (${lo}..${hi})`);
}

/** Exact requantization of one accumulator (see IntEpilogue 'requant'); bias in units of 2^-s codes. */
export function requantizeFixedPoint(acc: number, bias: bigint, multiplier: number, shift: number, zeroPoint: number, lo: number, hi: number): number {
  const s = BigInt(31 + shift);
  const r = (BigInt(acc) * BigInt(multiplier) + bias + (1n << (s - 1n))) >> s; // BigInt >> is arithmetic (floor)
  const q = r + BigInt(zeroPoint);
  return q < BigInt(lo) ? lo : q > BigInt(hi) ? hi : Number(q);
}

/** f32(f32(f32(acc) * scale) + offset), no fused multiply-add. */
function affineF32(acc: number, scale: number, offset: number): number {
  return Math.fround(Math.fround(Math.fround(acc) * scale) + offset);
}

/**
 * Apply an epilogue to accumulators acc[n, c, hw] (read through `accAt(i)`, i the flat index) into y:
 * u8/i8/f32/i32 NCHW, or bits [n, hw, ceil(c / 64)] of u64 words.
 */
function applyEpilogue(mem: EngineMemory, accAt: (i: number) => number, n: number, c: number, hw: number, ep: IntEpilogue, y: Ptr): void {
  const i32 = mem.i32, f32 = mem.f32, u8 = mem.u8, i8 = mem.i8, u32 = mem.u32;
  switch (ep.kind) {
    case 'int32':
      for (let i = 0; i < n * c * hw; i++) i32[(y >>> 2) + i] = accAt(i);
      return;
    case 'requant': {
      const out = ep.out === 'u8' ? u8 : i8;
      for (let b = 0; b < n; b++)
        for (let ch = 0; ch < c; ch++) {
          const bias = ep.bias ? new BigInt64Array(mem.memory.buffer, ep.bias + 8 * ch, 1)[0] : 0n;
          const m = i32[(ep.multiplier >>> 2) + ch], sh = i32[(ep.shift >>> 2) + ch];
          for (let p = 0; p < hw; p++) {
            const i = (b * c + ch) * hw + p;
            out[y + i] = requantizeFixedPoint(accAt(i), bias, m, sh, ep.zeroPoint, ep.lo, ep.hi);
          }
        }
      return;
    }
    case 'float': {
      const lo = Math.fround(ep.lo), hi = Math.fround(ep.hi);
      for (let b = 0; b < n; b++)
        for (let ch = 0; ch < c; ch++) {
          const scale = f32[(ep.scale >>> 2) + ch], offset = f32[(ep.offset >>> 2) + ch];
          for (let p = 0; p < hw; p++) {
            const i = (b * c + ch) * hw + p;
            const v = affineF32(accAt(i), scale, offset);
            f32[(y >>> 2) + i] = v < lo ? lo : v > hi ? hi : v;
          }
        }
      return;
    }
    case 'bits': {
      const words = Math.ceil(c / 64);
      for (let b = 0; b < n; b++)
        for (let p = 0; p < hw; p++)
          for (let wd = 0; wd < words; wd++) {
            let lowWord = 0, highWord = 0;
            for (let bit = 0; bit < 64 && wd * 64 + bit < c; bit++) {
              const ch = wd * 64 + bit;
              const v = affineF32(accAt((b * c + ch) * hw + p), f32[(ep.scale >>> 2) + ch], f32[(ep.offset >>> 2) + ch]);
              if (v >= 0) {
                if (bit < 32) lowWord |= 1 << bit;
                else highWord |= 1 << (bit - 32);
              }
            }
            const at = (y >>> 2) + ((b * hw + p) * words + wd) * 2; // little-endian u64 = two u32
            u32[at] = lowWord >>> 0;
            u32[at + 1] = highWord >>> 0;
          }
      return;
    }
  }
}

export function createRefInt8Kernels(mem: EngineMemory): Int8Kernels {
  const codes = (type: 'u8' | 'i8') => (type === 'u8' ? mem.u8 : mem.i8);

  return {
    int8PackedWeightBytes(g, bits = 8) {
      checkConvGeometry(g, 'int8PackedWeightBytes');
      return int8Layout(g, bits).bytes;
    },

    int8PackWeights(g, w, dst, bits = 8) {
      checkConvGeometry(g, 'int8PackWeights');
      const { cinG, bytes, K2, blocks } = int8Layout(g, bits);
      checkWeightBits(mem, w, g.outC * cinG * g.kH * g.kW, bits, 'int8PackWeights');
      const u8 = mem.u8;
      u8.fill(0, dst, dst + bytes);
      for (let oc = 0; oc < g.outC; oc++)
        for (let c = 0; c < cinG; c++)
          for (let ky = 0; ky < g.kH; ky++)
            for (let kx = 0; kx < g.kW; kx++) {
              const bit = packedWeightBit(g, oc, c, ky, kx, K2, blocks, bits);
              const field = mem.i8[w + ((oc * cinG + c) * g.kH + ky) * g.kW + kx] & ((1 << bits) - 1);
              u8[dst + (bit >>> 3)] |= field << (bit & 7);
            }
    },

    convInt8(g, x, xType, xZero, w, ep, y, bits = 8) {
      checkConvGeometry(g, 'convInt8');
      checkZero(xType, xZero, 'convInt8');
      const xs = codes(xType);
      const cinG = g.inC / g.groups, coutG = g.outC / g.groups;
      const weights = unpackInt8Weights(mem, g, w, bits);
      const P = g.outH * g.outW;
      const acc = new Int32Array(g.n * g.outC * P);
      for (let b = 0; b < g.n; b++)
        for (let oc = 0; oc < g.outC; oc++) {
          const gi = Math.floor(oc / coutG);
          for (let oy = 0; oy < g.outH; oy++)
            for (let ox = 0; ox < g.outW; ox++) {
              let a = 0;
              for (let c = 0; c < cinG; c++)
                for (let ky = 0; ky < g.kH; ky++) {
                  const iy = oy * g.strideH - g.padTop + ky * g.dilationH;
                  for (let kx = 0; kx < g.kW; kx++) {
                    const ix = ox * g.strideW - g.padLeft + kx * g.dilationW;
                    // a padded tap reads xZero: it contributes 0
                    if (iy < 0 || iy >= g.inH || ix < 0 || ix >= g.inW) continue;
                    const xv = xs[x + ((b * g.inC + gi * cinG + c) * g.inH + iy) * g.inW + ix];
                    const wv = weights[((oc * cinG + c) * g.kH + ky) * g.kW + kx];
                    a = (a + (xv - xZero) * wv) | 0;
                  }
                }
              acc[(b * g.outC + oc) * P + oy * g.outW + ox] = a;
            }
        }
      applyEpilogue(mem, (i) => acc[i], g.n, g.outC, P, ep, y);
    },

    requantize(acc, n, c, hw, ep, y) {
      const i32 = mem.i32;
      applyEpilogue(mem, (i) => i32[(acc >>> 2) + i], n, c, hw, ep, y);
    },

    sumPlanesInt8(x, xType, xZero, planes, hw, acc) {
      const xs = codes(xType), i32 = mem.i32;
      for (let p = 0; p < planes; p++) {
        let s = 0;
        for (let i = 0; i < hw; i++) s = (s + xs[x + p * hw + i] - xZero) | 0;
        i32[(acc >>> 2) + p] = s;
      }
    },

    maxPoolInt8(g: PoolGeometry, x, xType, y) {
      // An empty window (only possible when the padding is at least the window) writes the lowest code.
      const xs = codes(xType), ys = codes(xType);
      const lowest = xType === 'u8' ? 0 : -128;
      const inPlane = g.inH * g.inW, outPlane = g.outH * g.outW;
      for (let p = 0; p < g.planes; p++)
        for (let oy = 0; oy < g.outH; oy++)
          for (let ox = 0; ox < g.outW; ox++) {
            let best = lowest;
            for (let ky = 0; ky < g.kH; ky++) {
              const iy = oy * g.strideH - g.padTop + ky * g.dilationH;
              if (iy < 0 || iy >= g.inH) continue;
              for (let kx = 0; kx < g.kW; kx++) {
                const ix = ox * g.strideW - g.padLeft + kx * g.dilationW;
                if (ix < 0 || ix >= g.inW) continue;
                best = Math.max(best, xs[x + p * inPlane + iy * g.inW + ix]);
              }
            }
            ys[y + p * outPlane + oy * g.outW + ox] = best;
          }
    },

    addInt8(n, a, aType, aZero, aMultiplier, b, bType, bZero, bMultiplier, shift, yZero, lo, hi, y, yType) {
      checkAddArgs(aZero, bZero, aMultiplier, bMultiplier, shift);
      const as = codes(aType), bs = codes(bType), ys = codes(yType);
      const s = BigInt(shift), half = 1n << (s - 1n);
      const am = BigInt(aMultiplier), bm = BigInt(bMultiplier), yz = BigInt(yZero), blo = BigInt(lo), bhi = BigInt(hi);
      for (let i = 0; i < n; i++) {
        const r = (BigInt(as[a + i] - aZero) * am + BigInt(bs[b + i] - bZero) * bm + half) >> s;
        const q = r + yz;
        ys[y + i] = q < blo ? lo : q > bhi ? hi : Number(q);
      }
    },
  };
}

/** addInt8's bounds, which keep its 64-bit arithmetic exact. */
export function checkAddArgs(aZero: number, bZero: number, aMultiplier: number, bMultiplier: number, shift: number): void {
  const okZero = (z: number) => Number.isInteger(z) && Math.abs(z) <= 65535;
  const okMul = (m: number) => Number.isInteger(m) && Math.abs(m) < 2 ** 31;
  if (!okZero(aZero) || !okZero(bZero)) throw new RangeError(`lowbit: addInt8: zero points ${aZero}, ${bZero} out of range (|z| <= 65535)`);
  if (!okMul(aMultiplier) || !okMul(bMultiplier)) throw new RangeError(`lowbit: addInt8: multipliers must be integers in (-2^31, 2^31)`);
  if (!Number.isInteger(shift) || shift < 1 || shift > 62) throw new RangeError(`lowbit: addInt8: shift ${shift} not in [1, 62]`);
}
