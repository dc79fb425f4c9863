// Exact integer Winograd F(4x4, 3x3) for convInt8 (see src/kernels/ref/int8.ts int8Winograd4Applies), over the
// input channels in chunks of at most 112: 36 multiplies per 4 x 4 output tile and input channel, against
// 64 for F(2x2, 3x3) and 144 direct. This file has its transforms; the bands, layouts, GEMMs and epilogue are
// F(2x2, 3x3)'s (assembly/int8-winograd.ts winogradConvInt8 with m = 4).
// Points 0, +-1, +-2, infinity (Lavin & Gray 2016):
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G   = diag(1/s) G', s = (4, 6, 6, 24, 24, 1), G' = [1 0 0; -1 -1 -1; -1 1 -1; 1 2 4; 1 -2 4; 0 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
// In integers:
//   V  = B^T d B     of the 6 x 6 input tile d = (x - xZero), zero-padded: |d| <= 255, |V| <= 100 * 255 (i16)
//   U' = G' g G'^T   |U'| <= 49 * 128 (i16); the true U is U'[i][j] / (s_i s_j)
//   M' = sum over the input channels of U' . V (pmaddwd pairs, exact; the sums may wrap in i32)
//   Y  = (A^T F) M' (F A) with F = diag(24 / s) = diag(6, 4, 4, 1, 1, 24): Y = 576 acc in the integers,
//        where acc is the direct accumulator, so also modulo 2^32 whatever wrapped on the way.
// 576 = 2^6 * 9: Y times 9^-1 (mod 2^32) is 64 acc modulo 2^32, which is 64 acc itself when |acc| < 2^25 (as
// |acc| <= inC * 9 * 255 * 128 guarantees for inC <= 114); an arithmetic shift right by 6 then gives acc.
// Wider layers sum the accumulators of chunks of 112 input channels (exact in i32 as for F(2x2): |acc| < 2^31 up
// to 1827 channels; the JS side uses F(4x4) up to 128, where it is faster). The epilogue then runs on the same int32 accumulators as the direct kernel: bit-identical.
//
// Layouts (u32 words holding the i16 pair of channels 2j, 2j+1), as F(2x2, 3x3) with 36 planes:
//   U'  one block of 4 output channels (transformBlock6), thread scratch: [xi][pair j][4]
//   xq  the padded (x - xZero) input of the direct kernel, one phase, Hp >= 4 TH + 2, Wq >= 4 TW4 + 4
//   V   thread scratch: [xi][panel of 8 tiles][pair j][8]
// Tiles are numbered per image as (ty, tx), tx over TW4 = TW rounded up to 4; 4 horizontally adjacent tiles
// are transformed together, one per lane.

import { storeRow8 } from './winograd';
import { widenPairs } from './int8';

/** 9^-1 modulo 2^32. */
const INV9: i32 = 954437177;

// ---- weights ------------------------------------------------------------------------------------------------

/** G' times the column (a, b, c), row r (i16 lanes; |result| <= 7 max|a, b, c|). */
// @ts-ignore: decorator
@inline function gRow(r: i32, a: v128, b: v128, c: v128): v128 {
  if (r == 0) return a;
  if (r == 1) return i16x8.neg(i16x8.add(i16x8.add(a, b), c));
  if (r == 2) return i16x8.sub(i16x8.sub(b, a), c);
  if (r == 3) return i16x8.add(i16x8.add(a, i16x8.shl(b, 1)), i16x8.shl(c, 2));
  if (r == 4) return i16x8.add(i16x8.sub(a, i16x8.shl(b, 1)), i16x8.shl(c, 2));
  return c;
}

/**
 * U' = G' g G'^T of one block of 4 output channels into u [36][pairs][4] (u32: i16 pairs), from the packed
 * weights pa (assembly/int8.ts layout), each tap's 4 channels' pairs widened to one i16x8 vector.
 */
// @ts-ignore: decorator
@inline export function transformBlock6(pa: usize, pairs: i32, bits: i32, u: usize, uXi: usize): void {
  const kB = <usize>bits; // bytes per pair tap
  for (let j = 0; j < pairs; j++) {
    const p = pa + <usize>(j * 9) * kB;
    const g00 = widenPairs(p, bits), g01 = widenPairs(p + kB, bits), g02 = widenPairs(p + 2 * kB, bits);
    const g10 = widenPairs(p + 3 * kB, bits), g11 = widenPairs(p + 4 * kB, bits), g12 = widenPairs(p + 5 * kB, bits);
    const g20 = widenPairs(p + 6 * kB, bits), g21 = widenPairs(p + 7 * kB, bits), g22 = widenPairs(p + 8 * kB, bits);
    const d = u + (<usize>j << 4);
    for (let r = 0; r < 6; r++) {
      // row r of G' g, then that row times G'^T
      const a = gRow(r, g00, g10, g20), b = gRow(r, g01, g11, g21), c = gRow(r, g02, g12, g22);
      const q = d + <usize>(6 * r) * uXi;
      for (let k = 0; k < 6; k++) v128.store(q + <usize>k * uXi, gRow(k, a, b, c));
    }
  }
}

// ---- transforms -----------------------------------------------------------------------------------------

/** B^T (c0 .. c5) in i16 lanes: the 6 results to p, p + step, ... */
// @ts-ignore: decorator
@inline function bRows(p: usize, step: usize, c0: v128, c1: v128, c2: v128, c3: v128, c4: v128, c5: v128): void {
  const t1 = i16x8.sub(c4, i16x8.shl(c2, 2)), t2 = i16x8.sub(c3, i16x8.shl(c1, 2));
  const t3 = i16x8.sub(c4, c2), t4 = i16x8.shl(i16x8.sub(c3, c1), 1);
  v128.store(p, i16x8.add(i16x8.sub(i16x8.shl(c0, 2), i16x8.add(i16x8.shl(c2, 2), c2)), c4));
  v128.store(p + step, i16x8.add(t1, t2));
  v128.store(p + 2 * step, i16x8.sub(t1, t2));
  v128.store(p + 3 * step, i16x8.add(t3, t4));
  v128.store(p + 4 * step, i16x8.sub(t3, t4));
  v128.store(p + 5 * step, i16x8.add(i16x8.sub(i16x8.shl(c1, 2), i16x8.add(i16x8.shl(c3, 2), c3)), c5));
}

/**
 * V = B^T d B for 4 horizontally adjacent tiles (lanes) of one channel pair: their 6 x 6 windows start at
 * src (u32 words, row stride rowB, tile k at column 4k). Writes xi = 6 * row + column at dst + xi * xiB;
 * tmp: 36 vectors between the two passes.
 */
// @ts-ignore: decorator
@inline export function inputTransform6(src: usize, rowB: usize, dst: usize, xiB: usize, tmp: usize): void {
  for (let i = 0; i < 6; i++) {
    const s = src + <usize>i * rowB;
    // columns 4k .. 4k + 3 of tile k in l_k; column j of every tile = lane j of each l_k (a 4 x 4 transpose)
    const l0 = v128.load(s), l1 = v128.load(s, 16), l2 = v128.load(s, 32), l3 = v128.load(s, 48), l4 = v128.load(s, 64);
    const a = v128.shuffle<u32>(l0, l1, 0, 4, 1, 5), b = v128.shuffle<u32>(l2, l3, 0, 4, 1, 5);
    const c = v128.shuffle<u32>(l0, l1, 2, 6, 3, 7), e = v128.shuffle<u32>(l2, l3, 2, 6, 3, 7);
    const c0 = v128.shuffle<u64>(a, b, 0, 2), c1 = v128.shuffle<u64>(a, b, 1, 3);
    const c2 = v128.shuffle<u64>(c, e, 0, 2), c3 = v128.shuffle<u64>(c, e, 1, 3);
    // columns 4 and 5 of tile k are columns 0 and 1 of tile k + 1
    const c4 = v128.shuffle<u32>(c0, l4, 1, 2, 3, 4), c5 = v128.shuffle<u32>(c1, l4, 1, 2, 3, 5);
    // row i of d B, i.e. (B^T applied along the row), into tmp[i][0..5]
    bRows(tmp + (<usize>(6 * i) << 4), 16, c0, c1, c2, c3, c4, c5);
  }
  for (let j = 0; j < 6; j++) {
    const t = tmp + (<usize>j << 4);
    bRows(dst + <usize>j * xiB, 6 * xiB, v128.load(t), v128.load(t, 96), v128.load(t, 192), v128.load(t, 288), v128.load(t, 384), v128.load(t, 480));
  }
}

/** (A^T F) (m0 .. m5) in i32 lanes: rows 6 m0 + a + c, b + 2d, a + 4c, b + 8d + 24 m5 (a, b = 4 (m1 +- m2), c, d = m3 +- m4). */
// @ts-ignore: decorator
@inline function aRows(p: usize, step: usize, m0: v128, m1: v128, m2: v128, m3: v128, m4: v128, m5: v128): void {
  const a = i32x4.shl(i32x4.add(m1, m2), 2), b = i32x4.shl(i32x4.sub(m1, m2), 2);
  const c = i32x4.add(m3, m4), d = i32x4.sub(m3, m4);
  v128.store(p, i32x4.add(i32x4.add(i32x4.add(i32x4.shl(m0, 2), i32x4.shl(m0, 1)), a), c));
  v128.store(p + step, i32x4.add(b, i32x4.shl(d, 1)));
  v128.store(p + 2 * step, i32x4.add(a, i32x4.shl(c, 2)));
  v128.store(p + 3 * step, i32x4.add(i32x4.add(b, i32x4.shl(d, 3)), i32x4.add(i32x4.shl(m5, 4), i32x4.shl(m5, 3))));
}

/** acc from y = 576 acc modulo 2^32: y 9^-1 = 64 acc modulo 2^32, which is exact in an i32 while |acc| < 2^25. */
// @ts-ignore: decorator
@inline function recover(y: v128): v128 {
  return i32x4.shr_s(i32x4.mul(y, i32x4.splat(INV9)), 6);
}

/** The first `cols` (<= 8) i32 lanes of a, b to p, or (add) added to those at p. */
// @ts-ignore: decorator
@inline function putRow8(p: usize, a: v128, b: v128, cols: i32, add: bool): void {
  // lanes past cols may read the next row or scratch; they are never stored
  if (add) storeRow8(p, i32x4.add(a, v128.load(p)), i32x4.add(b, v128.load(p, 16)), cols);
  else storeRow8(p, a, b, cols);
}

/**
 * The exact accumulators of 4 horizontally adjacent tiles of one output channel (m at mp + xi * mXi, lanes =
 * the tiles): the 4 x 16 outputs at o (row stride rowB), clipped to `cols` columns and `rows` rows; with add,
 * added to those there (the sums of the input-channel chunks). tmp: 28 vectors between the two passes.
 */
// @ts-ignore: decorator
@inline export function outputTransform6(mp: usize, mXi: usize, o: usize, rowB: usize, cols: i32, rows: i32, tmp: usize, add: bool): void {
  // t = (A^T F) m: for each column j of m, tmp[k][j]
  for (let j = 0; j < 6; j++) {
    const q = mp + <usize>j * mXi, s = <usize>6 * mXi;
    aRows(tmp + (<usize>j << 4), 96, v128.load(q), v128.load(q + s), v128.load(q + 2 * s), v128.load(q + 3 * s), v128.load(q + 4 * s), v128.load(q + 5 * s));
  }
  // y = t (F A), row by row of the output tile; then the tiles' 4 columns interleaved: pixels ox .. ox + 15
  const out = tmp + 384;
  for (let k = 0; k < rows && k < 4; k++) {
    const t = tmp + <usize>(96 * k);
    aRows(out, 16, v128.load(t), v128.load(t, 16), v128.load(t, 32), v128.load(t, 48), v128.load(t, 64), v128.load(t, 80));
    const y0 = recover(v128.load(out)), y1 = recover(v128.load(out, 16)), y2 = recover(v128.load(out, 32)), y3 = recover(v128.load(out, 48));
    const a = v128.shuffle<u32>(y0, y1, 0, 4, 1, 5), b = v128.shuffle<u32>(y2, y3, 0, 4, 1, 5);
    const c = v128.shuffle<u32>(y0, y1, 2, 6, 3, 7), e = v128.shuffle<u32>(y2, y3, 2, 6, 3, 7);
    const p = o + <usize>k * rowB;
    putRow8(p, v128.shuffle<u64>(a, b, 0, 2), v128.shuffle<u64>(a, b, 1, 3), cols, add);
    if (cols > 8) putRow8(p + 32, v128.shuffle<u64>(c, e, 0, 2), v128.shuffle<u64>(c, e, 1, 3), cols - 8, add);
  }
}
