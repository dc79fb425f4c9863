// Blocked, packed f32 GEMM (the BLIS loop nest):
//   for jc in N by NC:  for pc in K by KC:  pack B[pc.., jc..] into KC x NC panels of NR columns
//     for ic in M by MC:  pack A[ic.., pc..] into MC x KC panels of MR rows
//       for jr in NC by NR:  for ir in MC by MR:  microkernel (MR x NR tile, kc steps)
// The B micro-panel (KC x NR) stays in L1 while A panels stream from L2. Edge tiles are computed into a
// small buffer and copied out. Threads split the columns (or the rows, when C is tall and narrow); each
// thread packs into its own scratch buffer.
// The tile has mr = 5 rows where the module runs with fused multiply-add (10 accumulators hide the FMA
// latency: GEMM 512^3 5-12% faster than 4 rows in A/B runs) and 4 rows otherwise (without FMA the 5-row
// kernel's lane shuffles compete with the multiplies and adds for ports: not faster): layout.ts tileRows.

import { gemm_mk_4x8, gemm_mk_5x8 } from './microkernels';

// Register tile and cache blocking, chosen by measurement on this machine (GEMM 512^3, best of interleaved
// runs): KC 384-512 beat 256 by ~5%; MC 64-128 and NC 512-1024 were within noise. A block of packed A
// (MC x KC, up to 240 KiB) and of B (KC x NC, 1 MiB) stay in the 2 MiB L2; a B micro-panel (16 KiB) in L1.
export const MR: i32 = 5; // rows of the register tile at most (4 or 5, chosen per call)
export const NR: i32 = 8;
export const MC: i32 = 24; // row panels per block of A (96 or 120 rows)
export const KC: i32 = 512;
export const NC: i32 = 512;

/** Bytes of scratch each thread gets (GEMM packing buffers; conv/Winograd panels use it too). */
export const GEMM_SCRATCH: usize = 3 << 20;

// @ts-ignore: decorator
@inline function micro(mr: i32, kc: i32, pa: usize, pb: usize, c: usize, ldc: usize, acc: bool): void {
  // 6x8, 4x12, 3x16, 8x8 spill under V8 (see assembly/gen/microkernels.mjs)
  if (mr == 5) gemm_mk_5x8(kc, pa, pb, c, ldc, acc);
  else gemm_mk_4x8(kc, pa, pb, c, ldc, acc);
}

/**
 * Rows of the register tile for an m-row product: 5 where the module allows it (tileRows) unless that pads
 * more than it gains (a 5-row tile costs ~4.35 of a 4-row one's time per row; m = 16: four tiles of 4).
 */
export function gemmTileRows(m: i32, allowed: i32): i32 {
  return allowed == 5 && ((m + 4) / 5) * 87 < ((m + 3) / 4) * 80 ? 5 : 4;
}

/** Pack rows [i0, i0+mc) x cols [p0, p0+kc) of op(A) into mr-row panels: dst[panel][p][mr], zero-padded. */
function packA(mr: i32, transA: bool, a: usize, lda: i32, i0: i32, mc: i32, p0: i32, kc: i32, dst: usize): void {
  const ldab = <usize>lda << 2;
  const rowB = <usize>mr << 2; // bytes per k in a panel
  for (let ir = 0; ir < mc; ir += mr) {
    const rows = min(mr, mc - ir);
    const panel = dst + ((<usize>ir * <usize>kc) << 2);
    if (transA) {
      // A stored K x M: the mr values of one k are contiguous (rows 0-3 as one vector)
      let src = a + <usize>p0 * ldab + (<usize>(i0 + ir) << 2);
      if (rows == mr) {
        for (let p = 0; p < kc; p++) {
          const d = panel + <usize>p * rowB;
          v128.store(d, v128.load(src));
          if (mr == 5) store<f32>(d, load<f32>(src, 16), 16);
          src += ldab;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          const d = panel + <usize>p * rowB;
          for (let ii = 0; ii < mr; ii++) store<f32>(d + (<usize>ii << 2), ii < rows ? load<f32>(src + (<usize>ii << 2)) : 0);
          src += ldab;
        }
      }
    } else {
      // A stored M x K: gather mr rows, 4 k at a time (rows 0-3 by a 4 x 4 transpose)
      const src = a + <usize>(i0 + ir) * ldab + (<usize>p0 << 2);
      let p = 0;
      if (rows == mr) {
        for (; p + 4 <= kc; p += 4) {
          const s = src + (<usize>p << 2);
          const r0 = v128.load(s), r1 = v128.load(s + ldab), r2 = v128.load(s + 2 * ldab), r3 = v128.load(s + 3 * ldab);
          const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
          const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7), t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
          const d = panel + <usize>p * rowB;
          v128.store(d, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
          v128.store(d + rowB, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
          v128.store(d + 2 * rowB, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5));
          v128.store(d + 3 * rowB, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7));
          if (mr == 5) {
            const q = s + 4 * ldab;
            store<f32>(d, load<f32>(q), 16);
            store<f32>(d + rowB, load<f32>(q, 4), 16);
            store<f32>(d + 2 * rowB, load<f32>(q, 8), 16);
            store<f32>(d + 3 * rowB, load<f32>(q, 12), 16);
          }
        }
      }
      for (; p < kc; p++) {
        const d = panel + <usize>p * rowB;
        for (let ii = 0; ii < mr; ii++) store<f32>(d + (<usize>ii << 2), ii < rows ? load<f32>(src + <usize>ii * ldab + (<usize>p << 2)) : 0);
      }
    }
  }
}

/** Pack rows [p0, p0+kc) x cols [j0, j0+nc) of op(B) into NR-column panels: dst[panel][p][NR], zero-padded. */
function packB(transB: bool, b: usize, ldb: i32, p0: i32, kc: i32, j0: i32, nc: i32, dst: usize): void {
  const ldbb = <usize>ldb << 2;
  for (let jr = 0; jr < nc; jr += NR) {
    const cols = min(NR, nc - jr);
    const panel = dst + ((<usize>jr * <usize>kc) << 2);
    if (!transB) {
      let src = b + <usize>p0 * ldbb + (<usize>(j0 + jr) << 2);
      if (cols == NR) {
        for (let p = 0; p < kc; p++) {
          const d = panel + ((<usize>p * <usize>NR) << 2);
          for (let jv = 0; jv < NR; jv += 4) v128.store(d + (<usize>jv << 2), v128.load(src + (<usize>jv << 2)));
          src += ldbb;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          const d = panel + ((<usize>p * <usize>NR) << 2);
          for (let jj = 0; jj < NR; jj++) store<f32>(d + (<usize>jj << 2), jj < cols ? load<f32>(src + (<usize>jj << 2)) : 0);
          src += ldbb;
        }
      }
    } else {
      // B stored N x K: transpose 4 x 4 blocks
      const src = b + <usize>(j0 + jr) * ldbb + (<usize>p0 << 2);
      let p = 0;
      if (cols == NR) {
        for (; p + 4 <= kc; p += 4) {
          const d = panel + ((<usize>p * <usize>NR) << 2);
          for (let jj = 0; jj < NR; jj += 4) {
            const s = src + <usize>jj * ldbb + (<usize>p << 2);
            const r0 = v128.load(s), r1 = v128.load(s + ldbb), r2 = v128.load(s + 2 * ldbb), r3 = v128.load(s + 3 * ldbb);
            const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
            const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7), t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
            const q = d + (<usize>jj << 2);
            v128.store(q, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
            v128.store(q + (<usize>NR << 2), v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
            v128.store(q + (<usize>NR << 3), v128.shuffle<f32>(t2, t3, 0, 1, 4, 5));
            v128.store(q + (<usize>NR * 12), v128.shuffle<f32>(t2, t3, 2, 3, 6, 7));
          }
        }
      }
      for (; p < kc; p++) {
        const d = panel + ((<usize>p * <usize>NR) << 2);
        for (let jj = 0; jj < NR; jj++) store<f32>(d + (<usize>jj << 2), jj < cols ? load<f32>(src + <usize>jj * ldbb + (<usize>p << 2)) : 0);
      }
    }
  }
}

/** C[i0:i1, j0:j1] (+)= op(A) op(B) restricted to those rows and columns, with mr-row tiles. */
export function gemmBlock(mr: i32, transA: bool, transB: bool, i0: i32, i1: i32, j0: i32, j1: i32, k: i32,
  a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32, accumulate: bool, scratch: usize): void {
  if (i1 <= i0 || j1 <= j0) return;
  const ldcb = <usize>ldc << 2;
  if (k == 0) {
    if (!accumulate) for (let i = i0; i < i1; i++) memory.fill(c + <usize>i * ldcb + (<usize>j0 << 2), 0, <usize>(j1 - j0) << 2);
    return;
  }
  const mcRows = MC * mr;
  const pa = scratch;
  const pb = pa + <usize>((MC + 1) * MR * KC * 4);
  const tile = pb + <usize>(KC * (NC + NR) * 4);
  for (let jc = j0; jc < j1; jc += NC) {
    const nc = min(NC, j1 - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = min(KC, k - pc);
      packB(transB, b, ldb, pc, kc, jc, nc, pb);
      const acc = accumulate || pc > 0;
      for (let ic = i0; ic < i1; ic += mcRows) {
        const mc = min(mcRows, i1 - ic);
        packA(mr, transA, a, lda, ic, mc, pc, kc, pa);
        for (let jr = 0; jr < nc; jr += NR) {
          const cols = min(NR, nc - jr);
          const bp = pb + ((<usize>jr * <usize>kc) << 2);
          for (let ir = 0; ir < mc; ir += mr) {
            const rows = min(mr, mc - ir);
            const ap = pa + ((<usize>ir * <usize>kc) << 2);
            const cp = c + <usize>(ic + ir) * ldcb + (<usize>(jc + jr) << 2);
            if (rows == mr && cols == NR) {
              micro(mr, kc, ap, bp, cp, ldcb, acc);
            } else {
              micro(mr, kc, ap, bp, tile, <usize>NR << 2, false);
              for (let ii = 0; ii < rows; ii++)
                for (let jj = 0; jj < cols; jj++) {
                  const q = cp + <usize>ii * ldcb + (<usize>jj << 2);
                  const v = load<f32>(tile + ((<usize>(ii * NR + jj)) << 2));
                  store<f32>(q, acc ? load<f32>(q) + v : v);
                }
            }
          }
        }
      }
    }
  }
}

/**
 * Unit u (of U) of a GEMM. U = 1: the whole product. Otherwise C is cut into a grid of row blocks x column
 * blocks (column blocks of NR multiples first, rows only when C is tall and narrow, or both when U is even
 * and C is large in both directions: a 2 x 2 grid packs less than 4 column strips, each of which would
 * pack all of A).
 */
/** Sum of the 4 lanes, ((l0 + l1) + (l2 + l3)). */
// @ts-ignore: decorator
@inline function lanesSum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/**
 * Columns [j0, j1) of a one-row product c (+)= a B (a batch-1 linear layer), without packing: packing would
 * copy all of B (a 512 x 1000 classifier: 2 MB) to use each element once, which took longer than the
 * products. transB (B stored [n, k], as linear layers' weights): a dot product per column; otherwise 16
 * columns at a time, B's rows scaled by a[kk] and summed in registers.
 */
function gemvRow(transB: bool, j0: i32, j1: i32, k: i32, a: usize, b: usize, ldb: i32, c: usize, accumulate: bool): void {
  if (transB) {
    for (let j = j0; j < j1; j++) {
      const row = b + ((<usize>j * <usize>ldb) << 2);
      let s0 = f32x4.splat(0), s1 = s0, s2 = s0, s3 = s0;
      let kk = 0;
      for (; kk + 16 <= k; kk += 16) {
        const o = <usize>kk << 2;
        s0 = f32x4.add(s0, f32x4.mul(v128.load(a + o), v128.load(row + o)));
        s1 = f32x4.add(s1, f32x4.mul(v128.load(a + o, 16), v128.load(row + o, 16)));
        s2 = f32x4.add(s2, f32x4.mul(v128.load(a + o, 32), v128.load(row + o, 32)));
        s3 = f32x4.add(s3, f32x4.mul(v128.load(a + o, 48), v128.load(row + o, 48)));
      }
      for (; kk + 4 <= k; kk += 4) s0 = f32x4.add(s0, f32x4.mul(v128.load(a + (<usize>kk << 2)), v128.load(row + (<usize>kk << 2))));
      let sum = lanesSum(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3)));
      for (; kk < k; kk++) sum += load<f32>(a + (<usize>kk << 2)) * load<f32>(row + (<usize>kk << 2));
      const q = c + (<usize>j << 2);
      store<f32>(q, accumulate ? load<f32>(q) + sum : sum);
    }
    return;
  }
  let j = j0;
  for (; j + 16 <= j1; j += 16) {
    const q = c + (<usize>j << 2);
    let s0 = f32x4.splat(0), s1 = s0, s2 = s0, s3 = s0;
    for (let kk = 0; kk < k; kk++) {
      const av = v128.load32_splat(a + (<usize>kk << 2));
      const row = b + ((<usize>kk * <usize>ldb + <usize>j) << 2);
      s0 = f32x4.add(s0, f32x4.mul(av, v128.load(row)));
      s1 = f32x4.add(s1, f32x4.mul(av, v128.load(row, 16)));
      s2 = f32x4.add(s2, f32x4.mul(av, v128.load(row, 32)));
      s3 = f32x4.add(s3, f32x4.mul(av, v128.load(row, 48)));
    }
    if (accumulate) {
      s0 = f32x4.add(v128.load(q), s0); s1 = f32x4.add(v128.load(q, 16), s1);
      s2 = f32x4.add(v128.load(q, 32), s2); s3 = f32x4.add(v128.load(q, 48), s3);
    }
    v128.store(q, s0); v128.store(q, s1, 16); v128.store(q, s2, 32); v128.store(q, s3, 48);
  }
  for (; j < j1; j++) {
    let sum: f32 = 0;
    for (let kk = 0; kk < k; kk++) sum += load<f32>(a + (<usize>kk << 2)) * load<f32>(b + ((<usize>kk * <usize>ldb + <usize>j) << 2));
    const q = c + (<usize>j << 2);
    store<f32>(q, accumulate ? load<f32>(q) + sum : sum);
  }
}

export function gemmPart(transA: bool, transB: bool, m: i32, n: i32, k: i32, a: usize, lda: i32, b: usize, ldb: i32,
  c: usize, ldc: i32, accumulate: bool, scratch: usize, u: i32, U: i32, allowedRows: i32): void {
  if (m == 1 && !transA) {
    // units split the columns (16 at a time, so that the SIMD loop covers them)
    const blocks = (n + 15) >> 4;
    gemvRow(transB, min(n, <i32>((<i64>blocks * u) / U) << 4), min(n, <i32>((<i64>blocks * (u + 1)) / U) << 4), k, a, b, ldb, c, accumulate);
    return;
  }
  const mr = gemmTileRows(m, allowedRows);
  if (U <= 1) { gemmBlock(mr, transA, transB, 0, m, 0, n, k, a, lda, b, ldb, c, ldc, accumulate, scratch); return; }
  let rowsU = 1, colsU = U;
  if (U % 2 == 0 && U >= 4 && m >= 4 * MC * mr && n >= 4 * NR * U) { rowsU = 2; colsU = U / 2; }
  else if (!(n >= NR * U * 2 || n >= m)) { rowsU = U; colsU = 1; }
  const ur = u / colsU, uc = u % colsU;
  const mu = (m + mr - 1) / mr, nu = (n + NR - 1) / NR;
  const i0 = min(m, <i32>((<i64>mu * ur) / rowsU) * mr), i1 = min(m, <i32>((<i64>mu * (ur + 1)) / rowsU) * mr);
  const j0 = min(n, <i32>((<i64>nu * uc) / colsU) * NR), j1 = min(n, <i32>((<i64>nu * (uc + 1)) / colsU) * NR);
  gemmBlock(mr, transA, transB, i0, i1, j0, j1, k, a, lda, b, ldb, c, ldc, accumulate, scratch);
}
