// Quantized weights as the runtime stores and runs them.
//
// Every weight datatype of the survey gives a layer a small set of values. The runtime writes the weights of
// output channel c as
//     W[c, i] = scale[c] * table[index[c, i]]
// with `table` the layer's distinct values (integers when the values are integer multiples of a per-channel
// scale: affine int8/int4, fixed point, power-of-two, binary, ternary, DoReFa; floats otherwise: k-means
// centroids, TTQ's two scales, minifloat) and `index` packed at ceil(log2(table size)) bits: 1 for binary,
// 2 for ternary, 4 for int4 or pow2:4, 8 for int8. Integer tables whose values fit in int8 run on the int8
// kernels; the rest run in float with the dequantized values.

import { LowbitError } from '../errors.js';

export interface TableWeights {
  /** Weight shape ([outC, ...]). */
  shape: number[];
  /** Per output channel. */
  scale: Float32Array;
  /** Distinct values (sorted ascending). */
  table: number[];
  /** True if every table value is an integer (the codes of an integer kernel). */
  integer: boolean;
  /** Bits per packed index. */
  bits: number;
  /** Table index per weight element (unpacked). */
  index: Uint8Array;
}

/** Bits that index a table of n values (at least 1). */
export function indexBits(n: number): number {
  return Math.max(1, Math.ceil(Math.log2(Math.max(n, 2))));
}

/** The storage width used for an index of `bits` bits: 1, 2, 4 or 8 (packing stays byte-aligned). */
export function storageBits(bits: number): number {
  if (bits <= 1) return 1;
  if (bits <= 2) return 2;
  if (bits <= 4) return 4;
  if (bits <= 8) return 8;
  throw new RangeError(`lowbit: ${bits}-bit indices are not supported (at most 256 distinct weight values)`);
}

/** Pack indices (each < 2^bits, bits in 1, 2, 4, 8) little-endian within bytes. */
export function packIndices(index: Uint8Array, bits: number): Uint8Array {
  const perByte = 8 / bits;
  const out = new Uint8Array(Math.ceil(index.length / perByte));
  for (let i = 0; i < index.length; i++) out[(i / perByte) | 0] |= index[i] << ((i % perByte) * bits);
  return out;
}

export function unpackIndices(packed: Uint8Array, bits: number, n: number): Uint8Array {
  const perByte = 8 / bits, mask = (1 << bits) - 1;
  if (packed.length < Math.ceil(n / perByte)) throw new RangeError(`lowbit: ${packed.length} bytes cannot hold ${n} ${bits}-bit indices`);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (packed[(i / perByte) | 0] >> ((i % perByte) * bits)) & mask;
  return out;
}

/**
 * Decompose quantized weights into per-channel scales and a value table. `scaleHint` gives the quantizer's own
 * step per channel (affine scale, fixed-point 2^-F, DoReFa's gain / (2^k - 1)) when it has one; otherwise the
 * smallest non-zero magnitude of each channel is tried (binary, ternary and power-of-two values are integer
 * multiples of it). Falls back to a float table (scale 1) when the values are not small integer multiples.
 */
export function tableWeights(w: Float32Array, shape: number[], scaleHint?: number[] | null): TableWeights {
  const outC = shape[0];
  const per = outC > 0 ? w.length / outC : 0;
  const scale = new Float32Array(outC);
  const codes = new Float64Array(w.length);
  let integer = true;
  for (let c = 0; c < outC && integer; c++) {
    const hint = scaleHint ? scaleHint[scaleHint.length === 1 ? 0 : c] : 0;
    let s = hint > 0 ? hint : 0;
    if (!(s > 0)) {
      for (let i = 0; i < per; i++) {
        const a = Math.abs(w[c * per + i]);
        if (a > 0 && (s === 0 || a < s)) s = a;
      }
    }
    if (!(s > 0)) s = 1; // an all-zero channel
    scale[c] = s;
    for (let i = 0; i < per; i++) {
      const v = w[c * per + i] / scale[c];
      const r = Math.round(v);
      if (Math.abs(v - r) > 1e-4 * Math.max(1, Math.abs(r)) || Math.abs(r) > 127) {
        integer = false;
        break;
      }
      codes[c * per + i] = r;
    }
  }
  if (!integer) {
    scale.fill(1);
    for (let i = 0; i < w.length; i++) codes[i] = w[i];
  }
  const table = [...new Set(codes)].sort((a, b) => a - b);
  if (table.length > 256) throw new LowbitError(`weights have ${table.length} distinct values; the packed format holds at most 256 per layer`);
  const pos = new Map(table.map((v, i) => [v, i]));
  const index = new Uint8Array(w.length);
  for (let i = 0; i < w.length; i++) index[i] = pos.get(codes[i])!;
  return { shape: [...shape], scale, table, integer, bits: storageBits(indexBits(table.length)), index };
}

/** The float weights W[c, i] = scale[c] * table[index] (f32 arithmetic, as the fake quantizers compute them). */
export function tableToFloat(t: TableWeights): Float32Array {
  const out = new Float32Array(t.index.length);
  const per = t.shape[0] > 0 ? out.length / t.shape[0] : 0;
  for (let i = 0; i < out.length; i++) out[i] = Math.fround(t.table[t.index[i]] * t.scale[(i / per) | 0]);
  return out;
}

/** The integer codes table[index] as int8 (integer tables whose values fit in int8). */
export function tableToInt8(t: TableWeights): Int8Array {
  if (!t.integer || t.table[0] < -128 || t.table[t.table.length - 1] > 127) throw new RangeError('lowbit: weights are not int8 codes');
  const out = new Int8Array(t.index.length);
  for (let i = 0; i < out.length; i++) out[i] = t.table[t.index[i]];
  return out;
}

/**
 * Check that a layer's weights are at the bit width its datatype declares: at most 2^bits distinct values
 * per channel (the table is shared by the channels; a per-channel datatype may use different codes in
 * different channels, so the check is per channel).
 */
export function checkDeclaredBits(layer: string, t: TableWeights, declaredBits: number, datatype: string): void {
  const outC = t.shape[0], per = outC > 0 ? t.index.length / outC : 0;
  const limit = 2 ** declaredBits;
  for (let c = 0; c < outC; c++) {
    const seen = new Set<number>();
    for (let i = 0; i < per; i++) seen.add(t.index[c * per + i]);
    if (seen.size > limit) {
      throw new LowbitError(
        `layer ${layer}: its weights are not at the declared bit width: output channel ${c} has ${seen.size} distinct values, ` +
          `but ${datatype} has ${declaredBits} bits (at most ${limit} values). Quantize the model again with \`lowbit quantize\`.`,
      );
    }
  }
}
