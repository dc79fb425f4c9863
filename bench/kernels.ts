/**
 * lowbit's own rows for `lowbit bench kernels`: the WebAssembly kernels on the engine's shapes, at each
 * requested thread count, in this process.
 *
 *   gemm-f32-512            C = A B, M = N = K = 512
 *   conv3x3-64-56           batch 1, 64 -> 64 channels, 56 x 56, 3 x 3, pad 1
 *   conv5x5-lenet           batch 64, 1 -> 6 channels, 28 x 28, 5 x 5, pad 0
 *   conv3x3-64-56-backward  input gradient + weight gradient of conv3x3-64-56 (flops = 2 x forward)
 *
 * gops counts the direct algorithm's flops (2 x multiply-adds), also where lowbit computes fewer (Winograd),
 * so that every implementation is compared on the same work.
 *
 * Timing: the kernels run on tensors already in WebAssembly memory (that is how lowbit uses them). First
 * a soak of `soakMs` runs every case round-robin (V8 compiles wasm in a baseline tier first and swaps in
 * optimized code from background threads), then per case and thread count `warmup` untimed runs (lasting
 * at least `minWarmupMs`) and `runs` timed runs; ms = median, gops = flops / (ms * 1e6).
 */
import { performance } from 'node:perf_hooks';
import { EngineMemory, type Ptr } from '../src/kernels/memory.js';
import type { ConvGeometry } from '../src/kernels/types.js';
import { createWasmKernels, type WasmKernels } from '../src/kernels/wasm/index.js';
import type { BenchRow } from './peers.js';

export type { BenchRow };

export interface LowbitBenchOptions {
  warmup: number;
  runs: number;
  threads: number[];
  /** Keep only these case names (default: all). */
  only?: string[];
  /** Minimum wall time of each case's warm-up in ms (default 200). */
  minWarmupMs?: number;
  /** Round-robin soak before any timing, ms (default 1500). */
  soakMs?: number;
}

function convGeometry(n: number, inC: number, h: number, w: number, outC: number, k: number, pad: number): ConvGeometry {
  const outH = h + 2 * pad - k + 1, outW = w + 2 * pad - k + 1;
  return {
    n, inC, inH: h, inW: w, outC, kH: k, kW: k, strideH: 1, strideW: 1, padTop: pad, padLeft: pad, padBottom: pad,
    padRight: pad, dilationH: 1, dilationW: 1, groups: 1, outH, outW,
  };
}

function convFlops(g: ConvGeometry): number {
  return 2 * g.n * g.outC * g.outH * g.outW * (g.inC / g.groups) * g.kH * g.kW;
}

interface Case {
  name: string;
  flops: number;
  run: () => void;
  /** How lowbit computes it (reported in the row's note). */
  how: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function fillRandom(mem: EngineMemory, p: Ptr, n: number, seed: number): void {
  let s = seed >>> 0;
  const f = mem.f32, o = p >> 2;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    f[o + i] = (s / 4294967296) * 2 - 1;
  }
}

function makeCases(mem: EngineMemory, k: WasmKernels): Case[] {
  const buf = (n: number, seed: number): Ptr => {
    const p = mem.alloc(n * 4);
    fillRandom(mem, p, n, seed);
    return p;
  };
  const cases: Case[] = [];
  {
    const n = 512;
    const a = buf(n * n, 1), b = buf(n * n, 2), c = buf(n * n, 3);
    cases.push({ name: 'gemm-f32-512', flops: 2 * n * n * n, how: `packed ${k.features.relaxedSimd ? 5 : 4}x8 tiles`, run: () => k.gemm(false, false, n, n, n, a, n, b, n, c, n, false) });
  }
  const resnet = convGeometry(1, 64, 56, 56, 64, 3, 1);
  const rx = buf(64 * 56 * 56, 4), rw = buf(64 * 64 * 9, 5), rb = buf(64, 6), ry = buf(64 * 56 * 56, 7);
  cases.push({ name: 'conv3x3-64-56', flops: convFlops(resnet), how: 'Winograd F(2x2,3x3)', run: () => k.conv2d(resnet, rx, rw, rb, ry) });
  {
    const g = convGeometry(64, 1, 28, 28, 6, 5, 0);
    const x = buf(64 * 28 * 28, 8), w = buf(6 * 25, 9), b = buf(6, 10), y = buf(64 * 6 * 24 * 24, 11);
    cases.push({ name: 'conv5x5-lenet', flops: convFlops(g), how: 'implicit im2col, 3x8 tiles', run: () => k.conv2d(g, x, w, b, y) });
  }
  {
    const dy = buf(64 * 56 * 56, 12), dx = buf(64 * 56 * 56, 13), dw = buf(64 * 64 * 9, 14);
    cases.push({
      name: 'conv3x3-64-56-backward',
      flops: 2 * convFlops(resnet),
      how: 'Winograd: dX F(2x2,3x3) on flipped weights, dW F(3x3,2x2)',
      run: () => {
        k.conv2dBackwardInput(resnet, dy, rw, dx);
        k.conv2dBackwardWeight(resnet, rx, dy, dw);
      },
    });
  }
  return cases;
}

export async function benchLowbitKernels(opts: LowbitBenchOptions): Promise<BenchRow[]> {
  const threadCounts = opts.threads.length ? opts.threads : [1];
  const mem = new EngineMemory({ shared: true, initialBytes: 64 * 2 ** 20 });
  const kernels = await createWasmKernels(mem, { threads: Math.max(...threadCounts) });
  const rows: BenchRow[] = [];
  try {
    const cases = makeCases(mem, kernels).filter((c) => !opts.only?.length || opts.only.includes(c.name));
    const soakEnd = performance.now() + (opts.soakMs ?? 1500);
    while (performance.now() < soakEnd) for (const c of cases) c.run();
    for (const c of cases) {
      for (const threads of threadCounts) {
        kernels.setThreads(threads); // clamps to the threads that could be created
        const simd = kernels.features.relaxedSimd ? 'relaxed SIMD (fused multiply-add)' : 'SIMD128';
        const note = `${c.how}; ${simd}` + (kernels.threads < threads ? `; ran on ${kernels.threads} thread(s)` : '');
        const warmEnd = performance.now() + (opts.minWarmupMs ?? 200);
        for (let i = 0; i < opts.warmup || performance.now() < warmEnd; i++) c.run();
        const times: number[] = [];
        for (let i = 0; i < Math.max(1, opts.runs); i++) {
          const t0 = performance.now();
          c.run();
          times.push(performance.now() - t0);
        }
        const ms = median(times);
        rows.push({ name: c.name, impl: 'lowbit', threads, ms, gops: c.flops / (ms * 1e6), note });
      }
    }
  } finally {
    await kernels.dispose();
  }
  return rows;
}
