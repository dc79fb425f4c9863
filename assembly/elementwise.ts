// Elementwise kernels: fill, cast, unary ops and their derivatives, broadcasting binary ops, strided copy,
// and the dropout mask. Every loop works on a [start, end) range so that threads can split it.
// Ops whose reference computes in double with double parameters (affine, leakyRelu, the derivatives of
// log/sqrt/reciprocal/sigmoid/tanh) are computed here in f64 lanes so that results match bit for bit.

import { expv, logv, tanhv, sigmoidv, lo64, hi64, join32, floorF32, ceilF32 } from './mathv';
import { arrI } from './layout';

// ---- partial vectors for loop tails ---------------------------------------------------------------

// @ts-ignore: decorator
@inline function loadTail(p: usize, cnt: i32): v128 {
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (cnt > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (cnt > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  return v;
}
// @ts-ignore: decorator
@inline function storeTail(p: usize, v: v128, cnt: i32): void {
  v128.store32_lane(p, v, 0);
  if (cnt > 1) v128.store32_lane(p, v, 1, 4);
  if (cnt > 2) v128.store32_lane(p, v, 2, 8);
}

// ---- fill -------------------------------------------------------------------------------------------

export function fillRange(dst: usize, start: i32, end: i32, value: f32): void {
  const v = f32x4.splat(value);
  let i = start;
  for (; i + 16 <= end; i += 16) {
    const p = dst + (<usize>i << 2);
    v128.store(p, v); v128.store(p, v, 16); v128.store(p, v, 32); v128.store(p, v, 48);
  }
  for (; i + 4 <= end; i += 4) v128.store(dst + (<usize>i << 2), v);
  for (; i < end; i++) store<f32>(dst + (<usize>i << 2), value);
}

// ---- unary --------------------------------------------------------------------------------------------

// Op codes follow UNARY_OPS in src/kernels/types.ts.
// @ts-ignore: decorator
@inline function unaryVec(op: i32, x: v128, a: v128, b: v128, ad: v128, bd: v128): v128 {
  switch (op) {
    case 0: return f32x4.neg(x);
    case 1: return f32x4.abs(x);
    case 2: return expv(x);
    case 3: return logv(x);
    case 4: return f32x4.sqrt(x);
    case 5: return f32x4.mul(x, x);
    case 6: return f32x4.div(f32x4.splat(1), x);
    case 7: return f32x4.pmax(f32x4.splat(0), x); // x > 0 ? x : 0  (NaN -> 0, like the reference)
    case 8: return f32x4.pmin(f32x4.splat(6), f32x4.pmax(f32x4.splat(0), x));
    case 9: return f32x4.pmin(f32x4.splat(1), f32x4.pmax(f32x4.splat(-1), x));
    case 10: {
      const pos = v128.and(f32x4.gt(x, f32x4.splat(0)), f32x4.splat(1));
      const neg = v128.and(f32x4.lt(x, f32x4.splat(0)), f32x4.splat(-1));
      return v128.or(pos, neg);
    }
    case 11: return sigmoidv(x);
    case 12: return tanhv(x);
    case 13: return f32x4.pmin(b, f32x4.pmax(a, x)); // a, b hold the f32 roundings of the bounds
    case 14: return join32(f64x2.add(f64x2.mul(ad, lo64(x)), bd), f64x2.add(f64x2.mul(ad, hi64(x)), bd));
    case 15: {
      const s = join32(f64x2.mul(ad, lo64(x)), f64x2.mul(ad, hi64(x)));
      return v128.bitselect(x, s, f32x4.ge(x, f32x4.splat(0)));
    }
    case 16: return f32x4.nearest(x);
    case 17: return f32x4.floor(x);
    case 18: return v128.and(f32x4.gt(x, a), f32x4.splat(1)); // a = largest f32 <= threshold
    default: return x;
  }
}

// @ts-ignore: decorator
@inline function unaryLoop(op: i32, x: usize, y: usize, start: i32, end: i32, a: v128, b: v128, ad: v128, bd: v128): void {
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, unaryVec(op, v128.load(x + o), a, b, ad, bd));
  }
  if (i < end) {
    const o = <usize>i << 2;
    storeTail(y + o, unaryVec(op, loadTail(x + o, end - i), a, b, ad, bd), end - i);
  }
}

export function unaryRange(op: i32, x: usize, y: usize, start: i32, end: i32, a: f64, b: f64): void {
  const af = op == 18 ? floorF32(a) : <f32>a;
  const av = f32x4.splat(af), bv = f32x4.splat(<f32>b), ad = f64x2.splat(a), bd = f64x2.splat(b);
  switch (op) {
    case 0: unaryLoop(0, x, y, start, end, av, bv, ad, bd); break;
    case 1: unaryLoop(1, x, y, start, end, av, bv, ad, bd); break;
    case 2: unaryLoop(2, x, y, start, end, av, bv, ad, bd); break;
    case 3: unaryLoop(3, x, y, start, end, av, bv, ad, bd); break;
    case 4: unaryLoop(4, x, y, start, end, av, bv, ad, bd); break;
    case 5: unaryLoop(5, x, y, start, end, av, bv, ad, bd); break;
    case 6: unaryLoop(6, x, y, start, end, av, bv, ad, bd); break;
    case 7: unaryLoop(7, x, y, start, end, av, bv, ad, bd); break;
    case 8: unaryLoop(8, x, y, start, end, av, bv, ad, bd); break;
    case 9: unaryLoop(9, x, y, start, end, av, bv, ad, bd); break;
    case 10: unaryLoop(10, x, y, start, end, av, bv, ad, bd); break;
    case 11: unaryLoop(11, x, y, start, end, av, bv, ad, bd); break;
    case 12: unaryLoop(12, x, y, start, end, av, bv, ad, bd); break;
    case 13: unaryLoop(13, x, y, start, end, av, bv, ad, bd); break;
    case 14: unaryLoop(14, x, y, start, end, av, bv, ad, bd); break;
    case 15: unaryLoop(15, x, y, start, end, av, bv, ad, bd); break;
    case 16: unaryLoop(16, x, y, start, end, av, bv, ad, bd); break;
    case 17: unaryLoop(17, x, y, start, end, av, bv, ad, bd); break;
    case 18: unaryLoop(18, x, y, start, end, av, bv, ad, bd); break;
    default: break;
  }
}

// ---- unary derivatives ------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline function maskMul(dy: v128, cond: v128): v128 {
  // dy * (cond ? 1 : 0): a multiply, so that NaN and the sign of zero behave like the reference
  return f32x4.mul(dy, v128.and(cond, f32x4.splat(1)));
}

// @ts-ignore: decorator
@inline function bwdVec(op: i32, x: v128, y: v128, dy: v128, a: v128, b: v128, ad: v128): v128 {
  switch (op) {
    case 0: return f32x4.neg(dy);
    case 1: {
      const s = v128.or(v128.and(f32x4.gt(x, f32x4.splat(0)), f32x4.splat(1)), v128.and(f32x4.lt(x, f32x4.splat(0)), f32x4.splat(-1)));
      return f32x4.mul(dy, s);
    }
    case 2: return f32x4.mul(dy, y);
    case 3: {
      const one = f64x2.splat(1);
      return join32(f64x2.mul(lo64(dy), f64x2.div(one, lo64(x))), f64x2.mul(hi64(dy), f64x2.div(one, hi64(x))));
    }
    case 4: {
      const h = f64x2.splat(0.5);
      return join32(f64x2.mul(lo64(dy), f64x2.div(h, lo64(y))), f64x2.mul(hi64(dy), f64x2.div(h, hi64(y))));
    }
    case 5: return f32x4.mul(dy, f32x4.add(x, x));
    case 6: {
      const yl = lo64(y), yh = hi64(y);
      return join32(f64x2.mul(lo64(dy), f64x2.neg(f64x2.mul(yl, yl))), f64x2.mul(hi64(dy), f64x2.neg(f64x2.mul(yh, yh))));
    }
    case 7: return maskMul(dy, f32x4.gt(x, f32x4.splat(0)));
    case 8: return maskMul(dy, v128.and(f32x4.gt(x, f32x4.splat(0)), f32x4.lt(x, f32x4.splat(6))));
    case 9: return maskMul(dy, v128.and(f32x4.gt(x, f32x4.splat(-1)), f32x4.lt(x, f32x4.splat(1))));
    case 11: {
      const one = f64x2.splat(1);
      const yl = lo64(y), yh = hi64(y);
      return join32(f64x2.mul(lo64(dy), f64x2.mul(yl, f64x2.sub(one, yl))), f64x2.mul(hi64(dy), f64x2.mul(yh, f64x2.sub(one, yh))));
    }
    case 12: {
      const one = f64x2.splat(1);
      const yl = lo64(y), yh = hi64(y);
      return join32(f64x2.mul(lo64(dy), f64x2.sub(one, f64x2.mul(yl, yl))), f64x2.mul(hi64(dy), f64x2.sub(one, f64x2.mul(yh, yh))));
    }
    case 13: return maskMul(dy, v128.and(f32x4.gt(x, a), f32x4.lt(x, b))); // a, b: exact f32 bounds (see caller)
    case 14: return join32(f64x2.mul(lo64(dy), ad), f64x2.mul(hi64(dy), ad));
    case 15: {
      const one = f64x2.splat(1);
      const pos = f32x4.ge(x, f32x4.splat(0));
      const dl = lo64(dy), dh = hi64(dy);
      const s = join32(f64x2.mul(dl, ad), f64x2.mul(dh, ad));
      return v128.bitselect(f32x4.mul(dy, f32x4.splat(1)), s, pos);
    }
    default: return f32x4.mul(dy, f32x4.splat(0)); // sign, round, floor, step
  }
}

// @ts-ignore: decorator
@inline function bwdLoop(op: i32, x: usize, y: usize, dy: usize, dx: usize, start: i32, end: i32, a: v128, b: v128, ad: v128): void {
  let i = start;
  const hasY = y != 0;
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    const yv = hasY ? v128.load(y + o) : f32x4.splat(0);
    v128.store(dx + o, bwdVec(op, v128.load(x + o), yv, v128.load(dy + o), a, b, ad));
  }
  if (i < end) {
    const o = <usize>i << 2, c = end - i;
    const yv = hasY ? loadTail(y + o, c) : f32x4.splat(0);
    storeTail(dx + o, bwdVec(op, loadTail(x + o, c), yv, loadTail(dy + o, c), a, b, ad), c);
  }
}

export function unaryBackwardRange(op: i32, x: usize, y: usize, dy: usize, dx: usize, start: i32, end: i32, a: f64, b: f64): void {
  // clamp's derivative is 1 on the open interval (a, b): x > a <=> x > floorF32(a), x < b <=> x < ceilF32(b)
  const av = f32x4.splat(floorF32(a)), bv = f32x4.splat(ceilF32(b)), ad = f64x2.splat(a);
  switch (op) {
    case 0: bwdLoop(0, x, y, dy, dx, start, end, av, bv, ad); break;
    case 1: bwdLoop(1, x, y, dy, dx, start, end, av, bv, ad); break;
    case 2: bwdLoop(2, x, y, dy, dx, start, end, av, bv, ad); break;
    case 3: bwdLoop(3, x, y, dy, dx, start, end, av, bv, ad); break;
    case 4: bwdLoop(4, x, y, dy, dx, start, end, av, bv, ad); break;
    case 5: bwdLoop(5, x, y, dy, dx, start, end, av, bv, ad); break;
    case 6: bwdLoop(6, x, y, dy, dx, start, end, av, bv, ad); break;
    case 7: bwdLoop(7, x, y, dy, dx, start, end, av, bv, ad); break;
    case 8: bwdLoop(8, x, y, dy, dx, start, end, av, bv, ad); break;
    case 9: bwdLoop(9, x, y, dy, dx, start, end, av, bv, ad); break;
    case 11: bwdLoop(11, x, y, dy, dx, start, end, av, bv, ad); break;
    case 12: bwdLoop(12, x, y, dy, dx, start, end, av, bv, ad); break;
    case 13: bwdLoop(13, x, y, dy, dx, start, end, av, bv, ad); break;
    case 14: bwdLoop(14, x, y, dy, dx, start, end, av, bv, ad); break;
    case 15: bwdLoop(15, x, y, dy, dx, start, end, av, bv, ad); break;
    default: bwdLoop(10, x, y, dy, dx, start, end, av, bv, ad); break;
  }
}

// ---- binary with broadcasting -------------------------------------------------------------------------

// 2^b for an integer b in [-126, 127] is the exponent field alone, and 2^-Inf is 0 (floor(log2 0) of zero
// activations): as exact as Math.pow and far faster. The log-domain quantizers (pow2, log2, INQ) raise 2 to such
// exponents on every activation and weight; Math.pow made most of a log2:4 training step.
// @ts-ignore: decorator
@inline function powLane(a: f32, b: f32): f32 {
  if (a == 2 && b >= -126 && b <= 127 && <f32><i32>b == b) return reinterpret<f32>((<i32>b + 127) << 23);
  return <f32>Math.pow(<f64>a, <f64>b);
}

function powLanes(a: v128, b: v128): v128 {
  const two = f32x4.eq(a, f32x4.splat(2));
  const e = i32x4.trunc_sat_f32x4_s(b);
  const inRange = v128.and(i32x4.ge_s(e, i32x4.splat(-126)), i32x4.le_s(e, i32x4.splat(127)));
  const integer = v128.and(v128.and(f32x4.eq(f32x4.convert_i32x4_s(e), b), inRange), two);
  const zero = v128.and(f32x4.eq(b, f32x4.splat(-Infinity)), two);
  if (i32x4.all_true(v128.or(integer, zero))) return v128.and(i32x4.shl(i32x4.add(e, i32x4.splat(127)), 23), integer);
  let r = f32x4.splat(0);
  r = f32x4.replace_lane(r, 0, powLane(f32x4.extract_lane(a, 0), f32x4.extract_lane(b, 0)));
  r = f32x4.replace_lane(r, 1, powLane(f32x4.extract_lane(a, 1), f32x4.extract_lane(b, 1)));
  r = f32x4.replace_lane(r, 2, powLane(f32x4.extract_lane(a, 2), f32x4.extract_lane(b, 2)));
  r = f32x4.replace_lane(r, 3, powLane(f32x4.extract_lane(a, 3), f32x4.extract_lane(b, 3)));
  return r;
}

// Op codes follow BINARY_OPS. max/min are pmax/pmin with swapped operands: x > y ? x : y exactly.
// @ts-ignore: decorator
@inline function binVec(op: i32, a: v128, b: v128): v128 {
  switch (op) {
    case 0: return f32x4.add(a, b);
    case 1: return f32x4.sub(a, b);
    case 2: return f32x4.mul(a, b);
    case 3: return f32x4.div(a, b);
    case 4: return f32x4.pmax(b, a);
    case 5: return f32x4.pmin(b, a);
    case 6: return powLanes(a, b);
    case 7: return v128.and(f32x4.gt(a, b), f32x4.splat(1));
    case 8: return v128.and(f32x4.ge(a, b), f32x4.splat(1));
    case 9: return v128.and(f32x4.eq(a, b), f32x4.splat(1));
    default: return a;
  }
}

// @ts-ignore: decorator
@inline function binInner(op: i32, pa: usize, sa: i32, pb: usize, sb: i32, po: usize, n: i32): void {
  let i = 0;
  if (sa == 1 && sb == 1) {
    for (; i + 4 <= n; i += 4) { const o = <usize>i << 2; v128.store(po + o, binVec(op, v128.load(pa + o), v128.load(pb + o))); }
  } else if (sa == 1 && sb == 0) {
    const bv = v128.load32_splat(pb);
    for (; i + 4 <= n; i += 4) { const o = <usize>i << 2; v128.store(po + o, binVec(op, v128.load(pa + o), bv)); }
  } else if (sa == 0 && sb == 1) {
    const av = v128.load32_splat(pa);
    for (; i + 4 <= n; i += 4) { const o = <usize>i << 2; v128.store(po + o, binVec(op, av, v128.load(pb + o))); }
  }
  // remaining (or generally strided) elements one lane at a time
  for (; i < n; i++) {
    const r = binVec(op, v128.load32_splat(pa + (<usize>(i * sa) << 2)), v128.load32_splat(pb + (<usize>(i * sb) << 2)));
    store<f32>(po + (<usize>i << 2), f32x4.extract_lane(r, 0));
  }
}

/**
 * Rows [r0, r1) of a broadcasting binary op. The shape and strides (coalesced by the caller) are in the
 * control block's int array: [rank, shape[6], aStrides[6], bStrides[6]]; a row is one run of the last dim.
 */
// @ts-ignore: decorator
@inline function binRows(op: i32, ctrl: usize, a: usize, b: usize, out: usize, r0: i32, r1: i32): void {
  const rank = arrI(ctrl, 0);
  const inner = arrI(ctrl, rank);
  const sa = arrI(ctrl, 6 + rank), sb = arrI(ctrl, 12 + rank);
  for (let row = r0; row < r1; row++) {
    let rem = row, oa = 0, ob = 0;
    for (let d = rank - 1; d >= 1; d--) {
      const n = arrI(ctrl, d);
      const idx = rem % n;
      rem = rem / n;
      oa += idx * arrI(ctrl, 6 + d);
      ob += idx * arrI(ctrl, 12 + d);
    }
    binInner(op, a + (<usize>oa << 2), sa, b + (<usize>ob << 2), sb, out + (<usize>(row * inner) << 2), inner);
  }
}

export function binaryRows(op: i32, ctrl: usize, a: usize, b: usize, out: usize, r0: i32, r1: i32): void {
  switch (op) {
    case 0: binRows(0, ctrl, a, b, out, r0, r1); break;
    case 1: binRows(1, ctrl, a, b, out, r0, r1); break;
    case 2: binRows(2, ctrl, a, b, out, r0, r1); break;
    case 3: binRows(3, ctrl, a, b, out, r0, r1); break;
    case 4: binRows(4, ctrl, a, b, out, r0, r1); break;
    case 5: binRows(5, ctrl, a, b, out, r0, r1); break;
    case 6: binRows(6, ctrl, a, b, out, r0, r1); break;
    case 7: binRows(7, ctrl, a, b, out, r0, r1); break;
    case 8: binRows(8, ctrl, a, b, out, r0, r1); break;
    case 9: binRows(9, ctrl, a, b, out, r0, r1); break;
    default: break;
  }
}

// ---- strided copy ---------------------------------------------------------------------------------------

/** Rows [r0, r1) of a strided copy; int array: [rank, shape[6], srcStrides[6], dstStrides[6]]. */
export function copyRows(elemBytes: i32, ctrl: usize, src: usize, dst: usize, r0: i32, r1: i32): void {
  const rank = arrI(ctrl, 0);
  const inner = arrI(ctrl, rank);
  const ss = arrI(ctrl, 6 + rank), ds = arrI(ctrl, 12 + rank);
  const eb = <usize>elemBytes;
  for (let row = r0; row < r1; row++) {
    let rem = row, os = 0, od = 0;
    for (let d = rank - 1; d >= 1; d--) {
      const n = arrI(ctrl, d);
      const idx = rem % n;
      rem = rem / n;
      os += idx * arrI(ctrl, 6 + d);
      od += idx * arrI(ctrl, 12 + d);
    }
    const ps = src + <usize>os * eb, pd = dst + <usize>od * eb;
    if (ss == 1 && ds == 1) {
      memory.copy(pd, ps, <usize>inner * eb);
    } else if (elemBytes == 4) {
      for (let i = 0; i < inner; i++) store<u32>(pd + (<usize>(i * ds) << 2), load<u32>(ps + (<usize>(i * ss) << 2)));
    } else {
      for (let i = 0; i < inner; i++) store<u8>(pd + <usize>(i * ds), load<u8>(ps + <usize>(i * ss)));
    }
  }
}

// ---- cast -------------------------------------------------------------------------------------------------

// dtype codes: 0 f32, 1 i32, 2 i8, 3 u8
// @ts-ignore: decorator
@inline function loadLanes(t: i32, p: usize, i: i32): v128 {
  if (t == 0 || t == 1) return v128.load(p + (<usize>i << 2));
  const bytes = v128.load32_zero(p + <usize>i);
  if (t == 2) return i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(bytes));
  return i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(bytes));
}
// @ts-ignore: decorator
@inline function loadLane1(t: i32, p: usize, i: i32): v128 {
  if (t == 0 || t == 1) return v128.load32_splat(p + (<usize>i << 2));
  if (t == 2) return i32x4.splat(<i32>load<i8>(p + <usize>i));
  return i32x4.splat(<i32>load<u8>(p + <usize>i));
}
// @ts-ignore: decorator
@inline function convertLanes(st: i32, dt: i32, v: v128): v128 {
  if (dt == 0) return st == 0 ? v : f32x4.convert_i32x4_s(v);
  if (st != 0) return v;
  return i32x4.trunc_sat_f32x4_s(f32x4.nearest(v)); // round half to even, saturate, NaN -> 0
}
// @ts-ignore: decorator
@inline function storeLanes(t: i32, p: usize, i: i32, v: v128): void {
  if (t == 0 || t == 1) { v128.store(p + (<usize>i << 2), v); return; }
  const h = i16x8.narrow_i32x4_s(v, v);
  const b = t == 2 ? i8x16.narrow_i16x8_s(h, h) : i8x16.narrow_i16x8_u(h, h);
  v128.store32_lane(p + <usize>i, b, 0);
}
// @ts-ignore: decorator
@inline function storeLane1(t: i32, p: usize, i: i32, v: v128): void {
  if (t == 0 || t == 1) { v128.store32_lane(p + (<usize>i << 2), v, 0); return; }
  const h = i16x8.narrow_i32x4_s(v, v);
  const b = t == 2 ? i8x16.narrow_i16x8_s(h, h) : i8x16.narrow_i16x8_u(h, h);
  v128.store8_lane(p + <usize>i, b, 0);
}
// @ts-ignore: decorator
@inline function castLoop(st: i32, dt: i32, src: usize, dst: usize, start: i32, end: i32): void {
  let i = start;
  for (; i + 4 <= end; i += 4) storeLanes(dt, dst, i, convertLanes(st, dt, loadLanes(st, src, i)));
  for (; i < end; i++) storeLane1(dt, dst, i, convertLanes(st, dt, loadLane1(st, src, i)));
}

export function castRange(st: i32, dt: i32, src: usize, dst: usize, start: i32, end: i32): void {
  switch (st * 4 + dt) {
    case 0: castLoop(0, 0, src, dst, start, end); break;
    case 1: castLoop(0, 1, src, dst, start, end); break;
    case 2: castLoop(0, 2, src, dst, start, end); break;
    case 3: castLoop(0, 3, src, dst, start, end); break;
    case 4: castLoop(1, 0, src, dst, start, end); break;
    case 5: castLoop(1, 1, src, dst, start, end); break;
    case 6: castLoop(1, 2, src, dst, start, end); break;
    case 7: castLoop(1, 3, src, dst, start, end); break;
    case 8: castLoop(2, 0, src, dst, start, end); break;
    case 9: castLoop(2, 1, src, dst, start, end); break;
    case 10: castLoop(2, 2, src, dst, start, end); break;
    case 11: castLoop(2, 3, src, dst, start, end); break;
    case 12: castLoop(3, 0, src, dst, start, end); break;
    case 13: castLoop(3, 1, src, dst, start, end); break;
    case 14: castLoop(3, 2, src, dst, start, end); break;
    case 15: castLoop(3, 3, src, dst, start, end); break;
    default: break;
  }
}

// ---- dropout ----------------------------------------------------------------------------------------------

/** mask[i] = uniform(seed, i) >= p ? 1/(1-p) : 0 with the reference's lowbias32 hash, bit for bit. */
export function dropoutRange(mask: usize, start: i32, end: i32, p: f64, seed: u32): void {
  const keep = f32x4.splat(<f32>(1.0 / (1.0 - p)));
  const thr = f32x4.splat(ceilF32(p)); // u is an f32 multiple of 2^-24: u >= p <=> u >= ceilF32(p)
  const base = seed * 0x9e3779b9;
  const scale = f32x4.splat(1.0 / 16777216.0);
  let i = start;
  let idx = i32x4(0, 1, 2, 3);
  for (; i < end; i += 4) {
    let x = i32x4.add(i32x4.splat(<i32>(base + <u32>i)), idx);
    x = v128.xor(x, i32x4.shr_u(x, 16));
    x = i32x4.mul(x, i32x4.splat(0x7feb352d));
    x = v128.xor(x, i32x4.shr_u(x, 15));
    x = i32x4.mul(x, i32x4.splat(<i32>0x846ca68b));
    x = v128.xor(x, i32x4.shr_u(x, 16));
    const u = f32x4.mul(f32x4.convert_i32x4_s(i32x4.shr_u(x, 8)), scale);
    const m = v128.and(f32x4.ge(u, thr), keep);
    if (i + 4 <= end) v128.store(mask + (<usize>i << 2), m);
    else storeTail(mask + (<usize>i << 2), m, end - i);
  }
}

/** dst[i] = lo + (hi - lo) * uniform(seed, i), computed in f64 like the reference. */
export function randomUniformRange(dst: usize, start: i32, end: i32, lo: f64, hi: f64, seed: u32): void {
  const lov = f64x2.splat(lo), span = f64x2.splat(hi - lo);
  const base = seed * 0x9e3779b9;
  const scale = f32x4.splat(1.0 / 16777216.0);
  const idx = i32x4(0, 1, 2, 3);
  for (let i = start; i < end; i += 4) {
    let x = i32x4.add(i32x4.splat(<i32>(base + <u32>i)), idx);
    x = v128.xor(x, i32x4.shr_u(x, 16));
    x = i32x4.mul(x, i32x4.splat(0x7feb352d));
    x = v128.xor(x, i32x4.shr_u(x, 15));
    x = i32x4.mul(x, i32x4.splat(<i32>0x846ca68b));
    x = v128.xor(x, i32x4.shr_u(x, 16));
    const u = f32x4.mul(f32x4.convert_i32x4_s(i32x4.shr_u(x, 8)), scale); // exact
    const r = join32(f64x2.add(lov, f64x2.mul(span, lo64(u))), f64x2.add(lov, f64x2.mul(span, hi64(u))));
    if (i + 4 <= end) v128.store(dst + (<usize>i << 2), r);
    else storeTail(dst + (<usize>i << 2), r, end - i);
  }
}

// ---- optimizer -----------------------------------------------------------------------------------------

/**
 * One SGD step over parameters [start, end) (src/kernels/types.ts sgdStep): f32 arithmetic in the
 * reference's order, separate multiplies and adds (no fused multiply-add), so results equal it bit for bit.
 */
export function sgdRange(p: usize, grad: usize, vel: usize, start: i32, end: i32, lr: f32, mu: f32, wd: f32, nesterov: bool): void {
  const lrv = f32x4.splat(lr), muv = f32x4.splat(mu), wdv = f32x4.splat(wd);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    const pv = v128.load(p + o);
    let g = v128.load(grad + o);
    if (wd != 0) g = f32x4.add(g, f32x4.mul(wdv, pv));
    let d = g;
    if (vel != 0) {
      const v = f32x4.add(f32x4.mul(muv, v128.load(vel + o)), g);
      v128.store(vel + o, v);
      d = nesterov ? f32x4.add(g, f32x4.mul(muv, v)) : v;
    }
    v128.store(p + o, f32x4.sub(pv, f32x4.mul(lrv, d)));
  }
  for (; i < end; i++) {
    const o = <usize>i << 2;
    const pv = load<f32>(p + o);
    let g = load<f32>(grad + o);
    if (wd != 0) g = g + wd * pv;
    let d = g;
    if (vel != 0) {
      const v = mu * load<f32>(vel + o) + g;
      store<f32>(vel + o, v);
      d = nesterov ? g + mu * v : v;
    }
    store<f32>(p + o, pv - lr * d);
  }
}
