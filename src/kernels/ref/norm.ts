// Batch normalization in training mode (the spec of the fused kernels): x is viewed as [n, c, hw], and a
// channel's values are its n planes of hw contiguous floats. Arithmetic in double.

import type { EngineMemory, Ptr } from '../memory.js';

export function channelMeanVar(mem: EngineMemory, x: Ptr, n: number, c: number, hw: number, mean: Ptr, variance: Ptr): void {
  const f = mem.f32, xo = x >>> 2, count = n * hw;
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    for (let b = 0; b < n; b++) for (let i = 0; i < hw; i++) s += f[xo + (b * c + ch) * hw + i];
    const m = s / count;
    // The variance from centred values: exact where E[x^2] - E[x]^2 would cancel.
    let q = 0;
    for (let b = 0; b < n; b++)
      for (let i = 0; i < hw; i++) {
        const d = f[xo + (b * c + ch) * hw + i] - m;
        q += d * d;
      }
    f[(mean >>> 2) + ch] = m;
    f[(variance >>> 2) + ch] = q / count;
  }
}

export function channelNormalize(
  mem: EngineMemory, x: Ptr, mean: Ptr, scale: Ptr, shift: Ptr, y: Ptr, n: number, c: number, hw: number,
): void {
  const f = mem.f32, xo = x >>> 2, yo = y >>> 2;
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++) {
      const m = f[(mean >>> 2) + ch], s = f[(scale >>> 2) + ch], t = f[(shift >>> 2) + ch];
      const base = (b * c + ch) * hw;
      for (let i = 0; i < hw; i++) f[yo + base + i] = (f[xo + base + i] - m) * s + t;
    }
}

export function batchNormBackwardSums(
  mem: EngineMemory, dy: Ptr, x: Ptr, mean: Ptr, n: number, c: number, hw: number, sumDy: Ptr, sumDyXc: Ptr,
): void {
  const f = mem.f32, go = dy >>> 2, xo = x >>> 2;
  for (let ch = 0; ch < c; ch++) {
    const m = f[(mean >>> 2) + ch];
    let s = 0, sx = 0;
    for (let b = 0; b < n; b++) {
      const base = (b * c + ch) * hw;
      for (let i = 0; i < hw; i++) {
        const g = f[go + base + i];
        s += g;
        sx += g * (f[xo + base + i] - m);
      }
    }
    f[(sumDy >>> 2) + ch] = s;
    f[(sumDyXc >>> 2) + ch] = sx;
  }
}

export function batchNormBackwardInput(
  mem: EngineMemory, dy: Ptr, x: Ptr, mean: Ptr, a: Ptr, b: Ptr, d: Ptr, dx: Ptr, n: number, c: number, hw: number,
): void {
  const f = mem.f32, go = dy >>> 2, xo = x >>> 2, oo = dx >>> 2;
  for (let bi = 0; bi < n; bi++)
    for (let ch = 0; ch < c; ch++) {
      const m = f[(mean >>> 2) + ch], av = f[(a >>> 2) + ch], bv = f[(b >>> 2) + ch], dv = f[(d >>> 2) + ch];
      const base = (bi * c + ch) * hw;
      for (let i = 0; i < hw; i++) f[oo + base + i] = av * f[go + base + i] + bv * (f[xo + base + i] - m) + dv;
    }
}
