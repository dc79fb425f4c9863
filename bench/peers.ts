/**
 * Peer measurements for `lowbit bench kernels`: the same shapes as our engine's kernels, run by
 * onnxruntime-node (native CPU), onnxruntime-web (its WebAssembly backend inside Node) and
 * tfjs-wasm (@tensorflow/tfjs-core + @tensorflow/tfjs-backend-wasm), timed in this process.
 *
 * Isolation: onnxruntime-node runs on the calling thread (its thread count is a per-session
 * option). onnxruntime-web and tfjs-wasm fix their thread count once per WebAssembly instance, so
 * each (peer, threads) pair runs in its own worker_thread (same process, fresh module instance),
 * which is terminated afterwards (this also frees the wasm heap and any pthread workers).
 *
 * A peer that cannot load or cannot run a case yields a row with `ms: NaN` and a `note` saying
 * why; nothing here throws because a peer is missing.
 *
 * Timing: for the wasm peers, first a soak of `soakMs` running all cases round-robin (V8 tiers
 * wasm up in the background); then per case `warmup` untimed runs (lasting at least
 * `minWarmupMs`), then `runs` timed runs with performance.now(); ms = median; gops =
 * flops / (ms * 1e6). Every timed run feeds its input and reads its output back into JS, as an
 * application would.
 *
 * verifyPeers() runs the same code paths once on small shapes (and optionally on KERNEL_CASES)
 * and compares the outputs with naive JS references.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import type * as OrtNodeNs from 'onnxruntime-node';
import type * as OrtWebNs from 'onnxruntime-web';
import type * as TfNs from '@tensorflow/tfjs-core';
import {
  convModel,
  convOutSize,
  convTransposeModel,
  convWeightGradModel,
  gemmModel,
  pseudoRandom,
  type ConvShape,
  type OnnxIO,
  type OnnxModel,
} from './onnx-builders.js';

export interface BenchRow {
  name: string;
  impl: string;
  threads: number;
  ms: number;
  gops: number;
  note?: string;
}

/** The ONNX graph of a 'model' case (only what a worker needs: it is copied into each worker). */
export interface ModelCaseGraph {
  bytes: Uint8Array;
  input: OnnxIO;
  output: string;
}

export interface BenchCase {
  name: string;
  kind: 'gemm' | 'conv' | 'conv-backward' | 'model';
  /**
   * model: a whole ONNX graph with one float32 input (fed pseudo-random values in [-1, 1)) and the
   * output read back each run; run by the onnxruntime peers only (tfjs-wasm reports it unsupported).
   */
  model?: ModelCaseGraph;
  /* gemm */
  m?: number;
  n?: number;
  k?: number;
  /* conv, NCHW, weights [outC,inC,kH,kW], symmetric padding, stride 1 */
  batch?: number;
  inC?: number;
  h?: number;
  w?: number;
  outC?: number;
  kh?: number;
  kw?: number;
  pad?: number;
  flops: number;
}

/** The three peers, in the order their rows are returned. */
export const PEER_IMPLS = ['onnxruntime-node', 'onnxruntime-web', 'tfjs-wasm'] as const;
export type PeerImpl = (typeof PEER_IMPLS)[number];
/**
 * Extra impl reported for conv-backward only: tfjs-wasm with the missing Conv2DBackpropFilter
 * kernel replaced by a conv2d over transposed tensors (the same substitution made for ONNX).
 */
export const TFJS_EMULATED_IMPL = 'tfjs-wasm-emulated';

/** Multiply-adds x 2 of a stride-1 conv. */
export function convFlops(s: ConvShape): number {
  const { oh, ow } = convOutSize(s);
  return 2 * s.batch * s.outC * oh * ow * s.inC * s.kh * s.kw;
}

const RESNET_CONV: ConvShape = { batch: 1, inC: 64, h: 56, w: 56, outC: 64, kh: 3, kw: 3, pad: 1 };
const LENET_CONV1: ConvShape = { batch: 64, inC: 1, h: 28, w: 28, outC: 6, kh: 5, kw: 5, pad: 0 };

export const KERNEL_CASES: BenchCase[] = [
  { name: 'gemm-f32-512', kind: 'gemm', m: 512, n: 512, k: 512, flops: 2 * 512 ** 3 },
  { name: 'conv3x3-64-56', kind: 'conv', ...RESNET_CONV, flops: convFlops(RESNET_CONV) },
  { name: 'conv5x5-lenet', kind: 'conv', ...LENET_CONV1, flops: convFlops(LENET_CONV1) },
  {
    name: 'conv3x3-64-56-backward',
    kind: 'conv-backward',
    ...RESNET_CONV,
    flops: 2 * convFlops(RESNET_CONV), // input gradient + weight gradient
  },
];

export interface MeasureOptions {
  warmup: number;
  runs: number;
  threads: number[];
  /**
   * Keep only these case names and/or peer impls (an entry may name either; entries naming
   * neither, e.g. our own engine's impls, are ignored). No case name -> all cases; no peer name ->
   * all peers.
   */
  only?: string[];
  /** Minimum wall time of the warm-up phase in ms (default 250); warm-up runs are capped at 200. */
  minWarmupMs?: number;
  /**
   * WebAssembly peers only: after setting up all cases, run them round-robin for this long before
   * timing anything (default 3000 ms). V8 first runs wasm in a baseline tier and swaps optimised
   * code in from background threads; on this machine onnxruntime-web ran 2-4x slower for the
   * first 1-3 s of a fresh instance.
   */
  soakMs?: number;
  /** Give up on one (peer, threads) worker after this long (default 10 minutes). */
  timeoutMs?: number;
  /** Also report the tfjs-wasm conv-backward with the weight gradient emulated (default true). */
  emulateMissing?: boolean;
  /** Called with each row as soon as it is measured (for progress display). */
  onRow?: (row: BenchRow) => void;
}

/** Median (mean of the two middle values for even lengths); NaN for an empty list. */
export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function errMsg(e: unknown): string {
  if (e instanceof Error) return e.message.split('\n')[0]!.slice(0, 300);
  if (e && typeof e === 'object' && 'message' in e) return String((e as { message: unknown }).message).slice(0, 300);
  return String(e).slice(0, 300);
}

function fmtMs(ms: number): string {
  return ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

// ---------------------------------------------------------------------------------------------
// Case data (deterministic, NCHW / OIHW, identical in every thread and process)

interface CaseData {
  /** gemm: A [m,k], B [k,n]. conv: X [batch,inC,h,w], W [outC,inC,kh,kw], dY [batch,outC,oh,ow]. */
  A?: Float32Array;
  B?: Float32Array;
  X?: Float32Array;
  W?: Float32Array;
  dY?: Float32Array;
}

function need(v: number | undefined, field: string, c: BenchCase): number {
  if (v === undefined || !Number.isInteger(v) || v < 0) throw new Error(`case ${c.name}: missing or invalid '${field}'`);
  return v;
}

function gemmDims(c: BenchCase): { m: number; n: number; k: number } {
  return { m: need(c.m, 'm', c), n: need(c.n, 'n', c), k: need(c.k, 'k', c) };
}

export function convShapeOf(c: BenchCase): ConvShape {
  return {
    batch: need(c.batch, 'batch', c),
    inC: need(c.inC, 'inC', c),
    h: need(c.h, 'h', c),
    w: need(c.w, 'w', c),
    outC: need(c.outC, 'outC', c),
    kh: need(c.kh, 'kh', c),
    kw: need(c.kw, 'kw', c),
    pad: c.pad ?? 0,
  };
}

// Seeds: the ONNX builders draw their initializers (B, W) with seed 2 as well.
const SEED_IN = 1;
const SEED_WEIGHT = 2;
const SEED_GRAD = 3;

function caseData(c: BenchCase): CaseData {
  if (c.kind === 'model') {
    if (!c.model) throw new Error(`case ${c.name}: missing 'model'`);
    return { X: pseudoRandom(c.model.input.dims.reduce((a, b) => a * b, 1), SEED_IN) };
  }
  if (c.kind === 'gemm') {
    const { m, n, k } = gemmDims(c);
    return { A: pseudoRandom(m * k, SEED_IN), B: pseudoRandom(k * n, SEED_WEIGHT) };
  }
  const s = convShapeOf(c);
  const { oh, ow } = convOutSize(s);
  const d: CaseData = {
    X: pseudoRandom(s.batch * s.inC * s.h * s.w, SEED_IN),
    W: pseudoRandom(s.outC * s.inC * s.kh * s.kw, SEED_WEIGHT),
  };
  if (c.kind === 'conv-backward') d.dY = pseudoRandom(s.batch * s.outC * oh * ow, SEED_GRAD);
  return d;
}

/** Permute a dense 4-D array: out[idx permuted] = in[idx]; `perm[i]` = input axis of output axis i. */
function permute4(src: Float32Array, dims: number[], perm: number[]): Float32Array {
  const od = perm.map((p) => dims[p]!);
  const inStrides = [dims[1]! * dims[2]! * dims[3]!, dims[2]! * dims[3]!, dims[3]!, 1];
  const st = perm.map((p) => inStrides[p]!);
  const out = new Float32Array(src.length);
  let o = 0;
  for (let a = 0; a < od[0]!; a++)
    for (let b = 0; b < od[1]!; b++)
      for (let c = 0; c < od[2]!; c++) {
        const base = a * st[0]! + b * st[1]! + c * st[2]!;
        for (let d = 0; d < od[3]!; d++) out[o++] = src[base + d * st[3]!]!;
      }
  return out;
}
const NCHW_TO_NHWC = [0, 2, 3, 1];
const NHWC_TO_NCHW = [0, 3, 1, 2];
const OIHW_TO_HWIO = [2, 3, 1, 0];
const HWIO_TO_OIHW = [3, 2, 0, 1];

// ---------------------------------------------------------------------------------------------
// Peer runtimes

/** One timed unit of work; `parts` run back to back in each timed iteration. */
interface Prepared {
  parts: { label: string; run: () => Promise<void> | void }[];
  /** Outputs in ONNX layout (gemm: Y; conv: Y; conv-backward: dX, dW), for verification. */
  outputs: () => Promise<Float32Array[]>;
  dispose: () => Promise<void> | void;
  note?: string;
}

interface Variant {
  impl: string;
  /** Set when this peer cannot run the case: the row gets ms NaN and this note. */
  unsupported?: string;
  prepare?: () => Promise<Prepared>;
}

interface PeerRuntime {
  variants(c: BenchCase, data: CaseData, emulate: boolean): Variant[];
  close(): Promise<void> | void;
}

type OrtApi = typeof OrtNodeNs | typeof OrtWebNs;
type OrtSession = OrtNodeNs.InferenceSession | OrtWebNs.InferenceSession;

const ONNX_BACKWARD_NOTE = 'no ONNX conv-gradient op: dX = ConvTranspose(dY,W), dW = Conv of transposed X,dY; ms = dX + dW';

function ortRuntime(ort: OrtApi, impl: PeerImpl, sessionOptions: Record<string, unknown>): PeerRuntime {
  const create = async (model: OnnxModel): Promise<OrtSession> =>
    // The two APIs have the same shape; the cast only unifies their option types.
    (ort.InferenceSession as typeof OrtNodeNs.InferenceSession).create(model.bytes, sessionOptions as OrtNodeNs.InferenceSession.SessionOptions);
  const tensor = (data: Float32Array, dims: number[]) =>
    new (ort.Tensor as typeof OrtNodeNs.Tensor)('float32', data, dims);

  const single = async (model: OnnxModel, feeds: Record<string, Float32Array>, label: string): Promise<{
    session: OrtSession;
    run: () => Promise<void>;
    output: () => Promise<Float32Array>;
  }> => {
    const session = await create(model);
    const feedTensors: Record<string, OrtNodeNs.Tensor> = {};
    for (const io of model.inputs) feedTensors[io.name] = tensor(feeds[io.name]!, io.dims);
    const outName = model.outputs[0]!.name;
    const runOnce = async () => {
      const res = await (session as OrtNodeNs.InferenceSession).run(feedTensors);
      const out = res[outName];
      if (!out) throw new Error(`${label}: no output ${outName}`);
      return out.data as Float32Array;
    };
    return {
      session,
      run: async () => {
        await runOnce();
      },
      output: async () => Float32Array.from(await runOnce()),
    };
  };

  return {
    variants(c, data) {
      return [
        {
          impl,
          prepare: async () => {
            if (c.kind === 'model') {
              const g = c.model!;
              const m: OnnxModel = { bytes: g.bytes, inputs: [g.input], outputs: [{ name: g.output, dims: [] }], initializers: {} };
              const s = await single(m, { [g.input.name]: data.X! }, c.name);
              return {
                parts: [{ label: 'run', run: s.run }],
                outputs: async () => [await s.output()],
                dispose: () => s.session.release(),
              };
            }
            if (c.kind === 'gemm') {
              const { m, n, k } = gemmDims(c);
              const s = await single(gemmModel(m, n, k, SEED_WEIGHT), { A: data.A! }, 'MatMul');
              return {
                parts: [{ label: 'MatMul', run: s.run }],
                outputs: async () => [await s.output()],
                dispose: () => s.session.release(),
              };
            }
            const shape = convShapeOf(c);
            if (c.kind === 'conv') {
              const s = await single(convModel(shape, SEED_WEIGHT), { X: data.X! }, 'Conv');
              return {
                parts: [{ label: 'Conv', run: s.run }],
                outputs: async () => [await s.output()],
                dispose: () => s.session.release(),
              };
            }
            const dx = await single(convTransposeModel(shape, SEED_WEIGHT), { dY: data.dY! }, 'ConvTranspose');
            const dw = await single(convWeightGradModel(shape), { X: data.X!, dY: data.dY! }, 'weight-grad Conv');
            return {
              parts: [
                { label: 'dX', run: dx.run },
                { label: 'dW', run: dw.run },
              ],
              outputs: async () => [await dx.output(), await dw.output()],
              dispose: async () => {
                await dx.session.release();
                await dw.session.release();
              },
              note: ONNX_BACKWARD_NOTE,
            };
          },
        },
      ];
    },
    close() {},
  };
}

async function loadOrtNode(threads: number): Promise<PeerRuntime> {
  const mod = (await import('onnxruntime-node')) as typeof OrtNodeNs & { default?: typeof OrtNodeNs };
  const ort = (mod.InferenceSession ? mod : mod.default) as typeof OrtNodeNs;
  if (!ort?.InferenceSession) throw new Error('onnxruntime-node loaded but exports no InferenceSession');
  return ortRuntime(ort, 'onnxruntime-node', {
    executionProviders: ['cpu'],
    logSeverityLevel: 3,
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
}

/** The folder holding onnxruntime-web's .wasm/.mjs runtime files (resolved in node_modules). */
function ortWebDistDir(): string {
  const require = createRequire(import.meta.url);
  return path.dirname(require.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));
}

async function loadOrtWeb(threads: number): Promise<PeerRuntime> {
  const ort = (await import('onnxruntime-web')) as typeof OrtWebNs;
  const dist = ortWebDistDir();
  ort.env.logLevel = 'error';
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.simd = true;
  ort.env.wasm.proxy = false;
  // Load ort-wasm-simd-threaded.{mjs,wasm} from node_modules, never from a CDN.
  ort.env.wasm.wasmPaths = pathToFileURL(dist).href + '/';
  const rt = ortRuntime(ort, 'onnxruntime-web', {
    executionProviders: ['wasm'],
    logSeverityLevel: 3,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  // Initialise the wasm runtime now, so a failure (e.g. threads) is reported once, clearly.
  try {
    const probe = gemmModel(2, 2, 2);
    const s = await ort.InferenceSession.create(probe.bytes, { executionProviders: ['wasm'] });
    await s.release();
  } catch (e) {
    throw new Error(`wasm backend failed to start with numThreads=${threads}: ${errMsg(e)}`);
  }
  return rt;
}

type Tf = typeof TfNs;
interface TfWasmModule {
  setWasmPaths(prefix: string): void;
  setThreadsCount?(n: number): void;
  getThreadsCount?(): number;
}

async function loadTfjsWasm(threads: number): Promise<PeerRuntime> {
  const tf = (await import('@tensorflow/tfjs-core')) as Tf;
  const wasmMod = (await import('@tensorflow/tfjs-backend-wasm')) as unknown as TfWasmModule;
  const require = createRequire(import.meta.url);
  const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
  wasmMod.setWasmPaths(dist + path.sep);
  if (typeof wasmMod.setThreadsCount === 'function') wasmMod.setThreadsCount(threads);
  const ok = await tf.setBackend('wasm');
  if (!ok || tf.getBackend() !== 'wasm') throw new Error(`tf.setBackend('wasm') failed (backend is ${tf.getBackend()})`);
  const actual = typeof wasmMod.getThreadsCount === 'function' ? wasmMod.getThreadsCount() : 1;
  if (actual !== threads) {
    // Under Node, WASM_HAS_MULTITHREAD_SUPPORT is hard-wired false (tfjs#3830); forcing the flag
    // makes the backend fail to start: Node's Worker cannot load its blob: pthread script.
    const why = tf.env().getBool('IS_NODE') ? 'tfjs-backend-wasm disables wasm threads under Node (tfjs#3830)' : 'no wasm threads here';
    throw new Error(`setThreadsCount(${threads}) -> ${actual} thread(s): ${why}`);
  }
  return tfjsRuntime(tf);
}

function tfjsRuntime(tf: Tf): PeerRuntime {
  const hasKernel = (name: string) => tf.getKernel(name, 'wasm') !== undefined;
  const readback = (t: TfNs.Tensor) => {
    t.dataSync();
    t.dispose();
  };

  return {
    variants(c, data, emulate) {
      if (c.kind === 'model') return [{ impl: 'tfjs-wasm', unsupported: 'unsupported: ONNX graphs run on the onnxruntime peers only' }];
      if (c.kind === 'gemm') {
        const { m, n, k } = gemmDims(c);
        return [
          {
            impl: 'tfjs-wasm',
            prepare: async () => {
              const b = tf.tensor2d(data.B!, [k, n]);
              const fwd = () => tf.tidy(() => tf.matMul(tf.tensor2d(data.A!, [m, k]), b));
              return {
                parts: [{ label: 'matMul', run: () => readback(fwd()) }],
                outputs: async () => {
                  const y = fwd();
                  const out = Float32Array.from(y.dataSync() as Float32Array);
                  y.dispose();
                  return [out];
                },
                dispose: () => b.dispose(),
              };
            },
          },
        ];
      }
      const s = convShapeOf(c);
      const { oh, ow } = convOutSize(s);
      // tfjs is NHWC with HWIO filters: convert the (untimed) host data once.
      const xShape: [number, number, number, number] = [s.batch, s.h, s.w, s.inC];
      const dyShape: [number, number, number, number] = [s.batch, oh, ow, s.outC];
      const fShape: [number, number, number, number] = [s.kh, s.kw, s.inC, s.outC];
      // Explicit padding: tfjs-core's numeric `pad` assumes a square filter when it computes the
      // output size (a non-square kernel then writes out of bounds in the wasm backend).
      const tfPad: [[number, number], [number, number], [number, number], [number, number]] = [
        [0, 0],
        [s.pad, s.pad],
        [s.pad, s.pad],
        [0, 0],
      ];
      const xNhwc = permute4(data.X!, [s.batch, s.inC, s.h, s.w], NCHW_TO_NHWC);
      const wHwio = permute4(data.W!, [s.outC, s.inC, s.kh, s.kw], OIHW_TO_HWIO);
      const toNchw = (t: TfNs.Tensor) => {
        const d = Float32Array.from(t.dataSync() as Float32Array);
        t.dispose();
        return permute4(d, t.shape as number[], NHWC_TO_NCHW);
      };
      const hwioToOihw = (t: TfNs.Tensor) => {
        const d = Float32Array.from(t.dataSync() as Float32Array);
        t.dispose();
        return permute4(d, t.shape as number[], HWIO_TO_OIHW);
      };

      if (c.kind === 'conv') {
        return [
          {
            impl: 'tfjs-wasm',
            prepare: async () => {
              const f = tf.tensor4d(wHwio, fShape);
              const fwd = () => tf.tidy(() => tf.conv2d(tf.tensor4d(xNhwc, xShape), f, 1, tfPad));
              return {
                parts: [{ label: 'conv2d', run: () => readback(fwd()) }],
                outputs: async () => [toNchw(fwd())],
                dispose: () => f.dispose(),
              };
            },
          },
        ];
      }

      // conv-backward
      const dyNhwc = permute4(data.dY!, [s.batch, s.outC, oh, ow], NCHW_TO_NHWC);
      const variants: Variant[] = [];
      const missing = ['Conv2DBackpropInput', 'Conv2DBackpropFilter'].filter((k) => !hasKernel(k));
      const dX = (f: TfNs.Tensor4D) =>
        tf.tidy(() => tf.conv2dTranspose(tf.tensor4d(dyNhwc, dyShape), f, xShape, 1, tfPad));
      if (missing.length > 0) {
        variants.push({
          impl: 'tfjs-wasm',
          unsupported: `unsupported: wasm backend has no ${missing.join('/')} kernel; not falling back to the CPU backend`,
        });
      } else {
        variants.push({
          impl: 'tfjs-wasm',
          prepare: async () => {
            const f = tf.tensor4d(wHwio, fShape);
            const dW = () =>
              tf.tidy(
                () =>
                  tf.engine().runKernel(
                    'Conv2DBackpropFilter',
                    { x: tf.tensor4d(xNhwc, xShape), dy: tf.tensor4d(dyNhwc, dyShape) },
                    { strides: [1, 1], pad: tfPad, dataFormat: 'NHWC', filterShape: fShape },
                  ) as TfNs.Tensor4D,
              );
            return {
              parts: [
                { label: 'dX', run: () => readback(dX(f)) },
                { label: 'dW', run: () => readback(dW()) },
              ],
              outputs: async () => [toNchw(dX(f)), hwioToOihw(dW())],
              dispose: () => f.dispose(),
              note: 'dX = conv2dTranspose, dW = Conv2DBackpropFilter; ms = dX + dW',
            };
          },
        });
      }
      if (emulate && missing.length > 0 && hasKernel('Conv2DBackpropInput')) {
        variants.push({
          impl: TFJS_EMULATED_IMPL,
          prepare: async () => {
            const f = tf.tensor4d(wHwio, fShape);
            // dW[p,q,c,o] = sum_{n,i,j} x[n,i+p-pad,j+q-pad,c] dy[n,i,j,o]: a conv2d of x^T
            // [inC,h,w,batch] with filter dy^T [oh,ow,batch,outC] -> [inC,kh,kw,outC] -> HWIO.
            const dW = () =>
              tf.tidy(() => {
                const xt = tf.transpose(tf.tensor4d(xNhwc, xShape), [3, 1, 2, 0]);
                const dyt = tf.transpose(tf.tensor4d(dyNhwc, dyShape), [1, 2, 0, 3]);
                const g = tf.conv2d(xt as TfNs.Tensor4D, dyt as TfNs.Tensor4D, 1, tfPad);
                return tf.transpose(g, [1, 2, 0, 3]);
              });
            return {
              parts: [
                { label: 'dX', run: () => readback(dX(f)) },
                { label: 'dW', run: () => readback(dW()) },
              ],
              outputs: async () => [toNchw(dX(f)), hwioToOihw(dW())],
              dispose: () => f.dispose(),
              note: 'no Conv2DBackpropFilter in wasm: dX = conv2dTranspose, dW = conv2d of transposed x,dy (as ONNX); ms = dX + dW',
            };
          },
        });
      }
      return variants;
    },
    close() {},
  };
}

async function loadPeer(impl: PeerImpl, threads: number): Promise<PeerRuntime> {
  switch (impl) {
    case 'onnxruntime-node':
      return loadOrtNode(threads);
    case 'onnxruntime-web':
      return loadOrtWeb(threads);
    case 'tfjs-wasm':
      return loadTfjsWasm(threads);
  }
}

// ---------------------------------------------------------------------------------------------
// Jobs: one peer at one thread count over a list of cases (run here or in a worker)

interface Job {
  impl: PeerImpl;
  threads: number;
  cases: BenchCase[];
  mode: 'bench' | 'verify';
  warmup: number;
  runs: number;
  minWarmupMs: number;
  soakMs: number;
  emulate: boolean;
}

type JobMsg =
  | { kind: 'row'; row: BenchRow }
  | { kind: 'outputs'; name: string; impl: string; outputs: Float32Array[] | null; note?: string }
  | { kind: 'done' };

function nanRow(c: BenchCase, impl: string, threads: number, note: string): BenchRow {
  return { name: c.name, impl, threads, ms: NaN, gops: NaN, note };
}

async function timePrepared(p: Prepared, warmup: number, runs: number, minWarmupMs: number): Promise<{ ms: number; partMs: number[] }> {
  // At least `warmup` runs, and keep going (up to 200 runs) until minWarmupMs has passed: V8
  // compiles wasm with a baseline tier first and swaps optimised code in later.
  const t0 = performance.now();
  for (let i = 0; i < warmup || (i < 200 && performance.now() - t0 < minWarmupMs); i++) {
    for (const part of p.parts) await part.run();
  }
  const totals: number[] = [];
  const perPart: number[][] = p.parts.map(() => []);
  for (let r = 0; r < Math.max(1, runs); r++) {
    const start = performance.now();
    for (let j = 0; j < p.parts.length; j++) {
      const ts = performance.now();
      await p.parts[j]!.run();
      perPart[j]!.push(performance.now() - ts);
    }
    totals.push(performance.now() - start);
  }
  return { ms: median(totals), partMs: perPart.map(median) };
}

/** One row to produce: a prepared case, or the reason it cannot run. */
interface Slot {
  c: BenchCase;
  impl: string;
  prepared?: Prepared;
  failed?: string;
}

async function runJob(job: Job, emit: (m: JobMsg) => void): Promise<void> {
  const fail = (c: BenchCase, impl: string, note: string) => {
    if (job.mode === 'bench') emit({ kind: 'row', row: nanRow(c, impl, job.threads, note) });
    else emit({ kind: 'outputs', name: c.name, impl, outputs: null, note });
  };
  let rt: PeerRuntime;
  try {
    rt = await loadPeer(job.impl, job.threads);
  } catch (e) {
    for (const c of job.cases) fail(c, job.impl, `unavailable: ${errMsg(e)}`);
    return;
  }
  const slots: Slot[] = [];
  try {
    // 1. Set up every case (sessions, constant tensors) before timing anything.
    for (const c of job.cases) {
      let variants: Variant[];
      try {
        variants = rt.variants(c, caseData(c), job.emulate);
      } catch (e) {
        variants = [{ impl: job.impl, unsupported: `could not set up ${c.name}: ${errMsg(e)}` }];
      }
      for (const v of variants) {
        if (v.unsupported || !v.prepare) {
          slots.push({ c, impl: v.impl, failed: v.unsupported ?? 'unsupported' });
          continue;
        }
        try {
          slots.push({ c, impl: v.impl, prepared: await v.prepare() });
        } catch (e) {
          slots.push({ c, impl: v.impl, failed: `failed: ${errMsg(e)}` });
        }
      }
    }
    // 2. Soak: run all cases round-robin for soakMs so that V8 has tiered up every wasm function
    //    they use (baseline-tier code runs 2-4x slower and is swapped out in the background).
    if (job.mode === 'bench' && job.soakMs > 0) {
      const t0 = performance.now();
      do {
        for (const slot of slots) {
          const p = slot.prepared;
          if (!p) continue;
          try {
            for (const part of p.parts) await part.run();
          } catch (e) {
            slot.prepared = undefined;
            slot.failed = `failed: ${errMsg(e)}`;
            await disposeQuietly(p);
          }
        }
      } while (performance.now() - t0 < job.soakMs && slots.some((s) => s.prepared));
    }
    // 3. Time (or verify) each case in order.
    for (const slot of slots) {
      const { c, impl, prepared: p } = slot;
      if (!p) {
        fail(c, impl, slot.failed ?? 'unsupported');
        continue;
      }
      slot.prepared = undefined; // disposed below, whatever happens
      try {
        if (job.mode === 'verify') {
          emit({ kind: 'outputs', name: c.name, impl, outputs: await p.outputs(), note: p.note });
        } else {
          const { ms, partMs } = await timePrepared(p, job.warmup, job.runs, job.minWarmupMs);
          let note = p.note;
          if (p.parts.length > 1) {
            const split = p.parts.map((part, j) => `${part.label} ${fmtMs(partMs[j]!)} ms`).join(' + ');
            note = `${note ? note + ' ' : ''}(${split})`;
          }
          const row: BenchRow = { name: c.name, impl, threads: job.threads, ms, gops: c.flops / (ms * 1e6) };
          if (note) row.note = note;
          emit({ kind: 'row', row });
        }
      } catch (e) {
        fail(c, impl, `failed: ${errMsg(e)}`);
      } finally {
        await disposeQuietly(p);
      }
    }
  } finally {
    for (const slot of slots) if (slot.prepared) await disposeQuietly(slot.prepared);
    await rt.close();
  }
}

async function disposeQuietly(p: Prepared): Promise<void> {
  try {
    await p.dispose();
  } catch {
    /* already released */
  }
}

const WORKER_FLAG = '__lowbitPeerJob';

/** Run a job in a fresh worker_thread; resolves with every message once the worker is done. */
function runJobInWorker(job: Job, timeoutMs: number, onMsg: (m: JobMsg) => void): Promise<void> {
  return new Promise((resolve) => {
    const seen = new Set<string>();
    let finished = false;
    const failRest = (note: string) => {
      for (const c of job.cases) {
        if (seen.has(c.name)) continue;
        if (job.mode === 'bench') onMsg({ kind: 'row', row: nanRow(c, job.impl, job.threads, note) });
        else onMsg({ kind: 'outputs', name: c.name, impl: job.impl, outputs: null, note });
      }
    };
    let worker: Worker;
    try {
      // Worker console output goes to stderr so that a caller printing JSON on stdout stays clean.
      worker = new Worker(new URL(import.meta.url), { workerData: { [WORKER_FLAG]: job }, stdout: true, stderr: true });
      worker.stdout.pipe(process.stderr, { end: false });
      worker.stderr.pipe(process.stderr, { end: false });
    } catch (e) {
      failRest(`could not start a worker thread: ${errMsg(e)}`);
      resolve();
      return;
    }
    const finish = (note?: string) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (note) failRest(note);
      void worker.terminate().finally(() => resolve());
    };
    const timer = setTimeout(() => finish(`timed out after ${(timeoutMs / 1000).toFixed(1)} s`), timeoutMs);
    worker.on('message', (m: JobMsg) => {
      if (finished) return;
      if (m.kind === 'done') return finish();
      seen.add(m.kind === 'row' ? m.row.name : m.name);
      onMsg(m);
    });
    worker.on('error', (e) => finish(`worker failed: ${errMsg(e)}`));
    worker.on('exit', (code) => finish(`worker exited early (code ${code})`));
  });
}

function selectCases(cases: BenchCase[], only: string[] | undefined): { cases: BenchCase[]; impls: PeerImpl[] } {
  const names = new Set(cases.map((c) => c.name));
  const implSet = new Set<string>(PEER_IMPLS);
  const wantCases = (only ?? []).filter((o) => names.has(o));
  const wantImpls = (only ?? []).filter((o) => implSet.has(o)) as PeerImpl[];
  return {
    cases: wantCases.length > 0 ? cases.filter((c) => wantCases.includes(c.name)) : cases,
    impls: wantImpls.length > 0 ? PEER_IMPLS.filter((i) => wantImpls.includes(i)) : [...PEER_IMPLS],
  };
}

async function runJobs(
  impls: PeerImpl[],
  threadsList: number[],
  base: Omit<Job, 'impl' | 'threads'>,
  timeoutMs: number,
  onMsg: (m: JobMsg, impl: PeerImpl) => void,
): Promise<void> {
  for (const impl of impls) {
    for (const threads of threadsList) {
      // Native code needs no tier-up soak.
      const job: Job = { ...base, impl, threads, soakMs: impl === 'onnxruntime-node' ? 0 : base.soakMs };
      if (impl === 'onnxruntime-node') {
        // Native addon: thread count is per session, so it runs here.
        await runJob(job, (m) => onMsg(m, impl));
      } else {
        await runJobInWorker(job, timeoutMs, (m) => onMsg(m, impl));
      }
    }
  }
}

function checkThreads(threads: number[]): number[] {
  const t = threads.length > 0 ? threads : [1];
  for (const n of t) if (!Number.isInteger(n) || n < 1) throw new Error(`threads must be positive integers, got ${n}`);
  return t;
}

/**
 * Measure every peer on every case for each thread count. Rows come back grouped by peer, then
 * thread count, then case (the order of `cases`). Never throws for a missing or failing peer.
 */
export async function measurePeers(cases: BenchCase[], opts: MeasureOptions): Promise<BenchRow[]> {
  const sel = selectCases(cases, opts.only);
  const threads = checkThreads(opts.threads);
  const rows: BenchRow[] = [];
  await runJobs(
    sel.impls,
    threads,
    {
      cases: sel.cases,
      mode: 'bench',
      warmup: Math.max(0, Math.floor(opts.warmup)),
      runs: Math.max(1, Math.floor(opts.runs)),
      minWarmupMs: opts.minWarmupMs ?? 250,
      soakMs: opts.soakMs ?? 3000,
      emulate: opts.emulateMissing ?? true,
    },
    opts.timeoutMs ?? 600_000,
    (m) => {
      if (m.kind !== 'row') return;
      rows.push(m.row);
      opts.onRow?.(m.row);
    },
  );
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Verification against naive JS references (small shapes)

/** Y[m,n] = A[m,k] B[k,n], float64 accumulation. */
export function naiveGemm(a: Float32Array, b: Float32Array, m: number, n: number, k: number): Float32Array {
  const y = new Float32Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let p = 0; p < k; p++) acc += a[i * k + p]! * b[p * n + j]!;
      y[i * n + j] = acc;
    }
  return y;
}

/** Stride-1 conv, NCHW x, OIHW w, symmetric zero padding. */
export function naiveConv(x: Float32Array, w: Float32Array, s: ConvShape): Float32Array {
  const { oh, ow } = convOutSize(s);
  const y = new Float32Array(s.batch * s.outC * oh * ow);
  for (let n = 0; n < s.batch; n++)
    for (let o = 0; o < s.outC; o++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) {
          let acc = 0;
          for (let c = 0; c < s.inC; c++)
            for (let p = 0; p < s.kh; p++) {
              const yi = i + p - s.pad;
              if (yi < 0 || yi >= s.h) continue;
              for (let q = 0; q < s.kw; q++) {
                const xj = j + q - s.pad;
                if (xj < 0 || xj >= s.w) continue;
                acc += x[((n * s.inC + c) * s.h + yi) * s.w + xj]! * w[((o * s.inC + c) * s.kh + p) * s.kw + q]!;
              }
            }
          y[((n * s.outC + o) * oh + i) * ow + j] = acc;
        }
  return y;
}

/** Input and weight gradients of naiveConv for upstream gradient dy [batch,outC,oh,ow]. */
export function naiveConvBackward(x: Float32Array, w: Float32Array, dy: Float32Array, s: ConvShape): { dx: Float32Array; dw: Float32Array } {
  const { oh, ow } = convOutSize(s);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  for (let n = 0; n < s.batch; n++)
    for (let o = 0; o < s.outC; o++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) {
          const g = dy[((n * s.outC + o) * oh + i) * ow + j]!;
          for (let c = 0; c < s.inC; c++)
            for (let p = 0; p < s.kh; p++) {
              const yi = i + p - s.pad;
              if (yi < 0 || yi >= s.h) continue;
              for (let q = 0; q < s.kw; q++) {
                const xj = j + q - s.pad;
                if (xj < 0 || xj >= s.w) continue;
                const xi = ((n * s.inC + c) * s.h + yi) * s.w + xj;
                const wi = ((o * s.inC + c) * s.kh + p) * s.kw + q;
                dx[xi]! += g * w[wi]!;
                dw[wi]! += g * x[xi]!;
              }
            }
        }
  return { dx: Float32Array.from(dx), dw: Float32Array.from(dw) };
}

/** Small shapes with odd sizes, both paddings and batch > 1, for verifyPeers. */
export const VERIFY_CASES: BenchCase[] = (() => {
  const c3: ConvShape = { batch: 2, inC: 3, h: 7, w: 6, outC: 4, kh: 3, kw: 3, pad: 1 };
  const c5: ConvShape = { batch: 3, inC: 1, h: 9, w: 8, outC: 2, kh: 5, kw: 5, pad: 0 };
  const c35: ConvShape = { batch: 2, inC: 2, h: 8, w: 9, outC: 3, kh: 3, kw: 5, pad: 1 };
  return [
    { name: 'verify-gemm-5x7x9', kind: 'gemm', m: 5, n: 7, k: 9, flops: 2 * 5 * 7 * 9 },
    { name: 'verify-conv3x3-pad1', kind: 'conv', ...c3, flops: convFlops(c3) },
    { name: 'verify-conv5x5-pad0', kind: 'conv', ...c5, flops: convFlops(c5) },
    { name: 'verify-conv3x5-pad1', kind: 'conv', ...c35, flops: convFlops(c35) },
    { name: 'verify-conv3x3-pad1-backward', kind: 'conv-backward', ...c3, flops: 2 * convFlops(c3) },
    { name: 'verify-conv5x5-pad0-backward', kind: 'conv-backward', ...c5, flops: 2 * convFlops(c5) },
  ];
})();

export interface VerifyRow {
  name: string;
  impl: string;
  threads: number;
  /** max |peer - reference| over all outputs, relative to max(1, max |reference|); NaN if not run. */
  maxRelErr: number;
  ok: boolean;
  note?: string;
}

function referenceOutputs(c: BenchCase): Float32Array[] {
  if (c.kind === 'model') throw new Error(`case ${c.name}: no JS reference for whole-model cases`);
  const d = caseData(c);
  if (c.kind === 'gemm') {
    const { m, n, k } = gemmDims(c);
    return [naiveGemm(d.A!, d.B!, m, n, k)];
  }
  const s = convShapeOf(c);
  if (c.kind === 'conv') return [naiveConv(d.X!, d.W!, s)];
  const g = naiveConvBackward(d.X!, d.W!, d.dY!, s);
  return [g.dx, g.dw];
}

/**
 * Run each peer once on small cases and compare with the naive JS references above, so that the
 * timed operations are known to compute the right thing (layouts, padding, gradient formulas).
 */
export async function verifyPeers(opts: { threads?: number[]; cases?: BenchCase[]; tolerance?: number; only?: string[] } = {}): Promise<VerifyRow[]> {
  const cases = opts.cases ?? VERIFY_CASES;
  const sel = selectCases(cases, opts.only);
  const tol = opts.tolerance ?? 1e-4;
  const refs = new Map(sel.cases.map((c) => [c.name, referenceOutputs(c)]));
  const out: VerifyRow[] = [];
  for (const threads of checkThreads(opts.threads ?? [1])) {
    await runJobs(
      sel.impls,
      [threads],
      { cases: sel.cases, mode: 'verify', warmup: 0, runs: 1, minWarmupMs: 0, soakMs: 0, emulate: true },
      600_000,
      (m) => {
        if (m.kind !== 'outputs') return;
        const ref = refs.get(m.name)!;
        let err = NaN;
        let note = m.note;
        if (m.outputs) {
          if (m.outputs.length !== ref.length || m.outputs.some((o, i) => o.length !== ref[i]!.length)) {
            note = `output shape mismatch${note ? '; ' + note : ''}`;
          } else {
            let maxAbs = 0;
            let maxRef = 0;
            ref.forEach((r, i) => {
              const o = m.outputs![i]!;
              for (let j = 0; j < r.length; j++) {
                maxAbs = Math.max(maxAbs, Math.abs(o[j]! - r[j]!));
                maxRef = Math.max(maxRef, Math.abs(r[j]!));
              }
            });
            err = maxAbs / Math.max(1, maxRef);
          }
        }
        const row: VerifyRow = { name: m.name, impl: m.impl, threads, maxRelErr: err, ok: err <= tol };
        if (note) row.note = note;
        out.push(row);
      },
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Worker entry: this same module, started by runJobInWorker with workerData[WORKER_FLAG].

if (!isMainThread && parentPort && workerData && typeof workerData === 'object' && WORKER_FLAG in workerData) {
  const port = parentPort;
  const job = (workerData as Record<string, Job>)[WORKER_FLAG]!;
  const sent = new Set<string>();
  const send = (m: JobMsg) => {
    if (m.kind === 'row') sent.add(m.row.name);
    else if (m.kind === 'outputs') sent.add(m.name);
    port.postMessage(m);
  };
  runJob(job, send)
    .catch((e) => {
      // runJob reports per-case failures itself; this is a bug path: surface it as rows.
      const note = `internal error: ${errMsg(e)}`;
      for (const c of job.cases) {
        if (sent.has(c.name)) continue;
        send(
          job.mode === 'bench'
            ? { kind: 'row', row: nanRow(c, job.impl, job.threads, note) }
            : { kind: 'outputs', name: c.name, impl: job.impl, outputs: null, note },
        );
      }
    })
    .finally(() => port.postMessage({ kind: 'done' } satisfies JobMsg));
}
