// Differentiable pooling over NCHW: max, average, global average.

import { engine } from '../../tensor/engine.js';
import { Tensor, formatShape } from '../../tensor/tensor.js';
import type { PoolGeometry } from '../../kernels/types.js';
import { isGradEnabled, record, tracksGrad } from '../graph.js';
import { pair, pads4 } from './conv.js';

export interface Pool2dOptions {
  kernel: number | [number, number];
  /** Defaults to the kernel size. */
  stride?: number | [number, number];
  padding?: number | [number, number] | [number, number, number, number];
  dilation?: number | [number, number];
  /** Output size rounds up instead of down (ONNX ceil_mode); windows starting in the padding are dropped. */
  ceilMode?: boolean;
  /** Average pool: count padded positions in the divisor. */
  countIncludePad?: boolean;
}

function outSize(inSize: number, k: number, s: number, d: number, before: number, after: number, ceil: boolean): number {
  const span = inSize + before + after - d * (k - 1) - 1;
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  // A window must start inside the input or the leading padding (PyTorch and ONNX rule).
  if (ceil && (out - 1) * s >= inSize + before) out--;
  return out;
}

export function poolGeometry(op: string, x: Pick<Tensor, 'shape' | 'rank'>, opts: Pool2dOptions): PoolGeometry {
  if (x.rank !== 4) throw new RangeError(`lowbit: ${op} needs a 4-D NCHW input, got ${formatShape(x.shape)}`);
  const [n, c, inH, inW] = x.shape;
  const [kH, kW] = pair(opts.kernel, 1);
  const [strideH, strideW] = pair(opts.stride, 0).map((s, i) => s || [kH, kW][i]);
  const [dilationH, dilationW] = pair(opts.dilation, 1);
  const [padTop, padLeft, padBottom, padRight] = pads4(opts.padding);
  const outH = outSize(inH, kH, strideH, dilationH, padTop, padBottom, !!opts.ceilMode);
  const outW = outSize(inW, kW, strideW, dilationW, padLeft, padRight, !!opts.ceilMode);
  if (outH < 1 || outW < 1) throw new RangeError(`lowbit: ${op}: window ${kH}x${kW} is larger than the padded input ${formatShape(x.shape)}`);
  return {
    planes: n * c, inH, inW, kH, kW, strideH, strideW, padTop, padLeft, padBottom, padRight,
    dilationH, dilationW, outH, outW, countIncludePad: !!opts.countIncludePad,
  };
}

export function maxPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  const g = poolGeometry('maxPool2d', x, opts);
  const k = engine.kernels;
  const y = Tensor.empty([x.shape[0], x.shape[1], g.outH, g.outW]);
  // The argmax indices serve only the backward pass: not computed when no gradient can flow (evaluation).
  const argmax = isGradEnabled() && tracksGrad(x) ? Tensor.empty(y.shape, 'i32') : null;
  k.maxPool2d(g, x.ptr, y.ptr, argmax?.ptr ?? 0);
  return record('maxPool2d', y, [x], (dy) => {
    const dx = Tensor.empty(x.shape);
    k.maxPool2dBackward(g, dy.ptr, argmax!.ptr, dx.ptr);
    return [dx];
  }, { geometry: g, opts });
}

export function avgPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  const g = poolGeometry('avgPool2d', x, opts);
  const k = engine.kernels;
  const y = Tensor.empty([x.shape[0], x.shape[1], g.outH, g.outW]);
  k.avgPool2d(g, x.ptr, y.ptr);
  return record('avgPool2d', y, [x], (dy) => {
    const dx = Tensor.empty(x.shape);
    k.avgPool2dBackward(g, dy.ptr, dx.ptr);
    return [dx];
  }, { geometry: g, opts });
}

/** Mean over H and W: [N, C, H, W] -> [N, C, 1, 1]. */
export function globalAvgPool2d(x: Tensor): Tensor {
  if (x.rank !== 4) throw new RangeError(`lowbit: globalAvgPool2d needs a 4-D NCHW input, got ${formatShape(x.shape)}`);
  const [n, c, h, w] = x.shape;
  const k = engine.kernels;
  const y = Tensor.empty([n, c, 1, 1]);
  k.reduce('sum', x.ptr, y.ptr, n * c, h * w, 1);
  k.unary('affine', y.ptr, y.ptr, n * c, 1 / (h * w), 0);
  return record('globalAvgPool2d', y, [x], (dy) => {
    const dx = Tensor.empty(x.shape);
    k.copy(4, dy.ptr, [1, 0], dx.ptr, [h * w, 1], [n * c, h * w]);
    k.unary('affine', dx.ptr, dx.ptr, dx.size, 1 / (h * w), 0);
    return [dx];
  });
}
