// Bindings of the int8 kernels (the loops are in assembly/int8.ts, whose header explains the layout):
// argument slots, buffer sizes and the split of each job into units for the threads.
//   convInt8:  Int8Prep (the zero-point-shifted, padded, channel-paired i16 input; pair-tap offsets) then
//              Int8Conv (tiles of 8 output pixels, every output channel, the epilogue fused), or, where
//              ref/int8.ts int8WinogradApplies, Int8Prep then Int8Winograd4 (exact integer F(4x4, 3x3) up to 128
//              input channels from 16 output columns on, assembly/int8-winograd4.ts) or Int8Winograd (F(2x2, 3x3),
//              assembly/int8-winograd.ts): bands of tile rows, weights transformed per band, the epilogue
//              fused; the next path if a band of one tile row exceeds the scratch. The 'bits'
//              epilogue runs as int32 accumulators followed by requantize.
//   the rest:  one job each, split over planes or elements.

import type { EngineMemory, Ptr } from '../memory.js';
import type { ConvGeometry, IntEpilogue, PoolGeometry, WeightBits } from '../types.js';
import { Job } from './abi.js';
import type { WasmBackend } from './backend.js';
import { checkAddArgs, checkConvGeometry, checkWeightBits, checkZero, int8Layout, int8Winograd4Applies, type Int8Kernels } from '../ref/int8.js';

export type { Int8Kernels };

/** Multiply-adds per unit of the convolution (~50 us on one thread). */
const GRAIN_MACS = 1 << 21;
/** Elements per unit of the elementwise jobs. */
const GRAIN_ELEMENTS = 1 << 15;
/** Output pixels per tile (assembly/int8.ts I8_NR) and scratch bytes before the panel. */
const NR = 8;
const PANEL_AT = 1024;

const KIND = { requant: 0, float: 1, int32: 2, bits: 3 } as const;

/** Bytes of transformed input (V, (m + 2)^2 x tiles x pairs x 4) a Winograd band aims at (L2-resident). */
const WINOGRAD_V_BYTES = 1 << 18;

/**
 * Thread scratch of a unit of the Winograd F(m x m, 3x3) (assembly/int8-winograd.ts: V, M, the band's
 * accumulators O, U' for X = (m + 2)^2 planes, and 36 vectors of F(4x4)'s transforms).
 */
function winogradScratchBytes(R: number, outW: number, pairs: number, m: 2 | 4): number {
  const X = (m + 2) * (m + 2);
  const TW4 = Math.ceil(Math.ceil(outW / m) / 4) * 4;
  const panels = Math.ceil((R * TW4) / 8);
  return X * (panels * pairs * 32 + 64) + X * (4 * panels * 32 + 64) + 4 * m * R * outW * 4 + X * (pairs * 16 + 64) + 36 * 16;
}

/** How many int8 convolutions took each path (tests check that the Winograd paths really run). */
export const int8ConvPaths = { winograd4: 0, winograd: 0, direct: 0 };

/** Bit pattern of a number rounded to f32 (the float clamp travels through the i32 array). */
function f32Bits(v: number): number {
  const f = new Float32Array([v]);
  return new Int32Array(f.buffer)[0];
}

/** The epilogue as the i32 array of assembly/int8.ts (E_* slots). */
function epilogueInts(ep: IntEpilogue): number[] {
  const a = new Array<number>(12).fill(0);
  a[0] = KIND[ep.kind];
  if (ep.kind === 'requant') {
    a[1] = ep.out === 'i8' ? 1 : 0;
    a[2] = ep.bias | 0; a[3] = ep.multiplier | 0; a[4] = ep.shift | 0;
    for (const [i, v] of [[7, ep.zeroPoint], [8, ep.lo], [9, ep.hi]] as const) {
      if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) throw new RangeError(`lowbit: requant zero point and clamp must be int32, got ${v}`);
      a[i] = v;
    }
  } else if (ep.kind === 'float') {
    a[5] = ep.scale | 0; a[6] = ep.offset | 0;
    a[10] = f32Bits(ep.lo); a[11] = f32Bits(ep.hi);
  } else if (ep.kind === 'bits') {
    a[5] = ep.scale | 0; a[6] = ep.offset | 0;
  }
  return a;
}

export function createWasmInt8Kernels(be: WasmBackend, mem: EngineMemory): Int8Kernels {
  const scratchBytes = be.ex.scratchBytes();

  /** Rows and columns of each phase of the padded input (as in the float convolution, wasm/conv.ts). */
  function padded(g: ConvGeometry): { Hp: number; Wq: number } {
    const sW = g.strideW;
    const rowsNeeded = (g.outH - 1) * g.strideH + (g.kH - 1) * g.dilationH + 1;
    const Hp = Math.max(1, g.inH + g.padTop + g.padBottom, rowsNeeded);
    const colsNeeded = g.outW + Math.floor(((g.kW - 1) * g.dilationW) / sW);
    const Wq = Math.max(1, Math.ceil((g.inW + g.padLeft + g.padRight) / sW), colsNeeded);
    return { Hp, Wq };
  }

  function writeGeometry(g: ConvGeometry, Hp: number, Wq: number): void {
    be.args(g.n, g.inC, g.inH, g.inW, g.outC, g.kH, g.kW, g.strideH, g.strideW, g.padTop, g.padLeft, g.dilationH, g.dilationW,
      g.groups, g.outH, g.outW, Hp, Wq);
  }

  function requantize(acc: Ptr, n: number, c: number, hw: number, ep: IntEpilogue, y: Ptr): void {
    if (n * c * hw === 0) return;
    be.ints(epilogueInts(ep));
    be.args(acc, n, c, hw, y);
    const items = ep.kind === 'bits' ? n * hw : n * c;
    be.run(Job.Int8Requantize, Math.min(items, be.units(n * c * hw, GRAIN_ELEMENTS / 4)));
  }

  function convInt8(g: ConvGeometry, x: Ptr, xType: 'u8' | 'i8', xZero: number, w: Ptr, ep: IntEpilogue, y: Ptr, bits: WeightBits = 8): void {
    checkConvGeometry(g, 'convInt8');
    checkZero(xType, xZero, 'convInt8');
    const P = g.outH * g.outW;
    if (g.n * g.outC * P === 0) return;
    const layout = int8Layout(g);
    const { pairs, K2 } = layout;
    if (ep.kind === 'bits' || K2 === 0) {
      // bits: int32 accumulators, then binarize them; no taps: every accumulator is 0
      const acc = mem.alloc(g.n * g.outC * P * 4);
      try {
        if (K2 === 0) mem.i32.fill(0, acc >>> 2, (acc >>> 2) + g.n * g.outC * P);
        else convInt8(g, x, xType, xZero, w, { kind: 'int32' }, acc, bits);
        requantize(acc, g.n, g.outC, P, ep, y);
      } finally {
        mem.free(acc);
      }
      return;
    }
    if (bits !== 8 && bits !== 4 && bits !== 2) throw new RangeError(`lowbit: convInt8: weight bits must be 8, 4 or 2, got ${bits}`);
    if (layout.winograd && int8Winograd4Applies(g) && winograd(g, x, xType, xZero, w, ep, y, bits, 4)) {
      int8ConvPaths.winograd4++;
      return;
    }
    if (layout.winograd && winograd(g, x, xType, xZero, w, ep, y, bits, 2)) {
      int8ConvPaths.winograd++;
      return;
    }
    int8ConvPaths.direct++;
    directConv(g, x, xType, xZero, w, ep, y, K2, pairs, bits);
  }

  /** The direct kernel (w in the direct layout). */
  function directConv(g: ConvGeometry, x: Ptr, xType: 'u8' | 'i8', xZero: number, w: Ptr, ep: IntEpilogue, y: Ptr, K2: number, pairs: number, bits: WeightBits): void {
    const P = g.outH * g.outW;
    if (PANEL_AT + K2 * 16 + K2 * NR * 4 > scratchBytes) // the widened block and one panel (assembly/int8.ts convTiles)
      throw new RangeError(`lowbit: convInt8: ${K2 * 2} input channel taps per output exceed the kernel's scratch buffer`);
    const { Hp, Wq } = padded(g);
    const planes = g.n * g.groups * pairs;
    const xq = mem.alloc(planes * g.strideW * Hp * Wq * 4);
    const offs = mem.alloc(K2 * 4);
    try {
      writeGeometry(g, Hp, Wq);
      be.setArg(18, x);
      be.setArg(19, xq);
      be.setArg(20, w);
      be.setArg(21, offs);
      be.setArg(22, y);
      be.setArg(23, xType === 'i8' ? 1 : 0);
      be.setArg(24, xZero);
      be.setArg(28, bits);
      be.ints(epilogueInts(ep));
      be.run(Job.Int8Prep, Math.min(planes, be.units(planes * g.strideW * Hp * Wq, GRAIN_ELEMENTS)));
      const tiles = g.groups * Math.ceil((g.n * P) / NR);
      const macs = g.n * P * g.outC * K2 * 2;
      be.run(Job.Int8Conv, Math.min(tiles, be.units(macs, GRAIN_MACS)));
    } finally {
      mem.free(xq);
      mem.free(offs);
    }
  }

  /**
   * convInt8 by the exact integer Winograd F(m x m, 3x3), m = 2 or 4, with the packed weights at u (transformed
   * as it goes); false (nothing done) when a band of one tile row does not fit the thread scratch.
   */
  function winograd(g: ConvGeometry, x: Ptr, xType: 'u8' | 'i8', xZero: number, u: Ptr, ep: IntEpilogue, y: Ptr, bits: WeightBits, m: 2 | 4): boolean {
    const pairs = Math.ceil(g.inC / 2), blocks = Math.ceil(g.outC / 4);
    const TH = Math.ceil(g.outH / m), TW4 = Math.ceil(Math.ceil(g.outW / m) / 4) * 4;
    const xi = (m + 2) * (m + 2); // transformed planes
    // bands of R tile rows: V about WINOGRAD_V_BYTES, the rows shared out evenly
    let R = Math.max(1, Math.min(TH, Math.floor(WINOGRAD_V_BYTES / (4 * xi * pairs * TW4))));
    R = Math.ceil(TH / Math.ceil(TH / R));
    while (R > 1 && winogradScratchBytes(R, g.outW, pairs, m) > scratchBytes) R--;
    if (winogradScratchBytes(R, g.outW, pairs, m) > scratchBytes) return false;
    const bands = g.n * Math.ceil(TH / R);
    // with threads: enough units to share out evenly, splitting the output channels if the bands are few
    let S = 1;
    if (be.nt > 1) while (bands * S < 4 * be.nt && 2 * S <= blocks) S *= 2;
    const p = padded(g);
    // whole (m + 2) x (m + 2) windows; F(4x4) reads 5 vectors (20 columns) per 4 tiles
    const Hp = Math.max(p.Hp, m * TH + 2), Wq = Math.max(p.Wq, m * TW4 + m);
    const planes = g.n * pairs;
    const xq = mem.alloc(planes * Hp * Wq * 4);
    try {
      writeGeometry(g, Hp, Wq);
      be.setArg(18, x);
      be.setArg(19, xq);
      be.setArg(20, u);
      be.setArg(21, 0); // no pair-tap offsets
      be.setArg(22, y);
      be.setArg(23, xType === 'i8' ? 1 : 0);
      be.setArg(24, xZero);
      be.setArg(25, R);
      be.setArg(26, S);
      be.setArg(27, bands * S);
      be.setArg(28, bits);
      be.ints(epilogueInts(ep));
      be.run(Job.Int8Prep, Math.min(planes, be.units(planes * Hp * Wq, GRAIN_ELEMENTS)));
      const macs = g.n * TH * TW4 * xi * pairs * 2 * blocks * 4;
      be.run(m === 4 ? Job.Int8Winograd4 : Job.Int8Winograd, Math.min(bands * S, be.units(macs, GRAIN_MACS)));
    } finally {
      mem.free(xq);
    }
    return true;
  }

  return {
    int8PackedWeightBytes(g, bits = 8) {
      checkConvGeometry(g, 'int8PackedWeightBytes');
      return int8Layout(g, bits).bytes;
    },

    int8PackWeights(g, w, dst, bits = 8) {
      checkConvGeometry(g, 'int8PackWeights');
      const { blocks, bytes } = int8Layout(g, bits);
      checkWeightBits(mem, w, g.outC * (g.inC / g.groups) * g.kH * g.kW, bits, 'int8PackWeights');
      if (bytes === 0) return;
      writeGeometry(g, 0, 0);
      be.setArg(18, w);
      be.setArg(20, dst);
      be.setArg(28, bits);
      be.run(Job.Int8PackWeights, Math.min(g.groups * blocks, be.units(bytes / 2, GRAIN_ELEMENTS)));
    },

    convInt8,
    requantize,

    sumPlanesInt8(x, xType, xZero, planes, hw, acc) {
      if (planes === 0) return;
      if (!Number.isInteger(xZero) || Math.abs(xZero) >= 2 ** 31) throw new RangeError(`lowbit: sumPlanesInt8: zero point ${xZero} is not an int32`);
      be.args(x, xType === 'i8' ? 1 : 0, xZero, planes, hw, acc);
      be.run(Job.Int8SumPlanes, Math.min(planes, be.units(planes * hw, GRAIN_ELEMENTS * 4)));
    },

    maxPoolInt8(g: PoolGeometry, x, xType, y) {
      if (g.planes * g.outH * g.outW === 0) return;
      be.args(x, y, xType === 'i8' ? 1 : 0, g.planes, g.inH, g.inW, g.kH, g.kW, g.strideH, g.strideW, g.padTop, g.padLeft,
        g.dilationH, g.dilationW, g.outH, g.outW);
      be.run(Job.Int8MaxPool, Math.min(g.planes, be.units(g.planes * g.outH * g.outW * g.kH * g.kW, GRAIN_ELEMENTS * 4)));
    },

    addInt8(n, a, aType, aZero, aMultiplier, b, bType, bZero, bMultiplier, shift, yZero, lo, hi, y, yType) {
      checkAddArgs(aZero, bZero, aMultiplier, bMultiplier, shift);
      for (const v of [yZero, lo, hi])
        if (!Number.isInteger(v) || Math.abs(v) >= 2 ** 31) throw new RangeError(`lowbit: addInt8: zero point and clamp must be int32, got ${v}`);
      if (n === 0) return;
      void yType; // i8 and u8 codes are both the low byte of the clamped result
      be.args(n, a, aType === 'i8' ? 1 : 0, aZero, aMultiplier, b, bType === 'i8' ? 1 : 0, bZero, bMultiplier, shift, yZero, lo, hi, y);
      be.run(Job.Int8Add, be.units(n, GRAIN_ELEMENTS));
    },
  };
}
