// Winograd F(4x4, 3x3) for the forward pass (and the stride-1 input gradient) of 3x3, stride-1 convolutions
// with wide enough outputs (src/kernels/wasm/conv.ts chooses it): every 4x4 output tile is
// A^T [ (G g G^T) . (B^T d B) ] A for its 6x6 input tile d (Lavin & Gray, 2016, with the points 0, +-1,
// +-1/2, infinity), so the 144 multiplies per tile and channel pair of the direct convolution become 36,
// against 64 for F(2x2, 3x3)
// (winograd.ts, whose structure this follows: blocks of TB tiles, 36 GEMMs per block by the same
// microkernels, tiles numbered per image as (ty, tx) with tx over TW4 = TW rounded up to 4, SIMD over 4
// horizontally adjacent tiles, the input read through per-run strips of padded rows).
//   B^T = [1/4 0 -5/4 0 1 0; 0 -1/4 -1/4 1 1 0; 0 1/4 -1/4 -1 1 0; 0 -1/2 -1 1/2 1 0; 0 1/2 -1 -1/2 1 0; 0 1/4 0 -5/4 0 1]
//   G   = [4 0 0; 2/3 2/3 2/3; 2/3 -2/3 2/3; -8/3 -4/3 -2/3; -8/3 4/3 -2/3; 0 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 1/2 -1/2 0; 0 1 1 1/4 1/4 0; 0 1 -1 1/8 -1/8 1]
// Error (float32 simulation, 16 channels, relative to the sum of |terms| of an output): at most 1.4e-6 inside
// the image and 2.5e-6 at padding-1 borders (2.8e-6 with the points +-2); but 1.4e-5 where a tile reads two
// rows and columns of padding (an unpadded convolution's input gradient: 1.3e-5 with +-2), over the 1e-5
// the kernels are held to, so conv.ts uses F(4x4, 3x3) only with padding <= 1.

import { argI, argP } from './layout';
import { A_N, A_INC, A_INH, A_INW, A_PT, A_PL, A_OUTC, A_OUTH, A_OUTW, A_X, A_WPACK, A_BIAS, A_Y, A_AUX, A_MR } from './conv';
import { xiFloats, winogradStrip, winogradGemms } from './winograd';

// @ts-ignore: decorator
@inline function tileCounts4(outH: i32, outW: i32): i64 {
  const TH = (outH + 3) >> 2, TW = (outW + 3) >> 2;
  return (<i64>TH << 32) | <i64>(((TW + 3) >> 2) << 2);
}

/** For the JS side: tile rows (0), padded tile columns (1). */
export function winograd4Tiles(outH: i32, outW: i32, which: i32): i32 {
  const tc = tileCounts4(outH, outW);
  return which == 0 ? <i32>(tc >> 32) : <i32>tc;
}

/**
 * U[xi][oc panel][ic][mr] = (G g G^T)[xi] for output-channel panels [p0, p1) of mr channels (as
 * winogradWeights, 36 planes). flipped: g is the 180-degree rotation of w[ic][oc].
 */
export function winograd4Weights(w: usize, U: usize, p0: i32, p1: i32, inC: i32, outC: i32, flipped: bool, mr: i32): void {
  const panels = (outC + mr - 1) / mr;
  const xiStride = xiFloats(panels * mr, inC);
  for (let p = p0; p < p1; p++) {
    for (let ic = 0; ic < inC; ic++) {
      for (let i = 0; i < mr; i++) {
        const oc = p * mr + i;
        const dst = U + (((<usize>p * <usize>inC + <usize>ic) * <usize>mr + <usize>i) << 2);
        if (oc >= outC) {
          for (let xi = 0; xi < 36; xi++) store<f32>(dst + ((<usize>xi * xiStride) << 2), 0);
          continue;
        }
        const src = flipped ? w + ((<usize>(ic * outC + oc) * 9) << 2) : w + ((<usize>(oc * inC + ic) * 9) << 2);
        // g[r][c], rotated by 180 degrees when flipped
        const g00 = wAt(src, 0, flipped), g01 = wAt(src, 1, flipped), g02 = wAt(src, 2, flipped);
        const g10 = wAt(src, 3, flipped), g11 = wAt(src, 4, flipped), g12 = wAt(src, 5, flipped);
        const g20 = wAt(src, 6, flipped), g21 = wAt(src, 7, flipped), g22 = wAt(src, 8, flipped);
        // row r of u = (G g) G^T: row r of G g is (gRow(r) of each column of g)
        for (let r = 0; r < 6; r++) {
          gTimes(dst + ((<usize>(r * 6) * xiStride) << 2), xiStride << 2,
            gRow(r, g00, g10, g20), gRow(r, g01, g11, g21), gRow(r, g02, g12, g22));
        }
      }
    }
  }
}

// @ts-ignore: decorator
@inline function wAt(src: usize, t: i32, flipped: bool): f32 {
  return load<f32>(src + (<usize>(flipped ? 8 - t : t) << 2));
}

/** Row r of G times (a, b, c). */
// @ts-ignore: decorator
@inline function gRow(r: i32, a: f32, b: f32, c: f32): f32 {
  if (r == 0) return a * 4;
  if (r == 1) return (a + b + c) * 2 / 3;
  if (r == 2) return (a - b + c) * 2 / 3;
  if (r == 3) return -(a * 8 + b * 4 + c * 2) / 3;
  if (r == 4) return -(a * 8 - b * 4 + c * 2) / 3;
  return c;
}

/** G (6 x 3) times (a, b, c), the 6 results `step` bytes apart from p. */
// @ts-ignore: decorator
@inline function gTimes(p: usize, step: usize, a: f32, b: f32, c: f32): void {
  for (let r = 0; r < 6; r++) store<f32>(p + <usize>r * step, gRow(r, a, b, c));
}

/** Units [u0, u1) (blocks of TB tiles over all images) of the F(4x4, 3x3) convolution; args as winogradBlocks. */
export function winograd4Blocks(ctrl: usize, u0: i32, u1: i32, scratch: usize): void {
  const n = argI(ctrl, A_N), inC = argI(ctrl, A_INC), outC = argI(ctrl, A_OUTC);
  const inH = argI(ctrl, A_INH), inW = argI(ctrl, A_INW), pT = argI(ctrl, A_PT), pL = argI(ctrl, A_PL);
  const outH = argI(ctrl, A_OUTH), outW = argI(ctrl, A_OUTW);
  const x = argP(ctrl, A_X), U = argP(ctrl, A_WPACK), bias = argP(ctrl, A_BIAS), y = argP(ctrl, A_Y);
  const TB = argI(ctrl, A_AUX);
  const tc = tileCounts4(outH, outW);
  const TH = <i32>(tc >> 32), TW4 = <i32>tc;
  const perImage = TH * TW4;
  const total = n * perImage;
  const mr = argI(ctrl, A_MR);
  const panels = (outC + mr - 1) / mr;
  const outCP = panels * mr;
  const vXiF = xiFloats(TB, inC), mXiF = xiFloats(outCP, TB);
  const V = scratch; // [36][TB/8][inC][8]
  const M = V + ((36 * vXiF) << 2); // [36][outCP][TB]
  const tmp = M + ((36 * mXiF) << 2); // 36 vectors between the two passes of a transform
  const strip = tmp + 36 * 16; // [rows][stripW]
  const uXi = xiFloats(panels * mr, inC);
  const planeB = (<usize>inH * <usize>inW) << 2;
  for (let u = u0; u < u1; u++) {
    const t0 = u * TB;
    if (t0 >= total) break;
    const nt = min(TB, total - t0); // multiple of 4 (perImage is)
    // 1. input transform, run by run of the block's tiles in one image
    for (let q = 0; q < nt; ) {
      const tile = t0 + q;
      const b = tile / perImage, r = tile % perImage;
      const len = min(nt - q, perImage - r);
      const ty0 = r / TW4, tx0 = r % TW4, ty1 = (r + len - 1) / TW4;
      // rows 4 * ty0 - pT + [0, rows), columns -pL + [0, cols): 4 tiles read 20 columns from their first
      const rows = 4 * (ty1 - ty0) + 6, cols = 4 * TW4 + 4, stripW = cols;
      for (let ic = 0; ic < inC; ic++) {
        winogradStrip(strip, stripW, x + <usize>(b * inC + ic) * planeB, inH, inW, 4 * ty0 - pT, -pL, rows, cols);
        let ty = ty0, tx = tx0;
        for (let g = 0; g < len; g += 4) {
          const qg = q + g;
          const dst = V + ((((<usize>(qg >> 3) * <usize>inC) + <usize>ic) * 8 + <usize>(qg & 7)) << 2);
          inputTransform6(strip + (<usize>(4 * (ty - ty0) * stripW + 4 * tx) << 2), <usize>stripW << 2, tmp, dst, vXiF << 2);
          tx += 4;
          if (tx == TW4) { tx = 0; ty++; }
        }
      }
      q += len;
    }
    // 2. the 36 GEMMs
    winogradGemms(36, U, uXi, V, vXiF, M, mXiF, panels, mr, inC, nt, TB);
    // 3. output transform
    const mXi = mXiF << 2;
    const b0 = t0 / perImage, r0 = t0 % perImage;
    const ty0 = r0 / TW4, tx0 = r0 % TW4;
    for (let oc = 0; oc < outC; oc++) {
      const bv = f32x4.splat(bias != 0 ? load<f32>(bias + (<usize>oc << 2)) : 0);
      const mrow = M + ((<usize>oc * <usize>TB) << 2);
      let b = b0, ty = ty0, tx = tx0;
      for (let q = 0; q < nt; q += 4) {
        const oy = 4 * ty, ox = 4 * tx;
        if (ox < outW) {
          const yrow = y + ((<usize>(b * outC + oc) * <usize>outH * <usize>outW + <usize>(oy * outW + ox)) << 2);
          outputTransform6(mrow + (<usize>q << 2), mXi, tmp, bv, yrow, <usize>outW << 2, outW - ox, outH - oy);
        }
        tx += 4;
        if (tx == TW4) { tx = 0; ty++; if (ty == TH) { ty = 0; b++; } }
      }
    }
  }
}

/** B^T applied to 6 vectors: the 6 results to p + k * step. */
// @ts-ignore: decorator
@inline function bt6(p: usize, step: usize, d0: v128, d1: v128, d2: v128, d3: v128, d4: v128, d5: v128): void {
  const quarter = f32x4.splat(0.25), half = f32x4.splat(0.5), five4 = f32x4.splat(1.25);
  const c = f32x4.sub(d4, d2), e = f32x4.mul(half, f32x4.sub(d3, d1));
  v128.store(p, f32x4.add(f32x4.sub(f32x4.mul(quarter, d0), f32x4.mul(five4, d2)), d4));
  v128.store(p + step, f32x4.sub(f32x4.add(d3, d4), f32x4.mul(quarter, f32x4.add(d1, d2))));
  v128.store(p + 2 * step, f32x4.add(f32x4.sub(d4, d3), f32x4.mul(quarter, f32x4.sub(d1, d2))));
  v128.store(p + 3 * step, f32x4.add(c, e));
  v128.store(p + 4 * step, f32x4.sub(c, e));
  v128.store(p + 5 * step, f32x4.add(f32x4.sub(f32x4.mul(quarter, d1), f32x4.mul(five4, d3)), d5));
}

/**
 * B^T d B for 4 horizontally adjacent tiles (the first at src, rows rowB bytes apart; tile k starts 4k
 * floats on): per input row, its 6 columns per tile by a 4 x 4 transpose (lanes = tiles) and B^T along the
 * row into tmp; then B^T down each column, the 36 results to dst + xi * xiB.
 */
// @ts-ignore: decorator
@inline function inputTransform6(src: usize, rowB: usize, tmp: usize, dst: usize, xiB: usize): void {
  for (let i = 0; i < 6; i++) {
    const s = src + <usize>i * rowB;
    const v0 = v128.load(s), v1 = v128.load(s, 16), v2 = v128.load(s, 32), v3 = v128.load(s, 48), v4 = v128.load(s, 64);
    const t0 = v128.shuffle<f32>(v0, v1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(v0, v1, 2, 6, 3, 7);
    const t2 = v128.shuffle<f32>(v2, v3, 0, 4, 1, 5), t3 = v128.shuffle<f32>(v2, v3, 2, 6, 3, 7);
    const w0 = v128.shuffle<f32>(v1, v2, 0, 4, 1, 5), w2 = v128.shuffle<f32>(v3, v4, 0, 4, 1, 5);
    // column j of the 4 tiles: elements 4k + j
    bt6(tmp + (<usize>(i * 6) << 4), 16,
      v128.shuffle<f32>(t0, t2, 0, 1, 4, 5), v128.shuffle<f32>(t0, t2, 2, 3, 6, 7),
      v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), v128.shuffle<f32>(t1, t3, 2, 3, 6, 7),
      v128.shuffle<f32>(w0, w2, 0, 1, 4, 5), v128.shuffle<f32>(w0, w2, 2, 3, 6, 7));
  }
  for (let j = 0; j < 6; j++) {
    const c = tmp + (<usize>j << 4);
    bt6(dst + <usize>j * xiB, 6 * xiB, v128.load(c), v128.load(c, 96), v128.load(c, 192), v128.load(c, 288), v128.load(c, 384), v128.load(c, 480));
  }
}

/** A^T applied to 6 vectors: the 4 results to p + k * step (+ bias). */
// @ts-ignore: decorator
@inline function at6(p: usize, step: usize, m0: v128, m1: v128, m2: v128, m3: v128, m4: v128, m5: v128, bias: v128): void {
  const s12 = f32x4.add(m1, m2), d12 = f32x4.sub(m1, m2), s34 = f32x4.add(m3, m4), d34 = f32x4.sub(m3, m4);
  v128.store(p, f32x4.add(f32x4.add(f32x4.add(m0, s12), s34), bias));
  v128.store(p + step, f32x4.add(f32x4.add(d12, f32x4.mul(f32x4.splat(0.5), d34)), bias));
  v128.store(p + 2 * step, f32x4.add(f32x4.add(s12, f32x4.mul(f32x4.splat(0.25), s34)), bias));
  v128.store(p + 3 * step, f32x4.add(f32x4.add(f32x4.add(d12, f32x4.mul(f32x4.splat(0.125), d34)), m5), bias));
}

/**
 * A^T m A (+ bias) for 4 horizontally adjacent tiles of one output channel (m at mp + xi * mXi, lanes =
 * tiles): the 4 x 16 outputs at y (rows rowB bytes apart), clipped to `cols` columns and `rows` rows.
 */
// @ts-ignore: decorator
@inline function outputTransform6(mp: usize, mXi: usize, tmp: usize, bias: v128, y: usize, rowB: usize, cols: i32, rows: i32): void {
  // down each column j: tmp[i][j], i < 4
  for (let j = 0; j < 6; j++) {
    const c = mp + <usize>j * mXi, s = 6 * mXi;
    at6(tmp + (<usize>j << 4), 96, v128.load(c), v128.load(c + s), v128.load(c + 2 * s), v128.load(c + 3 * s),
      v128.load(c + 4 * s), v128.load(c + 5 * s), f32x4.splat(0));
  }
  const nr = min(4, rows);
  for (let i = 0; i < nr; i++) {
    const r = tmp + (<usize>(i * 6) << 4);
    // along the row: the 4 columns of the 4 tiles (lanes = tiles), then transposed to pixels
    at6(r, 16, v128.load(r), v128.load(r, 16), v128.load(r, 32), v128.load(r, 48), v128.load(r, 64), v128.load(r, 80), bias);
    const c0 = v128.load(r), c1 = v128.load(r, 16), c2 = v128.load(r, 32), c3 = v128.load(r, 48);
    const t0 = v128.shuffle<f32>(c0, c1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(c0, c1, 2, 6, 3, 7);
    const t2 = v128.shuffle<f32>(c2, c3, 0, 4, 1, 5), t3 = v128.shuffle<f32>(c2, c3, 2, 6, 3, 7);
    const yr = y + <usize>i * rowB;
    storeClipped(yr, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5), cols);
    storeClipped(yr + 16, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), cols - 4);
    storeClipped(yr + 32, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), cols - 8);
    storeClipped(yr + 48, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), cols - 12);
  }
}

/** The first `n` (any number; <= 0: none) lanes of v at p. */
// @ts-ignore: decorator
@inline function storeClipped(p: usize, v: v128, n: i32): void {
  if (n >= 4) { v128.store(p, v); return; }
  if (n > 0) v128.store32_lane(p, v, 0);
  if (n > 1) v128.store32_lane(p, v, 1, 4);
  if (n > 2) v128.store32_lane(p, v, 2, 8);
}
