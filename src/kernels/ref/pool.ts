// Reference pooling kernels over NCHW planes.

import type { EngineMemory, Ptr } from '../memory.js';
import type { PoolGeometry } from '../types.js';

export function maxPool2d(mem: EngineMemory, g: PoolGeometry, x: Ptr, y: Ptr, argmax: Ptr): void {
  if (g.relu && argmax) throw new Error('lowbit: maxPool2d: relu is an evaluation-time fusion, without argmax');
  const f = mem.f32, iv = mem.i32;
  const inPlane = g.inH * g.inW, outPlane = g.outH * g.outW;
  for (let p = 0; p < g.planes; p++)
    for (let oy = 0; oy < g.outH; oy++)
      for (let ox = 0; ox < g.outW; ox++) {
        let best = -Infinity, bestAt = -1;
        for (let ky = 0; ky < g.kH; ky++) {
          const iy = oy * g.strideH - g.padTop + ky * g.dilationH;
          if (iy < 0 || iy >= g.inH) continue;
          for (let kx = 0; kx < g.kW; kx++) {
            const ix = ox * g.strideW - g.padLeft + kx * g.dilationW;
            if (ix < 0 || ix >= g.inW) continue;
            let v = f[(x >>> 2) + p * inPlane + iy * g.inW + ix];
            if (g.relu) v = v > 0 ? v : 0; // the ReLU before the pool (NaN -> 0, as the relu op)
            // The first maximum wins; a NaN wins so that faults propagate instead of hiding.
            if (bestAt < 0 || v > best || (Number.isNaN(v) && !Number.isNaN(best))) {
              best = v;
              bestAt = iy * g.inW + ix;
            }
          }
        }
        const o = p * outPlane + oy * g.outW + ox;
        f[(y >>> 2) + o] = bestAt < 0 ? 0 : best;
        if (argmax) iv[(argmax >>> 2) + o] = bestAt; // 0: indices not wanted (never write at address 0)
      }
}

export function maxPool2dBackward(mem: EngineMemory, g: PoolGeometry, dy: Ptr, argmax: Ptr, dx: Ptr): void {
  const f = mem.f32, iv = mem.i32;
  const inPlane = g.inH * g.inW, outPlane = g.outH * g.outW;
  f.fill(0, dx >>> 2, (dx >>> 2) + g.planes * inPlane);
  for (let p = 0; p < g.planes; p++)
    for (let o = 0; o < outPlane; o++) {
      const at = iv[(argmax >>> 2) + p * outPlane + o];
      if (at >= 0) f[(dx >>> 2) + p * inPlane + at] += f[(dy >>> 2) + p * outPlane + o];
    }
}

function avgDivisor(g: PoolGeometry, oy: number, ox: number): number {
  if (g.countIncludePad) {
    // ONNX / PyTorch: the window clipped to the padded input (taps beyond the padding do not count).
    let count = 0;
    for (let ky = 0; ky < g.kH; ky++) {
      const iy = oy * g.strideH - g.padTop + ky * g.dilationH;
      if (iy < -g.padTop || iy >= g.inH + g.padBottom) continue;
      for (let kx = 0; kx < g.kW; kx++) {
        const ix = ox * g.strideW - g.padLeft + kx * g.dilationW;
        if (ix >= -g.padLeft && ix < g.inW + g.padRight) count++;
      }
    }
    return count;
  }
  let count = 0;
  for (let ky = 0; ky < g.kH; ky++) {
    const iy = oy * g.strideH - g.padTop + ky * g.dilationH;
    if (iy < 0 || iy >= g.inH) continue;
    for (let kx = 0; kx < g.kW; kx++) {
      const ix = ox * g.strideW - g.padLeft + kx * g.dilationW;
      if (ix >= 0 && ix < g.inW) count++;
    }
  }
  return count;
}

export function avgPool2d(mem: EngineMemory, g: PoolGeometry, x: Ptr, y: Ptr): void {
  const f = mem.f32;
  const inPlane = g.inH * g.inW, outPlane = g.outH * g.outW;
  for (let p = 0; p < g.planes; p++)
    for (let oy = 0; oy < g.outH; oy++)
      for (let ox = 0; ox < g.outW; ox++) {
        let s = 0;
        for (let ky = 0; ky < g.kH; ky++) {
          const iy = oy * g.strideH - g.padTop + ky * g.dilationH;
          if (iy < 0 || iy >= g.inH) continue;
          for (let kx = 0; kx < g.kW; kx++) {
            const ix = ox * g.strideW - g.padLeft + kx * g.dilationW;
            if (ix >= 0 && ix < g.inW) s += f[(x >>> 2) + p * inPlane + iy * g.inW + ix];
          }
        }
        const d = avgDivisor(g, oy, ox);
        f[(y >>> 2) + p * outPlane + oy * g.outW + ox] = d > 0 ? s / d : 0;
      }
}

export function avgPool2dBackward(mem: EngineMemory, g: PoolGeometry, dy: Ptr, dx: Ptr): void {
  const f = mem.f32;
  const inPlane = g.inH * g.inW, outPlane = g.outH * g.outW;
  f.fill(0, dx >>> 2, (dx >>> 2) + g.planes * inPlane);
  for (let p = 0; p < g.planes; p++)
    for (let oy = 0; oy < g.outH; oy++)
      for (let ox = 0; ox < g.outW; ox++) {
        const d = avgDivisor(g, oy, ox);
        if (d === 0) continue;
        const share = f[(dy >>> 2) + p * outPlane + oy * g.outW + ox] / d;
        for (let ky = 0; ky < g.kH; ky++) {
          const iy = oy * g.strideH - g.padTop + ky * g.dilationH;
          if (iy < 0 || iy >= g.inH) continue;
          for (let kx = 0; kx < g.kW; kx++) {
            const ix = ox * g.strideW - g.padLeft + kx * g.dilationW;
            if (ix >= 0 && ix < g.inW) f[(dx >>> 2) + p * inPlane + iy * g.inW + ix] += share;
          }
        }
      }
}
