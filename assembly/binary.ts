// Binary (XNOR-popcount) kernels: binarize-and-pack, weight packing and the binary convolution.
// The reference (the spec, tested bit for bit against these) is src/kernels/ref/binary.ts.
//
// Layouts
//   bits     [n, h, w, words] u64, words = ceil(C / 64); bit c % 64 of word c / 64 is 1 for +1 (x >= 0),
//            unused high bits 0. Channels innermost: one output pixel's receptive field is kH * kW runs of
//            `words` contiguous words, and for 64 channels a tap is a single u64.
//   weights  u64 words ((block * taps + tap) * words + k) * CB + (oc % CB), block = oc / CB, tap = ky*kW + kx:
//            the CB output channels of a block sit side by side, so the microkernel streams one pointer and
//            loads them with constant offsets. Channels past outC in the last block are zero (computed and
//            discarded).
//
// Convolution: acc = sum over taps inside the image of (inC - 2 popcount(x xor w)). Unused bits are 0 in both
// operands, so the popcount only ever sees real channels; a tap outside the image is skipped (padding is a 0,
// not a -1), so acc = validTaps * inC - 2 * (popcount sum over the valid taps).
//
// Where the speed is: the interior of the image (every tap inside) runs 1 output pixel x CB = 8 output channels
// per weight block, in two passes of 4 channels: for each (tap, word) one input word and 4 weight words, 4 xor +
// popcnt + add into 4 accumulators. Scalar i64.popcnt is one POPCNT instruction in V8 and the bottleneck (one per
// cycle); SIMD i8x16.popcnt is a pshufb sequence in V8 and measured slower. Larger register tiles (4 pixels x 4
// channels, 1 x 8 in one pass) spill their accumulators on x64 (V8 has ~12 allocatable registers) and ran up to
// 2x slower; a variant unrolling 3 contiguous taps without the offset table measured no faster. Input words come
// from a small table of byte offsets (one per (tap, word), built per job unit in the thread's scratch), so the
// inner loop is one flat loop whatever the kernel size, stride or dilation. Border pixels run one pixel over
// their clipped tap window (no per-tap bounds checks). Work is split over rows of output pixels.
// The epilogue works on 4 channels at a time (f32x4: convert, mul, add; no FMA), exactly the reference's f32
// arithmetic; 'bits' turns the comparisons into bits with i32x4.bitmask.

import { firstTap, endTap, interiorLo, interiorHi } from './window';
import { argF, argI, argP } from './layout';

/** Output channels per interleaved weight block (== BINARY_CB in src/kernels/ref/binary.ts). */
export const CB: i32 = 8;

// Argument slots of the binary jobs (src/kernels/wasm/binary.ts writes them).
export const B_N = 0, B_INC = 1, B_INH = 2, B_INW = 3, B_OUTC = 4, B_KH = 5, B_KW = 6, B_SH = 7, B_SW = 8;
export const B_PT = 9, B_PL = 10, B_DH = 11, B_DW = 12, B_OUTH = 13, B_OUTW = 14, B_X = 15, B_W = 16, B_Y = 17;
export const B_EP = 18, B_P1 = 19, B_P2 = 20, B_P3 = 21, B_LO = 22, B_HI = 23, B_ZP = 24;
/** Float epilogue only: per-pixel multiplier (XNOR-Net's K) and per-channel bias added after it (0: none). */
export const B_KPIX = 25, B_KBIAS = 26;
/**
 * Float epilogue only: the batch norm after the layer (per-channel scale and shift; 0: none), its ReLU (1) and
 * a residual added between the two (f32 NCHW like the output; 0: none).
 */
export const B_POSTS = 27, B_POSTT = 28, B_POSTRELU = 29, B_POSTR = 30;
/** Epilogue kinds (B_EP). float: P1 scale, P2 offset; bits: P1 scale, P2 offset; requant: P1 bias, P2 multiplier, P3 shift. */
export const EP_FLOAT = 0, EP_INT32 = 1, EP_BITS = 2, EP_REQUANT = 3;

// ---- binarizePack --------------------------------------------------------------------------------------

/**
 * Rows [r0, r1) of n * h of the f32 NCHW x into bits: 4 pixels at a time, 64 channels per word. With scale
 * (and shift) pointers, v = f32(f32(x * scale[c]) + shift[c]) is binarized instead of x; with absMean, the
 * f32 sum over the channels (in order) of |v|, divided by C, is written per pixel (XNOR-Net's A).
 */
export function binarizePackRows(x: usize, y: usize, r0: i32, r1: i32, C: i32, H: i32, W: i32, scale: usize, shift: usize, absMean: usize): void {
  const words = (C + 63) >> 6, hw = H * W;
  const plane = <usize>hw << 2;
  const zero = f32x4.splat(0);
  const vC = f32x4.splat(<f32>C);
  for (let r = r0; r < r1; r++) {
    const b = r / H, py = r - b * H;
    const pix0 = r * W; // pixel index (b, py, 0) in [n, h, w]
    const xrow = x + ((<usize>(b * C) * <usize>hw + <usize>(py * W)) << 2);
    let px = 0;
    for (; px + 4 <= W; px += 4) {
      let sum = f32x4.splat(0);
      for (let k = 0; k < words; k++) {
        const c0 = k << 6, c1 = min(C, c0 + 64);
        let lo = i32x4.splat(0), hi = i32x4.splat(0);
        let p = xrow + (<usize>px << 2) + <usize>c0 * plane;
        // v >= 0 is false for NaN and true for -0, as in the reference
        for (let c = c0; c < c1; c++, p += plane) {
          let v = v128.load(p);
          if (scale != 0) v = f32x4.add(f32x4.mul(v, v128.load32_splat(scale + (<usize>c << 2))), v128.load32_splat(shift + (<usize>c << 2)));
          if (absMean != 0) sum = f32x4.add(sum, f32x4.abs(v));
          const m = v128.and(f32x4.ge(v, zero), i32x4.splat(1 << (c & 31)));
          if ((c & 32) == 0) lo = v128.or(lo, m);
          else hi = v128.or(hi, m);
        }
        // interleave to the u64 words of pixels px .. px+3 (low half = channels 0..31)
        const w01 = i8x16.shuffle(lo, hi, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
        const w23 = i8x16.shuffle(lo, hi, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
        const q = y + ((<usize>(pix0 + px) * <usize>words + <usize>k) << 3), step = <usize>words << 3;
        store<u64>(q, i64x2.extract_lane(w01, 0));
        store<u64>(q + step, i64x2.extract_lane(w01, 1));
        store<u64>(q + 2 * step, i64x2.extract_lane(w23, 0));
        store<u64>(q + 3 * step, i64x2.extract_lane(w23, 1));
      }
      if (absMean != 0) v128.store(absMean + (<usize>(pix0 + px) << 2), f32x4.div(sum, vC));
    }
    for (; px < W; px++) {
      let sum: f32 = 0;
      for (let k = 0; k < words; k++) {
        const c0 = k << 6, c1 = min(C, c0 + 64);
        let bits: u64 = 0;
        let p = xrow + (<usize>px << 2) + <usize>c0 * plane;
        for (let c = c0; c < c1; c++, p += plane) {
          let v = load<f32>(p);
          if (scale != 0) v = v * load<f32>(scale + (<usize>c << 2)) + load<f32>(shift + (<usize>c << 2));
          sum += abs<f32>(v);
          if (v >= 0) bits |= (<u64>1) << <u64>(c & 63);
        }
        store<u64>(y + ((<usize>(pix0 + px) * <usize>words + <usize>k) << 3), bits);
      }
      if (absMean != 0) store<f32>(absMean + (<usize>(pix0 + px) << 2), sum / <f32>C);
    }
  }
}

// ---- weight packing ------------------------------------------------------------------------------------

/** Blocks [blk0, blk1) of CB output channels of the f32 weights [outC, inC, kH, kW] into packed signs. */
export function binaryPackWeightBlocks(w: usize, dst: usize, blk0: i32, blk1: i32, outC: i32, inC: i32, taps: i32): void {
  const words = (inC + 63) >> 6;
  for (let blk = blk0; blk < blk1; blk++)
    for (let tap = 0; tap < taps; tap++)
      for (let k = 0; k < words; k++)
        for (let j = 0; j < CB; j++) {
          const oc = blk * CB + j;
          let bits: u64 = 0;
          if (oc < outC) {
            const c1 = min(inC, (k << 6) + 64);
            for (let ic = k << 6; ic < c1; ic++) {
              if (load<f32>(w + ((<usize>((oc * inC + ic) * taps + tap)) << 2)) >= 0) bits |= (<u64>1) << <u64>(ic & 63);
            }
          }
          store<u64>(dst + ((<usize>(((blk * taps + tap) * words + k) * CB + j)) << 3), bits);
        }
}

// ---- convolution ---------------------------------------------------------------------------------------

// The job's geometry and epilogue, set per unit (module globals are per instance, i.e. per thread).
let gInC = 0, gInH = 0, gInW = 0, gOutC = 0, gOutH = 0, gOutW = 0, gWords = 0, gOutWords = 0, gPlane = 0;
let gEp = 0, gY: usize = 0, gScale: usize = 0, gOffset: usize = 0, gBias: usize = 0, gMult: usize = 0, gShift: usize = 0;
let gLo: f32 = 0, gHi: f32 = 0, gILo = 0, gIHi = 0, gZp = 0;
let gClamp = false; // float epilogue: lo or hi finite (f32x4.min/max are ~7 instructions each in V8 on x64)
let gTmp: usize = 0; // 32 bytes of scratch: the 8 lanes of a block's results; then a 128-byte tile of 4 pixels
let gK: usize = 0, gKBias: usize = 0, gPostS: usize = 0, gPostT: usize = 0, gPostR: usize = 0, gPostRelu = false;

/**
 * The float epilogue's last steps for one value of channel oc at byte offset `at` of the output: + bias, then
 * the fused batch norm, residual add and ReLU.
 */
// @ts-ignore: decorator
@inline function finishScalar(v: f32, oc: i32, at: usize): f32 {
  if (gKBias != 0) v += load<f32>(gKBias + (<usize>oc << 2));
  if (gPostS != 0) {
    v = v * load<f32>(gPostS + (<usize>oc << 2)) + load<f32>(gPostT + (<usize>oc << 2));
    if (gPostR != 0) v += load<f32>(gPostR + at);
    if (gPostRelu) v = select<f32>(v, 0, v > 0);
  }
  return v;
}

/** finishScalar for 4 neighbouring pixels of channel oc. */
// @ts-ignore: decorator
@inline function finishVec(v: v128, oc: i32, at: usize): v128 {
  if (gKBias != 0) v = f32x4.add(v, v128.load32_splat(gKBias + (<usize>oc << 2)));
  if (gPostS != 0) {
    v = f32x4.add(f32x4.mul(v, v128.load32_splat(gPostS + (<usize>oc << 2))), v128.load32_splat(gPostT + (<usize>oc << 2)));
    if (gPostR != 0) v = f32x4.add(v, v128.load(gPostR + at));
    if (gPostRelu) v = f32x4.pmax(f32x4.splat(0), v); // v > 0 ? v : 0, as the relu kernel
  }
  return v;
}


/** 4 popcount sums as i32x4 accumulators: validTaps * inC - 2 * ones. */
// @ts-ignore: decorator
@inline function accOf(base: i32, c0: u64, c1: u64, c2: u64, c3: u64): v128 {
  let v = i32x4.splat(<i32>c0);
  v = i32x4.replace_lane(v, 1, <i32>c1);
  v = i32x4.replace_lane(v, 2, <i32>c2);
  v = i32x4.replace_lane(v, 3, <i32>c3);
  return i32x4.sub(i32x4.splat(base), i32x4.shl(v, 1));
}

/** f32(f32(f32(acc) * scale) + offset) for the 4 channels from oc (scale, offset padded to whole blocks). */
// @ts-ignore: decorator
@inline function affine(acc: v128, oc: i32): v128 {
  return f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(acc), v128.load(gScale + (<usize>oc << 2))), v128.load(gOffset + (<usize>oc << 2)));
}

/** The float epilogue's 8 values of a block at pixel `pix` (before the bias), into dst[0..7]. */
// @ts-ignore: decorator
@inline function floatLanes(lo: v128, hi: v128, oc0: i32, pix: i32, dst: usize): void {
  let v0 = affine(lo, oc0), v1 = affine(hi, oc0 + 4);
  if (gClamp) {
    const vlo = f32x4.splat(gLo), vhi = f32x4.splat(gHi);
    v0 = f32x4.min(f32x4.max(v0, vlo), vhi);
    v1 = f32x4.min(f32x4.max(v1, vlo), vhi);
  }
  if (gK != 0) {
    const k = v128.load32_splat(gK + (<usize>pix << 2));
    v0 = f32x4.mul(v0, k);
    v1 = f32x4.mul(v1, k);
  }
  v128.store(dst, v0);
  v128.store(dst, v1, 16);
}

/**
 * The float epilogue of block `blk` for 4 neighbouring pixels of one output row (pix .. pix+3 of image b), whose
 * lanes sit in the tile as [pixel][channel]: transposed 4x4 at a time so that each channel's 4 pixels, which are
 * contiguous in NCHW, go out as one v128 store instead of 4 scattered scalar ones.
 */
function storeFloatTile(tile: usize, blk: i32, b: i32, pix: i32): void {
  const oc0 = blk * CB;
  const plane = <usize>gPlane;
  for (let h = 0; h < 2; h++) {
    const r0 = v128.load(tile + (<usize>h << 4)), r1 = v128.load(tile + 32 + (<usize>h << 4));
    const r2 = v128.load(tile + 64 + (<usize>h << 4)), r3 = v128.load(tile + 96 + (<usize>h << 4));
    const t0 = i8x16.shuffle(r0, r1, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    const t1 = i8x16.shuffle(r0, r1, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    const t2 = i8x16.shuffle(r2, r3, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    const t3 = i8x16.shuffle(r2, r3, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    const oc = oc0 + (h << 2);
    const q = gY + ((<usize>(b * gOutC + oc) * plane + <usize>(pix - b * gPlane)) << 2), step = plane << 2;
    const c0 = i8x16.shuffle(t0, t2, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
    const c1 = i8x16.shuffle(t0, t2, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    const c2 = i8x16.shuffle(t1, t3, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
    const c3 = i8x16.shuffle(t1, t3, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    const at = q - gY;
    v128.store(q, finishVec(c0, oc, at));
    v128.store(q + step, finishVec(c1, oc + 1, at + step));
    v128.store(q + 2 * step, finishVec(c2, oc + 2, at + 2 * step));
    v128.store(q + 3 * step, finishVec(c3, oc + 3, at + 3 * step));
  }
}

/**
 * The epilogue of block `blk` (channels blk*CB .. blk*CB+7) at output pixel `pix` ((b * outH + oy) * outW + ox)
 * of image b: lo, hi hold the accumulators of channels 0-3 and 4-7 of the block.
 */
// @ts-ignore: decorator
@inline function epilogue(lo: v128, hi: v128, blk: i32, b: i32, pix: i32): void {
  const oc0 = blk * CB;
  const valid = min(CB, gOutC - oc0);
  if (gEp == EP_BITS) {
    const zero = f32x4.splat(0);
    const m = i32x4.bitmask(f32x4.ge(affine(lo, oc0), zero)) | (i32x4.bitmask(f32x4.ge(affine(hi, oc0 + 4), zero)) << 4);
    const bits = <u64>(m & ((1 << valid) - 1));
    const p = gY + ((<usize>pix * <usize>gOutWords + <usize>(oc0 >> 6)) << 3);
    const sh = <u64>(oc0 & 63);
    // the first block of a word stores it (so unused bits end up 0), the others OR into it
    if (sh == 0) store<u64>(p, bits);
    else store<u64>(p, load<u64>(p) | (bits << sh));
    return;
  }
  // NCHW element (b, oc0 + j, pixel within the plane)
  const first = <usize>(b * gOutC + oc0) * <usize>gPlane + <usize>(pix - b * gPlane);
  const plane = <usize>gPlane;
  if (gEp == EP_FLOAT) {
    floatLanes(lo, hi, oc0, pix, gTmp);
    for (let j = 0; j < valid; j++) {
      const at = (first + <usize>j * plane) << 2;
      store<f32>(gY + at, finishScalar(load<f32>(gTmp + (<usize>j << 2)), oc0 + j, at));
    }
  } else if (gEp == EP_INT32) {
    v128.store(gTmp, lo);
    v128.store(gTmp, hi, 16);
    for (let j = 0; j < valid; j++) store<i32>(gY + ((first + <usize>j * plane) << 2), load<i32>(gTmp + (<usize>j << 2)));
  } else {
    v128.store(gTmp, lo);
    v128.store(gTmp, hi, 16);
    for (let j = 0; j < valid; j++) {
      const oc = <usize>(oc0 + j) << 2;
      const bias = gBias != 0 ? load<i64>(gBias + (oc << 1)) : 0; // i64 per channel, in units of 2^-s codes
      const s = <i64>(31 + load<i32>(gShift + oc));
      let r = ((<i64>load<i32>(gTmp + (<usize>j << 2)) * <i64>load<i32>(gMult + oc) + bias + ((<i64>1) << (s - 1))) >> s) + <i64>gZp;
      if (r < <i64>gILo) r = <i64>gILo;
      if (r > <i64>gIHi) r = <i64>gIHi;
      store<u8>(gY + first + <usize>j * plane, <u8>r);
    }
  }
}

/** One output pixel, all blocks, over its clipped window (border pixels). */
function convPixel(x: usize, w: usize, b: i32, oy: i32, ox: i32, kH: i32, kW: i32, sH: i32, sW: i32, pT: i32, pL: i32, dH: i32, dW: i32): void {
  const words = gWords, taps = kH * kW;
  const ky0 = firstTap(oy, sH, pT, dH), ky1 = endTap(oy, sH, pT, dH, kH, gInH);
  const kx0 = firstTap(ox, sW, pL, dW), kx1 = endTap(ox, sW, pL, dW, kW, gInW);
  const validTaps = ky1 > ky0 && kx1 > kx0 ? (ky1 - ky0) * (kx1 - kx0) : 0;
  const base = validTaps * gInC;
  const pix = (b * gOutH + oy) * gOutW + ox;
  const blocks = (gOutC + CB - 1) / CB;
  const wordBytes = <usize>words << 3;
  for (let blk = 0; blk < blocks; blk++) {
    let c0: u64 = 0, c1: u64 = 0, c2: u64 = 0, c3: u64 = 0, c4: u64 = 0, c5: u64 = 0, c6: u64 = 0, c7: u64 = 0;
    for (let ky = ky0; ky < ky1; ky++) {
      const iy = oy * sH - pT + ky * dH;
      let xp = x + ((<usize>((b * gInH + iy) * gInW + ox * sW - pL + kx0 * dW) * <usize>words) << 3);
      let q = w + ((<usize>((blk * taps + ky * kW + kx0) * words) * <usize>CB) << 3);
      for (let kx = kx0; kx < kx1; kx++, xp += <usize>dW * wordBytes) {
        for (let k = 0; k < words; k++, q += CB << 3) {
          const xv = load<u64>(xp + (<usize>k << 3));
          c0 += popcnt<u64>(xv ^ load<u64>(q)); c1 += popcnt<u64>(xv ^ load<u64>(q, 8));
          c2 += popcnt<u64>(xv ^ load<u64>(q, 16)); c3 += popcnt<u64>(xv ^ load<u64>(q, 24));
          c4 += popcnt<u64>(xv ^ load<u64>(q, 32)); c5 += popcnt<u64>(xv ^ load<u64>(q, 40));
          c6 += popcnt<u64>(xv ^ load<u64>(q, 48)); c7 += popcnt<u64>(xv ^ load<u64>(q, 56));
        }
      }
    }
    epilogue(accOf(base, c0, c1, c2, c3), accOf(base, c4, c5, c6, c7), blk, b, pix);
  }
}

/** One pass over the (tap, word) offsets: 4 channels' popcount sums from q, as accumulators (see accOf). */
// @ts-ignore: decorator
@inline function passAcc(xp: usize, q: usize, offs: usize, offsEnd: usize, base: i32): v128 {
  let c0: u64 = 0, c1: u64 = 0, c2: u64 = 0, c3: u64 = 0;
  for (let o = offs; o < offsEnd; o += 4, q += CB << 3) {
    const xv = load<u64>(xp + <usize>load<i32>(o));
    c0 += popcnt<u64>(xv ^ load<u64>(q)); c1 += popcnt<u64>(xv ^ load<u64>(q, 8));
    c2 += popcnt<u64>(xv ^ load<u64>(q, 16)); c3 += popcnt<u64>(xv ^ load<u64>(q, 24));
  }
  return accOf(base, c0, c1, c2, c3);
}

/**
 * `count` interior output pixels (all taps inside) of one row, from pixel index `pix` of image b. xp: the input
 * word at the window origin of the first; pstep: bytes between the window origins of neighbouring pixels;
 * offs: byte offsets of the J = taps * words (tap, word) pairs from the window origin.
 * Each block is done in two passes of 4 channels so that the accumulators, the input word, a temporary and
 * the loop pointers fit x64's registers (see the header).
 */
function convInterior(xp: usize, pstep: usize, w: usize, offs: usize, J: i32, count: i32, pix: i32, b: i32): void {
  const blocks = (gOutC + CB - 1) / CB;
  const base = J / gWords * gInC; // every tap is valid
  const blockBytes = <usize>J * <usize>CB << 3;
  const offsEnd = offs + (<usize>J << 2);
  if (gEp == EP_FLOAT && gOutC % CB == 0) {
    // float output: 4 pixels per block, their lanes gathered in the tile and stored transposed
    const tile = gTmp + 32;
    for (; count >= 4; count -= 4, xp += 4 * pstep, pix += 4) {
      let wp = w;
      for (let blk = 0; blk < blocks; blk++, wp += blockBytes) {
        for (let p = 0; p < 4; p++) {
          const xpp = xp + <usize>p * pstep;
          const lo = passAcc(xpp, wp, offs, offsEnd, base);
          floatLanes(lo, passAcc(xpp, wp + 32, offs, offsEnd, base), blk * CB, pix + p, tile + (<usize>p << 5));
        }
        storeFloatTile(tile, blk, b, pix);
      }
    }
  }
  for (let t = 0; t < count; t++, xp += pstep, pix++) {
    let wp = w;
    for (let blk = 0; blk < blocks; blk++, wp += blockBytes) {
      // channels 0-3 of the block, then 4-7: 4 accumulators each, so that everything stays in registers
      const lo = passAcc(xp, wp, offs, offsEnd, base);
      epilogue(lo, passAcc(xp, wp + 32, offs, offsEnd, base), blk, b, pix);
    }
  }
}

/** Output rows [r0, r1) of n * outH of the binary convolution. */
export function binaryConvRows(ctrl: usize, r0: i32, r1: i32, scratch: usize): void {
  const inC = argI(ctrl, B_INC), inH = argI(ctrl, B_INH), inW = argI(ctrl, B_INW), outC = argI(ctrl, B_OUTC);
  const kH = argI(ctrl, B_KH), kW = argI(ctrl, B_KW), sH = argI(ctrl, B_SH), sW = argI(ctrl, B_SW);
  const pT = argI(ctrl, B_PT), pL = argI(ctrl, B_PL), dH = argI(ctrl, B_DH), dW = argI(ctrl, B_DW);
  const outH = argI(ctrl, B_OUTH), outW = argI(ctrl, B_OUTW);
  const x = argP(ctrl, B_X), w = argP(ctrl, B_W);
  const words = (inC + 63) >> 6, taps = kH * kW, J = taps * words;
  const blocks = (outC + CB - 1) / CB;
  gInC = inC; gInH = inH; gInW = inW; gOutC = outC; gOutH = outH; gOutW = outW; gWords = words;
  gOutWords = (outC + 63) >> 6; gPlane = outH * outW;
  gEp = argI(ctrl, B_EP); gY = argP(ctrl, B_Y);
  if (gEp == EP_REQUANT) {
    // u8 and i8 codes are the same bytes once clamped to [lo, hi]
    gILo = argI(ctrl, B_LO); gIHi = argI(ctrl, B_HI); gZp = argI(ctrl, B_ZP);
    gBias = argP(ctrl, B_P1); gMult = argP(ctrl, B_P2); gShift = argP(ctrl, B_P3);
  } else {
    gLo = <f32>argF(ctrl, B_LO); gHi = <f32>argF(ctrl, B_HI);
    gClamp = gLo != -Infinity || gHi != Infinity;
    gK = argP(ctrl, B_KPIX); gKBias = argP(ctrl, B_KBIAS);
    gPostS = argP(ctrl, B_POSTS); gPostT = argP(ctrl, B_POSTT); gPostRelu = argI(ctrl, B_POSTRELU) != 0; gPostR = argP(ctrl, B_POSTR);
  }

  // scratch: offsets i32[J] | scale f32[blocks*CB] | offset f32[blocks*CB] | 32 bytes of lanes, 16-byte aligned
  const offs = scratch;
  const sc = (offs + (<usize>J << 2) + 15) & ~<usize>15;
  const ofs = sc + (<usize>(blocks * CB) << 2);
  gTmp = ofs + (<usize>(blocks * CB) << 2);
  for (let ky = 0; ky < kH; ky++)
    for (let kx = 0; kx < kW; kx++)
      for (let k = 0; k < words; k++)
        store<i32>(offs + (<usize>((ky * kW + kx) * words + k) << 2), ((ky * dH * inW + kx * dW) * words + k) << 3);
  if (gEp == EP_FLOAT || gEp == EP_BITS) {
    // scale and offset padded to whole blocks (lanes past outC read 0 and are discarded)
    const scale = argP(ctrl, B_P1), offset = argP(ctrl, B_P2);
    for (let c = 0; c < blocks * CB; c++) {
      store<f32>(sc + (<usize>c << 2), c < outC ? load<f32>(scale + (<usize>c << 2)) : 0);
      store<f32>(ofs + (<usize>c << 2), c < outC ? load<f32>(offset + (<usize>c << 2)) : 0);
    }
    gScale = sc; gOffset = ofs;
  }

  const iy0 = interiorLo(sH, pT), iy1 = interiorHi(sH, pT, dH, kH, inH, outH);
  const ix0 = interiorLo(sW, pL), ix1 = interiorHi(sW, pL, dW, kW, inW, outW);
  const rowBytes = <usize>inW * <usize>words << 3;
  for (let r = r0; r < r1; r++) {
    const b = r / outH, oy = r - b * outH;
    let ox = 0;
    if (oy >= iy0 && oy < iy1 && ix1 > ix0) {
      for (; ox < ix0; ox++) convPixel(x, w, b, oy, ox, kH, kW, sH, sW, pT, pL, dH, dW);
      const iy = oy * sH - pT, ix = ox * sW - pL;
      const xp = x + <usize>(b * inH + iy) * rowBytes + ((<usize>ix * <usize>words) << 3);
      convInterior(xp, (<usize>sW * <usize>words) << 3, w, offs, J, ix1 - ix0, (b * outH + oy) * outW + ox, b);
      ox = ix1;
    }
    for (; ox < outW; ox++) convPixel(x, w, b, oy, ox, kH, kW, sH, sW, pT, pL, dH, dW);
  }
}
