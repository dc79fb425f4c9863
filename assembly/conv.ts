// Convolution. The input is first copied into a zero-padded, phase-split buffer `xpad` (per image and
// channel: sW phases x Hp rows x Wq columns, phase f holding the padded columns f, f+sW, f+2sW, ...), so
// that for every tap (c, ky, kx) the inputs of consecutive output pixels of one output row are consecutive
// floats, whatever the stride, padding or dilation:
//   x(b, c, oy*sH - pT + ky*dH, ox*sW - pL + kx*dW) = xpad[img + offs[k] + 4*(oy*sH*Wq + ox)]
//   offs[k] = 4*(((c*sW + (kx*dW) % sW) * Hp + ky*dH) * Wq + (kx*dW) / sW)
// Forward:        Y = W x im2col(X) as a GEMM whose B operand is read in place from xpad (conv_mk_*).
// Input gradient: for stride 1, a forward convolution of dY with the flipped, transposed weights;
//                 otherwise dcol = W^T dY (GEMM) and col2im.
// Weight gradient: dW^T = im2col(X) x dY^T, A read in place from xpad (wgrad_mk_*), dY^T packed.
// Depthwise convolutions (one input and one output channel per group) have their own SIMD loops.

import { phaseStart, phaseEnd } from './window';
import { conv_mk_5x8, conv_mk_4x8, conv_mk_3x8, wgrad_mk_4x8, convpx_mk_4x8 } from './microkernels';
import { argI, argP, shareStart } from './layout';

// Tiles and blocking, chosen by measurement.
export const CMR: i32 = 5; // output channels per tile at most (5, 4 or 3: chosen per call, src/kernels/wasm/conv.ts)
export const CNR: i32 = 8; // output pixels per tile (along one output row)
export const CMC: i32 = 64; // output channels per weight block (L2)
export const CKC: i32 = 1152; // taps per weight block
export const WMR: i32 = 4; // weight-gradient tile: taps
export const WNR: i32 = 8; // weight-gradient tile: output channels
export const WROWS_PIX: i32 = 512; // weight-gradient pixel block (the packed dY^T panel stays in L1)
export const PXR: i32 = 4; // pixel tiles: output pixels per tile
export const PXC: i32 = 8; // pixel tiles: output channels per tile (weights packed [K][PXC] per panel)

// Argument slots of every convolution job (written by src/kernels/wasm/conv.ts).
export const A_N = 0, A_INC = 1, A_INH = 2, A_INW = 3, A_OUTC = 4, A_KH = 5, A_KW = 6, A_SH = 7, A_SW = 8;
export const A_PT = 9, A_PL = 10, A_DH = 11, A_DW = 12, A_G = 13, A_OUTH = 14, A_OUTW = 15, A_HP = 16, A_WQ = 17;
export const A_X = 18, A_XPAD = 19, A_W = 20, A_WPACK = 21, A_OFFS = 22, A_BIAS = 23, A_Y = 24, A_AUX = 25, A_AUX2 = 26;
export const A_MR = 27; // rows of the forward tile (output channels): 5, 4 or 3
export const A_BLOCKS = 28; // Winograd: number of tile blocks
export const A_ROWMAJOR_TAPS = 29; // 1: taps ordered (ky, c, kx) for convRows, which then skips padding rows

// @ts-ignore: decorator
@inline function convMicro(mr: i32, kc: i32, pa: usize, xb: usize, offs: usize, c: usize, ldc: usize, acc: bool, bias: usize, rows: i32): void {
  if (mr == 5) conv_mk_5x8(kc, pa, xb, offs, c, ldc, acc, bias, rows);
  else if (mr == 4) conv_mk_4x8(kc, pa, xb, offs, c, ldc, acc, bias, rows);
  else conv_mk_3x8(kc, pa, xb, offs, c, ldc, acc, bias, rows);
}

// ---- preparation --------------------------------------------------------------------------------------

// Short runs (a padded row is tens of floats) are copied and cleared with inline SIMD loops: memory.copy
// and memory.fill go through a runtime call in V8 that costs more than the copy itself at these sizes.
// @ts-ignore: decorator
@inline export function zeroF32(dst: usize, n: i32): void {
  const z = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), z);
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), 0);
}
// @ts-ignore: decorator
@inline export function copyF32(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const o = <usize>i << 2;
    v128.store(dst + o, v128.load(src + o));
    v128.store(dst + o, v128.load(src + o, 16), 16);
  }
  for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), v128.load(src + (<usize>i << 2)));
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), load<f32>(src + (<usize>i << 2)));
}

/** xpad for planes (b, c) in [p0, p1) of x [n, C, inH, inW]. */
export function padPlanes(x: usize, xpad: usize, p0: i32, p1: i32, inH: i32, inW: i32, sW: i32, pT: i32, pL: i32, Hp: i32, Wq: i32): void {
  const planeFloats = <usize>sW * <usize>Hp * <usize>Wq;
  for (let p = p0; p < p1; p++) {
    const src = x + ((<usize>p * <usize>inH * <usize>inW) << 2);
    let dst = xpad + ((<usize>p * planeFloats) << 2);
    for (let f = 0; f < sW; f++) {
      // columns q of this phase read input column q*sW + f - pL; [q0, q1) are inside the input
      const q0 = phaseStart(Wq, sW, f, pL), q1 = phaseEnd(q0, Wq, sW, f, pL, inW);
      for (let r = 0; r < Hp; r++) {
        const iy = r - pT;
        if (iy < 0 || iy >= inH) {
          zeroF32(dst, Wq);
        } else {
          zeroF32(dst, q0);
          const srow = src + ((<usize>iy * <usize>inW) << 2);
          if (sW == 1) {
            copyF32(dst + (<usize>q0 << 2), srow + (<usize>(q0 - pL) << 2), q1 - q0);
          } else {
            for (let q = q0; q < q1; q++) store<f32>(dst + (<usize>q << 2), load<f32>(srow + (<usize>(q * sW + f - pL) << 2)));
          }
          zeroF32(dst + (<usize>q1 << 2), Wq - q1);
        }
        dst += <usize>Wq << 2;
      }
    }
  }
}

/**
 * Position of tap (c, ky, kx) in the tap order: (c, ky, kx), the weights' own, or with rowMajor (ky, c, kx),
 * where the taps of kernel rows [ky0, ky1) are one range (convRows leaves out rows that read padding).
 */
// @ts-ignore: decorator
@inline function tapIndex(c: i32, ky: i32, kx: i32, cinG: i32, kH: i32, kW: i32, rowMajor: bool): i32 {
  return rowMajor ? (ky * cinG + c) * kW + kx : (c * kH + ky) * kW + kx;
}

/** Byte offsets of every tap of one group into xpad (see the header), in tapIndex order. */
export function tapOffsets(offs: usize, cinG: i32, kH: i32, kW: i32, sW: i32, dH: i32, dW: i32, Hp: i32, Wq: i32, rowMajor: bool): void {
  for (let c = 0; c < cinG; c++)
    for (let ky = 0; ky < kH; ky++)
      for (let kx = 0; kx < kW; kx++) {
        const col = kx * dW;
        const o = ((c * sW + col % sW) * Hp + ky * dH) * Wq + col / sW;
        store<i32>(offs + (<usize>tapIndex(c, ky, kx, cinG, kH, kW, rowMajor) << 2), o << 2);
      }
}

/**
 * Pack the weights of panels [u0, u1) (unit = group * panels + panel of CMR output channels) into
 * wpack[unit][K][CMR], zero-padded past coutG, taps in tapIndex order.
 *   flipped = false: w is this convolution's weights [G*coutG][K].
 *   flipped = true:  this convolution is the input gradient of another one (stride 1), whose weights w are
 *     [G*coutO][coutG][kk] (its input channels are our output channels): our weight for output channel j,
 *     tap (c, t) is w[g*coutO + c][j][kk-1-t], with coutO = K / kk.
 */
export function packWeights(w: usize, wpack: usize, u0: i32, u1: i32, coutG: i32, K: i32, flipped: bool, kH: i32, kW: i32, mr: i32, rowMajor: bool): void {
  const panels = (coutG + mr - 1) / mr;
  const kk = kH * kW, cinG = K / kk;
  for (let u = u0; u < u1; u++) {
    const g = u / panels, q = u % panels;
    const oc0 = q * mr;
    const rows = min(mr, coutG - oc0);
    const dst = wpack + ((<usize>u * <usize>K * <usize>mr) << 2);
    if (rows < mr) memory.fill(dst, 0, (<usize>K * <usize>mr) << 2);
    for (let i = 0; i < rows; i++) {
      const j = oc0 + i;
      for (let c = 0; c < cinG; c++) {
        // not flipped: w is [G*coutG][cinG][kk]; flipped: w[g*cinG + c][j] holds our taps rotated by 180 degrees
        const s = flipped ? w + ((<usize>((g * cinG + c) * coutG + j) * <usize>kk) << 2) : w + ((<usize>((g * coutG + j) * cinG + c) * <usize>kk) << 2);
        for (let ky = 0; ky < kH; ky++)
          for (let kx = 0; kx < kW; kx++) {
            const t = ky * kW + kx;
            const k = tapIndex(c, ky, kx, cinG, kH, kW, rowMajor);
            store<f32>(dst + ((<usize>k * <usize>mr + <usize>i) << 2), load<f32>(s + (<usize>(flipped ? kk - 1 - t : t) << 2)));
          }
      }
    }
  }
}

// ---- forward ------------------------------------------------------------------------------------------

/** Output rows [r0, r1) (row = b * outH + oy) of the forward convolution, all channels. */
export function convRows(ctrl: usize, r0: i32, r1: i32, tile: usize): void {
  const inC = argI(ctrl, A_INC), outC = argI(ctrl, A_OUTC), G = argI(ctrl, A_G);
  const kH = argI(ctrl, A_KH), kW = argI(ctrl, A_KW), sH = argI(ctrl, A_SH), sW = argI(ctrl, A_SW);
  const outH = argI(ctrl, A_OUTH), outW = argI(ctrl, A_OUTW), Hp = argI(ctrl, A_HP), Wq = argI(ctrl, A_WQ);
  const xpad = argP(ctrl, A_XPAD), wpack = argP(ctrl, A_WPACK), offs = argP(ctrl, A_OFFS);
  const bias = argP(ctrl, A_BIAS), y = argP(ctrl, A_Y);
  const cinG = inC / G, coutG = outC / G;
  const K = cinG * kH * kW;
  const P = outH * outW;
  const mr = argI(ctrl, A_MR);
  const panels = (coutG + mr - 1) / mr;
  const planeB = (<usize>sW * <usize>Hp * <usize>Wq) << 2;
  const ldc = <usize>P << 2;
  const cmc = CMC / mr * mr; // whole tiles per weight block
  // taps in (ky, c, kx) order (one weight block): an output row reads only the kernel rows [ky0, ky1) that
  // land inside the input, one range of taps; the others would multiply padding
  const rowMajor = argI(ctrl, A_ROWMAJOR_TAPS) != 0 && K <= CKC;
  const inH = argI(ctrl, A_INH), pT = argI(ctrl, A_PT), dH = argI(ctrl, A_DH);
  const tapsPerRow = cinG * kW;
  for (let kb = 0; kb < K; kb += CKC) {
    const kc = min(CKC, K - kb);
    const accK = kb > 0;
    for (let g = 0; g < G; g++) {
      for (let mb = 0; mb < coutG; mb += cmc) {
        const me = min(coutG, mb + cmc);
        // per tile: the next weight panel, bias and output rows (a few additions: K = 147 taps of the
        // ResNet stem make a tile short enough that address arithmetic showed in profiles)
        const pa0 = wpack + ((<usize>(g * panels + mb / mr) * <usize>K + <usize>kb) * <usize>mr << 2);
        const paStep = (<usize>K * <usize>mr) << 2, cpStep = ldc * <usize>mr;
        const bias0: usize = !accK && bias != 0 ? bias + (<usize>(g * coutG + mb) << 2) : 0;
        const tapOffs = offs + (<usize>kb << 2);
        for (let row = r0; row < r1; row++) {
          const b = row / outH, oy = row % outH;
          const xrow = xpad + <usize>(b * inC + g * cinG) * planeB + ((<usize>(oy * sH) * <usize>Wq) << 2);
          const yrow = y + ((<usize>(b * outC + g * coutG) * <usize>P + <usize>(oy * outW)) << 2);
          // taps [k0, k0 + kn) of this row (all of them unless rowMajor)
          let k0 = 0, kn = kc;
          if (rowMajor) {
            // padded row oy*sH + ky*dH is an input row when pT <= it < pT + inH
            const top = pT - oy * sH, bottom = pT + inH - 1 - oy * sH;
            const ky0 = top > 0 ? (top + dH - 1) / dH : 0;
            const ky1 = bottom < 0 ? 0 : min(kH, bottom / dH + 1);
            k0 = min(ky0, ky1) * tapsPerRow;
            kn = max(0, ky1 - ky0) * tapsPerRow;
          }
          const rowTaps = tapOffs + (<usize>k0 << 2);
          for (let ox0 = 0; ox0 < outW; ox0 += CNR) {
            const xb = xrow + (<usize>ox0 << 2);
            const full = ox0 + CNR <= outW;
            let pa = pa0 + ((<usize>k0 * <usize>mr) << 2), bp = bias0, cp = yrow + ((<usize>mb * <usize>P + <usize>ox0) << 2);
            for (let oc0 = mb; oc0 < me; oc0 += mr, pa += paStep, cp += cpStep) {
              const rows = min(mr, coutG - oc0);
              if (full) {
                convMicro(mr, kn, pa, xb, rowTaps, cp, ldc, accK, bp, rows);
              } else {
                convMicro(mr, kn, pa, xb, rowTaps, tile, <usize>CNR << 2, false, bp, rows);
                const cols = outW - ox0;
                for (let i = 0; i < rows; i++)
                  for (let j = 0; j < cols; j++) {
                    const q = cp + ((<usize>i * <usize>P + <usize>j) << 2);
                    const v = load<f32>(tile + (<usize>(i * CNR + j) << 2));
                    store<f32>(q, accK ? load<f32>(q) + v : v);
                  }
              }
              if (bp != 0) bp += <usize>mr << 2;
            }
          }
        }
      }
    }
  }
}

/**
 * The forward convolution for narrow outputs (a row of `outW` pixels fills few 8-pixel tiles): the tile
 * is 8 consecutive pixels of the flattened output plane instead, possibly spanning rows, so every tile is
 * full. Its inputs are gathered per tap into a packed panel [K][8] (thread scratch), which the same
 * microkernel reads through the offsets 32*k. Units [u0, u1) count (image, group, panel).
 */
export function convPanels(ctrl: usize, u0: i32, u1: i32, scratch: usize): void {
  const inC = argI(ctrl, A_INC), outC = argI(ctrl, A_OUTC), G = argI(ctrl, A_G);
  const kH = argI(ctrl, A_KH), kW = argI(ctrl, A_KW), sH = argI(ctrl, A_SH), sW = argI(ctrl, A_SW);
  const outH = argI(ctrl, A_OUTH), outW = argI(ctrl, A_OUTW), Hp = argI(ctrl, A_HP), Wq = argI(ctrl, A_WQ);
  const xpad = argP(ctrl, A_XPAD), wpack = argP(ctrl, A_WPACK), offs = argP(ctrl, A_OFFS);
  const bias = argP(ctrl, A_BIAS), y = argP(ctrl, A_Y);
  const cinG = inC / G, coutG = outC / G;
  const K = cinG * kH * kW;
  const P = outH * outW;
  const PPI = (P + CNR - 1) / CNR; // panels per image
  const mr = argI(ctrl, A_MR);
  const panels = (coutG + mr - 1) / mr;
  const planeB = (<usize>sW * <usize>Hp * <usize>Wq) << 2;
  const ldc = <usize>P << 2;
  // scratch: edge tile (CNR * 4 floats), segment table (3 x 8 i32), panel offsets (K i32), panel (K x 8)
  const tile = scratch;
  const segs = tile + (<usize>(CNR * 4) << 2);
  const poffs = segs + 128;
  const panel = poffs + ((<usize>K << 2) + 63 & ~<usize>63);
  for (let k = 0; k < K; k++) store<i32>(poffs + (<usize>k << 2), k * (CNR << 2));
  for (let u = u0; u < u1; u++) {
    const j = u % PPI, bg = u / PPI;
    const g = bg % G, b = bg / G;
    const p0 = j * CNR, cnt = min(CNR, P - p0);
    // row segments of the panel's pixels: (byte offset into the image's padded input, column, length)
    let nseg = 0;
    let oy = p0 / outW, ox = p0 % outW, c = 0;
    while (c < cnt) {
      const len = min(cnt - c, outW - ox);
      store<i32>(segs + (<usize>nseg * 12), ((oy * sH) * Wq + ox) << 2);
      store<i32>(segs + (<usize>nseg * 12) + 4, c);
      store<i32>(segs + (<usize>nseg * 12) + 8, len);
      nseg++;
      c += len;
      ox = 0;
      oy++;
    }
    const xb = xpad + <usize>(b * inC + g * cinG) * planeB;
    if (cnt < CNR) memory.fill(panel, 0, (<usize>K * <usize>CNR) << 2);
    for (let k = 0; k < K; k++) {
      const src = xb + <usize>load<i32>(offs + (<usize>k << 2));
      const dst = panel + ((<usize>k * <usize>CNR) << 2);
      if (nseg == 1 && cnt == CNR) {
        const q = src + <usize>load<i32>(segs);
        v128.store(dst, v128.load(q));
        v128.store(dst, v128.load(q, 16), 16);
        continue;
      }
      for (let sg = 0; sg < nseg; sg++) {
        const q = src + <usize>load<i32>(segs + (<usize>sg * 12));
        const d = dst + (<usize>load<i32>(segs + (<usize>sg * 12) + 4) << 2);
        const len = load<i32>(segs + (<usize>sg * 12) + 8);
        for (let i = 0; i < len; i++) store<f32>(d + (<usize>i << 2), load<f32>(q + (<usize>i << 2)));
      }
    }
    const ybase = y + ((<usize>(b * outC + g * coutG) * <usize>P + <usize>p0) << 2);
    for (let kb = 0; kb < K; kb += CKC) {
      const kc = min(CKC, K - kb);
      const accK = kb > 0;
      for (let oc0 = 0; oc0 < coutG; oc0 += mr) {
        const pa = wpack + ((<usize>((g * panels + oc0 / mr)) * <usize>K + <usize>kb) * <usize>mr << 2);
        const rows = min(mr, coutG - oc0);
        const bp: usize = !accK && bias != 0 ? bias + (<usize>(g * coutG + oc0) << 2) : 0;
        const cp = ybase + ((<usize>oc0 * <usize>P) << 2);
        if (cnt == CNR) {
          convMicro(mr, kc, pa, panel, poffs + (<usize>kb << 2), cp, ldc, accK, bp, rows);
        } else {
          convMicro(mr, kc, pa, panel, poffs + (<usize>kb << 2), tile, <usize>CNR << 2, false, bp, rows);
          for (let i = 0; i < rows; i++)
            for (let jj = 0; jj < cnt; jj++) {
              const q = cp + ((<usize>i * <usize>P + <usize>jj) << 2);
              const v = load<f32>(tile + (<usize>(i * CNR + jj) << 2));
              store<f32>(q, accK ? load<f32>(q) + v : v);
            }
        }
      }
    }
  }
}

/** bias[j] broadcast (0 without a bias: bp = 0). */
// @ts-ignore: decorator
@inline function biasSplat(bp: usize, j: usize): v128 {
  return bp != 0 ? v128.load32_splat(bp + (j << 2)) : f32x4.splat(0);
}

/**
 * The forward convolution by pixel tiles, for narrow rows and few output channels (groups = 1): a tile is
 * PXR consecutive pixels of the flattened n x outH x outW output (spanning rows and images, so every tile
 * is full) times PXC output channels. Each pixel's inputs are read in place from xpad, without the gather
 * of convPanels. Weights packed [panel][K][PXC] (packWeights with mr = PXC). Units [t0, t1) count tiles.
 */
export function convPixels(ctrl: usize, t0: i32, t1: i32, tile: usize): void {
  const n = argI(ctrl, A_N), inC = argI(ctrl, A_INC), outC = argI(ctrl, A_OUTC);
  const kH = argI(ctrl, A_KH), kW = argI(ctrl, A_KW), sH = argI(ctrl, A_SH), sW = argI(ctrl, A_SW);
  const outH = argI(ctrl, A_OUTH), outW = argI(ctrl, A_OUTW), Hp = argI(ctrl, A_HP), Wq = argI(ctrl, A_WQ);
  const xpad = argP(ctrl, A_XPAD), wpack = argP(ctrl, A_WPACK), offs = argP(ctrl, A_OFFS);
  const bias = argP(ctrl, A_BIAS), y = argP(ctrl, A_Y);
  const K = inC * kH * kW, P = outH * outW, total = n * P;
  const imageB = (<usize>inC * <usize>sW * <usize>Hp * <usize>Wq) << 2, rowB = (<usize>sH * <usize>Wq) << 2;
  const panelB = (<usize>K * <usize>PXC) << 2, planeB = <usize>P << 2;
  // a cursor over output pixels (image b, row oy, column ox) and the xpad address of its first input
  // (tap offsets are added to it): divisions only once per unit
  let b = (t0 * PXR) / P, oy = (t0 * PXR) % P / outW, ox = (t0 * PXR) % P % outW;
  let xq = xpad + <usize>b * imageB + <usize>oy * rowB + (<usize>ox << 2);
  const inputs = tile + (<usize>(PXR * PXC) << 2); // the tile's PXR input addresses
  for (let t = t0; t < t1; t++) {
    const q0 = t * PXR, cnt = min(PXR, total - q0);
    const b0 = b, p0 = oy * outW + ox;
    let bLast = b;
    for (let i = 0; i < PXR; i++) {
      store<usize>(inputs + (<usize>i << 2), xq); // pixels past the end repeat the last one (not stored)
      bLast = b;
      if (q0 + i + 1 >= total) continue;
      xq += 4;
      if (++ox == outW) {
        ox = 0;
        xq += rowB - (<usize>outW << 2);
        if (++oy == outH) {
          oy = 0;
          b++;
          xq = xpad + <usize>b * imageB;
        }
      }
    }
    const x0 = load<usize>(inputs), x1 = load<usize>(inputs, 4), x2 = load<usize>(inputs, 8), x3 = load<usize>(inputs, 12);
    // the 4 pixels are consecutive floats of each output plane: transposed vector stores
    const together = cnt == PXR && bLast == b0;
    for (let c0 = 0; c0 < outC; c0 += PXC) {
      convpx_mk_4x8(K, wpack + <usize>(c0 / PXC) * panelB, offs, x0, x1, x2, x3, tile, <usize>PXC << 2);
      const chans = min(PXC, outC - c0);
      if (together) {
        const dst = y + ((<usize>(b0 * outC + c0) * <usize>P + <usize>p0) << 2);
        for (let h = 0; h < PXC; h += 4) {
          // tile rows are pixels: transpose each 4 x 4 half (channels h .. h + 3) into rows of channels
          const hb = <usize>h << 2;
          const r0 = v128.load(tile + hb), r1 = v128.load(tile + 32 + hb), r2 = v128.load(tile + 64 + hb), r3 = v128.load(tile + 96 + hb);
          const s0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5), s1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
          const s2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7), s3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
          const bp = bias != 0 ? bias + (<usize>(c0 + h) << 2) : 0;
          const d = dst + <usize>h * planeB;
          if (h < chans) v128.store(d, f32x4.add(v128.shuffle<f32>(s0, s1, 0, 1, 4, 5), biasSplat(bp, 0)));
          if (h + 1 < chans) v128.store(d + planeB, f32x4.add(v128.shuffle<f32>(s0, s1, 2, 3, 6, 7), biasSplat(bp, 1)));
          if (h + 2 < chans) v128.store(d + 2 * planeB, f32x4.add(v128.shuffle<f32>(s2, s3, 0, 1, 4, 5), biasSplat(bp, 2)));
          if (h + 3 < chans) v128.store(d + 3 * planeB, f32x4.add(v128.shuffle<f32>(s2, s3, 2, 3, 6, 7), biasSplat(bp, 3)));
        }
      } else {
        for (let i = 0; i < cnt; i++) {
          const q = q0 + i, bi = q / P;
          const dst = y + ((<usize>(bi * outC + c0) * <usize>P + <usize>(q - bi * P)) << 2);
          for (let j = 0; j < chans; j++) {
            const v = load<f32>(tile + (<usize>(i * PXC + j) << 2));
            store<f32>(dst + <usize>j * planeB, bias != 0 ? v + load<f32>(bias + (<usize>(c0 + j) << 2)) : v);
          }
        }
      }
    }
  }
}

// ---- input gradient helpers ----------------------------------------------------------------------------

/** W'[g*cinG + ic][oc][ky][kx] = W[g*coutG + oc][ic][kH-1-ky][kW-1-kx] for rows (g*cinG + ic) in [r0, r1). */
export function flipWeights(w: usize, wf: usize, r0: i32, r1: i32, cinG: i32, coutG: i32, kH: i32, kW: i32): void {
  const kk = kH * kW;
  for (let r = r0; r < r1; r++) {
    const g = r / cinG, ic = r % cinG;
    for (let oc = 0; oc < coutG; oc++) {
      const src = w + ((<usize>((g * coutG + oc) * cinG + ic) * <usize>kk) << 2);
      const dst = wf + ((<usize>(r * coutG + oc) * <usize>kk) << 2);
      for (let t = 0; t < kk; t++) store<f32>(dst + (<usize>t << 2), load<f32>(src + (<usize>(kk - 1 - t) << 2)));
    }
  }
}

/** dx[c] += col2im(dcol) for channels c in [c0, c1) of one image and group; dcol is [cinG*kH*kW, P]. */
export function col2imChannels(dcol: usize, dx: usize, c0: i32, c1: i32, inH: i32, inW: i32, kH: i32, kW: i32,
  sH: i32, sW: i32, pT: i32, pL: i32, dH: i32, dW: i32, outH: i32, outW: i32): void {
  const P = outH * outW;
  for (let c = c0; c < c1; c++) {
    const plane = dx + ((<usize>c * <usize>inH * <usize>inW) << 2);
    for (let ky = 0; ky < kH; ky++)
      for (let kx = 0; kx < kW; kx++) {
        const row = dcol + ((<usize>((c * kH + ky) * kW + kx) * <usize>P) << 2);
        for (let oy = 0; oy < outH; oy++) {
          const iy = oy * sH - pT + ky * dH;
          if (iy < 0 || iy >= inH) continue;
          const drow = plane + ((<usize>iy * <usize>inW) << 2);
          const srow = row + ((<usize>oy * <usize>outW) << 2);
          for (let ox = 0; ox < outW; ox++) {
            const ix = ox * sW - pL + kx * dW;
            if (ix < 0 || ix >= inW) continue;
            const q = drow + (<usize>ix << 2);
            store<f32>(q, load<f32>(q) + load<f32>(srow + (<usize>ox << 2)));
          }
        }
      }
  }
}

// ---- weight gradient ------------------------------------------------------------------------------------

/** dyT[b][g][s][p][WNR] = dY[b][g*coutG + s*WNR + j][p] (zero past coutG), for units (b*G + g) in [u0, u1). */
export function packDyT(dy: usize, dyT: usize, u0: i32, u1: i32, coutG: i32, P: i32): void {
  const S = (coutG + WNR - 1) / WNR;
  for (let u = u0; u < u1; u++) {
    const src = dy + ((<usize>u * <usize>coutG * <usize>P) << 2); // (b*G + g) * coutG == b*outC + g*coutG
    for (let s = 0; s < S; s++) {
      const dst = dyT + ((<usize>(u * S + s) * <usize>P * <usize>WNR) << 2);
      const cols = min(WNR, coutG - s * WNR);
      const sb = src + ((<usize>(s * WNR) * <usize>P) << 2);
      let p = 0;
      if (cols == WNR) {
        const ld = <usize>P << 2;
        for (; p + 4 <= P; p += 4) {
          for (let jj = 0; jj < WNR; jj += 4) {
            const q = sb + <usize>jj * ld + (<usize>p << 2);
            const r0 = v128.load(q), r1 = v128.load(q + ld), r2 = v128.load(q + 2 * ld), r3 = v128.load(q + 3 * ld);
            const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
            const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7), t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
            const d = dst + ((<usize>p * <usize>WNR + <usize>jj) << 2);
            v128.store(d, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
            v128.store(d + (<usize>WNR << 2), v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
            v128.store(d + (<usize>WNR << 3), v128.shuffle<f32>(t2, t3, 0, 1, 4, 5));
            v128.store(d + (<usize>WNR * 12), v128.shuffle<f32>(t2, t3, 2, 3, 6, 7));
          }
        }
      }
      for (; p < P; p++) {
        const d = dst + ((<usize>p * <usize>WNR) << 2);
        for (let j = 0; j < WNR; j++) store<f32>(d + (<usize>j << 2), j < cols ? load<f32>(sb + ((<usize>j * <usize>P + <usize>p) << 2)) : 0);
      }
    }
  }
}

// @ts-ignore: decorator
@inline function wgradMicro(nrows: i32, width: i32, rowStep: usize, xb: usize, offs: usize, kk0: i32, K: i32, pb: usize, c: usize, ldc: usize): void {
  // taps past K read a valid tap (their rows of dW^T are padding and never copied out)
  const last = K - 1;
  const x0 = xb + <usize>load<i32>(offs + (<usize>min(kk0, last) << 2));
  const x1 = xb + <usize>load<i32>(offs + (<usize>min(kk0 + 1, last) << 2));
  const x2 = xb + <usize>load<i32>(offs + (<usize>min(kk0 + 2, last) << 2));
  const x3 = xb + <usize>load<i32>(offs + (<usize>min(kk0 + 3, last) << 2));
  wgrad_mk_4x8(nrows, width, rowStep, x0, x1, x2, x3, pb, c, ldc);
}

/**
 * Units [u0, u1) of the weight gradient, unit = g * tapPanels + tap panel. dwT (AUX2) is
 * [G][Kpad][Spad] with Kpad = tapPanels * WMR, Spad = S * WNR; dY^T packed in AUX; result written to W.
 */
export function wgradUnits(ctrl: usize, u0: i32, u1: i32): void {
  if (u1 <= u0) return;
  const n = argI(ctrl, A_N), inC = argI(ctrl, A_INC), outC = argI(ctrl, A_OUTC), G = argI(ctrl, A_G);
  const kH = argI(ctrl, A_KH), kW = argI(ctrl, A_KW), sH = argI(ctrl, A_SH), sW = argI(ctrl, A_SW);
  const outH = argI(ctrl, A_OUTH), outW = argI(ctrl, A_OUTW), Hp = argI(ctrl, A_HP), Wq = argI(ctrl, A_WQ);
  const xpad = argP(ctrl, A_XPAD), offs = argP(ctrl, A_OFFS), dyT = argP(ctrl, A_AUX), dwT = argP(ctrl, A_AUX2);
  const dw = argP(ctrl, A_W);
  const cinG = inC / G, coutG = outC / G;
  const K = cinG * kH * kW;
  const P = outH * outW;
  const TP = (K + WMR - 1) / WMR;
  const S = (coutG + WNR - 1) / WNR;
  const Kpad = TP * WMR, Spad = S * WNR;
  const planeB = (<usize>sW * <usize>Hp * <usize>Wq) << 2;
  const ldc = <usize>Spad << 2;
  // zero this thread's rows of dW^T
  for (let u = u0; u < u1; u++) {
    const g = u / TP, tp = u % TP;
    memory.fill(dwT + ((<usize>(g * Kpad + tp * WMR) * <usize>Spad) << 2), 0, (<usize>WMR * <usize>Spad) << 2);
  }
  const rowsPerBlock = max(1, WROWS_PIX / max(1, outW));
  const rowStep = (<usize>sH * <usize>Wq) << 2;
  for (let b = 0; b < n; b++) {
    for (let rb = 0; rb < outH; rb += rowsPerBlock) {
      const nrows = min(rowsPerBlock, outH - rb);
      for (let s = 0; s < S; s++) {
        for (let u = u0; u < u1; u++) {
          const g = u / TP, tp = u % TP;
          const pb = dyT + ((<usize>((b * G + g) * S + s) * <usize>P + <usize>(rb * outW)) * <usize>WNR << 2);
          const xb = xpad + <usize>(b * inC + g * cinG) * planeB + <usize>rb * rowStep;
          const c = dwT + ((<usize>(g * Kpad + tp * WMR) * <usize>Spad + <usize>(s * WNR)) << 2);
          wgradMicro(nrows, outW, rowStep, xb, offs, tp * WMR, K, pb, c, ldc);
        }
      }
    }
  }
  // dW[g*coutG + oc][k] = dW^T[g][k][oc]
  for (let u = u0; u < u1; u++) {
    const g = u / TP, tp = u % TP;
    const kEnd = min(K, tp * WMR + WMR);
    for (let k = tp * WMR; k < kEnd; k++) {
      const src = dwT + ((<usize>(g * Kpad + k) * <usize>Spad) << 2);
      for (let oc = 0; oc < coutG; oc++)
        store<f32>(dw + ((<usize>(g * coutG + oc) * <usize>K + <usize>k) << 2), load<f32>(src + (<usize>oc << 2)));
    }
  }
}

// ---- depthwise (one input and one output channel per group) ------------------------------------------

/** Planes (b, c) in [p0, p1): y = depthwise conv(xpad) + bias, 4 output pixels at a time. */
export function depthwiseRows(ctrl: usize, p0: i32, p1: i32): void {
  const C = argI(ctrl, A_INC), kH = argI(ctrl, A_KH), kW = argI(ctrl, A_KW), sH = argI(ctrl, A_SH), sW = argI(ctrl, A_SW);
  const outH = argI(ctrl, A_OUTH), outW = argI(ctrl, A_OUTW), Hp = argI(ctrl, A_HP), Wq = argI(ctrl, A_WQ);
  const xpad = argP(ctrl, A_XPAD), w = argP(ctrl, A_W), offs = argP(ctrl, A_OFFS), bias = argP(ctrl, A_BIAS), y = argP(ctrl, A_Y);
  const K = kH * kW;
  const planeB = (<usize>sW * <usize>Hp * <usize>Wq) << 2;
  for (let p = p0; p < p1; p++) {
    const c = p % C;
    const wc = w + ((<usize>c * <usize>K) << 2);
    const bv = f32x4.splat(bias != 0 ? load<f32>(bias + (<usize>c << 2)) : 0);
    const xp = xpad + <usize>p * planeB;
    const yp = y + ((<usize>p * <usize>outH * <usize>outW) << 2);
    for (let oy = 0; oy < outH; oy++) {
      const xr = xp + ((<usize>(oy * sH) * <usize>Wq) << 2);
      const yr = yp + ((<usize>oy * <usize>outW) << 2);
      for (let ox = 0; ox < outW; ox += 4) {
        let acc = bv;
        const xb = xr + (<usize>ox << 2);
        for (let k = 0; k < K; k++) {
          acc = f32x4.add(acc, f32x4.mul(v128.load32_splat(wc + (<usize>k << 2)), v128.load(xb + <usize>load<i32>(offs + (<usize>k << 2)))));
        }
        const q = yr + (<usize>ox << 2);
        const cnt = outW - ox;
        if (cnt >= 4) v128.store(q, acc);
        else {
          v128.store32_lane(q, acc, 0);
          if (cnt > 1) v128.store32_lane(q, acc, 1, 4);
          if (cnt > 2) v128.store32_lane(q, acc, 2, 8);
        }
      }
    }
  }
}

/** Channels [c0, c1): dw[c][k] = sum over images and pixels of dY * x (depthwise). */
export function depthwiseWgrad(ctrl: usize, c0: i32, c1: i32): void {
  const n = argI(ctrl, A_N), C = argI(ctrl, A_INC), kH = argI(ctrl, A_KH), kW = argI(ctrl, A_KW), sH = argI(ctrl, A_SH), sW = argI(ctrl, A_SW);
  const outH = argI(ctrl, A_OUTH), outW = argI(ctrl, A_OUTW), Hp = argI(ctrl, A_HP), Wq = argI(ctrl, A_WQ);
  const xpad = argP(ctrl, A_XPAD), dw = argP(ctrl, A_W), offs = argP(ctrl, A_OFFS), dy = argP(ctrl, A_Y);
  const K = kH * kW;
  const planeB = (<usize>sW * <usize>Hp * <usize>Wq) << 2;
  for (let c = c0; c < c1; c++) {
    for (let k = 0; k < K; k++) {
      const off = <usize>load<i32>(offs + (<usize>k << 2));
      let acc = f32x4.splat(0);
      let tail: f64 = 0;
      for (let b = 0; b < n; b++) {
        const p = b * C + c;
        const xp = xpad + <usize>p * planeB + off;
        const dp = dy + ((<usize>p * <usize>outH * <usize>outW) << 2);
        for (let oy = 0; oy < outH; oy++) {
          const xr = xp + ((<usize>(oy * sH) * <usize>Wq) << 2);
          const dr = dp + ((<usize>oy * <usize>outW) << 2);
          let ox = 0;
          for (; ox + 4 <= outW; ox += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(dr + (<usize>ox << 2)), v128.load(xr + (<usize>ox << 2))));
          for (; ox < outW; ox++) tail += <f64>(load<f32>(dr + (<usize>ox << 2)) * load<f32>(xr + (<usize>ox << 2)));
        }
      }
      const s = <f64>f32x4.extract_lane(acc, 0) + <f64>f32x4.extract_lane(acc, 1) + <f64>f32x4.extract_lane(acc, 2) + <f64>f32x4.extract_lane(acc, 3) + tail;
      store<f32>(dw + ((<usize>c * <usize>K + <usize>k) << 2), <f32>s);
    }
  }
}

/** Planes [p0, p1) of the depthwise input gradient by scattering (used when the stride is not 1). */
export function depthwiseBackwardInput(ctrl: usize, p0: i32, p1: i32): void {
  const C = argI(ctrl, A_INC), inH = argI(ctrl, A_INH), inW = argI(ctrl, A_INW), kH = argI(ctrl, A_KH), kW = argI(ctrl, A_KW);
  const sH = argI(ctrl, A_SH), sW = argI(ctrl, A_SW), pT = argI(ctrl, A_PT), pL = argI(ctrl, A_PL), dH = argI(ctrl, A_DH), dW = argI(ctrl, A_DW);
  const outH = argI(ctrl, A_OUTH), outW = argI(ctrl, A_OUTW);
  const w = argP(ctrl, A_W), dy = argP(ctrl, A_Y), dx = argP(ctrl, A_X);
  for (let p = p0; p < p1; p++) {
    const c = p % C;
    const dxp = dx + ((<usize>p * <usize>inH * <usize>inW) << 2);
    const dyp = dy + ((<usize>p * <usize>outH * <usize>outW) << 2);
    memory.fill(dxp, 0, (<usize>inH * <usize>inW) << 2);
    for (let ky = 0; ky < kH; ky++)
      for (let kx = 0; kx < kW; kx++) {
        const wv = load<f32>(w + ((<usize>(c * kH * kW + ky * kW + kx)) << 2));
        for (let oy = 0; oy < outH; oy++) {
          const iy = oy * sH - pT + ky * dH;
          if (iy < 0 || iy >= inH) continue;
          for (let ox = 0; ox < outW; ox++) {
            const ix = ox * sW - pL + kx * dW;
            if (ix < 0 || ix >= inW) continue;
            const q = dxp + ((<usize>(iy * inW + ix)) << 2);
            store<f32>(q, load<f32>(q) + load<f32>(dyp + ((<usize>(oy * outW + ox)) << 2)) * wv);
          }
        }
      }
  }
}
