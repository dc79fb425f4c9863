// Popcount throughput of WebAssembly on this engine and CPU (bench/popcount.mjs): the limit of the XNOR-popcount
// convolution (assembly/binary.ts). `words` u64 words from p, `reps` times; each returns the total bit count.

/** Scalar i64.popcnt, 4 independent accumulators (the binary convolution's inner loop without its xor). */
export function scalarPopcount(p: usize, words: i32, reps: i32): u64 {
  let s0: u64 = 0, s1: u64 = 0, s2: u64 = 0, s3: u64 = 0;
  for (let r = 0; r < reps; r++)
    for (let i = 0; i < words; i += 4) {
      const q = p + (<usize>i << 3);
      s0 += popcnt<u64>(load<u64>(q)); s1 += popcnt<u64>(load<u64>(q, 8));
      s2 += popcnt<u64>(load<u64>(q, 16)); s3 += popcnt<u64>(load<u64>(q, 24));
    }
  return s0 + s1 + s2 + s3;
}

/**
 * SIMD i8x16.popcnt, byte counts summed in i8 lanes over 15 vectors pairs at most (<= 240 per lane) before one
 * widening: the cheapest use of the instruction.
 */
export function simdPopcount(p: usize, words: i32, reps: i32): u64 {
  let total = i64x2.splat(0);
  for (let r = 0; r < reps; r++) {
    let i = 0;
    while (i < words) {
      let bytes = i8x16.splat(0);
      const end = min(words, i + 60); // 15 iterations of 4 words
      for (; i < end; i += 4) {
        const q = p + (<usize>i << 3);
        bytes = i8x16.add(bytes, i8x16.add(i8x16.popcnt(v128.load(q)), i8x16.popcnt(v128.load(q, 16))));
      }
      const w = i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(bytes));
      total = i64x2.add(total, i64x2.add(i64x2.extend_low_i32x4_u(w), i64x2.extend_high_i32x4_u(w)));
    }
  }
  return i64x2.extract_lane(total, 0) + i64x2.extract_lane(total, 1);
}
