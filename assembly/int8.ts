// Integer (int8) kernels: convolution of u8/i8 codes with int8 weights, int32 accumulation, and the
// epilogues (fixed-point requantization, float affine, raw int32, bits), plus the small integer ops of the
// integer runtime (requantize, plane sums, max pool, residual add). The reference (the spec) is
// src/kernels/ref/int8.ts; results match it bit for bit.
//
// Convolution. WebAssembly SIMD128 has one exact integer multiply-add that does real work per instruction:
// i32x4.dot_i16x8_s (x64 pmaddwd), 8 products of i16 pairs summed into 4 i32 lanes. So both factors are
// widened to i16 and paired along the input channels:
//   xq      the input as (x - xZero) in i16, padded with zeros (a padded tap reads xZero, so it adds 0)
//           and phase-split like the float convolution (assembly/conv.ts), one 32-bit word per pixel
//           holding channels (2j, 2j+1) of a group:  xq[b][g][j][phase][Hp][Wq] (u32)
//   packed  weights as pairs of 8-, 4- or 2-bit integers in the same channel order (src/kernels/ref/int8.ts
//           has the layout): [g][block of MR output channels][pair tap k][MR], as many bits per weight as
//           the layer's codes need; widenPairs makes a block's pair tap one i16x8 vector
// A tile is NR = 8 consecutive output pixels (of the image-major flattened output, so batch and row
// boundaries don't waste lanes, and a linear layer's batch fills them). Its inputs are gathered once into a
// panel [K2][NR] (u32, thread scratch; 2 vector copies per tap when the 8 pixels are consecutive in xq), and
// each block of MR = 4 output channels is a 4 x 8 register tile: per pair tap, two loads of the panel, four
// 32-bit splats of weight pairs, 8 dot products and 8 adds. The tile reads a block's weights widened to i16
// pairs in scratch, once per pass over up to TILE_GROUP tiles (so weights stay packed in memory). Exact: |x - xZero| <= 255, |w| <= 128, so each
// dot product's pair sum fits easily and i32 accumulation wraps exactly like the reference. Tiles of at
// most FEW_PIXELS pixels (a linear layer at batch 1) put 8 output channels in the lanes instead (i8Pixel8).
// The epilogue is applied to each finished tile (scalar; 64-bit products for the requantization).
// Speed: the 4 x 8 tile runs near the dot/add issue limit of one core (~10 multiply-adds per cycle);
// 3x3 stride-1 convolutions (groups 1, >= 8 channels) take an exact integer Winograd instead: F(4x4, 3x3) up
// to 128 input channels, 4x fewer multiplies (assembly/int8-winograd4.ts), else F(2x2, 3x3), 2.25x fewer
// (assembly/int8-winograd.ts), both with the same tile; they transform the same packed i8
// weights on the fly (so weights cost 1 byte each in memory on every path). Contiguous runs of the epilogue
// are vectorized (epilogueVector), bit for bit the scalar arithmetic.

import { firstTap, endTap, phaseStart, phaseEnd } from './window';
import { ARR, argI, argP, scratchOf, shareStart } from './layout';
import { GEMM_SCRATCH } from './gemm';
import { winogradConvInt8, winograd4ConvInt8 } from './int8-winograd';

// Job ids 40-49 (mirrored in src/kernels/wasm/abi.ts).
export const J_I8_PACK = 40, J_I8_PREP = 41, J_I8_CONV = 42, J_I8_REQUANT = 43, J_I8_SUM = 44, J_I8_MAXPOOL = 45, J_I8_ADD = 46;
// Winograd F(2x2, 3x3) (assembly/int8-winograd.ts)
export const J_I8_WINO = 48;
// Winograd F(4x4, 3x3) (assembly/int8-winograd4.ts)
export const J_I8_WINO4 = 49;

// Tile: output channels x output pixels.
export const I8_MR: i32 = 4;
export const I8_NR: i32 = 8;
/** Tiles with at most this many pixels put output channels in the lanes instead (i8Pixel8). */
const FEW_PIXELS: i32 = 3;
/** Scratch bytes before the panel: the accumulator tile, pixel base offsets and output indices. */
const PANEL_AT: usize = 1024;

// Argument slots of the convolution jobs (written by src/kernels/wasm/int8.ts).
export const I_N = 0, I_INC = 1, I_INH = 2, I_INW = 3, I_OUTC = 4, I_KH = 5, I_KW = 6, I_SH = 7, I_SW = 8, I_PT = 9, I_PL = 10;
export const I_DH = 11, I_DW = 12, I_G = 13, I_OUTH = 14, I_OUTW = 15, I_HP = 16, I_WQ = 17, I_X = 18, I_XQ = 19, I_W = 20;
export const I_OFFS = 21, I_Y = 22, I_XTYPE = 23, I_XZERO = 24;
// Winograd only: tile rows per band, shares of the output-channel blocks, units (bands * shares)
export const I_WR = 25, I_WS = 26, I_WUNITS = 27;
/** Bits per packed weight: 8, 4 or 2. */
export const I_WBITS = 28;
// The epilogue, in the small int array (ARR): kind (0 requant, 1 float, 2 int32, 3 bits), output type
// (0 u8, 1 i8), pointers, requant zero point and clamp, float clamp as f32 bit patterns.
const E_KIND = 0, E_OUT = 1, E_BIAS = 2, E_MULT = 3, E_SHIFT = 4, E_SCALE = 5, E_OFFSET = 6, E_ZP = 7, E_LO = 8, E_HI = 9;
const E_FLO = 10, E_FHI = 11;
const K_REQUANT = 0, K_FLOAT = 1, K_INT32 = 2, K_BITS = 3;

// @ts-ignore: decorator
@inline function arrU(ctrl: usize, i: i32): usize {
  return <usize>load<u32>(ctrl + ARR + (<usize>i << 2));
}
// @ts-ignore: decorator
@inline function arrV(ctrl: usize, i: i32): i32 {
  return load<i32>(ctrl + ARR + (<usize>i << 2));
}
// @ts-ignore: decorator
@inline function lo(n: i32, u: i32, U: i32): i32 {
  return shareStart(n, u, U, 1);
}
// @ts-ignore: decorator
@inline function hi(n: i32, u: i32, U: i32): i32 {
  return shareStart(n, u + 1, U, 1);
}

// ---- epilogue -------------------------------------------------------------------------------------------

/**
 * Epilogue of `count` accumulators of output channel `ch` (i32 at src, src + srcStep, ...) into y elements
 * yi, yi + yStep, ... (kinds requant, float, int32; bits are written by bitsPixels).
 */
export function epilogueRun(ctrl: usize, src: usize, srcStep: usize, count: i32, ch: i32, y: usize, yi: usize, yStep: usize): void {
  const kind = arrV(ctrl, E_KIND);
  if (srcStep == 4 && yStep == 1 && count >= 4) {
    // contiguous: 4 at a time, then the rest below
    const done = epilogueVector(ctrl, kind, src, count, ch, y, yi);
    count -= done;
    src += <usize>done << 2;
    yi += <usize>done;
  }
  if (kind == K_INT32) {
    for (let j = 0; j < count; j++) {
      store<i32>(y + (yi << 2), load<i32>(src));
      src += srcStep;
      yi += yStep;
    }
  } else if (kind == K_FLOAT) {
    const scale = load<f32>(arrU(ctrl, E_SCALE) + (<usize>ch << 2)), offset = load<f32>(arrU(ctrl, E_OFFSET) + (<usize>ch << 2));
    const flo = reinterpret<f32>(arrV(ctrl, E_FLO)), fhi = reinterpret<f32>(arrV(ctrl, E_FHI));
    for (let j = 0; j < count; j++) {
      const v = <f32>load<i32>(src) * scale + offset; // f32 mul then f32 add: wasm never fuses them
      store<f32>(y + (yi << 2), v < flo ? flo : v > fhi ? fhi : v);
      src += srcStep;
      yi += yStep;
    }
  } else {
    const biasP = arrU(ctrl, E_BIAS);
    const bias = biasP != 0 ? load<i64>(biasP + (<usize>ch << 3)) : 0;
    const m = <i64>load<i32>(arrU(ctrl, E_MULT) + (<usize>ch << 2));
    const s = <i64>(31 + load<i32>(arrU(ctrl, E_SHIFT) + (<usize>ch << 2)));
    const rnd = (<i64>1 << (s - 1)) + bias;
    const zp = <i64>arrV(ctrl, E_ZP), qlo = <i64>arrV(ctrl, E_LO), qhi = <i64>arrV(ctrl, E_HI);
    for (let j = 0; j < count; j++) {
      let q = ((<i64>load<i32>(src) * m + rnd) >> s) + zp;
      q = q < qlo ? qlo : q > qhi ? qhi : q;
      store<u8>(y + yi, <u8>q); // i8 and u8 alike: the low byte
      src += srcStep;
      yi += yStep;
    }
  }
}

/**
 * The epilogue of contiguous accumulators (src, 4 bytes apart) into contiguous outputs y[yi ..], 4 at a time,
 * with the same arithmetic as the scalar loop of epilogueRun; returns how many it did (a multiple of 4; 0
 * where the vector form does not apply). Requantization: the 64-bit sum acc * m + rnd shifted right by
 * s = 32 + k (0 <= k < 32) is its high word shifted right by k; clamping r = that, not r + zp, to
 * [lo - zp, hi - zp] (saturated to i32) and then adding zp gives clamp(r + zp, lo, hi) without wrapping
 * (lo <= hi; other cases are left to the scalar loop).
 */
function epilogueVector(ctrl: usize, kind: i32, src: usize, count: i32, ch: i32, y: usize, yi: usize): i32 {
  const n = count & ~3;
  if (kind == K_INT32) {
    const d = y + (yi << 2);
    for (let j = 0; j < n; j += 4) v128.store(d + (<usize>j << 2), v128.load(src + (<usize>j << 2)));
    return n;
  }
  if (kind == K_FLOAT) {
    const scale = f32x4.splat(load<f32>(arrU(ctrl, E_SCALE) + (<usize>ch << 2)));
    const offset = f32x4.splat(load<f32>(arrU(ctrl, E_OFFSET) + (<usize>ch << 2)));
    const flo = f32x4.splat(reinterpret<f32>(arrV(ctrl, E_FLO))), fhi = f32x4.splat(reinterpret<f32>(arrV(ctrl, E_FHI)));
    const d = y + (yi << 2);
    for (let j = 0; j < n; j += 4) {
      const v = f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(v128.load(src + (<usize>j << 2))), scale), offset);
      // v < flo ? flo : v > fhi ? fhi : v  (pmin(v, fhi) = fhi < v ? fhi : v)
      v128.store(d + (<usize>j << 2), v128.bitselect(flo, f32x4.pmin(v, fhi), f32x4.lt(v, flo)));
    }
    return n;
  }
  const biasP = arrU(ctrl, E_BIAS);
  const bias = biasP != 0 ? load<i64>(biasP + (<usize>ch << 3)) : 0;
  const s = 31 + load<i32>(arrU(ctrl, E_SHIFT) + (<usize>ch << 2));
  const zp = <i64>arrV(ctrl, E_ZP), qlo = <i64>arrV(ctrl, E_LO), qhi = <i64>arrV(ctrl, E_HI);
  if (s < 32 || s > 63 || qlo > qhi) return 0;
  const m = i32x4.splat(load<i32>(arrU(ctrl, E_MULT) + (<usize>ch << 2)));
  const rnd = i64x2.splat((<i64>1 << (<i64>s - 1)) + bias);
  const k = s - 32;
  const rlo = qlo - zp, rhi = qhi - zp;
  const lov = i32x4.splat(<i32>(rlo < <i64>i32.MIN_VALUE ? <i64>i32.MIN_VALUE : rlo));
  const hiv = i32x4.splat(<i32>(rhi > <i64>i32.MAX_VALUE ? <i64>i32.MAX_VALUE : rhi));
  const zv = i32x4.splat(<i32>zp);
  const d = y + yi;
  for (let j = 0; j < n; j += 4) {
    const a = v128.load(src + (<usize>j << 2));
    const p0 = i64x2.add(i64x2.extmul_low_i32x4_s(a, m), rnd), p1 = i64x2.add(i64x2.extmul_high_i32x4_s(a, m), rnd);
    const r = i32x4.shr_s(v128.shuffle<i32>(p0, p1, 1, 3, 5, 7), k);
    const q = i32x4.add(i32x4.max_s(i32x4.min_s(r, hiv), lov), zv);
    v128.store32_lane(d + <usize>j, v128.shuffle<u8>(q, q, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12), 0);
  }
  return n;
}

/** Bits for pixels [q0, q1) (q = b * hw + p) of accumulators acc [n, c, hw]: y [n, hw, ceil(c / 64)] u64. */
function bitsPixels(ctrl: usize, acc: usize, c: i32, hw: i32, y: usize, q0: i32, q1: i32): void {
  const scale = arrU(ctrl, E_SCALE), offset = arrU(ctrl, E_OFFSET);
  const words = (c + 63) >> 6;
  for (let q = q0; q < q1; q++) {
    const b = q / hw, p = q % hw;
    const src = acc + ((<usize>b * <usize>c * <usize>hw + <usize>p) << 2);
    for (let wd = 0; wd < words; wd++) {
      let word: u64 = 0;
      const cEnd = min(c, (wd + 1) << 6);
      for (let ch = wd << 6; ch < cEnd; ch++) {
        const v = <f32>load<i32>(src + ((<usize>ch * <usize>hw) << 2)) * load<f32>(scale + (<usize>ch << 2)) + load<f32>(offset + (<usize>ch << 2));
        if (v >= 0) word |= <u64>1 << <u64>(ch & 63);
      }
      store<u64>(y + ((<usize>q * <usize>words + <usize>wd) << 3), word);
    }
  }
}

// ---- convolution: preparation -----------------------------------------------------------------------------

/**
 * Pack weight blocks [u0, u1) (unit = g * blocks + block) of w (i8 [outC, cinG, kH, kW]) into dst: the pair
 * (w0, w1) of pair tap k, channel i of a block is 2 * bits bits, at bit (k * MR + i) * 2 * bits of the block,
 * w0 in the low half.
 */
function packWeights(ctrl: usize, u0: i32, u1: i32): void {
  const inC = argI(ctrl, I_INC), outC = argI(ctrl, I_OUTC), G = argI(ctrl, I_G), kk = argI(ctrl, I_KH) * argI(ctrl, I_KW);
  const w = argP(ctrl, I_X), dst = argP(ctrl, I_W), bits = argI(ctrl, I_WBITS);
  const cinG = inC / G, coutG = outC / G;
  const pairs = (cinG + 1) >> 1, K2 = pairs * kk, blocks = (coutG + I8_MR - 1) / I8_MR;
  const mask: u32 = (1 << bits) - 1;
  for (let u = u0; u < u1; u++) {
    const g = u / blocks, blk = u % blocks;
    const d = dst + <usize>u * <usize>K2 * <usize>bits; // K2 * MR pairs of 2 * bits bits
    memory.fill(d, 0, <usize>K2 * <usize>bits);
    for (let i = 0; i < I8_MR; i++) {
      const oc = blk * I8_MR + i;
      if (oc >= coutG) continue;
      const src = w + <usize>(g * coutG + oc) * <usize>cinG * <usize>kk;
      for (let k = 0; k < K2; k++) {
        const j = k / kk, t = k % kk;
        const c0 = 2 * j;
        const w0 = <u32>load<u8>(src + <usize>(c0 * kk + t)) & mask;
        const w1 = c0 + 1 < cinG ? <u32>load<u8>(src + <usize>((c0 + 1) * kk + t)) & mask : 0;
        const bit = <usize>(k * I8_MR + i) * <usize>(2 * bits);
        const at = d + (bit >> 3);
        if (bits == 8) store<u16>(at, <u16>(w0 | (w1 << 8)));
        else store<u8>(at, load<u8>(at) | <u8>((w0 | (w1 << bits)) << <u32>(bit & 7)));
      }
    }
  }
}

/** A block's K2 pair taps widened to i16 pairs at dst [K2][4] (u32). */
// @ts-ignore: decorator
@inline function widenBlock(pa: usize, K2: i32, bits: i32, dst: usize): void {
  for (let k = 0; k < K2; k++) v128.store(dst + (<usize>k << 4), widenPairs(pa + <usize>k * <usize>bits, bits));
}

/** Pair tap k of a block's 4 channels (at p, `bits` bytes) as i16x8 [w0, w1] x 4: sign-extended fields. */
// @ts-ignore: decorator
@inline export function widenPairs(p: usize, bits: i32): v128 {
  if (bits == 8) return v128.load8x8_s(p);
  if (bits == 4) {
    // each i16 lane gets its channel's byte twice; the multiply moves its nibble to the top, shr_s extends it
    const x = v128.load32_zero(p);
    const y = i8x16.shuffle(x, x, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    return i16x8.shr_s(i16x8.mul(y, i16x8(4096, 256, 4096, 256, 4096, 256, 4096, 256)), 12);
  }
  const x = v128.load16_splat(p);
  const y = i8x16.shuffle(x, x, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  return i16x8.shr_s(i16x8.mul(y, i16x8(16384, 4096, 1024, 256, 16384, 4096, 1024, 256)), 14);
}

// @ts-ignore: decorator
@inline function code(x: usize, i8: bool): i32 {
  return i8 ? <i32>load<i8>(x) : <i32>load<u8>(x);
}

/**
 * xq planes [p0, p1) (plane = (b * G + g) * pairs + j): channel pair (2j, 2j+1) of group g of image b as
 * (x - xZero) i16 pairs, zero-padded and phase-split; plus, in unit 0, the pair-tap byte offsets.
 */
function prepInput(ctrl: usize, p0: i32, p1: i32, unit: i32): void {
  const inC = argI(ctrl, I_INC), inH = argI(ctrl, I_INH), inW = argI(ctrl, I_INW), G = argI(ctrl, I_G);
  const kH = argI(ctrl, I_KH), kW = argI(ctrl, I_KW), sW = argI(ctrl, I_SW), pT = argI(ctrl, I_PT), pL = argI(ctrl, I_PL);
  const dH = argI(ctrl, I_DH), dW = argI(ctrl, I_DW), Hp = argI(ctrl, I_HP), Wq = argI(ctrl, I_WQ);
  const x = argP(ctrl, I_X), xq = argP(ctrl, I_XQ), isI8 = argI(ctrl, I_XTYPE) != 0, z = argI(ctrl, I_XZERO);
  const cinG = inC / G, pairs = (cinG + 1) >> 1;
  const offs = argP(ctrl, I_OFFS);
  if (unit == 0 && offs != 0) {
    let k = 0;
    for (let j = 0; j < pairs; j++)
      for (let ky = 0; ky < kH; ky++)
        for (let kx = 0; kx < kW; kx++) {
          const col = kx * dW;
          store<i32>(offs + (<usize>k << 2), (((j * sW + col % sW) * Hp + ky * dH) * Wq + col / sW) << 2);
          k++;
        }
  }
  const planeWords = <usize>sW * <usize>Hp * <usize>Wq;
  const inPlane = <usize>inH * <usize>inW;
  const zv = i16x8.splat(<i16>z);
  for (let p = p0; p < p1; p++) {
    const j = p % pairs, bg = p / pairs;
    const g = bg % G, b = bg / G;
    const c0 = g * cinG + 2 * j;
    const has1 = 2 * j + 1 < cinG;
    const x0 = x + <usize>(b * inC + c0) * inPlane;
    const x1 = has1 ? x0 + inPlane : x0;
    let dst = xq + ((<usize>p * planeWords) << 2);
    for (let f = 0; f < sW; f++) {
      // columns q of this phase read input column q*sW + f - pL; [q0, q1) are inside the input
      const q0 = phaseStart(Wq, sW, f, pL), q1 = phaseEnd(q0, Wq, sW, f, pL, inW);
      for (let r = 0; r < Hp; r++) {
        const iy = r - pT;
        if (iy < 0 || iy >= inH) {
          for (let q = 0; q < Wq; q++) store<u32>(dst + (<usize>q << 2), 0);
        } else {
          for (let q = 0; q < q0; q++) store<u32>(dst + (<usize>q << 2), 0);
          const r0 = x0 + <usize>iy * <usize>inW, r1 = x1 + <usize>iy * <usize>inW;
          let q = q0;
          if (sW == 1) {
            // 8 pixels at a time: widen both channels to i16, subtract the zero point, interleave
            for (; q + 8 <= q1; q += 8) {
              const i = <usize>(q - pL);
              let a = v128.load64_zero(r0 + i), c = has1 ? v128.load64_zero(r1 + i) : v128.splat<i64>(0);
              a = isI8 ? i16x8.extend_low_i8x16_s(a) : i16x8.extend_low_i8x16_u(a);
              c = isI8 ? i16x8.extend_low_i8x16_s(c) : i16x8.extend_low_i8x16_u(c);
              a = i16x8.sub(a, zv);
              c = has1 ? i16x8.sub(c, zv) : i16x8.splat(0);
              const d = dst + (<usize>q << 2);
              v128.store(d, v128.shuffle<i16>(a, c, 0, 8, 1, 9, 2, 10, 3, 11));
              v128.store(d, v128.shuffle<i16>(a, c, 4, 12, 5, 13, 6, 14, 7, 15), 16);
            }
          }
          for (; q < q1; q++) {
            const ix = <usize>(q * sW + f - pL);
            const v0 = code(r0 + ix, isI8) - z;
            const v1 = has1 ? code(r1 + ix, isI8) - z : 0;
            store<u32>(dst + (<usize>q << 2), (<u32>v0 & 0xffff) | (<u32>v1 << 16));
          }
          for (q = q1; q < Wq; q++) store<u32>(dst + (<usize>q << 2), 0);
        }
        dst += <usize>Wq << 2;
      }
    }
  }
}

// ---- convolution: compute ---------------------------------------------------------------------------------

/**
 * acc[4][8] (i32 rows ldm bytes apart at out) = weights pa [K2][4] x panel [K2][8] (pairs of i16): the
 * register tile of the direct kernel (ldm 32) and of the Winograd GEMMs (int8-winograd.ts).
 */
// @ts-ignore: decorator
@inline export function i8Tile4x8(K2: i32, panel: usize, pa: usize, out: usize, ldm: usize): void {
  let c00 = i32x4.splat(0), c01 = i32x4.splat(0), c10 = i32x4.splat(0), c11 = i32x4.splat(0);
  let c20 = i32x4.splat(0), c21 = i32x4.splat(0), c30 = i32x4.splat(0), c31 = i32x4.splat(0);
  for (let k = 0; k < K2; k++) {
    const a0 = v128.load(panel), a1 = v128.load(panel, 16);
    const w0 = v128.load32_splat(pa), w1 = v128.load32_splat(pa, 4), w2 = v128.load32_splat(pa, 8), w3 = v128.load32_splat(pa, 12);
    c00 = i32x4.add(c00, i32x4.dot_i16x8_s(a0, w0));
    c01 = i32x4.add(c01, i32x4.dot_i16x8_s(a1, w0));
    c10 = i32x4.add(c10, i32x4.dot_i16x8_s(a0, w1));
    c11 = i32x4.add(c11, i32x4.dot_i16x8_s(a1, w1));
    c20 = i32x4.add(c20, i32x4.dot_i16x8_s(a0, w2));
    c21 = i32x4.add(c21, i32x4.dot_i16x8_s(a1, w2));
    c30 = i32x4.add(c30, i32x4.dot_i16x8_s(a0, w3));
    c31 = i32x4.add(c31, i32x4.dot_i16x8_s(a1, w3));
    panel += 32;
    pa += 16;
  }
  v128.store(out, c00); v128.store(out, c01, 16);
  v128.store(out + ldm, c10); v128.store(out + ldm, c11, 16);
  v128.store(out + 2 * ldm, c20); v128.store(out + 2 * ldm, c21, 16);
  v128.store(out + 3 * ldm, c30); v128.store(out + 3 * ldm, c31, 16);
}

/**
 * One pixel (panel column at px, 32 bytes per pair tap) times two blocks of packed i8 weights (pa, pa + blockB):
 * output channels in the lanes, acc[8] (i32 at out) for the 8 channels. For tiles of a few pixels (a linear
 * layer at batch 1): every lane does useful work, where the 4 x 8 tile would waste most of them.
 */
// @ts-ignore: decorator
@inline function i8Pixel8(K2: i32, px: usize, pa: usize, blockB: usize, bits: i32, out: usize): void {
  let c0 = i32x4.splat(0), c1 = i32x4.splat(0), d0 = i32x4.splat(0), d1 = i32x4.splat(0);
  const pb = pa + blockB;
  let k = 0;
  const kB = <usize>bits; // bytes per pair tap of a block
  for (; k + 2 <= K2; k += 2) {
    const o = <usize>k * kB;
    const x0 = v128.load32_splat(px + (<usize>k << 5)), x1 = v128.load32_splat(px + (<usize>k << 5), 32);
    c0 = i32x4.add(c0, i32x4.dot_i16x8_s(widenPairs(pa + o, bits), x0));
    c1 = i32x4.add(c1, i32x4.dot_i16x8_s(widenPairs(pb + o, bits), x0));
    d0 = i32x4.add(d0, i32x4.dot_i16x8_s(widenPairs(pa + o + kB, bits), x1));
    d1 = i32x4.add(d1, i32x4.dot_i16x8_s(widenPairs(pb + o + kB, bits), x1));
  }
  if (k < K2) {
    const o = <usize>k * kB;
    const x0 = v128.load32_splat(px + (<usize>k << 5));
    c0 = i32x4.add(c0, i32x4.dot_i16x8_s(widenPairs(pa + o, bits), x0));
    c1 = i32x4.add(c1, i32x4.dot_i16x8_s(widenPairs(pb + o, bits), x0));
  }
  v128.store(out, i32x4.add(c0, d0));
  v128.store(out, i32x4.add(c1, d1), 16);
}

/** Tiles gathered per pass: each block's weights are widened to i16 once per pass, not once per tile. */
const TILE_GROUP: i32 = 8;
// Scratch layout of convTiles: the accumulator tile [MR][NR] (128 bytes), then per tile of the pass its NR
// pixel base offsets into xq and NR output element indices, its pixel count and whether the outputs are
// contiguous; at PANEL_AT the widened block [K2][MR] (u32: i16 pairs), then the pass's panels [K2][NR].
const META_BASES: usize = 128, META_YOUTS: usize = 384, META_CNT: usize = 640;

/**
 * Gather tile t (pixels q0 .. q0 + NR - 1 of group g) into its panel [K2][NR] and its metadata (slot i of
 * the pass); lanes past the pixel count hold stale values whose results are never stored.
 */
function gatherTile(ctrl: usize, g: i32, q0: i32, scratch: usize, i: i32, panel: usize): void {
  const n = argI(ctrl, I_N), inC = argI(ctrl, I_INC), outC = argI(ctrl, I_OUTC), G = argI(ctrl, I_G);
  const kk = argI(ctrl, I_KH) * argI(ctrl, I_KW), sH = argI(ctrl, I_SH), sW = argI(ctrl, I_SW);
  const outH = argI(ctrl, I_OUTH), outW = argI(ctrl, I_OUTW), Hp = argI(ctrl, I_HP), Wq = argI(ctrl, I_WQ);
  const xq = argP(ctrl, I_XQ), offs = argP(ctrl, I_OFFS);
  const cinG = inC / G, coutG = outC / G;
  const pairs = (cinG + 1) >> 1, K2 = pairs * kk;
  const P = outH * outW, PP = n * P;
  const planeB = (<usize>sW * <usize>Hp * <usize>Wq) << 2;
  const bases = scratch + META_BASES + (<usize>i << 5), youts = scratch + META_YOUTS + (<usize>i << 5);
  const cnt = min(I8_NR, PP - q0);
  let contiguous = cnt == I8_NR, yContiguous = true;
  // pixel q0 by division, the next ones by stepping (ox, oy, b)
  let b = q0 / P, p = q0 % P;
  let oy = p / outW, ox = p % outW;
  for (let jj = 0; jj < cnt; jj++) {
    const base = <u32>((<usize>(b * G + g) * <usize>pairs) * planeB + ((<usize>(oy * sH) * <usize>Wq + <usize>ox) << 2));
    const yo = <u32>(<usize>(b * outC + g * coutG) * <usize>P + <usize>p);
    store<u32>(bases + (<usize>jj << 2), base);
    store<u32>(youts + (<usize>jj << 2), yo);
    if (jj > 0) {
      if (base != load<u32>(bases) + (<u32>jj << 2)) contiguous = false;
      if (yo != load<u32>(youts) + <u32>jj) yContiguous = false;
    }
    p++;
    if (++ox == outW) {
      ox = 0;
      if (++oy == outH) { oy = 0; p = 0; b++; }
    }
  }
  store<i32>(scratch + META_CNT + (<usize>i << 3), cnt);
  store<i32>(scratch + META_CNT + (<usize>i << 3), yContiguous ? 1 : 0, 4);
  if (contiguous) {
    const src = xq + <usize>load<u32>(bases);
    for (let k = 0; k < K2; k++) {
      const s = src + <usize>load<i32>(offs + (<usize>k << 2));
      const d = panel + (<usize>k << 5);
      v128.store(d, v128.load(s));
      v128.store(d, v128.load(s, 16), 16);
    }
  } else {
    for (let k = 0; k < K2; k++) {
      const s = xq + <usize>load<i32>(offs + (<usize>k << 2));
      const d = panel + (<usize>k << 5);
      for (let jj = 0; jj < cnt; jj++) store<u32>(d + (<usize>jj << 2), load<u32>(s + <usize>load<u32>(bases + (<usize>jj << 2))));
    }
  }
}

/** Tiles [t0, t1) (tile = g * tilesPerGroup + tile of NR consecutive output pixels of all images). */
function convTiles(ctrl: usize, t0: i32, t1: i32, scratch: usize): void {
  const n = argI(ctrl, I_N), inC = argI(ctrl, I_INC), outC = argI(ctrl, I_OUTC), G = argI(ctrl, I_G);
  const kk = argI(ctrl, I_KH) * argI(ctrl, I_KW);
  const outH = argI(ctrl, I_OUTH), outW = argI(ctrl, I_OUTW);
  const wpack = argP(ctrl, I_W), y = argP(ctrl, I_Y);
  const cinG = inC / G, coutG = outC / G;
  const pairs = (cinG + 1) >> 1, K2 = pairs * kk, blocks = (coutG + I8_MR - 1) / I8_MR;
  const P = outH * outW, PP = n * P;
  const tpg = (PP + I8_NR - 1) / I8_NR;
  const tile = scratch; // acc [MR][NR] i32
  const wide = scratch + PANEL_AT;
  const panels = wide + (<usize>K2 << 4), panelB = <usize>K2 << 5;
  const T = <i32>min<usize>(<usize>TILE_GROUP, (GEMM_SCRATCH - PANEL_AT - (<usize>K2 << 4)) / panelB);
  const bits = argI(ctrl, I_WBITS);
  const blockB = <usize>K2 * <usize>bits; // bytes of one block of packed weights (K2 * MR pairs)
  let t = t0;
  while (t < t1) {
    const g = t / tpg;
    const tn = min(T, min(t1, (g + 1) * tpg) - t); // the pass stays in one group
    let full = false; // any tile for the register tile (the others take the few-pixel path)
    for (let i = 0; i < tn; i++) {
      gatherTile(ctrl, g, ((t + i) % tpg) * I8_NR, scratch, i, panels + <usize>i * panelB);
      if (load<i32>(scratch + META_CNT + (<usize>i << 3)) > FEW_PIXELS) full = true;
    }
    for (let blk = 0; full && blk < blocks; blk++) {
      const pa = wpack + <usize>(g * blocks + blk) * blockB;
      if (bits == 8) widenBlock(pa, K2, 8, wide);
      else if (bits == 4) widenBlock(pa, K2, 4, wide);
      else widenBlock(pa, K2, 2, wide);
      const rows = min(I8_MR, coutG - blk * I8_MR);
      for (let i = 0; i < tn; i++) {
        const meta = scratch + META_CNT + (<usize>i << 3);
        const cnt = load<i32>(meta);
        if (cnt <= FEW_PIXELS) continue;
        i8Tile4x8(K2, panels + <usize>i * panelB, wide, tile, 32);
        const youts = scratch + META_YOUTS + (<usize>i << 5);
        for (let r = 0; r < rows; r++) {
          const oc = blk * I8_MR + r;
          const row = tile + (<usize>r << 5);
          if (load<i32>(meta, 4) != 0) {
            epilogueRun(ctrl, row, 4, cnt, g * coutG + oc, y, <usize>load<u32>(youts) + <usize>oc * <usize>P, 1);
          } else {
            for (let jj = 0; jj < cnt; jj++)
              epilogueRun(ctrl, row + (<usize>jj << 2), 4, 1, g * coutG + oc, y, <usize>load<u32>(youts + (<usize>jj << 2)) + <usize>oc * <usize>P, 1);
          }
        }
      }
    }
    // tiles of a few pixels (a linear layer at batch 1): channels in the lanes, one pixel at a time, two
    // blocks per pass (the second may be a repeat), straight from the packed weights
    for (let i = 0; i < tn; i++) {
      const cnt = load<i32>(scratch + META_CNT + (<usize>i << 3));
      if (cnt > FEW_PIXELS) continue;
      const panel = panels + <usize>i * panelB, youts = scratch + META_YOUTS + (<usize>i << 5);
      for (let blk = 0; blk < blocks; blk += 2) {
        const pa = wpack + <usize>(g * blocks + blk) * blockB;
        const rows = min(2 * I8_MR, coutG - blk * I8_MR);
        for (let jj = 0; jj < cnt; jj++) {
          // a constant width per call site, so the inlined widening has no branches
          const px = panel + (<usize>jj << 2), pb: usize = blk + 1 < blocks ? blockB : 0;
          if (bits == 8) i8Pixel8(K2, px, pa, pb, 8, tile);
          else if (bits == 4) i8Pixel8(K2, px, pa, pb, 4, tile);
          else i8Pixel8(K2, px, pa, pb, 2, tile);
          const yo = <usize>load<u32>(youts + (<usize>jj << 2));
          for (let r = 0; r < rows; r++) {
            const oc = blk * I8_MR + r;
            epilogueRun(ctrl, tile + (<usize>r << 2), 4, 1, g * coutG + oc, y, yo + <usize>oc * <usize>P, 1);
          }
        }
      }
    }
    t += tn;
  }
}

// ---- small integer ops --------------------------------------------------------------------------------------

/** acc[p] = sum over hw of (x[p, :] - z), planes [p0, p1). */
function sumPlanes(x: usize, isI8: bool, z: i32, hw: i32, acc: usize, p0: i32, p1: i32): void {
  for (let p = p0; p < p1; p++) {
    const src = x + <usize>p * <usize>hw;
    let v = i32x4.splat(0);
    let i = 0;
    // 16 codes -> 8 pairwise i16 sums -> 4 i32 sums
    for (; i + 16 <= hw; i += 16) {
      const c = v128.load(src + <usize>i);
      const h = isI8 ? i16x8.extadd_pairwise_i8x16_s(c) : i16x8.extadd_pairwise_i8x16_u(c);
      v = i32x4.add(v, i32x4.extadd_pairwise_i16x8_s(h));
    }
    let s = i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
    for (; i < hw; i++) s += code(src + <usize>i, isI8);
    store<i32>(acc + (<usize>p << 2), s - hw * z);
  }
}

/** Max pool over codes, planes [p0, p1); an empty window writes the lowest code. */
function maxPoolPlanes(ctrl: usize, p0: i32, p1: i32): void {
  const x = argP(ctrl, 0), y = argP(ctrl, 1), isI8 = argI(ctrl, 2) != 0;
  const inH = argI(ctrl, 4), inW = argI(ctrl, 5), kH = argI(ctrl, 6), kW = argI(ctrl, 7), sH = argI(ctrl, 8), sW = argI(ctrl, 9);
  const pT = argI(ctrl, 10), pL = argI(ctrl, 11), dH = argI(ctrl, 12), dW = argI(ctrl, 13), outH = argI(ctrl, 14), outW = argI(ctrl, 15);
  const lowest = isI8 ? -128 : 0;
  for (let p = p0; p < p1; p++) {
    const xp = x + <usize>p * <usize>inH * <usize>inW;
    const yp = y + <usize>p * <usize>outH * <usize>outW;
    for (let oy = 0; oy < outH; oy++) {
      // rows of the window inside the input
      const ky0 = firstTap(oy, sH, pT, dH), ky1 = endTap(oy, sH, pT, dH, kH, inH);
      for (let ox = 0; ox < outW; ox++) {
        const kx0 = firstTap(ox, sW, pL, dW), kx1 = endTap(ox, sW, pL, dW, kW, inW);
        let best = lowest;
        for (let ky = ky0; ky < ky1; ky++) {
          const row = xp + <usize>(oy * sH - pT + ky * dH) * <usize>inW;
          for (let kx = kx0; kx < kx1; kx++) best = max(best, code(row + <usize>(ox * sW - pL + kx * dW), isI8));
        }
        store<u8>(yp + <usize>(oy * outW + ox), <u8>best);
      }
    }
  }
}

/** y = clamp(((a - aZ) aM + (b - bZ) bM + 2^(s-1)) >> s + yZ, lo, hi) for elements [i0, i1). */
function addRange(ctrl: usize, i0: i32, i1: i32): void {
  const a = argP(ctrl, 1), aI8 = argI(ctrl, 2) != 0, aZ = <i64>argI(ctrl, 3), aM = <i64>argI(ctrl, 4);
  const b = argP(ctrl, 5), bI8 = argI(ctrl, 6) != 0, bZ = <i64>argI(ctrl, 7), bM = <i64>argI(ctrl, 8);
  const s = <i64>argI(ctrl, 9), yZ = <i64>argI(ctrl, 10), qlo = <i64>argI(ctrl, 11), qhi = <i64>argI(ctrl, 12);
  const y = argP(ctrl, 13);
  const rnd = <i64>1 << (s - 1);
  for (let i = i0; i < i1; i++) {
    const av = <i64>code(a + <usize>i, aI8) - aZ, bv = <i64>code(b + <usize>i, bI8) - bZ;
    let q = ((av * aM + bv * bM + rnd) >> s) + yZ;
    q = q < qlo ? qlo : q > qhi ? qhi : q;
    store<u8>(y + <usize>i, <u8>q);
  }
}

// ---- jobs ---------------------------------------------------------------------------------------------------

/** Unit u (of U) of int8 job `job` on thread t. */
export function int8Job(job: i32, ctrl: usize, t: i32, u: i32, U: i32): void {
  switch (job) {
    case J_I8_PACK: {
      const G = argI(ctrl, I_G), blocks = (argI(ctrl, I_OUTC) / G + I8_MR - 1) / I8_MR;
      packWeights(ctrl, lo(G * blocks, u, U), hi(G * blocks, u, U));
      break;
    }
    case J_I8_PREP: {
      const G = argI(ctrl, I_G), planes = argI(ctrl, I_N) * G * ((argI(ctrl, I_INC) / G + 1) >> 1);
      prepInput(ctrl, lo(planes, u, U), hi(planes, u, U), u);
      break;
    }
    case J_I8_CONV: {
      const PP = argI(ctrl, I_N) * argI(ctrl, I_OUTH) * argI(ctrl, I_OUTW);
      const tiles = argI(ctrl, I_G) * ((PP + I8_NR - 1) / I8_NR);
      convTiles(ctrl, lo(tiles, u, U), hi(tiles, u, U), scratchOf(ctrl, t));
      break;
    }
    case J_I8_REQUANT: {
      // args: acc, n, c, hw, y
      const acc = argP(ctrl, 0), n = argI(ctrl, 1), c = argI(ctrl, 2), hw = argI(ctrl, 3), y = argP(ctrl, 4);
      if (arrV(ctrl, E_KIND) == K_BITS) {
        bitsPixels(ctrl, acc, c, hw, y, lo(n * hw, u, U), hi(n * hw, u, U));
      } else {
        const p1 = hi(n * c, u, U);
        for (let p = lo(n * c, u, U); p < p1; p++)
          epilogueRun(ctrl, acc + ((<usize>p * <usize>hw) << 2), 4, hw, p % c, y, <usize>p * <usize>hw, 1);
      }
      break;
    }
    case J_I8_SUM: {
      // args: x, isI8, z, planes, hw, acc
      const planes = argI(ctrl, 3);
      sumPlanes(argP(ctrl, 0), argI(ctrl, 1) != 0, argI(ctrl, 2), argI(ctrl, 4), argP(ctrl, 5), lo(planes, u, U), hi(planes, u, U));
      break;
    }
    case J_I8_MAXPOOL: {
      const planes = argI(ctrl, 3);
      maxPoolPlanes(ctrl, lo(planes, u, U), hi(planes, u, U));
      break;
    }
    case J_I8_ADD: {
      const n = argI(ctrl, 0);
      addRange(ctrl, shareStart(n, u, U, 16), shareStart(n, u + 1, U, 16));
      break;
    }
    case J_I8_WINO: {
      const items = argI(ctrl, I_WUNITS);
      winogradConvInt8(ctrl, lo(items, u, U), hi(items, u, U), scratchOf(ctrl, t));
      break;
    }
    case J_I8_WINO4: {
      const items = argI(ctrl, I_WUNITS);
      winograd4ConvInt8(ctrl, lo(items, u, U), hi(items, u, U), scratchOf(ctrl, t));
      break;
    }
    default:
      break;
  }
}

/** Bytes of thread scratch a convolution with K2 pair taps needs. */
export function int8ConvScratch(K2: i32): usize {
  return PANEL_AT + (<usize>K2 << 4) + (<usize>K2 << 5);
}
