// The reference backend: every kernel of the interface as plain TypeScript over the engine memory.

import type { EngineMemory } from '../memory.js';
import type { Kernels } from '../types.js';
import * as ew from './elementwise.js';
import * as lin from './linear.js';
import * as pool from './pool.js';
import * as red from './reduce.js';
import * as norm from './norm.js';
import { createRefInt8Kernels } from './int8.js';
import { createRefBinaryKernels } from './binary.js';

export function createRefKernels(mem: EngineMemory): Kernels {
  return {
    name: 'ref',
    ...createRefInt8Kernels(mem),
    ...createRefBinaryKernels(mem),
    fill: (d, n, v) => ew.fill(mem, d, n, v),
    cast: (s, st, d, dt, n) => ew.cast(mem, s, st, d, dt, n),
    unary: (op, x, y, n, a, b) => ew.unary(mem, op, x, y, n, a, b),
    unaryBackward: (op, x, y, dy, dx, n, a, b) => ew.unaryBackward(mem, op, x, y, dy, dx, n, a, b),
    binary: (op, a, as, b, bs, o, sh) => ew.binary(mem, op, a, as, b, bs, o, sh),
    copy: (eb, s, ss, d, ds, sh) => ew.copy(mem, eb, s, ss, d, ds, sh),
    reduce: (op, x, y, o, r, i) => red.reduce(mem, op, x, y, o, r, i),
    argmax: (x, y, o, r, i) => red.argmax(mem, x, y, o, r, i),
    softmax: (x, y, r, c, log) => red.softmax(mem, x, y, r, c, log),
    softmaxBackward: (y, dy, dx, r, c, log) => red.softmaxBackward(mem, y, dy, dx, r, c, log),
    gemm: (ta, tb, m, n, k, a, lda, b, ldb, c, ldc, acc) => lin.gemm(mem, ta, tb, m, n, k, a, lda, b, ldb, c, ldc, acc),
    conv2d: (g, x, w, bias, y) => lin.conv2d(mem, g, x, w, bias, y),
    conv2dBackwardInput: (g, dy, w, dx) => lin.conv2dBackwardInput(mem, g, dy, w, dx),
    conv2dBackwardWeight: (g, x, dy, dw) => lin.conv2dBackwardWeight(mem, g, x, dy, dw),
    maxPool2d: (g, x, y, am) => pool.maxPool2d(mem, g, x, y, am),
    maxPool2dBackward: (g, dy, am, dx) => pool.maxPool2dBackward(mem, g, dy, am, dx),
    avgPool2d: (g, x, y) => pool.avgPool2d(mem, g, x, y),
    avgPool2dBackward: (g, dy, dx) => pool.avgPool2dBackward(mem, g, dy, dx),
    channelSums: (x, o, n, c, hw, s, s2) => red.channelSums(mem, x, o, n, c, hw, s, s2),
    channelAffine: (x, s, t, y, n, c, hw) => red.channelAffine(mem, x, s, t, y, n, c, hw),
    channelMeanVar: (x, n, c, hw, m, v) => norm.channelMeanVar(mem, x, n, c, hw, m, v),
    channelNormalize: (x, m, s, t, y, n, c, hw) => norm.channelNormalize(mem, x, m, s, t, y, n, c, hw),
    batchNormBackwardSums: (dy, x, m, n, c, hw, s, sx) => norm.batchNormBackwardSums(mem, dy, x, m, n, c, hw, s, sx),
    batchNormBackwardInput: (dy, x, m, a, b, d, dx, n, c, hw) => norm.batchNormBackwardInput(mem, dy, x, m, a, b, d, dx, n, c, hw),
    nllLoss: (lp, l, loss, r, c) => red.nllLoss(mem, lp, l, loss, r, c),
    dropoutMask: (m, n, p, seed) => ew.dropoutMask(mem, m, n, p, seed),
    randomUniform: (d, n, lo, hi, seed) => ew.randomUniform(mem, d, n, lo, hi, seed),
    sgdStep: (p, g, v, n, lr, mu, wd, nesterov) => ew.sgdStep(mem, p, g, v, n, lr, mu, wd, nesterov),
  };
}
