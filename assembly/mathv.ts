// SIMD f32x4 versions of exp, log, tanh and sigmoid (Cephes polynomials, <= 2 ulp), plus helpers for
// computing in f64 lanes where the reference's double arithmetic must be matched exactly.

// @ts-ignore: decorator
@inline export function expv(x: v128): v128 {
  // e^x = 2^n * e^r, n = round(x / ln 2), |r| <= ln2 / 2. 2^n is applied in two halves so that results
  // in the subnormal range and up to the overflow threshold come out right.
  x = f32x4.max(f32x4.min(x, f32x4.splat(89.0)), f32x4.splat(-104.0)); // keeps NaN (min/max propagate it)
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504088896341)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  p = f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r), f32x4.splat(1.0));
  const ni = i32x4.trunc_sat_f32x4_s(n);
  const n1 = i32x4.shr_s(ni, 1);
  const n2 = i32x4.sub(ni, n1);
  const s1 = i32x4.shl(i32x4.add(n1, i32x4.splat(127)), 23);
  const s2 = i32x4.shl(i32x4.add(n2, i32x4.splat(127)), 23);
  return f32x4.mul(f32x4.mul(p, s1), s2);
}

// @ts-ignore: decorator
@inline export function logv(x0: v128): v128 {
  // Subnormals are scaled into the normal range first.
  const small = f32x4.lt(x0, f32x4.splat(1.17549435e-38));
  const x = v128.bitselect(f32x4.mul(x0, f32x4.splat(8388608.0)), x0, small);
  let e = i32x4.sub(i32x4.shr_u(x, 23), i32x4.splat(126));
  e = v128.bitselect(i32x4.sub(e, i32x4.splat(23)), e, small);
  // mantissa in [0.5, 1)
  let m = v128.or(v128.and(x, i32x4.splat(0x807fffff)), i32x4.splat(0x3f000000));
  const lowM = f32x4.lt(m, f32x4.splat(0.707106781186547524));
  e = v128.bitselect(i32x4.sub(e, i32x4.splat(1)), e, lowM);
  m = v128.bitselect(f32x4.sub(f32x4.add(m, m), f32x4.splat(1.0)), f32x4.sub(m, f32x4.splat(1.0)), lowM);
  const ef = f32x4.convert_i32x4_s(e);
  const z = f32x4.mul(m, m);
  let y = f32x4.splat(7.0376836292e-2);
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(-1.1514610310e-1));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(1.1676998740e-1));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(-1.2420140846e-1));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(1.4249322787e-1));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(-1.6668057665e-1));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(2.0000714765e-1));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(-2.4999993993e-1));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(3.3333331174e-1));
  y = f32x4.mul(f32x4.mul(y, m), z);
  y = f32x4.add(y, f32x4.mul(ef, f32x4.splat(-2.12194440e-4)));
  y = f32x4.sub(y, f32x4.mul(z, f32x4.splat(0.5)));
  let r = f32x4.add(f32x4.add(m, y), f32x4.mul(ef, f32x4.splat(0.693359375)));
  // special values: log(0) = -inf, log(x < 0) = NaN, log(inf) = inf, log(NaN) = NaN
  r = v128.bitselect(f32x4.splat(-Infinity), r, f32x4.eq(x0, f32x4.splat(0)));
  r = v128.bitselect(f32x4.splat(NaN), r, f32x4.lt(x0, f32x4.splat(0)));
  r = v128.bitselect(x0, r, f32x4.eq(x0, f32x4.splat(Infinity)));
  r = v128.bitselect(x0, r, f32x4.ne(x0, x0));
  return r;
}

// @ts-ignore: decorator
@inline export function tanhv(x: v128): v128 {
  const a = f32x4.abs(x);
  // small |x|: odd polynomial (no cancellation); large: 1 - 2 / (e^(2|x|) + 1)
  const z = f32x4.mul(x, x);
  let p = f32x4.splat(-5.70498872745e-3);
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(2.06390887954e-2));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(-5.37397155531e-2));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(1.33314422036e-1));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(-3.33332819422e-1));
  const small = f32x4.add(x, f32x4.mul(f32x4.mul(p, z), x));
  const e = expv(f32x4.add(a, a));
  let big = f32x4.sub(f32x4.splat(1.0), f32x4.div(f32x4.splat(2.0), f32x4.add(e, f32x4.splat(1.0))));
  big = v128.or(big, v128.and(x, i32x4.splat(0x80000000))); // copy the sign
  return v128.bitselect(small, big, f32x4.lt(a, f32x4.splat(0.625)));
}

// @ts-ignore: decorator
@inline export function sigmoidv(x: v128): v128 {
  return f32x4.div(f32x4.splat(1.0), f32x4.add(f32x4.splat(1.0), expv(f32x4.neg(x))));
}

// @ts-ignore: decorator
@inline export function lo64(v: v128): v128 {
  return f64x2.promote_low_f32x4(v);
}
// @ts-ignore: decorator
@inline export function hi64(v: v128): v128 {
  return f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1));
}
/** Round two f64x2 back to one f32x4 (lanes lo0, lo1, hi0, hi1). */
// @ts-ignore: decorator
@inline export function join32(lo: v128, hi: v128): v128 {
  return v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
}

/** The largest f32 <= a (so that, for f32 x, x > a  <=>  x > floorF32(a)). */
export function floorF32(a: f64): f32 {
  let t = <f32>a;
  if (<f64>t > a) t = nextDown(t);
  return t;
}
/** The smallest f32 >= a (so that, for f32 x, x >= a  <=>  x >= ceilF32(a)). */
export function ceilF32(a: f64): f32 {
  let t = <f32>a;
  if (<f64>t < a) t = -nextDown(-t);
  return t;
}
function nextDown(t: f32): f32 {
  if (isNaN(t) || t == -Infinity) return t;
  if (t == 0) return -reinterpret<f32>(<u32>1);
  const b = reinterpret<u32>(t);
  return reinterpret<f32>(t > 0 ? b - 1 : b + 1);
}
