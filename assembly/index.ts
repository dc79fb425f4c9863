// lowbit's WebAssembly kernels (AssemblyScript, SIMD128 + threads). The module imports the engine's shared
// memory and allocates nothing: every buffer, including per-thread scratch, is handed in by the JS side.
// A kernel call is a "job": the caller writes its arguments into a control block (layout.ts) and runs it
// alone (runAll) or publishes it for the worker threads and claims units of it like they do (publish, work).

import { JOB, ERR, SEQ, TICKET, DONE, argF, argI, argP, scratchOf, shareStart, tileRows } from './layout';
import { fillRange, castRange, unaryRange, unaryBackwardRange, binaryRows, copyRows, dropoutRange, randomUniformRange, sgdRange } from './elementwise';
import { reduceRange, argmaxRange, softmaxRows, softmaxBackwardRows, channelSumsRange, channelAffineRange } from './reduce';
import { maxPoolPlanes, maxPoolBackwardPlanes, avgPoolPlanes, avgPoolBackwardPlanes } from './pool';
import { gemmPart, GEMM_SCRATCH, MR as GEMM_MR_, NR as GEMM_NR_, MC as GEMM_MC_, KC as GEMM_KC_, NC as GEMM_NC_ } from './gemm';
import {
  padPlanes, tapOffsets, packWeights, convRows, convPanels, convPixels, PXR, PXC, flipWeights, col2imChannels, packDyT, wgradUnits,
  depthwiseRows, depthwiseWgrad, depthwiseBackwardInput,
  CMR, CNR, CKC, WMR, WNR, A_N, A_INC, A_INH, A_INW, A_OUTC, A_KH, A_KW, A_SH, A_SW, A_PT, A_PL, A_DH, A_DW, A_G, A_OUTH, A_OUTW,
  A_HP, A_WQ, A_X, A_XPAD, A_W, A_WPACK, A_OFFS, A_Y, A_AUX, A_AUX2, A_MR, A_BLOCKS, A_ROWMAJOR_TAPS,
} from './conv';
import { winogradWeights, winogradBlocks, winogradWgradTransform, winogradWgradOutput, winogradWgradGemm } from './winograd';
import { winograd4Weights, winograd4Blocks } from './winograd4';
import { int8Job } from './int8';
import { binarizePackRows, binaryPackWeightBlocks, binaryConvRows, CB as BIN_CB } from './binary';
import { channelMeanVarRange, channelNormalizeRange, batchNormBackwardSumsRange, batchNormBackwardInputRange } from './norm';

export { nllLoss } from './reduce';
export { winogradTiles, winogradWgradSizes } from './winograd';
export { winograd4Tiles } from './winograd4';
// Exported so that the loader can find them (it derives a relaxed-SIMD variant of their bodies).
export { gemm_mk_4x8, gemm_mk_5x8, conv_mk_5x8, conv_mk_4x8, conv_mk_3x8, wgrad_mk_4x8, convpx_mk_4x8 } from './microkernels';

// Job ids (mirrored in src/kernels/wasm/abi.ts).
const J_FILL = 1, J_CAST = 2, J_UNARY = 3, J_UNARY_BWD = 4, J_BINARY = 5, J_COPY = 6, J_REDUCE = 7, J_ARGMAX = 8;
const J_SOFTMAX = 9, J_SOFTMAX_BWD = 10, J_GEMM = 11, J_CONV_PREP = 12, J_CONV_FWD = 13, J_MAXPOOL = 14;
const J_MAXPOOL_BWD = 15, J_AVGPOOL = 16, J_AVGPOOL_BWD = 17, J_CH_SUMS = 18, J_CH_AFFINE = 19, J_DROPOUT = 20;
const J_FLIPW = 21, J_COL2IM = 22, J_WGRAD_PREP = 23, J_WGRAD = 24, J_DW_FWD = 25, J_DW_WGRAD = 26, J_DW_BWD_INPUT = 27;
const J_RANDOM_UNIFORM = 28, J_WINO_PREP = 29, J_WINO = 30, J_WINO_WG_T = 31, J_WINO_WG_GEMM = 32, J_WINO_WG_OUT = 33;
const J_CONV_PANELS = 34, J_SGD = 35, J_CONV_PIXELS = 36, J_WINO4_PREP = 37, J_WINO4 = 38;
// binary (XNOR-popcount) kernels: 50-59 (assembly/binary.ts)
const J_BIN_PACK = 50, J_BIN_PACK_WEIGHTS = 51, J_BIN_CONV = 52;
// batch-norm training kernels: 60-69 (assembly/norm.ts)
const J_BN_MEAN_VAR = 60, J_BN_NORMALIZE = 61, J_BN_BWD_SUMS = 62, J_BN_BWD_INPUT = 63;

/** End of the module's static data: the JS allocator must not hand out memory below this. */
export function heapBase(): usize {
  return __heap_base;
}
/** Scratch bytes each thread needs (packing panels and edge tiles). */
export function scratchBytes(): usize {
  return GEMM_SCRATCH;
}
/** Tiling, for the record (bench notes, tests); float tile rows are the most in use (layout.ts tileRows). */
export function tiling(which: i32): i32 {
  switch (which) {
    case 0: return GEMM_MR_;
    case 1: return GEMM_NR_;
    case 2: return GEMM_MC_;
    case 3: return GEMM_KC_;
    case 4: return GEMM_NC_;
    case 5: return CMR;
    case 6: return CNR;
    case 7: return WMR;
    case 8: return WNR;
    case 9: return PXR;
    case 10: return PXC;
    case 11: return CKC;
    default: return 0;
  }
}

// @ts-ignore: decorator
@inline function lo(n: i32, t: i32, nt: i32, align: i32): i32 {
  return shareStart(n, t, nt, align);
}
// @ts-ignore: decorator
@inline function hi(n: i32, t: i32, nt: i32, align: i32): i32 {
  return shareStart(n, t + 1, nt, align);
}

function poolJob(job: i32, ctrl: usize, u: i32, U: i32): void {
  // args: x/dy, y/dx, argmax, planes, inH, inW, kH, kW, sH, sW, pT, pL, pB, pR, dH, dW, outH, outW, includePad
  const planes = argI(ctrl, 3);
  const p0 = lo(planes, u, U, 1), p1 = hi(planes, u, U, 1);
  if (p1 <= p0) return;
  const inH = argI(ctrl, 4), inW = argI(ctrl, 5), kH = argI(ctrl, 6), kW = argI(ctrl, 7), sH = argI(ctrl, 8), sW = argI(ctrl, 9);
  const pT = argI(ctrl, 10), pL = argI(ctrl, 11), pB = argI(ctrl, 12), pR = argI(ctrl, 13), dH = argI(ctrl, 14), dW = argI(ctrl, 15);
  const outH = argI(ctrl, 16), outW = argI(ctrl, 17), inc = argI(ctrl, 18) != 0;
  const a0 = argP(ctrl, 0), a1 = argP(ctrl, 1), a2 = argP(ctrl, 2);
  if (job == J_MAXPOOL) maxPoolPlanes(a0, a1, a2, p0, p1, inH, inW, kH, kW, sH, sW, pT, pL, dH, dW, outH, outW, inc);
  else if (job == J_MAXPOOL_BWD) maxPoolBackwardPlanes(a0, a2, a1, p0, p1, inH * inW, outH * outW);
  else if (job == J_AVGPOOL) avgPoolPlanes(a0, a1, p0, p1, inH, inW, kH, kW, sH, sW, pT, pL, pB, pR, dH, dW, outH, outW, inc);
  else avgPoolBackwardPlanes(a0, a1, p0, p1, inH, inW, kH, kW, sH, sW, pT, pL, pB, pR, dH, dW, outH, outW, inc);
}

/** Pad planes of x (both conv and weight-gradient preparation), plus tap offsets in unit 0. */
function convPad(ctrl: usize, u: i32, U: i32): void {
  const n = argI(ctrl, A_N), inC = argI(ctrl, A_INC), G = argI(ctrl, A_G);
  const planes = n * inC;
  padPlanes(argP(ctrl, A_X), argP(ctrl, A_XPAD), lo(planes, u, U, 1), hi(planes, u, U, 1), argI(ctrl, A_INH), argI(ctrl, A_INW),
    argI(ctrl, A_SW), argI(ctrl, A_PT), argI(ctrl, A_PL), argI(ctrl, A_HP), argI(ctrl, A_WQ));
  if (u == 0 && argP(ctrl, A_OFFS) != 0) tapOffsets(argP(ctrl, A_OFFS), inC / G, argI(ctrl, A_KH), argI(ctrl, A_KW), argI(ctrl, A_SW), argI(ctrl, A_DH), argI(ctrl, A_DW), argI(ctrl, A_HP), argI(ctrl, A_WQ), argI(ctrl, A_ROWMAJOR_TAPS) != 0);
}

/** Run unit u (of U) of the job on thread t (t selects the scratch buffer; u/U select the share of work). */
function runJob(job: i32, ctrl: usize, t: i32, u: i32, U: i32): void {
  switch (job) {
    case J_FILL: {
      const n = argI(ctrl, 1);
      fillRange(argP(ctrl, 0), lo(n, u, U, 16), hi(n, u, U, 16), <f32>argF(ctrl, 2));
      break;
    }
    case J_CAST: {
      const n = argI(ctrl, 4);
      castRange(argI(ctrl, 1), argI(ctrl, 3), argP(ctrl, 0), argP(ctrl, 2), lo(n, u, U, 16), hi(n, u, U, 16));
      break;
    }
    case J_UNARY: {
      const n = argI(ctrl, 3);
      unaryRange(argI(ctrl, 0), argP(ctrl, 1), argP(ctrl, 2), lo(n, u, U, 16), hi(n, u, U, 16), argF(ctrl, 4), argF(ctrl, 5));
      break;
    }
    case J_UNARY_BWD: {
      const n = argI(ctrl, 5);
      unaryBackwardRange(argI(ctrl, 0), argP(ctrl, 1), argP(ctrl, 2), argP(ctrl, 3), argP(ctrl, 4), lo(n, u, U, 16), hi(n, u, U, 16), argF(ctrl, 6), argF(ctrl, 7));
      break;
    }
    case J_BINARY: {
      const rows = argI(ctrl, 4);
      binaryRows(argI(ctrl, 0), ctrl, argP(ctrl, 1), argP(ctrl, 2), argP(ctrl, 3), lo(rows, u, U, 1), hi(rows, u, U, 1));
      break;
    }
    case J_COPY: {
      const rows = argI(ctrl, 3);
      copyRows(argI(ctrl, 0), ctrl, argP(ctrl, 1), argP(ctrl, 2), lo(rows, u, U, 1), hi(rows, u, U, 1));
      break;
    }
    case J_REDUCE: {
      const outer = argI(ctrl, 3), r = argI(ctrl, 4), inner = argI(ctrl, 5);
      if (outer >= U || inner == 1) reduceRange(argI(ctrl, 0), argP(ctrl, 1), argP(ctrl, 2), lo(outer, u, U, 1), hi(outer, u, U, 1), r, inner, 0, inner);
      else reduceRange(argI(ctrl, 0), argP(ctrl, 1), argP(ctrl, 2), 0, outer, r, inner, lo(inner, u, U, 4), hi(inner, u, U, 4));
      break;
    }
    case J_ARGMAX: {
      const outer = argI(ctrl, 2);
      argmaxRange(argP(ctrl, 0), argP(ctrl, 1), lo(outer, u, U, 1), hi(outer, u, U, 1), argI(ctrl, 3), argI(ctrl, 4));
      break;
    }
    case J_SOFTMAX: {
      const rows = argI(ctrl, 2);
      softmaxRows(argP(ctrl, 0), argP(ctrl, 1), lo(rows, u, U, 1), hi(rows, u, U, 1), argI(ctrl, 3), argI(ctrl, 4) != 0);
      break;
    }
    case J_SOFTMAX_BWD: {
      const rows = argI(ctrl, 3);
      softmaxBackwardRows(argP(ctrl, 0), argP(ctrl, 1), argP(ctrl, 2), lo(rows, u, U, 1), hi(rows, u, U, 1), argI(ctrl, 4), argI(ctrl, 5) != 0);
      break;
    }
    case J_GEMM: {
      gemmPart(argI(ctrl, 0) != 0, argI(ctrl, 1) != 0, argI(ctrl, 2), argI(ctrl, 3), argI(ctrl, 4), argP(ctrl, 5), argI(ctrl, 6),
        argP(ctrl, 7), argI(ctrl, 8), argP(ctrl, 9), argI(ctrl, 10), argI(ctrl, 11) != 0, scratchOf(ctrl, t), u, U, tileRows(ctrl));
      break;
    }
    case J_CONV_PREP: {
      // AUX != 0: the weights are those of the convolution whose input gradient this is (see packWeights)
      convPad(ctrl, u, U);
      const wpack = argP(ctrl, A_WPACK);
      if (wpack != 0) {
        const G = argI(ctrl, A_G), coutG = argI(ctrl, A_OUTC) / G;
        const K = (argI(ctrl, A_INC) / G) * argI(ctrl, A_KH) * argI(ctrl, A_KW);
        const mr = argI(ctrl, A_MR);
        const units = G * ((coutG + mr - 1) / mr);
        packWeights(argP(ctrl, A_W), wpack, lo(units, u, U, 1), hi(units, u, U, 1), coutG, K, argI(ctrl, A_AUX) != 0, argI(ctrl, A_KH), argI(ctrl, A_KW), mr,
          argI(ctrl, A_ROWMAJOR_TAPS) != 0);
      }
      break;
    }
    case J_CONV_FWD: {
      const rows = argI(ctrl, A_N) * argI(ctrl, A_OUTH);
      convRows(ctrl, lo(rows, u, U, 1), hi(rows, u, U, 1), scratchOf(ctrl, t));
      break;
    }
    case J_CONV_PANELS: {
      const P = argI(ctrl, A_OUTH) * argI(ctrl, A_OUTW);
      const units = argI(ctrl, A_N) * argI(ctrl, A_G) * ((P + CNR - 1) / CNR);
      convPanels(ctrl, lo(units, u, U, 1), hi(units, u, U, 1), scratchOf(ctrl, t));
      break;
    }
    case J_CONV_PIXELS: {
      const tiles = (argI(ctrl, A_N) * argI(ctrl, A_OUTH) * argI(ctrl, A_OUTW) + PXR - 1) / PXR;
      convPixels(ctrl, lo(tiles, u, U, 1), hi(tiles, u, U, 1), scratchOf(ctrl, t));
      break;
    }
    case J_FLIPW: {
      // args: w, wf, rows (= inC), cinG, coutG, kH, kW
      const rows = argI(ctrl, 2);
      flipWeights(argP(ctrl, 0), argP(ctrl, 1), lo(rows, u, U, 1), hi(rows, u, U, 1), argI(ctrl, 3), argI(ctrl, 4), argI(ctrl, 5), argI(ctrl, 6));
      break;
    }
    case J_COL2IM: {
      // conv slots, plus AUX = dcol, X = dx of this image and group, AUX2 = channels (cinG)
      const ch = argI(ctrl, A_AUX2);
      col2imChannels(argP(ctrl, A_AUX), argP(ctrl, A_X), lo(ch, u, U, 1), hi(ch, u, U, 1), argI(ctrl, A_INH), argI(ctrl, A_INW),
        argI(ctrl, A_KH), argI(ctrl, A_KW), argI(ctrl, A_SH), argI(ctrl, A_SW), argI(ctrl, A_PT), argI(ctrl, A_PL),
        argI(ctrl, A_DH), argI(ctrl, A_DW), argI(ctrl, A_OUTH), argI(ctrl, A_OUTW));
      break;
    }
    case J_WGRAD_PREP: {
      convPad(ctrl, u, U);
      const G = argI(ctrl, A_G), units = argI(ctrl, A_N) * G;
      packDyT(argP(ctrl, A_Y), argP(ctrl, A_AUX), lo(units, u, U, 1), hi(units, u, U, 1), argI(ctrl, A_OUTC) / G, argI(ctrl, A_OUTH) * argI(ctrl, A_OUTW));
      break;
    }
    case J_WGRAD: {
      const G = argI(ctrl, A_G);
      const K = (argI(ctrl, A_INC) / G) * argI(ctrl, A_KH) * argI(ctrl, A_KW);
      const units = G * ((K + WMR - 1) / WMR);
      wgradUnits(ctrl, lo(units, u, U, 1), hi(units, u, U, 1));
      break;
    }
    case J_DW_FWD: {
      const planes = argI(ctrl, A_N) * argI(ctrl, A_INC);
      depthwiseRows(ctrl, lo(planes, u, U, 1), hi(planes, u, U, 1));
      break;
    }
    case J_DW_WGRAD: {
      const C = argI(ctrl, A_INC);
      depthwiseWgrad(ctrl, lo(C, u, U, 1), hi(C, u, U, 1));
      break;
    }
    case J_DW_BWD_INPUT: {
      const planes = argI(ctrl, A_N) * argI(ctrl, A_INC);
      depthwiseBackwardInput(ctrl, lo(planes, u, U, 1), hi(planes, u, U, 1));
      break;
    }
    case J_MAXPOOL: case J_MAXPOOL_BWD: case J_AVGPOOL: case J_AVGPOOL_BWD:
      poolJob(job, ctrl, u, U);
      break;
    case J_CH_SUMS: {
      const c = argI(ctrl, 4);
      channelSumsRange(argP(ctrl, 0), argP(ctrl, 1), argI(ctrl, 2), c, argI(ctrl, 3), argP(ctrl, 5), argP(ctrl, 6), lo(c, u, U, 1), hi(c, u, U, 1));
      break;
    }
    case J_CH_AFFINE: {
      const planes = argI(ctrl, 4) * argI(ctrl, 5);
      channelAffineRange(argP(ctrl, 0), argP(ctrl, 1), argP(ctrl, 2), argP(ctrl, 3), argI(ctrl, 5), argI(ctrl, 6), lo(planes, u, U, 1), hi(planes, u, U, 1));
      break;
    }
    case J_BN_MEAN_VAR: {
      const c = argI(ctrl, 2);
      channelMeanVarRange(argP(ctrl, 0), argI(ctrl, 1), c, argI(ctrl, 3), argP(ctrl, 4), argP(ctrl, 5), lo(c, u, U, 1), hi(c, u, U, 1), scratchOf(ctrl, t));
      break;
    }
    case J_BN_NORMALIZE: {
      const c = argI(ctrl, 6), planes = argI(ctrl, 5) * c;
      channelNormalizeRange(argP(ctrl, 0), argP(ctrl, 1), argP(ctrl, 2), argP(ctrl, 3), argP(ctrl, 4), c, argI(ctrl, 7), lo(planes, u, U, 1), hi(planes, u, U, 1));
      break;
    }
    case J_BN_BWD_SUMS: {
      const c = argI(ctrl, 4);
      batchNormBackwardSumsRange(argP(ctrl, 0), argP(ctrl, 1), argP(ctrl, 2), argI(ctrl, 3), c, argI(ctrl, 5), argP(ctrl, 6), argP(ctrl, 7), lo(c, u, U, 1), hi(c, u, U, 1), scratchOf(ctrl, t));
      break;
    }
    case J_BN_BWD_INPUT: {
      const c = argI(ctrl, 8), planes = argI(ctrl, 7) * c;
      batchNormBackwardInputRange(argP(ctrl, 0), argP(ctrl, 1), argP(ctrl, 2), argP(ctrl, 3), argP(ctrl, 4), argP(ctrl, 5), argP(ctrl, 6), c, argI(ctrl, 9), lo(planes, u, U, 1), hi(planes, u, U, 1));
      break;
    }
    case J_DROPOUT: {
      const n = argI(ctrl, 1);
      dropoutRange(argP(ctrl, 0), lo(n, u, U, 16), hi(n, u, U, 16), argF(ctrl, 2), <u32>argF(ctrl, 3));
      break;
    }
    case J_WINO_PREP: {
      // U = G g G^T for the output-channel panels; AUX2 = flipped weights
      const outC = argI(ctrl, A_OUTC), mr = argI(ctrl, A_MR), panels = (outC + mr - 1) / mr;
      winogradWeights(argP(ctrl, A_W), argP(ctrl, A_WPACK), lo(panels, u, U, 1), hi(panels, u, U, 1), argI(ctrl, A_INC), outC, argI(ctrl, A_AUX2) != 0, mr);
      break;
    }
    case J_WINO: {
      // AUX = tiles per block; units split the blocks
      const blocks = argI(ctrl, A_BLOCKS);
      winogradBlocks(ctrl, lo(blocks, u, U, 1), hi(blocks, u, U, 1), scratchOf(ctrl, t));
      break;
    }
    case J_WINO4_PREP: {
      // F(4x4, 3x3): U = G g G^T (36 planes), args as J_WINO_PREP
      const outC = argI(ctrl, A_OUTC), mr = argI(ctrl, A_MR), panels = (outC + mr - 1) / mr;
      winograd4Weights(argP(ctrl, A_W), argP(ctrl, A_WPACK), lo(panels, u, U, 1), hi(panels, u, U, 1), argI(ctrl, A_INC), outC, argI(ctrl, A_AUX2) != 0, mr);
      break;
    }
    case J_WINO4: {
      const blocks = argI(ctrl, A_BLOCKS);
      winograd4Blocks(ctrl, lo(blocks, u, U, 1), hi(blocks, u, U, 1), scratchOf(ctrl, t));
      break;
    }
    case J_WINO_WG_T: {
      // transforms of a chunk of TC tiles starting at tile `first`: args X = x, Y = dy, AUX = V, AUX2 = D,
      // BLOCKS = TC, MR = first
      const TC = argI(ctrl, A_BLOCKS), groups = TC >> 2;
      winogradWgradTransform(ctrl, lo(groups, u, U, 1), hi(groups, u, U, 1), argI(ctrl, A_MR), TC, argP(ctrl, A_AUX), argP(ctrl, A_AUX2), scratchOf(ctrl, t));
      break;
    }
    case J_WINO_WG_GEMM: {
      // M[xi] += V[xi] D[xi], unit = a range of xi; args as above plus WPACK = M (zeroed by the caller)
      winogradWgradGemm(argP(ctrl, A_AUX), argP(ctrl, A_AUX2), argP(ctrl, A_WPACK), lo(16, u, U, 1), hi(16, u, U, 1),
        argI(ctrl, A_INC), argI(ctrl, A_OUTC), argI(ctrl, A_BLOCKS));
      break;
    }
    case J_WINO_WG_OUT: {
      const outC = argI(ctrl, A_OUTC);
      winogradWgradOutput(argP(ctrl, A_WPACK), argP(ctrl, A_W), lo(outC, u, U, 1), hi(outC, u, U, 1), argI(ctrl, A_INC), outC);
      break;
    }
    case J_SGD: {
      // args: p, grad, velocity (0: no momentum), n, lr, momentum, weightDecay, nesterov
      const n = argI(ctrl, 3);
      sgdRange(argP(ctrl, 0), argP(ctrl, 1), argP(ctrl, 2), lo(n, u, U, 16), hi(n, u, U, 16), <f32>argF(ctrl, 4), <f32>argF(ctrl, 5),
        <f32>argF(ctrl, 6), argI(ctrl, 7) != 0);
      break;
    }
    case J_RANDOM_UNIFORM: {
      const n = argI(ctrl, 1);
      randomUniformRange(argP(ctrl, 0), lo(n, u, U, 16), hi(n, u, U, 16), argF(ctrl, 2), argF(ctrl, 3), <u32>argF(ctrl, 4));
      break;
    }
    case J_BIN_PACK: {
      // args: x, n, c, h, w, y, scale, shift, absMean (0: none); units split the n * h rows
      const rows = argI(ctrl, 1) * argI(ctrl, 3);
      binarizePackRows(argP(ctrl, 0), argP(ctrl, 5), lo(rows, u, U, 1), hi(rows, u, U, 1), argI(ctrl, 2), argI(ctrl, 3), argI(ctrl, 4),
        argP(ctrl, 6), argP(ctrl, 7), argP(ctrl, 8));
      break;
    }
    case J_BIN_PACK_WEIGHTS: {
      // args: w, dst, outC, inC, taps; units split the blocks of output channels
      const blocks = (argI(ctrl, 2) + BIN_CB - 1) / BIN_CB;
      binaryPackWeightBlocks(argP(ctrl, 0), argP(ctrl, 1), lo(blocks, u, U, 1), hi(blocks, u, U, 1), argI(ctrl, 2), argI(ctrl, 3), argI(ctrl, 4));
      break;
    }
    case J_BIN_CONV: {
      // binary.ts B_* slots; units split the n * outH output rows
      const rows = argI(ctrl, 0) * argI(ctrl, 13);
      binaryConvRows(ctrl, lo(rows, u, U, 1), hi(rows, u, U, 1), scratchOf(ctrl, t));
      break;
    }
    case 40: case 41: case 42: case 43: case 44: case 45: case 46: case 47: case 48: case 49:
      // int8 kernels (assembly/int8.ts)
      int8Job(job, ctrl, t, u, U);
      break;
    default:
      break;
  }
}

// ---- threads -------------------------------------------------------------------------------------------
// A job is split into U units. Threads claim units with a compare-and-swap on a 64-bit ticket
// [seq:32 | U:16 | next:16] and count finished units in DONE; the caller returns once DONE == U. A worker
// that wakes late finds no unit left and costs nothing; one that claimed a unit is waited for.
// Sleeping and waking (Atomics.wait/notify) is done in JS (src/kernels/wasm/index.ts, worker.ts): Node 20's
// baseline wasm compiler (Liftoff) was seen to hang a thread woken from memory.atomic.wait32.

/** Run every unit of a job on this thread alone. */
export function runAll(ctrl: usize, job: i32, units: i32): void {
  for (let u = 0; u < units; u++) runJob(job, ctrl, 0, u, units);
}

/** Publish a job of `units` units (1..65535) for the threads to claim; returns its sequence number. */
export function publish(ctrl: usize, job: i32, units: i32): i32 {
  const seq = load<i32>(ctrl + SEQ) + 1;
  store<i32>(ctrl + JOB, job);
  atomic.store<i32>(ctrl + ERR, 0);
  atomic.store<i32>(ctrl + DONE, 0);
  atomic.store<i64>(ctrl + TICKET, (<i64>seq << 32) | (<i64>units << 16));
  atomic.store<i32>(ctrl + SEQ, seq);
  return seq;
}

/** Claim and run units of job `seq` on thread t until none is left (or the job is no longer current). */
export function work(ctrl: usize, t: i32, seq: i32): void {
  while (true) {
    const v = atomic.load<i64>(ctrl + TICKET);
    if (<i32>(v >>> 32) != seq) return;
    const units = <i32>((v >>> 16) & 0xffff), next = <i32>(v & 0xffff);
    if (next >= units) return;
    if (atomic.cmpxchg<i64>(ctrl + TICKET, v, v + 1) != v) continue;
    // the unit is ours, and the caller waits for it: the job's arguments stay put until DONE counts it
    runJob(load<i32>(ctrl + JOB), ctrl, t, next, units);
    atomic.add<i32>(ctrl + DONE, 1);
  }
}

/** Stop handing out units of job `seq`; returns how many were claimed (all of them must still finish). */
export function cancel(ctrl: usize, seq: i32): i32 {
  while (true) {
    const v = atomic.load<i64>(ctrl + TICKET);
    if (<i32>(v >>> 32) != seq) return 0;
    const units = (v >>> 16) & 0xffff, next = v & 0xffff;
    if (next >= units) return <i32>units;
    if (atomic.cmpxchg<i64>(ctrl + TICKET, v, (v & ~<i64>0xffff) | units) == v) return <i32>next;
  }
}

/** A unit claimed by thread t threw: record it (the caller throws) and count the unit as finished. */
export function unitFailed(ctrl: usize, t: i32): void {
  atomic.store<i32>(ctrl + ERR, t + 1);
  atomic.add<i32>(ctrl + DONE, 1);
}
