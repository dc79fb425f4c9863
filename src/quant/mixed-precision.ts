// Mixed precision: one weight bit width per layer, chosen under a model-size budget (a fraction of the FP32
// size), written as an ordinary spec ("a=int8;conv1:w=int6;fc1:w=int3;...") that the user can edit and reuse.
//
// Two allocators, both spending bits against the same measurement (sensitivity.ts, weightNoiseTable): the
// network output's noise-to-signal ratio D_i(b) when layer i's weights alone are rounded to b bits.
//   lin     Lin, Talathi & Annapureddy 2016's closed form (lin-allocation.ts): D_i(b) fitted as
//           s_i 10^(-kappa b / 10), then beta_i = c + (10/kappa) log10(s_i / rho_i)
//   greedy  start with every layer at the widest width; repeatedly take one bit from the layer whose step
//           down adds the least output noise per byte saved, until the model fits; then spend the bytes the
//           last step freed on the steps up that remove the most noise per byte and still fit. Assumes, like
//           Lin et al., that the layers' output noise adds up.
//
// Sizes are the cost model's packed bytes (cost.ts): codes at their width plus scales, biases and anything
// kept in float; the allocation's size is computed exactly, never above the budget. Activations keep one
// datatype for the whole network (default int8): the budget is a model-size budget, and activations are not
// stored in the model.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { LowbitError, UsageError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import type { Batch } from '../train/trainer.js';
import { modelCost } from './cost.js';
import { costInputs, costOf, weightsDigest } from './compare.js';
import { traceModel, quantizableLayers } from './graph.js';
import { linAllocate, fitNoiseModel } from './lin-allocation.js';
import type { CalibrationMethod } from './observers.js';
import { quantizePostTraining } from './ptq.js';
import { disposeQuantized, type ModelSource } from './quantized.js';
import { weightNoiseTable, weightDatatype, type WeightNoiseTable } from './sensitivity.js';
import { parseDatatype, parseSpec } from './spec.js';

export const ALLOCATORS = ['greedy', 'lin'] as const;
export type Allocator = (typeof ALLOCATORS)[number];
export const DEFAULT_BITS: readonly number[] = [2, 3, 4, 5, 6, 7, 8];

export interface MixedOptions {
  /** Largest packed size as a fraction of the FP32 model's (0 < budget <= 1). */
  budget: number;
  allocator: Allocator;
  /** Allowed weight bit widths (default 2..8). */
  bits?: readonly number[];
  /** Activation datatype of every layer (default int8). */
  act?: string;
  perChannel?: boolean;
  /** Images of the measurement batch (default 128). */
  samples?: number;
  method?: CalibrationMethod;
  seed?: number;
  log?: (line: string) => void;
}

export interface MixedLayer {
  name: string;
  params: number;
  bits: number;
  /** Measured output noise-to-signal ratio with this layer alone at its bits. */
  noise: number;
}

export interface MixedAllocation {
  allocator: Allocator;
  budget: number;
  /** The chosen spec, in the spec language. */
  spec: string;
  layers: MixedLayer[];
  bytes: number;
  budget_bytes: number;
  fp32_bytes: number;
  /** Parameter-weighted mean weight bits. */
  mean_weight_bits: number;
  /** Predicted output SQNR (dB) if the layers' noise adds up: -10 log10(sum of the layers' noise). */
  predicted_sqnr_db: number;
  /** Lin et al.: the fitted dB per bit. */
  kappa?: number;
}

/** "a=int8;conv1:w=int6;fc:w=int3" */
export function mixedSpecText(names: readonly string[], bits: readonly number[], act = 'int8', perChannel = false): string {
  return [`a=${act}`, ...names.map((n, i) => `${n}:w=${weightDatatype(bits[i], perChannel)}`)].join(';');
}

/**
 * The packed size in bytes of every allocation, exactly as costOf computes it for the PTQ model of the spec:
 * `template` supplies the folded batch norms and added biases (any all-quantized PTQ of the same model).
 */
export function sizeFunction(inputs: ReturnType<typeof costInputs>, act = 'int8', perChannel = false): (bits: readonly number[]) => number {
  const a = parseDatatype(act).forRole('activation');
  const weights = new Map<number, ReturnType<ReturnType<typeof parseDatatype>['forRole']>>();
  const weight = (b: number) => {
    if (!weights.has(b)) weights.set(b, parseDatatype(weightDatatype(b, perChannel)).forRole('weight'));
    return weights.get(b)!;
  };
  return (bits) => modelCost(inputs.layers.map((l, i) => ({ ...l, scheme: { weight: weight(bits[i]), activation: a, gradient: null } })), inputs.otherFloats).bytes;
}

/** Measured noise made non-increasing in bits (a wider width never adds noise; the measurement may wobble). */
function monotoneNoise(row: readonly number[]): number[] {
  const out = [...row];
  for (let k = out.length - 2; k >= 0; k--) out[k] = Math.max(out[k], out[k + 1]);
  return out;
}

/** Greedy: every layer at the widest width, then one bit at a time from the cheapest layer until it fits. */
export function greedyAllocate(noise: readonly (readonly number[])[], bits: readonly number[], size: (bits: readonly number[]) => number, budgetBytes: number): number[] {
  const table = noise.map(monotoneNoise);
  const idx = table.map(() => bits.length - 1);
  const current = () => idx.map((k) => bits[k]);
  let bytes = size(current());
  while (bytes > budgetBytes) {
    let best = -1, bestScore = Infinity, bestBytes = bytes;
    for (let i = 0; i < idx.length; i++) {
      if (idx[i] === 0) continue;
      idx[i]--;
      const smaller = size(current());
      idx[i]++;
      const saved = bytes - smaller;
      if (saved <= 0) continue;
      const score = (table[i][idx[i] - 1] - table[i][idx[i]]) / saved;
      if (score < bestScore) [best, bestScore, bestBytes] = [i, score, smaller];
    }
    if (best < 0) {
      throw new LowbitError(`budget of ${budgetBytes} bytes is below the smallest allocation (every layer at ${bits[0]} bits: ${bytes} bytes)`);
    }
    idx[best]--;
    bytes = bestBytes;
  }
  // The last step may leave bytes unused: give them back, best noise reduction per byte first, while they fit.
  for (;;) {
    let best = -1, bestScore = 0, bestBytes = bytes;
    for (let i = 0; i < idx.length; i++) {
      if (idx[i] === bits.length - 1) continue;
      idx[i]++;
      const larger = size(current());
      idx[i]--;
      if (larger > budgetBytes) continue;
      const score = (table[i][idx[i]] - table[i][idx[i] + 1]) / Math.max(larger - bytes, 1e-9);
      if (score > bestScore) [best, bestScore, bestBytes] = [i, score, larger];
    }
    if (best < 0) return current();
    idx[best]++;
    bytes = bestBytes;
  }
}

/** Parse --bits "2-8" or "2,4,8". */
export function parseBits(text: string): number[] {
  const range = /^(\d+)-(\d+)$/.exec(text.trim());
  const list = range ? Array.from({ length: Number(range[2]) - Number(range[1]) + 1 }, (_, i) => Number(range[1]) + i) : text.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((b) => !Number.isInteger(b) || b < 2 || b > 16)) {
    throw new UsageError(`--bits: expected widths from 2 to 16 as a list (2,4,8) or a range (2-8), got "${text}"`);
  }
  return [...new Set(list)].sort((a, b) => a - b);
}

/** The first `n` images of a batch, as a new tensor. */
function firstImages(x: Tensor, n: number): Tensor {
  if (x.shape[0] <= n) return Tensor.from(x.toFloat32Array(), x.shape);
  const per = x.size / x.shape[0];
  return Tensor.from(x.toFloat32Array().subarray(0, n * per), [n, ...x.shape.slice(1)]);
}

/** What an allocation measures of the model: the same for every budget and allocator. */
interface Measurement {
  key: string;
  table: WeightNoiseTable;
  sizeInputs: ReturnType<typeof costInputs>;
  fp32Bytes: number;
}

/**
 * The last measurement, reused when the same weights, images and options come again: a comparison's or a study's
 * budgets and allocators (ResNet-20: 154 forward passes of 128 images each time otherwise).
 */
let lastMeasurement: Measurement | null = null;

function measure(source: ModelSource, x: Tensor, bits: readonly number[], act: string, perChannel: boolean, o: MixedOptions): Measurement {
  const h = createHash('sha256').update(weightsDigest(source.model)).update(JSON.stringify([x.shape, bits, act, perChannel, o.method ?? 'minmax', o.seed ?? 0]));
  const v = x.toFloat32Array();
  const key = h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)).digest('hex');
  if (lastMeasurement?.key === key) {
    o.log?.('mixed precision: the per-layer noise measured for the previous budget is reused (same weights, images and widths)');
    return lastMeasurement;
  }
  o.log?.(`mixed precision: measuring the output noise of each layer's weights at ${bits.join(', ')} bits on ${x.shape[0]} images`);
  const info = quantizableLayers(traceModel(source.model, x));
  // The size model: batch norms folded and biases added as PTQ does, from a quick template quantization.
  const template = quantizePostTraining(source, {
    spec: `w=${weightDatatype(bits[bits.length - 1], perChannel)},a=${act}`, calibration: [{ x: Tensor.from(v, x.shape), y: Tensor.from(new Int32Array(x.shape[0])) }],
    method: o.method ?? 'minmax', seed: o.seed, firstLast: 'quantize',
  });
  let sizeInputs: ReturnType<typeof costInputs>;
  try {
    sizeInputs = costInputs(source, template.info, template);
  } finally {
    disposeQuantized(template);
  }
  const fp32Bytes = costOf(source, info, null).bytes;
  const table = weightNoiseTable(source, x, bits, { perChannel });
  lastMeasurement = { key, table, sizeInputs, fp32Bytes };
  return lastMeasurement;
}

/** Measure the model (or reuse the last measurement), allocate bits under the budget, and return the spec (no model is kept). */
export function allocateMixedPrecision(source: ModelSource, calibration: () => Iterable<Batch>, o: MixedOptions): MixedAllocation {
  if (!(o.budget > 0 && o.budget <= 1)) throw new UsageError(`--budget is a fraction of the FP32 model size, 0 < budget <= 1; got ${o.budget}`);
  const bits = o.bits ?? DEFAULT_BITS, act = o.act ?? 'int8', perChannel = !!o.perChannel;
  parseDatatype(act).forRole('activation'); // a bad --act fails before any work
  const it = calibration()[Symbol.iterator]();
  const first = it.next();
  if (first.done) throw new UsageError('mixed precision needs calibration images (--calib-samples >= 1)');
  const x = firstImages(first.value.x, o.samples ?? 128);
  first.value.x.dispose();
  first.value.y.dispose();
  for (let r = it.next(); !r.done; r = it.next()) { r.value.x.dispose(); r.value.y.dispose(); }
  try {
    const { table, sizeInputs, fp32Bytes } = measure(source, x, bits, act, perChannel, o);
    const size = sizeFunction(sizeInputs, act, perChannel);
    const budgetBytes = Math.floor(o.budget * fp32Bytes);
    let chosen: number[], kappa: number | undefined;
    if (o.allocator === 'lin') {
      const fit = fitNoiseModel(bits, table.noise);
      kappa = fit.kappa;
      chosen = linAllocate(table.layers.map((l, i) => ({ name: l.name, params: l.params, sensitivity: fit.sensitivity[i] })), { kappa, bits, size, budgetBytes }).bits;
    } else {
      chosen = greedyAllocate(table.noise, bits, size, budgetBytes);
    }
    const names = table.layers.map((l) => l.name);
    const spec = mixedSpecText(names, chosen, act, perChannel);
    parseSpec(spec).checkLayers(names);
    const layers = table.layers.map((l, i) => ({ name: l.name, params: l.params, bits: chosen[i], noise: table.noise[i][bits.indexOf(chosen[i])] }));
    const totalParams = layers.reduce((s, l) => s + l.params, 0);
    const totalNoise = layers.reduce((s, l) => s + l.noise, 0);
    const result: MixedAllocation = {
      allocator: o.allocator, budget: o.budget, spec, layers, bytes: size(chosen), budget_bytes: budgetBytes, fp32_bytes: fp32Bytes,
      mean_weight_bits: round(layers.reduce((s, l) => s + l.params * l.bits, 0) / totalParams, 3),
      predicted_sqnr_db: round(totalNoise > 0 ? -10 * Math.log10(totalNoise) : Infinity, 2),
    };
    if (kappa !== undefined) result.kappa = round(kappa, 3);
    o.log?.(`${o.allocator} allocation at ${o.budget} of FP32 (${result.bytes} of ${budgetBytes} bytes allowed, FP32 ${fp32Bytes}): ` +
      `${layers.map((l) => `${l.name} ${l.bits}`).join(', ')} bits${kappa !== undefined ? `; kappa ${result.kappa} dB/bit` : ''}`);
    return result;
  } finally {
    x.dispose();
  }
}

/** The spec file written next to a quantized model: one section per line, comments say where it came from. */
export function specFileText(a: MixedAllocation, model: string): string {
  const [global, ...overrides] = a.spec.split(';');
  const width = Math.max(...overrides.map((s) => s.length));
  return [
    `# lowbit mixed-precision spec: ${a.allocator} allocation for ${model} at ${a.budget} of the FP32 size`,
    `# (${a.bytes} bytes packed, budget ${a.budget_bytes}, FP32 ${a.fp32_bytes}; mean weight bits ${a.mean_weight_bits}).`,
    '# Edit the widths and reuse it: lowbit quantize --spec <this file> ...  (one section per line; # starts a comment)',
    global,
    ...overrides.map((s, i) => `${s.padEnd(width)}  # ${a.layers[i].params} weights`),
    '',
  ].join('\n');
}

/** A --spec argument: a spec string, or a file whose name ends in .spec (sections on lines, # comments). */
export function specArgument(text: string): string {
  if (!/\.spec$/i.test(text.trim())) return text;
  const path = text.trim();
  if (!existsSync(path)) throw new UsageError(`--spec ${path}: no such file (a spec file is written by lowbit quantize --spec auto)`);
  const sections = readFileSync(path, 'utf8').split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter((l) => l !== '');
  if (sections.length === 0) throw new UsageError(`--spec ${path}: the file has no spec (only comments or blank lines)`);
  return sections.join(';');
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
