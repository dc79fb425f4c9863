// Finding, compiling and instantiating build/kernels.wasm, and starting worker threads — the only part of
// the WebAssembly backend that differs between Node and a browser.

import type { KernelExports } from './abi.js';
import { relaxedVariant } from './relaxed.js';

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/** Candidate locations of the module relative to this file (dist/src/kernels/wasm/ or src/kernels/wasm/). */
function wasmUrls(): URL[] {
  return [new URL('../../../../build/kernels.wasm', import.meta.url), new URL('../../../build/kernels.wasm', import.meta.url)];
}

/** The plain SIMD module, and its relaxed-SIMD variant where the engine validates it (see relaxed.ts). */
export interface KernelModules {
  plain: WebAssembly.Module;
  relaxed: WebAssembly.Module | null;
}

const compiled = new Map<boolean, Promise<KernelModules>>();
/** Set by a browser bundle, whose import.meta.url is the bundle's, not this file's (setKernelSource). */
let kernelSource: URL | Uint8Array<ArrayBuffer> | null = null;

/** Where to get the module from instead (a browser page: its URL or its bytes). Call before init(). */
export function setKernelSource(source: string | URL | Uint8Array<ArrayBuffer>): void {
  kernelSource = source instanceof Uint8Array ? source : new URL(source, globalThis.location?.href);
  compiled.clear();
}

async function kernelBytes(): Promise<Uint8Array<ArrayBuffer>> {
  if (kernelSource instanceof Uint8Array) return kernelSource;
  const errors: string[] = [];
  for (const url of kernelSource ? [kernelSource] : wasmUrls()) {
    try {
      if (isNode && url.protocol === 'file:') {
        const fs = await import('node:fs/promises');
        const { fileURLToPath } = await import('node:url');
        return new Uint8Array(await fs.readFile(fileURLToPath(url)));
      }
      const res = await fetch(url);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      errors.push(`${url.href}: ${(e as Error).message}`);
    }
  }
  throw new Error(`lowbit: cannot load the WebAssembly kernels (run \`npm run build:wasm\`).\n  ${errors.join('\n  ')}`);
}

/**
 * The module imports a shared memory; a page that is not cross-origin isolated has no shared memory, so
 * there the same module runs with the import's shared flag cleared (atomics are valid on unshared memory;
 * only waiting traps, and one thread never waits).
 */
export function unsharedVariant(bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const out = bytes.slice();
  const leb = (p: number): [number, number] => {
    let v = 0, shift = 0, b: number;
    do { b = out[p++]; v += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80);
    return [v, p];
  };
  const skipName = (p: number) => { const [n, q] = leb(p); return q + n; };
  for (let pos = 8; pos < out.length;) {
    const [size, start] = leb(pos + 1);
    if (out[pos] === 2) { // the import section
      let [count, p] = leb(start);
      for (; count > 0; count--) {
        p = skipName(skipName(p));
        const kind = out[p++];
        if (kind === 0) [, p] = leb(p);
        else if (kind === 1) { p++; const flags = out[p++]; [, p] = leb(p); if (flags & 1) [, p] = leb(p); }
        else if (kind === 2) { const flags = out[p]; out[p++] = flags & ~2; [, p] = leb(p); if (flags & 1) [, p] = leb(p); }
        else if (kind === 3) p += 2;
        else throw new Error(`lowbit: unexpected import kind ${kind} in the kernel module`);
      }
    }
    pos = start + size;
  }
  return out;
}

/** The compiled kernel modules (compiled once per process / page) for a shared or an unshared memory. */
export function kernelModules(shared = true): Promise<KernelModules> {
  let modules = compiled.get(shared);
  if (modules) return modules;
  modules = (async () => {
    const original = await kernelBytes();
    const bytes = shared ? original : unsharedVariant(original);
    if (!WebAssembly.validate(bytes)) {
      throw new Error('lowbit: this JavaScript engine cannot run the kernels (WebAssembly SIMD128 and threads are required)');
    }
    const plain = await WebAssembly.compile(bytes);
    const variant = relaxedVariant(bytes);
    const relaxed = variant && WebAssembly.validate(variant) ? await WebAssembly.compile(variant) : null;
    return { plain, relaxed };
  })().catch((e: unknown) => {
    compiled.delete(shared);
    throw e;
  });
  compiled.set(shared, modules);
  return modules;
}

export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const instance = new WebAssembly.Instance(module, {
    env: { memory, abort: () => { throw new Error('lowbit: wasm abort'); } },
  });
  return instance.exports as unknown as KernelExports;
}

/** A started worker thread, parked in the module's workerLoop. */
export interface KernelWorker {
  /** Resolves when the thread has exited. */
  exited: Promise<void>;
  terminate(): Promise<void>;
  /** Let the thread keep the process alive again (while waiting for it to exit). */
  ref(): void;
  /** Last error reported by the thread, if any. */
  lastError: string | null;
}

/** Whether this environment can run kernel workers: shared memory plus Node worker_threads. */
export function canUseWorkers(memory: WebAssembly.Memory): boolean {
  return isNode && typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
}

/** The calling thread may block in memory.atomic.wait32 (Node: yes; a browser's main thread: no). */
export function callerCanBlock(): boolean {
  if (isNode) return true;
  return typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined';
}

export async function startWorker(module: WebAssembly.Module, memory: WebAssembly.Memory, ctrl: number, t: number, spinMicros: number): Promise<KernelWorker> {
  const { Worker } = await import('node:worker_threads');
  const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: { module, memory, ctrl, t, spinMicros } });
  const handle: KernelWorker = {
    lastError: null,
    exited: new Promise<void>((resolve) => worker.once('exit', () => resolve())),
    terminate: async () => { await worker.terminate(); },
    ref: () => worker.ref(),
  };
  await new Promise<void>((resolve, reject) => {
    const onMessage = (m: { ready?: boolean; error?: string }) => {
      if (m.ready) {
        worker.off('error', onError);
        resolve();
      }
    };
    const onError = (e: Error) => reject(e);
    worker.on('message', onMessage);
    worker.once('error', onError);
  });
  worker.on('message', (m: { error?: string }) => { if (m.error) handle.lastError = m.error; });
  worker.on('error', (e) => { handle.lastError = String(e); });
  worker.unref(); // a forgotten dispose() must not keep the process alive
  return handle;
}
