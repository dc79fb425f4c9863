// The WebAssembly backend: every kernel of the Kernels interface on lowbit's AssemblyScript module
// (assembly/ -> build/kernels.wasm, SIMD128 + threads), split over worker threads that share the engine
// memory. Every call is synchronous for the caller.
//
// What runs how:
//   SIMD (f32x4):   gemm (blocked, packed, 5x8 register tile with FMA, else 4x8); conv2d: Winograd
//                   F(2x2,3x3) for 3x3 stride-1 convolutions with >= 8 channels (F(4x4,3x3) for wide
//                   outputs with padding <= 1, see conv.ts), else implicit im2col +
//                   register-tiled GEMM over a padded,
//                   phase-split input (any stride/padding/dilation/groups), depthwise in its own loop;
//                   conv2dBackwardInput: stride 1 = a forward convolution with flipped weights (so Winograd
//                   too), otherwise GEMM + col2im; conv2dBackwardWeight: Winograd F(3x3,2x2) or a
//                   register-tiled kernel reading the input in place; unary, unaryBackward (f64 lanes where
//                   the reference's double arithmetic must be matched exactly), binary (innermost stride 1
//                   or 0; other strides lane by lane), fill, cast, reduce, softmax(+backward), channelSums,
//                   channelAffine, the batch-norm kernels (channelMeanVar, channelNormalize,
//                   batchNormBackwardSums/Input), dropoutMask and randomUniform (bit-identical to the reference's
//                   uniformAt); maxPool2d and avgPool2d 4 outputs at a time on interior windows (stride 1
//                   or 2), avgPool2dBackward for 2x2/stride-2.
//   scalar wasm:    pooling at borders / other strides, maxPool2dBackward (scatter through argmax), argmax,
//                   nllLoss, strided copy (contiguous rows use memory.copy), binary pow, col2im, the
//                   depthwise input gradient with stride > 1.
//   delegated:      nothing.
//   relaxed SIMD:   the GEMM/conv microkernels use fused multiply-add where the engine supports it and a
//                   self-test passes (relaxed.ts); Node 20 only with --experimental-wasm-relaxed-simd.
// Threads: a kernel's work is cut into units that the calling thread and the workers claim from a shared
// ticket (backend.ts, assembly/index.ts), once it is big enough to pay for the hand-off.

import type { EngineMemory, Ptr } from '../memory.js';
import type { BinaryOp, ConvGeometry, DType, Kernels, PoolGeometry, ReduceOp, UnaryOp } from '../types.js';
import { CTRL, DTYPE_CODE, Job, binaryCode, reduceCode, unaryCode, type KernelExports } from './abi.js';
import { canUseWorkers, instantiate, kernelModules, startWorker, type KernelWorker } from './loader.js';
import { ConvRunner } from './conv.js';
import { WasmBackend, SPIN_WORKER_MICROS } from './backend.js';
import { relaxedSelfTest } from './relaxed.js';
import { createWasmInt8Kernels } from './int8.js';
import { createWasmBinaryKernels } from './binary.js';

export interface WasmKernels extends Kernels {
  /** Threads a kernel may use (the calling thread plus workers). */
  readonly threads: number;
  /**
   * Run 3x3 convolutions with wide outputs by Winograd F(4x4, 3x3) (see conv.ts). Off by default: its weight
   * transform has thirds, so unlike the other paths it is not exact on integer values (the integer-code
   * evaluation of quantized layers relies on that); the trainer turns it on for its training steps.
   */
  winogradF4: boolean;
  /** Use at most n threads (1 .. the number created). */
  setThreads(n: number): void;
  /** Stop the worker threads; the kernels keep working on the calling thread only. */
  dispose(): Promise<void>;
  readonly features: { simd: boolean; threads: boolean; relaxedSimd: boolean };
}

export interface WasmKernelOptions {
  /** Threads to create (default: 2, or 1 where shared memory or workers are unavailable). */
  threads?: number;
  /**
   * Use fused multiply-add (relaxed SIMD) in the GEMM/convolution microkernels when the engine supports it
   * and the self-test passes (default true). Node 20 needs --experimental-wasm-relaxed-simd for it.
   */
  relaxedSimd?: boolean;
  /** Use Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions with >= 8 channels (default true). */
  winograd?: boolean;
  /** Where Winograd applies, use F(4x4, 3x3) for forward convolutions with >= 16 x 8 outputs, padding <= 1, <= 128 channels in + out (default false; see WasmKernels.winogradF4). */
  winogradF4?: boolean;
}

// Work per unit of a split job (elements for elementwise kernels); see WasmBackend.units.
const GRAIN_ELEMENTS = 1 << 15;
/** Multiply-adds of a GEMM worth splitting over the threads (~40 us on one thread). */
const GEMM_SPLIT_MACS = 1 << 20;

/** Coalesce adjacent dimensions that are contiguous for every operand; drop size-1 dimensions. */
function coalesce(shape: number[], ...strides: number[][]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, i) => outStrides[i][last] === s[d] * shape[d])) {
      outShape[last] *= shape[d];
      strides.forEach((s, i) => { outStrides[i][last] = s[d]; });
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, i) => outStrides[i].push(s[d]));
    }
  }
  if (outShape.length === 0) return { shape: [1], strides: strides.map(() => [0]) };
  return { shape: outShape, strides: outStrides };
}

function checkPoolGeometry(g: PoolGeometry): void {
  if (g.planes < 0 || g.outH < 0 || g.outW < 0) throw new RangeError('lowbit: invalid pool geometry');
}

const backends = new WeakMap<WasmKernels, WasmBackend>();
/** The job runner behind a kernels object (profiling and tuning scripts). */
export function backendOf(kernels: WasmKernels): WasmBackend | undefined {
  return backends.get(kernels);
}

export async function createWasmKernels(mem: EngineMemory, opts: WasmKernelOptions = {}): Promise<WasmKernels> {
  // Unshared memory (a page that is not cross-origin isolated): the same kernels on the calling thread only.
  const shared = typeof SharedArrayBuffer !== 'undefined' && mem.memory.buffer instanceof SharedArrayBuffer;
  const modules = await kernelModules(shared);
  let module = modules.plain;
  let ex = instantiate(module, mem.memory);
  // The module's static data (math tables) lies below heapBase; the allocator's default floor (64 KiB) is
  // normally above it already, and reserveBelow may only be called before anything is allocated.
  if (ex.heapBase() > 65536 || mem.bytesInUse === 0) mem.reserveBelow(ex.heapBase());

  const simd = true; // the module does not validate without SIMD128
  let relaxedSimd = false;
  if (modules.relaxed && opts.relaxedSimd !== false && relaxedSelfTest(mem, ex, modules.relaxed)) {
    module = modules.relaxed;
    ex = instantiate(module, mem.memory);
    relaxedSimd = true;
  }
  const workersPossible = mem.shared && canUseWorkers(mem.memory);
  const wanted = Math.max(1, Math.min(CTRL.maxThreads, Math.floor(opts.threads ?? 2)));
  const created = workersPossible ? wanted : 1;

  const ctrl = mem.alloc(CTRL.bytes);
  mem.u8.fill(0, ctrl, ctrl + CTRL.bytes);
  const scratchBytes = ex.scratchBytes();
  const scratch: Ptr[] = [];
  for (let t = 0; t < created; t++) {
    scratch.push(mem.alloc(scratchBytes));
    mem.u32[(ctrl + CTRL.scratch) / 4 + t] = scratch[t];
  }
  const workers: KernelWorker[] = [];
  try {
    for (let t = 1; t < created; t++) workers.push(await startWorker(module, mem.memory, ctrl, t, SPIN_WORKER_MICROS));
  } catch (e) {
    for (const w of workers) await w.terminate();
    throw e;
  }
  const be = new WasmBackend(mem, ex, workers, ctrl, relaxedSimd);
  const conv = new ConvRunner(be);
  conv.winograd = opts.winograd ?? true;
  conv.winogradF4 = opts.winogradF4 ?? false;
  let disposed = false;

  const kernels: WasmKernels = {
    name: 'wasm',
    ...createWasmInt8Kernels(be, mem),
    ...createWasmBinaryKernels(be, mem),
    features: { simd, threads: workers.length > 0, relaxedSimd },
    get threads() { return be.nt; },
    get winogradF4() { return conv.winogradF4; },
    set winogradF4(on: boolean) { conv.winogradF4 = on; },
    setThreads(n: number) {
      if (!Number.isFinite(n) || n < 1) throw new RangeError(`lowbit: setThreads(${n}): need at least 1 thread`);
      be.nt = Math.min(Math.floor(n), disposed ? 1 : workers.length + 1);
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      be.nt = workers.length + 1;
      if (workers.length > 0) {
        for (const w of workers) w.ref(); // keep the event loop alive until the threads have exited
        const words = new Int32Array(mem.memory.buffer, ctrl, CTRL.bytes / 4);
        Atomics.store(words, CTRL.quit >>> 2, 1);
        Atomics.add(words, CTRL.seq >>> 2, 1);
        Atomics.notify(words, CTRL.seq >>> 2);
        await Promise.all(workers.map((w) => w.exited));
      }
      be.nt = 1;
    },

    fill(dst, n, value) {
      be.args(dst, n, value);
      be.run(Job.Fill, be.units(n, GRAIN_ELEMENTS * 4));
    },
    cast(src: Ptr, srcType: DType, dst: Ptr, dstType: DType, n: number) {
      be.args(src, DTYPE_CODE[srcType], dst, DTYPE_CODE[dstType], n);
      be.run(Job.Cast, be.units(n, GRAIN_ELEMENTS));
    },
    unary(op: UnaryOp, x, y, n, a, b) {
      be.args(unaryCode(op), x, y, n, a, b);
      be.run(Job.Unary, be.units(n, GRAIN_ELEMENTS));
    },
    unaryBackward(op: UnaryOp, x, y, dy, dx, n, a, b) {
      be.args(unaryCode(op), x, y, dy, dx, n, a, b);
      be.run(Job.UnaryBackward, be.units(n, GRAIN_ELEMENTS));
    },
    binary(op: BinaryOp, a, aStrides, b, bStrides, out, shape) {
      if (shape.length > 6) throw new RangeError(`lowbit: binary: rank ${shape.length} > 6`);
      const total = shape.reduce((p, d) => p * d, 1);
      if (total === 0) return;
      const c = coalesce(shape, aStrides, bStrides);
      const rank = c.shape.length;
      const arr = new Array<number>(19).fill(0);
      arr[0] = rank;
      for (let d = 0; d < rank; d++) { arr[1 + d] = c.shape[d]; arr[7 + d] = c.strides[0][d]; arr[13 + d] = c.strides[1][d]; }
      be.ints(arr);
      const rows = total / c.shape[rank - 1];
      be.args(binaryCode(op), a, b, out, rows);
      be.run(Job.Binary, Math.min(rows, be.units(total, GRAIN_ELEMENTS)));
    },
    copy(elemBytes, src, srcStrides, dst, dstStrides, shape) {
      if (elemBytes !== 4 && elemBytes !== 1) throw new Error(`lowbit: copy of ${elemBytes}-byte elements is not supported`);
      if (shape.length > 6) throw new RangeError(`lowbit: copy: rank ${shape.length} > 6`);
      const total = shape.reduce((p, d) => p * d, 1);
      if (total === 0) return;
      const c = coalesce(shape, srcStrides, dstStrides);
      const rank = c.shape.length;
      const arr = new Array<number>(19).fill(0);
      arr[0] = rank;
      for (let d = 0; d < rank; d++) { arr[1 + d] = c.shape[d]; arr[7 + d] = c.strides[0][d]; arr[13 + d] = c.strides[1][d]; }
      be.ints(arr);
      const rows = total / c.shape[rank - 1];
      be.args(elemBytes, src, dst, rows);
      be.run(Job.Copy, Math.min(rows, be.units(total, GRAIN_ELEMENTS * 2)));
    },
    reduce(op: ReduceOp, x, y, outer, r, inner) {
      be.args(reduceCode(op), x, y, outer, r, inner);
      be.run(Job.Reduce, Math.min(outer >= 2 || inner === 1 ? outer : Math.ceil(inner / 4), be.units(outer * r * inner, GRAIN_ELEMENTS * 2)));
    },
    argmax(x, y, outer, r, inner) {
      be.args(x, y, outer, r, inner);
      be.run(Job.Argmax, Math.min(outer, be.units(outer * r * inner, GRAIN_ELEMENTS)));
    },
    softmax(x, y, rows, cols, log) {
      be.args(x, y, rows, cols, log ? 1 : 0);
      be.run(Job.Softmax, Math.min(rows, be.units(rows * cols, GRAIN_ELEMENTS / 2)));
    },
    softmaxBackward(y, dy, dx, rows, cols, log) {
      be.args(y, dy, dx, rows, cols, log ? 1 : 0);
      be.run(Job.SoftmaxBackward, Math.min(rows, be.units(rows * cols, GRAIN_ELEMENTS)));
    },
    gemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate) {
      if (m <= 0 || n <= 0) return;
      be.args(transA ? 1 : 0, transB ? 1 : 0, m, n, k, a, lda, b, ldb, c, ldc, accumulate ? 1 : 0);
      be.run(Job.Gemm, gemmUnits(be, m, n, k));
    },
    conv2d: (g: ConvGeometry, x, w, bias, y) => conv.forward(g, x, w, bias, y),
    conv2dBackwardInput: (g: ConvGeometry, dy, w, dx) => conv.backwardInput(g, dy, w, dx),
    conv2dBackwardWeight: (g: ConvGeometry, x, dy, dw) => conv.backwardWeight(g, x, dy, dw),
    maxPool2d(g, x, y, argmax) {
      checkPoolGeometry(g);
      if (g.relu && argmax) throw new Error('lowbit: maxPool2d: relu is an evaluation-time fusion, without argmax');
      poolArgs(be, { ...g, countIncludePad: !!g.relu }, x, y, argmax); // the flag slot: relu for max pool
      be.run(Job.MaxPool, Math.min(g.planes, be.units(g.planes * g.outH * g.outW * g.kH * g.kW, GRAIN_ELEMENTS / 2)));
    },
    maxPool2dBackward(g, dy, argmax, dx) {
      checkPoolGeometry(g);
      poolArgs(be, g, dy, dx, argmax);
      be.run(Job.MaxPoolBackward, Math.min(g.planes, be.units(g.planes * g.inH * g.inW, GRAIN_ELEMENTS)));
    },
    avgPool2d(g, x, y) {
      checkPoolGeometry(g);
      poolArgs(be, g, x, y, 0);
      be.run(Job.AvgPool, Math.min(g.planes, be.units(g.planes * g.outH * g.outW * g.kH * g.kW, GRAIN_ELEMENTS / 2)));
    },
    avgPool2dBackward(g, dy, dx) {
      checkPoolGeometry(g);
      poolArgs(be, g, dy, dx, 0);
      be.run(Job.AvgPoolBackward, Math.min(g.planes, be.units(g.planes * g.outH * g.outW * g.kH * g.kW, GRAIN_ELEMENTS / 2)));
    },
    channelSums(x, other, n, c, hw, sum, sumSq) {
      be.args(x, other, n, hw, c, sum, sumSq);
      be.run(Job.ChannelSums, Math.min(c, be.units(n * c * hw, GRAIN_ELEMENTS * 2)));
    },
    channelAffine(x, scale, shift, y, n, c, hw) {
      be.args(x, scale, shift, y, n, c, hw);
      be.run(Job.ChannelAffine, Math.min(n * c, be.units(n * c * hw, GRAIN_ELEMENTS * 2)));
    },
    channelMeanVar(x, n, c, hw, mean, variance) {
      be.args(x, n, c, hw, mean, variance);
      be.run(Job.ChannelMeanVar, Math.min(c, be.units(n * c * hw, GRAIN_ELEMENTS * 2)));
    },
    channelNormalize(x, mean, scale, shift, y, n, c, hw) {
      be.args(x, mean, scale, shift, y, n, c, hw);
      be.run(Job.ChannelNormalize, Math.min(n * c, be.units(n * c * hw, GRAIN_ELEMENTS * 2)));
    },
    batchNormBackwardSums(dy, x, mean, n, c, hw, sumDy, sumDyXc) {
      be.args(dy, x, mean, n, c, hw, sumDy, sumDyXc);
      be.run(Job.BatchNormBackwardSums, Math.min(c, be.units(n * c * hw, GRAIN_ELEMENTS)));
    },
    batchNormBackwardInput(dy, x, mean, a, b, d, dx, n, c, hw) {
      be.args(dy, x, mean, a, b, d, dx, n, c, hw);
      be.run(Job.BatchNormBackwardInput, Math.min(n * c, be.units(n * c * hw, GRAIN_ELEMENTS)));
    },
    nllLoss(logp, labels, loss, rows, cols) {
      const bad = ex.nllLoss(logp, labels, loss, rows, cols);
      if (bad >= 0) {
        const label = mem.i32[(labels >>> 2) + bad];
        throw new RangeError(`lowbit: label ${label} out of range [0, ${cols})`);
      }
    },
    dropoutMask(mask, n, p, seed) {
      be.args(mask, n, p, seed >>> 0);
      be.run(Job.Dropout, be.units(n, GRAIN_ELEMENTS));
    },
    randomUniform(dst, n, lo, hi, seed) {
      be.args(dst, n, lo, hi, seed >>> 0);
      be.run(Job.RandomUniform, be.units(n, GRAIN_ELEMENTS));
    },
    sgdStep(p, grad, velocity, n, lr, momentum, weightDecay, nesterov) {
      be.args(p, grad, velocity, n, lr, momentum, weightDecay, nesterov ? 1 : 0);
      be.run(Job.Sgd, be.units(n, GRAIN_ELEMENTS));
    },
  };
  backends.set(kernels, be);
  return kernels;
}

/**
 * GEMM units (each packs its own panels of A and B): one per thread once the product is big enough, two per
 * thread for big ones (a 2 x 2 grid: a worker that starts late leaves the caller 3 of 4 blocks, not 1 of 2).
 */
function gemmUnits(be: WasmBackend, m: number, n: number, k: number): number {
  if (be.nt <= 1 || m * n * k < GEMM_SPLIT_MACS) return 1;
  return m * n * k >= GEMM_SPLIT_MACS * 32 ? 2 * be.nt : be.nt;
}

function poolArgs(be: WasmBackend, g: PoolGeometry, a0: Ptr, a1: Ptr, a2: Ptr): void {
  be.args(a0, a1, a2, g.planes, g.inH, g.inW, g.kH, g.kW, g.strideH, g.strideW, g.padTop, g.padLeft, g.padBottom, g.padRight,
    g.dilationH, g.dilationW, g.outH, g.outW, g.countIncludePad ? 1 : 0);
}
