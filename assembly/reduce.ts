// Reductions, softmax, per-channel statistics and the negative log-likelihood. Sums are accumulated in
// f32x4 over short runs and then in f64, which keeps them within a few ulp of the reference's double sums.

import { expv } from './mathv';

// @ts-ignore: decorator
@inline function hsum(v: v128): f64 {
  return <f64>f32x4.extract_lane(v, 0) + <f64>f32x4.extract_lane(v, 1) + <f64>f32x4.extract_lane(v, 2) + <f64>f32x4.extract_lane(v, 3);
}
// @ts-ignore: decorator
@inline function hmax(v: v128): f32 {
  const m = f32x4.max(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1));
}
// @ts-ignore: decorator
@inline function hmin(v: v128): f32 {
  const m = f32x4.min(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return min(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1));
}

/** Sum of n contiguous f32 (n >= 0). */
export function sumContig(p: usize, n: i32): f64 {
  let total: f64 = 0;
  let i = 0;
  while (i + 4 <= n) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
    const stop = min(n, i + 1024);
    for (; i + 8 <= stop; i += 8) {
      a0 = f32x4.add(a0, v128.load(p + (<usize>i << 2)));
      a1 = f32x4.add(a1, v128.load(p + (<usize>i << 2), 16));
    }
    for (; i + 4 <= stop; i += 4) a0 = f32x4.add(a0, v128.load(p + (<usize>i << 2)));
    total += hsum(f32x4.add(a0, a1));
  }
  for (; i < n; i++) total += <f64>load<f32>(p + (<usize>i << 2));
  return total;
}

/** Sum of x[i] * w[i] (or x[i]^2 when w == x). */
function dotContig(x: usize, w: usize, n: i32): f64 {
  let total: f64 = 0;
  let i = 0;
  while (i + 4 <= n) {
    let a0 = f32x4.splat(0);
    const stop = min(n, i + 1024);
    for (; i + 4 <= stop; i += 4) {
      const o = <usize>i << 2;
      a0 = f32x4.add(a0, f32x4.mul(v128.load(x + o), v128.load(w + o)));
    }
    total += hsum(a0);
  }
  for (; i < n; i++) total += <f64>(load<f32>(x + (<usize>i << 2)) * load<f32>(w + (<usize>i << 2)));
  return total;
}

// @ts-ignore: decorator
@inline function maxNaN(acc: f32, v: f32): f32 {
  return v > acc || isNaN(v) ? v : acc;
}
// @ts-ignore: decorator
@inline function minNaN(acc: f32, v: f32): f32 {
  return v < acc || isNaN(v) ? v : acc;
}

/** y[o, i] = reduce_j x[o, j, i] for o in [o0, o1), i in [i0, i1). op: 0 sum, 1 max, 2 min. */
export function reduceRange(op: i32, x: usize, y: usize, o0: i32, o1: i32, r: i32, inner: i32, i0: i32, i1: i32): void {
  const rowBytes = <usize>inner << 2;
  for (let o = o0; o < o1; o++) {
    const xo = x + <usize>o * <usize>r * rowBytes;
    const yo = y + <usize>o * rowBytes;
    if (inner == 1) {
      if (op == 0) { store<f32>(yo, <f32>sumContig(xo, r)); continue; }
      let j = 0;
      let acc: f32 = op == 1 ? -Infinity : Infinity;
      if (r >= 4) {
        let v = v128.load(xo);
        for (j = 4; j + 4 <= r; j += 4) {
          const w = v128.load(xo + (<usize>j << 2));
          v = op == 1 ? f32x4.max(v, w) : f32x4.min(v, w); // both propagate NaN
        }
        acc = op == 1 ? hmax(v) : hmin(v);
      }
      for (; j < r; j++) acc = op == 1 ? maxNaN(acc, load<f32>(xo + (<usize>j << 2))) : minNaN(acc, load<f32>(xo + (<usize>j << 2)));
      store<f32>(yo, acc);
      continue;
    }
    let i = i0;
    for (; i + 4 <= i1; i += 4) {
      const col = <usize>i << 2;
      if (op == 0) {
        let lo = f64x2.splat(0), hi = f64x2.splat(0);
        for (let j = 0; j < r; j++) {
          const v = v128.load(xo + <usize>j * rowBytes + col);
          lo = f64x2.add(lo, f64x2.promote_low_f32x4(v));
          hi = f64x2.add(hi, f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1)));
        }
        v128.store(yo + col, v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5));
      } else {
        let v = f32x4.splat(op == 1 ? -Infinity : Infinity);
        for (let j = 0; j < r; j++) {
          const w = v128.load(xo + <usize>j * rowBytes + col);
          v = op == 1 ? f32x4.max(v, w) : f32x4.min(v, w);
        }
        v128.store(yo + col, v);
      }
    }
    for (; i < i1; i++) {
      const col = <usize>i << 2;
      if (op == 0) {
        let s: f64 = 0;
        for (let j = 0; j < r; j++) s += <f64>load<f32>(xo + <usize>j * rowBytes + col);
        store<f32>(yo + col, <f32>s);
      } else {
        let acc: f32 = op == 1 ? -Infinity : Infinity;
        for (let j = 0; j < r; j++) {
          const v = load<f32>(xo + <usize>j * rowBytes + col);
          acc = op == 1 ? maxNaN(acc, v) : minNaN(acc, v);
        }
        store<f32>(yo + col, acc);
      }
    }
  }
}

/** y[o, i] = first argmax_j x[o, j, i] (i32), o in [o0, o1). Scalar: only used on logits. */
export function argmaxRange(x: usize, y: usize, o0: i32, o1: i32, r: i32, inner: i32): void {
  for (let o = o0; o < o1; o++)
    for (let i = 0; i < inner; i++) {
      let best: f32 = -Infinity, at = 0;
      for (let j = 0; j < r; j++) {
        const v = load<f32>(x + ((<usize>(o * r + j) * <usize>inner + <usize>i) << 2));
        if (v > best) { best = v; at = j; }
      }
      store<i32>(y + ((<usize>o * <usize>inner + <usize>i) << 2), at);
    }
}

export function softmaxRows(x: usize, y: usize, r0: i32, r1: i32, cols: i32, log: bool): void {
  for (let r = r0; r < r1; r++) {
    const xr = x + ((<usize>r * <usize>cols) << 2), yr = y + ((<usize>r * <usize>cols) << 2);
    // row maximum (NaN propagates, like Math.max)
    let mx: f32 = -Infinity;
    let c = 0;
    if (cols >= 4) {
      let v = v128.load(xr);
      for (c = 4; c + 4 <= cols; c += 4) v = f32x4.max(v, v128.load(xr + (<usize>c << 2)));
      mx = hmax(v);
    }
    for (; c < cols; c++) { const v = load<f32>(xr + (<usize>c << 2)); mx = isNaN(v) || isNaN(mx) ? NaN : max(mx, v); }
    const mv = f32x4.splat(mx);
    let acc = f32x4.splat(0);
    let sum: f64 = 0;
    for (c = 0; c + 4 <= cols; c += 4) acc = f32x4.add(acc, expv(f32x4.sub(v128.load(xr + (<usize>c << 2)), mv)));
    sum = hsum(acc);
    for (; c < cols; c++) sum += <f64>f32x4.extract_lane(expv(f32x4.splat(load<f32>(xr + (<usize>c << 2)) - mx)), 0);
    if (log) {
      const ls = f32x4.splat(<f32>Math.log(sum));
      for (c = 0; c + 4 <= cols; c += 4) {
        const o = <usize>c << 2;
        v128.store(yr + o, f32x4.sub(f32x4.sub(v128.load(xr + o), mv), ls));
      }
      for (; c < cols; c++) { const o = <usize>c << 2; store<f32>(yr + o, (load<f32>(xr + o) - mx) - f32x4.extract_lane(ls, 0)); }
    } else {
      const sv = f32x4.splat(<f32>sum);
      for (c = 0; c + 4 <= cols; c += 4) {
        const o = <usize>c << 2;
        v128.store(yr + o, f32x4.div(expv(f32x4.sub(v128.load(xr + o), mv)), sv));
      }
      for (; c < cols; c++) {
        const o = <usize>c << 2;
        store<f32>(yr + o, f32x4.extract_lane(expv(f32x4.splat(load<f32>(xr + o) - mx)), 0) / <f32>sum);
      }
    }
  }
}

export function softmaxBackwardRows(y: usize, dy: usize, dx: usize, r0: i32, r1: i32, cols: i32, log: bool): void {
  for (let r = r0; r < r1; r++) {
    const off = (<usize>r * <usize>cols) << 2;
    const yr = y + off, gr = dy + off, dr = dx + off;
    // softmax: dx = y * (dy - sum(dy * y));  log-softmax: dx = dy - exp(y) * sum(dy)
    const s = log ? sumContig(gr, cols) : dotContig(gr, yr, cols);
    const sv = f32x4.splat(<f32>s);
    let c = 0;
    for (; c + 4 <= cols; c += 4) {
      const o = <usize>c << 2;
      const yv = v128.load(yr + o), g = v128.load(gr + o);
      v128.store(dr + o, log ? f32x4.sub(g, f32x4.mul(expv(yv), sv)) : f32x4.mul(yv, f32x4.sub(g, sv)));
    }
    for (; c < cols; c++) {
      const o = <usize>c << 2;
      const yv = load<f32>(yr + o), g = load<f32>(gr + o);
      store<f32>(dr + o, log ? g - f32x4.extract_lane(expv(f32x4.splat(yv)), 0) * <f32>s : yv * (g - <f32>s));
    }
  }
}

/** Channels [c0, c1) of channelSums (see the Kernels interface). */
export function channelSumsRange(x: usize, other: usize, n: i32, c: i32, hw: i32, sum: usize, sumSq: usize, c0: i32, c1: i32): void {
  for (let ch = c0; ch < c1; ch++) {
    let s: f64 = 0, s2: f64 = 0;
    for (let b = 0; b < n; b++) {
      const base = (<usize>(b * c + ch) * <usize>hw) << 2;
      s += sumContig(x + base, hw);
      if (sumSq != 0) s2 += other != 0 ? dotContig(x + base, other + base, hw) : dotContig(x + base, x + base, hw);
    }
    store<f32>(sum + (<usize>ch << 2), <f32>s);
    if (sumSq != 0) store<f32>(sumSq + (<usize>ch << 2), <f32>s2);
  }
}

/** Planes [p0, p1) (plane = b * c + ch) of y = x * scale[ch] + shift[ch]. */
export function channelAffineRange(x: usize, scale: usize, shift: usize, y: usize, c: i32, hw: i32, p0: i32, p1: i32): void {
  for (let p = p0; p < p1; p++) {
    const ch = p % c;
    const s = load<f32>(scale + (<usize>ch << 2));
    const t: f32 = shift != 0 ? load<f32>(shift + (<usize>ch << 2)) : 0;
    const sv = f32x4.splat(s), tv = f32x4.splat(t);
    const xb = x + ((<usize>p * <usize>hw) << 2), yb = y + ((<usize>p * <usize>hw) << 2);
    let i = 0;
    for (; i + 4 <= hw; i += 4) {
      const o = <usize>i << 2;
      v128.store(yb + o, f32x4.add(f32x4.mul(v128.load(xb + o), sv), tv));
    }
    for (; i < hw; i++) {
      const o = <usize>i << 2;
      store<f32>(yb + o, load<f32>(xb + o) * s + t);
    }
  }
}

/** loss[r] = -logp[r, label[r]]; returns -1, or the first row whose label is out of range. */
export function nllLoss(logp: usize, labels: usize, loss: usize, rows: i32, cols: i32): i32 {
  for (let r = 0; r < rows; r++) {
    const label = load<i32>(labels + (<usize>r << 2));
    if (label < 0 || label >= cols) return r;
    store<f32>(loss + (<usize>r << 2), -load<f32>(logp + ((<usize>r * <usize>cols + <usize>label) << 2)));
  }
  return -1;
}
