// Batch normalization in training mode, fused: per-channel mean and variance in one pass over memory, the
// normalization + affine in one, and the backward in two (sums, then dx). x is viewed as [n, c, hw]; a
// channel is n planes of hw contiguous floats. See the Kernels interface for each contract.

import { sumContig } from './reduce';

// @ts-ignore: decorator
@inline function hsum(v: v128): f64 {
  return <f64>f32x4.extract_lane(v, 0) + <f64>f32x4.extract_lane(v, 1) + <f64>f32x4.extract_lane(v, 2) + <f64>f32x4.extract_lane(v, 3);
}

/**
 * One pass over n contiguous f32 (n >= 1): stores at out the plane's mean and its sum of squared deviations,
 * from sums of (x - k) and (x - k)^2 about a shift k near the mean (f32x4 over runs of 1024, then f64), so
 * that q - s^2 / n does not cancel.
 */
function shiftedPlaneStats(p: usize, n: i32, k: f32, out: usize): void {
  const kv = f32x4.splat(k);
  let s: f64 = 0, q: f64 = 0;
  let i = 0;
  while (i + 4 <= n) {
    let s0 = f32x4.splat(0), s1 = f32x4.splat(0), q0 = f32x4.splat(0), q1 = f32x4.splat(0);
    const stop = min(n, i + 1024);
    for (; i + 8 <= stop; i += 8) {
      const d0 = f32x4.sub(v128.load(p + (<usize>i << 2)), kv), d1 = f32x4.sub(v128.load(p + (<usize>i << 2), 16), kv);
      s0 = f32x4.add(s0, d0);
      s1 = f32x4.add(s1, d1);
      q0 = f32x4.add(q0, f32x4.mul(d0, d0));
      q1 = f32x4.add(q1, f32x4.mul(d1, d1));
    }
    for (; i + 4 <= stop; i += 4) {
      const d = f32x4.sub(v128.load(p + (<usize>i << 2)), kv);
      s0 = f32x4.add(s0, d);
      q0 = f32x4.add(q0, f32x4.mul(d, d));
    }
    s += hsum(f32x4.add(s0, s1));
    q += hsum(f32x4.add(q0, q1));
  }
  for (; i < n; i++) {
    const d = load<f32>(p + (<usize>i << 2)) - k;
    s += <f64>d;
    q += <f64>(d * d);
  }
  const nf = <f64>n;
  store<f64>(out, <f64>k + s / nf);
  store<f64>(out, max<f64>(0, q - s * s / nf), 8);
}

// Channels whose running state (two f64 each) a thread keeps in its scratch at a time.
const CH_BLOCK = 4096; // 64 KiB of the 3 MiB scratch

/**
 * Channels [c0, c1) of channelMeanVar. Memory is walked in order (batch, then channel) so that hardware
 * prefetch follows it; each plane's mean and squared deviations are computed in one pass about a shift near
 * the mean, and merged into its channel's running (mean, M2) in scratch with Chan et al.'s pairwise update in
 * f64: no E[x^2] - E[x]^2 cancellation, stable when |mean| >> std.
 */
export function channelMeanVarRange(x: usize, n: i32, c: i32, hw: i32, mean: usize, variance: usize, c0: i32, c1: i32, scratch: usize): void {
  const nb = <f64>hw;
  for (let cb = c0; cb < c1; cb += CH_BLOCK) {
    const ce = min(c1, cb + CH_BLOCK);
    memory.fill(scratch, 0, <usize>(ce - cb) << 4);
    const planeStats = scratch + (<usize>(ce - cb) << 4);
    for (let b = 0; b < n; b++) {
      const count = <f64>b * nb, total = count + nb;
      for (let ch = cb; ch < ce; ch++) {
        const p = x + ((<usize>(b * c + ch) * <usize>hw) << 2), st = scratch + (<usize>(ch - cb) << 4);
        // shift: the channel's mean so far, or for the first plane its own mean (an extra pass over 1/n of x)
        const m = load<f64>(st);
        shiftedPlaneStats(p, hw, <f32>(b == 0 ? sumContig(p, hw) / nb : m), planeStats);
        const pm = load<f64>(planeStats), pm2 = load<f64>(planeStats, 8), delta = pm - m;
        store<f64>(st, m + delta * (nb / total));
        store<f64>(st, load<f64>(st, 8) + pm2 + delta * delta * (count * nb / total), 8);
      }
    }
    const count = <f64>n * nb;
    for (let ch = cb; ch < ce; ch++) {
      const st = scratch + (<usize>(ch - cb) << 4);
      store<f32>(mean + (<usize>ch << 2), <f32>load<f64>(st));
      store<f32>(variance + (<usize>ch << 2), <f32>(load<f64>(st, 8) / count));
    }
  }
}

/** Planes [p0, p1) (plane = b * c + ch) of y = (x - mean[ch]) * scale[ch] + shift[ch]. */
export function channelNormalizeRange(x: usize, mean: usize, scale: usize, shift: usize, y: usize, c: i32, hw: i32, p0: i32, p1: i32): void {
  for (let p = p0; p < p1; p++) {
    const ch = <usize>(p % c) << 2;
    const m = load<f32>(mean + ch), s = load<f32>(scale + ch), t = load<f32>(shift + ch);
    const mv = f32x4.splat(m), sv = f32x4.splat(s), tv = f32x4.splat(t);
    const off = (<usize>p * <usize>hw) << 2, xb = x + off, yb = y + off;
    let i = 0;
    for (; i + 4 <= hw; i += 4) {
      const o = <usize>i << 2;
      v128.store(yb + o, f32x4.add(f32x4.mul(f32x4.sub(v128.load(xb + o), mv), sv), tv));
    }
    for (; i < hw; i++) {
      const o = <usize>i << 2;
      store<f32>(yb + o, (load<f32>(xb + o) - m) * s + t);
    }
  }
}

/**
 * Channels [c0, c1) of batchNormBackwardSums: sumDy = sum dy, sumDyXc = sum dy * (x - mean). Memory is walked
 * in order, with each channel's two f64 sums in scratch (as channelMeanVarRange).
 */
export function batchNormBackwardSumsRange(dy: usize, x: usize, mean: usize, n: i32, c: i32, hw: i32, sumDy: usize, sumDyXc: usize, c0: i32, c1: i32, scratch: usize): void {
  for (let cb = c0; cb < c1; cb += CH_BLOCK) {
    const ce = min(c1, cb + CH_BLOCK);
    memory.fill(scratch, 0, <usize>(ce - cb) << 4);
    for (let b = 0; b < n; b++) {
      for (let ch = cb; ch < ce; ch++) {
        const m = load<f32>(mean + (<usize>ch << 2));
        const mv = f32x4.splat(m);
        const off = (<usize>(b * c + ch) * <usize>hw) << 2, gb = dy + off, xb = x + off;
        let s: f64 = 0, sx: f64 = 0;
        let i = 0;
        while (i + 4 <= hw) {
          let a = f32x4.splat(0), ax = f32x4.splat(0);
          const stop = min(hw, i + 1024);
          for (; i + 4 <= stop; i += 4) {
            const o = <usize>i << 2;
            const g = v128.load(gb + o);
            a = f32x4.add(a, g);
            ax = f32x4.add(ax, f32x4.mul(g, f32x4.sub(v128.load(xb + o), mv)));
          }
          s += hsum(a);
          sx += hsum(ax);
        }
        for (; i < hw; i++) {
          const o = <usize>i << 2;
          const g = load<f32>(gb + o);
          s += <f64>g;
          sx += <f64>(g * (load<f32>(xb + o) - m));
        }
        const st = scratch + (<usize>(ch - cb) << 4);
        store<f64>(st, load<f64>(st) + s);
        store<f64>(st, load<f64>(st, 8) + sx, 8);
      }
    }
    for (let ch = cb; ch < ce; ch++) {
      const st = scratch + (<usize>(ch - cb) << 4);
      store<f32>(sumDy + (<usize>ch << 2), <f32>load<f64>(st));
      store<f32>(sumDyXc + (<usize>ch << 2), <f32>load<f64>(st, 8));
    }
  }
}

/** Planes [p0, p1) of dx = a[ch] * dy + b[ch] * (x - mean[ch]) + d[ch]. */
export function batchNormBackwardInputRange(dy: usize, x: usize, mean: usize, a: usize, b: usize, d: usize, dx: usize, c: i32, hw: i32, p0: i32, p1: i32): void {
  for (let p = p0; p < p1; p++) {
    const ch = <usize>(p % c) << 2;
    const m = load<f32>(mean + ch), av = load<f32>(a + ch), bv = load<f32>(b + ch), dv = load<f32>(d + ch);
    const mvv = f32x4.splat(m), avv = f32x4.splat(av), bvv = f32x4.splat(bv), dvv = f32x4.splat(dv);
    const off = (<usize>p * <usize>hw) << 2, gb = dy + off, xb = x + off, ob = dx + off;
    let i = 0;
    for (; i + 4 <= hw; i += 4) {
      const o = <usize>i << 2;
      const xc = f32x4.sub(v128.load(xb + o), mvv);
      v128.store(ob + o, f32x4.add(f32x4.add(f32x4.mul(v128.load(gb + o), avv), f32x4.mul(xc, bvv)), dvv));
    }
    for (; i < hw; i++) {
      const o = <usize>i << 2;
      store<f32>(ob + o, load<f32>(gb + o) * av + (load<f32>(xb + o) - m) * bv + dv);
    }
  }
}
