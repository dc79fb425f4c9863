// Quantized models as .lowbit files: the float weights the fake quantizers read (folded for PTQ, latent for
// QAT), every layer's quantizer parameters (scales, zero points, fractional lengths, TTQ scales, codebooks,
// INQ windows, calibrated ranges) and the spec, so that loading reproduces the quantized model's outputs bit
// for bit. Bit-packed integer weights are the integer runtime's format (issue 6), not this one.
//
//   tensors    the model's state dict (with the biases added by folding and bias correction), and
//              quant.<layer>.<...> for tensors inside quantizer parameters and the binarized layers' input norms
//   metadata   the float model's metadata (preprocessing, dataset, classes) and
//              quantization: {format, spec, effectiveSpec, mode, seed, folded, addedBias, details,
//                             layers: {<layer>: FakeQuantState}}

import { readFileSync } from 'node:fs';
import { LowbitError } from '../errors.js';
import { decodeModelHeader, loadModelFile, saveModelFile } from '../formats/lowbit.js';
import { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/engine.js';
import { buildFromHeader, fileNumbers, loadModel, modelHeader, type LoadedModel } from '../zoo/index.js';
import type { FakeQuantLayer, FakeQuantState } from './fakequant.js';
import type { Module } from '../nn/index.js';
import { prepareFoldedStructure, type FoldPair } from './fold.js';
import { isQuantizable, traceModel } from './graph.js';
import { attachQuantizers, type QuantizedModel } from './quantized.js';
import { parseSpec } from './spec.js';

export const QUANTIZED_FORMAT = 1;
const QUANT_PREFIX = 'quant.';

interface QuantizationMetadata {
  format: number;
  spec: string;
  effectiveSpec: string;
  mode: 'ptq' | 'qat';
  seed: number;
  folded: FoldPair[];
  addedBias: string[];
  details: Record<string, unknown>;
  layers: Record<string, FakeQuantState>;
}

/** True if a model file's metadata describes a quantized model. */
export function isQuantizedMetadata(metadata: Record<string, unknown>): boolean {
  const q = metadata.quantization as { format?: unknown } | undefined;
  return !!q && typeof q === 'object' && typeof q.format === 'number';
}

/** The tensors and metadata of a quantized model file. */
export function encodeQuantizedModel(q: QuantizedModel, extra: Record<string, unknown> = {}): { tensors: Map<string, Tensor>; metadata: Record<string, unknown> } {
  const tensors = new Map(q.model.stateDict());
  const layers: Record<string, FakeQuantState> = {};
  for (const l of q.layers) layers[l.name] = l.state(tensors, `${QUANT_PREFIX}${l.name}`);
  const quantization: QuantizationMetadata = {
    format: QUANTIZED_FORMAT, spec: q.spec.text, effectiveSpec: q.effective.text, mode: q.mode,
    seed: (q.details.seed as number | undefined) ?? 0, folded: q.folded, addedBias: q.addedBias, details: q.details, layers,
  };
  const { quantization: _old, ...source } = q.sourceMetadata;
  void _old;
  return { tensors, metadata: { ...source, ...extra, quantization } };
}

/** Write a quantized model as a .lowbit file (atomically). */
export function saveQuantizedModel(path: string, q: QuantizedModel, extra: Record<string, unknown> = {}): void {
  const { tensors, metadata } = encodeQuantizedModel(q, extra);
  saveModelFile(path, modelHeader(q.name, q.config, q.model), tensors, metadata);
}

const isNumbers = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'number');
const isRange = (v: unknown) => {
  const r = v as Record<string, unknown>;
  return !!r && typeof r === 'object' && isNumbers(r.min) && isNumbers(r.max);
};

/** What is wrong with a layer's saved quantization state, or null (types only: the values are checked where used). */
function layerStateProblem(s: FakeQuantState): string | null {
  if (!s || typeof s !== 'object') return 'is not an object';
  for (const k of ['weight', 'activation', 'gradient'] as const) if (s[k] !== null && typeof s[k] !== 'string') return `${k} is not a datatype`;
  for (const k of ['seed', 'gain', 'activationScale'] as const) if (typeof s[k] !== 'number' || !Number.isFinite(s[k])) return `${k} is not a number`;
  for (const k of ['gainInside', 'persistentWeightParams', 'inputNorm', 'xnorScale'] as const) if (typeof s[k] !== 'boolean') return `${k} is not true or false`;
  if (s.activationRange !== null && !isRange(s.activationRange)) return 'activationRange is malformed';
  if (s.ema !== null && !(isRange(s.ema) && typeof s.ema.batches === 'number')) return 'ema is malformed';
  return null;
}

/** Check the shape of the quantization metadata before anything is built from it. */
function checkQuantizationMetadata(meta: QuantizationMetadata, path: string): void {
  const bad = (what: string) => new LowbitError(`${path}: the quantization metadata ${what}; the file is corrupt, quantize the model again`);
  if (meta.format !== QUANTIZED_FORMAT) throw new LowbitError(`${path}: quantized-model format ${meta.format}; this lowbit reads format ${QUANTIZED_FORMAT}`);
  if (typeof meta.spec !== 'string' || typeof meta.effectiveSpec !== 'string') throw bad('lacks the spec');
  if (!Number.isSafeInteger(meta.seed)) throw bad('has no valid seed');
  if (!Array.isArray(meta.folded) || !meta.folded.every((p) => p && typeof p.layer === 'string' && typeof p.batchNorm === 'string')) throw bad('has malformed folded layers');
  if (!Array.isArray(meta.addedBias) || !meta.addedBias.every((n) => typeof n === 'string')) throw bad('has malformed added biases');
  if (!meta.layers || typeof meta.layers !== 'object' || Array.isArray(meta.layers)) throw bad('has no layer table');
  for (const [name, state] of Object.entries(meta.layers)) {
    const problem = layerStateProblem(state);
    if (problem) throw bad(`of layer ${name} ${problem}`);
  }
}

/** Load a file written by saveQuantizedModel: the model with its fake quantizers installed, in evaluation mode. */
export function loadQuantizedModel(path: string): QuantizedModel {
  const file = loadModelFile(path);
  let model: Module | null = null;
  let layers: FakeQuantLayer[] = [];
  try {
    if (!isQuantizedMetadata(file.metadata)) {
      throw new LowbitError(`${path} is a float model, not a quantized one; load it with loadModel() or quantize it with \`lowbit quantize\``);
    }
    const meta = file.metadata.quantization as QuantizationMetadata;
    checkQuantizationMetadata(meta, path);
    const built = buildFromHeader(file.model, 0, fileNumbers(file.tensors));
    model = built.model;
    const { name, config } = built;
    prepareFoldedStructure(model, meta.folded);
    for (const name of meta.addedBias) {
      const m = model.namedModules().find(([n]) => n === name)?.[1];
      if (!m || !isQuantizable(m)) throw new LowbitError(`${path}: the quantized model names layer ${name}, which the architecture does not have`);
      m.ensureBias();
    }
    const state = new Map([...file.tensors].filter(([k]) => !k.startsWith(QUANT_PREFIX)));
    try {
      model.loadStateDict(state);
    } catch (e) {
      throw new LowbitError(`${path}: ${(e as Error).message.replace(/^lowbit: /, '')}`);
    }
    const probe = Tensor.zeros([1, config.inChannels, config.inputSize, config.inputSize]);
    let trace: ReturnType<typeof traceModel>;
    try {
      trace = traceModel(model, probe);
    } finally {
      probe.dispose();
    }
    const effective = parseSpec(meta.effectiveSpec);
    ({ layers } = attachQuantizers(trace, effective, { seed: meta.seed, firstLast: 'quantize' }));
    const expected = Object.keys(meta.layers).sort().join(',');
    if (layers.map((l) => l.name).sort().join(',') !== expected) {
      throw new LowbitError(`${path}: the spec quantizes layers ${layers.map((l) => l.name).join(', ')} but the file has parameters for ${expected}`);
    }
    for (const l of layers) {
      l.restore(meta.layers[l.name], file.tensors, `${QUANT_PREFIX}${l.name}`);
      l.install();
    }
    model.eval();
    const kept = new Set(layers.flatMap((l) => l.paramTensors()));
    for (const t of file.tensors.values()) if (!kept.has(t)) t.dispose();
    const { quantization: _q, ...sourceMetadata } = file.metadata;
    void _q;
    return {
      name, config, model, spec: parseSpec(meta.spec), effective, mode: meta.mode, layers, info: trace.layers,
      folded: meta.folded, addedBias: meta.addedBias, details: meta.details, sourceMetadata,
    };
  } catch (e) {
    for (const l of layers) l.dispose();
    model?.dispose();
    for (const t of file.tensors.values()) t.dispose();
    throw e;
  }
}

/** True if the .lowbit file at `path` holds a quantized model (reads the header only). */
export function isQuantizedModelFile(path: string): boolean {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch {
    return false; // loadModel reports the error
  }
  if (path.endsWith('.onnx')) return false; // ONNX models are float here (QDQ import is not supported yet)
  return isQuantizedMetadata(decodeModelHeader(bytes, path).metadata);
}

/**
 * A float model ("zoo:<name>" or a file) or a quantized model file, whichever `spec` names: what `lowbit eval`
 * loads. A quantized model comes with its fake quantizers installed (`quantized` is set).
 */
export function loadAnyModel(spec: string): LoadedModel & { quantized: QuantizedModel | null } {
  if (!spec.startsWith('zoo:') && !spec.toLowerCase().endsWith('.onnx') && isQuantizedModelFile(spec)) {
    const q = loadQuantizedModel(spec);
    return { name: q.name, config: q.config, model: q.model, metadata: q.sourceMetadata, quantized: q };
  }
  return { ...loadModel(spec), quantized: null };
}
