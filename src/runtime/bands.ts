// Row bands: a big float convolution followed by batch norm, ReLU and max pooling (ResNet's and many CNNs'
// stem) computed a few pooled rows at a time, so that the convolution's full output never exists. For a
// 224x224 ResNet-18 that output is 3.2 MB, most of a binary network's activation memory. Each band convolves
// the input rows its pooled rows need (with the image's own padding only at the image's edges), normalizes
// in place, pools with the ReLU folded into the pool (maxPool(relu(x)) = max(0, window)), and copies the
// pooled rows into place: the same values as the unbanded chain.

import { convGeometry } from '../autograd/ops/conv.js';
import { poolGeometry, type Pool2dOptions } from '../autograd/ops/pool.js';
import type { Conv2d } from '../nn/index.js';
import { engine } from '../tensor/engine.js';
import { Tensor } from '../tensor/tensor.js';

/** Pooled rows per band (about 0.5 MB of convolution output for a 64-channel 112-wide stem). */
const POOLED_ROWS_PER_BAND = 8;

export interface StemChain {
  conv: Conv2d;
  /** Evaluation scale and shift of the batch norm, if any. */
  norm: { scale: Tensor; shift: Tensor } | null;
  relu: boolean;
  pool: Pool2dOptions;
}

/** maxPool(relu(bn(conv(x)))) for x [N, C, H, W], band by band. */
export function runBandedStem(s: StemChain, x: Tensor): Tensor {
  const k = engine.kernels;
  const conv = s.conv;
  const w = conv.weight;
  const full = convGeometry(x.shape, w.shape, conv.config);
  const pg = poolGeometry('maxPool2d', { shape: [full.n, full.outC, full.outH, full.outW], rank: 4 }, s.pool);
  const N = full.n, C = full.outC, convW = full.outW, PW = pg.outW;
  const y = Tensor.empty([N, C, pg.outH, PW]);
  const inPlane = full.inH * full.inW;
  for (let n = 0; n < N; n++) {
    for (let p0 = 0; p0 < pg.outH; p0 += POOLED_ROWS_PER_BAND) {
      const p1 = Math.min(pg.outH, p0 + POOLED_ROWS_PER_BAND);
      // convolution rows the pooled rows [p0, p1) read, and input rows those read
      const first = p0 * pg.strideH - pg.padTop, last = (p1 - 1) * pg.strideH - pg.padTop + (pg.kH - 1) * pg.dilationH;
      const c0 = Math.max(0, first), c1 = Math.min(full.outH, last + 1);
      const i0 = c0 * full.strideH - full.padTop, i1 = (c1 - 1) * full.strideH - full.padTop + (full.kH - 1) * full.dilationH + 1;
      const r0 = Math.max(0, i0), r1 = Math.min(full.inH, i1);
      const xb = Tensor.empty([1, full.inC, r1 - r0, full.inW]);
      const cb = Tensor.empty([1, C, c1 - c0, convW]);
      const pb = Tensor.empty([1, C, p1 - p0, PW]);
      try {
        k.copy(4, x.ptr + 4 * (n * full.inC * inPlane + r0 * full.inW), [inPlane, full.inW, 1], xb.ptr, [(r1 - r0) * full.inW, full.inW, 1], [full.inC, r1 - r0, full.inW]);
        const gb = { ...full, n: 1, inH: r1 - r0, padTop: r0 - i0, padBottom: i1 - r1, outH: c1 - c0 };
        k.conv2d(gb, xb.ptr, w.ptr, conv.bias?.ptr ?? 0, cb.ptr);
        const hw = (c1 - c0) * convW;
        if (s.norm) k.channelAffine(cb.ptr, s.norm.scale.ptr, s.norm.shift.ptr, cb.ptr, 1, C, hw);
        // the ReLU goes into the pool (one pass less over the convolution's output)
        const pgb = { ...pg, planes: C, inH: c1 - c0, padTop: c0 - first, padBottom: Math.max(0, last + 1 - c1), outH: p1 - p0, relu: s.relu };
        k.maxPool2d(pgb, cb.ptr, pb.ptr, 0);
        k.copy(4, pb.ptr, [(p1 - p0) * PW, PW, 1], y.ptr + 4 * (n * C * pg.outH * PW + p0 * PW), [pg.outH * PW, PW, 1], [C, p1 - p0, PW]);
      } finally {
        xb.dispose();
        cb.dispose();
        pb.dispose();
      }
    }
  }
  return y;
}
