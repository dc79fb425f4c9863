// Differentiable 2-D convolution (NCHW, weights [outC, inC/groups, kH, kW]) with stride, padding,
// dilation and groups (depthwise when groups = inC).

import { engine } from '../../tensor/engine.js';
import { Tensor, formatShape } from '../../tensor/tensor.js';
import type { ConvGeometry } from '../../kernels/types.js';
import { record, tracksGrad } from '../graph.js';

export interface Conv2dOptions {
  stride?: number | [number, number];
  /** Symmetric [padH, padW] or one number; or explicit [top, left, bottom, right]. */
  padding?: number | [number, number] | [number, number, number, number];
  dilation?: number | [number, number];
  groups?: number;
}

export function pair(v: number | [number, number] | undefined, dflt: number): [number, number] {
  if (v === undefined) return [dflt, dflt];
  return typeof v === 'number' ? [v, v] : v;
}

export function pads4(p: Conv2dOptions['padding']): [number, number, number, number] {
  if (p === undefined) return [0, 0, 0, 0];
  if (typeof p === 'number') return [p, p, p, p];
  if (p.length === 2) return [p[0], p[1], p[0], p[1]];
  return p;
}

export function convGeometry(x: Shape4, w: Shape4, opts: Conv2dOptions): ConvGeometry {
  const [n, inC, inH, inW] = x;
  const [outC, cPerGroup, kH, kW] = w;
  const [strideH, strideW] = pair(opts.stride, 1);
  const [dilationH, dilationW] = pair(opts.dilation, 1);
  const [padTop, padLeft, padBottom, padRight] = pads4(opts.padding);
  const groups = opts.groups ?? 1;
  const where = `conv2d: input ${formatShape(x)}, weight ${formatShape(w)}`;
  if (inC % groups !== 0 || outC % groups !== 0 || cPerGroup * groups !== inC) {
    throw new RangeError(`lowbit: ${where}, groups ${groups}: input channels must equal weight.shape[1] * groups and both channel counts divide by groups`);
  }
  if ([strideH, strideW, dilationH, dilationW].some((v) => !Number.isInteger(v) || v < 1) ||
      [padTop, padLeft, padBottom, padRight].some((v) => !Number.isInteger(v) || v < 0)) {
    throw new RangeError(`lowbit: ${where}: stride and dilation must be integers >= 1 and padding >= 0`);
  }
  const outH = Math.floor((inH + padTop + padBottom - dilationH * (kH - 1) - 1) / strideH) + 1;
  const outW = Math.floor((inW + padLeft + padRight - dilationW * (kW - 1) - 1) / strideW) + 1;
  if (outH < 1 || outW < 1) throw new RangeError(`lowbit: ${where}: the kernel is larger than the padded input`);
  return { n, inC, inH, inW, outC, kH, kW, strideH, strideW, padTop, padLeft, padBottom, padRight, dilationH, dilationW, groups, outH, outW };
}

type Shape4 = readonly number[];

/** The operand checks conv2d and convTranspose2d share: 4-D f32 input and weight. */
export function checkConvOperands(op: string, x: Tensor, weight: Tensor): void {
  if (x.rank !== 4 || weight.rank !== 4) {
    throw new RangeError(`lowbit: ${op} needs a 4-D NCHW input and 4-D weight, got ${formatShape(x.shape)} and ${formatShape(weight.shape)}`);
  }
  if (x.dtype !== 'f32' || weight.dtype !== 'f32') throw new TypeError(`lowbit: ${op} needs f32 tensors, got ${x.describe()} and ${weight.describe()}`);
}

export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  checkConvOperands('conv2d', x, weight);
  const g = convGeometry(x.shape, weight.shape, opts);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== g.outC)) {
    throw new RangeError(`lowbit: conv2d: bias ${formatShape(bias.shape)} does not match ${g.outC} output channels`);
  }
  const k = engine.kernels;
  const y = Tensor.empty([g.n, g.outC, g.outH, g.outW]);
  k.conv2d(g, x.ptr, weight.ptr, bias ? bias.ptr : 0, y.ptr);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record('conv2d', y, inputs, (dy) => {
    // The first layer's input (the image) needs no gradient: skip the most expensive half there.
    let dx: Tensor | null = null;
    if (tracksGrad(x)) {
      dx = Tensor.empty(x.shape);
      k.conv2dBackwardInput(g, dy.ptr, weight.ptr, dx.ptr);
    }
    const dw = Tensor.empty(weight.shape);
    k.conv2dBackwardWeight(g, x.ptr, dy.ptr, dw.ptr);
    if (!bias) return [dx, dw];
    const db = Tensor.empty([g.outC]);
    k.channelSums(dy.ptr, 0, g.n, g.outC, g.outH * g.outW, db.ptr, 0);
    return [dx, dw, db];
  });
}
