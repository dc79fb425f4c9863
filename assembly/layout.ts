// The control block: a small region of the engine memory (allocated by the JS side) through which the
// calling thread hands a job to the worker threads. Everything here is a byte offset from the block start.
//
//   JOB      i32  job id
//   NT       i32  threads that should take part (advisory: taking part is always safe)
//   ERR      i32  0, or 1 + the thread whose unit threw
//   SEQ      i32  sequence number of the current job (workers wait on it)
//   TICKET   i64  [seq:32 | units:16 | next unclaimed unit:16]
//   DONE     i32  units of the current job finished
//   QUIT     i32  workers leave when they see it set
//   TILE_ROWS i32  rows of the float GEMM register tile: 5 where the module runs with fused multiply-add
//                  (relaxed SIMD), else 4 (0 reads as 4); set once by the JS side
//   ARGS     f64[32]  scalar arguments of the job (pointers, sizes, flags and floats alike)
//   ARR              i32[64]  small integer arrays (shapes and strides of broadcasting kernels)
//   SCRATCH + 4*t    i32  per-thread scratch buffer (packing panels), SCRATCH_BYTES long

export const JOB: usize = 0;
export const NT: usize = 4;
export const ERR: usize = 8;
export const SEQ: usize = 12;
export const TICKET: usize = 16;
export const DONE: usize = 24;
export const QUIT: usize = 28;
export const TILE_ROWS: usize = 32;
export const MAX_THREADS: i32 = 16;
export const ARGS: usize = 192;
export const ARR: usize = 448;
export const SCRATCH: usize = 704;
export const CTRL_BYTES: usize = 1024;

// @ts-ignore: decorator
@inline export function argF(ctrl: usize, i: i32): f64 {
  return load<f64>(ctrl + ARGS + (<usize>i << 3));
}
// @ts-ignore: decorator
@inline export function argI(ctrl: usize, i: i32): i32 {
  return <i32>load<f64>(ctrl + ARGS + (<usize>i << 3));
}
// @ts-ignore: decorator
@inline export function argP(ctrl: usize, i: i32): usize {
  return <usize><u32>load<f64>(ctrl + ARGS + (<usize>i << 3));
}
// @ts-ignore: decorator
@inline export function arrI(ctrl: usize, i: i32): i32 {
  return load<i32>(ctrl + ARR + (<usize>i << 2));
}
// @ts-ignore: decorator
@inline export function tileRows(ctrl: usize): i32 {
  return load<i32>(ctrl + TILE_ROWS) == 5 ? 5 : 4;
}
// @ts-ignore: decorator
@inline export function scratchOf(ctrl: usize, t: i32): usize {
  return <usize>load<u32>(ctrl + SCRATCH + (<usize>t << 2));
}

/** [start, end) of thread t's share of n items, split in chunks that are multiples of `align`. */
// @ts-ignore: decorator
@inline export function shareStart(n: i32, t: i32, nt: i32, align: i32): i32 {
  const units = (n + align - 1) / align;
  const s = <i32>((<i64>units * t) / nt) * align;
  return s < n ? s : n;
}
