// Orchestration of the convolution jobs (the loops are in assembly/conv.ts, winograd.ts and winograd4.ts):
// buffer sizes, the padded phase-split input, the choice of path, and the geometry of the input gradient
// as a forward convolution with flipped weights. Paths, in order of preference:
//   Winograd F(2x2,3x3) / F(3x3,2x2)   3x3, stride 1, undilated, groups 1, >= 8 channels in and out; the
//                                      forward by F(4x4,3x3) for outputs >= 16 x 8, padding <= 1, <= 128
//                                      channels in + out (winograd4)
//   depthwise SIMD loops               one input and one output channel per group
//   implicit im2col, pixel tiles       4 pixels x 8 channels, inputs read in place (narrow rows, groups 1,
//                                      <= 16 output channels)
//   implicit im2col, row tiles         tiles of 8 pixels along an output row (rows filling >= 85% of them)
//   implicit im2col, pixel panels      tiles of 8 consecutive pixels gathered into packed panels (narrow rows)
//   phases of stride-1 convolutions    input gradient with stride > 1 (backwardInputByPhases)
//   GEMM + col2im                      input gradient with stride > 1 and dilation
// A 1x1 kernel with stride > 1 and no padding reads every stride-th pixel only: it runs as the 1x1 stride-1
// convolution of those pixels, copied out first (its input gradient is scattered back).

import type { Ptr } from '../memory.js';
import type { ConvGeometry } from '../types.js';
import { ConvArg, Job } from './abi.js';
import type { WasmBackend } from './backend.js';

/** Multiply-adds per unit of a split convolution (~50 us on one thread). */
const GRAIN_MACS = 1 << 20;
/** Floats per unit of the preparation jobs (padding, packing). */
const GRAIN_FLOATS = 1 << 16;
/** Winograd only from this many input and output channels (below, the transforms dominate). */
const WINOGRAD_MIN_CHANNELS = 8;
/** Floats of per-thread scratch for one Winograd block (V and M), sized for the L2 cache. */
const WINOGRAD_BLOCK_FLOATS = 1 << 17;
/** Floats of the transformed tiles (V and D) held at once by the Winograd weight gradient. */
const WINOGRAD_WGRAD_CHUNK_FLOATS = 1 << 18;

/**
 * Time of one forward tile by its rows (output channels), in rows of a 4-row tile: a 5-row tile (with FMA
 * only) ran 10-15% more multiply-adds per second in microkernel A/B runs; 3 rows count as fast as 4 (they
 * serve 6, 9, ... channels).
 */
const TILE_COST: [number, number][] = [[5, 4.35], [4, 4], [3, 3]];

interface Padded {
  Hp: number;
  Wq: number;
  bytes: number;
}

function checkGeometry(g: ConvGeometry, op: string): void {
  const ints = [g.n, g.inC, g.inH, g.inW, g.outC, g.kH, g.kW, g.strideH, g.strideW, g.dilationH, g.dilationW, g.groups, g.outH, g.outW];
  if (ints.some((v) => !Number.isInteger(v) || v < 0) || g.groups < 1 || g.strideH < 1 || g.strideW < 1 || g.dilationH < 1 || g.dilationW < 1)
    throw new RangeError(`lowbit: ${op}: invalid geometry ${JSON.stringify(g)}`);
  if (g.inC % g.groups !== 0 || g.outC % g.groups !== 0)
    throw new RangeError(`lowbit: ${op}: channels ${g.inC} -> ${g.outC} not divisible by groups ${g.groups}`);
}

/**
 * The input gradient of a convolution as a stride-1 forward convolution over a (srcH x srcW) dy (or dy with
 * zeros inserted between its samples) with the flipped, transposed weights: "full" padding.
 */
function flippedGeometry(g: ConvGeometry, srcH: number, srcW: number): ConvGeometry {
  const padTop = g.dilationH * (g.kH - 1) - g.padTop;
  const padLeft = g.dilationW * (g.kW - 1) - g.padLeft;
  return {
    n: g.n, inC: g.outC, inH: srcH, inW: srcW, outC: g.inC, kH: g.kH, kW: g.kW, strideH: 1, strideW: 1,
    padTop, padLeft, padBottom: g.inH - srcH - padTop + g.dilationH * (g.kH - 1),
    padRight: g.inW - srcW - padLeft + g.dilationW * (g.kW - 1),
    dilationH: g.dilationH, dilationW: g.dilationW, groups: g.groups, outH: g.inH, outW: g.inW,
  };
}

export class ConvRunner {
  private readonly cnr: number;
  private readonly wmr: number;
  private readonly wnr: number;
  private readonly pxr: number;
  private readonly pxc: number;
  private readonly ckc: number;

  /** Use Winograd F(2x2, 3x3) where it applies (tests turn it off to check the direct path too). */
  winograd = true;
  /** Use Winograd F(4x4, 3x3) for the forward convolution where it applies (tests turn it off to check F(2x2, 3x3)). */
  winogradF4 = true;

  constructor(private readonly be: WasmBackend) {
    this.cnr = be.ex.tiling(6);
    this.wmr = be.ex.tiling(7);
    this.wnr = be.ex.tiling(8);
    this.pxr = be.ex.tiling(9);
    this.pxc = be.ex.tiling(10);
    this.ckc = be.ex.tiling(11);
  }

  /** Size of the padded, phase-split input (see assembly/conv.ts; the Winograd paths read the input in place). */
  private padded(g: ConvGeometry): Padded {
    const sW = g.strideW;
    const rowsNeeded = (g.outH - 1) * g.strideH + (g.kH - 1) * g.dilationH + 1;
    const Hp = Math.max(1, g.inH + g.padTop + g.padBottom, rowsNeeded);
    const colsNeeded = g.outW + Math.floor(((g.kW - 1) * g.dilationW) / sW);
    const Wq = Math.max(1, Math.ceil((g.inW + g.padLeft + g.padRight) / sW), colsNeeded);
    // slack: tiles read up to CNR columns past a row's last output
    const bytes = (g.n * g.inC * sW * Hp * Wq + 2 * (this.cnr + 8)) * 4;
    return { Hp, Wq, bytes };
  }

  private writeGeometry(g: ConvGeometry, p: Padded): void {
    const be = this.be;
    be.args(g.n, g.inC, g.inH, g.inW, g.outC, g.kH, g.kW, g.strideH, g.strideW, g.padTop, g.padLeft, g.dilationH, g.dilationW,
      g.groups, g.outH, g.outW, p.Hp, p.Wq);
    be.setArg(ConvArg.RowMajorTaps, 0); // taps in the weights' order unless a path asks otherwise
  }

  private macs(g: ConvGeometry): number {
    return g.n * g.outC * g.outH * g.outW * (g.inC / g.groups) * g.kH * g.kW;
  }

  private isDepthwise(g: ConvGeometry): boolean {
    return g.inC === g.groups && g.outC === g.groups;
  }

  /**
   * Rows of outW pixels leave more than 15% of the 8-pixel tiles empty: use panels of 8 consecutive pixels
   * of the flattened plane (gathered per tap) instead, if the panel fits the scratch buffer.
   */
  private narrow(g: ConvGeometry, K: number): boolean {
    return this.narrowRows(g) && g.outH * g.outW >= this.cnr && 1024 + K * (4 + 4 * this.cnr) <= this.be.ex.scratchBytes();
  }

  private narrowRows(g: ConvGeometry): boolean {
    return g.outW / (Math.ceil(g.outW / this.cnr) * this.cnr) < 0.85;
  }

  /**
   * Pixel tiles (4 pixels x 8 channels) for narrow rows and few output channels: no gather as in pixel
   * panels, which spent more time gathering than multiplying for LeNet-5's 6 -> 16 conv (10 x 10 output:
   * 3.4x faster). With wide rows, 3-row tiles ran as fast for 6 channels; with many channels, 5-row tiles
   * load less per multiply-add.
   */
  private pixelTiles(g: ConvGeometry): boolean {
    return g.groups === 1 && g.outC <= 2 * this.pxc && this.narrowRows(g);
  }

  /**
   * Rows (output channels) of the forward tile: the cheapest cover of coutG by tiles of at most
   * be.tileRows rows (TILE_COST). With FMA, 64 channels: 13 tiles of 5; 16: 4 of 4; 6: 2 of 3.
   */
  private tileRows(coutG: number, min = 3): number {
    let best = 4, bestCost = Infinity;
    for (const [mr, cost] of TILE_COST) {
      const c = Math.ceil(coutG / mr) * cost;
      if (mr <= this.be.tileRows && mr >= min && c < bestCost) { best = mr; bestCost = c; }
    }
    return best;
  }

  /**
   * The stride-1 geometry of a strided 1x1 convolution without padding over its subsampled input
   * [n, inC, outH, outW], or null for other convolutions.
   */
  private subsampled1x1(g: ConvGeometry): ConvGeometry | null {
    if (g.kH !== 1 || g.kW !== 1 || (g.strideH === 1 && g.strideW === 1) || g.padTop || g.padLeft || g.padBottom || g.padRight) return null;
    return { ...g, inH: g.outH, inW: g.outW, strideH: 1, strideW: 1 };
  }

  /**
   * Copy planes of rows x cols floats between strided layouts: dst[p][r][c] = src[p][r][c] with element
   * strides (per plane, row, column) srcStrides and dstStrides.
   */
  private copyPlanes(planes: number, rows: number, cols: number, src: Ptr, srcStrides: number[], dst: Ptr, dstStrides: number[]): void {
    const be = this.be;
    be.ints([3, planes, rows, cols, 0, 0, 0, ...srcStrides, 0, 0, 0, ...dstStrides]);
    be.args(4, src, dst, planes * rows);
    be.run(Job.Copy, Math.min(planes * rows, be.units(planes * rows * cols, GRAIN_FLOATS)));
  }

  /** x[:, :, ::sH, ::sW] (outH x outW pixels per plane) into a new buffer, the caller frees it. */
  private subsample(g: ConvGeometry, x: Ptr): Ptr {
    const planes = g.n * g.inC, P = g.outH * g.outW;
    const xs = this.be.mem.alloc(planes * P * 4);
    this.copyPlanes(planes, g.outH, g.outW, x, [g.inH * g.inW, g.strideH * g.inW, g.strideW], xs, [P, g.outW, 1]);
    return xs;
  }

  /** Winograd F(2x2, 3x3) pays off for 3x3 stride-1 undilated convolutions with enough channels. */
  private winogradApplies(g: ConvGeometry): boolean {
    return this.winograd && g.kH === 3 && g.kW === 3 && g.strideH === 1 && g.strideW === 1 && g.dilationH === 1 &&
      g.dilationW === 1 && g.groups === 1 && g.inC >= WINOGRAD_MIN_CHANNELS && g.outC >= WINOGRAD_MIN_CHANNELS &&
      g.outH >= 2 && g.outW >= 2;
  }

  /** dW by Winograd F(3x3, 2x2): 16 GEMMs over the tiles (assembly/winograd.ts), chunk by chunk. */
  private winogradWeightGradient(g: ConvGeometry, x: Ptr, dy: Ptr, dw: Ptr): void {
    const be = this.be, mem = be.mem;
    const TH = be.ex.winogradTiles(g.outH, g.outW, 0), TW4 = be.ex.winogradTiles(g.outH, g.outW, 1);
    const tiles = g.n * TH * TW4;
    const tc = Math.min(tiles, Math.max(64, Math.floor(WINOGRAD_WGRAD_CHUNK_FLOATS / (16 * (g.inC + g.outC)) / 4) * 4));
    // per-thread scratch: the strip of padded input rows that a run of tiles in one image reads (assembly/winograd.ts)
    if ((2 * Math.min(TH - 1, Math.ceil(tc / TW4)) + 4) * (2 * TW4 + 8) * 4 > be.ex.scratchBytes())
      throw new Error('lowbit: internal: Winograd strip exceeds the scratch buffer');
    const allocs: Ptr[] = [];
    const alloc = (bytes: number) => { const a = mem.alloc(bytes); allocs.push(a); return a; };
    try {
      const plane = (which: number) => be.ex.winogradWgradSizes(g.inC, g.outC, tc, which);
      const V = alloc(16 * plane(0) * 4), D = alloc(16 * plane(1) * 4), M = alloc(16 * plane(2) * 4);
      // D's padding columns (output channels past outC) and M start at zero
      mem.f32.fill(0, D >>> 2, (D >>> 2) + 16 * plane(1));
      mem.f32.fill(0, M >>> 2, (M >>> 2) + 16 * plane(2));
      this.writeGeometry(g, { Hp: 0, Wq: 0, bytes: 0 }); // x is read in place: no padded copy
      be.setArg(ConvArg.X, x);
      be.setArg(ConvArg.Y, dy);
      be.setArg(ConvArg.Aux, V);
      be.setArg(ConvArg.Aux2, D);
      be.setArg(ConvArg.Blocks, tc);
      be.setArg(ConvArg.WPack, M);
      const chunkMacs = 16 * g.inC * g.outC * tc;
      for (let first = 0; first < tiles; first += tc) {
        be.setArg(ConvArg.MR, first);
        be.run(Job.WinogradWgradTransform, Math.min(tc / 4, be.units(16 * (g.inC + g.outC) * tc, GRAIN_FLOATS)));
        be.run(Job.WinogradWgradGemm, be.units(chunkMacs, GRAIN_MACS, 16));
      }
      be.setArg(ConvArg.W, dw);
      be.run(Job.WinogradWgradOutput, Math.min(g.outC, be.units(g.outC * g.inC * 16, GRAIN_FLOATS)));
    } finally {
      for (const a of allocs) mem.free(a);
    }
  }

  /** y = conv(x, w) + bias by Winograd F(2x2, 3x3) (assembly/winograd.ts). */
  /**
   * Winograd F(4x4, 3x3) (assembly/winograd4.ts: 36 multiplies per 16 outputs, against 64 for F(2x2, 3x3))
   * where its 4-tile groups leave little of a row empty, with padding <= 1 (its error where a tile reads two
   * rows or columns of padding exceeds 1e-5 of an output's sum of |terms|) and up to 64 + 64 channels (128 ->
   * 128 on 28 x 28, batch 1, ran 0.93x F(2x2, 3x3): its 36 transformed weight planes leave blocks of 8 tiles).
   */
  private winograd4(g: ConvGeometry): boolean {
    return this.winogradF4 && g.outW >= 16 && g.outH >= 8 && Math.max(g.padTop, g.padLeft, g.padBottom, g.padRight) <= 1 &&
      g.inC + g.outC <= 128;
  }

  /** y = conv(x, w) + bias by Winograd F(4x4, 3x3) or F(2x2, 3x3) (assembly/winograd4.ts, winograd.ts). */
  private winogradForward(g: ConvGeometry, x: Ptr, w: Ptr, bias: Ptr, y: Ptr, flippedWeights: boolean): void {
    const be = this.be, mem = be.mem;
    const f4 = this.winograd4(g), m = f4 ? 4 : 2, planes = (m + 2) * (m + 2);
    const tiles2 = (which: number) => (f4 ? be.ex.winograd4Tiles(g.outH, g.outW, which) : be.ex.winogradTiles(g.outH, g.outW, which));
    const TH = tiles2(0), TW4 = tiles2(1);
    const mr = this.tileRows(g.outC, 4); // 5 or 4 output channels per tile
    const panels = Math.ceil(g.outC / mr);
    // tiles per block: V (planes x TB x inC) and M (planes x outC rounded up to tiles x TB) stay within ~512 KiB (L2)
    const tb = Math.max(8, Math.min(256, Math.floor(WINOGRAD_BLOCK_FLOATS / (planes * (g.inC + panels * mr)) / 8) * 8));
    const xi = (rows: number, cols: number) => be.ex.winogradTiles(rows, cols, 2);
    // V, M, (F4) 36 vectors between transform passes, and the strip of padded input rows that a run of a
    // block's tiles in one image reads
    const stripFloats = (m * Math.min(TH - 1, Math.ceil(tb / TW4)) + m + 2) * (m * TW4 + 8);
    const scratchFloats = planes * (xi(tb, g.inC) + xi(panels * mr, tb)) + 144 + stripFloats;
    if (scratchFloats * 4 > be.ex.scratchBytes()) throw new Error('lowbit: internal: Winograd block exceeds the scratch buffer');
    const tiles = g.n * TH * TW4;
    const blocks = Math.ceil(tiles / tb);
    const U = mem.alloc(planes * xi(panels * mr, g.inC) * 4);
    try {
      this.writeGeometry(g, { Hp: 0, Wq: 0, bytes: 0 }); // the input is read in place: no padded copy
      be.setArg(ConvArg.X, x);
      be.setArg(ConvArg.XPad, 0);
      be.setArg(ConvArg.W, w);
      be.setArg(ConvArg.WPack, U);
      be.setArg(ConvArg.Offs, 0);
      be.setArg(ConvArg.Bias, bias);
      be.setArg(ConvArg.Y, y);
      be.setArg(ConvArg.Aux, tb);
      be.setArg(ConvArg.Aux2, flippedWeights ? 1 : 0);
      be.setArg(ConvArg.Blocks, blocks);
      be.setArg(ConvArg.MR, mr);
      be.run(f4 ? Job.Winograd4Prep : Job.WinogradPrep, Math.min(panels, be.units(planes * panels * mr * g.inC, GRAIN_FLOATS)));
      be.run(f4 ? Job.Winograd4 : Job.Winograd, Math.min(blocks, be.units((this.macs(g) * planes) / (9 * m * m), GRAIN_MACS)));
    } finally {
      mem.free(U);
    }
  }

  forward(g: ConvGeometry, x: Ptr, w: Ptr, bias: Ptr, y: Ptr, flippedWeights = false): void {
    checkGeometry(g, 'conv2d');
    const be = this.be, mem = be.mem;
    if (g.n * g.outC * g.outH * g.outW === 0) return;
    const K = (g.inC / g.groups) * g.kH * g.kW;
    if (K === 0) {
      // no taps: the output is the bias
      for (let b = 0; b < g.n; b++)
        for (let c = 0; c < g.outC; c++) {
          const v = bias ? mem.f32[(bias >>> 2) + c] : 0;
          const start = (y >>> 2) + (b * g.outC + c) * g.outH * g.outW;
          mem.f32.fill(v, start, start + g.outH * g.outW);
        }
      return;
    }
    if (this.winogradApplies(g)) {
      this.winogradForward(g, x, w, bias, y, flippedWeights);
      return;
    }
    const g1 = this.subsampled1x1(g);
    if (g1) {
      const xs = this.subsample(g, x);
      try {
        this.forward(g1, xs, w, bias, y, flippedWeights);
      } finally {
        mem.free(xs);
      }
      return;
    }
    const p = this.padded(g);
    const depthwise = this.isDepthwise(g) && !flippedWeights;
    const pixelTiles = !depthwise && this.pixelTiles(g);
    const coutG = g.outC / g.groups;
    const mr = pixelTiles ? this.pxc : this.tileRows(coutG);
    const panels = Math.ceil(coutG / mr);
    const xpad = mem.alloc(p.bytes);
    const offs = mem.alloc(K * 4);
    const wpack = depthwise ? 0 : mem.alloc(g.groups * panels * K * mr * 4);
    const narrow = this.narrow(g, K);
    try {
      this.writeGeometry(g, p);
      // row tiles skip the kernel rows that read padding (taps ordered by kernel row: one weight block only);
      // with or without padding, so that a convolution over a band of rows sums in the order the whole one does
      const rowTiles = !depthwise && !pixelTiles && !narrow;
      be.setArg(ConvArg.RowMajorTaps, rowTiles && K <= this.ckc ? 1 : 0);
      be.setArg(ConvArg.X, x);
      be.setArg(ConvArg.XPad, xpad);
      be.setArg(ConvArg.W, w);
      be.setArg(ConvArg.WPack, wpack);
      be.setArg(ConvArg.Offs, offs);
      be.setArg(ConvArg.Bias, bias);
      be.setArg(ConvArg.Y, y);
      be.setArg(ConvArg.Aux, flippedWeights ? 1 : 0);
      be.setArg(ConvArg.MR, mr);
      // prep units split the input planes (and the weight panels); compute units split output rows (planes)
      be.run(Job.ConvPrep, Math.min(g.n * g.inC, be.units(g.n * g.inC * p.Hp * p.Wq * g.strideW, GRAIN_FLOATS)));
      if (depthwise) {
        be.run(Job.DepthwiseForward, Math.min(g.n * g.inC, be.units(this.macs(g), GRAIN_MACS)));
      } else if (pixelTiles) {
        const tiles = Math.ceil((g.n * g.outH * g.outW) / this.pxr);
        be.run(Job.ConvPixels, Math.min(tiles, be.units(this.macs(g), GRAIN_MACS)));
      } else if (narrow) {
        // narrow rows: tiles of 8 consecutive pixels of the flattened plane, gathered into panels
        const units = g.n * g.groups * Math.ceil((g.outH * g.outW) / this.cnr);
        be.run(Job.ConvPanels, Math.min(units, be.units(this.macs(g), GRAIN_MACS)));
      } else {
        be.run(Job.ConvForward, Math.min(g.n * g.outH, be.units(this.macs(g), GRAIN_MACS)));
      }
    } finally {
      mem.free(xpad);
      mem.free(offs);
      if (wpack) mem.free(wpack);
    }
  }

  backwardInput(g: ConvGeometry, dy: Ptr, w: Ptr, dx: Ptr): void {
    checkGeometry(g, 'conv2dBackwardInput');
    const be = this.be, mem = be.mem;
    const dxLen = g.n * g.inC * g.inH * g.inW;
    if (dxLen === 0) return;
    const cinG = g.inC / g.groups, coutG = g.outC / g.groups;
    const kk = g.kH * g.kW;
    if (g.outH * g.outW === 0 || coutG * kk === 0) {
      mem.f32.fill(0, dx >>> 2, (dx >>> 2) + dxLen);
      return;
    }
    const g1 = this.subsampled1x1(g);
    if (g1) {
      // the gradient of the subsampled input, scattered into zeros
      const planes = g.n * g.inC, P = g.outH * g.outW;
      const dxs = mem.alloc(planes * P * 4);
      try {
        this.backwardInput(g1, dy, w, dxs);
        be.args(dx, dxLen, 0);
        be.run(Job.Fill, be.units(dxLen, 1 << 17));
        this.copyPlanes(planes, g.outH, g.outW, dxs, [P, g.outW, 1], dx, [g.inH * g.inW, g.strideH * g.inW, g.strideW]);
      } finally {
        mem.free(dxs);
      }
      return;
    }
    if (g.strideH === 1 && g.strideW === 1) {
      const g2 = flippedGeometry(g, g.outH, g.outW);
      if (!this.isDepthwise(g)) {
        this.forward(g2, dy, w, 0, dx, true); // the weights are flipped while they are packed
        return;
      }
      const wf = mem.alloc(g.inC * coutG * kk * 4);
      try {
        be.args(w, wf, g.inC, cinG, coutG, g.kH, g.kW);
        be.run(Job.FlipWeights, 1);
        this.forward(g2, dy, wf, 0, dx);
      } finally {
        mem.free(wf);
      }
      return;
    }
    if (!this.isDepthwise(g) && g.dilationH === 1 && g.dilationW === 1) {
      // stride > 1: one stride-1 convolution per phase of the input (1.5x the ResNet-20 downsampling layers'
      // input gradient by Winograd over dy with zeros inserted, which multiplied the zeros too)
      this.backwardInputByPhases(g, dy, w, dx);
      return;
    }
    if (this.isDepthwise(g)) {
      const p = this.padded(g);
      this.writeGeometry(g, p);
      be.setArg(ConvArg.X, dx);
      be.setArg(ConvArg.W, w);
      be.setArg(ConvArg.Y, dy);
      be.run(Job.DepthwiseBackwardInput, Math.min(g.n * g.inC, be.units(this.macs(g), GRAIN_MACS / 4)));
      return;
    }
    // dcol = W_g^T dy_g (GEMM), dx += col2im(dcol), per image and group
    const K = cinG * kk, P = g.outH * g.outW;
    const dcol = mem.alloc(K * P * 4);
    try {
      be.args(dx, dxLen, 0);
      be.run(Job.Fill, be.units(dxLen, 1 << 17));
      for (let b = 0; b < g.n; b++)
        for (let gi = 0; gi < g.groups; gi++) {
          be.args(1, 0, K, P, coutG, w + gi * coutG * K * 4, K, dy + (b * g.outC + gi * coutG) * P * 4, P, dcol, P, 0);
          be.run(Job.Gemm, K * P * coutG >= GRAIN_MACS ? be.nt : 1);
          const p = this.padded(g);
          this.writeGeometry(g, p);
          be.setArg(ConvArg.Aux, dcol);
          be.setArg(ConvArg.X, dx + (b * g.inC + gi * cinG) * g.inH * g.inW * 4);
          be.setArg(ConvArg.Aux2, cinG);
          be.run(Job.Col2im, Math.min(cinG, be.units(K * P, GRAIN_FLOATS)));
        }
    } finally {
      mem.free(dcol);
    }
  }

  /**
   * The input gradient of a strided, undilated convolution as sH x sW stride-1 ones: the inputs of one phase
   * (rows iy = phi_y + sH Y, columns phi_x + sW X) are reached only by the taps ky = ry + sH j, kx = rx + sW i
   * (ry = (phi_y + pT) mod sH, likewise rx), at y(oy) = sum over j of x_phase(oy + j - pT') w(ry + sH j) with
   * pT' = (phi_y + pT - ry) / sH. So each phase's gradient is that of a stride-1 convolution with the
   * sub-kernel w[:, :, ry::sH, rx::sW]: no multiplies by inserted zeros, no col2im. Phases no tap reaches, and
   * rows or columns past the last one the convolution reads, keep zero gradients.
   */
  private backwardInputByPhases(g: ConvGeometry, dy: Ptr, w: Ptr, dx: Ptr): void {
    const be = this.be, mem = be.mem;
    const cinG = g.inC / g.groups, planes = g.n * g.inC;
    /** One dimension of a phase: its sub-kernel's first tap and size, the sub-problem's input size and padding. */
    const phase = (f: number, s: number, pad: number, k: number, inSize: number, outSize: number) => {
      const r = (f + pad) % s;
      const taps = r < k ? Math.ceil((k - r) / s) : 0;
      const padBefore = (f + pad - r) / s;
      const size = Math.max(0, Math.min(Math.ceil((inSize - f) / s), outSize + taps - 1 - padBefore));
      return { r, taps, padBefore, size, padAfter: outSize + taps - 1 - size - padBefore };
    };
    let covered = 0;
    const phases = [];
    for (let fy = 0; fy < g.strideH; fy++)
      for (let fx = 0; fx < g.strideW; fx++) {
        const py = phase(fy, g.strideH, g.padTop, g.kH, g.inH, g.outH), px = phase(fx, g.strideW, g.padLeft, g.kW, g.inW, g.outW);
        if (py.taps > 0 && px.taps > 0 && py.size > 0 && px.size > 0) {
          phases.push({ fy, fx, py, px });
          covered += py.size * px.size;
        }
      }
    if (covered < g.inH * g.inW) {
      be.args(dx, planes * g.inH * g.inW, 0);
      be.run(Job.Fill, be.units(planes * g.inH * g.inW, 1 << 17));
    }
    for (const { fy, fx, py, px } of phases) {
      const gs: ConvGeometry = {
        ...g, inH: py.size, inW: px.size, kH: py.taps, kW: px.taps, strideH: 1, strideW: 1,
        padTop: py.padBefore, padBottom: py.padAfter, padLeft: px.padBefore, padRight: px.padAfter,
      };
      const ws = mem.alloc(g.outC * cinG * py.taps * px.taps * 4);
      const dxs = mem.alloc(planes * py.size * px.size * 4);
      try {
        this.copyPlanes(g.outC * cinG, py.taps, px.taps, w + (py.r * g.kW + px.r) * 4, [g.kH * g.kW, g.strideH * g.kW, g.strideW],
          ws, [py.taps * px.taps, px.taps, 1]);
        this.backwardInput(gs, dy, ws, dxs);
        this.copyPlanes(planes, py.size, px.size, dxs, [py.size * px.size, px.size, 1], dx + (fy * g.inW + fx) * 4,
          [g.inH * g.inW, g.strideH * g.inW, g.strideW]);
      } finally {
        mem.free(ws);
        mem.free(dxs);
      }
    }
  }

  backwardWeight(g: ConvGeometry, x: Ptr, dy: Ptr, dw: Ptr): void {
    checkGeometry(g, 'conv2dBackwardWeight');
    const be = this.be, mem = be.mem;
    const cinG = g.inC / g.groups, coutG = g.outC / g.groups;
    const K = cinG * g.kH * g.kW;
    const dwLen = g.outC * K;
    if (dwLen === 0) return;
    if (g.n * g.outH * g.outW === 0) {
      mem.f32.fill(0, dw >>> 2, (dw >>> 2) + dwLen);
      return;
    }
    if (this.winogradApplies(g)) {
      this.winogradWeightGradient(g, x, dy, dw);
      return;
    }
    const g1 = this.subsampled1x1(g);
    if (g1) {
      const xs = this.subsample(g, x);
      try {
        this.backwardWeight(g1, xs, dy, dw);
      } finally {
        mem.free(xs);
      }
      return;
    }
    const p = this.padded(g);
    const prepUnits = Math.min(g.n * g.inC, be.units(g.n * g.inC * p.Hp * p.Wq * g.strideW, GRAIN_FLOATS));
    const xpad = mem.alloc(p.bytes);
    const offs = mem.alloc(K * 4);
    const allocs = [xpad, offs];
    try {
      this.writeGeometry(g, p);
      be.setArg(ConvArg.X, x);
      be.setArg(ConvArg.XPad, xpad);
      be.setArg(ConvArg.Offs, offs);
      be.setArg(ConvArg.W, dw);
      be.setArg(ConvArg.Y, dy);
      if (this.isDepthwise(g)) {
        be.setArg(ConvArg.WPack, 0);
        be.run(Job.ConvPrep, prepUnits);
        be.run(Job.DepthwiseWgrad, Math.min(g.inC, be.units(this.macs(g), GRAIN_MACS)));
        return;
      }
      const P = g.outH * g.outW;
      const S = Math.ceil(coutG / this.wnr);
      const Kpad = Math.ceil(K / this.wmr) * this.wmr;
      const dyT = mem.alloc(g.n * g.groups * S * P * this.wnr * 4);
      allocs.push(dyT);
      const dwT = mem.alloc(g.groups * Kpad * S * this.wnr * 4);
      allocs.push(dwT);
      be.setArg(ConvArg.Aux, dyT);
      be.setArg(ConvArg.Aux2, dwT);
      be.run(Job.WgradPrep, prepUnits);
      const panels = g.groups * Math.ceil(K / this.wmr);
      be.run(Job.Wgrad, Math.min(panels, be.units(this.macs(g), GRAIN_MACS)));
    } finally {
      for (const a of allocs) mem.free(a);
    }
  }
}
