// The contract between the JS bindings and assembly/index.ts: job ids, control-block layout, dtype and op
// codes. Keep in step with assembly/layout.ts and assembly/index.ts.

import { BINARY_OPS, REDUCE_OPS, UNARY_OPS, type BinaryOp, type DType, type ReduceOp, type UnaryOp } from '../types.js';

export const enum Job {
  Fill = 1, Cast = 2, Unary = 3, UnaryBackward = 4, Binary = 5, Copy = 6, Reduce = 7, Argmax = 8,
  Softmax = 9, SoftmaxBackward = 10, Gemm = 11, ConvPrep = 12, ConvForward = 13, MaxPool = 14,
  MaxPoolBackward = 15, AvgPool = 16, AvgPoolBackward = 17, ChannelSums = 18, ChannelAffine = 19, Dropout = 20,
  FlipWeights = 21, Col2im = 22, WgradPrep = 23, Wgrad = 24, DepthwiseForward = 25, DepthwiseWgrad = 26,
  DepthwiseBackwardInput = 27, RandomUniform = 28, WinogradPrep = 29, Winograd = 30, WinogradWgradTransform = 31, WinogradWgradGemm = 32, WinogradWgradOutput = 33, ConvPanels = 34, Sgd = 35, ConvPixels = 36, Winograd4Prep = 37, Winograd4 = 38,
  // int8 kernels, assembly/int8.ts
  Int8PackWeights = 40, Int8Prep = 41, Int8Conv = 42, Int8Requantize = 43, Int8SumPlanes = 44, Int8MaxPool = 45, Int8Add = 46, Int8Winograd = 48, Int8Winograd4 = 49,
  // binary (XNOR-popcount) kernels, assembly/binary.ts
  BinarizePack = 50, BinaryPackWeights = 51, ConvBinary = 52,
  // batch-norm training kernels, assembly/norm.ts
  ChannelMeanVar = 60, ChannelNormalize = 61, BatchNormBackwardSums = 62, BatchNormBackwardInput = 63,
}

/**
 * Control block layout (bytes), as in assembly/layout.ts:
 *   job i32, nt i32 (threads that should take part), err i32 (0 or 1 + the thread whose unit threw),
 *   seq i32 (current job; workers wait on it), ticket i64 [seq | units | next unit], done i32 (units
 *   finished), quit i32, then the job arguments (f64), small int arrays, per-thread scratch pointers.
 */
export const CTRL = {
  job: 0, nt: 4, err: 8, seq: 12, ticket: 16, done: 24, quit: 28, tileRows: 32, maxThreads: 16, args: 192, arr: 448, scratch: 704, bytes: 1024,
} as const;

/** Argument slots of the convolution jobs (assembly/conv.ts). */
export const enum ConvArg {
  N = 0, InC, InH, InW, OutC, KH, KW, SH, SW, PT, PL, DH, DW, G, OutH, OutW, Hp, Wq, X, XPad, W, WPack, Offs, Bias, Y, Aux, Aux2, MR, Blocks, RowMajorTaps,
}

export const DTYPE_CODE: Record<DType, number> = { f32: 0, i32: 1, i8: 2, u8: 3 };

const unaryCodes = new Map<UnaryOp, number>(UNARY_OPS.map((op, i) => [op, i]));
const binaryCodes = new Map<BinaryOp, number>(BINARY_OPS.map((op, i) => [op, i]));
const reduceCodes = new Map<ReduceOp, number>(REDUCE_OPS.map((op, i) => [op, i]));

function code<T>(table: Map<T, number>, op: T, kind: string): number {
  const c = table.get(op);
  if (c === undefined) throw new Error(`lowbit: unknown ${kind} op '${String(op)}'`);
  return c;
}
export const unaryCode = (op: UnaryOp): number => code(unaryCodes, op, 'unary');
export const binaryCode = (op: BinaryOp): number => code(binaryCodes, op, 'binary');
export const reduceCode = (op: ReduceOp): number => code(reduceCodes, op, 'reduce');

/** What the module exports. */
export interface KernelExports {
  heapBase(): number;
  scratchBytes(): number;
  tiling(which: number): number;
  runAll(ctrl: number, job: number, units: number): void;
  publish(ctrl: number, job: number, units: number): number;
  work(ctrl: number, t: number, seq: number): void;
  cancel(ctrl: number, seq: number): number;
  unitFailed(ctrl: number, t: number): void;
  winogradTiles(outH: number, outW: number, which: number): number;
  winograd4Tiles(outH: number, outW: number, which: number): number;
  winogradWgradSizes(inC: number, outC: number, tc: number, which: number): number;
  nllLoss(logp: number, labels: number, loss: number, rows: number, cols: number): number;
}
