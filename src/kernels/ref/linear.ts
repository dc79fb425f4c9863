// Reference GEMM and convolution. Convolution is written as the direct 7-deep loop of its definition so
// that it is obviously right; the WebAssembly kernels (im2col + packed GEMM, or direct) are tested against it.

import type { EngineMemory, Ptr } from '../memory.js';
import type { ConvGeometry } from '../types.js';

export function gemm(
  mem: EngineMemory, transA: boolean, transB: boolean, m: number, n: number, k: number,
  a: Ptr, lda: number, b: Ptr, ldb: number, c: Ptr, ldc: number, accumulate: boolean,
): void {
  const f = mem.f32;
  const ai = a >>> 2, bi = b >>> 2, ci = c >>> 2;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const av = transA ? f[ai + p * lda + i] : f[ai + i * lda + p];
        const bv = transB ? f[bi + j * ldb + p] : f[bi + p * ldb + j];
        s += av * bv;
      }
      f[ci + i * ldc + j] = accumulate ? f[ci + i * ldc + j] + s : s;
    }
  }
}

/** Calls visit(inputIndex, weightIndex, outputIndex) for every multiply of the convolution. */
function forEachTap(g: ConvGeometry, visit: (xi: number, wi: number, yi: number) => void): void {
  const cinG = g.inC / g.groups, coutG = g.outC / g.groups;
  for (let b = 0; b < g.n; b++)
    for (let oc = 0; oc < g.outC; oc++) {
      const grp = Math.floor(oc / coutG);
      for (let oy = 0; oy < g.outH; oy++)
        for (let ox = 0; ox < g.outW; ox++) {
          const yi = ((b * g.outC + oc) * g.outH + oy) * g.outW + ox;
          for (let ic = 0; ic < cinG; ic++) {
            const c = grp * cinG + ic;
            for (let ky = 0; ky < g.kH; ky++) {
              const iy = oy * g.strideH - g.padTop + ky * g.dilationH;
              if (iy < 0 || iy >= g.inH) continue;
              for (let kx = 0; kx < g.kW; kx++) {
                const ix = ox * g.strideW - g.padLeft + kx * g.dilationW;
                if (ix < 0 || ix >= g.inW) continue;
                visit(((b * g.inC + c) * g.inH + iy) * g.inW + ix, ((oc * cinG + ic) * g.kH + ky) * g.kW + kx, yi);
              }
            }
          }
        }
    }
}

export function conv2d(mem: EngineMemory, g: ConvGeometry, x: Ptr, w: Ptr, bias: Ptr, y: Ptr): void {
  const f = mem.f32;
  const xo = x >>> 2, wo = w >>> 2, yo = y >>> 2;
  const plane = g.outH * g.outW;
  for (let b = 0; b < g.n; b++)
    for (let oc = 0; oc < g.outC; oc++) {
      const v = bias ? f[(bias >>> 2) + oc] : 0;
      f.fill(v, yo + (b * g.outC + oc) * plane, yo + (b * g.outC + oc + 1) * plane);
    }
  forEachTap(g, (xi, wi, yi) => { f[yo + yi] += f[xo + xi] * f[wo + wi]; });
}

export function conv2dBackwardInput(mem: EngineMemory, g: ConvGeometry, dy: Ptr, w: Ptr, dx: Ptr): void {
  const f = mem.f32;
  const dyo = dy >>> 2, wo = w >>> 2, dxo = dx >>> 2;
  f.fill(0, dxo, dxo + g.n * g.inC * g.inH * g.inW);
  forEachTap(g, (xi, wi, yi) => { f[dxo + xi] += f[dyo + yi] * f[wo + wi]; });
}

export function conv2dBackwardWeight(mem: EngineMemory, g: ConvGeometry, x: Ptr, dy: Ptr, dw: Ptr): void {
  const f = mem.f32;
  const xo = x >>> 2, dyo = dy >>> 2, dwo = dw >>> 2;
  f.fill(0, dwo, dwo + g.outC * (g.inC / g.groups) * g.kH * g.kW);
  forEachTap(g, (xi, wi, yi) => { f[dwo + wi] += f[xo + xi] * f[dyo + yi]; });
}
