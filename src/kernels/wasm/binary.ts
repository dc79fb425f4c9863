// The binary (XNOR-popcount) kernels of IntKernels on the WebAssembly module (assembly/binary.ts): argument
// marshalling and the split into job units. Layouts (bits, packed weights) are those of the reference,
// src/kernels/ref/binary.ts, which the tests hold these to bit for bit.

import type { EngineMemory } from '../memory.js';
import type { WasmBackend } from './backend.js';
import type { ConvGeometry, IntEpilogue, IntKernels } from '../types.js';
import { Job } from './abi.js';
import { BINARY_CB, binaryPackedWeightBytes, checkBinaryGeometry } from '../ref/binary.js';

export type BinaryKernels = Pick<IntKernels, 'binarizePack' | 'binaryPackedWeightBytes' | 'binaryPackWeights' | 'convBinary'>;

// Epilogue codes and argument slots: assembly/binary.ts (EP_*, B_*).
const EP_FLOAT = 0, EP_INT32 = 1, EP_BITS = 2, EP_REQUANT = 3;
/** Word operations (xor + popcount of one u64) per job unit: ~30-50 us of work. */
const GRAIN_WORD_OPS = 1 << 16;
/** f32 elements binarized per unit. */
const GRAIN_ELEMENTS = 1 << 16;

function epilogueArgs(ep: IntEpilogue): number[] {
  // [kind, p1, p2, p3, lo, hi, zeroPoint]
  switch (ep.kind) {
    case 'float': return [EP_FLOAT, ep.scale, ep.offset, 0, ep.lo, ep.hi, 0];
    case 'bits': return [EP_BITS, ep.scale, ep.offset, 0, 0, 0, 0];
    case 'int32': return [EP_INT32, 0, 0, 0, 0, 0, 0];
    case 'requant': return [EP_REQUANT, ep.bias, ep.multiplier, ep.shift, ep.lo, ep.hi, ep.zeroPoint];
    default: throw new Error(`lowbit: convBinary: unknown epilogue '${(ep as { kind: string }).kind}'`);
  }
}

export function createWasmBinaryKernels(be: WasmBackend, mem: EngineMemory): BinaryKernels {
  const scratchBytes = be.ex.scratchBytes();
  return {
    binarizePack(x, n, c, h, w, y, opts = {}) {
      const rows = n * h;
      if (rows * w * c === 0) {
        if (rows * w > 0) mem.u8.fill(0, y, y + rows * w * Math.ceil(c / 64) * 8);
        if (opts.absMean && rows * w > 0) mem.f32.fill(NaN, opts.absMean >>> 2, (opts.absMean >>> 2) + rows * w); // 0 / 0, as the reference
        return;
      }
      be.args(x, n, c, h, w, y, opts.norm?.scale ?? 0, opts.norm?.shift ?? 0, opts.absMean ?? 0);
      be.run(Job.BinarizePack, Math.min(rows, be.units(rows * w * c, GRAIN_ELEMENTS)));
    },
    binaryPackedWeightBytes: (g) => binaryPackedWeightBytes(g),
    binaryPackWeights(g, w, dst) {
      checkBinaryGeometry(g);
      const blocks = Math.ceil(g.outC / BINARY_CB);
      if (blocks === 0 || g.kH * g.kW === 0) return;
      be.args(w, dst, g.outC, g.inC, g.kH * g.kW);
      be.run(Job.BinaryPackWeights, Math.min(blocks, be.units(g.outC * g.inC * g.kH * g.kW, GRAIN_ELEMENTS)));
    },
    convBinary(g: ConvGeometry, x, w, ep, y) {
      checkBinaryGeometry(g);
      const rows = g.n * g.outH;
      if (rows * g.outW * g.outC === 0) return;
      const words = Math.ceil(g.inC / 64), taps = g.kH * g.kW;
      const blocks = Math.ceil(g.outC / BINARY_CB);
      const scratch = taps * words * 4 + 2 * blocks * BINARY_CB * 4 + 192; // see binaryConvRows
      if (scratch > scratchBytes) throw new Error(`lowbit: convBinary: kernel too large (${taps} taps x ${words} words)`);
      be.args(
        g.n, g.inC, g.inH, g.inW, g.outC, g.kH, g.kW, g.strideH, g.strideW, g.padTop, g.padLeft, g.dilationH, g.dilationW,
        g.outH, g.outW, x, w, y, ...epilogueArgs(ep),
        ep.kind === 'float' ? ep.pixelScale ?? 0 : 0, ep.kind === 'float' ? ep.bias ?? 0 : 0,
        ep.kind === 'float' ? ep.post?.scale ?? 0 : 0, ep.kind === 'float' ? ep.post?.shift ?? 0 : 0, ep.kind === 'float' && ep.post?.relu ? 1 : 0,
        ep.kind === 'float' ? ep.post?.residual ?? 0 : 0,
      );
      const work = rows * g.outW * blocks * BINARY_CB * taps * words;
      be.run(Job.ConvBinary, Math.min(rows, be.units(work, GRAIN_WORD_OPS)));
    },
  };
}
