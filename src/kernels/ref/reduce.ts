// Reference reductions, softmax, per-channel statistics and the negative log-likelihood.

import type { EngineMemory, Ptr } from '../memory.js';
import type { ReduceOp } from '../types.js';

export function reduce(mem: EngineMemory, op: ReduceOp, x: Ptr, y: Ptr, outer: number, r: number, inner: number): void {
  const f = mem.f32, xo = x >>> 2, yo = y >>> 2;
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let acc = op === 'sum' ? 0 : op === 'max' ? -Infinity : Infinity;
      for (let j = 0; j < r; j++) {
        const v = f[xo + (o * r + j) * inner + i];
        if (op === 'sum') acc += v;
        else if (op === 'max') acc = v > acc || Number.isNaN(v) ? v : acc;
        else acc = v < acc || Number.isNaN(v) ? v : acc;
      }
      f[yo + o * inner + i] = acc;
    }
}

export function argmax(mem: EngineMemory, x: Ptr, y: Ptr, outer: number, r: number, inner: number): void {
  const f = mem.f32, iv = mem.i32, xo = x >>> 2, yo = y >>> 2;
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let best = -Infinity, at = 0;
      for (let j = 0; j < r; j++) {
        const v = f[xo + (o * r + j) * inner + i];
        if (v > best) { best = v; at = j; }
      }
      iv[yo + o * inner + i] = at;
    }
}

export function softmax(mem: EngineMemory, x: Ptr, y: Ptr, rows: number, cols: number, log: boolean): void {
  const f = mem.f32, xo = x >>> 2, yo = y >>> 2;
  for (let r = 0; r < rows; r++) {
    const row = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) max = Math.max(max, f[xo + row + c]);
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += Math.exp(f[xo + row + c] - max);
    const logSum = Math.log(sum);
    for (let c = 0; c < cols; c++) {
      const z = f[xo + row + c] - max;
      f[yo + row + c] = log ? z - logSum : Math.exp(z) / sum;
    }
  }
}

export function softmaxBackward(mem: EngineMemory, y: Ptr, dy: Ptr, dx: Ptr, rows: number, cols: number, log: boolean): void {
  const f = mem.f32, yo = y >>> 2, dyo = dy >>> 2, dxo = dx >>> 2;
  for (let r = 0; r < rows; r++) {
    const row = r * cols;
    let s = 0;
    // softmax: dx = y * (dy - sum(dy * y));  log-softmax: dx = dy - exp(y) * sum(dy)
    for (let c = 0; c < cols; c++) s += log ? f[dyo + row + c] : f[dyo + row + c] * f[yo + row + c];
    for (let c = 0; c < cols; c++) {
      const yv = f[yo + row + c], g = f[dyo + row + c];
      f[dxo + row + c] = log ? g - Math.exp(yv) * s : yv * (g - s);
    }
  }
}

export function channelSums(
  mem: EngineMemory, x: Ptr, other: Ptr, n: number, c: number, hw: number, sum: Ptr, sumSq: Ptr,
): void {
  const f = mem.f32, xo = x >>> 2, oo = other >>> 2;
  for (let ch = 0; ch < c; ch++) {
    let s = 0, s2 = 0;
    for (let b = 0; b < n; b++) {
      const base = (b * c + ch) * hw;
      for (let i = 0; i < hw; i++) {
        const v = f[xo + base + i];
        s += v;
        s2 += other ? v * f[oo + base + i] : v * v;
      }
    }
    f[(sum >>> 2) + ch] = s;
    if (sumSq) f[(sumSq >>> 2) + ch] = s2;
  }
}

export function channelAffine(
  mem: EngineMemory, x: Ptr, scale: Ptr, shift: Ptr, y: Ptr, n: number, c: number, hw: number,
): void {
  const f = mem.f32, xo = x >>> 2, yo = y >>> 2;
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++) {
      const s = f[(scale >>> 2) + ch], t = shift ? f[(shift >>> 2) + ch] : 0;
      const base = (b * c + ch) * hw;
      for (let i = 0; i < hw; i++) f[yo + base + i] = f[xo + base + i] * s + t;
    }
}

export function nllLoss(mem: EngineMemory, logp: Ptr, labels: Ptr, loss: Ptr, rows: number, cols: number): void {
  const f = mem.f32, iv = mem.i32;
  for (let r = 0; r < rows; r++) {
    const label = iv[(labels >>> 2) + r];
    if (label < 0 || label >= cols) throw new RangeError(`lowbit: label ${label} out of range [0, ${cols})`);
    f[(loss >>> 2) + r] = -f[(logp >>> 2) + r * cols + label];
  }
}
