// Window arithmetic shared by the pooling, convolution (float, int8, binary) kernels: which taps of a window
// at output o fall inside [0, n) along one axis, which outputs have their whole window inside, and which
// columns of a stride phase of a padded input read real input columns.

// @ts-ignore: decorator
@inline export function firstTap(o: i32, stride: i32, pad: i32, dil: i32): i32 {
  // smallest k with o*stride - pad + k*dil >= 0
  const s = o * stride - pad;
  if (s >= 0) return 0;
  return dil == 1 ? -s : (-s + dil - 1) / dil;
}
// @ts-ignore: decorator
@inline export function endTap(o: i32, stride: i32, pad: i32, dil: i32, k: i32, n: i32): i32 {
  // one past the largest k < kSize with o*stride - pad + k*dil < n
  const s = o * stride - pad;
  if (s >= n) return 0;
  const e = dil == 1 ? n - s : (n - 1 - s) / dil + 1;
  return e < k ? e : k;
}
/** [lo, hi) of outputs whose window lies inside [0, n) along one axis. */
// @ts-ignore: decorator
@inline export function interiorLo(stride: i32, pad: i32): i32 {
  return (pad + stride - 1) / stride;
}
// @ts-ignore: decorator
@inline export function interiorHi(stride: i32, pad: i32, dil: i32, k: i32, n: i32, out: i32): i32 {
  // o*stride - pad + (k-1)*dil <= n - 1
  const num = n - 1 + pad - (k - 1) * dil;
  if (num < 0) return 0;
  return min(out, num / stride + 1);
}
/** Columns q of stride phase f (input column q * s + f - pad) that lie inside [0, n): [phaseStart, phaseEnd). */
// @ts-ignore: decorator
@inline export function phaseStart(Wq: i32, s: i32, f: i32, pad: i32): i32 {
  let q = 0;
  while (q < Wq && q * s + f - pad < 0) q++;
  return q;
}
// @ts-ignore: decorator
@inline export function phaseEnd(q0: i32, Wq: i32, s: i32, f: i32, pad: i32, n: i32): i32 {
  let q = q0;
  while (q < Wq && q * s + f - pad < n) q++;
  return q;
}
