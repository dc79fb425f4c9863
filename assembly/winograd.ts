// Winograd F(2x2, 3x3) for 3x3, stride-1, undilated convolutions (Lavin & Gray, 2016): every 2x2 output
// tile is A^T [ (G g G^T) . (B^T d B) ] A for its 4x4 input tile d, so the 36 multiplies per tile and
// channel pair become 16, done as 16 GEMMs (one per position xi of the 4x4 transformed tile):
//   M[xi] (outC x tiles) = U[xi] (outC x inC) * V[xi] (inC x tiles)
// The transforms only add, subtract and halve, which keeps the error close to the direct convolution's.
// Work is cut into blocks of TB tiles (a unit); per block, on one thread:
//   1. input transform of the block's tiles, written straight into the GEMM's packed B-panel layout
//      V[xi][tile panel of 8][inC][8] (thread scratch),
//   2. 16 x (outC/mr) x (TB/8) calls of the mr x 8 microkernel into M[xi][oc][TB] (thread scratch), with
//      mr = 5 or 4 output channels per tile (A_MR, chosen like the direct convolution's),
//   3. output transform (+ bias) into y.
// Tiles are numbered per image as (ty, tx) with tx running over TW4 = TW rounded up to 4, so that every
// group of 4 consecutive tiles lies in one tile row (SIMD over 4 tiles); tiles past the image are dropped.
// The input transforms read x itself: per run of tiles of one image and per channel, the input rows the run
// reads are copied with their zero padding into a strip (thread scratch, cache-resident), which is
// transformed (a padded copy of the whole input, made first, went through memory; strips of 4 rows per tile
// row copied most rows twice and were slower at 16 x 16).
//
// The weight gradient uses the same tiles (F(3x3, 2x2), the transpose of the forward algorithm):
//   dW = G^T [ sum over tiles of (A dY_tile A^T) . (B^T x_tile B) ] G
// i.e. 16 GEMMs over the tiles, M[xi] (inC x outC) += V[xi] (inC x tiles) D[xi] (tiles x outC), run by the
// weight-gradient microkernel with V read in place (4 channel rows) and D written by its transform
// straight into packed panels of 8 output channels: no packing pass. The transform takes 4 output channels
// at a time and transposes them, so that a tile's values go to its panel row as whole vectors.

import { gemm_mk_4x8, gemm_mk_5x8, wgrad_mk_4x8 } from './microkernels';
import { argI, argP } from './layout';
import { A_N, A_INC, A_INH, A_INW, A_PT, A_PL, A_OUTC, A_OUTH, A_OUTW, A_HP, A_WQ, A_X, A_XPAD, A_WPACK, A_BIAS, A_Y, A_AUX, A_MR, zeroF32, copyF32 } from './conv';

/**
 * Floats between the xi planes of a transformed buffer holding `rows` rows of `cols`: 16 floats more than
 * the plane, so that the 16 planes (written and read together) do not all map to the same L1 cache set.
 */
// @ts-ignore: decorator
@inline export function xiFloats(rows: i32, cols: i32): usize {
  return <usize>rows * <usize>cols + 16;
}

// @ts-ignore: decorator
@inline function tileCounts(outH: i32, outW: i32): i64 {
  const TH = (outH + 1) >> 1, TW = (outW + 1) >> 1;
  return (<i64>TH << 32) | <i64>(((TW + 3) >> 2) << 2);
}

/**
 * U[xi][oc panel][ic][mr] = (G g G^T)[xi] for output channels in panels [p0, p1) of mr channels, the xi
 * planes xiFloats apart (the 16 values of one weight are stored together: planes a power of two apart, as
 * 4-row panels of 64 or 512 channels make them, put all 16 in one cache set and ran ~2x slower).
 * flipped: g is the 180-degree rotation of w[ic][oc] (the input gradient run as a forward convolution).
 */
export function winogradWeights(w: usize, U: usize, p0: i32, p1: i32, inC: i32, outC: i32, flipped: bool, mr: i32): void {
  const panels = (outC + mr - 1) / mr;
  const xiStride = xiFloats(panels * mr, inC); // floats per xi
  for (let p = p0; p < p1; p++) {
    for (let ic = 0; ic < inC; ic++) {
      for (let i = 0; i < mr; i++) {
        const oc = p * mr + i;
        const dst = U + (((<usize>p * <usize>inC + <usize>ic) * <usize>mr + <usize>i) << 2);
        if (oc >= outC) {
          for (let xi = 0; xi < 16; xi++) store<f32>(dst + ((<usize>xi * xiStride) << 2), 0);
          continue;
        }
        const src = flipped ? w + ((<usize>(ic * outC + oc) * 9) << 2) : w + ((<usize>(oc * inC + ic) * 9) << 2);
        // g[r][c], rotated by 180 degrees when flipped
        let g00: f32, g01: f32, g02: f32, g10: f32, g11: f32, g12: f32, g20: f32, g21: f32, g22: f32;
        if (!flipped) {
          g00 = load<f32>(src, 0); g01 = load<f32>(src, 4); g02 = load<f32>(src, 8);
          g10 = load<f32>(src, 12); g11 = load<f32>(src, 16); g12 = load<f32>(src, 20);
          g20 = load<f32>(src, 24); g21 = load<f32>(src, 28); g22 = load<f32>(src, 32);
        } else {
          g00 = load<f32>(src, 32); g01 = load<f32>(src, 28); g02 = load<f32>(src, 24);
          g10 = load<f32>(src, 20); g11 = load<f32>(src, 16); g12 = load<f32>(src, 12);
          g20 = load<f32>(src, 8); g21 = load<f32>(src, 4); g22 = load<f32>(src, 0);
        }
        // s = G g (4 x 3)
        const s00 = g00, s01 = g01, s02 = g02;
        const s10 = (g00 + g10 + g20) * 0.5, s11 = (g01 + g11 + g21) * 0.5, s12 = (g02 + g12 + g22) * 0.5;
        const s20 = (g00 - g10 + g20) * 0.5, s21 = (g01 - g11 + g21) * 0.5, s22 = (g02 - g12 + g22) * 0.5;
        const s30 = g20, s31 = g21, s32 = g22;
        // u = s G^T (4 x 4), row by row
        storeRow(dst, xiStride, 0, s00, s01, s02);
        storeRow(dst, xiStride, 1, s10, s11, s12);
        storeRow(dst, xiStride, 2, s20, s21, s22);
        storeRow(dst, xiStride, 3, s30, s31, s32);
      }
    }
  }
}

// @ts-ignore: decorator
@inline function storeRow(dst: usize, xiStride: usize, i: i32, a: f32, b: f32, c: f32): void {
  const base = dst + ((<usize>(i * 4) * xiStride) << 2);
  const step = xiStride << 2;
  store<f32>(base, a);
  store<f32>(base + step, (a + b + c) * 0.5);
  store<f32>(base + 2 * step, (a - b + c) * 0.5);
  store<f32>(base + 3 * step, c);
}

/**
 * The multiplication stage of a Winograd block, shared by F(2x2,3x3) and F(4x4,3x3): for each of `points`
 * transform points xi, M[xi] = U[xi] V[xi], where U[xi] holds `panels` panels of mr output channels x inC
 * (uXi floats per point), V[xi] the block's nt tiles as [nt/8][inC][8] (vXiF floats per point) and M[xi] rows
 * of TB tiles (mXiF floats per point), by the GEMM microkernels.
 */
export function winogradGemms(points: i32, U: usize, uXi: usize, V: usize, vXiF: usize, M: usize, mXiF: usize, panels: i32, mr: i32, inC: i32, nt: i32, TB: i32): void {
  const ldm = <usize>TB << 2;
  for (let xi = 0; xi < points; xi++) {
    const Ux = U + ((<usize>xi * uXi) << 2);
    const Vx = V + ((<usize>xi * vXiF) << 2);
    const Mx = M + ((<usize>xi * mXiF) << 2);
    for (let p = 0; p < panels; p++) {
      const pa = Ux + ((<usize>p * <usize>inC * <usize>mr) << 2);
      const mrow = Mx + ((<usize>(p * mr) * <usize>TB) << 2);
      // one loop per tile height (a test inside the loop ran 3-9% slower)
      if (mr == 5) {
        for (let q = 0; q < nt; q += 8) gemm_mk_5x8(inC, pa, Vx + ((<usize>(q >> 3) * <usize>inC * 8) << 2), mrow + (<usize>q << 2), ldm, false);
      } else {
        for (let q = 0; q < nt; q += 8) gemm_mk_4x8(inC, pa, Vx + ((<usize>(q >> 3) * <usize>inC * 8) << 2), mrow + (<usize>q << 2), ldm, false);
      }
    }
  }
}

/** Units [u0, u1) (blocks of TB tiles over all images) of the Winograd convolution. */
export function winogradBlocks(ctrl: usize, u0: i32, u1: i32, scratch: usize): void {
  const n = argI(ctrl, A_N), inC = argI(ctrl, A_INC), outC = argI(ctrl, A_OUTC);
  const inH = argI(ctrl, A_INH), inW = argI(ctrl, A_INW), pT = argI(ctrl, A_PT), pL = argI(ctrl, A_PL);
  const outH = argI(ctrl, A_OUTH), outW = argI(ctrl, A_OUTW);
  const x = argP(ctrl, A_X), U = argP(ctrl, A_WPACK), bias = argP(ctrl, A_BIAS), y = argP(ctrl, A_Y);
  const TB = argI(ctrl, A_AUX);
  const tc = tileCounts(outH, outW);
  const TH = <i32>(tc >> 32), TW4 = <i32>tc;
  const perImage = TH * TW4;
  const total = n * perImage;
  const mr = argI(ctrl, A_MR);
  const panels = (outC + mr - 1) / mr;
  const outCP = panels * mr;
  const vXiF = xiFloats(TB, inC), mXiF = xiFloats(outCP, TB);
  const V = scratch; // [16][TB/8][inC][8]
  const M = V + ((16 * vXiF) << 2); // [16][outCP][TB]
  const strip = M + ((16 * mXiF) << 2); // [rows][stripW]
  const uXi = xiFloats(panels * mr, inC); // floats per xi plane of U
  const planeB = (<usize>inH * <usize>inW) << 2;
  for (let u = u0; u < u1; u++) {
    const t0 = u * TB;
    if (t0 >= total) break;
    const nt = min(TB, total - t0); // multiple of 4 (perImage is)
    // 1. input transform, run by run of the block's tiles in one image
    for (let q = 0; q < nt; ) {
      const tile = t0 + q;
      const b = tile / perImage, r = tile % perImage;
      const len = min(nt - q, perImage - r); // tiles in the run (a multiple of 4)
      const ty0 = r / TW4, tx0 = r % TW4, ty1 = (r + len - 1) / TW4;
      // the run reads input rows 2 * ty0 - pT + [0, rows), columns -pL + [0, cols)
      const rows = 2 * (ty1 - ty0) + 4, cols = 2 * TW4 + 2, stripW = (cols + 3) & ~3;
      for (let ic = 0; ic < inC; ic++) {
        winogradStrip(strip, stripW, x + <usize>(b * inC + ic) * planeB, inH, inW, 2 * ty0 - pT, -pL, rows, cols);
        let ty = ty0, tx = tx0;
        for (let g = 0; g < len; g += 4) {
          const qg = q + g;
          const dst = V + ((((<usize>(qg >> 3) * <usize>inC) + <usize>ic) * 8 + <usize>(qg & 7)) << 2);
          inputTransform4<f32>(strip + (<usize>(2 * (ty - ty0) * stripW + 2 * tx) << 2), <usize>stripW << 2, dst, vXiF << 2);
          tx += 4;
          if (tx == TW4) { tx = 0; ty++; }
        }
      }
      q += len;
    }
    // 2. the 16 GEMMs
    winogradGemms(16, U, uXi, V, vXiF, M, mXiF, panels, mr, inC, nt, TB);
    // 3. output transform
    const mXi = mXiF << 2; // bytes between xi planes of M
    const b0 = t0 / perImage, r0 = t0 % perImage;
    const ty0 = r0 / TW4, tx0 = r0 % TW4;
    for (let oc = 0; oc < outC; oc++) {
      const bv = f32x4.splat(bias != 0 ? load<f32>(bias + (<usize>oc << 2)) : 0);
      const mrow = M + ((<usize>oc * <usize>TB) << 2);
      let b = b0, ty = ty0, tx = tx0;
      for (let q = 0; q < nt; q += 4) {
        const oy = 2 * ty, ox = 2 * tx;
        if (ox < outW) {
          const yrow = y + ((<usize>(b * outC + oc) * <usize>outH * <usize>outW + <usize>(oy * outW + ox)) << 2);
          outputTransform4(mrow + (<usize>q << 2), mXi, bv, yrow, <usize>outW << 2, outW - ox, outH - oy);
        }
        tx += 4;
        if (tx == TW4) { tx = 0; ty++; if (ty == TH) { ty = 0; b++; } }
      }
    }
  }
}

/**
 * Rows iy0 + [0, rows), columns ix0 + [0, cols) of one input plane (inH x inW at plane) into strip (rows of
 * stripW floats), zeros outside the plane.
 */
export function winogradStrip(strip: usize, stripW: i32, plane: usize, inH: i32, inW: i32, iy0: i32, ix0: i32, rows: i32, cols: i32): void {
  // strip columns [c0, c1) lie inside the plane
  const c0 = min(cols, max(0, -ix0)), c1 = max(c0, min(cols, inW - ix0));
  for (let i = 0; i < rows; i++) {
    const row = strip + ((<usize>(i * stripW)) << 2);
    const iy = iy0 + i;
    if (iy < 0 || iy >= inH) {
      zeroF32(row, cols);
      continue;
    }
    zeroF32(row, c0);
    copyF32(row + (<usize>c0 << 2), plane + ((<usize>iy * <usize>inW + <usize>(ix0 + c0)) << 2), c1 - c0);
    zeroF32(row + (<usize>c1 << 2), cols - c1);
  }
}

// Lane arithmetic of the input transform: f32 lanes (float Winograd) or i16 lanes (int8 Winograd, where
// the transform of codes is exact; int8-winograd.ts).
// @ts-ignore: decorator
@inline function vadd<T>(a: v128, b: v128): v128 {
  return isFloat<T>() ? f32x4.add(a, b) : i16x8.add(a, b);
}
// @ts-ignore: decorator
@inline function vsub<T>(a: v128, b: v128): v128 {
  return isFloat<T>() ? f32x4.sub(a, b) : i16x8.sub(a, b);
}

/**
 * B^T d B for 4 horizontally adjacent tiles: src points at the top-left input of the first tile (32-bit
 * elements: an f32, or a pair of i16 of two channels), rowB = bytes per input row. Writes 16 vectors (lanes =
 * the 4 tiles) at dst + xi * xiB. T = f32 or i16 chooses the lane arithmetic.
 */
// @ts-ignore: decorator
@inline export function inputTransform4<T>(src: usize, rowB: usize, dst: usize, xiB: usize): void {
  // d[i][j] for the 4 tiles k = element 2k + j of input row i: deinterleave even/odd elements
  const s1 = src + rowB, s2 = src + 2 * rowB;
  const a1 = v128.load(s1), b1 = v128.load(s1, 16), c1 = v128.load(s1, 8), e1 = v128.load(s1, 24);
  const a2 = v128.load(s2), b2 = v128.load(s2, 16), c2 = v128.load(s2, 8), e2 = v128.load(s2, 24);
  const r1_0 = v128.shuffle<u32>(a1, b1, 0, 2, 4, 6), r1_1 = v128.shuffle<u32>(a1, b1, 1, 3, 5, 7);
  const r1_2 = v128.shuffle<u32>(c1, e1, 0, 2, 4, 6), r1_3 = v128.shuffle<u32>(c1, e1, 1, 3, 5, 7);
  const r2_0 = v128.shuffle<u32>(a2, b2, 0, 2, 4, 6), r2_1 = v128.shuffle<u32>(a2, b2, 1, 3, 5, 7);
  const r2_2 = v128.shuffle<u32>(c2, e2, 0, 2, 4, 6), r2_3 = v128.shuffle<u32>(c2, e2, 1, 3, 5, 7);
  // t1 = r1 + r2, t2 = r2 - r1 (rows of B^T d)
  storeV<T>(dst, xiB, 4, vadd<T>(r1_0, r2_0), vadd<T>(r1_1, r2_1), vadd<T>(r1_2, r2_2), vadd<T>(r1_3, r2_3));
  storeV<T>(dst, xiB, 8, vsub<T>(r2_0, r1_0), vsub<T>(r2_1, r1_1), vsub<T>(r2_2, r1_2), vsub<T>(r2_3, r1_3));
  {
    // t0 = r0 - r2
    const a = v128.load(src), b = v128.load(src, 16), c = v128.load(src, 8), e = v128.load(src, 24);
    storeV<T>(dst, xiB, 0,
      vsub<T>(v128.shuffle<u32>(a, b, 0, 2, 4, 6), r2_0), vsub<T>(v128.shuffle<u32>(a, b, 1, 3, 5, 7), r2_1),
      vsub<T>(v128.shuffle<u32>(c, e, 0, 2, 4, 6), r2_2), vsub<T>(v128.shuffle<u32>(c, e, 1, 3, 5, 7), r2_3));
  }
  {
    // t3 = r1 - r3
    const s3 = src + 3 * rowB;
    const a = v128.load(s3), b = v128.load(s3, 16), c = v128.load(s3, 8), e = v128.load(s3, 24);
    storeV<T>(dst, xiB, 12,
      vsub<T>(r1_0, v128.shuffle<u32>(a, b, 0, 2, 4, 6)), vsub<T>(r1_1, v128.shuffle<u32>(a, b, 1, 3, 5, 7)),
      vsub<T>(r1_2, v128.shuffle<u32>(c, e, 0, 2, 4, 6)), vsub<T>(r1_3, v128.shuffle<u32>(c, e, 1, 3, 5, 7)));
  }
}

/** One row of B^T d times B: (c0 - c2, c1 + c2, c2 - c1, c1 - c3) to xi0 .. xi0 + 3. */
// @ts-ignore: decorator
@inline function storeV<T>(dst: usize, xiB: usize, xi0: i32, c0: v128, c1: v128, c2: v128, c3: v128): void {
  const p = dst + <usize>xi0 * xiB;
  v128.store(p, vsub<T>(c0, c2));
  v128.store(p + xiB, vadd<T>(c1, c2));
  v128.store(p + 2 * xiB, vsub<T>(c2, c1));
  v128.store(p + 3 * xiB, vsub<T>(c1, c3));
}

/**
 * A^T m A (+ bias) for 4 horizontally adjacent tiles of one output channel: m at mp + xi * mXi (4 lanes =
 * 4 tiles). Writes the 2 x 8 outputs at y (row stride rowB), clipped to `cols` columns and `rows` rows.
 */
// @ts-ignore: decorator
@inline function outputTransform4(mp: usize, mXi: usize, bias: v128, y: usize, rowB: usize, cols: i32, rows: i32): void {
  const m0 = v128.load(mp), m1 = v128.load(mp + mXi), m2 = v128.load(mp + 2 * mXi), m3 = v128.load(mp + 3 * mXi);
  const m4 = v128.load(mp + 4 * mXi), m5 = v128.load(mp + 5 * mXi), m6 = v128.load(mp + 6 * mXi), m7 = v128.load(mp + 7 * mXi);
  const m8 = v128.load(mp + 8 * mXi), m9 = v128.load(mp + 9 * mXi), m10 = v128.load(mp + 10 * mXi), m11 = v128.load(mp + 11 * mXi);
  const m12 = v128.load(mp + 12 * mXi), m13 = v128.load(mp + 13 * mXi), m14 = v128.load(mp + 14 * mXi), m15 = v128.load(mp + 15 * mXi);
  // t = A^T m: t0 = row0 + row1 + row2, t1 = row1 - row2 - row3 (per column j)
  const t00 = f32x4.add(f32x4.add(m0, m4), m8), t01 = f32x4.add(f32x4.add(m1, m5), m9);
  const t02 = f32x4.add(f32x4.add(m2, m6), m10), t03 = f32x4.add(f32x4.add(m3, m7), m11);
  const t10 = f32x4.sub(f32x4.sub(m4, m8), m12), t11 = f32x4.sub(f32x4.sub(m5, m9), m13);
  const t12 = f32x4.sub(f32x4.sub(m6, m10), m14), t13 = f32x4.sub(f32x4.sub(m7, m11), m15);
  // y = t A
  const y00 = f32x4.add(f32x4.add(f32x4.add(t00, t01), t02), bias);
  const y01 = f32x4.add(f32x4.sub(f32x4.sub(t01, t02), t03), bias);
  const y10 = f32x4.add(f32x4.add(f32x4.add(t10, t11), t12), bias);
  const y11 = f32x4.add(f32x4.sub(f32x4.sub(t11, t12), t13), bias);
  // interleave the tiles' two columns: pixels ox .. ox + 7
  const a0 = v128.shuffle<f32>(y00, y01, 0, 4, 1, 5), a1 = v128.shuffle<f32>(y00, y01, 2, 6, 3, 7);
  storeRow8(y, a0, a1, cols);
  if (rows > 1) {
    const b0 = v128.shuffle<f32>(y10, y11, 0, 4, 1, 5), b1 = v128.shuffle<f32>(y10, y11, 2, 6, 3, 7);
    storeRow8(y + rowB, b0, b1, cols);
  }
}

/** Stores the first `cols` (<= 8) 32-bit lanes of a, b at p: a row of output pixels (f32 or i32). */
// @ts-ignore: decorator
@inline export function storeRow8(p: usize, a: v128, b: v128, cols: i32): void {
  if (cols >= 8) {
    v128.store(p, a);
    v128.store(p, b, 16);
    return;
  }
  if (cols >= 4) {
    v128.store(p, a);
    if (cols > 4) v128.store32_lane(p, b, 0, 16);
    if (cols > 5) v128.store32_lane(p, b, 1, 20);
    if (cols > 6) v128.store32_lane(p, b, 2, 24);
    return;
  }
  v128.store32_lane(p, a, 0);
  if (cols > 1) v128.store32_lane(p, a, 1, 4);
  if (cols > 2) v128.store32_lane(p, a, 2, 8);
}

/** For the JS side (buffer sizes): tile rows (0), padded tile columns (1), xi plane floats of rows x cols (2). */
export function winogradTiles(a: i32, b: i32, which: i32): i32 {
  if (which == 2) return <i32>xiFloats(a, b);
  const tc = tileCounts(a, b);
  return which == 0 ? <i32>(tc >> 32) : <i32>tc;
}


// ---- weight gradient ------------------------------------------------------------------------------------

/**
 * Transform tiles [g0*4, g1*4) of the chunk starting at tile `first` (global tile index over all images):
 * V[xi][ic][t] = B^T x B and D[xi][oc][t] = A dy A^T, t = tile - first, rows of TC tiles.
 * Args: conv slots; X = x; Y = dy; AUX = V; AUX2 = D; BLOCKS = TC; MR slot = first. `strip`: thread scratch.
 */
export function winogradWgradTransform(ctrl: usize, g0: i32, g1: i32, first: i32, TC: i32, V: usize, D: usize, strip: usize): void {
  const n = argI(ctrl, A_N), inC = argI(ctrl, A_INC), outC = argI(ctrl, A_OUTC);
  const inH = argI(ctrl, A_INH), inW = argI(ctrl, A_INW), pT = argI(ctrl, A_PT), pL = argI(ctrl, A_PL);
  const outH = argI(ctrl, A_OUTH), outW = argI(ctrl, A_OUTW);
  const x = argP(ctrl, A_X), dy = argP(ctrl, A_Y);
  const tc = tileCounts(outH, outW);
  const TH = <i32>(tc >> 32), TW4 = <i32>tc;
  const perImage = TH * TW4;
  const planeB = (<usize>inH * <usize>inW) << 2;
  const vXi = xiFloats(inC, TC) << 2, dXi = xiFloats(((outC + 7) >> 3) * 8, TC) << 2;
  const outPlane = <usize>outH * <usize>outW;
  // where tile group g0 starts (the tiles after it are walked incrementally: no divisions per tile)
  const start = first + g0 * 4;
  const b0 = start / perImage, r0 = start % perImage;
  const ty0 = r0 / TW4, tx0 = r0 % TW4;
  // channel-major, tiles inner: each of the 16 output rows is written sequentially; run by run of tiles
  // in one image, from a strip of the input rows the run reads (as the forward transform)
  for (let ic = 0; ic < inC; ic++) {
    for (let q = g0 * 4; q < g1 * 4; ) {
      const tile = first + q;
      const b = tile / perImage, r = tile % perImage;
      if (b >= n) { // past the last image: adds nothing
        zero16(V + ((<usize>ic * <usize>TC + <usize>q) << 2), vXi);
        q += 4;
        continue;
      }
      const len = min(g1 * 4 - q, perImage - r);
      const sy0 = r / TW4, sx0 = r % TW4, sy1 = (r + len - 1) / TW4;
      const rows = 2 * (sy1 - sy0) + 4, cols = 2 * TW4 + 2, stripW = (cols + 3) & ~3;
      winogradStrip(strip, stripW, x + <usize>(b * inC + ic) * planeB, inH, inW, 2 * sy0 - pT, -pL, rows, cols);
      let ty = sy0, tx = sx0;
      for (let g = 0; g < len; g += 4) {
        const src = strip + (<usize>(2 * (ty - sy0) * stripW + 2 * tx) << 2);
        inputTransform4<f32>(src, <usize>stripW << 2, V + ((<usize>ic * <usize>TC + <usize>(q + g)) << 2), vXi);
        tx += 4;
        if (tx == TW4) { tx = 0; ty++; }
      }
      q += len;
    }
  }
  // D in packed panels [xi][oc / 8][t][8], 4 channels (half a panel row) x 4 tiles at a time: one lane
  // store per value took as long as the GEMM over them
  for (let oc0 = 0; oc0 < outC; oc0 += 4) {
    const nc = min(4, outC - oc0); // channels past outC fill D's zero padding columns with zeros
    let b = b0, ty = ty0, tx = tx0;
    const col = D + (((<usize>(oc0 >> 3) * <usize>TC) * 8 + <usize>(oc0 & 7)) << 2);
    for (let q = g0 * 4; q < g1 * 4; q += 4) {
      const dst = col + ((<usize>q * 8) << 2);
      if (b >= n) { zero16x4(dst, dXi); continue; }
      const oy = 2 * ty, ox = 2 * tx;
      const src = dy + ((<usize>(b * outC + oc0) * outPlane + <usize>(oy * outW + ox)) << 2);
      dyTransform4x4(src, outPlane << 2, nc, <usize>outW << 2, min(2, outH - oy), min(8, outW - ox), dst, dXi);
      tx += 4;
      if (tx == TW4) { tx = 0; ty++; if (ty == TH) { ty = 0; b++; } }
    }
  }
}

// @ts-ignore: decorator
@inline function zero16(dst: usize, xiB: usize): void {
  for (let xi = 0; xi < 16; xi++) v128.store(dst + <usize>xi * xiB, f32x4.splat(0));
}
/** Zeros for 4 channels (half a panel row) of 4 tiles in each of the 16 xi planes of D. */
// @ts-ignore: decorator
@inline function zero16x4(dst: usize, xiB: usize): void {
  for (let xi = 0; xi < 16; xi++)
    for (let t = 0; t < 4; t++) v128.store(dst + <usize>xi * xiB + (<usize>(t * 8) << 2), f32x4.splat(0));
}

// @ts-ignore: decorator
@inline function load8(p: usize, cols: i32, hi: bool): v128 {
  // floats [0, 4) (hi = false) or [4, 8) of a row with `cols` valid ones, zeros past them
  const base = hi ? 4 : 0;
  if (cols >= base + 4) return v128.load(p + (<usize>base << 2));
  let v = f32x4.splat(0);
  if (cols > base) v = f32x4.replace_lane(v, 0, load<f32>(p + (<usize>base << 2)));
  if (cols > base + 1) v = f32x4.replace_lane(v, 1, load<f32>(p + (<usize>(base + 1) << 2)));
  if (cols > base + 2) v = f32x4.replace_lane(v, 2, load<f32>(p + (<usize>(base + 2) << 2)));
  return v;
}

/** 8 floats of one row of dY (zeros past `cols`, or all zeros when the row or channel is absent). */
// @ts-ignore: decorator
@inline function dyRow(p: usize, present: bool, cols: i32, hi: bool): v128 {
  return present ? load8(p, cols, hi) : f32x4.splat(0);
}

/**
 * A dy A^T for 4 horizontally adjacent 2 x 2 tiles of dY in 4 channels (planeB bytes apart; `nc` of them
 * present, zeros past `rows` / `cols`): rows are loaded per channel, then transposed 4 x 4 so that lanes are
 * channels, and each tile's 16 values are stored as 4-channel vectors at dst + t * 32 (its panel row) + xi * xiB.
 */
// @ts-ignore: decorator
@inline function dyTransform4x4(src: usize, planeB: usize, nc: i32, rowB: usize, rows: i32, cols: i32, dst: usize, xiB: usize): void {
  const s1 = src + planeB, s2 = src + 2 * planeB, s3 = src + 3 * planeB;
  const two = rows > 1;
  // row 0, pixels 0-3 and 4-7, channels 0-3; then row 1
  const a0 = dyRow(src, true, cols, false), a1 = dyRow(s1, nc > 1, cols, false), a2 = dyRow(s2, nc > 2, cols, false), a3 = dyRow(s3, nc > 3, cols, false);
  const b0 = dyRow(src, true, cols, true), b1 = dyRow(s1, nc > 1, cols, true), b2 = dyRow(s2, nc > 2, cols, true), b3 = dyRow(s3, nc > 3, cols, true);
  const e0 = dyRow(src + rowB, two, cols, false), e1 = dyRow(s1 + rowB, two && nc > 1, cols, false);
  const e2 = dyRow(s2 + rowB, two && nc > 2, cols, false), e3 = dyRow(s3 + rowB, two && nc > 3, cols, false);
  const f0 = dyRow(src + rowB, two, cols, true), f1 = dyRow(s1 + rowB, two && nc > 1, cols, true);
  const f2 = dyRow(s2 + rowB, two && nc > 2, cols, true), f3 = dyRow(s3 + rowB, two && nc > 3, cols, true);
  // tiles 0 and 1 use pixels 0-3, tiles 2 and 3 pixels 4-7
  dyTiles2(dst, xiB, a0, a1, a2, a3, e0, e1, e2, e3);
  dyTiles2(dst + 64, xiB, b0, b1, b2, b3, f0, f1, f2, f3);
}

/** Two tiles from pixels 0-3 of rows 0 (r*) and 1 (s*) of 4 channels: transposed to pixel vectors, then A d A^T. */
// @ts-ignore: decorator
@inline function dyTiles2(dst: usize, xiB: usize, r0: v128, r1: v128, r2: v128, r3: v128, s0: v128, s1: v128, s2: v128, s3: v128): void {
  // transpose: p_j = pixel j of row 0 over the 4 channels, q_j likewise for row 1
  const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
  const t2 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5), t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
  const u0 = v128.shuffle<f32>(s0, s1, 0, 4, 1, 5), u1 = v128.shuffle<f32>(s0, s1, 2, 6, 3, 7);
  const u2 = v128.shuffle<f32>(s2, s3, 0, 4, 1, 5), u3 = v128.shuffle<f32>(s2, s3, 2, 6, 3, 7);
  dyTile(dst, xiB, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5), v128.shuffle<f32>(t0, t2, 2, 3, 6, 7),
    v128.shuffle<f32>(u0, u2, 0, 1, 4, 5), v128.shuffle<f32>(u0, u2, 2, 3, 6, 7));
  dyTile(dst + 32, xiB, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), v128.shuffle<f32>(t1, t3, 2, 3, 6, 7),
    v128.shuffle<f32>(u1, u3, 0, 1, 4, 5), v128.shuffle<f32>(u1, u3, 2, 3, 6, 7));
}

/** A d A^T of one 2 x 2 tile d (lanes = channels): rows of A (4 x 2) = [[1,0],[1,1],[1,-1],[0,-1]]. */
// @ts-ignore: decorator
@inline function dyTile(dst: usize, xiB: usize, d00: v128, d01: v128, d10: v128, d11: v128): void {
  storeDy(dst, xiB, 0, d00, d01);
  storeDy(dst, xiB, 4, f32x4.add(d00, d10), f32x4.add(d01, d11));
  storeDy(dst, xiB, 8, f32x4.sub(d00, d10), f32x4.sub(d01, d11));
  storeDy(dst, xiB, 12, f32x4.neg(d10), f32x4.neg(d11));
}

// @ts-ignore: decorator
@inline function storeDy(dst: usize, xiB: usize, xi0: i32, c0: v128, c1: v128): void {
  const p = dst + <usize>xi0 * xiB;
  v128.store(p, c0);
  v128.store(p + xiB, f32x4.add(c0, c1));
  v128.store(p + 2 * xiB, f32x4.sub(c0, c1));
  v128.store(p + 3 * xiB, f32x4.neg(c1));
}

/** dW[oc][ic] (3 x 3) = G^T M[.][ic][oc] G for output channels [o0, o1); M is [16][inC4][outC8]. */
export function winogradWgradOutput(M: usize, dw: usize, o0: i32, o1: i32, inC: i32, outC: i32): void {
  const ldm = ((outC + 7) >> 3) * 8;
  const xiB = xiFloats(((inC + 3) >> 2) * 4, ldm) << 2;
  for (let oc = o0; oc < o1; oc++) {
    for (let ic = 0; ic < inC; ic++) {
      const mp = M + ((<usize>ic * <usize>ldm + <usize>oc) << 2);
      const m0 = load<f32>(mp), m1 = load<f32>(mp + xiB), m2 = load<f32>(mp + 2 * xiB), m3 = load<f32>(mp + 3 * xiB);
      const m4 = load<f32>(mp + 4 * xiB), m5 = load<f32>(mp + 5 * xiB), m6 = load<f32>(mp + 6 * xiB), m7 = load<f32>(mp + 7 * xiB);
      const m8 = load<f32>(mp + 8 * xiB), m9 = load<f32>(mp + 9 * xiB), m10 = load<f32>(mp + 10 * xiB), m11 = load<f32>(mp + 11 * xiB);
      const m12 = load<f32>(mp + 12 * xiB), m13 = load<f32>(mp + 13 * xiB), m14 = load<f32>(mp + 14 * xiB), m15 = load<f32>(mp + 15 * xiB);
      // t = G^T m (3 x 4): G^T = [[1, .5, .5, 0], [0, .5, -.5, 0], [0, .5, .5, 1]]
      const t00 = m0 + (m4 + m8) * 0.5, t01 = m1 + (m5 + m9) * 0.5, t02 = m2 + (m6 + m10) * 0.5, t03 = m3 + (m7 + m11) * 0.5;
      const t10 = (m4 - m8) * 0.5, t11 = (m5 - m9) * 0.5, t12 = (m6 - m10) * 0.5, t13 = (m7 - m11) * 0.5;
      const t20 = (m4 + m8) * 0.5 + m12, t21 = (m5 + m9) * 0.5 + m13, t22 = (m6 + m10) * 0.5 + m14, t23 = (m7 + m11) * 0.5 + m15;
      const d = dw + ((<usize>(oc * inC + ic) * 9) << 2);
      store<f32>(d, t00 + (t01 + t02) * 0.5); store<f32>(d, (t01 - t02) * 0.5, 4); store<f32>(d, (t01 + t02) * 0.5 + t03, 8);
      store<f32>(d, t10 + (t11 + t12) * 0.5, 12); store<f32>(d, (t11 - t12) * 0.5, 16); store<f32>(d, (t11 + t12) * 0.5 + t13, 20);
      store<f32>(d, t20 + (t21 + t22) * 0.5, 24); store<f32>(d, (t21 - t22) * 0.5, 28); store<f32>(d, (t21 + t22) * 0.5 + t23, 32);
    }
  }
}

/**
 * M[xi] (inC4 x outC8) += V[xi] (inC x TC) D[xi] (TC x outC8) for xi in [x0, x1): 4 channel rows of V read
 * in place, D in packed panels of 8 output channels.
 */
export function winogradWgradGemm(V: usize, D: usize, M: usize, x0: i32, x1: i32, inC: i32, outC: i32, TC: i32): void {
  const S = (outC + 7) >> 3, ldm = S * 8, ic4 = ((inC + 3) >> 2) * 4;
  const vXi = xiFloats(inC, TC) << 2, dXi = xiFloats(ldm, TC) << 2, mXi = xiFloats(ic4, ldm) << 2;
  const rowB = <usize>TC << 2;
  for (let xi = x0; xi < x1; xi++) {
    const Vx = V + <usize>xi * vXi, Dx = D + <usize>xi * dXi, Mx = M + <usize>xi * mXi;
    for (let ic0 = 0; ic0 < inC; ic0 += 4) {
      // rows past inC repeat the last one (their results land in M's padding rows)
      const r0 = Vx + <usize>ic0 * rowB, r1 = Vx + <usize>min(ic0 + 1, inC - 1) * rowB;
      const r2 = Vx + <usize>min(ic0 + 2, inC - 1) * rowB, r3 = Vx + <usize>min(ic0 + 3, inC - 1) * rowB;
      for (let s = 0; s < S; s++) {
        wgrad_mk_4x8(1, TC, 0, r0, r1, r2, r3, Dx + ((<usize>s * <usize>TC * 8) << 2), Mx + ((<usize>ic0 * <usize>ldm + <usize>(s * 8)) << 2), <usize>ldm << 2);
      }
    }
  }
}

/** Floats of M (and its zeroing) for the JS side. */
export function winogradWgradSizes(inC: i32, outC: i32, TC: i32, which: i32): i32 {
  const ldm = ((outC + 7) >> 3) * 8, ic4 = ((inC + 3) >> 2) * 4;
  if (which == 0) return <i32>xiFloats(inC, TC); // V plane
  if (which == 1) return <i32>xiFloats(ldm, TC); // D plane
  return <i32>xiFloats(ic4, ldm); // M plane
}
