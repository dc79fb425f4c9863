// The hardware cost model of `lowbit compare`: model size when packed, bit operations, energy per image and the
// silicon area of one multiply-accumulate unit, from one cited 45 nm table. Everything is an estimate of an
// idealized accelerator; docs/cost-model.md explains each rule and its limits.
//
// Source: M. Horowitz, "1.1 Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm,
// 0.9 V (the energy table; the area table is from the same talk's slides, reproduced e.g. in Dally's NeurIPS
// 2015 tutorial "High-Performance Hardware for Machine Learning"):
//
//   operation          energy (pJ)   area (um^2)
//   8-bit int add      0.03          36
//   32-bit int add     0.1           137
//   16-bit float add   0.4           1360
//   32-bit float add   0.9           4184
//   8-bit int mult     0.2           282
//   32-bit int mult    3.1           3495
//   16-bit float mult  1.1           1640
//   32-bit float mult  3.7           7700
//   SRAM read, 64 bits: 10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB);   DRAM, 64 bits: 1.3-2.6 nJ
//
// Other widths: each quantity q is fitted as a power law q(n) = q(n0) (n / n0)^p through its two table points
// (n0 = 8 and 32 bits for integers, 16 and 32 for floats) and extrapolated. The fitted exponents: int mult
// energy p = 1.98 (quadratic, as an array multiplier's n^2 partial products), int add energy 0.87 (about
// linear), float mult energy 1.75, float add energy 1.17; areas 1.82, 0.96, 2.23, 1.62. A wb x ab multiplier
// is costed at n = sqrt(wb ab) (its partial products scale with wb ab).
//
// Multiply-accumulate per weight/activation datatype pair (w, a):
//   int x int           multiplier(sqrt(wb ab)) + integer adder of the accumulator width
//                       acc = min(32, wb + ab + ceil(log2 fanIn)) (fixed point and dfp count as integers)
//   binary x binary     XNOR + popcount: multiplier(1) (an XNOR-sized gate) + a 1-bit adder per MAC (the popcount
//                       tree has about one full adder per input bit)
//   +-1 / ternary x int      no multiplier: an adder of the accumulator width; ternary zeros are skipped
//   +-1 / ternary x float    a 32-bit float add (zeros skipped), the scale alpha applied once per output
//   power of two x int       a shift (costed as an adder of the activation width) + the accumulator adder
//   power of two x float     an 8-bit exponent add + a 32-bit float add
//   log x log                an exponent add (max(wb, ab) bits) + the accumulator adder
//   float x float       float multiplier of max(wb, ab) bits + 32-bit float accumulator (FP8/FP16 units
//                       accumulate in FP32); k-means weights are float codebook values: 32-bit
//   any other mix       the wider side decides: float if either side is float (32-bit MAC), else integer
//
// Energy per image = sum over layers MACs x E_MAC + weight traffic + activation traffic:
//   weights       every packed weight, scale and bias read once per image from the smallest SRAM of the table
//                 that holds the whole packed model (8 KB, 32 KB, 1 MB), or DRAM (1.95 nJ / 64 bits, the middle of
//                 1.3-2.6 nJ) when it does not fit
//   activations   each layer's input read once and output written once, at the activation datatype's width, from
//                 an SRAM sized to the largest layer's input + output (reuse inside a layer is assumed to come
//                 from registers: a lower bound)
// BOPs = sum over layers MACs x weight bits x activation bits (32 for float), as in Baskin et al. 2018 / van
// Baalen et al. 2020.

import type { LayerScheme, RoleSpec } from './spec.js';

/** Horowitz, ISSCC 2014, 45 nm: [bits, energy pJ, area um^2] at two widths per operation. */
export const HOROWITZ_45NM = {
  intAdd: [[8, 0.03, 36], [32, 0.1, 137]],
  intMult: [[8, 0.2, 282], [32, 3.1, 3495]],
  floatAdd: [[16, 0.4, 1360], [32, 0.9, 4184]],
  floatMult: [[16, 1.1, 1640], [32, 3.7, 7700]],
  /** pJ per 64-bit read, by SRAM size in bytes. */
  sramRead64: [[8 * 1024, 10], [32 * 1024, 20], [1024 * 1024, 100]],
  /** pJ per 64 bits from DRAM: 1.3-2.6 nJ; lowbit uses the middle. */
  dramRead64: [1300, 2600],
} as const;

export const HOROWITZ_CITATION = "M. Horowitz, \"Computing's energy problem (and what we can do about it)\", ISSCC 2014 (45 nm)";

type Op = keyof Pick<typeof HOROWITZ_45NM, 'intAdd' | 'intMult' | 'floatAdd' | 'floatMult'>;

/** q(n) = q(n0) (n / n0)^p through the table's two points (what = 1: energy, 2: area). */
function powerLaw(op: Op, what: 1 | 2, bits: number): number {
  const [lo, hi] = HOROWITZ_45NM[op];
  const p = Math.log(hi[what] / lo[what]) / Math.log(hi[0] / lo[0]);
  return lo[what] * (bits / lo[0]) ** p;
}

/** Energy in pJ of one operation of `bits` bits. */
export function opEnergy(op: Op, bits: number): number {
  return powerLaw(op, 1, bits);
}

/** Area in um^2 of one operator of `bits` bits. */
export function opArea(op: Op, bits: number): number {
  return powerLaw(op, 2, bits);
}

/** The exponent p of an operation's power-law fit. */
export function fitExponent(op: Op, what: 'energy' | 'area'): number {
  const [lo, hi] = HOROWITZ_45NM[op], i = what === 'energy' ? 1 : 2;
  return Math.log(hi[i] / lo[i]) / Math.log(hi[0] / lo[0]);
}

/** What a datatype is to the arithmetic. */
export type NumberClass = 'float' | 'int' | 'sign' | 'ternary' | 'pow2' | 'log' | 'codebook';

export interface Datatype {
  cls: NumberClass;
  bits: number;
}

/** The arithmetic class and width of a role's datatype (fp32 when null). */
export function classify(r: RoleSpec | null): Datatype {
  if (!r) return { cls: 'float', bits: 32 };
  const bits = r.create().bits;
  const s = r.spec;
  switch (r.technique) {
    case 'affine': case 'fixed': return { cls: 'int', bits };
    case 'minifloat': return { cls: 'float', bits };
    case 'log2': return { cls: s.startsWith('log2') ? 'log' : 'pow2', bits };
    case 'binary': return { cls: 'sign', bits: 1 };
    case 'ternary': return { cls: 'ternary', bits: 2 };
    case 'dorefa': return bits === 1 && r.role === 'weight' ? { cls: 'sign', bits: 1 } : { cls: 'int', bits };
    case 'kmeans': return { cls: 'codebook', bits };
    default: return { cls: 'float', bits: 32 };
  }
}

export interface MacCost {
  /** pJ per multiply-accumulate. */
  energy: number;
  /** um^2 of one MAC unit. */
  area: number;
  /** How it is computed, for the report. */
  kind: string;
}

/** Accumulator width of an integer dot product of length fanIn. */
export function accumulatorBits(wb: number, ab: number, fanIn: number): number {
  return Math.min(32, wb + ab + Math.ceil(Math.log2(Math.max(2, fanIn))));
}

/** Energy and area of one multiply-accumulate of weight datatype w and activation datatype a. */
export function macCost(w: Datatype, a: Datatype, fanIn: number, density = 1): MacCost {
  const intMac = (wb: number, ab: number): MacCost => {
    const n = Math.sqrt(wb * ab), acc = accumulatorBits(wb, ab, fanIn);
    return { energy: opEnergy('intMult', n) + opEnergy('intAdd', acc), area: opArea('intMult', n) + opArea('intAdd', acc), kind: `int${wb}xint${ab} MAC, int${acc} accumulator` };
  };
  const floatMac = (bits: number): MacCost => ({
    energy: opEnergy('floatMult', bits) + opEnergy('floatAdd', 32),
    area: opArea('floatMult', bits) + opArea('floatAdd', 32),
    kind: `fp${bits} multiply, fp32 accumulate`,
  });
  const wc = w.cls, ac = a.cls;
  if ((wc === 'sign' || wc === 'ternary') && ac === 'sign') {
    return { energy: opEnergy('intMult', 1) + opEnergy('intAdd', 1), area: opArea('intMult', 1) + opArea('intAdd', 1), kind: 'XNOR + popcount' };
  }
  if (wc === 'sign' || wc === 'ternary') {
    const skip = wc === 'ternary' ? density : 1;
    if (ac === 'float') return { energy: skip * opEnergy('floatAdd', 32), area: opArea('floatAdd', 32), kind: `${wc === 'ternary' ? 'ternary' : 'binary'} weights: fp32 add/subtract${wc === 'ternary' ? ', zeros skipped' : ''}` };
    const acc = accumulatorBits(w.bits, a.bits, fanIn);
    return { energy: skip * opEnergy('intAdd', acc), area: opArea('intAdd', acc), kind: `${wc === 'ternary' ? 'ternary' : 'binary'} weights: int${acc} add/subtract` };
  }
  if (wc === 'pow2' || (wc === 'log' && ac !== 'log')) {
    if (ac === 'float') return { energy: opEnergy('intAdd', 8) + opEnergy('floatAdd', 32), area: opArea('intAdd', 8) + opArea('floatAdd', 32), kind: 'power-of-two weights: exponent add + fp32 add' };
    const acc = accumulatorBits(w.bits, a.bits, fanIn);
    return { energy: opEnergy('intAdd', a.bits) + opEnergy('intAdd', acc), area: opArea('intAdd', a.bits) + opArea('intAdd', acc), kind: `power-of-two weights: shift + int${acc} add` };
  }
  if (wc === 'log' && ac === 'log') {
    const e = Math.max(w.bits, a.bits);
    return { energy: opEnergy('intAdd', e) + opEnergy('intAdd', 32), area: opArea('intAdd', e) + opArea('intAdd', 32), kind: 'log x log: exponent add + int32 add' };
  }
  if (wc === 'codebook' || wc === 'float' || ac === 'float' || ac === 'log' || ac === 'pow2') {
    const bits = wc === 'float' && ac === 'float' ? Math.max(w.bits, a.bits) : 32;
    return floatMac(bits);
  }
  return intMac(w.bits, a.bits);
}

/** pJ per 64-bit access of a memory holding `bytes` bytes (the smallest table SRAM that fits, else DRAM). */
export function accessEnergy64(bytes: number): { pJ: number; level: string } {
  for (const [size, pJ] of HOROWITZ_45NM.sramRead64) if (bytes <= size) return { pJ, level: `SRAM ${size >= 1024 * 1024 ? size / 1024 / 1024 + ' MB' : size / 1024 + ' KB'}` };
  const [lo, hi] = HOROWITZ_45NM.dramRead64;
  return { pJ: (lo + hi) / 2, level: 'DRAM' };
}

/** One conv/linear layer as the cost model sees it. */
export interface LayerCostInput {
  name: string;
  macs: number;
  /** Weight elements. */
  params: number;
  outChannels: number;
  fanIn: number;
  biases: number;
  /** Input and output elements per image. */
  inputElements: number;
  outputElements: number;
  scheme: LayerScheme;
  /** Fraction of non-zero quantized weights (ternary zero skipping); 1 if unknown. */
  density?: number;
  /** Extra f32 numbers the layer needs at inference (an input batch norm's scale and shift, a gain). */
  extraFloats?: number;
}

/** Bytes of the shared parameters of a layer's quantizers, as they would be stored beside the codes. */
export function parameterBytes(scheme: LayerScheme, outChannels: number): number {
  let bytes = 0;
  const w = scheme.weight, a = scheme.activation;
  if (w) {
    const s = w.spec;
    const perChannel = s.includes('per-channel');
    if (w.technique === 'affine') bytes += 4 * (perChannel ? outChannels : 1);
    else if (s.startsWith('dfp') || w.technique === 'log2') bytes += 1;
    else if (s.startsWith('twn')) bytes += 4 * (perChannel ? outChannels : 1);
    else if (s.startsWith('ttq')) bytes += 8;
    else if (s === 'xnor' || s === 'bwn') bytes += 4 * outChannels;
    else if (s.startsWith('binary') || s === 'bnn' || s.startsWith('dorefa')) bytes += 4;
    else if (s.startsWith('kmeans')) bytes += 4 * Number(s.split(':')[1]);
  }
  if (a) {
    if (a.technique === 'affine') bytes += 4 * (a.spec.includes('per-channel') ? outChannels : 1) + 4;
    else if (a.spec.startsWith('dfp') || a.technique === 'log2') bytes += 1;
    else if (a.technique === 'dorefa') bytes += 4;
  }
  return bytes;
}

export interface LayerCost {
  name: string;
  macs: number;
  weightBits: number;
  actBits: number;
  bops: number;
  bytes: number;
  mac: MacCost;
  computePJ: number;
}

export interface CostReport {
  macs: number;
  bops: number;
  /** Packed model size: codes, parameters, biases, float layers and other float parameters. */
  bytes: number;
  fp32Bytes: number;
  compression: number;
  energy: { computePJ: number; weightsPJ: number; activationsPJ: number; totalUJ: number; weightMemory: string; activationMemory: string };
  /** Area of one MAC unit of the layer with the most MACs among the quantized ones (else the largest layer). */
  macArea: number;
  macKind: string;
  layers: LayerCost[];
}

/**
 * The cost of a model whose conv/linear layers are `layers`, plus `otherFloats` f32 parameters elsewhere
 * (unfolded batch norms: scale and shift per channel).
 */
export function modelCost(layers: readonly LayerCostInput[], otherFloats = 0): CostReport {
  const out: LayerCost[] = [];
  let bits = 0, fp32Params = otherFloats, actBitsMoved = 0, largestActivation = 0;
  for (const l of layers) {
    const w = classify(l.scheme.weight), a = classify(l.scheme.activation);
    const wBits = l.scheme.weight ? w.bits : 32, aBits = l.scheme.activation ? a.bits : 32;
    const layerBits = l.params * wBits + 8 * parameterBytes(l.scheme, l.outChannels) + 32 * (l.biases + (l.extraFloats ?? 0));
    bits += layerBits;
    fp32Params += l.params + l.biases;
    const mac = macCost(w, a, l.fanIn, l.density ?? 1);
    out.push({ name: l.name, macs: l.macs, weightBits: wBits, actBits: aBits, bops: l.macs * wBits * aBits, bytes: Math.ceil(layerBits / 8), mac, computePJ: l.macs * mac.energy });
    const moved = (l.inputElements + l.outputElements) * aBits;
    actBitsMoved += moved;
    largestActivation = Math.max(largestActivation, moved / 8);
  }
  bits += 32 * otherFloats;
  const bytes = Math.ceil(bits / 8), fp32Bytes = 4 * fp32Params;
  const wMem = accessEnergy64(bytes), aMem = accessEnergy64(largestActivation);
  const computePJ = out.reduce((s, l) => s + l.computePJ, 0);
  const weightsPJ = (bits / 64) * wMem.pJ, activationsPJ = (actBitsMoved / 64) * aMem.pJ;
  const quantized = out.filter((l, i) => layers[i].scheme.weight || layers[i].scheme.activation);
  const main = (quantized.length ? quantized : out).reduce((m, l) => (l.macs > m.macs ? l : m), (quantized.length ? quantized : out)[0]);
  return {
    macs: out.reduce((s, l) => s + l.macs, 0),
    bops: out.reduce((s, l) => s + l.bops, 0),
    bytes, fp32Bytes, compression: bytes > 0 ? fp32Bytes / bytes : 1,
    energy: { computePJ, weightsPJ, activationsPJ, totalUJ: (computePJ + weightsPJ + activationsPJ) / 1e6, weightMemory: wMem.level, activationMemory: aMem.level },
    macArea: main ? main.mac.area : 0,
    macKind: main ? main.mac.kind : '',
    layers: out,
  };
}
