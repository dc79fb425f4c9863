// Relaxed SIMD, only where the engine has it and only after a self-test. The module is built with plain
// SIMD128; its register-tiled microkernels accumulate as `acc = add(mul(a, b), acc)`, which compiles to
//     f32x4.mul ; local.get acc ; f32x4.add
// This file derives a second module in which exactly those sequences in the microkernels' bodies become
//     local.get acc ; f32x4.relaxed_madd ; nop ; nop ; nop          (the same number of bytes)
// i.e. fused multiply-adds (x64: vfmadd231ps). Engines without relaxed SIMD (Node 20 without
// --experimental-wasm-relaxed-simd) reject the derived module in WebAssembly.validate and keep the plain
// one; where it validates, it is used only if it matches the plain module on a GEMM and convolutions.

import type { EngineMemory } from '../memory.js';
import type { ConvGeometry } from '../types.js';
import { CTRL, Job, type KernelExports } from './abi.js';
import { ConvRunner } from './conv.js';
import { WasmBackend } from './backend.js';
import { instantiate } from './loader.js';

/**
 * The microkernels: the module's exports named <family>_mk_<MR>x<NR> (assembly/index.ts), each holding
 * MR * NR / 4 multiply-adds in its body.
 */
const MICROKERNEL = /^(gemm|conv|convpx|wgrad)_mk_(\d+)x(\d+)$/;

function readLeb(b: Uint8Array, pos: number): [number, number] {
  let result = 0, shift = 0, byte: number;
  do {
    byte = b[pos++];
    result += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [result, pos];
}

function readName(b: Uint8Array, pos: number): [string, number] {
  const [len, p] = readLeb(b, pos);
  return [new TextDecoder().decode(b.subarray(p, p + len)), p + len];
}

/** The relaxed-SIMD variant of the module's bytes, or null if the expected code shapes are not found. */
export function relaxedVariant(bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> | null {
  const out = bytes.slice();
  let pos = 8;
  let importedFuncs = 0;
  const exported = new Map<string, number>();
  let codeStart = -1;
  while (pos < out.length) {
    const id = out[pos];
    const [size, contentStart] = readLeb(out, pos + 1);
    const end = contentStart + size;
    if (id === 2) {
      // imports: count the imported functions (they come first in the function index space)
      let [count, p] = readLeb(out, contentStart);
      for (; count > 0; count--) {
        [, p] = readName(out, p);
        [, p] = readName(out, p);
        const kind = out[p++];
        if (kind === 0) { [, p] = readLeb(out, p); importedFuncs++; }
        else if (kind === 1) { p++; const flags = out[p++]; [, p] = readLeb(out, p); if (flags & 1) [, p] = readLeb(out, p); }
        else if (kind === 2) { const flags = out[p++]; [, p] = readLeb(out, p); if (flags & 1) [, p] = readLeb(out, p); }
        else if (kind === 3) { p += 2; }
        else return null;
      }
    } else if (id === 7) {
      let [count, p] = readLeb(out, contentStart);
      for (; count > 0; count--) {
        let name: string;
        [name, p] = readName(out, p);
        const kind = out[p++];
        let index: number;
        [index, p] = readLeb(out, p);
        if (kind === 0) exported.set(name, index);
      }
    } else if (id === 10) {
      codeStart = contentStart;
    }
    pos = end;
  }
  if (codeStart < 0) return null;
  // function body ranges
  const targets = new Map<number, number>(); // function index -> multiply-adds
  for (const [name, index] of exported) {
    const m = MICROKERNEL.exec(name);
    if (m) targets.set(index - importedFuncs, (Number(m[2]) * Number(m[3])) / 4);
  }
  if (targets.size === 0) return null;
  let [count, p] = readLeb(out, codeStart);
  let found = 0;
  for (let i = 0; i < count; i++) {
    const [size, bodyStart] = readLeb(out, p);
    const bodyEnd = bodyStart + size;
    const madds = targets.get(i);
    if (madds !== undefined) {
      let replaced = 0;
      for (let q = bodyStart; q + 8 <= bodyEnd; q++) {
        // f32x4.mul (FD E6 01) ; local.get x (20 x, x < 128) ; f32x4.add (FD E4 01)
        if (out[q] === 0xfd && out[q + 1] === 0xe6 && out[q + 2] === 0x01 && out[q + 3] === 0x20 && out[q + 4] < 0x80 &&
          out[q + 5] === 0xfd && out[q + 6] === 0xe4 && out[q + 7] === 0x01) {
          const local = out[q + 4];
          out.set([0x20, local, 0xfd, 0x85, 0x02, 0x01, 0x01, 0x01], q); // local.get x ; f32x4.relaxed_madd ; nop x3
          replaced++;
          q += 7;
        }
      }
      if (replaced !== madds) return null;
      found++;
    }
    p = bodyEnd;
  }
  return found === targets.size ? out : null;
}

/**
 * Compare the relaxed module with the plain one on a GEMM, a convolution and its gradients (small odd
 * shapes): relative error <= 1e-5 of the sum of |terms|. Uses (and frees) a little engine memory.
 */
export function relaxedSelfTest(mem: EngineMemory, plain: KernelExports, relaxed: WebAssembly.Module): boolean {
  const rx = instantiate(relaxed, mem.memory);
  const allocs: number[] = [];
  const alloc = (bytes: number) => { const p = mem.alloc(bytes); allocs.push(p); return p; };
  try {
    const scratch = alloc(plain.scratchBytes());
    const makeBackend = (ex: KernelExports, fma: boolean) => {
      const ctrl = alloc(CTRL.bytes);
      mem.u8.fill(0, ctrl, ctrl + CTRL.bytes);
      mem.u32[(ctrl + CTRL.scratch) >>> 2] = scratch;
      const be = new WasmBackend(mem, ex, [], ctrl, fma);
      return { be, conv: new ConvRunner(be) };
    };
    const p = makeBackend(plain, false), r = makeBackend(rx, true);
    let seed = 12345;
    const fill = (ptr: number, n: number, abs: boolean) => {
      const f = mem.f32;
      for (let i = 0; i < n; i++) {
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        const v = (seed / 4294967296) * 2 - 1;
        f[(ptr >>> 2) + i] = abs ? Math.abs(v) : v;
      }
    };
    const close = (a: number, b: number, n: number, scale: number) => {
      const f = mem.f32;
      for (let i = 0; i < n; i++) {
        if (!(Math.abs(f[(a >>> 2) + i] - f[(b >>> 2) + i]) <= 1e-5 * f[(scale >>> 2) + i] + 1e-30)) return false;
      }
      return true;
    };
    // GEMM 37 x 45 x 67 (odd edges, both panels partial)
    const m = 37, n = 45, k = 67;
    const a = alloc(m * k * 4), b = alloc(k * n * 4), c1 = alloc(m * n * 4), c2 = alloc(m * n * 4), cs = alloc(m * n * 4);
    const gemm = (be: WasmBackend, c: number) => {
      be.args(0, 0, m, n, k, a, k, b, n, c, n, 0);
      be.run(Job.Gemm, 1);
    };
    fill(a, m * k, true); fill(b, k * n, true);
    gemm(p.be, cs);
    seed = 12345;
    fill(a, m * k, false); fill(b, k * n, false);
    gemm(p.be, c1);
    gemm(r.be, c2);
    if (!close(c1, c2, m * n, cs)) return false;
    // convolutions 6 -> 9 channels on 7 x 10 (direct) and 9 -> 9 on 8 x 16 (Winograd F(4x4, 3x3) forward,
    // F(3x3, 2x2) weight gradient), 3x3, pad 1, batch 2, and their gradients
    for (const [inC, H, W] of [[6, 7, 10], [9, 8, 16]]) {
      const g: ConvGeometry = {
        n: 2, inC, inH: H, inW: W, outC: 9, kH: 3, kW: 3, strideH: 1, strideW: 1, padTop: 1, padLeft: 1, padBottom: 1,
        padRight: 1, dilationH: 1, dilationW: 1, groups: 1, outH: H, outW: W,
      };
      const xs = 2 * inC * H * W, ws = 9 * inC * 9, ys = 2 * 9 * H * W;
      const x = alloc(xs * 4), w = alloc(ws * 4), dy = alloc(ys * 4);
      const o1 = alloc(Math.max(xs, ys, ws) * 4), o2 = alloc(Math.max(xs, ys, ws) * 4), os = alloc(Math.max(xs, ys, ws) * 4);
      const cases: [number, (c: ConvRunner, out: number) => void][] = [
        [ys, (cv, out) => cv.forward(g, x, w, 0, out)],
        [xs, (cv, out) => cv.backwardInput(g, dy, w, out)],
        [ws, (cv, out) => cv.backwardWeight(g, x, dy, out)],
      ];
      for (const [len, op] of cases) {
        seed = 777;
        fill(x, xs, true); fill(w, ws, true); fill(dy, ys, true);
        op(p.conv, os);
        seed = 777;
        fill(x, xs, false); fill(w, ws, false); fill(dy, ys, false);
        op(p.conv, o1);
        op(r.conv, o2);
        if (!close(o1, o2, len, os)) return false;
      }
    }
    return true;
  } catch {
    return false;
  } finally {
    for (const ptr of allocs) mem.free(ptr);
  }
}
