// `lowbit compare`: the survey's comparison on the user's own model and data. Every spec is one row: FP32,
// PTQ for datatypes of 8 bits and more, QAT fine-tuning below (from scratch where the paper trains from
// scratch), each with top-1 accuracy, delta vs FP32, bits, packed size, compression, BOPs, estimated energy
// per image and MAC area (cost.ts) and the measured latency of the simulated model.
//
// Rows are independent: a row that fails is recorded with its error and the others go on. After every row
// DIR/results.json (and the report, written by the caller's onWrite) are replaced atomically, so an
// interrupted run leaves the finished rows on disk, and `resume` skips them. With saveModels, each row's quantized
// model is kept in DIR/models/ (row.model_file), for `lowbit eval`, `inspect` or `export` without redoing it.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { cpus, hostname, totalmem } from 'node:os';
import { join } from 'node:path';
import { BatchNorm, type Module } from '../nn/index.js';
import { batches as splitBatches, evaluationBatchSize, type Batch, type Dataset, type Split, type ChannelStats } from '../data/index.js';
import { LowbitError, UsageError } from '../errors.js';
import { removeWithTemporaries, writeFileAtomic } from '../formats/atomic.js';
import { Random } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/engine.js';
import * as ops from '../autograd/index.js';
import { getBackend } from '../tensor/backend.js';
import { evaluate, type TrainData } from '../train/trainer.js';
import { effectiveSpec, needsTraining, trainsFromScratch, type FirstLastPolicy } from './conventions.js';
import { modelCost, macCost, classify, type CostReport, type LayerCostInput } from './cost.js';
import { traceModel, type LayerInfo } from './graph.js';
import { quantizePostTraining } from './ptq.js';
import { fineTuneAugment, qatCheckpoints, quantizeAwareTraining } from './qat.js';
import { disposeQuantized, checkInputShape, type ModelSource, type QuantizedModel } from './quantized.js';
import { parseSpec, type LayerScheme } from './spec.js';
import { saveQuantizedModel } from './load.js';
import type { CalibrationMethod } from './observers.js';
import { TwnQuantizer, TtqQuantizer } from './ternary.js';
import { defaultHistogramLayer, layerSqnr, weightHistogram, type LayerSqnr, type WeightHistogram } from './weight-stats.js';
import { allocateMixedPrecision, type Allocator } from './mixed-precision.js';
import { layerSensitivity, singleLayerSpec, type SensitivityResult } from './sensitivity.js';
import { roleBits } from './conventions.js';

/** Every family of the quantizers issue, as the issue lists them. */
export const DEFAULT_SPECS: readonly string[] = [
  'fp32', 'int8', 'int8:per-channel', 'int4', 'dfp:8', 'fixed:16.8:stochastic', 'minifloat:e4m3', 'pow2:4', 'log2:4', 'inq:5',
  'kmeans:16', 'binary', 'binary:stochastic', 'bwn', 'xnor', 'bnn', 'twn', 'ttq', 'dorefa:w2a2', 'dorefa:w1a2',
];

export interface CompareRow {
  spec: string;
  accuracy: number | null;
  delta: number | null;
  weight_bits: number | null;
  act_bits: number | null;
  bytes: number | null;
  compression: number | null;
  bops: number | null;
  energy_uj: number | null;
  latency_ms: number | null;
  /** What ran the latency measurement: the runtime's kernel families per layer ("5 int8"), or "simulation". */
  kernels?: string;
  seconds: number;
  error?: string;
  /** SQNR of the quantized weights of every layer with a weight quantizer (rows of earlier versions lack it). */
  layers?: LayerSqnr[];
  /** One layer's weights before and after quantization (absent when that layer's weights stay float). */
  histogram?: WeightHistogram;
  /** Mixed-precision rows (--mixed): the allocation that made the row. */
  mixed?: MixedRowInfo;
  /** Its QAT continued from a checkpoint of an interrupted run (seconds then count the last run only). */
  resumed?: boolean;
  /** The quantized model the row measured, relative to the output folder (models/<spec>.lowbit), when saved. */
  model_file?: string;
}

export interface MixedRowInfo {
  allocator: Allocator;
  /** Fraction of the FP32 size. */
  budget: number;
  /** The chosen spec. */
  spec: string;
  how: 'PTQ' | 'QAT';
  /** Weight bits per layer. */
  bits: Record<string, number>;
}

/** The row name of a mixed-precision allocation: auto:greedy:0.25. */
export function mixedRowName(allocator: Allocator, budget: number): string {
  return `auto:${allocator}:${budget}`;
}

/** Latency of one image (batch 1) of a model: the float source (q null) or a quantized one. */
export type LatencyProbe = (q: QuantizedModel | null, image: Tensor) => { msPerImage: number; kernels: string };

export interface CompareResults {
  model: string;
  /** SHA-256 of the model's state (every tensor of its state dict): --resume refuses rows of other weights. */
  weights_sha256: string;
  dataset: string;
  command: string;
  seed: number;
  seconds: number;
  machine: Record<string, unknown>;
  rows: CompareRow[];
  /** --sensitivity: each layer alone quantized, the others float. */
  sensitivity?: SensitivityResult;
}

export interface CompareSettings {
  /** Test images evaluated (all unless quick). */
  testSamples: number;
  /** Training images of QAT (all unless quick). */
  trainSamples: number;
  calibSamples: number;
  /** Fine-tuning epochs (QAT from the float model). */
  epochs: number;
  /** Fine-tuning epochs of the binary and ternary techniques (weights of 2 bits or less), which need longer. */
  lowBitEpochs: number;
  /**
   * Fine-tuning epochs of the binary-activation techniques (bnn, xnor: 1-bit inputs and weights). Default: twice
   * lowBitEpochs (once with --quick). Binarizing every input costs far more than binarizing the weights, and the
   * papers train these networks much longer (BinaryNet: 1000 epochs on MNIST, 500 on CIFAR-10); at 10 epochs
   * LeNet-5 xnor still underfits (98.9% training accuracy, docs/results/lenet5-mnist).
   */
  binaryActivationEpochs: number;
  /** Epochs of training from scratch (Gupta's fixed point). */
  scratchEpochs: number;
  method: CalibrationMethod;
  firstLast: FirstLastPolicy;
}

/** --quick: a subset of the data and one short epoch, for tests and a first look (under 2 minutes on LeNet-5/MNIST). */
export function compareSettings(quick: boolean, overrides: Partial<CompareSettings> = {}): CompareSettings {
  const base: CompareSettings = quick
    ? { testSamples: 1000, trainSamples: 4096, calibSamples: 256, epochs: 1, lowBitEpochs: 1, binaryActivationEpochs: 1, scratchEpochs: 1, method: 'minmax', firstLast: 'auto' }
    : { testSamples: Infinity, trainSamples: Infinity, calibSamples: 1024, epochs: 3, lowBitEpochs: 10, binaryActivationEpochs: 20, scratchEpochs: 5, method: 'minmax', firstLast: 'auto' };
  const merged = { ...base };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
  if (overrides.binaryActivationEpochs === undefined) merged.binaryActivationEpochs = quick ? merged.lowBitEpochs : 2 * merged.lowBitEpochs;
  return merged;
}

/** The QAT epochs of a row: from scratch, binary activations (1-bit inputs), 2-bit weights or less, the others. */
export function qatEpochs(desc: { how: RowDescription['how']; weightBits: number; actBits: number }, st: CompareSettings): number {
  if (desc.how === 'QAT from scratch') return st.scratchEpochs;
  if (desc.actBits <= 1) return st.binaryActivationEpochs;
  return desc.weightBits <= 2 ? st.lowBitEpochs : st.epochs;
}

/** How a row is produced and what it means, for the table and the report (computed from the spec alone). */
export interface RowDescription {
  how: 'float' | 'PTQ' | 'QAT' | 'QAT from scratch';
  weightBits: number;
  actBits: number;
  note: string;
  macArea: number;
  macKind: string;
}

export function describeSpec(specText: string, layers: readonly LayerInfo[], firstLast: FirstLastPolicy = 'auto'): RowDescription {
  const spec = parseSpec(specText);
  const g = spec.global;
  const bits = (r: typeof g.weight) => (r ? r.create().bits : 32);
  const notes: string[] = [];
  // A technique named alone quantizes what its paper quantizes: say so when that leaves the activations float.
  const named = !spec.text.split(';')[0].includes('=');
  if (named && g.weight && !g.activation) notes.push('activations stay float, as in the paper');
  const names = layers.map((l) => l.name);
  const eff = effectiveSpec(spec, names, firstLast);
  const kept = eff.overrides.slice(spec.overrides.length).filter((o) => o.kind === 'all').map((o) => o.layer);
  if (kept.length === 2) notes.push('first and last layers fp32');
  else if (kept.length === 1) notes.push(`layer ${kept[0]} fp32`);
  if (g.gradient) notes.push(`${g.gradient.spec.replace('dorefa:', '')} gradients`);
  const float = !g.weight && !g.activation && !g.gradient && !spec.overrides.length;
  const how: RowDescription['how'] = float ? 'float' : needsTraining(spec) ? (trainsFromScratch(spec) ? 'QAT from scratch' : 'QAT') : 'PTQ';
  // MAC unit of the layer with the most MACs among the quantized ones.
  const schemes = layers.map((l) => eff.forLayer(l.name));
  const quantized = layers.filter((_, i) => schemes[i].weight || schemes[i].activation);
  const pool = quantized.length ? quantized : layers;
  const main = pool.reduce((m, l) => (l.macs > m.macs ? l : m), pool[0]);
  const s = eff.forLayer(main.name);
  const mac = macCost(classify(s.weight), classify(s.activation), main.fanIn);
  return { how, weightBits: bits(g.weight), actBits: bits(g.activation), note: notes.join('; '), macArea: mac.area, macKind: mac.kind };
}

/** A seeded subset of a split (copies the selected images). */
export function subsetSplit(split: Split, count: number, seed: number): Split {
  if (!(count < split.count)) return split;
  const order = new Random(seed).permutation(split.count).subarray(0, count);
  const size = split.channels * split.height * split.width;
  const images = new Uint8Array(count * size);
  const labels = split.labels instanceof Int32Array ? new Int32Array(count) : new Uint8Array(count);
  order.forEach((k, i) => {
    images.set(split.images.subarray(k * size, (k + 1) * size), i * size);
    labels[i] = split.labels[k];
  });
  return { ...split, images, labels, count };
}

/** The layers' cost inputs for a quantized model (or the float model when q is null). */
export function costOf(source: ModelSource, info: readonly LayerInfo[], q: QuantizedModel | null): CostReport {
  const { layers, otherFloats } = costInputs(source, info, q);
  return modelCost(layers, otherFloats);
}

/** What costOf gives the cost model: one input per conv/linear layer and the float numbers elsewhere (unfolded batch norms). */
export function costInputs(source: ModelSource, info: readonly LayerInfo[], q: QuantizedModel | null): { layers: LayerCostInput[]; otherFloats: number } {
  const byName = new Map(q?.layers.map((l) => [l.name, l]) ?? []);
  const folded = new Set(q?.folded.map((p) => p.batchNorm) ?? []);
  const none: LayerScheme = { weight: null, activation: null, gradient: null };
  const inputs: LayerCostInput[] = info.map((l) => {
    const fq = byName.get(l.name);
    const scheme = fq ? fq.scheme : none;
    let density: number | undefined;
    if (fq && (fq.weight instanceof TwnQuantizer || fq.weight instanceof TtqQuantizer)) {
      density = tidy(() => ops.noGrad(() => {
        const w = fq.evalWeight();
        return ops.mean(ops.greater(ops.abs(w), Tensor.scalar(0))).item();
      }));
    }
    const bias = (q ? q.model : source.model).namedParameters().some(([n]) => n === `${l.name}.bias`);
    return {
      name: l.name, macs: l.macs, params: l.params, outChannels: l.outChannels, fanIn: l.fanIn, biases: bias ? l.outChannels : 0,
      inputElements: l.inputShape.slice(1).reduce((p, d) => p * d, 1), outputElements: l.outputShape.slice(1).reduce((p, d) => p * d, 1),
      scheme, density, extraFloats: fq?.inputNorm ? 2 * fq.inputNorm.channels : 0,
    };
  });
  let bnFloats = 0;
  for (const [name, m] of (q ? q.model : source.model).namedModules()) if (m instanceof BatchNorm && !folded.has(name)) bnFloats += 2 * m.channels;
  return { layers: inputs, otherFloats: bnFloats };
}

export interface CompareOptions {
  source: ModelSource;
  /** How the model was named on the command line (results.json "model"). */
  modelName: string;
  dataset: Dataset;
  specs: readonly string[];
  quick: boolean;
  seed: number;
  outDir: string;
  resume?: boolean;
  command: string;
  settings: CompareSettings;
  /** Normalization of the model's inputs (the model file's preprocess, else the dataset's). */
  normalize: ChannelStats;
  log?: (line: string) => void;
  progress?: boolean;
  /**
   * Measures each row's latency (the CLI runs the integer runtime here; quant/ cannot import it). Without
   * it, latency is the simulated model's time per image in batches of 500.
   */
  latency?: LatencyProbe;
  /** The layer whose weight histogram each row records (default: the conv layer with the most weights). */
  histLayer?: string;
  /** The model's layers if the caller traced them already (traceLayers on the calibration images). */
  layers?: LayerInfo[];
  /** Called after every row with the results so far (write the report there). */
  onWrite?: (results: CompareResults, layers: readonly LayerInfo[]) => void;
  /**
   * Mixed-precision rows (auto:<allocator>:<budget>), one per budget and allocator, after the specs' rows:
   * weights of per-layer widths chosen under the budget, activations `act` (default int8). Rows with any weight
   * below 8 bits are fine-tuned (QAT), as the uniform specs below 8 bits are.
   */
  mixed?: { budgets: readonly number[]; allocators: readonly Allocator[]; act?: string; bits?: readonly number[]; perChannel?: boolean };
  /** Each layer alone in this datatype (int4, w=int4), the others float: accuracy deltas (results.sensitivity). */
  sensitivity?: string;
  /** Rows made elsewhere (by `--jobs` child processes), failed ones included: taken as they are, not rerun. */
  finished?: readonly CompareRow[];
  /** Save each row's quantized model in outDir/models/ (modelFileNames) for `lowbit eval`, `inspect`, `export`. */
  saveModels?: boolean;
}

const LOWBIT_VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export function machineInfo(): Record<string, unknown> {
  const b = getBackend();
  return {
    host: hostname(), cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memory_gb: Math.round(totalmem() / 2 ** 30),
    node: process.version, platform: `${process.platform}-${process.arch}`, backend: b.name, threads: b.threads, lowbit: LOWBIT_VERSION,
  };
}

/** Where a QAT row checkpoints every epoch (removed once the row is in results.json). */
function rowCheckpoint(outDir: string, spec: string): string {
  return join(outDir, 'checkpoints', `${encodeURIComponent(spec)}.ckpt`);
}

/** SHA-256 (hex) of a model's state dict: names, shapes and values. */
export function weightsDigest(model: Module): string {
  const h = createHash('sha256');
  for (const [name, t] of model.stateDict()) {
    h.update(`${name}:${t.shape.join('x')}:${t.dtype};`);
    const v = t.view();
    h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }
  return h.digest('hex');
}

/**
 * The rows of a comparison, in order: the specs, then one mixed-precision row per allocator and budget. Malformed
 * specs, repeated ones and budgets outside (0, 1] are usage errors before any work.
 */
export function compareRows(specList: readonly string[], m: CompareOptions['mixed']): { mixed: Map<string, { allocator: Allocator; budget: number }>; names: string[] } {
  const specs = specList.map((s) => s.trim());
  for (const s of specs) parseSpec(s);
  const dupes = specs.filter((s, i) => specs.indexOf(s) !== i);
  if (dupes.length) throw new UsageError(`--specs lists ${dupes.join(', ')} more than once`);
  const mixed = new Map<string, { allocator: Allocator; budget: number }>();
  for (const allocator of m?.allocators ?? []) {
    for (const budget of m!.budgets) {
      if (!(budget > 0 && budget <= 1)) throw new UsageError(`--mixed: a budget is a fraction of the FP32 size, 0 < budget <= 1; got ${budget}`);
      mixed.set(mixedRowName(allocator, budget), { allocator, budget });
    }
  }
  return { mixed, names: [...specs, ...mixed.keys()] };
}

/**
 * The file of each row's quantized model, relative to the output folder: the spec with the characters a shell or a
 * file system would trip on replaced (int8:per-channel -> models/int8-per-channel.lowbit), made unique.
 */
export function modelFileNames(names: readonly string[]): Map<string, string> {
  const files = new Map<string, string>();
  const taken = new Set<string>();
  for (const name of names) {
    const stem = name.replace(/[^A-Za-z0-9._=,+-]+/g, '-').replace(/^[-.]+/, '') || 'row';
    let file = `models/${stem}.lowbit`;
    for (let k = 2; taken.has(file); k++) file = `models/${stem}-${k}.lowbit`;
    taken.add(file);
    files.set(name, file);
  }
  return files;
}

/** The rows of results.json: those asked for in the order of `names`, then the earlier runs' rows of other specs. */
export function orderedRows(names: readonly string[], rowBySpec: ReadonlyMap<string, CompareRow>): CompareRow[] {
  return [...names.filter((s) => rowBySpec.has(s)), ...[...rowBySpec.keys()].filter((s) => !names.includes(s))].map((s) => rowBySpec.get(s)!);
}

/** The finished rows (and seconds) of an earlier run in results.json at `path`, if resuming; throws if they are another comparison's. */
export function readPrevious(path: string, o: Pick<CompareOptions, 'resume' | 'source' | 'modelName' | 'dataset' | 'seed' | 'quick'>): { rows: CompareRow[]; seconds: number } {
  if (!o.resume || !existsSync(path)) return { rows: [], seconds: 0 };
  let prev: CompareResults;
  try {
    prev = JSON.parse(readFileSync(path, 'utf8')) as CompareResults;
  } catch {
    throw new LowbitError(`${path} is not valid JSON; remove it or run without --resume`);
  }
  // Older files have no digest: their rows are taken on the name alone.
  if (prev.weights_sha256 !== undefined && prev.weights_sha256 !== weightsDigest(o.source.model)) {
    throw new LowbitError(`${path} holds rows of other weights of ${prev.model} (the model was retrained or changed since); ` +
      'use another --out or run without --resume to start over');
  }
  const quickBefore = / --quick\b/.test(` ${prev.command ?? ''}`);
  if (prev.model !== o.modelName || prev.dataset !== o.dataset.name || prev.seed !== o.seed || quickBefore !== o.quick) {
    throw new LowbitError(`${path} was written by another comparison (model ${prev.model}, dataset ${prev.dataset}, seed ${prev.seed}${quickBefore ? ', --quick' : ''}); ` +
      'use another --out or run without --resume to start over');
  }
  return { rows: (prev.rows ?? []).filter((r) => !r.error && r.accuracy !== null), seconds: typeof prev.seconds === 'number' ? prev.seconds : 0 };
}

/** The conv/linear layers of the model, traced on the first of `batches` (whose shape must be the model's input). */
export function traceLayers(source: ModelSource, batches: Iterator<Batch>, datasetName: string): LayerInfo[] {
  const probe = batches.next().value!;
  try {
    checkInputShape(source, probe.x, `dataset ${datasetName}`);
    return traceModel(source.model, probe.x).layers;
  } finally {
    probe.x.dispose();
    probe.y.dispose();
  }
}

/** The comparison's calibration images: a subset of the training split. */
export function calibrationSplit(ds: Dataset, settings: CompareSettings, seed: number): Split {
  return subsetSplit(ds.train, settings.calibSamples, seed + 3);
}

/** Calibration images in batches of up to 256. */
export function calibrationBatches(split: Split, normalize: ChannelStats): Generator<Batch> {
  return splitBatches(split, { batchSize: Math.min(256, split.count), normalize });
}

/**
 * The images of the per-epoch QAT progress checks: 1,000 of the comparison's test images (a progress signal only;
 * a row's accuracy is measured on all of them, and these are not a sample of the same difficulty).
 */
export function epochCheckSplit(test: Split, seed: number): Split {
  return subsetSplit(test, Math.min(test.count, 1000), seed + 4);
}

/** A --hist-layer that names no conv or linear layer of the model is a usage error. */
export function checkHistLayer(info: readonly LayerInfo[], histLayer: string | undefined): void {
  if (histLayer !== undefined && !info.some((l) => l.name === histLayer)) {
    throw new UsageError(`--hist-layer ${histLayer} is not a conv or linear layer of the model (layers: ${info.map((l) => l.name).join(', ')})`);
  }
}

/** Run the comparison; returns the results (also in outDir/results.json). */
export function runCompare(o: CompareOptions): CompareResults {
  const log = o.log ?? (() => {});
  const started = performance.now();
  const { mixed, names } = compareRows(o.specs, o.mixed);
  const modelFiles = modelFileNames(names);
  const ds = o.dataset, st = o.settings;
  checkClasses(o.source, ds);
  const test = subsetSplit(ds.test, st.testSamples, o.seed + 1);
  const train = subsetSplit(ds.train, st.trainSamples, o.seed + 2);
  const testBatches = () => splitBatches(test, { batchSize: evaluationBatchSize(test), normalize: o.normalize });
  const calibSplit = calibrationSplit(ds, st, o.seed);
  const calibration = () => calibrationBatches(calibSplit, o.normalize);
  const checks = epochCheckSplit(test, o.seed);
  const augment = fineTuneAugment(o.source, ds.train.channels);
  const trainData: TrainData = {
    trainCount: train.count,
    trainBatches: (epoch) => splitBatches(train, { batchSize: 64, shuffle: true, seed: o.seed, epoch, augment, normalize: o.normalize }),
    // per-epoch progress checks only (the log says how many images): the row's accuracy is the full test split's
    testBatches: () => splitBatches(checks, { batchSize: evaluationBatchSize(checks), normalize: o.normalize }),
  };
  const info = o.layers ?? traceLayers(o.source, calibration(), ds.name);
  checkHistLayer(info, o.histLayer);
  const histLayer = o.histLayer ?? defaultHistogramLayer(info);
  if (o.sensitivity) parseSpec(singleLayerSpec(info[0].name, o.sensitivity)); // a bad datatype is a usage error before any work
  const path = join(o.outDir, 'results.json');
  const earlier = readPrevious(path, o);
  const finished = new Set(o.finished?.map((r) => r.spec));
  const previous = [...earlier.rows.filter((r) => !finished.has(r.spec)), ...(o.finished ?? [])];
  const previousSeconds = earlier.seconds;
  const results: CompareResults = { model: o.modelName, weights_sha256: weightsDigest(o.source.model), dataset: ds.name, command: o.command, seed: o.seed, seconds: 0, machine: machineInfo(), rows: [] };
  // Rows by spec: the earlier run's finished rows are on disk from the first write on, in the order of `specs`
  // (rows of specs not asked for this time are kept after them), and each new row replaces its entry.
  const rowBySpec = new Map(previous.map((r) => [r.spec, r]));
  const write = () => {
    results.rows = orderedRows(names, rowBySpec);
    // A resumed comparison's time includes the earlier runs'.
    results.seconds = +(previousSeconds + (performance.now() - started) / 1000).toFixed(1);
    writeFileAtomic(path, JSON.stringify(results, null, 2) + '\n');
    o.onWrite?.(results, info);
  };

  const image = (() => {
    const b = splitBatches(subsetSplit(test, 1, o.seed + 5), { batchSize: 1, normalize: o.normalize }).next().value!;
    b.y.dispose();
    return b.x;
  })();
  /** The row's latency: from the probe (runtime), else the simulation's batched time. */
  const latencyOf = (q: QuantizedModel | null, simulatedMs: number): Pick<CompareRow, 'latency_ms' | 'kernels'> => {
    if (!o.latency) return { latency_ms: round(simulatedMs, 4), kernels: 'simulation' };
    try {
      const l = o.latency(q, image);
      return { latency_ms: round(l.msPerImage, 4), kernels: l.kernels };
    } catch (e) {
      log(`latency: ${(e as Error).message.replace(/^lowbit: /, '')}; the simulation's time is reported instead`);
      return { latency_ms: round(simulatedMs, 4), kernels: 'simulation' };
    }
  };

  // The float baseline, for every row's delta.
  const fpStart = performance.now();
  const fp = evaluate(o.source.model, testBatches());
  const fpCost = costOf(o.source, info, null);
  const fpSeconds = (performance.now() - fpStart) / 1000;
  log(`fp32: ${(100 * fp.accuracy).toFixed(2)}% on ${fp.samples} test images`);
  if (augment) log('QAT rows fine-tune on random crops and flips, as the float model was trained');

  /** How a row is made: the spec that runs, PTQ or QAT, its bits (mixed rows: allocated here). */
  const plan = (name: string) => {
    const m = mixed.get(name);
    if (!m) {
      const d = describeSpec(name, info, st.firstLast);
      return { spec: parseSpec(name), how: d.how, weightBits: d.weightBits, actBits: d.actBits, note: d.note, mixed: undefined };
    }
    const a = allocateMixedPrecision(o.source, calibration, { ...o.mixed, budget: m.budget, allocator: m.allocator, method: st.method, seed: o.seed, log });
    const how: MixedRowInfo['how'] = Math.min(...a.layers.map((l) => l.bits)) < 8 ? 'QAT' : 'PTQ';
    const made: MixedRowInfo = { allocator: m.allocator, budget: m.budget, spec: a.spec, how, bits: Object.fromEntries(a.layers.map((l) => [l.name, l.bits])) };
    const actBits = roleBits(parseSpec(a.spec).global.activation);
    return { spec: parseSpec(a.spec), how, weightBits: a.mean_weight_bits, actBits, note: `${m.allocator} allocation: ${a.spec}`, mixed: made };
  };

  names.forEach((spec, i) => {
    const done = previous.find((r) => r.spec === spec);
    if (done) {
      log(`[${i + 1}/${names.length}] ${spec}: ${done.error ? 'failed in a job' : `done ${finished.has(spec) ? 'in a job' : 'in an earlier run'} (${(100 * done.accuracy!).toFixed(2)}%)`}, skipped`);
      return;
    }
    const t0 = performance.now();
    let row: CompareRow;
    if (spec === 'fp32') {
      row = {
        spec, accuracy: fp.accuracy, delta: 0, weight_bits: 32, act_bits: 32, bytes: fpCost.bytes, compression: 1, bops: fpCost.bops,
        energy_uj: round(fpCost.energy.totalUJ, 4), ...latencyOf(null, fp.msPerImage), seconds: round(fpSeconds, 1),
      };
    } else {
      let q: QuantizedModel | null = null;
      let resumed = false;
      try {
        const desc = plan(spec);
        const parsed = desc.spec;
        log(`[${i + 1}/${names.length}] ${spec}: ${desc.how}${desc.note ? ` (${desc.note})` : ''}`);
        resumed = desc.how !== 'PTQ' && !!o.resume && qatCheckpoints(rowCheckpoint(o.outDir, spec)).some((f) => existsSync(f));
        const modelPath = join(o.outDir, modelFiles.get(spec)!);
        removeWithTemporaries(modelPath); // an earlier run's model of this row is not this row's
        if (desc.how !== 'PTQ') mkdirSync(join(o.outDir, 'checkpoints'), { recursive: true });
        q = desc.how === 'PTQ'
          ? quantizePostTraining(o.source, { spec: parsed, calibration: calibration(), method: st.method, seed: o.seed, firstLast: st.firstLast, log })
          : quantizeAwareTraining(o.source, {
              spec: parsed, data: trainData, seed: o.seed,
              epochs: qatEpochs(desc, st),
              calibration: calibration(), firstLast: st.firstLast, log, progress: o.progress,
              // a long row (ResNet-20: hours) continues from its last epoch after a kill, with --resume
              checkpointPath: rowCheckpoint(o.outDir, spec), resume: o.resume,
            });
        const r = evaluate(q.model, testBatches());
        const cost = costOf(o.source, info, q);
        row = {
          spec, accuracy: r.accuracy, delta: round(r.accuracy - fp.accuracy, 6), weight_bits: desc.weightBits, act_bits: desc.actBits,
          bytes: cost.bytes, compression: round(cost.compression, 2), bops: cost.bops, energy_uj: round(cost.energy.totalUJ, 4),
          ...latencyOf(q, r.msPerImage), seconds: round((performance.now() - t0) / 1000, 1),
          layers: layerSqnr(q.layers),
        };
        const histogram = weightHistogram(q.layers, histLayer);
        if (histogram) row.histogram = histogram;
        if (desc.mixed) row.mixed = desc.mixed;
        if (resumed) row.resumed = true; // its seconds are those of the last run only
        if (o.saveModels) {
          mkdirSync(join(o.outDir, 'models'), { recursive: true });
          saveQuantizedModel(modelPath, q, {
            quantizedBy: { command: o.command, dataset: ds.name, seconds: row.seconds, testAccuracy: r.accuracy, floatTestAccuracy: fp.accuracy, testSamples: r.samples },
          });
          row.model_file = modelFiles.get(spec);
        }
        log(`[${i + 1}/${names.length}] ${spec}: ${(100 * r.accuracy).toFixed(2)}% (${row.delta! >= 0 ? '+' : ''}${(100 * row.delta!).toFixed(2)}), ${row.seconds} s`);
      } catch (e) {
        // One technique failing must not lose the others: record why and go on.
        const err = e as Error;
        const message = e instanceof LowbitError
          ? err.message.replace(/^lowbit: /, '')
          : `unexpected error (a bug; please report it): ${String(err?.stack ?? err).split('\n').slice(0, 3).join(' | ')}`;
        log(`[${i + 1}/${names.length}] ${spec}: FAILED: ${message}`);
        row = {
          spec, accuracy: null, delta: null, weight_bits: null, act_bits: null, bytes: null, compression: null, bops: null, energy_uj: null,
          latency_ms: null, seconds: round((performance.now() - t0) / 1000, 1), error: message,
        };
      } finally {
        if (q) disposeQuantized(q);
      }
    }
    rowBySpec.set(spec, row);
    write();
    for (const f of qatCheckpoints(rowCheckpoint(o.outDir, spec))) removeWithTemporaries(f);
  });
  image.dispose();
  if (o.sensitivity) {
    log(`sensitivity: each layer alone in ${o.sensitivity}, the others fp32`);
    results.sensitivity = layerSensitivity(o.source, info, { datatype: o.sensitivity, calibration, test: testBatches, method: st.method, seed: o.seed, log });
  }
  write(); // also when every row was done before (a resumed run rewrites the report)
  try {
    rmdirSync(join(o.outDir, 'checkpoints')); // every row's checkpoints are gone; only an empty folder is removed
  } catch {
    // absent, or holding files that are not ours
  }
  return results;
}

/** The dataset must have the classes the model predicts. */
export function checkClasses(source: ModelSource, ds: Dataset): void {
  if (ds.classes.length !== source.config.classes) {
    throw new LowbitError(`${source.name} predicts ${source.config.classes} classes, dataset ${ds.name} has ${ds.classes.length}; use the dataset the model was trained on`);
  }
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

