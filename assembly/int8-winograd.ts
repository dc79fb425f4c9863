// Exact integer Winograd F(2x2, 3x3) for convInt8 (3x3, stride 1, undilated, groups 1; see
// src/kernels/ref/int8.ts int8WinogradApplies): the output of every 2 x 2 tile is A^T [U' . V] A / 4 with
//   V  = B^T d B     of the tile's 4 x 4 input d = (x - xZero), zero-padded: |d| <= 255, so |V| <= 1020 (i16)
//   U' = G' g G'^T   with G' = 2G = [[2,0,0],[1,1,1],[1,-1,1],[0,0,2]] (integers): U' = 4U, |U'| <= 9*128 (i16)
// The transforms are integer-linear, so A^T [U' . V] A = 4 * (the direct accumulator) exactly in the
// integers, and also modulo 2^32: the elementwise products (pmaddwd, exact) and their sums over the input
// channels may wrap in i32 without harm. 4 * acc itself fits an i32 when |acc| < 2^29, which holds for
// inC <= 1827 (|acc| <= inC * 9 * 255 * 128); then an arithmetic shift right by 2 gives acc exactly and the
// epilogue runs on the same int32 accumulators as the direct kernel: bit-identical results.
//
// The 16 products per tile and input channel (36 direct) are 16 GEMMs, one per position xi of the 4 x 4
// transformed tile, with input channels paired as i16 (like the direct kernel) for i32x4.dot_i16x8_s:
//   M[xi] (outC x tiles) = U'[xi] (outC x pairs) * V[xi] (pairs x tiles)
// Layouts (u32 words holding the i16 pair of channels 2j, 2j+1):
//   U'  the transformed weights of one block of 4 output channels, made from the packed i8 weights per band
//       (transformBlock), thread scratch: [xi][pair j][4]
//   xq  the padded (x - xZero) input of the direct kernel (assembly/int8.ts prepInput), one phase, with
//       Hp >= 2*TH + 2 rows and Wq >= 2*TW4 + 2 columns so that whole 4 x 4 tiles can be read
//   V   thread scratch: [xi][panel of 8 tiles][pair j][8]
// Tiles are numbered per image as (ty, tx), tx over TW4 = TW rounded up to 4, so that every group of 4
// consecutive tiles lies in one tile row (the transforms run on 4 tiles in the lanes, as in the float
// assembly/winograd.ts); tiles past the image are computed and dropped.
// A unit is a band of R tile rows of one image and a share of the output-channel blocks (several shares
// only when there are too few bands for the threads). Per unit: input transform of the band into V, then per
// block of 4 output channels: its weight transform into U', the 16 GEMMs into M [xi][4][tiles] (register
// tiles of 4 channels x 8 tiles), the output transform into the band's accumulators O [4][rows][outW], and
// the epilogue on O.

import { argI, argP } from './layout';
import { inputTransform4, storeRow8 } from './winograd';
import { inputTransform6, transformBlock6, outputTransform6 } from './int8-winograd4';
import { i8Tile4x8, widenPairs, epilogueRun, I_WBITS, I_INC, I_OUTC, I_OUTH, I_OUTW, I_HP, I_WQ, I_XQ, I_W, I_Y, I_WR, I_WS } from './int8';

/** Input-channel pairs per chunk of F(4x4, 3x3): 112 channels, within its exact range (int8-winograd4.ts). */
const WINOGRAD4_CHUNK_PAIRS: i32 = 56;

/** Bytes between the xi planes of V and M beyond their contents (keeps the planes off one cache set). */
const XI_PAD: usize = 64;

// The helpers and the units below serve both tile sizes: m = 2 (this file's F(2x2, 3x3)) and m = 4
// (F(4x4, 3x3), whose transforms are in assembly/int8-winograd4.ts); (m + 2)^2 planes xi.

/** Tile columns of an output row of width outW, rounded up to 4. */
// @ts-ignore: decorator
@inline function tw4(outW: i32, m: i32): i32 {
  return ((((outW + m - 1) / m) + 3) >> 2) << 2;
}

/** Bytes of one xi plane of V for bands of R tile rows (pairs input channel pairs). */
// @ts-ignore: decorator
@inline function vPlane(R: i32, outW: i32, pairs: i32, m: i32): usize {
  const panels = (R * tw4(outW, m) + 7) >> 3;
  return (<usize>panels * <usize>pairs << 5) + XI_PAD;
}
/** Bytes of one xi plane of the block's transformed weights U'. */
// @ts-ignore: decorator
@inline function uPlane(pairs: i32): usize {
  return (<usize>pairs << 4) + XI_PAD;
}
/** Row stride (bytes) of M: the band's tiles rounded up to whole panels of 8. */
// (The scratch a unit uses, X * vPlane + X * (4 * mRow + XI_PAD) + 4 * mR * outW * 4 + X * uPlane + 36 * 16
// bytes with X = (m + 2)^2, is mirrored in src/kernels/wasm/int8.ts winogradScratchBytes.)
// @ts-ignore: decorator
@inline function mRow(R: i32, outW: i32, m: i32): usize {
  return <usize>(((R * tw4(outW, m) + 7) >> 3) << 5);
}

// ---- weights ------------------------------------------------------------------------------------------------

/**
 * U' = G' g G'^T of one block of 4 output channels into u [16][pairs][4] (u32: i16 pairs), from the packed
 * weights pa (assembly/int8.ts layout [pair tap k = 9j + t][4] of pairs, `bits` per weight). Each tap's
 * 4 channels' pairs widen to one i16x8 vector in exactly U's lane order, so the transform is 8-lane i16
 * arithmetic (|U'| <= 9 * 128 fits). Done per band and block: it costs under 1/8 of the block's 16 GEMMs on
 * one panel of 8 tiles, and it keeps the weights packed in memory.
 */
// @ts-ignore: decorator
@inline function transformBlock(pa: usize, pairs: i32, bits: i32, u: usize, uXi: usize): void {
  const kB = <usize>bits; // bytes per pair tap
  for (let j = 0; j < pairs; j++) {
    const p = pa + <usize>(j * 9) * kB;
    const g00 = widenPairs(p, bits), g01 = widenPairs(p + kB, bits), g02 = widenPairs(p + 2 * kB, bits);
    const g10 = widenPairs(p + 3 * kB, bits), g11 = widenPairs(p + 4 * kB, bits), g12 = widenPairs(p + 5 * kB, bits);
    const g20 = widenPairs(p + 6 * kB, bits), g21 = widenPairs(p + 7 * kB, bits), g22 = widenPairs(p + 8 * kB, bits);
    // s = G' g (4 x 3), then each row (a, b, c) times G'^T: (2a, a + b + c, a - b + c, 2c)
    const d = u + (<usize>j << 4);
    transformRow(d, uXi, 0, i16x8.add(g00, g00), i16x8.add(g01, g01), i16x8.add(g02, g02));
    transformRow(d, uXi, 1, i16x8.add(i16x8.add(g00, g10), g20), i16x8.add(i16x8.add(g01, g11), g21), i16x8.add(i16x8.add(g02, g12), g22));
    transformRow(d, uXi, 2, i16x8.add(i16x8.sub(g00, g10), g20), i16x8.add(i16x8.sub(g01, g11), g21), i16x8.add(i16x8.sub(g02, g12), g22));
    transformRow(d, uXi, 3, i16x8.add(g20, g20), i16x8.add(g21, g21), i16x8.add(g22, g22));
  }
}

// @ts-ignore: decorator
@inline function transformRow(d: usize, uXi: usize, r: i32, a: v128, b: v128, c: v128): void {
  const p = d + <usize>(4 * r) * uXi;
  v128.store(p, i16x8.add(a, a));
  v128.store(p + uXi, i16x8.add(i16x8.add(a, b), c));
  v128.store(p + 2 * uXi, i16x8.add(i16x8.sub(a, b), c));
  v128.store(p + 3 * uXi, i16x8.add(c, c));
}

// ---- transforms -----------------------------------------------------------------------------------------


/**
 * (A^T m A) >> 2 for 4 horizontally adjacent tiles of one output channel (m at mp + xi * mXi, lanes = the
 * tiles): the exact accumulators. Writes the 2 x 8 outputs at o (row stride rowB), clipped to `cols`
 * columns and `rows` rows.
 */
// @ts-ignore: decorator
@inline function outputTransform4(mp: usize, mXi: usize, o: usize, rowB: usize, cols: i32, rows: i32): void {
  const m0 = v128.load(mp), m1 = v128.load(mp + mXi), m2 = v128.load(mp + 2 * mXi), m3 = v128.load(mp + 3 * mXi);
  const m4 = v128.load(mp + 4 * mXi), m5 = v128.load(mp + 5 * mXi), m6 = v128.load(mp + 6 * mXi), m7 = v128.load(mp + 7 * mXi);
  const m8 = v128.load(mp + 8 * mXi), m9 = v128.load(mp + 9 * mXi), m10 = v128.load(mp + 10 * mXi), m11 = v128.load(mp + 11 * mXi);
  const m12 = v128.load(mp + 12 * mXi), m13 = v128.load(mp + 13 * mXi), m14 = v128.load(mp + 14 * mXi), m15 = v128.load(mp + 15 * mXi);
  // t = A^T m: t0 = row0 + row1 + row2, t1 = row1 - row2 - row3 (per column)
  const t00 = i32x4.add(i32x4.add(m0, m4), m8), t01 = i32x4.add(i32x4.add(m1, m5), m9);
  const t02 = i32x4.add(i32x4.add(m2, m6), m10), t03 = i32x4.add(i32x4.add(m3, m7), m11);
  const t10 = i32x4.sub(i32x4.sub(m4, m8), m12), t11 = i32x4.sub(i32x4.sub(m5, m9), m13);
  const t12 = i32x4.sub(i32x4.sub(m6, m10), m14), t13 = i32x4.sub(i32x4.sub(m7, m11), m15);
  // y = t A, then / 4 (exact: y is 4 * acc)
  const y00 = i32x4.shr_s(i32x4.add(i32x4.add(t00, t01), t02), 2);
  const y01 = i32x4.shr_s(i32x4.sub(i32x4.sub(t01, t02), t03), 2);
  const y10 = i32x4.shr_s(i32x4.add(i32x4.add(t10, t11), t12), 2);
  const y11 = i32x4.shr_s(i32x4.sub(i32x4.sub(t11, t12), t13), 2);
  // interleave the tiles' two columns: pixels ox .. ox + 7
  storeRow8(o, v128.shuffle<u32>(y00, y01, 0, 4, 1, 5), v128.shuffle<u32>(y00, y01, 2, 6, 3, 7), cols);
  if (rows > 1) storeRow8(o + rowB, v128.shuffle<u32>(y10, y11, 0, 4, 1, 5), v128.shuffle<u32>(y10, y11, 2, 6, 3, 7), cols);
}


// ---- GEMM -----------------------------------------------------------------------------------------------


// ---- units ----------------------------------------------------------------------------------------------

/** Units [i0, i1) (unit = band * S + share) of the Winograd convolution F(2x2, 3x3). */
export function winogradConvInt8(ctrl: usize, i0: i32, i1: i32, scratch: usize): void {
  winogradUnits(ctrl, i0, i1, scratch, 2);
}

/** Units [i0, i1) of the Winograd convolution F(4x4, 3x3). */
export function winograd4ConvInt8(ctrl: usize, i0: i32, i1: i32, scratch: usize): void {
  winogradUnits(ctrl, i0, i1, scratch, 4);
}

/**
 * Units [i0, i1) (unit = band * S + share) of the Winograd convolution F(m x m, 3x3), m = 2 or 4: inlined into
 * one function per m, so that each is compiled without the other's branches.
 */
// @ts-ignore: decorator
@inline function winogradUnits(ctrl: usize, i0: i32, i1: i32, scratch: usize, m: i32): void {
  const inC = argI(ctrl, I_INC), outC = argI(ctrl, I_OUTC), outH = argI(ctrl, I_OUTH), outW = argI(ctrl, I_OUTW);
  const Hp = argI(ctrl, I_HP), Wq = argI(ctrl, I_WQ), R = argI(ctrl, I_WR), S = argI(ctrl, I_WS);
  const xq = argP(ctrl, I_XQ), U = argP(ctrl, I_W), y = argP(ctrl, I_Y);
  const pairs = (inC + 1) >> 1, blocks = (outC + 3) >> 2;
  const X = (m + 2) * (m + 2);
  const TH = (outH + m - 1) / m, TW4 = tw4(outW, m);
  const bandsPerImage = (TH + R - 1) / R;
  const vXi = vPlane(R, outW, pairs, m), ldm = mRow(R, outW, m), mXi = (ldm << 2) + XI_PAD;
  const oPlane = (<usize>(m * R) * <usize>outW) << 2; // bytes of O per output channel
  const uXi = uPlane(pairs);
  const V = scratch, M = V + <usize>X * vXi, O = M + <usize>X * mXi, Ub = O + 4 * oPlane, tmp = Ub + <usize>X * uXi;
  const bits = argI(ctrl, I_WBITS);
  const blockB = <usize>pairs * 9 * <usize>bits; // bytes of one block of packed weights
  const planeB = (<usize>Hp * <usize>Wq) << 2;
  const rowB = <usize>Wq << 2;
  const P = <usize>outH * <usize>outW;
  for (let item = i0; item < i1; item++) {
    const band = item / S, share = item % S;
    const b = band / bandsPerImage, ty0 = (band % bandsPerImage) * R;
    const rowsT = min(R, TH - ty0), nt = rowsT * TW4;
    const panels = (nt + 7) >> 3;
    // 1. input transform of the band's tiles
    // (pairs inner: the X rows of V written per group of tiles are consecutive 32-byte chunks)
    for (let ty = 0; ty < rowsT; ty++) {
      const row = xq + <usize>(b * pairs) * planeB + <usize>(m * (ty0 + ty)) * rowB;
      for (let tx = 0; tx < TW4; tx += 4) {
        const q = ty * TW4 + tx;
        const src = row + (<usize>(m * tx) << 2);
        const dst = V + ((<usize>(q >> 3) * <usize>pairs) << 5) + (<usize>(q & 7) << 2);
        if (m == 4) for (let j = 0; j < pairs; j++) inputTransform6(src + <usize>j * planeB, rowB, dst + (<usize>j << 5), vXi, tmp);
        else for (let j = 0; j < pairs; j++) inputTransform4<i16>(src + <usize>j * planeB, rowB, dst + (<usize>j << 5), vXi);
      }
    }
    // 2. per block of 4 output channels: X GEMMs, output transform, epilogue
    const blk0 = (share * blocks) / S, blk1 = ((share + 1) * blocks) / S;
    const rowsOut = min(m * rowsT, outH - m * ty0);
    for (let blk = blk0; blk < blk1; blk++) {
      const pa = U + <usize>blk * blockB; // a constant width per call site: the inlined widening has no branches
      if (m == 4) {
        if (bits == 8) transformBlock6(pa, pairs, 8, Ub, uXi);
        else if (bits == 4) transformBlock6(pa, pairs, 4, Ub, uXi);
        else transformBlock6(pa, pairs, 2, Ub, uXi);
      } else {
        if (bits == 8) transformBlock(pa, pairs, 8, Ub, uXi);
        else if (bits == 4) transformBlock(pa, pairs, 4, Ub, uXi);
        else transformBlock(pa, pairs, 2, Ub, uXi);
      }
      const rows = min(4, outC - blk * 4);
      // F(4x4): chunks of input channels, each exact on its own, summed in O (see int8-winograd4.ts)
      const chunk = m == 4 ? WINOGRAD4_CHUNK_PAIRS : pairs;
      for (let c0 = 0; c0 < pairs; c0 += chunk) {
        const kc = min(chunk, pairs - c0);
        for (let xi = 0; xi < X; xi++) {
          const pu = Ub + <usize>xi * uXi + (<usize>c0 << 4);
          const vx = V + <usize>xi * vXi + (<usize>c0 << 5), mx = M + <usize>xi * mXi;
          for (let p = 0; p < panels; p++) i8Tile4x8(kc, vx + ((<usize>p * <usize>pairs) << 5), pu, mx + (<usize>p << 5), ldm);
        }
        for (let i = 0; i < rows; i++) {
          const mi = M + <usize>i * ldm, oi = O + <usize>i * oPlane;
          for (let ty = 0; ty < rowsT; ty++) {
            const oy = m * ty;
            const orow = oi + ((<usize>oy * <usize>outW) << 2);
            for (let tx = 0; tx < TW4; tx += 4) {
              const ox = m * tx;
              if (ox >= outW) break;
              const at = mi + (<usize>(ty * TW4 + tx) << 2);
              // (add as a constant per call site: the first chunk's transform has no loads of O)
              if (m == 4 && c0 == 0) outputTransform6(at, mXi, orow + (<usize>ox << 2), <usize>outW << 2, outW - ox, rowsOut - oy, tmp, false);
              else if (m == 4) outputTransform6(at, mXi, orow + (<usize>ox << 2), <usize>outW << 2, outW - ox, rowsOut - oy, tmp, true);
              else outputTransform4(at, mXi, orow + (<usize>ox << 2), <usize>outW << 2, outW - ox, rowsOut - oy);
            }
          }
          // after the last chunk, the channel's epilogue while its accumulators are in L1
          if (c0 + kc == pairs) {
            const oc = blk * 4 + i;
            epilogueRun(ctrl, oi, 4, rowsOut * outW, oc, y, <usize>(b * outC + oc) * P + <usize>(m * ty0) * <usize>outW, 1);
          }
        }
      }
    }
  }
}
