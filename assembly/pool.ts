// Pooling over NCHW planes, split over planes. Outputs whose window lies inside the input ("interior")
// take fast paths: 4 outputs at a time in SIMD when the horizontal stride is 1 or 2 and dilation is 1,
// otherwise unclipped scalar loops; border outputs clip their window (no per-tap bounds checks, and no
// divisions unless dilated).

import { firstTap, endTap, interiorLo, interiorHi } from './window';


/** Loads 4 inputs at columns c, c + s, c + 2s, c + 3s (s = 1 or 2) of a row, reading nothing past them. */
// @ts-ignore: decorator
@inline function load4(p: usize, s: i32): v128 {
  if (s == 1) return v128.load(p);
  return v128.shuffle<f32>(v128.load(p), v128.load(p, 12), 0, 2, 5, 7);
}

// @ts-ignore: decorator
@inline function maxTap(v: f32, at: i32, best: f32, bestAt: i32): bool {
  // the first maximum wins; a NaN wins over a number so that faults propagate
  return bestAt < 0 || v > best || (isNaN(v) && !isNaN(best));
}

// @ts-ignore: decorator
@inline function maxTapV(v: v128, best: v128): v128 {
  // maxTap for 4 lanes after the first tap
  return v128.or(f32x4.gt(v, best), v128.and(f32x4.ne(v, v), f32x4.eq(best, best)));
}

/**
 * Max pool with 2x2 windows, stride 2, no padding, every window inside the input (LeNet-5, VGG): per step 4
 * outputs from two rows of 8 inputs, split into even and odd columns by shuffles. Taps in the general loop's
 * order, so the same maximum and argmax.
 */
function maxPool2x2Planes(x: usize, y: usize, am: usize, p0: i32, p1: i32, inW: i32, inPlane: i32, outH: i32, outW: i32): void {
  const outPlane = outH * outW;
  const even = i32x4(0, 2, 4, 6);
  for (let p = p0; p < p1; p++) {
    const xp = x + ((<usize>p * <usize>inPlane) << 2);
    for (let oy = 0; oy < outH; oy++) {
      const i0 = 2 * oy * inW; // input index of the row pair's first element
      const r0 = xp + (<usize>i0 << 2), r1 = r0 + (<usize>inW << 2);
      const o = p * outPlane + oy * outW;
      let ox = 0;
      for (; ox + 4 <= outW; ox += 4) {
        const c = <usize>ox << 3;
        const a = v128.load(r0 + c), b = v128.load(r0 + c, 16), d = v128.load(r1 + c), e = v128.load(r1 + c, 16);
        const idx = i32x4.add(i32x4.splat(i0 + 2 * ox), even);
        let best = v128.shuffle<f32>(a, b, 0, 2, 4, 6), at = idx;
        let v = v128.shuffle<f32>(a, b, 1, 3, 5, 7);
        let take = maxTapV(v, best);
        best = v128.bitselect(v, best, take);
        at = v128.bitselect(i32x4.add(idx, i32x4.splat(1)), at, take);
        v = v128.shuffle<f32>(d, e, 0, 2, 4, 6);
        take = maxTapV(v, best);
        best = v128.bitselect(v, best, take);
        at = v128.bitselect(i32x4.add(idx, i32x4.splat(inW)), at, take);
        v = v128.shuffle<f32>(d, e, 1, 3, 5, 7);
        take = maxTapV(v, best);
        best = v128.bitselect(v, best, take);
        at = v128.bitselect(i32x4.add(idx, i32x4.splat(inW + 1)), at, take);
        v128.store(y + (<usize>(o + ox) << 2), best);
        if (am != 0) v128.store(am + (<usize>(o + ox) << 2), at);
      }
      for (; ox < outW; ox++) {
        let best: f32 = 0, bestAt = -1;
        for (let t = 0; t < 4; t++) {
          const idx = i0 + 2 * ox + (t >> 1) * inW + (t & 1);
          const v = load<f32>(xp + (<usize>idx << 2));
          const take = maxTap(v, idx, best, bestAt);
          best = select<f32>(v, best, take);
          bestAt = select<i32>(idx, bestAt, take);
        }
        store<f32>(y + (<usize>(o + ox) << 2), best);
        if (am != 0) store<i32>(am + (<usize>(o + ox) << 2), bestAt);
      }
    }
  }
}

/**
 * maxPool(relu(x)) without argmax (evaluation): max(0, the window's inputs), NaN inputs ignored as the ReLU
 * maps them to 0. With pmax (one instruction; f32x4.max is a NaN-propagating sequence in V8) and no index
 * bookkeeping, about 3x fewer instructions than the general loop.
 */
function maxPoolReluPlanes(x: usize, y: usize, p0: i32, p1: i32,
  inH: i32, inW: i32, kH: i32, kW: i32, sH: i32, sW: i32, pT: i32, pL: i32, dH: i32, dW: i32, outH: i32, outW: i32): void {
  const inPlane = inH * inW, outPlane = outH * outW;
  const iy0 = interiorLo(sH, pT), iy1 = interiorHi(sH, pT, dH, kH, inH, outH);
  const ix0 = interiorLo(sW, pL), ix1 = interiorHi(sW, pL, dW, kW, inW, outW);
  const simd = dW == 1 && (sW == 1 || sW == 2);
  const k3s2 = kH == 3 && kW == 3 && sH == 2 && sW == 2 && dH == 1; // ResNet's stem pool: its own loop
  for (let p = p0; p < p1; p++) {
    const xp = x + ((<usize>p * <usize>inPlane) << 2);
    for (let oy = 0; oy < outH; oy++) {
      const ky0 = firstTap(oy, sH, pT, dH), ky1 = endTap(oy, sH, pT, dH, kH, inH);
      const rowInterior = oy >= iy0 && oy < iy1;
      const o = y + ((<usize>(p * outPlane + oy * outW)) << 2);
      let ox = 0;
      while (ox < outW) {
        if (simd && rowInterior && ox >= ix0 && ox < ix1 && ix1 - ix0 >= 4) {
          // the last group of a row's interior ends at its end, overlapping the one before (the same values
          // again) rather than leaving up to 3 outputs to the scalar loop
          ox = min(ox, ix1 - 4);
          let best = f32x4.splat(0);
          if (k3s2) {
            // per window row, inputs c .. c+8 of 4 outputs: the taps at c+2j, c+2j+1, c+2j+2 (j = 0..3) are the
            // even and odd lanes of two loads and the even ones shifted by one lane (the next from a splat)
            for (let ky = 0; ky < 3; ky++) {
              const row = xp + ((<usize>((oy * 2 - pT + ky) * inW + ox * 2 - pL)) << 2);
              const a = v128.load(row), b = v128.load(row, 16);
              const even = v128.shuffle<f32>(a, b, 0, 2, 4, 6);
              // one pmax per tap into best (never NaN), so that a NaN tap is skipped as the ReLU makes it 0
              best = f32x4.pmax(best, even);
              best = f32x4.pmax(best, v128.shuffle<f32>(a, b, 1, 3, 5, 7));
              best = f32x4.pmax(best, v128.shuffle<f32>(even, v128.load32_splat(row, 32), 1, 2, 3, 4));
            }
          } else {
            for (let ky = 0; ky < kH; ky++) {
              const row = xp + ((<usize>((oy * sH - pT + ky * dH) * inW + ox * sW - pL)) << 2);
              for (let kx = 0; kx < kW; kx++) best = f32x4.pmax(best, load4(row + (<usize>kx << 2), sW));
            }
          }
          v128.store(o + (<usize>ox << 2), best);
          ox += 4;
          continue;
        }
        const kx0 = firstTap(ox, sW, pL, dW), kx1 = endTap(ox, sW, pL, dW, kW, inW);
        let best: f32 = 0;
        for (let ky = ky0; ky < ky1; ky++) {
          const row = xp + ((<usize>((oy * sH - pT + ky * dH) * inW + ox * sW - pL)) << 2);
          for (let kx = kx0; kx < kx1; kx++) {
            const v = load<f32>(row + (<usize>(kx * dW) << 2));
            best = select<f32>(v, best, best < v);
          }
        }
        store<f32>(o + (<usize>ox << 2), best);
        ox++;
      }
    }
  }
}

export function maxPoolPlanes(x: usize, y: usize, am: usize, p0: i32, p1: i32,
  inH: i32, inW: i32, kH: i32, kW: i32, sH: i32, sW: i32, pT: i32, pL: i32, dH: i32, dW: i32, outH: i32, outW: i32, relu: bool): void {
  if (relu) {
    maxPoolReluPlanes(x, y, p0, p1, inH, inW, kH, kW, sH, sW, pT, pL, dH, dW, outH, outW);
    return;
  }
  const inPlane = inH * inW, outPlane = outH * outW;
  if (kH == 2 && kW == 2 && sH == 2 && sW == 2 && pT == 0 && pL == 0 && 2 * outH <= inH && 2 * outW <= inW) {
    maxPool2x2Planes(x, y, am, p0, p1, inW, inPlane, outH, outW);
    return;
  }
  const iy0 = interiorLo(sH, pT), iy1 = interiorHi(sH, pT, dH, kH, inH, outH);
  const ix0 = interiorLo(sW, pL), ix1 = interiorHi(sW, pL, dW, kW, inW, outW);
  const simd = dW == 1 && (sW == 1 || sW == 2);
  const lanes = i32x4(0, sW, 2 * sW, 3 * sW);
  for (let p = p0; p < p1; p++) {
    const xp = x + ((<usize>p * <usize>inPlane) << 2);
    for (let oy = 0; oy < outH; oy++) {
      const ky0 = firstTap(oy, sH, pT, dH), ky1 = endTap(oy, sH, pT, dH, kH, inH);
      const rowInterior = oy >= iy0 && oy < iy1;
      const o = p * outPlane + oy * outW;
      let ox = 0;
      while (ox < outW) {
        if (simd && rowInterior && ox >= ix0 && ox + 4 <= ix1) {
          let best = f32x4.splat(0), at = i32x4.splat(0);
          for (let ky = 0; ky < kH; ky++) {
            const iy = oy * sH - pT + ky * dH;
            for (let kx = 0; kx < kW; kx++) {
              const c = ox * sW - pL + kx;
              const v = load4(xp + (<usize>(iy * inW + c) << 2), sW);
              const idx = i32x4.add(i32x4.splat(iy * inW + c), lanes);
              if (ky == 0 && kx == 0) {
                best = v;
                at = idx;
              } else {
                const take = v128.or(f32x4.gt(v, best), v128.and(f32x4.ne(v, v), f32x4.eq(best, best)));
                best = v128.bitselect(v, best, take);
                at = v128.bitselect(idx, at, take);
              }
            }
          }
          v128.store(y + (<usize>(o + ox) << 2), best);
          if (am != 0) v128.store(am + (<usize>(o + ox) << 2), at);
          ox += 4;
          continue;
        }
        const kx0 = firstTap(ox, sW, pL, dW), kx1 = endTap(ox, sW, pL, dW, kW, inW);
        let best: f32 = 0, bestAt = -1;
        for (let ky = ky0; ky < ky1; ky++) {
          const iy = oy * sH - pT + ky * dH;
          for (let kx = kx0; kx < kx1; kx++) {
            const idx = iy * inW + ox * sW - pL + kx * dW;
            const v = load<f32>(xp + (<usize>idx << 2));
            const take = maxTap(v, idx, best, bestAt);
            best = select<f32>(v, best, take);
            bestAt = select<i32>(idx, bestAt, take);
          }
        }
        store<f32>(y + (<usize>(o + ox) << 2), bestAt < 0 ? 0 : best);
        if (am != 0) store<i32>(am + (<usize>(o + ox) << 2), bestAt);
        ox++;
      }
    }
  }
}

export function maxPoolBackwardPlanes(dy: usize, am: usize, dx: usize, p0: i32, p1: i32, inPlane: i32, outPlane: i32): void {
  memory.fill(dx + ((<usize>p0 * <usize>inPlane) << 2), 0, (<usize>(p1 - p0) * <usize>inPlane) << 2);
  for (let p = p0; p < p1; p++) {
    const dxp = dx + ((<usize>p * <usize>inPlane) << 2);
    const base = <usize>p * <usize>outPlane;
    for (let o = 0; o < outPlane; o++) {
      const at = load<i32>(am + ((base + <usize>o) << 2));
      if (at >= 0) {
        const q = dxp + (<usize>at << 2);
        store<f32>(q, load<f32>(q) + load<f32>(dy + ((base + <usize>o) << 2)));
      }
    }
  }
}

// @ts-ignore: decorator
@inline function padCount(o: i32, stride: i32, padLo: i32, padHi: i32, dil: i32, k: i32, n: i32): i32 {
  // taps inside the padded extent [-padLo, n + padHi)
  let c = 0;
  for (let kk = 0; kk < k; kk++) {
    const i = o * stride - padLo + kk * dil;
    if (i >= -padLo && i < n + padHi) c++;
  }
  return c;
}

export function avgPoolPlanes(x: usize, y: usize, p0: i32, p1: i32,
  inH: i32, inW: i32, kH: i32, kW: i32, sH: i32, sW: i32, pT: i32, pL: i32, pB: i32, pR: i32, dH: i32, dW: i32,
  outH: i32, outW: i32, includePad: bool): void {
  const inPlane = inH * inW, outPlane = outH * outW;
  const iy0 = interiorLo(sH, pT), iy1 = interiorHi(sH, pT, dH, kH, inH, outH);
  const ix0 = interiorLo(sW, pL), ix1 = interiorHi(sW, pL, dW, kW, inW, outW);
  const simd = dW == 1 && (sW == 1 || sW == 2);
  const full = f64x2.splat(<f64>(kH * kW));
  for (let p = p0; p < p1; p++) {
    const xp = x + ((<usize>p * <usize>inPlane) << 2);
    for (let oy = 0; oy < outH; oy++) {
      const ky0 = firstTap(oy, sH, pT, dH), ky1 = endTap(oy, sH, pT, dH, kH, inH);
      const cy = includePad ? padCount(oy, sH, pT, pB, dH, kH, inH) : max(0, ky1 - ky0);
      const rowInterior = oy >= iy0 && oy < iy1;
      const o = p * outPlane + oy * outW;
      let ox = 0;
      while (ox < outW) {
        if (simd && rowInterior && ox >= ix0 && ox + 4 <= ix1) {
          // the whole window is inside: divisor kH*kW either way; sums in f64 like the reference
          let lo = f64x2.splat(0), hi = f64x2.splat(0);
          for (let ky = 0; ky < kH; ky++) {
            const row = xp + ((<usize>((oy * sH - pT + ky * dH) * inW + ox * sW - pL)) << 2);
            for (let kx = 0; kx < kW; kx++) {
              const v = load4(row + (<usize>kx << 2), sW);
              lo = f64x2.add(lo, f64x2.promote_low_f32x4(v));
              hi = f64x2.add(hi, f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1)));
            }
          }
          const r = v128.shuffle<f32>(f32x4.demote_f64x2_zero(f64x2.div(lo, full)), f32x4.demote_f64x2_zero(f64x2.div(hi, full)), 0, 1, 4, 5);
          v128.store(y + (<usize>(o + ox) << 2), r);
          ox += 4;
          continue;
        }
        const kx0 = firstTap(ox, sW, pL, dW), kx1 = endTap(ox, sW, pL, dW, kW, inW);
        const cx = includePad ? padCount(ox, sW, pL, pR, dW, kW, inW) : max(0, kx1 - kx0);
        let s: f64 = 0;
        for (let ky = ky0; ky < ky1; ky++) {
          const row = xp + ((<usize>((oy * sH - pT + ky * dH) * inW + ox * sW - pL)) << 2);
          for (let kx = kx0; kx < kx1; kx++) s += <f64>load<f32>(row + (<usize>(kx * dW) << 2));
        }
        const d = cy * cx;
        store<f32>(y + (<usize>(o + ox) << 2), d > 0 ? <f32>(s / <f64>d) : 0);
        ox++;
      }
    }
  }
}

export function avgPoolBackwardPlanes(dy: usize, dx: usize, p0: i32, p1: i32,
  inH: i32, inW: i32, kH: i32, kW: i32, sH: i32, sW: i32, pT: i32, pL: i32, pB: i32, pR: i32, dH: i32, dW: i32,
  outH: i32, outW: i32, includePad: bool): void {
  const inPlane = inH * inW, outPlane = outH * outW;
  memory.fill(dx + ((<usize>p0 * <usize>inPlane) << 2), 0, (<usize>(p1 - p0) * <usize>inPlane) << 2);
  const iy0 = interiorLo(sH, pT), iy1 = interiorHi(sH, pT, dH, kH, inH, outH);
  const ix0 = interiorLo(sW, pL), ix1 = interiorHi(sW, pL, dW, kW, inW, outW);
  // 2 x 2 windows with stride 2 (the common case) touch every input at most once: write, 4 outputs at a time
  const tiled2 = kH == 2 && kW == 2 && sH == 2 && sW == 2 && dH == 1 && dW == 1;
  const quarter = f64x2.splat(4);
  for (let p = p0; p < p1; p++) {
    const dxp = dx + ((<usize>p * <usize>inPlane) << 2);
    for (let oy = 0; oy < outH; oy++) {
      const ky0 = firstTap(oy, sH, pT, dH), ky1 = endTap(oy, sH, pT, dH, kH, inH);
      const cy = includePad ? padCount(oy, sH, pT, pB, dH, kH, inH) : max(0, ky1 - ky0);
      let ox = 0;
      if (tiled2 && oy >= iy0 && oy < iy1) {
        const dyr = dy + ((<usize>(p * outPlane + oy * outW)) << 2);
        const r0 = dxp + ((<usize>((oy * 2 - pT) * inW - pL)) << 2), r1 = r0 + (<usize>inW << 2);
        for (ox = max(ox, ix0); ox + 4 <= ix1; ox += 4) {
          const g = v128.load(dyr + (<usize>ox << 2));
          const sh = v128.shuffle<f32>(f32x4.demote_f64x2_zero(f64x2.div(f64x2.promote_low_f32x4(g), quarter)),
            f32x4.demote_f64x2_zero(f64x2.div(f64x2.promote_low_f32x4(v128.shuffle<f32>(g, g, 2, 3, 0, 1)), quarter)), 0, 1, 4, 5);
          const a = v128.shuffle<f32>(sh, sh, 0, 0, 1, 1), b = v128.shuffle<f32>(sh, sh, 2, 2, 3, 3);
          const q = <usize>(ox * 2) << 2;
          v128.store(r0 + q, a); v128.store(r0 + q, b, 16);
          v128.store(r1 + q, a); v128.store(r1 + q, b, 16);
        }
        // the outputs before ix0 and from here on go the general way
        for (let o2 = 0; o2 < min(ix0, outW); o2++) avgBackOne(dy, dxp, p, o2, oy, outPlane, outW, inH, inW, kH, kW, sH, sW, pT, pL, pB, pR, dH, dW, ky0, ky1, cy, includePad);
      }
      for (; ox < outW; ox++) avgBackOne(dy, dxp, p, ox, oy, outPlane, outW, inH, inW, kH, kW, sH, sW, pT, pL, pB, pR, dH, dW, ky0, ky1, cy, includePad);
    }
  }
}

/** Scatter one output's share of dy over its (clipped) window. */
// @ts-ignore: decorator
@inline function avgBackOne(dy: usize, dxp: usize, p: i32, ox: i32, oy: i32, outPlane: i32, outW: i32, inH: i32, inW: i32,
  kH: i32, kW: i32, sH: i32, sW: i32, pT: i32, pL: i32, pB: i32, pR: i32, dH: i32, dW: i32, ky0: i32, ky1: i32, cy: i32, includePad: bool): void {
  const kx0 = firstTap(ox, sW, pL, dW), kx1 = endTap(ox, sW, pL, dW, kW, inW);
  const cx = includePad ? padCount(ox, sW, pL, pR, dW, kW, inW) : max(0, kx1 - kx0);
  const d = cy * cx;
  if (d == 0) return;
  const share = <f64>load<f32>(dy + ((<usize>(p * outPlane + oy * outW + ox)) << 2)) / <f64>d;
  for (let ky = ky0; ky < ky1; ky++) {
    const row = dxp + ((<usize>((oy * sH - pT + ky * dH) * inW + ox * sW - pL)) << 2);
    for (let kx = kx0; kx < kx1; kx++) {
      const q = row + (<usize>(kx * dW) << 2);
      store<f32>(q, <f32>(<f64>load<f32>(q) + share));
    }
  }
}
