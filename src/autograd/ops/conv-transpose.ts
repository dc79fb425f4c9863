// Differentiable 2-D transposed convolution (NCHW input [N, C, H, W], weights [C, M/groups, kH, kW],
// output [N, M, outH, outW]), as in ONNX ConvTranspose and PyTorch's ConvTranspose2d:
//   outH = strideH (H - 1) + outputPaddingH + dilationH (kH - 1) + 1 - padTop - padBottom
// It is the input gradient of the convolution that maps [N, M, outH, outW] to [N, C, H, W] with the same
// weights, so every direction runs on the existing convolution kernels:
//   y  = conv2dBackwardInput(g, x, w)          forward
//   dx = conv2d(g, dy, w)                      (the adjoint of the input gradient is the convolution)
//   dw = conv2dBackwardWeight(g, dy, x)        (the convolution's "input" is dy, its "output grad" is x)

import { engine } from '../../tensor/engine.js';
import { Tensor, formatShape } from '../../tensor/tensor.js';
import type { ConvGeometry } from '../../kernels/types.js';
import { record, tracksGrad } from '../graph.js';
import { add } from './elementwise.js';
import { reshape } from './shape.js';
import { checkConvOperands, pair, pads4, type Conv2dOptions } from './conv.js';

export interface ConvTranspose2dOptions extends Conv2dOptions {
  /** Extra rows / columns at the bottom / right of the output (zeros before the bias). */
  outputPadding?: number | [number, number];
}

/** The geometry of the convolution whose input gradient this transposed convolution is. */
export function convTransposeGeometry(x: readonly number[], w: readonly number[], opts: ConvTranspose2dOptions): ConvGeometry {
  const [n, inC, inH, inW] = x;
  const [wC, mPerGroup, kH, kW] = w;
  const [strideH, strideW] = pair(opts.stride, 1);
  const [dilationH, dilationW] = pair(opts.dilation, 1);
  const [outPadH, outPadW] = pair(opts.outputPadding, 0);
  const [padTop, padLeft, padBottom, padRight] = pads4(opts.padding);
  const groups = opts.groups ?? 1;
  const where = `convTranspose2d: input ${formatShape(x)}, weight ${formatShape(w)}`;
  if (wC !== inC || inC % groups !== 0) {
    throw new RangeError(`lowbit: ${where}, groups ${groups}: weight.shape[0] must equal the input channels, which must divide by groups`);
  }
  if ([strideH, strideW, dilationH, dilationW].some((v) => !Number.isInteger(v) || v < 1) ||
      [padTop, padLeft, padBottom, padRight, outPadH, outPadW].some((v) => !Number.isInteger(v) || v < 0)) {
    throw new RangeError(`lowbit: ${where}: stride and dilation must be integers >= 1, padding and output padding >= 0`);
  }
  const outH = strideH * (inH - 1) + outPadH + dilationH * (kH - 1) + 1 - padTop - padBottom;
  const outW = strideW * (inW - 1) + outPadW + dilationW * (kW - 1) + 1 - padLeft - padRight;
  if (outH < 1 || outW < 1) throw new RangeError(`lowbit: ${where}: the padding crops the whole output`);
  // The convolution over the output maps it back to inH x inW; output padding beyond its reach gets no taps
  // (its bottom/right padding is what makes exactly inH x inW outputs, never negative).
  return {
    n, inC: mPerGroup * groups, inH: outH, inW: outW, outC: inC, kH, kW, strideH, strideW,
    padTop, padLeft, padBottom: Math.max(0, padBottom - outPadH), padRight: Math.max(0, padRight - outPadW),
    dilationH, dilationW, groups, outH: inH, outW: inW,
  };
}

export function convTranspose2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: ConvTranspose2dOptions = {}): Tensor {
  checkConvOperands('convTranspose2d', x, weight);
  const g = convTransposeGeometry(x.shape, weight.shape, opts);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== g.inC)) {
    throw new RangeError(`lowbit: convTranspose2d: bias ${formatShape(bias.shape)} does not match ${g.inC} output channels`);
  }
  const k = engine.kernels;
  const y = Tensor.empty([g.n, g.inC, g.inH, g.inW]);
  k.conv2dBackwardInput(g, x.ptr, weight.ptr, y.ptr);
  const out = record('convTranspose2d', y, [x, weight], (dy) => {
    let dx: Tensor | null = null;
    if (tracksGrad(x)) {
      dx = Tensor.empty(x.shape);
      k.conv2d(g, dy.ptr, weight.ptr, 0, dx.ptr);
    }
    const dw = Tensor.empty(weight.shape);
    k.conv2dBackwardWeight(g, dy.ptr, x.ptr, dw.ptr);
    return [dx, dw];
  }, { opts });
  // The bias through the broadcasting add, which carries its gradient (the per-channel sum of dy).
  return bias ? add(out, reshape(bias, [1, g.inC, 1, 1])) : out;
}
