/**
 * lowbit's side of `lowbit bench runtime`: the conv 3x3 64->64 56x56 layer on the integer and bitwise kernels
 * directly (codes in, codes out; bits in, bits out), and LeNet-5, ResNet-20 (CIFAR) and ResNet-18 (224x224)
 * compiled by the runtime (src/runtime) from zoo models with random weights, quantized post-training on one
 * random batch, in fp32, int8, int4, ternary (TWN weights, int8 activations) and binary (XNOR-Net, float
 * first and last layer). Batch 1; ms = median of the timed runs; gops = 2 MACs / time, with the peers' MAC
 * counts (bench/runtime-peers.ts) so that rows compare.
 */
import { performance } from 'node:perf_hooks';
import { engine, keep } from '../src/tensor/engine.js';
import { Tensor } from '../src/tensor/tensor.js';
import { Random } from '../src/tensor/random.js';
import { noGrad } from '../src/autograd/graph.js';
import * as ops from '../src/autograd/index.js';
import { BatchNorm } from '../src/nn/index.js';
import { buildModel } from '../src/zoo/index.js';
import { quantizePostTraining } from '../src/quant/ptq.js';
import { disposeQuantized } from '../src/quant/quantized.js';
import { compileModel, compileQuantized, exportPacked, loadRuntimePlan, type Plan } from '../src/runtime/index.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ConvGeometry, IntEpilogue } from '../src/kernels/types.js';
import type { WasmKernels } from '../src/kernels/wasm/index.js';
import { runtimeNetworkMacs } from './runtime-peers.js';

export const RUNTIME_DTYPES = ['fp32', 'int8', 'int4', 'ternary', 'binary'] as const;
export type RuntimeDtype = (typeof RUNTIME_DTYPES)[number];
/** The spec each dtype row quantizes with. */
export const DTYPE_SPECS: Record<Exclude<RuntimeDtype, 'fp32'>, string> = { int8: 'int8', int4: 'int4', ternary: 'w=twn,a=int8', binary: 'xnor' };

export interface RuntimeRow {
  name: string;
  impl: string;
  dtype: string;
  threads: number;
  ms: number;
  gops: number;
  note?: string;
}

export interface LowbitRuntimeOptions {
  threads: number[];
  runs: number;
  warmup: number;
  only?: string[];
  log?: (s: string) => void;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function time(run: () => void, warmup: number, runs: number): number {
  const warmEnd = performance.now() + 200;
  for (let i = 0; i < warmup || performance.now() < warmEnd; i++) run();
  const t: number[] = [];
  for (let i = 0; i < Math.max(1, runs); i++) {
    const t0 = performance.now();
    run();
    t.push(performance.now() - t0);
  }
  return median(t);
}

const NETWORKS: Record<string, { zoo: string; config: Record<string, number> }> = {
  lenet5: { zoo: 'lenet5', config: {} },
  resnet20: { zoo: 'resnet20', config: {} },
  resnet18: { zoo: 'resnet18', config: {} },
};

/** The conv layer on the kernels directly: each dtype's codes in and out. */
function convLayerCases(): { dtype: RuntimeDtype; run: () => void; how: string; dispose: () => void }[] {
  const k = engine.kernels;
  const r = new Random(1);
  const g: ConvGeometry = { n: 1, inC: 64, inH: 56, inW: 56, outC: 64, kH: 3, kW: 3, strideH: 1, strideW: 1, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1, dilationH: 1, dilationW: 1, groups: 1, outH: 56, outW: 56 };
  const owned: Tensor[] = [];
  const t = <T extends Tensor>(x: T) => { owned.push(keep(x)); return x; };
  const xf = t(Tensor.from(Float32Array.from({ length: 64 * 56 * 56 }, () => r.normal()), [1, 64, 56, 56]));
  const wf = t(Tensor.from(Float32Array.from({ length: 64 * 64 * 9 }, () => r.normal() * 0.05), [64, 64, 3, 3]));
  const yf = t(Tensor.empty([1, 64, 56, 56]));
  const xq = t(Tensor.from(Uint8Array.from({ length: 64 * 56 * 56 }, () => r.int(256)), [1, 64, 56, 56], 'u8'));
  const yq = t(Tensor.empty([1, 64, 56, 56], 'u8'));
  const ep: IntEpilogue = {
    kind: 'requant', bias: 0, multiplier: t(Tensor.from(new Array(64).fill(2 ** 30), [64], 'i32')).ptr,
    shift: t(Tensor.from(new Array(64).fill(12), [64], 'i32')).ptr, zeroPoint: 128, lo: 128, hi: 255, out: 'u8',
  };
  const intCase = (dtype: RuntimeDtype, lo: number, hi: number, how: string) => {
    const w = t(Tensor.from(Int8Array.from({ length: 64 * 64 * 9 }, () => lo + r.int(hi - lo + 1)), [64, 64, 3, 3], 'i8'));
    const bits = hi <= 1 ? 2 : hi <= 7 ? 4 : 8; // packed at the codes' width, as the runtime stores them
    const packed = t(Tensor.empty([k.int8PackedWeightBytes(g, bits)], 'u8'));
    k.int8PackWeights(g, w.ptr, packed.ptr, bits);
    return { dtype, how: `${how}, ${bits}-bit packed weights`, run: () => k.convInt8(g, xq.ptr, 'u8', 128, packed.ptr, ep, yq.ptr, bits), dispose: () => {} };
  };
  const xb = t(Tensor.empty([56 * 56 * 8], 'u8'));
  k.binarizePack(xf.ptr, 1, 64, 56, 56, xb.ptr);
  const wb = t(Tensor.empty([k.binaryPackedWeightBytes(g)], 'u8'));
  k.binaryPackWeights(g, wf.ptr, wb.ptr);
  const yb = t(Tensor.empty([56 * 56 * 8], 'u8'));
  const ones = t(Tensor.from(new Array(64).fill(1), [64])), zeros = t(Tensor.zeros([64]));
  const bitsEp: IntEpilogue = { kind: 'bits', scale: ones.ptr, offset: zeros.ptr };
  return [
    { dtype: 'fp32', how: 'f32 conv2d (Winograd F(4x4,3x3), fused multiply-add where relaxed SIMD is on)', run: () => k.conv2d(g, xf.ptr, wf.ptr, 0, yf.ptr), dispose: () => {} },
    intCase('int8', -127, 127, 'convInt8: u8 codes in, u8 codes out (fixed-point requantization, ReLU fused)'),
    intCase('int4', -8, 7, 'convInt8 with 4-bit weight codes (unpacked to i16 per block as it runs)'),
    intCase('ternary', -1, 1, 'convInt8 with ternary weight codes (unpacked to i16 per block as it runs)'),
    { dtype: 'binary', how: 'convBinary: bit-packed in and out (XNOR-popcount)', run: () => k.convBinary(g, xb.ptr, wb.ptr, bitsEp, yb.ptr), dispose: () => {} },
  ].map((c) => ({ ...c, dispose: () => owned.forEach((o) => o.dispose()) })) as { dtype: RuntimeDtype; run: () => void; how: string; dispose: () => void }[];
}

/** A zoo network with random weights (and non-trivial batch norms) compiled for one dtype. */
export function networkPlan(name: string, dtype: RuntimeDtype): { plan: Plan; x: Tensor; dispose: () => void; how: string } {
  const net = NETWORKS[name];
  const { model, config } = buildModel(net.zoo, net.config, 1);
  const r = new Random(2);
  for (const [, m] of model.namedModules()) {
    if (m instanceof BatchNorm) m.runningVar.view().set(Float32Array.from({ length: m.channels }, () => 0.5 + r.uniform()));
  }
  model.eval();
  const shape = [1, config.inChannels, config.inputSize, config.inputSize];
  const random = (n: number) => noGrad(() => ops.clamp(Tensor.from(Float32Array.from({ length: n * shape.reduce((a, b) => a * b) }, () => r.normal()), [n, ...shape.slice(1)]), -2.5, 2.5));
  const x = keep(random(1));
  if (dtype === 'fp32') {
    const plan = compileModel(model, [], shape);
    return { plan, x, how: 'runtime plan, every layer fp32', dispose: () => { plan.dispose(); model.dispose(); x.dispose(); } };
  }
  const spec = DTYPE_SPECS[dtype];
  const q = quantizePostTraining({ name: net.zoo, config, model, metadata: {} }, { spec, calibration: [{ x: random(4), y: Tensor.zeros([4], 'i32') }], biasCorrection: false });
  const plan = compileQuantized(q);
  const families = plan.summary().reduce((m, s) => m.set(s.family, (m.get(s.family) ?? 0) + 1), new Map<string, number>());
  const how = `runtime plan of ${spec}: ${[...families].map(([f, n]) => `${n} ${f}`).join(', ')} layers`;
  return { plan, x, how, dispose: () => { plan.dispose(); disposeQuantized(q); model.dispose(); x.dispose(); } };
}

/** Run a full garbage collection (so that heap sizes mean something). */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

export interface MemoryRow {
  name: string;
  dtype: string;
  /** Peak WebAssembly bytes in use while running one batch-1 inference (weights + activations + scratch). */
  wasmPeakBytes: number;
  /** JS heap the loaded plan keeps (after a full collection), on top of what the process had before. */
  heapBytes: number;
  fileBytes: number;
}

/**
 * Memory of a deployed model: the network is quantized, written as a packed file and everything else freed;
 * then the file is loaded and one inference runs. wasmPeakBytes + heapBytes is what the model costs.
 */
export function measureRuntimeMemory(name: string, dtype: RuntimeDtype): MemoryRow {
  const dir = mkdtempSync(join(tmpdir(), 'lowbit-mem-'));
  const path = join(dir, 'model.lowbit');
  try {
    const { model, config } = buildModel(NETWORKS[name].zoo, NETWORKS[name].config, 1);
    model.eval();
    const shape = [1, config.inChannels, config.inputSize, config.inputSize];
    const r = new Random(3);
    const random = (n: number) => noGrad(() => Tensor.from(Float32Array.from({ length: n * shape[1] * shape[2] * shape[3] }, () => r.normal()), [n, ...shape.slice(1)]));
    const q = quantizePostTraining({ name: NETWORKS[name].zoo, config, model, metadata: {} }, {
      spec: dtype === 'fp32' ? 'fp32' : DTYPE_SPECS[dtype], calibration: [{ x: random(4), y: Tensor.zeros([4], 'i32') }], biasCorrection: false,
    });
    const fileBytes = exportPacked(q, path).bytes;
    disposeQuantized(q);
    model.dispose();
    const x = keep(random(1));
    collectGarbage();
    const heap0 = process.memoryUsage().heapUsed, wasm0 = engine.memory.bytesInUse;
    const { plan } = loadRuntimePlan(path);
    engine.memory.resetPeak();
    plan.run(x).dispose();
    const wasmPeakBytes = engine.memory.peakBytesInUse - wasm0;
    collectGarbage();
    const heapBytes = Math.max(0, process.memoryUsage().heapUsed - heap0);
    plan.dispose();
    x.dispose();
    return { name, dtype, wasmPeakBytes, heapBytes, fileBytes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchLowbitRuntime(opts: LowbitRuntimeOptions): Promise<RuntimeRow[]> {
  const kernels = engine.kernels as WasmKernels;
  if (kernels.name !== 'wasm') throw new Error('lowbit: bench runtime needs the wasm backend');
  const macs = runtimeNetworkMacs();
  const wanted = (s: string) => !opts.only?.length || opts.only.includes(s);
  const rows: RuntimeRow[] = [];
  const dtypes = RUNTIME_DTYPES.filter((d) => !opts.only?.some((o) => (RUNTIME_DTYPES as readonly string[]).includes(o)) || wanted(d));
  const measure = (name: string, dtype: string, how: string, run: () => void) => {
    for (const threads of opts.threads) {
      kernels.setThreads(threads);
      const ms = time(run, opts.warmup, opts.runs);
      rows.push({ name, impl: 'lowbit', dtype, threads, ms, gops: (2 * macs[name as keyof typeof macs]) / (ms * 1e6), note: how });
      opts.log?.(`lowbit ${name} ${dtype} ${threads}T: ${ms.toFixed(3)} ms`);
    }
  };
  if (wanted('conv3x3-64-56') || !opts.only?.some((o) => o in NETWORKS || o === 'conv3x3-64-56')) {
    const cases = convLayerCases().filter((c) => dtypes.includes(c.dtype));
    try {
      for (const c of cases) measure('conv3x3-64-56', c.dtype, c.how, c.run);
    } finally {
      cases[0]?.dispose();
    }
  }
  for (const name of Object.keys(NETWORKS)) {
    if (opts.only?.some((o) => o in NETWORKS || o === 'conv3x3-64-56') && !wanted(name)) continue;
    for (const dtype of dtypes) {
      const p = networkPlan(name, dtype);
      try {
        measure(name, dtype, p.how, () => p.plan.run(p.x).dispose());
      } finally {
        p.dispose();
      }
    }
  }
  kernels.setThreads(Math.max(...opts.threads));
  return rows;
}
