// Choosing the kernel backend: the WebAssembly SIMD kernels (default) or the TypeScript reference.

import { engine } from './engine.js';
import type { WasmKernels } from '../kernels/wasm/index.js';

let wasm: WasmKernels | null = null;

export interface InitOptions {
  backend?: 'wasm' | 'ref';
  /** Worker threads sharing the kernels' work (1 = the calling thread only). Default: 2. */
  threads?: number;
}

/** Load the WebAssembly kernels (once) and make them the active backend. Call before creating tensors. */
export async function init(opts: InitOptions = {}): Promise<void> {
  const backend = opts.backend ?? 'wasm';
  if (backend === 'ref') {
    engine.kernels = engine.refKernels;
    return;
  }
  if (!wasm) {
    const { createWasmKernels } = await import('../kernels/wasm/index.js');
    wasm = await createWasmKernels(engine.memory, { threads: opts.threads ?? 2 });
  } else if (opts.threads !== undefined) {
    wasm.setThreads(opts.threads);
  }
  engine.kernels = wasm;
}

/** Switch between already-initialized backends synchronously (tests run the same cases on both). */
export function setBackend(name: 'wasm' | 'ref'): void {
  if (name === 'wasm') {
    if (!wasm) throw new Error("lowbit: the wasm backend is not loaded; call `await init()` first");
    engine.kernels = wasm;
  } else {
    engine.kernels = engine.refKernels;
  }
}

export function getBackend(): { name: 'wasm' | 'ref'; threads: number } {
  return { name: engine.kernels.name, threads: engine.kernels === wasm ? wasm.threads : 1 };
}

/** Stop the worker threads so that the process can exit. */
export async function shutdown(): Promise<void> {
  if (wasm) await wasm.dispose();
  wasm = null;
  engine.kernels = engine.refKernels;
}
